"""LLM rerankers through jisik's LLM backends: pointwise grades or a listwise order.

- **pointwise** (``llm``): one request per (question, passage) pair asking for a 0-3 relevance grade,
  the scale of TREC's graded judgements (0 unrelated … 3 perfectly relevant). Requests are independent,
  so up to ``concurrency`` of them are in flight at once (a server answers them in parallel; llama.cpp
  in process takes them one by one).
- **listwise** (``llm-listwise``): one request per question with every candidate numbered, asking for
  their order as ``[2] > [1] > [3]`` — RankGPT's prompt (Sun et al. 2023, "Is ChatGPT Good at Search?").
  One request instead of one per passage, but the model must read them all at once and follow the format.

Replies are parsed leniently (a grade anywhere in the reply, yes/no, numbers in any brackets); a reply
with nothing usable leaves its passages in their fused order and is counted in ``cost.unparsed``.
Log-probabilities of the grade tokens would give finer scores, but jisik's LLM contract returns text only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Literal

from jisik.generate.llms.base import GenerationOptions, Message, messages_token_overhead
from jisik.records import Hit
from jisik.retrieve.rerank.base import RerankCost, passage_text, reorder, rerank_by_scores

if TYPE_CHECKING:
    from jisik.generate.llms.base import LLM

Method = Literal["pointwise", "listwise"]

GRADE_SYSTEM = ("You judge search results. Given a question and a passage, reply with one digit: "
                "3 = the passage answers the question, 2 = it answers part of it, "
                "1 = it is about the topic but does not answer, 0 = it is unrelated.")
GRADE_USER = "Question: {question}\n\nPassage: {passage}\n\nGrade (one digit, 0 to 3):"
RANK_SYSTEM = "You rank search results by how well they answer a question."
RANK_USER = ("Question: {question}\n\n{passages}\n\nRank the {n} passages above from most to least relevant to the "
             "question. Reply only with their numbers, most relevant first, like: [2] > [1] > [3]")
# A grade is one digit; a few tokens more let a chatty model write "Grade: 2" and still be read.
GRADE_TOKENS = 8
# "[12] > " is 4-6 tokens in common tokenizers; the order of 20 passages fits in 6 per passage.
TOKENS_PER_RANK = 6
NEUTRAL_GRADE = 1.5  # an unreadable grade sits between "on topic" and "partly answers": it neither wins nor sinks
_RANGE = re.compile(r"\b0\s*(?:-|–|to|~)\s*3\b")  # the scale echoed back ("0-3") is not a grade
_GRADE = re.compile(r"(?<![\d.])([0-3])(?![\d])")
_NO = re.compile(r"\b(?:no|not relevant|irrelevant|unrelated)\b|아니(?:요|오)|무관|관련\s*없", re.IGNORECASE)
_YES = re.compile(r"\b(?:yes|relevant)\b|^\s*(?:예|네)\b|관련\s*있", re.IGNORECASE)


def parse_grade(reply: str) -> float | None:
    """The 0-3 grade in an LLM's reply, or None when it holds none (yes = 3, no = 0).

    >>> replies = ["2", " Grade: 3.", "**1**", "Grade (0-3): 0", "Yes, it does.", "No.", "관련 없음", "?"]
    >>> [parse_grade(reply) for reply in replies]
    [2.0, 3.0, 1.0, 0.0, 3.0, 0.0, 0.0, None]
    >>> parse_grade("7 out of 10") is None  # not on the scale
    True
    """
    text = _RANGE.sub(" ", reply)
    found = _GRADE.search(text)
    if found:
        return float(found.group(1))
    if _NO.search(text):
        return 0.0
    if _YES.search(text):
        return 3.0
    return None


def parse_permutation(reply: str, n: int) -> list[int] | None:
    """0-based passage indices in the order an LLM gave (``[2] > [1]``, ``2, 1``, …), missing ones appended in
    their original order; None when the reply names no passage between 1 and ``n``.

    >>> parse_permutation("[3] > [1] > [3] > [9]", 4)
    [2, 0, 1, 3]
    >>> parse_permutation("Passage 2 is best, then 1.", 3), parse_permutation("I cannot rank these.", 3)
    ([1, 0, 2], None)
    """
    order: list[int] = []
    for token in re.findall(r"\d+", reply):
        index = int(token) - 1
        if 0 <= index < n and index not in order:
            order.append(index)
    if not order:
        return None
    return order + [i for i in range(n) if i not in order]


def fit_text(text: str, limit: int, count: Callable[[Sequence[str]], list[int]]) -> str:
    """``text`` cut (at a word boundary where there is one) to at most ``limit`` tokens as ``count`` counts them.

    >>> fit_text("one two three four five", 3, lambda texts: [len(t.split()) for t in texts])
    'one two three'
    """
    if limit <= 0:
        return ""
    for _ in range(8):  # each pass cuts in proportion to the excess; tokens per character vary a little
        tokens = count([text])[0]
        if tokens <= limit:
            return text
        keep = max(1, int(len(text) * limit / tokens * 0.95))
        cut = text[:keep]
        space = cut.rfind(" ")
        if not text[keep].isspace() and space > keep // 2:  # mid-word: back to the last space, if not too far
            cut = cut[:space]
        text = cut.rstrip()
    return text


class LLMReranker:
    """Reranks with a chat model from :mod:`jisik.generate.llms` (pointwise grades or a listwise order).

    ``max_passage_tokens`` cuts each passage; a listwise prompt also shares what is left of the model's
    context window between the candidates, so it always fits.
    """

    def __init__(self, llm: LLM, *, method: Method = "pointwise", max_passage_tokens: int = 512,
                 concurrency: int = 4, seed: int | None = 0) -> None:
        self.llm = llm
        self.method = method
        self.max_passage_tokens = max_passage_tokens
        self.concurrency = max(1, concurrency)
        self.seed = seed
        self.name = f"{'llm' if method == 'pointwise' else 'llm-listwise'}:{llm.name}"
        self.cost = RerankCost()

    def rerank_batch(self, queries: Sequence[str], hits: Sequence[Sequence[Hit]]) -> list[list[Hit]]:
        with self.cost.timed(len(queries)):
            if self.method == "pointwise":
                return rerank_by_scores(queries, hits, self.grade_pairs)
            return [self._rank(query, list(row)) for query, row in zip(queries, hits, strict=True)]

    # -- pointwise --------------------------------------------------------------------------------
    def grade_pairs(self, pairs: list[tuple[str, str]]) -> list[float]:
        """The 0-3 grade of each (question, passage) pair (NEUTRAL_GRADE where the reply held none)."""
        if self.concurrency == 1 or len(pairs) == 1:
            return [self._grade(q, p) for q, p in pairs]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(pairs)),
                                thread_name_prefix="jisik-rerank") as pool:
            return list(pool.map(lambda pair: self._grade(*pair), pairs))

    def _grade(self, question: str, passage: str) -> float:
        budget = self.llm.context_window - GRADE_TOKENS - self._tokens(GRADE_SYSTEM, GRADE_USER, question) - \
            messages_token_overhead(2)
        text = fit_text(passage, min(self.max_passage_tokens, budget), self.llm.count_tokens)
        messages = [Message("system", GRADE_SYSTEM),
                    Message("user", GRADE_USER.format(question=question, passage=text))]
        grade = parse_grade(self._ask(messages, GRADE_TOKENS, pairs=1))
        if grade is None:
            self.cost.add(unparsed=1)
            return NEUTRAL_GRADE
        return grade

    # -- listwise ---------------------------------------------------------------------------------
    def _rank(self, question: str, hits: list[Hit]) -> list[Hit]:
        n = len(hits)
        if n < 2:
            return reorder(hits, [1.0] * n)
        answer_tokens = TOKENS_PER_RANK * n
        fixed = self._tokens(RANK_SYSTEM, RANK_USER, question) + messages_token_overhead(2) + answer_tokens
        # each passage gets an equal share of what the window has left ("[12] " and a blank line: ~4 tokens)
        share = min(self.max_passage_tokens, (self.llm.context_window - fixed) // n - 4)
        passages = "\n\n".join(f"[{i}] {fit_text(passage_text(hit), share, self.llm.count_tokens)}"
                               for i, hit in enumerate(hits, start=1))
        messages = [Message("system", RANK_SYSTEM),
                    Message("user", RANK_USER.format(question=question, passages=passages, n=n))]
        order = parse_permutation(self._ask(messages, answer_tokens, pairs=n), n)
        if order is None:
            self.cost.add(unparsed=1)
            order = list(range(n))
        scores = [0.0] * n
        for position, index in enumerate(order):
            scores[index] = 1.0 - position / n  # the first gets 1, the last 1/n: the order as a score
        return reorder(hits, scores)

    # -- shared -----------------------------------------------------------------------------------
    def _tokens(self, system: str, template: str, question: str) -> int:
        return sum(self.llm.count_tokens([system, template, question]))

    def _ask(self, messages: list[Message], max_tokens: int, *, pairs: int) -> str:
        options = GenerationOptions(temperature=0.0, max_tokens=max_tokens, seed=self.seed)
        completion = self.llm.generate(messages, options)
        prompt = completion.prompt_tokens
        if prompt is None:  # a backend that reports no usage: count with its tokenizer (or its estimate)
            prompt = sum(self.llm.count_tokens([m.content for m in messages])) + messages_token_overhead(len(messages))
        answer = completion.completion_tokens
        if answer is None:
            answer = self.llm.count_tokens([completion.text])[0]
        self.cost.add(calls=1, pairs=pairs, prompt_tokens=prompt, completion_tokens=answer)
        return completion.text
