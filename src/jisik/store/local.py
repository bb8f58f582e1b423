"""The embedded store: SQLite is the source of truth; FAISS and BM25 indexes are derived from it.

Why this shape: every chunk's vector and analyzer terms live in SQLite next to its text, written in
one transaction per batch of files together with the ledger rows of those files and a ``chunk_log``
row per chunk added or removed. Each write bumps the *generation*. Indexes are snapshots of one
generation (:mod:`jisik.store.index_keeper`) caught up from the log — in this process or any other —
so a crash between a commit and an index save loses nothing: the next open replays the log or
rebuilds from SQLite, without re-embedding, duplicates or lost chunks.

Concurrency: many reader threads and processes, one writer at a time. Each thread has its own
connection (:mod:`jisik.store.connections`); a search runs in one read transaction against the indexes
of that transaction's generation (:meth:`LocalStore.reader`).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from jisik.embed.base import Vectors
from jisik.errors import StoreError
from jisik.filters import Filter
from jisik.records import Chunk, Hit
from jisik.store import catalogue
from jisik.store.base import FileRecord, IngestUnit, ReaderShortcuts, ScoredIds, StoreStats
from jisik.store.connections import rows_for_ids
from jisik.store.faiss_index import IdArray, as_ids
from jisik.store.index_keeper import Indexes, IndexKeeper, current_generation
from jisik.store.ledger import IN_MEMORY_PREFIX, SQLiteLedger, open_database
from jisik.store.schema import MIGRATIONS
from jisik.store.sql_filter import compile_filter

# The ledger's columns are named after FileRecord's fields, in the same order.
_FILE_COLUMNS = ", ".join(f.name for f in fields(FileRecord))


class LocalStore(ReaderShortcuts, SQLiteLedger):
    """SQLite (WAL) + FAISS + BM25 under one folder: a :class:`~jisik.store.base.Store`."""

    def __init__(self, folder: Path, *, index_kind: str = "flat", index_options: dict[str, Any] | None = None,
                 bm25_options: dict[str, Any] | None = None, read_only: bool | None = None,
                 background_merge: bool = True) -> None:
        self.folder = folder
        self._db, self.read_only = open_database(folder, read_only)
        super().__init__(self._db)
        self.index_kind = index_kind
        self._indexes = IndexKeeper(folder, self._db, index_kind=index_kind, index_options=index_options or {},
                                    bm25_options=bm25_options or {}, background_merge=background_merge)

    def require_writable(self) -> None:
        """Raise :class:`StoreError` when this store was opened read-only."""
        if self.read_only:
            raise StoreError(f"the knowledge base at {self.folder} is read-only: nothing can be added or changed",
                             hint="search and ask work; to change it, copy it to a writable folder")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.require_writable()
        with self._db.write() as conn:
            yield conn

    # -- metadata ---------------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        with self._db.read() as conn:
            return current_generation(conn)

    @staticmethod
    def _bump_generation(conn: sqlite3.Connection, removed: Sequence[int] = (), added: Sequence[int] = ()) -> int:
        """Next generation, with its chunk changes in the log (same transaction as the change)."""
        generation = current_generation(conn) + 1
        conn.execute("INSERT INTO meta(key, value) VALUES('generation', ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(generation),))
        conn.executemany("INSERT INTO chunk_log(generation, chunk_id, added) VALUES(?, ?, 0)",
                         ((generation, i) for i in removed))
        conn.executemany("INSERT INTO chunk_log(generation, chunk_id, added) VALUES(?, ?, 1)",
                         ((generation, i) for i in added))
        return generation

    def bind(self, *, embedder_model: str, dim: int, analyzer: str, replace: bool = False) -> None:
        if (not replace and self.check_binding(embedder_model=embedder_model, dim=dim, analyzer=analyzer)) \
                or self.read_only:  # bound already; or an empty read-only knowledge base: nothing to search
            return
        with self._transaction():
            self.record_binding(embedder_model=embedder_model, dim=dim, analyzer=analyzer)

    @property
    def dim(self) -> int | None:
        value = self.setting("embedder_dim")
        return None if value is None else int(value)

    # -- writes -----------------------------------------------------------------------------------
    @staticmethod
    def _delete_doc_rows(conn: sqlite3.Connection, doc_ids: Sequence[str]) -> list[int]:
        """Delete these documents with their chunks and metadata; returns the chunk ids removed."""
        removed: list[int] = []
        for doc_id in doc_ids:
            removed.extend(r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,)))
        conn.executemany("DELETE FROM chunks WHERE doc_id = ?", [(d,) for d in doc_ids])
        catalogue.delete_documents(conn, doc_ids)
        return removed

    def write(self, units: Sequence[IngestUnit]) -> int:
        dim = self.dim
        with self._transaction() as conn:
            if not units:
                return current_generation(conn)
            previous = {u.file.path: catalogue.previous_id(conn, u.file.path) for u in units}
            removed: list[int] = []
            for unit in units:
                removed.extend(self._delete_doc_rows(conn, catalogue.doc_ids_of_file(conn, unit.file.path)))
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
            next_id = (int(row[0]) if row else 0) + 1
            added: list[int] = []
            for unit in units:
                path = unit.file.path
                catalogue.claim_unit_ids(conn, unit, dim=dim, previous=previous[path],
                                         in_memory_prefix=IN_MEMORY_PREFIX)
                if path.startswith(IN_MEMORY_PREFIX):
                    # An in-memory document (kb.add_documents) may reuse an id: it replaces it whole. (A file's ids
                    # were just claimed free, so looking them up would find nothing: one SELECT + 3 DELETEs a row.)
                    removed.extend(self._delete_doc_rows(conn, [doc.doc_id for doc in unit.documents]))
                catalogue.insert_documents(conn, path, unit.documents, Counter(c.doc_id for c in unit.chunks))
                first = next_id
                for chunk in unit.chunks:
                    chunk.chunk_id = next_id
                    next_id += 1
                added.extend(range(first, next_id))
                payload = self._staged_rows(unit) if unit.staged else self._rows(unit)
                # a generator: staged rows stream from the staging table, one at a time
                conn.executemany(
                    'INSERT INTO chunks(id, doc_id, ordinal, text, start, "end", page, section, terms, vector) '
                    "VALUES(?,?,?,?,?,?,?,?,?,?)",
                    ((c.chunk_id, c.doc_id, c.ordinal, c.text, c.start, c.end, c.page, c.section, terms, vector)
                     for c, (terms, vector) in zip(unit.chunks, payload, strict=True)))
                self.drop_staged(path)
                unit.file.n_chunks = len(unit.chunks)
                unit.file.n_documents = len(unit.documents)
                self.upsert_file(unit.file)
            return self._bump_generation(conn, removed, added)

    @staticmethod
    def _rows(unit: IngestUnit) -> Iterator[tuple[str, bytes]]:
        vectors = np.ascontiguousarray(unit.vectors, dtype=np.float32)
        for offset in range(len(unit.chunks)):
            yield " ".join(unit.terms[offset]), vectors[offset].tobytes()

    def _staged_rows(self, unit: IngestUnit) -> Iterator[tuple[str, bytes]]:
        """Terms and vector of each chunk from the staging table, one row at a time (bounded memory)."""
        for chunk in unit.chunks:
            row = self.staged_row(unit.file, chunk.text)
            if row is None:
                raise StoreError(f"{unit.file.path}: a staged chunk is missing", hint="ingest the file again")
            yield row

    def _delete(self, file_paths: Sequence[str], doc_ids: Sequence[str]) -> int:
        with self._transaction() as conn:
            removed: list[int] = []
            n_docs = 0
            for path in file_paths:
                docs = catalogue.doc_ids_of_file(conn, path)
                n_docs += len(docs)
                removed.extend(self._delete_doc_rows(conn, docs))
            self.forget_files(file_paths)
            for doc_id in doc_ids:
                row = conn.execute("SELECT file_path FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
                if row is None:
                    continue
                n_docs += 1
                removed.extend(self._delete_doc_rows(conn, [doc_id]))
                # A deleted document must not come back on the next ingest of an unchanged file:
                # forget the file's hash so that the user's next ingest decides.
                left = conn.execute("SELECT 1 FROM documents WHERE file_path = ? LIMIT 1", (row[0],)).fetchone()
                if left is None:
                    self.forget_files([row[0]])
            if removed or n_docs:
                self._bump_generation(conn, removed)
            return n_docs

    def delete_files(self, paths: Sequence[str]) -> int:
        return self._delete(paths, [])

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        return self._delete([], doc_ids)

    def find_documents(self, pattern: str) -> list[str]:
        with self._db.read() as conn:
            return catalogue.find_documents(conn, pattern)

    def replace_vectors(self, ids: Sequence[int], vectors: Vectors) -> None:
        with self._transaction() as conn:
            rows = [(np.asarray(v, dtype=np.float32).tobytes(), i) for i, v in zip(ids, vectors, strict=True)]
            conn.executemany("UPDATE chunks SET vector = ? WHERE id = ?", rows)
            self._restart_log(conn)

    def replace_terms(self, ids: Sequence[int], terms: Sequence[Sequence[str]]) -> None:
        with self._transaction() as conn:
            conn.executemany("UPDATE chunks SET terms = ? WHERE id = ?",
                             [(" ".join(t), i) for i, t in zip(ids, terms, strict=True)])
            self._restart_log(conn)

    def _restart_log(self, conn: sqlite3.Connection) -> None:
        """A change the log does not describe (chunks changed in place): every index is rebuilt from here."""
        generation = self._bump_generation(conn)
        conn.execute("DELETE FROM chunk_log")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'log_start'", (str(generation),))
        self._indexes.invalidate()

    # -- derived indexes --------------------------------------------------------------------------
    def commit_indexes(self) -> None:
        """Sync both indexes with SQLite, merge them when due, and save them when enough changed.

        Read-only: the indexes are synced in memory only."""
        self._indexes.commit(self.dim or 0, read_only=self.read_only)

    @contextmanager
    def reader(self) -> Iterator[LocalReader]:
        """A :class:`LocalReader` over the latest committed generation: one read transaction and the
        indexes of exactly that generation, for the whole ``with`` block."""
        dim = self.dim or 0
        with self._db.read() as conn:
            generation = current_generation(conn)
            yield LocalReader(conn, self._indexes.at(conn, generation, dim))

    # -- reading ----------------------------------------------------------------------------------
    def chunk_texts(self, *, after: int = 0, limit: int = 1000) -> list[tuple[int, str]]:
        with self._db.read() as conn:
            return [(int(r[0]), str(r[1])) for r in conn.execute(
                "SELECT id, text FROM chunks WHERE id > ? ORDER BY id LIMIT ?", (after, limit))]

    def documents(self, *, after: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        with self._db.read() as conn:
            return catalogue.list_documents(conn, after=after, limit=limit)

    def export_files(self, paths: Sequence[str]) -> list[IngestUnit]:
        """What these ledger entries produced, as units another store's :meth:`write` takes (``jisik migrate``).

        All from one read transaction (one generation). A file's documents come in the order they were written,
        so the first still names the file's ids (:func:`~jisik.store.doc_ids.claim_ids` keeps them); its chunks in
        id order, which is each document's ordinal order. Documents carry no text (the store keeps none); vectors
        are read as stored, never embedded again. Memory: the listed files' chunks, nothing more.
        """
        units: list[IngestUnit] = []
        with self._db.read() as conn:
            for path in paths:
                row = conn.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE path = ?", (path,)).fetchone()
                if row is None:
                    continue
                documents = catalogue.file_documents(conn, path)
                if not documents:  # a failed file, or one without text: its ledger row is all there is
                    continue
                chunks: list[Chunk] = []
                terms: list[list[str]] = []
                blobs: list[bytes] = []
                for r in conn.execute(
                        'SELECT c.doc_id, c.ordinal, c.text, c.start, c."end", c.page, c.section, c.terms, c.vector '
                        "FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE d.file_path = ? ORDER BY c.id",
                        (path,)):
                    chunks.append(Chunk(doc_id=r[0], ordinal=r[1], text=r[2], start=r[3], end=r[4], page=r[5],
                                        section=r[6]))
                    terms.append(r[7].split())
                    blobs.append(r[8])
                vectors = (np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(chunks), -1) if chunks
                           else np.zeros((0, self.dim or 0), dtype=np.float32))
                units.append(IngestUnit(file=FileRecord(*row), documents=documents, chunks=chunks, vectors=vectors,
                                        terms=terms))
        return units

    def metadata_combinations(self, keys: Sequence[str]) -> list[dict[str, str]]:
        with self._db.read() as conn:
            return catalogue.metadata_combinations(conn, keys)

    def stats(self) -> StoreStats:
        with self._db.read() as conn:
            def count(sql: str) -> int:
                return int(conn.execute(sql).fetchone()[0])

            documents, chunks = count("SELECT COUNT(*) FROM documents"), count("SELECT COUNT(*) FROM chunks")
            generation = current_generation(conn)
        disk = sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())
        return StoreStats(
            documents=documents, chunks=chunks, files=self.count_files("ok"), failed_files=self.count_files("error"),
            embedder_model=self.setting("embedder_model"), embedder_dim=self.dim, analyzer=self.setting("analyzer"),
            index_kind=self.index_kind, disk_bytes=disk,
            # the indexes' shape (IVF training, delta, tombstones) once a reader has loaded them
            extra={"generation": generation, "schema_version": len(MIGRATIONS), **self._indexes.describe()})

    def is_empty(self) -> bool:
        with self._db.read() as conn:
            return conn.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None

    def close(self) -> None:
        self._indexes.wait_for_merge()
        self._db.close()


class LocalReader:
    """One read transaction of a :class:`LocalStore` with the indexes of its generation."""

    def __init__(self, conn: sqlite3.Connection, indexes: Indexes) -> None:
        self._conn = conn
        self._indexes = indexes

    @property
    def generation(self) -> int:
        return self._indexes.generation

    def _allowed(self, where: Filter) -> IdArray | None:
        if not where:
            return None
        clause, params = compile_filter(where)
        sql = f"SELECT c.id FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE {clause}"
        return as_ids([r[0] for r in self._conn.execute(sql, params)])

    def search_dense(self, queries: Vectors, k: int, where: Filter) -> list[ScoredIds]:
        dense = self._indexes.dense
        allowed = self._allowed(where)
        if dense.size == 0 or (allowed is not None and len(allowed) == 0) or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        scores, ids = dense.search(queries, k, allowed)
        return [[(int(i), float(s)) for s, i in zip(row_s, row_i, strict=True) if i >= 0]
                for row_s, row_i in zip(scores, ids, strict=True)]

    def search_lexical(self, queries: Sequence[Sequence[str]], k: int, where: Filter) -> list[ScoredIds]:
        allowed = self._allowed(where)
        if allowed is not None and len(allowed) == 0:
            return [[] for _ in queries]
        lexical = self._indexes.lexical
        return [lexical.top_k(terms, k, allowed) for terms in queries]

    def document_frequency(self, term: str) -> int:
        return self._indexes.lexical.document_frequency(term)

    def lexical_scores(self, queries: Sequence[Sequence[str]], chunk_ids: Sequence[Sequence[int]]) -> list[list[float]]:
        lexical = self._indexes.lexical
        return [lexical.scores_of(terms, ids) for terms, ids in zip(queries, chunk_ids, strict=True)]

    def vectors(self, chunk_ids: Sequence[int]) -> Vectors:
        ids = list(chunk_ids)
        found: dict[int, bytes] = dict(rows_for_ids(self._conn, "SELECT id, vector FROM chunks WHERE id IN ({ids})",
                                                    ids))
        missing = [i for i in ids if i not in found]
        if missing:
            raise StoreError(f"chunk(s) {missing[:5]} are not in generation {self.generation}")
        if not ids:
            return np.zeros((0, 0), dtype=np.float32)
        return np.frombuffer(b"".join(found[i] for i in ids), dtype=np.float32).reshape(len(ids), -1)

    def hits(self, scored: ScoredIds) -> list[Hit]:
        if not scored:
            return []
        ids = [i for i, _ in scored]
        by_id = {r[0]: r for r in rows_for_ids(
            self._conn, 'SELECT c.id, c.text, c.doc_id, d.source, d.title, c.page, c.section, c.start, c."end", '
                        "d.metadata FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE c.id IN ({ids})", ids)}
        hits = []
        for chunk_id, score in scored:
            r = by_id.get(chunk_id)
            if r is None:  # not in this generation: the index and the rows disagree, which must not happen
                raise StoreError(f"chunk {chunk_id} is in the index but not in generation {self.generation}",
                                 hint="run `jisik reindex --kb PATH`")
            hits.append(Hit(chunk_id=r[0], score=score, text=r[1], doc_id=r[2], source=r[3], title=r[4],
                            page=r[5], section=r[6], start=r[7], end=r[8], metadata=json.loads(r[9]),
                            generation=self.generation))
        return hits



