"""Reranking: the fused hits of a search reordered by a model that reads question and passage together.

One protocol (:class:`~jisik.retrieve.rerank.base.Reranker`), one file per backend — a cross-encoder from a
local folder, an LLM through jisik's LLM backends — and the two functions that pick one:
:func:`parse_rerank_spec` and :func:`create_reranker`. Backends are registered by name in
:data:`jisik.registry.rerankers` (plugins through the ``jisik.rerankers`` entry-point group) and import their
heavy dependencies only when created. Off by default (``[rerank] backend = "none"``): see docs/rerank.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jisik.errors import ConfigError
from jisik.registry import rerankers
from jisik.retrieve.rerank.base import RerankCost, Reranker, passage_text, reorder, rerank_by_scores

if TYPE_CHECKING:
    from jisik.config import RerankConfig
    from jisik.retrieve.rerank.factories import LLMResolver

__all__ = [
    "RerankCost",
    "Reranker",
    "create_reranker",
    "parse_rerank_spec",
    "passage_text",
    "reorder",
    "rerank_by_scores",
    "spec_forms",
]

SPEC_FORMS = ("none", "cross-encoder:/path/to/model-folder", "llm (the [llm] model)", "llm:LLM-SPEC (e.g. "
              "llm:ollama:qwen2.5:7b, llm:llamacpp:/models/m.gguf)", "llm-listwise:LLM-SPEC")
_BUILT_IN = frozenset(form.partition(":")[0].partition(" ")[0] for form in SPEC_FORMS)


def spec_forms() -> list[str]:
    """The ``--rerank`` forms: jisik's own, then ``NAME:MODEL`` for each backend added by a plugin."""
    return [*SPEC_FORMS, *(f"{name}:MODEL" for name in rerankers.names() if name not in _BUILT_IN)]


def parse_rerank_spec(spec: str) -> dict[str, Any]:
    """Turn a ``--rerank`` value into :class:`~jisik.config.RerankConfig` field overrides.

    ``BACKEND:MODEL`` for any registered backend (the model is a folder, or for ``llm`` an LLM spec,
    colons and all); a bare ``BACKEND`` keeps the configured model.

    >>> parse_rerank_spec("none"), parse_rerank_spec("llm")
    ({'backend': 'none'}, {'backend': 'llm'})
    >>> parse_rerank_spec("cross-encoder:/models/bge-reranker-v2-m3")
    {'backend': 'cross-encoder', 'model': '/models/bge-reranker-v2-m3'}
    >>> parse_rerank_spec("llm:openai:http://localhost:8000/v1#qwen")
    {'backend': 'llm', 'model': 'openai:http://localhost:8000/v1#qwen'}
    >>> parse_rerank_spec("bert")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    jisik.errors.ConfigError: unknown --rerank value 'bert' (use none, cross-encoder:/path/to/model-folder, ...
    """
    backend, sep, model = spec.strip().partition(":")
    backend = backend.strip().lower()
    if backend not in rerankers or (sep and not model.strip()) or (backend == "none" and sep):
        raise ConfigError(f"unknown --rerank value {spec!r} (use {', '.join(spec_forms())})",
                          hint="for example: --rerank cross-encoder:/models/bge-reranker-v2-m3")
    return {"backend": backend, "model": model.strip()} if sep else {"backend": backend}


def create_reranker(config: RerankConfig, *, resolve_llm: LLMResolver | None = None) -> Reranker | None:
    """The reranker ``config`` names, or None for ``"none"``. Models load here, once: keep the returned object.

    ``resolve_llm`` maps an LLM spec (None: the default LLM) to an LLM object — the knowledge base passes
    its own, so the llm reranker and the answers share one model; without it a spec is created here.
    Raises :class:`ConfigError` for an unknown backend (listing the known ones) or a missing setting.
    """
    if config.backend == "none":
        return None
    reranker: Reranker = rerankers.get(config.backend)(config, resolve_llm=resolve_llm)
    return reranker
