"""The tool contract: a name, a description, JSON Schema arguments, and a call that returns text plus passages.

Every tool, built in or the user's, is a :class:`Tool`. A Python function becomes one with :func:`tool`
(the schema comes from its type hints, the descriptions from its docstring); packages add tools through the
``jisik.tools`` entry-point group (:func:`entry_point_tools`). Arguments from a model are checked and coerced
against the schema by :func:`check_arguments` before the call, so a tool never sees ``"5"`` where it asked for
an ``int`` and the model is told exactly what was wrong.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from jisik.errors import AgentError, ToolError
from jisik.generate.llms.base import ToolSpec
from jisik.records import Hit

TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


@dataclass(slots=True)
class ToolResult:
    """What a call gave: ``text`` for the model, ``hits`` for citations (passages the text shows, in order)."""

    text: str
    hits: list[Hit] = field(default_factory=list)
    error: bool = False


class ToolContext(Protocol):
    """What the agent lends a tool during a call: numbering for passages (shared by every call of a run)."""

    def number(self, hit: Hit) -> int:
        """The run-wide citation number of ``hit`` (the same number when a later call finds it again)."""
        ...


@runtime_checkable
class Tool(Protocol):
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of an object

    def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        ...


def spec_of(tool: Tool) -> ToolSpec:
    return ToolSpec(tool.name, tool.description, tool.parameters)


# -- schemas from type hints ------------------------------------------------------------------------------
_SIMPLE: dict[Any, dict[str, Any]] = {str: {"type": "string"}, int: {"type": "integer"},
                                      float: {"type": "number"}, bool: {"type": "boolean"}}


def json_schema(annotation: Any) -> dict[str, Any]:
    """JSON Schema of a type hint: str, int, float, bool, lists, Literal, optional, dict.

    >>> json_schema(list[str])
    {'type': 'array', 'items': {'type': 'string'}}
    >>> json_schema(Literal["ko", "en"])
    {'type': 'string', 'enum': ['ko', 'en']}
    >>> json_schema(int | None)
    {'type': 'integer'}
    """
    if annotation in _SIMPLE:
        return dict(_SIMPLE[annotation])
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        kind = "integer" if all(isinstance(a, int) for a in args) else "string"
        return {"type": kind, "enum": list(args)}
    if origin in (list, tuple, Sequence, set, frozenset) or annotation in (list, tuple):
        item = args[0] if args else str
        return {"type": "array", "items": json_schema(item)}
    if origin in (dict,) or annotation is dict:
        return {"type": "object"}
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return json_schema(rest[0])
        return {"anyOf": [json_schema(a) for a in rest]}
    if annotation is inspect.Parameter.empty or annotation is Any:
        return {"type": "string"}
    raise AgentError(f"tool arguments of type {annotation!r} have no JSON Schema here",
                     hint="use str, int, float, bool, list[...], Literal[...] or dict")


_ARG_LINE = re.compile(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


def _docstring_parts(doc: str | None) -> tuple[str, dict[str, str]]:
    """(summary, {parameter: description}) from a Google-style docstring.

    >>> _docstring_parts('''Add two numbers.
    ...
    ... Args:
    ...     a: the first
    ...     b (int): the second
    ... ''')
    ('Add two numbers.', {'a': 'the first', 'b': 'the second'})
    """
    text = inspect.cleandoc(doc or "")
    summary, _, rest = text.partition("\n\n")
    params: dict[str, str] = {}
    in_args = False
    for line in rest.splitlines():
        if line.strip().lower() in ("args:", "arguments:", "parameters:"):
            in_args = True
            continue
        if in_args:
            match = _ARG_LINE.match(line)
            if match:
                params[match.group(1)] = match.group(2).strip()
            elif line.strip() and not line.startswith((" ", "\t")):
                in_args = False
    return " ".join(summary.split()), params


@dataclass(slots=True)
class FunctionTool:
    """A Python function as a tool. It returns a string or a :class:`ToolResult`; taking a parameter named
    ``context`` gives it the :class:`ToolContext` (to number passages)."""

    function: Callable[..., Any]
    name: str
    description: str
    parameters: dict[str, Any]
    wants_context: bool = False

    def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        extra = {"context": context} if self.wants_context else {}
        value = self.function(**arguments, **extra)
        if isinstance(value, ToolResult):
            return value
        return ToolResult(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str))


def tool(function: Callable[..., Any] | None = None, *, name: str | None = None,
         description: str | None = None) -> Any:
    """Make a Python function a :class:`Tool` (a decorator, with or without arguments).

    >>> @tool
    ... def exchange_rate(currency: str, year: int = 2023) -> str:
    ...     '''The average KRW exchange rate of a currency in a year.
    ...
    ...     Args:
    ...         currency: ISO code, e.g. USD
    ...     '''
    ...     return "1305.4"
    >>> exchange_rate.name, exchange_rate.parameters["required"]
    ('exchange_rate', ['currency'])
    >>> exchange_rate.parameters["properties"]["currency"]
    {'type': 'string', 'description': 'ISO code, e.g. USD'}
    """

    def wrap(fn: Callable[..., Any]) -> FunctionTool:
        tool_name = name or fn.__name__
        if not TOOL_NAME.match(tool_name):
            raise AgentError(f"'{tool_name}' is not a valid tool name", hint="letters, digits, _ . - (≤ 64)")
        summary, docs = _docstring_parts(fn.__doc__)
        hints = typing.get_type_hints(fn)
        properties: dict[str, Any] = {}
        required: list[str] = []
        wants_context = False
        for parameter in inspect.signature(fn).parameters.values():
            if parameter.name == "context":
                wants_context = True
                continue
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            schema = json_schema(hints.get(parameter.name, parameter.annotation))
            if parameter.name in docs:
                schema["description"] = docs[parameter.name]
            if parameter.default is parameter.empty:
                required.append(parameter.name)
            elif parameter.default is not None:
                schema["default"] = parameter.default
            properties[parameter.name] = schema
        if not (description or summary):
            raise AgentError(f"the tool '{tool_name}' has no description",
                             hint="give the function a docstring or pass description=…: the model reads it")
        parameters = {"type": "object", "properties": properties, "required": required}
        return FunctionTool(fn, tool_name, description or summary, parameters, wants_context)

    return wrap(function) if function is not None else wrap


# -- argument checking --------------------------------------------------------------------------------------
def _coerce(value: Any, schema: dict[str, Any], where: str) -> Any:
    kind = schema.get("type")
    if "enum" in schema:
        if value not in schema["enum"] and str(value) in [str(e) for e in schema["enum"]]:
            value = next(e for e in schema["enum"] if str(e) == str(value))
        if value not in schema["enum"]:
            raise ToolError(f"{where} must be one of {schema['enum']}, not {value!r}")
        return value
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return " ".join(value)  # a small model's ["apple", "margin"] for a query
    elif kind == "integer":
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            return value
        elif (isinstance(value, float) and value.is_integer()) or (
                isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value)):
            return int(value)
    elif kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return float(value.replace(",", ""))
            except ValueError:
                pass
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
            return value.strip().lower() in ("true", "yes")
    elif kind == "array":
        items = schema.get("items", {})
        values = value if isinstance(value, list) else [value]
        return [_coerce(v, items, f"{where}[{i}]") for i, v in enumerate(values)]
    elif kind == "object":
        if isinstance(value, dict):
            return value
    else:
        return value
    raise ToolError(f"{where} must be {'an' if kind in ('integer', 'array', 'object') else 'a'} {kind}, "
                    f"not {json.dumps(value, ensure_ascii=False)[:80]}")


def check_arguments(parameters: dict[str, Any], arguments: Any) -> dict[str, Any]:
    """``arguments`` checked against a tool's schema: coerced where unambiguous, else :class:`ToolError` saying
    what to send. A bare value is taken for the one required argument (small models write ``"AAPL margin"``).

    >>> schema = {"type": "object", "properties": {"query": {"type": "string"}, "k": {"type": "integer"}},
    ...           "required": ["query"]}
    >>> check_arguments(schema, {"query": "margin", "k": "3"})
    {'query': 'margin', 'k': 3}
    >>> check_arguments(schema, "gross margin")
    {'query': 'gross margin'}
    >>> check_arguments(schema, {"k": 3})
    Traceback (most recent call last):
    jisik.errors.ToolError: missing argument 'query' (send {"query": …})
    """
    properties: dict[str, Any] = parameters.get("properties", {})
    required: list[str] = list(parameters.get("required", []))
    if not isinstance(arguments, dict):
        if arguments is None or arguments == "":
            arguments = {}
        elif len(required) == 1 or len(properties) == 1:
            arguments = {(required or list(properties))[0]: arguments}
        else:
            raise ToolError(f"arguments must be a JSON object with {', '.join(properties) or 'no keys'}")
    out: dict[str, Any] = {}
    unknown = [key for key in arguments if key not in properties]
    if unknown and len(properties) == 1 and len(arguments) == 1:  # {"q": "..."} for {"query": ...}
        arguments = {next(iter(properties)): next(iter(arguments.values()))}
        unknown = []
    if unknown and parameters.get("additionalProperties", True) is False:
        raise ToolError(f"unknown argument(s) {', '.join(unknown)}; this tool takes {', '.join(properties)}")
    for key, value in arguments.items():
        if key in properties:
            if value is None and key not in required:
                continue
            out[key] = _coerce(value, properties[key], f"argument '{key}'")
    for key in required:
        if key not in out:
            raise ToolError(f"missing argument '{key}'", hint=f'send {{"{key}": …}}')
    return out


# -- a set of tools ---------------------------------------------------------------------------------------------
class ToolSet:
    """The tools of one agent, by name, in the order given (the order the model sees them in)."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.add(item)

    def add(self, item: Tool | Callable[..., Any]) -> None:
        made: Tool = item if isinstance(item, Tool) else tool(item)
        if not TOOL_NAME.match(made.name):
            raise AgentError(f"'{made.name}' is not a valid tool name", hint="letters, digits, _ . - (≤ 64)")
        if made.name in self._tools:
            raise AgentError(f"two tools are named '{made.name}'", hint="give one of them another name")
        self._tools[made.name] = made

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def __iter__(self) -> typing.Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[ToolSpec]:
        return [spec_of(t) for t in self._tools.values()]

    def resolve(self, name: str) -> str | None:
        """The tool a model meant by ``name``: exact, then case/punctuation-insensitive, then a close spelling.

        >>> ToolSet([tool(lambda query: "", name="kb_search", description="d")]).resolve("KB-Search()")
        'kb_search'
        """
        if name in self._tools:
            return name
        def key(text: str) -> str:
            return re.sub(r"[^a-z0-9]", "", text.lower())
        wanted = key(name)
        for known in self._tools:
            if key(known) == wanted:
                return known
        import difflib

        close = difflib.get_close_matches(wanted, [key(k) for k in self._tools], n=1, cutoff=0.8)
        if close:
            return next(k for k in self._tools if key(k) == close[0])
        return None


def entry_point_tools(kb: Any = None, *, names: Sequence[str] | None = None) -> list[Tool]:
    """Tools from installed packages (entry-point group ``jisik.tools``): each entry is a :class:`Tool`, a
    function (made a tool) or a factory ``(kb) -> Tool | list[Tool]``; ``names`` keeps only those entries."""
    from importlib.metadata import entry_points

    found: list[Tool] = []
    for entry in entry_points(group="jisik.tools"):
        if names is not None and entry.name not in names:
            continue
        try:
            value = entry.load()
        except Exception as exc:  # a broken plugin names itself instead of hiding every tool
            raise AgentError(f"the tool plugin '{entry.name}' ({entry.value}) failed to load: {exc}",
                             hint="fix or uninstall the package that provides it") from exc
        if isinstance(value, Tool):
            found.append(value)
        elif getattr(value, "jisik_tool_factory", False):
            made = value(kb)
            found.extend(made if isinstance(made, list) else [made])
        elif callable(value):
            found.append(tool(value, name=entry.name))
    return found
