"""The evaluation report: results as data, saved as JSON, rendered as Markdown and self-contained HTML.

The HTML page needs nothing but a browser: styles are inline, plots are SVG (drawn by :mod:`jisik.evaluate.svg`: no
JavaScript, no CDN, no matplotlib), so it can be mailed or attached to a CI run as one file.

``compare(current, baseline, tolerance)`` lists every quality metric that dropped by more than
``tolerance`` (absolute) against a saved report; the CLI turns a non-empty list into exit code 1.
Latency is shown but never compared: timings on shared machines are too noisy for a gate.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jisik.errors import EvaluationError
from jisik.evaluate.gold import CITES_GOLD_DOCUMENT, CITES_GOLD_PAGE, CONTAINS_ANSWER
from jisik.evaluate.svg import PALETTE, svg_histogram, svg_line_chart

__all__ = [
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "AnswerRecord",
    "AnswerResult",
    "EvalReport",
    "LatencySummary",
    "MetricValue",
    "QuestionResult",
    "Regression",
    "RetrievedItem",
    "RunResult",
    "citation_definition",
    "compare",
    "load_report",
    "percentile",
    "save_report",
    "svg_histogram",
    "svg_line_chart",
    "to_html",
    "to_markdown",
]

REPORT_FORMAT = "jisik-eval-report"
REPORT_VERSION = 1
DEFAULT_MAX_ROWS = 200


# --- data --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class MetricValue:
    """A mean over questions with its bootstrap confidence interval ``[low, high]``."""

    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricValue:
        return cls(float(data["mean"]), float(data["low"]), float(data["high"]), int(data["n"]))

    def format(self, digits: int = 3) -> str:
        """
        >>> MetricValue(0.8125, 0.75, 0.875, 16).format()
        '0.812 [0.750, 0.875]'
        """
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(slots=True)
class RetrievedItem:
    rank: int
    doc_id: str
    source: str
    score: float
    page: int | None = None
    relevant: bool = False

    def to_row(self) -> list[Any]:
        """Compact JSON form ``[doc_id, source or None when equal to doc_id, score, page, relevant]``
        (reports of large datasets hold hundreds of thousands of these; the rank is the position).

        >>> RetrievedItem(1, "a.md", "a.md", 0.123456789, None, True).to_row()
        ['a.md', None, 0.123457, None, 1]
        """
        return [self.doc_id, None if self.source == self.doc_id else self.source, round(self.score, 6), self.page,
                int(self.relevant)]

    @classmethod
    def from_row(cls, rank: int, row: Sequence[Any]) -> RetrievedItem:
        doc_id, source, score, page, relevant = row
        return cls(rank, str(doc_id), str(doc_id if source is None else source), float(score), page, bool(relevant))


@dataclass(slots=True)
class QuestionResult:
    """One question under one run: what was retrieved and the rank of the first gold hit (1-based)."""

    qid: str
    question: str
    gold: list[str]
    retrieved: list[RetrievedItem]
    hit_rank: int | None
    latency_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"qid": self.qid, "question": self.question, "gold": self.gold,
                "retrieved": [r.to_row() for r in self.retrieved], "hit_rank": self.hit_rank,
                "latency_ms": round(self.latency_ms, 4)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuestionResult:
        return cls(str(data["qid"]), str(data["question"]), list(data["gold"]),
                   [RetrievedItem.from_row(rank, r) for rank, r in enumerate(data["retrieved"], start=1)],
                   data.get("hit_rank"), float(data["latency_ms"]))


@dataclass(slots=True)
class LatencySummary:
    mean_ms: float
    p50_ms: float
    p95_ms: float
    max_ms: float


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation, as numpy's default.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50), percentile([5.0], 95), percentile([], 50)
    (2.5, 5.0, 0.0)
    """
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(slots=True)
class RunResult:
    """One retrieval configuration over the dataset.

    ``recall_curve[i]`` is mean recall@(i+1); ``latencies_ms`` holds one value per question: the
    time of its search batch divided by the batch's size (``batch_size`` 1 gives true per-query times).
    """

    name: str
    mode: str
    k: int
    chunk_size: int | None
    options: dict[str, Any]
    metrics: dict[str, MetricValue]
    recall_curve: list[float]
    latencies_ms: list[float]
    questions: list[QuestionResult]
    batch_size: int = 1
    seconds: float = 0.0
    kb: str = ""
    chunks: int = 0

    @property
    def latency(self) -> LatencySummary:
        values = self.latencies_ms
        mean = sum(values) / len(values) if values else 0.0
        return LatencySummary(mean, percentile(values, 50), percentile(values, 95), max(values, default=0.0))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "k": self.k, "chunk_size": self.chunk_size,
                "options": self.options, "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
                "recall_curve": self.recall_curve, "latencies_ms": [round(v, 4) for v in self.latencies_ms],
                "questions": [q.to_dict() for q in self.questions], "batch_size": self.batch_size,
                "seconds": self.seconds, "kb": self.kb, "chunks": self.chunks}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        return cls(str(data["name"]), str(data["mode"]), int(data["k"]), data.get("chunk_size"),
                   dict(data.get("options") or {}),
                   {k: MetricValue.from_dict(v) for k, v in data["metrics"].items()},
                   [float(x) for x in data["recall_curve"]], [float(x) for x in data["latencies_ms"]],
                   [QuestionResult.from_dict(q) for q in data["questions"]], int(data.get("batch_size", 1)),
                   float(data.get("seconds", 0.0)), str(data.get("kb", "")), int(data.get("chunks", 0)))


@dataclass(slots=True)
class AnswerRecord:
    """One answered question. ``judge`` maps a judge metric to its 1–5 score, or None when unparsable;
    ``citation_basis`` says what ``citation_accuracy`` was judged against (see :func:`citation_definition`)."""

    qid: str
    question: str
    answers: list[str]
    prediction: str
    language: str
    found: bool
    em: float
    f1: float
    citation_accuracy: float | None
    groundedness: float | None
    citations: list[str]
    latency_ms: float
    judge: dict[str, float | None] = field(default_factory=dict)
    citation_basis: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"qid": self.qid, "question": self.question, "answers": self.answers, "prediction": self.prediction,
                "language": self.language, "found": self.found, "em": self.em, "f1": self.f1,
                "citation_accuracy": self.citation_accuracy, "citation_basis": self.citation_basis,
                "groundedness": self.groundedness, "citations": self.citations, "latency_ms": self.latency_ms,
                "judge": self.judge}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnswerRecord:
        return cls(str(data["qid"]), str(data["question"]), list(data["answers"]), str(data["prediction"]),
                   str(data["language"]), bool(data["found"]), float(data["em"]), float(data["f1"]),
                   data.get("citation_accuracy"), data.get("groundedness"), list(data.get("citations") or []),
                   float(data["latency_ms"]), dict(data.get("judge") or {}),
                   # Reports saved before citation_basis existed judged citations by the answer text only.
                   data.get("citation_basis", CONTAINS_ANSWER if data.get("citation_accuracy") is not None
                            else None))


_BASIS_TEXT = {CITES_GOLD_DOCUMENT: "it cites a gold document", CITES_GOLD_PAGE: "it cites the gold page",
               CONTAINS_ANSWER: "the cited chunk contains a reference answer"}


def citation_definition(bases: Mapping[str, int]) -> str:
    """What ``citation_accuracy`` measured, from the number of questions judged on each basis.

    >>> citation_definition({"gold document": 14})
    'a citation is accurate when it cites a gold document (14 questions)'
    >>> citation_definition({"reference answer": 1})
    'a citation is accurate when the cited chunk contains a reference answer (1 question, without gold)'
    >>> citation_definition({})
    ''
    """
    parts = []
    for basis, text in _BASIS_TEXT.items():
        count = bases.get(basis, 0)
        if count:
            unit = "question" if count == 1 else "questions"
            parts.append(f"{text} ({count} {unit}{', without gold' if basis == CONTAINS_ANSWER else ''})")
    return f"a citation is accurate when {'; when '.join(parts)}" if parts else ""


@dataclass(slots=True)
class AnswerResult:
    """Answer quality over the questions that have reference answers.

    ``judge_failures[metric]`` counts judge replies that could not be parsed for that metric; those
    questions are left out of that metric's mean (and only of it), and the count is shown with it.
    """

    llm: str
    metrics: dict[str, MetricValue]
    records: list[AnswerRecord]
    judge: str | None = None
    judge_failures: dict[str, int] = field(default_factory=dict)
    skipped_without_answers: int = 0
    complete: bool = True
    incomplete_reason: str | None = None

    @property
    def citation_bases(self) -> dict[str, int]:
        """Questions whose citations were scored, by what they were judged against."""
        counts: dict[str, int] = {}
        for record in self.records:
            if record.citation_accuracy is not None and record.citation_basis:
                counts[record.citation_basis] = counts.get(record.citation_basis, 0) + 1
        return counts

    @property
    def citation_definition(self) -> str:
        return citation_definition(self.citation_bases)

    @property
    def latency(self) -> LatencySummary:
        values = [r.latency_ms for r in self.records]
        mean = sum(values) / len(values) if values else 0.0
        return LatencySummary(mean, percentile(values, 50), percentile(values, 95), max(values, default=0.0))

    def metric_rows(self) -> list[tuple[str, MetricValue | None, int | None]]:
        """(metric, value, unparsable judge replies) for every metric, including judge metrics that
        got no parsable reply at all (value None)."""
        rows: list[tuple[str, MetricValue | None, int | None]] = [
            (name, value, self.judge_failures.get(name)) for name, value in self.metrics.items()]
        rows += [(name, None, count) for name, count in self.judge_failures.items() if name not in self.metrics]
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"llm": self.llm, "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
                "records": [r.to_dict() for r in self.records], "judge": self.judge,
                "judge_failures": self.judge_failures, "skipped_without_answers": self.skipped_without_answers,
                "complete": self.complete, "incomplete_reason": self.incomplete_reason,
                "citation_definition": self.citation_definition, "citation_bases": self.citation_bases}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnswerResult:
        return cls(str(data["llm"]), {k: MetricValue.from_dict(v) for k, v in data["metrics"].items()},
                   [AnswerRecord.from_dict(r) for r in data["records"]], data.get("judge"),
                   {k: int(v) for k, v in (data.get("judge_failures") or {}).items()},
                   int(data.get("skipped_without_answers", 0)), bool(data.get("complete", True)),
                   data.get("incomplete_reason"))


@dataclass(slots=True)
class Regression:
    """A metric that dropped by more than the tolerance against the baseline."""

    run: str
    metric: str
    baseline: float
    current: float
    tolerance: float

    @property
    def drop(self) -> float:
        return self.baseline - self.current

    def message(self) -> str:
        """
        >>> Regression("hybrid", "recall@5", 0.8, 0.75, 0.02).message()
        'regression: hybrid recall@5 0.8000 -> 0.7500 (-0.0500, tolerance 0.0200)'
        """
        return (f"regression: {self.run} {self.metric} {self.baseline:.4f} -> {self.current:.4f} "
                f"(-{self.drop:.4f}, tolerance {self.tolerance:.4f})")

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "metric": self.metric, "baseline": self.baseline, "current": self.current,
                "drop": self.drop, "tolerance": self.tolerance}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Regression:
        return cls(str(data["run"]), str(data["metric"]), float(data["baseline"]), float(data["current"]),
                   float(data["tolerance"]))


@dataclass(slots=True)
class EvalReport:
    """Everything one ``jisik eval`` run measured.

    ``missing_gold`` lists gold references absent from the knowledge base (only present when the run
    was allowed to go on with ``allow_missing_gold``); ``excluded`` maps question ids left out of the
    retrieval metrics to the reason (no gold given, or none of its gold is in the knowledge base).
    """

    dataset: str
    kb: str
    n_questions: int
    ks: list[int]
    runs: list[RunResult] = field(default_factory=list)
    answers: AnswerResult | None = None
    dataset_path: str | None = None
    dataset_format: str = ""
    created: str = ""
    jisik_version: str = ""
    kb_info: dict[str, Any] = field(default_factory=dict)
    missing_gold: dict[str, Any] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    baseline: str | None = None
    regressions: list[Regression] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.answers is None or self.answers.complete

    def run(self, name: str) -> RunResult:
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"format": REPORT_FORMAT, "version": REPORT_VERSION, "dataset": self.dataset,
                "dataset_path": self.dataset_path, "dataset_format": self.dataset_format, "kb": self.kb,
                "kb_info": self.kb_info, "created": self.created, "jisik_version": self.jisik_version,
                "n_questions": self.n_questions, "ks": self.ks, "complete": self.complete,
                "runs": [r.to_dict() for r in self.runs],
                "answers": self.answers.to_dict() if self.answers else None,
                "missing_gold": self.missing_gold, "excluded": self.excluded, "notes": self.notes,
                "baseline": self.baseline, "regressions": [r.to_dict() for r in self.regressions]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalReport:
        if data.get("format") != REPORT_FORMAT:
            raise EvaluationError("not a jisik evaluation report (no 'format': 'jisik-eval-report' header)",
                                  hint="save one with `jisik eval … --save NAME`")
        if int(data.get("version", 0)) > REPORT_VERSION:
            raise EvaluationError(f"the report was written by a newer jisik (format version {data['version']})",
                                  hint="upgrade jisik, or re-save the baseline with this version")
        return cls(str(data["dataset"]), str(data["kb"]), int(data["n_questions"]), [int(k) for k in data["ks"]],
                   [RunResult.from_dict(r) for r in data["runs"]],
                   AnswerResult.from_dict(data["answers"]) if data.get("answers") else None,
                   data.get("dataset_path"), str(data.get("dataset_format", "")), str(data.get("created", "")),
                   str(data.get("jisik_version", "")), dict(data.get("kb_info") or {}),
                   dict(data.get("missing_gold") or {}), dict(data.get("excluded") or {}),
                   list(data.get("notes") or []), data.get("baseline"),
                   [Regression.from_dict(r) for r in data.get("regressions") or []])

    def save(self, path: str | Path) -> Path:
        return save_report(self, path)

    def to_markdown(self, *, max_rows: int = DEFAULT_MAX_ROWS) -> str:
        return to_markdown(self, max_rows=max_rows)

    def to_html(self, *, max_rows: int = DEFAULT_MAX_ROWS) -> str:
        return to_html(self, max_rows=max_rows)


def save_report(report: EvalReport, path: str | Path) -> Path:
    """Write the report as JSON (atomically: a temporary file renamed over the target)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(report.to_dict(), ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    temporary.replace(target)
    return target


def load_report(path: str | Path) -> EvalReport:
    path = Path(path)
    if not path.exists():
        raise EvaluationError(f"no saved evaluation at {path}", hint="save one first with `jisik eval … --save NAME`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"{path} is not a readable evaluation report ({exc})",
                              hint="re-save it with `jisik eval … --save NAME`") from exc
    if not isinstance(data, dict):
        raise EvaluationError(f"{path} is not a jisik evaluation report", hint="re-save it with --save NAME")
    try:
        return EvalReport.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise EvaluationError(f"{path} is a damaged evaluation report (bad or missing field: {exc})",
                              hint="re-save it with `jisik eval … --save NAME`") from exc


def compare(current: EvalReport, baseline: EvalReport, tolerance: float) -> list[Regression]:
    """Metrics of runs present in both reports whose mean fell by more than ``tolerance``.

    Retrieval metrics are compared run by run (matched by name); answer metrics under the run name
    ``answers``. Comparing different question sets is refused rather than reported as a change.
    """
    if tolerance < 0:
        raise EvaluationError(f"tolerance must be >= 0, got {tolerance}")
    if not baseline.complete:
        raise EvaluationError("the baseline report is marked incomplete", hint="save a complete run as the baseline")
    if (baseline.dataset, baseline.n_questions) != (current.dataset, current.n_questions):
        raise EvaluationError(
            f"the baseline was measured on '{baseline.dataset}' ({baseline.n_questions} questions), this run on "
            f"'{current.dataset}' ({current.n_questions} questions)",
            hint="compare runs over the same dataset and --limit, or save a new baseline")
    pairs: list[tuple[str, Mapping[str, MetricValue], Mapping[str, MetricValue]]] = []
    baseline_runs = {r.name: r for r in baseline.runs}
    for run in current.runs:
        if run.name in baseline_runs:
            pairs.append((run.name, baseline_runs[run.name].metrics, run.metrics))
    if current.answers and baseline.answers:
        pairs.append(("answers", baseline.answers.metrics, current.answers.metrics))
    if not pairs:
        raise EvaluationError(
            "the baseline shares no run with this evaluation (baseline: "
            f"{', '.join(sorted(baseline_runs)) or 'none'}; now: {', '.join(r.name for r in current.runs) or 'none'})",
            hint="use the same --modes and --chunk-sizes as the baseline")
    regressions = []
    for name, old, new in pairs:
        for metric, value in new.items():
            if metric in old and old[metric].mean - value.mean > tolerance + 1e-12:
                regressions.append(Regression(name, metric, old[metric].mean, value.mean, tolerance))
    return regressions


# --- shared table content ----------------------------------------------------------------------------


def _metric_names(runs: Sequence[RunResult]) -> list[str]:
    names: list[str] = []
    for run in runs:
        names.extend(m for m in run.metrics if m not in names)
    return names


def _ordered_questions(run: RunResult, max_rows: int) -> list[QuestionResult]:
    """Misses first, then late hits: the rows worth reading when only some can be shown."""
    ordered = sorted(run.questions, key=lambda q: (q.hit_rank is not None, -(q.hit_rank or 0)))
    return ordered[:max_rows]


def _retrieved_text(question: QuestionResult, limit: int = 5) -> str:
    return "; ".join(f"{r.rank}. {r.source}{'' if r.page is None else f' p.{r.page}'}{' ✓' if r.relevant else ''}"
                     for r in question.retrieved[:limit])


def _header_lines(report: EvalReport) -> list[tuple[str, str]]:
    info = report.kb_info
    rows = [("dataset", f"{report.dataset} ({report.dataset_format}, {report.n_questions} questions)"),
            ("knowledge base", f"{report.kb}" + (f" — {info.get('documents')} documents, {info.get('chunks')} chunks, "
                                                  f"embedder {info.get('embedder')}" if info else "")),
            ("created", f"{report.created} (jisik {report.jisik_version})")]
    if report.baseline:
        rows.append(("baseline", report.baseline))
    return rows


def _missing_text(report: EvalReport) -> str | None:
    if not report.missing_gold:
        return None
    examples = "; ".join(report.missing_gold.get("examples", []))
    return (f"{report.missing_gold.get('count', 0)} gold reference(s) in {report.missing_gold.get('questions', 0)} "
            f"question(s) are not in the knowledge base (allowed with --allow-missing-gold), e.g. {examples}")


def _excluded_text(report: EvalReport) -> str | None:
    if not report.excluded:
        return None
    reasons: dict[str, int] = {}
    for reason in report.excluded.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    parts = ", ".join(f"{count} {reason}" for reason, count in reasons.items())
    return f"{len(report.excluded)} question(s) left out of the retrieval metrics: {parts}"


# --- Markdown ----------------------------------------------------------------------------------------


def _md(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def to_markdown(report: EvalReport, *, max_rows: int = DEFAULT_MAX_ROWS) -> str:
    lines = [f"# jisik evaluation — {_md(report.dataset)}", ""]
    if not report.complete and report.answers:
        lines += [f"> **INCOMPLETE**: {_md(report.answers.incomplete_reason)}", ""]
    lines += [f"- **{name}**: {_md(value)}" for name, value in _header_lines(report)]
    for text in (_missing_text(report), _excluded_text(report), *report.notes):
        if text:
            lines.append(f"- {_md(text)}")
    lines.append("")
    if report.regressions:
        lines += ["## Regressions against the baseline", ""]
        lines += [f"- {_md(r.message())}" for r in report.regressions]
        lines.append("")
    if report.runs:
        lines += ["## Retrieval", "", "Mean over questions, with a 95% bootstrap confidence interval.", ""]
        lines.append("| metric | " + " | ".join(_md(r.name) for r in report.runs) + " |")
        lines.append("|---|" + "---|" * len(report.runs))
        for metric in _metric_names(report.runs):
            cells = [r.metrics[metric].format() if metric in r.metrics else "–" for r in report.runs]
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
        lines += ["", "| run | mode | k | chunk size | questions | mean ms | p50 ms | p95 ms | batch |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for run in report.runs:
            lat = run.latency
            lines.append(f"| {_md(run.name)} | {run.mode} | {run.k} | {run.chunk_size or 'kb default'} | "
                         f"{len(run.questions)} | {lat.mean_ms:.1f} | {lat.p50_ms:.1f} | {lat.p95_ms:.1f} | "
                         f"{run.batch_size} |")
        lines.append("")
    if report.answers:
        lines += _answers_markdown(report.answers, max_rows)
    for run in report.runs:
        shown = _ordered_questions(run, max_rows)
        lines += [f"## Questions — {_md(run.name)}", "",
                  f"{len(shown)} of {len(run.questions)} shown, misses first."
                  if len(shown) < len(run.questions) else "Misses first.", "",
                  "| question | gold | retrieved (✓ = gold) | hit rank |", "|---|---|---|---|"]
        for q in shown:
            lines.append(f"| {_md(q.question)} | {_md(', '.join(q.gold))} | {_md(_retrieved_text(q))} | "
                         f"{q.hit_rank if q.hit_rank is not None else 'miss'} |")
        lines.append("")
    return "\n".join(lines)


def _answers_markdown(answers: AnswerResult, max_rows: int) -> list[str]:
    lines = ["## Answers", "", f"LLM: {_md(answers.llm)}" + (f"; judge: {_md(answers.judge)}" if answers.judge else ""),
             ""]
    if answers.skipped_without_answers:
        lines += [f"{answers.skipped_without_answers} question(s) have no reference answer and were not asked.", ""]
    lines += ["| metric | value | questions | unparsable judge replies |", "|---|---|---|---|"]
    for metric, value, failures in answers.metric_rows():
        shown = value.format() if value else "no parsable reply"
        lines.append(f"| {metric} | {shown} | {value.n if value else 0} | {'' if failures is None else failures} |")
    if answers.citation_definition:
        lines += ["", f"citation_accuracy: {_md(answers.citation_definition)}."]
    lat = answers.latency
    lines += ["", f"Latency per answer: mean {lat.mean_ms:.0f} ms, p50 {lat.p50_ms:.0f} ms, p95 {lat.p95_ms:.0f} ms."]
    lines += ["", "| question | reference | answer | EM | F1 | found |", "|---|---|---|---|---|---|"]
    for record in sorted(answers.records, key=lambda r: r.f1)[:max_rows]:
        lines.append(f"| {_md(record.question)} | {_md(' / '.join(record.answers))} | {_md(record.prediction[:300])} "
                     f"| {record.em:.0f} | {record.f1:.2f} | {'yes' if record.found else 'no'} |")
    lines.append("")
    return lines


# --- HTML --------------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:13px}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.ci{color:#777;font-size:11px} .miss{color:#b00020;font-weight:bold} .gold{color:#087f23;font-weight:bold}
.banner{background:#fdecea;border:1px solid #b00020;padding:0.8em;margin:1em 0}
.warn{background:#fff8e1;border:1px solid #e0a800;padding:0.6em;margin:0.6em 0}
.plots{display:flex;flex-wrap:wrap;gap:12px} details{margin:0.5em 0} summary{cursor:pointer;font-weight:bold}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def to_html(report: EvalReport, *, max_rows: int = DEFAULT_MAX_ROWS) -> str:
    """One self-contained HTML page: inline CSS and SVG, no scripts, no external resources."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>jisik evaluation — {_e(report.dataset)}</title><style>{_STYLE}</style></head><body>",
           f"<h1>jisik evaluation — {_e(report.dataset)}</h1>"]
    if not report.complete and report.answers:
        out.append(f'<div class="banner"><b>INCOMPLETE</b>: {_e(report.answers.incomplete_reason)}</div>')
    out.append("<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in _header_lines(report))
               + "</table>")
    for text in (_missing_text(report), _excluded_text(report)):
        if text:
            out.append(f'<div class="warn">{_e(text)}</div>')
    out.extend(f"<p>{_e(note)}</p>" for note in report.notes)
    if report.regressions:
        out.append('<div class="banner"><b>Regressions against the baseline</b><ul>'
                   + "".join(f"<li>{_e(r.message())}</li>" for r in report.regressions) + "</ul></div>")
    if report.runs:
        out.append("<h2>Retrieval</h2><p>Mean over questions; brackets hold the 95% bootstrap confidence "
                   "interval.</p>")
        out.append(_html_metrics_table(report.runs))
        curves = {run.name: [(float(i + 1), v) for i, v in enumerate(run.recall_curve)] for run in report.runs}
        plots = [svg_line_chart(curves, title="recall@k", x_label="k (chunks retrieved)", y_label="mean recall")]
        all_latencies = [v for run in report.runs for v in run.latencies_ms]
        top = percentile(all_latencies, 99) if all_latencies else 1.0
        for index, run in enumerate(report.runs):
            clipped = [min(v, top) for v in run.latencies_ms]
            plots.append(svg_histogram(clipped, title=f"latency — {run.name} (p50 {run.latency.p50_ms:.1f} ms)",
                                       x_label="ms per query (top 1% clipped)",
                                       x_range=(0.0, top * 1.02 or 1.0), color=PALETTE[index % len(PALETTE)]))
        out.append('<div class="plots">' + "".join(plots) + "</div>")
        out.append("<table><tr><th>run</th><th>mode</th><th>k</th><th>chunk size</th><th>chunks</th>"
                   "<th>questions</th><th>mean ms</th><th>p50 ms</th><th>p95 ms</th><th>batch</th></tr>")
        for run in report.runs:
            lat = run.latency
            out.append(f"<tr><td>{_e(run.name)}</td><td>{_e(run.mode)}</td><td class=num>{run.k}</td>"
                       f"<td class=num>{_e(run.chunk_size or 'kb default')}</td><td class=num>{run.chunks}</td>"
                       f"<td class=num>{len(run.questions)}</td><td class=num>{lat.mean_ms:.1f}</td>"
                       f"<td class=num>{lat.p50_ms:.1f}</td><td class=num>{lat.p95_ms:.1f}</td>"
                       f"<td class=num>{run.batch_size}</td></tr>")
        out.append("</table>")
    if report.answers:
        out.append(_html_answers(report.answers, max_rows))
    for index, run in enumerate(report.runs):
        out.append(_html_questions(run, max_rows, open_=index == 0))
    out.append("</body></html>")
    return "\n".join(out)


def _html_metrics_table(runs: Sequence[RunResult]) -> str:
    rows = ["<table><tr><th>metric</th>" + "".join(f"<th>{_e(r.name)}</th>" for r in runs) + "</tr>"]
    for metric in _metric_names(runs):
        cells = []
        for run in runs:
            value = run.metrics.get(metric)
            cells.append("<td class=num>–</td>" if value is None else
                         f'<td class=num>{value.mean:.3f} <span class="ci">[{value.low:.3f}, {value.high:.3f}]'
                         f"</span></td>")
        rows.append(f"<tr><th>{_e(metric)}</th>{''.join(cells)}</tr>")
    rows.append("</table>")
    return "".join(rows)


def _html_answers(answers: AnswerResult, max_rows: int) -> str:
    out = [f"<h2>Answers</h2><p>LLM: {_e(answers.llm)}" + (f"; judge: {_e(answers.judge)}" if answers.judge else "")
           + "</p>"]
    if answers.skipped_without_answers:
        out.append(f"<p>{answers.skipped_without_answers} question(s) have no reference answer and were not asked.</p>")
    out.append("<table><tr><th>metric</th><th>mean [95% CI]</th><th>questions</th>"
               "<th>unparsable judge replies</th></tr>")
    for metric, value, failures in answers.metric_rows():
        shown = value.format() if value else "no parsable reply"
        out.append(f"<tr><th>{_e(metric)}</th><td class=num>{_e(shown)}</td><td class=num>{value.n if value else 0}"
                   f"</td><td class=num>{'' if failures is None else failures}</td></tr>")
    out.append("</table>")
    if answers.citation_definition:
        out.append(f"<p>citation_accuracy: {_e(answers.citation_definition)}.</p>")
    lat = answers.latency
    out.append(f"<p>Latency per answer: mean {lat.mean_ms:.0f} ms, p50 {lat.p50_ms:.0f} ms, "
               f"p95 {lat.p95_ms:.0f} ms.</p>")
    records = sorted(answers.records, key=lambda r: r.f1)[:max_rows]
    out.append(f"<details><summary>{len(records)} of {len(answers.records)} answers, lowest F1 first</summary>"
               "<table><tr><th>question</th><th>reference</th><th>answer</th><th>EM</th><th>F1</th>"
               "<th>citations</th><th>found</th><th>ms</th></tr>")
    for r in records:
        out.append(f"<tr><td>{_e(r.question)}</td><td>{_e(' / '.join(r.answers))}</td><td>{_e(r.prediction)}</td>"
                   f"<td class=num>{r.em:.0f}</td><td class=num>{r.f1:.2f}</td><td>{_e('; '.join(r.citations))}</td>"
                   f"<td>{'yes' if r.found else 'no'}</td><td class=num>{r.latency_ms:.0f}</td></tr>")
    out.append("</table></details>")
    return "".join(out)


def _html_questions(run: RunResult, max_rows: int, *, open_: bool) -> str:
    shown = _ordered_questions(run, max_rows)
    misses = sum(1 for q in run.questions if q.hit_rank is None)
    out = [f"<details{' open' if open_ else ''}><summary>Questions — {_e(run.name)}: {misses} of "
           f"{len(run.questions)} missed (showing {len(shown)}, misses first)</summary>",
           "<table><tr><th>question</th><th>gold</th><th>retrieved</th><th>hit rank</th><th>ms</th></tr>"]
    for q in shown:
        retrieved = "<br>".join(
            f'<span{" class=gold" if r.relevant else ""}>{r.rank}. {_e(r.source)}'
            f'{"" if r.page is None else f" p.{r.page}"}</span> <span class="ci">{r.score:.3f}</span>'
            for r in q.retrieved)
        rank = f"<td class=num>{q.hit_rank}</td>" if q.hit_rank is not None else '<td class="miss">miss</td>'
        out.append(f"<tr><td>{_e(q.question)}</td><td>{_e(', '.join(q.gold))}</td><td>{retrieved}</td>{rank}"
                   f"<td class=num>{q.latency_ms:.1f}</td></tr>")
    out.append("</table></details>")
    return "".join(out)
