"""Retrieval: hit@k, recall@k, precision@k, MRR, nDCG and MAP over ranked ids, as trec_eval."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence

import numpy as np

from jisik.errors import EvaluationError
from jisik.evaluate.metrics._common import _check_nonempty, _check_same_length, _ratio


def _check_k(k: int | None) -> None:
    if k is not None and k < 1:
        raise EvaluationError(f"k must be at least 1, not {k}")


def _grades(relevant: Collection[Hashable] | Mapping[Hashable, float]) -> dict[Hashable, float]:
    """Relevance grade per id: a mapping's values (> 0 counts as relevant), else 1.0 for each id."""
    if isinstance(relevant, str):
        raise EvaluationError("relevant must be a collection of ids", hint=f"pass [{relevant!r}]")
    if isinstance(relevant, Mapping):
        grades = {doc: float(grade) for doc, grade in relevant.items()}
        if any(g < 0 or math.isnan(g) for g in grades.values()):
            raise EvaluationError("relevance grades must be non-negative numbers")
        return {doc: g for doc, g in grades.items() if g > 0}
    return dict.fromkeys(relevant, 1.0)


def _top(retrieved: Sequence[Hashable], k: int | None) -> list[Hashable]:
    """The first ``k`` distinct ids (a repeated id counts once, at its first rank)."""
    _check_k(k)
    return list(dict.fromkeys(retrieved))[:k]


def hit_at_k(retrieved: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """1.0 if any of the first ``k`` retrieved ids is relevant, else 0.0 (also "success@k").

    >>> hit_at_k(["d3", "d1", "d7"], {"d1", "d9"}, 1), hit_at_k(["d3", "d1", "d7"], {"d1", "d9"}, 2)
    (0.0, 1.0)
    """
    gold = _grades(relevant)
    return float(any(doc in gold for doc in _top(retrieved, k)))


def recall_at_k(retrieved: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Share of the relevant ids found in the first ``k`` (0.0 when nothing is relevant).

    >>> recall_at_k([3, 1, 7], {1, 9}, 3)
    0.5
    """
    gold = _grades(relevant)
    return _ratio(sum(1 for doc in _top(retrieved, k) if doc in gold), len(gold))


def precision_at_k(retrieved: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Relevant ids among the first ``k``, divided by ``k`` (even when fewer were retrieved, as trec_eval).

    >>> precision_at_k([3, 1, 7], {1, 9}, 4)
    0.25
    """
    gold = _grades(relevant)
    return sum(1 for doc in _top(retrieved, k) if doc in gold) / k


def reciprocal_rank(retrieved: Sequence[Hashable], relevant: Collection[Hashable], k: int | None = None) -> float:
    """1 / rank of the first relevant id (within the first ``k`` if given), 0.0 if there is none.

    >>> reciprocal_rank(["d3", "d1", "d7"], {"d1"}), reciprocal_rank(["d3", "d1"], {"d1"}, k=1)
    (0.5, 0.0)
    """
    gold = _grades(relevant)
    return next((1 / rank for rank, doc in enumerate(_top(retrieved, k), start=1) if doc in gold), 0.0)


def ndcg_at_k(
    retrieved: Sequence[Hashable], relevant: Collection[Hashable] | Mapping[Hashable, float], k: int
) -> float:
    """Normalised discounted cumulative gain (Järvelin & Kekäläinen 2002) of the first ``k``.

    DCG = Σ gain(doc at rank i) / log2(i + 1); the gain is the grade when ``relevant`` maps ids to
    grades, else 1 for a relevant id; it is divided by the DCG of the ideal order of all graded ids
    (as trec_eval's ``ndcg_cut``). 0.0 when nothing is relevant.

    >>> round(ndcg_at_k(["a", "b", "c"], {"b"}, 3), 4), round(ndcg_at_k(["a", "b"], {"a": 1, "b": 3}, 2), 4)
    (0.6309, 0.7967)
    """
    gold = _grades(relevant)
    dcg = sum(gold.get(doc, 0.0) / math.log2(rank + 1) for rank, doc in enumerate(_top(retrieved, k), start=1))
    ideal = sum(g / math.log2(rank + 1) for rank, g in enumerate(sorted(gold.values(), reverse=True)[:k], start=1))
    return _ratio(dcg, ideal)


def average_precision(retrieved: Sequence[Hashable], relevant: Collection[Hashable], k: int | None = None) -> float:
    """Mean of precision@rank over the ranks of relevant ids, divided by the number of relevant ids
    (so unretrieved ones count as 0, as trec_eval's ``map``/``map_cut``). 0.0 when nothing is relevant.

    >>> average_precision(["a", "x", "b", "y"], {"a", "b", "c"})  # (1/1 + 2/3) / 3
    0.5555555555555555
    """
    gold = _grades(relevant)
    found, total = 0, 0.0
    for rank, doc in enumerate(_top(retrieved, k), start=1):
        if doc in gold:
            found += 1
            total += found / rank
    return _ratio(total, len(gold))


def retrieval_scores(
    runs: Sequence[Sequence[Hashable]],
    relevant: Sequence[Collection[Hashable]],
    ks: Sequence[int] = (1, 3, 5, 10),
) -> dict[str, float]:
    """Retrieval metrics averaged over queries: ``hit@k``, ``recall@k``, ``precision@k`` and
    ``ndcg@k`` for each k, ``mrr`` and ``map`` (whole runs). ``relevant[i]`` are query i's relevant
    ids (or an id → grade mapping). A query without relevant ids cannot be scored and raises.

    >>> s = retrieval_scores([["a", "b"], ["c", "d"]], [{"b"}, {"x"}], ks=[1, 2])
    >>> s["hit@2"], s["mrr"], round(s["ndcg@2"], 4), s["precision@2"]
    (0.5, 0.25, 0.3155, 0.25)
    """
    _check_same_length("runs", runs, "relevant", relevant)
    _check_nonempty("runs", runs)
    for k in ks:
        _check_k(k)
    for i, (run, gold) in enumerate(zip(runs, relevant, strict=True)):
        if isinstance(run, str):
            raise EvaluationError(f"run {i} must be a list of ids, not a string")
        if not _grades(gold):
            raise EvaluationError(f"query {i} has no relevant ids", hint="drop queries without judgements first")
    metrics: dict[str, Callable[[Sequence[Hashable], Collection[Hashable], int], float]] = {
        "hit": hit_at_k, "recall": recall_at_k, "precision": precision_at_k, "ndcg": ndcg_at_k,
    }
    out = {
        f"{name}@{k}": float(np.mean([fn(run, gold, k) for run, gold in zip(runs, relevant, strict=True)]))
        for k in ks
        for name, fn in metrics.items()
    }
    out["mrr"] = float(np.mean([reciprocal_rank(run, gold) for run, gold in zip(runs, relevant, strict=True)]))
    out["map"] = float(np.mean([average_precision(run, gold) for run, gold in zip(runs, relevant, strict=True)]))
    return out
