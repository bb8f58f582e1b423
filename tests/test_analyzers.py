"""Lexical analysers and sentence splitting: Korean particles, English stems, CJK bigrams, spans."""

from __future__ import annotations

import bm25s
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jisik.errors import ConfigError
from jisik.text.analyzers import (
    ANALYZERS,
    Analyzer,
    EnglishAnalyzer,
    KoreanEnglishAnalyzer,
    WhitespaceAnalyzer,
    cjk_bigrams,
    get_analyzer,
    number_terms,
)
from jisik.text.sentences import rule_sentence_spans, split_sentences


@pytest.fixture(scope="module")
def ko() -> KoreanEnglishAnalyzer:
    return KoreanEnglishAnalyzer()


# --- Korean -------------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["반품은", "반품을", "반품이", "반품도", "반품만", "반품에서", "반품했습니다"])
def test_particles_and_endings_are_dropped(ko: KoreanEnglishAnalyzer, word: str) -> None:
    assert ko.analyze(word) == ["반품"]


def test_query_matches_every_inflected_form_under_bm25(ko: KoreanEnglishAnalyzer) -> None:
    docs = [
        "반품은 14일 이내에 가능합니다.",
        "반품을 원하시면 고객센터로 연락하세요.",
        "반품이 접수되었습니다.",
        "반품기간이 지나면 교환만 됩니다.",
        "배송은 보통 이틀 걸립니다.",
    ]
    retriever = bm25s.BM25()
    retriever.index(ko.analyze_batch(docs), show_progress=False)
    scores = retriever.get_scores(ko.analyze("반품"))
    assert all(scores[i] > 0 for i in range(4))
    assert scores[4] == 0
    # The naive baseline finds none of them: that is the point of the analyser.
    naive = bm25s.BM25()
    naive.index(WhitespaceAnalyzer().analyze_batch(docs), show_progress=False)
    assert not naive.get_scores(["반품"]).any()


def test_compound_nouns_give_parts_and_the_compound(ko: KoreanEnglishAnalyzer) -> None:
    assert ko.analyze("반품기간") == ["반품", "반품기간", "기간"]
    assert ko.analyze("반품 기간") == ["반품", "기간"]


def test_verb_forms_share_a_lemma_and_light_verbs_go(ko: KoreanEnglishAnalyzer) -> None:
    assert ko.analyze("환불") == ko.analyze("환불해") == ko.analyze("환불해 주세요") == ["환불"]
    assert ko.analyze("먹었어요") == ko.analyze("먹는다") == ["먹다"]
    assert ko.analyze("아름다워요") == ["아름답다"]  # irregular conjugation (VA-I) keeps its lemma


def test_can_and_cannot_normalise_to_possible(ko: KoreanEnglishAnalyzer) -> None:
    """ㄹ 수 있다/없다 ("can"/"cannot") and 가능/불가능 ("possible"/"impossible") share the term 가능."""
    assert ko.analyze("반품할 수 있습니다") == ["반품", "가능"]
    assert ko.analyze("반품 가능합니다") == ["반품", "가능"]
    assert ko.analyze("반품할 수 없습니다") == ["반품", "가능"]
    assert ko.analyze("반품 불가능") == ["반품", "가능"]
    # 수 as a noun ("number") is left alone.
    assert "수" in ko.analyze("학생 수가 많다") or "학생" in ko.analyze("학생 수가 많다")
    assert "가능" not in ko.analyze("학생 수가 많다")


def test_mixed_script_text(ko: KoreanEnglishAnalyzer) -> None:
    assert ko.analyze("iPhone 15 반품") == ["iphon", "15", "반품"]
    # A particle right after an English word is still a particle, and English is not cut apart.
    assert ko.analyze("iPhone을 반품했다") == ["iphon", "반품"]
    assert ko.analyze("He waited thirty days. 그리고 떠났다") == ["wait", "thirti", "day", "떠나다"]


def test_multi_word_dictionary_names_give_their_parts(ko: KoreanEnglishAnalyzer) -> None:
    # Kiwi knows "해리 S. 트루먼" as one proper noun; a term must never hold a space.
    assert ko.analyze("해리 S. 트루먼 대통령은") == ["해리", "s", "트루먼", "대통령"]
    assert ko.analyze("우라늄-238") == ["우라늄", "238"]


def test_hanja_and_kana_become_bigrams(ko: KoreanEnglishAnalyzer) -> None:
    assert ko.analyze("韓國語를 배우다") == ["韓國", "國語", "배우다"]
    assert ko.analyze("東京タワー에 갔다") == ["東京", "京タ", "タワ", "ワー", "가다"]
    assert ko.analyze("國") == ["國"]
    assert cjk_bigrams("ひらがな") == ["ひら", "らが", "がな"]


def test_numbers(ko: KoreanEnglishAnalyzer) -> None:
    assert ko.analyze("3.5% 성장") == ["3.5", "성장"]
    assert ko.analyze("1,000원") == ko.analyze("1000원") == ["1000", "원"]
    assert ko.analyze("2023.05.01") == ["2023", "5", "1"]
    assert ko.analyze("2023년 5월 1일")[::2] == ["2023", "5", "1"]
    assert number_terms("0.50") == ["0.5"]


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "...", "!!! ???", "ㅋㅋㅋ"])
def test_empty_and_symbol_only_text_gives_no_terms(ko: KoreanEnglishAnalyzer, text: str) -> None:
    assert ko.analyze(text) == []
    if text != "ㅋㅋㅋ":  # "en" keeps Hangul words whole, jamo included
        assert EnglishAnalyzer().analyze(text) == []


def test_normalisation_of_width_and_apostrophes(ko: KoreanEnglishAnalyzer) -> None:
    assert ko.analyze("ＲＥＴＵＲＮＳ") == ["return"]
    assert ko.analyze("company’s") == ko.analyze("company's") == ["compani"]
    assert ko.analyze("Café") == ["cafe"]


def test_batch_equals_single_calls(ko: KoreanEnglishAnalyzer) -> None:
    texts = ["반품은 가능", "", "English only text", "혼합 mixed 텍스트", "東京"]
    assert ko.analyze_batch(texts) == [ko.analyze(t) for t in texts]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("반품은을이 가나다ab.C1,2\n東タ"), max_size=30), max_size=5))
def test_any_text_analyses_to_clean_terms(texts: list[str]) -> None:
    analyzer = KoreanEnglishAnalyzer()
    out = analyzer.analyze_batch(texts)
    assert len(out) == len(texts)
    for terms in out:
        assert all(t and not any(c.isspace() for c in t) for t in terms)


# --- English --------------------------------------------------------------------------------------


def test_english_stems_and_stopwords() -> None:
    en = EnglishAnalyzer()
    assert en.analyze("returns") == en.analyze("returned") == en.analyze("Returning") == ["return"]
    assert en.analyze("How many years did he serve?") == ["mani", "year", "serv"]


def test_korean_english_matches_english_analyzer_on_english(ko: KoreanEnglishAnalyzer) -> None:
    text = "William Bradford (c.1590 – 1657) served as Governor of Plymouth Colony, http://en.wikipedia.org"
    assert ko.analyze(text) == EnglishAnalyzer().analyze(text)


def test_whitespace_baseline() -> None:
    assert WhitespaceAnalyzer().analyze("반품은 Returns.") == ["반품은", "returns."]


# --- registry -------------------------------------------------------------------------------------


def test_registry() -> None:
    for name in ANALYZERS:
        analyzer = get_analyzer(name)
        assert analyzer.name == name
        assert isinstance(analyzer, Analyzer)
    assert get_analyzer().name == "ko-en"


def test_unknown_analyzer_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        get_analyzer("korean")
    assert "'korean'" in str(info.value)
    for name in ("ko-en", "en", "whitespace"):
        assert name in str(info.value)


# --- sentences ------------------------------------------------------------------------------------


def _texts(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[s:e] for s, e in spans]


def test_korean_sentences_without_full_stops() -> None:
    text = "반품은 14일 이내에 가능합니다 교환은 30일까지 됩니다.\n\n환불은 3.5일 걸려요! 감사합니다"
    assert _texts(text, split_sentences(text)) == [
        "반품은 14일 이내에 가능합니다",
        "교환은 30일까지 됩니다.",
        "환불은 3.5일 걸려요!",
        "감사합니다",
    ]


def test_english_sentences_respect_abbreviations_and_decimals() -> None:
    text = "Dr. Smith paid $3.50 on Jan. 5. It rained, e.g. all day! Did J. Doe come? Yes."
    assert _texts(text, split_sentences(text)) == [
        "Dr. Smith paid $3.50 on Jan. 5.",
        "It rained, e.g. all day!",
        "Did J. Doe come?",
        "Yes.",
    ]


def test_english_sentence_inside_korean_paragraph() -> None:
    text = "  Hello there. 이건 테스트입니다  "
    assert _texts(text, split_sentences(text)) == ["Hello there.", "이건 테스트입니다"]


def test_cjk_full_stops_split_without_spaces() -> None:
    text = "東京に行った。次は大阪！"
    assert _texts(text, rule_sentence_spans(text)) == ["東京に行った。", "次は大阪！"]


def test_sentence_offsets_survive_astral_characters() -> None:
    text = "😀 안녕하세요. 반갑습니다! 🇰🇷 좋아요"
    spans = split_sentences(text)
    assert _texts(text, spans)[0] == "😀 안녕하세요."
    assert "".join(_texts(text, spans)).replace(" ", "") == text.replace(" ", "")


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet=st.sampled_from("가나다. !?\n abc.DEF3,東。😀"), max_size=60))
def test_sentence_spans_are_ordered_stripped_and_cover_all_text(text: str) -> None:
    spans = split_sentences(text)
    pos = 0
    for s, e in spans:
        assert pos <= s < e <= len(text)
        assert not text[s].isspace() and not text[e - 1].isspace()
        assert text[pos:s].strip() == ""  # only whitespace is left between sentences
        pos = e
    assert text[pos:].strip() == ""
