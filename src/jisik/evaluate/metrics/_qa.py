"""Extractive QA: exact match and token F1 as the official SQuAD v1.1 and KorQuAD v1 scripts."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from jisik.errors import EvaluationError
from jisik.evaluate.metrics._common import AnswerStyle, _f1

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
