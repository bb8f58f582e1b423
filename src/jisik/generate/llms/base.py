"""The LLM contract: chat messages in, text out, whole or streamed; one file per backend implements it.

Backends are small: they translate :class:`GenerationOptions` and a list of :class:`Message` into
their server's or library's call, and report tokens. Everything else (prompts, token budget,
citations, memory, logs) lives above them in :mod:`jisik.generate` and is shared.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call a model asked for, in one form whatever the wire said: OpenAI sends ``arguments`` as a JSON
    string and an ``id`` the answer must quote (``tool_call_id``); Ollama sends an object and no id (the
    answer names the tool: ``tool_name``). ``arguments_error`` says why the model's arguments could not be read
    (then ``arguments`` is empty), so the loop can tell the model instead of calling the tool."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    arguments_error: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A chat message. ``tool_calls`` on an assistant message, ``tool_call_id``/``name`` on a ``tool`` message
    (the result of one call) are used by backends with native tool calling only."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What a model is told about a tool: its name, what it does, and its arguments as JSON Schema."""

    name: str
    description: str
    parameters: dict[str, Any]

    def to_openai(self) -> dict[str, Any]:
        """The ``tools`` entry of OpenAI's (and Ollama's) chat API.

        >>> ToolSpec("today", "Today's date", {"type": "object", "properties": {}}).to_openai()["function"]["name"]
        'today'
        """
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


ToolChoice = str | dict[str, Any]  # "auto" | "none" | "required" | {"type": "function", "function": {"name": N}}


@dataclass(slots=True)
class ToolReply:
    """A model's turn with tools offered: text, calls, or both."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    """Sampling settings. The defaults suit factual QA: greedy decoding, bounded length.

    ``None`` means "the backend's default" and is not sent.
    """

    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = 0

    def with_(self, **changes: Any) -> GenerationOptions:
        """A copy with some fields changed; ``None`` values are ignored.

        >>> GenerationOptions().with_(temperature=0.7, top_p=None).temperature
        0.7
        """
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(slots=True)
class Completion:
    """A finished generation. Token counts come from the backend when it reports them, else ``None``."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None  # "stop", "length", ...
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class StreamChunk:
    """One piece of a streamed generation. The last chunk has ``done=True`` and the usage, if known."""

    text: str
    done: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None


@runtime_checkable
class LLM(Protocol):
    """A chat model. ``context_window`` is the model's total token limit (prompt + answer).

    ``count_tokens`` counts with the model's own tokenizer where the backend has one, else with a
    calibrated estimate; ``exact_tokens`` says which. Prompts are fitted to ``context_window``
    before :meth:`generate` or :meth:`stream` is called, so a backend never truncates silently.
    """

    name: str  # "ollama:qwen2.5:7b", "openai:http://…#model", "llamacpp:/models/x.gguf", ...
    context_window: int
    exact_tokens: bool

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        ...

    def generate(self, messages: Sequence[Message], options: GenerationOptions) -> Completion:
        ...

    def stream(self, messages: Sequence[Message], options: GenerationOptions) -> Iterator[StreamChunk]:
        ...


@runtime_checkable
class ToolCallingLLM(LLM, Protocol):
    """An LLM whose server takes ``tools`` and answers with structured calls (OpenAI-compatible servers, Ollama).

    A server that turns tools down (an older llama.cpp server, vLLM without ``--enable-auto-tool-choice``)
    raises :class:`~jisik.errors.ToolsUnsupportedError`; the agent then falls back to its text ReAct prompt.
    """

    def generate_tools(self, messages: Sequence[Message], tools: Sequence[ToolSpec], options: GenerationOptions,
                       tool_choice: ToolChoice = "auto") -> ToolReply:
        ...


def supports_tools(llm: object) -> bool:
    """True when ``llm`` has native tool calling (:class:`ToolCallingLLM`)."""
    return callable(getattr(llm, "generate_tools", None))


def messages_token_overhead(n_messages: int) -> int:
    """Tokens a chat template adds around messages (role markers, separators): ~4 per message + 3.

    Chat templates differ; 4 per message covers ChatML, Llama 3 and Gemma headers.

    >>> messages_token_overhead(3)
    15
    """
    return 4 * n_messages + 3


def collect(chunks: Iterator[StreamChunk]) -> Completion:
    """Join a stream into one :class:`Completion` (backends use it to implement ``generate``).

    >>> collect(iter([StreamChunk("Hel"), StreamChunk("lo", done=True, completion_tokens=2)])).text
    'Hello'
    """
    parts: list[str] = []
    last = StreamChunk("")
    for chunk in chunks:
        parts.append(chunk.text)
        last = chunk
    return Completion("".join(parts), prompt_tokens=last.prompt_tokens, completion_tokens=last.completion_tokens,
                      finish_reason=last.finish_reason)
