"""The embedded store: SQLite is the source of truth; FAISS and bm25s indexes are derived from it.

Why this shape: every chunk's vector and analyzer terms live in SQLite next to its text, written in
one transaction per batch of files. The index files carry the SQLite *generation* they reflect.
If the process dies between a commit and an index save, the next open sees a stale generation
and rebuilds the index from SQLite — no re-embedding, no duplicates, no lost chunks.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from jisik.embed.base import Vectors
from jisik.errors import EmbedderMismatchError, StoreError
from jisik.records import Chunk, Hit
from jisik.retrieve.filters import Filter
from jisik.store.base import FileRecord, IngestUnit, ScoredIds, StoreStats, chunk_key
from jisik.store.bm25_index import LexicalIndex
from jisik.store.doc_ids import claim_ids
from jisik.store.faiss_index import DenseIndex, IdArray, as_ids
from jisik.store.schema import MIGRATIONS, connect
from jisik.store.sql_filter import compile_filter, meta_rows

DB_FILE = "jisik.sqlite3"
# Ledger keys of in-memory documents (kb.add_documents): their ids are the caller's, never renamed.
IN_MEMORY_PREFIX = "doc:"


class LocalStore:
    """SQLite (WAL) + FAISS + bm25s under one folder."""

    def __init__(self, folder: Path, *, index_kind: str = "flat", index_options: dict[str, Any] | None = None,
                 bm25_options: dict[str, Any] | None = None, read_only: bool | None = None) -> None:
        self.folder = folder
        db_file = folder / DB_FILE
        # None: read-only when the folder or database cannot be written (a read-only mount, a shared copy)
        self.read_only = is_read_only(folder) if read_only is None else read_only
        if self.read_only and not db_file.exists():
            raise StoreError(f"{folder} holds no knowledge base and cannot be written",
                             hint="ingest into a writable folder, or copy a knowledge base here")
        if not self.read_only:
            folder.mkdir(parents=True, exist_ok=True)
        self._db = connect(str(db_file), read_only=self.read_only)
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StoreError(f"{folder} was written by a newer jisik (schema {version})",
                             hint="upgrade jisik: pip install -U jisik")
        if version < len(MIGRATIONS) and self.read_only:
            raise StoreError(f"{folder} was written by an older jisik and is read-only, so it cannot be upgraded",
                             hint="open it once where it is writable (any jisik command upgrades it)")
        self._lock = threading.RLock()
        self.index_kind = index_kind
        self._index_options = index_options or {}
        self._bm25_options = bm25_options or {}
        self._dense: DenseIndex | None = None
        self._lexical: LexicalIndex | None = None
        # Chunk ids added/removed since the in-memory dense index was last in sync.
        self._pending_add: list[int] = []
        self._pending_remove: list[int] = []
        self._lexical_stale = False

    def require_writable(self) -> None:
        """Raise :class:`StoreError` when this store was opened read-only."""
        if self.read_only:
            raise StoreError(f"the knowledge base at {self.folder} is read-only: nothing can be added or changed",
                             hint="search and ask work; to change it, copy it to a writable folder")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction under the store lock; rolled back on any error (or interrupt)."""
        self.require_writable()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- metadata ---------------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta(key, value) VALUES(?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    @property
    def generation(self) -> int:
        return int(self._meta("generation") or 0)

    def _bump_generation(self) -> None:
        self._set_meta("generation", str(self.generation + 1))

    def bind(self, *, embedder_model: str, dim: int, analyzer: str, replace: bool = False) -> None:
        with self._lock:
            model, stored_dim, stored_analyzer = self._meta("embedder_model"), self._meta("embedder_dim"), \
                self._meta("analyzer")
            if model is not None and not replace:
                if model != embedder_model or int(stored_dim or 0) != dim:
                    raise EmbedderMismatchError(
                        f"this knowledge base was indexed with embedder '{model}' (dim {stored_dim}), "
                        f"but the configured embedder is '{embedder_model}' (dim {dim})",
                        hint="set [embedder] back in jisik.toml, or re-embed everything with "
                             "`jisik reindex --kb PATH --embeddings`")
                if stored_analyzer != analyzer:
                    raise EmbedderMismatchError(
                        f"this knowledge base's BM25 terms were made with analyzer '{stored_analyzer}', "
                        f"but [bm25] analyzer is '{analyzer}'",
                        hint="re-analyze with `jisik reindex --kb PATH`")
                return
            if self.read_only:
                return  # an empty read-only knowledge base: nothing to bind, nothing to search
            with self._transaction():
                self._set_meta("embedder_model", embedder_model)
                self._set_meta("embedder_dim", str(dim))
                self._set_meta("analyzer", analyzer)

    @property
    def dim(self) -> int | None:
        value = self._meta("embedder_dim")
        return None if value is None else int(value)

    # -- ledger -----------------------------------------------------------------------------------
    def file_records(self) -> dict[str, FileRecord]:
        rows = self._db.execute("SELECT path, root, content_hash, size, mtime, status, error, n_documents, "
                                "n_chunks, ingested_at FROM files").fetchall()
        return {row[0]: FileRecord(*row) for row in rows}

    def _upsert_file(self, record: FileRecord) -> None:
        self._db.execute(
            "INSERT INTO files(path, root, content_hash, size, mtime, status, error, n_documents, n_chunks, "
            "ingested_at) VALUES(?,?,?,?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET root=excluded.root, "
            "content_hash=excluded.content_hash, size=excluded.size, mtime=excluded.mtime, "
            "status=excluded.status, error=excluded.error, n_documents=excluded.n_documents, "
            "n_chunks=excluded.n_chunks, ingested_at=excluded.ingested_at",
            (record.path, record.root, record.content_hash, record.size, record.mtime, record.status,
             record.error, record.n_documents, record.n_chunks, record.ingested_at or time.time()))

    # -- writes -----------------------------------------------------------------------------------
    def _chunk_ids_of_files(self, paths: Sequence[str]) -> list[int]:
        ids: list[int] = []
        for path in paths:
            ids.extend(r[0] for r in self._db.execute(
                "SELECT c.id FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE d.file_path = ?", (path,)))
        return ids

    def _delete_docs_of_files(self, paths: Sequence[str]) -> tuple[list[int], int]:
        removed = self._chunk_ids_of_files(paths)
        n_docs = 0
        for path in paths:
            doc_ids = [r[0] for r in self._db.execute("SELECT doc_id FROM documents WHERE file_path = ?", (path,))]
            n_docs += len(doc_ids)
            self._delete_doc_rows(doc_ids)
        return removed, n_docs

    def _delete_doc_rows(self, doc_ids: Sequence[str]) -> None:
        for doc_id in doc_ids:
            self._db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
            self._db.execute("DELETE FROM doc_meta WHERE doc_id = ?", (doc_id,))
            self._db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))

    def _previous_id(self, file_path: str) -> str | None:
        row = self._db.execute("SELECT source FROM documents WHERE file_path = ? ORDER BY rowid LIMIT 1",
                               (file_path,)).fetchone()
        return None if row is None else str(row[0])

    def _id_taken(self, candidate: str, file_path: str) -> bool:
        """Whether a document of another file is named ``candidate`` (as its source or id)."""
        row = self._db.execute("SELECT 1 FROM documents WHERE (source = ? OR doc_id = ?) AND file_path != ? LIMIT 1",
                               (candidate, candidate, file_path)).fetchone()
        return row is not None

    def _next_chunk_id(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
        return (int(row[0]) if row else 0) + 1

    def write(self, units: Sequence[IngestUnit]) -> None:
        if not units:
            return
        dim = self.dim
        with self._lock:
            with self._transaction():
                previous = {u.file.path: self._previous_id(u.file.path) for u in units}
                removed, _ = self._delete_docs_of_files([u.file.path for u in units])
                next_id = self._next_chunk_id()
                added: list[int] = []
                for unit in units:
                    if dim is not None and len(unit.chunks) and not unit.staged and unit.vectors.shape[1] != dim:
                        raise StoreError(f"vector dimension {unit.vectors.shape[1]} does not match the "
                                         f"knowledge base's {dim}")
                    if not unit.file.path.startswith(IN_MEMORY_PREFIX):
                        path = unit.file.path
                        claim_ids(path, unit.documents, unit.chunks, previous=previous[path],
                                  taken=functools.partial(self._id_taken, file_path=path))
                    chunks_per_doc = Counter(c.doc_id for c in unit.chunks)
                    for doc in unit.documents:
                        # An in-memory document (kb.add_documents) may reuse an id: it replaces it whole.
                        removed.extend(r[0] for r in self._db.execute("SELECT id FROM chunks WHERE doc_id = ?",
                                                                      (doc.doc_id,)))
                        self._delete_doc_rows([doc.doc_id])
                        n_chunks = chunks_per_doc[doc.doc_id]
                        self._db.execute(
                            "INSERT OR REPLACE INTO documents(doc_id, file_path, source, title, content_hash, mtime, "
                            "n_chunks, metadata) VALUES(?,?,?,?,?,?,?,?)",
                            (doc.doc_id, unit.file.path, doc.source, doc.title, doc.content_hash, doc.mtime,
                             n_chunks, json.dumps(doc.metadata, ensure_ascii=False, default=str)))
                        self._db.execute("DELETE FROM doc_meta WHERE doc_id = ?", (doc.doc_id,))
                        self._db.executemany("INSERT INTO doc_meta(doc_id, key, text_value, num_value) "
                                             "VALUES(?,?,?,?)", meta_rows(doc.doc_id, dict(doc.metadata)))
                    first = next_id
                    for chunk in unit.chunks:
                        chunk.chunk_id = next_id
                        next_id += 1
                    added.extend(range(first, next_id))
                    payload = self._staged_rows(unit) if unit.staged else self._rows(unit)
                    # a generator: staged rows stream from the staging table, one at a time
                    self._db.executemany(
                        'INSERT INTO chunks(id, doc_id, ordinal, text, start, "end", page, section, terms, vector) '
                        "VALUES(?,?,?,?,?,?,?,?,?,?)",
                        ((c.chunk_id, c.doc_id, c.ordinal, c.text, c.start, c.end, c.page, c.section, terms, vector)
                         for c, (terms, vector) in zip(unit.chunks, payload, strict=True)))
                    self._db.execute("DELETE FROM staged_chunks WHERE file_path = ?", (unit.file.path,))
                    unit.file.n_chunks = len(unit.chunks)
                    unit.file.n_documents = len(unit.documents)
                    self._upsert_file(unit.file)
                self._bump_generation()
            self._pending_remove.extend(removed)
            self._pending_add.extend(added)
            self._lexical_stale = True

    @staticmethod
    def _rows(unit: IngestUnit) -> Iterator[tuple[str, bytes]]:
        vectors = np.ascontiguousarray(unit.vectors, dtype=np.float32)
        for offset in range(len(unit.chunks)):
            yield " ".join(unit.terms[offset]), vectors[offset].tobytes()

    def _staged_rows(self, unit: IngestUnit) -> Iterator[tuple[str, bytes]]:
        """Terms and vector of each chunk from the staging table, one row at a time (bounded memory)."""
        for chunk in unit.chunks:
            row = self._db.execute("SELECT terms, vector FROM staged_chunks WHERE file_path = ? AND text_key = ? "
                                   "AND content_hash = ?",
                                   (unit.file.path, chunk_key(chunk.text), unit.file.content_hash)).fetchone()
            if row is None:
                raise StoreError(f"{unit.file.path}: a staged chunk is missing", hint="ingest the file again")
            yield str(row[0]), bytes(row[1])

    def stage(self, file: FileRecord, chunks: Sequence[Chunk], vectors: Vectors,
              terms: Sequence[Sequence[str]]) -> None:
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._transaction():
            # an older version's staged chunks are of no use any more
            self._db.execute("DELETE FROM staged_chunks WHERE file_path = ? AND content_hash != ?",
                             (file.path, file.content_hash))
            self._db.executemany(
                "INSERT OR REPLACE INTO staged_chunks(file_path, content_hash, text_key, terms, vector) "
                "VALUES(?,?,?,?,?)",
                [(file.path, file.content_hash, chunk_key(c.text), " ".join(t), matrix[i].tobytes())
                 for i, (c, t) in enumerate(zip(chunks, terms, strict=True))])

    def staged_texts(self, file: FileRecord) -> set[str]:
        return {str(r[0]) for r in self._db.execute(
            "SELECT text_key FROM staged_chunks WHERE file_path = ? AND content_hash = ?",
            (file.path, file.content_hash))}

    def record_failures(self, records: Sequence[FileRecord]) -> None:
        """Remember failed files (shown by ``status``); their earlier good documents stay searchable."""
        with self._transaction():
            for record in records:
                existing = self._db.execute("SELECT status FROM files WHERE path = ?", (record.path,)).fetchone()
                if existing and existing[0] == "ok":
                    self._db.execute("UPDATE files SET error = ? WHERE path = ?", (record.error, record.path))
                else:
                    self._upsert_file(record)

    def _delete(self, file_paths: Sequence[str], doc_ids: Sequence[str]) -> int:
        with self._lock:
            with self._transaction():
                removed, n_docs = self._delete_docs_of_files(file_paths)
                for path in file_paths:
                    self._db.execute("DELETE FROM files WHERE path = ?", (path,))
                for doc_id in doc_ids:
                    removed.extend(r[0] for r in self._db.execute("SELECT id FROM chunks WHERE doc_id = ?",
                                                                  (doc_id,)))
                    row = self._db.execute("SELECT file_path FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
                    if row is None:
                        continue
                    n_docs += 1
                    self._delete_doc_rows([doc_id])
                    # A deleted document must not come back on the next ingest of an unchanged file:
                    # forget the file's hash so that the user's next ingest decides.
                    left = self._db.execute("SELECT COUNT(*) FROM documents WHERE file_path = ?", (row[0],)).fetchone()
                    if left[0] == 0:
                        self._db.execute("DELETE FROM files WHERE path = ?", (row[0],))
                if removed or n_docs:
                    self._bump_generation()
            self._pending_remove.extend(removed)
            self._lexical_stale = self._lexical_stale or bool(removed)
            return n_docs

    def delete_files(self, paths: Sequence[str]) -> int:
        return self._delete(paths, [])

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        return self._delete([], doc_ids)

    def find_documents(self, pattern: str) -> list[str]:
        folder = pattern.rstrip("/") + "/"
        rows = self._db.execute(
            "SELECT doc_id FROM documents WHERE doc_id = ? OR source = ? OR file_path = ? OR doc_id LIKE ? || '#%' "
            "OR substr(file_path, 1, length(?)) = ? OR substr(source, 1, length(?)) = ?",
            (pattern, pattern, pattern, pattern, folder, folder, folder, folder)).fetchall()
        return sorted(r[0] for r in rows)

    def replace_vectors(self, ids: Sequence[int], vectors: Vectors) -> None:
        with self._lock:
            with self._transaction():
                self._db.executemany("UPDATE chunks SET vector = ? WHERE id = ?",
                                     [(np.asarray(v, dtype=np.float32).tobytes(), i)
                                      for i, v in zip(ids, vectors, strict=True)])
                self._bump_generation()
            self._dense = None

    def replace_terms(self, ids: Sequence[int], terms: Sequence[Sequence[str]]) -> None:
        with self._lock:
            with self._transaction():
                self._db.executemany("UPDATE chunks SET terms = ? WHERE id = ?",
                                     [(" ".join(t), i) for i, t in zip(ids, terms, strict=True)])
                self._bump_generation()
            self._lexical = None

    # -- derived indexes --------------------------------------------------------------------------
    def _all_vectors(self, ids: Sequence[int] | None = None) -> tuple[IdArray, Vectors]:
        dim = self.dim or 0
        if ids is None:
            return self._every_vector(dim)
        rows = []
        for start in range(0, len(ids), 900):
            part = list(ids[start : start + 900])
            rows.extend(self._db.execute(f"SELECT id, vector FROM chunks WHERE id IN ({','.join('?' * len(part))})",
                                         part).fetchall())
        id_arr = as_ids([r[0] for r in rows])
        if not rows:
            return id_arr, np.zeros((0, dim), dtype=np.float32)
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        return id_arr, matrix

    def _every_vector(self, dim: int) -> tuple[IdArray, Vectors]:
        """All vectors, row by row into one preallocated matrix: a list of blobs plus their join would
        hold the corpus's vectors three times over at once (300 MB at 64,000 chunks)."""
        count = int(self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
        id_arr = np.zeros(count, dtype=np.int64)
        matrix = np.zeros((count, dim), dtype=np.float32)
        filled = 0
        for chunk_id, blob in self._db.execute("SELECT id, vector FROM chunks ORDER BY id"):
            if filled == count:  # a row committed between the count and the scan
                break
            id_arr[filled] = chunk_id
            matrix[filled] = np.frombuffer(blob, dtype=np.float32)
            filled += 1
        return id_arr[:filled], matrix[:filled]

    def _new_dense(self) -> DenseIndex:
        return DenseIndex(self.dim or 0, self.index_kind, **self._index_options)

    def _ensure_dense(self) -> DenseIndex:
        with self._lock:
            if self._dense is not None and not self._pending_add and not self._pending_remove:
                return self._dense
            if self._dense is None:
                dense = self._new_dense()
                if dense.load(self.folder / "index" / "dense", self.generation):
                    self._pending_add.clear()
                    self._pending_remove.clear()
                    self._dense = dense
                    return dense
                dense.build(*self._all_vectors())
                self._pending_add.clear()
                self._pending_remove.clear()
                self._dense = dense
                return dense
            dense = self._dense
            if dense.can_update_in_place(removing=bool(self._pending_remove)):
                dense.remove(as_ids(self._pending_remove))
                dense.add(*self._all_vectors(self._pending_add))
            else:
                dense.build(*self._all_vectors())
            self._pending_add.clear()
            self._pending_remove.clear()
            return dense

    def _ensure_lexical(self) -> LexicalIndex:
        with self._lock:
            if self._lexical is not None and not self._lexical_stale:
                return self._lexical
            lexical = LexicalIndex(**self._bm25_options)
            if self._lexical is None and lexical.load(self.folder / "index" / "bm25", self.generation):
                self._lexical = lexical
                self._lexical_stale = False
                return lexical
            rows = self._db.execute("SELECT id, terms FROM chunks ORDER BY id")
            lexical.build_streaming((int(chunk_id), terms.split()) for chunk_id, terms in rows)
            self._lexical = lexical
            self._lexical_stale = False
            return lexical

    def commit_indexes(self) -> None:
        """Sync both indexes with SQLite and save them tagged with the current generation.

        Read-only: the indexes are synced in memory only."""
        if self.read_only:
            self._ensure_dense()
            self._ensure_lexical()
            return
        with self._lock:
            generation = self.generation
            index_dir = self.folder / "index"
            index_dir.mkdir(exist_ok=True)
            dense = self._ensure_dense()
            if not _header_matches(index_dir / "dense", generation, kind=self.index_kind):
                dense.save(index_dir / "dense", generation)
            lexical = self._ensure_lexical()
            if not _header_matches(index_dir / "bm25", generation):
                lexical.save(index_dir / "bm25", generation)

    def _allowed(self, where: Filter) -> IdArray | None:
        if not where:
            return None
        clause, params = compile_filter(where)
        sql = f"SELECT c.id FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE {clause}"
        return as_ids([r[0] for r in self._db.execute(sql, params)])

    def search_dense(self, queries: Vectors, k: int, where: Filter) -> list[ScoredIds]:
        dense = self._ensure_dense()
        allowed = self._allowed(where)
        if dense.size == 0 or (allowed is not None and len(allowed) == 0) or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        scores, ids = dense.search(queries, k, allowed)
        return [[(int(i), float(s)) for s, i in zip(row_s, row_i, strict=True) if i >= 0]
                for row_s, row_i in zip(scores, ids, strict=True)]

    def search_lexical(self, queries: Sequence[Sequence[str]], k: int, where: Filter) -> list[ScoredIds]:
        lexical = self._ensure_lexical()
        allowed = self._allowed(where)
        if allowed is not None and len(allowed) == 0:
            return [[] for _ in queries]
        return [lexical.top_k(terms, k, allowed) for terms in queries]

    def vectors(self, chunk_ids: Sequence[int]) -> Vectors:
        ids, matrix = self._all_vectors(list(chunk_ids))
        position = {int(i): n for n, i in enumerate(ids)}
        return matrix[[position[int(i)] for i in chunk_ids]] if len(chunk_ids) else matrix

    def hits(self, scored: ScoredIds) -> list[Hit]:
        if not scored:
            return []
        ids = [i for i, _ in scored]
        rows = self._db.execute(
            f'SELECT c.id, c.text, c.doc_id, d.source, d.title, c.page, c.section, c.start, c."end", d.metadata '
            f"FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE c.id IN ({','.join('?' * len(ids))})",
            ids).fetchall()
        by_id = {r[0]: r for r in rows}
        hits = []
        for chunk_id, score in scored:
            r = by_id.get(chunk_id)
            if r is None:  # deleted between search and fetch
                continue
            hits.append(Hit(chunk_id=r[0], score=score, text=r[1], doc_id=r[2], source=r[3], title=r[4],
                            page=r[5], section=r[6], start=r[7], end=r[8], metadata=json.loads(r[9])))
        return hits

    def all_chunk_texts(self) -> list[tuple[int, str]]:
        return [(int(r[0]), str(r[1])) for r in self._db.execute("SELECT id, text FROM chunks ORDER BY id")]

    def documents(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT doc_id, source, title, n_chunks, mtime FROM documents ORDER BY source, doc_id")
        return [{"doc_id": r[0], "source": r[1], "title": r[2], "chunks": r[3], "mtime": r[4]} for r in rows]

    def stats(self) -> StoreStats:
        def count(sql: str) -> int:
            return int(self._db.execute(sql).fetchone()[0])

        disk = sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())
        return StoreStats(
            documents=count("SELECT COUNT(*) FROM documents"), chunks=count("SELECT COUNT(*) FROM chunks"),
            files=count("SELECT COUNT(*) FROM files WHERE status = 'ok'"),
            failed_files=count("SELECT COUNT(*) FROM files WHERE status = 'error'"),
            embedder_model=self._meta("embedder_model"), embedder_dim=self.dim, analyzer=self._meta("analyzer"),
            index_kind=self.index_kind, disk_bytes=disk,
            extra={"generation": self.generation, "schema_version": len(MIGRATIONS)})

    def is_empty(self) -> bool:
        return self._db.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None

    # -- question/answer log ----------------------------------------------------------------------
    def log_turn(self, row: dict[str, Any]) -> int:
        """Store one completed turn (all columns of ``turns`` but ``id``) in one transaction."""
        columns = ", ".join(row)
        placeholders = ", ".join("?" for _ in row)
        values = [json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else v for v in row.values()]
        with self._transaction():
            cursor = self._db.execute(f"INSERT INTO turns({columns}) VALUES({placeholders})", values)
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
        cursor = self._db.execute(sql, [*params, limit])
        names = [d[0] for d in cursor.description]
        out = []
        for values in cursor.fetchall():
            record = dict(zip(names, values, strict=True))
            for key in ("retrieved", "citations"):
                record[key] = json.loads(record[key])
            record["found"] = bool(record["found"])
            out.append(record)
        return out

    def failed_files(self) -> list[tuple[str, str]]:
        return [(r[0], r[1] or "") for r in self._db.execute("SELECT path, error FROM files WHERE status = 'error'")]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def is_read_only(folder: Path) -> bool:
    """Whether the store in ``folder`` must be opened read-only: ``JISIK_READ_ONLY=1``, or an existing
    database that this process cannot write (file or folder not writable, e.g. a read-only mount)."""
    if os.environ.get("JISIK_READ_ONLY") == "1":
        return True
    db_file = folder / DB_FILE
    if not db_file.exists():
        return False
    return not (os.access(db_file, os.W_OK) and os.access(folder, os.W_OK))


def _header_matches(folder: Path, generation: int, **expected: object) -> bool:
    try:
        header = json.loads((folder / "header.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(header.get("generation") == generation
                and all(header.get(key) == value for key, value in expected.items()))
