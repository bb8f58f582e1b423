"""Loader settings: the ``[loaders]`` section of ``jisik.toml``.

Example::

    [loaders]
    text_field = ["title", "body"]   # CSV/TSV/JSONL columns whose values make the text
    id_field = "ticket_id"           # doc_id becomes "tickets.csv#T-1042" instead of "tickets.csv#7"
    encoding = "auto"                # or "cp949", "utf-8", ... to skip detection
"""

from __future__ import annotations

import codecs
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# One engine today; the key exists so a second engine can be added without breaking jisik.toml files.
# pypdf, pdfplumber and PyMuPDF were measured and not kept (docs/benchmarks-pdf.md).
PdfEngine = Literal["pypdfium2"]


class LoaderConfig(BaseModel):
    """How files become documents. Every field has a default that suits most folders."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    text_field: str | list[str] = Field(
        default="text",
        description="CSV/TSV/JSONL column holding the text; a list joins several columns, each a segment",
    )
    id_field: str | None = Field(
        default=None, description="column with a record id for the doc_id; default: the 1-based record number"
    )
    title_field: str | None = Field(default="title", description="column used as the record title when present")
    metadata_fields: list[str] | None = Field(
        default=None, description="columns copied into metadata; default: every other scalar column"
    )
    encoding: str = Field(
        default="auto",
        description="'auto' (BOM, UTF-8, CP949, then a best guess) or a codec name such as 'cp949'",
    )
    pdf_engine: PdfEngine = Field(
        default="pypdfium2",
        description="PDF text engine: pypdfium2 (fastest measured; keeps each table row on one line)",
    )

    @field_validator("text_field")
    @classmethod
    def _text_field_not_empty(cls, value: str | list[str]) -> str | list[str]:
        fields = [value] if isinstance(value, str) else value
        if not fields or any(not f.strip() for f in fields):
            raise ValueError("text_field needs at least one non-empty column name")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}; use 'auto' or a Python codec name") from None
        return value

    @property
    def text_fields(self) -> list[str]:
        """``text_field`` as a list, whichever form the user wrote."""
        return [self.text_field] if isinstance(self.text_field, str) else list(self.text_field)
