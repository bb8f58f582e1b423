"""Context headers: the few words that say where a chunk comes from, embedded with it but never stored in it.

Most chunks of a long document never name the document: a 10-Q's page 14 talks about "net sales" without
saying whose, or which quarter. Embedding (and optionally BM25-indexing) a short header — the document's
title, the section path, the page — in front of each chunk lets the question "Apple's revenue in Q3 2023"
find it; the stored chunk text stays exactly the document's text, so citation spans and quotes stay exact.
This is the "contextual chunk headers" idea (also LlamaIndex's metadata-in-embedded-text default);
measurements are in docs/benchmarks-retrieval.md ("Context headers").

The header is a pure function of fields the store already keeps with every chunk (title, source, section,
page), so ``jisik reindex --embeddings`` rebuilds it without re-reading documents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING

from jisik.choices import HeaderField

if TYPE_CHECKING:
    from jisik.records import Chunk, Document, Hit

# Separator between the header and the chunk: one line, so the header reads as a heading.
HEADER_SEPARATOR = "\n"
# A header longer than this is cut: it must stay a small part of the 512-token window of the embedder.
MAX_HEADER_CHARS = 200

# File-name noise: version marks, copy marks and "final"/"draft" words that say nothing about the content.
_NOISE_WORDS = re.compile(r"(?i)(?<![a-z0-9])(?:final|draft|copy|v\d+(?:\.\d+)*|rev\d*|최종|수정본?|사본)(?![a-z0-9])")
_COPY_MARK = re.compile(r"\s*\(\d+\)\s*$")  # "report (1)" as saved by browsers
_SEPARATORS = re.compile(r"[_\s]+|(?<=[^\d\s])-(?=[^\d\s])")  # "-" between words; kept in dates and ranges
_SPACE = re.compile(r"\s+")


def clean_file_title(name: str) -> str:
    """A file name made readable: extension, separators, copy marks and version noise removed.

    >>> clean_file_title("2023 Q3 AAPL.pdf")
    '2023 Q3 AAPL'
    >>> clean_file_title("refund_policy-final_v2 (1).docx")
    'refund policy'
    >>> clean_file_title("반품정책_최종.md")
    '반품정책'
    >>> clean_file_title("2023-07-01_board-minutes.txt")
    '2023-07-01 board minutes'
    """
    stem = PurePath(name).stem if PurePath(name).suffix[1:].isalnum() else name
    stem = _COPY_MARK.sub("", stem)
    stem = _SEPARATORS.sub(" ", stem)
    stem = _NOISE_WORDS.sub(" ", stem)
    cleaned = _SPACE.sub(" ", stem).strip(" -.")
    return cleaned or PurePath(name).stem


def context_header(fields: Sequence[HeaderField], *, title: str | None, source: str | None,
                   section: str | None, page: int | None) -> str:
    """The header for one chunk: the requested ``fields`` that have a value, one line, deduplicated.

    ``title`` is the document's title (the loader falls back to the file name); ``file`` is the cleaned
    file name, added only when it says something the title does not. Empty when no field has a value
    (a passage added without a title gets no header at all).

    >>> context_header(["title", "section"], title="Refund policy", source="docs/refunds.md",
    ...                section="Returns > Refunds", page=None)
    'Refund policy > Returns > Refunds'
    >>> context_header(["title", "file", "page"], title="Quarterly report", source="filings/2023 Q3 AAPL.pdf",
    ...                section=None, page=4)
    'Quarterly report (2023 Q3 AAPL), page 4'
    >>> context_header(["title", "file"], title="2023 Q3 AAPL", source="filings/2023 Q3 AAPL.pdf",
    ...                section=None, page=None)
    '2023 Q3 AAPL'
    >>> context_header(["title"], title=None, source="p1", section=None, page=None)
    ''
    """
    parts: list[str] = []
    clean_title = _SPACE.sub(" ", title or "").strip()
    if "title" in fields and clean_title:
        parts.append(clean_title)
    if "file" in fields and source:
        name = clean_file_title(PurePath(source).name)
        if name and name.casefold() not in clean_title.casefold():
            parts.append(f"({name})" if parts else name)
    if "section" in fields and section:
        path = _SPACE.sub(" ", section).strip()
        if path and path.casefold() != clean_title.casefold():
            parts.append(f"> {path}" if parts else path)
    header = " ".join(parts)
    if "page" in fields and page is not None:
        header = f"{header}, page {page}" if header else f"page {page}"
    return header[:MAX_HEADER_CHARS].strip()


def with_header(header: str, text: str) -> str:
    """The text the embedder (or the analyzer) sees: the header line, then the chunk.

    >>> with_header("Refund policy", "Refunds take 3 days.")
    'Refund policy\\nRefunds take 3 days.'
    >>> with_header("", "Refunds take 3 days.")
    'Refunds take 3 days.'
    """
    return f"{header}{HEADER_SEPARATOR}{text}" if header else text


def header_setting(fields: Sequence[HeaderField], bm25: bool) -> str:
    """How a knowledge base's vectors and terms were made, as recorded in its store (``chunk_context``).

    >>> header_setting(["title", "section"], bm25=False)
    'embed:title,section'
    >>> header_setting(["title"], bm25=True)
    'embed+bm25:title'
    >>> header_setting([], bm25=True)
    'none'
    """
    if not fields:
        return "none"
    return f"{'embed+bm25' if bm25 else 'embed'}:{','.join(fields)}"


# The store setting that records how a knowledge base's vectors and terms were made (see header_setting).
CONTEXT_SETTING = "chunk_context"
_FIELDS: tuple[HeaderField, ...] = ("title", "file", "section", "page")


def parse_header_setting(value: str) -> tuple[list[HeaderField], bool]:
    """The fields and the BM25 flag of a recorded :func:`header_setting` (unknown fields are dropped).

    >>> parse_header_setting("embed+bm25:title,section")
    (['title', 'section'], True)
    >>> parse_header_setting("none")
    ([], False)
    """
    kind, _, names = value.partition(":")
    fields = [name for name in _FIELDS if name in names.split(",")]
    ordered = sorted(fields, key=names.split(",").index)
    return (ordered, kind == "embed+bm25") if ordered else ([], False)


def chunk_context_texts(documents: Sequence[Document], chunks: Sequence[Chunk],
                        fields: Sequence[HeaderField]) -> list[str]:
    """Each new chunk behind its header (what ingest embeds); its document gives the title and source."""
    by_id = {doc.doc_id: doc for doc in documents}
    return [_behind_header(fields, chunk.text, by_id.get(chunk.doc_id), chunk.section, chunk.page) for chunk in chunks]


def hit_context_texts(hits: Sequence[Hit], fields: Sequence[HeaderField]) -> list[str]:
    """Stored chunks (as :class:`~jisik.records.Hit`) behind their headers: what re-indexing embeds.

    >>> from jisik.records import Hit
    >>> hit = Hit(chunk_id=1, score=0.0, text="Refunds take 3 days.", doc_id="d", source="refunds.md",
    ...           title="Refund policy", page=None, section="Refunds", start=0, end=20)
    >>> hit_context_texts([hit], ["title", "section"])
    ['Refund policy > Refunds\\nRefunds take 3 days.']
    """
    return [_behind_header(fields, hit.text, hit, hit.section, hit.page) for hit in hits]


def _behind_header(fields: Sequence[HeaderField], text: str, origin: Document | Hit | None, section: str | None,
                   page: int | None) -> str:
    if not fields:
        return text
    header = context_header(fields, title=origin.title if origin else None, source=origin.source if origin else None,
                            section=section, page=page)
    return with_header(header, text)
