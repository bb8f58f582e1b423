"""Confidence intervals: percentile bootstrap of a mean and paired bootstrap of a difference."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jisik.errors import EvaluationError
from jisik.evaluate.metrics._common import _check_nonempty, _check_same_length


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
