"""The Store contract shared by the embedded store (SQLite + FAISS + bm25s) and Milvus.

A store keeps documents, chunks, vectors, lexical terms and the ingestion ledger, and answers
dense and lexical top-k queries under a metadata :class:`~jisik.retrieve.filters.Filter`.
Writes are grouped per file (:class:`IngestUnit`) so a crash never leaves half a file behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from jisik.embed.base import Vectors
from jisik.records import Chunk, Document, Hit
from jisik.retrieve.filters import Filter

ScoredIds = list[tuple[int, float]]


@dataclass(slots=True)
class FileRecord:
    """One row of the ingestion ledger: the state of a source file when it was last ingested."""

    path: str  # absolute path
    root: str  # the folder the user ingested, so --prune knows which files belong to it
    content_hash: str
    size: int
    mtime: float
    status: str = "ok"  # "ok" | "error"
    error: str | None = None
    n_documents: int = 0
    n_chunks: int = 0
    ingested_at: float = 0.0


@dataclass(slots=True)
class IngestUnit:
    """Everything one file produced; written atomically, replacing what the file produced before."""

    file: FileRecord
    documents: list[Document]
    chunks: list[Chunk]
    vectors: Vectors
    terms: list[list[str]]
    # True: vectors and terms were staged part by part (Store.stage, a big file) and are read from there
    staged: bool = False


@dataclass(slots=True)
class StoreStats:
    documents: int
    chunks: int
    files: int
    failed_files: int
    embedder_model: str | None
    embedder_dim: int | None
    analyzer: str | None
    index_kind: str
    disk_bytes: int
    extra: dict[str, object] = field(default_factory=dict)


class Store(Protocol):
    def bind(self, *, embedder_model: str, dim: int, analyzer: str, replace: bool = False) -> None:
        """Record the embedder and analyzer on first use; refuse a different one later
        unless ``replace`` (used by re-indexing)."""
        ...

    def file_records(self) -> dict[str, FileRecord]: ...

    def write(self, units: Sequence[IngestUnit]) -> None:
        """Atomically replace the documents of each unit's file and update the ledger."""
        ...

    def record_failures(self, records: Sequence[FileRecord]) -> None: ...

    def stage(self, file: FileRecord, chunks: Sequence[Chunk], vectors: Vectors,
              terms: Sequence[Sequence[str]]) -> None:
        """Keep the embedded and analysed chunks of a big file that is still being ingested, durably but
        invisible to searches, so memory stays bounded and an interrupted ingest keeps the work done.
        A later :meth:`write` of a unit with ``staged=True`` publishes them; other versions are dropped."""
        ...

    def staged_texts(self, file: FileRecord) -> set[str]:
        """Hashes (:func:`chunk_key`) of the chunk texts already staged for this version of the file."""
        ...

    def delete_files(self, paths: Sequence[str]) -> int:
        """Remove the documents of these files and their ledger rows; returns documents removed."""
        ...

    def delete_documents(self, doc_ids: Sequence[str]) -> int: ...

    def find_documents(self, pattern: str) -> list[str]:
        """doc ids whose id, source or file path equals ``pattern`` or lies under it (a folder)."""
        ...

    def commit_indexes(self) -> None:
        """Bring the vector and lexical indexes up to date and make them durable."""
        ...

    def search_dense(self, queries: Vectors, k: int, where: Filter) -> list[ScoredIds]: ...

    def search_lexical(self, queries: Sequence[Sequence[str]], k: int, where: Filter) -> list[ScoredIds]: ...

    def vectors(self, chunk_ids: Sequence[int]) -> Vectors: ...

    def hits(self, scored: ScoredIds) -> list[Hit]:
        """Materialise chunk ids with their scores into Hits (text, source, page, span, metadata)."""
        ...

    def all_chunk_texts(self) -> list[tuple[int, str]]: ...

    def replace_vectors(self, ids: Sequence[int], vectors: Vectors) -> None: ...

    def replace_terms(self, ids: Sequence[int], terms: Sequence[Sequence[str]]) -> None: ...

    def stats(self) -> StoreStats: ...

    def is_empty(self) -> bool:
        """True when no chunk is stored (asking such a knowledge base is an error)."""
        ...

    def log_turn(self, row: dict[str, Any]) -> int:
        """Store one completed question/answer turn atomically; returns its id."""
        ...

    def turns(self, *, limit: int = 20, session: str | None = None, turn_id: int | None = None) -> list[dict[str, Any]]:
        """Logged turns, newest first."""
        ...

    def close(self) -> None: ...


def chunk_key(text: str) -> str:
    """The staging key of a chunk text.

    >>> chunk_key("반품")[:12]
    '4c34e221237f'
    """
    return hashlib.sha1(text.encode("utf-8")).hexdigest()
