"""The CLI as a user runs it: real `jisik` processes for the main path, CliRunner for the rest.

The knowledge bases here use the hashing embedder (a named fake, set through JISIK_EMBEDDER__*)
except the quick-start test, which runs the real default embedder."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from rich.cells import cell_len
from typer.core import TyperGroup
from typer.testing import CliRunner

from jisik.cli import app
from tests.helpers import FAKE_EMBEDDER, run_jisik

_jisik = run_jisik


def test_quickstart_with_real_default_embedder(tmp_path: Path, sample_docs: Path) -> None:
    kb = tmp_path / "kb"
    assert _jisik("init", str(kb)).returncode == 0
    ingest = _jisik("ingest", str(sample_docs), "--kb", str(kb))
    assert ingest.returncode == 0, ingest.stderr
    assert "5 added" in ingest.stdout
    search = _jisik("search", "반품 기간은 며칠인가요?", "--kb", str(kb), "--json", "-k", "3")
    assert search.returncode == 0, search.stderr
    hits = json.loads(search.stdout)
    assert hits[0]["source"] == "sample_docs/policies/반품정책.md"
    assert "14일" in hits[0]["text"]
    again = _jisik("ingest", str(sample_docs), "--kb", str(kb), "--json")
    assert json.loads(again.stdout)["unchanged"] == 5


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    result = _jisik("search", "x", "--kb", str(tmp_path / "missing"), env=FAKE_EMBEDDER)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "no knowledge base" in result.stderr and "jisik init" in result.stderr
    debug = _jisik("--debug", "search", "x", "--kb", str(tmp_path / "missing"), env=FAKE_EMBEDDER)
    assert "Traceback" in debug.stderr


@pytest.mark.parametrize("args", [["search", "x"], ["ask", "x"], ["chat"], ["status"], ["docs"], ["logs"],
                                  ["delete", "a.md"], ["reindex"], ["eval", "QUESTIONS"]])
def test_read_commands_refuse_a_missing_knowledge_base(runner: CliRunner, tmp_path: Path, args: list[str]) -> None:
    """A mistyped --kb is one line naming the path and `jisik init`, exit 1, and nothing is created."""
    questions = tmp_path / "questions.jsonl"  # no corpus: eval reads the knowledge base as it is
    questions.write_text('{"question": "반품 기간은?", "gold_sources": ["a.md"]}\n', encoding="utf-8")
    typo = tmp_path / "typo"
    result = runner.invoke(app, [str(questions) if a == "QUESTIONS" else a for a in args] + ["--kb", str(typo)])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [f"error: no knowledge base at {typo}", f"hint: create one with `jisik init "
                                                                                  f"{typo}`"], result.stderr
    assert result.stdout == "" and not typo.exists()


def test_ingest_creates_a_missing_knowledge_base_and_says_so(runner: CliRunner, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("hello world", encoding="utf-8")
    kb = tmp_path / "new-kb"
    first = runner.invoke(app, ["ingest", str(docs), "--kb", str(kb), "--json"])
    assert first.exit_code == 0, first.output
    assert f"created a new knowledge base at {kb}" in first.stderr
    assert len(json.loads(first.stdout)["added"]) == 1  # stdout stays pure JSON
    again = runner.invoke(app, ["ingest", str(docs), "--kb", str(kb)])
    assert again.exit_code == 0 and "created" not in again.stderr


def test_ingest_search_status_delete(runner: CliRunner, tmp_path: Path, sample_docs: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(sample_docs, docs)
    kb = str(tmp_path / "kb")
    assert runner.invoke(app, ["init", kb]).exit_code == 0
    result = runner.invoke(app, ["ingest", str(docs), "--kb", kb, "--json", "--meta", "dept=cs"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["added"]) == 5
    result = runner.invoke(app, ["search", "배송비", "--kb", kb, "--mode", "mmr", "--lambda", "0.25",
                                 "--filter", "source=policies/*", "--threshold", "0.0", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert hits and all(h["source"].startswith("docs/policies/") for h in hits)
    assert all(h["metadata"]["dept"] == "cs" for h in hits)
    table = runner.invoke(app, ["search", "leave", "--kb", kb, "-k", "2"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "source" in table.stdout and "certificate" in table.stdout
    status = runner.invoke(app, ["status", "--kb", kb, "--json"])
    assert json.loads(status.stdout)["documents"] == 7
    deleted = runner.invoke(app, ["delete", "docs/faq.csv", "--kb", kb, "--json"])
    assert deleted.exit_code == 0, deleted.output
    assert len(json.loads(deleted.stdout)["deleted"]) == 3
    missing = runner.invoke(app, ["delete", "docs/faq.csv", "--kb", kb])
    assert missing.exit_code == 1


def test_ingest_exit_codes(runner: CliRunner, tmp_path: Path) -> None:
    kb = str(tmp_path / "kb")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.pdf").write_bytes(b"not a pdf at all")
    result = runner.invoke(app, ["ingest", str(bad), "--kb", kb])
    assert result.exit_code == 1  # nothing could be ingested
    (bad / "ok.txt").write_text("hello world", encoding="utf-8")
    assert runner.invoke(app, ["ingest", str(bad), "--kb", kb]).exit_code == 0
    strict = runner.invoke(app, ["ingest", str(bad), "--kb", kb, "--strict"])
    assert strict.exit_code == 1


def test_bad_filter_and_meta(runner: CliRunner, tmp_path: Path) -> None:
    kb = str(tmp_path / "kb")
    runner.invoke(app, ["init", kb])
    result = runner.invoke(app, ["search", "x", "--kb", kb, "--filter", "year>="])
    assert result.exit_code == 1 and "cannot read filter" in result.output
    result = runner.invoke(app, ["ingest", str(tmp_path), "--kb", kb, "--meta", "novalue"])
    assert result.exit_code == 1 and "key=value" in result.output


@pytest.fixture
def sample_kb(runner: CliRunner, tmp_path: Path, sample_docs: Path) -> str:
    kb = str(tmp_path / "kb")
    result = runner.invoke(app, ["ingest", str(sample_docs), "--kb", kb])
    assert result.exit_code == 0, result.output
    return kb


@pytest.mark.parametrize(("args", "allowed"), [
    (["search", "x", "--fusion", "xyz"], ["rrf", "weighted"]),
    (["search", "x", "--mode", "semantic"], ["dense", "bm25", "hybrid", "mmr"]),
    (["ask", "x", "--chain", "xyz"], ["stuff", "map_reduce", "refine"]),
    (["ask", "x", "--mode", "xyz"], ["dense", "bm25", "hybrid", "mmr"]),
    (["ask", "x", "--lang", "fr"], ["auto", "ko", "en"]),
    (["chat", "--memory", "xyz"], ["buffer", "window", "tokens", "summary"]),
])
def test_enumerated_options_refuse_unknown_values(runner: CliRunner, sample_kb: str, args: list[str],
                                                  allowed: list[str]) -> None:
    result = runner.invoke(app, [*args, "--kb", sample_kb])
    assert result.exit_code == 2, result.output
    assert all(f"'{value}'" in result.output for value in allowed), result.output


@pytest.mark.parametrize("args", [
    ["search", "x", "--dense-weight", "-1"], ["search", "x", "--bm25-weight", "-0.5"], ["search", "x", "-k", "0"],
    ["search", "x", "--lambda", "1.5"], ["search", "x", "--rrf-k", "0"], ["logs", "-n", "-1"], ["logs", "-n", "0"],
])
def test_out_of_range_numbers_are_refused(runner: CliRunner, sample_kb: str, args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--kb", sample_kb])
    assert result.exit_code == 2, result.output
    assert re.search(r"Invalid value for .*: Input should be (greater|less) than or equal to [01]", result.output)


def test_both_weights_zero_is_refused(runner: CliRunner, sample_kb: str) -> None:
    result = runner.invoke(app, ["search", "x", "--kb", sample_kb, "--dense-weight", "0", "--bm25-weight", "0"])
    assert result.exit_code == 1 and "cannot both be 0" in result.output


def test_logs_missing_turn_is_named(runner: CliRunner, sample_kb: str) -> None:
    assert runner.invoke(app, ["ask", "반품 기간은?", "--kb", sample_kb]).exit_code == 0
    result = runner.invoke(app, ["logs", "--kb", sample_kb, "--id", "99999"])
    assert result.exit_code == 1 and "turn 99999 does not exist" in result.output
    assert "no questions logged yet" not in result.output
    session = runner.invoke(app, ["logs", "--kb", sample_kb, "--session", "nope"])
    assert "no turns logged for session 'nope'" in session.output


def test_docs_lists_ids_for_delete(runner: CliRunner, sample_kb: str) -> None:
    missing = runner.invoke(app, ["delete", "nothing/here.md", "--kb", sample_kb])
    assert missing.exit_code == 1 and "`jisik docs`" in missing.output
    listed = json.loads(runner.invoke(app, ["docs", "--kb", sample_kb, "--json"]).stdout)
    assert len(listed) == 7 and set(listed[0]) >= {"doc_id", "source", "title", "chunks"}
    assert {"doc_id": "sample_docs/faq.csv#2", "source": "sample_docs/faq.csv"}.items() <= listed[1].items()
    policies = json.loads(runner.invoke(app, ["docs", "policies/*", "--kb", sample_kb, "--json"]).stdout)
    assert [d["title"] for d in policies] == ["반품 및 환불 정책", "배송안내"]
    word = json.loads(runner.invoke(app, ["docs", "faq", "--kb", sample_kb, "--json"]).stdout)
    assert len(word) == 3  # a pattern without * ? [ matches anywhere in the id or source
    table = runner.invoke(app, ["docs", "--kb", sample_kb], env={"COLUMNS": "200"})
    assert "sample_docs/faq.csv#3" in table.stdout and "Leave Policy" in table.stdout
    deleted = runner.invoke(app, ["delete", listed[1]["doc_id"], "--kb", sample_kb, "--json"])
    assert json.loads(deleted.stdout)["deleted"] == ["sample_docs/faq.csv#2"]
    none = runner.invoke(app, ["docs", "nothing*", "--kb", sample_kb])
    assert none.exit_code == 0 and "no documents match 'nothing*'" in none.stdout


# -- output at 80 and 200 columns --------------------------------------------------------------------

_TYPE_MARKERS = re.compile(r"<(?:str|int|float|path|bool|file|list\[[^\]]*\]|[a-z_]+(?:\|[a-z_]+)+)>")


def _commands() -> list[str]:
    from typer.main import get_command

    group = get_command(app)
    assert isinstance(group, TyperGroup)
    return sorted(group.commands)


@pytest.mark.parametrize("width", [80, 200])
def test_help_fits_and_uses_one_placeholder_style(runner: CliRunner, width: int) -> None:
    for command in ["", *_commands()]:
        result = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": str(width)})
        assert result.exit_code == 0, result.output
        assert not _TYPE_MARKERS.search(result.output), f"{command}: {result.output}"
        # cells, not characters: Korean letters are two columns wide
        assert max(cell_len(line) for line in result.output.splitlines()) <= width, command
    search_help = runner.invoke(app, ["search", "--help"], env={"COLUMNS": "200"}).output
    for placeholder in ("QUERY", "--kb PATH", "--filter EXPR", "-k, --k N", "--mode MODE", "--fusion METHOD"):
        assert placeholder in search_help
    assert "dense | bm25 | hybrid | mmr" in search_help  # the choices, spelled out once


def _lines(output: str, width: int) -> list[str]:
    lines = output.splitlines()
    too_long = [line for line in lines if cell_len(line) > width]
    assert not too_long, too_long
    return lines


def test_search_at_80_columns_prints_short_blocks(runner: CliRunner, sample_kb: str) -> None:
    result = runner.invoke(app, ["search", "반품 기간은 며칠인가요?", "--kb", sample_kb, "-k", "6"],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout, 80)
    assert len(lines) < 40
    assert lines[0].startswith("1. ") and "sample_docs/policies/반품정책.md" in lines[0]
    assert "6. " in result.stdout and "┃" not in result.stdout  # blocks, not a squeezed table
    assert any(line.startswith("  ") and "14일" in line for line in lines)  # text uses the full width


def test_search_at_200_columns_is_a_table(runner: CliRunner, sample_kb: str) -> None:
    result = runner.invoke(app, ["search", "반품 기간은 며칠인가요?", "--kb", sample_kb, "-k", "6"],
                           env={"COLUMNS": "200"})
    lines = _lines(result.stdout, 200)
    assert "section" in lines[1] and "text" in lines[1]
    assert any("sample_docs/policies/반품정책.md" in line for line in lines)  # paths are not folded
    assert len(lines) < 40


def _assert_whole_words(output: str, cells: list[str]) -> None:
    """Every word printed inside the table is a whole word of some cell (or a cut one ending in …)."""
    words = {word for cell in cells for word in cell.split()}
    for line in output.splitlines():
        for token in re.split(r"[\s│┃]+", line):
            if not token or set(token) <= set("━─┏┓┗┛┡┩└┘┳┻╇┼┬┴┠┨├┤╋╈╀╁┣┫┯┷┿╂━┌┐"):
                continue
            if token.endswith("…"):
                assert any(w.startswith(token[:-1]) for w in words), token
            else:
                assert token in words, f"{token!r} is part of a word split across lines:\n{output}"


@pytest.mark.parametrize("width", [80, 200])
def test_logs_table_adapts_without_splitting_words(runner: CliRunner, sample_kb: str, width: int) -> None:
    for question in ("반품 기간은 며칠인가요?", "How many days of annual leave do I get?", "배송비는 얼마인가요?"):
        assert runner.invoke(app, ["ask", question, "--kb", sample_kb]).exit_code == 0
    rows = json.loads(runner.invoke(app, ["logs", "--kb", sample_kb, "--json"]).stdout)
    result = runner.invoke(app, ["logs", "--kb", sample_kb], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    table, _, footer = result.stdout.rpartition("┘")
    _lines(result.stdout, width)
    import datetime as dt

    cells = ["id", "when", "question", "answer", "sources", "backend", "ms", "tokens"]
    for row in rows:
        when = dt.datetime.fromtimestamp(row["created_at"]).strftime("%Y-%m-%d %H:%M")
        cells += [str(row["id"]), when, row["question"], row["answer"], row["backend"],
                  f"{row['latency_ms']:.0f}", f"{row['prompt_tokens']}+{row['completion_tokens']}",
                  ", ".join(sorted({c["source"] for c in row["citations"]}))]
    _assert_whole_words(table, [c.replace(",", "") for c in cells] + cells)
    assert "extractive" in table and "annual" in table
    if width == 80:
        assert "hidden" in footer and "--json" in footer  # says which columns it left out
    else:
        cited = {c["source"] for row in rows for c in row["citations"]}
        assert cited and all(source in table for source in cited)  # whole paths, not folded
        assert "tokens" in table and "hidden" not in footer
