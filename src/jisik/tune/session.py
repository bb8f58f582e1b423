"""What every training job shares: the device and precision, the run folder and its manifest, the estimate
printed before starting, the trainer arguments, resuming, stopping on a diverged loss, and the peak memory.

SFT, DPO and reward-model training (:mod:`jisik.tune.sft`, :mod:`jisik.tune.preference`) build a
:class:`Session`, hand its :meth:`Session.args` to their TRL trainer and run it through :meth:`Session.train`.
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jisik.errors import ConfigError, TrainingDivergedError, TuningError
from jisik.tune import _deps
from jisik.tune.hardware import (
    DeviceChoice,
    Hardware,
    Precision,
    Purpose,
    check_qlora,
    detect,
    estimate_memory,
    estimate_seconds,
    measured_flops,
    resolve_precision,
)
from jisik.tune.runs import RunManifest
from jisik.tune.tracking import RunLog, finite_loss_trainer, metrics_callback

Notify = Callable[[str], None]
Progress = Callable[[int, int, dict[str, Any]], None]
CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"


@dataclass
class LoraOptions:
    """LoRA (Hu et al. 2021): rank ``r``, scale ``alpha`` (default 2·r, the common choice that keeps the
    update's size steady when r changes), dropout, target modules (default: per architecture,
    :data:`jisik.tune.models.LORA_TARGETS`); ``full`` trains every weight instead."""

    r: int = 16
    alpha: int | None = None
    dropout: float = 0.05
    targets: tuple[str, ...] | None = None
    full: bool = False

    def config(self, model_type: str, task_type: str) -> Any:
        """PEFT's LoraConfig for a ``model_type`` model (None when training every weight)."""
        if self.full:
            return None
        if self.r < 1:
            raise ConfigError(f"--lora-r must be at least 1, got {self.r}", hint="typical ranks: 8, 16, 32, 64")
        from jisik.tune.models import lora_targets

        peft = _deps.peft()
        return peft.LoraConfig(r=self.r, lora_alpha=self.alpha or 2 * self.r, lora_dropout=self.dropout,
                               target_modules=lora_targets(model_type, self.targets), bias="none",
                               task_type=task_type)


@dataclass
class TrainOptions:
    """The loop: epochs or a step count, batch and accumulation, learning rate, lengths, evaluation, saving."""

    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float = 2e-4
    max_length: int = 1024
    packing: bool = False
    warmup_ratio: float = 0.03
    eval_steps: int = 50
    save_steps: int = 100
    logging_steps: int = 5
    seed: int = 0
    device: DeviceChoice = "auto"
    precision: Precision = "auto"
    qlora: bool = False
    gradient_checkpointing: bool = False
    resume: bool = False
    report_to: tuple[str, ...] = ("tensorboard",)
    validation_fraction: float = 0.1
    skip_bad_rows: bool = False
    chat_template: str | None = None
    eval_generate: int = 0
    max_new_tokens: int = 48


@dataclass
class Session:
    """One training run in ``out``: hardware, precision, manifest and metrics log, opened by :meth:`open`."""

    kind: str
    out: Path
    options: TrainOptions
    hardware: Hardware
    precision: str
    manifest: RunManifest
    log: RunLog
    notify: Notify
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def open(cls, kind: str, purpose: Purpose, base_model: str, data: str, out: Path, options: TrainOptions,
             extra: dict[str, Any], notify: Notify | None = None) -> Session:
        """Check the device and precision, refuse a used folder unless resuming, write the first manifest."""
        quiet_libraries()
        hardware = detect(options.device)
        precision = resolve_precision(hardware, options.precision, purpose)
        if options.qlora:
            check_qlora(hardware)
        checkpoints = out / CHECKPOINTS
        if options.resume and not _last_checkpoint(checkpoints):
            raise TuningError(f"--resume: no checkpoint in {checkpoints}",
                              hint="start without --resume, or point --out at the interrupted run's folder")
        if not options.resume and (_last_checkpoint(checkpoints) or (out / ADAPTER).exists()):
            raise TuningError(f"{out} already holds a training run",
                              hint="pass --resume to continue it from its last checkpoint, or another --out")
        # absolute paths: `jisik tune merge` may run from another folder
        base_model = str(Path(base_model).expanduser().resolve()) if Path(base_model).expanduser().exists() \
            else base_model
        data = str(Path(data).expanduser().resolve()) if Path(data).expanduser().exists() else data
        manifest = RunManifest(kind=kind, base_model=base_model, data=data,
                               options={**_plain(dataclasses.asdict(options)), **_plain(extra)},
                               hardware={"device": hardware.device, "name": hardware.name,
                                         "memory_bytes": hardware.memory_bytes, "precision": precision})
        manifest.save(out)
        log = RunLog(out, options.report_to, run_name=out.name)
        return cls(kind, out, options, hardware, precision, manifest, log, notify or _stderr)

    def planned_tokens(self, tokens: int, rows: int) -> int:
        """Training tokens of the whole run: ``tokens`` per epoch (over ``rows`` rows), or per step when
        ``max_steps`` sets the length."""
        o = self.options
        if o.max_steps < 0:
            return int(tokens * o.epochs)
        return int(o.max_steps * o.batch_size * o.grad_accum * tokens / max(rows, 1))

    def estimate(self, model: Any, tokens: int) -> None:
        """Print parameters, the memory and time estimates (from the measured matrix-product rate)."""
        from jisik.tune.models import parameter_counts

        total, trainable = parameter_counts(model)
        config = model.config
        get = getattr(config, "get_text_config", lambda: config)()
        weight_bytes = 0.55 if self.options.qlora else {"fp32": 4, "bf16": 2, "fp16": 2}[self.precision]
        memory = estimate_memory(params=total, trainable=trainable, weight_bytes=weight_bytes,
                                 batch=self.options.batch_size, seq_len=self.options.max_length,
                                 hidden=int(getattr(get, "hidden_size", 768)),
                                 layers=int(getattr(get, "num_hidden_layers", 12)),
                                 vocab=int(getattr(get, "vocab_size", 32000)))
        flops = measured_flops() if self.hardware.device == "cpu" else 1e14 if self.hardware.bf16 else 3e13
        seconds = estimate_seconds(params=total, tokens=tokens, flops_per_second=flops,
                                   full=trainable > total // 2)
        self.manifest.options["estimate"] = {"memory_bytes": memory.total, "seconds": round(seconds, 1),
                                             "tokens": tokens, "parameters": total, "trainable": trainable}
        self.notify(f"{total:,} parameters, {trainable:,} trainable ({100 * trainable / max(total, 1):.2f}%) · "
                    f"{self.hardware.device} ({self.hardware.name}), {self.precision}"
                    + (", QLoRA nf4" if self.options.qlora else ""))
        self.notify(f"estimate: about {_size(memory.total)} peak memory, about {_duration(seconds)} for "
                    f"{tokens:,} training tokens")
        if self.hardware.memory_bytes and memory.total > 0.9 * self.hardware.memory_bytes:
            self.notify(f"warning: the estimate is near or above this device's {_size(self.hardware.memory_bytes)}"
                        " — lower --batch-size or --max-length, or add --gradient-checkpointing")

    def args(self, config_class: Any, *, has_eval: bool, **extra: Any) -> Any:
        """The TRL/transformers training arguments of this session (``extra`` overrides)."""
        o = self.options
        if o.batch_size < 1 or o.grad_accum < 1:
            raise ConfigError("--batch-size and --grad-accum must be at least 1")
        if o.learning_rate <= 0:
            raise ConfigError(f"--learning-rate must be positive, got {o.learning_rate}")
        kwargs: dict[str, Any] = dict(
            output_dir=str(self.out / CHECKPOINTS), per_device_train_batch_size=o.batch_size,
            per_device_eval_batch_size=o.batch_size, gradient_accumulation_steps=o.grad_accum,
            learning_rate=o.learning_rate, num_train_epochs=o.epochs, max_steps=o.max_steps,
            warmup_steps=o.warmup_ratio, logging_steps=o.logging_steps, save_strategy="steps",
            save_steps=o.save_steps, save_total_limit=2, eval_strategy="steps" if has_eval else "no",
            eval_steps=o.eval_steps if has_eval else None, seed=o.seed, data_seed=o.seed,
            bf16=self.precision == "bf16", fp16=self.precision == "fp16", use_cpu=self.hardware.device == "cpu",
            report_to=[], disable_tqdm=True, dataloader_num_workers=0, logging_first_step=True)
        if o.gradient_checkpointing:
            kwargs["gradient_checkpointing"] = True
        kwargs.update(extra)
        return config_class(**kwargs)

    def trainer(self, trainer_class: Any, progress: Progress | None, **kwargs: Any) -> Any:
        """``trainer_class`` with the NaN guard, built with our metrics callback."""
        guarded = finite_loss_trainer(trainer_class)
        trainer = guarded(**kwargs)
        transformers = _deps.transformers()
        for printer in (transformers.PrinterCallback, transformers.ProgressCallback):  # the CLI draws progress
            trainer.remove_callback(printer)
        trainer.add_callback(metrics_callback(self.log, progress))
        return trainer

    def train(self, trainer: Any) -> Any:
        """Run ``trainer`` (from the last checkpoint when resuming); a diverged loss marks the run and re-raises."""
        resume = _last_checkpoint(self.out / CHECKPOINTS) if self.options.resume else None
        try:
            result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        except TrainingDivergedError as exc:
            self.manifest.status = "diverged"
            self.manifest.notes.append(exc.message)
            self.close()
            raise
        except BaseException:
            self.manifest.status = "interrupted"
            self.close()
            raise
        return result

    def save_adapter(self, trainer: Any, tokenizer: Any, base_folder: Path) -> None:
        """The trained adapter (with the tokenizer and its chat template) in ``RUN/adapter``, and the base folder it
        applies to in the manifest (``jisik tune merge`` reads both)."""
        adapter = self.out / ADAPTER
        trainer.model.save_pretrained(str(adapter))
        tokenizer.save_pretrained(str(adapter))
        self.manifest.artefacts["adapter"] = ADAPTER
        self.manifest.artefacts["base_folder"] = str(base_folder)

    @contextmanager
    def running(self) -> Iterator[Session]:
        """The body of a job: ``finished`` when it returns, ``failed`` when it raises (a diverged or
        interrupted run keeps the status :meth:`train` gave it)."""
        try:
            yield self
        except BaseException:
            if self.manifest.status == "running":
                self.close("failed")
            raise
        self.close("finished")

    def close(self, status: str | None = None) -> None:
        """Record time, peak memory and status in the manifest and close the metrics log."""
        if status:
            self.manifest.status = status
        self.manifest.finished = time.time()
        self.manifest.seconds = round(time.perf_counter() - self.started, 1)
        self.manifest.peak_memory_bytes = peak_memory(self.hardware.device)
        self.manifest.save(self.out)
        self.log.close()


def quiet_libraries() -> None:
    """No progress bars or info lines from transformers and datasets: the CLI reports progress itself."""
    transformers = _deps.transformers()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
    _deps.datasets().disable_progress_bars()


def peak_memory(device: str) -> int:
    """Peak memory of this process so far: the GPU's allocator peak on CUDA, the resident-set peak otherwise."""
    if device == "cuda":
        torch = _deps.torch()
        return int(torch.cuda.max_memory_allocated())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _last_checkpoint(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    steps = [(int(p.name.split("-")[-1]), p) for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return max(steps)[1] if steps else None


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v) for k, v in values.items()}


def _size(n: float) -> str:
    """Bytes for people.

    >>> _size(1536 * 2**20)
    '1.5 GiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _duration(seconds: float) -> str:
    """Seconds for people.

    >>> _duration(42), _duration(600), _duration(8000)
    ('42 s', '10 min', '2.2 h')
    """
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
