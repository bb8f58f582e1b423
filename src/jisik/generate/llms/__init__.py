"""LLM backends, one file each, and the two functions that pick one: :func:`parse_llm_spec`, :func:`create_llm`.

Backends import their heavy dependencies only when created, so importing this package is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jisik.errors import ConfigError
from jisik.generate.llms.base import LLM, Completion, GenerationOptions, Message, StreamChunk, collect

if TYPE_CHECKING:
    from jisik.config import LLMConfig

__all__ = ["LLM", "Completion", "GenerationOptions", "Message", "StreamChunk", "collect", "create_llm",
           "parse_llm_spec"]

SPEC_FORMS = ("extractive", "ollama:MODEL (e.g. ollama:qwen2.5:7b)", "openai:MODEL (api.openai.com)",
              "openai:URL#MODEL (e.g. openai:http://localhost:8000/v1#my-model)", "llamacpp:/path/model.gguf",
              "transformers:/path/to/model-folder")


def parse_llm_spec(spec: str) -> dict[str, Any]:
    """Turn a command-line ``--llm`` value into :class:`~jisik.config.LLMConfig` field overrides.

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
    >>> parse_llm_spec("gpt4")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    jisik.errors.ConfigError: unknown --llm value 'gpt4' (use extractive, ollama:MODEL ...
    """
    text = spec.strip()
    backend, sep, rest = text.partition(":")
    backend = backend.lower()
    if backend == "extractive" and not rest:
        return {"backend": "extractive"}
    if not sep or not rest or backend not in ("ollama", "openai", "llamacpp", "transformers"):
        raise ConfigError(f"unknown --llm value {spec!r} (use {', '.join(SPEC_FORMS)})",
                          hint="for example: --llm ollama:qwen2.5:7b")
    if backend == "openai" and rest.lower().startswith(("http://", "https://")):
        url, _, model = rest.partition("#")
        out: dict[str, Any] = {"backend": "openai", "url": url}
        if model:
            out["model"] = model
        return out
    return {"backend": backend, "model": rest}


def create_llm(config: LLMConfig) -> LLM:
    """The backend ``config`` names. Heavy models load here, once: keep the returned object.

    Raises :class:`ConfigError` for ``extractive`` (it is not an LLM: the caller answers without
    one) and when a required setting is missing, naming the key.
    """
    backend = config.backend
    if backend == "extractive":
        raise ConfigError("the extractive answerer is not an LLM backend",
                          hint="answer extractively without create_llm, or set llm.backend to an LLM")
    model = config.model
    if backend == "ollama":
        from jisik.generate.llms.ollama import OllamaLLM

        return OllamaLLM(_required(model, backend, "NAME"), url=config.url, context_window=config.context_window,
                         timeout=config.timeout)
    if backend == "openai":
        from jisik.generate.llms.openai import OpenAILLM

        if model is None and config.url is None:
            raise ConfigError("llm.model is required for the openai backend",
                              hint="--llm openai:gpt-4o-mini or --llm openai:http://HOST:PORT/v1#MODEL")
        return OpenAILLM(model, url=config.url, api_key_env=config.api_key_env,
                         context_window=config.context_window, timeout=config.timeout)
    if backend == "llamacpp":
        from jisik.generate.llms.llamacpp import LlamaCppLLM

        return LlamaCppLLM(_required(model, backend, "/path/model.gguf"), context_window=config.context_window,
                           threads=config.threads, seed=config.seed)
    if backend == "transformers":
        from jisik.generate.llms.transformers import TransformersLLM

        return TransformersLLM(_required(model, backend, "/path/to/folder"), context_window=config.context_window,
                               threads=config.threads)
    raise ConfigError(f"unknown llm.backend {backend!r}", hint=f"use one of: {', '.join(SPEC_FORMS)}")


def _required(model: str | None, backend: str, example: str) -> str:
    if not model:
        raise ConfigError(f"llm.model is required for the {backend} backend",
                          hint=f"set llm.model in jisik.toml or pass --llm {backend}:{example}")
    return model
