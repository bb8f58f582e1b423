"""``jisik tune embed``: adapt the e5 embedder to a knowledge base's own chunks, and install it if it helps."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from jisik.cli.app import JsonOption, KbOption, console, err_console, progress_bars, run
from jisik.progress import PLAIN_PROGRESS_SECONDS, format_seconds


class _TrainingProgress:
    """The tuning callback ``(stage, done, total, metrics)`` as plain stderr lines: the plan before the first
    step, then a step line with the loss at most every PLAIN_PROGRESS_SECONDS (and on the last step)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = self.last = time.monotonic()

    def __call__(self, stage: str, done: int, total: int, metrics: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if stage == "plan":
            estimate = metrics.get("estimated_seconds", float("nan"))
            about = f", about {format_seconds(estimate)} here" if estimate == estimate else ""
            self._say(f"training {total:,} steps on {int(metrics['pairs']):,} pseudo-query pairs{about}")
            self.started = now
        elif stage == "train" and (done >= total or now - self.last >= PLAIN_PROGRESS_SECONDS):
            self.last = now
            self._say(f"step {done:,}/{total:,} · loss {metrics['loss']:.4f} · in-batch top-1 "
                      f"{metrics['in_batch_accuracy']:.2f} · {format_seconds(now - self.started)}")
        elif stage == "evaluate" and done < total:
            self._say(f"evaluating the {'current' if done == 0 else 'tuned'} embedder on the held-out pseudo-queries")

    @staticmethod
    def _say(line: str) -> None:
        err_console.print(line, highlight=False, markup=False, soft_wrap=True)


def _scores(values: Mapping[str, float]) -> str:
    """
    >>> _scores({"mrr@10": 0.51234, "r@5": 0.7, "r@1": 0.3})
    'MRR@10 0.5123, R@5 0.7000'
    """
    return f"MRR@10 {values['mrr@10']:.4f}, R@5 {values['r@5']:.4f}"


def embed(
    out: Annotated[Path, typer.Option("--out", metavar="DIR", show_default=False, help="run folder to write")],
    kb: KbOption = Path("kb"),
    steps: Annotated[int | None, typer.Option("--steps", metavar="N", show_default=False,
                                              help="optimizer steps (default: --epochs passes over the pairs)")] = None,
    epochs: Annotated[int, typer.Option("--epochs", metavar="N", help="passes over the pseudo-query pairs")] = 1,
    batch_size: Annotated[int, typer.Option("--batch-size", metavar="N",
                                            help="pairs per step; the others in the batch are the negatives")] = 32,
    learning_rate: Annotated[float, typer.Option("--learning-rate", metavar="LR", help="peak learning rate "
                                                                                        "(AdamW)")] = 2e-5,
    max_queries: Annotated[int, typer.Option("--max-queries", metavar="N",
                                             help="pseudo-queries made (a stable sample of the chunks)")] = 4096,
    mode: Annotated[str, typer.Option("--mode", metavar="MODE", help="pseudo-queries: sentence (one sentence of "
                                                                     "the chunk) | title (title > section)")
                    ] = "sentence",
    keep_query: Annotated[float, typer.Option("--keep-query", metavar="F",
                                              help="share of pairs whose passage keeps the query sentence")] = 0.0,
    train_layers: Annotated[int | None, typer.Option("--train-layers", metavar="N", show_default=False,
                                                     help="train only the top N layers (default: all)")] = None,
    held_out: Annotated[float, typer.Option("--held-out", metavar="F", help="share of documents kept apart for "
                                                                            "the before/after check")] = 0.1,
    device: Annotated[str, typer.Option("--device", metavar="DEV", help="auto | cpu | cuda | mps")] = "auto",
    threads: Annotated[int | None, typer.Option("--threads", metavar="N", show_default=False,
                                                help="PyTorch CPU threads (default: every core; on a busy machine "
                                                     "1 is often faster)")] = None,
    report_to: Annotated[list[str] | None, typer.Option("--report-to", metavar="TRACKER", show_default=False,
                                                        help="tensorboard (default), wandb or none; metrics.csv "
                                                             "always")] = None,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="sampling, split and batch order")] = 0,
    install: Annotated[bool, typer.Option("--install", help="then point the knowledge base at the tuned model and "
                                                            "re-embed, if it beats the current one")] = False,
    install_only: Annotated[bool, typer.Option("--install-only", help="install the finished run in --out, without "
                                                                      "training")] = False,
    as_json: JsonOption = False,
) -> None:
    """Tune the e5 embedder on the knowledge base's own chunks (no labels: sentences as pseudo-queries)."""

    def body() -> None:
        from jisik.errors import ConfigError
        from jisik.tune.embedder import EmbedTuneOptions, tune_embedder
        from jisik.tune.embedder import install as install_run
        from jisik.tune.embedder_data import QueryMode
        from jisik.tune.hardware import DeviceChoice
        from jisik.tune.runs import load_manifest

        if device not in ("auto", "cpu", "cuda", "mps"):
            raise ConfigError(f"--device '{device}' is not one of auto | cpu | cuda | mps")
        if install_only:
            manifest = load_manifest(out)
        else:
            trackers = tuple(t for t in (report_to or ["tensorboard"]) if t != "none")
            options = EmbedTuneOptions(steps=steps, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                       max_queries=max_queries, mode=cast(QueryMode, mode), keep_query=keep_query,
                                       train_layers=train_layers, held_out=held_out, seed=seed,
                                       device=cast(DeviceChoice, device), threads=threads, report_to=trackers)
            manifest = tune_embedder(kb, out, options, progress=_TrainingProgress(not as_json))
        result: dict[str, Any] = {"run": str(out), "manifest": asdict(manifest)}
        if not as_json and not install_only:
            _print_run(manifest, out)
        if install or install_only:
            with progress_bars(not as_json) as progress:
                result["install"] = install_run(out, kb, progress=progress)
            if not as_json:
                done = result["install"]
                console.print(f"installed {done['model']} into {done['kb']}: {done['chunks']} chunks re-embedded "
                              f"(held-out {_scores(done['after'])}; was {_scores(done['before'])})", highlight=False)
        elif not as_json:
            console.print(f"  install it: jisik tune embed --kb {kb} --out {out} --install-only", highlight=False)
        if as_json:
            console.print_json(json.dumps(result, ensure_ascii=False, default=str))

    run(body)


def _print_run(manifest: Any, out: Path) -> None:
    evaluation = manifest.evaluation
    console.print(f"embed: {manifest.status} in {format_seconds(manifest.seconds or 0.0)} → {out}", highlight=False)
    for note in manifest.notes:
        console.print(f"  {note}", highlight=False)
    for phase, label in (("before", "current"), ("after", "tuned")):
        if phase in evaluation:
            console.print(f"  {label:<8} held-out {_scores(evaluation[phase])}", highlight=False)
