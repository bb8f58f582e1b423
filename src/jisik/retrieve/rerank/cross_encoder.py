"""A cross-encoder reranker from a local model folder: sentence-transformers ``CrossEncoder`` (``jisik[st]``).

The folder is a Hugging Face sequence-classification model with one output (a relevance logit) or two
(not relevant / relevant), e.g. ``BAAI/bge-reranker-v2-m3`` downloaded beforehand (docs/rerank.md).
Nothing is fetched from a hub: the folder must hold the weights and the tokenizer.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jisik._lazy import require
from jisik.errors import ConfigError
from jisik.records import Hit
from jisik.retrieve.rerank.base import RerankCost, rerank_by_scores

# 512 tokens hold a question and an 800-character chunk (about 200-250 tokens, [chunking] size) with room
# to spare, and is the limit most rerankers were trained with (ms-marco MiniLM, bge-reranker, ko-reranker).
DEFAULT_MAX_LENGTH = 512


def check_cross_encoder_folder(path: Path) -> dict[str, Any]:
    """The folder's ``config.json``, or a :class:`ConfigError` saying why it is not a cross-encoder.

    A bi-encoder folder (a sentence-transformers embedding model) has a plain ``BertModel``-like
    architecture: loading it as a cross-encoder would add an untrained classifier and rank at random.
    """
    if not path.is_dir():
        raise ConfigError(f"cross-encoder model folder not found: {path}",
                          hint="set rerank.model (or --rerank cross-encoder:FOLDER) to a downloaded model folder, "
                               "see docs/rerank.md")
    config_file = path / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} holds no readable config.json ({type(exc).__name__}): not a Hugging Face model "
                          "folder", hint="point rerank.model at the folder that holds config.json, the weights and "
                                         "the tokenizer") from exc
    architectures = config.get("architectures") or []
    if not any(str(name).endswith("ForSequenceClassification") for name in architectures):
        found = ", ".join(map(str, architectures)) or "none named"
        raise ConfigError(f"{path} is not a cross-encoder (architecture: {found}; a reranker is a "
                          "…ForSequenceClassification model)",
                          hint="use a reranker such as BAAI/bge-reranker-v2-m3 or "
                               "cross-encoder/ms-marco-MiniLM-L-6-v2; an embedding model belongs in [embedder]")
    labels = int(config.get("num_labels") or len(config.get("id2label") or {}) or 1)
    if labels > 2:
        raise ConfigError(f"{path} has {labels} output labels; a reranker has 1 (a relevance score) or 2",
                          hint="use a relevance model (docs/rerank.md lists some)")
    return dict(config)


class CrossEncoderReranker:
    """Scores each (question, passage) pair with a cross-encoder; batches every pair of a search batch.

    Scores are the model's relevance probability: sentence-transformers' sigmoid of the logit for a
    one-output model, the softmax probability of "relevant" for a two-output one.
    ``threads`` sets torch's CPU threads (a process-wide setting, as for the transformers LLM backend).
    """

    def __init__(self, model_path: str | Path, *, batch_size: int = 32, max_length: int = DEFAULT_MAX_LENGTH,
                 threads: int | None = None, device: str = "cpu") -> None:
        path = Path(model_path).expanduser()
        check_cross_encoder_folder(path)
        st = require("sentence_transformers", extra="st")
        if threads:
            require("torch", extra="st").set_num_threads(threads)
        try:
            self._model: Any = st.CrossEncoder(str(path), device=device, local_files_only=True,
                                               max_length=max_length)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"sentence-transformers could not load the cross-encoder in {path}: {exc}",
                              hint="the folder needs the weights (model.safetensors) and tokenizer files") from exc
        self.name = f"cross-encoder:{path}"
        self.model_path = path
        self.batch_size = batch_size
        self.max_length = max_length
        self.labels = int(self._model.num_labels)
        self.cost = RerankCost()
        self._lock = threading.Lock()  # one forward pass at a time: torch already uses every thread it was given

    def rerank_batch(self, queries: Sequence[str], hits: Sequence[Sequence[Hit]]) -> list[list[Hit]]:
        with self.cost.timed(len(queries)):
            return rerank_by_scores(queries, hits, self.score_pairs)

    def score_pairs(self, pairs: list[tuple[str, str]]) -> list[float]:
        """Relevance of each (question, passage) pair, in [0, 1]."""
        if not pairs:
            return []
        with self._lock:
            if self.labels == 1:
                scores = self._model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
                values = [float(s) for s in scores]
            else:
                scores = self._model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False,
                                             apply_softmax=True)
                values = [float(row[-1]) for row in scores]
            tokens = self._count_tokens(pairs)
        self.cost.add(calls=math.ceil(len(pairs) / self.batch_size), pairs=len(pairs), prompt_tokens=tokens)
        return values

    def _count_tokens(self, pairs: list[tuple[str, str]]) -> int:
        """Tokens the model read (after truncation): the cost that grows with chunk size and candidates."""
        tokenizer = self._model.tokenizer
        encoded = tokenizer([q for q, _ in pairs], [p for _, p in pairs], truncation=True,
                            max_length=self.max_length)
        return sum(len(ids) for ids in encoded["input_ids"])
