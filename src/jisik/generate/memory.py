"""Conversation memory: which earlier turns go into the next prompt.

- ``buffer``: every turn.
- ``window``: the last N turns.
- ``tokens``: as many recent turns as fit in a token limit.
- ``summary``: recent turns that fit in the limit verbatim, older ones folded into a running
  summary written by the LLM (with the extractive answerer, the oldest turns are simply dropped).

Whatever a memory returns, the token budget (:mod:`jisik.generate.budget`) still drops the oldest
messages if they would push the prompt over the context window.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import get_args

from jisik.choices import MemoryKind
from jisik.errors import QueryError
from jisik.generate.llms.base import Message

Summarize = Callable[[str, str], str]  # (summary so far, new conversation text) -> new summary
CountTokens = Callable[[Sequence[str]], list[int]]


@dataclass(slots=True)
class Turn:
    question: str
    answer: str
    standalone_question: str | None = None


@dataclass(slots=True)
class Memory:
    """Holds the turns of one conversation and renders the ones to send.

    >>> m = Memory("window", turns_limit=1)
    >>> m.add(Turn("반품 기간은?", "14일입니다 [1].")); m.add(Turn("환불은?", "3일 안에 됩니다 [2]."))
    >>> [msg.content for msg in m.messages()]
    ['환불은?', '3일 안에 됩니다.']
    """

    kind: str = "window"
    turns_limit: int = 6
    tokens_limit: int = 1024
    count: CountTokens | None = None
    summarize: Summarize | None = None
    turns: list[Turn] = field(default_factory=list)
    summary: str = ""
    _summarized: int = 0  # turns already folded into the summary

    def __post_init__(self) -> None:
        # an unknown kind would otherwise fall through to token fitting without a word
        kinds = get_args(MemoryKind)
        if self.kind not in kinds:
            raise QueryError(f"unknown memory '{self.kind}'", hint=f"use one of {', '.join(kinds)}")

    def add(self, turn: Turn) -> None:
        self.extend([turn])

    def extend(self, turns: Iterable[Turn]) -> None:
        """Add turns oldest first, e.g. a resumed session's; ``summary`` folds once, not per turn."""
        self.turns.extend(turns)
        if self.kind == "summary":
            self._fold_old_turns()

    def reset(self) -> None:
        self.turns.clear()
        self.summary = ""
        self._summarized = 0

    def recent_turns(self) -> list[Turn]:
        """The turns sent verbatim, oldest first."""
        live = self.turns[self._summarized:]
        if self.kind == "buffer":
            return list(live)
        if self.kind == "window":
            return live[-self.turns_limit:]
        return self._fit_tokens(live)

    def _fit_tokens(self, turns: Sequence[Turn]) -> list[Turn]:
        if not turns:
            return []
        costs = self._turn_tokens(turns)
        kept: list[Turn] = []
        total = 0
        for turn, cost in zip(reversed(turns), reversed(costs), strict=True):
            if total + cost > self.tokens_limit:
                break
            kept.append(turn)
            total += cost
        return kept[::-1]

    def _turn_tokens(self, turns: Sequence[Turn]) -> list[int]:
        count = self.count or _estimate
        texts = [t.question + "\n" + strip_markers(t.answer) for t in turns]
        return [n + 8 for n in count(texts)]

    def _fold_old_turns(self) -> None:
        live = self.turns[self._summarized:]
        keep = len(self._fit_tokens(live))
        old = live[: len(live) - keep]
        if not old:
            return
        if self.summarize is not None:
            self.summary = self.summarize(self.summary, render_history(old)).strip()
        self._summarized += len(old)

    def messages(self) -> list[Message]:
        """History as chat messages (answers without their citation markers, which would mislead)."""
        out: list[Message] = []
        if self.kind == "summary" and self.summary:
            out.append(Message("user", f"(summary of the earlier conversation) {self.summary}"))
            out.append(Message("assistant", "OK."))
        for turn in self.recent_turns():
            out.append(Message("user", turn.question))
            out.append(Message("assistant", strip_markers(turn.answer)))
        return out

    def history_text(self) -> str:
        """The conversation as plain text, for the rewrite prompt."""
        prefix = f"(summary) {self.summary}\n" if self.summary else ""
        return prefix + render_history(self.recent_turns())


def render_history(turns: Sequence[Turn]) -> str:
    """
    >>> render_history([Turn("반품 기간은?", "14일입니다 [1].")])
    'User: 반품 기간은?\\nAssistant: 14일입니다.'
    """
    return "\n".join(f"User: {t.question}\nAssistant: {strip_markers(t.answer)}" for t in turns)


def strip_markers(text: str) -> str:
    """
    >>> strip_markers("14일입니다 [1, 2]. 네 [3]")
    '14일입니다. 네'
    """
    return re.sub(r"\s*\[\d+(?:\s*,\s*\d+)*\]", "", text).strip()


def _estimate(texts: Sequence[str]) -> list[int]:
    from jisik.generate.tokens import estimate_tokens

    return [estimate_tokens(t) for t in texts]
