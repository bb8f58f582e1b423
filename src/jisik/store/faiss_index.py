"""The dense vector index: FAISS flat (exact), HNSW or IVF over inner product of unit vectors."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from jisik._lazy import require
from jisik.embed.base import Vectors
from jisik.store._files import read_header, swap_folder, write_header

IdArray = npt.NDArray[np.int64]

# Below this many queries, FAISS searches on one OpenMP thread. For a single query FAISS is slower
# *and* burns more CPU with several threads: one query against 100,000 x 384 flat vectors took
# 68 ms wall / 46 ms CPU with 2 threads and 11 ms / 7 ms with 1 (benchmarks/speed.py, 2-core box,
# docs/benchmarks-speed.md); 8 queries: 76 vs 55 ms. 20 is FAISS's own switch to BLAS
# (``distance_compute_blas_threshold``), where threads pay off.
SINGLE_THREAD_BELOW = 20


class DenseIndex:
    """A FAISS index keyed by chunk id. Flat and IVF update in place; HNSW rebuilds on deletion
    (FAISS's HNSW cannot remove vectors)."""

    def __init__(self, dim: int, kind: str = "flat", *, hnsw_m: int = 32, ef_construction: int = 200,
                 ef_search: int = 128, ivf_nlist: int | None = None, ivf_nprobe: int = 16) -> None:
        self.faiss: Any = require("faiss", package="faiss-cpu")
        self.dim = dim
        self.kind = kind
        self.hnsw_m, self.ef_construction, self.ef_search = hnsw_m, ef_construction, ef_search
        self.ivf_nlist, self.ivf_nprobe = ivf_nlist, ivf_nprobe
        self.index: Any = None

    @property
    def size(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    def build(self, ids: IdArray, vectors: Vectors) -> None:
        faiss = self.faiss
        if self.kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.ef_construction
            inner.hnsw.efSearch = self.ef_search
        elif self.kind == "ivf" and len(ids) >= 256:
            nlist = self.ivf_nlist or max(1, min(len(ids) // 39, int(4 * math.sqrt(len(ids)))))
            quantizer = faiss.IndexFlatIP(self.dim)
            inner = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            inner.train(np.ascontiguousarray(vectors))
            inner.nprobe = self.ivf_nprobe
        else:
            # IVF needs enough vectors to train its clusters; below that, exact search is faster anyway.
            inner = faiss.IndexFlatIP(self.dim)
        self.index = faiss.IndexIDMap2(inner)
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors), np.ascontiguousarray(ids))

    def can_update_in_place(self, removing: bool) -> bool:
        return self.index is not None and not (removing and self.kind == "hnsw")

    def add(self, ids: IdArray, vectors: Vectors) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors), np.ascontiguousarray(ids))

    def remove(self, ids: IdArray) -> None:
        if len(ids):
            self.index.remove_ids(self.faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64)))

    def search(self, queries: Vectors, k: int, allowed: IdArray | None) -> tuple[Vectors, IdArray]:
        """Top-k inner products; ``allowed`` restricts results to those chunk ids."""
        faiss = self.faiss
        k = max(1, min(k, self.size))
        inner = faiss.downcast_index(self.index.index)
        is_hnsw, is_ivf = isinstance(inner, faiss.IndexHNSW), isinstance(inner, faiss.IndexIVF)
        selector = (faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
                    if allowed is not None else None)
        extra: dict[str, Any] = {} if selector is None else {"sel": selector}
        if is_hnsw:
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k), **extra)
        elif is_ivf:
            params = faiss.SearchParametersIVF(nprobe=self.ivf_nprobe, **extra)
        else:
            params = faiss.SearchParameters(**extra) if extra else None
        threads = faiss.omp_get_max_threads()
        single = len(queries) < SINGLE_THREAD_BELOW and threads > 1
        if single:  # OpenMP's thread count is per calling thread: concurrent searches are unaffected
            faiss.omp_set_num_threads(1)
        try:
            scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
        finally:
            if single:
                faiss.omp_set_num_threads(threads)
        del params  # the selector above must outlive the search: FAISS only holds a raw pointer to it
        return scores, ids

    def save(self, folder: Path, generation: int) -> None:
        staging = folder.with_name(folder.name + ".tmp")
        staging.mkdir(parents=True, exist_ok=True)
        self.faiss.write_index(self.index, str(staging / "vectors.faiss"))
        write_header(staging, "faiss", generation, kind=self.kind, dim=self.dim, count=self.size)
        swap_folder(staging, folder)

    def load(self, folder: Path, generation: int) -> bool:
        """Load a saved index if it matches this generation, kind and dimension."""
        header = read_header(folder, "faiss")
        if not header or header.get("generation") != generation or header.get("kind") != self.kind \
                or header.get("dim") != self.dim:
            return False
        try:
            self.index = self.faiss.read_index(str(folder / "vectors.faiss"))
        except RuntimeError:
            return False
        return int(self.index.ntotal) == int(header.get("count", -1))


def as_ids(values: Sequence[int]) -> IdArray:
    return np.asarray(values, dtype=np.int64)
