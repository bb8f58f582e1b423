"""The enumerated settings, named once.

The config fields (:mod:`jisik.config`) and the CLI options use these, so a value the CLI offers
is always one jisik.toml accepts, and the reverse. No imports: the CLI loads this for ``--help``.
"""

from __future__ import annotations

from typing import Literal

SearchMode = Literal["dense", "bm25", "hybrid", "mmr"]
Fusion = Literal["adaptive", "weighted", "rrf"]
Chain = Literal["stuff", "map_reduce", "refine"]
AnswerLanguage = Literal["auto", "ko", "en"]
MemoryKind = Literal["buffer", "window", "tokens", "summary"]
HeaderField = Literal["title", "file", "section", "page"]
