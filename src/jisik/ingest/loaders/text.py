"""Plain text (``.txt``): one document, one segment, encoding detected."""

from __future__ import annotations

from jisik.config import LoaderConfig
from jisik.ingest.loaders.base import Loaded, Source, TextBuilder, single
from jisik.ingest.loaders.encoding import decode_bytes


def load_text(src: Source, config: LoaderConfig) -> Loaded:
    """The whole file as one segment; the title is the file name (plain text has no markup for one)."""
    decoded = decode_bytes(src.data, encoding=config.encoding, path=src.rel)
    builder = TextBuilder()
    builder.add(decoded.text)
    return single(src, builder, title=None, metadata={"encoding": decoded.encoding})
