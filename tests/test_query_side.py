"""The query side of Korean BM25 (issue 14, part 5): question words, spacing variants and one-jamo typos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jisik.embed.hashing import HashingEmbedder
from jisik.kb import KnowledgeBase
from jisik.records import Document
from jisik.store.bm25_index import LexicalIndex
from jisik.text.analyzers import (
    KOREAN_QUESTION_WORDS,
    EnglishAnalyzer,
    KoreanEnglishAnalyzer,
    WhitespaceAnalyzer,
    analyze_queries,
)
from jisik.text.spelling import correct_terms, neighbours, split_syllable

RETURNS = "반품 기간은 14일입니다. 영수증을 지참하세요."
DISTRACTORS = [
    "배송은 언제 시작되나요? 주문 후 언제든지 조회할 수 있습니다.",
    "매장 위치는 어떻게 찾나요? 지도에서 어떻게 가는지 보세요.",
    "왜 회원 가입이 필요한지 얼마나 걸리는지 안내합니다.",
]


@pytest.fixture(scope="module")
def ko() -> KoreanEnglishAnalyzer:
    return KoreanEnglishAnalyzer()


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    base = KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(dim=64))
    docs = [Document(doc_id="returns", source="returns.txt", text=RETURNS)]
    docs += [Document(doc_id=f"d{i}", source=f"d{i}.txt", text=t) for i, t in enumerate(DISTRACTORS)]
    base.add_documents(docs)
    return base


# --- question words ---------------------------------------------------------------------------------------


QUESTIONS = ["반품 기간은 무엇인가요?", "반품 기간은 어떻게 되나요?", "반품 기간은 언제인가요?",
             "반품 기간은 왜 있나요?", "반품 기간은 얼마나 되나요?", "반품 기간은 몇 일인가요?",
             "반품 기간은 어디에 나와 있나요?", "반품 기간은 얼마인가요?"]


@pytest.mark.parametrize("question", QUESTIONS)
def test_question_words_are_not_query_terms(ko: KoreanEnglishAnalyzer, question: str) -> None:
    terms = ko.analyze_queries([question])[0]
    assert {"반품", "기간"} <= set(terms)
    assert not set(terms) & (KOREAN_QUESTION_WORDS | {"되다", "있다", "하다", "이다"}), terms


def test_the_index_side_is_unchanged(ko: KoreanEnglishAnalyzer) -> None:
    """Chunks still index 언제 / 어떻다: only queries drop them, so old knowledge bases need no re-analysis."""
    text = "배송은 언제 시작되나요? 매장은 어떻게 찾나요?"
    assert {"언제", "어떻다"} <= set(ko.analyze(text))
    assert not {"언제", "어떻다"} & set(ko.analyze_queries([text])[0])


@pytest.mark.parametrize("text", ["How long do returns take?", "The returns were returned on 2023-11-23.",
                                  "iPhone 15 Pro Max, café naïve 東京タワー"])
def test_english_queries_are_unchanged(ko: KoreanEnglishAnalyzer, text: str) -> None:
    assert ko.analyze_queries([text]) == ko.analyze_batch([text])
    assert EnglishAnalyzer().analyze_queries([text]) == EnglishAnalyzer().analyze_batch([text])


def test_an_analyzer_without_a_query_side_falls_back_to_its_batch_call() -> None:
    class Plain:
        name = "plain"

        def analyze_batch(self, texts: list[str]) -> list[list[str]]:
            return [t.split() for t in texts]

        def analyze(self, text: str) -> list[str]:
            return text.split()

    assert analyze_queries(Plain(), ["a b"]) == [["a", "b"]]
    assert analyze_queries(WhitespaceAnalyzer(), ["A b"]) == [["a", "b"]]


def test_bm25_search_ignores_question_words(kb: KnowledgeBase) -> None:
    """Every distractor says 언제 / 어떻게 / 왜 / 얼마나; a question's ending must not pull them up."""
    for question in ("반품 기간은 언제인가요?", "반품 기간은 어떻게 되나요?", "반품 기간이 왜 얼마나 되나요?"):
        hits = kb.search(question, mode="bm25", k=4)
        assert [h.doc_id for h in hits] == ["returns"], (question, [h.doc_id for h in hits])


# --- spacing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["반품기간은", "반품기간은 며칠인가요", "반 품기간은?", "반품 기 간은"])
def test_spacing_variants_find_the_chunk(kb: KnowledgeBase, query: str) -> None:
    hits = kb.search(query, mode="bm25", k=1)
    assert hits and hits[0].doc_id == "returns", query


def test_a_space_inside_a_word_is_forgiven_in_queries_only(ko: KoreanEnglishAnalyzer) -> None:
    assert {"반품", "기간"} <= set(ko.analyze_queries(["반 품기간은"])[0])
    assert "반품" not in ko.analyze("반 품기간은")  # chunks: Kiwi's own reading, as indexed before


# --- one-jamo typos ---------------------------------------------------------------------------------------


def test_jamo_neighbours() -> None:
    assert split_syllable("깐") == (1, 0, 4)
    near = set(neighbours("기깐"))
    assert {"기간", "기칸", "거깐", "기까"} <= near
    assert "기관" not in near  # two jamo away
    assert len(near) == 2 * 65


def test_a_one_jamo_typo_finds_the_chunk(ko: KoreanEnglishAnalyzer) -> None:
    """The misspelt term (기깐, in no chunk) becomes the indexed term one jamo away; BM25 then finds the chunk."""
    chunks = [RETURNS, *DISTRACTORS]
    terms = ko.analyze_batch(chunks)
    index = LexicalIndex().build(np.arange(len(chunks)), terms)
    df: dict[str, int] = {}
    for row in terms:
        for term in set(row):
            df[term] = df.get(term, 0) + 1
    for typo in ("반품 기깐은 며칠인가요?", "반퓸 기간은?"):
        query = ko.analyze_queries([typo])[0]
        fixed = correct_terms(query, lambda t: df.get(t, 0))
        assert fixed != query
        assert index.top_k(fixed, 1, None)[0][0] == 0, (typo, query, fixed)


def test_known_terms_and_short_terms_are_never_corrected() -> None:
    df = {"반품": 5, "기간": 3, "일": 9, "이": 4}.get
    assert correct_terms(["반품", "기간", "얼", "returns", "기깐"], lambda t: df(t, 0)) == \
        ["반품", "기간", "얼", "returns", "기간"]
    assert correct_terms(["쿠팡이츠"], lambda t: df(t, 0)) == ["쿠팡이츠"]  # no neighbour indexed: kept
