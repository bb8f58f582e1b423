"""The default answerer end to end on the 20 SEC 10-Q PDFs: does the answer quote the figure asked for?

Every PDF of ``../shared/data/sec10q/docs`` is ingested into a fresh, temporary knowledge base with the
default configuration (``KnowledgeBase.open(tmp, create=True)`` + ``kb.ingest([docs])``: pypdfium2 loader, 800-character
chunks, Kiwi ``ko-en`` BM25, FAISS flat, e5 embedder), and every question of ``qna_data.csv`` is put to
``kb.ask(question)`` with the default answerer (extractive; no LLM). Reported per question type and overall:

- **figure found**: of the questions whose reference answer holds a key figure (a dollar amount, a
  percentage, a number with a thousands separator or decimals, "1.2 billion"), the share whose answer text
  contains at least one of them (compared as numbers: ``$82,959 million`` matches a table cell ``82,959``;
  ``19.145 billion`` also matches ``19,145``, the filings' own unit). Plain integers are not key figures:
  in these answers they are days, years and list numbers.
- **figures found**: the mean share of a question's key figures that the answer contains.
- **in hits**: the ceiling: a key figure occurs in one of the chunks the answerer was given.
- **gold cited**: some citation of the answer comes from a file that the question's ``Source Docs`` glob
  (``*2023 Q3 AAPL*``, ``*AAPL*``) matches; **gold in hits**: some chunk given to the answerer does (retrieval).
- **not found**: the answerer said the documents do not hold the answer.
- **furniture quoted**: the answer quotes a line that is a running header or footer of its PDF (a line, digits
  normalised, that starts or ends at least a third of the file's pages) — what issue 10 reported
  (``Apple Inc. | Q3 2022 Form 10-Q | 17 [1]``).

Embeddings go through a persistent per-text cache under ``.bench/answer-sec10q/vectors`` (same model, so
the numbers are those of the default embedder; a rerun only embeds texts it has not seen)::

    python benchmarks/answer_sec10q.py                    # all 195 questions (~8 min cold on 2 shared cores)
    python benchmarks/answer_sec10q.py --limit 40 --json .bench/answer-sec10q/report.json

The data folder is read-only and never copied; the script exits with a message when it is absent.
Results go to docs/benchmarks-answer.md.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import hashlib
import json
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine, package_versions

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sec10q"
CACHE = ROOT / ".bench" / "answer-sec10q" / "vectors"

# -- key figures --------------------------------------------------------------------------------------
# A number as the filings and the reference answers write it: optional $, digits with thousands separators
# and decimals, optional % or scale word. Not preceded by a letter or digit ("Q3", "10-Q" are not figures).
_NUMBER = re.compile(
    r"(?<![\w.])(?P<dollar>\$\s?)?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d+)"
    r"(?P<pct>\s?%)?(?:\s(?P<scale>million|billion|thousand)\b)?",
    re.IGNORECASE,
)
_SCALE = {"thousand": 1e-3, "million": 1.0, "billion": 1e3}  # in millions, the filings' usual unit


def _values(match: re.Match[str]) -> set[float]:
    """The numeric values a figure may appear as in a filing: as written, and rescaled to millions."""
    value = float(match["num"].replace(",", ""))
    out = {round(value, 6)}
    scale = (match["scale"] or "").lower()
    if scale in _SCALE and scale != "million":
        out.add(round(value * _SCALE[scale], 6))
    return out


def key_figures(text: str) -> list[set[float]]:
    """Key figures of a reference answer, each as the set of values it may appear as; plain integers left out.

    >>> [sorted(v) for v in key_figures("Sales were $82,959 million, up 2%, on June 25, 2022; capex $19.145 billion")]
    [[82959.0], [2.0], [19.145, 19145.0]]
    """
    out: list[set[float]] = []
    for match in _NUMBER.finditer(text):
        plain = not (match["dollar"] or match["pct"] or match["scale"] or "," in match["num"] or "." in match["num"])
        if not plain:
            out.append(_values(match))
    return out


def numbers_in(text: str) -> set[float]:
    """Every number in ``text`` as a value (separators removed), for matching key figures.

    >>> sorted(numbers_in("Total net sales $ 82,959 and 25.9 % [1]"))
    [1.0, 25.9, 82959.0]
    """
    return {round(float(m["num"].replace(",", "")), 6) for m in _NUMBER.finditer(text)}


def figure_share(figures: Sequence[set[float]], text: str) -> float:
    """Share of ``figures`` with some value among the numbers of ``text``.

    >>> figure_share([{82959.0}, {2.0}], "Total net sales 82,959")
    0.5
    """
    if not figures:
        return 0.0
    found = numbers_in(text)
    return sum(1 for values in figures if values & found) / len(figures)


# -- running headers and footers (a measurement of its own, independent of the loader) ---------------
def furniture_lines(pages: Sequence[str], share: float = 1 / 3, edge: int = 3) -> set[str]:
    """Lines (digits replaced by ``#``) among the first/last ``edge`` lines of at least ``share`` of the pages.

    >>> words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi".split()
    >>> pages = [f"Apple Inc. | Form 10-Q | {n}\\n" + "\\n".join(words[4 * n : 4 * n + 4]) for n in range(4)]
    >>> sorted(furniture_lines(pages))
    ['Apple Inc. | Form #-Q | #']
    """
    counts: Counter[str] = Counter()
    for page in pages:
        lines = [line.strip() for line in page.splitlines() if line.strip()]
        counts.update({_shape(line) for line in lines[:edge] + lines[-edge:]})
    needed = max(3, int(share * len(pages) + 0.999))
    return {line for line, n in counts.items() if n >= needed and re.search(r"[^\W\d_]", line)}


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split()))


def quotes_furniture(answer: str, furniture: set[str]) -> bool:
    """Whether a quoted sentence of ``answer`` (markers removed) is, or starts with, a furniture line.

    >>> quotes_furniture("Apple Inc. | Form 10-Q | 17 [1]", {"Apple Inc. | Form #-Q | #"})
    True
    """
    for sentence in re.split(r"\s*\[\d+\]\s*", answer):
        shape = _shape(sentence)
        if shape and any(shape == f or shape.startswith(f + " ") for f in furniture):
            return True
    return False


def pdf_furniture(folder: Path, names: Iterable[str]) -> dict[str, set[str]]:
    """:func:`furniture_lines` of each PDF, from pypdfium2's raw page text."""
    import pypdfium2

    out = {}
    for name in names:
        pdf = pypdfium2.PdfDocument(folder / name)
        try:
            out[name] = furniture_lines([page.get_textpage().get_text_range() for page in pdf])
        finally:
            pdf.close()
    return out


# -- data ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    text: str
    glob: str
    qtype: str
    chunk_type: str
    reference: str


def load_questions(folder: Path) -> list[Question]:
    """Rows of ``qna_data.csv`` (UTF-8 with a byte order mark)."""
    with (folder / "qna_data.csv").open(encoding="utf-8-sig", newline="") as handle:
        return [Question(r["Question"].strip(), r["Source Docs"].strip(), r["Question Type"],
                         r["Source Chunk Type"], r["Answer"]) for r in csv.DictReader(handle)]


# -- embedder with a persistent cache -----------------------------------------------------------------
class CachedEmbedder:
    """The default embedder behind a per-text vector cache saved as ``.npy`` + ``.json`` (no pickle)."""

    def __init__(self, inner: Any, folder: Path) -> None:
        self.inner, self.folder = inner, folder
        self.model: str = inner.model
        self.dim: int = inner.dim
        self.rows: dict[str, np.ndarray] = {}
        self.fresh = 0
        keys, vectors = folder / "keys.json", folder / "vectors.npy"
        if keys.exists() and vectors.exists():
            names = json.loads(keys.read_text(encoding="utf-8"))
            matrix = np.load(vectors)
            if matrix.shape == (len(names), self.dim):
                self.rows = dict(zip(names, matrix, strict=True))

    def _key(self, role: str, text: str) -> str:
        return hashlib.sha256(f"{self.model}\0{role}\0{text}".encode()).hexdigest()[:32]

    def _embed(self, texts: Sequence[str], role: str) -> np.ndarray:
        keys = [self._key(role, t) for t in texts]
        missing = list(dict.fromkeys(i for i, k in enumerate(keys) if k not in self.rows))
        if missing:
            embed = self.inner.embed_documents if role == "passage" else self.inner.embed_queries
            for i, vector in zip(missing, np.asarray(embed([texts[i] for i in missing]), np.float32), strict=True):
                self.rows[keys[i]] = vector
            self.fresh += len(missing)
        if not keys:
            return np.zeros((0, self.dim), np.float32)
        return np.vstack([self.rows[k] for k in keys]).astype(np.float32)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "passage")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "query")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)  # type: ignore[no-any-return]

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = list(self.rows)
        np.save(self.folder / "vectors.tmp.npy", np.vstack([self.rows[k] for k in keys]).astype(np.float32))
        (self.folder / "keys.tmp.json").write_text(json.dumps(keys), encoding="utf-8")
        (self.folder / "vectors.tmp.npy").replace(self.folder / "vectors.npy")
        (self.folder / "keys.tmp.json").replace(self.folder / "keys.json")


def default_embedder(cache: Path = CACHE) -> CachedEmbedder:
    from jisik.config import EmbedderConfig
    from jisik.embed import create_embedder

    return CachedEmbedder(create_embedder(EmbedderConfig()), cache)


# -- the run ------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One question's outcome."""

    qtype: str
    chunk_type: str
    has_figure: bool
    found: float  # 1.0 when some key figure is in the answer
    share: float
    in_hits: float
    gold_cited: float
    gold_in_hits: float
    not_found: float
    furniture: float
    answer: str


def score(question: Question, answer: Any, furniture: dict[str, set[str]]) -> Row:
    """One :class:`Row` from ``kb.ask``'s :class:`~jisik.records.Answer`."""
    figures = key_figures(question.reference)
    text = answer.text if answer.found else ""
    sources = " ".join(s.quote for s in answer.sources)
    cited = {Path(c.source).name for c in answer.citations}
    given = {Path(s.source).name for s in answer.sources}
    quoted_furniture = any(quotes_furniture(text, furniture.get(name, set())) for name in cited)
    share = figure_share(figures, text)
    return Row(question.qtype, question.chunk_type, bool(figures), float(share > 0), share,
               float(figure_share(figures, sources) > 0),
               float(any(fnmatch.fnmatch(name, question.glob) for name in cited)),
               float(any(fnmatch.fnmatch(name, question.glob) for name in given)), float(not answer.found),
               float(quoted_furniture), answer.text)


def summarise(rows: Sequence[Row]) -> dict[str, float]:
    with_figure = [r for r in rows if r.has_figure]
    n, m = max(1, len(rows)), max(1, len(with_figure))
    return {"questions": len(rows), "with figure": len(with_figure),
            "figure found %": 100 * sum(r.found for r in with_figure) / m,
            "figures found %": 100 * sum(r.share for r in with_figure) / m,
            "figure in hits %": 100 * sum(r.in_hits for r in with_figure) / m,
            "gold cited %": 100 * sum(r.gold_cited for r in rows) / n,
            "gold in hits %": 100 * sum(r.gold_in_hits for r in rows) / n,
            "not found %": 100 * sum(r.not_found for r in rows) / n,
            "furniture quoted %": 100 * sum(r.furniture for r in rows) / n}


def table(groups: dict[str, dict[str, float]]) -> str:
    columns = list(next(iter(groups.values())))
    lines = ["| group | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, values in groups.items():
        cells = [f"{values[c]:.0f}" if c in ("questions", "with figure") else f"{values[c]:.1f}" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(folder: Path, limit: int | None, workdir: Path) -> dict[str, Any]:
    from jisik import KnowledgeBase

    questions = load_questions(folder)[:limit] if limit else load_questions(folder)
    docs = folder / "docs"
    embedder = default_embedder()
    t0 = time.perf_counter()
    with KnowledgeBase.open(workdir / "kb", create=True, embedder=embedder) as kb:  # type: ignore[arg-type]
        report = kb.ingest([docs])
        ingest_s = time.perf_counter() - t0
        embedder.save()
        print(f"ingested {kb.status()['chunks']:,} chunks in {ingest_s:.0f} s ({embedder.fresh:,} texts embedded)",
              file=sys.stderr)
        furniture = pdf_furniture(docs, sorted(p.name for p in docs.glob("*.pdf")))
        rows, t1 = [], time.perf_counter()
        for i, question in enumerate(questions, 1):
            rows.append(score(question, kb.ask(question.text, log=False), furniture))
            if i % 20 == 0:
                print(f"  {i}/{len(questions)} answered", file=sys.stderr)
        ask_s = time.perf_counter() - t1
        embedder.save()
        chunks = kb.status()["chunks"]
    groups = {"all": summarise(rows)}
    for key in sorted({r.qtype for r in rows}):
        groups[key] = summarise([r for r in rows if r.qtype == key])
    for key in ("Table", "Text"):
        groups[f"chunk type {key}"] = summarise([r for r in rows if r.chunk_type == key])
    return {"groups": groups, "chunks": chunks, "ingest_s": ingest_s, "ask_s_per_question": ask_s / max(1, len(rows)),
            "warnings": report.warnings, "failed": report.failed, "machine": machine(),
            "versions": package_versions(["jisik", "pypdfium2", "kiwipiepy", "onnxruntime", "faiss-cpu", "bm25s"]),
            "answers": [{"question": q.text, "answer": r.answer, "found": r.found, "gold_cited": r.gold_cited,
                         "gold_in_hits": r.gold_in_hits, "furniture": r.furniture}
                        for q, r in zip(questions, rows, strict=True)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the sec10q folder (qna_data.csv + docs/)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions (all PDFs still ingested)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results (and every answer) here")
    args = parser.parse_args(argv)
    if not (args.data / "qna_data.csv").exists():
        print(f"no data at {args.data}: see ../shared/data/README.md", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="jisik-answer-sec10q-") as tmp:
        result = run(args.data, args.limit, Path(tmp))
    print(table(result["groups"]))
    print(f"\n{result['chunks']:,} chunks; ingest {result['ingest_s']:.0f} s; "
          f"{result['ask_s_per_question'] * 1000:.0f} ms per question (kb.ask, embeddings cached)")
    if result["failed"] or result["warnings"]:
        print(f"failed: {result['failed']}; warnings: {result['warnings'][:5]}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
