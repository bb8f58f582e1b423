"""One writer per knowledge base: ``ingest``, ``delete`` and ``reindex`` hold ``writer.lock`` while they run.

SQLite already serialises single transactions, so two ingests at once never corrupt or duplicate; but
they interleave batch by batch and each pays for the other's index work. The lock makes the second
one wait visibly ("waiting for ingest by pid N…") or fail at once with a clear error. It is an
``flock`` on a file in the knowledge-base folder: the kernel releases it when the holder dies (even
by SIGKILL), so a crashed ingest never leaves a stale lock. The file records who holds it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from jisik.errors import StoreBusyError

LOCK_FILE = "writer.lock"
_POLL_SECONDS = 0.2


def describe_holder(holder: dict[str, Any] | None) -> str:
    """Who holds the lock, for a message.

    >>> describe_holder({"pid": 4242, "operation": "ingest"})
    'ingest by pid 4242'
    >>> describe_holder(None)
    'another process'
    """
    if not holder or "pid" not in holder:
        return "another process"
    return f"{holder.get('operation', 'a write')} by pid {holder['pid']}"


def _read_holder(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


@contextmanager
def hold_writer_lock(folder: Path, operation: str, *, wait: float | None = None,
                     on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the knowledge base's writer lock for the ``with`` block.

    ``wait``: seconds to wait for another writer (None: as long as it takes; 0: fail at once with
    :class:`~jisik.errors.StoreBusyError`). ``on_wait`` is called once with a line such as
    ``"waiting for ingest by pid 4242…"`` when the lock is taken. Re-entrant within a process would
    deadlock, so callers take it once, at the outermost write operation.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): SQLite's own locking still keeps writes consistent
        yield
        return
    path = folder / LOCK_FILE
    handle: IO[str] = open(path, "a+", encoding="utf-8")  # noqa: SIM115  (held across the yield)
    try:
        deadline = None if wait is None else time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = describe_holder(_read_holder(path))
                if deadline is not None and time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"the knowledge base at {folder} is being written ({holder})",
                        hint="wait for it to finish, or give --wait SECONDS to wait for it") from None
                if not told and on_wait is not None:
                    on_wait(f"waiting for {holder}…")
                    told = True
                time.sleep(_POLL_SECONDS)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "operation": operation, "since": time.time()}))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()
