"""A fake LLM for tests of code built on jisik: scripted replies, recorded prompts, no model.

It is a test double, named as one: it never pretends to understand anything. Replies come from a
list (one per call, the last repeated) or from a function of the messages.

>>> llm = FakeLLM(["반품은 14일 이내입니다 [1]."])
>>> "".join(c.text for c in llm.stream([Message("user", "반품은?")], GenerationOptions()))
'반품은 14일 이내입니다 [1].'
>>> llm.calls[0][-1].content
'반품은?'
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from jisik.errors import LLMResponseError, ToolsUnsupportedError
from jisik.generate.llms.base import (
    Completion,
    GenerationOptions,
    Message,
    StreamChunk,
    ToolChoice,
    ToolReply,
    ToolSpec,
    collect,
)

Reply = str | Callable[[Sequence[Message]], str]


class FakeLLM:
    """Scripted chat model. ``tokens`` counts whitespace words; ``first_token_delay`` simulates latency."""

    exact_tokens = True

    def __init__(self, replies: Sequence[str] | Callable[[Sequence[Message]], str] = ("OK",), *,
                 context_window: int = 4096, name: str = "fake", piece_chars: int = 4,
                 first_token_delay: float = 0.0, fail_after: int | None = None) -> None:
        self._replies: Reply | list[str] = replies if callable(replies) else list(replies)
        self.context_window = context_window
        self.name = name
        self.piece_chars = piece_chars
        self.first_token_delay = first_token_delay
        self.fail_after = fail_after  # raise LLMResponseError after this many pieces (a broken stream)
        self.calls: list[list[Message]] = []
        self.options: list[GenerationOptions] = []

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) for text in texts]

    def _reply(self, messages: Sequence[Message]) -> str:
        if callable(self._replies):
            return self._replies(messages)
        index = min(len(self.calls) - 1, len(self._replies) - 1)
        return self._replies[index]

    def stream(self, messages: Sequence[Message], options: GenerationOptions) -> Iterator[StreamChunk]:
        self.calls.append(list(messages))
        self.options.append(options)
        text = self._reply(messages)
        if self.first_token_delay:
            time.sleep(self.first_token_delay)
        pieces = [text[i : i + self.piece_chars] for i in range(0, len(text), self.piece_chars)] or [""]
        for number, piece in enumerate(pieces):
            if self.fail_after is not None and number >= self.fail_after:
                raise LLMResponseError("fake stream broken on purpose")
            yield StreamChunk(piece)
        prompt_tokens = sum(self.count_tokens([m.content for m in messages]))
        yield StreamChunk("", done=True, prompt_tokens=prompt_tokens, completion_tokens=len(text.split()),
                          finish_reason="stop")

    def generate(self, messages: Sequence[Message], options: GenerationOptions) -> Completion:
        return collect(self.stream(messages, options))


ToolTurn = ToolReply | str | Callable[[Sequence[Message]], "ToolReply | str"]


class FakeToolLLM(FakeLLM):
    """A scripted chat model with native tool calls (a test double): each :meth:`generate_tools` call plays the
    next scripted turn — a :class:`ToolReply` (calls and/or text), a plain string (a final answer), or a function
    of the messages. ``tools_seen`` records the tool specs and ``tool_choice`` of each call; ``refuse_tools`` makes
    it behave like a server that turns tools down.

    >>> from jisik.generate.llms.base import ToolCall
    >>> llm = FakeToolLLM([ToolReply("", [ToolCall("c1", "today", {})]), "It is Monday."])
    >>> llm.generate_tools([Message("user", "day?")], [], GenerationOptions()).tool_calls[0].name
    'today'
    >>> llm.generate_tools([Message("user", "day?")], [], GenerationOptions()).text
    'It is Monday.'
    """

    def __init__(self, turns: Sequence[ToolTurn], *, refuse_tools: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.turns = list(turns)
        self.refuse_tools = refuse_tools
        self.tool_calls_made = 0
        self.tools_seen: list[tuple[list[ToolSpec], ToolChoice]] = []

    def generate_tools(self, messages: Sequence[Message], tools: Sequence[ToolSpec], options: GenerationOptions,
                       tool_choice: ToolChoice = "auto") -> ToolReply:
        if self.refuse_tools:
            raise ToolsUnsupportedError("the fake server does not take tools")
        self.calls.append(list(messages))
        self.options.append(options)
        self.tools_seen.append((list(tools), tool_choice))
        turn = self.turns[min(self.tool_calls_made, len(self.turns) - 1)]
        self.tool_calls_made += 1
        if callable(turn):
            turn = turn(messages)
        reply = ToolReply(turn) if isinstance(turn, str) else turn
        prompt = sum(self.count_tokens([m.content for m in messages]))
        return ToolReply(reply.text, list(reply.tool_calls), prompt_tokens=prompt,
                         completion_tokens=len(reply.text.split()) + 5 * len(reply.tool_calls),
                         finish_reason="tool_calls" if reply.tool_calls else "stop")
