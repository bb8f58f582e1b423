"""Plain data records passed between stages: Document, Segment, Chunk, Hit.

They are dataclasses (not pydantic models) because they are created by the hundred thousand
on the ingest path, where validation would only cost time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MetadataValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch ``[start, end)`` of a document's text that shares one page and one section.

    Chunks never cross a segment boundary, so every chunk has exactly one page and section.
    ``page`` is 1-based (``None`` for formats without pages); ``section`` is a heading path
    such as ``"Returns > Refunds"`` or a record label such as ``"row 12"``.
    """

    start: int
    end: int
    page: int | None = None
    section: str | None = None


@dataclass(slots=True)
class Document:
    """One loaded source unit: a file, or one record of a CSV/JSONL file.

    ``doc_id`` is stable across runs: the path relative to the ingest root, plus ``#<record>``
    for tabular rows. ``segments`` cover ``text`` in order (gaps are allowed, overlaps are not).
    """

    doc_id: str
    source: str
    text: str
    title: str | None = None
    segments: list[Segment] = field(default_factory=list)
    metadata: dict[str, MetadataValue] = field(default_factory=dict)
    mtime: float | None = None
    content_hash: str = ""

    def __post_init__(self) -> None:
        if not self.segments and self.text:
            self.segments = [Segment(0, len(self.text))]


@dataclass(slots=True)
class Chunk:
    """A piece of a document that is embedded and indexed.

    ``start``/``end`` are character offsets into the document's text, so
    ``document.text[chunk.start:chunk.end] == chunk.text``.
    """

    doc_id: str
    ordinal: int
    text: str
    start: int
    end: int
    page: int | None = None
    section: str | None = None
    chunk_id: int | None = None  # assigned by the store


@dataclass(slots=True)
class Hit:
    """One search result: the chunk, where it comes from, and its score under the chosen mode."""

    chunk_id: int
    score: float
    text: str
    doc_id: str
    source: str
    title: str | None
    page: int | None
    section: str | None
    start: int
    end: int
    metadata: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)  # per-retriever scores (dense, bm25, ...)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "score": self.score,
            "text": self.text,
            "doc_id": self.doc_id,
            "source": self.source,
            "title": self.title,
            "page": self.page,
            "section": self.section,
            "span": [self.start, self.end],
            "metadata": self.metadata,
            "scores": self.scores,
        }
