"""A multi-turn conversation over a knowledge base: memory plus follow-up rewriting."""

from __future__ import annotations

import uuid
from typing import Any

from jisik.config import AnswerConfig
from jisik.generate.answerer import Answerer, AnswerStream
from jisik.generate.language import detect_language
from jisik.generate.llms.base import Message
from jisik.generate.memory import Memory
from jisik.records import Answer


class ChatSession:
    """Holds one conversation. Each turn is logged with the session id (``jisik logs --session``)."""

    def __init__(self, answerer: Answerer, config: AnswerConfig, *, session: str | None = None,
                 memory: str | None = None) -> None:
        self.answerer = answerer
        self.session = session or uuid.uuid4().hex[:12]
        llm = answerer.llm
        self.memory = Memory(kind=memory or config.memory, turns_limit=config.memory_turns,
                             tokens_limit=config.memory_tokens, count=llm.count_tokens if llm else None,
                             summarize=self._summarize if llm else None)

    def _summarize(self, summary: str, history: str) -> str:
        llm = self.answerer.llm
        assert llm is not None
        language = detect_language(history)
        prompt = self.answerer.prompts.get("summary", language).render(summary=summary or "-", history=history,
                                                                        language=language)
        options = self.answerer.generation.with_(max_tokens=max(64, self.memory.tokens_limit // 2))
        return llm.generate([Message("user", prompt)], options).text

    def ask_stream(self, question: str, **kwargs: Any) -> AnswerStream:
        return self.answerer.stream(question, memory=self.memory, kind="chat", session=self.session, **kwargs)

    def ask(self, question: str, **kwargs: Any) -> Answer:
        return self.ask_stream(question, **kwargs).result()

    def reset(self) -> None:
        self.memory.reset()
