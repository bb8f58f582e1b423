"""Fusing ranked lists from several retrievers."""

from __future__ import annotations

from collections.abc import Collection, Sequence

ScoredIds = list[tuple[int, float]]


def reciprocal_rank_fusion(rankings: Sequence[ScoredIds], *, k: int = 60, weights: Sequence[float] | None = None,
                           abstain: Sequence[Collection[int]] | None = None) -> ScoredIds:
    """Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): ``score(d) = Σ w_i / (k + rank_i(d))``.

    ``k = 60`` is the paper's constant: it damps the head of each list so that one retriever's
    top hit cannot dominate, and it was robust across their test collections. Ranks start at 1.
    ``abstain``: as in :func:`weighted_fusion` (ranks are counted among the documents a retriever can
    judge, and a document's sum is scaled up to the full weight by the retrievers that can judge it).

    >>> reciprocal_rank_fusion([[(1, 9.0), (2, 8.0)], [(2, 0.9), (3, 0.8)]], k=60)
    [(2, 0.03252247488101534), (1, 0.01639344262295082), (3, 0.016129032258064516)]
    >>> reciprocal_rank_fusion([[(1, 9.0), (2, 8.0)], [(2, 0.9)]], k=60, abstain=[set(), {1}])
    [(1, 0.03278688524590164), (2, 0.03252247488101534)]
    """
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, weight, blind in zip(rankings, weights, _abstentions(abstain, len(rankings)), strict=True):
        seen = [(doc, score) for doc, score in ranking if doc not in blind]
        for rank, (doc, _) in enumerate(seen, start=1):
            fused[doc] = fused.get(doc, 0.0) + weight / (k + rank)
    scale = _judged_share(fused, weights, abstain)
    return sorted(((doc, score * scale[doc]) for doc, score in fused.items()), key=lambda item: (-item[1], item[0]))


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


def weighted_fusion(rankings: Sequence[ScoredIds], weights: Sequence[float],
                    abstain: Sequence[Collection[int]] | None = None) -> ScoredIds:
    """Convex combination of min-max normalised scores; a document missing from a list scores 0 there.

    >>> weighted_fusion([[(1, 0.9), (2, 0.5)], [(2, 12.0), (3, 3.0)]], [0.5, 0.5])
    [(1, 0.5), (2, 0.5), (3, 0.0)]

    ``abstain[i]`` holds the documents retriever ``i`` cannot judge at all: BM25 for a chunk written in
    another language than the query, which no query term can occur in. Missing from BM25's list, such a
    chunk would score 0 there like a chunk BM25 could match and did not find, so an English question
    would sink every Korean chunk to half its dense score. Instead retriever ``i`` is left out for it:
    its score is the weighted mean over the retrievers that can judge it, and ``i``'s min-max range is
    taken over the documents it can judge (a stray match of a URL or a number does not set the scale).
    Below, BM25 cannot judge document 1, which now keeps its full dense score:

    >>> weighted_fusion([[(1, 0.9), (2, 0.5)], [(2, 12.0), (3, 3.0)]], [0.5, 0.5], abstain=[set(), {1}])
    [(1, 1.0), (2, 0.5), (3, 0.0)]
    """
    total = sum(weights) or 1.0
    fused: dict[int, float] = {}
    for ranking, weight, blind in zip(rankings, weights, _abstentions(abstain, len(rankings)), strict=True):
        for doc, score in min_max_normalize([(doc, s) for doc, s in ranking if doc not in blind]):
            fused[doc] = fused.get(doc, 0.0) + (weight / total) * score
    scale = _judged_share(fused, weights, abstain)
    return sorted(((doc, score * scale[doc]) for doc, score in fused.items()),
                  key=lambda item: (-item[1], -_first_rank(rankings, item[0])))


def _abstentions(abstain: Sequence[Collection[int]] | None, n: int) -> Sequence[Collection[int]]:
    """One (possibly empty) set of abstained documents per ranking."""
    if abstain is None:
        return [frozenset()] * n
    if len(abstain) != n:
        raise ValueError(f"{len(abstain)} abstain sets for {n} rankings")
    return abstain


def _judged_share(fused: dict[int, float], weights: Sequence[float],
                  abstain: Sequence[Collection[int]] | None) -> dict[int, float]:
    """Per document, total weight ÷ weight of the retrievers that can judge it (1.0 without abstentions).

    >>> _judged_share({1: 0.4, 2: 0.5}, [0.5, 0.5], [set(), {1}])
    {1: 2.0, 2: 1.0}
    """
    total = sum(weights)
    out = {}
    for doc in fused:
        judged = total if abstain is None else sum(w for w, blind in zip(weights, abstain, strict=True)
                                                   if doc not in blind)
        out[doc] = total / judged if judged > 0 else 0.0
    return out


def _first_rank(rankings: Sequence[ScoredIds], doc: int) -> float:
    """Tie-break: the document that appears earliest in the first list that holds it wins."""
    for ranking in rankings:
        for rank, (other, _) in enumerate(ranking):
            if other == doc:
                return -rank
    return float("-inf")
