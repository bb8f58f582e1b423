"""Word (``.docx``) via python-docx: paragraphs and tables in body order, headings as sections.

A heading is a paragraph whose style is (or is based on) "Heading N", or that carries an outline
level, which is how Korean templates and HWP conversions often mark headings under their own
style names. Page headers/footers and text boxes are not read: they are mostly furniture.
"""

from __future__ import annotations

import io
import re
from typing import Any

from jisik._lazy import require
from jisik.config import LoaderConfig
from jisik.errors import LoaderError
from jisik.ingest.loaders.base import Loaded, Source, TextBuilder, single
from jisik.records import MetadataValue

_HEADING_STYLE = re.compile(r"^heading (\d)$", re.IGNORECASE)
TITLE_LEVEL = 0  # the "Title" style: the document title, not a section


def style_level(style_name: str) -> int | None:
    """Heading level of a style name: 1-9 for "Heading N", 0 for "Title", else ``None``.

    >>> style_level("Heading 2"), style_level("Title"), style_level("Normal")
    (2, 0, None)
    """
    if style_name.strip().lower() == "title":
        return TITLE_LEVEL
    match = _HEADING_STYLE.match(style_name.strip())
    return int(match.group(1)) if match else None


def _outline_level(element: Any) -> int | None:
    """``w:outlineLvl`` (0-based, 9 = body text) on a paragraph or style, as a 1-based level."""
    values = element.xpath("./w:pPr/w:outlineLvl/@w:val")
    if values and str(values[0]).isdigit() and int(values[0]) < 9:
        return int(values[0]) + 1
    return None


def heading_level(paragraph: Any) -> int | None:
    level = _outline_level(paragraph._p)
    if level is not None:
        return level
    style = paragraph.style
    for _ in range(10):  # base_style chains are short; the bound guards against a cycle
        if style is None:
            return None
        level = style_level(style.name or "")
        if level is None:
            level = _outline_level(style.element)
        if level is not None:
            return level
        style = style.base_style
    return None


def table_text(table: Any) -> str:
    """Rows on their own lines, cells joined by `` | ``; a merged cell is written once."""
    lines = []
    for row in table.rows:
        seen: set[int] = set()
        cells = []
        for cell in row.cells:
            if id(cell._tc) in seen:  # python-docx repeats a merged cell once per grid column
                continue
            seen.add(id(cell._tc))
            text = " ".join(cell.text.split())
            if text:
                cells.append(text)
        if cells:
            lines.append(" | ".join(cells))
    return "\n".join(lines)


class _Body:
    def __init__(self) -> None:
        self.builder = TextBuilder()
        self.stack: list[tuple[int, str]] = []
        self.title_style: str | None = None
        self.first_h1: str | None = None

    @property
    def section(self) -> str | None:
        return " > ".join(t for _, t in self.stack) or None

    def paragraph(self, paragraph: Any) -> None:
        text = paragraph.text.strip()
        if not text:
            return
        level = heading_level(paragraph)
        if level == TITLE_LEVEL:
            self.title_style = self.title_style or text
        elif level is not None:
            self.first_h1 = self.first_h1 or (text if level == 1 else None)
            while self.stack and self.stack[-1][0] >= level:
                self.stack.pop()
            self.stack.append((level, text))
        self.builder.add(text, section=self.section)


def _core_metadata(props: Any) -> dict[str, MetadataValue]:
    meta: dict[str, MetadataValue] = {}
    if (props.author or "").strip():
        meta["author"] = props.author.strip()
    for key in ("created", "modified"):
        value = getattr(props, key, None)
        if value is not None:
            meta[key] = value.isoformat()
    return meta


def _open(src: Source) -> Any:
    docx = require("docx", package="python-docx")
    try:
        return docx.Document(io.BytesIO(src.data))
    except Exception as exc:  # PackageNotFoundError, BadZipFile, KeyError, ValueError, lxml errors
        reason = "not a valid .docx file (not a Word zip package or damaged)"
        if src.data.startswith(b"\xd0\xcf\x11\xe0"):
            reason = "an old binary Word (.doc) file renamed to .docx"
        raise LoaderError(
            src.rel,
            f"{reason} ({type(exc).__name__}: {exc})",
            hint="open and save it as .docx in Word or LibreOffice",
        ) from exc


def load_docx(src: Source, config: LoaderConfig) -> Loaded:
    document = _open(src)
    table_type = require("docx.table", package="python-docx").Table
    body = _Body()
    for block in document.iter_inner_content():
        if isinstance(block, table_type):
            body.builder.add(table_text(block), section=body.section)
        else:
            body.paragraph(block)
    props = document.core_properties
    title = (props.title or "").strip() or body.title_style or body.first_h1
    return single(src, body.builder, title=title, metadata=_core_metadata(props))
