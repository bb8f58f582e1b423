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

from jisik.evaluate.metrics._answers import citation_accuracy, groundedness, groundedness_rate
from jisik.evaluate.metrics._bleu import BleuScore, corpus_bleu, sentence_bleu
from jisik.evaluate.metrics._bleu import Smoothing as Smoothing
from jisik.evaluate.metrics._bootstrap import bootstrap_ci, paired_bootstrap
from jisik.evaluate.metrics._classification import (
    ClassificationScores,
    classification_scores,
    from_confusion,
    per_label_scores,
)
from jisik.evaluate.metrics._common import AnswerStyle as AnswerStyle
from jisik.evaluate.metrics._common import Language as Language
from jisik.evaluate.metrics._qa import exact_match, normalize_answer, token_f1
from jisik.evaluate.metrics._retrieval import (
    average_precision,
    hit_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    retrieval_scores,
)
from jisik.evaluate.metrics._rouge import PRF, rouge, rouge_corpus
from jisik.evaluate.metrics._tokenize import kiwi_tokens, porter_stem, rouge_tokenize, tokenize_13a

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
