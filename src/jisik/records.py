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
    # the store generation the hit was read from (every hit of one search has the same one)
    generation: int | None = None

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


@dataclass(slots=True)
class Citation:
    """One numbered source of an answer: marker ``[number]`` in the text points at this chunk.

    ``span`` is the cited stretch inside the document (character offsets); ``quote`` is its text.
    ``cited`` is False for sources that were given to the model but not referred to in the answer.
    """

    number: int
    chunk_id: int
    doc_id: str
    source: str
    page: int | None
    section: str | None
    span: tuple[int, int]
    quote: str
    score: float
    cited: bool = True
    title: str | None = None
    scores: dict[str, float] = field(default_factory=dict)  # per-retriever scores of the chunk (dense, bm25, ...)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number, "chunk_id": self.chunk_id, "doc_id": self.doc_id, "source": self.source,
            "title": self.title, "page": self.page, "section": self.section, "span": list(self.span),
            "quote": self.quote, "score": self.score, "scores": self.scores, "cited": self.cited,
        }


@dataclass(slots=True)
class Usage:
    """Token counts and timings of one answer. ``prompt_tokens`` is counted before sending."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    retrieval_ms: float = 0.0
    first_token_ms: float | None = None  # question in → first answer text out, as the caller saw it
    backend_first_token_ms: float | None = None  # request sent → first token, as the backend delivered it
    total_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "retrieval_ms": self.retrieval_ms, "first_token_ms": self.first_token_ms,
            "backend_first_token_ms": self.backend_first_token_ms, "total_ms": self.total_ms,
        }


@dataclass(slots=True)
class Answer:
    """The answer to one question: text with ``[n]`` markers, the sources they point at, and usage.

    ``citations`` lists every source the answer cites, in marker order; ``sources`` lists every chunk
    that was put in the prompt (cited or not). ``invalid_citations`` holds markers that pointed at no
    source and were removed from ``text``. ``found`` is False when the answer says the documents do
    not contain it.
    """

    text: str
    question: str
    citations: list[Citation] = field(default_factory=list)
    sources: list[Citation] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    standalone_question: str | None = None
    backend: str = ""
    language: str = "en"
    found: bool = True
    invalid_citations: list[int] = field(default_factory=list)
    log_id: int | None = None
    # per answer sentence: {text, span, citations, score, supported, problems, best_source} (jisik.guard.grounding)
    grounding: list[dict[str, Any]] = field(default_factory=list)
    # every guard decision of this turn: {guard, place, action, detail} — never the personal data itself
    guard: list[dict[str, Any]] = field(default_factory=list)
    # agents (jisik.agent): each step {step, type, thought, tool, arguments, observation, passages, tokens, ms};
    # partial when a limit stopped the run (stopped_by names it); tool_calls the caller must run itself
    trace: list[dict[str, Any]] = field(default_factory=list)
    strategy: str | None = None
    partial: bool = False
    stopped_by: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    suspended: Any = None  # jisik.agent.loop.Suspended when tool_calls is set: pass it back as ask(resume=…)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "text": self.text, "question": self.question, "standalone_question": self.standalone_question,
            "citations": [c.to_dict() for c in self.citations], "sources": [s.to_dict() for s in self.sources],
            "usage": self.usage.to_dict(), "backend": self.backend, "language": self.language,
            "found": self.found, "invalid_citations": self.invalid_citations, "log_id": self.log_id,
            "grounding": self.grounding, "guard": self.guard,
        }
        if self.strategy is not None:  # an agent's answer
            out.update(trace=self.trace, strategy=self.strategy, partial=self.partial, stopped_by=self.stopped_by,
                       tool_calls=self.tool_calls)
        return out
