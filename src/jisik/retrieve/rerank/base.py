"""The reranking contract: fused hits in, the same hits reordered best first, with the reranker's score.

A reranker reads each (question, passage) pair together — a cross-encoder, or an LLM asked to grade or
order them — which a bi-encoder or BM25 never does, so it can fix the order of the first few hits at a
price per query. That price is counted in :class:`RerankCost`, which every backend fills.

Batch first, like the rest of jisik: :meth:`Reranker.rerank_batch` takes several questions, each with
its own candidates; a pointwise backend scores every pair of the batch in one pass.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from jisik.records import Hit

__all__ = ["RerankCost", "Reranker", "passage_text", "reorder", "rerank_by_scores"]

SCORE_KEY = "rerank"  # the name of the reranker's score in ``hit.scores``


@dataclass(slots=True)
class RerankCost:
    """What reranking has cost so far: model calls, pairs scored, tokens and wall-clock seconds.

    ``calls`` are forward passes of a cross-encoder (one per batch) or LLM requests; ``unparsed`` counts
    LLM replies that held no usable grade or order (their passages kept their fused order). Backends add
    to one record under a lock, so it stays right when a server's threads share the reranker;
    :meth:`since` gives the cost of one stretch of work.

    >>> cost = RerankCost(queries=2, calls=4, pairs=40, prompt_tokens=9000, completion_tokens=80, seconds=3.0)
    >>> cost.per_query()
    {'calls': 2.0, 'pairs': 20.0, 'prompt_tokens': 4500.0, 'completion_tokens': 40.0, 'ms': 1500.0, 'unparsed': 0.0}
    """

    queries: int = 0
    calls: int = 0
    pairs: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    unparsed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **amounts: float) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> RerankCost:
        with self._lock:
            return RerankCost(self.queries, self.calls, self.pairs, self.prompt_tokens, self.completion_tokens,
                              self.seconds, self.unparsed)

    def since(self, earlier: RerankCost) -> RerankCost:
        """The cost added after ``earlier`` (a :meth:`snapshot`)."""
        now = self.snapshot()
        return RerankCost(*(getattr(now, name) - getattr(earlier, name) for name in _COUNTERS))

    def per_query(self) -> dict[str, float]:
        """Average cost of one question (milliseconds instead of seconds)."""
        n = max(self.queries, 1)
        return {"calls": self.calls / n, "pairs": self.pairs / n, "prompt_tokens": self.prompt_tokens / n,
                "completion_tokens": self.completion_tokens / n, "ms": 1000 * self.seconds / n,
                "unparsed": self.unparsed / n}

    def to_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in _COUNTERS}

    @contextmanager
    def timed(self, queries: int) -> Iterator[None]:
        """Count ``queries`` and the seconds the ``with`` block takes."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(queries=queries, seconds=time.perf_counter() - started)


_COUNTERS = ("queries", "calls", "pairs", "prompt_tokens", "completion_tokens", "seconds", "unparsed")


@runtime_checkable
class Reranker(Protocol):
    """Reorders each question's hits, best first.

    Each returned hit is a copy whose ``score`` is the reranker's score, also kept in
    ``hit.scores["rerank"]``; the retrievers' scores (``dense``, ``bm25``, ``hybrid``) stay in
    ``hit.scores``. Equal scores keep the order the hits came in. An empty list stays empty.
    """

    name: str  # "cross-encoder:/models/bge-reranker-v2-m3", "llm:llamacpp:/models/x.gguf", ...
    cost: RerankCost

    def rerank_batch(self, queries: Sequence[str], hits: Sequence[Sequence[Hit]]) -> list[list[Hit]]:
        ...


def reorder(hits: Sequence[Hit], scores: Sequence[float]) -> list[Hit]:
    """Copies of ``hits`` sorted by ``scores`` (highest first), each carrying its score; ties keep input order.

    >>> a, b, c = (Hit(i, 0.9 - i / 10, t, "d", "s", None, None, None, 0, 1, scores={"bm25": 1.0}) for i, t in
    ...            enumerate("abc"))
    >>> [(h.text, h.score) for h in reorder([a, b, c], [0.2, 0.7, 0.2])]
    [('b', 0.7), ('a', 0.2), ('c', 0.2)]
    >>> reorder([a, b, c], [0.2, 0.7, 0.2])[0].scores
    {'bm25': 1.0, 'rerank': 0.7}
    """
    if len(scores) != len(hits):
        raise ValueError(f"{len(scores)} scores for {len(hits)} hits")
    order = sorted(range(len(hits)), key=lambda i: -scores[i])  # sorted() is stable: ties keep the fused order
    return [replace(hits[i], score=float(scores[i]), scores={**hits[i].scores, SCORE_KEY: float(scores[i])})
            for i in order]


def rerank_by_scores(queries: Sequence[str], hits: Sequence[Sequence[Hit]],
                     score_pairs: Callable[[list[tuple[str, str]]], list[float]]) -> list[list[Hit]]:
    """Pointwise reranking: every (question, passage) pair of the batch scored in one call, then each list sorted.

    >>> h = [Hit(i, 0.0, t, "d", "s", None, None, None, 0, 1) for i, t in enumerate(["x", "query words"])]
    >>> overlap = lambda pairs: [float(len(set(q.split()) & set(p.split()))) for q, p in pairs]
    >>> [hit.text for hit in rerank_by_scores(["query"], [h], overlap)[0]]
    ['query words', 'x']
    """
    if len(queries) != len(hits):
        raise ValueError(f"{len(queries)} queries but {len(hits)} lists of hits")
    pairs = [(query, passage_text(hit)) for query, row in zip(queries, hits, strict=True) for hit in row]
    scores = score_pairs(pairs) if pairs else []
    out, start = [], 0
    for row in hits:
        out.append(reorder(row, scores[start : start + len(row)]))
        start += len(row)
    return out


def passage_text(hit: Hit) -> str:
    """The text a reranker reads: the chunk, under its document's title when it has one the text lacks.

    A title names what a chunk is about when its text does not ("3. 반품 절차" under "환불 정책"); the
    same title at the head of the text is not repeated.

    >>> passage_text(Hit(1, 0.0, "14일 이내 신청", "d", "s", "반품 정책", None, None, 0, 8))
    '반품 정책\\n14일 이내 신청'
    >>> passage_text(Hit(1, 0.0, "반품 정책: 14일", "d", "s", "반품 정책", None, None, 0, 8))
    '반품 정책: 14일'
    """
    title = (hit.title or "").strip()
    if not title or hit.text.lstrip().startswith(title):
        return hit.text
    return f"{title}\n{hit.text}"
