"""PDF (``.pdf``): text per page, ``Segment.page`` 1-based, pages joined by a blank line.

Each page's text is normalised (ligatures, controls, line ends), page numbers are left out and running
headers and footers marked in ``metadata["page_furniture"]`` for the answerer (:mod:`~jisik.text.furniture`),
and words broken by a line-end hyphen are joined or keep their hyphen (:mod:`~jisik.ingest.loaders.hyphens`),
before the pages are joined, so segments always label exactly the text kept.

Engine: pypdfium2 (Google's PDFium; Apache-2.0/BSD-3). Measured on 20 SEC 10-Q filings
(docs/benchmarks-pdf.md) it was the fastest permissive-licence library by an order of magnitude
and kept every probed table row on one line, label and numbers in order. pdfplumber matched its
text at about 40x the CPU time; pypdf was 16x slower and failed on 2 of the 20 files; PyMuPDF is
AGPL-3.0. ``_ENGINES`` (and ``[loaders] pdf_engine``) is where another engine would plug in.

Pages without a text layer (scans) are listed in ``metadata["pages_without_text"]`` ("3-5,9");
they need OCR, which is outside this loader.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from jisik._lazy import require
from jisik.config import LoaderConfig
from jisik.errors import LoaderError
from jisik.ingest.loaders.base import Loaded, Source, TextBuilder, single
from jisik.ingest.loaders.hyphens import dehyphenate, mark_line_end_hyphens
from jisik.records import MetadataValue
from jisik.text.furniture import (
    METADATA_KEY,
    furniture_examples,
    furniture_shapes,
    is_page_number,
    strip_furniture,
)

# PDFium is not thread-safe (pypdfium2 docs, "Incompatibility with Threading"); one lock keeps a
# threaded ingest from crashing the process. Parallel ingest should use processes.
_PDFIUM_LOCK = threading.Lock()

_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_JUNK_TITLE = re.compile(
    # Tool placeholders, file names, and titles with no letters (SEC accession numbers such as
    # "0000320193-23-000077"): the file name is a better label than any of them.
    r"^(untitled.*|document\d*|microsoft (word|powerpoint|excel) - .*|.*\.(docx?|pptx?|xlsx?|pdf|indd|tmp)|[\W\d_]+)$",
    re.IGNORECASE,
)
_DECRYPT_HINT = "decrypt it first, e.g. qpdf --decrypt --password=PASSWORD in.pdf out.pdf, and ingest the copy"


@dataclass(slots=True)
class _Extracted:
    pages: list[str]
    info: dict[str, str] = field(default_factory=dict)  # Title, Author from the document info


def normalise_pdf_text(text: str) -> str:
    """Repair what PDF text layers commonly carry: ligatures, controls, line ends; mark line-end hyphens.

    PDFium reports a line-end hyphen as U+FFFE (or U+0002) and joins the two lines; whether it is a
    compound's hyphen or a word's syllable break is decided later, on the whole document
    (:func:`~jisik.ingest.loaders.hyphens.dehyphenate`), so here it only becomes one marker.

    >>> normalise_pdf_text("stock\\x02based e\\ufb03cient\\x0cnext\\r\\nline")
    'stock\\ufffebased efficient\\nnext\\nline'
    """
    text = text.replace("\x0c", "\n").translate(_LIGATURES).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", mark_line_end_hyphens(text))


def page_ranges(pages: list[int]) -> str:
    """Compact 1-based page list for metadata (a scalar, so it can be stored and filtered).

    >>> page_ranges([1, 2, 3, 5, 7, 8])
    '1-3,5,7-8'
    """
    runs: list[list[int]] = []
    for page in sorted(pages):
        if runs and page == runs[-1][1] + 1:
            runs[-1][1] = page
        else:
            runs.append([page, page])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def looks_truncated(data: bytes) -> bool:
    """A complete PDF ends with ``%%EOF`` (a little trailing junk is common and allowed).

    >>> looks_truncated(b"%PDF-1.4 ... %%EOF\\n"), looks_truncated(b"%PDF-1.4 ... 0 obj")
    (False, True)
    """
    return b"%%EOF" not in data[-2048:]


def _open_error(src: Source, code: int | None, message: str) -> LoaderError:
    """A LoaderError that says why PDFium could not open the file, in words a user can act on."""
    pdfium = require("pypdfium2.raw", package="pypdfium2")
    # err_code is absent on older pypdfium2 releases; the message then still names the cause.
    if code == pdfium.FPDF_ERR_PASSWORD or (code is None and "password" in message.lower()):
        return LoaderError(src.rel, "encrypted PDF: it needs a password to open", hint=_DECRYPT_HINT)
    if code == pdfium.FPDF_ERR_SECURITY:
        return LoaderError(src.rel, "PDF uses an unsupported security handler", hint=_DECRYPT_HINT)
    if b"%PDF" not in src.data[:1024]:  # the header may follow a little junk
        return LoaderError(src.rel, "not a PDF file (no %PDF header); the file is corrupt or misnamed")
    if looks_truncated(src.data):
        return LoaderError(
            src.rel,
            "damaged PDF: the file seems truncated (no %%EOF marker)",
            hint="download or export the file again",
        )
    return LoaderError(src.rel, f"damaged PDF, PDFium cannot read it ({message})")


def _extract_pypdfium2(src: Source) -> _Extracted:
    pdfium = require("pypdfium2", package="pypdfium2")
    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(src.data)
        except pdfium.PdfiumError as exc:
            raise _open_error(src, getattr(exc, "err_code", None), str(exc)) from exc
        try:
            pages = []
            for page in pdf:
                textpage = page.get_textpage()
                pages.append(textpage.get_text_range())
                textpage.close()  # free native memory page by page: 10-Qs run to 80 pages
                page.close()
            meta = pdf.get_metadata_dict(skip_empty=True)
            return _Extracted(pages, {k: str(v) for k, v in meta.items()})
        except pdfium.PdfiumError as exc:
            raise LoaderError(src.rel, f"damaged PDF, text extraction failed ({exc})") from exc
        finally:
            pdf.close()


_ENGINES = {"pypdfium2": _extract_pypdfium2}


def pdf_title(info: dict[str, str]) -> str | None:
    """The document-info title unless it is a tool's placeholder.

    >>> [pdf_title({"Title": t}) for t in ["Microsoft Word - draft3.docx", "0000320193-23-000077", " 10-Q "]]
    [None, None, '10-Q']
    """
    title = info.get("Title", "").strip()
    return title if title and not _JUNK_TITLE.match(title) else None


def load_pdf(src: Source, config: LoaderConfig) -> Loaded:
    extracted = _ENGINES[config.pdf_engine](src)
    builder = TextBuilder()
    empty: list[int] = []
    pages = [normalise_pdf_text(raw) for raw in extracted.pages]
    # Page numbers carry nothing and are left out. Running headers and footers stay in the text, marked in
    # the metadata so that the answerer never quotes them: they hold the document's name ("Apple Inc. | Q3
    # 2022 Form 10-Q"), which a chunk has nowhere else; left out, 11 of the 195 SEC 10-Q questions lost their
    # filing from the top hits (docs/benchmarks-answer.md). Then line-end hyphens, judged on the whole document.
    furniture = furniture_shapes(pages)
    page_numbers = {shape for shape in furniture if is_page_number(shape)}
    pages = dehyphenate(strip_furniture(pages, page_numbers))
    for number, text in enumerate(pages, start=1):
        if not text.strip():
            empty.append(number)
        builder.add(text, page=number)
    metadata: dict[str, MetadataValue] = {"page_count": len(extracted.pages), "pdf_engine": config.pdf_engine}
    if furniture - page_numbers:
        metadata[METADATA_KEY] = "\n".join(furniture_examples(pages, furniture - page_numbers))
    if extracted.info.get("Author", "").strip():
        metadata["author"] = extracted.info["Author"].strip()
    warnings: list[str] = []
    if looks_truncated(src.data):  # PDFium repaired it enough to open; pages may still be missing
        warnings.append(f"{src.rel}: the file seems truncated (no %%EOF marker); some text may be missing")
    if empty:
        metadata["pages_without_text"] = page_ranges(empty)
        warnings.append(f"{src.rel}: no text layer on page(s) {page_ranges(empty)}; scanned? OCR them first")
    loaded = single(src, builder, title=pdf_title(extracted.info), metadata=metadata)
    loaded.warnings[:0] = warnings
    return loaded
