"""Kill an ingest with SIGKILL half-way, then check the knowledge base is consistent and that a
re-run finishes without duplicates. The child uses the hashing embedder (a named fake) slowed
down so the kill lands mid-ingest, and small batches so there are many commits to interrupt."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from jisik.embed.hashing import HashingEmbedder
from jisik.kb import KnowledgeBase

CHILD = textwrap.dedent("""
    import sys, time
    import jisik.ingest.pipeline as pipeline
    from jisik.embed.hashing import HashingEmbedder
    from jisik.kb import KnowledgeBase

    class SlowHashingEmbedder(HashingEmbedder):
        def embed_documents(self, texts):
            time.sleep(0.15)
            return super().embed_documents(texts)

    pipeline.BATCH_CHUNKS = 3
    kb = KnowledgeBase.open(sys.argv[1], create=True, embedder=SlowHashingEmbedder(64))
    kb.ingest([sys.argv[2]])
    print("finished", flush=True)
""")

N_FILES = 60


def _ok_files(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM files WHERE status = 'ok'").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_sigkill_mid_ingest_then_resume(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(N_FILES):
        body = "\n\n".join(f"문서 {i}의 {p}번째 문단입니다. unique{i}x{p} 반품 규정." for p in range(3))
        (folder / f"doc{i:03d}.md").write_text(f"# 문서 {i}\n\n{body}", encoding="utf-8")
    kb_path = tmp_path / "kb"
    KnowledgeBase.init(kb_path).close()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(kb_path), str(folder)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _ok_files(kb_path / "jisik.sqlite3") < 10:
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        assert time.monotonic() < deadline, "ingest made no progress"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    with sqlite3.connect(kb_path / "jisik.sqlite3") as conn:
        committed = conn.execute("SELECT COUNT(*) FROM files WHERE status = 'ok'").fetchone()[0]
        assert 10 <= committed < N_FILES, "the kill must land mid-ingest"
        # every document's chunk count is complete; no orphan chunks
        assert conn.execute("SELECT COUNT(*) FROM documents d WHERE d.n_chunks != "
                            "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.doc_id)").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM chunks c WHERE NOT EXISTS "
                            "(SELECT 1 FROM documents d WHERE d.doc_id = c.doc_id)").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == committed

    with KnowledgeBase.open(kb_path, embedder=HashingEmbedder(64)) as kb:
        # the interrupted KB answers searches (indexes rebuilt from SQLite)
        assert kb.search("unique0x1", mode="bm25")[0].source == "docs/doc000.md"
        report = kb.ingest([folder])
        assert len(report.unchanged) == committed
        assert len(report.added) == N_FILES - committed
        status = kb.status()
        assert status["documents"] == N_FILES
        with sqlite3.connect(kb_path / "jisik.sqlite3") as conn:
            per_doc = conn.execute("SELECT doc_id, COUNT(*), COUNT(DISTINCT ordinal) FROM chunks "
                                   "GROUP BY doc_id").fetchall()
        assert len(per_doc) == N_FILES
        assert all(total == distinct for _, total, distinct in per_doc), "duplicate chunks after resume"
        last = kb.search(f"unique{N_FILES - 1}x2", mode="bm25", k=1)
        assert last[0].source == f"docs/doc{N_FILES - 1:03d}.md"
