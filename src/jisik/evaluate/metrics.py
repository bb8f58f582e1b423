"""Evaluation metrics: BLEU, ROUGE, P/R/F1, QA exact match and F1, retrieval, citations, groundedness.

All scores are in ``[0, 1]`` (not 0-100), every function is pure, and none returns NaN: where a
ratio has no denominator the docstring says which value comes back, and inputs that cannot be scored
(mismatched lengths, ``k < 1``, no references) raise :class:`~jisik.errors.EvaluationError`.

Each metric is checked in ``tests/test_metrics.py`` against a reference implementation: BLEU against
sacrebleu (its ``13a`` tokeniser and smoothing methods), ROUGE against Google's ``rouge-score``
(tokeniser and NLTK's Porter stemmer), EM/F1 against the official SQuAD v1.1 and KorQuAD v1 scripts,
nDCG/MAP/MRR against trec_eval (pytrec_eval), P/R/F1 against scikit-learn.

Korean: whitespace tokens fail Korean because particles glue to nouns (환불은, 환불이), so ROUGE and
groundedness take ``language="ko"`` and count Kiwi morphemes (:func:`kiwi_tokens`) instead.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from jisik.errors import EvaluationError
from jisik.text._kiwi import get_kiwi
from jisik.text.analyzers import ENGLISH_STOPWORDS, KOREAN_STOPWORDS, normalize_text
from jisik.text.sentences import split_sentences_batch

__all__ = [
    "PRF",
    "BleuScore",
    "ClassificationScores",
    "average_precision",
    "bootstrap_ci",
    "citation_accuracy",
    "classification_scores",
    "corpus_bleu",
    "exact_match",
    "from_confusion",
    "groundedness",
    "groundedness_rate",
    "hit_at_k",
    "kiwi_tokens",
    "ndcg_at_k",
    "normalize_answer",
    "paired_bootstrap",
    "per_label_scores",
    "porter_stem",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank",
    "retrieval_scores",
    "rouge",
    "rouge_corpus",
    "rouge_tokenize",
    "sentence_bleu",
    "token_f1",
    "tokenize_13a",
]

Smoothing = Literal["none", "add1", "floor", "exp"]
Language = Literal["en", "ko"]
AnswerStyle = Literal["squad", "korquad"]


def _check_same_length(name_a: str, a: Sequence[object], name_b: str, b: Sequence[object]) -> None:
    if len(a) != len(b):
        raise EvaluationError(
            f"{name_a} has {len(a)} items but {name_b} has {len(b)}", hint="pass one entry per item in both"
        )


def _check_nonempty(name: str, items: Sequence[object]) -> None:
    if not items:
        raise EvaluationError(f"{name} is empty: there is nothing to average", hint="pass at least one item")


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


# --- BLEU (Papineni et al., ACL 2002) ------------------------------------------------------------

# mteval-v13a's language-dependent rules, as sacrebleu's default "13a" tokeniser applies them:
# ASCII punctuation except ' - . , becomes a token; "." and "," split off unless between digits;
# "-" splits off after a digit.
_13A_RULES = (
    (re.compile(r"([!-&(-+/:-@\[-`{-~])"), r" \1 "),
    (re.compile(r"([^0-9])([.,])"), r"\1 \2 "),
    (re.compile(r"([.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)
_13A_ENTITIES = (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))


@lru_cache(maxsize=65536)
def _tokenize_13a(text: str) -> tuple[str, ...]:
    line = text.rstrip().replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    for entity, char in _13A_ENTITIES:
        line = line.replace(entity, char)
    line = f" {line} "
    for pattern, repl in _13A_RULES:
        line = pattern.sub(repl, line)
    return tuple(line.split())


def tokenize_13a(text: str) -> list[str]:
    """The ``13a`` tokenisation of mteval-v13a (WMT), sacrebleu's default for BLEU. Case is kept.

    >>> tokenize_13a("It costs $3.50, doesn't it? (2019-2020)")
    ['It', 'costs', '$', '3.50', ',', "doesn't", 'it', '?', '(', '2019', '-', '2020', ')']
    """
    return list(_tokenize_13a(text))


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


# --- Korean morphemes --------------------------------------------------------------------------

# Kiwi (Sejong) tags that carry lexical meaning: nouns, pronouns, numerals, verb and adjective
# stems, determiners, adverbs, roots, and non-Hangul words (Latin, Hanja, numbers, URLs...).
# Particles (J*), endings (E*), affixes (XP*, XS*), copulas, auxiliaries and punctuation are left out.
_LEXICAL_TAGS = frozenset({"NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "MM", "MAG", "XR", "SL", "SH", "SN"})
_VERB_TAGS = frozenset({"VV", "VA"})


def _morphemes(tokens: Sequence[object], lexical: bool) -> list[str]:
    out = []
    for tok in tokens:
        form, tag = str(getattr(tok, "form", "")), str(getattr(tok, "tag", "")).partition("-")[0]
        if lexical and tag not in _LEXICAL_TAGS and not tag.startswith("W_"):
            continue
        if form.strip():
            out.append(form.lower() + "다" if lexical and tag in _VERB_TAGS else form.lower())
    return out


def _kiwi_tokens_batch(texts: Sequence[str], *, lexical: bool = True) -> list[list[str]]:
    """:func:`kiwi_tokens` of each text, in one Kiwi batch call."""
    if not texts:
        return []
    results = get_kiwi().tokenize([normalize_text(t) for t in texts])
    return [_morphemes(tokens, lexical) for tokens in results]


def kiwi_tokens(text: str, *, lexical: bool = True) -> list[str]:
    """Kiwi morphemes of ``text``, lowercased; verb and adjective stems as lemmas (먹다).

    ``lexical`` keeps only meaning-bearing morphemes (nouns, stems, adverbs, numbers, foreign
    words): 환불은 and 환불이 both give 환불. ``lexical=False`` keeps every morpheme (particles,
    endings, punctuation), the usual tokenisation for Korean BLEU.

    >>> kiwi_tokens("환불은 14일 이내에 가능합니다")
    ['환불', '14', '일', '이내', '가능']
    >>> kiwi_tokens("환불이 됩니다", lexical=False)
    ['환불', '이', '되', 'ᆸ니다']
    """
    return _kiwi_tokens_batch([text], lexical=lexical)[0]


# --- Porter stemmer (as NLTK's default mode, which rouge-score uses) --------------------------------

# NLTK's departures from Porter (1980): a few irregular forms, -ies/-ied on 4-letter words,
# y→i only after a consonant, "bli"→"ble" (Porter's later correction), extra step-2 rules
# alli/fulli/logi, and words of 1-2 letters left alone.
_PORTER_IRREGULAR = {
    "skies": "sky", "sky": "sky", "dying": "die", "lying": "lie", "tying": "tie", "news": "news",
    "innings": "inning", "inning": "inning", "outings": "outing", "outing": "outing", "cannings": "canning",
    "canning": "canning", "howe": "howe", "proceed": "proceed", "exceed": "exceed", "succeed": "succeed",
}
_STEP2 = (
    ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"), ("izer", "ize"), ("bli", "ble"),
    ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous"), ("ization", "ize"), ("ation", "ate"),
    ("ator", "ate"), ("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous"), ("aliti", "al"),
    ("iviti", "ive"), ("biliti", "ble"), ("fulli", "ful"), ("logi", "log"),
)
_STEP3 = (("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"), ("ful", ""), ("ness", ""))
_STEP4 = ("al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion", "ou", "ism", "ate",
          "iti", "ous", "ive", "ize")


def _cv(word: str) -> str:
    """'c'/'v' per letter: a, e, i, o, u are vowels; y is a vowel after a consonant."""
    out: list[str] = []
    for i, ch in enumerate(word):
        out.append("v" if ch in "aeiou" or (ch == "y" and i > 0 and out[-1] == "c") else "c")
    return "".join(out)


def _measure(stem: str) -> int:
    """Porter's m: the number of vowel-consonant sequences in [C](VC)^m[V]."""
    return _cv(stem).count("vc")


def _ends_cvc(stem: str) -> bool:
    """Porter's *o (consonant-vowel-consonant, the last not w/x/y); NLTK also accepts a 2-letter vc."""
    cv = _cv(stem)
    return (cv.endswith("cvc") and stem[-1] not in "wxy") or cv == "vc"


def _first_rule(word: str, rules: Sequence[tuple[str, str]], condition: Callable[[str], bool]) -> str:
    """Apply the first rule whose suffix ``word`` ends with, if its stem meets ``condition``."""
    for suffix, replacement in rules:
        if word.endswith(suffix):
            stem = word[: len(word) - len(suffix)]
            return stem + replacement if condition(stem) else word
    return word


def _step1(word: str) -> str:
    if word.endswith("ies") and len(word) == 4:
        word = word[:-1]
    else:
        word = _first_rule(word, (("sses", "ss"), ("ies", "i"), ("ss", "ss"), ("s", "")), lambda s: True)
    if word.endswith("ied"):
        word = word[:-3] + ("ie" if len(word) == 4 else "i")
    elif word.endswith("eed"):
        word = word[:-1] if _measure(word[:-3]) > 0 else word
    else:
        for suffix in ("ed", "ing"):
            if word.endswith(suffix) and "v" in _cv(word[: -len(suffix)]):
                word = word[: -len(suffix)]
                if word.endswith(("at", "bl", "iz")):
                    word += "e"
                elif len(word) >= 2 and word[-1] == word[-2] and _cv(word)[-1] == "c":
                    word = word if word[-1] in "lsz" else word[:-1]
                elif _measure(word) == 1 and _ends_cvc(word):
                    word += "e"
                break
    if word.endswith("y") and len(word) > 2 and _cv(word)[-2] == "c":
        word = word[:-1] + "i"
    return word


def _step2(word: str) -> str:
    if word.endswith("alli") and _measure(word[:-4]) > 0:
        return _step2(word[:-2])
    if word.endswith("logi"):
        return word[:-1] if _measure(word[:-3]) > 0 else word
    return _first_rule(word, _STEP2, lambda s: _measure(s) > 0)


def _step4(word: str) -> str:
    for suffix in _STEP4:
        if word.endswith(suffix):
            stem = word[: -len(suffix)]
            ok = _measure(stem) > 1 and (suffix != "ion" or stem[-1] in "st")
            return stem if ok else word
    return word


@lru_cache(maxsize=65536)
def porter_stem(word: str) -> str:
    """Porter (1980) stem of a lowercase word, with NLTK's extensions (``PorterStemmer()``'s default).

    rouge-score stems with NLTK's ``PorterStemmer``; this reproduces it without the NLTK dependency.

    >>> [porter_stem(w) for w in ["caresses", "ponies", "dies", "hopping", "relational", "generously", "skies"]]
    ['caress', 'poni', 'die', 'hop', 'relat', 'gener', 'sky']
    """
    word = word.lower()
    if word in _PORTER_IRREGULAR:
        return _PORTER_IRREGULAR[word]
    if len(word) <= 2:
        return word
    word = _step4(_first_rule(_step2(_step1(word)), _STEP3, lambda s: _measure(s) > 0))
    if word.endswith("e"):
        m = _measure(word[:-1])
        if m > 1 or (m == 1 and not _ends_cvc(word[:-1])):
            word = word[:-1]
    if word.endswith("ll") and _measure(word[:-1]) > 1:
        word = word[:-1]
    return word


# --- ROUGE (Lin, 2004) --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PRF:
    """Precision, recall and their harmonic mean F1 (0.0 when both are 0)."""

    precision: float
    recall: float
    f1: float


_PRF_FIELDS = ("precision", "recall", "f1")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_ROUGE_N = re.compile(r"rouge([1-9])")


def _stem_tokens(tokens: list[str]) -> list[str]:
    # As rouge-score: only tokens longer than 3 characters, and only ASCII words (Porter is English).
    return [porter_stem(t) if len(t) > 3 and t.isascii() and t.isalnum() else t for t in tokens]


def _rouge_tokenize_batch(texts: Sequence[str], language: Language, stemmer: bool) -> list[list[str]]:
    if language == "ko":
        batch = _kiwi_tokens_batch(texts)
    elif language == "en":
        batch = [_NON_ALNUM.sub(" ", t.lower()).split() for t in texts]
    else:
        raise EvaluationError(f"unknown language {language!r}", hint="use 'en' or 'ko'")
    return [_stem_tokens(tokens) if stemmer else tokens for tokens in batch]


def rouge_tokenize(text: str, *, language: Language = "en", stemmer: bool = False) -> list[str]:
    """ROUGE tokens. ``"en"``: rouge-score's tokeniser (lowercase, anything but a-z/0-9 separates
    words, so Hangul and accented letters vanish); ``"ko"``: :func:`kiwi_tokens`. ``stemmer``
    Porter-stems English words longer than 3 letters.

    >>> rouge_tokenize("The cats' 2 naïve owners!", stemmer=True)
    ['the', 'cat', '2', 'na', 've', 'owner']
    >>> rouge_tokenize("고양이가 매트에 앉았다", language="ko")
    ['고양이', '매트', '앉다']
    """
    return _rouge_tokenize_batch([text], language, stemmer)[0]


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


# --- classification ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClassificationScores:
    """Accuracy, precision, recall, F1 (each 0.0 when its denominator is 0) and support.

    ``support`` is the number of true instances the scores describe: the positives for one label
    or ``average="binary"``, every item for ``"macro"`` and ``"micro"``.
    """

    accuracy: float
    precision: float
    recall: float
    f1: float
    support: int


def from_confusion(tp: int, tn: int, fp: int, fn: int) -> ClassificationScores:
    """Scores from a binary confusion matrix. A ratio whose denominator is 0 is 0.0 (no NaN):
    precision with no predicted positives, recall with no actual positives, accuracy with no items.

    >>> s = from_confusion(tp=40, tn=50, fp=5, fn=5)
    >>> s.accuracy, round(s.precision, 3), round(s.recall, 3), round(s.f1, 3), s.support
    (0.9, 0.889, 0.889, 0.889, 45)
    >>> from_confusion(0, 10, 0, 0)
    ClassificationScores(accuracy=1.0, precision=0.0, recall=0.0, f1=0.0, support=0)
    """
    if min(tp, tn, fp, fn) < 0:
        raise EvaluationError(f"confusion counts must be non-negative, got tp={tp} tn={tn} fp={fp} fn={fn}")
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return ClassificationScores(_ratio(tp + tn, tp + tn + fp + fn), precision, recall, _f1(precision, recall), tp + fn)


def _labels(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> list[Hashable]:
    """Every label seen, sorted when the labels sort, else in order of first appearance."""
    labels = list(dict.fromkeys([*y_true, *y_pred]))
    try:
        return sorted(labels)  # type: ignore[type-var]
    except TypeError:
        return labels


def _confusion(y_true: Sequence[Hashable], y_pred: Sequence[Hashable], label: Hashable) -> tuple[int, int, int, int]:
    tp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == label and p == label)
    fp = sum(1 for p in y_pred if p == label) - tp
    fn = sum(1 for t in y_true if t == label) - tp
    return tp, len(y_true) - tp - fp - fn, fp, fn


def _check_labels(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> None:
    _check_same_length("y_true", y_true, "y_pred", y_pred)
    _check_nonempty("y_true", y_true)


def per_label_scores(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> dict[Hashable, ClassificationScores]:
    """One-vs-rest scores for every label (accuracy is the one-vs-rest accuracy of that label).

    >>> s = per_label_scores(["a", "a", "b", "c"], ["a", "b", "b", "c"])
    >>> s["b"].precision, s["b"].recall, s["b"].support, s["a"].accuracy
    (0.5, 1.0, 1, 0.75)
    """
    _check_labels(y_true, y_pred)
    return {label: from_confusion(*_confusion(y_true, y_pred, label)) for label in _labels(y_true, y_pred)}


def classification_scores(
    y_true: Sequence[Hashable],
    y_pred: Sequence[Hashable],
    *,
    average: Literal["macro", "micro", "binary"] = "macro",
    positive: Hashable | None = None,
) -> ClassificationScores:
    """Accuracy plus averaged precision, recall and F1 (as scikit-learn's ``precision_recall_fscore_support``).

    ``macro``: the unweighted mean of each label's precision, recall and F1 (labels from both
    sequences). ``micro``: from summed counts (equal to accuracy for single-label data).
    ``binary``: the scores of ``positive`` against every other label (default ``1``/``True``).

    >>> s = classification_scores(["a", "a", "b", "c"], ["a", "b", "b", "c"])
    >>> s.accuracy, round(s.precision, 4), round(s.recall, 4), round(s.f1, 4), s.support
    (0.75, 0.8333, 0.8333, 0.7778, 4)
    >>> classification_scores([1, 0, 1, 1], [1, 0, 0, 1], average="binary").recall
    0.6666666666666666
    """
    per_label = per_label_scores(y_true, y_pred)
    accuracy = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == p) / len(y_true)
    if average == "binary":
        if positive is None:
            if 1 not in per_label:
                raise EvaluationError("average='binary' needs the positive label", hint="pass positive=<label>")
            positive = 1
        tp, _, fp, fn = _confusion(y_true, y_pred, positive)
        s = from_confusion(tp, 0, fp, fn)
        return ClassificationScores(accuracy, s.precision, s.recall, s.f1, s.support)
    if positive is not None:
        raise EvaluationError("positive only applies to average='binary'", hint="drop positive or use binary")
    if average == "macro":
        precision, recall, f1 = (float(np.mean([getattr(s, f) for s in per_label.values()])) for f in _PRF_FIELDS)
        return ClassificationScores(accuracy, precision, recall, f1, len(y_true))
    if average == "micro":
        confusions = [_confusion(y_true, y_pred, label) for label in per_label]
        tp, fp, fn = (sum(c[i] for c in confusions) for i in (0, 2, 3))
        s = from_confusion(tp, 0, fp, fn)
        return ClassificationScores(accuracy, s.precision, s.recall, s.f1, len(y_true))
    raise EvaluationError(f"unknown average {average!r}", hint="use 'macro', 'micro' or 'binary'")


# --- extractive QA (SQuAD v1.1, KorQuAD v1) ------------------------------------------------------

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
# KorQuAD v1's script turns these into spaces before it lowercases and drops ASCII punctuation.
_KORQUAD_SPACED = str.maketrans({c: " " for c in "'\"《》<>〈〉()‘’"})


def normalize_answer(text: str, *, style: AnswerStyle = "squad") -> str:
    """Answer normalisation of the official evaluation scripts.

    ``"squad"`` (SQuAD v1.1): lowercase, drop ASCII punctuation, drop the articles a/an/the,
    collapse whitespace. ``"korquad"`` (KorQuAD v1): quotes, brackets 《》〈〉<>() and curly quotes
    become spaces, then lowercase, drop ASCII punctuation, collapse whitespace (articles stay).

    >>> normalize_answer("The  Eiffel-Tower!")
    'eiffeltower'
    >>> normalize_answer("《태정관령 제31호》(1876)", style="korquad")
    '태정관령 제31호 1876'
    """
    if style == "squad":
        text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
        return " ".join(_ARTICLES.sub(" ", text).split())
    if style == "korquad":
        text = text.translate(_KORQUAD_SPACED).lower()
        return " ".join("".join(ch for ch in text if ch not in _PUNCTUATION).split())
    raise EvaluationError(f"unknown answer style {style!r}", hint="use 'squad' or 'korquad'")


def _golds(golds: Sequence[str]) -> list[str]:
    if isinstance(golds, str):
        return [golds]
    if not golds:
        raise EvaluationError("no gold answers to compare with", hint="pass at least one reference answer")
    return list(golds)


def exact_match(prediction: str, golds: Sequence[str], *, style: AnswerStyle = "squad") -> float:
    """1.0 when the normalised prediction equals any normalised gold answer, else 0.0.

    A single string is taken as one gold answer.

    >>> exact_match("the Broncos", ["Denver Broncos", "Broncos"]), exact_match("덴버", "덴버 브롱코스")
    (1.0, 0.0)
    """
    pred = normalize_answer(prediction, style=style)
    return max(float(pred == normalize_answer(g, style=style)) for g in _golds(golds))


def _f1_one(prediction: str, gold: str, style: AnswerStyle) -> float:
    pred, ref = normalize_answer(prediction, style=style).split(), normalize_answer(gold, style=style).split()
    if style == "korquad":  # KorQuAD v1 counts characters of the tokens, not whole tokens
        pred, ref = [c for t in pred for c in t], [c for t in ref for c in t]
    same = sum((Counter(pred) & Counter(ref)).values())
    return _f1(same / len(pred), same / len(ref)) if same else 0.0


def token_f1(prediction: str, golds: Sequence[str], *, style: AnswerStyle = "squad") -> float:
    """The official SQuAD v1.1 / KorQuAD v1 F1, the best over the gold answers.

    ``"squad"``: bag-of-words F1 of the normalised tokens. ``"korquad"``: the same over the
    *characters* of the normalised tokens (so 브롱코스 partly matches 브롱코스가). No overlap,
    and an empty prediction or gold, score 0.0 (as the official scripts).

    >>> round(token_f1("Denver Broncos team", ["the Denver Broncos"]), 4)
    0.8
    >>> round(token_f1("덴버 브롱코스가", ["덴버 브롱코스"], style="korquad"), 4)
    0.9231
    """
    return max(_f1_one(prediction, g, style) for g in _golds(golds))


# --- retrieval ----------------------------------------------------------------------------------


def _check_k(k: int | None) -> None:
    if k is not None and k < 1:
        raise EvaluationError(f"k must be at least 1, not {k}")


def _grades(relevant: Collection[Hashable] | Mapping[Hashable, float]) -> dict[Hashable, float]:
    """Relevance grade per id: a mapping's values (> 0 counts as relevant), else 1.0 for each id."""
    if isinstance(relevant, str):
        raise EvaluationError("relevant must be a collection of ids", hint=f"pass [{relevant!r}]")
    if isinstance(relevant, Mapping):
        grades = {doc: float(grade) for doc, grade in relevant.items()}
        if any(g < 0 or math.isnan(g) for g in grades.values()):
            raise EvaluationError("relevance grades must be non-negative numbers")
        return {doc: g for doc, g in grades.items() if g > 0}
    return dict.fromkeys(relevant, 1.0)


def _top(retrieved: Sequence[Hashable], k: int | None) -> list[Hashable]:
    """The first ``k`` distinct ids (a repeated id counts once, at its first rank)."""
    _check_k(k)
    return list(dict.fromkeys(retrieved))[:k]


def hit_at_k(retrieved: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """1.0 if any of the first ``k`` retrieved ids is relevant, else 0.0 (also "success@k").

    >>> hit_at_k(["d3", "d1", "d7"], {"d1", "d9"}, 1), hit_at_k(["d3", "d1", "d7"], {"d1", "d9"}, 2)
    (0.0, 1.0)
    """
    gold = _grades(relevant)
    return float(any(doc in gold for doc in _top(retrieved, k)))


def recall_at_k(retrieved: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Share of the relevant ids found in the first ``k`` (0.0 when nothing is relevant).

    >>> recall_at_k([3, 1, 7], {1, 9}, 3)
    0.5
    """
    gold = _grades(relevant)
    return _ratio(sum(1 for doc in _top(retrieved, k) if doc in gold), len(gold))


def precision_at_k(retrieved: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Relevant ids among the first ``k``, divided by ``k`` (even when fewer were retrieved, as trec_eval).

    >>> precision_at_k([3, 1, 7], {1, 9}, 4)
    0.25
    """
    gold = _grades(relevant)
    return sum(1 for doc in _top(retrieved, k) if doc in gold) / k


def reciprocal_rank(retrieved: Sequence[Hashable], relevant: Collection[Hashable], k: int | None = None) -> float:
    """1 / rank of the first relevant id (within the first ``k`` if given), 0.0 if there is none.

    >>> reciprocal_rank(["d3", "d1", "d7"], {"d1"}), reciprocal_rank(["d3", "d1"], {"d1"}, k=1)
    (0.5, 0.0)
    """
    gold = _grades(relevant)
    return next((1 / rank for rank, doc in enumerate(_top(retrieved, k), start=1) if doc in gold), 0.0)


def ndcg_at_k(
    retrieved: Sequence[Hashable], relevant: Collection[Hashable] | Mapping[Hashable, float], k: int
) -> float:
    """Normalised discounted cumulative gain (Järvelin & Kekäläinen 2002) of the first ``k``.

    DCG = Σ gain(doc at rank i) / log2(i + 1); the gain is the grade when ``relevant`` maps ids to
    grades, else 1 for a relevant id; it is divided by the DCG of the ideal order of all graded ids
    (as trec_eval's ``ndcg_cut``). 0.0 when nothing is relevant.

    >>> round(ndcg_at_k(["a", "b", "c"], {"b"}, 3), 4), round(ndcg_at_k(["a", "b"], {"a": 1, "b": 3}, 2), 4)
    (0.6309, 0.7967)
    """
    gold = _grades(relevant)
    dcg = sum(gold.get(doc, 0.0) / math.log2(rank + 1) for rank, doc in enumerate(_top(retrieved, k), start=1))
    ideal = sum(g / math.log2(rank + 1) for rank, g in enumerate(sorted(gold.values(), reverse=True)[:k], start=1))
    return _ratio(dcg, ideal)


def average_precision(retrieved: Sequence[Hashable], relevant: Collection[Hashable], k: int | None = None) -> float:
    """Mean of precision@rank over the ranks of relevant ids, divided by the number of relevant ids
    (so unretrieved ones count as 0, as trec_eval's ``map``/``map_cut``). 0.0 when nothing is relevant.

    >>> average_precision(["a", "x", "b", "y"], {"a", "b", "c"})  # (1/1 + 2/3) / 3
    0.5555555555555555
    """
    gold = _grades(relevant)
    found, total = 0, 0.0
    for rank, doc in enumerate(_top(retrieved, k), start=1):
        if doc in gold:
            found += 1
            total += found / rank
    return _ratio(total, len(gold))


def retrieval_scores(
    runs: Sequence[Sequence[Hashable]],
    relevant: Sequence[Collection[Hashable]],
    ks: Sequence[int] = (1, 3, 5, 10),
) -> dict[str, float]:
    """Retrieval metrics averaged over queries: ``hit@k``, ``recall@k``, ``precision@k`` and
    ``ndcg@k`` for each k, ``mrr`` and ``map`` (whole runs). ``relevant[i]`` are query i's relevant
    ids (or an id → grade mapping). A query without relevant ids cannot be scored and raises.

    >>> s = retrieval_scores([["a", "b"], ["c", "d"]], [{"b"}, {"x"}], ks=[1, 2])
    >>> s["hit@2"], s["mrr"], round(s["ndcg@2"], 4), s["precision@2"]
    (0.5, 0.25, 0.3155, 0.25)
    """
    _check_same_length("runs", runs, "relevant", relevant)
    _check_nonempty("runs", runs)
    for k in ks:
        _check_k(k)
    for i, (run, gold) in enumerate(zip(runs, relevant, strict=True)):
        if isinstance(run, str):
            raise EvaluationError(f"run {i} must be a list of ids, not a string")
        if not _grades(gold):
            raise EvaluationError(f"query {i} has no relevant ids", hint="drop queries without judgements first")
    metrics: dict[str, Callable[[Sequence[Hashable], Collection[Hashable], int], float]] = {
        "hit": hit_at_k, "recall": recall_at_k, "precision": precision_at_k, "ndcg": ndcg_at_k,
    }
    out = {
        f"{name}@{k}": float(np.mean([fn(run, gold, k) for run, gold in zip(runs, relevant, strict=True)]))
        for k in ks
        for name, fn in metrics.items()
    }
    out["mrr"] = float(np.mean([reciprocal_rank(run, gold) for run, gold in zip(runs, relevant, strict=True)]))
    out["map"] = float(np.mean([average_precision(run, gold) for run, gold in zip(runs, relevant, strict=True)]))
    return out


# --- answers: citations and groundedness ---------------------------------------------------------


def citation_accuracy(
    cited_texts: Sequence[str], support: str | Sequence[str], *, style: AnswerStyle = "squad"
) -> float:
    """Share of cited chunks whose normalised text contains at least one supporting string.

    Both sides go through :func:`normalize_answer` with ``style``. ``"squad"`` matches whole words
    (``cat`` is not in ``concatenate``); ``"korquad"`` matches any substring, since Korean particles
    glue to the answer (``환불`` is in ``환불은``). No citations score 0.0.

    >>> citation_accuracy(["Returns are accepted within 14 days.", "Shipping is free."], "14 days")
    0.5
    >>> citation_accuracy(["환불은 14일 이내에 가능합니다"], ["14일"], style="korquad")
    1.0
    """
    supports = [normalize_answer(s, style=style) for s in ([support] if isinstance(support, str) else support)]
    supports = [s for s in supports if s]
    if not supports:
        raise EvaluationError("no non-empty supporting string to look for", hint="pass the gold answer text")
    if not cited_texts:
        return 0.0
    texts = [normalize_answer(t, style=style) for t in cited_texts]
    if style == "squad":
        texts, supports = [f" {t} " for t in texts], [f" {s} " for s in supports]
    return sum(1 for t in texts if any(s in t for s in supports)) / len(texts)


_WORD = re.compile(r"[^\W_]+")


def _content_tokens_batch(texts: Sequence[str], language: Language) -> list[set[str]]:
    """Content tokens: Kiwi lexical morphemes minus Korean stopwords (ko), or lowercased words
    minus English stopwords (en)."""
    if language == "ko":
        return [{t for t in tokens if t not in KOREAN_STOPWORDS} for tokens in _kiwi_tokens_batch(texts)]
    if language == "en":
        return [{w for w in _WORD.findall(normalize_text(t).lower()) if w not in ENGLISH_STOPWORDS} for t in texts]
    raise EvaluationError(f"unknown language {language!r}", hint="use 'en' or 'ko'")


def _grounded_flags(
    answers: Sequence[str], contexts_list: Sequence[Sequence[str]], language: Language, threshold: float
) -> list[list[bool]]:
    """Per answer, per sentence with content tokens: whether it is covered ≥ threshold."""
    if not 0.0 <= threshold <= 1.0:
        raise EvaluationError(f"threshold must be in [0, 1], not {threshold}")
    spans = split_sentences_batch(answers)
    sentences = [[a[s:e] for s, e in sp] for a, sp in zip(answers, spans, strict=True)]
    contexts = ["\n".join(c) for c in contexts_list]
    tokens = _content_tokens_batch([s for ss in sentences for s in ss] + contexts, language)
    ctx_tokens = tokens[len(tokens) - len(contexts) :]
    flags, pos = [], 0
    for ss, ctx in zip(sentences, ctx_tokens, strict=True):
        sent_tokens = [t for t in tokens[pos : pos + len(ss)] if t]
        pos += len(ss)
        flags.append([len(t & ctx) / len(t) >= threshold for t in sent_tokens])
    return flags


def groundedness(answer: str, contexts: Sequence[str], *, language: Language = "en", threshold: float = 0.5) -> float:
    """Share of the answer's sentences that the contexts support, by lexical coverage.

    The answer is split into sentences (:func:`jisik.text.sentences.split_sentences`). A sentence's
    content tokens are its distinct Kiwi lexical morphemes minus Korean stopwords (``"ko"``) or its
    distinct lowercased words minus English stopwords (``"en"``); it is grounded when at least
    ``threshold`` of them occur among the content tokens of all contexts together. Sentences with no
    content tokens are not counted; an answer with none scores 1.0 (it claims nothing). A lexical
    proxy: it catches invented facts (names, numbers) but not negations or wrong relations.

    >>> ctx = ["Returns are accepted within 14 days of delivery."]
    >>> groundedness("Returns are accepted within 14 days. Refunds take 3 weeks by cheque.", ctx)
    0.5
    >>> groundedness("환불은 14일 이내에 가능합니다.", ["14일 이내 환불이 가능합니다."], language="ko")
    1.0
    """
    if isinstance(contexts, str):
        contexts = [contexts]
    flags = _grounded_flags([answer], [contexts], language, threshold)[0]
    return sum(flags) / len(flags) if flags else 1.0


def groundedness_rate(
    answers: Sequence[str],
    contexts_list: Sequence[Sequence[str]],
    *,
    language: Language = "en",
    threshold: float = 0.5,
) -> float:
    """Share of answers that are fully grounded (:func:`groundedness` = 1.0); one Kiwi batch for all.

    >>> groundedness_rate(["Returns within 14 days.", "Refunds by cheque."], [["Returns within 14 days."]] * 2)
    0.5
    """
    _check_same_length("answers", answers, "contexts_list", contexts_list)
    _check_nonempty("answers", answers)
    contexts_list = [[c] if isinstance(c, str) else c for c in contexts_list]
    flags = _grounded_flags(answers, contexts_list, language, threshold)
    return sum(1 for f in flags if all(f)) / len(flags)


# --- confidence intervals -----------------------------------------------------------------------


def bootstrap_ci(
    values: Sequence[float], *, confidence: float = 0.95, resamples: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` and its percentile-bootstrap confidence interval
    (Efron & Tibshirani 1993): resample ``values`` with replacement ``resamples`` times and take the
    (1 - confidence)/2 and (1 + confidence)/2 quantiles of the resampled means. Deterministic per ``seed``.

    >>> mean, low, high = bootstrap_ci([0, 1, 1, 0, 1, 1, 1, 0, 1, 1])
    >>> mean, low <= mean <= high, round(low, 1), round(high, 1)
    (0.7, True, 0.4, 0.9)
    """
    if not 0.0 < confidence < 1.0:
        raise EvaluationError(f"confidence must be between 0 and 1, not {confidence}")
    if resamples < 1:
        raise EvaluationError(f"resamples must be at least 1, not {resamples}")
    _check_nonempty("values", values)
    data = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(data)):
        raise EvaluationError("values must be finite numbers (no NaN or infinity)")
    rng = np.random.default_rng(seed)
    n = len(data)
    chunk = max(1, 2_000_000 // n)  # bound memory: at most ~2M resampled indexes at a time
    means = np.concatenate([
        data[rng.integers(0, n, size=(min(chunk, resamples - start), n))].mean(axis=1)
        for start in range(0, resamples, chunk)
    ])
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(data.mean()), float(low), float(high)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95, resamples: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean difference, low, high) of ``a[i] - b[i]``: two systems scored on the same items.

    The difference is significant at this confidence when the interval excludes 0.

    >>> diff, low, high = paired_bootstrap([1, 1, 1, 0, 1, 1, 1, 1], [0, 1, 0, 0, 1, 0, 1, 0])
    >>> diff, low > 0
    (0.5, True)
    """
    _check_same_length("a", a, "b", b)
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    return bootstrap_ci(diffs, confidence=confidence, resamples=resamples, seed=seed)
