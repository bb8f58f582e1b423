"""Versioned index files written atomically: a JSON header names format, version and generation."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1


def write_header(folder: Path, file_format: str, generation: int, **extra: Any) -> None:
    """Write ``header.json`` last, via a temp file and rename, so a present header means a complete folder."""
    header = {"format": f"jisik-{file_format}", "version": FORMAT_VERSION, "generation": generation, **extra}
    tmp = folder / "header.json.tmp"
    tmp.write_text(json.dumps(header), encoding="utf-8")
    os.replace(tmp, folder / "header.json")


def read_header(folder: Path, file_format: str) -> dict[str, Any] | None:
    """Return the header if the folder holds a complete index of this kind and version, else None."""
    try:
        header: dict[str, Any] = json.loads((folder / "header.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if header.get("format") != f"jisik-{file_format}" or header.get("version") != FORMAT_VERSION:
        return None
    return header


def swap_folder(staging: Path, target: Path) -> None:
    """Replace ``target`` with ``staging``. A crash in between leaves either the old folder or none,
    never a mix, and a missing index is rebuilt from SQLite on the next open."""
    old = target.with_name(target.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    if old.exists():
        shutil.rmtree(old)
