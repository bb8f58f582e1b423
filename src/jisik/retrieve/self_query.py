"""Self-query without an LLM: the periods and companies a question names, matched to the values the knowledge
base holds, become a route to the documents that have them.

"2023년 1분기 매출은?", "AAPL's Q3 2022 revenue", "Apple's most recent quarter": the question is read with the
same patterns that derived the documents' metadata at ingest (:mod:`jisik.ingest.derived_metadata`), and each
value is kept only when the knowledge base's :class:`Catalogue` (the distinct ``company`` / ``company_name`` /
``quarter`` / ``year`` combinations of its documents) has it. Company names reach tickers through the names the
documents themselves carry (the cover page of ``2023 Q3 AAPL.pdf`` says "Apple Inc."), then through
``[metadata] aliases``, then a small built-in table. "latest" / "most recent" / "최근" is the catalogue's last
quarter (of the named company when there is one) unless the question compares periods ("over time", "prior
quarters", "추이").

A :class:`Route` is used one of two ways (``[routing] self_query``): as a hard :class:`~jisik.filters.Filter`
(a route whose combination no document has gives no filter at all, so a search never comes back empty because
of it; nor does a year alone, weak evidence), or as a soft boost of the chunks of matching documents
(:func:`boost_hits`). This is "self-querying" retrieval (LangChain's ``SelfQueryRetriever``; Ma et al. 2023,
"Query rewriting for retrieval-augmented LLMs") with a grammar instead of an LLM; :func:`llm_route` asks an LLM
for the same fields, the rules as its fallback.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from jisik.filters import Condition, Filter, Scalar
from jisik.ingest.derived_metadata import alias_key, find_periods, is_ticker

if TYPE_CHECKING:
    from jisik.generate.llms.base import LLM
    from jisik.records import Hit
    from jisik.store.base import ChunkStore

logger = logging.getLogger(__name__)

CATALOGUE_KEYS = ("company", "company_name", "quarter", "year")
ROUTED_FIELDS = ("company", "quarter", "year")

# Fallback only: names of a few widely asked-about companies, used when the documents carry no name for a
# ticker the catalogue has (a file named "2023 Q3 AAPL.pdf" without a cover page). Korean names included.
BUILTIN_ALIASES: dict[str, tuple[str, ...]] = {
    "AAPL": ("Apple", "애플"), "MSFT": ("Microsoft", "마이크로소프트", "마소"), "AMZN": ("Amazon", "아마존"),
    "NVDA": ("NVIDIA", "엔비디아"), "INTC": ("Intel", "인텔"), "GOOGL": ("Alphabet", "Google", "구글", "알파벳"),
    "META": ("Meta", "Facebook", "메타", "페이스북"), "TSLA": ("Tesla", "테슬라"), "AMD": ("AMD",),
    "TSM": ("TSMC", "Taiwan Semiconductor"), "005930": ("삼성전자", "Samsung Electronics"),
    "000660": ("SK하이닉스", "SK hynix"), "035420": ("NAVER", "네이버"), "035720": ("카카오", "Kakao"),
    "005380": ("현대자동차", "현대차", "Hyundai Motor"),
}

_LATEST = re.compile(
    r"(?<![a-z])(?:most\s+recent|latest|newest|current|this)\s+(?:fiscal\s+)?(?:quarter|10-?q|filing|report|"
    r"quarterly\s+report|period)|(?<![a-z])(?:most\s+recent|latest|newest)(?![a-z])|가장\s*최근|최근|최신|이번\s*분기",
    re.IGNORECASE)
# A question that asks about other periods too wants several documents: "latest" then does not narrow it to one
# quarter. Only words that point at other periods count: "compare the segments in the latest 10-Q" is one filing.
_COMPARES = re.compile(
    r"(?<![a-z])(?:previous|prior|earlier|past|over\s+time|trends?|evolv\w*|evolution|each\s+quarter|"
    r"(?:across|over|these|all)\s+(?:the\s+)?(?:quarters|periods|filings|reports|10-?qs|reporting))(?![a-z])"
    r"|이전|과거|추이|분기별|지난\s*분기들",
    re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Catalogue:
    """What a knowledge base's documents say about themselves: their distinct (company, quarter, year)
    combinations, and every name that reaches a company value.

    >>> cat = Catalogue.from_combinations([{"company": "AAPL", "company_name": "Apple Inc.", "quarter": "2023Q3",
    ...                                     "year": "2023"}, {"company": "MSFT", "quarter": "2022Q3", "year": "2022"}])
    >>> cat.companies_named("apple"), cat.companies_named("microsoft"), cat.latest_quarter()
    (('AAPL',), ('MSFT',), '2023Q3')
    """

    entries: tuple[Mapping[str, str], ...] = ()
    names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # alias_key(name) -> company values

    @classmethod
    def from_combinations(cls, rows: Iterable[Mapping[str, object]],
                          aliases: Mapping[str, Iterable[str]] | None = None,
                          fallback: Mapping[str, Iterable[str]] = BUILTIN_ALIASES) -> Catalogue:
        """Build from :meth:`~jisik.store.base.ChunkStore.metadata_combinations` rows. ``aliases`` (the user's
        ``[metadata] aliases``) and ``fallback`` add names for the company values the catalogue has."""
        entries = tuple({k: str(v) for k, v in row.items() if v is not None and k in CATALOGUE_KEYS}
                        for row in rows)
        names: dict[str, dict[str, None]] = {}

        def add(name: str, company: str) -> None:
            key = alias_key(name)
            if key:
                names.setdefault(key, {})[company] = None

        companies = dict.fromkeys(e["company"] for e in entries if "company" in e)
        for entry in entries:  # the documents' own names first
            if "company" in entry:
                add(entry["company"], entry["company"])
                if "company_name" in entry:
                    add(entry["company_name"], entry["company"])
        known = {key: list(values) for key, values in names.items()}
        for table in (aliases or {}, fallback):
            for canonical, others in table.items():
                group = [canonical, *others]
                targets = {c for name in group for c in known.get(alias_key(name), []) if c in companies}
                for company in targets:
                    for name in group:
                        add(name, company)
        return cls(entries, {key: tuple(values) for key, values in names.items()})

    def companies_named(self, name: str) -> tuple[str, ...]:
        return tuple(self.names.get(alias_key(name), ()))

    def values(self, key: str, where: Mapping[str, Sequence[str]] | None = None) -> list[str]:
        """Distinct values of ``key`` (sorted) among entries matching ``where``.

        >>> Catalogue(({"company": "A", "quarter": "2023Q1"}, {"company": "B", "quarter": "2023Q2"})).values(
        ...     "quarter", {"company": ["A"]})
        ['2023Q1']
        """
        return sorted({e[key] for e in self.entries if key in e and _entry_matches(e, where or {})})

    def latest_quarter(self, company: Sequence[str] = ()) -> str | None:
        quarters = self.values("quarter", {"company": list(company)} if company else None)
        return quarters[-1] if quarters else None

    def has(self, where: Mapping[str, Sequence[str]]) -> bool:
        """Whether some document has all of ``where`` (each key: one of its values)."""
        return any(_entry_matches(e, where) for e in self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)


def _entry_matches(entry: Mapping[str, str], where: Mapping[str, Sequence[str]]) -> bool:
    return all(entry.get(key) in {str(v) for v in values} for key, values in where.items() if values)


@dataclass(frozen=True, slots=True)
class Route:
    """Where a question points: the catalogue values it names (``fields``), and the hard filter they make
    (empty when nothing is named, or when no document has the combination: then search everything)."""

    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    filter: Filter = field(default_factory=Filter)
    notes: tuple[str, ...] = ()
    source: str = "rules"

    def __bool__(self) -> bool:
        return bool(self.fields)


def catalogue_of(store: ChunkStore, aliases: Mapping[str, Iterable[str]] | None = None) -> Catalogue:
    """The catalogue of a store's documents (one grouped query over their metadata; cache it per generation)."""
    return Catalogue.from_combinations(store.metadata_combinations(CATALOGUE_KEYS), aliases)


def _name_pattern(name: str) -> str:
    """A regex for one name in a question: ASCII names end at a non-letter ("Apple's"), Korean names start at
    one and may take a particle ("애플의").

    >>> bool(re.search(_name_pattern("애플"), "애플의 매출")), bool(re.search(_name_pattern("apple"), "pineapple"))
    (True, False)
    """
    words = r"\s+".join(re.escape(w) for w in name.split())
    if re.search(r"[가-힣]", name):
        return r"(?<![가-힣A-Za-z0-9])" + words
    return r"(?<![A-Za-z0-9])" + words + r"(?![A-Za-z0-9])"


def companies_in(question: str, catalogue: Catalogue) -> list[str]:
    """Catalogue company values the question names, in order of first mention. Tickers count only as written in
    capitals ("AAPL", not "aapl"); names of fewer than three letters only as tickers.

    >>> cat = Catalogue.from_combinations([{"company": "AAPL", "company_name": "Apple Inc."}, {"company": "INTC"}])
    >>> companies_in("Compare Intel and Apple's margins", cat), companies_in("애플의 매출은?", cat)
    (['INTC', 'AAPL'], ['AAPL'])
    >>> companies_in("What does the apple pie recipe say about INTC?", cat)
    ['AAPL', 'INTC']
    """
    found: dict[str, int] = {}
    folded = question.casefold()
    for key, companies in catalogue.names.items():
        ticker_forms = [c for c in companies if is_ticker(c) and alias_key(c) == key]
        if ticker_forms:
            for ticker in ticker_forms:
                match = re.search(_name_pattern(ticker), question)
                if match:
                    found.setdefault(ticker, match.start())
                    for company in companies:
                        found.setdefault(company, match.start())
            continue
        if len(key) < 3 and not re.search(r"[가-힣]", key):
            continue
        match = re.search(_name_pattern(key), folded)
        if match:
            for company in companies:
                found[company] = min(found.get(company, match.start()), match.start())
    return [c for c, _ in sorted(found.items(), key=lambda kv: kv[1])]


def route_question(question: str, catalogue: Catalogue) -> Route:
    """The route of one question over ``catalogue``, by rules (no LLM).

    >>> cat = Catalogue.from_combinations([
    ...     {"company": c, "company_name": n, "quarter": q, "year": q[:4]}
    ...     for c, n in [("AAPL", "Apple Inc."), ("INTC", "Intel Corporation")]
    ...     for q in ["2022Q3", "2023Q1", "2023Q3"]])
    >>> route_question("What was Intel's gross margin in Q1 2023?", cat).fields
    {'company': ('INTC',), 'quarter': ('2023Q1',)}
    >>> route_question("Apple's most recent quarter revenue", cat).fields
    {'company': ('AAPL',), 'quarter': ('2023Q3',)}
    >>> route_question("2023년 1분기 매출은?", cat).fields, route_question("How do refunds work?", cat).fields
    ({'quarter': ('2023Q1',)}, {})
    >>> route = route_question("AAPL's Q2 2021 revenue", cat)  # no such quarter: the company alone routes it
    >>> route.fields, [c.key for c in route.filter.conditions]
    ({'company': ('AAPL',)}, ['company'])
    """
    notes: list[str] = []
    fields: dict[str, tuple[str, ...]] = {}
    companies = companies_in(question, catalogue)
    if companies:
        fields["company"] = tuple(companies)
    known_quarters = set(catalogue.values("quarter"))
    quarters: list[str] = []
    years: list[str] = []
    for period in find_periods(question):
        if period.kind == "quarter":
            quarters.append(str(period.value))
        elif period.kind == "bare_quarter":
            quarters += [q for q in sorted(known_quarters) if q.endswith(str(period.value))]
        elif period.kind in ("year", "fiscal_year"):
            years.append(str(period.value))
        elif period.kind == "date":
            years.append(str(period.value)[:4])
    missing = [q for q in quarters if q not in known_quarters]
    if missing:
        notes.append(f"no document is of {', '.join(missing)}")
    quarters = list(dict.fromkeys(q for q in quarters if q in known_quarters))
    if not quarters and not missing and _LATEST.search(question):
        if _COMPARES.search(question):
            notes.append("'latest' in a comparison: all periods kept")
        else:
            latest = catalogue.latest_quarter(fields.get("company", ()))
            if latest:
                quarters = [latest]
                notes.append(f"'latest' = {latest}")
    if quarters:
        fields["quarter"] = tuple(quarters)
    elif not missing:
        known_years = set(catalogue.values("year"))
        years = list(dict.fromkeys(y for y in years if y in known_years))
        if years:
            fields["year"] = tuple(years)
    return _with_filter(fields, catalogue, notes, "rules")


def _with_filter(fields: dict[str, tuple[str, ...]], catalogue: Catalogue, notes: list[str], source: str) -> Route:
    """The route with its hard filter: every field, when some document has the combination; else none."""
    if not fields:
        return Route({}, Filter(), tuple(notes), source)
    if set(fields) == {"year"}:
        # A year alone is weak evidence: "in 1973" names a year in many a question about a document that is not
        # "of" 1973 (a Wikipedia article titled "1973 oil crisis" would take them all). It boosts, never filters.
        notes.append("a year alone: boost only, no filter")
        return Route(fields, Filter(), tuple(notes), source)
    if not catalogue.has(fields):
        notes.append("no document has " + ", ".join(f"{k}={'|'.join(v)}" for k, v in fields.items())
                     + ": no filter")
        return Route(fields, Filter(), tuple(notes), source)
    conditions = []
    for key, values in fields.items():
        typed: tuple[Scalar, ...] = tuple(int(v) if key == "year" else v for v in values)
        conditions.append(Condition(key, "eq", typed[0]) if len(typed) == 1 else Condition(key, "in", typed))
    return Route(fields, Filter(tuple(conditions)), tuple(notes), source)


def boost_hits(hits: Sequence[Hit], route: Route, weight: float) -> list[Hit]:
    """Hits re-ranked with ``weight`` x (the share of the route's fields a hit's document has) added to each
    score: a soft route, which keeps every candidate but lifts the documents the question names.

    >>> from jisik.records import Hit
    >>> hits = [Hit(1, 0.9, "a", "x", "x", None, None, None, 0, 1, {"quarter": "2022Q3"}),
    ...         Hit(2, 0.85, "b", "y", "y", None, None, None, 0, 1, {"quarter": "2023Q3"})]
    >>> [h.chunk_id for h in boost_hits(hits, Route({"quarter": ("2023Q3",)}), 0.1)]
    [2, 1]
    """
    if not route or weight == 0:
        return list(hits)
    boosted = []
    for hit in hits:
        share = sum(str(hit.metadata.get(key)) in values for key, values in route.fields.items()) / len(route.fields)
        boosted.append(replace(hit, score=hit.score + weight * share) if share else hit)
    return sorted(boosted, key=lambda h: -h.score)


# -- the LLM option -------------------------------------------------------------------------------------------
_LLM_SYSTEM = ("You turn a question into search filters. Answer with one JSON object and nothing else: "
               '{"company": [...], "quarter": [...], "year": [...], "latest": true|false}. '
               "Use only values from the lists given; leave a list empty when the question does not name one. "
               '"latest" is true only when the question asks for the most recent period alone.')


def llm_prompt(question: str, catalogue: Catalogue) -> str:
    """The user message for :func:`llm_route`: the catalogue's values, then the question."""
    companies: dict[str, list[str]] = {}
    for entry in catalogue.entries:
        if "company" in entry:
            names = companies.setdefault(entry["company"], [])
            if entry.get("company_name") and entry["company_name"] not in names:
                names.append(entry["company_name"])
    company_lines = [f"- {c}" + (f" ({', '.join(n)})" if n else "") for c, n in sorted(companies.items())]
    return "\n".join(["Companies:", *company_lines, f"Quarters: {', '.join(catalogue.values('quarter'))}",
                      f"Years: {', '.join(catalogue.values('year'))}", "", f"Question: {question}"])


def parse_llm_fields(text: str, catalogue: Catalogue) -> dict[str, tuple[str, ...]] | None:
    """The fields of an LLM's JSON answer, kept only where the catalogue has them (None: not valid JSON).

    >>> cat = Catalogue.from_combinations([{"company": "AAPL", "company_name": "Apple Inc.", "quarter": "2023Q3"}])
    >>> parse_llm_fields('Sure: {"company": ["Apple"], "quarter": [], "latest": true}', cat)
    {'company': ('AAPL',), 'quarter': ('2023Q3',)}
    >>> parse_llm_fields("no idea", cat) is None
    True
    """
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if not match:
        return None
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None

    def listed(key: str) -> list[str]:
        value = data.get(key) or []
        return [str(v) for v in (value if isinstance(value, list) else [value]) if v not in (None, "")]

    fields: dict[str, tuple[str, ...]] = {}
    companies = list(dict.fromkeys(c for name in listed("company") for c in catalogue.companies_named(name)))
    if companies:
        fields["company"] = tuple(companies)
    known_quarters = set(catalogue.values("quarter"))
    quarters = [q.replace(" ", "").upper() for q in listed("quarter")]
    quarters = [q for q in quarters if q in known_quarters]
    if not quarters and data.get("latest") is True:
        latest = catalogue.latest_quarter(companies)
        quarters = [latest] if latest else []
    if quarters:
        fields["quarter"] = tuple(dict.fromkeys(quarters))
    else:
        years = [y for y in listed("year") if y in set(catalogue.values("year"))]
        if years:
            fields["year"] = tuple(dict.fromkeys(years))
    return fields


def llm_route(question: str, catalogue: Catalogue, llm: LLM) -> Route:
    """The route an LLM reads from the question (one short call, greedy), validated against the catalogue.
    The rules (:func:`route_question`) answer instead when the LLM fails, answers no JSON, or names nothing
    the catalogue has."""
    from jisik.errors import GenerationError
    from jisik.generate.llms.base import GenerationOptions, Message

    messages = [Message("system", _LLM_SYSTEM), Message("user", llm_prompt(question, catalogue))]
    try:
        reply = llm.generate(messages, GenerationOptions(temperature=0.0, max_tokens=120)).text
    except GenerationError as exc:
        logger.warning("self-query LLM failed (%s); using the rules", exc)
        return route_question(question, catalogue)
    fields = parse_llm_fields(reply, catalogue)
    if not fields:
        return route_question(question, catalogue)
    return _with_filter(fields, catalogue, [], "llm")
