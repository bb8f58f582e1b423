"""The lexical index: exact BM25 over raw term frequencies, as immutable snapshots that change by copy.

bm25s bakes IDF and the average document length into its score matrix, so every write meant a full rebuild
(2-2.5 s at 50,000 chunks). Here the index keeps raw term frequencies in immutable segments
(:mod:`jisik.store.bm25_segments`) and computes IDF from the *live* document frequencies, N and average
length at query time, so a write costs what it touches plus a few vectorised O(N) and O(vocabulary) copies,
and scores stay equal to a fresh bm25s build of the live documents (formulas of bm25s 0.3.16, Kamphuis et
al., "Which BM25 do you mean?", ECIR 2020; tests/test_bm25_incremental.py checks every method).

A :class:`LexicalIndex` never changes once built: :meth:`LexicalIndex.with_changes` and
:meth:`LexicalIndex.merged` return new snapshots, so reader threads can keep searching the one they hold.
New documents go into a small open *delta* segment at the end; deleted rows become tombstones (a per-row
alive mask, copied on write) until :meth:`LexicalIndex.merged` folds everything into one segment.
"""

from __future__ import annotations

import itertools
import json
import shutil
import threading
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from jisik.store._files import read_header, swap_folder, write_header
from jisik.store.bm25_segments import (
    SEGMENT_FIELDS,
    BoolArray,
    FloatArray,
    Int32Array,
    IntArray,
    Segment,
    append_segment,
    check_segment,
    concat_segments,
    ranges,
    segment_from_tokens,
    segments_from_rows,
    sorted_unique,
)

IdArray = npt.NDArray[np.int64]

METHODS = ("lucene", "robertson", "atire", "bm25l", "bm25+")
# bm25l and bm25+ give a document that lacks a query term that term's weight at tf=0 and the average length
NONOCCURRENCE = ("bm25l", "bm25+")
# On-disk layout, a header field: 2 is this engine; bm25s folders (no "layout") are rejected and rebuilt.
LAYOUT = 2

# Each write appends its rows to the open delta segment (bm25_segments.append_segment, one pass over the delta's
# postings), so the delta's size bounds a write's cost: at 4,096 rows (~400k postings) appending a 100-row write
# takes ~3.4 ms on the 2-core dev box (2.7 ms at 2,048 rows), a sixth of the 20 ms budget for a one-file write.
# A full delta is sealed and a new one opened.
SEAL_ROWS = 4_096
# merged() is worth it once the rows outside the base segment pass max(MERGE_MIN_ROWS, MERGE_FRACTION x base),
# tombstones pass the same fraction of all rows, or there are more than MAX_SEGMENTS segments. 10% bounds the
# postings a query scans in vain (tombstones) and the per-segment overhead (a search per query term, a few µs),
# and merging when the delta tier reaches 10% of the base makes merge work geometric: each posting is copied
# O(1) times on average. The minimums keep tiny indexes from merging after every write: 4,096 delta rows are
# what one open delta holds anyway, and 1,024 dead rows waste at most ~1,024 rows' postings per query term.
MERGE_MIN_ROWS = 4_096
MERGE_MIN_TOMBSTONES = 1_024
MERGE_FRACTION = 0.10
MAX_SEGMENTS = 8
# top_k first takes the k-th best score among the documents of the rarest query term with at least this many
# documents, then only looks at rows scoring at least that: it skips partitioning the tens of thousands of
# positive rows a common query term gives (np.partition slows down ~40x on arrays that are mostly ties).
PROBE_MIN = 32


def idf(method: str, df: npt.NDArray[np.integer], n: int) -> FloatArray:
    """IDF of terms with document frequencies ``df`` among ``n`` documents, as bm25s computes it.

    >>> idf("lucene", np.array([1, 3]), 3).round(4).tolist()
    [0.9808, 0.1335]
    >>> idf("robertson", np.array([1, 3]), 3).round(4).tolist()  # floored at log(1) = 0
    [0.5108, 0.0]
    """
    df = np.asarray(df, dtype=np.float64)
    if method == "robertson":
        return np.asarray(np.log(np.maximum((n - df + 0.5) / (df + 0.5), 1.0)))
    if method == "lucene":
        return np.asarray(np.log(1 + (n - df + 0.5) / (df + 0.5)))
    if method == "atire":
        return np.asarray(np.log(n / df))
    if method == "bm25l":
        return np.asarray(np.log((n + 1) / (df + 0.5)))
    if method == "bm25+":
        return np.asarray(np.log((n + 1) / df))
    raise ValueError(f"unknown BM25 method {method!r}; choose one of {', '.join(METHODS)}")


def term_weight(method: str, tf: npt.ArrayLike, dn: npt.ArrayLike, k1: float, delta: float) -> FloatArray:
    """The term-frequency part of BM25 for counts ``tf`` in documents whose normaliser is ``dn``.

    ``dn`` is :func:`normaliser` of the document's length: ``k1 * (1 - b + b * len / avgdl)``, without the
    ``k1`` factor for bm25l. A document of average length gets ``tf / (k1 + tf)`` (lucene):

    >>> float(term_weight("lucene", 2.0, 1.2, 1.2, 0.5))
    0.625
    >>> float(term_weight("bm25+", 0.0, 1.2, 1.2, 0.5))  # bm25+ adds delta even where the term is absent
    0.5
    """
    return _weigh_into(method, np.asarray(tf), np.array(dn, dtype=np.float64, ndmin=1), k1, delta).reshape(
        np.broadcast(np.asarray(tf), np.asarray(dn)).shape)


def _weigh_into(method: str, tf: npt.NDArray[Any], scratch: FloatArray, k1: float, delta: float) -> FloatArray:
    """:func:`term_weight` computed in place in ``scratch`` (which holds ``dn`` and is overwritten).

    The query loop calls this on a freshly gathered ``dn[rows]``: two or three passes over the postings
    instead of six allocations, and the uint16 counts are cast inside the ufuncs.
    """
    if method in ("robertson", "lucene"):
        scratch += tf
        np.divide(tf, scratch, out=scratch)
        return scratch
    if method == "atire":
        scratch += tf
        np.divide(tf * (k1 + 1), scratch, out=scratch)
        return scratch
    if method == "bm25l":
        np.divide(tf, scratch, out=scratch)  # c = tf / dn
        scratch += delta
        numerator = scratch * (k1 + 1)
        scratch += k1
        np.divide(numerator, scratch, out=scratch)
        return scratch
    if method == "bm25+":
        scratch += tf
        np.divide(tf * (k1 + 1), scratch, out=scratch)
        scratch += delta
        return scratch
    raise ValueError(f"unknown BM25 method {method!r}; choose one of {', '.join(METHODS)}")


def normaliser(method: str, lengths: npt.ArrayLike, avgdl: float, k1: float, b: float) -> FloatArray:
    """Per-document length normaliser, in bm25s's order of operations (``(1 - b) + b * len / avgdl``).

    >>> normaliser("lucene", [0, 4, 8], 4.0, 1.2, 0.75).round(6).tolist()
    [0.3, 1.2, 2.1]
    """
    norm = (1 - b) + b * np.asarray(lengths, dtype=np.float64) / avgdl
    return np.asarray(norm if method == "bm25l" else k1 * norm)


class _Vocabulary:
    """Term -> id, append-only and shared by every snapshot of one index lineage.

    A snapshot only knows the ids below the length of its own ``df`` array, so terms a later snapshot adds
    are invisible to it. Writers intern under a lock; readers only call :meth:`get` (a plain dict lookup,
    atomic in CPython), so they never wait. The ids are the insertion order of the dict.
    """

    def __init__(self, terms: Iterable[str] = ()) -> None:
        self._ids: defaultdict[str, int] = defaultdict()
        self._ids.default_factory = self._ids.__len__  # a new term gets the next id
        self._lock = threading.Lock()
        for term in terms:
            self._ids[term]

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, term: str) -> int | None:
        return self._ids.get(term)

    def intern(self, terms: Sequence[str]) -> list[int]:
        """Ids of ``terms``, giving new terms the next ids. One C-level dict lookup a term: ``map`` over the
        defaultdict's ``__getitem__`` (this is most of the time of a build; bm25s's own loop was slower)."""
        with self._lock:
            return list(map(self._ids.__getitem__, terms))

    def intern_array(self, terms: Sequence[str]) -> Int32Array:
        """:meth:`intern` straight into an int32 array (no list of Python ints in between)."""
        with self._lock:
            return np.fromiter(map(self._ids.__getitem__, terms), dtype=np.int32, count=len(terms))

    def terms(self, n: int) -> list[str]:
        with self._lock:
            return list(itertools.islice(self._ids, n))


class LexicalIndex:
    """One immutable BM25 snapshot; ``LexicalIndex()`` is empty, :meth:`build` fills a fresh one.

    ``method`` is one of :data:`METHODS` with the formulas of bm25s; ``delta`` only matters for bm25l and
    bm25+. Scores are float64. Rows are ordered by when they were added (a replaced chunk moves to the end);
    :attr:`ids` lists the live chunk ids in that order and :meth:`scores` follows it.
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75, method: str = "lucene", delta: float = 0.5) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown BM25 method {method!r}; choose one of {', '.join(METHODS)}")
        self.k1, self.b, self.method, self.delta = float(k1), float(b), method, float(delta)
        self._filled = False
        self._vocab = _Vocabulary()
        self._lineage = id(self._vocab)
        empty = np.zeros(0, dtype=np.int64)
        self._install((), np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int32), n_live=0, total_length=0,
                      sorted_ids=empty, sorted_rows=empty, next_seq=0, open_delta=False)

    # -- construction -------------------------------------------------------------------------------------
    def build(self, ids: npt.ArrayLike, terms: Sequence[Sequence[str]]) -> LexicalIndex:
        """Fill this fresh index with ``terms[i]`` as chunk ``ids[i]`` and return it (not a copy).

        Only an index that was never filled can be built: a published snapshot never changes.
        """
        return self.build_streaming(zip(np.asarray(ids, dtype=np.int64).tolist(), terms, strict=True))

    def build_streaming(self, rows: Iterable[tuple[int, Sequence[str]]]) -> LexicalIndex:
        """Fill this fresh index from ``(chunk id, terms)`` rows read one at a time, and return it.

        Terms are interned to int32 ids as they arrive and each batch of rows becomes a compact segment, so
        no list of strings outlives its row; the batches are concatenated without a sort at the end.
        """
        if self._filled:
            raise ValueError("build() fills a fresh LexicalIndex; use with_changes() to change a built one")
        batches = segments_from_rows(rows, self._vocab.intern, first_seq=0)
        base = batches[0] if len(batches) == 1 else concat_segments(batches)
        del batches
        args, kwargs = _rebuilt_state([base] if base.n_rows else [], np.ones(base.n_rows, dtype=bool),
                                      len(self._vocab), open_delta=False)
        self._install(*args, **kwargs)
        self._filled = True
        return self

    def _install(self, segments: tuple[Segment, ...], alive: BoolArray, df: npt.NDArray[np.int32], *,
                 n_live: int, total_length: int, sorted_ids: IdArray, sorted_rows: IdArray, next_seq: int,
                 open_delta: bool) -> None:
        """Set every field and the per-snapshot derived arrays (row ids, length normalisers). Called once."""
        self._segments, self._alive, self._df = segments, alive, df
        self._n_live, self._total_length = n_live, total_length
        self._sorted_ids, self._sorted_rows = sorted_ids, sorted_rows
        self._next_seq, self._open_delta = next_seq, open_delta
        self._dead = np.flatnonzero(~alive)
        self._offsets = np.concatenate(([0], np.cumsum([s.n_rows for s in segments], dtype=np.int64)))
        self._row_ids = np.concatenate([np.zeros(0, dtype=np.int64), *[s.ids for s in segments]])
        self._lengths = lengths = np.concatenate([np.zeros(0, dtype=np.int64), *[s.lengths for s in segments]])
        # all live documents empty: no term has a live df, so nothing scores; 1.0 only avoids 0/0
        self._avgdl = total_length / n_live if total_length else 1.0
        self._dn = normaliser(self.method, lengths, self._avgdl, self.k1, self.b)
        self._dn_average = float(normaliser(self.method, [self._avgdl], self._avgdl, self.k1, self.b)[0])

    def _derive(self, *args: Any, **kwargs: Any) -> LexicalIndex:
        """A new filled snapshot with this one's parameters and vocabulary, and the given state."""
        other = LexicalIndex.__new__(LexicalIndex)
        other.k1, other.b, other.method, other.delta = self.k1, self.b, self.method, self.delta
        other._filled, other._vocab, other._lineage = True, self._vocab, self._lineage
        other._install(*args, **kwargs)
        return other

    # -- changes ----------------------------------------------------------------------------------------
    def with_changes(self, added: Sequence[tuple[int, Sequence[str]]], removed: Sequence[int]) -> LexicalIndex:
        """A new snapshot without the chunks ``removed`` and with ``added`` ``(chunk id, terms)``; self unchanged.

        Removals come first, so removing and adding one id replaces it. Unknown removed ids are ignored;
        adding an id that is still live raises ValueError.
        """
        alive, sorted_ids, sorted_rows = self._alive, self._sorted_ids, self._sorted_rows
        n_live, total_length = self._n_live, self._total_length
        new: Segment | None = None
        if added:
            new_ids = np.fromiter((int(chunk_id) for chunk_id, _ in added), dtype=np.int64, count=len(added))
            if len(sorted_unique(new_ids)) != len(new_ids):
                raise ValueError("with_changes() adds one chunk id twice")
            tokens = self._vocab.intern_array(list(itertools.chain.from_iterable(terms for _, terms in added)))
            new = segment_from_tokens(tokens, [len(terms) for _, terms in added], new_ids, first_seq=self._next_seq)
        gone = np.asarray(sorted_unique(np.asarray(list(removed), dtype=np.int64)), dtype=np.int64)
        found = _positions(sorted_ids, gone)
        if new is None and not len(found):
            return self
        # one copy of df, with room for the terms this write interned
        df = np.concatenate((self._df, np.zeros(max(0, len(self._vocab) - len(self._df)), dtype=np.int32)))
        if len(found):
            rows = sorted_rows[found]
            sorted_ids, sorted_rows = np.delete(sorted_ids, found), np.delete(sorted_rows, found)
            alive = alive.copy()
            alive[rows] = False
            terms, counts = self._row_term_counts(rows)
            df[terms] -= counts.astype(np.int32)
            n_live -= len(rows)
            total_length -= int(self._lengths[rows].sum())
        segments, open_delta, next_seq = self._segments, self._open_delta, self._next_seq
        if new is not None:
            clash = _positions(sorted_ids, np.asarray(new.ids, dtype=np.int64))
            if len(clash):
                raise ValueError(f"chunk id {int(sorted_ids[clash[0]])} is already in the BM25 index; remove it "
                                 "in the same with_changes() call to replace it")
            df[new.terms] += np.diff(new.indptr).astype(np.int32)
            n_live += new.n_rows
            total_length += int(new.lengths.sum())
            first_row = int(self._offsets[-1])
            if open_delta and segments[-1].n_rows + new.n_rows <= SEAL_ROWS:
                segments = (*segments[:-1], append_segment(segments[-1], new))  # keeps row numbers
            else:
                segments = (*segments, new)
            open_delta, next_seq = True, next_seq + new.n_rows
            alive = np.concatenate([alive, np.ones(new.n_rows, dtype=bool)])
            order = np.argsort(new.ids, kind="stable")
            at = np.searchsorted(sorted_ids, new.ids[order])
            sorted_ids = np.insert(sorted_ids, at, new.ids[order])
            sorted_rows = np.insert(sorted_rows, at, first_row + order)
        return self._derive(segments, alive, df, n_live=n_live, total_length=total_length, sorted_ids=sorted_ids,
                            sorted_rows=sorted_rows, next_seq=next_seq, open_delta=open_delta)

    def _locate(self, rows: IdArray) -> list[tuple[Segment, IdArray]]:
        """Global rows grouped by segment, as local row numbers."""
        which = np.searchsorted(self._offsets, rows, side="right") - 1
        return [(segment, rows[which == i] - self._offsets[i]) for i, segment in enumerate(self._segments)
                if np.any(which == i)]

    def _row_term_counts(self, rows: IdArray) -> tuple[IntArray, IntArray]:
        """The distinct terms of ``rows`` and how many of the rows contain each (the df they contribute)."""
        parts = [np.zeros(0, dtype=np.int32)]
        for segment, local in self._locate(rows):
            starts = segment.row_ptr[local]
            parts.append(segment.row_terms[ranges(starts, segment.row_ptr[local + 1] - starts)])
        terms, counts = np.unique(np.concatenate(parts), return_counts=True)
        return terms.astype(np.int64), counts.astype(np.int64)

    # -- merging ----------------------------------------------------------------------------------------
    def needs_merge(self) -> bool:
        """Whether the delta tier, the tombstones or the segment count passed the thresholds above."""
        if not self._segments:
            return False
        rows = int(self._offsets[-1])
        base = self._segments[0].n_rows
        return (rows - base > max(MERGE_MIN_ROWS, MERGE_FRACTION * base)
                or rows - self._n_live > max(MERGE_MIN_TOMBSTONES, MERGE_FRACTION * rows)
                or len(self._segments) > MAX_SEGMENTS)

    def merged(self) -> LexicalIndex:
        """An equal-scoring snapshot with one segment and no tombstones, built from memory; self unchanged.

        Meant for a background thread. Writes published meanwhile are carried over by :meth:`rebased`.
        """
        keep = [self._alive[self._offsets[i]:self._offsets[i + 1]] for i in range(len(self._segments))]
        base = concat_segments(self._segments, keep) if self._segments else None
        new_row = np.cumsum(self._alive, dtype=np.int64) - 1
        segments = (base,) if base is not None and base.n_rows else ()
        return self._derive(segments, np.ones(self._n_live, dtype=bool), self._df, n_live=self._n_live,
                            total_length=self._total_length, sorted_ids=self._sorted_ids,
                            sorted_rows=new_row[self._sorted_rows], next_seq=self._next_seq, open_delta=False)

    def rebased(self, merged: LexicalIndex) -> LexicalIndex:
        """This snapshot's documents laid out on ``merged``, the :meth:`merged` of one of its ancestors.

        The rows that ancestor had are taken from ``merged`` (with this snapshot's later deletions as
        tombstones); the rows added since are copied into a new delta. Scores equal this snapshot's.
        Raises ValueError if ``merged`` does not come from this snapshot's history.
        """
        if merged._lineage != self._lineage or merged._next_seq > self._next_seq:
            raise ValueError("rebased() needs the merged() of an earlier snapshot of this index")
        seqs = np.concatenate([np.zeros(0, dtype=np.int64), *[s.seqs for s in self._segments]])
        cut = int(np.searchsorted(seqs, merged._next_seq))  # rows before ``cut`` existed in the ancestor
        old_live = np.flatnonzero(self._alive[:cut])
        merged_seqs = np.concatenate([np.zeros(0, dtype=np.int64), *[s.seqs for s in merged._segments]])
        at = np.searchsorted(merged_seqs, seqs[old_live])
        if len(at) and (at.max() >= len(merged_seqs) or np.any(merged_seqs[at] != seqs[old_live])):
            raise ValueError("rebased() needs the merged() of an earlier snapshot of this index")
        tail: list[Segment] = []
        if cut < len(seqs):
            parts = [(i, s) for i, s in enumerate(self._segments) if self._offsets[i + 1] > cut]
            keep = [np.arange(self._offsets[i], self._offsets[i + 1]) >= cut for i, _ in parts]
            tail = [concat_segments([s for _, s in parts], keep)]
        alive = np.zeros(len(merged_seqs), dtype=bool)
        alive[at] = True
        remap = np.full(len(seqs), -1, dtype=np.int64)
        remap[old_live] = at
        remap[cut:] = len(merged_seqs) + np.arange(len(seqs) - cut)
        return self._derive((*merged._segments, *tail), np.concatenate([alive, self._alive[cut:]]), self._df,
                            n_live=self._n_live, total_length=self._total_length, sorted_ids=self._sorted_ids,
                            sorted_rows=remap[self._sorted_rows], next_seq=self._next_seq,
                            open_delta=bool(tail))

    # -- reading ------------------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Live documents."""
        return self._n_live

    @property
    def ids(self) -> IdArray:
        """Live chunk ids in row order (the order of :meth:`scores`)."""
        return self._row_ids[self._alive]

    def stats(self) -> dict[str, int]:
        """Counts for ``jisik status``: documents, segments, tombstones, delta rows, live terms."""
        rows = int(self._offsets[-1])
        base = self._segments[0].n_rows if self._segments else 0
        return {"documents": self._n_live, "segments": len(self._segments), "tombstones": rows - self._n_live,
                "delta": rows - base, "terms": int(np.count_nonzero(self._df))}

    def _query_terms(self, terms: Sequence[str]) -> tuple[Int32Array, IntArray]:
        """Distinct known query term ids (live df > 0), ascending, and how often each occurs in the query."""
        n_known, df = len(self._df), self._df
        # "" is never a query term (the previous bm25s index used it as its empty-document placeholder)
        found = Counter(i for i in map(self._vocab.get, filter(None, terms))
                        if i is not None and i < n_known and df[i] > 0)
        pairs = sorted(found.items())
        return (np.fromiter((i for i, _ in pairs), dtype=np.int32, count=len(pairs)),
                np.fromiter((c for _, c in pairs), dtype=np.int64, count=len(pairs)))

    def _row_scores(self, terms: Sequence[str]) -> tuple[FloatArray, IdArray] | None:
        """Score of every row (dead rows included, to be masked), or None when no query term is known.

        Also the rows of the rarest query term with at least ``PROBE_MIN`` live documents (empty if none):
        top_k's cheap lower bound for the k-th best score.
        """
        qids, multiplicity = self._query_terms(terms)  # int32, as segment.terms: searchsorted needs no copy
        if not len(qids):
            return None
        df = self._df[qids]
        weights = (idf(self.method, df, self._n_live) * multiplicity).tolist()
        common_enough = np.flatnonzero(df >= PROBE_MIN)
        probe_term = int(common_enough[np.argmin(df[common_enough])]) if len(common_enough) else -1
        probe: list[npt.NDArray[np.integer]] = [np.zeros(0, dtype=np.int64)]
        scores = np.zeros(int(self._offsets[-1]), dtype=np.float64)
        absent = 0.0
        if self.method in NONOCCURRENCE:  # every document first gets each term's tf=0 weight ...
            absent = float(term_weight(self.method, 0.0, self._dn_average, self.k1, self.delta))
            scores += sum(w * absent for w in weights)
        for segment, offset in zip(self._segments, self._offsets.tolist(), strict=False):
            if not len(segment.terms):
                continue
            at = np.minimum(np.searchsorted(segment.terms, qids), len(segment.terms) - 1)
            for j in np.flatnonzero(segment.terms[at] == qids).tolist():
                start, end = int(segment.indptr[at[j]]), int(segment.indptr[at[j] + 1])
                rows = segment.rows[start:end] + offset if offset else segment.rows[start:end]
                weight = _weigh_into(self.method, segment.tf[start:end], self._dn[rows], self.k1, self.delta)
                if absent:
                    weight -= absent  # ... replaced by its tf weight where present
                weight *= weights[j]
                np.add.at(scores, rows, weight)
                if j == probe_term:
                    probe.append(rows)
        return scores, np.concatenate(probe).astype(np.int64)

    def scores(self, terms: Sequence[str]) -> FloatArray:
        """BM25 score of every live chunk for one query, in :attr:`ids` order (zeros for unknown terms)."""
        scored = self._row_scores(terms)
        return np.zeros(self._n_live) if scored is None else scored[0][self._alive]

    def document_frequency(self, term: str) -> int:
        """How many live chunks contain ``term`` (0 for a term the index has never seen)."""
        i = self._vocab.get(term)
        return int(self._df[i]) if i is not None and i < len(self._df) else 0

    def scores_of(self, terms: Sequence[str], chunk_ids: Sequence[int]) -> list[float]:
        """BM25 scores of these chunks for one query (0.0 for a chunk without a query term, or not in the index).

        Fusion needs a score for every candidate, also those only the dense retriever proposed: the
        score a chunk would have had, not the 0 its absence from BM25's top list suggests.
        """
        scored = self._row_scores(terms)
        if scored is None or not chunk_ids or not len(self._sorted_ids):
            return [0.0] * len(chunk_ids)
        row_scores = scored[0]
        wanted = np.asarray(chunk_ids, dtype=self._sorted_ids.dtype)
        at = np.minimum(np.searchsorted(self._sorted_ids, wanted), len(self._sorted_ids) - 1)
        rows = self._sorted_rows[at]
        found = (self._sorted_ids[at] == wanted) & self._alive[rows]
        return np.where(found, row_scores[rows], 0.0).tolist()  # type: ignore[no-any-return]

    def top_k(self, terms: Sequence[str], k: int, allowed: IdArray | None) -> list[tuple[int, float]]:
        """The ``k`` best ``(chunk id, score)`` with a positive score, best first, ties by chunk id.

        ``allowed`` restricts the result to those chunk ids.
        """
        scored = self._row_scores(terms)
        if scored is None or k <= 0:
            return []
        row_scores, probe = scored
        row_scores[self._dead] = 0.0  # our own fresh array: tombstones out in O(tombstones)
        if allowed is not None:
            probe = probe[np.isin(self._row_ids[probe], allowed)]
        floor = 0.0
        if len(probe) >= k:  # the k-th best score of some allowed rows bounds the k-th best of all from below
            values = row_scores[probe]
            floor = float(np.partition(values, len(values) - k)[len(values) - k])
        candidates = np.flatnonzero(row_scores >= floor if floor > 0 else row_scores > 0)
        if allowed is not None:
            candidates = candidates[np.isin(self._row_ids[candidates], allowed)]
        if len(candidates) > k:
            values = row_scores[candidates]
            kth = np.partition(values, len(values) - k)[len(values) - k]
            candidates = candidates[values >= kth]  # ties at the k-th score all stay, for the id tie-break
        order = np.lexsort((self._row_ids[candidates], -row_scores[candidates]))[:k]
        return [(int(self._row_ids[i]), float(row_scores[i])) for i in candidates[order]]

    # -- files ----------------------------------------------------------------------------------------------
    def save(self, folder: Path, generation: int) -> None:
        """Write the snapshot as it is (segments, tombstones, vocabulary) into ``folder``, atomically."""
        staging = folder.with_name(folder.name + ".tmp")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        vocabulary = json.dumps(self._vocab.terms(len(self._df)), ensure_ascii=False).encode("utf-8")
        (staging / "vocabulary.json").write_bytes(vocabulary)
        np.save(staging / "alive.npy", self._alive, allow_pickle=False)
        checksums = {"vocabulary.json": zlib.crc32(vocabulary), "alive.npy": _crc([self._alive])}
        for i, segment in enumerate(self._segments):
            arrays = {name: getattr(segment, name) for name in SEGMENT_FIELDS}
            np.savez(staging / f"segment-{i}.npz", allow_pickle=False, **arrays)
            checksums[f"segment-{i}.npz"] = _crc(arrays.values())
        write_header(staging, "bm25", generation, layout=LAYOUT, k1=self.k1, b=self.b, method=self.method,
                     delta=self.delta, count=self._n_live, rows=len(self._alive), terms=len(self._df),
                     segments=len(self._segments), next_seq=self._next_seq, open_delta=self._open_delta,
                     checksums=checksums)
        swap_folder(staging, folder)

    def load(self, folder: Path, generation: int) -> bool:
        """Fill this fresh index from ``folder`` if it holds this generation, layout and parameters.

        Returns False (and leaves the index empty) for a missing, damaged, old-format or mismatched folder.
        """
        if self._filled:
            raise ValueError("load() fills a fresh LexicalIndex")
        header = read_header(folder, "bm25")
        if not header or header.get("layout") != LAYOUT or header.get("generation") != generation or any(
                header.get(key) != value for key, value in
                (("k1", self.k1), ("b", self.b), ("method", self.method), ("delta", self.delta))):
            return False
        try:
            state = _read_folder(folder, header)
        except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, zipfile.BadZipFile):
            return False
        if state is None:
            return False
        vocabulary, segments, alive = state
        try:
            args, kwargs = _rebuilt_state(segments, alive, len(vocabulary), open_delta=bool(header["open_delta"]),
                                          next_seq=int(header["next_seq"]))
        except ValueError:  # a chunk id live twice: damaged
            return False
        self._vocab = _Vocabulary(vocabulary)
        self._lineage = id(self._vocab)
        self._install(*args, **kwargs)
        self._filled = True
        return True


def _rebuilt_state(segments: Sequence[Segment], alive: BoolArray, n_terms: int, *, open_delta: bool,
                   next_seq: int | None = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments of ``LexicalIndex._install`` for segments whose df, totals and id index are not known yet
    (build, load): O(postings) once. Raises ValueError if a chunk id is live twice."""
    df = np.zeros(n_terms, dtype=np.int64)
    total_length, offset = 0, 0
    for segment in segments:
        mask = alive[offset:offset + segment.n_rows]
        live = np.flatnonzero(mask)
        starts = segment.row_ptr[live]
        df += np.bincount(segment.row_terms[ranges(starts, segment.row_ptr[live + 1] - starts)], minlength=n_terms)
        total_length += int(segment.lengths[mask].sum())
        offset += segment.n_rows
    row_ids = np.concatenate([np.zeros(0, dtype=np.int64), *[s.ids for s in segments]])
    live_rows = np.flatnonzero(alive)
    order = np.argsort(row_ids[live_rows], kind="stable")
    sorted_ids, sorted_rows = row_ids[live_rows][order], live_rows[order].astype(np.int64)
    if len(sorted_ids) and np.any(sorted_ids[1:] == sorted_ids[:-1]):
        duplicate = int(sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]][0])
        raise ValueError(f"chunk id {duplicate} appears twice in the BM25 index")
    last_seq = int(segments[-1].seqs[-1]) + 1 if segments and segments[-1].n_rows else 0
    return (tuple(segments), alive, df.astype(np.int32)), {
        "n_live": len(live_rows), "total_length": total_length, "sorted_ids": sorted_ids,
        "sorted_rows": sorted_rows, "next_seq": last_seq if next_seq is None else next_seq,
        "open_delta": open_delta}


def _read_folder(folder: Path, header: dict[str, Any]) -> tuple[list[str], list[Segment], BoolArray] | None:
    """The vocabulary, segments and alive mask of a saved index, or None if anything does not fit."""
    checksums = header["checksums"]
    raw = (folder / "vocabulary.json").read_bytes()
    vocabulary = json.loads(raw.decode("utf-8"))
    if zlib.crc32(raw) != checksums["vocabulary.json"] or not isinstance(vocabulary, list) \
            or len(vocabulary) != header["terms"] or len(set(vocabulary)) != len(vocabulary) \
            or not all(isinstance(t, str) for t in vocabulary):
        return None
    alive = np.load(folder / "alive.npy", allow_pickle=False)
    if alive.dtype != np.bool_ or alive.shape != (header["rows"],) or _crc([alive]) != checksums["alive.npy"]:
        return None
    segments = []
    for i in range(int(header["segments"])):
        name = f"segment-{i}.npz"
        with np.load(folder / name, allow_pickle=False) as data:
            arrays = {field: data[field] for field in SEGMENT_FIELDS}
        segment = Segment(**arrays)
        if _crc(arrays.values()) != checksums[name] or not check_segment(segment, len(vocabulary)):
            return None
        segments.append(segment)
    seqs = np.concatenate([np.zeros(0, dtype=np.int64), *[s.seqs for s in segments]])
    if sum(s.n_rows for s in segments) != len(alive) or int(alive.sum()) != header["count"] \
            or np.any(np.diff(seqs) <= 0) or (len(seqs) and seqs[-1] >= header["next_seq"]):
        return None
    return vocabulary, segments, alive


def _crc(arrays: Iterable[npt.NDArray[Any]]) -> int:
    """CRC-32 over the bytes of some arrays, in order (a damaged file must not load as a wrong index)."""
    value = 0
    for array in arrays:
        value = zlib.crc32(np.ascontiguousarray(array).data.cast("B"), value)
    return value


def _positions(sorted_values: IdArray, wanted: IdArray) -> IdArray:
    """Indexes in ``sorted_values`` of the ``wanted`` values it holds (the others are skipped).

    >>> _positions(np.array([2, 5, 9]), np.array([1, 5, 9, 12])).tolist()
    [1, 2]
    """
    at = np.searchsorted(sorted_values, wanted)
    inside = at < len(sorted_values)
    at = at[inside]
    return np.asarray(at[sorted_values[at] == wanted[inside]], dtype=np.int64)
