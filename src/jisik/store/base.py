"""The Store contract shared by the embedded store (SQLite + FAISS + incremental BM25) and Milvus.

A store keeps documents, chunks, vectors, lexical terms and the ingestion ledger, and answers
dense and lexical top-k queries under a metadata :class:`~jisik.filters.Filter`.
Writes are grouped per file (:class:`IngestUnit`) so a crash never leaves half a file behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from jisik.embed.base import Vectors
from jisik.filters import Filter
from jisik.records import Chunk, Document, Hit

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


class StoreReader(Protocol):
    """One committed generation of a store, for the length of one search.

    Everything read through it (candidates, vectors, hits) comes from that generation, whatever
    writers commit meanwhile: no uncommitted rows, no half-updated index, no mix of two generations.
    """

    @property
    def generation(self) -> int: ...

    def search_dense(self, queries: Vectors, k: int, where: Filter) -> list[ScoredIds]: ...

    def search_lexical(self, queries: Sequence[Sequence[str]], k: int, where: Filter) -> list[ScoredIds]: ...

    def document_frequency(self, term: str) -> int:
        """How many chunks of this generation contain the BM25 ``term`` (0 when none): the query-side spelling
        correction (:mod:`jisik.text.spelling`) replaces a term no chunk holds by an indexed one."""
        ...

    def lexical_scores(self, queries: Sequence[Sequence[str]], chunk_ids: Sequence[Sequence[int]]) -> list[list[float]]:
        """BM25 score of each given chunk for its query (0.0 where no query term occurs): hybrid fusion scores
        the dense retriever's candidates that BM25's top list left out."""
        ...

    def vectors(self, chunk_ids: Sequence[int]) -> Vectors: ...

    def hits(self, scored: ScoredIds) -> list[Hit]:
        """Materialise chunk ids with their scores into Hits (text, source, page, span, metadata),
        each carrying this reader's generation."""
        ...


class Ledger(Protocol):
    """The knowledge base's own bookkeeping, kept in SQLite for every backend (:mod:`jisik.store.ledger`)."""

    def file_records(self) -> dict[str, FileRecord]: ...

    def setting(self, key: str) -> str | None:
        """A value the knowledge base recorded about itself (e.g. ``chunk_context``), or None."""
        ...

    def set_setting(self, key: str, value: str) -> None: ...

    def record_failures(self, records: Sequence[FileRecord]) -> None: ...

    def failed_files(self) -> list[tuple[str, str]]: ...

    def stage(self, file: FileRecord, chunks: Sequence[Chunk], vectors: Vectors,
              terms: Sequence[Sequence[str]]) -> None:
        """Keep the embedded and analysed chunks of a big file that is still being ingested, durably but
        invisible to searches, so memory stays bounded and an interrupted ingest keeps the work done.
        A later :meth:`ChunkStore.write` of a unit with ``staged=True`` publishes them; other versions are dropped."""
        ...

    def staged_texts(self, file: FileRecord) -> set[str]:
        """Hashes (:func:`chunk_key`) of the chunk texts already staged for this version of the file."""
        ...

    def log_turn(self, row: dict[str, Any]) -> int:
        """Store one completed question/answer turn atomically; returns its id."""
        ...

    def turns(self, *, limit: int = 20, session: str | None = None, turn_id: int | None = None) -> list[dict[str, Any]]:
        """Logged turns, newest first."""
        ...


class ChunkStore(Protocol):
    """What a backend implements: documents, chunks, vectors and terms, and searches over them.

    Many readers (threads and processes) at once, one writer at a time; every search goes through a
    :class:`StoreReader` of one committed generation. No call returns the whole corpus: chunks and
    documents are read page by page.
    """

    read_only: bool

    def require_writable(self) -> None:
        """Raise :class:`~jisik.errors.StoreError` (saying why) when nothing can be written."""
        ...

    def bind(self, *, embedder_model: str, dim: int, analyzer: str, replace: bool = False) -> None:
        """Record the embedder and analyzer on first use; refuse a different one later
        unless ``replace`` (used by re-indexing)."""
        ...

    def write(self, units: Sequence[IngestUnit]) -> int:
        """Atomically replace the documents of each unit's file and update the ledger; returns the
        generation that made them visible."""
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

    def reader(self) -> AbstractContextManager[StoreReader]:
        """A :class:`StoreReader` over the latest committed generation, for one search."""
        ...

    def search_dense(self, queries: Vectors, k: int, where: Filter) -> list[ScoredIds]:
        """``reader().search_dense`` in a reader of its own."""
        ...

    def search_lexical(self, queries: Sequence[Sequence[str]], k: int, where: Filter) -> list[ScoredIds]: ...

    def vectors(self, chunk_ids: Sequence[int]) -> Vectors: ...

    def hits(self, scored: ScoredIds) -> list[Hit]: ...

    def chunk_texts(self, *, after: int = 0, limit: int = 1000) -> list[tuple[int, str]]:
        """One page of ``(chunk id, text)`` with ids above ``after``, in id order (empty: the end)."""
        ...

    def documents(self, *, after: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Documents (doc_id, source, title, chunks, mtime) in doc id order, ``limit`` at a time after ``after``."""
        ...

    def export_files(self, paths: Sequence[str]) -> list[IngestUnit]:
        """What these ledger entries (file paths, or ``doc:<id>`` keys) produced, read back as units that
        :meth:`write` of another store accepts unchanged: the ledger row, documents (metadata, no full text),
        chunks in ordinal order, their vectors and terms. Paths without documents are left out.
        ``jisik migrate`` copies a knowledge base file by file with it, without embedding again."""
        ...

    def metadata_combinations(self, keys: Sequence[str]) -> list[dict[str, str]]:
        """The distinct combinations of these document-metadata keys' values (as text), one dict per
        combination, a key left out where a document lacks it; documents with none of the keys are not counted.
        Small by design (companies x quarters, not documents): the catalogue a self-query routes over."""
        ...

    def replace_vectors(self, ids: Sequence[int], vectors: Vectors) -> None: ...

    def replace_terms(self, ids: Sequence[int], terms: Sequence[Sequence[str]]) -> None: ...

    def stats(self) -> StoreStats: ...

    def is_empty(self) -> bool:
        """True when no chunk is stored (asking such a knowledge base is an error)."""
        ...

    def close(self) -> None: ...


class Store(ChunkStore, Ledger, Protocol):
    """A backend together with the ledger it writes in step with: what the knowledge base holds."""


class ReaderShortcuts:
    """The one-search methods of :class:`ChunkStore`, each in a :meth:`~ChunkStore.reader` of its own
    (shared by backends; a backend supplies ``reader``)."""

    def reader(self) -> AbstractContextManager[StoreReader]:
        raise NotImplementedError

    def search_dense(self, queries: Vectors, k: int, where: Filter) -> list[ScoredIds]:
        with self.reader() as view:
            return view.search_dense(queries, k, where)

    def search_lexical(self, queries: Sequence[Sequence[str]], k: int, where: Filter) -> list[ScoredIds]:
        with self.reader() as view:
            return view.search_lexical(queries, k, where)

    def vectors(self, chunk_ids: Sequence[int]) -> Vectors:
        with self.reader() as view:
            return view.vectors(chunk_ids)

    def hits(self, scored: ScoredIds) -> list[Hit]:
        with self.reader() as view:
            return view.hits(scored)


def chunk_key(text: str) -> str:
    """The staging key of a chunk text.

    >>> chunk_key("반품")[:12]
    '4c34e221237f'
    """
    return hashlib.sha1(text.encode("utf-8")).hexdigest()
