"""Fusing ranked lists from several retrievers."""

from __future__ import annotations

from collections.abc import Sequence

ScoredIds = list[tuple[int, float]]


def reciprocal_rank_fusion(rankings: Sequence[ScoredIds], *, k: int = 60,
                           weights: Sequence[float] | None = None) -> ScoredIds:
    """Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): ``score(d) = Σ w_i / (k + rank_i(d))``.

    ``k = 60`` is the paper's constant: it damps the head of each list so that one retriever's
    top hit cannot dominate, and it was robust across their test collections. Ranks start at 1.

    >>> reciprocal_rank_fusion([[(1, 9.0), (2, 8.0)], [(2, 0.9), (3, 0.8)]], k=60)
    [(2, 0.03252247488101534), (1, 0.01639344262295082), (3, 0.016129032258064516)]
    """
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, (doc, _) in enumerate(ranking, start=1):
            fused[doc] = fused.get(doc, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def min_max_normalize(ranking: ScoredIds) -> ScoredIds:
    """Scale scores of one list to [0, 1]; a list whose scores are all equal maps to 1.0.

    >>> min_max_normalize([(1, 4.0), (2, 2.0), (3, 0.0)])
    [(1, 1.0), (2, 0.5), (3, 0.0)]
    """
    if not ranking:
        return []
    scores = [s for _, s in ranking]
    low, high = min(scores), max(scores)
    if high == low:
        return [(doc, 1.0) for doc, _ in ranking]
    return [(doc, (s - low) / (high - low)) for doc, s in ranking]


def weighted_fusion(rankings: Sequence[ScoredIds], weights: Sequence[float]) -> ScoredIds:
    """Convex combination of min-max normalised scores; a document missing from a list scores 0 there.

    >>> weighted_fusion([[(1, 0.9), (2, 0.5)], [(2, 12.0), (3, 3.0)]], [0.5, 0.5])
    [(1, 0.5), (2, 0.5), (3, 0.0)]
    """
    total = sum(weights) or 1.0
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for doc, score in min_max_normalize(ranking):
            fused[doc] = fused.get(doc, 0.0) + (weight / total) * score
    return sorted(fused.items(), key=lambda item: (-item[1], -_first_rank(rankings, item[0])))


def _first_rank(rankings: Sequence[ScoredIds], doc: int) -> float:
    """Tie-break: the document that appears earliest in the first list that holds it wins."""
    for ranking in rankings:
        for rank, (other, _) in enumerate(ranking):
            if other == doc:
                return -rank
    return float("-inf")
