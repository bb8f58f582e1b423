"""Metrics of a training run: ``metrics.csv`` always, TensorBoard when installed, Weights & Biases when asked for;
and the guard that stops a run whose loss is no longer a number.

``metrics.csv`` is long-form (``step,epoch,split,name,value``) so a metric added later needs no new column and
``jisik tune report`` can draw any of them.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jisik.errors import ConfigError, TrainingDivergedError
from jisik.tune import _deps

METRICS_FILE = "metrics.csv"
FIELDS = ("step", "epoch", "split", "name", "value")


class RunLog:
    """Append-only metrics of one run, to ``folder/metrics.csv`` and the trackers named in ``report_to``
    (``tensorboard`` → ``folder/tb``; ``wandb`` needs ``WANDB_API_KEY`` or ``wandb login``)."""

    def __init__(self, folder: Path, report_to: tuple[str, ...] = ("tensorboard",), *, run_name: str = "") -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / METRICS_FILE
        new = not self.path.exists()
        self._file = self.path.open("a", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(FIELDS)
        self._tensorboard: Any = None
        self._wandb: Any = None
        unknown = set(report_to) - {"tensorboard", "wandb", "none"}
        if unknown:
            raise ConfigError(f"unknown tracker(s) {sorted(unknown)} in --report-to",
                              hint="use tensorboard, wandb or none (metrics.csv is always written)")
        if "tensorboard" in report_to:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tensorboard = SummaryWriter(str(folder / "tb"))
            except ImportError:  # tensorboard is optional even inside the extra
                self._tensorboard = None
        if "wandb" in report_to:
            try:
                import wandb
            except ImportError:
                raise ConfigError("--report-to wandb needs the wandb package", hint="pip install wandb") from None
            if not (os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") in ("offline", "disabled")):
                raise ConfigError("Weights & Biases is not configured",
                                  hint="set WANDB_API_KEY (or WANDB_MODE=offline), or use --report-to tensorboard")
            self._wandb = wandb.init(project=os.environ.get("WANDB_PROJECT", "jisik"), name=run_name or None,
                                     dir=str(folder))

    def log(self, step: int, metrics: Mapping[str, float], *, split: str = "train", epoch: float | None = None) -> None:
        """Record ``metrics`` at ``step``; values that are not finite numbers are written as ``nan``."""
        for name, value in metrics.items():
            number = float(value)
            self._csv.writerow((step, "" if epoch is None else f"{epoch:.4f}", split, name, repr(number)))
            if self._tensorboard is not None and math.isfinite(number):
                self._tensorboard.add_scalar(f"{split}/{name}", number, step)
        self._file.flush()
        if self._wandb is not None:
            self._wandb.log({f"{split}/{k}": float(v) for k, v in metrics.items()}, step=step)

    def close(self) -> None:
        self._file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()
        if self._wandb is not None:
            self._wandb.finish()


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    """The rows of ``folder/metrics.csv`` with numbers parsed (``[]`` when the run logged nothing)."""
    path = folder / METRICS_FILE
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return [{"step": int(row["step"]), "epoch": float(row["epoch"]) if row["epoch"] else None,
                 "split": row["split"], "name": row["name"], "value": float(row["value"])}
                for row in csv.DictReader(handle)]


# Keys transformers' Trainer logs that are bookkeeping, not metrics worth a curve.
_SKIP = {"epoch", "total_flos", "train_runtime", "train_samples_per_second", "train_steps_per_second"}


def split_trainer_logs(logs: Mapping[str, Any]) -> tuple[str, dict[str, float]]:
    """A Trainer log record as (split, metrics): ``eval_*`` keys go to ``eval`` without the prefix.

    >>> split_trainer_logs({"eval_loss": 1.5, "epoch": 0.5})
    ('eval', {'loss': 1.5})
    >>> split_trainer_logs({"loss": 2.0, "grad_norm": 0.3, "learning_rate": 1e-4})
    ('train', {'loss': 2.0, 'grad_norm': 0.3, 'learning_rate': 0.0001})
    """
    numeric = {k: float(v) for k, v in logs.items() if k not in _SKIP and isinstance(v, int | float)}
    if any(k.startswith("eval_") for k in numeric):
        return "eval", {k.removeprefix("eval_"): v for k, v in numeric.items() if k.startswith("eval_")}
    return "train", numeric


def metrics_callback(log: RunLog, progress: Any = None) -> Any:
    """A transformers ``TrainerCallback`` that sends every log record to ``log`` and, when given,
    calls ``progress(step, max_steps, logs)`` so the CLI can draw its bar and loss."""
    transformers = _deps.transformers()

    class _Metrics(transformers.TrainerCallback):  # type: ignore[misc,name-defined]
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if not logs:
                return
            split, metrics = split_trainer_logs(logs)
            if metrics:
                log.log(int(state.global_step), metrics, split=split, epoch=state.epoch)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if progress is not None:
                progress(int(state.global_step), int(state.max_steps), state.log_history[-1] if state.log_history
                         else {})

    return _Metrics()


def describe_batch(inputs: Mapping[str, Any], tokenizer: Any, *, chars: int = 120) -> str:
    """The first example of a batch, decoded and cut to ``chars``, to name the batch in an error."""
    ids = inputs.get("input_ids")
    if ids is None or tokenizer is None:
        return "(no input_ids)"
    try:
        first = ids[0].tolist()
        text = tokenizer.decode(first, skip_special_tokens=True)
    except Exception:  # a message helper must never raise over the error it describes
        return f"shape {tuple(getattr(ids, 'shape', ()))}"
    text = " ".join(text.split())
    return repr(text[:chars] + ("…" if len(text) > chars else ""))


def finite_loss_trainer(trainer_class: type) -> type:
    """A subclass of a transformers/TRL trainer whose every training step checks its loss and raises
    :class:`TrainingDivergedError` naming the step, the batch within the epoch and its first example,
    before a NaN can reach the weights through the optimizer."""

    class FiniteLoss(trainer_class):  # type: ignore[misc]
        _jisik_batch = 0

        def training_step(self, model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
            loss = super().training_step(model, inputs, *args, **kwargs)
            self._jisik_batch += 1
            value = float(loss.detach().float().item())
            if not math.isfinite(value):
                step = int(self.state.global_step) + 1
                tokenizer = getattr(self, "processing_class", None) or getattr(self, "tokenizer", None)
                raise TrainingDivergedError(
                    f"the training loss became {value} at step {step} (batch {self._jisik_batch} of this run, "
                    f"epoch {self.state.epoch or 0:.2f}); first example of the batch: "
                    f"{describe_batch(inputs, tokenizer)}",
                    hint="lower --learning-rate, use --precision fp32 or bf16 instead of fp16, or check that batch's "
                         "rows; the last checkpoint is intact (resume with --resume)")
            return loss

    FiniteLoss.__name__ = f"FiniteLoss{trainer_class.__name__}"
    return FiniteLoss
