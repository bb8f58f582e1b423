"""``jisik tune``: fine-tuning commands — ``data``, ``sft``, ``dpo``, ``reward``, ``sample`` here; ``merge``,
``classify``, ``embed`` and ``report`` in their own modules, registered on :data:`tune_app` by :mod:`jisik.cli`.

Every training command prints its estimate (parameters, memory, time) before the first step, a progress line
with the loss while it trains, and where the run folder is; ``--json`` prints the run's manifest instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jisik.cli.app import JsonOption, KbOption, console, err_console, open_kb, run

if TYPE_CHECKING:
    from jisik.tune.runs import RunManifest
    from jisik.tune.session import LoraOptions, TrainOptions

tune_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                       help="fine-tune models on your own documents: data, sft, dpo, reward, sample, merge, "
                            "classify, embed, report (pip install 'jisik[tune]')")

ModelArg = Annotated[str, typer.Option("--model", metavar="PATH", show_default=False,
                                       help="base model: a Hugging Face model folder or a .gguf file")]
DataArg = Annotated[Path, typer.Option("--data", metavar="FILE", show_default=False,
                                       help="training rows (JSONL/JSON/CSV; see docs/tuning.md)")]
OutArg = Annotated[Path, typer.Option("--out", metavar="DIR", show_default=False, help="run folder to write")]
Validation = Annotated[Path | None, typer.Option("--validation", metavar="FILE", show_default=False,
                                                 help="validation rows (default: a split of --data by group)")]
ValFraction = Annotated[float, typer.Option("--validation-fraction", metavar="F",
                                            help="share of groups held out when --validation is not given")]
LoraR = Annotated[int, typer.Option("--lora-r", metavar="N", help="LoRA rank")]
LoraAlpha = Annotated[int | None, typer.Option("--lora-alpha", metavar="N", show_default=False,
                                               help="LoRA scale (default 2 x rank)")]
LoraDropout = Annotated[float, typer.Option("--lora-dropout", metavar="P", help="dropout on the LoRA path")]
Targets = Annotated[list[str] | None, typer.Option("--target", metavar="MODULE", show_default=False,
                                                   help="module LoRA adapts (repeatable; default per architecture)")]
Full = Annotated[bool, typer.Option("--full", help="train every weight instead of a LoRA adapter")]
QLora = Annotated[bool, typer.Option("--qlora", help="4-bit nf4 base weights, double quantisation, bf16 compute "
                                                    "(CUDA + bitsandbytes)")]
Epochs = Annotated[float, typer.Option("--epochs", metavar="N", help="passes over the training rows")]
MaxSteps = Annotated[int, typer.Option("--max-steps", metavar="N", help="stop after N optimizer steps (-1: epochs)")]
Batch = Annotated[int, typer.Option("--batch-size", metavar="N", help="rows per step per device")]
Accum = Annotated[int, typer.Option("--grad-accum", metavar="N", help="steps whose gradients add up per update")]
MaxLength = Annotated[int, typer.Option("--max-length", metavar="N", help="tokens per row (longer rows are "
                                                                          "left out and counted)")]
EvalSteps = Annotated[int, typer.Option("--eval-steps", metavar="N", help="validation loss every N steps")]
SaveSteps = Annotated[int, typer.Option("--save-steps", metavar="N", help="checkpoint every N steps")]
Device = Annotated[str, typer.Option("--device", metavar="DEV", help="auto | cpu | cuda | mps")]
PrecisionOpt = Annotated[str, typer.Option("--precision", metavar="P", help="auto | fp32 | bf16 | fp16")]
Resume = Annotated[bool, typer.Option("--resume", help="continue from the run folder's last checkpoint")]
ReportTo = Annotated[list[str] | None, typer.Option("--report-to", metavar="TRACKER", show_default=False,
                                                   help="tensorboard (default), wandb or none; metrics.csv always")]
SkipBad = Annotated[bool, typer.Option("--skip-bad-rows", help="train on the good rows and list the bad ones "
                                                               "(default: stop and list them)")]
ChatTemplate = Annotated[str | None, typer.Option("--chat-template", metavar="T", show_default=False,
                                                  help="chatml or a Jinja file (default: the model's own)")]
Checkpointing = Annotated[bool, typer.Option("--gradient-checkpointing",
                                             help="recompute activations in the backward pass (less memory)")]
Seed = Annotated[int, typer.Option("--seed", metavar="N", help="random seed (data order, split, LoRA init)")]


def _lora(r: int, alpha: int | None, dropout: float, targets: list[str] | None, full: bool) -> LoraOptions:
    from jisik.tune.session import LoraOptions

    return LoraOptions(r=r, alpha=alpha, dropout=dropout, targets=tuple(targets) if targets else None, full=full)


def _options(**values: Any) -> TrainOptions:
    from jisik.tune.session import TrainOptions

    values["report_to"] = tuple(values.get("report_to") or ("tensorboard",))
    return TrainOptions(**values)


class _ProgressLine:
    """``step 40/200 · loss 1.234`` on stderr, at most every few seconds (and on the last step)."""

    def __init__(self, every_s: float = 5.0) -> None:
        import time

        self._time = time.monotonic
        self._last = 0.0
        self.every_s = every_s

    def __call__(self, step: int, total: int, logs: dict[str, Any]) -> None:
        now = self._time()
        if step < total and now - self._last < self.every_s:
            return
        self._last = now
        loss = logs.get("loss")
        extra = f" · loss {float(loss):.4f}" if isinstance(loss, int | float) else ""
        err_console.print(f"step {step}/{total}{extra}", highlight=False, markup=False)


def _notify(message: str) -> None:
    err_console.print(message, highlight=False, markup=False, soft_wrap=True)


def _finish(manifest: RunManifest, out: Path, as_json: bool) -> None:
    from dataclasses import asdict

    if as_json:
        console.print_json(json.dumps(asdict(manifest), ensure_ascii=False, default=str))
        return
    seconds = manifest.seconds or 0.0
    console.print(f"{manifest.kind}: {manifest.status} in {seconds / 60:.1f} min → {out}", highlight=False)
    for phase in ("before", "after"):
        values = manifest.evaluation.get(phase)
        if values:
            shown = ", ".join(f"{k} {v:.3f}" for k, v in values.items() if k not in ("n", "seconds_per_answer"))
            console.print(f"  {phase}: {shown}", highlight=False)
    training = manifest.evaluation.get("training", {})
    if "first_loss" in training:
        console.print(f"  loss {training['first_loss']:.4f} → {training['last_loss']:.4f}", highlight=False)
    console.print(f"  report: jisik tune report {out}", highlight=False)


@tune_app.command("data")
def data(
    source: Annotated[Path, typer.Option("--from", metavar="FILE", show_default=False,
                                         help="questions with answers: JSONL, CSV, SQuAD/KorQuAD JSON, BEIR folder")],
    out: Annotated[Path, typer.Option("--out", metavar="FILE", show_default=False, help="training JSONL to write")],
    kb: KbOption = Path("kb"),
    val_out: Annotated[Path | None, typer.Option("--val-out", metavar="FILE", show_default=False,
                                                 help="validation JSONL (default: OUT with .val.jsonl)")] = None,
    validation_fraction: ValFraction = 0.1,
    k: Annotated[int | None, typer.Option("-k", metavar="N", show_default=False,
                                          help="passages per question (default: [answer] k)")] = None,
    not_found: Annotated[str, typer.Option("--not-found", metavar="POLICY",
                                           help="refuse (teach the not-found sentence when the answer was not "
                                                "retrieved) | drop")] = "refuse",
    limit: Annotated[int | None, typer.Option("--limit", metavar="N", show_default=False,
                                              help="use the first N questions")] = None,
    seed: Seed = 0,
    as_json: JsonOption = False,
) -> None:
    """Build RAG-style SFT rows: question + retrieved [n] passages (the answerer's own prompt) → cited answer."""

    def body() -> None:
        from jisik.errors import ConfigError
        from jisik.evaluate.datasets import load_dataset
        from jisik.tune.data import build_rag_examples, split_by_group, write_examples

        if not_found not in ("refuse", "drop"):
            raise ConfigError(f"--not-found must be refuse or drop, got {not_found!r}")
        questions = load_dataset(source).head(limit).examples
        with open_kb(kb) as base:
            examples, stats = build_rag_examples(base, questions, k=k, not_found=not_found)  # type: ignore[arg-type]
        train, val = split_by_group(examples, validation_fraction, seed=seed)
        held = val_out or out.with_name(out.name.removesuffix(".jsonl") + ".val.jsonl")
        write_examples(out, train)
        if val:
            write_examples(held, val)
        groups = len({e.group for e in train}), len({e.group for e in val})
        result = {"train": str(out), "validation": str(held) if val else None, "train_rows": len(train),
                  "validation_rows": len(val), "train_groups": groups[0], "validation_groups": groups[1],
                  "questions": stats.questions, "answer_retrieved": stats.found, "refusals": stats.refusals,
                  "dropped": stats.dropped}
        if as_json:
            console.print_json(json.dumps(result, ensure_ascii=False))
            return
        console.print(f"{len(train)} training rows ({groups[0]} groups) → {out}", highlight=False)
        if val:
            console.print(f"{len(val)} validation rows ({groups[1]} other groups) → {held}", highlight=False)
        console.print(f"answer retrieved for {stats.found} of {stats.questions} questions; "
                      f"{stats.refusals} taught to refuse, {stats.dropped} dropped", highlight=False)

    run(body)


@tune_app.command("sft")
def sft(
    model: ModelArg, data: DataArg, out: OutArg, validation: Validation = None, validation_fraction: ValFraction = 0.1,
    lora_r: LoraR = 16, lora_alpha: LoraAlpha = None, lora_dropout: LoraDropout = 0.05, target: Targets = None,
    full: Full = False, qlora: QLora = False, epochs: Epochs = 1.0, max_steps: MaxSteps = -1, batch_size: Batch = 4,
    grad_accum: Accum = 1,
    learning_rate: Annotated[float, typer.Option("--learning-rate", metavar="LR", help="peak learning rate")] = 2e-4,
    max_length: MaxLength = 1024,
    packing: Annotated[bool, typer.Option("--packing", help="pack short rows into --max-length blocks")] = False,
    eval_steps: EvalSteps = 50, save_steps: SaveSteps = 100, device: Device = "auto",
    precision: PrecisionOpt = "auto", gradient_checkpointing: Checkpointing = False, resume: Resume = False,
    report_to: ReportTo = None, skip_bad_rows: SkipBad = False, chat_template: ChatTemplate = None,
    eval_generate: Annotated[int, typer.Option("--eval-generate", metavar="N",
                                               help="answer N validation questions before and after (EM/F1, "
                                                    "citations)")] = 0,
    seed: Seed = 0, as_json: JsonOption = False,
) -> None:
    """Supervised fine-tuning with LoRA (or QLoRA, or every weight); loss on the answers only."""

    def body() -> None:
        from jisik.tune.sft import train_sft

        manifest = train_sft(model, data, out, lora=_lora(lora_r, lora_alpha, lora_dropout, target, full),
                             options=_options(
                                 epochs=epochs, max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum,
                                 learning_rate=learning_rate, max_length=max_length, packing=packing,
                                 eval_steps=eval_steps, save_steps=save_steps, device=device, precision=precision,
                                 qlora=qlora, gradient_checkpointing=gradient_checkpointing, resume=resume,
                                 report_to=report_to, validation_fraction=validation_fraction,
                                 skip_bad_rows=skip_bad_rows, chat_template=chat_template,
                                 eval_generate=eval_generate, seed=seed),
                             validation=validation, notify=_notify, progress=_ProgressLine())
        _finish(manifest, out, as_json)

    run(body)


@tune_app.command("dpo")
def dpo(
    model: ModelArg, data: DataArg, out: OutArg, validation: Validation = None, validation_fraction: ValFraction = 0.1,
    beta: Annotated[float, typer.Option("--beta", metavar="B", help="how far the policy may move from the "
                                                                    "reference")] = 0.1,
    precompute_ref: Annotated[bool, typer.Option("--precompute-ref", help="compute the reference log-probs once "
                                                                          "before training")] = False,
    lora_r: LoraR = 16, lora_alpha: LoraAlpha = None, lora_dropout: LoraDropout = 0.05, target: Targets = None,
    full: Full = False, qlora: QLora = False, epochs: Epochs = 1.0, max_steps: MaxSteps = -1, batch_size: Batch = 2,
    grad_accum: Accum = 1,
    learning_rate: Annotated[float, typer.Option("--learning-rate", metavar="LR", help="peak learning rate")] = 5e-5,
    max_length: MaxLength = 1024, eval_steps: EvalSteps = 50, save_steps: SaveSteps = 100, device: Device = "auto",
    precision: PrecisionOpt = "auto", gradient_checkpointing: Checkpointing = False, resume: Resume = False,
    report_to: ReportTo = None, skip_bad_rows: SkipBad = False, chat_template: ChatTemplate = None, seed: Seed = 0,
    as_json: JsonOption = False,
) -> None:
    """Direct preference optimisation on prompt/chosen/rejected rows (fp16 refused: use bf16 or fp32)."""

    def body() -> None:
        from jisik.tune.preference import train_dpo

        manifest = train_dpo(model, data, out, beta=beta, precompute_ref=precompute_ref,
                             lora=_lora(lora_r, lora_alpha, lora_dropout, target, full),
                             options=_options(
                                 epochs=epochs, max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum,
                                 learning_rate=learning_rate, max_length=max_length, eval_steps=eval_steps,
                                 save_steps=save_steps, device=device, precision=precision, qlora=qlora,
                                 gradient_checkpointing=gradient_checkpointing, resume=resume, report_to=report_to,
                                 validation_fraction=validation_fraction, skip_bad_rows=skip_bad_rows,
                                 chat_template=chat_template, seed=seed),
                             validation=validation, notify=_notify, progress=_ProgressLine())
        _finish(manifest, out, as_json)

    run(body)


@tune_app.command("reward")
def reward(
    model: ModelArg, data: DataArg, out: OutArg, validation: Validation = None, validation_fraction: ValFraction = 0.1,
    lora_r: LoraR = 16, lora_alpha: LoraAlpha = None, lora_dropout: LoraDropout = 0.05, target: Targets = None,
    full: Full = False, epochs: Epochs = 1.0, max_steps: MaxSteps = -1, batch_size: Batch = 4, grad_accum: Accum = 1,
    learning_rate: Annotated[float, typer.Option("--learning-rate", metavar="LR", help="peak learning rate")] = 1e-4,
    max_length: MaxLength = 1024, eval_steps: EvalSteps = 50, save_steps: SaveSteps = 100, device: Device = "auto",
    precision: PrecisionOpt = "auto", resume: Resume = False, report_to: ReportTo = None,
    skip_bad_rows: SkipBad = False, chat_template: ChatTemplate = None, seed: Seed = 0, as_json: JsonOption = False,
) -> None:
    """Train a reward model (one score per answer) on prompt/chosen/rejected rows."""

    def body() -> None:
        from jisik.tune.preference import train_reward

        manifest = train_reward(model, data, out, lora=_lora(lora_r, lora_alpha, lora_dropout, target, full),
                                options=_options(
                                    epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                                    grad_accum=grad_accum, learning_rate=learning_rate, max_length=max_length,
                                    eval_steps=eval_steps, save_steps=save_steps, device=device,
                                    precision=precision, resume=resume, report_to=report_to,
                                    validation_fraction=validation_fraction, skip_bad_rows=skip_bad_rows,
                                    chat_template=chat_template, seed=seed),
                                validation=validation, notify=_notify, progress=_ProgressLine())
        _finish(manifest, out, as_json)

    run(body)


@tune_app.command("sample")
def sample(
    model: ModelArg, data: DataArg,
    out: Annotated[Path, typer.Option("--out", metavar="FILE", show_default=False,
                                      help="SFT rows to write: the best answer per prompt")],
    pairs_out: Annotated[Path | None, typer.Option("--pairs-out", metavar="FILE", show_default=False,
                                                   help="also write best-vs-worst preference rows (for dpo)")] = None,
    reward_model: Annotated[Path | None, typer.Option("--reward-model", metavar="RUN", show_default=False,
                                                      help="score with this reward run (default: jisik's "
                                                           "groundedness and citation checks)")] = None,
    n: Annotated[int, typer.Option("-n", metavar="N", help="answers generated per prompt")] = 4,
    temperature: Annotated[float, typer.Option("--temperature", metavar="T", help="sampling temperature")] = 0.8,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", metavar="N", help="tokens per answer")] = 64,
    min_score: Annotated[float, typer.Option("--min-score", metavar="S",
                                             help="keep a best answer only at this score or above")] = 0.5,
    limit: Annotated[int | None, typer.Option("--limit", metavar="N", show_default=False,
                                              help="the first N prompts")] = None,
    device: Device = "auto", skip_bad_rows: SkipBad = False, chat_template: ChatTemplate = None, seed: Seed = 0,
    as_json: JsonOption = False,
) -> None:
    """Rejection sampling: generate N answers per prompt, score them, keep the best as new training rows."""

    def body() -> None:
        from jisik.tune.data import load_examples, write_examples
        from jisik.tune.hardware import detect
        from jisik.tune.models import load_causal_lm, load_tokenizer, model_folder
        from jisik.tune.preference import RewardScorer, rejection_sample
        from jisik.tune.session import quiet_libraries

        quiet_libraries()
        examples = load_examples(data, "sft", skip_bad_rows=skip_bad_rows).examples[:limit]
        hardware = detect(device)  # type: ignore[arg-type]
        folder = model_folder(model)
        tokenizer = load_tokenizer(folder, chat_template)
        lm = load_causal_lm(folder, device=hardware.device, precision="fp32" if hardware.device == "cpu" else "bf16")
        scorer = None
        if reward_model is not None:
            judge = RewardScorer(reward_model, device=hardware.device)

            def scorer(example: Any, answers: list[str]) -> list[float]:
                return judge.score([example.prompt] * len(answers), answers)

        result = rejection_sample(lm, tokenizer, examples, n=n, temperature=temperature,
                                  max_new_tokens=max_new_tokens, min_score=min_score, scorer=scorer, seed=seed,
                                  progress=lambda done, total: _notify(f"{done}/{total} prompts")
                                  if done % 10 == 0 or done == total else None)
        write_examples(out, result.sft)
        if pairs_out is not None:
            write_examples(pairs_out, result.pairs)
        summary = {"prompts": len(examples), "kept": len(result.sft), "pairs": len(result.pairs),
                   "mean_best_score": round(result.mean_best, 4), "mean_score": round(result.mean_all, 4),
                   "scorer": str(reward_model) if reward_model else "jisik groundedness + citations"}
        if as_json:
            console.print_json(json.dumps(summary, ensure_ascii=False))
            return
        console.print(f"kept {len(result.sft)} of {len(examples)} prompts → {out} (mean best score "
                      f"{result.mean_best:.3f}, mean of all {result.mean_all:.3f})", highlight=False)
        if pairs_out is not None:
            console.print(f"{len(result.pairs)} preference pairs → {pairs_out}", highlight=False)

    run(body)
