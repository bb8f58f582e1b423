"""``jisik eval``: measure retrieval (and answers) on a dataset, write reports, gate CI on a baseline.

:func:`register` adds the command to a Typer app (:mod:`jisik.cli` registers it on the main one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jisik.cli.app import console, err_console, open_kb
from jisik.cli.app import run as run_command
from jisik.errors import EvaluationError

if TYPE_CHECKING:
    from jisik.evaluate.report import EvalReport
    from jisik.generate.llms.base import LLM

MODES = ("dense", "bm25", "hybrid", "mmr")
_NAME = re.compile(r"[\w.-]+")


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command to ``app``."""
    app.command("eval")(eval_command)


def _int_list(text: str, option: str) -> list[int]:
    """
    >>> _int_list("1, 3,5", "--k")
    [1, 3, 5]
    """
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise EvaluationError(f"{option} '{text}' is not a comma-separated list of integers",
                              hint=f"e.g. {option} 1,3,5,10") from None
    if not values or min(values) < 1:
        raise EvaluationError(f"{option} needs positive integers, got '{text}'", hint=f"e.g. {option} 1,3,5,10")
    return list(dict.fromkeys(values))


def _modes(text: str) -> list[str]:
    modes = list(dict.fromkeys(m.strip().lower() for m in text.split(",") if m.strip()))
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise EvaluationError(f"unknown mode(s) in --modes: {', '.join(bad) or '(none given)'}",
                              hint=f"choose from {','.join(MODES)}")
    return modes


def eval_path(kb_path: Path, name: str) -> Path:
    """Where ``--save NAME`` / ``--baseline NAME`` live: ``<kb>/evals/NAME.json``; a path to a .json file
    is taken as it is (for baselines kept in the repository).

    >>> eval_path(Path("kb"), "nightly").as_posix(), eval_path(Path("kb"), "ci/base.json").as_posix()
    ('kb/evals/nightly.json', 'ci/base.json')
    """
    if name.endswith(".json") or "/" in name or "\\" in name:
        return Path(name).expanduser()
    if not _NAME.fullmatch(name):
        raise EvaluationError(f"'{name}' is not a usable evaluation name",
                              hint="use letters, digits, '.', '-' and '_' (e.g. --save nightly-2024-06)")
    return kb_path / "evals" / f"{name}.json"


def _create_judge(spec: str) -> LLM:
    """The judge model for ``--judge SPEC``, checked with one tiny request (so a judge that is down
    stops the run before anything is measured or written)."""
    from jisik.config import LLMConfig
    from jisik.evaluate.runner import check_judge
    from jisik.generate.llms import create_llm, parse_llm_spec

    settings = LLMConfig(**parse_llm_spec(spec))
    if settings.backend == "extractive":
        raise EvaluationError("the extractive answerer cannot judge answers",
                              hint="give --judge a model, e.g. --judge ollama:qwen2.5:7b")
    judge: LLM = create_llm(settings)
    check_judge(judge)
    return judge


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    labels = {"files": "ingesting", "index": "indexing", "answers": "answering"}
    if not enabled:
        yield lambda stage, done, total: None
        return
    columns = (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in labels and not stage.startswith("search "):
                return
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield report


def _opt(*names: str, metavar: str | None = None, help: str) -> Any:
    return typer.Option(*names, metavar=metavar, help=help)


DatasetArg = Annotated[Path, typer.Argument(metavar="DATASET", help="questions: .jsonl, .json (SQuAD/KorQuAD, "
                                            "MS MARCO list), .csv/.tsv, or a BEIR folder")]
KbOpt = Annotated[Path, typer.Option("--kb", envvar="JISIK_KB", metavar="PATH", help="knowledge base folder")]
ListOpt = Annotated[str, _opt(metavar="LIST", help="comma-separated search modes to compare: dense,bm25,hybrid,mmr")]
KOpt = Annotated[str, _opt("--k", "-k", metavar="LIST", help="cut-offs for hit/recall/precision/nDCG, e.g. 1,3,5,10")]
SizesOpt = Annotated[str | None, _opt(metavar="LIST", help="also compare chunk sizes, e.g. 400,800 (each size other "
                                                           "than the knowledge base's is built once in "
                                                           "<kb>/evals/cache)")]
AnswersOpt = Annotated[bool, _opt("--answers", help="also ask the questions that have reference answers and score "
                                                    "EM/F1, citations, groundedness, found-rate")]
LlmOpt = Annotated[str | None, _opt(metavar="SPEC", help="answering model (default: [llm] in jisik.toml), e.g. "
                                                         "ollama:qwen2.5:7b")]
JudgeOpt = Annotated[str | None, _opt(metavar="SPEC", help="LLM that rates faithfulness and relevance 1-5 (needs "
                                                           "--answers), e.g. ollama:qwen2.5:7b")]
HtmlOpt = Annotated[Path | None, _opt(metavar="FILE", help="write a self-contained HTML report here")]
MarkdownOpt = Annotated[Path | None, _opt(metavar="FILE", help="write a Markdown report here")]
SaveOpt = Annotated[str | None, _opt(metavar="NAME", help="save the results as <kb>/evals/NAME.json")]
BaselineOpt = Annotated[str | None, _opt(metavar="NAME", help="compare with a saved NAME (or a .json path); exit 1 "
                                                              "on any drop larger than --tolerance")]
ToleranceOpt = Annotated[float, _opt(metavar="X", help="largest allowed drop of a metric against --baseline")]
MissingOpt = Annotated[bool, _opt("--allow-missing-gold", help="go on when gold documents are not in the knowledge "
                                                              "base (they are reported)")]
LimitOpt = Annotated[int | None, _opt(metavar="N", help="only the first N questions (a corpus stays whole)")]
CorpusOpt = Annotated[bool, _opt("--ingest-corpus", help="add the dataset's corpus to a knowledge base that already "
                                                        "holds documents (an empty one gets it anyway)")]
BatchOpt = Annotated[int, _opt(metavar="N", help="questions per search batch (1 = true per-query latency)")]
JsonOpt = Annotated[bool, _opt("--json", help="print machine-readable JSON")]


def eval_command(dataset: DatasetArg, kb: KbOpt = Path("kb"), modes: ListOpt = "dense,bm25,hybrid",
                 k: KOpt = "1,3,5,10", chunk_sizes: SizesOpt = None, answers: AnswersOpt = False,
                 llm: LlmOpt = None, judge: JudgeOpt = None, report: HtmlOpt = None, markdown: MarkdownOpt = None,
                 save: SaveOpt = None, baseline: BaselineOpt = None, tolerance: ToleranceOpt = 0.02,
                 allow_missing_gold: MissingOpt = False, limit: LimitOpt = None, ingest_corpus: CorpusOpt = False,
                 batch_size: BatchOpt = 16, as_json: JsonOpt = False) -> None:
    """Evaluate retrieval (and answers) on a dataset; compare with a baseline for CI."""
    def body() -> None:
        _evaluate(dataset=dataset, kb_path=kb, modes=modes, k=k, chunk_sizes=chunk_sizes, answers=answers, llm=llm,
                  judge_spec=judge, report_path=report, markdown_path=markdown, save=save, baseline=baseline,
                  tolerance=tolerance, allow_missing_gold=allow_missing_gold, limit=limit,
                  ingest_corpus=ingest_corpus, batch_size=batch_size, as_json=as_json)

    run_command(body)


def _evaluate(*, dataset: Path, kb_path: Path, modes: str, k: str, chunk_sizes: str | None, answers: bool,
              llm: str | None, judge_spec: str | None, report_path: Path | None, markdown_path: Path | None,
              save: str | None, baseline: str | None, tolerance: float, allow_missing_gold: bool,
              limit: int | None, ingest_corpus: bool, batch_size: int, as_json: bool) -> None:
    from jisik.evaluate import runner
    from jisik.evaluate.datasets import load_dataset
    from jisik.evaluate.gold import check_usable, preflight
    from jisik.evaluate.report import compare, load_report

    if judge_spec and not answers:
        raise EvaluationError("--judge rates answers, so it needs --answers")
    if tolerance < 0:
        raise EvaluationError(f"--tolerance must be >= 0, got {tolerance}")
    ks = _int_list(k, "--k")
    mode_list = _modes(modes)
    sizes: list[int | None] = list(_int_list(chunk_sizes, "--chunk-sizes")) if chunk_sizes else [None]
    data = load_dataset(dataset).head(limit)
    check_usable(data, answers=answers)  # before the knowledge base is opened (or created)
    with open_kb(kb_path, create=data.corpus is not None) as base, _progress(not as_json) as progress:
        save_path = eval_path(base.path, save) if save else None
        baseline_report = load_report(eval_path(base.path, baseline)) if baseline else None
        add_corpus = data.corpus is not None and (ingest_corpus or base.status()["documents"] == 0)
        # Fail fast: gold is checked against the documents the knowledge base will hold, before the
        # corpus is embedded or the judge is probed.
        planned = [(d["doc_id"], d["source"]) for d in base.documents()]
        planned += [(d.doc_id, d.source) for d in (data.corpus or [])] if add_corpus else []
        preflight(data, planned, answers=answers, allow_missing_gold=allow_missing_gold,
                  record_ids=base.config.loaders.id_field is not None)
        judge = _create_judge(judge_spec) if judge_spec else None
        if add_corpus:
            ingested = runner.ingest_corpus(base, data, progress=progress)
            err_console.print(f"corpus: {len(ingested.added)} added, {len(ingested.updated)} updated, "
                              f"{len(ingested.unchanged)} unchanged documents from {data.name}", highlight=False)
        configs = [runner.RetrievalRunConfig(name=f"{mode}@{size}" if len(sizes) > 1 else mode, mode=mode,
                                             chunk_size=size)
                   for size in sizes for mode in mode_list]
        if data.with_gold or not answers:
            result = runner.run_retrieval_eval(base, data, configs=configs, ks=ks,
                                               allow_missing_gold=allow_missing_gold, batch_size=batch_size,
                                               progress=progress)
        else:
            result = runner.build_report(base, data, ks)
            result.notes.append("no question names a gold document: retrieval was not measured")
        if answers:
            result.answers = runner.run_answer_eval(base, data, llm=llm, judge=judge, probe_judge=False,
                                                    progress=progress)
    if baseline_report is not None and baseline:
        result.baseline = baseline
        result.regressions = compare(result, baseline_report, tolerance)
    written = _write_outputs(result, report_path, markdown_path, save_path)
    _print(result, written, as_json)
    _exit_code(result)


def _write_outputs(result: EvalReport, report_path: Path | None, markdown_path: Path | None,
                   save_path: Path | None) -> dict[str, str]:
    from jisik.evaluate.report import save_report

    written: dict[str, str] = {}
    for path, render, kind in ((report_path, result.to_html, "html"), (markdown_path, result.to_markdown, "markdown")):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(), encoding="utf-8")
            written[kind] = str(path)
    if save_path is not None:
        if result.complete:
            written["saved"] = str(save_report(result, save_path))
        else:
            err_console.print(f"[yellow]not saved[/] {save_path}: the evaluation is incomplete and must not become "
                              "a baseline", highlight=False)
    return written


def _summary(result: EvalReport, written: dict[str, str]) -> dict[str, Any]:
    data = result.to_dict()
    for run, original in zip(data["runs"], result.runs, strict=True):
        run.pop("questions")
        run.pop("latencies_ms")
        lat = original.latency
        run["latency_ms"] = {"mean": lat.mean_ms, "p50": lat.p50_ms, "p95": lat.p95_ms, "max": lat.max_ms}
    if data["answers"]:
        data["answers"].pop("records")
    data["files"] = written
    return data


def _print(result: EvalReport, written: dict[str, str], as_json: bool) -> None:
    from rich.table import Table

    if as_json:
        console.print_json(json.dumps(_summary(result, written), ensure_ascii=False))
        return
    if result.missing_gold:
        err_console.print(f"[yellow]missing gold[/] {result.missing_gold['count']} reference(s) in "
                          f"{result.missing_gold['questions']} question(s), e.g. "
                          f"{'; '.join(result.missing_gold['examples'])}", highlight=False)
    if result.excluded:
        err_console.print(f"[yellow]left out[/] {len(result.excluded)} question(s) from the retrieval metrics "
                          "(no gold, or gold not in the knowledge base)", highlight=False)
    if result.runs:
        table = Table(title=f"{result.dataset}: retrieval, mean [95% CI]")
        table.add_column("metric")
        for run in result.runs:
            table.add_column(run.name, justify="right")
        names = list(dict.fromkeys(m for run in result.runs for m in run.metrics))
        for metric in names:
            table.add_row(metric, *[run.metrics[metric].format() if metric in run.metrics else "–"
                                    for run in result.runs])
        table.add_row("p50 / p95 ms", *[f"{run.latency.p50_ms:.1f} / {run.latency.p95_ms:.1f}" for run in result.runs])
        console.print(table)
    if result.answers:
        table = Table(title=f"answers ({result.answers.llm})")
        for column in ("metric", "mean [95% CI]", "questions", "unparsable"):
            table.add_column(column)
        for metric, value, failures in result.answers.metric_rows():
            table.add_row(metric, value.format() if value else "no parsable reply", str(value.n if value else 0),
                          "" if failures is None else str(failures))
        console.print(table)
    for kind, path in written.items():
        console.print(f"{kind}: {path}", highlight=False)


def _exit_code(result: EvalReport) -> None:
    failed = False
    if result.answers is not None and not result.answers.complete:
        err_console.print(f"[bold red]error:[/] evaluation incomplete: {result.answers.incomplete_reason}",
                          highlight=False, soft_wrap=True)
        failed = True
    for regression in result.regressions:
        err_console.print(regression.message(), highlight=False, soft_wrap=True)
        failed = True
    if result.baseline and not result.regressions and not failed:
        err_console.print(f"no regression against {result.baseline}", highlight=False)
    if failed:
        raise typer.Exit(1)
