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


# Pseudo-count added to each retriever's top-score gap before the gaps are turned into weights. One unit is one
# standard deviation of that retriever's own candidate scores: a list whose best candidate does not stand out
# (gap 0) keeps a third of the weight against one whose best is a full deviation ahead (gap 1 vs 0 gives
# 2:1), and two lists that both stand out little stay close to their prior weights. On the four development
# sets (docs/benchmarks-retrieval.md, "Issue 14"; `benchmarks/retrieval.py --variants`), 1 is within 0.2 points
# MRR@10 of the best of 0, 0.5, 1 and 2 on each set; 0 (no smoothing) is the worst on three and never the best.
GAP_PSEUDO_COUNT = 1.0


def score_spread(scores: Sequence[float]) -> float:
    """Population standard deviation of ``scores`` (0.0 for none).

    >>> score_spread([1.0, 3.0]), score_spread([])
    (1.0, 0.0)
    """
    if not scores:
        return 0.0
    mean = sum(scores) / len(scores)
    return float((sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5)


def top_gap(scores: Sequence[float]) -> float:
    """How far a list's best score stands above its second, in standard deviations of the whole list.

    A post-retrieval query-performance predictor in the family of the score-distribution predictors
    (Shtok et al., "Predicting query performance by query-drift estimation", TOIS 2012; Cummins,
    "Document score distribution models for query performance inference", 2014): a retriever whose top
    candidate is clearly apart from the rest is usually right about it. Scale-free, so BM25 scores and
    cosines compare. Fewer than two scores, or no spread: 0.

    >>> round(top_gap([0.9, 0.5, 0.45, 0.4]), 3)
    2.02
    >>> top_gap([3.0]), top_gap([1.0, 1.0, 1.0])
    (0.0, 0.0)
    """
    if len(scores) < 2:
        return 0.0
    ordered = sorted(scores, reverse=True)
    spread = score_spread(ordered)
    return (ordered[0] - ordered[1]) / spread if spread > 0 else 0.0


def adaptive_weights(rankings: Sequence[ScoredIds], priors: Sequence[float], *,
                     pseudo_count: float | None = None) -> list[float]:
    """Per-query weights: each retriever's prior weight times its smoothed :func:`top_gap`, normalised to sum 1.

    The weights follow the evidence of this query's own score distributions (no training, no labels): when
    BM25's best match stands far above its other matches and the dense list is flat, BM25 leads, and the
    other way round. A retriever with an empty list gets no weight.

    >>> [round(w, 3) for w in adaptive_weights([[(1, 0.9), (2, 0.5), (3, 0.45)], [(4, 8.0), (5, 7.9), (6, 7.8)]],
    ...                                         [0.5, 0.5])]
    [0.573, 0.427]
    >>> adaptive_weights([[(1, 0.9)], []], [0.5, 0.5])
    [1.0, 0.0]
    """
    smoothing = GAP_PSEUDO_COUNT if pseudo_count is None else pseudo_count
    raw = [prior * (top_gap([s for _, s in ranking]) + smoothing) if ranking else 0.0
           for ranking, prior in zip(rankings, priors, strict=True)]
    total = sum(raw)
    if total <= 0:
        return [1.0 / len(raw)] * len(raw) if raw else []
    return [w / total for w in raw]


def zscore_fusion(rankings: Sequence[ScoredIds], weights: Sequence[float], references: Sequence[ScoredIds],
                  abstain: Sequence[Collection[int]] | None = None) -> ScoredIds:
    """Weighted sum of standardised scores (CombSUM over z-scores: Montague & Aslam, "Relevance score
    normalization for metasearch", CIKM 2001).

    Each retriever's scores become ``(s − mean) / std`` with mean and std taken over ``references[i]``, that
    retriever's own top list as retrieved, so the scale is what the retriever itself found and not the
    candidates the other one added; ``rankings[i]`` holds its scores for every candidate (a BM25 score of 0
    for a chunk without a query term is far below its list's mean: a real penalty, unlike min-max over a
    top list, where a missing chunk and the 40th match both score 0). ``abstain`` as in
    :func:`weighted_fusion`: a document the retriever cannot judge gets the weighted mean of the others.

    Document 1 is dense's best, but has none of the query's terms (BM25 0.0, three deviations below
    BM25's own mean); document 2 is second for dense and BM25's best:

    >>> fused = zscore_fusion([[(1, 0.9), (2, 0.8), (3, 0.7)], [(1, 0.0), (2, 6.0), (3, 3.0)]], [0.5, 0.5],
    ...                       [[(1, 0.9), (2, 0.8), (3, 0.7)], [(2, 6.0), (3, 3.0)]])
    >>> [(doc, round(score, 3)) for doc, score in fused]
    [(2, 0.5), (1, -0.888), (3, -1.112)]
    """
    total = sum(weights) or 1.0
    fused: dict[int, float] = {}
    for ranking, weight, reference, blind in zip(rankings, weights, references,
                                                 _abstentions(abstain, len(rankings)), strict=True):
        scores = [s for doc, s in reference if doc not in blind]
        if not scores or weight <= 0:
            continue
        mean, spread = sum(scores) / len(scores), score_spread(scores) or 1.0
        for doc, score in ranking:
            if doc not in blind:
                fused[doc] = fused.get(doc, 0.0) + (weight / total) * (score - mean) / spread
    scale = _judged_share(fused, weights, abstain)
    return sorted(((doc, score * scale[doc]) for doc, score in fused.items()),
                  key=lambda item: (-item[1], -_first_rank(rankings, item[0])))
