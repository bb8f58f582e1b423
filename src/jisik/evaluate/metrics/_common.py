"""What the metric modules share: type aliases, input checks, F1 and a zero-safe ratio."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from jisik.errors import EvaluationError

Language = Literal["en", "ko"]
AnswerStyle = Literal["squad", "korquad"]

_PRF_FIELDS = ("precision", "recall", "f1")


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
