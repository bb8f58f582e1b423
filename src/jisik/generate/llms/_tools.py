"""Tool calls on the wire, read the same way for every server: OpenAI sends ``arguments`` as a JSON string with an
``id`` per call, Ollama an object and no id; both come out as :class:`~jisik.generate.llms.base.ToolCall`."""

from __future__ import annotations

import json
from typing import Any

from jisik.generate.llms.base import ToolCall


def parse_tool_calls(message: Any) -> list[ToolCall]:
    """The calls of a ``message`` (OpenAI's ``choices[0].message``, Ollama's ``message``); a call without an id
    (Ollama) is numbered so its result pairs with it; arguments that are not a JSON object are kept as an error for
    the agent to report back (small models write ``{'query': …}`` or prose).

    >>> parse_tool_calls({"tool_calls": [{"id": "c1", "type": "function",
    ...                   "function": {"name": "kb_search", "arguments": '{"query": "margin"}'}}]})
    [ToolCall(id='c1', name='kb_search', arguments={'query': 'margin'}, arguments_error=None)]
    >>> parse_tool_calls({"tool_calls": [{"function": {"name": "kb_search", "arguments": {"query": "margin"}}}]})
    [ToolCall(id='call_0', name='kb_search', arguments={'query': 'margin'}, arguments_error=None)]
    """
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    out: list[ToolCall] = []
    for index, call in enumerate(calls if isinstance(calls, list) else []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            continue
        arguments, error = decode_arguments(function.get("arguments"))
        out.append(ToolCall(str(call.get("id") or f"call_{index}"), function["name"], arguments, error))
    return out


def decode_arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """Tool-call arguments as a dict, from a JSON string (OpenAI) or an object (Ollama); else ``({}, why)``.

    >>> decode_arguments('{"a": 1}'), decode_arguments({"a": 1}), decode_arguments("")
    (({'a': 1}, None), ({'a': 1}, None), ({}, None))
    >>> decode_arguments("{'a': 1,}")[0]
    {'a': 1}
    """
    if raw is None or raw == "":
        return {}, None
    if isinstance(raw, dict):
        return raw, None
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            from jisik.agent.react import loads_lenient  # the agent's tolerant reader: quotes, trailing commas

            try:
                value, _ = loads_lenient(raw)
            except ValueError:
                return {}, f"not JSON: {raw[:120]}"
        if isinstance(value, dict):
            return value, None
        return {"__bare__": value}, None
    return {}, f"arguments of type {type(raw).__name__}"
