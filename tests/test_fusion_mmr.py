"""Fusion and MMR against direct computations of their formulas."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from jisik.errors import QueryError
from jisik.filters import Condition, build_filter, parse_condition
from jisik.retrieve.fusion import min_max_normalize, reciprocal_rank_fusion, weighted_fusion
from jisik.retrieve.mmr import maximal_marginal_relevance


def test_rrf_matches_formula() -> None:
    dense = [(10, 0.9), (11, 0.8), (12, 0.7)]
    lexical = [(12, 7.0), (13, 5.0), (10, 1.0)]
    fused = dict(reciprocal_rank_fusion([dense, lexical], k=60))
    assert fused[10] == pytest.approx(1 / 61 + 1 / 63)
    assert fused[12] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[11] == pytest.approx(1 / 62)
    assert fused[13] == pytest.approx(1 / 62)


def test_rrf_weights_and_order() -> None:
    fused = reciprocal_rank_fusion([[(1, 1.0)], [(2, 1.0)]], k=60, weights=[2.0, 1.0])
    assert [d for d, _ in fused] == [1, 2]


def test_weighted_fusion_normalises_each_list() -> None:
    assert min_max_normalize([(1, 5.0), (2, 5.0)]) == [(1, 1.0), (2, 1.0)]
    fused = dict(weighted_fusion([[(1, 0.8), (2, 0.6), (3, 0.4)], [(3, 30.0), (4, 10.0)]], [0.7, 0.3]))
    assert fused[1] == pytest.approx(0.7)
    assert fused[2] == pytest.approx(0.35)
    assert fused[3] == pytest.approx(0.3)
    assert fused[4] == pytest.approx(0.0)


def _mmr_brute_force(q: np.ndarray, c: np.ndarray, k: int, lam: float) -> list[int]:
    """The MMR formula evaluated literally at every step after the first, which takes the most
    relevant candidate (at λ=0 the formula alone ties every candidate at step one)."""
    chosen: list[int] = [int(np.argmax(c @ q))]
    for _ in range(min(k, len(c)) - 1):
        best, best_score = -1, -np.inf
        for i in range(len(c)):
            if i in chosen:
                continue
            redundancy = max((float(c[i] @ c[j]) for j in chosen), default=0.0)
            score = lam * float(c[i] @ q) - (1 - lam) * redundancy
            if score > best_score:
                best, best_score = i, score
        chosen.append(best)
    return chosen


@pytest.mark.parametrize(("seed", "lam"), list(itertools.product(range(5), [0.0, 0.25, 0.5, 0.9, 1.0])))
def test_mmr_matches_direct_formula(seed: int, lam: float) -> None:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(30, 8)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    q = rng.normal(size=8).astype(np.float32)
    q /= np.linalg.norm(q)
    assert maximal_marginal_relevance(q, c, 6, lam) == _mmr_brute_force(q, c, 6, lam)


def test_mmr_lambda_one_is_plain_ranking() -> None:
    rng = np.random.default_rng(0)
    c = rng.normal(size=(10, 4)).astype(np.float32)
    q = rng.normal(size=4).astype(np.float32)
    assert maximal_marginal_relevance(q, c, 4, 1.0) == list(np.argsort(-(c @ q))[:4])


@pytest.mark.parametrize(("text", "expected"), [
    ("source=policies/*.pdf", Condition("source", "glob", "policies/*.pdf")),
    ("year>=2020", Condition("year", "gte", 2020)),
    ("year < 2024", Condition("year", "lt", 2024)),
    ("date>=2024-01-01", Condition("date", "gte", "2024-01-01")),
    ("lang in ko,en", Condition("lang", "in", ("ko", "en"))),
    ("lang=[ko,en]", Condition("lang", "in", ("ko", "en"))),
    ("dept!=legal", Condition("dept", "ne", "legal")),
    ("draft=false", Condition("draft", "eq", False)),
])
def test_parse_condition(text: str, expected: Condition) -> None:
    assert parse_condition(text) == expected


@pytest.mark.parametrize("bad", ["", "year", "=5", "year>="])
def test_bad_filters_name_the_syntax(bad: str) -> None:
    with pytest.raises(QueryError, match="key=value"):
        parse_condition(bad)


def test_dict_filter_rejects_unknown_operator() -> None:
    with pytest.raises(QueryError, match="unknown filter operator"):
        build_filter({"year": {"between": [1, 2]}})
