"""sentence-transformers with a local model folder (extra: ``pip install 'jisik[st]'``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jisik._lazy import require
from jisik.embed.base import Vectors
from jisik.errors import ConfigError


class SentenceTransformerEmbedder:
    """Loads a model from a local folder only; nothing is fetched from a hub."""

    def __init__(self, model_path: str, *, batch_size: int = 32, query_prefix: str = "",
                 passage_prefix: str = "", device: str = "cpu") -> None:
        if not Path(model_path).exists():
            raise ConfigError(f"sentence-transformers model folder not found: {model_path}",
                              hint="set embedder.model to a local model folder")
        st = require("sentence_transformers", extra="st")
        self._model: Any = st.SentenceTransformer(model_path, device=device, local_files_only=True)
        self.model = Path(model_path).name
        # sentence-transformers 6 renamed the method; older releases only have the long name.
        get_dim = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.batch_size = batch_size
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix

    def _encode(self, texts: Sequence[str], prefix: str) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode([prefix + t for t in texts], batch_size=self.batch_size,
                                     normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, self.passage_prefix)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, self.query_prefix)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        tokenizer = self._model.tokenizer
        return [len(tokenizer.encode(t)) for t in texts]
