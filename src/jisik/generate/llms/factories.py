"""jisik's own LLM backends, as factories ``(LLMConfig) -> LLM``.

Registered by name in :data:`jisik.registry.llms` (``[llm] backend``, ``--llm NAME:…``); each imports
its backend module only when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jisik.errors import ConfigError

if TYPE_CHECKING:
    from jisik.config import LLMConfig
    from jisik.generate.llms.base import LLM


def extractive(config: LLMConfig) -> LLM:
    """Not an LLM: the answerer quotes sentences itself. Registered so ``llm.backend`` accepts the name."""
    raise ConfigError("the extractive answerer is not an LLM backend",
                      hint="answer extractively without create_llm, or set llm.backend to an LLM")


def ollama(config: LLMConfig) -> LLM:
    from jisik.generate.llms.ollama import OllamaLLM

    return OllamaLLM(_required(config.model, "ollama", "NAME"), url=config.url, context_window=config.context_window,
                     timeout=config.timeout)


def openai(config: LLMConfig) -> LLM:
    from jisik.generate.llms.openai import OpenAILLM

    if config.model is None and config.url is None:
        raise ConfigError("llm.model is required for the openai backend",
                          hint="--llm openai:gpt-4o-mini or --llm openai:http://HOST:PORT/v1#MODEL")
    return OpenAILLM(config.model, url=config.url, api_key_env=config.api_key_env,
                     context_window=config.context_window, timeout=config.timeout)


def llamacpp(config: LLMConfig) -> LLM:
    from jisik.generate.llms.llamacpp import LlamaCppLLM

    return LlamaCppLLM(_required(config.model, "llamacpp", "/path/model.gguf"), context_window=config.context_window,
                       threads=config.threads, seed=config.seed)


def transformers(config: LLMConfig) -> LLM:
    from jisik.generate.llms.transformers import TransformersLLM

    return TransformersLLM(_required(config.model, "transformers", "/path/to/folder"),
                           context_window=config.context_window, threads=config.threads)


def _required(model: str | None, backend: str, example: str) -> str:
    if not model:
        raise ConfigError(f"llm.model is required for the {backend} backend",
                          hint=f"set llm.model in jisik.toml or pass --llm {backend}:{example}")
    return model
