"""What every loader shares: the source file, the result type, and a text builder with spans.

A loader is a function ``(Source, LoaderConfig) -> Loaded``. It never computes offsets by hand:
it feeds parts to :class:`TextBuilder`, which joins them with a blank line and records the
segments, so ``document.text[seg.start:seg.end]`` is always the part that was added.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jisik.config import LoaderConfig
from jisik.records import Document, MetadataValue, Segment

SEPARATOR = "\n\n"  # between pages, sections and blocks: chunkers split on blank lines first

_TRAILING_SPACE = re.compile(r"[ \t\u00a0]+\n")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True, slots=True)
class Source:
    """A file read into memory. ``rel`` is the posix path used as ``doc_id`` and ``source``."""

    path: Path
    rel: str
    ext: str  # lower case, with the dot: ".pdf"
    data: bytes
    mtime: float


@dataclass(slots=True)
class Loaded:
    """The documents a file gave, and what went wrong without stopping it (skipped rows, ...)."""

    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


Loader = Callable[[Source, LoaderConfig], Loaded]


def clean_text(text: str) -> str:
    """Normalise one part: NFC, ``\\n`` line ends, no trailing spaces, at most one blank line, stripped.

    NFC matters for Korean: text from macOS or some PDFs arrives as separate jamo (ᄒ+ᅡ+ᆫ), which
    would not match the same word typed as syllables (한).

    >>> clean_text("  \\u1112\\u1161\\u11ab국 \\r\\n\\r\\n\\r\\n\\r\\nline  \\n")
    '한국\\n\\nline'
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _TRAILING_SPACE.sub("\n", text)
    return _MANY_BLANK_LINES.sub("\n\n", text).strip()


class TextBuilder:
    """Joins parts with :data:`SEPARATOR` and keeps one segment per run of equal page and section.

    >>> b = TextBuilder()
    >>> b.add("Intro", section=None)
    >>> b.add("Refunds", section="Returns > Refunds")
    >>> b.add("Within 30 days.", section="Returns > Refunds")
    >>> text, segments = b.build()
    >>> text
    'Intro\\n\\nRefunds\\n\\nWithin 30 days.'
    >>> [(s.start, s.end, s.section) for s in segments]
    [(0, 5, None), (7, 31, 'Returns > Refunds')]
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._segments: list[Segment] = []
        self._length = 0

    def add(self, text: str, *, page: int | None = None, section: str | None = None) -> None:
        """Append a part (cleaned with :func:`clean_text`); empty parts are ignored."""
        part = clean_text(text)
        if not part:
            return
        start = self._length + (len(SEPARATOR) if self._parts else 0)
        end = start + len(part)
        last = self._segments[-1] if self._segments else None
        if last is not None and last.page == page and last.section == section:
            self._segments[-1] = Segment(last.start, end, page, section)  # same place: one segment
        else:
            self._segments.append(Segment(start, end, page, section))
        self._parts.append(part)
        self._length = end

    def build(self) -> tuple[str, list[Segment]]:
        return SEPARATOR.join(self._parts), list(self._segments)

    def __bool__(self) -> bool:
        return bool(self._parts)


def content_hash(text: str) -> str:
    """SHA-256 hex digest of the UTF-8 text.

    >>> content_hash("")[:12]
    'e3b0c44298fc'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_document(
    src: Source,
    builder: TextBuilder,
    *,
    title: str | None,
    metadata: dict[str, MetadataValue] | None = None,
    doc_id: str | None = None,
) -> Document:
    """A :class:`Document` with the fields every loader must set (path, ext, hash, mtime).

    ``title`` falls back to the file name without extension, so every citation has a label.
    ``path`` and ``ext`` win over same-named keys in ``metadata`` (front matter, CSV columns):
    the store and its filters rely on them.
    """
    text, segments = builder.build()
    meta: dict[str, MetadataValue] = {**(metadata or {}), "path": src.rel, "ext": src.ext}
    return Document(
        doc_id=doc_id or src.rel,
        source=src.rel,
        text=text,
        title=(title or "").strip() or src.path.stem,
        segments=segments,
        metadata=meta,
        mtime=src.mtime,
        content_hash=content_hash(text),
    )


def single(src: Source, builder: TextBuilder, *, title: str | None, metadata: dict[str, MetadataValue]) -> Loaded:
    """The usual result of a one-document file; a file with no text gives a warning, not a document."""
    if not builder:
        return Loaded(warnings=[f"{src.rel}: no text found, nothing to index"])
    return Loaded([make_document(src, builder, title=title, metadata=metadata)])
