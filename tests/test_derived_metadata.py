"""Metadata derived from file names, titles and first pages (issue 14, part 4): the forms people write periods
and companies in, Korean and English, file-name noise, never over a value already set, and filterable through
``kb.search(..., filters=...)`` (hashing embedder: our own logic, fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jisik.config import MetadataConfig, load_config
from jisik.embed.hashing import HashingEmbedder
from jisik.errors import ConfigError
from jisik.ingest.derived_metadata import (
    DerivedMetadata,
    add_derived_metadata,
    alias_key,
    clean_file_name,
    derive_metadata,
    find_periods,
    first_page_company,
)
from jisik.kb import KnowledgeBase
from jisik.records import Document, Segment


@pytest.mark.parametrize(("text", "quarter"), [
    ("2023 Q3", "2023Q3"), ("Q3 2023", "2023Q3"), ("3Q23", "2023Q3"), ("2023Q3", "2023Q3"), ("2023-Q3", "2023Q3"),
    ("Q3'23", "2023Q3"), ("Q3 FY23", "2023Q3"), ("FY2023 Q3", "2023Q3"), ("FY23 Q3", "2023Q3"), ("3Q 2023", "2023Q3"),
    ("2023.3Q", "2023Q3"), ("2023년 3분기", "2023Q3"), ("2023년 1분기", "2023Q1"), ("2023년도 제1분기", "2023Q1"),
    ("23년 4분기", "2023Q4"), ("2023 3분기", "2023Q3"), ("third quarter of 2023", "2023Q3"),
    ("first quarter of fiscal 2024", "2024Q1"), ("fiscal 2023 second quarter", "2023Q2"), ("2023_Q3", "2023Q3"),
])
def test_quarter_forms(text: str, quarter: str) -> None:
    assert [p.value for p in find_periods(text) if p.kind == "quarter"] == [quarter]


@pytest.mark.parametrize(("text", "date"), [
    ("2023-07-01", "2023-07-01"), ("2023.7.1", "2023-07-01"), ("2023/07/01", "2023-07-01"), ("20230701", "2023-07-01"),
    ("2023년 7월 1일", "2023-07-01"), ("07/01/2023", "2023-07-01"), ("25/12/2023", "2023-12-25"),
    ("July 1, 2023", "2023-07-01"), ("1 July 2023", "2023-07-01"), ("Sept. 30, 2023", "2023-09-30"),
])
def test_date_forms(text: str, date: str) -> None:
    assert [p.value for p in find_periods(text) if p.kind == "date"] == [date]


@pytest.mark.parametrize("text", ["2023-02-30", "20231399", "item 23 Q", "page 3 of 12", "v2.3.1", "10-Q"])
def test_not_a_period(text: str) -> None:
    assert [p for p in find_periods(text) if p.kind in ("quarter", "date")] == []


def test_fiscal_year_and_lone_year() -> None:
    assert derive_metadata(None, "FY2023_annual_report.pdf").year == 2023
    assert derive_metadata(None, "2023 회계연도 감사보고서.pdf").year == 2023
    assert derive_metadata("Budget 2021", None).year == 2021
    # two different years: the file is about neither alone
    assert derive_metadata(None, "comparison 2021 vs 2022.pdf").year is None


@pytest.mark.parametrize(("file_name", "title", "expected"), [
    ("2023 Q3 AAPL.pdf", None, DerivedMetadata(2023, "2023Q3", None, "AAPL")),
    ("AAPL-2023-Q3-final.pdf", None, DerivedMetadata(2023, "2023Q3", None, "AAPL")),
    ("aapl_10q_2023_q3_v2 (1).pdf", None, DerivedMetadata(2023, "2023Q3", None, "aapl")),
    ("2023 Q1 MSFT.pdf", "Form 10-Q for Microsoft Corp filed 01/24/2023",
     DerivedMetadata(2023, "2023Q1", "2023-01-24", "MSFT", "Microsoft Corp")),
    ("2023 Q2 INTC.pdf", "10-Q - 07/28/2023 - Intel Corporation",
     DerivedMetadata(2023, "2023Q2", "2023-07-28", "INTC", "Intel Corporation")),
    ("삼성전자_2023년_3분기_분기보고서_최종.pdf", None, DerivedMetadata(2023, "2023Q3", None, "삼성전자")),
    ("삼성전자 3Q23 실적발표.pdf", None, DerivedMetadata(2023, "2023Q3", None, "삼성전자")),
    ("(주)카카오_분기보고서.pdf", "2023년 1분기 분기보고서", DerivedMetadata(2023, "2023Q1", None, "㈜카카오")),
    ("카카오_2023.07.01_보도자료.hwp", None, DerivedMetadata(2023, None, "2023-07-01", "카카오")),
    ("report_20230701_v2_final.pdf", None, DerivedMetadata(2023, None, "2023-07-01", None)),
    ("Q3 FY23 earnings call transcript - NVIDIA.pdf", None, DerivedMetadata(2023, "2023Q3", None, "NVIDIA")),
    ("handbook_v3.docx", "Employee handbook", DerivedMetadata()),
    ("반품정책.md", None, DerivedMetadata()),
    ("draft-final-copy.pdf", None, DerivedMetadata()),
])
def test_derive_from_file_name_and_title(file_name: str, title: str | None, expected: DerivedMetadata) -> None:
    assert derive_metadata(title, file_name) == expected


def test_file_name_wins_over_title() -> None:
    derived = derive_metadata("Quarterly report 2022 Q4", "reports/2023 Q1 AAPL.pdf")
    assert (derived.quarter, derived.year, derived.company) == ("2023Q1", 2023, "AAPL")


def test_clean_file_name() -> None:
    assert clean_file_name("a/b/2023 Q3 AAPL - Copy.pdf") == "2023 Q3 AAPL"
    assert clean_file_name("보고서 사본.hwp") == "보고서"


def test_first_page_names_the_company() -> None:
    cover = ("UNITED STATES\nSECURITIES AND EXCHANGE COMMISSION\nFORM 10-Q\nFor the quarterly period ended "
             "July 1, 2023\nCommission File Number: 001-36743\nApple Inc.\n(Exact name of Registrant as specified in "
             "its charter)\nThe Nasdaq Stock Market LLC")
    assert first_page_company(cover) == "Apple Inc."
    assert first_page_company("AMAZON.COM, INC.\n(Exact name)") == "AMAZON.COM, INC."
    assert first_page_company("반품 정책\n반품은 14일 이내에 가능합니다.") is None
    derived = derive_metadata("2023 Q3 AAPL", "2023 Q3 AAPL.pdf", cover)
    assert (derived.company, derived.company_name) == ("AAPL", "Apple Inc.")
    # no company in the labels: the cover's name is the company
    assert derive_metadata(None, "cover.pdf", "주식회사 카카오\n분기보고서").company == "주식회사 카카오"


def test_aliases_make_names_canonical() -> None:
    derived = derive_metadata(None, "Apple 2023 Q3.pdf", aliases={"AAPL": ["Apple", "애플"]})
    assert (derived.company, derived.company_name) == ("AAPL", "Apple")
    assert alias_key("NVIDIA CORPORATION") == alias_key("nvidia") == "nvidia"


def _doc(**metadata: object) -> Document:
    text = "Apple Inc.\n(Exact name of Registrant)\n\nNet sales were up."
    return Document(doc_id="q/2023 Q3 AAPL.pdf", source="q/2023 Q3 AAPL.pdf", text=text, title=None,
                    segments=[Segment(0, 37, page=1), Segment(39, len(text), page=2)], metadata=dict(metadata))  # type: ignore[arg-type]


def test_never_overwrites_and_can_be_turned_off() -> None:
    doc = _doc(company="Apple", quarter="")
    added = add_derived_metadata(doc, MetadataConfig())
    assert doc.metadata["company"] == "Apple"  # the user's
    assert doc.metadata["quarter"] == "2023Q3"  # empty counts as unset
    assert doc.metadata["company_name"] == "Apple Inc."  # from page 1 only
    assert set(added) == {"year", "quarter", "company_name"}
    off = _doc()
    assert add_derived_metadata(off, MetadataConfig(derive=False)) == [] and off.metadata == {}
    no_page = _doc()
    add_derived_metadata(no_page, MetadataConfig(first_page_chars=0))
    assert "company_name" not in no_page.metadata


def test_config_section() -> None:
    config = load_config(None, environ={}, overrides={"metadata": {"aliases": {"AAPL": ["Apple"]}}})
    assert config.metadata.derive and config.metadata.aliases == {"AAPL": ["Apple"]}
    with pytest.raises(ConfigError, match="derive_metdata"):
        load_config(None, environ={}, overrides={"metadata": {"derive_metdata": True}})


def test_derived_fields_are_filterable(tmp_path: Path) -> None:
    folder = tmp_path / "filings"
    folder.mkdir()
    for name, text in [("2023 Q3 AAPL.txt", "Apple net sales were 81.8 billion."),
                       ("2023 Q1 AAPL.txt", "Apple net sales were 117.2 billion."),
                       ("삼성전자_2023년_1분기_보고서.txt", "삼성전자 매출은 63.7조원입니다."),
                       ("handbook.txt", "Net sales are reported quarterly.")]:
        (folder / name).write_text(text, encoding="utf-8")
    with KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(64)) as kb:
        kb.ingest([folder])
        def sources(**filters: object) -> set[str]:
            return {Path(h.source).name for h in kb.search("net sales 매출", k=10, filters=filters)}
        assert sources(quarter="2023Q3") == {"2023 Q3 AAPL.txt"}
        assert sources(company="AAPL") == {"2023 Q3 AAPL.txt", "2023 Q1 AAPL.txt"}
        assert sources(quarter="2023Q1") == {"2023 Q1 AAPL.txt", "삼성전자_2023년_1분기_보고서.txt"}
        assert sources(company="삼성전자", year=2023) == {"삼성전자_2023년_1분기_보고서.txt"}
        assert sources(quarter={"gte": "2023Q2"}) == {"2023 Q3 AAPL.txt"}
        hit = kb.search("Apple net sales", k=1, filters={"quarter": "2023Q3"})[0]
        assert hit.metadata["company"] == "AAPL" and hit.metadata["year"] == 2023
        combos = kb.store.metadata_combinations(["company", "quarter"])
        assert {"company": "AAPL", "quarter": "2023Q3"} in combos and len(combos) == 3


def test_in_memory_documents_get_derived_fields_too(tmp_path: Path) -> None:
    with KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(64)) as kb:
        kb.add_documents([Document(doc_id="ir/1", source="ir", title="카카오 2023년 2분기 실적", text="매출 2조원"),
                          Document(doc_id="ir/2", source="ir", title="카카오 2023년 3분기 실적", text="매출 2조원",
                                   metadata={"quarter": "2023Q4"})])
        assert [h.doc_id for h in kb.search("매출", k=5, filters={"quarter": "2023Q2"})] == ["ir/1"]
        assert [h.doc_id for h in kb.search("매출", k=5, filters={"quarter": "2023Q4"})] == ["ir/2"]  # the user's
