"""A GGUF model run in this process by llama.cpp (``pip install 'jisik[llamacpp]'``).

The model is loaded once, when the backend is created; calls are serialised with a lock, because a
``llama_cpp.Llama`` holds one KV cache and is not safe to use from two threads at once. Token counts
are exact: the model's own tokenizer counts them.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from jisik._lazy import require
from jisik.errors import ConfigError, LLMResponseError
from jisik.generate.llms.base import Completion, GenerationOptions, Message, StreamChunk
from jisik.generate.llms.llamacpp_check import check_llamacpp_build

# Used when llm.context_window is not set: the model's trained context, capped here because llama.cpp
# allocates the KV cache for the whole window up front (128k tokens cost gigabytes).
CONTEXT_CAP = 8192

_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_context_length(path: str | Path) -> int | None:
    """``<arch>.context_length`` from a GGUF file's header, without loading the model (None if absent).

    GGUF v2/v3 layout: magic ``GGUF``, version (u32), tensor count (u64), key/value count (u64), then
    key/value pairs (key: u64 length + UTF-8; value: u32 type + payload).
    """
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            return None
        version, _tensors, count = struct.unpack("<IQQ", f.read(20))
        if version < 2:
            return None
        arch: str | None = None
        lengths: dict[str, int] = {}
        for _ in range(count):
            key = _gguf_string(f)
            (kind,) = struct.unpack("<I", f.read(4))
            value = _gguf_value(f, kind)
            if key == "general.architecture" and isinstance(value, str):
                arch = value
            elif key.endswith(".context_length") and isinstance(value, int):
                lengths[key] = value
            if arch is not None and f"{arch}.context_length" in lengths:
                return lengths[f"{arch}.context_length"]
        return next(iter(lengths.values()), None)


def _gguf_string(f: IO[bytes]) -> str:
    (n,) = struct.unpack("<Q", f.read(8))
    return f.read(n).decode("utf-8", "replace")


def _gguf_value(f: IO[bytes], kind: int) -> Any:
    if kind in _GGUF_SCALARS:
        fmt = _GGUF_SCALARS[kind]
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
    if kind == _GGUF_STRING:
        return _gguf_string(f)
    if kind == _GGUF_ARRAY:
        item, n = struct.unpack("<IQ", f.read(12))
        if item in _GGUF_SCALARS:
            f.seek(n * struct.calcsize(_GGUF_SCALARS[item]), os.SEEK_CUR)
        else:
            for _ in range(n):
                _gguf_value(f, item)
        return None
    raise ValueError(f"unknown GGUF value type {kind}")


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (and loading its native library)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: sys.modules holds None for it (import blocked)
        return False


class _Usage:
    """A llama.cpp logits processor that only watches: the first call sees the whole prompt."""

    def __init__(self) -> None:
        self.prompt_tokens: int | None = None
        self.steps = 0

    def __call__(self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]) -> npt.NDArray[np.single]:
        if self.prompt_tokens is None:
            self.prompt_tokens = len(input_ids)
        self.steps += 1
        return scores


class LlamaCppLLM:
    """A local GGUF chat model. The chat template is the one stored in the GGUF file.

    ``context_window``: as configured, else the model's trained context capped at 8192.
    ``threads``: CPU threads (llama.cpp's default: about half the cores).
    """

    exact_tokens = True

    def __init__(self, model_path: str | Path, *, context_window: int | None = None, threads: int | None = None,
                 seed: int | None = 0, chat_format: str | None = None, verbose: bool = False) -> None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ConfigError(f"GGUF model file not found: {path}",
                              hint="set llm.model (or --llm llamacpp:PATH) to an existing .gguf file")
        if not _installed("llama_cpp"):
            require("llama_cpp", extra="llamacpp", package="llama-cpp-python")  # raises, naming the extra
        check_llamacpp_build()  # before the import: a build this CPU cannot run would kill the process
        llama_cpp = require("llama_cpp", extra="llamacpp", package="llama-cpp-python")
        try:
            trained = gguf_context_length(path)
        except (OSError, ValueError, struct.error) as exc:
            raise ConfigError(f"{path} is not a readable GGUF file: {exc}",
                              hint="llama.cpp needs a .gguf model file") from exc
        if trained is None and context_window is None:
            raise ConfigError(f"{path} is not a GGUF model file (or names no context length)",
                              hint="use a .gguf model, or set llm.context_window")
        self.context_window = context_window or min(trained or CONTEXT_CAP, CONTEXT_CAP)
        self.model_path = path
        self.name = f"llamacpp:{path}"
        kwargs: dict[str, Any] = {"n_ctx": self.context_window, "verbose": verbose}
        if threads:
            kwargs["n_threads"] = kwargs["n_threads_batch"] = threads
        if seed is not None:
            kwargs["seed"] = seed
        if chat_format:
            kwargs["chat_format"] = chat_format
        try:
            self._llm = llama_cpp.Llama(str(path), **kwargs)
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"llama.cpp could not load {path}: {exc}",
                              hint="is the file a complete GGUF model this llama-cpp-python supports?") from exc
        self._lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        with self._lock:
            return [len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0
                    for text in texts]

    def generate(self, messages: Sequence[Message], options: GenerationOptions) -> Completion:
        with self._lock:
            answer = self._llm.create_chat_completion(**self._kwargs(messages, options), stream=False)
        try:
            choice = answer["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMResponseError(f"unexpected answer from llama.cpp: {str(answer)[:200]}") from exc
        usage = answer.get("usage") or {}
        return Completion(str(text), prompt_tokens=usage.get("prompt_tokens"),
                          completion_tokens=usage.get("completion_tokens"),
                          finish_reason=choice.get("finish_reason"), raw=dict(answer))

    def stream(self, messages: Sequence[Message], options: GenerationOptions) -> Iterator[StreamChunk]:
        usage = _Usage()
        finish: str | None = None
        parts: list[str] = []
        with self._lock:
            chunks = self._llm.create_chat_completion(**self._kwargs(messages, options), stream=True,
                                                      logits_processor=[usage])
            for chunk in chunks:
                choice = chunk["choices"][0]
                text = choice.get("delta", {}).get("content")
                if text:
                    parts.append(text)
                    yield StreamChunk(text)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
            # llama.cpp's stream reports no usage: the prompt size comes from the logits processor, the
            # answer's from the tokenizer (sampling steps would also count a final end-of-turn token)
            completion = len(self._llm.tokenize("".join(parts).encode("utf-8"), add_bos=False, special=False))
        yield StreamChunk("", done=True, prompt_tokens=usage.prompt_tokens, completion_tokens=completion,
                          finish_reason=finish)

    def close(self) -> None:
        """Free the model's memory now rather than when the object is collected."""
        with self._lock:
            self._llm.close()

    @staticmethod
    def _kwargs(messages: Sequence[Message], options: GenerationOptions) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"messages": [m.to_dict() for m in messages], "temperature": options.temperature,
                                  "max_tokens": options.max_tokens, "stop": list(options.stop)}
        if options.top_p is not None:
            kwargs["top_p"] = options.top_p
        if options.top_k is not None:
            kwargs["top_k"] = options.top_k
        if options.seed is not None:
            kwargs["seed"] = options.seed
        return kwargs
