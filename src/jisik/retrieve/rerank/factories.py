"""jisik's own reranker backends, as factories ``(RerankConfig, *, resolve_llm=None) -> Reranker``.

Registered by name in :data:`jisik.registry.rerankers` (``[rerank] backend``, ``--rerank NAME:MODEL``); each
imports its backend module only when called. ``resolve_llm`` turns an LLM spec (None: the knowledge base's
``[llm]``) into an LLM object, so a reranker and the answers share one loaded model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jisik.errors import ConfigError

if TYPE_CHECKING:
    from jisik.config import RerankConfig
    from jisik.generate.llms.base import LLM
    from jisik.retrieve.rerank.base import Reranker

LLMResolver = Callable[[str | None], "LLM | None"]


def none(config: RerankConfig, **parts: Any) -> Reranker:
    """Not a reranker: the fused order is kept. Registered so ``rerank.backend`` accepts the name."""
    raise ConfigError("'none' is not a reranker backend", hint="search without reranking, or name a reranker")


def cross_encoder(config: RerankConfig, **parts: Any) -> Reranker:
    from jisik.retrieve.rerank.cross_encoder import CrossEncoderReranker

    if not config.model:
        raise ConfigError("rerank.model is required for the cross-encoder backend",
                          hint="set rerank.model to a local model folder, or --rerank cross-encoder:/path/to/folder")
    return CrossEncoderReranker(config.model, batch_size=config.batch_size, max_length=config.max_length,
                                threads=config.threads)


def llm(config: RerankConfig, *, resolve_llm: LLMResolver | None = None, **parts: Any) -> Reranker:
    return _llm(config, "pointwise", resolve_llm)


def llm_listwise(config: RerankConfig, *, resolve_llm: LLMResolver | None = None, **parts: Any) -> Reranker:
    return _llm(config, "listwise", resolve_llm)


def _llm(config: RerankConfig, method: Any, resolve_llm: LLMResolver | None) -> Reranker:
    from jisik.retrieve.rerank.llm import LLMReranker

    model = (resolve_llm or _create_llm)(config.model)
    if model is None:
        raise ConfigError("the llm reranker needs an LLM, and [llm] is the extractive answerer",
                          hint="set rerank.model to an LLM spec (e.g. 'ollama:qwen2.5:7b', 'llamacpp:/models/m.gguf'), "
                               "or --rerank llm:ollama:qwen2.5:7b")
    return LLMReranker(model, method=method, max_passage_tokens=config.max_length, concurrency=config.batch_size)


def _create_llm(spec: str | None) -> LLM | None:
    from jisik.config import LLMConfig
    from jisik.generate.llms import create_llm, parse_llm_spec

    if not spec:
        return None
    settings = LLMConfig.model_validate(parse_llm_spec(spec))
    return None if settings.backend == "extractive" else create_llm(settings)
