"""ROUGE (Lin, 2004): ROUGE-N, ROUGE-L and summary-level ROUGE-Lsum, as Google's ``rouge-score``."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from jisik.errors import EvaluationError
from jisik.evaluate.metrics._common import _PRF_FIELDS, Language, _check_nonempty, _check_same_length, _f1
from jisik.evaluate.metrics._tokenize import _rouge_tokenize_batch


@dataclass(frozen=True, slots=True)
class PRF:
    """Precision, recall and their harmonic mean F1 (0.0 when both are 0)."""

    precision: float
    recall: float
    f1: float



_ROUGE_N = re.compile(r"rouge([1-9])")



def _score_ngrams(candidate: list[str], reference: list[str], n: int) -> PRF:
    cand = Counter(tuple(candidate[i : i + n]) for i in range(len(candidate) - n + 1))
    ref = Counter(tuple(reference[i : i + n]) for i in range(len(reference) - n + 1))
    overlap = sum((cand & ref).values())
    precision = overlap / max(sum(cand.values()), 1)
    recall = overlap / max(sum(ref.values()), 1)
    return PRF(precision, recall, _f1(precision, recall))


def _lcs_table(a: Sequence[str], b: Sequence[str]) -> list[list[int]]:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, start=1):
        row, prev = table[i], table[i - 1]
        for j, y in enumerate(b, start=1):
            row[j] = prev[j - 1] + 1 if x == y else max(prev[j], row[j - 1])
    return table


def _lcs_indexes(ref: Sequence[str], cand: Sequence[str]) -> set[int]:
    """Indexes into ``ref`` of one longest common subsequence (rouge-score's backtracking order)."""
    table, i, j, out = _lcs_table(ref, cand), len(ref), len(cand), set()
    while i > 0 and j > 0:
        if ref[i - 1] == cand[j - 1]:
            out.add(i - 1)
            i, j = i - 1, j - 1
        elif table[i][j - 1] > table[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return out


def _score_lcs(candidate: list[str], reference: list[str]) -> PRF:
    if not candidate or not reference:
        return PRF(0.0, 0.0, 0.0)
    lcs = _lcs_table(reference, candidate)[-1][-1]
    precision, recall = lcs / len(candidate), lcs / len(reference)
    return PRF(precision, recall, _f1(precision, recall))


def _score_lsum(candidate: list[list[str]], reference: list[list[str]]) -> PRF:
    """Summary-level ROUGE-L (Lin 2004, §3.2): union LCS of each reference sentence with all
    candidate sentences, each token counted at most as often as it occurs on both sides."""
    m, n = sum(map(len, reference)), sum(map(len, candidate))
    if not m or not n:
        return PRF(0.0, 0.0, 0.0)
    ref_left = Counter(t for s in reference for t in s)
    cand_left = Counter(t for s in candidate for t in s)
    hits = 0
    for sent in reference:
        union = sorted(set().union(*(_lcs_indexes(sent, c) for c in candidate)))
        for token in (sent[i] for i in union):
            if ref_left[token] > 0 and cand_left[token] > 0:
                hits += 1
                ref_left[token] -= 1
                cand_left[token] -= 1
    precision, recall = hits / n, hits / m
    return PRF(precision, recall, _f1(precision, recall))


def _check_rouge_types(types: Sequence[str]) -> None:
    if isinstance(types, str) or not types:
        raise EvaluationError(f"types must be a non-empty list of ROUGE types, got {types!r}")
    for rouge_type in types:
        if rouge_type not in ("rougeL", "rougeLsum") and not _ROUGE_N.fullmatch(rouge_type):
            raise EvaluationError(f"unknown ROUGE type {rouge_type!r}", hint="use rouge1..rouge9, rougeL or rougeLsum")


def _rouge_pair(cand: str, ref: str, cand_tok: list[str], ref_tok: list[str], types: Sequence[str],
                lines: Callable[[str], list[list[str]]]) -> dict[str, PRF]:
    out = {}
    for rouge_type in types:
        if rouge_type == "rougeL":
            out[rouge_type] = _score_lcs(cand_tok, ref_tok)
        elif rouge_type == "rougeLsum":
            out[rouge_type] = _score_lsum(lines(cand), lines(ref))
        else:
            out[rouge_type] = _score_ngrams(cand_tok, ref_tok, int(rouge_type[5:]))
    return out


def rouge_corpus(
    candidates: Sequence[str],
    references: Sequence[str],
    *,
    types: Sequence[str] = ("rouge1", "rouge2", "rougeL"),
    language: Language = "en",
    stemmer: bool = False,
) -> dict[str, PRF]:
    """Mean ROUGE over candidate/reference pairs: precision, recall and F1 are each averaged.

    Korean is analysed in one Kiwi batch for all texts. Raises on empty or mismatched inputs.

    >>> r = rouge_corpus(["the cat sat", "a dog"], ["the cat sat down", "a dog"], types=["rouge1"])
    >>> r["rouge1"]
    PRF(precision=1.0, recall=0.875, f1=0.9285714285714286)
    """
    _check_rouge_types(types)
    _check_same_length("candidates", candidates, "references", references)
    _check_nonempty("candidates", candidates)
    texts = [*candidates, *references]
    tokens = _rouge_tokenize_batch(texts, language, stemmer) if set(types) - {"rougeLsum"} else [[] for _ in texts]

    def lines(text: str) -> list[list[str]]:
        # rougeLsum: sentences are the text's lines, as rouge-score without split_summaries.
        return _rouge_tokenize_batch([s for s in text.split("\n") if s], language, stemmer)

    k = len(candidates)
    scores = [
        _rouge_pair(candidates[i], references[i], tokens[i], tokens[k + i], types, lines) for i in range(k)
    ]
    return {t: PRF(*(float(np.mean([getattr(s[t], f) for s in scores])) for f in _PRF_FIELDS)) for t in types}


def rouge(
    candidate: str,
    reference: str,
    *,
    types: Sequence[str] = ("rouge1", "rouge2", "rougeL"),
    language: Language = "en",
    stemmer: bool = False,
) -> dict[str, PRF]:
    """ROUGE of a candidate against one reference, as ``{type: PRF}``.

    ``rougeN`` (N = 1..9): clipped n-gram overlap over candidate n-grams (precision) and over
    reference n-grams (recall). ``rougeL``: longest common subsequence over candidate and reference
    lengths. ``rougeLsum``: summary-level LCS over the texts' lines. English matches rouge-score's
    ``RougeScorer(types, use_stemmer=stemmer).score(reference, candidate)``; ``language="ko"`` counts
    Kiwi lexical morphemes so particles do not hide matches (see :func:`rouge_tokenize`).

    >>> r = rouge("the cat sat mat", "the cat sat on the mat")
    >>> r["rouge1"].recall == 4 / 6, r["rouge1"].precision, round(r["rougeL"].f1, 4)
    (True, 1.0, 0.8)
    >>> rouge("환불이 됩니다", "환불은 가능합니다", types=["rouge1"], language="ko")["rouge1"].recall
    0.5
    """
    return rouge_corpus([candidate], [reference], types=types, language=language, stemmer=stemmer)
