"""The embedded store's indexes, one immutable snapshot per committed generation.

How a search gets indexes that match the rows it reads:

1. It opens a SQLite read transaction (a snapshot) and reads the ``generation`` there.
2. :meth:`IndexKeeper.at` returns the dense and lexical indexes *of that generation*: the published
   snapshot if it is that one; else the newest known older snapshot caught up by applying the
   ``chunk_log`` rows in between (removed ids become tombstones, added chunks go to a delta), read in
   the same transaction; else the index files (saved at some generation) caught up the same way; else a
   build from the stored vectors and terms.
3. Index objects are never changed once published (copy-on-write: a change makes a new snapshot that
   shares the big immutable base), so a search runs over an index nobody is mutating.

The delta and tombstones grow with writes; when an index says it needs a merge, a background thread
builds the merged index from the snapshot, catches it up to the latest generation and publishes it.
Files are saved when enough changes piled up since the last save (opening then replays fewer log rows),
and the log is pruned up to the saved generation.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jisik.store._files import read_header
from jisik.store.bm25_index import LexicalIndex
from jisik.store.connections import Connections, rows_for_ids
from jisik.store.faiss_index import DenseIndex, IdArray, as_ids

logger = logging.getLogger(__name__)

# Save the index files when the log holds this many chunk changes since the last save (and at least
# SAVE_FRACTION of the corpus): replaying 10,000 log rows on open reads 10,000 chunk rows (~0.3 s at
# 100,000 chunks), about what loading the saved files costs, while saving 100,000 chunks' indexes
# takes ~1 s, too much to pay after every small ingest.
SAVE_MIN_CHANGES = 10_000
SAVE_FRACTION = 0.05


@dataclass(frozen=True, slots=True)
class Indexes:
    """The dense and lexical index of one generation. Never changed: a change makes a new one."""

    generation: int
    dense: DenseIndex
    lexical: LexicalIndex


class IndexKeeper:
    def __init__(self, folder: Path, db: Connections, *, index_kind: str, index_options: dict[str, Any],
                 bm25_options: dict[str, Any], background_merge: bool = True) -> None:
        self.folder = folder
        self._db = db
        self.index_kind = index_kind
        self._index_options = index_options
        self._bm25_options = bm25_options
        self.background_merge = background_merge
        self._lock = threading.RLock()  # one thread builds or catches up at a time; searches never wait on it
        self._published: Indexes | None = None
        self._previous: Indexes | None = None  # for a reader whose snapshot is older than the published one
        self._merging = False
        self._merge_thread: threading.Thread | None = None
        self._files_stale = False  # the index files could not be used: save new ones at the next commit

    # -- snapshots ----------------------------------------------------------------------------------
    def at(self, conn: sqlite3.Connection, generation: int, dim: int, *, merge_later: bool = True) -> Indexes:
        """The indexes of ``generation``, which must be the generation of ``conn``'s read transaction.

        ``merge_later``: start a background merge if the snapshot needs one (commit merges itself)."""
        published = self._published
        if published is not None and published.generation == generation:
            return published
        with self._lock:
            published = self._published
            if published is not None and published.generation == generation:
                return published
            log_start = _log_start(conn)
            # (a snapshot made before the store knew its dimension, empty, is of no use once it does)
            base = next((s for s in (self._published, self._previous)
                         if s is not None and log_start <= s.generation <= generation and s.dense.dim == dim), None)
            indexes = (self._catch_up(conn, base, generation) if base is not None
                       else self._open(conn, generation, log_start, dim))
            if published is None or indexes.generation > published.generation:
                self._previous, self._published = published, indexes
            if merge_later:
                self._merge_later(indexes)
            return indexes

    def invalidate(self) -> None:
        """Forget every snapshot (after a change the log does not describe, e.g. re-embedding)."""
        with self._lock:
            self._published = self._previous = None

    def _new_dense(self, dim: int) -> DenseIndex:
        return DenseIndex(dim, self.index_kind, **self._index_options)

    def _open(self, conn: sqlite3.Connection, generation: int, log_start: int, dim: int) -> Indexes:
        """Saved files caught up to ``generation`` where they can be; built from SQLite where not."""
        index_dir = self.folder / "index"
        dense: DenseIndex | None = None
        lexical: LexicalIndex | None = None
        dense_generation = lexical_generation = generation
        saved = _saved_generation(index_dir / "dense", "faiss")
        if saved is not None and log_start <= saved <= generation:
            dense = self._new_dense(dim).load(index_dir / "dense", saved)
            dense_generation = saved
        saved = _saved_generation(index_dir / "bm25", "bm25")
        if saved is not None and log_start <= saved <= generation:
            loaded = LexicalIndex(**self._bm25_options)
            if loaded.load(index_dir / "bm25", saved):
                lexical, lexical_generation = loaded, saved
        if dense is None or lexical is None:
            self._files_stale = True  # absent, damaged, of another kind or format: commit() saves new ones
        if dense is None:
            dense = self._new_dense(dim).build(*every_vector(conn, dim))
        if lexical is None:
            rows = conn.execute("SELECT id, terms FROM chunks ORDER BY id")
            lexical = LexicalIndex(**self._bm25_options).build_streaming(
                (int(chunk_id), terms.split()) for chunk_id, terms in rows)
        if dense_generation < generation:
            dense = self._catch_up(conn, Indexes(dense_generation, dense, lexical), generation).dense
        if lexical_generation < generation:
            lexical = self._catch_up(conn, Indexes(lexical_generation, dense, lexical), generation,
                                     dense_too=False).lexical
        return Indexes(generation, dense, lexical)

    def _catch_up(self, conn: sqlite3.Connection, base: Indexes, generation: int, *,
                  dense_too: bool = True) -> Indexes:
        """``base`` with the chunk changes of generations ``(base.generation, generation]`` applied."""
        if base.generation == generation:
            return base
        removed, added = log_changes(conn, base.generation, generation)
        ids, terms, vectors = _chunk_rows(conn, added)
        if not len(ids):
            vectors = np.zeros((0, base.dense.dim), dtype=np.float32)
        dense = base.dense.with_changes(ids, vectors, as_ids(removed)) if dense_too else base.dense
        lexical = base.lexical.with_changes(list(zip(ids.tolist(), terms, strict=True)), removed)
        return Indexes(generation, dense, lexical)

    # -- merging and saving -------------------------------------------------------------------------
    def _merge_later(self, indexes: Indexes) -> None:
        if self.background_merge and not self._merging and _needs_merge(indexes):
            self._merging = True
            self._merge_thread = threading.Thread(target=self._merge_in_background, args=(indexes,),
                                                  name="jisik-index-merge", daemon=True)
            self._merge_thread.start()

    def wait_for_merge(self) -> None:
        """Wait for a background merge to end (before closing: it reads through a connection of the store)."""
        thread = self._merge_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _merge_in_background(self, indexes: Indexes) -> None:
        try:
            self._publish_merged(_merged(indexes))
        except Exception:  # a failed merge leaves the unmerged (correct, slower) snapshot in place
            logger.exception("merging the indexes of generation %d failed", indexes.generation)
        finally:
            self._merging = False

    def _publish_merged(self, merged: Indexes) -> Indexes | None:
        """Catch ``merged`` up to the latest generation and publish it; None if the log no longer reaches it."""
        with self._db.read() as conn, self._lock:
            generation, log_start = current_generation(conn), _log_start(conn)
            latest = self._published
            if merged.generation < log_start or (latest is not None and latest.generation > generation):
                return None  # the log was pruned past it, or this read began before the latest publish
            caught = self._catch_up(conn, merged, generation)
            # the unmerged snapshots hold the old bases: let them go
            self._previous, self._published = None, caught
            return caught

    def commit(self, dim: int, *, read_only: bool) -> None:
        """Sync with the latest generation, merge if due (here, not in the background: the writer is at the
        end of a batch), and save the files when enough changed since they were last saved."""
        self.wait_for_merge()  # a background merge under way: let it finish, then merge what is left here
        with self._db.read() as conn:
            indexes = self.at(conn, current_generation(conn), dim, merge_later=False)
        merged_now = False
        if _needs_merge(indexes) and not self._merging:
            self._merging = True
            try:
                published = self._publish_merged(_merged(indexes))
            finally:
                self._merging = False
            if published is not None:
                indexes, merged_now = published, True
        if read_only:
            return
        index_dir = self.folder / "index"
        dense_saved = _saved_generation(index_dir / "dense", "faiss", kind=self.index_kind)
        lexical_saved = _saved_generation(index_dir / "bm25", "bm25")
        with self._db.read() as conn:
            log_start = _log_start(conn)
            if not (merged_now or self._files_stale or dense_saved is None or lexical_saved is None
                    or min(dense_saved, lexical_saved) < log_start):
                changes = int(conn.execute("SELECT COUNT(*) FROM chunk_log WHERE generation > ?",
                                           (min(dense_saved, lexical_saved),)).fetchone()[0])
                if changes < max(SAVE_MIN_CHANGES, SAVE_FRACTION * indexes.dense.size):
                    return
        index_dir.mkdir(exist_ok=True)
        indexes.dense.save(index_dir / "dense", indexes.generation)
        indexes.lexical.save(index_dir / "bm25", indexes.generation)
        with self._db.write() as conn:
            # both files are at this generation now: older log rows are never needed again
            conn.execute("DELETE FROM chunk_log WHERE generation <= ?", (indexes.generation,))
            conn.execute("UPDATE meta SET value = ? WHERE key = 'log_start' AND CAST(value AS INTEGER) < ?",
                         (str(indexes.generation), indexes.generation))
        self._files_stale = False

    def describe(self) -> dict[str, Any]:
        indexes = self._published
        if indexes is None:
            return {}
        return {"dense": indexes.dense.describe(), "lexical": indexes.lexical.stats(),
                "indexed_generation": indexes.generation}


def _needs_merge(indexes: Indexes) -> bool:
    return bool(indexes.dense.needs_merge() or indexes.lexical.needs_merge())


def _merged(indexes: Indexes) -> Indexes:
    dense = indexes.dense.merged() if indexes.dense.needs_merge() else indexes.dense
    lexical = indexes.lexical.merged() if indexes.lexical.needs_merge() else indexes.lexical
    return Indexes(indexes.generation, dense, lexical)


def current_generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    return int(row[0]) if row else 0


def _log_start(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'log_start'").fetchone()
    return int(row[0]) if row else 0


def log_changes(conn: sqlite3.Connection, after: int, upto: int) -> tuple[list[int], list[int]]:
    """Chunk ids removed and added between two generations, from ``chunk_log``.

    Chunk ids are never reused (AUTOINCREMENT), so a chunk whose first change in the range is a removal
    existed before it (removed), and one whose last change is an addition exists after it (added).

    >>> conn = sqlite3.connect(":memory:")
    >>> _ = conn.execute("CREATE TABLE chunk_log (generation INTEGER, chunk_id INTEGER, added INTEGER)")
    >>> _ = conn.executemany("INSERT INTO chunk_log VALUES (?,?,?)", [(2, 1, 0), (2, 5, 1), (3, 5, 0), (3, 6, 1)])
    >>> log_changes(conn, 1, 3)
    ([1], [6])
    """
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for chunk_id, added in conn.execute("SELECT chunk_id, added FROM chunk_log WHERE generation > ? AND "
                                        "generation <= ? ORDER BY rowid", (after, upto)):
        first.setdefault(chunk_id, added)
        last[chunk_id] = added
    return [i for i, op in first.items() if not op], [i for i, op in last.items() if op]


def _chunk_rows(conn: sqlite3.Connection, ids: Sequence[int]) -> tuple[IdArray, list[list[str]], np.ndarray]:
    """Ids, terms and vectors of these chunks (those still present), in id order."""
    rows = list(rows_for_ids(conn, "SELECT id, terms, vector FROM chunks WHERE id IN ({ids}) ORDER BY id",
                             sorted(ids)))
    if not rows:
        return as_ids([]), [], np.zeros((0, 0), dtype=np.float32)
    vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    return as_ids([r[0] for r in rows]), [r[1].split() for r in rows], vectors


def every_vector(conn: sqlite3.Connection, dim: int) -> tuple[IdArray, np.ndarray]:
    """All vectors, row by row into one preallocated matrix: a list of blobs plus their join would
    hold the corpus's vectors three times over at once (300 MB at 64,000 chunks)."""
    count = int(conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
    id_arr = np.zeros(count, dtype=np.int64)
    matrix = np.zeros((count, dim), dtype=np.float32)
    for filled, (chunk_id, blob) in enumerate(conn.execute("SELECT id, vector FROM chunks ORDER BY id")):
        id_arr[filled] = chunk_id
        matrix[filled] = np.frombuffer(blob, dtype=np.float32)
    return id_arr, matrix


def _saved_generation(folder: Path, file_format: str, **expected: object) -> int | None:
    """The generation the saved index in ``folder`` reflects (None: absent, damaged or another kind)."""
    header = read_header(folder, file_format) or {}
    generation = header.get("generation")
    if not isinstance(generation, int) or any(header.get(key) != value for key, value in expected.items()):
        return None
    return generation
