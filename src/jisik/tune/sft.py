"""Supervised fine-tuning with LoRA or QLoRA through TRL's ``SFTTrainer``.

Loss is on the answer only: every row is a conversational prompt/completion pair (:mod:`jisik.tune.data`), for
which TRL masks the prompt's tokens (``completion_only_loss``). Rows longer than ``max_length`` are left out and
counted — TRL would cut them from the right, which removes the answer and trains on the prompt's tail.
The result is a PEFT adapter in ``RUN/adapter`` (with the tokenizer and its chat template); ``jisik tune merge``
turns it into a full model and a GGUF file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jisik.errors import TuningError
from jisik.tune import _deps
from jisik.tune.data import Example, LoadedData, load_examples, split_by_group
from jisik.tune.runs import RunManifest
from jisik.tune.session import LoraOptions, Notify, Progress, Session, TrainOptions


def conversation_rows(examples: Sequence[Example],
                      fields: Sequence[str] = ("prompt", "completion")) -> list[dict[str, Any]]:
    """The rows a TRL trainer reads: only the message fields (``group``/``meta`` stay out of the batches)."""
    return [{name: getattr(e, name) for name in fields} for e in examples]


def token_lengths(tokenizer: Any, examples: Sequence[Example], answer_field: str = "completion") -> list[int]:
    """Tokens of each example's prompt plus its answer through the chat template (what the trainer sees)."""
    lengths = []
    for example in examples:
        messages = [*example.prompt, *getattr(example, answer_field)]
        ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        lengths.append(len(ids))
    return lengths


def fit_length(tokenizer: Any, examples: Sequence[Example], max_length: int, what: str, notify: Notify,
               answer_field: str = "completion") -> tuple[list[Example], int, list[int]]:
    """Examples within ``max_length`` tokens, the number left out, and the kept lengths."""
    lengths = token_lengths(tokenizer, examples, answer_field)
    kept = [(e, n) for e, n in zip(examples, lengths, strict=True) if n <= max_length]
    dropped = len(examples) - len(kept)
    if dropped:
        notify(f"{dropped} of {len(examples)} {what} example(s) are longer than --max-length {max_length} tokens "
               f"and are left out (longest: {max(lengths)})")
    if not kept:
        raise TuningError(f"every {what} example is longer than --max-length {max_length} tokens",
                          hint=f"raise --max-length (the shortest is {min(lengths)} tokens) or use fewer passages "
                               "(jisik tune data --k)")
    return [e for e, _ in kept], dropped, [n for _, n in kept]


def load_split(data: str | Path, validation: str | Path | None, options: TrainOptions, kind: str,
               notify: Notify) -> tuple[LoadedData, list[Example], list[Example]]:
    """Training and validation examples: ``validation`` when given, else a split by group of ``data``."""
    row_kind = "preference" if kind in ("dpo", "reward") else "sft"
    loaded = load_examples(data, row_kind, skip_bad_rows=options.skip_bad_rows)  # type: ignore[arg-type]
    for line, reason in loaded.skipped[:5]:
        notify(f"skipped line {line}: {reason}")
    if len(loaded.skipped) > 5:
        notify(f"… {len(loaded.skipped) - 5} more bad rows skipped")
    if validation is not None:
        held = load_examples(validation, row_kind, skip_bad_rows=options.skip_bad_rows)  # type: ignore[arg-type]
        return loaded, loaded.examples, held.examples
    train, val = split_by_group(loaded.examples, options.validation_fraction, seed=options.seed)
    if not train:
        raise TuningError("the validation split took every row", hint="lower --validation-fraction")
    return loaded, train, val


def train_sft(model: str | Path, data: str | Path, out: str | Path, *, lora: LoraOptions | None = None,
              options: TrainOptions | None = None, validation: str | Path | None = None,
              notify: Notify | None = None, progress: Progress | None = None) -> RunManifest:
    """Fine-tune ``model`` (a model folder or GGUF file) on ``data``; returns the finished run's manifest.

    ``options.eval_generate`` > 0 also answers that many validation questions before and after training and
    records EM/F1, found rate and citation scores (:mod:`jisik.tune.evaluation`) in the manifest.
    """
    from jisik.tune.evaluation import evaluate_generation
    from jisik.tune.models import load_causal_lm, load_tokenizer, model_folder

    lora = lora or LoraOptions()
    options = options or TrainOptions()
    out = Path(out)
    session = Session.open("sft", "sft", str(model), str(data), out, options,
                           {"lora": lora.__dict__, "validation": str(validation) if validation else None}, notify)
    with session.running():
        loaded, train, val = load_split(data, validation, options, "sft", session.notify)
        folder = model_folder(model)
        tokenizer = load_tokenizer(folder, options.chat_template)
        train, dropped, lengths = fit_length(tokenizer, train, options.max_length, "training", session.notify)
        if val:
            val, _, _ = fit_length(tokenizer, val, options.max_length, "validation", session.notify)
        session.manifest.notes.append(f"{len(train)} training and {len(val)} validation examples "
                                      f"({dropped} too long, {len(loaded.skipped)} bad rows skipped)")
        base = load_causal_lm(folder, device=session.hardware.device, precision=session.precision,
                              qlora=options.qlora)
        held = [e for e in val if e.meta][: options.eval_generate]
        if held:
            session.notify(f"answering {len(held)} validation question(s) before training …")
            before = evaluate_generation(base, tokenizer, held, max_new_tokens=options.max_new_tokens)
            session.manifest.evaluation["before"] = before.metrics()
            session.log.log(0, before.metrics(), split="generate")
        trainer = _sft_trainer(session, base, tokenizer, train, val, lora, progress, sum(lengths))
        session.train(trainer)
        session.save_adapter(trainer, tokenizer, folder)
        if held:
            session.notify(f"answering {len(held)} validation question(s) after training …")
            after = evaluate_generation(trainer.model, tokenizer, held, max_new_tokens=options.max_new_tokens)
            session.manifest.evaluation["after"] = after.metrics()
            session.log.log(int(trainer.state.global_step), after.metrics(), split="generate")
        _record_losses(session, trainer)
    return session.manifest


def _sft_trainer(session: Session, model: Any, tokenizer: Any, train: list[Example], val: list[Example],
                 lora: LoraOptions, progress: Progress | None, tokens: int) -> Any:
    trl = _deps.trl()
    datasets = _deps.datasets()
    if session.options.qlora:
        peft = _deps.peft()
        model = peft.prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=session.options.gradient_checkpointing)
    peft_config = lora.config(str(model.config.model_type), "CAUSAL_LM")
    if lora.full and session.options.qlora:
        raise TuningError("--full and --qlora exclude each other", hint="QLoRA trains adapters on 4-bit weights")
    args = session.args(trl.SFTConfig, has_eval=bool(val), max_length=session.options.max_length,
                        packing=session.options.packing, completion_only_loss=True,
                        dataset_num_proc=None)
    trainer = session.trainer(
        trl.SFTTrainer, progress, model=model, args=args, processing_class=tokenizer, peft_config=peft_config,
        train_dataset=datasets.Dataset.from_list(conversation_rows(train)),
        eval_dataset=datasets.Dataset.from_list(conversation_rows(val)) if val else None)
    session.estimate(trainer.model, session.planned_tokens(tokens, len(train)))
    return trainer


def _record_losses(session: Session, trainer: Any) -> None:
    """First and last training loss and the last evaluation loss, for the manifest's summary."""
    history = [h for h in trainer.state.log_history if "loss" in h]
    evals = [h for h in trainer.state.log_history if "eval_loss" in h]
    summary: dict[str, float] = {}
    if history:
        summary["first_loss"] = float(history[0]["loss"])
        summary["last_loss"] = float(history[-1]["loss"])
    if evals:
        summary["first_eval_loss"] = float(evals[0]["eval_loss"])
        summary["last_eval_loss"] = float(evals[-1]["eval_loss"])
    summary["steps"] = float(trainer.state.global_step)
    session.manifest.evaluation["training"] = summary
