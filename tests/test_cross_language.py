"""Questions in one language over documents in another (issue 10, defect 10).

Unit tests of the pieces (fusion with an abstaining retriever, the language rules, the answerer's
cross-language features) run in milliseconds; the end-to-end test ingests the bundled sample with the
real default embedder, as ``jisik ingest examples/sample_docs`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from jisik.generate.crosslingual import CROSS_LANGUAGE_SHIFT, cross_language_features, cross_language_rows
from jisik.generate.extractive import Candidate, dense_feature
from jisik.generate.language import is_not_found, text_language
from jisik.kb import KnowledgeBase
from jisik.retrieve.fusion import reciprocal_rank_fusion, weighted_fusion
from jisik.retrieve.searcher import other_language_ids

DENSE = [(1, 0.84), (2, 0.83), (3, 0.82), (4, 0.81)]  # 1, 2 English chunks; 3, 4 Korean
LEXICAL = [(2, 4.0), (1, 1.0)]  # BM25 matched two English chunks and could not match the Korean ones


def test_without_abstentions_fusion_is_unchanged() -> None:
    for abstain in (None, [set(), set()]):
        assert weighted_fusion([DENSE, LEXICAL], [0.5, 0.5], abstain=abstain) == weighted_fusion([DENSE, LEXICAL],
                                                                                                 [0.5, 0.5])
        assert reciprocal_rank_fusion([DENSE, LEXICAL], abstain=abstain) == reciprocal_rank_fusion([DENSE, LEXICAL])


def test_a_chunk_bm25_cannot_judge_keeps_its_dense_score() -> None:
    plain = dict(weighted_fusion([DENSE, LEXICAL], [0.5, 0.5]))
    fused = dict(weighted_fusion([DENSE, LEXICAL], [0.5, 0.5], abstain=[set(), {3, 4}]))
    # dense min-max over 0.81..0.84: chunk 3 is at 1/3 of the range; it was halved to 1/6 before
    assert plain[3] == pytest.approx(0.5 / 3)
    assert fused[3] == pytest.approx(1 / 3)
    assert fused[4] == pytest.approx(0.0)
    assert fused[1] == pytest.approx(plain[1]) and fused[2] == pytest.approx(plain[2])  # English: as before


def test_stray_matches_in_another_language_do_not_set_bm25s_scale() -> None:
    # BM25's best "hit" is a Korean chunk matched only by a URL: once it abstains, chunk 2 is BM25's top.
    lexical = [(3, 9.0), (2, 4.0), (1, 1.0)]
    fused = dict(weighted_fusion([DENSE, lexical], [0.5, 0.5], abstain=[set(), {3, 4}]))
    assert fused[2] == pytest.approx(0.5 * (2 / 3) + 0.5 * 1.0)
    assert fused[3] == pytest.approx(1 / 3)


def test_rrf_scales_an_abstained_chunk_to_the_full_weight() -> None:
    fused = dict(reciprocal_rank_fusion([DENSE, LEXICAL], k=60, abstain=[set(), {3, 4}]))
    assert fused[3] == pytest.approx(2 / 63)
    assert fused[2] == pytest.approx(1 / 62 + 1 / 61)


def test_abstain_needs_one_set_per_ranking() -> None:
    with pytest.raises(ValueError, match="abstain"):
        weighted_fusion([DENSE, LEXICAL], [0.5, 0.5], abstain=[set()])


@pytest.mark.parametrize(("text", "language"), [
    ("반품 상품이 물류센터에 도착하면 검수 후 3영업일 이내에 환불됩니다.", "ko"),
    ("Galaxy S24 Ultra의 AS 보증 기간은 구매일로부터 1년입니다.", "ko"),
    ("윌리엄 브래드포드 http://en.wikipedia.org/wiki/William_Bradford 는 총독이었습니다.", "ko"),
    ("Full-time employees receive 15 days of paid annual leave.", "en"),
    ("The word 반품 means a return.", "en"),
    ("", "en"),
])
def test_text_language(text: str, language: str) -> None:
    assert text_language(text) == language


def test_other_language_ids_follow_the_questions_grammar() -> None:
    texts = {1: "Refunds take 3 business days.", 2: "환불은 검수 후 3영업일 이내에 됩니다.",
             3: "Galaxy S24 보증 기간은 1년입니다."}
    assert other_language_ids("How long do refunds take?", texts) == {2, 3}
    assert other_language_ids("환불은 얼마나 걸리나요?", texts) == {1}
    # a Korean question with English product names: its terms can match the Korean chunks
    assert other_language_ids("Galaxy S24 보증 기간은?", texts) == {1}


def test_cross_language_features_touch_only_the_other_languages_rows() -> None:
    features = np.array([[0.0, 0.1, 0.28, 1.0], [0.7, 0.8, 0.4, 0.67], [0.5, 0.5, 0.9, 0.5], [0.0, 0.0, 0.1, 1.0]])
    texts = ["환불은 3영업일 이내입니다.", "Refunds take 3 days.", "3영업일 (refund)", "https://example.com/환불"]
    candidates = [Candidate(hit, 0, 0, len(t), t) for hit, t in zip([0, 1, 2, 0], texts, strict=True)]
    cosines = [0.82, 0.85, 0.97, 0.70]
    out = cross_language_features(features, ["refund", "long"], candidates, cosines)
    raised = dense_feature(np.array([0.82, 0.97, 0.70]) + CROSS_LANGUAGE_SHIFT)
    assert out[0].tolist() == pytest.approx([raised[0], raised[0], raised[0], 1.0])
    assert out[1].tolist() == features[1].tolist()  # same language: untouched
    assert out[2, :3].tolist() == pytest.approx([1.0, 1.0, 1.0])  # 0.97 + shift is past the top: capped at 1
    assert out[3].tolist() == pytest.approx([0.0, 0.0, raised[2], 1.0])  # below the floor even when raised
    assert features[0, 0] == 0.0  # the input is not modified


def test_cross_language_rows_by_hit_and_by_question_language() -> None:
    texts = ["환불은 3영업일 이내입니다.", "http://example.com/refunds", "Refunds take 3 days."]
    assert cross_language_rows(["refund", "long"], texts).tolist() == [True, False, False]
    assert cross_language_rows(["refund", "long"], texts, groups=[0, 0, 1]).tolist() == [True, True, False]
    assert cross_language_rows(["환불", "걸리다"], texts, groups=[0, 0, 1]).tolist() == [False, False, True]


def test_no_embedder_no_cross_language_answers() -> None:
    features = np.array([[0.0, 0.0, 0.0, 1.0]])
    ko = [Candidate(0, 0, 0, 15, "환불은 3영업일 이내입니다.")]
    out = cross_language_features(features, ["refund"], ko, [0.0])
    assert out.tolist() == features.tolist()  # cosine 0 (no embedder) stays below the floor


# -- the bundled sample, real default embedder --------------------------------------------------------------
SAMPLE_DOCS = Path(__file__).resolve().parents[1] / "examples" / "sample_docs"


@pytest.fixture(scope="module")
def sample_kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    kb = KnowledgeBase.open(tmp_path_factory.mktemp("xkb") / "kb", create=True)
    kb.ingest([SAMPLE_DOCS])
    yield kb
    kb.close()


def test_english_question_retrieves_the_korean_refund_chunk(sample_kb: KnowledgeBase) -> None:
    k = sample_kb.config.retrieval.k  # what `jisik ask` retrieves for the answerer
    hits = sample_kb.search("How long do refunds take?", k=k)
    assert any((h.section or "").endswith("> 환불") and "3영업일" in h.text for h in hits), \
        [(h.section, h.score) for h in hits]


def test_english_question_is_answered_from_the_korean_policy(sample_kb: KnowledgeBase) -> None:
    # Before issue 10 this said "not found": the Korean sentence shared no term with the question.
    answer = sample_kb.ask("How many days do I have to return a product?", log=False)
    assert "14일 이내에 반품" in answer.text, answer.text
    cited = [c for c in answer.citations if c.cited]
    assert cited and cited[0].source.endswith("반품정책.md")


def test_unanswerable_english_question_is_still_not_found(sample_kb: KnowledgeBase) -> None:
    assert is_not_found(sample_kb.ask("What is the CEO's name?", log=False).text)


def test_same_language_questions_still_answered(sample_kb: KnowledgeBase) -> None:
    korean = sample_kb.ask("반품 기간은 며칠인가요?", log=False)
    assert "14일" in korean.text, korean.text
    english = sample_kb.ask("How many days of paid annual leave do full-time employees get?", log=False)
    assert "15 days" in english.text, english.text
