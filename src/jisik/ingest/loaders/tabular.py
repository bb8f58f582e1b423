"""CSV, TSV and JSON Lines: one document per row/record.

``doc_id`` is ``"<path>#<id>"`` with the ``id_field`` value, or the 1-based record number
(blank lines are not counted). The text comes from ``text_field`` (several fields are joined
with a blank line, one segment each); the other scalar columns become metadata.

A row without text is skipped with a warning, never silently; a file where no row has the text
field is a :class:`LoaderError` that names the columns that do exist.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from jisik.config import LoaderConfig
from jisik.errors import LoaderError
from jisik.ingest.loaders.base import Loaded, Source, TextBuilder, make_document
from jisik.ingest.loaders.encoding import decode_bytes
from jisik.records import MetadataValue

# Long documents stored in one cell exceed csv's default 128 KiB field limit.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Record:
    number: int  # 1-based among records, the default id
    where: str  # for messages: "row 3" or "line 7"
    values: dict[str, Any]


def cell_text(value: Any) -> str | None:
    """A value as text, or ``None`` when it holds no text (missing, null, blank, a container).

    >>> [cell_text(v) for v in ["  hi ", 3, None, "  ", ["a"]]]
    ['hi', '3', None, None, None]
    """
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return None
    text = str(value).strip()
    return text or None


def metadata_value(value: Any) -> MetadataValue:
    """A value as a metadata scalar; containers become compact JSON.

    >>> metadata_value({"a": 1}), metadata_value("x"), metadata_value(2.5)
    ('{"a": 1}', 'x', 2.5)
    """
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def unique_columns(header: list[str]) -> list[str]:
    """Header names made usable: stripped, blanks named by position, duplicates numbered.

    >>> unique_columns(["id", " text ", "", "id"])
    ['id', 'text', 'column_3', 'id_2']
    """
    out: list[str] = []
    used: set[str] = set()
    last_suffix: dict[str, int] = {}  # per name: the suffix search resumes there (a header of one name
    for i, name in enumerate(header, start=1):  # repeated 20,000 times was quadratic)
        name = name.strip() or f"column_{i}"
        base, n = name, last_suffix.get(name, 1)
        while name in used:
            n += 1
            name = f"{base}_{n}"
        last_suffix[base] = n
        out.append(name)
        used.add(name)
    return out


def _csv_records(text: str, delimiter: str, rel: str) -> tuple[list[str], list[_Record]]:
    old_limit = csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            header = unique_columns(next(rows, []))
            records = [
                _Record(n, f"row {n}", dict(zip(header, row, strict=False)))
                for n, row in enumerate((r for r in rows if any(c.strip() for c in r)), start=1)
            ]
        except csv.Error as exc:
            kind = "TSV" if delimiter == "\t" else "CSV"
            raise LoaderError(rel, f"malformed {kind} at line {rows.line_num}: {exc}") from exc
    finally:
        csv.field_size_limit(old_limit)
    return header, records


def _jsonl_records(text: str, rel: str, warnings: list[str]) -> tuple[list[str], list[_Record]]:
    columns: dict[str, None] = {}  # ordered set: columns in first-seen order
    records: list[_Record] = []
    bad = 0
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            bad += 1
            warnings.append(f"{rel}: line {line_no}: invalid JSON ({exc.msg}), skipped")
            continue
        if not isinstance(value, dict):
            bad += 1
            warnings.append(f"{rel}: line {line_no}: not a JSON object, skipped")
            continue
        columns.update(dict.fromkeys(value))
        records.append(_Record(len(records) + 1, f"line {line_no}", value))
    if bad and not records:
        raise LoaderError(rel, f"not JSON Lines: none of the {bad} non-empty lines is a JSON object")
    return list(columns), records


def _require_text_field(src: Source, config: LoaderConfig, columns: list[str]) -> None:
    if any(f in columns for f in config.text_fields):
        return
    names = ", ".join(repr(f) for f in config.text_fields)
    found = ", ".join(repr(c) for c in columns) or "none"
    raise LoaderError(
        src.rel,
        f"no row has the text field {names}; columns found: {found}",
        hint='set [loaders] text_field = "<column>" (or a list of columns) in jisik.toml',
    )


class _RowBuilder:
    """Turns records into documents, collecting warnings for skipped rows."""

    def __init__(self, src: Source, config: LoaderConfig, encoding: str, columns: list[str]) -> None:
        self.src, self.config, self.encoding = src, config, encoding
        reserved = {*config.text_fields, config.id_field, config.title_field}
        self.meta_columns = config.metadata_fields or [c for c in columns if c not in reserved]
        self.loaded = Loaded()
        self.seen: set[str] = set()

    def warn(self, record: _Record, message: str) -> None:
        self.loaded.warnings.append(f"{self.src.rel}: {record.where}: {message}")

    def key(self, record: _Record) -> str:
        if self.config.id_field is None:
            return str(record.number)
        value = cell_text(record.values.get(self.config.id_field))
        if value is None:
            self.warn(record, f"no value in id field {self.config.id_field!r}, using the record number")
            return str(record.number)
        return value

    def add(self, record: _Record) -> None:
        parts = [(f, cell_text(record.values.get(f))) for f in self.config.text_fields]
        texts = [(f, t) for f, t in parts if t is not None]
        if not texts:
            fields = " or ".join(repr(f) for f in self.config.text_fields)
            self.warn(record, f"no text in field {fields}, row skipped")
            return
        key = self.key(record)
        doc_id = f"{self.src.rel}#{key}"
        if doc_id in self.seen:
            self.warn(record, f"duplicate id {key!r}, row skipped (ids must be unique within a file)")
            return
        self.seen.add(doc_id)
        builder = TextBuilder()
        for field_name, text in texts:
            label = f"row {record.number}"
            builder.add(text, section=label if len(self.config.text_fields) == 1 else f"{label} > {field_name}")
        title = cell_text(record.values.get(self.config.title_field)) if self.config.title_field else None
        self.loaded.documents.append(
            make_document(
                self.src,
                builder,
                title=title or f"{self.src.path.name} #{key}",
                metadata=self.metadata(record),
                doc_id=doc_id,
            )
        )

    def metadata(self, record: _Record) -> dict[str, MetadataValue]:
        meta: dict[str, MetadataValue] = {}
        for column in self.meta_columns:
            value = record.values.get(column)
            if value is None or value == "":
                continue  # CSV writes a missing value as "": no key is the honest equivalent
            if isinstance(value, (list, dict)) and self.config.metadata_fields is None:
                continue  # only copied when asked for by name
            meta[column] = metadata_value(value)
        meta.update({"encoding": self.encoding, "row": record.number})
        return meta


def _build(
    src: Source,
    config: LoaderConfig,
    encoding: str,
    columns: list[str],
    records: list[_Record],
    warnings: list[str],
) -> Loaded:
    _require_text_field(src, config, columns)
    rows = _RowBuilder(src, config, encoding, columns)
    rows.loaded.warnings.extend(warnings)
    count = 0
    for record in records:
        count += 1
        rows.add(record)
    if count == 0:
        rows.loaded.warnings.append(f"{src.rel}: no rows, nothing to index")
    elif not rows.loaded.documents:
        fields = ", ".join(repr(f) for f in config.text_fields)
        raise LoaderError(src.rel, f"none of the {count} rows has text in field {fields}")
    return rows.loaded


def load_delimited(src: Source, config: LoaderConfig) -> Loaded:
    """``.csv`` (comma) and ``.tsv`` (tab); the first row is the header."""
    decoded = decode_bytes(src.data, encoding=config.encoding, path=src.rel)
    delimiter = "\t" if src.ext == ".tsv" else ","
    columns, records = _csv_records(decoded.text, delimiter, src.rel)
    return _build(src, config, decoded.encoding, columns, records, [])


def load_jsonl(src: Source, config: LoaderConfig) -> Loaded:
    """``.jsonl``/``.ndjson``: one JSON object per line; bad lines are skipped with a warning."""
    decoded = decode_bytes(src.data, encoding=config.encoding, path=src.rel)
    warnings: list[str] = []
    columns, records = _jsonl_records(decoded.text, src.rel, warnings)
    return _build(src, config, decoded.encoding, columns, records, warnings)
