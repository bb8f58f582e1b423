"""Where training runs and in what precision, and what it will cost before it starts.

Rules that come from failures users report, not taste:

- QLoRA (4-bit nf4 weights through bitsandbytes) needs CUDA; on a CPU it is refused with the alternative named.
- DPO in fp16 is refused: its loss is a log-sigmoid of log-probability *differences*, which fp16's 10-bit
  mantissa rounds to zero (zero loss) or overflows (NaN) — the most common DPO failure report. bf16 or fp32.
- ``auto`` picks bf16 on a GPU that has it, fp16 (SFT only) on an older GPU, fp32 on a CPU (bf16 matrix products
  on CPUs without AMX are slower than fp32).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Literal

from jisik.errors import ConfigError
from jisik.tune import _deps

DeviceChoice = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Purpose = Literal["sft", "dpo", "reward", "classify", "embed"]


@dataclass(frozen=True)
class Hardware:
    """The device training will use: ``cpu``, ``cuda`` or ``mps``, its name, memory and bf16 support."""

    device: str
    name: str
    memory_bytes: int | None
    bf16: bool


def detect(requested: DeviceChoice = "auto") -> Hardware:
    """The device for ``requested``; ``auto`` takes CUDA, then Apple's MPS, then the CPU."""
    torch = _deps.torch()
    cuda = bool(torch.cuda.is_available())
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if requested == "cuda" and not cuda:
        raise ConfigError("--device cuda was asked for, but PyTorch sees no CUDA GPU",
                          hint="use --device cpu (small models), or install a CUDA build of torch on a GPU machine")
    if requested == "mps" and not mps:
        raise ConfigError("--device mps was asked for, but this PyTorch has no Apple GPU", hint="use --device cpu")
    device = requested if requested != "auto" else ("cuda" if cuda else "mps" if mps else "cpu")
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        return Hardware("cuda", str(props.name), int(props.total_memory), bool(torch.cuda.is_bf16_supported()))
    if device == "mps":
        return Hardware("mps", "Apple GPU", None, False)
    return Hardware("cpu", _cpu_name(), _total_memory(), False)


def resolve_precision(hardware: Hardware, precision: Precision, purpose: Purpose) -> str:
    """The precision to train in: ``fp32``, ``bf16`` or ``fp16``.

    >>> cpu = Hardware("cpu", "x86", None, False)
    >>> resolve_precision(cpu, "auto", "sft")
    'fp32'
    >>> resolve_precision(Hardware("cuda", "V100", None, False), "auto", "dpo")
    'fp32'
    >>> resolve_precision(Hardware("cuda", "H100", None, True), "auto", "dpo")
    'bf16'
    """
    if precision == "fp16" and purpose in ("dpo", "reward"):
        raise ConfigError(f"{purpose.upper()} in fp16 is refused: the log-probability differences it trains on "
                          "round to zero or overflow in fp16 (zero or NaN loss)",
                          hint="use --precision bf16 on a GPU that has it, or --precision fp32")
    if precision == "fp16" and hardware.device == "cpu":
        raise ConfigError("fp16 training needs a GPU", hint="use --precision fp32 (or bf16) on a CPU")
    if precision == "bf16" and hardware.device == "cuda" and not hardware.bf16:
        raise ConfigError(f"{hardware.name} has no bf16", hint="use --precision fp32 (or fp16 for SFT)")
    if precision != "auto":
        return precision
    if hardware.device == "cuda":
        if hardware.bf16:
            return "bf16"
        return "fp32" if purpose in ("dpo", "reward") else "fp16"
    return "fp32"


def check_qlora(hardware: Hardware) -> None:
    """Refuse QLoRA where bitsandbytes' 4-bit kernels cannot run, naming what to do instead."""
    if hardware.device != "cuda":
        raise ConfigError(f"QLoRA (4-bit nf4 weights through bitsandbytes) needs a CUDA GPU; this run is on "
                          f"{hardware.device} ({hardware.name})",
                          hint="drop --qlora to train plain LoRA here (fine for models up to ~1B parameters), "
                               "or run on a machine with an NVIDIA GPU")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ConfigError("QLoRA needs bitsandbytes, which is not installed",
                          hint="pip install bitsandbytes (on the GPU machine)") from None


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes for weights, trainable state (gradients + two AdamW moments + an fp32 master copy), activations."""

    weights: int
    trainable_state: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.trainable_state + self.activations


def estimate_memory(*, params: int, trainable: int, weight_bytes: float, batch: int, seq_len: int, hidden: int,
                    layers: int, vocab: int) -> MemoryEstimate:
    """A planning estimate of peak training memory (the measured peak lands within about ±40%).

    Activations: about 18 stored values per token per hidden unit per layer (attention and MLP inputs,
    norms, the MLP's 4x-wide intermediate) in the compute dtype (4 bytes), plus the logits in fp32 twice
    (forward and their gradient), which dominate small models with big vocabularies.

    >>> e = estimate_memory(params=135_000_000, trainable=1_000_000, weight_bytes=4, batch=2, seq_len=512,
    ...                     hidden=576, layers=30, vocab=49152)
    >>> round(e.weights / 2**20), round(e.trainable_state / 2**20), round(e.activations / 2**20)
    (515, 15, 1599)
    """
    tokens = batch * seq_len
    activations = tokens * hidden * layers * 18 * 4 + tokens * vocab * 4 * 2
    return MemoryEstimate(weights=int(params * weight_bytes), trainable_state=trainable * 16,
                          activations=activations)


def measured_flops(seconds: float = 0.3) -> float:
    """This machine's sustained fp32 matrix-product rate (FLOP/s), measured with torch for about ``seconds``."""
    torch = _deps.torch()
    n = 512
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.matmul(a, b)  # warm-up: thread pool, page faults
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        torch.matmul(a, b)
        done += 1
    return 2 * n**3 * done / (time.perf_counter() - started)


def estimate_seconds(*, params: int, tokens: int, flops_per_second: float, full: bool,
                     efficiency: float = 0.35) -> float:
    """Training time from the usual 6·N FLOPs per token (2N forward, 4N backward) — 4·N with adapters,
    whose frozen weights need no weight gradients — at ``efficiency`` of the measured matrix-product rate
    (attention, norms and the optimizer run below peak).

    >>> round(estimate_seconds(params=135_000_000, tokens=100_000, flops_per_second=1e11, full=False))
    1543
    """
    per_token = (6 if full else 4) * params
    return per_token * tokens / (flops_per_second * efficiency)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _total_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
