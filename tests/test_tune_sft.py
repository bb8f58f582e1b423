"""Fine-tuning data, SFT, DPO, reward models and rejection sampling on a tiny random Llama built in the test
(``jisik.testing.tune.tiny_llama``: ~125k parameters and its own SentencePiece tokenizer — its answers are noise,
so these tests assert the pipeline's behaviour: losses fall, margins stay finite, files and errors are right).
Knowledge bases use the hashing embedder (a named fake)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jisik.embed.hashing import HashingEmbedder
from jisik.errors import ConfigError, TrainingDataError, TrainingDivergedError, TuningError
from jisik.kb import KnowledgeBase
from jisik.testing.tune import tiny_llama
from jisik.tune.data import build_rag_examples, load_examples, rag_prompt, split_by_group
from jisik.tune.hardware import Hardware, resolve_precision
from jisik.tune.runs import load_manifest
from jisik.tune.session import LoraOptions, TrainOptions
from jisik.tune.tracking import read_metrics

FAST = dict(batch_size=4, logging_steps=1, eval_steps=5, save_steps=1000, max_length=256, report_to=("none",))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
                    encoding="utf-8")
    return path


def _sft_rows(n: int = 40) -> list[dict[str, Any]]:
    return [{"messages": [{"role": "user", "content": f"Context: [1] The return period is {i} days. "
                                                      "Question: How long is the return period?"},
                          {"role": "assistant", "content": f"{i} days [1]."}],
             "group": f"article{i % 8}", "meta": {"answers": [f"{i} days"], "cited": [1], "found": True,
                                                  "passages": 1}} for i in range(n)]


# --- data ---------------------------------------------------------------------------------------------------


def test_bad_rows_are_named_by_line(tmp_path: Path) -> None:
    good = _sft_rows(1)[0]
    path = _write_jsonl(tmp_path / "train.jsonl", [
        good, "{not json", {"messages": [{"role": "user", "content": "only a question"}]}, "",
        {"prompt": "Q", "completion": ""}, {"messages": [{"role": "robot", "content": "x"},
                                                         {"role": "assistant", "content": "y"}]}, good])
    with pytest.raises(TrainingDataError) as info:
        load_examples(path)
    message = info.value.message
    assert "4 of 6 row(s) unusable" in message
    for fragment in ("line 2: not valid JSON", "line 3: messages must end with an assistant message",
                     "line 5: completion is empty", "line 6: messages[0]: role 'robot'"):
        assert fragment in message
    assert "--skip-bad-rows" in (info.value.hint or "")
    loaded = load_examples(path, skip_bad_rows=True)
    assert len(loaded.examples) == 2 and [line for line, _ in loaded.skipped] == [2, 3, 5, 6]


def test_preference_rows_and_formats(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "prefs.jsonl", [
        {"prompt": "Q", "chosen": "good [1]", "rejected": "bad"},
        {"prompt": [{"role": "user", "content": "Q2"}], "chosen": [{"role": "assistant", "content": "a"}],
         "rejected": [{"role": "assistant", "content": "b"}]},
        {"prompt": "Q3", "chosen": "same", "rejected": "same"}])
    with pytest.raises(TrainingDataError, match="line 3: chosen and rejected are the same answer"):
        load_examples(path, "preference")
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("prompt,completion\nQ1,A1\nQ2,\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="line 3: completion is empty"):
        load_examples(csv_path)
    with pytest.raises(TrainingDataError, match="does not exist"):
        load_examples(tmp_path / "missing.jsonl")


def test_split_keeps_groups_apart() -> None:
    examples = load_examples_from(_sft_rows(40))
    train, val = split_by_group(examples, 0.25, seed=3)
    assert {e.group for e in train}.isdisjoint({e.group for e in val})
    assert len(train) + len(val) == 40 and len({e.group for e in val}) == 2  # 25% of 8 articles
    assert split_by_group(examples, 0.25, seed=3)[1] == val  # deterministic
    with pytest.raises(TrainingDataError, match="validation fraction"):
        split_by_group(examples, 1.0)


def load_examples_from(rows: list[dict[str, Any]]) -> list[Any]:
    from jisik.tune.data import parse_row

    return [parse_row(r, "sft", i + 1) for i, r in enumerate(rows)]


def test_rag_examples_use_the_answerers_prompt_and_cite_the_answer(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "returns.md").write_text("# Returns\n\nThe return period is 30 days from delivery.\n", encoding="utf-8")
    (docs / "refunds.md").write_text("# Refunds\n\nRefunds take 5 business days.\n", encoding="utf-8")
    (docs / "반품.md").write_text("# 반품\n\n반품 기간은 배송일로부터 14일입니다.\n", encoding="utf-8")
    from jisik.evaluate.datasets import EvalExample

    with KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(64)) as kb:
        kb.ingest([docs])
        questions = [EvalExample("q1", "How long is the return period?", ["30 days"], ["returns#0"]),
                     EvalExample("q2", "반품 기간은 며칠인가요?", ["14일"], ["반품#0"]),
                     EvalExample("q3", "Who founded the company?", ["Ada Lovelace"], ["history#0"]),
                     EvalExample("q4", "No answer given", [])]
        examples, stats = build_rag_examples(kb, questions, k=3)
        hits = kb.search("How long is the return period?", k=3, mode=kb.config.answer.mode)
        expected_prompt = rag_prompt(kb.prompt_set(), "How long is the return period?", hits, "en")
    assert (stats.questions, stats.found, stats.refusals) == (3, 2, 1)
    first = examples[0]
    assert first.prompt == expected_prompt and first.prompt[0]["role"] == "system"
    assert "<<<DOCUMENT 1>>>" in first.prompt[1]["content"]
    number = first.meta["cited"][0]
    assert first.completion == [{"role": "assistant", "content": f"30 days [{number}]"}]
    assert "30 days" in hits[number - 1].text
    korean = examples[1]
    assert korean.completion is not None and korean.completion[0]["content"].startswith("14일 [")
    assert "문서" in korean.prompt[1]["content"] or "질문" in korean.prompt[1]["content"]  # the Korean template
    refusal = examples[2]
    assert refusal.completion == [{"role": "assistant", "content": "I could not find the answer in the documents."}]
    assert refusal.meta["found"] is False and refusal.group == "history"


def test_tune_data_command(tmp_path: Path, runner: CliRunner, sample_docs: Path) -> None:
    from jisik.cli import app

    kb = tmp_path / "kb"
    assert runner.invoke(app, ["ingest", str(sample_docs), "--kb", str(kb)]).exit_code == 0
    qa = _write_jsonl(tmp_path / "qa.jsonl", [
        {"question": "반품 기간은 며칠인가요?", "answers": ["14일"], "group": "returns"},
        {"question": "What is the refund period?", "answers": ["14 days"], "group": "refunds"},
        {"question": "배송비는 얼마인가요?", "answers": ["3,000원"], "group": "shipping"},
        {"question": "Who is the CEO?", "answers": ["nobody knows"], "group": "company"}])
    out = tmp_path / "train.jsonl"
    result = runner.invoke(app, ["tune", "data", "--kb", str(kb), "--from", str(qa), "--out", str(out),
                                 "--validation-fraction", "0.25", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["train_rows"] + summary["validation_rows"] == 4 and summary["validation_rows"] == 1
    train = load_examples(out).examples
    val = load_examples(summary["validation"]).examples
    assert {e.group for e in train}.isdisjoint({e.group for e in val})
    bad = runner.invoke(app, ["tune", "data", "--kb", str(kb), "--from", str(tmp_path / "nope.jsonl"),
                              "--out", str(out)])
    assert bad.exit_code == 1 and "error:" in bad.output and "Traceback" not in bad.output


# --- precision and hardware rules -------------------------------------------------------------------------------


def test_precision_rules() -> None:
    cpu = Hardware("cpu", "x86", None, False)
    with pytest.raises(ConfigError, match="DPO in fp16 is refused"):
        resolve_precision(Hardware("cuda", "V100", None, False), "fp16", "dpo")
    with pytest.raises(ConfigError, match="fp16 training needs a GPU"):
        resolve_precision(cpu, "fp16", "sft")
    assert resolve_precision(Hardware("cuda", "T4", None, False), "auto", "sft") == "fp16"
    assert resolve_precision(Hardware("cuda", "H100", None, True), "auto", "sft") == "bf16"


def test_qlora_and_fp16_dpo_are_refused_before_loading(tiny: Path, tmp_path: Path) -> None:
    from jisik.tune.preference import train_dpo
    from jisik.tune.sft import train_sft

    data = _write_jsonl(tmp_path / "train.jsonl", _sft_rows(4))
    with pytest.raises(ConfigError, match=r"QLoRA .* needs a CUDA GPU") as info:
        train_sft(tiny, data, tmp_path / "q", options=TrainOptions(qlora=True, device="cpu"))
    assert "drop --qlora" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="fp16"):
        train_dpo(tiny, data, tmp_path / "d", options=TrainOptions(precision="fp16", device="cpu"))


# --- SFT ------------------------------------------------------------------------------------------------------


def test_sft_loss_decreases_and_the_run_folder_is_complete(tiny: Path, tmp_path: Path) -> None:
    from jisik.tune.sft import train_sft

    data = _write_jsonl(tmp_path / "train.jsonl", _sft_rows(40))
    out = tmp_path / "run"
    notes: list[str] = []
    manifest = train_sft(tiny, data, out, lora=LoraOptions(r=8),
                         options=TrainOptions(max_steps=20, learning_rate=5e-3, eval_generate=2, max_new_tokens=6,
                                              **FAST),  # type: ignore[arg-type]
                         notify=notes.append)
    assert manifest.status == "finished"
    training = manifest.evaluation["training"]
    assert training["steps"] == 20
    assert training["last_loss"] < training["first_loss"] - 0.3
    assert training["last_eval_loss"] < training["first_eval_loss"]
    assert set(manifest.evaluation["before"]) >= {"em", "f1", "found_rate", "citation_validity"}
    assert any("trainable" in n for n in notes) and any(n.startswith("estimate:") for n in notes)
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert (out / "adapter" / "tokenizer_config.json").is_file()
    saved = load_manifest(out)
    assert saved.status == "finished" and saved.peak_memory_bytes and saved.seconds
    losses = [r for r in read_metrics(out) if r["split"] == "train" and r["name"] == "loss"]
    assert len(losses) >= 19
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and adapter["lora_alpha"] == 16
    assert set(adapter["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                              "down_proj"}


def test_rows_longer_than_max_length_are_left_out_and_counted(tiny: Path, tmp_path: Path) -> None:
    from jisik.tune.sft import train_sft

    rows = _sft_rows(8)
    rows[0]["messages"][0]["content"] = "long " * 400
    data = _write_jsonl(tmp_path / "train.jsonl", rows)
    notes: list[str] = []
    manifest = train_sft(tiny, data, tmp_path / "run", options=TrainOptions(
        max_steps=2, validation_fraction=0, **FAST), notify=notes.append)  # type: ignore[arg-type]
    assert any("1 of 8 training example(s) are longer than --max-length 256" in n for n in notes)
    assert "7 training" in manifest.notes[0]


def test_nan_loss_stops_with_step_and_batch(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forward hook (a named fault injection) turns the final hidden states to NaN from the third forward pass
    on (TRL computes the loss from them and ``lm_head.weight`` directly, so the head itself is never called)."""
    from jisik.tune import models
    from jisik.tune.sft import train_sft

    real_load = models.load_causal_lm

    def poisoned(*args: Any, **kwargs: Any) -> Any:
        model = real_load(*args, **kwargs)
        calls = {"n": 0}

        def hook(module: Any, inputs: Any, output: Any) -> Any:
            calls["n"] += 1
            return output * float("nan") if calls["n"] >= 3 else output

        model.model.norm.register_forward_hook(hook)
        return model

    monkeypatch.setattr(models, "load_causal_lm", poisoned)
    data = _write_jsonl(tmp_path / "train.jsonl", _sft_rows(16))
    out = tmp_path / "run"
    with pytest.raises(TrainingDivergedError) as info:
        train_sft(tiny, data, out, options=TrainOptions(max_steps=10, validation_fraction=0, **FAST))  # type: ignore[arg-type]
    assert "the training loss became nan at step 3 (batch 3" in info.value.message
    assert "first example of the batch" in info.value.message and "return period" in info.value.message
    assert load_manifest(out).status == "diverged"


def test_resume_continues_from_the_last_checkpoint(tiny: Path, tmp_path: Path) -> None:
    from jisik.tune.sft import train_sft

    data = _write_jsonl(tmp_path / "train.jsonl", _sft_rows(16))
    out = tmp_path / "run"
    base = {**FAST, "save_steps": 3, "validation_fraction": 0}
    train_sft(tiny, data, out, options=TrainOptions(max_steps=3, **base))  # type: ignore[arg-type]
    with pytest.raises(TuningError, match="already holds a training run"):
        train_sft(tiny, data, out, options=TrainOptions(max_steps=6, **base))  # type: ignore[arg-type]
    with pytest.raises(TuningError, match="no checkpoint"):
        train_sft(tiny, data, tmp_path / "fresh", options=TrainOptions(max_steps=6, resume=True, **base))  # type: ignore[arg-type]
    manifest = train_sft(tiny, data, out, options=TrainOptions(max_steps=6, resume=True, **base))  # type: ignore[arg-type]
    assert manifest.evaluation["training"]["steps"] == 6
    steps = sorted({r["step"] for r in read_metrics(out) if r["name"] == "loss" and r["split"] == "train"})
    assert steps == [1, 2, 3, 4, 5, 6]  # the resumed run logged steps 4-6 only once


def test_sft_command_and_its_errors(tiny: Path, tmp_path: Path) -> None:
    from jisik.cli import app

    runner = CliRunner()
    data = _write_jsonl(tmp_path / "train.jsonl", _sft_rows(12))
    result = runner.invoke(app, ["tune", "sft", "--model", str(tiny), "--data", str(data), "--out",
                                 str(tmp_path / "run"), "--max-steps", "3", "--lora-r", "4", "--max-length", "256",
                                 "--report-to", "none", "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["status"] == "finished" and manifest["options"]["lora"]["r"] == 4
    bad = _write_jsonl(tmp_path / "bad.jsonl", [_sft_rows(1)[0], "{oops"])
    failed = runner.invoke(app, ["tune", "sft", "--model", str(tiny), "--data", str(bad), "--out",
                                 str(tmp_path / "run2")])
    assert failed.exit_code == 1 and "line 2: not valid JSON" in failed.output and "Traceback" not in failed.output
    missing = runner.invoke(app, ["tune", "sft", "--model", str(tmp_path / "nope"), "--data", str(data),
                                  "--out", str(tmp_path / "run3")])
    assert missing.exit_code == 1 and "does not exist" in missing.output


# --- preferences ----------------------------------------------------------------------------------------------


def _preference_rows(n: int = 24) -> list[dict[str, Any]]:
    return [{"prompt": f"Context: [1] The return period is {i} days. Question: How long?",
             "chosen": f"{i} days [1].", "rejected": "I could not find the answer in the documents.",
             "group": f"g{i % 6}"} for i in range(n)]


def test_dpo_runs_with_finite_reward_margins(tiny: Path, tmp_path: Path) -> None:
    from jisik.tune.preference import train_dpo

    data = _write_jsonl(tmp_path / "prefs.jsonl", _preference_rows())
    manifest = train_dpo(tiny, data, tmp_path / "dpo", options=TrainOptions(
        max_steps=8, learning_rate=5e-3, **FAST))  # type: ignore[arg-type]
    training = manifest.evaluation["training"]
    assert manifest.status == "finished" and (tmp_path / "dpo" / "adapter" / "adapter_config.json").is_file()
    assert math.isfinite(training["last_rewards/margins"]) and math.isfinite(training["last_loss"])
    assert training["last_rewards/margins"] > training["first_rewards/margins"]
    assert training["last_loss"] < training["first_loss"]


def test_dpo_with_precomputed_reference(tiny: Path, tmp_path: Path) -> None:
    from jisik.tune.preference import train_dpo

    data = _write_jsonl(tmp_path / "prefs.jsonl", _preference_rows(8))
    manifest = train_dpo(tiny, data, tmp_path / "dpo", precompute_ref=True, options=TrainOptions(
        max_steps=2, validation_fraction=0, **FAST))  # type: ignore[arg-type]
    assert manifest.options["precompute_ref"] is True
    assert math.isfinite(manifest.evaluation["training"]["last_rewards/margins"])


def test_reward_model_learns_preferences_and_scores(tiny: Path, tmp_path: Path) -> None:
    from jisik.tune.preference import RewardScorer, train_reward

    data = _write_jsonl(tmp_path / "prefs.jsonl", _preference_rows())
    manifest = train_reward(tiny, data, tmp_path / "rm", options=TrainOptions(
        max_steps=10, learning_rate=5e-3, **FAST))  # type: ignore[arg-type]
    assert manifest.evaluation["after"]["accuracy"] == 1.0
    assert manifest.evaluation["training"]["last_loss"] < manifest.evaluation["training"]["first_loss"]
    scorer = RewardScorer(tmp_path / "rm")
    prompt = [{"role": "user", "content": "Context: [1] The return period is 99 days. Question: How long?"}]
    good, bad = scorer.score([prompt, prompt], ["99 days [1].", "I could not find the answer in the documents."])
    assert good > bad


def test_grounded_score_prefers_cited_grounded_answers() -> None:
    from jisik.tune.data import Example
    from jisik.tune.preference import grounded_score

    prompt = [{"role": "user", "content": "[1] (a.md)\n<<<DOCUMENT 1>>>\nThe return period is 30 days from "
                                          "delivery.\n<<<END DOCUMENT 1>>>\n\nQuestion: How long?"}]
    example = Example(prompt, meta={"answers": ["30 days"], "found": True})
    grounded = grounded_score(example, "The return period is 30 days [1].")
    uncited = grounded_score(example, "The return period is 30 days.")
    invented = grounded_score(example, "Returns are accepted for 90 days by mail [1].")
    wrong_marker = grounded_score(example, "The return period is 30 days [3].")
    refusal = grounded_score(example, "I could not find the answer in the documents.")
    assert grounded == 1.0 and grounded > uncited > 0 and grounded > invented and grounded > wrong_marker
    assert refusal == 0.25
    assert grounded_score(Example(prompt, meta={"found": False}), "I could not find the answer in the documents.") == 1


def test_rejection_sampling_keeps_the_best_and_pairs_it(tiny: Path, tmp_path: Path) -> None:
    from jisik.tune.models import load_causal_lm, load_tokenizer
    from jisik.tune.preference import rejection_sample

    examples = load_examples_from(_sft_rows(3))
    model = load_causal_lm(tiny, device="cpu", precision="fp32")
    tokenizer = load_tokenizer(tiny)
    calls: list[int] = []

    def by_length(example: Any, answers: list[str]) -> list[float]:  # a scripted scorer: longer is better
        calls.append(len(answers))
        return [float(len(a)) for a in answers]

    result = rejection_sample(model, tokenizer, examples, n=3, max_new_tokens=8, min_score=0, scorer=by_length)
    assert calls == [3, 3, 3] and len(result.sft) == 3
    for row in result.pairs:
        assert row.chosen and row.rejected and len(row.chosen[0]["content"]) > len(row.rejected[0]["content"])
    with pytest.raises(TuningError, match="at least 2"):
        rejection_sample(model, tokenizer, examples, n=1)
