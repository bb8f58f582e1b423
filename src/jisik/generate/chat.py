"""A multi-turn conversation over a knowledge base: memory plus follow-up rewriting."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from jisik.config import AnswerConfig
from jisik.generate.answerer import Answerer, AnswerStream
from jisik.generate.language import detect_language
from jisik.generate.llms.base import GenerationOptions, Message
from jisik.generate.memory import Memory, Turn
from jisik.records import Answer

if TYPE_CHECKING:
    from jisik.generate.llms.base import LLM
    from jisik.generate.prompts import PromptSet


def summarize_with(llm: LLM, prompts: PromptSet, generation: GenerationOptions,
                   tokens_limit: int) -> Callable[[str, str], str]:
    """The ``summary`` memory's folding function: the running summary and older turns → a new summary, written by
    ``llm`` with the ``summary`` template (used by chat sessions and conversational agents)."""

    def summarize(summary: str, history: str) -> str:
        language = detect_language(history)
        prompt = prompts.get("summary", language).render(summary=summary or "-", history=history, language=language)
        return llm.generate([Message("user", prompt)], generation.with_(max_tokens=max(64, tokens_limit // 2))).text

    return summarize


class ChatSession:
    """Holds one conversation. Each turn is logged with the session id (``jisik logs --session``).

    ``history`` holds the session's earlier turns, oldest first, when it continues one from the
    log; ``resumed`` says how many there were.
    """

    def __init__(self, answerer: Answerer, config: AnswerConfig, *, session: str | None = None,
                 memory: str | None = None, history: Sequence[Turn] = ()) -> None:
        self.answerer = answerer
        self.session = session or uuid.uuid4().hex[:12]
        llm = answerer.llm
        self.memory = Memory(kind=memory or config.memory, turns_limit=config.memory_turns,
                             tokens_limit=config.memory_tokens, count=llm.count_tokens if llm else None,
                             summarize=self._summarize if llm else None)
        self.memory.extend(history)
        self.resumed = len(history)

    def _summarize(self, summary: str, history: str) -> str:
        assert self.answerer.llm is not None
        return summarize_with(self.answerer.llm, self.answerer.prompts, self.answerer.generation,
                              self.memory.tokens_limit)(summary, history)

    def ask_stream(self, question: str, **kwargs: Any) -> AnswerStream:
        return self.answerer.stream(question, memory=self.memory, kind="chat", session=self.session, **kwargs)

    def ask(self, question: str, **kwargs: Any) -> Answer:
        return self.ask_stream(question, **kwargs).result()

    def reset(self) -> None:
        """Forget the earlier turns for the rest of this conversation; the log keeps them."""
        self.memory.reset()
