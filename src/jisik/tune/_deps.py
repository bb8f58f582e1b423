"""The ``tune`` extra's imports, each failing with ``pip install 'jisik[tune]'``."""

from __future__ import annotations

from types import ModuleType

from jisik._lazy import require

EXTRA = "tune"


def torch() -> ModuleType:
    return require("torch", extra=EXTRA)


def transformers() -> ModuleType:
    return require("transformers", extra=EXTRA)


def peft() -> ModuleType:
    return require("peft", extra=EXTRA)


def trl() -> ModuleType:
    return require("trl", extra=EXTRA)


def datasets() -> ModuleType:
    return require("datasets", extra=EXTRA)


def require_gguf() -> ModuleType:
    """The ``gguf`` package transformers needs to read GGUF files."""
    return require("gguf", extra=EXTRA)
