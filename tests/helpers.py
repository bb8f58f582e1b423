"""Helpers shared by the CLI tests: the hashing-embedder environment and real `jisik` processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# The hashing embedder (a named fake) through JISIK_EMBEDDER__*: fast knowledge bases for CLI tests.
FAKE_EMBEDDER = {"JISIK_EMBEDDER__BACKEND": "hashing", "JISIK_EMBEDDER__DIM": "64"}


def run_jisik(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
              stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `jisik` command as a user would, capturing its output."""
    jisik = Path(sys.executable).with_name("jisik")
    return subprocess.run([str(jisik), *args], capture_output=True, text=True, timeout=300, input=stdin,
                          env={**os.environ, **(env or {})}, cwd=cwd)
