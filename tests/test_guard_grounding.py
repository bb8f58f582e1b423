"""The groundedness filter (jisik.guard.grounding): hand-written Korean and English cases.

The unit logic runs with the hashing embedder (dense_floor 0 and threshold 0.55: its cosines are spread over [0, 1]
and lower than e5's for a paraphrase); one test runs the real default embedder (multilingual e5) at the calibrated
defaults. The pure helpers' worked examples are
doctests in the module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from jisik.embed.base import Vectors
from jisik.embed.hashing import HashingEmbedder
from jisik.guard.base import SentenceSupport
from jisik.guard.grounding import (
    THRESHOLD,
    GroundingChecker,
    count_negations,
    extract_numbers,
    latin_names,
    number_values,
    strip_markers,
)
from jisik.text.analyzers import get_analyzer

EN = [
    "Super Bowl 50 was played on February 7, 2016, at Levi's Stadium in Santa Clara, California. "
    "The Denver Broncos defeated the Carolina Panthers 24–10 to earn their third Super Bowl title.",
    "The halftime show was headlined by Coldplay, with special guests Beyoncé and Bruno Mars.",
]
KO = [
    "반품은 상품을 받은 날부터 14일 이내에 신청할 수 있습니다. 단, 포장을 뜯은 상품은 반품할 수 없습니다.",
    "배송비는 3,000원이며 고객이 부담합니다. 제주 지역은 추가 배송비 5,000원이 붙습니다.",
]


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, counting its calls."""

    def __init__(self) -> None:
        super().__init__(dim=256)
        self.calls: list[int] = []

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(len(texts))
        return super().embed_queries(texts)


def hashing_checker(**kwargs: Any) -> GroundingChecker:
    return GroundingChecker(embedder=kwargs.pop("embedder", HashingEmbedder(256)), analyzer=get_analyzer("ko-en"),
                            dense_floor=0.0, threshold=0.55, **kwargs)


@pytest.fixture(scope="module")
def checker() -> GroundingChecker:
    return hashing_checker()


def one(checker: GroundingChecker, answer: str, sources: Sequence[str]) -> SentenceSupport:
    supports = checker.check(answer, sources)
    assert len(supports) == 1, [s.text for s in supports]
    return supports[0]


# -- what passes ----------------------------------------------------------------------------------------
def test_verbatim_quotes_pass_with_their_markers(checker: GroundingChecker) -> None:
    answer = ("The Denver Broncos defeated the Carolina Panthers 24–10 to earn their third Super Bowl title. [1] "
              "The halftime show was headlined by Coldplay, with special guests Beyoncé and Bruno Mars. [2]")
    supports = checker.check(answer, EN)
    assert [(s.supported, s.score, s.citations, s.best_source) for s in supports] == [
        (True, 1.0, [1], 1), (True, 1.0, [2], 2)]
    # the spans cover each sentence with its own marker, so dropping one sentence keeps the other's citation
    assert [answer[s.start:s.end] for s in supports] == [
        "The Denver Broncos defeated the Carolina Panthers 24–10 to earn their third Super Bowl title. [1]",
        "The halftime show was headlined by Coldplay, with special guests Beyoncé and Bruno Mars. [2]"]
    assert supports[0].text.endswith("title.")  # the scored text has no marker


def test_korean_verbatim_with_marker_before_the_stop(checker: GroundingChecker) -> None:
    answer = "반품은 상품을 받은 날부터 14일 이내에 신청할 수 있습니다 [1]. 배송비는 3,000원이며 고객이 부담합니다 [2]."
    supports = checker.check(answer, KO)
    assert [(s.supported, s.citations) for s in supports] == [(True, [1]), (True, [2])]
    assert answer[supports[0].start:supports[0].end] == "반품은 상품을 받은 날부터 14일 이내에 신청할 수 있습니다 [1]."


def test_paraphrases_pass(checker: GroundingChecker) -> None:
    en = one(checker, "The game was played at Levi's Stadium in Santa Clara, California, on February 7, 2016 [1].", EN)
    ko = one(checker, "반품은 상품을 받은 날부터 14일 이내에 요청할 수 있습니다 [1].", KO)
    amount = one(checker, "배송비 3천 원은 고객이 부담합니다 [2].", KO)  # 3천 원 = 3,000원
    assert (en.supported, ko.supported, amount.supported) == (True, True, True), (en, ko, amount)
    assert en.problems == ko.problems == amount.problems == []


def test_not_found_and_empty_sentences_pass(checker: GroundingChecker) -> None:
    for answer in ("문서에서 답을 찾을 수 없습니다.", "I could not find the answer in the documents."):
        support = one(checker, answer, KO)
        assert (support.supported, support.score, support.problems) == (True, 1.0, [])
    support = one(checker, "다음과 같습니다.", KO)  # no content words
    assert support.supported and support.score == 1.0


# -- what fails -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("answer", "sources", "problem"), [
    ("The Denver Broncos defeated the Carolina Panthers 24–11 to earn their third Super Bowl title [1].", EN,
     "number 11 not in [1]"),
    ("Super Bowl 50 was played on February 8, 2016, at Levi's Stadium in Santa Clara, California [1].", EN,
     "number 8 not in [1]"),
    ("반품은 상품을 받은 날부터 15일 이내에 신청할 수 있습니다 [1].", KO, "number 15 not in [1]"),
    ("배송비는 3,500원이며 고객이 부담합니다 [2].", KO, "number 3,500 not in [2]"),
])
def test_changed_digit(checker: GroundingChecker, answer: str, sources: list[str], problem: str) -> None:
    support = one(checker, answer, sources)
    assert not support.supported and support.score < THRESHOLD
    assert problem in support.problems


@pytest.mark.parametrize(("answer", "sources"), [
    ("The Denver Broncos did not defeat the Carolina Panthers 24–10 to earn their third Super Bowl title [1].", EN),
    ("포장을 뜯은 상품도 반품할 수 있습니다 [1].", KO),  # 없습니다 → 있습니다
    ("반품은 상품을 받은 날부터 14일 이내에 신청할 수 없습니다 [1].", KO),  # 있습니다 → 없습니다
])
def test_negation_added_or_removed(checker: GroundingChecker, answer: str, sources: list[str]) -> None:
    support = one(checker, answer, sources)
    assert not support.supported
    assert "negation differs from [1]" in support.problems


def test_swapped_name(checker: GroundingChecker) -> None:
    en = one(checker, "The New England Patriots defeated the Carolina Panthers 24–10 [1].", EN)
    assert not en.supported and "name Patriots not in [1]" in en.problems
    ko_sources = ["윌리엄 브래드포드는 1621년부터 1657년까지 플리머스 식민지 총독으로 재직했습니다."]
    ko = one(checker, "존 윈스럽은 1621년부터 1657년까지 플리머스 식민지 총독으로 재직했습니다 [1].", ko_sources)
    assert not ko.supported and any(p.startswith("name ") for p in ko.problems), ko.problems


def test_unsupported_addition(checker: GroundingChecker) -> None:
    en = one(checker, "The game was played at Levi's Stadium, which was built with money from the city government "
                      "[1].", EN)
    assert not en.supported
    assert "“which was built with money from the city government” is not in [1]" in en.problems
    ko = one(checker, "배송비는 3,000원이며 고객이 부담하고, 판매자는 포장 비용을 전액 부담합니다 [2].", KO)
    assert not ko.supported and any("not in [2]" in p for p in ko.problems), ko.problems


def test_wrong_citation_names_the_source_that_supports_it(checker: GroundingChecker) -> None:
    support = one(checker, "배송비는 3,000원이며 고객이 부담합니다 [1].", KO)
    assert not support.supported and support.best_source == 2
    assert support.problems == ["cites [1], which does not support it; [2] does"]
    en = one(checker, "The halftime show was headlined by Coldplay [1].", EN)
    assert not en.supported and en.problems == ["cites [1], which does not support it; [2] does"]


def test_citations_that_point_nowhere_or_nothing_cited(checker: GroundingChecker) -> None:
    invalid = one(checker, "배송비는 3,000원이며 고객이 부담합니다 [2][7].", KO)
    assert invalid.supported and invalid.citations == [2, 7]
    assert invalid.problems == ["cites [7], which is not a source"]
    uncited = one(checker, "배송비는 3,000원이며 고객이 부담합니다.", KO)
    assert uncited.supported and uncited.problems == ["cites no source; [2] supports it"]
    nothing = one(checker, "배송비는 3,000원입니다 [1].", [])
    assert not nothing.supported and nothing.problems == ["cites [1], which is not a source", "no sources"]


def test_a_marker_at_a_stop_ends_the_sentence(checker: GroundingChecker) -> None:
    sources = ["A theme song is played at the beginning and end of a show, movie, etc. It is often sung."]
    answer = "A theme song is played at the beginning and end of a show, movie, etc [1]. It is often sung [1]."
    assert [s.text for s in checker.check(answer, sources)] == [
        "A theme song is played at the beginning and end of a show, movie, etc.", "It is often sung."]


def test_list_items_are_sentences(checker: GroundingChecker) -> None:
    answer = "- 반품: 받은 날부터 14일 이내 [1]\n- 배송비: 3,000원, 고객 부담 [2]\n- 제주 추가 배송비: 6,000원 [2]"
    supports = checker.check(answer, KO)
    assert [(s.citations, s.supported) for s in supports] == [([1], True), ([2], True), ([2], False)]
    assert "number 6,000 not in [2]" in supports[2].problems


# -- the judge ------------------------------------------------------------------------------------------
def test_judge_that_raises_falls_back_with_a_problem() -> None:
    def broken(premise: str, hypothesis: str) -> float:
        raise ConnectionError("judge server down")

    plain, judged = hashing_checker(), hashing_checker(judge=broken)
    answer = "반품은 상품을 받은 날부터 14일 이내에 요청할 수 있습니다 [1]."
    expected, got = one(plain, answer, KO), one(judged, answer, KO)
    assert (got.score, got.supported) == (expected.score, expected.supported)  # the built-in score stands
    assert got.problems == ["judge failed (ConnectionError: judge server down); built-in score used"]


def test_judge_is_combined_and_checked() -> None:
    calls: list[tuple[str, str]] = []

    def doubtful(premise: str, hypothesis: str) -> float:
        calls.append((premise, hypothesis))
        return 0.0

    def nonsense(premise: str, hypothesis: str) -> float:
        return 1.7

    analyzer = get_analyzer("ko-en")
    answer = "반품은 상품을 받은 날부터 14일 이내에 요청할 수 있습니다 [1]."
    plain = one(hashing_checker(), answer, KO)
    judged = one(hashing_checker(judge=doubtful), answer, KO)
    assert calls == [(KO[0], "반품은 상품을 받은 날부터 14일 이내에 요청할 수 있습니다.")]
    assert judged.score == pytest.approx(plain.score / 2, abs=1e-3) and not judged.supported
    bad = one(hashing_checker(judge=nonsense), answer, KO)
    assert bad.score == plain.score and bad.problems == [
        "judge failed (ValueError: returned 1.7, not a probability); built-in score used"]
    # verbatim quotes need no judge
    calls.clear()
    quoted = "배송비는 3,000원이며 고객이 부담합니다 [2]."
    one(GroundingChecker(embedder=None, analyzer=analyzer, judge=doubtful), quoted, KO)
    assert calls == []


# -- batch, speed, no embedder ---------------------------------------------------------------------------
def test_batch_is_one_embedder_call_and_equals_single_calls() -> None:
    embedder = CountingEmbedder()
    checker = hashing_checker(embedder=embedder)
    answers = ["반품은 받은 날부터 15일 이내입니다 [1]. 배송비는 고객 부담입니다 [2].",
               "The Broncos beat the Panthers 24–10 [1]. Coldplay headlined the show [2]."]
    batch = checker.check_batch(answers, [KO, EN])
    assert len(embedder.calls) == 1
    fresh = hashing_checker()
    assert [[s.to_dict() for s in group] for group in batch] == [
        [s.to_dict() for s in fresh.check(a, srcs)] for a, srcs in zip(answers, [KO, EN], strict=True)]
    # quotes need neither analysis nor vectors
    embedder.calls.clear()
    checker.check("배송비는 3,000원이며 고객이 부담합니다 [2].", KO)
    assert embedder.calls == []
    with pytest.raises(ValueError, match="2 answers but 1 source lists"):
        checker.check_batch(answers, [KO])


def test_without_an_embedder() -> None:
    checker = GroundingChecker(embedder=None, analyzer=get_analyzer("ko-en"))
    supports = checker.check("반품은 상품을 받은 날부터 14일 이내에 요청할 수 있습니다 [1]. "
                             "반품은 상품을 받은 날부터 15일 이내에 신청할 수 있습니다 [1].", KO)
    assert [s.supported for s in supports] == [True, False]
    assert "number 15 not in [1]" in supports[1].problems


def test_to_dict_is_json_ready(checker: GroundingChecker) -> None:
    support = one(checker, "배송비는 3,500원이며 고객이 부담합니다 [2].", KO)
    data = support.to_dict()
    assert data["citations"] == [2] and data["supported"] is False and data["span"] == [0, len(
        "배송비는 3,500원이며 고객이 부담합니다 [2].")]


# -- the real default embedder ----------------------------------------------------------------------------
def test_real_default_embedder() -> None:
    from jisik.config import EmbedderConfig
    from jisik.embed import create_embedder

    checker = GroundingChecker(embedder=create_embedder(EmbedderConfig()), analyzer=get_analyzer("ko-en"))
    answer = ("The game was played at Levi's Stadium in Santa Clara, California, on February 7, 2016 [1]. "
              "Coldplay headlined the halftime show, joined by Beyoncé and Bruno Mars [2]. "
              "The Broncos beat the Panthers 24–10 and then won again the next season [1].")
    supports = checker.check(answer, EN)
    assert [s.supported for s in supports] == [True, True, False], [(s.score, s.problems) for s in supports]
    ko = checker.check("반품은 상품 수령일로부터 14일 이내에 요청할 수 있습니다 [1]. "
                       "포장을 뜯은 상품도 반품할 수 있습니다 [1].", KO)
    assert [s.supported for s in ko] == [True, False]
    assert "negation differs from [1]" in ko[1].problems
    # an answer in Korean from an English source: judged by meaning and numbers
    across = checker.check("덴버 브롱코스는 캐롤라이나 팬서스를 24-10으로 꺾고 세 번째 슈퍼볼 우승을 차지했다 [1]. "
                           "덴버 브롱코스는 캐롤라이나 팬서스를 31-10으로 꺾었다 [1].", EN)
    assert [s.supported for s in across] == [True, False]


# -- the pure helpers, beyond their doctests ---------------------------------------------------------------
def test_numbers() -> None:
    assert [v for _, v in extract_numbers("약 1,200만 명, 2조 5천억 원, 12.5%")] == [12_000_000.0, 2.5e12, 12.5]
    assert {35000.0, 30000.0, 5000.0} <= number_values("3만 5천 원")
    assert 14.0 in number_values("within fourteen days")


def test_negations_and_names() -> None:
    assert count_negations("The item is not returnable and never was.") == 2
    assert count_negations("불가리아는 반품 불가 지역이 아닙니다.") == 2
    assert latin_names("According to NASA, the Apollo program ended in 1972.") == ["NASA", "Apollo"]


def test_strip_markers_keeps_offsets() -> None:
    text = "반품은 14일입니다 [1]. 배송은 무료 [2, 3]"
    stripped, where, markers = strip_markers(text)
    assert stripped == "반품은 14일입니다. 배송은 무료"
    assert [text[where[i]] for i in range(len(stripped))] == list(stripped)
    assert [m.numbers for m in markers] == [(1,), (2, 3)]
