"""Ollama's native ``/api/embed`` endpoint."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jisik.embed._http import post_json
from jisik.embed.base import Vectors, check_dimension, l2_normalize
from jisik.errors import EmbeddingError


class OllamaEmbedder:
    """Embeds with a model served by Ollama (``ollama pull NAME`` first)."""

    def __init__(self, model: str, *, base_url: str = "http://localhost:11434", dim: int | None = None,
                 batch_size: int = 32, timeout: float = 120.0, query_prefix: str = "",
                 passage_prefix: str = "") -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.batch_size = batch_size
        self.timeout = timeout
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.dim = dim if dim is not None else int(self._request(["dimension probe"]).shape[1])

    def _request(self, texts: list[str]) -> Vectors:
        url = f"{self.base_url}/api/embed"
        try:
            answer = post_json(url, {"model": self.model, "input": texts}, timeout=self.timeout,
                               service="Ollama", start_hint="start it with `ollama serve`")
        except EmbeddingError as exc:
            if "HTTP 404" in exc.message:
                raise EmbeddingError(f"Ollama has no model '{self.model}'",
                                     hint=f"ollama pull {self.model}") from exc
            raise
        vectors = answer.get("embeddings") if isinstance(answer, dict) else None
        if not isinstance(vectors, list) or len(vectors) != len(texts):
            raise EmbeddingError(f"unexpected answer from {url}: {str(answer)[:200]}")
        return l2_normalize(np.asarray(vectors, dtype=np.float32))

    def _encode(self, texts: Sequence[str], prefix: str) -> Vectors:
        parts = [self._request([prefix + t for t in texts[i : i + self.batch_size]])
                 for i in range(0, len(texts), self.batch_size)]
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return check_dimension(np.vstack(parts), self.dim, "Ollama")

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, self.passage_prefix)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, self.query_prefix)
