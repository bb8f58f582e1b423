"""A local Hugging Face model folder run with transformers (``pip install 'jisik[transformers]'``).

Loads ``AutoTokenizer`` and ``AutoModelForCausalLM`` from the folder only (``local_files_only``:
nothing is downloaded). Prompts use the tokenizer's chat template; a tokenizer without one gets
plain ``role: content`` lines. Streaming runs ``generate`` in a thread and reads a
``TextIteratorStreamer``; greedy decoding when the temperature is 0. Calls are serialised.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from jisik._lazy import require
from jisik.errors import ConfigError, GenerationError
from jisik.generate.llms.base import Completion, GenerationOptions, Message, StreamChunk

# Used when llm.context_window is not set: config.max_position_embeddings, capped (attention memory
# grows with the window; long windows on a CPU are mostly waiting).
CONTEXT_CAP = 8192
UNKNOWN_CONTEXT = 2048


def plain_prompt(messages: Sequence[Message]) -> str:
    """The prompt for a tokenizer without a chat template.

    >>> plain_prompt([Message("system", "Be brief."), Message("user", "Hi")])
    'system: Be brief.\\nuser: Hi\\nassistant:'
    """
    return "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"


class StopTrimmer:
    """Cuts streamed text at the first stop string, holding back what could be the start of one.

    >>> t = StopTrimmer(("END",))
    >>> [t.feed("ab E"), t.feed("NDx"), t.stopped, t.flush()]
    ['ab ', '', True, '']
    >>> t = StopTrimmer(("END",))
    >>> [t.feed("ab E"), t.flush()]
    ['ab ', 'E']
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        self.pending += text
        cuts = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if cuts:
            out, self.pending, self.stopped = self.pending[: min(cuts)], "", True
            return out
        keep = max((k for s in self.stops for k in range(1, len(s)) if self.pending.endswith(s[:k])), default=0)
        out = self.pending[: len(self.pending) - keep]
        self.pending = self.pending[len(self.pending) - keep :]
        return out

    def flush(self) -> str:
        out, self.pending = ("" if self.stopped else self.pending), ""
        return out


class TransformersLLM:
    """A causal language model from a local folder (``config.json``, weights, tokenizer files).

    ``context_window``: as configured, else ``config.max_position_embeddings`` capped at 8192.
    ``threads``: sets torch's CPU threads (a process-wide setting).
    """

    exact_tokens = True

    def __init__(self, model_dir: str | Path, *, context_window: int | None = None, threads: int | None = None,
                 device: str | None = None) -> None:
        path = Path(model_dir).expanduser()
        if not (path / "config.json").is_file():
            raise ConfigError(f"no Hugging Face model folder at {path} (config.json missing)",
                              hint="set llm.model (or --llm transformers:PATH) to a folder saved with save_pretrained")
        self._torch = require("torch", extra="transformers")
        transformers = require("transformers", extra="transformers")
        if threads:
            self._torch.set_num_threads(threads)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"transformers could not load {path}: {exc}",
                              hint="the folder needs config.json, the weights and the tokenizer files") from exc
        if device:
            self.model.to(device)
        self.model.eval()
        self._transformers = transformers
        self.name = f"transformers:{path}"
        trained = getattr(self.model.config, "max_position_embeddings", None)
        self.context_window = context_window or min(trained if isinstance(trained, int) else UNKNOWN_CONTEXT,
                                                    CONTEXT_CAP)
        self._lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self.tokenizer.encode(text, add_special_tokens=False)) if text else 0 for text in texts]

    def prompt_ids(self, messages: Sequence[Message]) -> Any:
        """The prompt as a ``(1, n)`` tensor of token ids, chat template applied."""
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template([m.to_dict() for m in messages], tokenize=False,
                                                      add_generation_prompt=True)
            encoded = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")
        else:
            encoded = self.tokenizer(plain_prompt(messages), return_tensors="pt")
        return encoded["input_ids"].to(self.model.device)

    def generate(self, messages: Sequence[Message], options: GenerationOptions) -> Completion:
        with self._lock:
            input_ids = self.prompt_ids(messages)
            self._seed(options)
            try:
                output = self.model.generate(input_ids, **self._generate_kwargs(input_ids, options))
            except (RuntimeError, ValueError) as exc:
                raise GenerationError(f"transformers generation failed: {exc}") from exc
        new = output[0, input_ids.shape[-1] :]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        cuts = [i for i in (text.find(s) for s in options.stop if s) if i >= 0]
        if cuts:
            text = text[: min(cuts)]
        return Completion(text, prompt_tokens=int(input_ids.shape[-1]), completion_tokens=int(new.shape[-1]),
                          finish_reason=self._finish(new, options, stopped=bool(cuts)))

    def stream(self, messages: Sequence[Message], options: GenerationOptions) -> Iterator[StreamChunk]:
        with self._lock:
            input_ids = self.prompt_ids(messages)
            streamer = self._transformers.TextIteratorStreamer(self.tokenizer, skip_prompt=True,
                                                               skip_special_tokens=True, timeout=600.0)
            result: dict[str, Any] = {}
            cancel = threading.Event()  # set when the caller stops reading: generation ends at the next token

            def run() -> None:
                try:
                    result["output"] = self.model.generate(input_ids, streamer=streamer,
                                                           stopping_criteria=self._cancel_when(cancel),
                                                           **self._generate_kwargs(input_ids, options))
                except BaseException as exc:  # re-raised in the caller's thread
                    result["error"] = exc
                    streamer.end()

            self._seed(options)
            worker = threading.Thread(target=run, name="jisik-transformers-generate", daemon=True)
            worker.start()
            trimmer = StopTrimmer(options.stop)
            try:
                for piece in streamer:
                    text = trimmer.feed(piece)
                    if text:
                        yield StreamChunk(text)
                    if trimmer.stopped:
                        break
            finally:
                cancel.set()
                worker.join()
            if "error" in result:
                raise GenerationError(f"transformers generation failed: {result['error']!r}") from result["error"]
            tail = trimmer.flush()
            if tail:
                yield StreamChunk(tail)
            new = result["output"][0, input_ids.shape[-1] :]
        yield StreamChunk("", done=True, prompt_tokens=int(input_ids.shape[-1]), completion_tokens=int(new.shape[-1]),
                          finish_reason=self._finish(new, options, stopped=trimmer.stopped))

    def _cancel_when(self, event: threading.Event) -> Any:
        torch, transformers = self._torch, self._transformers

        class Cancel(transformers.StoppingCriteria):  # type: ignore[misc,name-defined]
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool, device=input_ids.device)

        return transformers.StoppingCriteriaList([Cancel()])

    def _seed(self, options: GenerationOptions) -> None:
        if options.seed is not None and options.temperature > 0:
            self._torch.manual_seed(options.seed)

    def _finish(self, new: Any, options: GenerationOptions, *, stopped: bool) -> str:
        ended = int(new.shape[-1]) > 0 and int(new[-1]) in self._eos_ids()
        return "stop" if stopped or ended or int(new.shape[-1]) < options.max_tokens else "length"

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return set(eos) if isinstance(eos, list) else ({eos} if isinstance(eos, int) else set())

    def _generate_kwargs(self, input_ids: Any, options: GenerationOptions) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"attention_mask": self._torch.ones_like(input_ids),
                                  "max_new_tokens": options.max_tokens}
        if options.temperature > 0:
            kwargs.update(do_sample=True, temperature=options.temperature, top_p=options.top_p, top_k=options.top_k)
        else:  # greedy; unset sampling knobs a model's generation_config may carry, so none is warned about
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if options.stop:
            kwargs.update(stop_strings=list(options.stop), tokenizer=self.tokenizer)
        if self.tokenizer.pad_token_id is None and self.tokenizer.eos_token_id is not None:
            kwargs["pad_token_id"] = self.tokenizer.eos_token_id
        return kwargs
