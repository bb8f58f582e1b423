"""Document loaders on real files written by the tests (PDF via reportlab, DOCX via python-docx)."""

from __future__ import annotations

import doctest
import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

import jisik.ingest.loaders as loaders_pkg
from jisik.errors import LoaderError, MissingDependencyError, UnsupportedFormatError
from jisik.ingest.loaders import (
    SUPPORTED_EXTENSIONS,
    LoaderConfig,
    base,
    docx,
    encoding,
    html,
    load,
    load_file,
    markdown,
    pdf,
    relative_id,
    tabular,
)
from jisik.records import Document
from tests.conftest import shared_data

KOREAN = "환불 정책: 구매 후 30일 이내에는 전액 환불됩니다."
CFG = LoaderConfig()


def check_spans(doc: Document) -> None:
    """The loader invariant: sorted, non-overlapping segments inside the text, each a clean part."""
    assert doc.segments, doc.doc_id
    previous_end = 0
    for seg in doc.segments:
        assert previous_end <= seg.start < seg.end <= len(doc.text)
        piece = doc.text[seg.start : seg.end]
        assert piece == piece.strip() and piece
        previous_end = seg.end
    gaps = [doc.text[a.end : b.start] for a, b in zip(doc.segments, doc.segments[1:], strict=False)]
    assert all(gap == "\n\n" for gap in gaps)
    assert doc.content_hash == hashlib.sha256(doc.text.encode()).hexdigest()


def load_one(path: Path, config: LoaderConfig = CFG) -> Document:
    docs = load_file(path, root=path.parent, config=config)
    assert len(docs) == 1
    check_spans(docs[0])
    return docs[0]


def section_of(doc: Document, needle: str) -> str | None:
    at = doc.text.index(needle)
    return next(s.section for s in doc.segments if s.start <= at < s.end)


def page_of(doc: Document, needle: str) -> int | None:
    at = doc.text.index(needle)
    return next(s.page for s in doc.segments if s.start <= at < s.end)


# ------------------------------------------------------------------ PDF


def write_pdf(path: Path, *, encrypt: object = None) -> Path:
    """Three pages: Korean + English + a small table; English prose; a page with no text."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HYSMyeongJo-Medium"))
    c = canvas.Canvas(str(path), encrypt=encrypt)
    c.setTitle("Refund handbook")
    c.setFont("HYSMyeongJo-Medium", 12)
    c.drawString(72, 760, KOREAN)
    c.setFont("Helvetica", 12)
    c.drawString(72, 740, "Refund policy applies to all items.")
    y = 700
    for row in [("Item", "Q1", "Q2"), ("Revenue", "1,200", "1,350"), ("Cost", "800", "900")]:
        for i, cell in enumerate(row):
            c.drawString(72 + i * 120, y, cell)
        y -= 18
    c.showPage()
    c.setFont("Helvetica", 12)
    c.drawString(72, 760, "Shipping takes three business days.")
    c.showPage()
    c.line(72, 700, 300, 700)  # a drawing but no text: like a scanned page
    c.showPage()
    c.save()
    return path


def test_pdf_pages_korean_table_and_empty_page(tmp_path: Path) -> None:
    loaded = load(write_pdf(tmp_path / "handbook.pdf"), root=tmp_path, config=CFG)
    (doc,) = loaded.documents
    check_spans(doc)
    assert doc.doc_id == doc.source == "handbook.pdf"
    assert doc.title == "Refund handbook"
    assert KOREAN in doc.text
    assert page_of(doc, KOREAN) == 1 and page_of(doc, "Shipping takes") == 2
    assert [s.page for s in doc.segments] == [1, 2]
    assert "Revenue 1,200 1,350" in doc.text.splitlines()  # one table row, one line, in order
    assert doc.metadata["page_count"] == 3
    assert doc.metadata["pages_without_text"] == "3"
    assert doc.metadata["ext"] == ".pdf" and doc.metadata["path"] == "handbook.pdf"
    assert any("page(s) 3" in w for w in loaded.warnings)
    assert doc.mtime == (tmp_path / "handbook.pdf").stat().st_mtime


def test_missing_pdf_engine_names_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # makes "import pypdfium2" fail
    with pytest.raises(MissingDependencyError) as info:
        load(write_pdf(tmp_path / "h.pdf"), root=tmp_path, config=CFG)
    assert info.value.hint == "pip install 'pypdfium2'"


def test_encrypted_pdf_is_a_clear_error(tmp_path: Path) -> None:
    from reportlab.lib.pdfencrypt import StandardEncryption

    path = write_pdf(tmp_path / "secret.pdf", encrypt=StandardEncryption("user-pw", ownerPassword="o"))
    with pytest.raises(LoaderError) as info:
        load(path, root=tmp_path, config=CFG)
    assert info.value.path == "secret.pdf"
    assert "encrypted" in info.value.reason and "qpdf" in (info.value.hint or "")


def test_owner_password_only_pdf_still_loads(tmp_path: Path) -> None:
    from reportlab.lib.pdfencrypt import StandardEncryption

    path = write_pdf(tmp_path / "locked.pdf", encrypt=StandardEncryption("", ownerPassword="o", canCopy=0))
    assert KOREAN in load_one(path).text


def test_corrupt_and_truncated_pdfs(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(os.urandom(4096).replace(b"%", b"x"))
    good = write_pdf(tmp_path / "good.pdf").read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(good[: len(good) // 2])
    for path, words in [(junk, "not a PDF"), (cut, "truncated")]:
        with pytest.raises(LoaderError) as info:
            load(path, root=tmp_path, config=CFG)
        assert info.value.path == path.name
        assert words in info.value.reason, info.value.reason


def test_sec_10q_pdf_integration() -> None:
    path = shared_data("sec10q", "docs", "2023 Q3 AAPL.pdf")
    doc = load_one(path)
    assert doc.metadata["page_count"] == 29
    assert doc.doc_id == "2023 Q3 AAPL.pdf"
    assert doc.title == "2023 Q3 AAPL"  # the info title is an SEC accession number: not a title
    assert "Total net sales 81,797 82,959 293,787 304,182" in doc.text.splitlines()
    assert page_of(doc, "Total net sales 81,797") == 4
    assert "Year-over-year iPad net sales" in doc.text  # PDFium's line-end hyphen marker was repaired


# ------------------------------------------------------------------ DOCX


def write_docx(path: Path) -> Path:
    import docx as python_docx

    document = python_docx.Document()
    document.core_properties.title = "Shop policy"
    document.core_properties.author = "Kim"
    document.add_paragraph("Intro before any heading.")
    document.add_heading("Returns", level=1)
    document.add_paragraph(KOREAN)
    document.add_heading("Refunds", level=2)
    document.add_paragraph("Refunds are paid within 5 days.")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([("Item", "Price"), ("Mug", "12,000")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_heading("Shipping", level=1)
    document.add_paragraph("We ship in Korea only.")
    document.save(str(path))
    return path


def test_docx_headings_tables_and_order(tmp_path: Path) -> None:
    doc = load_one(write_docx(tmp_path / "policy.docx"))
    assert doc.title == "Shop policy" and doc.metadata["author"] == "Kim"
    assert section_of(doc, "Intro before") is None
    assert section_of(doc, KOREAN) == "Returns"
    assert section_of(doc, "Refunds are paid") == "Returns > Refunds"
    assert section_of(doc, "Mug | 12,000") == "Returns > Refunds"
    assert section_of(doc, "We ship") == "Shipping"
    order = [doc.text.index(s) for s in ["Intro", KOREAN, "Refunds are paid", "Item | Price", "We ship"]]
    assert order == sorted(order)


def test_docx_title_falls_back_to_title_style(tmp_path: Path) -> None:
    import docx as python_docx

    document = python_docx.Document()
    document.core_properties.title = ""
    document.add_heading("사내 규정", level=0)  # level 0 = the "Title" style
    document.add_paragraph("본문")
    document.save(str(tmp_path / "rules.docx"))
    doc = load_one(tmp_path / "rules.docx")
    assert doc.title == "사내 규정" and section_of(doc, "본문") is None


def test_corrupt_docx(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(LoaderError) as info:
        load(path, root=tmp_path, config=CFG)
    assert "not a valid .docx" in info.value.reason


# ------------------------------------------------------------------ HTML

PAGE = """<!doctype html><html lang="ko"><head><meta charset="{charset}">
<title>반품 안내 | ACME</title><style>body {{ color: red }}</style>
<script>var tracking = "SCRIPT_NOISE";</script></head>
<body>
<header><a href="/">ACME home</a> HEADER_NOISE</header>
<nav><ul><li>NAV_NOISE</li></ul></nav>
<div class="cookie-banner">COOKIE_NOISE</div>
<main>
  <h1>반품</h1><p>{body}</p>
  <h2>Refunds</h2><p>Paid within <b>5</b> days.</p>
  <table><tr><th>Item</th><th>Price</th></tr><tr><td>Mug</td><td>12,000</td></tr></table>
  <h2>Exchanges</h2><ul><li>One</li><li>Two</li></ul>
  <!-- COMMENT_NOISE -->
</main>
<aside>ASIDE_NOISE</aside><form><input value="FORM_NOISE"></form>
<footer>FOOTER_NOISE</footer><noscript>NOSCRIPT_NOISE</noscript>
</body></html>"""


def test_html_main_text_sections_and_no_noise(tmp_path: Path) -> None:
    path = tmp_path / "returns.html"
    path.write_text(PAGE.format(charset="utf-8", body=KOREAN), encoding="utf-8")
    doc = load_one(path)
    assert doc.title == "반품 안내 | ACME"
    assert "NOISE" not in doc.text and "ACME home" not in doc.text
    assert section_of(doc, KOREAN) == "반품"
    assert section_of(doc, "Paid within 5 days.") == "반품 > Refunds"
    assert "Mug | 12,000" in doc.text.splitlines()
    assert section_of(doc, "- Two") == "반품 > Exchanges"
    assert doc.metadata["lang"] == "ko" and doc.metadata["encoding"] == "utf-8"


def test_euc_kr_html_respects_meta_charset(tmp_path: Path) -> None:
    body = "똠방각하 " + KOREAN  # 똠 is outside strict EUC-KR; browsers (and we) read euc-kr as CP949
    path = tmp_path / "old.htm"
    path.write_bytes(PAGE.format(charset="euc-kr", body=body).encode("cp949"))
    doc = load_one(path)
    assert body in doc.text and doc.metadata["encoding"] == "cp949"


def test_html_with_a_wrong_meta_charset_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "resaved.html"
    path.write_bytes(PAGE.format(charset="euc-kr", body=KOREAN).encode("utf-8"))
    doc = load_one(path)
    assert KOREAN in doc.text and doc.metadata["encoding"] == "utf-8"


# ------------------------------------------------------------------ Markdown and text

MARKDOWN = """---
title: Returns guide
version: 3
draft: false
tags:
  - shop
---
Preface text.

# Shop

## Returns

Return within 30 days.

### Refunds

```python
# not a heading
refund()
```

Setext heading
--------------

Under setext.
"""


def test_markdown_heading_path_front_matter_and_fences(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    doc = load_one(path)
    assert doc.title == "Returns guide"
    assert doc.metadata["version"] == 3 and doc.metadata["draft"] is False
    assert "title:" not in doc.text and "tags" not in doc.text
    assert section_of(doc, "Preface text.") is None
    assert section_of(doc, "Return within") == "Shop > Returns"
    assert section_of(doc, "# not a heading") == "Shop > Returns > Refunds"
    assert section_of(doc, "Under setext.") == "Shop > Setext heading"
    assert "----" not in doc.text and "## Returns" not in doc.text


def test_markdown_title_is_first_h1_without_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "notes.markdown"
    path.write_text("intro\n\n# 공지\n\n본문", encoding="utf-8")
    doc = load_one(path)
    assert doc.title == "공지" and section_of(doc, "본문") == "공지"


def test_cp949_text_file_decodes_to_the_original(tmp_path: Path) -> None:
    original = f"{KOREAN}\n둘째 줄: 똠방각하.\n\nEnglish line."
    path = tmp_path / "memo.txt"
    path.write_bytes(original.replace("\n", "\r\n").encode("cp949"))
    doc = load_one(path)
    assert doc.text == original and doc.metadata["encoding"] == "cp949"
    assert doc.title == "memo"


def test_explicit_encoding_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + KOREAN.encode())
    assert load_one(path).metadata["encoding"] == "utf-8-sig"
    path.write_bytes(KOREAN.encode("cp949"))
    with pytest.raises(LoaderError, match="cannot decode as utf-8"):
        load(path, root=tmp_path, config=LoaderConfig(encoding="utf-8"))


def test_binary_file_with_text_extension_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(LoaderError, match="binary file"):
        load(path, root=tmp_path, config=CFG)


def test_latin1_is_not_mistaken_for_cp949() -> None:
    text = (
        "La société a été créée en 1990 à Paris. Elle développe des logiciels de gestion pour les "
        "entreprises européennes, et emploie près de deux cents personnes."
    )
    decoded = encoding.decode_bytes(text.encode("latin-1"))  # falls through to charset-normalizer
    assert decoded.text == text and decoded.encoding in ("cp1252", "latin_1", "iso8859_15")
    # "créée" alone is valid CP949 (é+é is a Hanja); the Hangul-share check must refuse it.
    assert "créée".encode("latin-1").decode("cp949") != "créée"
    assert encoding.decode_bytes("créée créée".encode("latin-1")).encoding != "cp949"


# ------------------------------------------------------------------ CSV / TSV / JSONL


def test_csv_one_document_per_row(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "faq.csv"
    rows = [
        "id,question,text,category",
        f"A1,환불?,{KOREAN},billing",
        "A2,No text,,billing",
        'A3,Ship?,"Ships in 3 days, usually",logistics',
    ]
    path.write_bytes("\r\n".join(rows).encode("cp949"))
    loaded = load(path, root=tmp_path, config=LoaderConfig(id_field="id"))
    docs = loaded.documents
    for doc in docs:
        check_spans(doc)
    assert [d.doc_id for d in docs] == ["faq.csv#A1", "faq.csv#A3"]
    assert docs[0].text == KOREAN and docs[0].source == "faq.csv"
    assert docs[0].metadata["question"] == "환불?" and docs[0].metadata["category"] == "billing"
    assert docs[0].metadata["row"] == 1 and docs[0].metadata["encoding"] == "cp949"
    assert "id" not in docs[0].metadata and "text" not in docs[0].metadata
    assert docs[1].segments[0].section == "row 3"
    assert loaded.warnings == ["faq.csv: row 2: no text in field 'text', row skipped"]
    assert len(load_file(path, root=tmp_path, config=LoaderConfig(id_field="id"))) == 2
    assert "row 2: no text" in caplog.text


def test_tsv_multi_field_text_and_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "kb.tsv"
    path.write_text("title\tbody\tscore\nFirst\tAlpha body\t1\n\t\t\nSecond\tBeta body\t2\n", encoding="utf-8")
    config = LoaderConfig(text_field=["title", "body"], title_field=None, metadata_fields=["score"])
    loaded = load(path, root=tmp_path, config=config)
    docs = loaded.documents
    assert [d.doc_id for d in docs] == ["kb.tsv#1", "kb.tsv#2"]  # the blank line is not a record
    assert docs[1].text == "Second\n\nBeta body"
    assert [s.section for s in docs[1].segments] == ["row 2 > title", "row 2 > body"]
    assert docs[0].metadata["score"] == "1" and docs[0].title == "kb.tsv #1"
    check_spans(docs[1])


def test_jsonl_records_bad_lines_and_missing_text(tmp_path: Path) -> None:
    path = tmp_path / "tickets.jsonl"
    lines = [
        json.dumps({"id": 7, "text": "Printer jams", "title": "Jam", "priority": 2, "tags": ["hw"]}),
        "",
        "{not json",
        json.dumps({"id": 8, "priority": 1}),
        json.dumps({"id": 9, "text": KOREAN, "ok": True}, ensure_ascii=False),
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    loaded = load(path, root=tmp_path, config=LoaderConfig(id_field="id"))
    docs = loaded.documents
    assert [d.doc_id for d in docs] == ["tickets.jsonl#7", "tickets.jsonl#9"]
    assert docs[0].title == "Jam" and docs[0].metadata["priority"] == 2 and "tags" not in docs[0].metadata
    assert docs[1].metadata["ok"] is True and docs[1].text == KOREAN
    assert any("line 3: invalid JSON" in w for w in loaded.warnings)
    assert any("line 4: no text in field 'text'" in w for w in loaded.warnings)


def test_tabular_file_without_the_text_field_names_the_columns(tmp_path: Path) -> None:
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"body": "x", "id": 1}\n{"body": "y"}\n', encoding="utf-8")
    csv_path = tmp_path / "b.csv"
    csv_path.write_text("body,id\nx,1\n", encoding="utf-8")
    for path in (jsonl, csv_path):
        with pytest.raises(LoaderError) as info:
            load(path, root=tmp_path, config=CFG)
        assert "'text'" in info.value.reason and "'body', 'id'" in info.value.reason
        assert "text_field" in (info.value.hint or "")


def test_duplicate_ids_are_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("id,text\n1,a\n1,b\n", encoding="utf-8")
    loaded = load(path, root=tmp_path, config=LoaderConfig(id_field="id"))
    assert [d.text for d in loaded.documents] == ["a"] and "duplicate id '1'" in loaded.warnings[0]


# ------------------------------------------------------------------ registry, paths, errors


def test_empty_file_gives_no_documents_and_a_warning(tmp_path: Path) -> None:
    for name in ("empty.txt", "empty.pdf", "empty.csv"):
        (tmp_path / name).write_bytes(b"")
        loaded = load(tmp_path / name, root=tmp_path, config=CFG)
        assert loaded.documents == [] and "empty file" in loaded.warnings[0]


def test_unknown_and_convertible_extensions(tmp_path: Path) -> None:
    for name, hint in [
        ("data.xyz", "supported: .csv"),
        ("old.doc", "save it as .docx"),
        ("README", "supported"),
    ]:
        (tmp_path / name).write_bytes(b"x")
        with pytest.raises(UnsupportedFormatError) as info:
            load(tmp_path / name, root=tmp_path, config=CFG)
        assert info.value.path == name and hint in (info.value.hint or "")
    assert ".pdf" in SUPPORTED_EXTENSIONS and ".docx" in SUPPORTED_EXTENSIONS


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="file not found"):
        load(tmp_path / "gone.txt", root=tmp_path, config=CFG)
    (tmp_path / "folder.md").mkdir()
    with pytest.raises(LoaderError, match="is a directory"):
        load(tmp_path / "folder.md", root=tmp_path, config=CFG)


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: the tests may run as root, who can read a chmod 000 file.
    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    path = tmp_path / "secret.txt"
    path.write_text("x")
    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(LoaderError) as info:
        load(path, root=tmp_path, config=CFG)
    assert info.value.reason == "permission denied" and info.value.path == "secret.txt"


def test_library_exceptions_are_wrapped(tmp_path: Path) -> None:
    def explode(src: base.Source, config: LoaderConfig) -> base.Loaded:
        raise ValueError("boom")

    (tmp_path / "a.txt").write_text("hello")
    with loaders_pkg.LOADERS.override(".txt", explode), pytest.raises(LoaderError) as info:
        load(tmp_path / "a.txt", root=tmp_path, config=CFG)
    assert info.value.reason == "cannot parse .txt file (ValueError: boom)"
    assert isinstance(info.value.__cause__, ValueError)


def test_doc_ids_are_relative_posix_paths(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    path = tmp_path / "sub" / "deeper" / "Note.TXT"
    path.write_text("hello", encoding="utf-8")
    doc = load_file(path, root=tmp_path, config=CFG)[0]
    assert doc.doc_id == "sub/deeper/Note.TXT" and doc.metadata["ext"] == ".txt"
    outside = relative_id(path, tmp_path / "other")
    assert outside == path.absolute().as_posix()


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError):
        LoaderConfig(encoding="no-such-codec")
    with pytest.raises(ValidationError):
        LoaderConfig.model_validate({"text_fields": "body"})  # typo: extra keys are refused
    with pytest.raises(ValidationError):
        LoaderConfig(text_field=[])
    assert LoaderConfig.model_validate({"text_field": ["a", "b"]}).text_fields == ["a", "b"]


@pytest.mark.parametrize("module", [base, encoding, markdown, html, pdf, docx, tabular, loaders_pkg])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0
