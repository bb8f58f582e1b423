"""Sentence splitting on text as real documents write it (issue 10): dates, list markers, numbers.

Each case is written with ``‖`` where a sentence must end (it stands for one space, or for nothing after a
line break); every other full stop in it must not end a sentence. The cases imitate Korean court rulings,
financial statements and regulations, and English filings and papers.
"""

from __future__ import annotations

import pytest

from jisik.generate.extractive import ExtractiveAnswerer
from jisik.records import Hit
from jisik.text.analyzers import get_analyzer
from jisik.text.sentences import false_stop, split_sentences

KOREAN = [
    # court rulings: dates written YYYY. M. D., with a particle or 경 ("about") glued to the last stop
    "피고는 2012. 6. 5.경 원고에게 금 3,000만 원을 지급하였다.‖원고는 2012. 7. 1. 이를 수령하였다.",
    "원고는 2019. 1.경부터 피고 회사에서 근무하였다.‖피고는 2020. 12. 31. 원고를 해고하였다.",
    "이 사건 계약은 2017. 2. 체결되었다.‖그 후 2018. 3. 해지되었다.",
    # items 가. 나. 다. inside a paragraph, and a date wrapped across two lines
    "1. 기초 사실 가. 원고는 2012. 6. 5.경 금 30,000,000원을 대여하였다.‖나. 피고는 2014. 1. 10. 일부를 변제하였다.‖"
    "다. 원고는 2018.\n11. 20. 피고에게 지급을 최고하였다.",
    # a genuine sentence end right after a date
    "새 환불 규정은 2024. 3. 15.부터 시행된다.‖다음 문장.",
    "새 환불 규정은 2024. 3. 15.부터 시행되며, 기존 규정은 같은 날 폐지된다.",
    # financial statements: Roman and Arabic list markers, on one line or one per line
    "Ⅰ. 유동자산 1. 현금및현금성자산 1,234,567 2. 단기금융상품 500,000",
    # one item per line: each line that opens with a marker is its own unit
    "Ⅰ. 유동자산\n‖1. 현금및현금성자산 1,234,567\n‖2. 매출채권 890,000\n‖Ⅱ. 비유동자산\n‖1. 유형자산 3,000,000",
    "이자율은 연 (3.5%)로 한다.‖상환 기간은 3.5년이다.",
    # regulations: numbered items after 제N조 and 제N조(title)
    '제3조(정의) 1. "회원"이란 회사와 이용계약을 체결한 자를 말한다.‖2. "상품"이란 회사가 판매하는 물건을 말한다.',
    "제3조 1. 이 규정은 모든 회원에게 적용한다.‖제4조 1. 회사는 약관을 게시하여야 한다.",
    "가. 신청 방법\n‖나. 신청 기간은 2024. 3. 15.까지이다.",
]
ENGLISH = [
    "See Fig. 3.‖The results improve with more data.",
    "Revenue under U.S. GAAP rose.‖No. 5 was the best seller.",
    "Sales grew approx. 3.5% in Q3.‖Item 2. Management's Discussion and Analysis",
    "PART I. FINANCIAL INFORMATION\n‖ITEM 1. Financial Statements\n‖Item 2. Management's Discussion",
    "The fee is\n3.5% of the price.‖It is paid\nonce.",
    "Dr. Smith paid $3.50 on Jan. 5.‖It rained, e.g. all day!",
    "He served in World War II.‖Then he retired.",
]
CASES = pytest.mark.parametrize("case", KOREAN + ENGLISH,
                                ids=[f"ko{i}" for i in range(len(KOREAN))] + [f"en{i}" for i in range(len(ENGLISH))])


def _parts(case: str) -> tuple[str, list[str]]:
    """The text (``‖`` becomes a space, or nothing after a line break) and its expected sentences."""
    parts = case.split("‖")
    text = "".join(p + ("" if p.endswith("\n") or i == len(parts) - 1 else " ") for i, p in enumerate(parts))
    return text, [p.strip() for p in parts]


@CASES
def test_only_genuine_sentence_ends_split(case: str) -> None:
    text, expected = _parts(case)
    assert [text[s:e] for s, e in split_sentences(text)] == expected


@CASES
def test_no_false_stop_where_a_sentence_ends(case: str) -> None:
    text, parts = _parts(case)
    pos = 0
    for part in parts[:-1]:  # the stop that closes each part, if it has one, is a real one
        pos = text.index(part, pos) + len(part)
        if text[pos - 1] == ".":
            assert not false_stop(text, pos - 1), part


def test_extractive_answer_keeps_the_whole_date() -> None:
    """The defect as users saw it: "새 환불 규정은 2024. [1] 15.부터 ..." lost the month."""
    text = "새 환불 규정은 2024. 3. 15.부터 시행되며, 기존 규정은 같은 날 폐지된다. 환불 신청은 온라인으로 한다."
    hit = Hit(chunk_id=1, score=1.0, text=text, doc_id="rules", source="rules.pdf", title=None, page=1,
              section=None, start=0, end=len(text))
    result = ExtractiveAnswerer(None, get_analyzer("ko-en")).answer("새 환불 규정은 언제부터 시행되나요?", [hit])
    assert result.found
    assert result.sentences[0].text.startswith("새 환불 규정은 2024. 3. 15.부터 시행되며")
