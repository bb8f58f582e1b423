"""Metadata filters: parsed from CLI strings or Python dicts into backend-neutral conditions.

A bottom-layer module (it imports only :mod:`jisik.errors`): the stores compile these conditions,
retrieval and the CLI build them.

Each store compiles a :class:`Filter` into its own query language (SQL for the local store,
boolean expressions for Milvus), so callers never depend on the backend.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jisik.errors import QueryError

Op = Literal["eq", "ne", "in", "gt", "gte", "lt", "lte", "glob"]
Scalar = str | int | float | bool

# Fields every chunk has; all other keys are looked up in the document's metadata.
BUILTIN_FIELDS = frozenset({"source", "doc_id", "title", "page", "section"})

_CLI = re.compile(r"^\s*(?P<key>[\w.\-]+)\s*(?P<op>>=|<=|!=|=|>|<|\s+in\s+)\s*(?P<value>.*?)\s*$")
_GLOB_CHARS = re.compile(r"[*?\[]")
_OPS: dict[str, Op] = {"=": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "in": "in"}
_DICT_OPS: dict[str, Op] = {"eq": "eq", "ne": "ne", "in": "in", "gt": "gt", "gte": "gte", "lt": "lt",
                            "lte": "lte", "glob": "glob", "$eq": "eq", "$ne": "ne", "$in": "in", "$gt": "gt",
                            "$gte": "gte", "$lt": "lt", "$lte": "lte"}


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    op: Op
    value: Scalar | tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Filter:
    """All conditions must hold (AND)."""

    conditions: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.conditions)


def parse_scalar(text: str) -> Scalar:
    """Read a CLI value: integers and floats become numbers, ``true``/``false`` booleans, else text.

    Dates stay text: ISO dates (2024-05-01) compare correctly as strings.

    >>> parse_scalar("2020"), parse_scalar("0.5"), parse_scalar("true"), parse_scalar("2024-05-01")
    (2020, 0.5, True, '2024-05-01')
    """
    stripped = text.strip().strip("'\"") if len(text.strip()) > 1 else text.strip()
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        return float(stripped)
    except ValueError:
        return stripped


def parse_condition(expression: str) -> Condition:
    """Parse one ``key<op>value`` expression.

    ``=`` with glob characters (``* ? [``) means a glob match; ``key in a,b`` or ``key=[a,b]``
    means membership.

    >>> parse_condition("source=policies/*.pdf")
    Condition(key='source', op='glob', value='policies/*.pdf')
    >>> parse_condition("year>=2020")
    Condition(key='year', op='gte', value=2020)
    >>> parse_condition("lang in ko,en")
    Condition(key='lang', op='in', value=('ko', 'en'))
    """
    match = _CLI.match(expression)
    if not match or not match.group("value"):
        raise QueryError(f"cannot read filter '{expression}'",
                         hint="use key=value, key!=value, key>=number, key in a,b or source=glob/*.pdf")
    key, raw_op, raw = match.group("key"), match.group("op").strip(), match.group("value")
    op = _OPS[raw_op]
    if op == "eq" and raw.startswith("[") and raw.endswith("]"):
        op, raw = "in", raw[1:-1]
    if op == "in":
        return Condition(key, "in", tuple(parse_scalar(v) for v in raw.split(",") if v.strip()))
    value = parse_scalar(raw)
    if op == "eq" and isinstance(value, str) and _GLOB_CHARS.search(value):
        op = "glob"
    return Condition(key, op, value)


def source_matches(pattern: str, value: str) -> bool:
    """Whether a source or doc id matches ``pattern`` as ``source=glob`` filters match: glob
    characters (``* ? [``) anchor the whole value, also after any leading folders; a pattern
    without them matches anywhere in it.

    >>> source_matches("policies/*", "docs/policies/a.md"), source_matches("faq", "docs/faq.csv#2")
    (True, True)
    >>> source_matches("*.pdf", "docs/a.md")
    False
    """
    if not any(char in pattern for char in "*?["):
        return pattern in value
    return fnmatch.fnmatchcase(value, pattern) or fnmatch.fnmatchcase(value, f"*/{pattern}")


def build_filter(spec: Filter | Mapping[str, Any] | Iterable[str] | None) -> Filter:
    """Accept a Filter, a dict (``{"year": {"gte": 2020}, "lang": ["ko", "en"]}``) or CLI strings.

    >>> build_filter({"lang": ["ko", "en"], "year": {"gte": 2020}}).conditions
    (Condition(key='lang', op='in', value=('ko', 'en')), Condition(key='year', op='gte', value=2020))
    """
    if spec is None:
        return Filter()
    if isinstance(spec, Filter):
        return spec
    if isinstance(spec, Mapping):
        return Filter(tuple(c for key, value in spec.items() for c in _dict_conditions(str(key), value)))
    if isinstance(spec, str):
        return Filter((parse_condition(spec),))
    return Filter(tuple(parse_condition(item) for item in spec))


def _dict_conditions(key: str, value: Any) -> list[Condition]:
    if isinstance(value, Mapping):
        out = []
        for op_name, operand in value.items():
            op = _DICT_OPS.get(str(op_name))
            if op is None:
                raise QueryError(f"unknown filter operator '{op_name}' for '{key}'",
                                 hint="use one of eq, ne, in, gt, gte, lt, lte, glob")
            operand = tuple(operand) if op == "in" else operand
            out.append(Condition(key, op, operand))
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [Condition(key, "in", tuple(value))]
    if isinstance(value, str) and _GLOB_CHARS.search(value):
        return [Condition(key, "glob", value)]
    if not isinstance(value, str | int | float | bool):
        raise QueryError(f"filter value for '{key}' must be text, a number, a list or an operator dict")
    return [Condition(key, "eq", value)]
