"""Sequence classifiers: fine-tune an encoder (full or LoRA) on labelled texts, measured with
:mod:`jisik.evaluate.metrics` before and after — for example to route questions by topic.

Data is a CSV/TSV file with a header or JSONL, one text and one label per row; rows without text or label are
reported by line number (the first :data:`MAX_REPORTED`) and nothing is trained. The validation split is
stratified by label and keeps identical texts on one side, so a duplicated row cannot score its own copy.

The run folder (:mod:`jisik.tune.runs`) gets ``model/`` — full weights, merged when LoRA was used, with the
label names in its config — which ``transformers.pipeline("text-classification", model=RUN/model)`` loads as it
is; ``eval.json`` with accuracy, macro and per-label precision/recall/F1 and the confusion matrix of the untrained
head (``before``) and of the tuned model (``after``), and every validation row's line, gold and predicted labels;
and ``run.json`` with the same numbers flattened.
"""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jisik._atomic import atomic_write
from jisik.errors import ConfigError, TrainingDataError, TuningError
from jisik.evaluate.metrics import classification_scores, per_label_scores
from jisik.tune import _deps, hardware, tracking
from jisik.tune.runs import MANIFEST, RunManifest, load_manifest

MAX_REPORTED = 10
EVAL_FILE = "eval.json"
EVAL_FORMAT = "jisik-tune-classify-eval"
# Beyond this many labels the confusion matrix stays in eval.json only (run.json would hold labels² cells).
MAX_CONFUSION_LABELS = 50
Progress = Callable[[int, int, Mapping[str, Any]], None]


@dataclass(frozen=True)
class LabelledText:
    text: str
    label: str
    line: int


@dataclass(frozen=True)
class ClassifyOptions:
    """How to train. ``learning_rate`` None: 5e-5 for full fine-tuning, 5e-4 for LoRA (only the adapters and
    the head learn, so they need larger steps). ``eval_steps`` None: about ten evaluations over the run."""

    text_column: str = "text"
    label_column: str = "label"
    eval_data: Path | None = None
    validation: float = 0.1
    epochs: float = 3.0
    learning_rate: float | None = None
    batch_size: int = 16
    max_length: int = 256
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] | None = None
    device: hardware.DeviceChoice = "auto"
    precision: hardware.Precision = "auto"
    seed: int = 42
    eval_steps: int | None = None
    report_to: tuple[str, ...] = ("tensorboard",)
    resume: bool = False
    keep_checkpoints: bool = False

    def check(self) -> None:
        if not 0 < self.validation < 1:
            raise ConfigError(f"--validation must be between 0 and 1, got {self.validation}", hint="e.g. 0.1")
        for name, value in (("epochs", self.epochs), ("batch-size", self.batch_size),
                            ("max-length", self.max_length), ("lora-r", self.lora_r)):
            if value <= 0:
                raise ConfigError(f"--{name} must be positive, got {value}")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ConfigError(f"--learning-rate must be positive, got {self.learning_rate}", hint="e.g. 5e-5")

    @property
    def rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else (5e-4 if self.lora else 5e-5)


@dataclass(frozen=True)
class ClassifyResult:
    folder: Path
    model: Path
    labels: list[str]
    before: dict[str, Any]
    after: dict[str, Any]
    seconds: float


# --- data --------------------------------------------------------------------------------------------


def read_examples(path: Path, *, text_column: str = "text", label_column: str = "label") -> list[LabelledText]:
    """The labelled texts of a CSV/TSV (header row) or JSONL file; bad rows raise one
    :class:`TrainingDataError` naming their line numbers."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise TrainingDataError(f"{path} does not exist", hint="pass a CSV, TSV or JSONL file with --data")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TrainingDataError(f"{path} is not UTF-8 text (byte {exc.start})",
                                hint="re-save it as UTF-8 (Excel: 'CSV UTF-8'); cp949/EUC-KR files must be "
                                     "converted, e.g. iconv -f cp949 -t utf-8") from None
    if suffix in (".jsonl", ".ndjson"):
        rows = _jsonl_rows(path, text)
    elif suffix in (".csv", ".tsv"):
        rows = _csv_rows(path, text, "\t" if suffix == ".tsv" else ",", (text_column, label_column))
    else:
        raise TrainingDataError(f"{path}: unknown data format '{suffix or path.name}'",
                                hint="use .csv or .tsv (with a header row) or .jsonl (one JSON object a line)")
    examples, bad = [], []
    for line, row in rows:
        if isinstance(row, str):
            bad.append(f"line {line}: {row}")
            continue
        value, label = row.get(text_column), _label(row.get(label_column))
        if not isinstance(value, str) or not value.strip():
            bad.append(f"line {line}: {'no' if value is None else 'empty' if isinstance(value, str) else 'non-text'}"
                       f" '{text_column}'")
        elif label is None:
            bad.append(f"line {line}: {'no' if row.get(label_column) in (None, '') else 'unusable'} "
                       f"'{label_column}' (a string or an integer)")
        else:
            examples.append(LabelledText(value.strip(), label, line))
    if bad:
        more = f" (and {len(bad) - MAX_REPORTED} more)" if len(bad) > MAX_REPORTED else ""
        raise TrainingDataError(f"{path}: {len(bad)} bad row(s) — " + "; ".join(bad[:MAX_REPORTED]) + more,
                                hint=f"fix or remove those rows; --text-column/--label-column name the columns "
                                     f"(now '{text_column}', '{label_column}')")
    if not examples:
        raise TrainingDataError(f"{path} holds no examples", hint="add rows of text and label")
    return examples


def _label(value: object) -> str | None:
    """A label as text: strings (stripped) and integers; anything else is unusable.

    >>> _label(" sports "), _label(3), _label(""), _label(1.5), _label(True)
    ('sports', '3', None, None, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _jsonl_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any] | str]]:
    rows: list[tuple[int, dict[str, Any] | str]] = []
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: JSON strings may hold U+2028
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append((number, f"not JSON ({exc.msg})"))
            continue
        rows.append((number, record if isinstance(record, dict) else "not a JSON object"))
    return rows


def _csv_rows(path: Path, text: str, delimiter: str,
              columns: tuple[str, str]) -> list[tuple[int, dict[str, Any] | str]]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [name.strip() for name in next(reader, [])]
    missing = [c for c in columns if c not in header]
    if missing:
        raise TrainingDataError(f"{path}: no column {', '.join(repr(c) for c in missing)} in the header "
                                f"(columns: {', '.join(header) or 'none'})",
                                hint="name the columns with --text-column and --label-column")
    rows: list[tuple[int, dict[str, Any] | str]] = []
    for cells in reader:
        if any(cell.strip() for cell in cells):  # blank lines are skipped; a quoted cell may span lines
            start = reader.line_num - sum(cell.count("\n") for cell in cells)  # report where the row starts
            rows.append((start, dict(zip(header, cells, strict=False))))  # a short row lacks its last columns
    return rows


def label_order(labels: Sequence[str]) -> list[str]:
    """The distinct labels, in numeric order when every label is an integer, else sorted as text.

    >>> label_order(["10", "2", "2", "1"]), label_order(["sports", "economy", "sports"])
    (['1', '2', '10'], ['economy', 'sports'])
    """
    distinct = set(labels)
    if all(label.lstrip("-").isdigit() for label in distinct):
        return sorted(distinct, key=int)
    return sorted(distinct)


def stratified_split(labels: Sequence[str], fraction: float, *, seed: int = 0,
                     groups: Sequence[str] | None = None) -> tuple[list[int], list[int]]:
    """Indices for training and validation: about ``fraction`` of each label's groups (at least one, never all)
    go to validation; every index of a group (e.g. identical texts) lands on the same side.

    >>> labels = ["a"] * 4 + ["b"] * 4 + ["c"]
    >>> train, val = stratified_split(labels, 0.25, seed=1)
    >>> len(train), sorted(labels[i] for i in val)
    (7, ['a', 'b'])
    >>> stratified_split(["a", "a", "b", "b"], 0.5, groups=["x", "x", "y", "z"])[1] in ([2], [3])
    True
    """
    keys = list(groups) if groups is not None else [str(i) for i in range(len(labels))]
    members: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        members.setdefault(key, []).append(index)
    by_label: dict[str, list[str]] = {}
    for key, indices in members.items():
        by_label.setdefault(labels[indices[0]], []).append(key)
    rng = random.Random(seed)
    chosen: set[str] = set()
    for label in sorted(by_label):
        keys_of_label = by_label[label]
        rng.shuffle(keys_of_label)
        take = min(max(round(len(keys_of_label) * fraction), 1), len(keys_of_label) - 1)
        chosen.update(keys_of_label[:take])
    validation = sorted(i for key in chosen for i in members[key])
    train = sorted(set(range(len(labels))) - set(validation))
    return train, validation


# --- scores ------------------------------------------------------------------------------------------


def score(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, per-label scores and the confusion matrix (rows gold, columns
    predicted, in ``labels`` order), computed by :mod:`jisik.evaluate.metrics`.

    >>> s = score(["a", "a", "b"], ["a", "b", "b"], ["a", "b"])
    >>> round(s["accuracy"], 3), round(s["macro_f1"], 3), s["confusion"]["matrix"]
    (0.667, 0.667, [[1, 1], [0, 1]])
    """
    macro = classification_scores(gold, predicted)
    per = per_label_scores(gold, predicted)
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted, strict=True):
        matrix[index[g]][index[p]] += 1
    return {"n": len(gold), "accuracy": macro.accuracy, "macro_precision": macro.precision,
            "macro_recall": macro.recall, "macro_f1": macro.f1,
            "per_label": {label: {"precision": s.precision, "recall": s.recall, "f1": s.f1, "support": s.support}
                          for label in labels if (s := per.get(label)) is not None},
            "confusion": {"labels": list(labels), "matrix": matrix}}


def flatten(scores: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of :func:`score` as run.json's ``metric → value`` (per-label ones as ``f1/LABEL``).

    >>> flatten(score(["a", "b"], ["a", "a"], ["a", "b"]))["recall/a"]
    1.0
    """
    flat = {k: float(scores[k]) for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1")}
    for label, values in scores["per_label"].items():
        flat.update({f"{name}/{label}": float(values[name]) for name in ("precision", "recall", "f1")})
    return flat


def confusion_cells(scores: Mapping[str, Any]) -> dict[str, float]:
    """The confusion matrix as run.json's ``'["gold", "predicted"]' → count`` (the report draws it back).

    >>> confusion_cells(score(["a", "b"], ["a", "a"], ["a", "b"]))
    {'["a", "a"]': 1.0, '["a", "b"]': 0.0, '["b", "a"]': 1.0, '["b", "b"]': 0.0}
    """
    labels, matrix = scores["confusion"]["labels"], scores["confusion"]["matrix"]
    return {json.dumps([g, p], ensure_ascii=False): float(matrix[i][j])
            for i, g in enumerate(labels) for j, p in enumerate(labels)}


# --- training ----------------------------------------------------------------------------------------


class _Encoded:
    """Tokenised examples for the Trainer (a map-style dataset)."""

    def __init__(self, encodings: Mapping[str, list[Any]], labels: list[int]) -> None:
        self.encodings, self.labels = encodings, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**{k: v[i] for k, v in self.encodings.items()}, "labels": self.labels[i]}


def split_data(data: Path, options: ClassifyOptions) -> tuple[list[LabelledText], list[LabelledText], list[str]]:
    """Training rows, validation rows and the label names, with every problem reported before anything runs."""
    read = {"text_column": options.text_column, "label_column": options.label_column}
    examples = read_examples(data, **read)
    if options.eval_data is not None:
        train, held = examples, read_examples(options.eval_data, **read)
    else:
        train_idx, val_idx = stratified_split([e.label for e in examples], options.validation, seed=options.seed,
                                              groups=[" ".join(e.text.split()) for e in examples])
        train, held = [examples[i] for i in train_idx], [examples[i] for i in val_idx]
    labels = label_order([e.label for e in train])
    if len(labels) < 2:
        raise TrainingDataError(f"{data}: a classifier needs at least two labels, found {labels}",
                                hint=f"check --label-column (now '{options.label_column}')")
    unseen = [e for e in held if e.label not in labels]
    if unseen:
        raise TrainingDataError(f"{options.eval_data or data}: label(s) {sorted({e.label for e in unseen})} never "
                                f"occur in the training rows (line(s) {', '.join(str(e.line) for e in unseen[:10])})",
                                hint="give every label training examples, or drop those rows")
    if not held:
        raise TrainingDataError(f"{data}: no rows left for validation", hint="add rows or pass --eval-data")
    return train, held, labels


def train_classifier(model: Path | str, data: Path, out: Path, options: ClassifyOptions = ClassifyOptions(), *,
                     progress: Progress | None = None,
                     notify: Callable[[str], None] | None = None) -> ClassifyResult:
    """Fine-tune ``model`` into a classifier of ``data``'s labels; everything lands in the run folder ``out``."""
    options.check()
    say = notify or (lambda message: None)
    train, held, labels = split_data(data, options)
    if (out / MANIFEST).exists():
        if not options.resume:
            raise TuningError(f"{out} already holds a run", hint="choose another --out, or --resume to continue it")
        if load_manifest(out).status == "finished":
            raise TuningError(f"{out} holds a finished run; there is nothing to resume", hint="choose another --out")

    hw = hardware.detect(options.device)
    precision = hardware.resolve_precision(hw, options.precision, "classify")
    torch, transformers = _deps.torch(), _deps.transformers()
    transformers.set_seed(options.seed)
    tokenizer, net = _load(str(model), labels)
    label_id = {label: i for i, label in enumerate(labels)}
    train_set, held_set = (_Encoded(dict(tokenizer([e.text for e in rows], truncation=True,
                                                   max_length=options.max_length)),
                                    [label_id[e.label] for e in rows]) for rows in (train, held))
    steps_per_epoch = -(-len(train_set) // options.batch_size)
    total_steps = max(1, round(steps_per_epoch * options.epochs))
    tokens = sum(len(ids) for ids in train_set.encodings["input_ids"]) * options.epochs
    say(f"{len(train)} training and {len(held)} validation examples, {len(labels)} labels; {total_steps} steps on "
        f"{hw.device} ({hw.name}), {precision}" + _estimate(net, hw, options, tokens))

    manifest = RunManifest(kind="classify", base_model=str(model), data=str(data),
                           options={**asdict(options), "learning_rate": options.rate, "precision": precision,
                                    "labels": labels, "train_examples": len(train),
                                    "validation_examples": len(held)},
                           hardware={**asdict(hw), "precision": precision})
    manifest.save(out)
    log = tracking.RunLog(out, options.report_to, run_name=out.name)
    started = time.perf_counter()
    if hw.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        device, gold, texts = hw.device, [e.label for e in held], [e.text for e in held]
        predicted = {"before": _predict_labels(net.to(device), tokenizer, texts, labels, options, device)}
        before = score(gold, predicted["before"], labels)
        say(f"before: accuracy {before['accuracy']:.3f}, macro-F1 {before['macro_f1']:.3f} (untrained head)")
        adapted = _with_lora(net, options) if options.lora else net
        trainer = _trainer(adapted, tokenizer, train_set, held_set, out, options, precision, hw, total_steps, log,
                           progress)
        checkpoints = out / "checkpoints"
        resume = options.resume and checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*"))
        trainer.train(resume_from_checkpoint=True if resume else None)
        if options.lora:
            adapted.save_pretrained(str(out / "adapter"))
            manifest.artefacts["adapter"] = "adapter"
            net = adapted.merge_and_unload()
        else:
            net = trainer.model
        net.config.problem_type = "single_label_classification"
        net.save_pretrained(str(out / "model"))
        tokenizer.save_pretrained(str(out / "model"))
        predicted["after"] = _predict_labels(net, tokenizer, texts, labels, options, device)
        after = score(gold, predicted["after"], labels)
        say(f"after: accuracy {after['accuracy']:.3f}, macro-F1 {after['macro_f1']:.3f}")
        record = {"format": EVAL_FORMAT, "version": 1, "data": str(options.eval_data or data), "labels": labels,
                  "before": before, "after": after,
                  "predictions": {"line": [e.line for e in held], "gold": gold, **predicted}}
        atomic_write(out / EVAL_FILE, (json.dumps(record, ensure_ascii=False, indent=2) + "\n").encode())
        manifest.evaluation = {"before": flatten(before), "after": flatten(after)}
        if len(labels) <= MAX_CONFUSION_LABELS:
            manifest.evaluation |= {"confusion:before": confusion_cells(before),
                                    "confusion:after": confusion_cells(after)}
        manifest.artefacts |= {"model": "model", "evaluation": EVAL_FILE, "metrics": tracking.METRICS_FILE}
        if (out / "tb").is_dir():
            manifest.artefacts["tensorboard"] = "tb"
        if not options.keep_checkpoints:
            shutil.rmtree(checkpoints, ignore_errors=True)
        else:
            manifest.artefacts["checkpoints"] = "checkpoints"
        manifest.status = "finished"
    except BaseException as exc:
        manifest.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        manifest.notes.append(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        log.close()
        manifest.finished = time.time()
        manifest.seconds = round(time.perf_counter() - started, 3)
        manifest.peak_memory_bytes = _peak_memory(torch, hw)
        manifest.save(out)
    return ClassifyResult(out, out / "model", labels, before, after, manifest.seconds or 0.0)


def _load(model: str, labels: list[str]) -> tuple[Any, Any]:
    transformers = _deps.transformers()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model)
        net = transformers.AutoModelForSequenceClassification.from_pretrained(
            model, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)}, ignore_mismatched_sizes=True)
    except (OSError, ValueError, KeyError) as exc:
        raise TuningError(f"cannot load a sequence classifier from {model}: {exc}",
                          hint="pass a local Hugging Face model folder (config.json, weights, tokenizer) of an "
                               "encoder such as BERT, ELECTRA, RoBERTa or XLM-R") from exc
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise TuningError(f"the tokenizer of {model} has neither a padding nor an end token",
                              hint="add a pad_token to its tokenizer_config.json")
        tokenizer.pad_token = tokenizer.eos_token
    net.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, net


def head_modules(model: Any) -> list[str]:
    """The top-level modules of a classifier outside its encoder that hold weights: the head LoRA keeps
    fully trainable (``classifier``; DistilBERT's ``pre_classifier`` too)."""
    prefix = getattr(model, "base_model_prefix", "")
    return [name for name, child in model.named_children()
            if name != prefix and any(True for _ in child.parameters())]


def _with_lora(net: Any, options: ClassifyOptions) -> Any:
    peft = _deps.peft()
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as known

    heads = head_modules(net)
    targets: Any = list(options.lora_targets or known.get(net.config.model_type, []))
    if not targets:  # an architecture peft has no default for: every linear layer of the encoder
        torch = _deps.torch()
        targets = sorted({name.rsplit(".", 1)[-1] for name, module in net.named_modules()
                          if isinstance(module, torch.nn.Linear) and name.split(".", 1)[0] not in heads})
    config = peft.LoraConfig(task_type=peft.TaskType.SEQ_CLS, r=options.lora_r, lora_alpha=options.lora_alpha,
                             lora_dropout=options.lora_dropout, target_modules=targets, modules_to_save=heads)
    try:
        return peft.get_peft_model(net, config)
    except ValueError as exc:
        raise ConfigError(f"LoRA cannot target {targets} in this model: {exc}",
                          hint="name the encoder's linear layers with --lora-target, e.g. query,value") from exc


def _trainer(net: Any, tokenizer: Any, train_set: _Encoded, held_set: _Encoded, out: Path,
             options: ClassifyOptions, precision: str, hw: hardware.Hardware, total_steps: int,
             log: tracking.RunLog, progress: Progress | None) -> Any:
    transformers = _deps.transformers()
    eval_steps = options.eval_steps or max(1, total_steps // 10)
    args = transformers.TrainingArguments(
        output_dir=str(out / "checkpoints"), num_train_epochs=options.epochs, learning_rate=options.rate,
        per_device_train_batch_size=options.batch_size, per_device_eval_batch_size=options.batch_size * 2,
        weight_decay=options.weight_decay, warmup_steps=round(total_steps * options.warmup_ratio),
        logging_strategy="steps", logging_steps=max(1, total_steps // 50), eval_strategy="steps",
        eval_steps=eval_steps, save_strategy="epoch", save_total_limit=1, report_to="none",
        disable_tqdm=True, seed=options.seed, use_cpu=hw.device == "cpu", bf16=precision == "bf16",
        fp16=precision == "fp16", remove_unused_columns=False, dataloader_num_workers=0)

    def metrics(prediction: Any) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        scores = classification_scores([int(i) for i in prediction.label_ids], [int(i) for i in logits.argmax(-1)])
        return {"accuracy": scores.accuracy, "macro_f1": scores.f1}

    trainer_class = tracking.finite_loss_trainer(transformers.Trainer)
    trainer = trainer_class(model=net, args=args, train_dataset=train_set, eval_dataset=held_set,
                            data_collator=transformers.DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
                            compute_metrics=metrics, callbacks=[tracking.metrics_callback(log, progress)])
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # the caller draws progress
    return trainer


def _estimate(net: Any, hw: hardware.Hardware, options: ClassifyOptions, tokens: float) -> str:
    params = int(net.num_parameters())
    config = net.config
    memory = hardware.estimate_memory(
        params=params, trainable=params if not options.lora else params // 50, weight_bytes=4,
        batch=options.batch_size, seq_len=options.max_length, hidden=int(getattr(config, "hidden_size", 768)),
        layers=int(getattr(config, "num_hidden_layers", 12)), vocab=int(config.num_labels))
    text = f"; {params:,} parameters, peak memory ≈ {memory.total / 2**20:,.0f} MiB"
    if hw.device == "cpu":
        from jisik.progress import format_seconds

        seconds = hardware.estimate_seconds(params=params, tokens=int(tokens), full=not options.lora,
                                            flops_per_second=hardware.measured_flops())
        text += f", about {format_seconds(seconds)}"
    return text


def _peak_memory(torch: Any, hw: hardware.Hardware) -> int | None:
    if hw.device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # the process's peak resident memory
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


# --- prediction --------------------------------------------------------------------------------------


def _logits(net: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int, max_length: int,
            device: str) -> Any:
    torch = _deps.torch()
    net.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start:start + batch_size]), truncation=True, max_length=max_length,
                              padding=True, return_tensors="pt").to(device)
            out.append(net(**batch).logits.float().cpu())
    return torch.cat(out) if out else torch.zeros((0, int(net.config.num_labels)))


def _predict_labels(net: Any, tokenizer: Any, texts: Sequence[str], labels: Sequence[str],
                    options: ClassifyOptions, device: str) -> list[str]:
    logits = _logits(net, tokenizer, texts, batch_size=options.batch_size * 2, max_length=options.max_length,
                     device=device)
    return [labels[int(i)] for i in logits.argmax(-1)]


@dataclass(frozen=True)
class Prediction:
    """The most probable label, its probability, and every label's probability."""

    label: str
    score: float
    scores: dict[str, float]


class Classifier:
    """A tuned classifier loaded for prediction (``Classifier.load(RUN)``), e.g. to route questions by topic."""

    def __init__(self, net: Any, tokenizer: Any, *, device: str = "cpu", max_length: int = 256) -> None:
        self.net, self.tokenizer, self.device, self.max_length = net, tokenizer, device, max_length
        self.labels = [str(net.config.id2label[i]) for i in range(int(net.config.num_labels))]

    @classmethod
    def load(cls, run: Path, *, device: hardware.DeviceChoice = "auto") -> Classifier:
        """From a run folder (its ``model/``) or a model folder itself."""
        folder = run / "model" if (run / "model" / "config.json").is_file() else run
        if not (folder / "config.json").is_file():
            raise TuningError(f"{run} holds no classifier (no model/config.json)",
                              hint="pass the --out folder of a finished `jisik tune classify` run")
        manifest = json.loads((run / MANIFEST).read_text(encoding="utf-8")) if (run / MANIFEST).is_file() else {}
        max_length = int(manifest.get("options", {}).get("max_length", 256))
        transformers = _deps.transformers()
        hw = hardware.detect(device)
        net = transformers.AutoModelForSequenceClassification.from_pretrained(str(folder)).to(hw.device)
        return cls(net, transformers.AutoTokenizer.from_pretrained(str(folder)), device=hw.device,
                   max_length=max_length)

    def predict_batch(self, texts: Sequence[str], *, batch_size: int = 32) -> list[Prediction]:
        logits = _logits(self.net, self.tokenizer, texts, batch_size=batch_size, max_length=self.max_length,
                         device=self.device)
        out = []
        for row in logits.softmax(-1).tolist():
            best = max(range(len(row)), key=row.__getitem__)
            out.append(Prediction(self.labels[best], float(row[best]), dict(zip(self.labels, row, strict=True))))
        return out

    def predict(self, text: str) -> Prediction:
        return self.predict_batch([text])[0]


def predict(run: Path, texts: Sequence[str], *, device: hardware.DeviceChoice = "auto",
            batch_size: int = 32) -> list[Prediction]:
    """Labels for ``texts`` from the classifier of the run at ``run`` (loads it each call: keep a
    :class:`Classifier` for many calls)."""
    return Classifier.load(run, device=device).predict_batch(texts, batch_size=batch_size)
