"""The CLI as a user runs it: real `jisik` processes for the main path, CliRunner for the rest.

The knowledge bases here use the hashing embedder (a named fake, set through JISIK_EMBEDDER__*)
except the quick-start test, which runs the real default embedder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

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
    table = runner.invoke(app, ["search", "leave", "--kb", kb, "-k", "2"])
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
