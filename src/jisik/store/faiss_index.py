"""The dense vector index: immutable FAISS snapshots (flat, HNSW or IVF over inner product of unit vectors).

A :class:`DenseIndex` never changes once built, so any number of threads may search one while the store
prepares the next. A snapshot is three parts:

* the **base**, one big FAISS index (no id map: FAISS row ``p`` is chunk ``base.ids[p]``), shared
  read-only by every snapshot derived from it;
* **tombstones**, the base rows removed since, filtered out at search time by an
  ``IDSelectorBitmap`` (FAISS's HNSW cannot remove vectors at all, and removing from flat/IVF in place
  would mutate an index other threads are reading);
* the **delta**, vectors added since, a small float32 matrix searched exactly with one matmul.

``with_changes`` makes a new snapshot in O(delta + base / 8) without touching the base; ``merged`` folds
delta and tombstones into a fresh base, in the background, when ``needs_merge`` says it pays.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from jisik._lazy import require
from jisik.embed.base import Vectors
from jisik.errors import StoreError
from jisik.store._files import read_header, swap_folder, write_header

IdArray = npt.NDArray[np.int64]

KINDS = ("flat", "hnsw", "ivf")

# Below this many queries, FAISS searches on one OpenMP thread. For a single query FAISS is slower
# *and* burns more CPU with several threads: one query against 100,000 x 384 flat vectors took
# 68 ms wall / 46 ms CPU with 2 threads and 11 ms / 7 ms with 1 (benchmarks/speed.py, 2-core box,
# docs/benchmarks-speed.md); 8 queries: 76 vs 55 ms. 20 is FAISS's own switch to BLAS
# (``distance_compute_blas_threshold``), where threads pay off.
SINGLE_THREAD_BELOW = 20

# A delta is searched by brute force and copied by every ``with_changes``. At 2,048 x 384 that is
# 0.8 M multiply-adds per query (well under a millisecond) and a 3 MiB copy per change, both small
# next to a base search; past 5 % of the base the delta starts to cost a noticeable share of a flat
# scan, so a merge is due at max(2,048, 5 % of base) delta vectors (benchmarks/dense_incremental.py).
DELTA_MIN = 2_048
DELTA_FRACTION = 0.05
# Tombstoned rows still cost memory and, in HNSW and IVF, search effort (efSearch / nprobe are raised
# by base / live to get k live results back): at 10 % that is at most 11 % more work and 10 % wasted
# memory before a merge rebuilds them away.
TOMBSTONE_FRACTION = 0.10
# FAISS's k-means warns below 39 training points per centroid (``Clustering::train``) and samples
# down to 256 per centroid (``max_points_per_centroid``), so we never hand it more than that.
IVF_POINTS_PER_LIST = 39
IVF_MAX_TRAIN_PER_LIST = 256
# IVF only beats an exact scan once a query probes a small share of the lists: with nlist >= 4 x nprobe
# it reads at most a quarter of the vectors. Below that the base stays flat (exact, and as fast).
IVF_LISTS_PER_PROBE = 4
# The default nlist grows as 4 x sqrt(n) (FAISS guidelines: 4-16 x sqrt(n)), and per-query IVF cost is
# ~ nlist + nprobe x n / nlist. After 4x growth on the old centroids a query costs 25 % more than with
# retrained ones (20 vs 16 sqrt(n0) at nprobe 16); retraining at every 4x makes the total training work
# a geometric series, at most 4/3 of training once on the final corpus. Shrinking 4x retrains too: the
# probed lists then hold a quarter of the vectors they did (recall drops), and the 4x band on both sides
# keeps a corpus hovering around the training minimum from flipping between flat and IVF.
RETRAIN_GROWTH = 4
# Rows copied into a new FAISS index per ``add`` during a rebuild: 16,384 x 384 floats = 24 MiB of
# scratch instead of a second copy of the whole corpus.
MERGE_CHUNK = 16_384
# FAISS pads missing results with id -1 and this score (-FLT_MAX) for inner product.
PAD_SCORE = float(np.finfo(np.float32).min)
# On-disk layout of this module (base + tombstones + delta); older folders are rebuilt from SQLite.
LAYOUT = "snapshot-1"


# -- small pure functions ---------------------------------------------------------------------------
def ivf_lists(n: int, *, nlist: int | None = None, nprobe: int = 16) -> int:
    """Inverted lists to train for ``n`` vectors, or 0 while there are too few to train.

    Default ``min(4 sqrt(n), n / 39)``, and at least ``4 x nprobe`` lists; an explicit ``nlist`` trains
    once there are 39 points per list.

    >>> ivf_lists(2_495), ivf_lists(2_496), ivf_lists(10_000), ivf_lists(100_000)
    (0, 64, 256, 1264)
    >>> ivf_lists(500, nlist=10), ivf_lists(389, nlist=10)
    (10, 0)
    """
    if nlist:
        return nlist if n >= IVF_POINTS_PER_LIST * nlist else 0
    lists = min(int(4 * math.sqrt(n)), n // IVF_POINTS_PER_LIST)
    return lists if lists >= IVF_LISTS_PER_PROBE * nprobe else 0


def ivf_min_train(*, nlist: int | None = None, nprobe: int = 16) -> int:
    """The smallest vector count :func:`ivf_lists` trains on.

    >>> ivf_min_train(), ivf_min_train(nprobe=4), ivf_min_train(nlist=100)
    (2496, 624, 3900)
    """
    if nlist:
        return IVF_POINTS_PER_LIST * nlist
    lists = IVF_LISTS_PER_PROBE * nprobe
    n = max(IVF_POINTS_PER_LIST * lists, math.ceil((lists / 4) ** 2))
    while not ivf_lists(n, nprobe=nprobe):  # int() rounding of 4 sqrt(n): at most a few steps
        n += 1
    return n


def hnsw_ef(base: int, candidates: int, k: int, ef_search: int, m: int) -> int:
    """efSearch for an HNSW search where only ``candidates`` of ``base`` rows may be returned, or 0
    when an exact scan of the candidates is cheaper.

    FAISS's HNSW walks tombstoned and filtered-out nodes too and keeps ~efSearch candidates, so to get
    k allowed results it needs efSearch scaled by base / candidates. Such a search computes about
    efSearch x 2M distances (2M neighbours per node at level 0); an exact scan computes one per
    candidate, so exact wins when candidates <= efSearch x 2M.

    >>> hnsw_ef(100_000, 100_000, 10, 128, 32), hnsw_ef(100_000, 90_000, 10, 128, 32)
    (128, 143)
    >>> hnsw_ef(100_000, 5_000, 10, 128, 32), hnsw_ef(100, 100, 10, 128, 32)
    (0, 0)
    """
    ef = math.ceil(max(ef_search, k) * base / max(candidates, 1))
    return 0 if ef >= base or candidates <= ef * 2 * m else ef


def ivf_probes(base: int, candidates: int, nprobe: int, nlist: int) -> int:
    """nprobe scaled by base / candidates, so the probed lists hold about as many allowed vectors as an
    unfiltered search would; all lists (an exact scan) when few are allowed.

    >>> ivf_probes(100_000, 100_000, 16, 1264), ivf_probes(100_000, 80_000, 16, 1264), ivf_probes(100, 1, 16, 64)
    (16, 20, 64)
    """
    return min(nlist, math.ceil(nprobe * base / max(candidates, 1)))


def lookup(sorted_ids: IdArray, sorted_pos: IdArray, ids: IdArray) -> IdArray:
    """Positions of the ``ids`` found in a sorted id column (``sorted_pos[i]`` holds ``sorted_ids[i]``).

    >>> lookup(np.array([2, 5, 9]), np.array([1, 0, 2]), np.array([9, 4, 2])).tolist()
    [2, 1]
    """
    if not len(sorted_ids) or not len(ids):
        return np.zeros(0, dtype=np.int64)
    at = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    found: IdArray = sorted_pos[at[sorted_ids[at] == ids]]
    return found


def merge_top_k(scores: Vectors, ids: IdArray, k: int) -> tuple[Vectors, IdArray]:
    """Best ``k`` per row of side-by-side candidate lists; ``-1`` ids sort last and pad the result.

    >>> s, i = merge_top_k(np.array([[0.9, PAD_SCORE, 0.7, 0.95]], np.float32), np.array([[4, -1, 8, 2]]), 3)
    >>> i.tolist(), [round(float(x), 2) for x in s[0]]
    ([[2, 4, 8]], [0.95, 0.9, 0.7])
    """
    key = np.where(ids >= 0, scores, -np.inf)
    order = np.argsort(-key, axis=1, kind="stable")[:, :k]
    top_ids = np.take_along_axis(ids, order, axis=1)
    top = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    top[top_ids < 0] = PAD_SCORE
    return top, top_ids


def _sorted_index(ids: IdArray, rows: IdArray) -> tuple[IdArray, IdArray]:
    order = np.argsort(ids[rows], kind="stable")
    return ids[rows][order], rows[order].astype(np.int64)


# -- the immutable parts ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Base:
    """One FAISS index and its row -> chunk id column; never mutated once published."""

    index: Any  # None when empty
    structure: str  # what the FAISS index is: "flat", "hnsw" or "ivf" (an untrained ivf base is flat)
    ids: IdArray  # row -> chunk id
    sorted_ids: IdArray  # ids of the rows live when this base was made, sorted, for lookups
    sorted_pos: IdArray
    nlist: int = 0
    trained_on: int = 0
    token: str = ""  # identifies the FAISS file on disk, so an unchanged base is hard-linked, not rewritten

    @property
    def count(self) -> int:
        return len(self.ids)


class _Rows:
    """A virtual matrix of ``ids`` / vectors, read by row numbers in ascending order (``take``)."""

    def __init__(self, ids: IdArray, take: Callable[[IdArray], Vectors]) -> None:
        self.ids, self.take = ids, take


class DenseIndex:
    """An immutable snapshot of the dense index, keyed by chunk id.

    ``DenseIndex(dim, kind, ...)`` is the empty snapshot carrying the options; ``build``, ``load``,
    ``with_changes`` and ``merged`` return new snapshots and leave ``self`` as it was, so one published
    object may be searched from many threads while the next is prepared.
    """

    def __init__(self, dim: int, kind: str = "flat", *, hnsw_m: int = 32, ef_construction: int = 200,
                 ef_search: int = 128, ivf_nlist: int | None = None, ivf_nprobe: int = 16) -> None:
        if kind not in KINDS:
            raise StoreError(f"Unknown dense index kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
        self.faiss: Any = require("faiss", package="faiss-cpu")
        self.dim = dim
        self.kind = kind
        self.hnsw_m, self.ef_construction, self.ef_search = hnsw_m, ef_construction, ef_search
        self.ivf_nlist, self.ivf_nprobe = ivf_nlist, ivf_nprobe
        empty = np.zeros(0, dtype=np.int64)
        self._base = _Base(None, "flat", empty, empty, empty)
        self._dead = np.zeros(0, dtype=bool)  # base row -> tombstoned
        self._dead_count = 0
        self._live_bits: npt.NDArray[np.uint8] | None = None  # packed ~dead, None without tombstones
        self._delta_ids = empty
        self._delta_vectors = np.zeros((0, dim), dtype=np.float32)

    # -- what it holds ------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Live vectors: base rows not tombstoned, plus the delta."""
        return self._base.count - self._dead_count + len(self._delta_ids)

    def shares_base(self, other: DenseIndex) -> bool:
        """Whether both snapshots search the same FAISS object (no copy, no rebuild between them)."""
        return self._base is other._base

    @property
    def min_train(self) -> int:
        """Vectors needed before an ``ivf`` index trains its lists."""
        return ivf_min_train(nlist=self.ivf_nlist, nprobe=self.ivf_nprobe)

    def describe(self) -> dict[str, Any]:
        """Counts and training state for ``jisik status``."""
        base = self._base
        ivf = self.kind == "ivf"
        if not ivf:
            state = "flat (exact)" if self.kind == "flat" else f"hnsw (M={self.hnsw_m})"
        elif base.structure == "ivf":
            state = f"ivf, {base.nlist:,} lists trained on {base.trained_on:,} vectors"
        else:
            state = f"ivf, untrained: flat until {self.min_train:,} vectors"
        return {"kind": self.kind, "state": state, "live": self.size, "base": base.count,
                "delta": len(self._delta_ids), "tombstones": self._dead_count,
                "trained": (base.structure == "ivf") if ivf else None,
                "nlist": base.nlist or None, "trained_on": base.trained_on or None,
                "needs_merge": self.needs_merge()}

    # -- making snapshots ---------------------------------------------------------------------------
    def build(self, ids: IdArray, vectors: Vectors) -> DenseIndex:
        """A new snapshot holding exactly these vectors (``self`` is unchanged). ``ivf`` trains at once
        when there are :attr:`min_train` vectors or more."""
        ids, vectors = self._checked(ids, vectors)
        if len(np.unique(ids)) != len(ids):
            raise StoreError("Duplicate chunk ids given to the dense index")
        rows = _Rows(ids, lambda at: vectors[at])
        lists = ivf_lists(len(ids), nlist=self.ivf_nlist, nprobe=self.ivf_nprobe) if self.kind == "ivf" else 0
        structure = "flat" if self.kind == "ivf" and not lists else self.kind
        return self._derive(self._new_base(structure, rows, nlist=lists))

    def with_changes(self, added_ids: IdArray, added_vectors: Vectors, removed_ids: IdArray) -> DenseIndex:
        """A new snapshot with ``removed_ids`` gone, then ``added_ids`` added; ``self`` is unchanged and
        the base FAISS index is shared, not copied. Adding an id that is present replaces its vector;
        removing an absent id does nothing."""
        added_ids, added_vectors = self._checked(added_ids, added_vectors)
        if len(np.unique(added_ids)) != len(added_ids):
            raise StoreError("Duplicate chunk ids in one change to the dense index")
        gone = np.unique(np.concatenate([np.asarray(removed_ids, dtype=np.int64).ravel(), added_ids]))
        base = self._base
        hit = lookup(base.sorted_ids, base.sorted_pos, gone)
        hit = hit[~self._dead[hit]]
        dead, dead_count, bits = self._dead, self._dead_count, self._live_bits
        if len(hit):
            dead = dead.copy()
            dead[hit] = True
            dead_count += len(hit)
            bits = np.packbits(~dead, bitorder="little")
        keep = ~np.isin(self._delta_ids, gone)
        delta_ids = np.concatenate([self._delta_ids[keep], added_ids])
        delta_vectors = np.concatenate([self._delta_vectors[keep], added_vectors])
        return self._derive(base, dead, dead_count, bits, delta_ids, delta_vectors)

    def needs_merge(self) -> bool:
        """Whether :meth:`merged` is due: a big delta, many tombstones, or IVF (re)training."""
        count = self._base.count
        return (len(self._delta_ids) > max(DELTA_MIN, DELTA_FRACTION * count)
                or self._dead_count > TOMBSTONE_FRACTION * count or self._training_due())

    def merged(self, *, compact: bool = False) -> DenseIndex:
        """A new snapshot with an empty delta, built from what this one holds (``self`` is unchanged).

        Flat bases are rebuilt without tombstones (a copy of the live rows). HNSW and trained IVF bases
        with at most 10 % tombstones are copied and the delta appended (``faiss.clone_index`` + ``add``:
        no graph rebuild, no k-means), keeping their tombstones; with more, or with ``compact``, they are
        rebuilt from the live rows (IVF on its current centroids). IVF trains here once there are enough
        vectors and retrains (new nlist, new centroids) after 4x growth or shrinkage (below the minimum it
        is flat again). Takes seconds to minutes for
        HNSW: run it off the search path.
        """
        base, live = self._base, self.size
        if self._training_due():
            lists = ivf_lists(live, nlist=self.ivf_nlist, nprobe=self.ivf_nprobe)
            return self._derive(self._new_base("ivf" if lists else "flat", self._live_rows(), nlist=lists))
        if not len(self._delta_ids) and not self._dead_count:
            return self
        if base.index is None or base.structure == "flat" or compact \
                or self._dead_count > TOMBSTONE_FRACTION * base.count:
            centroids = self._centroids() if base.structure == "ivf" else None
            return self._derive(self._new_base(base.structure, self._live_rows(), nlist=base.nlist,
                                               centroids=centroids, trained_on=base.trained_on))
        if not len(self._delta_ids):
            return self
        return self._fold()

    # -- searching ----------------------------------------------------------------------------------
    def search(self, queries: Vectors, k: int, allowed: IdArray | None) -> tuple[Vectors, IdArray]:
        """Top-k inner products over the live vectors; ``allowed`` restricts results to those chunk ids.

        Returns float32 scores and int64 ids of shape [len(queries), max(1, min(k, size))], best first,
        padded with id -1 (score -FLT_MAX) where fewer vectors qualify.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise StoreError(f"Queries of shape {q.shape} do not match the index dimension {self.dim}")
        k = max(1, min(int(k), self.size))
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=np.int64).ravel()
        if not len(q) or not self.size or (allowed is not None and not len(allowed)):
            return np.full((len(q), k), PAD_SCORE, np.float32), np.full((len(q), k), -1, np.int64)
        base, delta = self._search_base(q, k, allowed), self._search_delta(q, k, allowed)
        if base and not delta:
            return base  # FAISS's own order and padding
        parts = [part for part in (base, delta) if part]
        scores = np.concatenate([p[0] for p in parts] + [np.full((len(q), k), PAD_SCORE, np.float32)], axis=1)
        ids = np.concatenate([p[1] for p in parts] + [np.full((len(q), k), -1, np.int64)], axis=1)
        return merge_top_k(scores, ids, k)

    def _search_base(self, q: Vectors, k: int, allowed: IdArray | None) -> tuple[Vectors, IdArray] | None:
        faiss, base = self.faiss, self._base
        if base.index is None:
            return None
        if allowed is None:
            bits, candidates = self._live_bits, base.count - self._dead_count
        else:
            mask = np.zeros(base.count, dtype=bool)
            mask[lookup(base.sorted_ids, base.sorted_pos, allowed)] = True
            if self._dead_count:
                mask &= ~self._dead
            candidates = int(mask.sum())
            bits = np.packbits(mask, bitorder="little") if candidates < base.count else None
        if not candidates:
            return None
        # The selector holds a raw pointer to ``bits`` and the parameters one to the selector: both
        # must outlive the search (they are locals until the function returns).
        selector = faiss.IDSelectorBitmap(base.count, faiss.swig_ptr(bits)) if bits is not None else None
        extra: dict[str, Any] = {} if selector is None else {"sel": selector}
        index = base.index
        if base.structure == "hnsw":
            ef = hnsw_ef(base.count, candidates, k, self.ef_search, self.hnsw_m)
            if ef:
                params = faiss.SearchParametersHNSW(efSearch=ef, **extra)
            else:  # few candidates: an exact scan of HNSW's own flat storage (read-only, no copy)
                index = faiss.downcast_index(base.index.storage)
                params = faiss.SearchParameters(**extra) if extra else None
        elif base.structure == "ivf":
            nprobe = ivf_probes(base.count, candidates, self.ivf_nprobe, base.nlist)
            params = faiss.SearchParametersIVF(nprobe=nprobe, **extra)
        else:
            params = faiss.SearchParameters(**extra) if extra else None
        threads = faiss.omp_get_max_threads()
        single = len(q) < SINGLE_THREAD_BELOW and threads > 1
        if single:  # OpenMP's thread count is per calling thread: concurrent searches are unaffected
            faiss.omp_set_num_threads(1)
        try:
            scores, rows = index.search(q, k, params=params)
        finally:
            if single:
                faiss.omp_set_num_threads(threads)
        del params, selector, bits
        return scores, np.where(rows >= 0, base.ids[np.maximum(rows, 0)], -1)

    def _search_delta(self, q: Vectors, k: int, allowed: IdArray | None) -> tuple[Vectors, IdArray] | None:
        ids, vectors = self._delta_ids, self._delta_vectors
        if allowed is not None and len(ids):
            keep = np.isin(ids, allowed)
            ids, vectors = ids[keep], vectors[keep]
        if not len(ids):
            return None
        scores = q @ vectors.T
        if k < len(ids):
            best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            return np.take_along_axis(scores, best, axis=1), ids[best]
        return scores, np.broadcast_to(ids, scores.shape)

    # -- saving and loading -------------------------------------------------------------------------
    def save(self, folder: Path, generation: int) -> None:
        """Write base, tombstones and delta as they are (no merge: saving is a commit's cost, merging a
        background job's). A base already saved in ``folder`` is hard-linked instead of rewritten."""
        base = self._base
        staging = folder.with_name(folder.name + ".tmp")
        if staging.exists():  # left by a crash mid-save
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        if not _link_base(folder, staging, base.token):
            if base.index is not None:
                self.faiss.write_index(base.index, str(staging / "base.faiss"))
            np.save(staging / "base_ids.npy", base.ids, allow_pickle=False)
        np.save(staging / "tombstones.npy", np.flatnonzero(self._dead).astype(np.int64), allow_pickle=False)
        np.save(staging / "delta_ids.npy", self._delta_ids, allow_pickle=False)
        np.save(staging / "delta_vectors.npy", self._delta_vectors, allow_pickle=False)
        write_header(staging, "faiss", generation, kind=self.kind, dim=self.dim, count=self.size, layout=LAYOUT,
                     base_structure=base.structure, base_count=base.count, delta_count=len(self._delta_ids),
                     tombstones=self._dead_count, nlist=base.nlist, trained_on=base.trained_on,
                     base_token=base.token, has_index=base.index is not None)
        swap_folder(staging, folder)

    def load(self, folder: Path, generation: int) -> DenseIndex | None:
        """The snapshot saved in ``folder`` if it matches this generation, kind and dimension, else None
        (also for a damaged or older-format folder: the caller rebuilds from SQLite). Never raises."""
        header = read_header(folder, "faiss")
        if not header or header.get("generation") != generation or header.get("kind") != self.kind \
                or header.get("dim") != self.dim or header.get("layout") != LAYOUT:
            return None
        try:
            return self._read(folder, header)
        except Exception:  # FAISS raises RuntimeError, numpy ValueError/OSError; any of them means "rebuild"
            return None

    def _read(self, folder: Path, header: dict[str, Any]) -> DenseIndex | None:
        structure, count = header["base_structure"], int(header["base_count"])
        ids = _load_array(folder / "base_ids.npy", np.int64, (count,))
        index = self.faiss.read_index(str(folder / "base.faiss")) if header["has_index"] else None
        if index is not None:  # read_index returns the concrete class (downcasting it again would free it)
            faiss = self.faiss
            expected = {"flat": faiss.IndexFlat, "hnsw": faiss.IndexHNSWFlat, "ivf": faiss.IndexIVFFlat}[structure]
            if not isinstance(index, expected) or index.ntotal != count or index.d != self.dim \
                    or index.metric_type != faiss.METRIC_INNER_PRODUCT:
                return None
            self._prepare(index)
        tombstones = _load_array(folder / "tombstones.npy", np.int64, (int(header["tombstones"]),))
        delta_ids = _load_array(folder / "delta_ids.npy", np.int64, (int(header["delta_count"]),))
        delta_vectors = _load_array(folder / "delta_vectors.npy", np.float32, (len(delta_ids), self.dim))
        dead = np.zeros(count, dtype=bool)
        dead[tombstones] = True  # raises IndexError for a position out of range
        if int(dead.sum()) != len(tombstones):
            return None
        live_rows = np.flatnonzero(~dead)
        sorted_ids, sorted_pos = _sorted_index(ids, live_rows)
        everything = np.concatenate([sorted_ids, delta_ids])
        if len(np.unique(everything)) != len(everything) or len(everything) != int(header["count"]):
            return None
        base = _Base(index, structure, ids, sorted_ids, sorted_pos, int(header["nlist"]),
                     int(header["trained_on"]), str(header["base_token"]))
        bits = np.packbits(~dead, bitorder="little") if len(tombstones) else None
        return self._derive(base, dead, len(tombstones), bits, delta_ids, delta_vectors)

    # -- internals ----------------------------------------------------------------------------------
    def _derive(self, base: _Base, dead: npt.NDArray[np.bool_] | None = None, dead_count: int = 0,
                bits: npt.NDArray[np.uint8] | None = None, delta_ids: IdArray | None = None,
                delta_vectors: Vectors | None = None) -> DenseIndex:
        """A new snapshot with these parts and this one's options."""
        new = copy.copy(self)
        new._base = base
        new._dead = np.zeros(base.count, dtype=bool) if dead is None else dead
        new._dead_count, new._live_bits = dead_count, bits
        new._delta_ids = np.zeros(0, dtype=np.int64) if delta_ids is None else delta_ids
        new._delta_vectors = (np.zeros((0, self.dim), dtype=np.float32) if delta_vectors is None
                              else delta_vectors)
        return new

    def _checked(self, ids: IdArray, vectors: Vectors) -> tuple[IdArray, Vectors]:
        ids = np.ascontiguousarray(ids, dtype=np.int64).ravel()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if not len(ids):
            vectors = vectors.reshape(0, self.dim)
        if vectors.shape != (len(ids), self.dim):
            raise StoreError(f"Vectors of shape {vectors.shape} do not match {len(ids)} ids of dimension {self.dim}")
        return ids, vectors

    def _training_due(self) -> bool:
        if self.kind != "ivf":
            return False
        base, live = self._base, self.size
        lists = ivf_lists(live, nlist=self.ivf_nlist, nprobe=self.ivf_nprobe)
        if base.structure != "ivf" or (self.ivf_nlist and self.ivf_nlist != base.nlist):  # or nlist reconfigured
            return lists > 0
        # grown 4x: retrain with more lists; shrunk 4x: fewer lists, or flat again below the minimum
        return live >= RETRAIN_GROWTH * base.trained_on or live * RETRAIN_GROWTH <= base.trained_on

    def _prepare(self, index: Any) -> None:
        """Set build and search options on a FAISS index *before* it is published."""
        if isinstance(index, self.faiss.IndexHNSW):
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
        elif isinstance(index, self.faiss.IndexIVF):
            index.nprobe = self.ivf_nprobe
            if index.direct_map.type == self.faiss.DirectMap.NoMap:
                index.make_direct_map()  # 8 bytes a vector: lets merged() read rows back by number

    def _new_faiss(self, structure: str, nlist: int) -> Any:
        faiss = self.faiss
        if structure == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        elif structure == "ivf":
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexFlatIP(self.dim)
        self._prepare(index)
        return index

    def _new_base(self, structure: str, rows: _Rows, *, nlist: int = 0, centroids: Vectors | None = None,
                  trained_on: int = 0) -> _Base:
        """A fresh base from ``rows``: trains IVF on a sample unless given ``centroids``."""
        count = len(rows.ids)
        if not count and structure != "ivf":
            empty = np.zeros(0, dtype=np.int64)
            return _Base(None, structure, empty, empty, empty)
        index = self._new_faiss(structure, nlist)
        if structure == "ivf":
            if centroids is not None:
                index.quantizer.add(centroids)
                index.is_trained = True
            else:
                index.train(rows.take(_training_rows(count, nlist)))
                trained_on = count
        for start in range(0, count, MERGE_CHUNK):
            index.add(rows.take(np.arange(start, min(start + MERGE_CHUNK, count))))
        sorted_ids, sorted_pos = _sorted_index(rows.ids, np.arange(count))
        return _Base(index, structure, rows.ids, sorted_ids, sorted_pos, nlist, trained_on, uuid.uuid4().hex)

    def _base_vectors(self) -> Callable[[IdArray], Vectors]:
        """Read base rows back: a zero-copy view of flat / HNSW storage, IVF through its direct map."""
        faiss, base = self.faiss, self._base
        if base.index is None:
            return lambda rows: np.zeros((len(rows), self.dim), dtype=np.float32)
        if base.structure == "ivf":
            return lambda rows: base.index.reconstruct_batch(rows)
        flat = base.index if base.structure == "flat" else faiss.downcast_index(base.index.storage)
        matrix = faiss.rev_swig_ptr(flat.get_xb(), base.count * self.dim).reshape(base.count, self.dim)
        return lambda rows: matrix[rows]

    def _live_rows(self) -> _Rows:
        """Live base rows, then the delta, as one virtual matrix."""
        live = np.flatnonzero(~self._dead).astype(np.int64)
        read, delta = self._base_vectors(), self._delta_vectors

        def take(at: IdArray) -> Vectors:
            split = int(np.searchsorted(at, len(live)))
            parts = [read(live[at[:split]])] if split else []
            if split < len(at):
                parts.append(delta[at[split:] - len(live)])
            return np.ascontiguousarray(np.concatenate(parts) if len(parts) > 1 else parts[0], dtype=np.float32)

        return _Rows(np.concatenate([self._base.ids[live], self._delta_ids]), take)

    def _centroids(self) -> Vectors:
        quantizer = self._base.index.quantizer
        return quantizer.reconstruct_n(0, quantizer.ntotal)  # type: ignore[no-any-return]

    def _fold(self) -> DenseIndex:
        """Copy the base FAISS index and append the delta to the copy; tombstones stay tombstones."""
        base = self._base
        index = self.faiss.clone_index(base.index)
        self._prepare(index)
        for start in range(0, len(self._delta_ids), MERGE_CHUNK):
            index.add(np.ascontiguousarray(self._delta_vectors[start : start + MERGE_CHUNK]))
        ids = np.concatenate([base.ids, self._delta_ids])
        dead = np.concatenate([self._dead, np.zeros(len(self._delta_ids), dtype=bool)])
        sorted_ids, sorted_pos = _sorted_index(ids, np.flatnonzero(~dead).astype(np.int64))
        new = _Base(index, base.structure, ids, sorted_ids, sorted_pos, base.nlist, base.trained_on, uuid.uuid4().hex)
        bits = np.packbits(~dead, bitorder="little") if self._dead_count else None
        return self._derive(new, dead, self._dead_count, bits)


def _training_rows(count: int, nlist: int) -> IdArray:
    """Row numbers k-means trains on: all, or an evenly spread sample of 256 per list (FAISS's cap).

    >>> _training_rows(10, 1).tolist(), len(_training_rows(100_000, 64))
    ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 16384)
    """
    wanted = IVF_MAX_TRAIN_PER_LIST * nlist
    if count <= wanted:
        return np.arange(count, dtype=np.int64)
    return np.unique(np.linspace(0, count - 1, wanted).astype(np.int64))


def _link_base(folder: Path, staging: Path, token: str) -> bool:
    """Hard-link the base files of a previous save of the same base into ``staging``. Saved files are
    never written in place (a save stages a new folder), so sharing them between folders is safe."""
    header = read_header(folder, "faiss")
    if not token or not header or header.get("base_token") != token or header.get("layout") != LAYOUT:
        return False
    names = ["base.faiss", "base_ids.npy"] if header.get("has_index") else ["base_ids.npy"]
    try:
        for name in names:
            os.link(folder / name, staging / name)
    except OSError:  # no hard links on this file system, or the file is gone: write it afresh
        for name in names:
            (staging / name).unlink(missing_ok=True)
        return False
    return True


def _load_array(path: Path, dtype: type, shape: tuple[int, ...]) -> npt.NDArray[Any]:
    array: npt.NDArray[Any] = np.load(path, allow_pickle=False)
    if array.dtype != dtype or array.shape != shape:
        raise ValueError(f"{path.name}: {array.dtype} {array.shape}, expected {dtype} {shape}")
    return array


def as_ids(values: Sequence[int]) -> IdArray:
    return np.asarray(values, dtype=np.int64)
