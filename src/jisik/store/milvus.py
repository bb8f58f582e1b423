"""The Milvus store: chunks, vectors and BM25 terms in a Milvus collection; the ledger and catalogue in SQLite.

One collection per knowledge base (``[store] collection``) on milvus-lite (``uri`` a local ``.db`` path) or a
Milvus server or cluster (``http(s)://host:19530``). Each row is a chunk: its text, span, page, section,
document id, source, title, metadata (JSON, for filters), the dense vector, the chunk's Kiwi terms and their
BM25 weights as a sparse vector (:mod:`jisik.store.bm25_sparse`; jisik keeps the global statistics, so
Korean ranks exactly as in the embedded store). The knowledge base's folder keeps what it keeps for every
backend (:mod:`jisik.store.ledger`, :mod:`jisik.store.catalogue`): settings, the ingestion ledger, documents,
BM25 statistics and the turn log, in ``jisik.sqlite3``.

Consistency between the two, without a distributed transaction — SQLite's commit is the commit point:

- every row carries the generation that wrote it; a write inserts its rows with the *next* generation, then
  commits the ledger, catalogue and statistics in one SQLite transaction that makes that generation current.
  Readers only see ``gen <= current``: rows of a write that has not committed (or crashed) are invisible,
  and the next writer deletes them (:meth:`MilvusStore.reconcile`).
- chunks a write replaces or deletes become *tombstones* in that same transaction; readers of that generation
  on filter them out, readers of an older one still see them, until they are purged from Milvus
  (``PURGE_GRACE_S`` later, or at close). So a reader keeps its generation for the length of a search.
- on open, a writer checks that Milvus holds exactly the chunks SQLite counts; if not (rows lost or deleted
  behind jisik's back), the affected documents are removed and their files forgotten by the ledger, so the
  next ``jisik ingest`` writes them again (docs/scale-out.md).

SQLite's write transaction is held for the whole write, so writers are serialised across processes too.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from jisik.embed.base import Vectors
from jisik.errors import ConfigError, EmbedderMismatchError, StoreError
from jisik.filters import Condition, Filter
from jisik.records import Chunk, Hit
from jisik.store import catalogue
from jisik.store.base import IngestUnit, ReaderShortcuts, ScoredIds, StoreStats
from jisik.store.bm25_sparse import SPARSE_METHODS, SparseVector, chunk_weights, dot, drift, query_weights
from jisik.store.index_keeper import current_generation
from jisik.store.ledger import IN_MEMORY_PREFIX, SQLiteLedger, open_database
from jisik.store.milvus_filter import Params, compile_filter, normalise_metadata, render
from jisik.store.schema import MIGRATIONS

if TYPE_CHECKING:
    from pymilvus import MilvusClient

    from jisik.config import KBConfig

T = TypeVar("T")
log = logging.getLogger("jisik.store.milvus")

# deleted chunks stay in Milvus (filtered out) this long, so a search that began before the delete finishes on
# the generation it started with; more than MAX_TOMBSTONES are purged at once (the filter grows with them)
PURGE_GRACE_S = 30.0
MAX_TOMBSTONES = 4096
# Milvus's largest top-k and the ids one request filters on
MAX_TOP_K = 16384
IDS_PER_REQUEST = 1000
# VARCHAR limits (bytes)
TEXT_BYTES = 65535
NAME_BYTES = 4096
FIELDS = ("id", "gen", "doc_id", "source", "title", "section", "page", "ordinal", "span_start", "span_end", "text",
          "terms", "meta", "vec")
MARKER_PROPERTY = "jisik.kb"
STRONG = "Strong"
# HNSW (also behind AUTOINDEX) searched with a smaller ef loses recall: Milvus 2.3.5's AUTOINDEX gave recall@10 0.84
# against exact search on msmarco-ko, 0.968 with ef 64, 0.991 with ef 128 (docs/scale-out.md "Measured")
MIN_EF = 128
_VERSION = re.compile(r"(\d+)\.(\d+)")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the connected Milvus can do, from its version."""

    version: str
    lite: bool
    sparse: bool  # sparse vectors (Milvus 2.4+, milvus-lite): BM25 search
    templates: bool  # expression templates, filter_params (Milvus 2.5+)

    @classmethod
    def of(cls, version: str) -> Capabilities:
        """
        >>> Capabilities.of("milvus_lite-3.2.2").sparse, Capabilities.of("v2.3.5-lite").sparse
        (True, False)
        >>> Capabilities.of("v2.5.4").templates, Capabilities.of("v2.4.1").templates
        (True, False)
        """
        if version.startswith("milvus_lite"):
            return cls(version, lite=True, sparse=True, templates=False)
        match = _VERSION.search(version)
        major, minor = (int(match.group(1)), int(match.group(2))) if match else (2, 5)
        return cls(version, lite=False, sparse=(major, minor) >= (2, 4), templates=(major, minor) >= (2, 5))


@dataclass(slots=True)
class ReconcileReport:
    """What :meth:`MilvusStore.reconcile` found and repaired."""

    orphans_removed: bool = False
    tombstones_purged: int = 0
    counted: tuple[int, int] = (0, 0)  # (SQLite, Milvus)
    forgotten_files: list[str] = field(default_factory=list)


def create_milvus_store(config: KBConfig, folder: Path) -> MilvusStore:
    """The ``milvus`` backend from ``[store]`` (and ``[bm25]`` for the weights)."""
    section = config.store
    token: str | None = None
    if section.token_env:
        token = os.environ.get(section.token_env)
        if not token:
            raise ConfigError(f"the environment variable {section.token_env} ([store] token_env) is not set",
                              hint=f"export {section.token_env}=user:password (or the API key) before running jisik")
    return MilvusStore(folder, uri=section.uri, token=token, database=section.database,
                       collection=section.collection, index=section.index, index_params=dict(section.index_params),
                       search_params=dict(section.search_params), consistency=section.consistency,
                       write_batch=section.write_batch, avgdl_tolerance=section.avgdl_tolerance,
                       timeout=section.timeout,
                       bm25_options={"k1": config.bm25.k1, "b": config.bm25.b, "method": config.bm25.method})


def is_server_uri(uri: str) -> bool:
    """
    >>> is_server_uri("http://milvus:19530"), is_server_uri("milvus.db"), is_server_uri("tcp://h:19530")
    (True, False, True)
    """
    return uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:"))


def _quiet_pymilvus() -> None:
    # pymilvus logs every failed request with a traceback at ERROR; jisik reports them as StoreErrors instead
    # (and milvus-lite's in-process gRPC server logs the calls it does not implement)
    # (pymilvus sets its own logger to WARNING with a handler of its own, so the level is set whatever it was)
    for name in ("pymilvus", "grpc._server"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


class MilvusStore(ReaderShortcuts, SQLiteLedger):
    """A :class:`~jisik.store.base.Store` on a Milvus collection, with the ledger in the folder's SQLite."""

    def __init__(self, folder: Path, *, uri: str = "milvus.db", token: str | None = None, database: str | None = None,
                 collection: str = "jisik", index: str = "AUTOINDEX", index_params: dict[str, Any] | None = None,
                 search_params: dict[str, Any] | None = None, consistency: str = "strong", write_batch: int = 512,
                 avgdl_tolerance: float = 0.05, timeout: float = 30.0, bm25_options: dict[str, Any] | None = None,
                 read_only: bool | None = None) -> None:
        self.folder = folder
        bm25 = {"k1": 1.2, "b": 0.75, "method": "lucene", **(bm25_options or {})}
        if bm25["method"] not in SPARSE_METHODS:
            raise ConfigError(f"[bm25] method '{bm25['method']}' cannot be stored as sparse vectors in Milvus",
                              hint=f"use one of {', '.join(SPARSE_METHODS)} with [store] backend = \"milvus\"")
        self._k1, self._b, self._method = float(bm25["k1"]), float(bm25["b"]), str(bm25["method"])
        self.uri = uri if is_server_uri(uri) else str((folder / uri).resolve())
        self.collection = collection
        self.index, self.index_params = index, dict(index_params or {})
        self.search_params = dict(search_params or {})
        self.consistency = consistency.capitalize()
        self.write_batch, self.avgdl_tolerance, self.timeout = write_batch, avgdl_tolerance, timeout
        self._db, self.read_only = open_database(folder, read_only)
        super().__init__(self._db)
        try:
            self._client = self._connect(token, database)
            self.capabilities = Capabilities.of(self._call("ask the server version", self._client.get_server_version))
            self._loaded = False
            self._open_collection()
        except BaseException:
            if hasattr(self, "_client"):
                with _suppressed():
                    self._client.close()
            self._db.close()
            raise
        self.last_reconcile: ReconcileReport | None = None
        self._wrote = False  # this handle has written: it purges its tombstones at close
        if not self.read_only and self._exists and not self._counts_agree():
            self.last_reconcile = self.reconcile()

    # -- connection ---------------------------------------------------------------------------------
    def _connect(self, token: str | None, database: str | None) -> MilvusClient:
        if not is_server_uri(self.uri):
            # milvus-lite's in-process server refuses pymilvus's keep-alive pings; gRPC's C core would print a
            # GOAWAY line on stderr for it (its log level is read once, when gRPC first loads)
            os.environ.setdefault("GRPC_VERBOSITY", "NONE")
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:
            raise StoreError("the milvus store needs pymilvus (and milvus-lite for a local .db path)",
                             hint="pip install 'jisik[milvus]'") from exc
        _quiet_pymilvus()
        if not is_server_uri(self.uri):
            if not self.uri.endswith(".db"):
                raise ConfigError(f"[store] uri '{self.uri}' is neither a server (http://host:19530) "
                                  "nor a milvus-lite file",
                                  hint='a milvus-lite path ends in .db, e.g. uri = "milvus.db"')
            _check_lite_lock(Path(self.uri))
        kwargs: dict[str, Any] = {"uri": self.uri, "timeout": self.timeout}
        if token:
            kwargs["token"] = token
        if database:
            kwargs["db_name"] = database
        try:
            return MilvusClient(**kwargs)
        except Exception as exc:
            raise _connection_error(self.uri, exc) from exc

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One request to Milvus; its failures as StoreErrors saying what failed and what to check."""
        try:
            return fn(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:
            message = str(getattr(exc, "message", "") or exc)
            lowered = message.lower()
            if any(s in lowered for s in ("auth", "permission", "credential", "token")):
                raise StoreError(f"Milvus at {self.uri} refused to {what}: {message}",
                                 hint="check the token in the variable [store] token_env names") from exc
            if any(s in lowered for s in ("unavailable", "connect", "deadline", "timeout", "closed channel")):
                raise _connection_error(self.uri, exc) from exc
            raise StoreError(f"Milvus could not {what}: {message}",
                             hint="see docs/scale-out.md; `jisik status --kb PATH` shows the store") from exc

    # -- the collection -----------------------------------------------------------------------------
    def _open_collection(self) -> None:
        if not self._call("list collections", self._client.has_collection, self.collection):
            return
        description = self._call("describe the collection", self._client.describe_collection, self.collection)
        marker = str((description.get("properties") or {}).get(MARKER_PROPERTY) or description.get("description", ""))
        kb_id = self.setting("kb_id")
        if not marker.startswith("jisik:"):
            raise StoreError(f"the Milvus collection '{self.collection}' at {self.uri} was not made by jisik",
                             hint="choose another [store] collection in jisik.toml")
        if kb_id is not None and marker != f"jisik:{kb_id}":
            raise StoreError(f"the Milvus collection '{self.collection}' at {self.uri} belongs to another "
                             "knowledge base", hint="choose another [store] collection in jisik.toml, or copy a "
                             "knowledge base with `jisik migrate`")
        if kb_id is None and not self.read_only:  # this folder's ledger was lost: the collection is adopted empty
            raise StoreError(f"the Milvus collection '{self.collection}' at {self.uri} already holds a knowledge "
                             f"base, but {self.folder} has no record of it",
                             hint="point [store] collection at a new name, or restore the knowledge-base folder "
                                  "that made it (its jisik.sqlite3)")
        dims = [f.get("params", {}).get("dim") for f in description.get("fields", []) if f.get("name") == "vec"]
        stored = self.setting("embedder_dim")
        if dims and stored is not None and int(dims[0]) != int(stored):
            raise EmbedderMismatchError(f"the Milvus collection '{self.collection}' holds {dims[0]}-dimensional "
                                        f"vectors, but this knowledge base's embedder makes {stored}",
                                        hint="choose another [store] collection, or ingest again into a new one")
        self._load()

    def _load(self) -> None:
        if not self._loaded:
            self._call("load the collection", self._client.load_collection, self.collection)
            self._loaded = True

    def _create_collection(self, dim: int) -> None:
        from pymilvus import DataType

        client = self._client
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False,
                                      description=f"jisik:{self._kb_id()}")
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("gen", DataType.INT64)
        for name in ("doc_id", "source", "title", "section"):
            schema.add_field(name, DataType.VARCHAR, max_length=NAME_BYTES)
        for name in ("page", "ordinal", "span_start", "span_end"):
            schema.add_field(name, DataType.INT64)
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_BYTES)
        schema.add_field("terms", DataType.VARCHAR, max_length=TEXT_BYTES)
        schema.add_field("meta", DataType.JSON)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
        params = client.prepare_index_params()
        # milvus-lite 3.2 reads build parameters only from one JSON "params" entry, and pymilvus 3 sends each as a
        # pair of its own: without this it would silently build with its defaults (docs/scale-out.md)
        build = {"params": json.dumps(self.index_params)} if self.capabilities.lite and self.index_params \
            else self.index_params
        params.add_index("vec", index_type=self.index, metric_type="IP", params=build)
        if self.capabilities.sparse:
            schema.add_field("lex", DataType.SPARSE_FLOAT_VECTOR)
            params.add_index("lex", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        self._call("create the collection", client.create_collection, self.collection, schema=schema,
                   index_params=params, consistency_level=self.consistency)
        # the description is not kept everywhere (milvus-lite); a property is
        self._call("mark the collection", client.alter_collection_properties, self.collection,
                   properties={MARKER_PROPERTY: f"jisik:{self._kb_id()}"})
        self._load()

    def _kb_id(self) -> str:
        kb_id = self.setting("kb_id")
        if kb_id is None:
            kb_id = uuid.uuid4().hex
            self.set_setting("kb_id", kb_id)
        return kb_id

    @property
    def _exists(self) -> bool:
        return self._loaded

    def require_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"the knowledge base at {self.folder} is read-only: nothing can be added or changed",
                             hint="search and ask work; to change it, copy it to a writable folder")

    def bind(self, *, embedder_model: str, dim: int, analyzer: str, replace: bool = False) -> None:
        if not replace and self.check_binding(embedder_model=embedder_model, dim=dim, analyzer=analyzer):
            if not self._exists and not self.read_only:
                self._create_collection(dim)
            return
        if self.read_only:
            return
        stored_dim = self.setting("embedder_dim")
        if replace and stored_dim is not None and int(stored_dim) != dim:
            if not self.is_empty():
                raise StoreError(f"the Milvus collection '{self.collection}' holds {stored_dim}-dimensional vectors; "
                                 f"the new embedder makes {dim}",
                                 hint="set another [store] collection and ingest the documents into it")
            if self._exists:  # empty: made again with the new vector size
                self._call("drop the empty collection", self._client.drop_collection, self.collection)
                self._loaded = False
        self.record_binding(embedder_model=embedder_model, dim=dim, analyzer=analyzer)
        if not self._exists:
            self._create_collection(dim)

    def dense_search_params(self, k: int) -> dict[str, Any]:
        """``[store] search_params`` for a top-``k`` search: HNSW (also behind AUTOINDEX, and always in milvus-lite)
        returns at most ``ef`` hits and misses neighbours with a small one: ``ef`` is at least ``MIN_EF`` and ``k``."""
        params = dict(self.search_params)
        if self.index.upper() in ("HNSW", "AUTOINDEX") or self.capabilities.lite:
            params["ef"] = max(int(params.get("ef", MIN_EF)), min(k, MAX_TOP_K))
        return params

    @property
    def dim(self) -> int | None:
        value = self.setting("embedder_dim")
        return None if value is None else int(value)

    @property
    def generation(self) -> int:
        with self._db.read() as conn:
            return current_generation(conn)

    # -- helpers over SQLite --------------------------------------------------------------------------
    @staticmethod
    def _meta_number(conn: sqlite3.Connection, key: str, default: float = 0.0) -> float:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else float(row[0])

    @staticmethod
    def _set_meta(conn: sqlite3.Connection, key: str, value: object) -> None:
        conn.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (key, str(value)))

    @staticmethod
    def _intern(conn: sqlite3.Connection, terms: set[str]) -> dict[str, int]:
        """Term ids for these terms, new ones appended to the vocabulary."""
        ids = _term_rows(conn, terms)
        missing = sorted(terms - ids.keys())
        if missing:
            row = conn.execute("SELECT MAX(id) FROM vocabulary").fetchone()
            first = (int(row[0]) if row and row[0] is not None else -1) + 1
            conn.executemany("INSERT INTO vocabulary(term, id, df) VALUES(?, ?, 0)",
                             [(t, first + n) for n, t in enumerate(missing)])
            ids.update({t: first + n for n, t in enumerate(missing)})
        return ids

    # -- reads ------------------------------------------------------------------------------------
    @contextmanager
    def reader(self) -> Iterator[MilvusReader]:
        """A :class:`MilvusReader` over the latest committed generation: one SQLite read transaction (statistics,
        tombstones, catalogue) and Milvus rows of that generation."""
        with self._db.read() as conn:
            yield MilvusReader(self, conn)

    def _writer_view(self, conn: sqlite3.Connection) -> MilvusReader:
        """The rows a write sees inside its transaction, read with strong consistency."""
        return MilvusReader(self, conn, consistency=STRONG)

    def chunk_texts(self, *, after: int = 0, limit: int = 1000) -> list[tuple[int, str]]:
        with self.reader() as view:
            return [(int(r["id"]), str(r["text"])) for r in view.rows_after(after, limit, ["id", "text"])]

    def documents(self, *, after: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        with self._db.read() as conn:
            return catalogue.list_documents(conn, after=after, limit=limit)

    def find_documents(self, pattern: str) -> list[str]:
        with self._db.read() as conn:
            return catalogue.find_documents(conn, pattern)

    def metadata_combinations(self, keys: Sequence[str]) -> list[dict[str, str]]:
        with self._db.read() as conn:
            return catalogue.metadata_combinations(conn, keys)

    def export_files(self, paths: Sequence[str]) -> list[IngestUnit]:
        records = self.file_records()
        units: list[IngestUnit] = []
        with self.reader() as view:
            for path in paths:
                record = records.get(path)
                documents = catalogue.file_documents(view.conn, path)
                if record is None or not documents:
                    continue
                order = {d.doc_id: n for n, d in enumerate(documents)}
                rows = sorted(view.rows_of_documents(list(order), [*FIELDS]),
                              key=lambda r: (order[r["doc_id"]], r["ordinal"]))
                chunks = [_chunk_of(r) for r in rows]
                vectors = (np.asarray([r["vec"] for r in rows], dtype=np.float32) if rows
                           else np.zeros((0, self.dim or 0), dtype=np.float32))
                units.append(IngestUnit(file=record, documents=documents, chunks=chunks, vectors=vectors,
                                        terms=[_split_terms(r["terms"]) for r in rows]))
        return units

    def stats(self) -> StoreStats:
        with self._db.read() as conn:
            documents = int(conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
            chunks = int(self._meta_number(conn, "lex_n"))
            total = self._meta_number(conn, "lex_total")
            reference = self._meta_number(conn, "lex_avgdl_ref")
            tombstones = int(conn.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0])
            generation = current_generation(conn)
        average = total / chunks if chunks else 0.0
        disk = sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())
        return StoreStats(
            documents=documents, chunks=chunks, files=self.count_files("ok"), failed_files=self.count_files("error"),
            embedder_model=self.setting("embedder_model"), embedder_dim=self.dim, analyzer=self.setting("analyzer"),
            index_kind=f"milvus {self.index}", disk_bytes=disk,
            extra={"generation": generation, "schema_version": len(MIGRATIONS), "milvus": {
                "uri": self.uri, "collection": self.collection, "server": self.capabilities.version,
                "consistency": self.consistency.lower(), "bm25": "sparse" if self.capabilities.sparse else "none",
                "tombstones": tombstones, "avgdl": round(average, 3), "avgdl_weights": round(reference, 3)}})

    def is_empty(self) -> bool:
        with self._db.read() as conn:
            return self._meta_number(conn, "lex_n") == 0

    # -- writes -----------------------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[tuple[sqlite3.Connection, int]]:
        """One write: SQLite's write transaction and the generation it will commit. Rows this write inserted into
        Milvus are deleted again when it fails (and by the next writer's reconcile if this process dies)."""
        self.require_writable()
        with self._db.write() as conn:
            new_generation = current_generation(conn) + 1
            if self._exists:
                # Before every write: a writer that died (in any process) between its Milvus insert and its commit left
                # rows of the generation this write is about to commit, with the chunk ids it is about to use. They are
                # invisible until then; holding SQLite's write lock, no other write is under way to own them.
                self._call("delete uncommitted chunks", self._client.delete, self.collection,
                           filter=f"gen >= {new_generation}")
            self._wrote = True
            try:
                yield conn, new_generation
            except BaseException:
                if self._exists:
                    with _suppressed():
                        self._client.delete(self.collection, filter=f"gen >= {new_generation}")
                raise

    def write(self, units: Sequence[IngestUnit]) -> int:
        if not units:
            return self.generation
        if not self._exists:
            raise StoreError("the knowledge base has no Milvus collection yet", hint="bind the store first")
        dim = self.dim
        with self._writing() as (conn, generation):
            previous = {u.file.path: catalogue.previous_id(conn, u.file.path) for u in units}
            old_docs: list[str] = []
            for unit in units:
                old_docs.extend(catalogue.doc_ids_of_file(conn, unit.file.path))
                if unit.file.path.startswith(IN_MEMORY_PREFIX):
                    old_docs.extend(d.doc_id for d in unit.documents)
            view = self._writer_view(conn)
            removed = view.rows_of_documents(sorted(set(old_docs)), ["id", "terms"]) if old_docs else []
            catalogue.delete_documents(conn, sorted(set(old_docs)))
            next_id = int(self._meta_number(conn, "next_chunk_id", 1))
            new_terms: list[list[str]] = []
            new_chunks: list[tuple[IngestUnit, Chunk, np.ndarray]] = []
            for unit in units:
                path = unit.file.path
                catalogue.claim_unit_ids(conn, unit, dim=dim, previous=previous[path],
                                         in_memory_prefix=IN_MEMORY_PREFIX)
                catalogue.insert_documents(conn, path, unit.documents, Counter(c.doc_id for c in unit.chunks))
                for chunk, (terms, vector) in zip(unit.chunks, self._payload(unit), strict=True):
                    chunk.chunk_id = next_id
                    next_id += 1
                    new_terms.append(terms)
                    new_chunks.append((unit, chunk, vector))
                self.drop_staged(path)
                unit.file.n_chunks = len(unit.chunks)
                unit.file.n_documents = len(unit.documents)
                self.upsert_file(unit.file)
            removed_terms = [_split_terms(r["terms"]) for r in removed]
            ids = self._intern(conn, {t for terms in new_terms for t in terms if t})
            reference = self._update_statistics(conn, ids, added=new_terms, removed=removed_terms)
            metadata = {doc.doc_id: (doc.source, doc.title, normalise_metadata(doc.metadata))
                        for unit in units for doc in unit.documents}
            rows = [self._row(chunk, vector, terms, ids, reference, generation, metadata[chunk.doc_id])
                    for (_unit, chunk, vector), terms in zip(new_chunks, new_terms, strict=True)]
            for start in range(0, len(rows), self.write_batch):
                part = rows[start : start + self.write_batch]
                self._call("insert chunks", self._client.insert, self.collection, part)
            self._tombstone(conn, [int(r["id"]) for r in removed], generation)
            self._set_meta(conn, "next_chunk_id", next_id)
            self._set_meta(conn, "generation", generation)
        self._purge()
        return generation

    def _payload(self, unit: IngestUnit) -> Iterator[tuple[list[str], np.ndarray]]:
        if not unit.staged:
            vectors = np.asarray(unit.vectors, dtype=np.float32)
            for offset in range(len(unit.chunks)):
                yield list(unit.terms[offset]), vectors[offset]
            return
        for chunk in unit.chunks:
            row = self.staged_row(unit.file, chunk.text)
            if row is None:
                raise StoreError(f"{unit.file.path}: a staged chunk is missing", hint="ingest the file again")
            yield _split_terms(row[0]), np.frombuffer(row[1], dtype=np.float32)

    def _row(self, chunk: Chunk, vector: np.ndarray, terms: Sequence[str], ids: dict[str, int], reference: float,
             generation: int, document: tuple[str, str | None, dict[str, object]]) -> dict[str, Any]:
        source, title, meta = document
        joined = " ".join(terms)
        for name, value, limit in (("text", chunk.text, TEXT_BYTES), ("terms", joined, TEXT_BYTES),
                                   ("doc_id", chunk.doc_id, NAME_BYTES), ("source", source, NAME_BYTES)):
            if len(value.encode("utf-8")) > limit:
                raise StoreError(f"a chunk of {chunk.doc_id} has a {name} of {len(value.encode())} bytes, more than "
                                 f"Milvus's {limit}", hint="use a smaller [chunking] size")
        row: dict[str, Any] = {
            "id": chunk.chunk_id, "gen": generation, "doc_id": chunk.doc_id, "source": source,
            "title": (title or "")[:1000], "section": (chunk.section or "")[:1000],
            "page": -1 if chunk.page is None else chunk.page, "ordinal": chunk.ordinal, "span_start": chunk.start,
            "span_end": chunk.end, "text": chunk.text, "terms": joined, "meta": meta,
            "vec": np.asarray(vector, dtype=np.float32).tolist()}
        if self.capabilities.sparse:
            row["lex"] = self._weights([ids[t] for t in terms if t], reference)
        return row

    def _weights(self, term_ids: Sequence[int], reference: float) -> SparseVector:
        weights = chunk_weights(term_ids, reference, k1=self._k1, b=self._b, method=self._method)
        return weights or {0: 0.0}  # Milvus refuses an empty sparse row; a zero weight never scores

    def _update_statistics(self, conn: sqlite3.Connection, ids: dict[str, int], *, added: Sequence[Sequence[str]],
                           removed: Sequence[Sequence[str]]) -> float:
        """Apply these chunks' arrivals and departures to N, the total length and the document frequencies;
        returns the average length the new rows' weights use."""
        delta: Counter[str] = Counter()
        for terms in added:
            delta.update({t for t in terms if t})
        for terms in removed:
            delta.subtract({t for t in terms if t})
        known = {**_term_rows(conn, {t for t in delta if t not in ids}), **ids}
        conn.executemany("UPDATE vocabulary SET df = df + ? WHERE id = ?",
                         [(n, known[t]) for t, n in delta.items() if n and t in known])
        n = self._meta_number(conn, "lex_n") + len(added) - len(removed)
        total = (self._meta_number(conn, "lex_total") + sum(len([t for t in x if t]) for x in added)
                 - sum(len([t for t in x if t]) for x in removed))
        self._set_meta(conn, "lex_n", int(n))
        self._set_meta(conn, "lex_total", int(total))
        reference = self._meta_number(conn, "lex_avgdl_ref")
        if reference <= 0 and n > 0:  # the first chunks: their own average
            reference = max(total / n, 1.0)
            self._set_meta(conn, "lex_avgdl_ref", reference)
        return reference if reference > 0 else 1.0

    def _tombstone(self, conn: sqlite3.Connection, chunk_ids: Sequence[int], generation: int) -> None:
        now = time.time()
        conn.executemany("INSERT OR REPLACE INTO tombstones(chunk_id, generation, deleted_at) VALUES(?, ?, ?)",
                         [(i, generation, now) for i in chunk_ids])

    def _purge(self, *, everything: bool = False) -> int:
        """Delete from Milvus the tombstoned chunks no search can still need; returns how many."""
        if self.read_only or not self._exists:
            return 0
        with self._db.read() as conn:
            count = int(conn.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0])
            if everything:
                due = [int(r[0]) for r in conn.execute("SELECT chunk_id FROM tombstones")]
            else:
                due = [int(r[0]) for r in conn.execute(
                    "SELECT chunk_id FROM tombstones WHERE deleted_at < ? OR chunk_id IN "
                    "(SELECT chunk_id FROM tombstones ORDER BY generation LIMIT ?)",
                    (time.time() - PURGE_GRACE_S, max(0, count - MAX_TOMBSTONES)))]
        for start in range(0, len(due), IDS_PER_REQUEST):
            part = due[start : start + IDS_PER_REQUEST]
            self._call("delete chunks", self._client.delete, self.collection, ids=part)
            with self._db.write() as conn:
                conn.executemany("DELETE FROM tombstones WHERE chunk_id = ?", [(i,) for i in part])
        return len(due)

    def _delete(self, file_paths: Sequence[str], doc_ids: Sequence[str]) -> int:
        with self._writing() as (conn, generation):
            targets: list[str] = []
            for path in file_paths:
                targets.extend(catalogue.doc_ids_of_file(conn, path))
            self.forget_files(file_paths)
            emptied: set[str] = set()
            for doc_id in doc_ids:
                owner = catalogue.file_of_document(conn, doc_id)
                if owner is not None:
                    targets.append(doc_id)
                    emptied.add(owner)
            targets = sorted(set(targets))
            if not targets:
                return 0
            removed = self._writer_view(conn).rows_of_documents(targets, ["id", "terms"]) if self._exists else []
            catalogue.delete_documents(conn, targets)
            # A deleted document must not come back on the next ingest of an unchanged file: forget the hash
            # of a file left without documents, so that the user's next ingest decides.
            self.forget_files([p for p in emptied if not catalogue.doc_ids_of_file(conn, p)])
            self._update_statistics(conn, {}, added=[], removed=[_split_terms(r["terms"]) for r in removed])
            self._tombstone(conn, [int(r["id"]) for r in removed], generation)
            self._set_meta(conn, "generation", generation)
        self._purge()
        return len(targets)

    def delete_files(self, paths: Sequence[str]) -> int:
        return self._delete(paths, [])

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        return self._delete([], doc_ids)

    def replace_vectors(self, ids: Sequence[int], vectors: Vectors) -> None:
        matrix = np.asarray(vectors, dtype=np.float32)
        with self._writing() as (conn, _generation):
            rows = {int(r["id"]): r for r in self._writer_view(conn).rows_by_id(list(ids), self._all_fields())}
            updated = []
            for chunk_id, vector in zip(ids, matrix, strict=True):
                row = rows.get(int(chunk_id))
                if row is None:
                    raise StoreError(f"chunk {chunk_id} is not in the knowledge base")
                updated.append({**_plain(row), "vec": vector.tolist()})
            self._upsert(updated)

    def replace_terms(self, ids: Sequence[int], terms: Sequence[Sequence[str]]) -> None:
        with self._writing() as (conn, _generation):
            rows = {int(r["id"]): r for r in self._writer_view(conn).rows_by_id(list(ids), self._all_fields())}
            missing = [i for i in ids if int(i) not in rows]
            if missing:
                raise StoreError(f"chunk(s) {missing[:5]} are not in the knowledge base")
            new_terms = [list(t) for t in terms]
            term_ids = self._intern(conn, {t for x in new_terms for t in x if t})
            reference = self._update_statistics(conn, term_ids, added=new_terms,
                                                 removed=[_split_terms(rows[int(i)]["terms"]) for i in ids])
            updated = []
            for chunk_id, chunk_terms in zip(ids, new_terms, strict=True):
                row = {**_plain(rows[int(chunk_id)]), "terms": " ".join(chunk_terms)}
                if self.capabilities.sparse:
                    row["lex"] = self._weights([term_ids[t] for t in chunk_terms if t], reference)
                updated.append(row)
            self._upsert(updated)

    def _all_fields(self) -> list[str]:
        return [*FIELDS, "lex"] if self.capabilities.sparse else list(FIELDS)

    def _upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(rows), self.write_batch):
            part = list(rows[start : start + self.write_batch])
            self._call("update chunks", self._client.upsert, self.collection, part)

    # -- maintenance ------------------------------------------------------------------------------
    def commit_indexes(self) -> None:
        """Make the writes durable in Milvus (flush), purge due tombstones, and re-weigh the stored BM25 vectors
        when the average chunk length has drifted past ``avgdl_tolerance``."""
        if self.read_only or not self._exists:
            return
        self._call("flush the collection", self._client.flush, self.collection)
        self._purge()
        with self._db.read() as conn:
            n, total = self._meta_number(conn, "lex_n"), self._meta_number(conn, "lex_total")
            reference = self._meta_number(conn, "lex_avgdl_ref")
        if n and self.capabilities.sparse and drift(max(total / n, 1.0), reference) > self.avgdl_tolerance:
            self.reweigh()

    def reweigh(self) -> int:
        """Recompute every stored BM25 vector with today's average chunk length; returns the chunks re-weighed."""
        done = 0
        with self._writing() as (conn, _generation):
            n, total = self._meta_number(conn, "lex_n"), self._meta_number(conn, "lex_total")
            reference = max(total / n, 1.0) if n else 1.0
            view = self._writer_view(conn)
            after = 0
            while page := view.rows_after(after, self.write_batch, self._all_fields()):
                after = int(page[-1]["id"])
                terms = [_split_terms(r["terms"]) for r in page]
                ids = _term_rows(conn, {t for x in terms for t in x if t})
                self._upsert([{**_plain(r), "lex": self._weights([ids[t] for t in x if t in ids], reference)}
                              for r, x in zip(page, terms, strict=True)])
                done += len(page)
            self._set_meta(conn, "lex_avgdl_ref", reference)
        return done

    def reconcile(self) -> ReconcileReport:
        """Bring Milvus in line with SQLite after a crash between the two (see the module docstring).

        Rows of uncommitted generations are deleted; due tombstones purged; then the live chunk count in
        Milvus is compared with SQLite's. On a mismatch every document's chunk count is checked, and each
        document whose chunks are not all there is removed, its file forgotten by the ledger so the next
        ingest writes it again.
        """
        report = ReconcileReport()
        if not self._exists:
            return report
        with self._writing():
            report.orphans_removed = True
        report.tombstones_purged = self._purge()
        with self.reader() as view:
            expected = int(self._meta_number(view.conn, "lex_n"))
            found = view.count()
        report.counted = (expected, found)
        if expected != found:
            report.forgotten_files = self._repair()
            if report.forgotten_files:
                warnings.warn(f"Milvus collection '{self.collection}' was missing chunks of "
                              f"{len(report.forgotten_files)} file(s); they will be ingested again by the next "
                              "`jisik ingest`", stacklevel=2)
        return report

    def _counts_agree(self) -> bool:
        """Whether Milvus holds as many live chunks as SQLite counts (one count request; no lock taken)."""
        with self.reader() as view:
            return int(self._meta_number(view.conn, "lex_n")) == view.count()

    def _repair(self) -> list[str]:
        """Remove documents whose chunks in Milvus do not match the catalogue; recount the statistics."""
        with self._writing() as (conn, generation):
            view = self._writer_view(conn)
            present: Counter[str] = Counter()
            after = 0
            while page := view.rows_after(after, 4096, ["id", "doc_id"]):
                after = int(page[-1]["id"])
                present.update(str(r["doc_id"]) for r in page)
            broken = [(doc_id, path) for doc_id, path, n in conn.execute(
                "SELECT doc_id, file_path, n_chunks FROM documents") if present.get(doc_id, 0) != n]
            orphans = set(present) - {r[0] for r in conn.execute("SELECT doc_id FROM documents")}
            files = sorted({path for _, path in broken})
            doomed = sorted({d for d, _ in broken} | orphans)
            for path in files:  # the whole file goes: its other documents were written with the broken one
                doomed.extend(catalogue.doc_ids_of_file(conn, path))
            doomed = sorted(set(doomed))
            removed = view.rows_of_documents(doomed, ["id"]) if doomed else []
            catalogue.delete_documents(conn, doomed)
            self.forget_files(files)
            self._tombstone(conn, [int(r["id"]) for r in removed], generation)
            self._set_meta(conn, "generation", generation)
        self._purge(everything=True)
        self._recount()
        return files

    def _recount(self) -> None:
        """N, total length and every document frequency from the rows Milvus holds (after a repair)."""
        with self._writing() as (conn, _generation):
            view = self._writer_view(conn)
            df: Counter[str] = Counter()
            n = total = 0
            after = 0
            while page := view.rows_after(after, 4096, ["id", "terms"]):
                after = int(page[-1]["id"])
                for row in page:
                    terms = [t for t in _split_terms(row["terms"]) if t]
                    n, total = n + 1, total + len(terms)
                    df.update(set(terms))
            conn.execute("UPDATE vocabulary SET df = 0")
            conn.executemany("UPDATE vocabulary SET df = ? WHERE term = ?", [(c, t) for t, c in df.items()])
            self._set_meta(conn, "lex_n", n)
            self._set_meta(conn, "lex_total", total)

    def close(self) -> None:
        if self._wrote:
            with _suppressed():
                self._purge(everything=True)
        with _suppressed():
            self._client.close()
        self._db.close()


class MilvusReader:
    """One SQLite read transaction of a :class:`MilvusStore` and the Milvus rows of its generation."""

    def __init__(self, store: MilvusStore, conn: sqlite3.Connection, *, consistency: str | None = None) -> None:
        self.store = store
        self.conn = conn
        # the writer's own reads are always strong: a replaced file's rows must all be seen to be tombstoned
        # and subtracted from the statistics, whatever level searches use
        self.consistency = consistency or store.consistency
        self._generation = current_generation(conn)
        self._hidden: list[int] | None = None
        self._query_vectors: dict[tuple[str, ...], SparseVector] = {}

    @property
    def generation(self) -> int:
        return self._generation

    def _visible(self) -> list[tuple[str, object]]:
        """Clauses that limit Milvus to this generation: rows it committed, minus its tombstones."""
        if self._hidden is None:
            self._hidden = [int(r[0]) for r in self.conn.execute(
                "SELECT chunk_id FROM tombstones WHERE generation <= ?", (self._generation,))]
        clauses: list[tuple[str, object]] = [("gen <= {}", self._generation)]
        if self._hidden:
            clauses.append(("id not in {}", self._hidden))
        return clauses

    def _expression(self, where: Filter, extra: Sequence[tuple[str, object]] = ()) -> tuple[str, Params]:
        expression, params = compile_filter(where, self._resolve, extra=[*extra, *self._visible()])
        return expression, params

    def _request(self, expression: str, params: Params) -> dict[str, Any]:
        if self.store.capabilities.templates:
            return {"filter": expression, "filter_params": params}
        return {"filter": render(expression, params)}

    def _resolve(self, cond: Condition) -> list[str]:
        """Document ids, from the catalogue, that a glob selects (the embedded store's GLOB semantics), or whose list
        value has an item in a range (what Milvus's JSON filters cannot say)."""
        if cond.op != "glob":
            value = float(cond.value) if isinstance(cond.value, int | float) else None
            column, stored = ("num_value", value) if value is not None else ("text_value", str(cond.value))
            operator = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[cond.op]
            return sorted(str(r[0]) for r in self.conn.execute(
                f"SELECT DISTINCT m.doc_id FROM doc_meta m JOIN documents d ON d.doc_id = m.doc_id WHERE m.key = ? "
                f"AND m.{column} {operator} ? AND json_type(d.metadata, ?) = 'array'",
                (cond.key, stored, "$." + json.dumps(cond.key))))
        pattern = str(cond.value)
        if cond.key == "source":
            sql, args = "SELECT doc_id FROM documents WHERE source GLOB ? OR source GLOB ?", [pattern, f"*/{pattern}"]
        elif cond.key in ("doc_id", "title"):
            sql, args = f"SELECT doc_id FROM documents WHERE {cond.key} GLOB ?", [pattern]
        else:
            sql, args = "SELECT DISTINCT doc_id FROM doc_meta WHERE key = ? AND text_value GLOB ?", [cond.key, pattern]
        return sorted(str(r[0]) for r in self.conn.execute(sql, args))

    # -- searches -----------------------------------------------------------------------------------
    def _empty(self) -> bool:
        return not self.store._exists or self.store._meta_number(self.conn, "lex_n") == 0

    def search_dense(self, queries: Vectors, k: int, where: Filter) -> list[ScoredIds]:
        if len(queries) == 0 or self._empty() or k <= 0:
            return [[] for _ in range(len(queries))]
        expression, params = self._expression(where)
        results = self.store._call(
            "search vectors", self.store._client.search, self.store.collection,
            data=np.asarray(queries, dtype=np.float32).tolist(), anns_field="vec", limit=min(k, MAX_TOP_K),
            search_params={"metric_type": "IP", "params": self.store.dense_search_params(k)}, output_fields=["id"],
            consistency_level=self.consistency, **self._request(expression, params))
        return [_ranked((int(hit["id"]), float(hit["distance"])) for hit in result) for result in results]

    def _query_vector(self, terms: Sequence[str]) -> SparseVector:
        # a hybrid search asks for the same query's vector twice (search_lexical, then lexical_scores): once per reader
        key = tuple(terms)
        if key not in self._query_vectors:
            self._query_vectors[key] = self._weigh_query(terms)
        return self._query_vectors[key]

    def _weigh_query(self, terms: Sequence[str]) -> SparseVector:
        counts = Counter(t for t in terms if t)
        if not counts:
            return {}
        found = _term_rows_with_df(self.conn, set(counts))
        multiplicity = {term_id: counts[term] for term, (term_id, _df) in found.items()}
        df = {term_id: frequency for term_id, frequency in found.values()}
        return query_weights(multiplicity, df, int(self.store._meta_number(self.conn, "lex_n")),
                             method=self.store._method)

    def search_lexical(self, queries: Sequence[Sequence[str]], k: int, where: Filter) -> list[ScoredIds]:
        results: list[ScoredIds] = [[] for _ in queries]
        if not self.store.capabilities.sparse:
            raise StoreError(f"Milvus {self.store.capabilities.version} has no sparse vectors, so it cannot do BM25 "
                             "search", hint='set [retrieval] mode = "dense" (or --mode dense), or use Milvus 2.4+')
        if self._empty() or k <= 0:
            return results
        vectors = [(n, self._query_vector(terms)) for n, terms in enumerate(queries)]
        asked = [(n, vector) for n, vector in vectors if vector]
        if not asked:
            return results
        expression, params = self._expression(where)
        found = self.store._call(
            "search terms", self.store._client.search, self.store.collection, data=[v for _, v in asked],
            anns_field="lex", limit=min(k, MAX_TOP_K), search_params={"metric_type": "IP"}, output_fields=["id"],
            consistency_level=self.consistency, **self._request(expression, params))
        for (n, _vector), result in zip(asked, found, strict=True):
            results[n] = _ranked((int(hit["id"]), float(hit["distance"])) for hit in result if hit["distance"] > 0)
        return results

    def document_frequency(self, term: str) -> int:
        row = self.conn.execute("SELECT df FROM vocabulary WHERE term = ?", (term,)).fetchone()
        return 0 if row is None else int(row[0])

    def lexical_scores(self, queries: Sequence[Sequence[str]], chunk_ids: Sequence[Sequence[int]]) -> list[list[float]]:
        wanted = sorted({int(i) for ids in chunk_ids for i in ids})
        if not wanted or not self.store.capabilities.sparse or self._empty():
            return [[0.0] * len(ids) for ids in chunk_ids]
        stored = {int(r["id"]): _sparse(r["lex"]) for r in self.rows_by_id(wanted, ["id", "lex"])}
        out = []
        for terms, ids in zip(queries, chunk_ids, strict=True):
            vector = self._query_vector(terms)
            out.append([dot(vector, stored[i]) if i in stored else 0.0 for i in ids])
        return out

    def vectors(self, chunk_ids: Sequence[int]) -> Vectors:
        ids = [int(i) for i in chunk_ids]
        if not ids:
            return np.zeros((0, 0), dtype=np.float32)
        found = {int(r["id"]): r["vec"] for r in self.rows_by_id(ids, ["id", "vec"])}
        missing = [i for i in ids if i not in found]
        if missing:
            raise StoreError(f"chunk(s) {missing[:5]} are not in generation {self.generation}")
        return np.asarray([found[i] for i in ids], dtype=np.float32)

    def hits(self, scored: ScoredIds) -> list[Hit]:
        if not scored:
            return []
        rows = {int(r["id"]): r for r in self.rows_by_id(
            [i for i, _ in scored], ["id", "doc_id", "text", "page", "section", "span_start", "span_end"])}
        documents = catalogue.documents_by_id(self.conn, [str(r["doc_id"]) for r in rows.values()])
        hits = []
        for chunk_id, score in scored:
            row = rows.get(chunk_id)
            if row is None or row["doc_id"] not in documents:
                raise StoreError(f"chunk {chunk_id} is not in generation {self.generation} of the knowledge base",
                                 hint="run `jisik status --kb PATH` (it reconciles the store with Milvus)")
            source, title, metadata = documents[row["doc_id"]]
            chunk = _chunk_of(row)
            hits.append(Hit(chunk_id=chunk_id, score=score, text=chunk.text, doc_id=chunk.doc_id, source=source,
                            title=title, page=chunk.page, section=chunk.section, start=chunk.start, end=chunk.end,
                            metadata=metadata, generation=self.generation))
        return hits

    # -- row access -----------------------------------------------------------------------------------
    def _query(self, expression: str, params: Params, fields: Sequence[str], limit: int | None = None
               ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"output_fields": list(fields), "consistency_level": self.consistency}
        if limit is not None:
            kwargs["limit"] = limit
        result = self.store._call("read chunks", self.store._client.query, self.store.collection,
                                  **self._request(expression, params), **kwargs)
        return list(result)

    def rows_by_id(self, ids: Sequence[int], fields: Sequence[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        unique = sorted(set(ids))
        for start in range(0, len(unique), IDS_PER_REQUEST):
            expression, params = self._expression(Filter(), [("id in {}", unique[start : start + IDS_PER_REQUEST])])
            out.extend(self._query(expression, params, fields))
        return out

    def rows_of_documents(self, doc_ids: Sequence[str], fields: Sequence[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for start in range(0, len(doc_ids), IDS_PER_REQUEST):
            part = list(doc_ids[start : start + IDS_PER_REQUEST])
            expression, params = self._expression(Filter(), [("doc_id in {}", part)])
            out.extend(self._query(expression, params, fields))
        return out

    def rows_after(self, after: int, limit: int, fields: Sequence[str]) -> list[dict[str, Any]]:
        """Up to ``limit`` visible rows with ids above ``after``, in id order (a window of ids at a time: Milvus
        returns query results in no particular order)."""
        last = int(self.store._meta_number(self.conn, "next_chunk_id", 1))
        width = max(limit * 2, 1024)
        out: list[dict[str, Any]] = []
        low = after
        while low < last and len(out) < limit:
            high = min(low + width, last)
            expression, params = self._expression(Filter(), [("id > {}", low), ("id <= {}", high)])
            out.extend(self._query(expression, params, fields))
            low, width = high, width * 2
        out.sort(key=lambda r: int(r["id"]))
        return out[:limit]

    def count(self) -> int:
        expression, params = self._expression(Filter())
        result = self._query(expression, params, ["count(*)"])
        return int(result[0]["count(*)"]) if result else 0


# -- small pure helpers ---------------------------------------------------------------------------------
def _ranked(pairs: Iterator[tuple[int, float]] | Sequence[tuple[int, float]]) -> ScoredIds:
    """Best first, ties by chunk id (the embedded store's order).

    >>> _ranked([(5, 0.5), (2, 0.5), (9, 0.9)])
    [(9, 0.9), (2, 0.5), (5, 0.5)]
    """
    return sorted(pairs, key=lambda p: (-p[1], p[0]))


def _split_terms(joined: str) -> list[str]:
    """
    >>> _split_terms("반품 기간"), _split_terms("")
    (['반품', '기간'], [])
    """
    return joined.split(" ") if joined else []


def _sparse(value: Any) -> SparseVector:
    """A sparse vector as pymilvus returns it (a dict, or rows of a SciPy-like matrix) as ``{term id: weight}``."""
    if isinstance(value, dict):
        return {int(k): float(v) for k, v in value.items()}
    if hasattr(value, "tocoo"):
        coo = value.tocoo()
        return {int(c): float(v) for c, v in zip(coo.col, coo.data, strict=True)}
    return {int(k): float(v) for k, v in dict(value).items()}


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row read back, ready to be written again (sparse vectors as dicts, vectors as lists)."""
    out = {k: v for k, v in row.items() if k in FIELDS or k == "lex"}
    if "lex" in out:
        out["lex"] = _sparse(out["lex"]) or {0: 0.0}
    out["vec"] = [float(x) for x in out["vec"]]
    return out


def _chunk_of(row: dict[str, Any]) -> Chunk:
    page = int(row["page"]) if row.get("page") is not None else -1
    return Chunk(chunk_id=int(row["id"]), doc_id=str(row["doc_id"]), ordinal=int(row.get("ordinal", 0)),
                 text=str(row["text"]), start=int(row["span_start"]), end=int(row["span_end"]),
                 page=None if page < 0 else page, section=str(row["section"]) or None)


def _term_rows(conn: sqlite3.Connection, terms: set[str]) -> dict[str, int]:
    return {term: term_id for term, (term_id, _df) in _term_rows_with_df(conn, terms).items()}


def _term_rows_with_df(conn: sqlite3.Connection, terms: set[str]) -> dict[str, tuple[int, int]]:
    from jisik.store.connections import IN_LIST_SIZE

    out: dict[str, tuple[int, int]] = {}
    ordered = sorted(terms)
    for start in range(0, len(ordered), IN_LIST_SIZE):
        part = ordered[start : start + IN_LIST_SIZE]
        marks = ",".join("?" * len(part))
        for term, term_id, df in conn.execute(f"SELECT term, id, df FROM vocabulary WHERE term IN ({marks})", part):
            out[term] = (int(term_id), int(df))
    return out


def _connection_error(uri: str, exc: BaseException) -> StoreError:
    detail = str(getattr(exc, "message", "") or exc).splitlines()[0][:200]
    return StoreError(f"cannot reach Milvus at {uri} ({detail})",
                      hint="check that the server is running, the host and port in [store] uri, the network/"
                           "firewall, and the token ([store] token_env)")


def _check_lite_lock(path: Path) -> None:
    """milvus-lite lets one process hold its data folder: say so instead of failing inside pymilvus."""
    lock = path / "LOCK"
    if not lock.exists() or _served_here(path):
        return
    try:
        import fcntl

        with open(lock, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise StoreError(f"the milvus-lite data at {path} is in use by another process",
                                 hint="milvus-lite allows one process at a time: stop the other jisik command or "
                                      "server, or use a Milvus server (docs/scale-out.md)") from None
            fcntl.flock(handle, fcntl.LOCK_UN)
    except ImportError:  # not POSIX: pymilvus reports it
        return


def _served_here(path: Path) -> bool:
    """Whether this process already serves that milvus-lite folder (a second handle shares its server)."""
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return False
    return os.path.abspath(path) in getattr(server_manager_instance, "_servers", {})


@contextmanager
def _suppressed() -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # best effort (clean-up on a failing path); the original error is what matters
        log.debug("ignored while cleaning up: %s", exc)
