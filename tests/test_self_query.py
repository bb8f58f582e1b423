"""Self-query routing (issue 14, part 4): questions in Korean and English that name a company or a period,
matched to the values a knowledge base's documents have; no route when nothing is named; no filter when the
combination matches no document; the LLM option with the rules as fallback."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from jisik.embed.hashing import HashingEmbedder
from jisik.errors import LLMUnavailableError
from jisik.filters import Condition
from jisik.generate.llms.base import Message
from jisik.generate.llms.fake import FakeLLM
from jisik.kb import KnowledgeBase
from jisik.records import Hit
from jisik.retrieve.self_query import (
    Catalogue,
    Route,
    boost_hits,
    catalogue_of,
    companies_in,
    llm_route,
    route_question,
)

SEC = [("AAPL", "Apple Inc."), ("MSFT", "MICROSOFT CORPORATION"), ("AMZN", "AMAZON.COM, INC."),
       ("NVDA", "NVIDIA CORPORATION"), ("INTC", "INTEL CORPORATION")]
QUARTERS = ["2022Q3", "2023Q1", "2023Q2", "2023Q3"]


@pytest.fixture
def catalogue() -> Catalogue:
    rows = [{"company": c, "company_name": n, "quarter": q, "year": q[:4]} for c, n in SEC for q in QUARTERS]
    rows.append({"company": "삼성전자", "quarter": "2023Q1", "year": "2023"})
    return Catalogue.from_combinations(rows)


@pytest.mark.parametrize(("question", "fields"), [
    ("AAPL's Q3 2022 revenue", {"company": ("AAPL",), "quarter": ("2022Q3",)}),
    ("What was Intel's gross margin in Q1 2023?", {"company": ("INTC",), "quarter": ("2023Q1",)}),
    ("Apple's most recent quarter", {"company": ("AAPL",), "quarter": ("2023Q3",)}),
    ("What was Amazon's gross margin in the most recent 10-Q filing?", {"company": ("AMZN",), "quarter": ("2023Q3",)}),
    ("How has Apple's total net sales changed over time?", {"company": ("AAPL",)}),
    ("Apple's gross margin in the most recent 10-Q compared to the previous quarters?", {"company": ("AAPL",)}),
    ("2023년 1분기 매출은?", {"quarter": ("2023Q1",)}),
    ("삼성전자의 2023년 1분기 매출은?", {"company": ("삼성전자",), "quarter": ("2023Q1",)}),
    ("엔비디아 3Q23 데이터센터 매출", {"company": ("NVDA",), "quarter": ("2023Q3",)}),
    ("Compare NVIDIA and Microsoft in 2022", {"company": ("NVDA", "MSFT"), "year": ("2022",)}),
    ("What did Microsoft report in the third quarter of 2023?", {"company": ("MSFT",), "quarter": ("2023Q3",)}),
    ("Intel's Q2 results", {"company": ("INTC",), "quarter": ("2023Q2",)}),
])
def test_routes(catalogue: Catalogue, question: str, fields: dict[str, tuple[str, ...]]) -> None:
    assert dict(route_question(question, catalogue).fields) == fields


@pytest.mark.parametrize("question", ["How do refunds work?", "반품 기간은 며칠인가요?",
                                      "What are the main risk factors?", "aapl", "Which quarters are covered?"])
def test_no_route_when_nothing_is_named(catalogue: Catalogue, question: str) -> None:
    route = route_question(question, catalogue)
    assert not route and not route.filter


def test_filter_of_a_route(catalogue: Catalogue) -> None:
    route = route_question("Compare NVIDIA and Microsoft in 2022", catalogue)
    assert route.filter.conditions == (Condition("company", "in", ("NVDA", "MSFT")), Condition("year", "eq", 2022))


def test_a_year_alone_boosts_but_does_not_filter(catalogue: Catalogue) -> None:
    route = route_question("What happened in 2022?", catalogue)
    assert dict(route.fields) == {"year": ("2022",)} and not route.filter


def test_no_filter_when_no_document_has_the_combination(catalogue: Catalogue) -> None:
    route = route_question("삼성전자 2023년 3분기", catalogue)  # 삼성전자 has only 2023Q1 here
    assert route.fields == {"company": ("삼성전자",), "quarter": ("2023Q3",)}
    assert not route.filter and "no filter" in route.notes[-1]


def test_unknown_values_are_dropped(catalogue: Catalogue) -> None:
    assert dict(route_question("Tesla's 2019 revenue", catalogue).fields) == {}
    assert dict(route_question("Apple in Q4 2021", catalogue).fields) == {"company": ("AAPL",)}


def test_names_come_from_the_documents_then_aliases_then_builtin() -> None:
    cat = Catalogue.from_combinations([{"company": "ACME", "company_name": "Acme Widgets Ltd."}, {"company": "AAPL"},
                                       {"company": "XYZ"}], aliases={"XYZ": ["엑스와이지"]})
    assert companies_in("Acme Widgets revenue", cat) == ["ACME"]  # from its own cover page
    assert companies_in("애플 매출", cat) == ["AAPL"]  # built-in fallback
    assert companies_in("엑스와이지의 매출", cat) == ["XYZ"]  # user alias
    assert companies_in("apple and xyz", cat) == ["AAPL"]  # tickers only in capitals


def test_latest_is_per_company() -> None:
    cat = Catalogue.from_combinations([{"company": "A", "quarter": "2023Q3"}, {"company": "B", "quarter": "2023Q1"}])
    assert cat.latest_quarter(["B"]) == "2023Q1" and cat.latest_quarter() == "2023Q3"
    assert dict(route_question("the latest quarter", cat).fields) == {"quarter": ("2023Q3",)}


def test_empty_catalogue_routes_nothing() -> None:
    assert not route_question("AAPL's Q3 2022 revenue", Catalogue())


def _hit(chunk: int, score: float, **metadata: object) -> Hit:
    return Hit(chunk, score, "", f"d{chunk}", f"d{chunk}", None, None, None, 0, 1, dict(metadata))


def test_boost_lifts_matching_documents() -> None:
    hits = [_hit(1, 0.9, company="MSFT", quarter="2023Q3"), _hit(2, 0.85, company="AAPL", quarter="2022Q3"),
            _hit(3, 0.8, company="AAPL", quarter="2023Q3")]
    route = Route({"company": ("AAPL",), "quarter": ("2023Q3",)})
    # each field matched adds half the weight: 0.9+0.15, 0.85+0.15, 0.8+0.3
    assert [h.chunk_id for h in boost_hits(hits, route, 0.3)] == [3, 1, 2]
    assert [h.chunk_id for h in boost_hits(hits, route, 0.0)] == [1, 2, 3]
    assert [h.chunk_id for h in boost_hits(hits, Route(), 0.2)] == [1, 2, 3]
    assert boost_hits([_hit(1, .5, year=2023)], Route({"year": ("2023",)}), .1)[0].score == pytest.approx(.6)


def test_llm_route_and_its_fallback(catalogue: Catalogue) -> None:
    llm = FakeLLM(['{"company": ["Apple"], "quarter": ["2022Q3"], "year": [], "latest": false}'])
    route = llm_route("How did the iPhone maker do a year before last summer?", catalogue, llm)
    assert route.source == "llm" and dict(route.fields) == {"company": ("AAPL",), "quarter": ("2022Q3",)}
    prompt = llm.calls[0][-1].content
    assert "AAPL (Apple Inc.)" in prompt and "2023Q3" in prompt
    assert llm_route("AAPL's Q3 2022 revenue", catalogue, FakeLLM(["I cannot help"])).source == "rules"
    unknown = FakeLLM(['{"company": ["Tesla"], "quarter": []}'])
    assert dict(llm_route("AAPL's Q3 2022 revenue", catalogue, unknown).fields) == {
        "company": ("AAPL",), "quarter": ("2022Q3",)}

    def down(messages: Sequence[Message]) -> str:
        raise LLMUnavailableError("server down")

    assert llm_route("Intel Q1 2023", catalogue, FakeLLM(down)).fields == {"company": ("INTC",), "quarter": ("2023Q1",)}


def test_route_over_a_knowledge_base(tmp_path: Path) -> None:
    folder = tmp_path / "filings"
    folder.mkdir()
    for name, text in [("2023 Q3 AAPL.txt", "Apple Inc.\n\nNet sales were 81.8 billion."),
                       ("2022 Q3 AAPL.txt", "Apple Inc.\n\nNet sales were 83.0 billion."),
                       ("2023 Q3 MSFT.txt", "Microsoft Corporation\n\nRevenue was 56.5 billion.")]:
        (folder / name).write_text(text, encoding="utf-8")
    with KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(64)) as kb:
        kb.ingest([folder])
        catalogue = catalogue_of(kb.store)
        route = route_question("What were Apple's net sales in Q3 2022?", catalogue)
        assert dict(route.fields) == {"company": ("AAPL",), "quarter": ("2022Q3",)}
        hits = kb.search("net sales", k=5, filters=route.filter)
        assert {Path(h.source).name for h in hits} == {"2022 Q3 AAPL.txt"}
        latest = route_question("Microsoft's latest revenue", catalogue)
        assert [Path(h.source).name for h in kb.search("revenue", k=5, filters=latest.filter)] == ["2023 Q3 MSFT.txt"]
