"""The document catalogue in the knowledge base's SQLite: documents and their metadata, for every backend.

Documents are few (a file gives one or a handful) and what the knowledge base says about itself: which
file each came from, its id, title and metadata. The embedded store keeps its chunks next to them; the
Milvus store keeps chunks, vectors and terms in Milvus and the catalogue here, so document ids are
claimed, listed, found and routed over (:meth:`metadata_combinations`) the same way on both.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from jisik.errors import StoreError
from jisik.records import Document
from jisik.store.base import IngestUnit
from jisik.store.doc_ids import claim_ids
from jisik.store.sql_filter import meta_rows


def doc_ids_of_file(conn: sqlite3.Connection, path: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT doc_id FROM documents WHERE file_path = ?", (path,))]


def file_of_document(conn: sqlite3.Connection, doc_id: str) -> str | None:
    row = conn.execute("SELECT file_path FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
    return None if row is None else str(row[0])


def previous_id(conn: sqlite3.Connection, file_path: str) -> str | None:
    """The id (source) the file's documents had before, so a changed file keeps it."""
    row = conn.execute("SELECT source FROM documents WHERE file_path = ? ORDER BY rowid LIMIT 1",
                       (file_path,)).fetchone()
    return None if row is None else str(row[0])


def id_taken(conn: sqlite3.Connection, candidate: str, file_path: str) -> bool:
    """Whether a document of another file is named ``candidate`` (as its source or id)."""
    row = conn.execute("SELECT 1 FROM documents WHERE (source = ? OR doc_id = ?) AND file_path != ? LIMIT 1",
                       (candidate, candidate, file_path)).fetchone()
    return row is not None


def claim_unit_ids(conn: sqlite3.Connection, unit: IngestUnit, *, dim: int | None, previous: str | None,
                   in_memory_prefix: str) -> None:
    """Check a unit's vector size and give a file's documents their ids (:func:`~jisik.store.doc_ids.claim_ids`:
    the ids it had before, unique among other files); in-memory documents keep the caller's ids."""
    if dim is not None and len(unit.chunks) and not unit.staged and unit.vectors.shape[1] != dim:
        raise StoreError(f"vector dimension {unit.vectors.shape[1]} does not match the knowledge base's {dim}")
    path = unit.file.path
    if not path.startswith(in_memory_prefix):
        claim_ids(path, unit.documents, unit.chunks, previous=previous,
                  taken=functools.partial(id_taken, conn, file_path=path))


def insert_documents(conn: sqlite3.Connection, path: str, documents: Sequence[Document],
                     chunks_per_doc: dict[str, int]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO documents(doc_id, file_path, source, title, content_hash, mtime, n_chunks, metadata) "
        "VALUES(?,?,?,?,?,?,?,?)",
        ((doc.doc_id, path, doc.source, doc.title, doc.content_hash, doc.mtime, chunks_per_doc.get(doc.doc_id, 0),
          json.dumps(doc.metadata, ensure_ascii=False, default=str)) for doc in documents))
    conn.executemany("INSERT INTO doc_meta(doc_id, key, text_value, num_value) VALUES(?,?,?,?)",
                     (row for doc in documents for row in meta_rows(doc.doc_id, dict(doc.metadata))))


def delete_documents(conn: sqlite3.Connection, doc_ids: Sequence[str]) -> None:
    rows = [(d,) for d in doc_ids]
    conn.executemany("DELETE FROM doc_meta WHERE doc_id = ?", rows)
    conn.executemany("DELETE FROM documents WHERE doc_id = ?", rows)


def find_documents(conn: sqlite3.Connection, pattern: str) -> list[str]:
    """doc ids whose id, source or file path equals ``pattern`` or lies under it (a folder)."""
    folder = pattern.rstrip("/") + "/"
    rows = conn.execute(
        "SELECT doc_id FROM documents WHERE doc_id = ? OR source = ? OR file_path = ? "
        "OR doc_id LIKE ? || '#%' OR substr(file_path, 1, length(?)) = ? OR substr(source, 1, length(?)) = ?",
        (pattern, pattern, pattern, pattern, folder, folder, folder, folder)).fetchall()
    return sorted(r[0] for r in rows)


def list_documents(conn: sqlite3.Connection, *, after: str | None, limit: int | None) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT doc_id, source, title, n_chunks, mtime FROM documents WHERE doc_id > ? "
                        "ORDER BY doc_id LIMIT ?", (after or "", -1 if limit is None else limit))
    return [{"doc_id": r[0], "source": r[1], "title": r[2], "chunks": r[3], "mtime": r[4]} for r in rows]


def metadata_combinations(conn: sqlite3.Connection, keys: Sequence[str]) -> list[dict[str, str]]:
    # One pass over doc_meta grouped by document (its (key, text_value) index), not a query per document.
    if not keys:
        return []
    picks = ", ".join("MAX(CASE WHEN key = ? THEN text_value END)" for _ in keys)
    marks = ",".join("?" * len(keys))
    rows = conn.execute(f"SELECT DISTINCT {picks} FROM doc_meta WHERE key IN ({marks}) GROUP BY doc_id",
                        [*keys, *keys]).fetchall()
    return [{k: v for k, v in zip(keys, row, strict=True) if v is not None} for row in rows]


def documents_by_id(conn: sqlite3.Connection,
                    doc_ids: Sequence[str]) -> dict[str, tuple[str, str | None, dict[str, Any]]]:
    """``doc_id -> (source, title, metadata)`` of these documents."""
    from jisik.store.connections import IN_LIST_SIZE

    out: dict[str, tuple[str, str | None, dict[str, Any]]] = {}
    unique = sorted(set(doc_ids))
    for start in range(0, len(unique), IN_LIST_SIZE):
        part = unique[start : start + IN_LIST_SIZE]
        marks = ",".join("?" * len(part))
        for doc_id, source, title, metadata in conn.execute(
                f"SELECT doc_id, source, title, metadata FROM documents WHERE doc_id IN ({marks})", part):
            out[doc_id] = (source, title, json.loads(metadata))
    return out


def file_documents(conn: sqlite3.Connection, path: str) -> list[Document]:
    """The documents a ledger entry produced, without their text (the catalogue keeps none)."""
    rows = conn.execute("SELECT doc_id, source, title, content_hash, mtime, metadata FROM documents "
                        "WHERE file_path = ? ORDER BY rowid", (path,)).fetchall()
    return [Document(doc_id=r[0], source=r[1], text="", title=r[2], content_hash=r[3], mtime=r[4],
                     metadata=json.loads(r[5])) for r in rows]
