"""Question in, cited answer out: validate, rewrite follow-ups, retrieve, fit the prompt, generate, cite, log.

The stages are plain functions and small objects passed in by :class:`~jisik.kb.KnowledgeBase`, so
the answerer does not know about SQLite or FAISS: ``search`` returns hits, ``log`` stores a turn.
Streaming is the main path; :meth:`Answerer.ask` just drains :meth:`Answerer.stream`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jisik.config import AnswerConfig
from jisik.errors import EmptyKnowledgeBaseError, QueryError
from jisik.generate.budget import FittedPrompt, fit_prompt
from jisik.generate.citations import StreamedMarkers, build_citations, resolve_citations
from jisik.generate.language import NOT_FOUND, Language, detect_language, is_not_found
from jisik.generate.llms.base import LLM, GenerationOptions, Message
from jisik.generate.memory import Memory, Turn
from jisik.generate.prompts import PromptSet, answer_messages, format_context, format_context_entry, template_values
from jisik.generate.rewrite import clean_rewrite, heuristic_rewrite
from jisik.records import Answer, Hit, Usage

if TYPE_CHECKING:
    from jisik.guard.base import GuardDecision
    from jisik.guard.policy import Guard, GuardedQuestion

SearchFn = Callable[[str], list[Hit]]


@dataclass(slots=True)
class TurnRecord:
    """One row of the ``turns`` log table, written once the answer is complete."""

    kind: str  # "ask" | "chat"
    session: str | None
    answer: Answer
    retrieved: list[tuple[int, float]]
    latency_ms: float
    created_at: float = field(default_factory=time.time)


LogFn = Callable[[TurnRecord], int]


class AnswerStream:
    """Iterate for the answer's text as it is produced; :attr:`answer` is set when iteration ends.

    >>> def produce():
    ...     yield "14일"
    ...     yield "입니다."
    ...     return Answer("14일입니다.", "반품 기간은?")
    >>> stream = AnswerStream(produce())
    >>> "".join(stream), stream.answer.text
    ('14일입니다.', '14일입니다.')
    """

    def __init__(self, producer: Generator[str, None, Answer]) -> None:
        self._producer = producer
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        if self.answer is not None:
            return
        self.answer = yield from self._producer

    def result(self) -> Answer:
        """Drain what is left of the stream and return the final :class:`Answer`."""
        for _ in self:
            pass
        assert self.answer is not None
        return self.answer


@dataclass(slots=True)
class _Clock:
    start: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    backend_sent: float | None = None
    backend_first: float | None = None

    def ms(self, moment: float | None = None) -> float:
        return ((moment if moment is not None else time.perf_counter()) - self.start) * 1000


def validate_question(question: str, max_chars: int) -> str:
    """Strip the question and refuse empty or oversized ones.

    >>> validate_question("  반품 기간은?  ", 100)
    '반품 기간은?'
    >>> validate_question("   ", 100)
    Traceback (most recent call last):
    ...
    jisik.errors.QueryError: the question is empty (ask something, e.g. jisik ask "반품 기간은 며칠인가요?")
    """
    if not isinstance(question, str):
        raise QueryError(f"the question must be a string, not {type(question).__name__}")
    text = question.strip()
    if not text:
        raise QueryError("the question is empty", hint='ask something, e.g. jisik ask "반품 기간은 며칠인가요?"')
    if len(text) > max_chars:
        raise QueryError(f"the question is {len(text):,} characters long; the limit is {max_chars:,}",
                         hint="shorten it, or raise [answer] max_question_chars")
    return text


class Answerer:
    """Answers questions over one knowledge base with one generator (an LLM, or extractive when None)."""

    def __init__(self, *, search: SearchFn, is_empty: Callable[[], bool], llm: LLM | None,
                 extractive: Any, prompts: PromptSet, config: AnswerConfig, generation: GenerationOptions,
                 backend_name: str, log: LogFn | None = None, guard: Guard | None = None) -> None:
        self.search = search
        self.is_empty = is_empty
        self.llm = llm
        self.extractive = extractive  # jisik.generate.extractive.ExtractiveAnswerer when llm is None
        self.prompts = prompts
        self.config = config
        self.generation = generation
        self.backend_name = backend_name
        self.log = log
        self.guard = guard  # jisik.guard.policy.Guard: personal data, injection, grounding, scope ([guard])

    # -- public -----------------------------------------------------------------------------------
    def stream(self, question: str, *, memory: Memory | None = None, kind: str = "ask",
               session: str | None = None, chain: str | None = None, language: str | None = None,
               log: bool = True) -> AnswerStream:
        # Validate before the first next(): bad input raises here, not halfway through a stream.
        text = validate_question(question, self.config.max_question_chars)
        if self.is_empty():
            raise EmptyKnowledgeBaseError("the knowledge base holds no documents",
                                          hint="add some first: jisik ingest ./docs --kb <folder>")
        chain_name = chain or self.config.chain
        if chain_name not in ("stuff", "map_reduce", "refine"):
            raise QueryError(f"unknown chain '{chain_name}'", hint="use stuff, map_reduce or refine")
        wanted = language or self.config.language
        if wanted not in ("auto", "ko", "en"):
            raise QueryError(f"unknown language '{wanted}'", hint="use auto, ko or en")
        lang: Language = detect_language(text) if wanted == "auto" else wanted  # type: ignore[assignment]
        guarded = self.guard.question(text) if self.guard is not None else None  # a block raises here
        return AnswerStream(self._produce(text, lang, memory, kind, session, chain_name, log, guarded))

    def ask(self, question: str, **kwargs: Any) -> Answer:
        return self.stream(question, **kwargs).result()

    # -- the pipeline -----------------------------------------------------------------------------
    def _produce(self, question: str, lang: Language, memory: Memory | None, kind: str, session: str | None,
                 chain: str, log: bool, guarded: GuardedQuestion | None = None) -> Generator[str, None, Answer]:
        clock = _Clock()
        decisions: list[GuardDecision] = list(guarded.decisions) if guarded is not None else []
        # the model sees the guarded question (placeholders, neutralised instructions); the search, here, the original
        for_model = guarded.for_model if guarded is not None else question
        standalone_model = self._standalone(for_model, memory, lang)
        standalone = guarded.placeholders.restore(standalone_model) if guarded is not None else standalone_model
        retrieval_start = time.perf_counter()
        hits = [] if guarded is not None and guarded.refusal else self.search(standalone)
        hits = self._relevant(hits, decisions)
        retrieval_ms = (time.perf_counter() - retrieval_start) * 1000
        usage = Usage(retrieval_ms=retrieval_ms)
        spans: dict[int, tuple[int, int]] = {}
        parts: list[str] = []
        if guarded is not None and guarded.refusal:
            used: list[Hit] = []
            pieces: Iterator[str] = iter([self._refusal(lang)])
        elif not hits:
            used = []
            pieces = iter([NOT_FOUND[lang]])
        elif self.llm is None:
            used = list(hits)
            pieces = self._extractive(standalone, used, lang, spans)
            if self.guard is not None and guarded is not None:  # quotes face the output policy too
                pieces = self.guard.output(pieces, guarded.placeholders, decisions)
        elif self.guard is not None and guarded is not None:
            prompt_hits = self.guard.context(hits, guarded.placeholders, decisions)
            kept = [(hit, shown) for hit, shown in zip(hits, prompt_hits, strict=True) if shown is not None]
            originals = {shown.chunk_id: hit for hit, shown in kept}
            if not kept:
                used, pieces = [], iter([NOT_FOUND[lang]])
            else:
                shown_used, pieces = self._generate(standalone_model, [s for _, s in kept], lang, memory, chain,
                                                    usage, clock)
                used = [originals[h.chunk_id] for h in shown_used]  # citations quote the original text
            pieces = self.guard.output(pieces, guarded.placeholders, decisions)
        else:
            used, pieces = self._generate(standalone, hits, lang, memory, chain, usage, clock)
        # what the caller sees streamed: markers checked against the sources as they complete
        markers = StreamedMarkers(len(used))
        for piece in pieces:
            if not piece:
                continue
            if clock.first_token is None:
                clock.first_token = time.perf_counter()
            parts.append(piece)
            if shown := markers.feed(piece):
                yield shown
        if held := markers.flush():
            yield held
        raw = "".join(parts).strip()
        answer = self._finish(raw, question, standalone, lang, used, spans, usage, clock)
        if self.guard is not None:
            ground_answer(self.guard, answer, used, lang, spans, decisions, llm_answer=self.llm is not None)
            self.guard.quotes(answer.citations, answer.sources, decisions)
            answer.guard = [d.to_dict() for d in decisions]
        if self.llm is not None and usage.completion_tokens == 0 and raw:
            usage.completion_tokens = self.llm.count_tokens([raw])[0]
        if memory is not None:
            if self.guard is not None:  # later turns send this history to the model: personal data as labels
                remember = [self.guard.for_log(t) or "" for t in (question, answer.text, standalone)]
                memory.add(Turn(remember[0], remember[1], remember[2]))
            else:
                memory.add(Turn(question, answer.text, standalone))
        if log and self.config.log and self.log is not None:
            answer.log_id = self.log(TurnRecord(kind, session, answer, [(h.chunk_id, h.score) for h in hits],
                                                answer.usage.total_ms))
        return answer

    def _finish(self, raw: str, question: str, standalone: str, lang: Language, used: list[Hit],
                spans: dict[int, tuple[int, int]], usage: Usage, clock: _Clock) -> Answer:
        resolved = resolve_citations(raw, len(used))
        found = bool(raw) and not is_not_found(raw)
        citations, sources = build_citations(used, resolved.cited if found else [], spans)
        usage.total_ms = clock.ms()
        usage.first_token_ms = None if clock.first_token is None else clock.ms(clock.first_token)
        if clock.backend_sent is not None and clock.backend_first is not None:
            usage.backend_first_token_ms = (clock.backend_first - clock.backend_sent) * 1000
        return Answer(text=resolved.text if raw else NOT_FOUND[lang], question=question, citations=citations,
                      sources=sources, usage=usage, standalone_question=standalone if standalone != question else None,
                      backend=self.backend_name, language=lang, found=found, invalid_citations=resolved.invalid)

    def _relevant(self, hits: list[Hit], decisions: list[GuardDecision]) -> list[Hit]:
        """No hits when even the best is below the guard's relevance floor: say "not found" instead of guessing."""
        floor = self.guard.relevance_floor if self.guard is not None else None
        if floor is None or not hits:
            return hits
        dense = [h.scores["dense"] for h in hits if "dense" in h.scores]
        best = max(dense, default=None)
        if best is None or best >= floor:  # no dense score (bm25 mode): nothing to judge by
            return hits
        from jisik.guard.base import GuardDecision

        decisions.append(GuardDecision("scope", "context", "refuse", {"best_dense": round(best, 4),
                                                                      "floor": round(floor, 4)}))
        return []

    def _refusal(self, lang: Language) -> str:
        from jisik.guard.policy import REFUSAL

        assert self.guard is not None
        return self.guard.config.refusal_message or REFUSAL[lang]

    def _standalone(self, question: str, memory: Memory | None, lang: Language) -> str:
        if memory is None or not memory.turns or not self.config.rewrite_followups:
            return question
        previous = memory.turns[-1].standalone_question or memory.turns[-1].question
        if self.llm is None:
            return heuristic_rewrite(question, previous)
        prompt = self.prompts.get("rewrite", lang).render(**template_values(
            lang, question=question, history=memory.history_text()))
        options = self.generation.with_(max_tokens=96, temperature=0.0)
        output = self.llm.generate([Message("user", prompt)], options).text
        return clean_rewrite(output, question)

    # -- extractive ---------------------------------------------------------------------------------
    def _extractive(self, question: str, hits: list[Hit], lang: Language,
                    spans: dict[int, tuple[int, int]]) -> Iterator[str]:
        result = self.extractive.answer(question, hits)
        if not result.found or not result.sentences:
            yield NOT_FOUND[lang]
            return
        for position, sentence in enumerate(result.sentences):
            number = sentence.hit_index + 1
            hit = hits[sentence.hit_index]
            start, end = hit.start + sentence.start, hit.start + sentence.end
            previous = spans.get(number)
            spans[number] = (min(start, previous[0]), max(end, previous[1])) if previous else (start, end)
            yield ("" if position == 0 else " ") + f"{sentence.text.strip()} [{number}]"

    # -- LLM chains ---------------------------------------------------------------------------------
    def _generate(self, question: str, hits: Sequence[Hit], lang: Language, memory: Memory | None, chain: str,
                  usage: Usage, clock: _Clock) -> tuple[list[Hit], Iterator[str]]:
        assert self.llm is not None
        history = memory.messages() if memory is not None else []
        entries = [format_context_entry(i + 1, hit) for i, hit in enumerate(hits)]
        if chain == "stuff":
            fitted = self._fit("user", question, lang, history, entries)
            used = [hits[i] for i in fitted.kept]
            messages = self._messages("user", question, lang, fitted, entries)
            usage.prompt_tokens = fitted.prompt_tokens
            return used, self._stream(messages, usage, clock)
        groups = self._groups(question, lang, entries)
        # Markers are numbered over all hits, so the sources are the hits up to the last one sent.
        last = max((i for group in groups for i in group.kept), default=-1)
        used = list(hits[: last + 1])
        if chain == "map_reduce":
            return used, self._map_reduce(question, lang, history, entries, groups, usage, clock)
        return used, self._refine(question, lang, history, entries, groups, usage, clock)

    def _fit(self, kind: str, question: str, lang: Language, history: Sequence[Message],
             entries: Sequence[str], **extra: str) -> FittedPrompt:
        assert self.llm is not None
        values = template_values(lang, question=question, context="", **extra)
        system = self.prompts.get("system", lang).render(**values)
        user = self.prompts.get(kind, lang).render(**values)
        return fit_prompt(self.llm.count_tokens, context_window=self.llm.context_window,
                          reserve_tokens=self.generation.max_tokens, fixed_texts=[system, user],
                          history=history, chunk_texts=entries)

    def _messages(self, kind: str, question: str, lang: Language, fitted: FittedPrompt,
                  entries: Sequence[str], **extra: str) -> list[Message]:
        context = format_context([fitted.shortened.get(i, entries[i]) for i in fitted.kept])
        return answer_messages(self.prompts, kind, question, lang, context, fitted.history, **extra)

    def _groups(self, question: str, lang: Language, entries: Sequence[str]) -> list[FittedPrompt]:
        """One call per chunk for map_reduce and refine (each chunk shortened if it cannot fit whole)."""
        groups: list[FittedPrompt] = []
        for index, entry in enumerate(entries):
            fitted = self._fit("map", question, lang, [], [entry])
            if fitted.kept:  # a chunk that cannot fit even shortened is skipped
                shortened = {index: fitted.shortened[0]} if 0 in fitted.shortened else {}
                groups.append(FittedPrompt([index], [], fitted.prompt_tokens, 0, shortened))
        return groups

    def _stream(self, messages: list[Message], usage: Usage, clock: _Clock) -> Iterator[str]:
        assert self.llm is not None
        clock.backend_sent = time.perf_counter()
        for chunk in self.llm.stream(messages, self.generation):
            if chunk.text and clock.backend_first is None:
                clock.backend_first = time.perf_counter()
            if chunk.prompt_tokens:
                usage.prompt_tokens = max(usage.prompt_tokens, chunk.prompt_tokens)
            if chunk.completion_tokens:
                usage.completion_tokens += chunk.completion_tokens
            yield chunk.text

    def _call(self, messages: list[Message], usage: Usage) -> str:
        assert self.llm is not None
        completion = self.llm.generate(messages, self.generation)
        usage.completion_tokens += completion.completion_tokens or 0
        return completion.text.strip()

    def _map_reduce(self, question: str, lang: Language, history: Sequence[Message], entries: Sequence[str],
                    groups: list[FittedPrompt], usage: Usage, clock: _Clock) -> Iterator[str]:
        notes: list[str] = []
        for group in groups:
            note = self._call(self._messages("map", question, lang, group, entries), usage)
            if note and note.strip().upper().rstrip(".") != "NONE" and not is_not_found(note):
                notes.append(note)
        if not notes:
            yield NOT_FOUND[lang]
            return
        fitted = self._fit("reduce", question, lang, history, notes)
        usage.prompt_tokens = fitted.prompt_tokens
        yield from self._stream(self._messages("reduce", question, lang, fitted, notes), usage, clock)

    def _refine(self, question: str, lang: Language, history: Sequence[Message], entries: Sequence[str],
                groups: list[FittedPrompt], usage: Usage, clock: _Clock) -> Iterator[str]:
        answer = ""
        for position, group in enumerate(groups):
            last = position == len(groups) - 1
            if position == 0:
                fitted = self._fit("user", question, lang, history, [entries[i] for i in group.kept])
                messages = self._messages("user", question, lang, _reindex(fitted, group), entries)
            else:
                fitted = self._fit("refine", question, lang, history, [entries[i] for i in group.kept], answer=answer)
                messages = self._messages("refine", question, lang, _reindex(fitted, group), entries, answer=answer)
            usage.prompt_tokens = max(usage.prompt_tokens, fitted.prompt_tokens)
            if last:
                yield from self._stream(messages, usage, clock)
                return
            answer = self._call(messages, usage)


def ground_answer(guard: Guard, answer: Answer, used: list[Hit], lang: Language, spans: dict[int, tuple[int, int]],
                  decisions: list[GuardDecision], *, llm_answer: bool) -> None:
    """The last step: each answer sentence scored against its sources; unsupported ones handled per policy
    (``[guard] grounding``). Shared by the answerer and the agent."""
    from jisik.guard.base import GuardDecision

    policy = guard.config.grounding
    # extractive answers are quotes of the sources: checking them costs an embedder call per answer and
    # they pass (benchmarks/guard_grounding.py), so only LLM answers are checked
    if policy == "off" or not llm_answer or not answer.found or not used:
        return
    supports = guard.ground(answer.text, [h.text for h in used], lang)
    answer.grounding = [s.to_dict() for s in supports]
    unsupported = [s for s in supports if not s.supported]
    if not unsupported:
        return
    action = policy
    decisions.append(GuardDecision("grounding", "output", action, {
        "unsupported": len(unsupported), "sentences": len(supports),
        "scores": [round(s.score, 3) for s in unsupported]}))
    if action == "annotate":
        return
    kept = [s for s in supports if s.supported]
    if action == "not_found" or not kept:
        text = NOT_FOUND[lang]
    else:
        text = " ".join(answer.text[s.start:s.end].strip() for s in kept)
    resolved = resolve_citations(text, len(used))
    found = not is_not_found(text)
    answer.text = resolved.text
    answer.found = found
    answer.citations, answer.sources = build_citations(used, resolved.cited if found else [], spans)


def _reindex(fitted: FittedPrompt, group: FittedPrompt) -> FittedPrompt:
    """Map a fit over a group's entries back to indices into all entries."""
    kept = [group.kept[i] for i in fitted.kept]
    shortened = {group.kept[i]: text for i, text in fitted.shortened.items()}
    shortened.update({i: group.shortened[i] for i in kept if i in group.shortened and i not in shortened})
    return FittedPrompt(kept, fitted.history, fitted.prompt_tokens, fitted.dropped_history, shortened)
