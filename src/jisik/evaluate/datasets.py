"""Evaluation datasets: questions with reference answers and gold documents, and their corpus.

One in-memory shape, :class:`EvalDataset`, read from the formats people already have:

- **JSONL** (``load_jsonl``): one question per line,
  ``{"id": "q1", "question": "...", "answers": ["..."], "gold_doc_ids": ["..."], "gold_sources": ["..."]}``.
  Only ``question`` is required; ``answers`` may be one string. Other keys are kept as metadata.
- **SQuAD / KorQuAD v1 JSON** (``load_squad``): the corpus is one document per paragraph, with the
  stable id ``<title>#<n>`` (n counts paragraphs of that article from 0); the gold of a question
  is its paragraph, its answers the annotated answer texts.
- **BEIR folder** (``load_beir``): ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``. Graded
  judgements are kept in :attr:`EvalExample.relevance` (grade > 0 counts as gold); a query's optional
  ``answers`` (a string or a list) are its reference answers.
- **MS MARCO-style JSON list** (``load_msmarco``): ``[{"id", "query", "positive": [passage, ...]}]``
  (the Korean/English set in ``shared/data/msmarco_ko_en``); each distinct positive passage becomes
  a corpus document whose id is a hash of its text, so a passage shared by two queries is one document.
- **CSV** (``load_csv``): a header with ``question`` (or ``query``), optional ``answer``/``answers``,
  ``gold_doc_ids``, ``gold_sources`` (or ``source docs``, as in the SEC 10-Q set) and ``id``.

Gold sources may be paths (``policies/returns.md``), base names (``returns.md``) or globs
(``*2023 Q3 AAPL*``), optionally with a page (``2023 Q3 AAPL.pdf#page=12``); gold doc ids may be a
record's own id in a CSV/JSONL file ingested with ``id_field``. :mod:`jisik.evaluate.gold` resolves them.

Bad input is never skipped silently: rows without a question, answers of the wrong type, duplicate
ids and empty datasets raise :class:`~jisik.errors.EvaluationError` naming the lines to fix.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jisik.errors import EvaluationError
from jisik.evaluate.gold import MissingGold, check_gold, source_matches
from jisik.records import Document

__all__ = [
    "EvalDataset",
    "EvalExample",
    "MissingGold",
    "check_gold",
    "load_beir",
    "load_csv",
    "load_dataset",
    "load_jsonl",
    "load_msmarco",
    "load_squad",
    "source_matches",
]

MAX_ERRORS_SHOWN = 5
JSONL_HINT = ('each line needs a JSON object such as {"question": "...", "answers": ["..."], '
              '"gold_doc_ids": ["..."]}; fix or remove the lines named')


@dataclass(slots=True)
class EvalExample:
    """One question. ``answers`` may be empty (retrieval only); so may the gold lists (answers only).

    ``relevance`` holds graded judgements (BEIR qrels) by doc id; empty means binary relevance of
    ``gold_doc_ids``.
    """

    qid: str
    question: str
    answers: list[str] = field(default_factory=list)
    gold_doc_ids: list[str] = field(default_factory=list)
    gold_sources: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    relevance: dict[str, float] = field(default_factory=dict)

    @property
    def has_gold(self) -> bool:
        return bool(self.gold_doc_ids or self.gold_sources)


@dataclass(slots=True)
class EvalDataset:
    """Questions, plus the documents they are asked about when the dataset ships them."""

    name: str
    examples: list[EvalExample]
    corpus: list[Document] | None = None
    path: str | None = None
    format: str = "jsonl"
    notes: list[str] = field(default_factory=list)

    def head(self, n: int | None) -> EvalDataset:
        """The first ``n`` questions (the corpus stays whole, so retrieval is as hard as before)."""
        if n is None or n >= len(self.examples):
            return self
        if n < 1:
            raise EvaluationError(f"--limit must be at least 1, got {n}")
        return EvalDataset(self.name, self.examples[:n], self.corpus, self.path, self.format,
                           [*self.notes, f"limited to the first {n} of {len(self.examples)} questions"])

    @property
    def with_answers(self) -> list[EvalExample]:
        return [e for e in self.examples if e.answers]

    @property
    def with_gold(self) -> list[EvalExample]:
        return [e for e in self.examples if e.has_gold]


# --- shared validation -------------------------------------------------------------------------------


class _Problems:
    """Collects row problems so that one error names every bad line (up to a few) and their count."""

    def __init__(self, path: Path, unit: str = "row") -> None:
        self.path = path
        self.unit = unit
        self.items: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.items.append(f"{where}: {what}")

    def raise_if_any(self, total: int, hint: str) -> None:
        if not self.items:
            return
        shown = "; ".join(self.items[:MAX_ERRORS_SHOWN])
        more = f" … and {len(self.items) - MAX_ERRORS_SHOWN} more" if len(self.items) > MAX_ERRORS_SHOWN else ""
        raise EvaluationError(f"{self.path}: {len(self.items)} problem(s) in {total} {self.unit}(s) — {shown}{more}",
                              hint=hint)


def _string_list(value: Any, name: str) -> tuple[list[str], str | None]:
    """``value`` as a list of non-empty strings, or an error message.

    >>> _string_list("14 days", "answers"), _string_list(["a", " "], "answers")
    ((['14 days'], None), (['a'], None))
    >>> _string_list(3, "answers")[1]
    "'answers' must be a list of strings or one string, got int"
    """
    if value is None:
        return [], None
    if isinstance(value, str):
        return ([value.strip()] if value.strip() else []), None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(dict.fromkeys(v.strip() for v in value if v.strip())), None
    if isinstance(value, list):
        bad = next(type(v).__name__ for v in value if not isinstance(v, str))
        return [], f"'{name}' must be a list of strings, found a {bad} in it"
    return [], f"'{name}' must be a list of strings or one string, got {type(value).__name__}"


def _example_from_row(row: Mapping[str, Any], where: str, default_id: str,
                      problems: _Problems) -> EvalExample | None:
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        if question is None:
            keys = ", ".join(sorted(row)) or "none"
            problems.add(where, f"no 'question' (keys found: {keys})")
        else:
            problems.add(where, "'question' is empty" if isinstance(question, str)
                         else f"'question' must be a string, got {type(question).__name__}")
        return None
    lists: dict[str, list[str]] = {}
    ok = True
    for name in ("answers", "gold_doc_ids", "gold_sources"):
        values, error = _string_list(row.get(name), name)
        if error:
            problems.add(where, error)
            ok = False
        lists[name] = values
    raw_id = row.get("id", default_id)
    if not isinstance(raw_id, str | int) or isinstance(raw_id, bool):
        problems.add(where, f"'id' must be a string or an integer, got {type(raw_id).__name__}")
        ok = False
    if not ok:
        return None
    known = {"id", "question", "answers", "gold_doc_ids", "gold_sources"}
    metadata = {k: v for k, v in row.items() if k not in known}
    return EvalExample(str(raw_id), question.strip(), lists["answers"], lists["gold_doc_ids"],
                       lists["gold_sources"], metadata)


def _check_unique_ids(examples: list[EvalExample], problems: _Problems, where: list[str]) -> None:
    """``where[i]`` is the location of ``examples[i]``; a repeated id is reported at each repeat."""
    first: dict[str, str] = {}
    for example, location in zip(examples, where, strict=True):
        if example.qid in first:
            problems.add(location, f"duplicate id '{example.qid}' (first at {first[example.qid]})")
        first.setdefault(example.qid, location)


def _require_examples(examples: list[EvalExample], path: Path, what: str) -> None:
    if not examples:
        raise EvaluationError(f"{path}: the dataset holds no questions", hint=what)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
                              hint="fix the JSON, or use JSONL with one question object per line") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"{path}: cannot read it ({exc})", hint="check the path and that it is UTF-8") from exc


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"{path}: cannot read it ({exc})", hint="check the path and that it is UTF-8") from exc


def _json_objects(path: Path, problems: _Problems, label: str = "") -> tuple[list[tuple[int, dict[str, Any]]], int]:
    """The JSON objects of a JSON-lines file with their line numbers, and how many lines were not blank.

    Lines that are not JSON objects are reported to ``problems`` (as ``<label>line N``), not returned.
    """
    rows: list[tuple[int, dict[str, Any]]] = []
    total = 0
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        total += 1
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.add(f"{label}line {lineno}", f"not valid JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            problems.add(f"{label}line {lineno}", f"expected a JSON object, got {type(row).__name__}")
            continue
        rows.append((lineno, row))
    return rows, total


# --- loaders -------------------------------------------------------------------------------------------


def load_jsonl(path: str | Path) -> EvalDataset:
    """Questions from a JSONL file (one JSON object per line; blank lines are allowed)."""
    path = Path(path)
    problems = _Problems(path, "line")
    examples: list[EvalExample] = []
    where: list[str] = []
    rows, total = _json_objects(path, problems)
    for lineno, row in rows:
        example = _example_from_row(row, f"line {lineno}", f"L{lineno}", problems)
        if example is not None:
            where.append(f"line {lineno}")
            examples.append(example)
    _check_unique_ids(examples, problems, where)
    problems.raise_if_any(total, JSONL_HINT)
    _require_examples(examples, path, JSONL_HINT)
    return EvalDataset(path.stem, examples, None, str(path), "jsonl")


def _load_json_rows(path: Path, rows: list[Any]) -> EvalDataset:
    """A JSON list of JSONL-style objects."""
    problems = _Problems(path, "item")
    examples: list[EvalExample] = []
    where: list[str] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.add(f"item {index}", f"expected a JSON object, got {type(row).__name__}")
            continue
        example = _example_from_row(row, f"item {index}", f"i{index}", problems)
        if example is not None:
            where.append(f"item {index}")
            examples.append(example)
    _check_unique_ids(examples, problems, where)
    problems.raise_if_any(len(rows), JSONL_HINT)
    _require_examples(examples, path, JSONL_HINT)
    return EvalDataset(path.stem, examples, None, str(path), "json")


def load_squad(path: str | Path) -> EvalDataset:
    """SQuAD / KorQuAD v1 JSON: one corpus document per paragraph, gold = the question's paragraph.

    SQuAD v2 questions marked impossible keep an empty answer list (they still count for retrieval).
    """
    path = Path(path)
    data = _read_json(path)
    return _squad_from_json(path, data)


def _squad_from_json(path: Path, data: Any) -> EvalDataset:
    hint = 'expected SQuAD v1 JSON: {"data": [{"title": …, "paragraphs": [{"context": …, "qas": [{"id", "question", ' \
           '"answers": [{"text": …}]}]}]}]}'
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise EvaluationError(f"{path}: not a SQuAD/KorQuAD file (no 'data' list at the top)", hint=hint)
    problems = _Problems(path, "question")
    corpus: list[Document] = []
    examples: list[EvalExample] = []
    where: list[str] = []
    total = 0
    for a, article in enumerate(data["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            problems.add(f"data[{a}]", "no 'paragraphs' list")
            continue
        title = str(article.get("title") or f"article{a}")
        for n, paragraph in enumerate(article["paragraphs"]):
            loc = f"data[{a}].paragraphs[{n}]"
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str) or not context.strip():
                problems.add(loc, "no 'context' text")
                continue
            doc_id = f"{title}#{n}"
            corpus.append(Document(doc_id=doc_id, source=doc_id, text=context, title=title.replace("_", " "),
                                   metadata={"title": title, "paragraph": n}))
            for q, qa in enumerate(paragraph.get("qas") or []):
                total += 1
                qloc = f"{loc}.qas[{q}]"
                if not isinstance(qa, dict):
                    problems.add(qloc, "not an object")
                    continue
                raw_answers = qa.get("answers") or []
                if not isinstance(raw_answers, list) or not all(isinstance(x, dict) and isinstance(x.get("text"), str)
                                                                  for x in raw_answers):
                    problems.add(qloc, "'answers' must be a list of {\"text\": …} objects")
                    continue
                row = {"id": qa.get("id", f"{doc_id}/{q}"), "question": qa.get("question"),
                       "answers": [x["text"] for x in raw_answers], "gold_doc_ids": [doc_id]}
                if qa.get("is_impossible"):
                    row["is_impossible"] = True
                example = _example_from_row(row, qloc, f"{doc_id}/{q}", problems)
                if example is not None:
                    example.metadata["title"] = title
                    where.append(qloc)
                    examples.append(example)
    _check_unique_ids(examples, problems, where)
    problems.raise_if_any(total, "fix those questions or paragraphs in the file")
    _require_examples(examples, path, hint)
    return EvalDataset(path.stem, examples, corpus, str(path), "squad")


def load_beir(folder: str | Path, *, split: str = "test") -> EvalDataset:
    """A BEIR folder: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``,
    optionally ``answers``: a string or a list) and ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``,
    ``score``; a header line is allowed).

    Only queries with judgements in the split are evaluated (``queries.jsonl`` usually holds every
    split). A judgement naming an unknown query is an error.
    """
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for needed in (folder / "corpus.jsonl", folder / "queries.jsonl", qrels_path):
        if not needed.exists():
            raise EvaluationError(f"{folder}: not a BEIR folder ({needed.relative_to(folder)} is missing)",
                                  hint="a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/test.tsv")
    problems = _Problems(folder, "line")
    corpus: list[Document] = []
    corpus_rows, total = _json_objects(folder / "corpus.jsonl", problems, "corpus.jsonl ")
    for lineno, row in corpus_rows:
        if "_id" not in row or not isinstance(row.get("text"), str):
            problems.add(f"corpus.jsonl line {lineno}", "needs '_id' and 'text'")
            continue
        doc_id, title = str(row["_id"]), str(row.get("title") or "")
        text = f"{title}\n{row['text']}" if title else row["text"]
        corpus.append(Document(doc_id=doc_id, source=doc_id, text=text, title=title or None))
    queries: dict[str, str] = {}
    answers: dict[str, list[str]] = {}
    query_rows, query_lines = _json_objects(folder / "queries.jsonl", problems, "queries.jsonl ")
    total += query_lines
    for lineno, row in query_rows:
        text = row.get("text")
        if "_id" not in row or not isinstance(text, str) or not text.strip():
            problems.add(f"queries.jsonl line {lineno}", "needs '_id' and a non-empty 'text' (the question)")
            continue
        values, error = _string_list(row.get("answers"), "answers")
        if error:  # reported, but the query stays known so its judgements are not reported as well
            problems.add(f"queries.jsonl line {lineno}", error)
        queries[str(row["_id"])] = text.strip()
        answers[str(row["_id"])] = values
    qrels: dict[str, dict[str, float]] = {}
    for lineno, line in enumerate(_read_lines(qrels_path), start=1):
        parts = line.rstrip("\n").split("\t")
        if not line.strip() or (lineno == 1 and not _is_number(parts[-1])):
            continue  # blank line or header
        total += 1
        if len(parts) < 3 or not _is_number(parts[-1]):
            problems.add(f"qrels/{split}.tsv line {lineno}", "expected query-id<TAB>corpus-id<TAB>score")
            continue
        qid, doc_id, score = parts[0], parts[-2], float(parts[-1])
        if qid not in queries:
            problems.add(f"qrels/{split}.tsv line {lineno}", f"query id '{qid}' is not in queries.jsonl")
            continue
        qrels.setdefault(qid, {})[doc_id] = score
    problems.raise_if_any(total, "fix those lines; see https://github.com/beir-cellar/beir for the format")
    examples = [EvalExample(qid, queries[qid], answers[qid], gold_doc_ids=[d for d, g in grades.items() if g > 0],
                            relevance=dict(grades))
                for qid, grades in qrels.items()]
    _require_examples(examples, folder, f"qrels/{split}.tsv judges no query")
    return EvalDataset(folder.name, examples, corpus, str(folder), "beir")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _passage_id(text: str) -> str:
    """Stable id of a passage: a hash of its whitespace-normalised text.

    >>> _passage_id("a  b") == _passage_id("a b")
    True
    """
    return "p" + hashlib.sha1(" ".join(text.split()).encode("utf-8")).hexdigest()[:16]


def load_msmarco(path: str | Path) -> EvalDataset:
    """A JSON list ``[{"id", "query", "positive": passage or [passages]}]``; the positives are the corpus."""
    path = Path(path)
    data = _read_json(path)
    return _msmarco_from_json(path, data)


def _msmarco_from_json(path: Path, data: Any) -> EvalDataset:
    if not isinstance(data, list):
        raise EvaluationError(f"{path}: expected a JSON list of {{id, query, positive}} objects")
    problems = _Problems(path, "item")
    corpus: dict[str, Document] = {}
    examples: list[EvalExample] = []
    where: list[str] = []
    for index, row in enumerate(data):
        loc = f"item {index}"
        if not isinstance(row, dict):
            problems.add(loc, f"expected an object, got {type(row).__name__}")
            continue
        positives, error = _string_list(row.get("positive"), "positive")
        if error:
            problems.add(loc, error)
            continue
        gold = []
        for passage in positives:
            pid = _passage_id(passage)
            corpus.setdefault(pid, Document(doc_id=pid, source=pid, text=passage))
            gold.append(pid)
        example = _example_from_row({"id": row.get("id", f"i{index}"), "question": row.get("query"),
                                     "gold_doc_ids": list(dict.fromkeys(gold))}, loc, f"i{index}", problems)
        if example is not None:
            where.append(loc)
            examples.append(example)
    _check_unique_ids(examples, problems, where)
    problems.raise_if_any(len(data), "each item needs 'query' and 'positive' (a passage or a list of passages)")
    _require_examples(examples, path, "the list is empty")
    return EvalDataset(path.stem, examples, list(corpus.values()), str(path), "msmarco")


_CSV_COLUMNS = {
    "question": ("question", "query"),
    "answers": ("answers", "answer"),
    "gold_doc_ids": ("gold_doc_ids", "gold_doc_id", "doc_id", "doc_ids"),
    "gold_sources": ("gold_sources", "gold_source", "source docs", "source_docs", "sources", "source"),
    "id": ("id", "qid", "question_id"),
}


def load_csv(path: str | Path) -> EvalDataset:
    """Questions from a CSV (or tab-separated ``.tsv``) file with a header row.

    Column names are matched without regard to case: ``question``/``query``, ``answer(s)``,
    ``gold_doc_ids``, ``gold_sources``/``source docs`` and ``id``. A cell holding a JSON list
    (``["a", "b"]``) gives several values; other columns become metadata.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"{path}: cannot read it ({exc})", hint="check the path and that it is UTF-8") from exc
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = {name.strip().lower(): name for name in (reader.fieldnames or [])}
    columns = {key: next((header[a] for a in aliases if a in header), None) for key, aliases in _CSV_COLUMNS.items()}
    if columns["question"] is None:
        raise EvaluationError(f"{path}: no 'question' column (columns: {', '.join(reader.fieldnames or []) or 'none'})",
                              hint="name the question column 'question' (or 'query')")
    used = {c for c in columns.values() if c}
    problems = _Problems(path, "row")
    examples: list[EvalExample] = []
    where: list[str] = []
    total = 0
    end_line = reader.line_num
    for row in reader:
        total += 1
        start_line, end_line = end_line + 1, reader.line_num
        loc = f"row {total} (line {start_line})"
        record: dict[str, Any] = {}
        for key, column in columns.items():
            cell = (row.get(column) or "").strip() if column else ""
            if key in ("answers", "gold_doc_ids", "gold_sources") and cell.startswith("["):
                try:
                    record[key] = json.loads(cell)
                except json.JSONDecodeError:
                    record[key] = cell
            elif cell or key == "question":
                record[key] = cell
        example = _example_from_row(record, loc, f"row{total}", problems)
        if example is not None:
            example.metadata = {k: v for k, v in row.items() if k not in used and k is not None}
            where.append(loc)
            examples.append(example)
    _check_unique_ids(examples, problems, where)
    problems.raise_if_any(total, "fill in the question of those rows or remove them")
    _require_examples(examples, path, "add rows under the header")
    return EvalDataset(path.stem, examples, None, str(path), "csv")


def load_dataset(path: str | Path) -> EvalDataset:
    """Load any supported dataset, telling the format apart by its shape.

    A folder is BEIR; ``.jsonl`` is JSONL; ``.csv``/``.tsv`` is CSV; a ``.json`` file is SQuAD/KorQuAD
    (``{"data": [...]}``), MS MARCO-style (a list of ``{query, positive}``) or a list of JSONL-style
    question objects.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise EvaluationError(f"no dataset at {path}", hint="give a .jsonl, .json, .csv file or a BEIR folder")
    if path.is_dir():
        return load_beir(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return load_jsonl(path)
    if suffix in (".csv", ".tsv"):
        return load_csv(path)
    if suffix == ".json":
        data = _read_json(path)
        if isinstance(data, dict) and "data" in data:
            return _squad_from_json(path, data)
        if isinstance(data, list) and data and isinstance(data[0], dict) and "positive" in data[0]:
            return _msmarco_from_json(path, data)
        if isinstance(data, list):
            if not data:
                raise EvaluationError(f"{path}: the dataset holds no questions", hint=JSONL_HINT)
            return _load_json_rows(path, data)
        raise EvaluationError(f"{path}: unrecognised JSON dataset (top-level keys: {', '.join(sorted(data)[:8])})"
                              if isinstance(data, dict) else f"{path}: unrecognised JSON dataset",
                              hint="use SQuAD/KorQuAD JSON, a list of {question, answers, gold_doc_ids} objects, "
                                   "or JSONL")
    raise EvaluationError(f"{path}: unknown dataset format '{suffix or 'no extension'}'",
                          hint="use .jsonl, .json (SQuAD/KorQuAD), .csv/.tsv or a BEIR folder")
