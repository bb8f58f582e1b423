"""One SQLite connection per thread, read snapshots and the single in-process writer.

Why: one connection shared by all threads lets a reader see the rows of another thread's open write
transaction (later rolled back). With a connection per thread, WAL mode gives every read transaction
a snapshot of the last commit, so a reader never sees uncommitted rows, however the writer ends.

- :meth:`Connections.read` opens a read transaction (a snapshot) on the calling thread's connection;
  nested calls join it, so one search reads one committed state from its first statement to its last.
- :meth:`Connections.write` is ``BEGIN IMMEDIATE`` … ``COMMIT`` under an in-process lock (one writer
  thread at a time) and SQLite's own lock across processes (``busy_timeout`` 30 s), rolled back on any
  error or interrupt.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from jisik.store.schema import connect


class Connections:
    """Per-thread connections to one database file (``connect(path, read_only=...)`` for each)."""

    def __init__(self, path: str, *, read_only: bool) -> None:
        self.path = path
        self.read_only = read_only
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._all: dict[int, tuple[threading.Thread, sqlite3.Connection]] = {}
        self._all_lock = threading.Lock()
        self._closed = False
        self.get()  # the opening thread's connection: migrations run here, errors surface at open

    def get(self) -> sqlite3.Connection:
        """The calling thread's connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            from jisik.errors import StoreError

            raise StoreError("the knowledge base was closed", hint="open it again")
        conn = connect(self.path, read_only=self.read_only)
        self._local.conn = conn
        with self._all_lock:
            # forget (and close) the connections of threads that have ended, so a server's changing
            # thread pool does not accumulate them
            for ident, (thread, old) in list(self._all.items()):
                if not thread.is_alive():
                    old.close()
                    del self._all[ident]
            self._all[threading.get_ident()] = (threading.current_thread(), conn)
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same committed state.

        Joins the thread's open transaction (read or write) instead of nesting."""
        conn = self.get()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")  # nothing was written: this only ends the snapshot

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back on any error (or interrupt)."""
        with self._write_lock:
            conn = self.get()
            if conn.in_transaction:  # a write inside a write (or a read snapshot) of this thread
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._all_lock:
            self._closed = True
            for _thread, conn in self._all.values():
                conn.close()
            self._all.clear()
        self._local = threading.local()


# bound parameters per IN (...) list: SQLite builds before 3.32 allow 999
IN_LIST_SIZE = 900


def rows_for_ids(conn: sqlite3.Connection, sql: str, ids: Sequence[int]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``sql`` (which holds ``{ids}`` where the ``IN`` list goes) for every id, a few hundred at a time.

    >>> conn = sqlite3.connect(":memory:")
    >>> _ = conn.execute("CREATE TABLE t (id INTEGER)")
    >>> _ = conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(2000)])
    >>> len(list(rows_for_ids(conn, "SELECT id FROM t WHERE id IN ({ids})", list(range(0, 2000, 2)))))
    1000
    """
    for start in range(0, len(ids), IN_LIST_SIZE):
        part = list(ids[start : start + IN_LIST_SIZE])
        yield from conn.execute(sql.format(ids=",".join("?" * len(part))), part)
