"""Any OpenAI-compatible ``/v1/chat/completions`` server: vLLM, llama.cpp's server, LM Studio, OpenAI.

Streaming uses server-sent events and asks for a last usage event (``stream_options.include_usage``);
servers that ignore the option (llama-cpp-python's) simply leave the usage unknown.

The context window is, in order: ``llm.context_window`` when configured; what the server says in
``GET /models`` — vLLM's ``max_model_len``, LM Studio's / OpenRouter's ``max_context_length`` /
``context_length``, llama.cpp's ``meta.n_ctx_train`` (refined by its ``/props`` ``n_ctx``, the size
the server was actually started with); else 8192, a conservative guess (OpenAI's own models take
far more, most local servers at least that). If a server refuses a prompt as too long and names
its limit, the window is lowered to that limit for the next calls and the error says so.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

from jisik.errors import ConfigError, GenerationError, LLMResponseError, LLMUnavailableError, ToolsUnsupportedError
from jisik.generate.llms._http import Endpoint, Probed, get_json, post_json, request, sse_events
from jisik.generate.llms._tools import parse_tool_calls
from jisik.generate.llms.base import (
    Completion,
    GenerationOptions,
    Message,
    StreamChunk,
    ToolChoice,
    ToolReply,
    ToolSpec,
)
from jisik.generate.tokens import TokenCounter, counter_for_openai_model

OPENAI_URL = "https://api.openai.com/v1"
FALLBACK_CONTEXT = 8192
_CONTEXT_KEYS = ("max_model_len", "max_context_length", "context_length", "context_window")
_LIMIT = re.compile(r"(?:maximum context length is|context (?:window|size|length) of|n_ctx\D{0,4})\s*(\d{3,7})",
                    re.IGNORECASE)


def is_local(url: str) -> bool:
    """True for loopback and private-network hosts, where servers rarely want an API key.

    >>> is_local("http://127.0.0.1:8000/v1"), is_local("http://localhost:1234/v1"), is_local(OPENAI_URL)
    (True, True, False)
    """
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def context_from_models(models: Any, model: str | None) -> tuple[int | None, bool]:
    """``(context, from_llamacpp)`` for ``model`` in a ``GET /models`` answer.

    >>> context_from_models({"data": [{"id": "m", "max_model_len": 32768}]}, "m")
    (32768, False)
    >>> context_from_models({"data": [{"id": "x.gguf", "meta": {"n_ctx_train": 8192}}]}, None)
    (8192, True)
    >>> context_from_models({"data": [{"id": "a"}, {"id": "b"}]}, "c")
    (None, False)
    """
    entries = models.get("data") if isinstance(models, dict) else None
    if not isinstance(entries, list):
        return None, False
    entries = [e for e in entries if isinstance(e, dict)]
    chosen = next((e for e in entries if e.get("id") == model), entries[0] if len(entries) == 1 else None)
    if chosen is None:
        return None, False
    for key in _CONTEXT_KEYS:
        value = chosen.get(key)
        if isinstance(value, int) and value > 0:
            return value, False
    meta = chosen.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("n_ctx_train"), int):
        return int(meta["n_ctx_train"]), True
    return None, False


def chat_payload(model: str, messages: Sequence[Message], options: GenerationOptions, *, stream: bool,
                 openai_proper: bool) -> dict[str, Any]:
    """The request body. OpenAI itself rejects ``top_k`` and wants ``max_completion_tokens``.

    >>> chat_payload("m", [Message("user", "hi")], GenerationOptions(max_tokens=8, top_k=5), stream=False,
    ...              openai_proper=False)
    {'model': 'm', 'messages': [{'role': 'user', 'content': 'hi'}], 'stream': False, 'temperature': 0.0, \
'max_tokens': 8, 'seed': 0, 'top_k': 5}
    """
    payload: dict[str, Any] = {"model": model, "messages": [m.to_dict() for m in messages], "stream": stream,
                               "temperature": options.temperature}
    payload["max_completion_tokens" if openai_proper else "max_tokens"] = options.max_tokens
    if options.top_p is not None:
        payload["top_p"] = options.top_p
    if options.stop:
        payload["stop"] = list(options.stop)
    if options.seed is not None:
        payload["seed"] = options.seed
    if options.top_k is not None and not openai_proper:
        payload["top_k"] = options.top_k
    if stream:
        payload["stream_options"] = {"include_usage": True}
    return payload


def wire_message(message: Message) -> dict[str, Any]:
    """One message in OpenAI's form: tool calls with ``arguments`` as a JSON *string*, results by ``tool_call_id``.

    >>> from jisik.generate.llms.base import ToolCall
    >>> wire_message(Message("assistant", "", tool_calls=(ToolCall("c1", "kb_search", {"query": "q"}),)))
    {'role': 'assistant', 'content': '', 'tool_calls': [{'id': 'c1', 'type': 'function', \
'function': {'name': 'kb_search', 'arguments': '{"query": "q"}'}}]}
    >>> wire_message(Message("tool", "[1] a.pdf", tool_call_id="c1", name="kb_search"))
    {'role': 'tool', 'content': '[1] a.pdf', 'tool_call_id': 'c1'}
    """
    if message.role == "tool":
        return {"role": "tool", "content": message.content, "tool_call_id": message.tool_call_id or ""}
    out: dict[str, Any] = message.to_dict()
    if message.tool_calls:
        out["tool_calls"] = [{"id": c.id, "type": "function", "function": {
            "name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}} for c in message.tool_calls]
    return out


class _ProbeFailed(GenerationError):
    """The server answered the context probe with an error status: fall back, don't fail."""


class OpenAILLM:
    """A chat model behind an OpenAI-compatible API.

    ``api_key``: given, else read from the environment variable ``api_key_env``; required for
    api.openai.com, sent to other servers when set. ``model`` may be left out for a server that
    serves a single model: its id is read from ``GET /models`` on first use.
    """

    def __init__(self, model: str | None, *, url: str | None = None, api_key: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", context_window: int | None = None,
                 timeout: float = 120.0) -> None:
        self.base_url = (url or OPENAI_URL).rstrip("/")
        self.openai_proper = urllib.parse.urlsplit(self.base_url).hostname == "api.openai.com"
        self.api_key = api_key if api_key is not None else os.environ.get(api_key_env) or None
        self.api_key_env = api_key_env
        if self.openai_proper and not self.api_key:
            raise ConfigError(f"no API key for {self.base_url}: the environment variable {api_key_env} is not set",
                              hint=f"export {api_key_env}=sk-... (or set llm.api_key_env to the variable's name)")
        if model is None and self.openai_proper:
            raise ConfigError("llm.model is required for api.openai.com", hint="e.g. --llm openai:gpt-4o-mini")
        self._model = Probed(self._only_model, model)
        self.name = self._name()
        self._window = Probed(self._probe_context, context_window)
        self._counter: TokenCounter | None = None
        headers = (("Authorization", f"Bearer {self.api_key}"),) if self.api_key else ()
        hint = ("check your network and https://status.openai.com" if self.openai_proper else
                "start the server (e.g. python -m llama_cpp.server --model M.gguf, vllm serve M) or fix llm.url")
        self._endpoint = Endpoint("OpenAI" if self.openai_proper else "the OpenAI-compatible server", hint, timeout,
                                  headers=headers, on_status=self._status_error)
        self._probe = Endpoint(self._endpoint.service, hint, min(timeout, 30.0), headers=headers,
                               on_status=lambda status, detail: _ProbeFailed(f"HTTP {status}: {detail}"))

    # -- LLM protocol -------------------------------------------------------------------------------

    def _name(self) -> str:
        model = self._model.value
        return f"openai:{model}" if self.openai_proper else f"openai:{self.base_url}#{model or ''}"

    @property
    def model(self) -> str:
        if self._model.value is None:
            self._model.get()
            self.name = self._name()
        return self._model.get()

    @property
    def context_window(self) -> int:
        return self._window.get()

    @context_window.setter
    def context_window(self, value: int) -> None:
        self._window.value = value

    @property
    def exact_tokens(self) -> bool:
        """True when tiktoken counts for this model (known OpenAI model, vocabulary loadable)."""
        return self._token_counter().exact

    @exact_tokens.setter
    def exact_tokens(self, value: bool) -> None:
        raise AttributeError("exact_tokens follows the token counter; it cannot be set")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._token_counter().count(texts)

    def generate(self, messages: Sequence[Message], options: GenerationOptions) -> Completion:
        url = f"{self.base_url}/chat/completions"
        answer = post_json(url, self._endpoint, self._payload(messages, options, stream=False))
        try:
            choice = answer["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LLMResponseError(f"unexpected answer from {url}: {str(answer)[:200]}",
                                   hint="is llm.url an OpenAI-compatible /v1 URL?") from exc
        if not isinstance(text, str):
            raise LLMResponseError(f"unexpected message content from {url}: {str(text)[:200]}")
        usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
        return Completion(text, prompt_tokens=_int(usage.get("prompt_tokens")),
                          completion_tokens=_int(usage.get("completion_tokens")),
                          finish_reason=_str(choice.get("finish_reason")), raw=answer)

    def stream(self, messages: Sequence[Message], options: GenerationOptions) -> Iterator[StreamChunk]:
        url = f"{self.base_url}/chat/completions"
        finishes: list[str] = []  # a server that omits [DONE] after a finish_reason has still finished
        usage: dict[str, Any] = {}
        with request(url, self._endpoint, self._payload(messages, options, stream=True)) as response:
            for event in sse_events(response, url, self._endpoint, complete=lambda: bool(finishes)):
                if isinstance(event.get("usage"), dict):
                    usage = event["usage"]
                choices = event.get("choices")
                if not isinstance(choices, list):
                    raise LLMResponseError(f"stream event without 'choices' from {url}: {str(event)[:200]}",
                                           hint="is llm.url an OpenAI-compatible /v1 URL?")
                for choice in choices[:1]:
                    delta = choice.get("delta") if isinstance(choice, dict) else None
                    text = delta.get("content") if isinstance(delta, dict) else None
                    if text:
                        yield StreamChunk(str(text))
                    if isinstance(choice, dict) and choice.get("finish_reason"):
                        finishes.append(str(choice["finish_reason"]))
        yield StreamChunk("", done=True, prompt_tokens=_int(usage.get("prompt_tokens")),
                          completion_tokens=_int(usage.get("completion_tokens")),
                          finish_reason=finishes[-1] if finishes else None)

    def generate_tools(self, messages: Sequence[Message], tools: Sequence[ToolSpec], options: GenerationOptions,
                       tool_choice: ToolChoice = "auto") -> ToolReply:
        """One turn with ``tools`` offered (native tool calling). A server that rejects tools raises
        :class:`ToolsUnsupportedError` (the agent then uses its ReAct prompt)."""
        url = f"{self.base_url}/chat/completions"
        payload = self._payload(messages, options, stream=False)
        payload["messages"] = [wire_message(m) for m in messages]
        if tools:
            payload["tools"] = [t.to_openai() for t in tools]
            payload["tool_choice"] = tool_choice
        try:
            answer = post_json(url, self._endpoint, payload)
        except GenerationError as exc:
            if not isinstance(exc, LLMUnavailableError) and _rejects_tools(exc.message):
                raise ToolsUnsupportedError(f"{self.base_url} does not take tools: {exc.message}",
                                            hint="the agent falls back to its ReAct prompt") from exc
            raise
        try:
            choice = answer["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMResponseError(f"unexpected answer from {url}: {str(answer)[:200]}") from exc
        usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
        return ToolReply(str(message.get("content") or ""), parse_tool_calls(message),
                         prompt_tokens=_int(usage.get("prompt_tokens")),
                         completion_tokens=_int(usage.get("completion_tokens")),
                         finish_reason=_str(choice.get("finish_reason")))

    # -- helpers ------------------------------------------------------------------------------------

    def _payload(self, messages: Sequence[Message], options: GenerationOptions, *, stream: bool) -> dict[str, Any]:
        return chat_payload(self.model, messages, options, stream=stream, openai_proper=self.openai_proper)

    def _token_counter(self) -> TokenCounter:
        if self._counter is None:
            self._counter = counter_for_openai_model(self._model.value or "")
        return self._counter

    def _models(self) -> Any:
        try:
            return get_json(f"{self.base_url}/models", self._probe)
        except (_ProbeFailed, LLMResponseError):
            return None

    def _only_model(self) -> str:
        models = self._models()
        entries = models.get("data") if isinstance(models, dict) else None
        ids = [e["id"] for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)] \
            if isinstance(entries, list) else []
        if len(ids) != 1:
            raise ConfigError(f"llm.model is not set and {self.base_url}/models lists {len(ids)} models "
                              f"({', '.join(ids[:5]) or 'none'})",
                              hint=f"name one: --llm openai:{self.base_url}#MODEL")
        return str(ids[0])

    def _probe_context(self) -> int:
        context, llamacpp = context_from_models(self._models(), self._model.value)
        if llamacpp:  # n_ctx_train is the model's; the server may run with less
            root = re.sub(r"/v1$", "", self.base_url)
            try:
                props = get_json(f"{root}/props", self._probe)
            except (_ProbeFailed, LLMResponseError):
                props = None
            settings = props.get("default_generation_settings") if isinstance(props, dict) else None
            n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
            if isinstance(n_ctx, int) and n_ctx > 0:
                context = min(context or n_ctx, n_ctx)
        return context or FALLBACK_CONTEXT

    def _status_error(self, status: int, detail: str) -> GenerationError | None:
        lowered = detail.lower()
        if status == 400 and "context" in lowered and ("length" in lowered or "exceed" in lowered
                                                        or "window" in lowered or "size" in lowered):
            limit = _LIMIT.search(detail)
            message = f"the prompt does not fit the server's context window: {detail}"
            if limit:
                self._window.value = int(limit.group(1))
                message += f" (context_window lowered to {limit.group(1)} for the next calls)"
                return GenerationError(message, hint=f"set llm.context_window = {limit.group(1)}")
            return GenerationError(message, hint="set llm.context_window to the server's context size")
        if status in (401, 403):
            return LLMUnavailableError(f"{self.base_url} refused the API key (HTTP {status}: {detail})",
                                       hint=f"set {self.api_key_env} to a valid key")
        if status == 404 and "model" in lowered:
            return LLMUnavailableError(f"{self.base_url} has no model '{self._model.value}' ({detail})",
                                       hint=f"check llm.model; GET {self.base_url}/models lists the served ones")
        if status == 404:
            return LLMUnavailableError(f"no chat completions API at {self.base_url} (HTTP 404: {detail})",
                                       hint="llm.url must end in /v1, e.g. http://localhost:8000/v1")
        return None


def _rejects_tools(detail: str) -> bool:
    """True for a server's "no tools here" refusal (vLLM without auto tool choice, old llama.cpp servers).

    >>> _rejects_tools('"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set')
    True
    >>> _rejects_tools("model not found")
    False
    """
    lowered = detail.lower()
    return "tool" in lowered and any(word in lowered for word in (
        "not supported", "unsupported", "requires", "not enabled", "does not support", "jinja", "unknown",
        "unrecognized", "extra fields", "invalid"))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
