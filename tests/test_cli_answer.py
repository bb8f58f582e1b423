"""`jisik ask | chat | logs` as a user runs them.

The main path runs real `jisik` processes with the real default embedder and the extractive
answerer (no LLM); error cases use CliRunner with the hashing embedder (a named fake)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jisik.cli import app
from tests.helpers import run_jisik
from tests.servers import free_port


def _jisik(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_jisik(*args, stdin=stdin, env={"COLUMNS": "200"})  # wide enough that paths are not folded


@pytest.fixture(scope="module")
def real_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kb = tmp_path_factory.mktemp("cli-answer") / "kb"
    sample = Path(__file__).resolve().parents[1] / "examples" / "sample_docs"
    result = _jisik("ingest", str(sample), "--kb", str(kb))
    assert result.returncode == 0, result.stderr
    return kb


def test_ask_streams_answer_then_sources(real_kb: Path) -> None:
    result = _jisik("ask", "반품 기간은 며칠인가요?", "--kb", str(real_kb))
    assert result.returncode == 0, result.stderr
    answer, _, sources = result.stdout.partition("Sources")
    assert "14일" in answer and "[1]" in answer
    assert "[1] sample_docs/policies/반품정책.md" in sources


def test_ask_json_and_logs(real_kb: Path) -> None:
    result = _jisik("ask", "How many days of annual leave do I get?", "--kb", str(real_kb), "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["language"] == "en" and answer["found"] and answer["backend"] == "extractive"
    cited = answer["citations"][0]
    quoted = " ".join(cited["quote"].split())
    for sentence in re.split(r"\s*\[\d+\]\s*", answer["text"]):
        assert " ".join(sentence.split()) in quoted  # every quoted sentence is inside the cited span
    assert "15 days" in answer["text"]
    assert cited["span"][1] > cited["span"][0]
    logs = json.loads(_jisik("logs", "--kb", str(real_kb), "--json", "-n", "1").stdout)
    assert logs[0]["question"] == "How many days of annual leave do I get?"
    assert logs[0]["answer"] == answer["text"] and logs[0]["id"] == answer["log_id"]
    table = _jisik("logs", "--kb", str(real_kb))
    assert table.returncode == 0 and "annual leave" in table.stdout
    one = _jisik("logs", "--kb", str(real_kb), "--id", str(answer["log_id"]))
    assert "retrieved:" in one.stdout and "extractive" in one.stdout


def test_chat_follow_up_uses_previous_question(real_kb: Path) -> None:
    result = _jisik("chat", "--kb", str(real_kb), "--session", "t1",
                    stdin="반품 기간은 며칠인가요?\n그럼 배송비는요?\n/exit\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Sources") == 2
    logs = json.loads(_jisik("logs", "--kb", str(real_kb), "--session", "t1", "--json").stdout)
    assert [row["question"] for row in logs] == ["그럼 배송비는요?", "반품 기간은 며칠인가요?"]
    assert logs[0]["standalone_question"] == "반품 기간은 며칠인가요? 그럼 배송비는요?"


@pytest.fixture
def small_kb(tmp_path: Path, runner: CliRunner) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "returns.md").write_text("# 반품\n반품은 14일 이내에 가능합니다.", encoding="utf-8")
    kb = tmp_path / "kb"
    assert runner.invoke(app, ["ingest", str(docs), "--kb", str(kb)]).exit_code == 0
    return kb


def _one_line_error(result: object, text: str) -> None:
    output = getattr(result, "output", "")
    assert getattr(result, "exit_code", 0) == 1, output
    assert "Traceback" not in output and text in output


def test_ask_bad_input_gives_one_clear_line(runner: CliRunner, small_kb: Path, tmp_path: Path) -> None:
    _one_line_error(runner.invoke(app, ["ask", "  ", "--kb", str(small_kb)]), "the question is empty")
    _one_line_error(runner.invoke(app, ["ask", "가" * 100_000, "--kb", str(small_kb)]), "100,000 characters")
    empty = tmp_path / "empty"
    assert runner.invoke(app, ["init", str(empty)]).exit_code == 0
    _one_line_error(runner.invoke(app, ["ask", "반품?", "--kb", str(empty)]), "holds no documents")
    port = free_port()  # nothing listens there
    down = runner.invoke(app, ["ask", "반품?", "--kb", str(small_kb), "--llm", f"openai:http://127.0.0.1:{port}/v1#m"])
    _one_line_error(down, "cannot reach")
    _one_line_error(runner.invoke(app, ["ask", "반품?", "--kb", str(small_kb), "--llm", "gpt4"]), "gpt4")
    assert json.loads(runner.invoke(app, ["logs", "--kb", str(small_kb), "--json"]).output) == []


def test_template_missing_question_is_named(runner: CliRunner, small_kb: Path, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "user.ko.txt").write_text("자료: {context}", encoding="utf-8")
    result = runner.invoke(app, ["ask", "반품?", "--kb", str(small_kb), "--llm", "openai:http://127.0.0.1:9/v1#m"],
                           env={"JISIK_ANSWER__TEMPLATES_DIR": str(templates)})
    _one_line_error(result, "missing {question}")


def test_chat_resumes_a_named_session_and_reset_forgets(runner: CliRunner, small_kb: Path) -> None:
    kb = str(small_kb)
    first = runner.invoke(app, ["chat", "--kb", kb, "--session", "s1"], input="반품 기간은 며칠인가요?\n/exit\n")
    assert first.exit_code == 0, first.output
    assert "resumed" not in first.output and "new session s1" in first.output
    again = runner.invoke(app, ["chat", "--kb", kb, "--session", "s1"],
                          input="그럼 배송비는요?\n/reset\n그럼 교환은요?\n")
    assert again.exit_code == 0, again.output
    assert "resumed session s1 (1 earlier turn)" in again.output
    assert "memory cleared for this chat" in again.output
    rows = json.loads(runner.invoke(app, ["logs", "--kb", kb, "--session", "s1", "--json"]).stdout)
    assert [row["question"] for row in rows] == ["그럼 교환은요?", "그럼 배송비는요?", "반품 기간은 며칠인가요?"]
    # the follow-up after resuming was read with the earlier turn; the one after /reset without it
    assert rows[1]["standalone_question"] == "반품 기간은 며칠인가요? 그럼 배송비는요?"
    assert rows[0]["standalone_question"] in (None, "그럼 교환은요?")
    other = runner.invoke(app, ["chat", "--kb", kb, "--session", "s2"], input="")
    assert "new session s2" in other.output  # another name starts empty
