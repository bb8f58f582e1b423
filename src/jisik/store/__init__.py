"""Stores: where documents, chunks, vectors and terms are kept, behind the :class:`~jisik.store.base.Store` contract.

:func:`create_store` builds the backend ``[store] backend`` names from :data:`jisik.registry.stores`:
``local`` (SQLite + FAISS + incremental BM25 in the knowledge-base folder, :mod:`jisik.store.local`) is jisik's
own; plugins add others through the ``jisik.stores`` entry-point group. A store factory is
``(KBConfig, folder) -> Store``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jisik.registry import stores

if TYPE_CHECKING:
    from pathlib import Path

    from jisik.config import KBConfig
    from jisik.store.base import Store

__all__ = ["create_local_store", "create_store"]


def create_store(config: KBConfig, folder: Path) -> Store:
    """The store ``config.store.backend`` names, for the knowledge base in ``folder``."""
    return stores.get(config.store.backend)(config, folder)


def create_local_store(config: KBConfig, folder: Path) -> Store:
    """The embedded store: ``[index]`` picks and tunes the FAISS index, ``[bm25]`` the lexical index."""
    from jisik.store.local import LocalStore

    index = config.index
    index_options = {
        "hnsw_m": index.hnsw_m, "ef_construction": index.hnsw_ef_construction, "ef_search": index.hnsw_ef_search,
        "ivf_nlist": index.ivf_nlist, "ivf_nprobe": index.ivf_nprobe,
    }
    bm25_options = {"k1": config.bm25.k1, "b": config.bm25.b, "method": config.bm25.method}
    store: Store = LocalStore(folder, index_kind=index.kind, index_options=index_options, bm25_options=bm25_options)
    return store
