"""Document- and page-level aggregation of chunk hits (issue 14, part 4)."""

from __future__ import annotations

import pytest

from jisik.records import Hit
from jisik.retrieve.aggregate import aggregate_hits, aggregate_scores, document_ranking, group_ranked


def _hit(chunk: int, doc: str, score: float, page: int | None = 1) -> Hit:
    return Hit(chunk, score, f"chunk {chunk}", doc, doc, None, page, None, 0, 1)


def test_three_strong_chunks_beat_one_better_chunk() -> None:
    # the case: the long document's best chunk ranks third, but it has three strong chunks
    hits = [_hit(1, "short-a", 0.92), _hit(2, "short-b", 0.90), _hit(3, "long", 0.88), _hit(4, "long", 0.86),
            _hit(5, "long", 0.85), _hit(6, "short-a", 0.2)]
    assert [d for d, _ in document_ranking(hits)] == ["long", "short-a", "short-b"]
    assert [h.chunk_id for h in aggregate_hits(hits)] == [3, 4, 5, 1, 6, 2]


def test_one_very_good_chunk_still_beats_weak_support() -> None:
    hits = [_hit(1, "a", 0.95), _hit(2, "b", 0.5), _hit(3, "b", 0.2), _hit(4, "b", 0.2)]
    assert document_ranking(hits)[0][0] == "a"  # 0.95 vs 0.5 + 0.1 + 0.05


def test_maxp_and_sump_are_the_ends() -> None:
    pairs = [("a", 0.9), ("b", 0.6), ("b", 0.6)]
    assert [k for k, _ in aggregate_scores(pairs, decay=0.0)] == ["a", "b"]  # MaxP
    assert [k for k, _ in aggregate_scores(pairs, decay=1.0, depth=10)] == ["b", "a"]  # SumP / CombSUM
    assert aggregate_scores(pairs, decay=1.0, depth=1) == [("a", 0.9), ("b", 0.6)]  # depth 1 is MaxP too
    with pytest.raises(ValueError, match="depth"):
        aggregate_scores(pairs, depth=0)


def test_page_level() -> None:
    hits = [_hit(1, "x", 0.9, page=1), _hit(2, "x", 0.8, page=2), _hit(3, "x", 0.8, page=2)]
    assert [h.chunk_id for h in aggregate_hits(hits, level="page")] == [2, 3, 1]
    assert [h.chunk_id for h in aggregate_hits(hits, level="document")] == [1, 2, 3]


def test_rank_based_ignores_score_scale() -> None:
    hits = [_hit(1, "a", 100.0), _hit(2, "b", 1.0), _hit(3, "b", 0.5)]
    assert [h.chunk_id for h in aggregate_hits(hits)] == [1, 2, 3]  # by score: 100 wins
    assert [h.chunk_id for h in aggregate_hits(hits, by="rank")] == [2, 3, 1]


def test_scores_and_contents_are_kept() -> None:
    hits = [_hit(1, "a", 0.5), _hit(2, "b", 0.4), _hit(3, "b", 0.4)]
    out = aggregate_hits(hits)
    assert sorted(h.chunk_id for h in out) == [1, 2, 3] and {h.chunk_id: h.score for h in out} == {1: .5, 2: .4, 3: .4}
    assert aggregate_hits([]) == [] and group_ranked([], key=str, score=float) == []


def test_korean_document_ids() -> None:
    hits = [_hit(1, "정책/반품.md", 0.7), _hit(2, "정책/환불.md", 0.65), _hit(3, "정책/환불.md", 0.6)]
    assert document_ranking(hits)[0] == ("정책/환불.md", pytest.approx(0.95))
