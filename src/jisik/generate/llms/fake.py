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

from jisik.errors import LLMResponseError
from jisik.generate.llms.base import Completion, GenerationOptions, Message, StreamChunk, collect

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
