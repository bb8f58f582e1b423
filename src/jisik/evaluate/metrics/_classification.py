"""Classification: accuracy, precision, recall and F1 per label and averaged (macro, micro, binary)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from jisik.errors import EvaluationError
from jisik.evaluate.metrics._common import _PRF_FIELDS, _check_nonempty, _check_same_length, _f1, _ratio


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
