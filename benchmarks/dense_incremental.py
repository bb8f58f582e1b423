"""Incremental updates of the dense index: immutable snapshots (base + delta + tombstones) against
today's approach (FAISS updated in place for flat and IVF, HNSW rebuilt whole on any removal).

    python benchmarks/dense_incremental.py                                  # 100,000 x 384, all kinds
    python benchmarks/dense_incremental.py --kinds hnsw --vectors 30000     # HNSW builds are slow on 2 cores
    python benchmarks/dense_incremental.py --data random --queries 300

Vectors are unit vectors, ``--data clustered`` (default, "real-like": 1,000 topics plus Gaussian noise,
queries drawn the same way, so IVF and HNSW have structure to exploit as with real embeddings) or
``--data random`` (no structure: the worst case for IVF recall). A "one-file change" replaces 100
vectors (removes 100 ids and adds them back with new vectors), as re-ingesting one edited file does.

Measured per kind:

* build time (IVF: k-means training and adding, separately);
* one-file change: ``with_changes`` (median of ``--repeats`` on the same snapshot) against today's way
  (flat: ``remove_ids`` + ``add_with_ids`` on an ``IndexIDMap2``; HNSW: a full rebuild, i.e. the build
  time; IVF: the same on the ``IndexIVFFlat`` itself, because today's ``IndexIDMap2`` over IVF returns
  wrong ids after a removal and aborts the process on the next one);
* single-query search p50 / p95 (k=10, one OpenMP thread as in the store) before any change, after 11
  one-file changes (1,100 tombstones + 1,100-vector delta) and after ``merged()``; also with a filter
  allowing a random 5 % of the ids; recall@10 against exact numpy top-k;
* ``merged()`` after the 10 changes (HNSW / IVF: copy + append, keeping tombstones) and
  ``merged(compact=True)`` (rebuilt from the live rows).

The box is shared: every timing is a median of repeats, and the load average is printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import machine, package_versions

from jisik.store.faiss_index import DenseIndex

DIM = 384
CHANGE = 100  # vectors of one re-ingested file


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def unit_vectors(rng: np.random.Generator, n: int, data: str, hubs: np.ndarray) -> np.ndarray:
    """``n`` unit vectors, clustered around ``hubs`` (noise 0.75 x the hub's scale per dimension: cosine 0.8 to the hub,
    ~0.64 between two vectors of one topic)
    or uniformly random."""
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 16_384):
        m = min(16_384, n - start)
        x = rng.standard_normal((m, DIM), dtype=np.float32)
        if data == "clustered":
            x = hubs[rng.integers(0, len(hubs), m)] + 0.75 * x
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def timed(fn: Callable[[], Any], repeats: int = 1) -> tuple[float, Any]:
    """Median seconds of ``repeats`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def latency(search: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
            queries: np.ndarray) -> tuple[float, float, np.ndarray]:
    """p50 and p95 milliseconds of single-query searches, and the ids found."""
    search(queries[:1])  # warm-up
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        _, ids = search(q[None, :])
        times.append((time.perf_counter() - start) * 1000)
        found.append(ids[0])
    return float(np.percentile(times, 50)), float(np.percentile(times, 95)), np.array(found)


def exact_top(live_ids: np.ndarray, live_vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ live_vectors.T
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return live_ids[best]  # type: ignore[no-any-return]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth, strict=True)]))


def old_index(faiss: Any, kind: str, ids: np.ndarray, vectors: np.ndarray, centroids: np.ndarray | None) -> Any:
    """Today's index: ``IndexIDMap2`` over flat or IVF (faiss_index.py before snapshots). IVF gets the
    centroids ours trained (same k-means, and it saves a minute of training at 100,000 vectors)."""
    if kind == "ivf":
        assert centroids is not None
        inner = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, len(centroids), faiss.METRIC_INNER_PRODUCT)
        inner.quantizer.add(centroids)
        inner.is_trained = True
        inner.nprobe = 16
    else:
        inner = faiss.IndexFlatIP(DIM)
    # Today's IndexIDMap2 over IVF maps ids wrongly after IVF's remove_ids (IVF does not renumber its rows)
    # and aborts the process on the next removal (FAISS assertion in IndexIDMap::remove_ids), so the IVF
    # baseline is IVF updated in place with its own ids, which is what it should have been.
    index = inner if kind == "ivf" else faiss.IndexIDMap2(inner)
    index.add_with_ids(vectors, ids)
    return index


def bench_kind(kind: str, n: int, args: argparse.Namespace) -> list[list[str]]:
    import faiss

    rng = np.random.default_rng(args.seed)
    hubs = rng.standard_normal((1_000, DIM)).astype(np.float32)
    log(f"{kind}: {n:,} x {DIM} {args.data} vectors")
    vectors = unit_vectors(rng, n, args.data, hubs)
    ids = np.arange(n, dtype=np.int64)
    queries = unit_vectors(rng, args.queries, args.data, hubs)
    rows: list[list[str]] = []

    def row(what: str, today: float | None, ours: float, unit: str, better_low: bool = True) -> None:
        ratio = "" if today is None or ours == 0 else f"{today / ours:,.1f}x" if better_low else f"{ours / today:,.2f}"
        fmt = (lambda v: f"{v:,.3f}") if unit == "recall" else (lambda v: f"{v:,.2f}")
        rows.append([kind, f"{n:,}", what, "" if today is None else f"{fmt(today)} {unit}", f"{fmt(ours)} {unit}",
                     ratio])

    empty = DenseIndex(DIM, kind)
    log(f"{kind}: build")
    build_s, index = timed(lambda: empty.build(ids, vectors))
    info = index.describe()
    if kind == "ivf":
        sample = vectors[np.linspace(0, n - 1, min(n, 256 * info["nlist"])).astype(np.int64)]
        train_s, _ = timed(lambda: _train_only(faiss, sample, info["nlist"]))
        row(f"IVF k-means training ({info['nlist']:,} lists, {len(sample):,} points)", None, train_s, "s")
    row(f"build ({info['state']})", None, build_s, "s")

    # today's index and its one-file change
    log(f"{kind}: today's index")
    if kind == "hnsw":
        today_change_s = build_s  # any removal rebuilt the whole graph from all vectors
        old = None
    else:
        centroids = index._centroids() if kind == "ivf" else None
        old = old_index(faiss, kind, ids, vectors, centroids)
    picks = rng.choice(ids, 11 * CHANGE, replace=False).reshape(11, CHANGE)
    replaced, fresh = picks[0], unit_vectors(rng, CHANGE, args.data, hubs)
    if old is not None:
        def in_place() -> None:
            old.remove_ids(faiss.IDSelectorBatch(replaced))
            old.add_with_ids(fresh, replaced)
        today_change_s, _ = timed(in_place, args.repeats)
    ours_change_s, _ = timed(lambda: index.with_changes(replaced, fresh, replaced), args.repeats)
    row(f"one-file change ({CHANGE} replaced){' = full rebuild today' if kind == 'hnsw' else ''}"
        f"{' (today: in place on IndexIVFFlat)' if kind == 'ivf' else ''}",
        today_change_s * 1000, ours_change_s * 1000, "ms")

    # the timed change and ten more: tombstones and delta
    live = vectors.copy()
    live[replaced] = fresh
    changed = index.with_changes(replaced, fresh, replaced)
    for picked in picks[1:]:
        new = unit_vectors(rng, CHANGE, args.data, hubs)
        changed = changed.with_changes(picked, new, picked)
        live[picked] = new
        if old is not None:
            old.remove_ids(faiss.IDSelectorBatch(picked))
            old.add_with_ids(new, picked)
    truth_before = exact_top(ids, vectors, queries, 10)
    truth_after = exact_top(ids, live, queries, 10)
    allowed = np.sort(rng.choice(ids, n // 20, replace=False))
    truth_filtered = exact_top(allowed, live[allowed], queries, 10)
    d = changed.describe()
    log(f"{kind}: searches ({d['tombstones']:,} tombstones, {d['delta']:,} in the delta)")

    def ours(snapshot: DenseIndex, where: np.ndarray | None = None) -> Callable[[np.ndarray], Any]:
        return lambda q: snapshot.search(q, 10, where)

    p50, p95, found = latency(ours(index), queries)
    row("search p50, no changes", None, p50, "ms")
    row("search p95, no changes", None, p95, "ms")
    row("recall@10, no changes", None, recall(found, truth_before), "recall", better_low=False)
    old_search = None
    if old is not None:
        faiss.omp_set_num_threads(1)
        params = faiss.SearchParametersIVF(nprobe=16) if kind == "ivf" else None
        old_search = lambda q: old.search(q, 10, params=params)  # noqa: E731
    a50, a95, found = latency(ours(changed), queries)
    t50, t95, old_found = latency(old_search, queries) if old_search else (p50, p95, None)
    row(f"search p50 after 11 changes ({d['tombstones']:,} tombstones + {d['delta']:,} delta)", t50, a50, "ms")
    row("search p95 after 11 changes", t95, a95, "ms")
    row("recall@10 after 11 changes", None if old_found is None else recall(old_found, truth_after),
        recall(found, truth_after), "recall", better_low=False)
    f50, _, found = latency(ours(changed, allowed), queries)
    row("search p50 after 11 changes, filter 5 % of ids", None, f50, "ms")
    row("recall@10 after 11 changes, filter 5 % of ids", None, recall(found, truth_filtered), "recall",
        better_low=False)
    faiss.omp_set_num_threads(args.threads)

    log(f"{kind}: merged()")
    merge_s, merged = timed(changed.merged)
    m = merged.describe()
    row(f"merged() after 11 changes (base {m['base']:,}, {m['tombstones']:,} tombstones kept)", None, merge_s, "s")
    m50, _, found = latency(ours(merged), queries)
    row("search p50 after merged()", None, m50, "ms")
    row("recall@10 after merged()", None, recall(found, truth_after), "recall", better_low=False)
    if not args.no_compact:
        log(f"{kind}: merged(compact=True)")
        compact_s, _ = timed(lambda: changed.merged(compact=True))
        row("merged(compact=True): rebuild from live rows", None, compact_s, "s")
    return rows


def _train_only(faiss: Any, sample: np.ndarray, nlist: int) -> None:
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=int, default=100_000, help="base vectors (all kinds)")
    parser.add_argument("--hnsw-vectors", type=int, help="base vectors for HNSW only (its build is slow)")
    parser.add_argument("--kinds", default="flat,hnsw,ivf")
    parser.add_argument("--data", choices=["clustered", "random"], default="clustered")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-compact", action="store_true", help="skip merged(compact=True)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import faiss

    args.threads = faiss.omp_get_max_threads()
    print(f"machine: {machine()}\nversions: {package_versions(['faiss-cpu', 'numpy'])}\n", flush=True)
    rows: list[list[str]] = []
    for kind in args.kinds.split(","):
        n = args.hnsw_vectors if kind == "hnsw" and args.hnsw_vectors else args.vectors
        rows.extend(bench_kind(kind, n, args))
    header = ["kind", "vectors", "measurement", "today", "snapshots (ours)", "today / ours"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\nload average after: {machine()['load_average']}")


if __name__ == "__main__":
    main()
