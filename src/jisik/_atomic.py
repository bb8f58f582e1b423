"""Writing a file so that readers see the old one or the new one, never a torn one (bottom layer, stdlib only)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a torn one.

    The bytes go to a temporary file in the same folder (created mode 0600, so a file holding a server's
    address is private from the start), are flushed to disk, then renamed over ``path`` (rename is atomic
    within a file system).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
