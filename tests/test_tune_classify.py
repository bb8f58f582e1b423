"""``jisik tune classify`` and ``jisik tune report``.

The model is a tiny random-weight BERT (2 layers, hidden size 64, ~78k parameters) with a word-level tokenizer over a
25-word vocabulary, both built here (nothing is downloaded). Its task is separable by vocabulary — each text holds
four words of its topic and one shared word — so a working pipeline must reach accuracy ≥ 0.9 from a random head;
the tests assert the pipeline (learning, scores against scikit-learn, files, errors), not a model's quality.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from jisik.cli.commands.tune_classify import classify, report
from jisik.errors import TrainingDataError, TrainingDivergedError, TuningError
from jisik.tune import classify as classify_module
from jisik.tune.classify import Classifier, ClassifyOptions, ClassifyResult, predict, train_classifier
from jisik.tune.report import write_report
from jisik.tune.runs import RunManifest, load_manifest
from jisik.tune.tracking import RunLog

pytest.importorskip("peft")
torch = pytest.importorskip("torch")

# The third label holds HTML on purpose: the report must escape it everywhere.
TOPICS = {"sports": ["goal", "match", "team", "score", "league", "coach"],
          "economy": ["market", "stock", "price", "bank", "trade", "inflation"],
          "sci&tech <lab>": ["atom", "cell", "energy", "planet", "theory", "experiment"]}
SHARED = ["the", "a", "today", "news", "report", "new", "big"]
FAST = ClassifyOptions(epochs=5.0, learning_rate=1e-3, batch_size=16, validation=0.25, report_to=("none",))


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Matrices this small run fastest on one thread (and do not fight other processes for cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_encoder(folder: Path) -> Path:
    """A random BERT encoder (no classification head, like a real base model) and its word-level tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = sorted({w for ws in TOPICS.values() for w in ws} | set(SHARED))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                           special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(0)
    # hidden size 64 with 4 heads learns the toy task from every seed tried (1, 2, 3, 7, 42); 32 with 2 heads
    # sometimes stalls with two topics merged
    config = BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=64)
    BertModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def toy_csv(path: Path, per_label: int = 60, seed: int = 0) -> Path:
    rng = random.Random(seed)
    lines = ["text,label"]
    for _ in range(per_label):
        for label, words in TOPICS.items():
            lines.append(" ".join(rng.sample(words, 4) + rng.sample(SHARED, 1)) + f',"{label}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("classify")
    tiny_encoder(root / "encoder")
    toy_csv(root / "news.csv")
    return root


@pytest.fixture(scope="module")
def full_run(workspace: Path) -> ClassifyResult:
    messages: list[str] = []
    result = train_classifier(workspace / "encoder", workspace / "news.csv", workspace / "runs" / "full",
                              FAST, notify=messages.append)
    assert any("training and" in m and "parameters" in m for m in messages), messages
    return result


def _eval(run: Path) -> dict[str, Any]:
    return json.loads((run / "eval.json").read_text(encoding="utf-8"))


def test_learns_a_separable_task_and_scores_match_scikit_learn(full_run: ClassifyResult) -> None:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    assert full_run.labels == sorted(TOPICS)
    assert full_run.after["accuracy"] >= 0.9 > full_run.before["accuracy"]
    record = _eval(full_run.folder)
    gold = record["predictions"]["gold"]
    for phase in ("before", "after"):
        predicted = record["predictions"][phase]
        scores = record[phase]
        assert scores["accuracy"] == pytest.approx(accuracy_score(gold, predicted))
        assert scores["macro_f1"] == pytest.approx(f1_score(gold, predicted, average="macro", zero_division=0))
        p, r, f, support = precision_recall_fscore_support(gold, predicted, labels=record["labels"], zero_division=0)
        for i, label in enumerate(record["labels"]):
            per = scores["per_label"][label]
            assert (per["precision"], per["recall"], per["f1"], per["support"]) == pytest.approx(
                (p[i], r[i], f[i], support[i]))
        assert scores["confusion"]["matrix"] == confusion_matrix(gold, predicted, labels=record["labels"]).tolist()
    manifest = load_manifest(full_run.folder)
    assert manifest.kind == "classify" and manifest.status == "finished"
    assert manifest.evaluation["after"]["macro_f1"] == pytest.approx(full_run.after["macro_f1"])
    assert sum(manifest.evaluation["confusion:after"].values()) == len(gold)
    assert manifest.options["labels"] == full_run.labels and manifest.peak_memory_bytes
    assert not (full_run.folder / "checkpoints").exists()  # removed after success unless --keep-checkpoints


def test_split_is_stratified_and_keeps_duplicates_together(full_run: ClassifyResult) -> None:
    record = _eval(full_run.folder)
    counts = {label: record["predictions"]["gold"].count(label) for label in TOPICS}
    assert counts == {label: 15 for label in TOPICS}  # 25% of 60 per label
    train, val = classify_module.stratified_split(["a", "a", "a", "b", "b", "b"], 0.5, seed=3,
                                                  groups=["x", "x", "y", "z", "w", "z"])
    assert ({0, 1} <= set(train) or {0, 1} <= set(val)) and ({3, 5} <= set(train) or {3, 5} <= set(val))


def test_saved_model_loads_in_a_transformers_pipeline(full_run: ClassifyResult, workspace: Path) -> None:
    from transformers import pipeline

    record = _eval(full_run.folder)
    lines = (workspace / "news.csv").read_text(encoding="utf-8").splitlines()
    texts = [lines[n - 1].rsplit(",", 1)[0] for n in record["predictions"]["line"]]
    classifier = pipeline("text-classification", model=str(full_run.model), device="cpu")
    assert [out["label"] for out in classifier(texts)] == record["predictions"]["after"]
    routed = predict(full_run.folder, ["goal team coach match", "stock bank market price"])
    assert [p.label for p in routed] == ["sports", "economy"]
    assert all(0 < p.score <= 1 and math.isclose(sum(p.scores.values()), 1, rel_tol=1e-5) for p in routed)
    assert Classifier.load(full_run.model).predict("atom cell energy theory").label == "sci&tech <lab>"


def test_lora_trains_the_adapters_and_head_and_saves_merged_weights(workspace: Path) -> None:
    from safetensors.torch import load_file
    from transformers import pipeline

    options = replace(FAST, lora=True, learning_rate=2e-2, epochs=6.0)
    result = train_classifier(workspace / "encoder", workspace / "news.csv", workspace / "runs" / "lora", options)
    assert result.after["accuracy"] >= 0.9 and result.after["macro_f1"] > result.before["macro_f1"] + 0.3
    assert (result.folder / "adapter" / "adapter_config.json").is_file()
    weights = load_file(str(result.model / "model.safetensors"))
    assert not any("lora" in key or "modules_to_save" in key for key in weights)  # merged into plain BERT names
    assert "classifier.weight" in weights
    record = _eval(result.folder)
    lines = (workspace / "news.csv").read_text(encoding="utf-8").splitlines()
    texts = [lines[n - 1].rsplit(",", 1)[0] for n in record["predictions"]["line"]]
    classifier = pipeline("text-classification", model=str(result.model), device="cpu")
    assert [out["label"] for out in classifier(texts)] == record["predictions"]["after"]
    assert load_manifest(result.folder).artefacts["adapter"] == "adapter"


def test_bad_rows_are_reported_by_line_number(workspace: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text('text,label\ngood text,sports\n"two\nlines",\n   ,economy\n\nno label here\n',
                        encoding="utf-8")  # a quoted cell over lines 3-4; line 6 blank
    with pytest.raises(TrainingDataError) as caught:
        train_classifier(workspace / "encoder", csv_file, tmp_path / "run", FAST)
    message = caught.value.message
    assert "3 bad row(s)" in message and "line 3: no 'label'" in message, message
    assert "line 5: empty 'text'" in message and "line 7: no 'label'" in message, message
    assert not (tmp_path / "run").exists()  # nothing is created before the data is valid

    jsonl = tmp_path / "bad.jsonl"
    rows = [{"text": "ok", "label": "a"}, "not json", {"text": "x", "label": 1.5}, {"label": "a"}, [1, 2]]
    jsonl.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(TrainingDataError) as caught:
        classify_module.read_examples(jsonl)
    message = caught.value.message
    assert "line 2: not JSON" in message and "line 3: unusable 'label'" in message, message
    assert "line 4: no 'text'" in message and "line 5: not a JSON object" in message, message

    many = tmp_path / "many.csv"
    many.write_text("text,label\n" + "x,\n" * 25, encoding="utf-8")
    with pytest.raises(TrainingDataError, match=r"25 bad row\(s\).*line 11: .*\(and 15 more\)"):
        classify_module.read_examples(many)
    with pytest.raises(TrainingDataError, match=r"no column 'topic'.*columns: text, label"):
        classify_module.read_examples(csv_file, label_column="topic")


def test_a_nan_loss_stops_the_run_naming_the_step(workspace: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A forward hook turns the logits into NaN from the third training step on (evaluation passes run in eval
    mode and are left alone), as a diverging run would."""
    load = classify_module._load
    steps = {"n": 0}

    def poisoned(model: str, labels: list[str]) -> tuple[Any, Any]:
        tokenizer, net = load(model, labels)

        def hook(module: Any, inputs: Any, output: Any) -> Any:
            if not module.training:
                return output
            steps["n"] += 1
            return output * float("nan") if steps["n"] >= 3 else output

        net.classifier.register_forward_hook(hook)
        return tokenizer, net

    monkeypatch.setattr(classify_module, "_load", poisoned)
    out = tmp_path / "nan"
    with pytest.raises(TrainingDivergedError, match=r"became nan at step 3 .*first example of the batch: '"):
        train_classifier(workspace / "encoder", workspace / "news.csv", out, FAST)
    manifest = load_manifest(out)
    assert manifest.status == "failed" and "step 3" in manifest.notes[0]
    assert "report.html" not in [p.name for p in out.iterdir()]
    page = write_report(out).read_text(encoding="utf-8")  # a failed run still gets its page
    assert "FAILED" in page and "became nan at step 3" in page
    with pytest.raises(TuningError, match="already holds a run"):
        train_classifier(workspace / "encoder", workspace / "news.csv", out, FAST)


def test_a_finished_run_is_not_resumed_or_overwritten(full_run: ClassifyResult, workspace: Path) -> None:
    for options in (FAST, replace(FAST, resume=True)):
        with pytest.raises(TuningError, match=r"already holds a run|finished run"):
            train_classifier(workspace / "encoder", workspace / "news.csv", full_run.folder, options)


def test_report_draws_curves_evaluation_and_confusion_escaped(full_run: ClassifyResult) -> None:
    page = write_report(full_run.folder).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page.split("<body>")[1]
    assert page.count("<svg") >= 3 and "polyline" in page  # loss (train + eval), accuracy, macro_f1, …
    assert ">loss</text>" in page and ">macro_f1</text>" in page
    assert "Confusion matrix — after" in page and "Confusion matrix — before" in page
    assert page.index("Confusion matrix — after") < page.index("Confusion matrix — before")
    assert "sci&amp;tech &lt;lab&gt;" in page and "<lab>" not in page
    assert "per-label and other detailed metrics (9)" in page  # P/R/F1 of three labels, folded away
    assert "macro_f1" in page and "Δ after − before" in page and 'class="num better"' in page
    assert "runtime" not in page.split("<h2>Training curves</h2>")[1].split("<h2>")[0]  # bookkeeping left out
    for artefact in ("model", "eval.json", "metrics.csv"):
        assert f"<td>{artefact}</td>" in page


def test_report_works_for_other_kinds_from_run_json_and_metrics_csv(tmp_path: Path) -> None:
    run = tmp_path / "sft"
    manifest = RunManifest(kind="sft", base_model="/models/<base>", data="train.jsonl",
                           options={"precision": "bf16", "lora_r": 16}, hardware={"device": "cuda", "name": "H200"},
                           status="finished", seconds=125.0, peak_memory_bytes=3 * 2**30,
                           evaluation={"before": {"em": 0.1, "f1": 0.2, "loss": 2.0},
                                       "after": {"em": 0.4, "f1": 0.5, "loss": 1.0, "judge": "n/a"}},
                           artefacts={"adapter": "adapter", "gguf": "model.gguf"}, notes=["<script>alert(1)</script>"])
    manifest.save(run)
    (run / "adapter").mkdir()
    (run / "adapter" / "adapter_model.safetensors").write_bytes(b"x" * 2048)
    log = RunLog(run, ("none",))
    for step in range(1, 1001):
        log.log(step, {"loss": 3.0 / step, "learning_rate": 2e-4 * (1 - step / 1000)})
        if step % 100 == 0:
            log.log(step, {"loss": 2.0 / step if step != 500 else float("nan"), "runtime": 1.0}, split="eval")
    log.close()
    page = write_report(run).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert "/models/&lt;base&gt;" in page and "bf16" in page and "2m05s" in page and "3.00 GiB" in page
    assert "learning_rate (×1e-4)" in page and "1 value(s) that were not finite numbers" in page
    assert page.count("<circle") <= 2 * 400 + 10  # long curves are thinned
    assert '<td class="num better">-1.0000</td>' in page and "<td class=num>n/a</td>" in page  # lower loss: better
    assert "+0.3000" in page and "2.0 KiB" in page and "missing" in page and "Confusion" not in page
    empty = tmp_path / "empty"
    RunManifest(kind="embed", base_model="e5").save(empty)
    assert "no metrics were logged" in write_report(empty).read_text(encoding="utf-8")


def test_cli_classify_and_report(workspace: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("classify")(classify)
    app.command("report")(report)
    runner = CliRunner()
    out = tmp_path / "cli-run"
    result = runner.invoke(app, ["classify", "--model", str(workspace / "encoder"), "--data",
                                 str(workspace / "news.csv"), "--out", str(out), "--epochs", "1", "--validation",
                                 "0.25", "--report-to", "none", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["labels"] == sorted(TOPICS) and set(summary["after"]) == {"accuracy", "macro_f1"}
    shown = runner.invoke(app, ["report", str(out), "--json"])
    assert shown.exit_code == 0, shown.output
    assert Path(json.loads(shown.stdout)["report"]).is_file()

    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,\n", encoding="utf-8")
    failed = runner.invoke(app, ["classify", "--model", str(workspace / "encoder"), "--data", str(bad), "--out",
                                 str(tmp_path / "x")])
    assert failed.exit_code == 1 and "line 2: no 'label'" in failed.stderr and "Traceback" not in failed.output
    wrong = runner.invoke(app, ["classify", "--model", "m", "--data", str(bad), "--out", "o", "--device", "tpu"])
    assert wrong.exit_code == 1 and "--device 'tpu' is not one of auto | cpu | cuda | mps" in wrong.stderr
    missing = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "is not a jisik tune run" in missing.stderr
