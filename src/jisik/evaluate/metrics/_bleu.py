"""BLEU (Papineni et al., ACL 2002): corpus and sentence scores, sacrebleu's smoothing methods."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from jisik.errors import EvaluationError
from jisik.evaluate.metrics._common import _check_nonempty, _check_same_length
from jisik.evaluate.metrics._tokenize import tokenize_13a

Smoothing = Literal["none", "add1", "floor", "exp"]


@dataclass(frozen=True, slots=True)
class BleuScore:
    """A BLEU score in ``[0, 1]`` with its sufficient statistics.

    ``precisions`` are the (smoothed) n-gram precisions for n = 1..max_n; ``counts`` and ``totals``
    the clipped matches and candidate n-grams per order (before smoothing); ``hyp_len`` and
    ``ref_len`` the candidate and closest-reference lengths in tokens.
    """

    score: float
    precisions: list[float]
    brevity_penalty: float
    hyp_len: int
    ref_len: int
    counts: list[int]
    totals: list[int]


def _ngram_counts(tokens: Sequence[str], max_n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for n in range(1, max_n + 1) for i in range(len(tokens) - n + 1))


def _bleu_segment(
    candidate: Sequence[str], references: Sequence[Sequence[str]], max_n: int
) -> tuple[list[int], list[int], int, int]:
    """(clipped matches per order, candidate n-grams per order, candidate length, closest ref length).

    A candidate n-gram counts at most as often as it occurs in any one reference; the closest
    reference length breaks ties towards the shorter reference (as mteval and sacrebleu do).
    """
    max_ref: Counter[tuple[str, ...]] = Counter()
    for ref in references:
        max_ref |= _ngram_counts(ref, max_n)
    hyp_len = len(candidate)
    ref_len = min((len(r) for r in references), key=lambda n: (abs(n - hyp_len), n))
    counts, totals = [0] * max_n, [0] * max_n
    for ngram, count in _ngram_counts(candidate, max_n).items():
        totals[len(ngram) - 1] += count
        counts[len(ngram) - 1] += min(count, max_ref[ngram])
    return counts, totals, hyp_len, ref_len


def _bleu_from_stats(
    counts: list[int], totals: list[int], hyp_len: int, ref_len: int, smoothing: Smoothing, effective_order: bool
) -> BleuScore:
    """BLEU from summed statistics; the smoothing methods are those of Chen & Cherry (WMT 2014).

    ``floor`` (method 1) gives a zero-match order 0.1 matches; ``add1`` (method 2, Lin & Och 2004)
    adds 1 to matches and totals of orders ≥ 2; ``exp`` (method 3, NIST mteval) gives the k-th
    zero-match order 1/2^k matches. No match at all scores 0 whatever the smoothing (as sacrebleu).
    """
    max_n = len(counts)
    bp = 1.0 if hyp_len >= ref_len else (math.exp(1 - ref_len / hyp_len) if hyp_len else 0.0)
    precisions = [0.0] * max_n
    if not any(counts):
        return BleuScore(0.0, precisions, bp, hyp_len, ref_len, list(counts), list(totals))
    order, halving = max_n, 1.0
    for n in range(max_n):
        matches, total = float(counts[n]), float(totals[n])
        if smoothing == "add1" and n > 0:
            matches, total = matches + 1, total + 1
        if total == 0:
            break
        if effective_order:
            order = n + 1
        if matches:
            precisions[n] = matches / total
        elif smoothing == "exp":
            halving *= 2
            precisions[n] = 1 / (halving * total)
        elif smoothing == "floor":
            precisions[n] = 0.1 / total
    used = precisions[:order]
    score = bp * math.exp(sum(math.log(p) for p in used) / order) if all(used) else 0.0
    return BleuScore(score, precisions, bp, hyp_len, ref_len, list(counts), list(totals))


def _check_bleu_options(max_n: int, smoothing: str) -> None:
    if max_n < 1:
        raise EvaluationError(f"max_n must be at least 1, not {max_n}")
    if smoothing not in ("none", "add1", "floor", "exp"):
        raise EvaluationError(f"unknown BLEU smoothing {smoothing!r}", hint="use 'none', 'add1', 'floor' or 'exp'")


def corpus_bleu(
    candidates: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    max_n: int = 4,
    smoothing: Smoothing = "none",
    tokenize: Callable[[str], list[str]] | None = None,
    effective_order: bool = False,
) -> BleuScore:
    """Corpus BLEU: n-gram matches and lengths summed over all segments, then one score.

    ``references[i]`` holds the references of ``candidates[i]`` (one or more). Tokens come from
    ``tokenize`` (default :func:`tokenize_13a`, which makes ``score * 100`` equal sacrebleu's
    ``corpus_bleu``; for Korean pass ``lambda t: kiwi_tokens(t, lexical=False)``). With
    ``effective_order`` the geometric mean stops at the last order the candidates have n-grams of.

    >>> s = corpus_bleu(["the cat is on mat", "a dog"], [["the cat is on the mat"], ["a dog", "one dog"]])
    >>> round(s.score, 4), s.counts, s.totals, s.hyp_len, s.ref_len
    (0.6229, [7, 4, 2, 1], [7, 5, 3, 2], 7, 8)
    """
    _check_bleu_options(max_n, smoothing)
    _check_same_length("candidates", candidates, "references", references)
    _check_nonempty("candidates", candidates)
    tok = tokenize or tokenize_13a
    counts, totals, hyp_len, ref_len = [0] * max_n, [0] * max_n, 0, 0
    for i, (candidate, refs) in enumerate(zip(candidates, references, strict=True)):
        if isinstance(refs, str) or not refs:
            raise EvaluationError(f"candidate {i} needs a list of one or more references, got {refs!r}")
        c, t, h, r = _bleu_segment(tok(candidate), [tok(ref) for ref in refs], max_n)
        counts = [a + b for a, b in zip(counts, c, strict=True)]
        totals = [a + b for a, b in zip(totals, t, strict=True)]
        hyp_len, ref_len = hyp_len + h, ref_len + r
    return _bleu_from_stats(counts, totals, hyp_len, ref_len, smoothing, effective_order)


def sentence_bleu(
    candidate: str,
    references: Sequence[str],
    *,
    max_n: int = 4,
    smoothing: Smoothing = "none",
    tokenize: Callable[[str], list[str]] | None = None,
    effective_order: bool = True,
) -> BleuScore:
    """BLEU of one candidate against its references: clipped n-gram precisions for n = 1..max_n,
    their geometric mean, times the brevity penalty ``exp(1 - r/c)`` when the candidate (c tokens)
    is shorter than the closest reference (r tokens).

    ``effective_order`` (default here, as in sacrebleu's ``sentence_bleu``) averages only the orders
    the candidate is long enough to have, so identical short texts score 1. Sentence BLEU is noisy:
    prefer :func:`corpus_bleu` and a smoothing method (``"exp"`` is sacrebleu's default) for short texts.

    >>> s = sentence_bleu("the cat is on mat", ["the cat is on the mat"])
    >>> [round(p, 4) for p in s.precisions], round(s.brevity_penalty, 4), round(s.score, 3)
    ([1.0, 0.75, 0.6667, 0.5], 0.8187, 0.579)
    """
    if isinstance(references, str):
        raise EvaluationError("references must be a list of strings", hint=f"pass [{references!r}]")
    return corpus_bleu(
        [candidate], [references], max_n=max_n, smoothing=smoothing, tokenize=tokenize, effective_order=effective_order
    )
