"""``jisik tune classify`` (fine-tune a sequence classifier) and ``jisik tune report`` (a run's HTML page)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from jisik.cli.app import JsonOption, console, err_console, run
from jisik.progress import PLAIN_PROGRESS_SECONDS, format_seconds
from jisik.tune.hardware import DeviceChoice, Precision


def _split(text: str | None) -> tuple[str, ...]:
    """
    >>> _split("query, value"), _split(None)
    (('query', 'value'), ())
    """
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def _choice(value: str, alias: Any, option: str) -> Any:
    from jisik.errors import ConfigError

    allowed = get_args(alias)
    if value not in allowed:
        raise ConfigError(f"{option} '{value}' is not one of {' | '.join(allowed)}")
    return value


@contextmanager
def training_progress(enabled: bool) -> Iterator[Callable[[int, int, Mapping[str, Any]], None]]:
    """A ``(step, max_steps, last log)`` callback: a bar with the latest loss on a terminal, a plain line every
    PLAIN_PROGRESS_SECONDS otherwise (a log, CI), nothing when disabled (``--json``)."""
    if not enabled:
        yield lambda step, total, logs: None
        return
    if not err_console.is_terminal:
        started = last = time.monotonic()

        def plain(step: int, total: int, logs: Mapping[str, Any]) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PLAIN_PROGRESS_SECONDS or step >= total:
                last = now
                loss = f", loss {logs['loss']:.4f}" if isinstance(logs.get("loss"), float) else ""
                err_console.print(f"training: step {step:,}/{total:,}{loss}, {format_seconds(now - started)} elapsed",
                                  highlight=False, markup=False)

        yield plain
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("training"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"),
               TimeRemainingColumn(), TextColumn("{task.fields[loss]}"))
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task("training", total=None, loss="")

        def draw(step: int, total: int, logs: Mapping[str, Any]) -> None:
            loss = logs.get("loss")
            if isinstance(loss, float):
                bar.update(task, completed=step, total=total, loss=f"loss {loss:.4f}")
            else:
                bar.update(task, completed=step, total=total)

        yield draw


def classify(
    model: Annotated[Path, typer.Option("--model", metavar="PATH", help="the encoder to tune: a Hugging Face model "
                                                                        "folder (BERT, ELECTRA, RoBERTa, XLM-R …)")],
    data: Annotated[Path, typer.Option("--data", metavar="FILE", help="labelled rows: .csv/.tsv with a header "
                                                                      "row, or .jsonl")],
    out: Annotated[Path, typer.Option("--out", metavar="RUN", help="the run folder to create")],
    label_column: Annotated[str, typer.Option(metavar="NAME", help="the column holding the label")] = "label",
    text_column: Annotated[str, typer.Option(metavar="NAME", help="the column holding the text")] = "text",
    eval_data: Annotated[Path | None, typer.Option(metavar="FILE", help="validation rows (default: a stratified "
                                                                        "--validation share of --data)")] = None,
    validation: Annotated[float, typer.Option(metavar="FRACTION", help="share of --data held out")] = 0.1,
    epochs: Annotated[float, typer.Option(metavar="N")] = 3.0,
    learning_rate: Annotated[float | None, typer.Option(metavar="LR", help="default 5e-5 (full), 5e-4 (--lora)")
                             ] = None,
    batch_size: Annotated[int, typer.Option(metavar="N")] = 16,
    max_length: Annotated[int, typer.Option(metavar="TOKENS", help="longer texts are cut")] = 256,
    lora: Annotated[bool, typer.Option("--lora", help="train LoRA adapters and the head, then merge them")] = False,
    lora_r: Annotated[int, typer.Option(metavar="N")] = 8,
    lora_alpha: Annotated[int, typer.Option(metavar="N")] = 16,
    lora_dropout: Annotated[float, typer.Option(metavar="P")] = 0.1,
    lora_target: Annotated[str | None, typer.Option(metavar="NAMES", help="comma-separated module names (default: "
                                                                          "PEFT's for the architecture)")] = None,
    device: Annotated[str, typer.Option(metavar="DEVICE", help=" | ".join(get_args(DeviceChoice)))] = "auto",
    precision: Annotated[str, typer.Option(metavar="PRECISION", help=" | ".join(get_args(Precision)))] = "auto",
    seed: Annotated[int, typer.Option(metavar="N")] = 42,
    eval_steps: Annotated[int | None, typer.Option(metavar="N", help="evaluate every N steps (default: ten times)")
                          ] = None,
    report_to: Annotated[str, typer.Option(metavar="TRACKERS", help="tensorboard, wandb or none (metrics.csv is "
                                                                    "always written)")] = "tensorboard",
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in --out from its last checkpoint")
                      ] = False,
    keep_checkpoints: Annotated[bool, typer.Option("--keep-checkpoints", help="keep RUN/checkpoints after "
                                                                              "success")] = False,
    as_json: JsonOption = False,
) -> None:
    """Fine-tune a text classifier (full or LoRA); accuracy and macro-F1 before and after go to RUN/run.json."""

    def body() -> None:
        from jisik.tune import _deps
        from jisik.tune.classify import ClassifyOptions, train_classifier

        _deps.transformers().utils.logging.disable_progress_bar()  # ours below, not a bar per weight file
        options = ClassifyOptions(
            text_column=text_column, label_column=label_column, eval_data=eval_data, validation=validation,
            epochs=epochs, learning_rate=learning_rate, batch_size=batch_size, max_length=max_length, lora=lora,
            lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
            lora_targets=_split(lora_target) or None, device=_choice(device, DeviceChoice, "--device"),
            precision=_choice(precision, Precision, "--precision"), seed=seed, eval_steps=eval_steps,
            report_to=_split(report_to) or ("none",), resume=resume, keep_checkpoints=keep_checkpoints)

        def say(message: str) -> None:
            if not as_json:
                err_console.print(message, highlight=False, markup=False, soft_wrap=True)

        with training_progress(not as_json) as progress:
            result = train_classifier(model, data, out, options, progress=progress, notify=say)
        if as_json:
            keys = ("accuracy", "macro_f1")
            console.print_json(json.dumps({
                "run": str(result.folder), "model": str(result.model), "labels": result.labels,
                "before": {k: result.before[k] for k in keys}, "after": {k: result.after[k] for k in keys},
                "seconds": result.seconds}, ensure_ascii=False))
            return
        console.print(f"accuracy {result.before['accuracy']:.3f} → {result.after['accuracy']:.3f}, macro-F1 "
                      f"{result.before['macro_f1']:.3f} → {result.after['macro_f1']:.3f} on "
                      f"{result.after['n']} validation examples ({format_seconds(result.seconds)})", highlight=False)
        console.print(f"model: {result.model}  (transformers.pipeline('text-classification', model=...))",
                      highlight=False, soft_wrap=True, markup=False)
        console.print(f"next: jisik tune report {result.folder}", highlight=False, soft_wrap=True, markup=False)

    run(body)


def report(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="a `jisik tune …` run folder")],
    open_: Annotated[bool, typer.Option("--open", help="open the page in the default browser")] = False,
    as_json: JsonOption = False,
) -> None:
    """Write RUN/report.html: loss curves, evaluation before and after, confusion matrix, artefacts."""

    def body() -> None:
        from jisik.tune.report import write_report
        from jisik.tune.runs import load_manifest

        path = write_report(run_dir)
        if as_json:
            manifest = load_manifest(run_dir)
            console.print_json(json.dumps({"report": str(path), "kind": manifest.kind, "status": manifest.status,
                                           "evaluation": manifest.evaluation}, ensure_ascii=False))
        else:
            console.print(f"report: {path}", highlight=False, soft_wrap=True, markup=False)
        if open_:
            import webbrowser

            webbrowser.open(path.resolve().as_uri())

    run(body)
