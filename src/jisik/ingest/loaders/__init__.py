"""Document loaders: one module per format, chosen by file extension.

Each suffix is a name in :data:`jisik.registry.loaders` (``.pdf`` → ``pdf.load_pdf``), where a plugin
can add one through the ``jisik.loaders`` entry-point group; a loader module is imported the first
time a file of its type is loaded. :data:`SUPPORTED_EXTENSIONS` follows the registry.

>>> sorted(SUPPORTED_EXTENSIONS)[:4]
['.csv', '.docx', '.htm', '.html']

Every loader returns documents whose ``segments`` are sorted, do not overlap, lie inside
``text`` and cover exactly the text they label; pages, sections and blocks are joined by a
blank line. Any failure is a :class:`~jisik.errors.LoaderError` naming the file and the reason
(never a raw library exception), so ingestion can report it and go on with the next file.

``doc_id`` and ``source`` are the path relative to ``root`` in posix form ("policies/refunds.md").
A file outside ``root`` gets its absolute posix path instead: unique and stable, where the bare
file name would let two folders' ``README.md`` collide.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Set
from pathlib import Path

from jisik.config import LoaderConfig
from jisik.errors import ConfigError, JisikError, LoaderError, UnsupportedFormatError
from jisik.ingest.loaders.base import Loaded, Loader, Source
from jisik.records import Document
from jisik.registry import loaders as LOADERS  # the registry: suffix → loader

__all__ = [
    "CONVERTIBLE_EXTENSIONS", "LOADERS", "SUPPORTED_EXTENSIONS", "Loaded", "Loader", "LoaderConfig", "load",
    "load_file", "relative_id", "supported_suffixes",
]

logger = logging.getLogger(__name__)


class _Suffixes(Set[str]):
    """The suffixes :data:`LOADERS` knows at the time of asking, plugins' included (a live view)."""

    def __contains__(self, suffix: object) -> bool:
        return isinstance(suffix, str) and suffix.startswith(".") and suffix in LOADERS

    def __iter__(self) -> Iterator[str]:
        return iter(LOADERS.names())

    def __len__(self) -> int:
        return len(LOADERS.names())

    def __repr__(self) -> str:
        return f"SUPPORTED_EXTENSIONS({sorted(self)})"


# What discovery (jisik.ingest.pipeline) takes as loadable; follows LOADERS, so a plugin's suffix counts.
SUPPORTED_EXTENSIONS: Set[str] = _Suffixes()


def supported_suffixes() -> frozenset[str]:
    """The file suffixes a loader is registered for, now (``.pdf``, ``.md``, … and plugins')."""
    return frozenset(LOADERS.names())


# Formats people often have, with the conversion that makes them loadable.
_CONVERT_HINTS = {
    ".doc": "save it as .docx",
    ".hwp": "save it as .docx or PDF from Hangul (한글)",
    ".hwpx": "save it as .docx or PDF from Hangul (한글)",
    ".xlsx": "export the sheet as CSV",
    ".xls": "export the sheet as CSV",
    ".pptx": "export it as PDF",
    ".ppt": "export it as PDF",
    ".json": "write one JSON object per line and name it .jsonl",
}
# Found in folders and reported with their conversion hint rather than silently ignored.
CONVERTIBLE_EXTENSIONS: frozenset[str] = frozenset(_CONVERT_HINTS)


def relative_id(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in posix form; the absolute posix path if outside ``root``.

    Symlinks are not resolved, so a link inside ``root`` keeps its in-tree name.

    >>> relative_id(Path("/kb/docs/a/b.md"), Path("/kb/docs"))
    'a/b.md'
    >>> relative_id(Path("/elsewhere/b.md"), Path("/kb/docs"))
    '/elsewhere/b.md'
    """
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return absolute.as_posix()


def _read(path: Path, rel: str, ext: str) -> Source:
    try:
        mtime = path.stat().st_mtime
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise LoaderError(rel, "file not found") from exc
    except IsADirectoryError as exc:
        raise LoaderError(rel, "is a directory, not a file") from exc
    except PermissionError as exc:
        raise LoaderError(rel, "permission denied", hint="check the file's read permission") from exc
    except OSError as exc:
        raise LoaderError(rel, f"cannot read the file ({exc.strerror or exc})") from exc
    return Source(path=path, rel=rel, ext=ext, data=data, mtime=mtime)


def load(path: Path, *, root: Path, config: LoaderConfig | None = None) -> Loaded:
    """Load one file: its documents and the warnings about what was skipped.

    Raises :class:`UnsupportedFormatError` for an unknown extension and :class:`LoaderError` for
    a file that cannot be read or parsed. An empty file gives no documents and one warning.
    """
    config = config or LoaderConfig()
    rel = relative_id(path, root)
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        hint = _CONVERT_HINTS.get(ext, f"supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}")
        raise UnsupportedFormatError(rel, f"unsupported file type {ext or '(no extension)'!r}", hint=hint)
    try:
        loader: Loader = LOADERS.get(ext)
    except ConfigError as exc:  # a plugin's loader that cannot be imported: this file fails, the others go on
        raise LoaderError(rel, exc.message, hint=exc.hint) from exc
    src = _read(path, rel, ext)
    if not src.data or src.data.isspace():
        return Loaded(warnings=[f"{rel}: empty file, nothing to index"])
    try:
        return loader(src, config)
    except JisikError:
        raise
    except Exception as exc:  # a library's own exception: wrap it so one bad file cannot stop ingest
        raise LoaderError(rel, f"cannot parse {ext} file ({type(exc).__name__}: {exc})") from exc


def load_file(path: Path, *, root: Path, config: LoaderConfig) -> list[Document]:
    """The documents in ``path``; warnings (skipped rows, pages without text) go to the log."""
    loaded = load(path, root=root, config=config)
    for warning in loaded.warnings:
        logger.warning("%s", warning)
    return loaded.documents
