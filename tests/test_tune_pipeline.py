"""The issue's user story end to end through the CLI: ``tune data`` from a knowledge base → ``tune sft`` →
``tune merge --gguf`` → ``jisik ask --llm llamacpp:RUN/model.gguf``, on a tiny random Llama built in the test
(its answers are noise: the test asserts that every step hands the next what it needs). The knowledge base uses the
hashing embedder (a named fake)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jisik.cli import app
from jisik.testing.tune import tiny_llama


@pytest.mark.isolated  # llama.cpp runs in process: a native crash fails this test, not the run
def test_data_sft_merge_gguf_ask(tmp_path: Path, runner: CliRunner, sample_docs: Path) -> None:
    kb = str(tmp_path / "kb")
    assert runner.invoke(app, ["ingest", str(sample_docs), "--kb", kb]).exit_code == 0
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in [
        {"question": "반품 기간은 며칠인가요?", "answers": ["14일"], "group": "a"},
        {"question": "What is the refund period?", "answers": ["14 days"], "group": "b"},
        {"question": "배송비는 얼마인가요?", "answers": ["3,000원"], "group": "c"},
        {"question": "Who is the CEO?", "answers": ["nobody"], "group": "d"}]), encoding="utf-8")
    train = tmp_path / "train.jsonl"
    made = runner.invoke(app, ["tune", "data", "--kb", kb, "--from", str(qa), "--out", str(train), "-k", "1",
                               "--validation-fraction", "0"])
    assert made.exit_code == 0, made.output
    model = tiny_llama(tmp_path / "base")
    run = tmp_path / "runs" / "sft1"
    trained = runner.invoke(app, ["tune", "sft", "--model", str(model), "--data", str(train), "--out", str(run),
                                  "--max-steps", "2", "--batch-size", "2", "--max-length", "2048", "--lora-r", "4",
                                  "--validation-fraction", "0", "--report-to", "none"])
    assert trained.exit_code == 0, trained.output
    merged = runner.invoke(app, ["tune", "merge", str(run), "--gguf", "--outtype", "f32", "--ollama-modelfile"])
    assert merged.exit_code == 0, merged.output
    gguf = run / "model.gguf"
    assert gguf.is_file() and (run / "merged" / "config.json").is_file()
    assert f"FROM ./{gguf.name}" in (run / "Modelfile").read_text() or "FROM" in (run / "Modelfile").read_text()
    asked = runner.invoke(app, ["ask", "반품 기간은 며칠인가요?", "--kb", kb, "--llm", f"llamacpp:{gguf}",
                                "--max-tokens", "8", "--json", "--no-log"])
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout)
    assert answer["backend"].startswith("llamacpp") and isinstance(answer["text"], str)
    report = runner.invoke(app, ["tune", "report", str(run)])
    assert report.exit_code == 0, report.output
    assert (run / "report.html").is_file()
