"""Maximal marginal relevance (Carbonell & Goldstein, SIGIR 1998)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def maximal_marginal_relevance(query: npt.NDArray[np.float32], candidates: npt.NDArray[np.float32], k: int,
                               lambda_mult: float = 0.5) -> list[int]:
    """Pick ``k`` candidate rows maximising ``λ·sim(q, d) − (1−λ)·max_{s∈S} sim(d, s)``.

    Vectors are unit length, so similarity is the dot product. Returns row indices in pick order.

    >>> q = np.array([1.0, 0.0], dtype=np.float32)
    >>> c = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0]], dtype=np.float32)
    >>> maximal_marginal_relevance(q, c, 2, lambda_mult=0.25)
    [0, 2]
    >>> maximal_marginal_relevance(q, c, 2, lambda_mult=1.0)
    [0, 1]
    """
    if k <= 0 or len(candidates) == 0:
        return []
    relevance = candidates @ query
    chosen = [int(np.argmax(relevance))]
    # Max similarity of every candidate to the chosen set, updated incrementally: O(k·n·d).
    redundancy = candidates @ candidates[chosen[0]]
    while len(chosen) < min(k, len(candidates)):
        score = lambda_mult * relevance - (1.0 - lambda_mult) * redundancy
        score[chosen] = -np.inf
        best = int(np.argmax(score))
        chosen.append(best)
        redundancy = np.maximum(redundancy, candidates @ candidates[best])
    return chosen
