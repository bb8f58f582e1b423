"""Compare PDF text extractors on the 20 real SEC 10-Q filings in ``../shared/data/sec10q``.

Run from the repository root::

    python benchmarks/pdf_loaders.py                 # all libraries that are installed
    python benchmarks/pdf_loaders.py --libs pypdfium2 pypdf --files 3

What it measures, per library (and per extraction mode where a library has two useful ones):

- ``wall s`` / ``cpu s`` / ``pages/s``: time to extract the text of every page of every file.
  The box is shared, so CPU seconds are the fairer number; pages/s uses wall time.
- ``failed files``: files the library raised on (listed under the table).
- ``answer #``: of the numbers (``82,959``, ``1.27``) in the reference answers of
  ``qna_data.csv``, the share found as a whole token in the text of the question's source files.
  Some answer numbers are computed by the answer writer, so no library reaches 100 %.
- ``rows``: hand-picked table rows (label + its numbers, read off the PDFs by eye) found with the
  label and all its numbers in order on ONE line. This is what a chunk needs so that a number
  keeps its row label and column order.
- ``phrases``: hand-picked sentences from the reference answers found after whitespace
  normalisation (catches split or glued words and broken reading order).
- ``num-only lines``: share of non-empty lines made only of numbers, ``$``, ``%`` and
  brackets. A library that puts every table cell on its own line scores high (bad: the number
  has lost its row label).
- ``odd words/10k``: alphabetic words of 4+ letters that no other library produced for the same
  file, per 10,000 words (fewer is better). Glued words ("netsales") and split words ("ncome") land here.

The data folder is read-only and never copied; the script skips with a message if it is absent.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import importlib
import importlib.metadata
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sec10q"

PageTexts = list[str]


# ---------------------------------------------------------------- extractors


def _pypdfium2(path: Path) -> PageTexts:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(path)
    try:
        return [page.get_textpage().get_text_range() for page in pdf]
    finally:
        pdf.close()


def _pypdf(path: Path) -> PageTexts:
    import pypdf

    return [page.extract_text() for page in pypdf.PdfReader(path).pages]


def _pypdf_layout(path: Path) -> PageTexts:
    import pypdf

    return [page.extract_text(extraction_mode="layout") for page in pypdf.PdfReader(path).pages]


def _pdfplumber(path: Path) -> PageTexts:
    import pdfplumber

    with pdfplumber.open(path) as pdf:
        out = []
        for page in pdf.pages:
            out.append(page.extract_text() or "")
            page.close()  # pdfplumber caches layout objects per page; free them as we go
        return out


def _pymupdf(path: Path) -> PageTexts:
    import pymupdf

    with pymupdf.open(path) as doc:  # type: ignore[no-untyped-call]
        return [page.get_text() for page in doc]


def _pymupdf_sort(path: Path) -> PageTexts:
    import pymupdf

    with pymupdf.open(path) as doc:  # type: ignore[no-untyped-call]
        return [page.get_text(sort=True) for page in doc]


def _jisik(path: Path) -> PageTexts:
    """jisik's own PDF loader (pypdfium2 + normalisation + spans), one text per page with text."""
    from jisik.ingest.loaders import load

    (doc,) = load(path, root=path.parent).documents
    return [doc.text[s.start : s.end] for s in doc.segments]


@dataclass(frozen=True)
class Extractor:
    name: str
    module: str  # import name, to check it is installed
    dist: str  # distribution name, for the version
    licence: str
    run: Callable[[Path], PageTexts]


EXTRACTORS = [
    Extractor("pypdfium2", "pypdfium2", "pypdfium2", "Apache-2.0/BSD-3", _pypdfium2),
    Extractor("jisik loader", "jisik", "jisik", "Apache-2.0", _jisik),
    Extractor("pypdf", "pypdf", "pypdf", "BSD-3", _pypdf),
    Extractor("pypdf-layout", "pypdf", "pypdf", "BSD-3", _pypdf_layout),
    Extractor("pdfplumber", "pdfplumber", "pdfplumber", "MIT", _pdfplumber),
    Extractor("pymupdf", "pymupdf", "pymupdf", "AGPL-3.0", _pymupdf),
    Extractor("pymupdf-sort", "pymupdf", "pymupdf", "AGPL-3.0", _pymupdf_sort),
]


# ---------------------------------------------------------------- probes

# (file stem, row label, the row's numbers in column order), read off the PDFs by eye.
ROW_PROBES: list[tuple[str, str, list[str]]] = [
    ("2023 Q3 AAPL", "Total net sales", ["81,797", "82,959", "293,787", "304,182"]),
    ("2023 Q3 AMZN", "Total net sales", ["127,101", "143,083", "364,779", "404,824"]),
    ("2023 Q3 AMZN", "Net income (loss)", ["2,872", "9,879", "(3,000)", "19,801"]),
    ("2023 Q3 INTC", "Gross margin", ["6,018", "6,535", "14,664", "21,366"]),
    ("2023 Q3 MSFT", "Total revenue", ["56,517", "50,122"]),
    ("2023 Q3 NVDA", "Gross profit", ["13,400", "3,177", "27,510", "11,523"]),
    ("2022 Q3 AAPL", "Greater China", ["14,604", "14,762", "58,730", "53,803"]),
    ("2023 Q1 MSFT", "Intelligent Cloud", ["21,508", "18,262", "41,833", "35,174"]),
    ("2023 Q1 MSFT", "Total assets", ["364,552", "364,840"]),
    ("2023 Q2 NVDA", "Data Center", ["10,323", "3,806", "14,607", "7,556"]),
    ("2022 Q3 INTC", "Network and Edge", ["2,266", "1,986", "6,812", "5,890"]),
    ("2023 Q1 AMZN", "Total current assets", ["146,791", "136,221"]),
]

# (file stem, phrase) taken from the reference answers, checked after whitespace normalisation.
PHRASE_PROBES: list[tuple[str, str]] = [
    ("2023 Q3 NVDA", "from three to a range of four to five years"),
    ("2023 Q3 AAPL", "weakness in foreign currencies relative to the U.S. dollar"),
    ("2023 Q2 MSFT", "from four years to six years"),
    ("2023 Q2 AAPL", "Epic Games, Inc."),
    ("2023 Q1 AAPL", "Research and development"),
    ("2022 Q3 AMZN", "Amazon Web Services"),
]

NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+")
NUM_ONLY_LINE = re.compile(r"^[\s$%()—–\-.,\d]+$")
WORD = re.compile(r"[A-Za-z]{4,}")


def normalise(text: str) -> str:
    """Unify line endings; turn PDFium's line-end hyphen marker (U+FFFE) back into the hyphen.

    PDFium reports a hyphen it takes for a line-break hyphen as U+FFFE and joins the lines; in
    these filings that is nearly always a real compound ("stock-based", "third-party").
    """
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufffe", "-").replace("\x02", "-")


def squash(text: str) -> str:
    return " ".join(text.split()).lower()


def has_number(text: str, number: str) -> bool:
    """``number`` as a whole token: not part of a longer number ("1,200" is not in "11,200")."""
    return re.search(rf"(?<![\d,.]){re.escape(number)}(?![\d]|[,.]\d)", text) is not None


def row_on_one_line(text: str, label: str, numbers: list[str]) -> bool:
    pattern = re.escape(label) + "".join(rf"[^\n]*?(?<![\d,.]){re.escape(n)}(?![\d]|[,.]\d)" for n in numbers)
    return re.search(pattern, text) is not None


def _page_count(path: Path) -> int:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(path)
    try:
        return len(pdf)
    finally:
        pdf.close()


@dataclass
class Result:
    name: str
    dist: str
    version: str
    licence: str
    wall: float = 0.0
    cpu: float = 0.0
    pages: int = 0
    texts: dict[str, str] = field(default_factory=dict)  # file stem -> whole text
    errors: list[str] = field(default_factory=list)


def extract_all(ex: Extractor, files: list[Path]) -> Result:
    res = Result(ex.name, ex.dist, importlib.metadata.version(ex.dist), ex.licence)
    for path in files:
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pages = ex.run(path)
        except Exception as exc:  # a benchmark reports failures, it does not stop on them
            res.errors.append(f"{path.name}: {type(exc).__name__}: {exc}")
            continue
        res.wall += time.perf_counter() - w0
        res.cpu += time.process_time() - c0
        res.pages += len(pages) if ex.name != "jisik loader" else _page_count(path)
        res.texts[path.stem] = "\n\n".join(normalise(p) for p in pages)
    return res


def answer_numbers(stems: list[str]) -> list[tuple[list[str], str]]:
    """(source file stems, number) for every number in every reference answer."""
    out: list[tuple[list[str], str]] = []
    with open(DATA / "qna_data.csv", encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            sources = [s for s in stems if fnmatch.fnmatch(s, row["Source Docs"].strip())]
            if not sources:
                continue
            for number in sorted(set(NUMBER.findall(row["Answer"]))):
                out.append((sources, number))
    return out


def score(res: Result, others: list[Result], answers: list[tuple[list[str], str]]) -> dict[str, str]:
    hits = sum(any(has_number(res.texts.get(s, ""), n) for s in sources) for sources, n in answers)
    rows = sum(row_on_one_line(res.texts.get(f, ""), lab, nums) for f, lab, nums in ROW_PROBES)
    phrases = sum(squash(p) in squash(res.texts.get(f, "")) for f, p in PHRASE_PROBES)
    lines = [ln for t in res.texts.values() for ln in t.split("\n") if ln.strip()]
    num_only = sum(bool(NUM_ONLY_LINE.match(ln)) for ln in lines)
    odd = words = 0
    for stem, text in res.texts.items():
        mine = Counter(w.lower() for w in WORD.findall(text))
        theirs: set[str] = set()
        for o in others:
            theirs.update(w.lower() for w in WORD.findall(o.texts.get(stem, "")))
        words += sum(mine.values())
        odd += sum(c for w, c in mine.items() if w not in theirs)
    return {
        "answer #": f"{hits / max(len(answers), 1):.1%}",
        "rows": f"{rows}/{len(ROW_PROBES)}",
        "phrases": f"{phrases}/{len(PHRASE_PROBES)}",
        "num-only lines": f"{num_only / max(len(lines), 1):.1%}",
        "odd words/10k": f"{10_000 * odd / max(words, 1):.1f}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--libs", nargs="*", help="extractor names (default: all installed)")
    parser.add_argument("--files", type=int, default=0, help="only the first N files (0 = all)")
    args = parser.parse_args(argv)

    docs = DATA / "docs"
    if not docs.is_dir():
        print(f"SKIP: {docs} not found (the shared SEC 10-Q data set is not on this machine)")
        return 0
    files = sorted(docs.glob("*.pdf"))
    if args.files:
        files = files[: args.files]

    chosen = [e for e in EXTRACTORS if not args.libs or e.name in args.libs]
    results: list[Result] = []
    for ex in chosen:
        try:
            importlib.import_module(ex.module)
        except ImportError:
            print(f"skip {ex.name}: not installed (pip install {ex.dist})", file=sys.stderr)
            continue
        print(f"extracting with {ex.name} ...", file=sys.stderr, flush=True)
        results.append(extract_all(ex, files))

    answers = answer_numbers([f.stem for f in files])
    header = [
        "library",
        "version",
        "licence",
        "wall s",
        "cpu s",
        "pages/s",
        "failed files",
        "answer #",
        "rows",
        "phrases",
        "num-only lines",
        "odd words/10k",
    ]
    print(
        f"{len(files)} files, {results[0].pages if results else 0} pages, "
        f"{len(answers)} answer numbers, {len(ROW_PROBES)} row probes, {len(PHRASE_PROBES)} phrases\n"
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for res in results:
        # Compare words only with OTHER libraries: two modes of one library share its glue errors.
        others = [o for o in results if o.dist != res.dist and {o.dist, res.dist} != {"jisik", "pypdfium2"}]
        cells = [
            res.name,
            res.version,
            res.licence,
            f"{res.wall:.1f}",
            f"{res.cpu:.1f}",
            f"{res.pages / max(res.wall, 1e-9):.0f}",
            str(len(res.errors)),
            *score(res, others, answers).values(),
        ]
        print("| " + " | ".join(cells) + " |")
        for err in res.errors:
            print(f"  error: {res.name}: {err}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
