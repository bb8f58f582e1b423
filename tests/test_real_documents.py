"""Defects found on real document folders (issue 10): same-named folders, read-only and damaged knowledge
bases, special files, unreadable files. The hashing embedder is a named fake; the paths are real."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jisik.cli import app
from jisik.embed.hashing import HashingEmbedder
from jisik.kb import KnowledgeBase


def _kb(path: Path) -> KnowledgeBase:
    return KnowledgeBase.open(path, create=True, embedder=HashingEmbedder(64))


def _two_teams(tmp_path: Path) -> tuple[Path, Path]:
    x, y = tmp_path / "coll" / "x" / "docs", tmp_path / "coll" / "y" / "docs"
    x.mkdir(parents=True)
    y.mkdir(parents=True)
    (x / "budget.txt").write_text("Team X budget is 100 million won.", encoding="utf-8")
    (y / "budget.txt").write_text("Team Y budget is 7 million won.", encoding="utf-8")
    return x, y


def test_same_named_folders_keep_both_documents(tmp_path: Path) -> None:
    x, y = _two_teams(tmp_path)
    with _kb(tmp_path / "kb") as kb:
        report = kb.ingest([x, y])
        assert len(report.added) == 2 and report.documents == 2
        docs = {d["doc_id"]: d for d in kb.store.documents()}
        assert len(docs) == 2, docs
        texts = {h.text for h in kb.search("budget", mode="bm25", k=5)}
        assert texts == {"Team X budget is 100 million won.", "Team Y budget is 7 million won."}
        # readable and distinct in citations: the shorter id stays, the other gains its parent folder
        assert sorted(docs) == ["docs/budget.txt", "y/docs/budget.txt"]
        assert {d["source"] for d in docs.values()} == set(docs)
        before = sorted(docs)
    # stable across re-ingests, in either order, changed or not
    with _kb(tmp_path / "kb") as kb:
        assert kb.ingest([y, x]).unchanged and not kb.ingest([y, x]).added
        (y / "budget.txt").write_text("Team Y budget is 8 million won.", encoding="utf-8")
        (x / "budget.txt").write_text("Team X budget is 101 million won.", encoding="utf-8")
        report = kb.ingest([y, x])
        assert len(report.updated) == 2
        assert sorted(d["doc_id"] for d in kb.store.documents()) == before
        assert {h.doc_id: h.text for h in kb.search("budget", mode="bm25", k=5)}["y/docs/budget.txt"] == \
            "Team Y budget is 8 million won."


def test_migration_restores_files_whose_documents_were_overwritten(tmp_path: Path) -> None:
    """A knowledge base written before unique ids: Y's document replaced X's, and X's ledger row said ok."""
    x, y = _two_teams(tmp_path)
    with _kb(tmp_path / "kb") as kb:
        kb.ingest([x, y])
    db = sqlite3.connect(tmp_path / "kb" / "jisik.sqlite3")
    with db:  # rewrite the database into the state the old code left (one document, both files "ok")
        db.execute("DELETE FROM chunks WHERE doc_id = 'docs/budget.txt'")
        db.execute("DELETE FROM documents WHERE doc_id = 'docs/budget.txt'")
        db.execute("UPDATE documents SET doc_id = 'docs/budget.txt', source = 'docs/budget.txt'")
        db.execute("UPDATE chunks SET doc_id = 'docs/budget.txt'")
        db.execute("DROP INDEX documents_source")  # back to schema 2, before unique ids
        db.execute("DROP TABLE staged_chunks")
        db.execute("DROP TABLE chunk_log")
        db.execute("ALTER TABLE turns DROP COLUMN guard")  # migration 6
        db.execute("ALTER TABLE turns DROP COLUMN grounding")
        db.execute("DROP TABLE vocabulary")  # migration 7 (the Milvus store's bookkeeping)
        db.execute("DROP TABLE tombstones")
        db.execute("ALTER TABLE turns DROP COLUMN trace")  # migration 8 (agents' steps)
        db.execute("PRAGMA user_version = 2")
    rows_before = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    db.close()
    with _kb(tmp_path / "kb") as kb:
        assert kb.store.stats().chunks == rows_before  # the migration itself drops nothing
        report = kb.ingest([x, y])
        assert report.updated == [str(x / "budget.txt")] and report.unchanged == [str(y / "budget.txt")]
        texts = {h.text for h in kb.search("budget", mode="bm25", k=5)}
        assert texts == {"Team X budget is 100 million won.", "Team Y budget is 7 million won."}


def test_fifo_and_devices_are_skipped_with_a_reason(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("반품은 14일 이내에 가능합니다.", encoding="utf-8")
    os.mkfifo(folder / "pipe.txt")
    with _kb(tmp_path / "kb") as kb:
        report = kb.ingest([folder])  # must not hang reading the pipe
        assert report.added == [str(folder / "a.txt")]
        assert (str(folder / "pipe.txt"), "not a regular file (a named pipe): skipped") in report.failed
        report = kb.ingest([Path("/dev/null")])
        assert report.failed == [("/dev/null", "not a regular file (a character device): skipped")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_denied_file_is_listed_in_status_failures(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    secret = folder / "secret.txt"
    secret.write_text("비밀", encoding="utf-8")
    secret.chmod(0)
    with _kb(tmp_path / "kb") as kb:
        report = kb.ingest([folder])
        assert [p for p, _ in report.failed] == [str(secret)]
        assert [p for p, _ in kb.store.failed_files()] == [str(secret)]


def test_unreadable_file_is_listed_in_status_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same path as permission denied, for root too: hashing the file fails with an OSError."""
    import jisik.ingest.pipeline as pipeline

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "ok.txt").write_text("반품", encoding="utf-8")
    (folder / "secret.txt").write_text("비밀", encoding="utf-8")
    real = pipeline.file_sha256

    def denied(path: Path) -> str:
        if path.name == "secret.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(pipeline, "file_sha256", denied)
    with _kb(tmp_path / "kb") as kb:
        report = kb.ingest([folder])
        assert report.failed == [(str(folder / "secret.txt"), "Permission denied")]
        assert kb.store.failed_files() == [(str(folder / "secret.txt"), "Permission denied")]


@pytest.fixture
def built_kb(tmp_path: Path, runner: CliRunner, sample_docs: Path) -> Path:
    kb = tmp_path / "kb"
    result = runner.invoke(app, ["ingest", str(sample_docs), "--kb", str(kb)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["ask", "반품 기간은 며칠인가요?", "--kb", str(kb)])
    assert result.exit_code == 0, result.output
    return kb


@pytest.fixture
def read_only_kb(built_kb: Path, tmp_path: Path) -> Iterator[Path]:
    """The built knowledge base on a read-only bind mount (root, as in CI) or with its write bits removed."""
    if os.geteuid() != 0:
        paths = [built_kb, *built_kb.rglob("*")]
        for path in paths:
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        yield built_kb
        for path in paths:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
        return
    mount = tmp_path / "ro-mount"
    mount.mkdir()
    if subprocess.run(["mount", "--bind", str(built_kb), str(mount)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here (needs CAP_SYS_ADMIN) and root ignores file modes")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_read_only_kb_is_searchable_and_askable(read_only_kb: Path, runner: CliRunner) -> None:
    for args in (["search", "반품"], ["status"], ["logs"], ["ask", "반품 기간은 며칠인가요?"]):
        result = runner.invoke(app, [*args, "--kb", str(read_only_kb)])
        assert result.exit_code == 0, (args, result.output)
        assert "Traceback" not in result.output
    ask = runner.invoke(app, ["ask", "반품 기간은 며칠인가요?", "--kb", str(read_only_kb)])
    assert "read-only" in ask.output and "not logged" in ask.output, ask.output
    logs = runner.invoke(app, ["logs", "--kb", str(read_only_kb), "--json"])
    assert len(json.loads(logs.stdout)) == 1  # the turn logged before it became read-only, and no more
    ingest = runner.invoke(app, ["ingest", str(read_only_kb), "--kb", str(read_only_kb)])
    assert ingest.exit_code == 1 and "read-only" in ingest.output and "Traceback" not in ingest.output
    assert not list(read_only_kb.glob("*-shm"))  # nothing written, not even SQLite's shared-memory file


def test_read_only_open_never_writes(built_kb: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """As root (CI) the file modes do not stop writes: the read path is opened read-only and asked to write
    nothing, which is what a read-only mount needs; JISIK_READ_ONLY=1 forces that mode."""
    def written() -> dict[Path, int]:  # SQLite's own -wal/-shm may appear where the folder is writable
        return {p: p.stat().st_mtime_ns for p in built_kb.rglob("*") if p.is_file() and p.suffix[-4:] not in
                ("-wal", "-shm")}

    before = written()
    monkeypatch.setenv("JISIK_READ_ONLY", "1")
    ask = runner.invoke(app, ["ask", "반품 기간은 며칠인가요?", "--kb", str(built_kb)])
    assert ask.exit_code == 0 and "not logged" in ask.output, ask.output
    assert runner.invoke(app, ["search", "반품", "--kb", str(built_kb)]).exit_code == 0
    assert runner.invoke(app, ["status", "--kb", str(built_kb)]).exit_code == 0
    assert written() == before


def test_damaged_kb_is_one_line(built_kb: Path, runner: CliRunner) -> None:
    db = built_kb / "jisik.sqlite3"
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    for args in (["search", "반품"], ["status"], ["logs"], ["ask", "반품?"], ["ingest", str(built_kb)]):
        result = runner.invoke(app, [*args, "--kb", str(built_kb)])
        assert result.exit_code == 1, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) <= 2 and "Traceback" not in result.output, result.output
        assert str(db) in result.output.replace("\n", "") and "damaged" in result.output


def test_a_bug_in_a_loader_is_logged_with_its_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    import jisik.ingest.pipeline as pipeline

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("반품", encoding="utf-8")
    (folder / "b.txt").write_text("환불", encoding="utf-8")
    real = pipeline.chunk_documents

    def buggy(documents, *args, **kwargs):  # type: ignore[no-untyped-def]
        if documents and documents[0].source.endswith("b.txt"):
            raise ZeroDivisionError("division by zero")
        return real(documents, *args, **kwargs)

    monkeypatch.setattr(pipeline, "chunk_documents", buggy)
    with _kb(tmp_path / "kb") as kb:
        with pytest.raises(ZeroDivisionError):  # the test suite's setting: bugs fail the run
            kb.ingest([folder])
        monkeypatch.delenv("JISIK_RAISE_UNEXPECTED")
        report = kb.ingest([folder])  # a user's run: the other files still ingest
        assert report.added == [str(folder / "a.txt")]
        [(path, reason)] = report.failed
        assert path == str(folder / "b.txt") and "ZeroDivisionError" in reason and "a bug in jisik" in reason
    logged = [r for r in caplog.records if "unexpected error while loading" in r.getMessage()]
    assert logged and logged[-1].exc_info is not None  # the traceback is kept for `jisik --debug`
