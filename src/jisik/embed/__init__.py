"""Embedding backends behind one protocol; :func:`create_embedder` builds one from config.

Backends are registered by name in :data:`jisik.registry.embedders`: jisik's own in
:mod:`jisik.embed.factories`, others by plugins through the ``jisik.embedders`` entry-point group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jisik.embed.base import Embedder, TokenCounter, Vectors, l2_normalize
from jisik.registry import embedders

if TYPE_CHECKING:
    from jisik.config import EmbedderConfig

__all__ = ["Embedder", "TokenCounter", "Vectors", "create_embedder", "l2_normalize"]


def create_embedder(config: EmbedderConfig) -> Embedder:
    """Build the embedder an :class:`~jisik.config.EmbedderConfig` describes (imports lazily).

    Raises :class:`~jisik.errors.ConfigError` for an unknown backend (listing the known ones), a
    missing setting, or a plugin that cannot be imported.
    """
    return embedders.get(config.backend)(config)
