"""Preferences: DPO, reward models, and rejection sampling that turns generations into new training data.

- **DPO** (Rafailov et al. 2023) through TRL's ``DPOTrainer``. With LoRA the reference policy is the frozen base
  (the adapter switched off), so no second copy of the model is held; ``precompute_ref`` computes the
  reference log-probabilities once before training instead of on every step (less memory and time when the
  data is reused over epochs). fp16 is refused (:mod:`jisik.tune.hardware`).
- **Reward model**: a sequence classifier with one output trained on the same preference pairs with the
  Bradley–Terry loss (TRL's ``RewardTrainer``); :class:`RewardScorer` scores (prompt, answer) pairs with it.
- **Rejection sampling** (:func:`rejection_sample`): generate N answers per prompt, score them with a reward
  model or with jisik's own checks (:func:`grounded_score`), keep the best as SFT rows — and the best against the
  worst as preference pairs for DPO.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jisik.errors import TuningError
from jisik.tune import _deps
from jisik.tune.data import Example
from jisik.tune.runs import RunManifest
from jisik.tune.session import ADAPTER, LoraOptions, Notify, Progress, Session, TrainOptions
from jisik.tune.sft import conversation_rows, fit_length, load_split

PREFERENCE_FIELDS = ("prompt", "chosen", "rejected")


def train_dpo(model: str | Path, data: str | Path, out: str | Path, *, beta: float = 0.1,
              precompute_ref: bool = False, lora: LoraOptions | None = None, options: TrainOptions | None = None,
              validation: str | Path | None = None, notify: Notify | None = None,
              progress: Progress | None = None) -> RunManifest:
    """DPO on prompt/chosen/rejected rows; the manifest's ``training`` summary holds the reward margins and
    accuracies TRL logs (``rewards/margins``: how much more the policy prefers chosen over rejected than the
    reference does, scaled by ``beta``)."""
    trl = _deps.trl()
    datasets = _deps.datasets()
    from jisik.tune.models import load_causal_lm, load_tokenizer, model_folder

    if beta <= 0:
        raise TuningError(f"--beta must be positive, got {beta}", hint="0.1 is the usual value (0.01–0.5)")
    lora = lora or LoraOptions()
    options = options or TrainOptions(learning_rate=5e-6 if (lora and lora.full) else 5e-5)
    out = Path(out)
    session = Session.open("dpo", "dpo", str(model), str(data), out, options,
                           {"lora": lora.__dict__, "beta": beta, "precompute_ref": precompute_ref}, notify)
    with session.running():
        _, train, val = load_split(data, validation, options, "dpo", session.notify)
        folder = model_folder(model)
        tokenizer = load_tokenizer(folder, options.chat_template)
        train, _, lengths = fit_length(tokenizer, train, options.max_length, "training", session.notify, "chosen")
        base = load_causal_lm(folder, device=session.hardware.device, precision=session.precision,
                              qlora=options.qlora)
        args = session.args(trl.DPOConfig, has_eval=bool(val), beta=beta, max_length=options.max_length,
                            precompute_ref_log_probs=precompute_ref)
        trainer = session.trainer(
            trl.DPOTrainer, progress, model=base, ref_model=None, args=args, processing_class=tokenizer,
            peft_config=lora.config(str(base.config.model_type), "CAUSAL_LM"),
            train_dataset=datasets.Dataset.from_list(conversation_rows(train, PREFERENCE_FIELDS)),
            eval_dataset=datasets.Dataset.from_list(conversation_rows(val, PREFERENCE_FIELDS)) if val else None)
        session.estimate(trainer.model, 2 * session.planned_tokens(sum(lengths), len(train)))
        session.train(trainer)
        session.save_adapter(trainer, tokenizer, folder)
        session.manifest.evaluation["training"] = _summary(trainer, ("loss", "rewards/margins", "rewards/accuracies",
                                                                     "rewards/chosen", "rewards/rejected"))
    return session.manifest


def train_reward(model: str | Path, data: str | Path, out: str | Path, *, lora: LoraOptions | None = None,
                 options: TrainOptions | None = None, validation: str | Path | None = None,
                 notify: Notify | None = None, progress: Progress | None = None) -> RunManifest:
    """A reward model (one-logit sequence classifier on ``model``) from prompt/chosen/rejected rows; the
    validation pairs' accuracy (chosen scored above rejected) before and after goes into the manifest."""
    trl = _deps.trl()
    datasets = _deps.datasets()
    transformers = _deps.transformers()
    from jisik.tune.models import load_tokenizer, model_folder

    lora = lora or LoraOptions()
    options = options or TrainOptions(learning_rate=1e-4)
    out = Path(out)
    session = Session.open("reward", "reward", str(model), str(data), out, options, {"lora": lora.__dict__},
                           notify)
    with session.running():
        _, train, val = load_split(data, validation, options, "reward", session.notify)
        folder = model_folder(model)
        tokenizer = load_tokenizer(folder, options.chat_template)
        train, _, lengths = fit_length(tokenizer, train, options.max_length, "training", session.notify, "chosen")
        torch = _deps.torch()
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[session.precision]
        base = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(folder), num_labels=1, dtype=dtype, local_files_only=True).to(session.hardware.device)
        base.config.pad_token_id = tokenizer.pad_token_id
        if val:
            session.manifest.evaluation["before"] = {"accuracy": pair_accuracy(base, tokenizer, val)}
        args = session.args(trl.RewardConfig, has_eval=bool(val), max_length=options.max_length)
        trainer = session.trainer(
            trl.RewardTrainer, progress, model=base, args=args, processing_class=tokenizer,
            peft_config=lora.config(str(base.config.model_type), "SEQ_CLS"),
            train_dataset=datasets.Dataset.from_list(conversation_rows(train, PREFERENCE_FIELDS)),
            eval_dataset=datasets.Dataset.from_list(conversation_rows(val, PREFERENCE_FIELDS)) if val else None)
        session.estimate(trainer.model, 2 * session.planned_tokens(sum(lengths), len(train)))
        session.train(trainer)
        if val:
            session.manifest.evaluation["after"] = {"accuracy": pair_accuracy(trainer.model, tokenizer, val)}
        session.save_adapter(trainer, tokenizer, folder)
        session.manifest.evaluation["training"] = _summary(trainer, ("loss", "accuracy", "margin"))
    return session.manifest


def _summary(trainer: Any, names: Sequence[str]) -> dict[str, float]:
    """First and last logged value of each of ``names`` (training records only)."""
    out: dict[str, float] = {"steps": float(trainer.state.global_step)}
    records = [h for h in trainer.state.log_history if not any(k.startswith("eval_") for k in h)]
    for name in names:
        values = [float(h[name]) for h in records if name in h]
        if values:
            out[f"first_{name}"] = values[0]
            out[f"last_{name}"] = values[-1]
    return out


class RewardScorer:
    """Scores (prompt messages, answer) pairs with a reward model run folder (or a merged model folder)."""

    def __init__(self, run_or_model: str | Path, *, device: str = "cpu") -> None:
        transformers = _deps.transformers()
        path = Path(run_or_model)
        adapter = path / ADAPTER
        if adapter.is_dir():
            from jisik.tune.runs import load_manifest

            manifest = load_manifest(path)
            base = Path(manifest.artefacts.get("base_folder") or manifest.base_model)
            peft = _deps.peft()
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                str(base), num_labels=1, local_files_only=True)
            self.model = peft.PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(adapter), local_files_only=True)
        else:
            self.model = transformers.AutoModelForSequenceClassification.from_pretrained(str(path),
                                                                                         local_files_only=True)
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.to(device).eval()

    def score(self, prompts: Sequence[list[dict[str, str]]], answers: Sequence[str]) -> list[float]:
        return reward_scores(self.model, self.tokenizer, prompts, answers)


def reward_scores(model: Any, tokenizer: Any, prompts: Sequence[list[dict[str, str]]],
                  answers: Sequence[str]) -> list[float]:
    """The reward model's scalar for each (prompt, answer), through the chat template."""
    torch = _deps.torch()
    device = next(model.parameters()).device
    scores: list[float] = []
    with torch.no_grad():
        for prompt, answer in zip(prompts, answers, strict=True):
            text = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=False)
            batch = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(device)
            scores.append(float(model(**batch).logits[0, 0].float()))
    return scores


def pair_accuracy(model: Any, tokenizer: Any, pairs: Sequence[Example]) -> float:
    """Share of preference pairs whose chosen answer the reward model scores above the rejected one."""
    if not pairs:
        return 0.0
    prompts = [p.prompt for p in pairs]
    chosen = reward_scores(model, tokenizer, prompts, [p.chosen[-1]["content"] for p in pairs if p.chosen])
    rejected = reward_scores(model, tokenizer, prompts, [p.rejected[-1]["content"] for p in pairs if p.rejected])
    return sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(pairs)


# --- rejection sampling ------------------------------------------------------------------------------------------

_PASSAGE = re.compile(r"<<<DOCUMENT (\d+)>>>\n(.*?)\n<<<END DOCUMENT \1>>>", re.DOTALL)


def prompt_passages(prompt: Sequence[dict[str, str]]) -> dict[int, str]:
    """The numbered passages inside an answerer prompt (between its document markers).

    >>> prompt_passages([{"role": "user", "content": "[1] (a.md)\\n<<<DOCUMENT 1>>>\\n14 days\\n<<<END DOCUMENT 1>>>"}])
    {1: '14 days'}
    """
    found: dict[int, str] = {}
    for message in prompt:
        for number, text in _PASSAGE.findall(message["content"]):
            found[int(number)] = text
    return found


def grounded_score(example: Example, answer: str) -> float:
    """jisik's own quality score of an answer to a RAG prompt, in [0, 1], for rejection sampling without a
    reward model: half for citations (at least one valid ``[n]`` and no invalid one), half for groundedness
    (the share of its sentences the cited passages — all passages when it cites none — support,
    :func:`jisik.evaluate.metrics.groundedness`). A
    refusal scores 1 where the example says the answer was not retrieved and 0.25 elsewhere (safe, unhelpful);
    with reference answers, an answer that contains none of them loses half its score.
    """
    from jisik.evaluate.metrics import groundedness
    from jisik.generate.citations import resolve_citations
    from jisik.generate.language import detect_language, is_not_found
    from jisik.tune.evaluation import strip_markers

    if not answer.strip():
        return 0.0
    retrieved = bool(example.meta.get("found", True))
    if is_not_found(answer):
        return 0.25 if retrieved else 1.0
    passages = prompt_passages(example.prompt)
    resolved = resolve_citations(answer, len(passages))
    citations = 1.0 if resolved.cited and not resolved.invalid else 0.0
    # against the passages it cites; an answer citing none is checked against them all (grounded but uncited
    # beats invented)
    evidence = [passages[n] for n in resolved.cited if n in passages] or list(passages.values())
    text = strip_markers(answer)
    grounded = groundedness(text, evidence, language="ko" if detect_language(text) == "ko" else "en") \
        if evidence else 0.0
    score = 0.5 * citations + 0.5 * grounded
    golds = [str(a).casefold() for a in example.meta.get("answers", [])]
    if golds and not any(g in text.casefold() for g in golds):
        score *= 0.5
    return score


@dataclass
class SampleResult:
    """The best answer per prompt as SFT rows, best-vs-worst preference pairs, and the score spread."""

    sft: list[Example]
    pairs: list[Example]
    mean_best: float
    mean_all: float


def rejection_sample(model: Any, tokenizer: Any, examples: Sequence[Example], *, n: int = 4,
                     temperature: float = 0.8, max_new_tokens: int = 64, min_score: float = 0.5,
                     scorer: Callable[[Example, list[str]], list[float]] | None = None,
                     progress: Callable[[int, int], None] | None = None, seed: int = 0) -> SampleResult:
    """Generate ``n`` sampled answers per example, score them (``scorer``, default :func:`grounded_score`),
    keep the best when it scores at least ``min_score``, and pair it against the worst when they differ."""
    torch = _deps.torch()
    if n < 2:
        raise TuningError(f"--n must be at least 2 to choose between answers, got {n}")
    score_all = scorer or (lambda example, answers: [grounded_score(example, a) for a in answers])
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    model.eval()
    sft: list[Example] = []
    pairs: list[Example] = []
    best_scores: list[float] = []
    all_scores: list[float] = []
    for index, example in enumerate(examples):
        ids = tokenizer.apply_chat_template(example.prompt, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)["input_ids"].to(device)
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                 temperature=temperature, top_p=0.95, max_new_tokens=max_new_tokens,
                                 num_return_sequences=n, pad_token_id=tokenizer.pad_token_id)
        answers = [tokenizer.decode(row[ids.shape[1]:], skip_special_tokens=True).strip() for row in out]
        scores = score_all(example, answers)
        all_scores.extend(scores)
        ranked = sorted(zip(scores, answers, strict=True), key=lambda pair: -pair[0])
        best_score, best = ranked[0]
        worst_score, worst = ranked[-1]
        best_scores.append(best_score)
        meta = {**example.meta, "score": round(best_score, 4), "samples": n}
        if best_score >= min_score:
            sft.append(Example(example.prompt, completion=[{"role": "assistant", "content": best}],
                               group=example.group, meta=meta))
        if best_score > worst_score and best != worst:
            pairs.append(Example(example.prompt, chosen=[{"role": "assistant", "content": best}],
                                 rejected=[{"role": "assistant", "content": worst}], group=example.group,
                                 meta={**meta, "rejected_score": round(worst_score, 4)}))
        if progress is not None:
            progress(index + 1, len(examples))
    return SampleResult(sft, pairs, _mean(best_scores), _mean(all_scores))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
