"""Per-user folders jisik keeps outside knowledge bases."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The jisik cache folder (not created here): ``$JISIK_CACHE_DIR``, else ``$XDG_CACHE_HOME/jisik``, else
    ``~/.cache/jisik``. Holds the e5 engine's built graphs, llama.cpp's GGUF converter and dequantised GGUF models.

    >>> os.environ["JISIK_CACHE_DIR"] = "/tmp/jisik-cache"; str(cache_dir())
    '/tmp/jisik-cache'
    >>> del os.environ["JISIK_CACHE_DIR"]
    """
    if env := os.environ.get("JISIK_CACHE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jisik"
