"""`jisik migrate`: a knowledge base copied into another store without embedding again, resumable and verified.

The round trip runs on a knowledge base made with the real default embedder (multilingual e5) from the bundled
sample documents plus in-memory documents, a file without text and a corrupt one; the resume, skip, prune and
refusal tests use the hashing embedder (a named fake): migrating never embeds, so only the stored vectors matter.
The resume test kills a real `jisik migrate` process with SIGKILL half-way and runs it again.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jisik.cli import app
from jisik.embed.hashing import HashingEmbedder
from jisik.errors import EmbedderMismatchError
from jisik.ingest.context import CONTEXT_SETTING
from jisik.kb import KnowledgeBase
from jisik.records import Document, Hit
from jisik.store.local import LocalStore
from jisik.store.migrate import migrate, opened, verify_copy
from tests.helpers import run_jisik

SAMPLE_DOCS = Path(__file__).resolve().parents[1] / "examples" / "sample_docs"
IN_MEMORY = [
    Document("faq/warranty", "faq", "제품 보증 기간은 구매일로부터 2년입니다. 보증서는 영수증으로 대신할 수 있습니다.",
             title="보증", metadata={"dept": "cs", "year": 2024}),
    Document("faq/hours", "faq", "The help desk is open from 9 am to 6 pm on weekdays, closed on public holidays.",
             title="Opening hours"),
]
QUERIES = ["반품 기간은 며칠인가요?", "How many days of paid annual leave do full-time employees get?", "배송비",
           "보증 기간", "When is the help desk open?"]


def _hashing_kb(path: Path, dim: int = 64) -> KnowledgeBase:
    return KnowledgeBase.open(path, create=True, embedder=HashingEmbedder(dim))


def _view(hits: list[Hit]) -> list[tuple[object, ...]]:
    """A hit without its chunk id (ids are the store's own): what a user sees."""
    return [(h.doc_id, h.source, h.title, h.text, h.page, h.section, h.start, h.end, h.metadata) for h in hits]


@pytest.fixture(scope="module")
def source_kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    root = tmp_path_factory.mktemp("migrate")
    docs = root / "docs"
    shutil.copytree(SAMPLE_DOCS, docs)
    (docs / "empty.txt").write_text("", encoding="utf-8")  # an ok ledger row without documents
    (docs / "broken.pdf").write_bytes(b"not a pdf")  # a failed file
    kb = KnowledgeBase.open(root / "src", create=True)
    kb.ingest([docs])
    kb.add_documents(IN_MEMORY)
    yield kb
    kb.close()


def test_export_files_reads_back_what_a_file_produced(source_kb: KnowledgeBase) -> None:
    store = source_kb.store
    ledger = store.file_records()
    faq = next(p for p in ledger if p.endswith("faq.csv"))
    broken = next(p for p in ledger if p.endswith("broken.pdf"))
    empty = next(p for p in ledger if p.endswith("empty.txt"))
    units = store.export_files([faq, "doc:faq/warranty", broken, empty, "/not/in/the/ledger"])
    assert [u.file.path for u in units] == [faq, "doc:faq/warranty"]  # failed, textless and unknown: left out
    csv, memory = units
    assert csv.file == ledger[faq] and len(csv.documents) == ledger[faq].n_documents > 1
    assert len(csv.chunks) == ledger[faq].n_chunks == len(csv.terms) == csv.vectors.shape[0]
    assert csv.vectors.shape[1] == 384 and all(d.text == "" and d.content_hash for d in csv.documents)
    for doc in csv.documents:  # each document's chunks in ordinal order
        assert [c.ordinal for c in csv.chunks if c.doc_id == doc.doc_id] == list(range(
            sum(c.doc_id == doc.doc_id for c in csv.chunks)))
    # the vectors and terms are the stored ones, chunk by chunk
    hits = {h.doc_id: h for h in source_kb.search("보증 기간", mode="bm25", k=20)}
    assert memory.documents[0].metadata == hits["faq/warranty"].metadata and memory.documents[0].title == "보증"
    assert memory.chunks[0].text == hits["faq/warranty"].text
    assert (store.vectors([hits["faq/warranty"].chunk_id])[0] == memory.vectors[0]).all()
    assert "보증" in memory.terms[0]


def test_round_trip_local_to_local_gives_the_same_answers(source_kb: KnowledgeBase, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    result = CliRunner().invoke(app, ["migrate", "--kb", str(source_kb.path), "--to", str(target), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    stats = source_kb.store.stats()
    ledger = source_kb.store.file_records()
    assert report["ok"] and report["verification"]["counts_equal"]
    assert report["copied"] == stats.files == 8  # 5 sample files, the empty one, 2 in-memory documents
    assert report["failures"] == stats.failed_files == 1 and report["skipped"] == 0
    assert (report["documents"], report["chunks"]) == (stats.documents, stats.chunks)
    check = report["verification"]
    assert check["sampled"] >= 7 and check["dense_agree"] == check["sampled"]  # at least a chunk of every file
    assert check["lexical_agree"] == check["lexical_sampled"] == check["sampled"]
    assert check["dense_overlap"] == check["lexical_overlap"] == 1.0
    # created with the source's settings
    assert (target / "jisik.toml").read_text(encoding="utf-8") == (source_kb.path / "jisik.toml").read_text(
        encoding="utf-8")

    with KnowledgeBase.open(target, embedder=source_kb.embedder) as copy:
        for key in ("embedder_model", "embedder_dim", "analyzer", CONTEXT_SETTING):
            assert copy.store.setting(key) == source_kb.store.setting(key) is not None
        assert copy.store.file_records() == ledger  # the ledger row by row, failures and in-memory keys included
        assert copy.store.documents() == source_kb.store.documents()
        for mode in ("dense", "bm25", "hybrid"):
            for query in QUERIES:
                ours, theirs = source_kb.search(query, mode=mode, k=6), copy.search(query, mode=mode, k=6)
                assert _view(theirs) == _view(ours), (mode, query)
                # hybrid z-scores differ in the 7th digit (sums over the candidates in another order)
                assert [h.score for h in theirs] == pytest.approx([h.score for h in ours], rel=1e-5, abs=1e-6)
        assert copy.search("보증 기간", mode="bm25", k=1)[0].doc_id == "faq/warranty"
        # the copy is a knowledge base like any other: an unchanged file is not ingested again
        again = copy.ingest([Path(next(p for p in ledger if p.endswith("faq.csv"))).parent])
        assert len(again.added) == len(again.updated) == 0


def _three_files(folder: Path) -> None:
    folder.mkdir()
    (folder / "a.md").write_text("# Alpha\n\nalpha bravo charlie, the first note.", encoding="utf-8")
    (folder / "b.md").write_text("# Bravo\n\ndelta echo foxtrot, the second note.", encoding="utf-8")
    (folder / "c.txt").write_text("golf hotel india, the third note.", encoding="utf-8")


def test_rerun_skips_copied_files_copies_changes_and_reports_extra(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    _three_files(folder)
    with _hashing_kb(tmp_path / "src") as kb:
        kb.ingest([folder])
        first = migrate(kb.store, LocalStore(tmp_path / "dst"))
        assert (first.copied, first.skipped, first.ok) == (3, 0, True)

        (folder / "b.md").write_text("# Bravo\n\nkilo lima mike, rewritten.", encoding="utf-8")
        (folder / "c.txt").unlink()
        kb.ingest([folder], prune=True)
        target = LocalStore(tmp_path / "dst")
        try:
            second = migrate(kb.store, target, batch_files=1)
            assert (second.copied, second.skipped) == (1, 1)  # b.md changed, a.md did not
            assert second.extra == [str(folder / "c.txt")] and second.pruned == []
            assert second.ok  # the counts leave the kept extra file out
            assert target.stats().files == 3
            texts = [text for _, text in target.chunk_texts()]
            assert any("kilo lima" in t for t in texts) and not any("delta echo" in t for t in texts)

            third = migrate(kb.store, target, prune=True)
            assert (third.copied, third.skipped, third.pruned) == (0, 2, [str(folder / "c.txt")])
            assert third.ok and target.stats().files == 2 and target.stats().chunks == kb.store.stats().chunks
        finally:
            target.close()


def test_a_target_bound_to_another_embedder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    _three_files(folder)
    with _hashing_kb(tmp_path / "src") as kb, _hashing_kb(tmp_path / "other", dim=32) as other:
        kb.ingest([folder])
        other.ingest([folder / "a.md"])
        with pytest.raises(EmbedderMismatchError, match="already holds chunks made with embedder"):
            migrate(kb.store, other.store)
        assert other.store.stats().files == 1  # nothing was written

        result = CliRunner().invoke(app, ["migrate", "--kb", str(kb.path), "--to", str(other.path)])
        assert result.exit_code == 1
        assert "error: the target already holds chunks made with embedder" in result.output
        assert "hint:" in result.output and "Traceback" not in result.output

        # an empty knowledge base bound to another embedder is bound again
        with _hashing_kb(tmp_path / "empty", dim=32) as empty:
            empty._bind()
            assert empty.store.setting("embedder_dim") == "32"
            assert migrate(kb.store, empty.store).ok
            assert empty.store.setting("embedder_dim") == "64"


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["migrate", "--kb", str(tmp_path / "nothing"), "--to", str(tmp_path / "dst")])
    assert missing.exit_code == 1 and "error: no knowledge base at" in missing.output
    assert not (tmp_path / "dst").exists()
    with _hashing_kb(tmp_path / "src"):
        pass
    same = runner.invoke(app, ["migrate", "--kb", str(tmp_path / "src"), "--to", str(tmp_path / "src") + "/"])
    assert same.exit_code == 1 and "error: the source and the target are the same" in same.output
    assert "Traceback" not in missing.output + same.output


def test_a_damaged_copy_fails_verification(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    _three_files(folder)
    with _hashing_kb(tmp_path / "src") as kb:
        kb.ingest([folder])
        target = LocalStore(tmp_path / "dst")
        try:
            assert migrate(kb.store, target).ok
            with closing(sqlite3.connect(tmp_path / "dst" / "jisik.sqlite3")) as conn, conn:
                conn.execute("UPDATE chunks SET text = 'tampered' WHERE id = (SELECT MIN(id) FROM chunks)")
            check = verify_copy(kb.store, target, sample=10)
            assert check.counts_equal and not check.ok
            assert check.dense_agree == check.sampled - 1 and check.mismatches[0].startswith("dense search with chunk")
        finally:
            target.close()
        with closing(sqlite3.connect(tmp_path / "dst" / "jisik.sqlite3")) as conn, conn:
            conn.execute("INSERT INTO documents(doc_id, file_path, source, title, content_hash, mtime, n_chunks, "
                         "metadata) VALUES('ghost', '/nowhere', 'ghost', NULL, '', NULL, 0, '{}')")
        result = CliRunner().invoke(app, ["migrate", "--kb", str(kb.path), "--to", str(tmp_path / "dst")])
        assert result.exit_code == 1, result.output
        assert "verification failed" in result.output and "documents: 3 in the source, 4 in the target" in result.output


def test_local_to_milvus_and_back(tmp_path: Path) -> None:
    """Both directions through the Store protocol only: into a milvus-lite collection, and out of it again."""
    pytest.importorskip("milvus_lite")
    folder = tmp_path / "notes"
    _three_files(folder)
    with _hashing_kb(tmp_path / "src") as kb:
        kb.ingest([folder])
        kb.add_documents([Document("faq/hours", "faq", "The help desk is open from 9 am to 6 pm on weekdays.")])
    settings = (tmp_path / "src" / "jisik.toml").read_text(encoding="utf-8")
    assert 'backend = "local"' in settings
    (tmp_path / "milvus").mkdir()
    (tmp_path / "milvus" / "jisik.toml").write_text(settings.replace('backend = "local"', 'backend = "milvus"'),
                                                    encoding="utf-8")
    with opened(tmp_path / "src", tmp_path / "milvus") as (source, target):
        there = migrate(source, target, batch_files=2)
        assert there.ok and (there.copied, there.chunks) == (4, source.stats().chunks)
        assert target.stats().index_kind.startswith("milvus")
    with opened(tmp_path / "milvus", tmp_path / "back") as (source, target):
        back = migrate(source, target)
        assert back.ok and back.copied == 4 and back.verification.sampled == 4
    assert 'backend = "local"' in (tmp_path / "back" / "jisik.toml").read_text(encoding="utf-8")
    with _hashing_kb(tmp_path / "src") as ours, _hashing_kb(tmp_path / "back") as theirs:
        for mode in ("dense", "bm25"):
            for query in ("alpha bravo", "second note", "help desk"):
                assert _view(theirs.search(query, mode=mode, k=4)) == _view(ours.search(query, mode=mode, k=4))


N_FILES = 300


def _count(db: Path, sql: str) -> int:
    try:
        with closing(sqlite3.connect(db)) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def test_sigkill_mid_migration_then_rerun_finishes_without_duplicates(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(N_FILES):
        (folder / f"n{i:03d}.md").write_text(f"# Note {i}\n\nunique{i}x marker, note number {i}.", encoding="utf-8")
    with _hashing_kb(tmp_path / "src") as kb:
        kb.ingest([folder])
        source = kb.store.stats()
    assert source.files == N_FILES
    dst = tmp_path / "dst"
    db = dst / "jisik.sqlite3"
    jisik = str(Path(sys.executable).with_name("jisik"))
    child = subprocess.Popen([jisik, "migrate", "--kb", str(tmp_path / "src"), "--to", str(dst), "--batch", "1",
                              "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while _count(db, "SELECT COUNT(*) FROM files") < 30:
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        assert time.monotonic() < deadline, "the migration made no progress"
        time.sleep(0.002)
    # hold the target's write lock, so the kill lands between two batches at a known count
    with closing(sqlite3.connect(db, isolation_level=None, timeout=30)) as lock:
        lock.execute("BEGIN IMMEDIATE")
        committed = int(lock.execute("SELECT COUNT(*) FROM files").fetchone()[0])
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        lock.execute("ROLLBACK")
    assert child.returncode == -signal.SIGKILL
    assert 30 <= committed < N_FILES, "the kill must land mid-migration"
    # what was committed is whole: every document has all its chunks, no chunk lacks its document
    assert _count(db, "SELECT COUNT(*) FROM documents") == committed  # one document per file
    assert _count(db, "SELECT COUNT(*) FROM documents d WHERE d.n_chunks != "
                      "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.doc_id)") == 0

    rerun = run_jisik("migrate", "--kb", str(tmp_path / "src"), "--to", str(dst), "--batch", "7", "--json")
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert (report["skipped"], report["copied"]) == (committed, N_FILES - committed)
    assert report["ok"] and report["verification"]["counts"]["chunks"] == {"source": source.chunks,
                                                                             "target": source.chunks}
    assert _count(db, "SELECT COUNT(*) FROM (SELECT DISTINCT doc_id, ordinal FROM chunks)") == source.chunks
    assert _count(db, "SELECT COUNT(*) FROM chunks") == source.chunks
    with _hashing_kb(dst) as copy:
        hits = copy.search("unique7x", mode="bm25", k=10)
        assert hits[0].source == "docs/n007.md" and len({h.doc_id for h in hits}) == len(hits)
