"""SQLite schema of the embedded store, as numbered migrations applied in order (PRAGMA user_version)."""

from __future__ import annotations

import sqlite3

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
)


def connect(path: str) -> sqlite3.Connection:
    """Open the database in WAL mode and apply pending migrations."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    migrate(conn)
    return conn


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
