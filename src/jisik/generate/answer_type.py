"""What kind of answer a question asks for, and whether a sentence can be that answer.

A question that asks "how much", "얼마", "what was the gross margin" is answered by a sentence or table
row that holds an amount; "when", "언제" by one that holds a date. A sentence without one cannot answer it,
however many of the question's words it shares: the running header "Apple Inc. | Q3 2022 Form 10-Q | 17"
shares "Apple" and "10-Q" with "What was the gross margin for Apple in the latest 10-Q?" and holds no
amount (a page number is not one), while the row "Gross margin $ 17,488 $ 16,150" does. The extractive
answerer uses this to scale down candidates that lack the asked-for figure (see
:data:`~jisik.generate.extractive.FIGURE_PENALTY`).

Both tests are deliberately narrow: a question is typed only on explicit cues, so most questions (why,
how, what is X) are left untyped and scored as before.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["FigureKind", "expected_figure", "has_figure"]

FigureKind = Literal["amount", "date"]

_DATE_QUESTION = re.compile(
    r"\b(?:when|what (?:year|date|day|month)|which (?:year|date|day|month)|since when|until when)\b"
    r"|언제|몇\s?년도|며칠에|날짜|일자|연도|시행일|선고일|상장일|설립일",
    re.IGNORECASE,
)
_AMOUNT_QUESTION = re.compile(
    r"\b(?:how (?:much|many|long|large|big|high|low)|what (?:percentage|percent|proportion|share|amount|"
    r"portion|fraction|number)|at what (?:rate|price|cost))\b"
    r"|얼마|몇|금액|비율|이자율|퍼센트|총액|총계|합계|규모",
    re.IGNORECASE,
)
# "What was the gross margin ...": a what-question about a measure is a question for its amount, unless it
# asks for reasons, factors or a description of it.
_WHAT_IS = re.compile(r"^\s*(?:what|which)\s+(?:was|were|is|are)\b", re.IGNORECASE)
_MEASURE = re.compile(
    r"\b(?:revenues?|sales|margins?|income|profits?|loss(?:es)?|expenses?|expenditures?|spending|costs?|"
    r"cash flows?|debt|assets|liabilities|earnings|eps|dividends?|price|rate|amount|total|balance|"
    r"inventor(?:y|ies)|capex|capital expenditures?|headcount)\b",
    re.IGNORECASE,
)
_NOT_A_FIGURE = re.compile(
    r"\b(?:why|reasons?|factors?|caus\w*|driv\w*|explain\w*|describ\w*|affect\w*|impact\w*|role|strateg\w*|"
    r"risks?|trends?|how did|how does|how has|how have)\b",
    re.IGNORECASE,
)

_NUMBER = r"\d+(?:[.,]\d+)*"
_AMOUNT = re.compile(
    rf"\d{{1,3}}(?:,\d{{3}})+|\d+\.\d+|[$€£¥₩]\s?\d|{_NUMBER}\s?(?:%|퍼센트|원|만|억|조|달러|일|개월|년|주|"
    rf"시간|분|명|개|건|회|배|영업일|세|㎡|kg|km)"
    rf"|\b{_NUMBER}\s?(?:percent|per cent|million|billion|thousand|days?|weeks?|months?|years?|hours?|"
    r"minutes?|shares|employees|people|times|points?|bps)\b"
    r"|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|"
    r"fifty|hundred|thousand|million|billion|dozen|half)\b",
    re.IGNORECASE,
)
_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = re.compile(
    rf"[12]\d{{3}}\.\s?\d{{1,2}}\.|[12]\d{{3}}\s?년|\d{{1,2}}\s?월|\d{{1,2}}\s?일"
    rf"|\b{_MONTHS}\s+\d{{1,2}}\b|\b\d{{1,2}}\s+{_MONTHS}|\b(?:1[5-9]|20)\d{{2}}\b"
    r"|\b\d{1,2}(?:st|nd|rd|th) century\b",
    re.IGNORECASE,
)


def expected_figure(question: str) -> FigureKind | None:
    """``"date"``, ``"amount"`` or None: what a question asks for, from explicit cues only.

    >>> [expected_figure(q) for q in ["새 환불 규정은 언제부터 시행되나요?", "수수료는 몇 퍼센트인가요?",
    ...     "What was the gross margin for Apple in the latest 10-Q?", "What factors drove the gross margin?",
    ...     "Who founded the company?"]]
    ['date', 'amount', 'amount', None, None]
    """
    if _DATE_QUESTION.search(question):
        return "date"
    if _AMOUNT_QUESTION.search(question):
        return "amount"
    if _WHAT_IS.search(question) and _MEASURE.search(question) and not _NOT_A_FIGURE.search(question):
        return "amount"
    return None


def has_figure(text: str, kind: FigureKind) -> bool:
    """Whether ``text`` holds an amount (``3,000원``, ``$5``, ``3.5%``, ``14 days``, ``seven``) or a date.

    Bare integers are neither: in documents they are page numbers, item numbers and form names ("10-Q").

    >>> has_figure("Apple Inc. | Q3 2022 Form 10-Q | 17", "amount"), has_figure("Gross margin $ 17,488", "amount")
    (False, True)
    >>> has_figure("이 규정은 2024. 3. 15.부터 시행된다.", "date"), has_figure("이 규정은 즉시 시행된다.", "date")
    (True, False)
    """
    return bool((_AMOUNT if kind == "amount" else _DATE).search(text))
