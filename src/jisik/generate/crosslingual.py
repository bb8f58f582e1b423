"""The extractive answerer across languages: an English question over Korean sentences, or the reverse.

Two of the answerer's four features (``lexical``, ``context``) count the question's terms found in a
sentence. A sentence in another language than the question can hold none of them, so a Korean sentence
that answers an English question scored at most ``0.5 × dense + 0.1 × rank`` and hardly ever reached
``MIN_SCORE`` (on MS MARCO, 5-8% of cross-language questions got an answer, against 96% in one
language). And multilingual e5 gives a passage's translation a lower cosine than the passage itself for
the same question, so the ``dense`` feature sits lower too.

For each candidate whose hit is written in another language than the question
(:func:`~jisik.generate.language.text_language` of the hit's sentences, against the question's terms):

- the cosine is raised by :data:`CROSS_LANGUAGE_SHIFT` before it is rescaled into the dense feature;
- ``lexical`` and ``context`` become at least that dense feature: the sentence is judged on meaning
  alone, so its score stays on the scale ``MIN_SCORE`` was set for, and a term it does share with the
  question (a name, a number) still counts.

Same-language candidates are left exactly as they were. ``benchmarks/cross_language.py`` measures the
effect (docs/benchmarks-retrieval.md, "Cross-language questions").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from jisik.generate.extractive import DENSE_FLOOR, Candidate, Features, dense_feature
from jisik.generate.language import detect_language, text_language

__all__ = ["CROSS_LANGUAGE_SHIFT", "cross_language_features", "cross_language_rows"]

# Added to a cross-language cosine. Calibrated so that NOT_FOUND works as in one language: with the gold
# passages taken out of the top-6 hits, the answerer still answers 41% of cross-language MS MARCO questions
# (46% English→Korean, 35% Korean→English), as it does 41% of same-language ones (44% Korean, 37% English;
# the rest of the hits often do answer: MS MARCO marks one positive). 0.00 gives 5%, 0.02 24%, 0.04 59%.
# Measured on questions 1,000-1,299 of benchmarks/cross_language.py's sample (`--answer-offset 1000`); its
# answer check uses the first 300. It is far smaller than what the change of language costs a relevant
# passage (a question's cosine with its passage's translation is 0.08-0.10 below that with the passage: the
# benchmark's "language gap"), because NOT_FOUND is decided among weak candidates, whose cosines drop much
# less. multilingual-e5-small only: another embedder has another shift, as it has another DENSE_FLOOR.
CROSS_LANGUAGE_SHIFT = 0.03


def cross_language_rows(question_terms: Sequence[str], texts: Sequence[str],
                        groups: Sequence[int] | None = None) -> npt.NDArray[np.bool_]:
    """For each text, whether it is written in another language than the question.

    The question's language is read from its analysed terms (Kiwi morphemes or English stems keep its
    script and word order). With ``groups`` (each text's hit), the language of a group's texts taken
    together decides for all of them: a URL or a name alone on a line of a Korean chunk stays Korean.

    >>> texts = ["환불은 3영업일 이내입니다.", "http://example.com/refunds", "Refunds take 3 days."]
    >>> cross_language_rows(["long", "refund", "take"], texts).tolist()
    [True, False, False]
    >>> cross_language_rows(["long", "refund", "take"], texts, groups=[0, 0, 1]).tolist()
    [True, True, False]
    """
    language = detect_language(" ".join(question_terms))
    keys = list(range(len(texts))) if groups is None else list(groups)
    joined: dict[int, list[str]] = {}
    for key, text in zip(keys, texts, strict=True):
        joined.setdefault(key, []).append(text)
    other = {key: text_language(" ".join(parts)) != language for key, parts in joined.items()}
    return np.array([other[key] for key in keys], dtype=bool)


def cross_language_features(features: Features, question_terms: Sequence[str], candidates: Sequence[Candidate],
                            cosines: npt.ArrayLike, floor: float = DENSE_FLOOR,
                            shift: float = CROSS_LANGUAGE_SHIFT) -> Features:
    """``features`` (rows ``[lexical, context, dense, rank]``) with the rows of other-language hits rescored.

    Such a row's cosine is raised by ``shift`` and rescaled as usual; ``lexical`` and ``context`` become
    at least that. Below, an English question and a Korean sentence at cosine 0.82: its dense feature
    0.28 becomes 0.40, and its term features follow; the English sentence is untouched.

    >>> ko = Candidate(0, 0, 0, 15, "환불은 3영업일 이내입니다.")
    >>> en = Candidate(1, 0, 0, 20, "Refunds take 3 days.")
    >>> f = np.array([[0.0, 0.0, 0.28, 1.0], [0.5, 0.6, 0.40, 0.67]])
    >>> cross_language_features(f, ["refund"], [ko, en], [0.82, 0.85]).round(2).tolist()
    [[0.4, 0.4, 0.4, 1.0], [0.5, 0.6, 0.4, 0.67]]
    """
    rows = cross_language_rows(question_terms, [c.text for c in candidates], [c.hit_index for c in candidates])
    if not rows.any():
        return features
    out = features.copy()
    dense = dense_feature(np.asarray(cosines, dtype=np.float64)[rows] + shift, floor)
    out[rows, 2] = dense
    out[rows, 0] = np.maximum(out[rows, 0], dense)
    out[rows, 1] = np.maximum(out[rows, 1], dense)
    return out
