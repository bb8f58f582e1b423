"""SQLite schema of the embedded store, as numbered migrations applied in order (PRAGMA user_version)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from jisik.errors import StoreError

MIGRATIONS: tuple[str, ...] = (
    # 1: documents, chunks (with vector and analyzer terms: the indexes are rebuilt from them), ledger.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE files (
        path TEXT PRIMARY KEY, root TEXT NOT NULL, content_hash TEXT NOT NULL, size INTEGER NOT NULL,
        mtime REAL NOT NULL, status TEXT NOT NULL, error TEXT, n_documents INTEGER NOT NULL DEFAULT 0,
        n_chunks INTEGER NOT NULL DEFAULT 0, ingested_at REAL NOT NULL
    );
    CREATE TABLE documents (
        doc_id TEXT PRIMARY KEY, file_path TEXT NOT NULL, source TEXT NOT NULL, title TEXT,
        content_hash TEXT NOT NULL, mtime REAL, n_chunks INTEGER NOT NULL, metadata TEXT NOT NULL
    );
    CREATE INDEX documents_file ON documents(file_path);
    CREATE TABLE doc_meta (
        doc_id TEXT NOT NULL, key TEXT NOT NULL, text_value TEXT, num_value REAL
    );
    CREATE INDEX doc_meta_doc ON doc_meta(doc_id);
    CREATE INDEX doc_meta_text ON doc_meta(key, text_value);
    CREATE INDEX doc_meta_num ON doc_meta(key, num_value);
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
        text TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, page INTEGER, section TEXT,
        terms TEXT NOT NULL, vector BLOB NOT NULL
    );
    CREATE INDEX chunks_doc ON chunks(doc_id);
    """,
    # 2: the question/answer log (jisik logs). One row per completed ask/chat turn.
    """
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, kind TEXT NOT NULL, session TEXT,
        question TEXT NOT NULL, standalone_question TEXT, language TEXT NOT NULL, retrieved TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, answer TEXT NOT NULL,
        citations TEXT NOT NULL, found INTEGER NOT NULL, backend TEXT NOT NULL, latency_ms REAL NOT NULL,
        retrieval_ms REAL NOT NULL, first_token_ms REAL
    );
    CREATE INDEX turns_session ON turns(session, id);
    """,
    # 3: document ids unique per file (jisik.store.doc_ids). Before, two same-named folders gave one id and the
    # second file's documents replaced the first's while its ledger row still said "ok". Nothing is deleted:
    # such files lose their hash, so the next ingest reads them again and gives them their own ids.
    """
    CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
    UPDATE files SET content_hash = '', size = -1
    WHERE status = 'ok' AND n_documents > (SELECT COUNT(*) FROM documents d WHERE d.file_path = files.path);
    """,
    # 4: chunks of a big file staged part by part (embedded and analysed, not yet searchable), so an
    # interrupted ingest of a huge file resumes without embedding again. Keyed by the file's content hash.
    """
    CREATE TABLE staged_chunks (
        file_path TEXT NOT NULL, content_hash TEXT NOT NULL, text_key TEXT NOT NULL, terms TEXT NOT NULL,
        vector BLOB NOT NULL, PRIMARY KEY (file_path, text_key)
    );
    """,
    # 5: the change log of chunks, one row per chunk added (1) or removed (0) by each generation, written in
    # the write's own transaction. An index of generation g catches up to a later one by applying the rows in
    # between, in any process, instead of being rebuilt (jisik.store.index_keeper). Rows older than the saved
    # index files are pruned; meta 'log_start' is the generation from which the log is complete. The upgrade
    # starts a new generation with an empty log, so index files of an older jisik are rebuilt once.
    """
    CREATE TABLE chunk_log (generation INTEGER NOT NULL, chunk_id INTEGER NOT NULL, added INTEGER NOT NULL);
    CREATE INDEX chunk_log_generation ON chunk_log(generation);
    INSERT INTO meta(key, value) VALUES('generation', '1')
    ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1;
    INSERT OR REPLACE INTO meta(key, value) VALUES('log_start', (SELECT value FROM meta WHERE key = 'generation'));
    """,
    # 6: the guards' decisions of each turn (jisik.guard): what was found where and what was done, never the
    # personal data itself; plus the per-sentence support of the answer.
    """
    ALTER TABLE turns ADD COLUMN guard TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE turns ADD COLUMN grounding TEXT NOT NULL DEFAULT '[]';
    """,
    # 7: the Milvus store's own bookkeeping (jisik.store.milvus; empty for the embedded store): term ids and live
    # document frequencies (BM25's global statistics, kept by jisik in step with each write), and tombstones:
    # chunks a committed generation deleted that are still in Milvus until purged (readers filter them out).
    """
    CREATE TABLE vocabulary (term TEXT PRIMARY KEY, id INTEGER NOT NULL UNIQUE, df INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE tombstones (chunk_id INTEGER PRIMARY KEY, generation INTEGER NOT NULL, deleted_at REAL NOT NULL);
    """,
    # 8: an agent's steps (jisik.agent): thought, tool, arguments, a summary of the observation, tokens, time
    """
    ALTER TABLE turns ADD COLUMN trace TEXT NOT NULL DEFAULT '[]';
    """,
)


def connect(path: str, *, read_only: bool = False) -> sqlite3.Connection:
    """Open the database in WAL mode and apply pending migrations; or read-only, changing nothing.

    Read-only opens never write (no journal-mode switch, no migration, no -wal/-shm files where the folder
    is not writable: SQLite's ``immutable`` mode, right for a read-only mount). A file that is not a
    SQLite database raises :class:`StoreError` naming it.
    """
    try:
        if read_only:
            folder_writable = os.access(os.path.dirname(os.path.abspath(path)), os.W_OK)
            uri = Path(path).absolute().as_uri() + "?mode=ro" + ("" if folder_writable else "&immutable=1")
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=30.0)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # reads the header: damaged files fail
            return conn
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn)
        return conn
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise
        raise StoreError(f"{path} is damaged or not a jisik database ({exc})",
                         hint="restore it from a backup, or move the knowledge base folder away and ingest again",
                         ) from exc


def migrate(conn: sqlite3.Connection) -> int:
    """Apply migrations newer than the database's ``user_version``; returns the new version.

    A database from a newer jisik (higher version than this code knows) is refused by the caller.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
    return max(version, len(MIGRATIONS))
