"""Incremental BM25 (jisik's LexicalIndex) against a bm25s rebuild: build, one-file write, search, merge, memory.

    python benchmarks/bm25_incremental.py                 # 100,000 chunks
    python benchmarks/bm25_incremental.py --docs 20000 --writes 10 --queries 100

The corpus is synthetic with the shape of real chunks, measured on 6,000 MS MARCO passages (Korean and
English) through the ``ko-en`` analyser: 0.144 terms per character, so ~115 terms for an 800-character
chunk (jisik's chunk size), 73% of them distinct, and rank-frequency slope -1.02. Here: chunk lengths
log-normal (median 115 terms, sigma 0.35, 1..400), terms drawn from a Zipf(1.0) law over 500,000 ranks
rendered as Korean and English strings. Queries are 2-6 terms taken from a random chunk (query words
occur in their answers, so common terms are as frequent as in real queries).

A "write" is one file of ``--file-chunks`` chunks re-ingested: those chunk ids removed and the same number
of new chunks (new ids, new terms) added. bm25s cannot change an index, so its write is a full rebuild.
Timings are medians over ``--writes`` writes / ``--queries`` queries of the best of 3 runs each, in one
process; the box is shared, so every comparison is measured in the same run. Memory is measured in a second
pass under tracemalloc (numpy reports its buffers to it): the build's peak and what the finished index keeps.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, package_versions

from jisik.store.bm25_index import LexicalIndex

VOCABULARY = 500_000
REPEATS = 3  # timings per write and per query; the fastest is kept (the box is shared and noisy)
SYLLABLES = [chr(0xAC00 + i * 97) for i in range(100)]  # spread over the Hangul block


def term_name(rank: int) -> str:
    """A readable term for a Zipf rank: odd ranks Korean-looking, even ranks English-looking."""
    if rank % 2:
        return "".join(SYLLABLES[(rank // 100**p) % 100] for p in range(3 if rank >= 10_000 else 2))
    return f"w{rank}"


def make_corpus(n_docs: int, seed: int) -> tuple[list[list[str]], np.random.Generator]:
    """``n_docs`` chunks of Zipfian terms (see the module docstring); strings are shared per term."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, VOCABULARY + 1)
    cumulative = np.cumsum(weights / weights.sum())
    lengths = np.clip(np.round(rng.lognormal(np.log(115), 0.35, n_docs)), 1, 400).astype(np.int64)
    ranks = np.minimum(np.searchsorted(cumulative, rng.random(int(lengths.sum()))), VOCABULARY - 1)
    names: dict[int, str] = {}
    words = [names.setdefault(r, term_name(r)) for r in ranks.tolist()]
    bounds = np.concatenate(([0], np.cumsum(lengths))).tolist()
    return [words[bounds[i]:bounds[i + 1]] for i in range(n_docs)], rng


def bm25s_build(corpus: Sequence[Sequence[str]]) -> Any:
    """bm25s built from token ids read row by row: what the previous LexicalIndex.build_streaming did."""
    import bm25s

    vocab: dict[str, int] = {}
    documents = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in corpus]
    model = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    with contextlib.redirect_stderr(io.StringIO()):
        model.index((documents, vocab), show_progress=False)
    return model


def bm25s_top_k(model: Any, terms: Sequence[str], k: int) -> list[tuple[int, float]]:
    """The previous LexicalIndex.top_k: bm25s scores of every chunk, positives, argpartition, sort."""
    known = [t for t in terms if t in model.vocab_dict]
    if not known:
        return []
    scores = np.asarray(model.get_scores(known), dtype=np.float32)
    positive = np.flatnonzero(scores > 0)
    if len(positive) > k:
        positive = positive[np.argpartition(-scores[positive], k - 1)[:k]]
    order = positive[np.argsort(-scores[positive], kind="stable")]
    return [(int(i), float(scores[i])) for i in order]


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def memory(function: Callable[[], Any]) -> tuple[float, float, Any]:
    """(peak MiB during ``function``, MiB still held by its result) under tracemalloc."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    result = function()
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (peak - before) / 2**20, (current - before) / 2**20, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000, help="chunks in the index")
    parser.add_argument("--file-chunks", type=int, default=100, help="chunks replaced by one write")
    parser.add_argument("--writes", type=int, default=20, help="one-file writes timed (ours)")
    parser.add_argument("--rebuilds", type=int, default=2, help="bm25s rebuilds timed")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args()

    started = time.perf_counter()
    corpus, rng = make_corpus(args.docs + args.writes * args.file_chunks, args.seed)
    # the new chunks the writes bring, as fresh string objects like an analyser's output (not the corpus's own,
    # whose hashes are cached and which the vocabulary holds: that would flatter the interning)
    spare = [[t.encode().decode() for t in doc] for doc in corpus[args.docs:]]
    corpus = corpus[:args.docs]
    postings = sum(len(set(d)) for d in corpus)
    print(f"corpus: {args.docs:,} chunks, {sum(map(len, corpus)):,} terms, {postings:,} postings "
          f"(made in {time.perf_counter() - started:.1f} s)", file=sys.stderr)
    queries = []
    for _ in range(args.queries):
        doc = corpus[int(rng.integers(len(corpus)))]
        queries.append([doc[int(i)] for i in rng.integers(0, len(doc), int(rng.integers(2, 7)))])

    ours_build, ours = timed(lambda: LexicalIndex().build_streaming(enumerate(corpus)))
    bm25s_build_s, model = timed(lambda: bm25s_build(corpus))

    # one-file writes: file f is chunks [f * n, (f + 1) * n); its new chunks get fresh ids. A snapshot never
    # changes, so each write is timed REPEATS times on the same snapshot (fresh term strings every time) and
    # the fastest kept, besides the first run; the interning of the write's terms is also timed alone.
    first_times, write_times, lookup_times, next_id, index = [], [], [], args.docs, ours
    for f in range(args.writes):
        removed = list(range(f * args.file_chunks, (f + 1) * args.file_chunks))
        docs = spare[f * args.file_chunks:(f + 1) * args.file_chunks]
        runs = []
        for _ in range(REPEATS):
            added = [(next_id + i, [t.encode().decode() for t in doc]) for i, doc in enumerate(docs)]
            seconds, result = timed(lambda before=index, added=added, removed=removed:
                                    before.with_changes(added, removed))
            runs.append(seconds)
        flat = [t.encode().decode() for doc in docs for t in doc]
        lookup_times.append(timed(lambda before=index, flat=flat: before._vocab.intern_array(flat))[0])
        first_times.append(runs[0])
        write_times.append(min(runs))
        index, next_id = result, next_id + args.file_chunks
    live = {i: d for i, d in enumerate(corpus) if i >= args.writes * args.file_chunks}
    live.update({args.docs + i: d for i, d in enumerate(spare)})
    rebuild_times = [timed(lambda: bm25s_build(list(live.values())))[0] for _ in range(args.rebuilds)]
    merge_s, merged = timed(index.merged)
    stats_before = index.stats()

    def latencies(search: Callable[[list[str]], Any]) -> list[float]:
        for q in queries[:10]:
            search(q)  # warm caches
        return [min(timed(lambda q=q: search(q))[0] for _ in range(REPEATS)) for q in queries]

    lat_ours = latencies(lambda q: ours.top_k(q, args.k, None))
    lat_bm25s = latencies(lambda q: bm25s_top_k(model, q, args.k))
    lat_delta = latencies(lambda q: index.top_k(q, args.k, None))
    lat_merged = latencies(lambda q: merged.top_k(q, args.k, None))
    agree = sum(set(i for i, _ in ours.top_k(q, args.k, None)) == set(i for i, _ in bm25s_top_k(model, q, args.k))
                for q in queries) / len(queries)

    rows: list[tuple[str, str, str, str]] = []

    def row(what: str, mine: float, theirs: float | None, unit: str = "ms") -> None:
        scale = 1000 if unit == "ms" else 1
        ratio = f"{theirs / mine:,.1f}x" if theirs else ""
        rows.append((what, f"{mine * scale:,.2f} {unit}", f"{theirs * scale:,.2f} {unit}" if theirs else "", ratio))

    row(f"build {args.docs:,} chunks", ours_build, bm25s_build_s, "s")
    row(f"one-file write ({args.file_chunks} chunks replaced), median of best of {REPEATS}",
        statistics.median(write_times), statistics.median(rebuild_times))
    row("one-file write, median of first runs", statistics.median(first_times), None)
    row("one-file write, slowest best of the run", max(write_times), max(rebuild_times))
    row("  of which: looking the write's terms up in the vocabulary (median)", statistics.median(lookup_times),
        None)
    row("top_k p50 (fresh build)", percentile(lat_ours, 50), percentile(lat_bm25s, 50))
    row("top_k p95 (fresh build)", percentile(lat_ours, 95), percentile(lat_bm25s, 95))
    row(f"top_k p50 after {args.writes} writes (delta + tombstones)", percentile(lat_delta, 50),
        percentile(lat_bm25s, 50))
    row("top_k p50 after merged()", percentile(lat_merged, 50), percentile(lat_bm25s, 50))
    row(f"merged() after {args.writes} writes", merge_s, None)
    memory_rows: dict[str, float] = {}
    if not args.no_memory:
        del model
        gc.collect()
        peak_ours, kept_ours, _ = memory(lambda: LexicalIndex().build_streaming(enumerate(corpus)))
        peak_bm25s, kept_bm25s, _ = memory(lambda: bm25s_build(corpus))
        memory_rows = {"peak_ours": peak_ours, "kept_ours": kept_ours, "peak_bm25s": peak_bm25s,
                       "kept_bm25s": kept_bm25s}
        rows.append(("build peak memory (tracemalloc)", f"{peak_ours:,.0f} MiB", f"{peak_bm25s:,.0f} MiB",
                     f"{peak_bm25s / peak_ours:,.1f}x"))
        rows.append(("index kept in memory", f"{kept_ours:,.0f} MiB", f"{kept_bm25s:,.0f} MiB",
                     f"{kept_bm25s / kept_ours:,.1f}x"))

    print(f"\n{args.docs:,} chunks, {postings:,} postings; {args.queries} queries, k={args.k}; "
          f"index after the writes: {stats_before}; top-{args.k} sets equal to bm25s's for {agree:.0%} "
          "of queries (bm25s scores in float32: ties at the cut may differ)\n")
    print("| what | jisik LexicalIndex | bm25s | bm25s / jisik |\n|---|---|---|---|")
    for what, mine, theirs, ratio in rows:
        print(f"| {what} | {mine} | {theirs} | {ratio} |")
    if args.out:
        args.out.write_text(json.dumps({
            "argv": sys.argv[1:], "machine": machine(), "versions": package_versions(["bm25s", "numpy"]),
            "rows": rows, "memory": memory_rows, "stats_after_writes": stats_before}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
