"""Reading values the way small models write them: JSON leniently (single quotes, unquoted keys, trailing
commas, cut off by the token limit), JSON inside prose, ``key: value`` pairs, the arguments of ``tool(…)``.

The ReAct parser (:mod:`jisik.agent.react`) reads a turn's fields; this module reads what is inside them. Every
function is pure and bounded: a model's turn is short, and a pathological one (thousands of brackets) must not
cost more than a moment.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["balanced", "call_arguments", "closed", "find_json", "is_json", "loads_lenient", "pairs", "parse_input",
           "scalar", "scan", "strip_fences", "unquote"]


def strip_fences(text: str) -> str:
    """``text`` without the Markdown code fence or backticks around it.

    >>> strip_fences('```json\\n{"query": "x"}\\n```'), strip_fences("`kb_search`")
    ('{"query": "x"}', 'kb_search')
    """
    text = text.strip()
    fenced = re.match(r"^```[a-zA-Z]*\s*(.*?)\s*```$", text, re.DOTALL)
    return fenced.group(1).strip() if fenced else text.strip("`").strip()


def scan(text: str, start: int) -> tuple[int | None, str, list[str]]:
    """Walk from the bracket at ``start``, quotes respected: (index where it closes, or None; the open quote; the
    brackets still open, innermost last).

    >>> scan('{"a": [1, "x', 0)
    (None, '"', ['}', ']'])
    """
    closing = {"{": "}", "[": "]", "(": ")"}
    stack: list[str] = []
    quote, escaped = "", False
    for index in range(start, len(text)):
        ch = text[index]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in closing:
            stack.append(closing[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
            if not stack:
                return index, "", []
    return None, quote, stack


def balanced(text: str, start: int) -> str | None:
    """The ``{…}`` (or ``[…]``) that opens at ``start``, quotes respected; None if it never closes.

    >>> balanced('x {"a": "}"} y', 2)
    '{"a": "}"}'
    """
    end, _, _ = scan(text, start)
    return text[start:end + 1] if end is not None else None


def closed(text: str) -> str:
    """``text`` (a JSON value that opens at 0) with the quote and brackets it left open closed: a turn cut off by
    the token limit, or a model that forgot the last brace.

    >>> closed('{"query": "return per')
    '{"query": "return per"}'
    """
    end, quote, stack = scan(text, 0)
    return text if end is not None else text.rstrip() + quote + "".join(reversed(stack))


def is_json(value: Any) -> bool:
    """Whether a Python value is one JSON can hold (Python literal syntax also makes sets, tuples, bytes).

    >>> is_json({"query": ["a", 1, None]}), is_json({"query"}), is_json({1: "a"})
    (True, False, False)
    """
    if isinstance(value, dict):
        return all(isinstance(key, str) and is_json(item) for key, item in value.items())
    if isinstance(value, list):
        return all(is_json(item) for item in value)
    return value is None or isinstance(value, str | int | float | bool)


def _json_literal(node: str | ast.expr) -> Any:
    """:func:`ast.literal_eval`, for values JSON can hold only: ``{"query"}`` (a set, from JSON cut off) is refused."""
    value = ast.literal_eval(node)
    if not is_json(value):
        raise ValueError(f"not a JSON value: {type(value).__name__}")
    return value


def loads_lenient(text: str) -> tuple[Any, list[str]]:
    """A JSON value from what a model wrote: strict JSON, else Python literal syntax (single quotes, True),
    else with trailing commas removed; raises ValueError when none of these reads it.

    >>> loads_lenient('{"query": "margin"}')
    ({'query': 'margin'}, [])
    >>> loads_lenient("{'query': 'margin', 'k': 3,}")
    ({'query': 'margin', 'k': 3}, ['python_literal'])
    >>> loads_lenient("{query: '배송비', k: 2}")
    ({'query': '배송비', 'k': 2}, ['unquoted_keys', 'python_literal'])
    """
    try:
        return json.loads(text), []
    except (ValueError, RecursionError):
        pass
    cleaned = re.sub(r",\s*([}\]])", r"\1", text)
    try:
        return json.loads(cleaned), ["trailing_comma"]
    except (ValueError, RecursionError):
        pass
    try:
        value, fixes = _json_literal(cleaned), ["python_literal"]
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        quoted = re.sub(r"([{,]\s*)([A-Za-z_][\w-]*)\s*:", r'\1"\2":', cleaned)  # {query: 'x'}, a JS literal
        if quoted == cleaned:
            raise ValueError(str(exc)) from exc
        value, fixes = loads_lenient(quoted)
        fixes = ["unquoted_keys", *fixes]
    if isinstance(value, dict | list | str | int | float):
        return value, fixes
    raise ValueError("not a JSON value")


JSON_STARTS = 32  # a turn holds one object, maybe inside another or after a few braces of prose


def find_json(text: str) -> tuple[Any, int, int] | None:
    """The first JSON object in ``text`` (prose around it allowed): ``(value, start, end)``.

    >>> find_json('I will search. {"query": "Apple margin"} then answer.')[0]
    {'query': 'Apple margin'}

    Only the first :data:`JSON_STARTS` braces are tried: each try may scan to the end of the text.
    """
    for number, match in enumerate(re.finditer(r"\{", text)):
        if number >= JSON_STARTS:
            break
        block = balanced(text, match.start())
        if block is None:
            continue
        try:
            value, _ = loads_lenient(block)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value, match.start(), match.start() + len(block)
    return None


# -- arguments ------------------------------------------------------------------------------------------------
# one ``key: value`` or ``key=value``: the value quoted, a [list], or anything up to a comma, semicolon or newline
_PAIR = re.compile(r"""\s*["']?([A-Za-z_]\w*)["']?\s*[:=]\s*("[^"\n]*"|'[^'\n]*'|\[[^\]\n]*\]|[^,;\n]+?)"""
                   r"""(?:\s*(?:[,;\n]|$)|(?<=["'\]])\s+and\s+)""")


def scalar(text: str) -> Any:
    """A written value: a JSON or Python literal where it reads as one, else the text without quotes."""
    with contextlib.suppress(ValueError):
        value, _ = loads_lenient(text)
        return value
    return unquote(text)


def pairs(text: str, properties: Sequence[str]) -> dict[str, Any] | None:
    """``query: return period, k: 3`` (or ``key=value``, one per line) as arguments, when the text is nothing but
    such pairs and some key is one of the tool's (the others are dropped); else None.

    >>> pairs('query: "return period", k: 3', ["query", "k"])
    {'query': 'return period', 'k': 3}
    >>> pairs('contains: "Apple" and period: "2023"', ["contains"])
    {'contains': 'Apple'}
    >>> pairs("the return period", ["query"]) is None
    True
    """
    body = text.strip()
    if body[:1] in "{(" and body[-1:] in "})":
        body = body[1:-1].strip()
    out: dict[str, Any] = {}
    position = 0
    known = {name.lower(): name for name in properties}
    while position < len(body):
        match = _PAIR.match(body, position)
        if match is None:
            return None
        if match.group(1).lower() in known:
            out[known[match.group(1).lower()]] = scalar(match.group(2).strip())
        position = match.end()
    return out or None


def call_arguments(inner: str, properties: Sequence[str]) -> Any:
    """The arguments written inside ``tool(…)``: keywords by name, positions in the schema's order, a single
    value as it is (a bare string, or a JSON object).

    >>> call_arguments('"return period", k=3', ["query", "source", "filters", "k"])
    {'query': 'return period', 'k': 3}
    >>> call_arguments('contains: "manual"', ["contains"])
    {'contains': 'manual'}
    >>> call_arguments('반품 기간', ["query"])
    '반품 기간'
    """
    if not inner.strip():
        return {}
    try:
        call = ast.parse(f"f({inner})", mode="eval").body
        assert isinstance(call, ast.Call)
        positional = [_json_literal(a) for a in call.args]
        keywords = {k.arg: _json_literal(k.value) for k in call.keywords if k.arg}
    except (AssertionError, ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        written = pairs(inner, properties)
        return written if written is not None else scalar(inner.strip())
    if len(positional) == 1 and not keywords:
        return positional[0]
    return {**dict(zip(properties, positional, strict=False)), **keywords}


def unquote(text: str) -> str:
    """``text`` without one pair of quotes or backticks around it.

    >>> unquote('"반품 기간"'), unquote("it's")
    ('반품 기간', "it's")
    """
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        return text[1:-1]
    return text


def parse_input(raw: str, repairs: list[str], properties: Sequence[str]) -> Any:
    """An ``Action Input`` value: JSON (leniently, closed if cut off), JSON inside prose, ``key: value`` pairs of
    the tool's arguments, else the first line (a bare string).

    >>> parse_input('{"query": "반품", "k": 3', [], ["query", "k"])
    {'query': '반품', 'k': 3}
    >>> parse_input('query: 반품 기간', [], ["query", "k"])
    {'query': '반품 기간'}
    """
    text = strip_fences(raw)
    if not text:
        return None
    if text[0] in "{[":
        block = balanced(text, 0)
        with contextlib.suppress(ValueError):
            value, fixes = loads_lenient(block if block is not None else closed(text))
            repairs.extend(fixes)
            if block is None:
                repairs.append("unclosed_json")
            elif block != text:
                repairs.append("text_after_input")
            return value
    found = find_json(text)
    if found is not None:
        repairs.append("json_in_prose")
        return found[0]
    written = pairs(text, properties)
    if written is not None:
        repairs.append("key_value_input")
        return written
    first = text.splitlines()[0].strip()
    if first != text:
        repairs.append("input_first_line")
    value = scalar(first)
    if isinstance(value, str) and value.strip()[:1] == "{" and value != text:  # "{ company: \"x\" }": JSON as a string
        inner = parse_input(value, [], properties)
        if isinstance(inner, dict):
            repairs.append("json_as_string")
            return inner
    return value if isinstance(value, str | dict) else first
