"""Compile a :class:`~jisik.filters.Filter` into a SQL WHERE clause over chunks ``c``
joined with documents ``d``."""

from __future__ import annotations

from jisik.filters import BUILTIN_FIELDS, Condition, Filter, Scalar

_SQL_OPS = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "glob": "GLOB"}
_COLUMNS = {"source": "d.source", "doc_id": "c.doc_id", "title": "d.title", "page": "c.page",
            "section": "c.section"}


def compile_filter(where: Filter) -> tuple[str, list[object]]:
    """
    >>> from jisik.filters import build_filter
    >>> compile_filter(build_filter(["page>=2", "lang=ko"]))[0]
    'c.page >= ? AND EXISTS (SELECT 1 FROM doc_meta m WHERE m.doc_id = c.doc_id AND m.key = ? AND m.text_value = ?)'
    """
    clauses: list[str] = []
    params: list[object] = []
    for cond in where.conditions:
        sql, args = _condition(cond)
        clauses.append(sql)
        params.extend(args)
    return (" AND ".join(clauses) or "1"), params


def _condition(cond: Condition) -> tuple[str, list[object]]:
    if cond.key in BUILTIN_FIELDS:
        column = _COLUMNS[cond.key]
        if cond.op == "in":
            values: list[object] = list(cond.value) if isinstance(cond.value, tuple) else [cond.value]
            return f"{column} IN ({','.join('?' * len(values))})", values
        if cond.key == "source" and cond.op == "glob":
            # Sources start with the ingested folder's name ("manuals/policies/a.pdf"); a pattern may
            # leave that out ("policies/*.pdf"), so it also matches after any leading folders.
            return f"({column} GLOB ? OR {column} GLOB ?)", [cond.value, f"*/{cond.value}"]
        return f"{column} {_SQL_OPS[cond.op]} ?", [cond.value]
    if cond.op == "ne":
        inner, args = _meta_match(cond.key, "eq", cond.value)
        return f"NOT {inner}", args
    return _meta_match(cond.key, cond.op, cond.value)


def _meta_match(key: str, op: str, value: Scalar | tuple[Scalar, ...]) -> tuple[str, list[object]]:
    head = "EXISTS (SELECT 1 FROM doc_meta m WHERE m.doc_id = c.doc_id AND m.key = ? AND "
    if op == "in":
        values = value if isinstance(value, tuple) else (value,)
        parts, args = [], []
        for item in values:
            column, stored = _column_for(item)
            parts.append(f"m.{column} = ?")
            args.append(stored)
        return head + "(" + (" OR ".join(parts) or "0") + "))", [key, *args]
    assert not isinstance(value, tuple)
    column, stored = _column_for(value)
    if op == "glob" and column != "text_value":
        column, stored = "text_value", str(value)
    return head + f"m.{column} {_SQL_OPS[op]} ?)", [key, stored]


def _column_for(value: Scalar) -> tuple[str, object]:
    """Numbers (and booleans, as 0/1) compare in ``num_value``; text in ``text_value``."""
    if isinstance(value, bool):
        return "num_value", int(value)
    if isinstance(value, int | float):
        return "num_value", float(value)
    return "text_value", value


def meta_rows(doc_id: str, metadata: dict[str, object]) -> list[tuple[str, str, str | None, float | None]]:
    """Rows for ``doc_meta``: one per scalar value (lists give one row per item).

    >>> for row in meta_rows("a", {"year": 2020, "lang": "ko", "tags": ["x", "y"], "ok": True}): print(row)
    ('a', 'year', '2020', 2020.0)
    ('a', 'lang', 'ko', None)
    ('a', 'tags', 'x', None)
    ('a', 'tags', 'y', None)
    ('a', 'ok', 'true', 1.0)
    """
    rows: list[tuple[str, str, str | None, float | None]] = []
    for key, value in metadata.items():
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if item is None:
                continue
            if isinstance(item, bool):
                rows.append((doc_id, key, "true" if item else "false", float(item)))
            elif isinstance(item, int | float):
                rows.append((doc_id, key, str(item), float(item)))
            else:
                rows.append((doc_id, key, str(item), _maybe_number(str(item))))
    return rows


def _maybe_number(text: str) -> float | None:
    """Metadata from CSV/--meta arrives as text; keep a numeric copy so ranges work.

    >>> _maybe_number("2021"), _maybe_number("ko")
    (2021.0, None)
    """
    try:
        return float(text)
    except ValueError:
        return None
