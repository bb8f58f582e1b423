"""PDF text as real documents lay it out (issue 10): line-end hyphens and page furniture.

Page numbers leave the text; running headers and footers stay (they name the document, which helps
retrieval: docs/benchmarks-answer.md), marked in the metadata so that the answerer never quotes them.

The PDFs are written here with reportlab, one ``drawString`` per line, so the line breaks, hyphens,
running headers and page numbers are where a typesetter would put them; PDFium then reads them back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jisik.embed.hashing import HashingEmbedder
from jisik.generate.extractive import ExtractiveAnswerer
from jisik.ingest.loaders import LoaderConfig, load
from jisik.ingest.loaders.hyphens import MARK, dehyphenate, mark_line_end_hyphens
from jisik.kb import KnowledgeBase
from jisik.records import Document
from jisik.text.analyzers import get_analyzer
from jisik.text.furniture import metadata_lines
from tests.conftest import shared_data

KOREAN_FONT = "HYSMyeongJo-Medium"


def _pdf(path: Path, pages: list[list[str]], *, font: str = "Helvetica") -> Path:
    """One line per string, top to bottom; a page per list."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if font == KOREAN_FONT:
        pdfmetrics.registerFont(UnicodeCIDFont(KOREAN_FONT))
    c = canvas.Canvas(str(path))
    for lines in pages:
        c.setFont(font, 11)
        y = 780
        for line in lines:
            c.drawString(72, y, line)
            y -= 16
        c.showPage()
    c.save()
    return path


def _load(path: Path) -> Document:
    (doc,) = load(path, root=path.parent, config=LoaderConfig()).documents
    return doc


def _page_texts(doc: Document) -> dict[int, str]:
    return {s.page: doc.text[s.start : s.end] for s in doc.segments if s.page is not None}


# ------------------------------------------------------------------ line-end hyphens

PAPER = [
    "Generative adversarial networks train one generator against several discrim-",
    "inators. Our model needs fewer param-",
    "eters than the state-of-the-art baseline, and its general-",
    "ization is better than that of the state-of-the-",
    "art baseline with more parameters and discriminators. It is well-",
    "known that the COVID-",
    "19 data set is hard, and it is well known why.",
]


def test_soft_line_end_hyphens_are_joined_and_compounds_keep_theirs(tmp_path: Path) -> None:
    doc = _load(_pdf(tmp_path / "paper.pdf", [PAPER]))
    words = doc.text.split()
    for word in ("discriminators.", "parameters", "generalization"):
        assert word in words, doc.text
    assert "param-eters" not in doc.text and "discrim-inators" not in doc.text
    assert doc.text.count("state-of-the-art") == 2
    assert "well-known" in doc.text and "COVID-19" in doc.text
    assert MARK not in doc.text and "\x02" not in doc.text


def test_joined_words_are_found_by_bm25(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    _pdf(tmp_path / "docs" / "paper.pdf", [PAPER])
    with KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(64)) as kb:
        kb.ingest([tmp_path / "docs"])
        hits = kb.search("generalization", mode="bm25", k=1)  # written only as "general-|ization"
    assert hits and "generalization" in hits[0].text


@pytest.mark.parametrize("spelling", ["\ufffe", "\x02", "-\n", "- \n  "])
def test_every_spelling_of_a_line_end_hyphen_gets_the_same_verdict(spelling: str) -> None:
    page = f"fewer param{spelling}eters; well known; a well{spelling}known fact; COVID{spelling}19"
    assert dehyphenate([mark_line_end_hyphens(page)]) == ["fewer parameters; well known; a well-known fact; COVID-19"]


def test_soft_hyphen_character_is_always_discretionary() -> None:
    assert mark_line_end_hyphens("stock\u00adbased and pa\u00ad\nrameters") == "stockbased and parameters"


def test_sec_filing_compounds_keep_their_hyphens() -> None:
    """In the 10-Qs every line-end hyphen is a compound's: nothing may be glued together."""
    doc = _load(shared_data("sec10q", "docs", "2023 Q3 AMZN.pdf"))
    assert "stock-based" in doc.text and "stockbased" not in doc.text
    assert "non-cancellable" in doc.text or "noncancellable" not in doc.text
    assert MARK not in doc.text


# ------------------------------------------------------------------ page furniture

BODIES = [
    ["Net sales rose 8% in the first quarter.", "iPhone demand was strong in Greater China.", "Margins held up."],
    ["Operating expenses were $14,316 million.", "Research spending grew faster than sales.", "Headcount was flat."],
    ["Cash and equivalents were $28,408 million.", "The company repaid $2.5 billion of notes.", "No new debt."],
    ["Gross margin was 44.3% for the quarter.", "Services carried the mix.", "Costs of components fell."],
    ["Income taxes were $3,852 million.", "The effective tax rate was 15.5%.", "Audits continue abroad."],
    ["Dividends of $0.24 per share were declared.", "Buybacks totalled $19.1 billion.", "The board met twice."],
]


def _report_pages() -> list[list[str]]:
    """A report whose pages carry a running header, their own body text, and a page number."""
    return [[f"ACME Corp. | Q1 2024 Form 10-Q | {n}", *body, f"{n}"] for n, body in enumerate(BODIES, start=1)]


def test_page_numbers_leave_the_text_and_running_headers_are_marked(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    pages = _report_pages()
    _pdf(folder / "report.pdf", pages)
    doc = _load(folder / "report.pdf")
    assert not any(line.strip().isdigit() for line in doc.text.splitlines())  # page numbers are gone
    # the running header stays (it names the document for retrieval) and is marked for the answerer
    assert metadata_lines(doc.metadata) == ["ACME Corp. | Q1 2024 Form 10-Q | 1"]
    # segments still label exactly each page's text: header and body, without the page number
    assert _page_texts(doc) == {i: "\n".join(lines[:-1]) for i, lines in enumerate(pages, start=1)}
    with KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(64)) as kb:
        kb.ingest([folder])
        hits = kb.search("What were ACME's net sales in its Q1 2024 Form 10-Q?", mode="bm25", k=6)
    assert hits and not any(line.strip().isdigit() for h in hits for line in h.text.splitlines())
    for hit in hits:  # every chunk lies inside the page it cites
        assert hit.text in _page_texts(doc)[hit.page]
    answerer = ExtractiveAnswerer(None, get_analyzer("ko-en"), min_score=0.0)  # any quote, to see which
    result = answerer.answer("What were ACME's net sales in its Q1 2024 Form 10-Q?", hits)
    assert result.sentences and all("ACME Corp. |" not in s.text for s in result.sentences)


def test_korean_running_header_and_dash_page_numbers(tmp_path: Path) -> None:
    pages = [["주식회사 지식마켓 | 제15기 1분기 보고서",
              f"{n}. 이 장은 {n}번째 사업 부문의 실적을 설명한다.", f"매출액은 {n * 1000:,}원이다.", f"- {n} -"]
             for n in range(1, 5)]
    doc = _load(_pdf(tmp_path / "보고서.pdf", pages, font=KOREAN_FONT))
    assert "- 2 -" not in doc.text
    assert metadata_lines(doc.metadata) == ["주식회사 지식마켓 | 제15기 1분기 보고서"]
    assert _page_texts(doc)[3].endswith("매출액은 3,000원이다.")


def test_a_line_that_recurs_mid_page_is_not_furniture(tmp_path: Path) -> None:
    """Only the edges of a page hold furniture; the same words inside the body are content."""
    pages = [[f"Chapter {n}", *body[:2], "See the notes to the statements.", body[2], f"{n}"]
             for n, body in enumerate(BODIES, start=1)]
    doc = _load(_pdf(tmp_path / "book.pdf", pages))
    assert doc.text.count("See the notes to the statements.") == len(BODIES)
    assert metadata_lines(doc.metadata) == ["Chapter 1"]  # "Chapter #" starts every page
    assert all(line in doc.text for body in BODIES for line in body)


def test_short_documents_are_left_alone(tmp_path: Path) -> None:
    pages = [["Memo | Page 1", "Body one.", "1"], ["Memo | Page 2", "Body two.", "2"]]
    doc = _load(_pdf(tmp_path / "memo.pdf", pages))
    assert "Memo | Page 1" in doc.text and "Memo | Page 2" in doc.text and "1" in doc.text.split()
    assert not metadata_lines(doc.metadata)
