"""The embedded store under concurrent use: threads and processes, the writer lock, the change log.

Real processes (``sys.executable -c``) play the other writer or reader; the hashing embedder is the
named fake so nothing loads a model.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from jisik.embed.hashing import HashingEmbedder
from jisik.errors import StoreBusyError
from jisik.filters import Filter
from jisik.kb import KnowledgeBase
from jisik.store.local import LocalStore
from jisik.store.writer_lock import LOCK_FILE, hold_writer_lock
from jisik.testing.store import DIM, unit

HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from jisik.store.writer_lock import hold_writer_lock
    with hold_writer_lock(Path(sys.argv[1]), "ingest"):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")

OPEN_WRITE = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE chunks SET text = 'uncommitted text' WHERE id = (SELECT MIN(id) FROM chunks)")
    conn.execute("INSERT INTO meta(key, value) VALUES('generation', '999') "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value")
    print("writing", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("ROLLBACK")
""")


def _store(path: Path, **options: object) -> LocalStore:
    store = LocalStore(path, **options)  # type: ignore[arg-type]
    store.bind(embedder_model="test", dim=DIM, analyzer="whitespace")
    return store


def _started(child: subprocess.Popen[str], word: str) -> None:
    assert child.stdout is not None
    line = child.stdout.readline()
    assert word in line, (line, child.stderr.read() if child.stderr else "")


def test_second_writer_waits_with_a_message_then_proceeds(tmp_path: Path, hashing_embedder: HashingEmbedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# 반품\n\n반품은 14일 이내입니다.", encoding="utf-8")
    kb = KnowledgeBase.init(tmp_path / "kb")
    kb.close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "kb"), "1.5"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _started(holder, "held")
        with KnowledgeBase.open(tmp_path / "kb", embedder=hashing_embedder) as kb:
            with pytest.raises(StoreBusyError, match=rf"ingest by pid {holder.pid}"):
                kb.ingest([docs], wait=0)
            told: list[str] = []
            report = kb.ingest([docs], wait=30, on_wait=told.append)
            assert told == [f"waiting for ingest by pid {holder.pid}…"]
            assert len(report.added) == 1
    finally:
        holder.wait(timeout=30)


def test_a_killed_writer_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path), "60"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _started(holder, "held")
    holder.kill()
    holder.wait()
    assert (tmp_path / LOCK_FILE).exists()
    with hold_writer_lock(tmp_path, "ingest", wait=0):  # the kernel released the dead process's lock
        pass


def test_cli_ingest_wait_zero_is_a_one_line_error(tmp_path: Path, runner: object) -> None:
    from jisik.cli import app

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("hello", encoding="utf-8")
    KnowledgeBase.init(tmp_path / "kb").close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "kb"), "30"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _started(holder, "held")
        result = runner.invoke(app, ["ingest", str(docs), "--kb", str(tmp_path / "kb"), "--wait", "0"])  # type: ignore[attr-defined]
        assert result.exit_code == 1
        assert f"being written (ingest by pid {holder.pid})" in result.output
        assert "Traceback" not in result.output
    finally:
        holder.kill()
        holder.wait()


def test_reader_process_started_during_an_open_write_sees_the_last_commit(tmp_path: Path) -> None:
    store = _store(tmp_path)
    committed = store.write([unit("a.md", [("a.md", "refund policy", {})], [[1, 0, 0, 0]])])
    store.commit_indexes()
    writer = subprocess.Popen([sys.executable, "-c", OPEN_WRITE, str(tmp_path / "jisik.sqlite3"), "3"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _started(writer, "writing")
        reader = _store(tmp_path)
        [hit] = reader.hits(reader.search_lexical([["refund"]], 5, Filter())[0])
        assert hit.text == "refund policy" and hit.generation == committed
        reader.close()
    finally:
        writer.wait(timeout=30)
    store.close()


def test_long_running_reader_sees_another_process_commits(tmp_path: Path) -> None:
    reader = _store(tmp_path)
    assert reader.search_lexical([["warranty"]], 5, Filter())[0] == []
    code = textwrap.dedent("""
        import sys
        from pathlib import Path
        from jisik.store.local import LocalStore
        from jisik.testing.store import unit
        store = LocalStore(Path(sys.argv[1]))
        store.bind(embedder_model="test", dim=4, analyzer="whitespace")
        store.write([unit("w.md", [("w.md", "warranty two years", {})], [[0, 1, 0, 0]])])
        store.close()
    """)
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=120)
    [hit] = reader.hits(reader.search_lexical([["warranty"]], 5, Filter())[0])
    assert hit.doc_id == "w.md"
    assert reader.hits(reader.search_dense(np.asarray([[0, 1, 0, 0]], dtype=np.float32), 1, Filter())[0])[0].doc_id \
        == "w.md"
    reader.close()


def test_a_write_is_caught_up_from_the_log_not_rebuilt(tmp_path: Path) -> None:
    """After one small write the saved index files stay where they were; a fresh process loads them and
    replays the log. The log is pruned once the files are saved again."""
    store = _store(tmp_path)
    store.write([unit(f"{i}.md", [(f"{i}.md", f"text {i}", {})], [[1, i, 0, 0]]) for i in range(20)])
    store.commit_indexes()
    saved = store.generation
    store.write([unit("late.md", [("late.md", "late text", {})], [[0, 0, 1, 0]])])
    store.commit_indexes()  # one chunk changed: not worth saving the files again
    import json

    assert json.loads((tmp_path / "index" / "bm25" / "header.json").read_text())["generation"] == saved
    store.close()
    fresh = _store(tmp_path)
    assert fresh.hits(fresh.search_lexical([["late"]], 1, Filter())[0])[0].doc_id == "late.md"
    with sqlite3.connect(tmp_path / "jisik.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM chunk_log WHERE generation > ?", (saved,)).fetchone()[0] == 1
    fresh.close()


def test_threads_share_one_store_safely(tmp_path: Path) -> None:
    """Many threads searching one LocalStore object while another thread writes: no error, every hit
    belongs to the generation it reports (chunk ids are checked against the log of what was written)."""
    store = _store(tmp_path)
    store.write([unit("seed.md", [("seed.md", "alpha seed", {})], [[1, 0, 0, 0]])])
    written: dict[int, set[int]] = {}  # generation -> chunk ids alive
    with store.reader() as view:
        written[view.generation] = {h.chunk_id for h in view.hits(view.search_lexical([["alpha"]], 10, Filter())[0])}
    errors: list[BaseException] = []
    results: list[tuple[int, set[int]]] = []
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                with store.reader() as view:
                    hits = view.hits(view.search_lexical([["alpha"]], 1000, Filter())[0])
                    results.append((view.generation, {h.chunk_id for h in hits}))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=search) for _ in range(6)]
    for thread in threads:
        thread.start()
    docs = {"seed.md": next(iter(next(iter(written.values()))))}
    try:
        for i in range(40):
            batch = [unit(f"f{i}.md", [(f"f{i}.md", f"alpha text {i}", {})], [[1, 1, 0, 0]])]
            generation = store.write(batch)
            docs[f"f{i}.md"] = int(batch[0].chunks[0].chunk_id or 0)
            written[generation] = set(docs.values())
            if i % 4 == 3:
                store.delete_documents([f"f{i - 1}.md"])
                del docs[f"f{i - 1}.md"]
                written[store.generation] = set(docs.values())
            time.sleep(0.005)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors[0]
    for generation, ids in results:
        assert ids == written[generation], generation
    store.close()
