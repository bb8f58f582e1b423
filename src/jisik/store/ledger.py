"""What stays in SQLite whatever the backend: settings, the ingestion ledger, staged chunks, the turn log.

A backend (:class:`~jisik.store.base.ChunkStore`) keeps documents, chunks, vectors and terms and
answers searches; everything here is the knowledge base's own bookkeeping and lives in
``jisik.sqlite3`` next to ``jisik.toml``. The embedded store shares this database and writes its
chunks and the ledger rows of their files in one transaction.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jisik.embed.base import Vectors
from jisik.errors import EmbedderMismatchError, StoreError
from jisik.records import Chunk
from jisik.store.base import FileRecord, chunk_key
from jisik.store.connections import Connections
from jisik.store.schema import MIGRATIONS

DB_FILE = "jisik.sqlite3"
# Ledger keys of in-memory documents (kb.add_documents): their ids are the caller's, never renamed.
IN_MEMORY_PREFIX = "doc:"

_FILE_COLUMNS = "path, root, content_hash, size, mtime, status, error, n_documents, n_chunks, ingested_at"


def is_read_only(folder: Path) -> bool:
    """Whether the store in ``folder`` must be opened read-only: ``JISIK_READ_ONLY=1``, or an existing
    database that this process cannot write (file or folder not writable, e.g. a read-only mount)."""
    if os.environ.get("JISIK_READ_ONLY") == "1":
        return True
    db_file = folder / DB_FILE
    if not db_file.exists():
        return False
    return not (os.access(db_file, os.W_OK) and os.access(folder, os.W_OK))


def open_database(folder: Path, read_only: bool | None) -> tuple[Connections, bool]:
    """The knowledge base's SQLite in ``folder`` (made and migrated when writable) and whether it is read-only.

    ``read_only=None``: read-only when the folder or database cannot be written (a read-only mount, a shared
    copy). Refused, saying what to do: an empty read-only folder, a database of a newer jisik, an older one that
    a read-only open cannot upgrade.
    """
    db_file = folder / DB_FILE
    read_only = is_read_only(folder) if read_only is None else read_only
    if read_only and not db_file.exists():
        raise StoreError(f"{folder} holds no knowledge base and cannot be written",
                         hint="ingest into a writable folder, or copy a knowledge base here")
    if not read_only:
        folder.mkdir(parents=True, exist_ok=True)
    db = Connections(str(db_file), read_only=read_only)
    with db.read() as conn:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        db.close()
        raise StoreError(f"{folder} was written by a newer jisik (schema {version})",
                         hint="upgrade jisik: pip install -U jisik")
    if version < len(MIGRATIONS) and read_only:
        db.close()
        raise StoreError(f"{folder} was written by an older jisik and is read-only, so it cannot be upgraded",
                         hint="open it once where it is writable (any jisik command upgrades it)")
    return db, read_only


class SQLiteLedger:
    """The :class:`~jisik.store.base.Ledger` over a :class:`Connections` pool."""

    def __init__(self, db: Connections) -> None:
        self._db = db
        self._staging_versions: set[tuple[str, str]] = set()  # (file, content hash) whose older versions are gone

    # -- settings ---------------------------------------------------------------------------------
    def setting(self, key: str) -> str | None:
        with self._db.read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        with self._db.write() as conn:
            conn.execute("INSERT INTO meta(key, value) VALUES(?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    # -- the embedder and analyzer the knowledge base was made with ----------------------------------
    def check_binding(self, *, embedder_model: str, dim: int, analyzer: str) -> bool:
        """True when the knowledge base is bound to this embedder and analyzer, False when to none yet;
        a different one raises :class:`EmbedderMismatchError` naming the fix."""
        model, stored_dim, stored_analyzer = (self.setting("embedder_model"), self.setting("embedder_dim"),
                                              self.setting("analyzer"))
        if model is None:
            return False
        if model != embedder_model or int(stored_dim or 0) != dim:
            raise EmbedderMismatchError(
                f"this knowledge base was indexed with embedder '{model}' (dim {stored_dim}), "
                f"but the configured embedder is '{embedder_model}' (dim {dim})",
                hint="set [embedder] back in jisik.toml, or re-embed everything with "
                     "`jisik reindex --kb PATH --embeddings`")
        if stored_analyzer != analyzer:
            raise EmbedderMismatchError(
                f"this knowledge base's BM25 terms were made with analyzer '{stored_analyzer}', "
                f"but [bm25] analyzer is '{analyzer}'", hint="re-analyze with `jisik reindex --kb PATH`")
        return True

    def record_binding(self, *, embedder_model: str, dim: int, analyzer: str) -> None:
        with self._db.write():
            self.set_setting("embedder_model", embedder_model)
            self.set_setting("embedder_dim", str(dim))
            self.set_setting("analyzer", analyzer)

    # -- the ingestion ledger ---------------------------------------------------------------------
    def file_records(self) -> dict[str, FileRecord]:
        with self._db.read() as conn:
            rows = conn.execute(f"SELECT {_FILE_COLUMNS} FROM files").fetchall()
        return {row[0]: FileRecord(*row) for row in rows}

    def upsert_file(self, record: FileRecord) -> None:
        with self._db.write() as conn:
            conn.execute(
                f"INSERT INTO files({_FILE_COLUMNS}) VALUES(?,?,?,?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET "
                "root=excluded.root, content_hash=excluded.content_hash, size=excluded.size, mtime=excluded.mtime, "
                "status=excluded.status, error=excluded.error, n_documents=excluded.n_documents, "
                "n_chunks=excluded.n_chunks, ingested_at=excluded.ingested_at",
                (record.path, record.root, record.content_hash, record.size, record.mtime, record.status,
                 record.error, record.n_documents, record.n_chunks, record.ingested_at or time.time()))

    def forget_files(self, paths: Sequence[str]) -> None:
        with self._db.write() as conn:
            conn.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])

    def record_failures(self, records: Sequence[FileRecord]) -> None:
        """Remember failed files (shown by ``status``); their earlier good documents stay searchable."""
        with self._db.write() as conn:
            for record in records:
                existing = conn.execute("SELECT status FROM files WHERE path = ?", (record.path,)).fetchone()
                if existing and existing[0] == "ok":
                    conn.execute("UPDATE files SET error = ? WHERE path = ?", (record.error, record.path))
                else:
                    self.upsert_file(record)

    def failed_files(self) -> list[tuple[str, str]]:
        with self._db.read() as conn:
            return [(r[0], r[1] or "") for r in conn.execute("SELECT path, error FROM files WHERE status = 'error'")]

    def count_files(self, status: str) -> int:
        with self._db.read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM files WHERE status = ?", (status,)).fetchone()[0])

    # -- staged chunks of big files ---------------------------------------------------------------
    def stage(self, file: FileRecord, chunks: Sequence[Chunk], vectors: Vectors,
              terms: Sequence[Sequence[str]]) -> None:
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._db.write() as conn:
            version = (file.path, file.content_hash)
            if version not in self._staging_versions:
                # an older version's staged chunks are of no use any more. Once per file version: the statement
                # walks every row staged for the file, and a big file is staged in hundreds of parts.
                conn.execute("DELETE FROM staged_chunks WHERE file_path = ? AND content_hash != ?", version)
                self._staging_versions.add(version)
            conn.executemany(
                "INSERT OR REPLACE INTO staged_chunks(file_path, content_hash, text_key, terms, vector) "
                "VALUES(?,?,?,?,?)",
                [(file.path, file.content_hash, chunk_key(c.text), " ".join(t), matrix[i].tobytes())
                 for i, (c, t) in enumerate(zip(chunks, terms, strict=True))])

    def staged_texts(self, file: FileRecord) -> set[str]:
        with self._db.read() as conn:
            return {str(r[0]) for r in conn.execute(
                "SELECT text_key FROM staged_chunks WHERE file_path = ? AND content_hash = ?",
                (file.path, file.content_hash))}

    def staged_row(self, file: FileRecord, text: str) -> tuple[str, bytes] | None:
        """The staged terms (space-joined) and vector bytes of one chunk text of this file version."""
        with self._db.read() as conn:
            row = conn.execute("SELECT terms, vector FROM staged_chunks WHERE file_path = ? AND text_key = ? "
                               "AND content_hash = ?", (file.path, chunk_key(text), file.content_hash)).fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))

    def drop_staged(self, path: str) -> None:
        with self._db.write() as conn:
            conn.execute("DELETE FROM staged_chunks WHERE file_path = ?", (path,))

    # -- the question/answer log ------------------------------------------------------------------
    def log_turn(self, row: dict[str, Any]) -> int:
        """Store one completed turn (all columns of ``turns`` but ``id``) in one transaction."""
        columns = ", ".join(row)
        placeholders = ", ".join("?" for _ in row)
        values = [json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else v for v in row.values()]
        with self._db.write() as conn:
            cursor = conn.execute(f"INSERT INTO turns({columns}) VALUES({placeholders})", values)
        return int(cursor.lastrowid or 0)

    def turns(self, *, limit: int = 20, session: str | None = None, turn_id: int | None = None) -> list[dict[str, Any]]:
        """Logged turns, newest first; JSON columns decoded."""
        where: list[str] = []
        params: list[Any] = []
        if session is not None:
            where.append("session = ?")
            params.append(session)
        if turn_id is not None:
            where.append("id = ?")
            params.append(turn_id)
        sql = "SELECT * FROM turns" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
        with self._db.read() as conn:
            cursor = conn.execute(sql, [*params, limit])
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        out = []
        for values in rows:
            record = dict(zip(names, values, strict=True))
            for key in ("retrieved", "citations", "guard", "grounding", "trace"):
                record[key] = json.loads(record[key])
            record["found"] = bool(record["found"])
            out.append(record)
        return out
