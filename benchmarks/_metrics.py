"""Ranking metrics for the retrieval benchmarks: recall@k, hit@k, reciprocal rank@k and their means.

Small pure functions over plain lists, so each can be checked by hand. ``ranked`` is a system's
result list (best first) of passage ids; ``gold`` is the set of passage ids that answer the query.

    python -m doctest benchmarks/_metrics.py -v
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence


def dedupe(ranked: Iterable[Hashable]) -> list[Hashable]:
    """Keep the first occurrence of every id, in rank order (two chunks of one passage count once).

    >>> dedupe([3, 1, 3, 2, 1])
    [3, 1, 2]
    """
    seen: set[Hashable] = set()
    out = []
    for item in ranked:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def recall_at_k(ranked: Sequence[Hashable], gold: set[Hashable], k: int) -> float:
    """Share of the gold passages found in the top ``k``.

    With one gold passage this is hit@k (1.0 or 0.0). Gold passage 7 at rank 2:

    >>> recall_at_k([4, 7, 9], {7}, 1), recall_at_k([4, 7, 9], {7}, 5)
    (0.0, 1.0)

    Two gold passages, one of them in the top 2:

    >>> recall_at_k([4, 7, 9, 1], {7, 1}, 2)
    0.5
    >>> recall_at_k([4, 7, 9, 1], {7, 1}, 10)
    1.0
    """
    if not gold:
        raise ValueError("a query needs at least one gold passage")
    return len(gold.intersection(ranked[:k])) / len(gold)


def hit_at_k(ranked: Sequence[Hashable], gold: set[Hashable], k: int) -> float:
    """1.0 when any gold passage is in the top ``k``, else 0.0.

    >>> hit_at_k([4, 7, 9, 1], {7, 1}, 2), hit_at_k([4, 7, 9, 1], {7, 1}, 1)
    (1.0, 0.0)
    """
    return 1.0 if gold.intersection(ranked[:k]) else 0.0


def reciprocal_rank_at_k(ranked: Sequence[Hashable], gold: set[Hashable], k: int = 10) -> float:
    """1 / rank of the first gold passage within the top ``k`` (ranks start at 1), else 0.

    MRR@k is the mean of this over queries (MS MARCO's official metric is MRR@10).

    >>> reciprocal_rank_at_k([4, 7, 9], {7, 9})
    0.5
    >>> reciprocal_rank_at_k([4, 7, 9], {9}, k=2)
    0.0
    >>> reciprocal_rank_at_k([], {9})
    0.0
    """
    for rank, item in enumerate(ranked[:k], start=1):
        if item in gold:
            return 1.0 / rank
    return 0.0


def evaluate_run(runs: Sequence[Sequence[Hashable]], golds: Sequence[set[Hashable]],
                 ks: Sequence[int] = (1, 5, 10), mrr_k: int = 10) -> dict[str, float]:
    """Mean recall@k for each ``k`` and MRR@``mrr_k`` over queries (``runs[i]`` answers ``golds[i]``).

    Query 1 finds its passage at rank 1, query 2 at rank 4, query 3 not at all:

    >>> scores = evaluate_run([[1, 2], [5, 6, 7, 8], [9]], [{1}, {8}, {3}], ks=(1, 5))
    >>> {name: round(value, 4) for name, value in scores.items()}
    {'R@1': 0.3333, 'R@5': 0.6667, 'MRR@10': 0.4167}
    """
    if len(runs) != len(golds):
        raise ValueError(f"{len(runs)} result lists for {len(golds)} queries")
    if not runs:
        raise ValueError("no queries to evaluate")
    n = len(runs)
    out = {f"R@{k}": sum(recall_at_k(r, g, k) for r, g in zip(runs, golds, strict=True)) / n for k in ks}
    out[f"MRR@{mrr_k}"] = sum(reciprocal_rank_at_k(r, g, mrr_k) for r, g in zip(runs, golds, strict=True)) / n
    return out


def per_query_hits(runs: Sequence[Sequence[Hashable]], golds: Sequence[set[Hashable]], k: int) -> list[bool]:
    """For each query, whether any gold passage is in the top ``k`` (for failure analysis).

    >>> per_query_hits([[1, 2], [3]], [{2}, {4}], k=5)
    [True, False]
    """
    return [bool(g.intersection(r[:k])) for r, g in zip(runs, golds, strict=True)]


def points(a: Mapping[str, float], b: Mapping[str, float], metric: str) -> float:
    """Difference ``a - b`` of one metric in percentage points.

    >>> points({"R@5": 0.82}, {"R@5": 0.605}, "R@5")
    21.5
    """
    return round(100.0 * (a[metric] - b[metric]), 2)
