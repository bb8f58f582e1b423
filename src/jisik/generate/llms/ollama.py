"""Ollama through its native ``/api/chat`` endpoint (not its OpenAI shim).

Why native: only ``/api/chat`` takes ``options.num_ctx``. Ollama loads a model with a small default
context (2048 or 4096 tokens, depending on the version) and *silently drops the start of a longer
prompt* — the system prompt and the first retrieved passages. We always send ``num_ctx`` equal to
:attr:`OllamaLLM.context_window`, and fit prompts to that window before sending them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from jisik.errors import GenerationError, LLMResponseError, LLMUnavailableError, ToolsUnsupportedError
from jisik.generate.llms._http import Endpoint, Probed, ndjson_events, post_json, request
from jisik.generate.llms._tools import parse_tool_calls
from jisik.generate.llms.base import (
    Completion,
    GenerationOptions,
    Message,
    StreamChunk,
    ToolChoice,
    ToolReply,
    ToolSpec,
    messages_token_overhead,
)
from jisik.generate.tokens import estimate_tokens

DEFAULT_URL = "http://localhost:11434"
# Context used when none is configured: the model's own length (``/api/show``), capped here because
# Ollama allocates the whole KV cache for num_ctx up front (a 128k window costs gigabytes on a laptop).
CONTEXT_CAP = 8192
# For models whose metadata gives no length: Ollama's own default since 0.6.
UNKNOWN_CONTEXT = 4096


def ollama_options(options: GenerationOptions, num_ctx: int) -> dict[str, Any]:
    """Map :class:`GenerationOptions` to Ollama's ``options`` (``None`` fields are left out).

    >>> ollama_options(GenerationOptions(max_tokens=64, stop=("\\n\\n",)), 8192)
    {'num_ctx': 8192, 'temperature': 0.0, 'num_predict': 64, 'stop': ['\\n\\n'], 'seed': 0}
    """
    out: dict[str, Any] = {"num_ctx": num_ctx, "temperature": options.temperature, "num_predict": options.max_tokens}
    if options.top_p is not None:
        out["top_p"] = options.top_p
    if options.top_k is not None:
        out["top_k"] = options.top_k
    if options.stop:
        out["stop"] = list(options.stop)
    if options.seed is not None:
        out["seed"] = options.seed
    return out


def context_length(show: Any) -> int | None:
    """The model's trained context from an ``/api/show`` answer (``model_info["<arch>.context_length"]``).

    >>> context_length({"model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768}})
    32768
    >>> context_length({"model_info": {}}) is None
    True
    """
    info = show.get("model_info") if isinstance(show, dict) else None
    if not isinstance(info, dict):
        return None
    arch = info.get("general.architecture")
    value = info.get(f"{arch}.context_length") if isinstance(arch, str) else None
    if not isinstance(value, int):
        value = next((v for k, v in info.items() if k.endswith(".context_length") and isinstance(v, int)), None)
    return value if isinstance(value, int) and value > 0 else None


def wire_message(message: Message) -> dict[str, Any]:
    """One message in Ollama's form: tool calls with ``arguments`` as an *object*, results by ``tool_name``.

    >>> from jisik.generate.llms.base import ToolCall
    >>> wire_message(Message("assistant", "", tool_calls=(ToolCall("c1", "kb_search", {"query": "q"}),)))
    {'role': 'assistant', 'content': '', 'tool_calls': [{'function': {'name': 'kb_search', \
'arguments': {'query': 'q'}}}]}
    >>> wire_message(Message("tool", "[1] a.pdf", tool_call_id="c1", name="kb_search"))
    {'role': 'tool', 'content': '[1] a.pdf', 'tool_name': 'kb_search'}
    """
    if message.role == "tool":
        return {"role": "tool", "content": message.content, "tool_name": message.name or ""}
    out: dict[str, Any] = message.to_dict()
    if message.tool_calls:
        out["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}} for c in message.tool_calls]
    return out


class OllamaLLM:
    """A model served by Ollama (``ollama pull NAME`` first, ``ollama serve`` to run it).

    ``context_window``: as configured, else the model's own context length capped at 8192 (read
    once from ``/api/show`` on first use). Token counts are estimated (:func:`estimate_tokens`);
    Ollama reports the real prompt size after each call (``prompt_eval_count``), and when that is
    larger than the estimate, later estimates are scaled up by the observed ratio — never down.
    """

    exact_tokens = False

    def __init__(self, model: str, *, url: str | None = None, context_window: int | None = None,
                 timeout: float = 120.0, keep_alive: str | None = None) -> None:
        self.model = model
        self.base_url = (url or DEFAULT_URL).rstrip("/")
        self.name = f"ollama:{model}"
        self.keep_alive = keep_alive
        self._window = Probed(self._probe_context, context_window)
        self._scale = 1.0
        self._endpoint = Endpoint("Ollama", "start it with: ollama serve (or fix llm.url)", timeout,
                                  on_status=self._status_error)

    # -- LLM protocol -------------------------------------------------------------------------------

    @property
    def context_window(self) -> int:
        return self._window.get()

    @context_window.setter
    def context_window(self, value: int) -> None:
        self._window.value = value

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [math.ceil(estimate_tokens(text) * self._scale) for text in texts]

    def generate(self, messages: Sequence[Message], options: GenerationOptions) -> Completion:
        url = f"{self.base_url}/api/chat"
        answer = post_json(url, self._endpoint, self._payload(messages, options, stream=False))
        if not isinstance(answer, dict):
            raise LLMResponseError(f"Ollama at {url} answered {str(answer)[:200]}", hint="is llm.url an Ollama server?")
        if answer.get("error"):
            raise LLMResponseError(f"Ollama reported an error: {answer['error']}", hint="see the Ollama log")
        text = _content(answer, url)
        prompt_tokens, completion_tokens = _int(answer.get("prompt_eval_count")), _int(answer.get("eval_count"))
        self._learn(messages, prompt_tokens)
        return Completion(text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                          finish_reason=_str(answer.get("done_reason")), raw=answer)

    def stream(self, messages: Sequence[Message], options: GenerationOptions) -> Iterator[StreamChunk]:
        url = f"{self.base_url}/api/chat"
        with request(url, self._endpoint, self._payload(messages, options, stream=True)) as response:
            for obj in ndjson_events(response, url, self._endpoint, is_last=lambda o: o.get("done") is True):
                text = _content(obj, url)
                if obj.get("done") is True:
                    prompt_tokens = _int(obj.get("prompt_eval_count"))
                    self._learn(messages, prompt_tokens)
                    yield StreamChunk(text, done=True, prompt_tokens=prompt_tokens,
                                      completion_tokens=_int(obj.get("eval_count")),
                                      finish_reason=_str(obj.get("done_reason")))
                elif text:
                    yield StreamChunk(text)

    def generate_tools(self, messages: Sequence[Message], tools: Sequence[ToolSpec], options: GenerationOptions,
                       tool_choice: ToolChoice = "auto") -> ToolReply:
        """One turn with ``tools`` offered. Ollama has no ``tool_choice``: ``none`` sends no tools, the other
        choices are left to the model. A model without tool support raises :class:`ToolsUnsupportedError`."""
        url = f"{self.base_url}/api/chat"
        payload = self._payload(messages, options, stream=False)
        payload["messages"] = [wire_message(m) for m in messages]
        if tools and tool_choice != "none":
            payload["tools"] = [t.to_openai() for t in tools]
        try:
            answer = post_json(url, self._endpoint, payload)
        except GenerationError as exc:
            if "does not support tools" in exc.message:
                raise ToolsUnsupportedError(f"Ollama's {self.model} does not take tools",
                                            hint="the agent falls back to its ReAct prompt") from exc
            raise
        if not isinstance(answer, dict) or not isinstance(answer.get("message"), dict):
            raise LLMResponseError(f"Ollama at {url} answered {str(answer)[:200]}", hint="is llm.url an Ollama server?")
        prompt_tokens, completion_tokens = _int(answer.get("prompt_eval_count")), _int(answer.get("eval_count"))
        self._learn(messages, prompt_tokens)
        message = answer["message"]
        return ToolReply(str(message.get("content") or ""), parse_tool_calls(message), prompt_tokens=prompt_tokens,
                         completion_tokens=completion_tokens, finish_reason=_str(answer.get("done_reason")))

    # -- helpers ------------------------------------------------------------------------------------

    def _payload(self, messages: Sequence[Message], options: GenerationOptions, *, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model, "messages": [m.to_dict() for m in messages],
                                   "stream": stream, "options": ollama_options(options, self.context_window)}
        if self.keep_alive is not None:
            payload["keep_alive"] = self.keep_alive
        return payload

    def _probe_context(self) -> int:
        show = post_json(f"{self.base_url}/api/show", self._endpoint, {"model": self.model})
        native = context_length(show)
        return min(native, CONTEXT_CAP) if native else UNKNOWN_CONTEXT

    def _learn(self, messages: Sequence[Message], prompt_tokens: int | None) -> None:
        """Scale later estimates up when Ollama counted more prompt tokens than we estimated."""
        if not prompt_tokens:
            return
        estimate = sum(estimate_tokens(m.content) for m in messages) + messages_token_overhead(len(messages))
        if estimate > 0 and prompt_tokens > estimate * self._scale:
            self._scale = prompt_tokens / estimate

    def _status_error(self, status: int, detail: str) -> GenerationError | None:
        if status == 404 and "model" in detail.lower():
            return LLMUnavailableError(f"Ollama has no model '{self.model}' ({detail})",
                                       hint=f"ollama pull {self.model}")
        if status == 404:
            return LLMUnavailableError(f"no Ollama API at {self.base_url} (HTTP 404: {detail})",
                                       hint=f"check llm.url; Ollama listens on {DEFAULT_URL} by default")
        return None


def _content(obj: dict[str, Any], url: str) -> str:
    message = obj.get("message")
    content = message.get("content", "") if isinstance(message, dict) else None
    if not isinstance(content, str):
        if obj.get("done") is True and message is None:
            return ""
        raise LLMResponseError(f"Ollama at {url} sent an object without message.content: {str(obj)[:200]}",
                               hint="is llm.url an Ollama server?")
    return content


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
