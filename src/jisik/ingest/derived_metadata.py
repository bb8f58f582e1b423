"""Metadata nobody typed: years, quarters, dates and company names read from a document's file name, title and
first page, so ``quarter=2023Q3`` or ``company=AAPL`` can filter a search and a question that names one can be
routed to it (:mod:`jisik.retrieve.self_query`).

Fields written (only those found, and never over a value the loader or the user already set):

- ``year`` (int): the year of the quarter, else of the date, else the one year the text names.
- ``quarter`` (text, ``"2023Q3"``): ``2023 Q3``, ``Q3 2023``, ``3Q23``, ``Q3 FY23``, ``2023년 3분기``, ``third
  quarter of 2023``. As text it sorts in time order, so ``quarter>=2023Q1`` works as a filter.
- ``date`` (text, ISO ``2023-07-01``): ``2023-07-01``, ``2023.7.1``, ``20230701``, ``2023년 7월 1일``,
  ``07/01/2023`` (US order unless the first number is over 12), ``July 1, 2023``.
- ``company``: what the file name (else the title, else the first page) says the document is about: a ticker
  (``AAPL``), or the words left once periods, dates, version marks and document-type words (``10-Q``,
  ``final``, ``v2``, ``보고서``, ``최종``) are taken out (``Microsoft Corp``, ``삼성전자``).
- ``company_name``: a fuller name when the title or first page has one (``Apple Inc.`` on a 10-Q's cover), so
  a question saying "Apple" reaches the file named ``2023 Q3 AAPL.pdf``.

Everything is regular expressions over a few hundred characters: microseconds a document, no model.
Precedence: the file name first (the one label a person chose), then the title (often a tool's), then the first
page; the first page is read only for names (its dates are many and mostly not the document's).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING

from jisik.records import Document, MetadataValue

if TYPE_CHECKING:
    from jisik.config import MetadataConfig

DERIVED_FIELDS = ("year", "quarter", "date", "company", "company_name")

# Boundaries on ASCII letters and digits only: Korean syllables are \w too, and "2023년" must still match.
_L = r"(?<![A-Za-z0-9])"
_R = r"(?![A-Za-z0-9])"
_YEAR4 = r"(?:19[89]\d|20\d\d)"
_MONTHS = {name: number for number, names in enumerate(
    [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
     ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"),
     ("november", "nov"), ("december", "dec")], start=1) for name in names}
_MONTH = r"(?P<mon>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4}
_ORDINAL = r"(?P<ord>first|second|third|fourth|1st|2nd|3rd|4th)"

# Quarter forms, most specific first. Two-digit years only where a mark makes them unambiguous
# (FY23, '23, 3Q23, 23년): a bare "23" next to a Q is too often a page or item number.
_QUARTER_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (
    _L + r"(?:FY\s?'?(?P<yy>\d\d)|(?:FY\s?)?(?P<y>" + _YEAR4 + r"))\s*[-./ ]?\s*Q(?P<q>[1-4])" + _R,
    _L + r"Q(?P<q>[1-4])\s*[-/ ]?\s*(?:(?:FY\s?|')(?P<yy>\d\d)|(?:FY\s?)?(?P<y>" + _YEAR4 + r"))" + _R,
    _L + r"(?P<q>[1-4])Q\s*'?(?:(?P<y>" + _YEAR4 + r")|(?P<yy>\d\d))" + _R,
    _L + r"(?:(?P<y>" + _YEAR4 + r")|(?P<yy>\d\d))\s*[-./ ]\s*(?P<q>[1-4])Q" + _R,
    r"(?<![0-9])'?(?:(?P<y>" + _YEAR4 + r")|(?P<yy>\d\d))\s*(?:년|년도|회계연도|사업연도)\s*"
    r"(?:제\s*)?(?P<q>[1-4])\s*사?\s*분기",
    _L + r"(?P<y>" + _YEAR4 + r")\s+(?:제\s*)?(?P<q>[1-4])\s*사?\s*분기",
    _L + _ORDINAL + r"\s+(?:fiscal\s+)?quarter(?:\s+of)?(?:\s+(?:fiscal|FY))?(?:\s+year)?\s+'?(?P<y>" + _YEAR4
    + r")" + _R,
    _L + r"(?:fiscal\s+|FY\s?)?(?P<y>" + _YEAR4 + r")\s+" + _ORDINAL + r"\s+(?:fiscal\s+)?quarter" + _R,
)]
# A quarter named without its year ("Q3", "3분기", "third quarter"): it takes the text's one year, if any.
_BARE_QUARTER = re.compile(_L + r"(?:Q(?P<q>[1-4])|(?P<q2>[1-4])Q)" + _R + r"|(?<![0-9])(?P<q3>[1-4])\s*사?\s*분기"
                           + r"|" + _L + _ORDINAL + r"\s+(?:fiscal\s+)?quarter" + _R, re.IGNORECASE)
_FISCAL_YEAR = re.compile(_L + r"(?:FY\s?'?(?P<yy>\d\d)" + _R + r"|(?:FY\s?|fiscal\s+(?:year\s+)?)(?P<y>" + _YEAR4
                          + r")" + _R + r")|(?<![0-9])(?P<y2>" + _YEAR4 + r")\s*(?:회계|사업)\s*연도", re.IGNORECASE)
_DATE_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (
    r"(?<![0-9])(?P<y>" + _YEAR4 + r")\s*년\s*(?P<m>\d{1,2})\s*월\s*(?P<d>\d{1,2})\s*일",
    r"(?<![0-9.])(?P<y>" + _YEAR4 + r")(?P<sep>[-./])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})(?![0-9])",
    r"(?<![0-9])(?P<y>" + _YEAR4 + r")(?P<m>0[1-9]|1[0-2])(?P<d>0[1-9]|[12]\d|3[01])(?![0-9])",
    r"(?<![0-9/])(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>" + _YEAR4 + r")(?![0-9])",
    _L + _MONTH + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>" + _YEAR4 + r")" + _R,
    _L + r"(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH + r",?\s+(?P<y>" + _YEAR4 + r")" + _R,
)]
_YEAR = re.compile(r"(?<![0-9])(?P<y>" + _YEAR4 + r")(?![0-9])")

# Words that say what kind of document it is, or which copy, never whom it is about.
_NOISE_WORDS = frozenset(re.findall(r"\S+", """
final draft copy rev revised revision ver version new old latest updated update scan scanned signed clean redline
fy q h1 h2 form annual quarterly report reports filing filings earnings results presentation deck slides
transcript call statement statements financial financials interim summary press release ir investor investors
relations the of for and by filed to in on at a an fiscal year quarter quarterly period ended ending as
ko en kr eng kor english korean pdf doc docx hwp txt md htm html pptx xlsx
faq hr ceo cfo usa us uk eu kpi memo notes minutes agenda
최종 최종본 수정 수정본 사본 초안 보고서 분기보고서 반기보고서 사업보고서 감사보고서 실적 실적발표 발표 발표자료 자료
공시 분기 반기 연간 결산 재무제표 연결 별도 년 월 일 제 회의록 안내 보도자료 기업설명회 요약 국문 영문 잠정
"""))
_NOISE_PATTERNS = re.compile(
    _L + r"(?:form\s*)?(?:10|20|40|6|8)\s?-?\s?[QKF](?:/A)?" + _R + r"|" + _L + r"(?:S|F)-[1-4]" + _R
    + r"|" + _L + r"(?:v|ver|rev|r)\.?\s?\d+(?:\.\d+)*" + _R + r"|\(\s*\d+\s*\)|" + _L + r"copy\s?\d+" + _R,
    re.IGNORECASE)
# Korean document-type words glued to a name: "삼성전자분기보고서" is about 삼성전자.
_KO_DOC_SUFFIX = re.compile(
    r"(?:분기|반기|사업|감사)?보고서$|실적(?:발표)?$|발표자료$|보도자료$|(?:IR)?자료$|최종본?$|수정본?$")
_SPLIT = re.compile(r"[\s_+,;:|()\[\]{}<>\"“”]+|(?<![A-Za-z])-|-(?![A-Za-z])|(?<=[a-z])-(?=[A-Z])")
# A ticker: 1-5 capitals, optionally a share class (BRK.B); a 6-digit Korean listing code is kept too.
_TICKER = re.compile(r"^(?:[A-Z]{2,5}(?:\.[A-Z])?|\d{6})$")
_ORG_SUFFIX = re.compile(
    r"(?:^|[\s,])(?:inc|incorporated|corp|corporation|co|company|ltd|limited|llc|l\.?p|plc|n\.?v|s\.?a|ag|gmbh|se"
    r"|holdings?|group)\.?$|^(?:주식회사|\(주\)|㈜)|(?:주식회사|\(주\)|㈜)$", re.IGNORECASE)
_FIRST_PAGE_LINES = 40


@dataclass(frozen=True, slots=True)
class Period:
    """A period found in a text: ``quarter`` like ``"2023Q3"``, ``date`` ISO, ``year``; ``span`` where it was."""

    kind: str  # "quarter" | "date" | "year" | "fiscal_year" | "bare_quarter"
    value: str | int
    span: tuple[int, int]


@dataclass(frozen=True, slots=True)
class DerivedMetadata:
    year: int | None = None
    quarter: str | None = None
    date: str | None = None
    company: str | None = None
    company_name: str | None = None

    def as_metadata(self) -> dict[str, MetadataValue]:
        """The fields found, as document metadata.

        >>> DerivedMetadata(year=2023, quarter="2023Q3").as_metadata()
        {'year': 2023, 'quarter': '2023Q3'}
        """
        return {name: value for name in DERIVED_FIELDS if (value := getattr(self, name)) is not None}


def _full_year(y: str | None, yy: str | None) -> int:
    """
    >>> _full_year(None, "23"), _full_year(None, "98"), _full_year("2021", None)
    (2023, 1998, 2021)
    """
    if y:
        return int(y)
    assert yy is not None
    return 2000 + int(yy) if int(yy) < 70 else 1900 + int(yy)


def _quarter_of(match: re.Match[str]) -> int:
    groups = match.groupdict()
    for name in ("q", "q2", "q3"):
        if groups.get(name):
            return int(groups[name])
    return _ORDINALS[groups["ord"].lower()]


def _iso_date(year: int, month: int, day: int) -> str | None:
    """
    >>> _iso_date(2023, 7, 1), _iso_date(2023, 2, 30)
    ('2023-07-01', None)
    """
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def _date_of(match: re.Match[str]) -> str | None:
    groups = match.groupdict()
    year = int(groups["y"])
    if groups.get("a"):  # 07/01/2023 is July 1 (US order), 25/12/2023 can only be day first
        first, second = int(groups["a"]), int(groups["b"])
        month, day = (second, first) if first > 12 else (first, second)
    elif groups.get("mon"):
        month, day = _MONTHS[groups["mon"].lower()], int(groups["d"])
    else:
        month, day = int(groups["m"]), int(groups["d"])
    return _iso_date(year, month, day)


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in taken)


def find_periods(text: str) -> list[Period]:
    """Quarters, dates and years named in ``text``, in order of appearance (a year inside a quarter or date is
    not listed again on its own; a quarter without a year takes the text's only year).

    >>> [(p.kind, p.value) for p in find_periods("AAPL 3Q23 vs 2023년 1분기, filed 2023-07-28")]
    [('quarter', '2023Q3'), ('quarter', '2023Q1'), ('date', '2023-07-28')]
    >>> [(p.kind, p.value) for p in find_periods("What was Intel's gross margin in Q1 2023?")]
    [('quarter', '2023Q1')]
    >>> [(p.kind, p.value) for p in find_periods("FY2024 Q3 deck")]
    [('quarter', '2024Q3')]
    >>> [p.value for p in find_periods("삼성 2023년 실적 3분기")]
    ['2023Q3']
    """
    text = text.replace("_", " ")  # file names separate words with "_" (same length: spans stay valid)
    found: list[Period] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, value: str | int, span: tuple[int, int]) -> None:
        if not _overlaps(span, taken):
            found.append(Period(kind, value, span))
            taken.append(span)

    for pattern in _QUARTER_PATTERNS:
        for match in pattern.finditer(text):
            year = _full_year(match.group("y"), match.groupdict().get("yy"))
            add("quarter", f"{year}Q{_quarter_of(match)}", match.span())
    for pattern in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            iso = _date_of(match)
            if iso:
                add("date", iso, match.span())
    for match in _FISCAL_YEAR.finditer(text):
        add("fiscal_year", _full_year(match.group("y") or match.group("y2"), match.group("yy")), match.span())
    for match in _YEAR.finditer(text):
        add("year", int(match.group("y")), match.span())
    bare = [(m.span(), _quarter_of(m)) for m in _BARE_QUARTER.finditer(text) if not _overlaps(m.span(), taken)]
    years = {p.value for p in found if p.kind in ("year", "fiscal_year")}
    if bare and len(years) == 1:
        only_year = years.pop()
        found = [p for p in found if p.kind not in ("year", "fiscal_year")]
        found += [Period("quarter", f"{only_year}Q{q}", span) for span, q in bare]
    elif bare:
        found += [Period("bare_quarter", f"Q{q}", span) for span, q in bare]
    return sorted(found, key=lambda p: p.span)


def _one(values: Iterable[str | int]) -> str | int | None:
    """The value when there is exactly one distinct value (a file naming two quarters is about neither alone).

    >>> _one(["2023Q3", "2023Q3"]), _one(["2023Q3", "2023Q1"]), _one([])
    ('2023Q3', None, None)
    """
    distinct = list(dict.fromkeys(values))
    return distinct[0] if len(distinct) == 1 else None


def clean_file_name(name: str) -> str:
    """A file's name without folders, extension or copy marks (``(1)``, `` - Copy``).

    >>> clean_file_name("reports/2023_Q3_AAPL_final (1).pdf"), clean_file_name(r"C:\\x\\삼성전자 2023년 3분기.PDF")
    ('2023_Q3_AAPL_final', '삼성전자 2023년 3분기')
    """
    base = PureWindowsPath(name).name if "\\" in name else PurePosixPath(name).name
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", base)
    return re.sub(r"\s*(?:\(\s*\d+\s*\)|-\s*copy(?:\s*\d+)?|사본)\s*$", "", stem, flags=re.IGNORECASE).strip()


def name_candidates(text: str) -> list[str]:
    """The words of a file name or title that may name whom it is about, in order, once periods, dates,
    version marks and document-type words are removed. Each run of words between removed parts is one
    candidate.

    >>> name_candidates("2023_Q3_AAPL_final_v2")
    ['AAPL']
    >>> name_candidates("Form 10-Q for Microsoft Corp filed 01/24/2023")
    ['Microsoft Corp']
    >>> name_candidates("삼성전자_2023년_3분기_분기보고서(최종)")
    ['삼성전자']
    >>> name_candidates("10-Q - 07/28/2023 - Intel Corporation")
    ['Intel Corporation']
    >>> name_candidates("(주)카카오_분기보고서")
    ['㈜카카오']
    """
    text = re.sub(r"[(（]주[)）]\s*", "㈜", text)  # "(주) 카카오" is one name, not split at its brackets
    spans = [p.span for p in find_periods(text)] + [m.span() for m in _NOISE_PATTERNS.finditer(text)]
    pieces, last = [], 0
    for start, end in sorted(spans):
        if start >= last:
            pieces.append(text[last:start])
            last = end
    pieces.append(text[last:])
    candidates: list[str] = []
    for piece in pieces:
        run: list[str] = []
        for raw in _SPLIT.split(piece):
            token = _KO_DOC_SUFFIX.sub("", raw.strip(".'’-")) if re.search(r"[가-힣]", raw) else raw.strip(".'’-")
            if _is_noise(token):
                if run:
                    candidates.append(" ".join(run))
                    run = []
                continue
            run.append(token)
        if run:
            candidates.append(" ".join(run))
    return candidates


def _is_noise(token: str) -> bool:
    """
    >>> [_is_noise(t) for t in ["final", "V2", "2023", "x", "AAPL", "보고서", "Q3"]]
    [True, True, True, True, False, True, True]
    """
    if len(token) < 2 and not re.fullmatch(r"[가-힣]", token):
        return True
    lowered = token.lower()
    return (lowered in _NOISE_WORDS or bool(re.fullmatch(r"[\d.\-/]+|v\d+|q[1-4]|[1-4]q|\d+(?:st|nd|rd|th)", lowered)))


def is_ticker(name: str) -> bool:
    """
    >>> is_ticker("AAPL"), is_ticker("BRK.B"), is_ticker("005930"), is_ticker("Apple"), is_ticker("NVIDIA")
    (True, True, True, False, False)
    """
    return bool(_TICKER.match(name))


def has_org_suffix(name: str) -> bool:
    """
    >>> [has_org_suffix(n) for n in ["Apple Inc.", "AMAZON.COM, INC.", "주식회사 카카오", "Apple"]]
    [True, True, True, False]
    """
    return bool(_ORG_SUFFIX.search(name.strip()))


def company_in(text: str, *, has_period: bool) -> tuple[str | None, str | None]:
    """``(company, fuller name)`` from a file name or title. A ticker wins; a name with an organisation suffix
    (Inc., Corp., 주식회사) is also the fuller name; other leftover words count only when the text also names a
    period, since "user manual.pdf" names no company but "Tesla 2023 Q2.pdf" does.

    >>> company_in("2023 Q3 AAPL", has_period=True), company_in("Apple Inc 10-Q", has_period=False)
    (('AAPL', None), ('Apple Inc', 'Apple Inc'))
    >>> company_in("user manual v2", has_period=False), company_in("Tesla 2023 Q2", has_period=True)
    ((None, None), ('Tesla', None))
    """
    candidates = [c for c in name_candidates(text) if len(c.split()) <= 5]
    tickers = [t for c in candidates for t in c.split() if is_ticker(t)]
    named = [c for c in candidates if has_org_suffix(c)]
    full = named[0] if named else None
    if tickers:
        return tickers[0], full
    if full:
        return full, full
    if has_period and candidates:
        return candidates[0], None
    return None, None


def first_page_company(text: str) -> str | None:
    """The first line of a cover page that is an organisation's name ("Apple Inc.", "NVIDIA CORPORATION",
    "주식회사 카카오"): the registrant of a filing, the publisher of a report.

    >>> first_page_company("FORM 10-Q\\nFor the quarterly period ended July 1, 2023\\nApple Inc.\\n(Exact name)")
    'Apple Inc.'
    >>> first_page_company("회사의 개요\\n주식회사 카카오\\n대표이사"), first_page_company("Returns policy\\nRefunds")
    ('주식회사 카카오', None)
    """
    for line in text.splitlines()[:_FIRST_PAGE_LINES]:
        line = line.strip()
        if 2 < len(line) <= 60 and has_org_suffix(line) and not re.search(r"\d{3}", line):
            words = line.split()
            if len(words) <= 6 and not re.search(r"\b(?:of|the|by|and|with|pursuant)\b", line, re.IGNORECASE):
                return line
    return None


def _from_label(label: str) -> tuple[int | None, str | None, str | None, str | None, str | None]:
    """Year, quarter, date, company, fuller name from one file name or title."""
    periods = find_periods(label)
    quarter = _one(p.value for p in periods if p.kind == "quarter")
    date = _one(p.value for p in periods if p.kind == "date")
    year: str | int | None
    if quarter is not None:
        year = int(str(quarter)[:4])
    elif date is not None:
        year = int(str(date)[:4])
    else:
        year = _one(p.value for p in periods if p.kind in ("year", "fiscal_year"))
    company, full = company_in(label, has_period=bool(periods))
    return (int(year) if year is not None else None, str(quarter) if quarter else None,
            str(date) if date else None, company, full)


# Every row of a CSV file shares its file name: read it once. (Titles are not cached: each row has its own, and a
# cache that thrashes past its size makes a second ingest of a big file cost more per row than a small one's.)
_from_file_name = functools.lru_cache(maxsize=256)(_from_label)


def derive_metadata(title: str | None, file_name: str | None, first_page: str | None = None,
                    aliases: Mapping[str, Iterable[str]] | None = None) -> DerivedMetadata:
    """Metadata derived from a document's labels: the file name first, then the title, then the first page.

    ``aliases`` maps a canonical company value to other names (``{"AAPL": ["Apple", "애플"]}``): a name found
    in the labels becomes its canonical value.

    >>> derive_metadata("Form 10-Q for Microsoft Corp filed 01/24/2023", "docs/2023 Q1 MSFT.pdf")
    DerivedMetadata(year=2023, quarter='2023Q1', date='2023-01-24', company='MSFT', company_name='Microsoft Corp')
    >>> derive_metadata(None, "삼성전자_2023년_1분기_보고서_최종.pdf", aliases={"005930": ["삼성전자"]})
    DerivedMetadata(year=2023, quarter='2023Q1', date=None, company='005930', company_name='삼성전자')
    >>> derive_metadata("Employee handbook", "handbook_v3.docx")
    DerivedMetadata(year=None, quarter=None, date=None, company=None, company_name=None)
    """
    found: dict[str, str | int] = {}
    for label, read in ((clean_file_name(file_name) if file_name else None, _from_file_name), (title, _from_label)):
        if not label:
            continue
        for name, value in zip(DERIVED_FIELDS, read(label.strip()[:300]), strict=True):
            if value is not None:
                found.setdefault(name, value)
    if first_page and "company_name" not in found:
        cover = first_page_company(first_page)
        if cover:
            found.setdefault("company", cover)
            if cover != found["company"]:
                found["company_name"] = cover
    company = found.get("company")
    if aliases and isinstance(company, str):
        canonical = canonical_company(company, aliases)
        if canonical != company:
            found["company"] = canonical
            found.setdefault("company_name", company)
    if found.get("company_name") == found.get("company"):
        found.pop("company_name", None)
    return DerivedMetadata(**found)  # type: ignore[arg-type]


def alias_key(name: str) -> str:
    """The form names are compared in: case-folded, organisation suffixes, ``.com`` and punctuation removed.

    >>> alias_key("Apple Inc."), alias_key("AMAZON.COM, INC."), alias_key("삼성전자 주식회사"), alias_key("(주)카카오")
    ('apple', 'amazon', '삼성전자', '카카오')
    """
    key = name.casefold().strip()
    key = re.sub(r"^(?:주식회사|\(주\)|㈜)\s*|\s*(?:주식회사|\(주\)|㈜)$", "", key)
    for _ in range(2):  # "Holdings, Inc."
        key = re.sub(r"[\s,]+(?:inc|incorporated|corp|corporation|co|company|ltd|limited|llc|l\.?p|plc|n\.?v|s\.?a"
                     r"|ag|gmbh|se|holdings?|group)\.?$", "", key)
    key = re.sub(r"\.com$", "", key)
    return re.sub(r"[^\w&]+", " ", key).strip()


def canonical_company(name: str, aliases: Mapping[str, Iterable[str]]) -> str:
    """The canonical value ``name`` is an alias of, else ``name``.

    >>> canonical_company("Apple Inc.", {"AAPL": ["Apple", "애플"]}), canonical_company("Tesla", {"AAPL": ["Apple"]})
    ('AAPL', 'Tesla')
    """
    key = alias_key(name)
    for canonical, others in aliases.items():
        if key == alias_key(canonical) or any(key == alias_key(o) for o in others):
            return canonical
    return name


def first_page_text(document: Document, limit: int) -> str:
    """The first page's text (the first segment with the lowest page number), at most ``limit`` characters."""
    if limit <= 0 or not document.text:
        return ""
    paged = [s for s in document.segments if s.page is not None]
    if paged:
        first = min(s.page for s in paged if s.page is not None)
        parts = [document.text[s.start:s.end] for s in paged if s.page == first]
        return "\n".join(parts)[:limit]
    return document.text[:limit]


def add_derived_metadata(document: Document, config: MetadataConfig) -> list[str]:
    """Fill in the derived fields ``document`` lacks (loader or user values are kept); returns the names added.

    >>> from jisik.config import MetadataConfig
    >>> doc = Document(doc_id="d/2023 Q3 AAPL.pdf", source="d/2023 Q3 AAPL.pdf", text="x", metadata={"year": 2022})
    >>> add_derived_metadata(doc, MetadataConfig()), doc.metadata
    (['quarter', 'company'], {'year': 2022, 'quarter': '2023Q3', 'company': 'AAPL'})
    """
    if not config.derive:
        return []
    first_page = first_page_text(document, config.first_page_chars) if config.first_page_chars else None
    derived = derive_metadata(document.title, document.source or document.doc_id, first_page, config.aliases)
    added = []
    for name, value in derived.as_metadata().items():
        if document.metadata.get(name) in (None, ""):
            document.metadata[name] = value
            added.append(name)
    return added
