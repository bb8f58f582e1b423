"""LLM backends, one file each, and the two functions that pick one: :func:`parse_llm_spec`, :func:`create_llm`.

Backends are registered by name in :data:`jisik.registry.llms` (jisik's own in
:mod:`jisik.generate.llms.factories`, others by plugins through the ``jisik.llms`` entry-point group)
and import their heavy dependencies only when created, so importing this package is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jisik.errors import ConfigError
from jisik.generate.llms.base import LLM, Completion, GenerationOptions, Message, StreamChunk, collect
from jisik.registry import llms

if TYPE_CHECKING:
    from jisik.config import LLMConfig

__all__ = ["LLM", "Completion", "GenerationOptions", "Message", "StreamChunk", "collect", "create_llm",
           "parse_llm_spec", "spec_forms"]

SPEC_FORMS = ("extractive", "ollama:MODEL (e.g. ollama:qwen2.5:7b)", "openai:MODEL (api.openai.com)",
              "openai:URL#MODEL (e.g. openai:http://localhost:8000/v1#my-model)", "llamacpp:/path/model.gguf",
              "transformers:/path/to/model-folder")


_BUILT_IN = frozenset(form.partition(":")[0] for form in SPEC_FORMS)


def spec_forms() -> list[str]:
    """The ``--llm`` forms: jisik's own, then ``NAME:MODEL`` for each backend added by a plugin."""
    return [*SPEC_FORMS, *(f"{name}:MODEL" for name in llms.names() if name not in _BUILT_IN)]


def parse_llm_spec(spec: str) -> dict[str, Any]:
    """Turn a command-line ``--llm`` value into :class:`~jisik.config.LLMConfig` field overrides.

    ``BACKEND:MODEL`` for any registered backend (plugins' too); ``BACKEND:URL#MODEL`` (or a bare
    ``BACKEND:URL``) also sets the server URL; ``extractive`` stands alone.

    >>> parse_llm_spec("extractive")
    {'backend': 'extractive'}
    >>> parse_llm_spec("ollama:qwen2.5:7b")
    {'backend': 'ollama', 'model': 'qwen2.5:7b'}
    >>> parse_llm_spec("openai:http://localhost:8000/v1#my-model")
    {'backend': 'openai', 'url': 'http://localhost:8000/v1', 'model': 'my-model'}
    >>> parse_llm_spec("openai:http://localhost:8000/v1")
    {'backend': 'openai', 'url': 'http://localhost:8000/v1'}
    >>> parse_llm_spec("openai:gpt-4o-mini")
    {'backend': 'openai', 'model': 'gpt-4o-mini'}
    >>> parse_llm_spec("llamacpp:/models/model.gguf")
    {'backend': 'llamacpp', 'model': '/models/model.gguf'}
    >>> parse_llm_spec("transformers:/path/to/folder")
    {'backend': 'transformers', 'model': '/path/to/folder'}
    >>> parse_llm_spec("ollama:http://gpu-box:11434#qwen2.5:7b")  # any backend: URL#MODEL sets the server too
    {'backend': 'ollama', 'url': 'http://gpu-box:11434', 'model': 'qwen2.5:7b'}
    >>> parse_llm_spec("gpt4")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    jisik.errors.ConfigError: unknown --llm value 'gpt4' (use extractive, ollama:MODEL ...
    """
    text = spec.strip()
    backend, sep, rest = text.partition(":")
    backend = backend.lower()
    if backend == "extractive" and not rest:
        return {"backend": "extractive"}
    if not sep or not rest or backend == "extractive" or backend not in llms:
        raise ConfigError(f"unknown --llm value {spec!r} (use {', '.join(spec_forms())})",
                          hint="for example: --llm ollama:qwen2.5:7b")
    if rest.lower().startswith(("http://", "https://")):
        url, _, model = rest.partition("#")
        out: dict[str, Any] = {"backend": backend, "url": url}
        if model:
            out["model"] = model
        return out
    return {"backend": backend, "model": rest}


def create_llm(config: LLMConfig) -> LLM:
    """The backend ``config`` names. Heavy models load here, once: keep the returned object.

    Raises :class:`ConfigError` for ``extractive`` (it is not an LLM: the caller answers without
    one), for an unknown backend (listing the known ones) and when a required setting is missing,
    naming the key.
    """
    return llms.get(config.backend)(config)
