"""Compile a :class:`~jisik.filters.Filter` into a Milvus boolean expression with its values as parameters.

Values never enter the expression text: each becomes a ``{p0}`` placeholder with its value in
``params`` (Milvus's expression templates, ``filter_params``). Servers older than Milvus 2.5 and
milvus-lite have no templates; for them :func:`render` writes each value as an escaped literal, from
the value's type (a quote or a backslash in a document id is escaped, never pasted).
Field names are fixed (the collection's own) or metadata keys, which must be plain names.

Globs (``source=policies/*.pdf``) have the embedded store's exact meaning: the knowledge base's
document table in SQLite resolves them to document ids (``resolve``), since Milvus's ``like``
has other wildcards and Milvus 2.3 only matches prefixes. So does a range over a list-valued
metadata key (``years>=2022`` holds for ``[2020, 2023]``), which Milvus's JSON filters cannot say.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence

from jisik.errors import QueryError
from jisik.filters import Condition, Filter, Scalar

Params = dict[str, object]
# the document ids a condition selects that Milvus cannot find itself: all matches of a glob, and the documents whose
# list value has an item in a range
Resolver = Callable[[Condition], list[str]]

# text fields of the collection; page is INT64 with -1 for "no page"
TEXT_FIELDS = frozenset({"source", "doc_id", "title", "section"})
_OPS = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_META_KEY = re.compile(r"^[\w.\-]+$")
_PLACEHOLDER = re.compile(r"\{(p\d+)\}")


class _Builder:
    def __init__(self) -> None:
        self.params: Params = {}

    def param(self, value: object) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "{" + name + "}"


def compile_filter(where: Filter, resolve: Resolver, *, extra: Sequence[tuple[str, object]] = ()
                   ) -> tuple[str, Params]:
    """The expression and parameters for ``where`` (AND of its conditions), plus ``extra`` clauses:
    ``(template, value)`` pairs whose ``{}`` takes the value as a parameter.

    >>> from jisik.filters import build_filter
    >>> compile_filter(build_filter(["page>=2", "lang=ko"]), lambda c: [])
    ('page >= {p0} && (meta["lang"] == {p1} || json_contains(meta["lang"], {p1}))', {'p0': 2, 'p1': 'ko'})
    >>> compile_filter(build_filter(["source=a/*"]), lambda c: ["a/x.md", 'a/"q".md'], extra=[("gen <= {}", 7)])
    ('doc_id in {p0} && gen <= {p1}', {'p0': ['a/x.md', 'a/"q".md'], 'p1': 7})
    """
    builder = _Builder()
    clauses = [_condition(cond, builder, resolve) for cond in where.conditions]
    clauses.extend(template.format(builder.param(value)) for template, value in extra)
    return " && ".join(clauses), builder.params


def _condition(cond: Condition, builder: _Builder, resolve: Resolver) -> str:
    if cond.op == "glob":
        if cond.key == "section":
            return f"section like {builder.param(_like_prefix(cond))}"
        return f"doc_id in {builder.param(resolve(cond))}"
    if cond.key in TEXT_FIELDS or cond.key == "page":
        values = list(cond.value) if isinstance(cond.value, tuple) else [cond.value]
        for value in values:
            _check_builtin(cond.key, value)
        if cond.op == "in":
            return f"{cond.key} in {builder.param(values)}"
        return f"{cond.key} {_OPS[cond.op]} {builder.param(cond.value)}"
    if not _META_KEY.match(cond.key):
        raise QueryError(f"cannot filter on metadata key {cond.key!r} in Milvus",
                         hint="metadata keys used in filters must be letters, digits, '_', '-' or '.'")
    field = f"meta[{json.dumps(cond.key)}]"
    if cond.op == "in":
        items = cond.value if isinstance(cond.value, tuple) else (cond.value,)
        return "(" + (" || ".join(_meta_equals(field, v, builder) for v in items) or "false") + ")"
    assert not isinstance(cond.value, tuple)
    if cond.op == "eq":
        return _meta_equals(field, cond.value, builder)
    if cond.op == "ne":  # as in the embedded store, a document without the key is not equal (milvus-lite drops it)
        return f"((not exists {field}) || (not {_meta_equals(field, cond.value, builder)}))"
    in_range = f"{field} {_OPS[cond.op]} {builder.param(normalise_value(cond.value))}"
    return f"({in_range} || doc_id in {builder.param(resolve(cond))})"


def _meta_equals(field: str, value: Scalar, builder: _Builder) -> str:
    """A metadata value equals ``value``, or a list value holds it (the embedded store's meaning)."""
    placeholder = builder.param(normalise_value(value))
    return f"({field} == {placeholder} || json_contains({field}, {placeholder}))"


def _check_builtin(key: str, value: object) -> None:
    if key == "page" and (isinstance(value, bool) or not isinstance(value, int)):
        raise QueryError(f"page must be compared with a whole number, not {value!r}")
    if key in TEXT_FIELDS and not isinstance(value, str):
        raise QueryError(f"{key} must be compared with text, not {value!r}", hint=f'quote it: {key}="{value}"')


def _like_prefix(cond: Condition) -> str:
    """``section=Chapter 1*`` as Milvus's ``like "Chapter 1%"``: only a trailing ``*`` (what every Milvus matches).

    >>> _like_prefix(Condition("section", "glob", "제1장*"))
    '제1장%'
    """
    pattern = str(cond.value)
    body = pattern[:-1] if pattern.endswith("*") else pattern
    if any(char in body for char in "*?[%_\\"):
        raise QueryError(f"Milvus cannot filter section={pattern}",
                         hint="only a prefix pattern ending in '*' works on section with Milvus, e.g. section=제1장*")
    return body + "%"


def normalise_value(value: Scalar) -> Scalar:
    """How a metadata value is stored and compared in Milvus's JSON: text that *is* a number written plainly becomes
    that number, ``true``/``false`` a boolean (CSV columns and ``--meta`` arrive as text), so ``year>=2022`` and
    ``ok=true`` work as in the embedded store; text that only reads as one ("007", "1e3") stays text.

    >>> normalise_value("2021"), normalise_value("ko"), normalise_value("true"), normalise_value("0.5")
    (2021, 'ko', True, 0.5)
    >>> normalise_value("007"), normalise_value("1e3"), normalise_value("-3")
    ('007', '1e3', -3)
    """
    if not isinstance(value, str):
        return value
    if value in ("true", "false"):
        return value == "true"
    for kind in (int, float):
        try:
            number = kind(value)
        except ValueError:
            continue
        if str(number) == value:  # written the way Python writes that number: nothing is lost
            return number
    return value


def normalise_metadata(metadata: Mapping[str, object]) -> dict[str, object]:
    """The ``meta`` JSON of a chunk: scalar values normalised, lists item by item, other values as text.

    >>> normalise_metadata({"year": "2024", "tags": ["a", "3"], "nested": {"x": 1}, "none": None})
    {'year': 2024, 'tags': ['a', 3], 'nested': "{'x': 1}"}
    """
    out: dict[str, object] = {}
    for key, value in metadata.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            out[key] = [normalise_value(v) if isinstance(v, str | int | float | bool) else str(v)
                        for v in value if v is not None]
        elif isinstance(value, str | int | float | bool):
            out[key] = normalise_value(value)
        else:
            out[key] = str(value)
    return out


def literal(value: object) -> str:
    """A value written as a Milvus expression literal.

    >>> print(literal('a "b" \\\\ c'), literal([1, "x"]), literal(True), literal(2.5))
    "a \\"b\\" \\\\ c" [1, "x"] true 2.5
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
                   .replace("\t", "\\t"))
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"no Milvus literal for {value!r}")


def render(expression: str, params: Params) -> str:
    """The expression with each placeholder replaced by its value's literal (servers without templates).

    >>> render('doc_id == {p0} && page > {p1}', {"p0": 'x"y', "p1": 2})
    'doc_id == "x\\\\"y" && page > 2'
    """
    return _PLACEHOLDER.sub(lambda m: literal(params[m.group(1)]), expression)
