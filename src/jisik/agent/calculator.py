"""Safe arithmetic for agents: numbers, + - * / // % **, parentheses, percentages and a few functions.

The expression is parsed with :mod:`ast` and only number literals, those operators and the named functions
are evaluated; names, attributes, calls to anything else, and exponents or results too large to be sensible
are refused (no ``eval``: an expression from a model is untrusted text).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from jisik.errors import ToolError

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "abs": abs, "round": round, "min": min, "max": max, "sqrt": math.sqrt, "log": math.log, "log10": math.log10,
    "exp": math.exp}
_CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_ABS = 1e300
MAX_EXPONENT = 1000
MAX_CHARS = 500


def _normalise(expression: str) -> str:
    """What models write, made Python: thousands separators, ×÷, ^ for powers, 12% for 0.12, $ and 원.

    >>> _normalise("(1,234 − 1,000) × 2 ÷ 4")
    '(1234 - 1000) * 2 / 4'
    >>> _normalise("25% of 80")
    '(25/100) * 80'
    """
    text = expression.strip().strip("`")
    text = text.replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**").replace("–", "-")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"[$€£₩]|(?<=\d)\s*(?:원|달러|dollars?|USD|KRW)\b", "", text)
    text = re.sub(r"(\d+(?:\.\d+)?)\s*%\s*(?:of)?", r"(\1/100) *", text)
    text = re.sub(r"\*\s*$", "", text).strip()
    return text


def _evaluate(node: ast.AST) -> float | int:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolError(f"the exponent {right} is too large")
        try:
            value = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError as exc:
            raise ToolError("division by zero") from exc
        if isinstance(value, complex) or abs(value) > MAX_ABS:
            raise ToolError("the result is out of range")
        return value  # type: ignore[no-any-return]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))  # type: ignore[no-any-return]
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            and not node.keywords):
        arguments = [_evaluate(a) for a in node.args]
        try:
            return _FUNCTIONS[node.func.id](*arguments)
        except (ValueError, TypeError) as exc:
            raise ToolError(f"{node.func.id}{tuple(arguments)}: {exc}") from exc
    shown = ast.unparse(node) if isinstance(node, ast.expr) else type(node).__name__
    raise ToolError(f"'{shown}' is not arithmetic",
                    hint=f"use numbers, + - * / ** % ( ) and {', '.join(_FUNCTIONS)}")


def calculate(expression: str) -> float | int:
    """The value of an arithmetic expression; :class:`ToolError` for anything else.

    >>> calculate("(94836 - 117154) / 117154 * 100")  # doctest: +ELLIPSIS
    -19.050...
    >>> calculate("2 ** 10"), calculate("sqrt(16)"), calculate("1,200 × 3")
    (1024, 4.0, 3600)
    >>> calculate("__import__('os').system('ls')")
    Traceback (most recent call last):
    jisik.errors.ToolError: '__import__('os').system('ls')' is not arithmetic (use numbers, + - * / ** % ( ) and \
abs, round, min, max, sqrt, log, log10, exp)
    """
    if not isinstance(expression, str) or not expression.strip():
        raise ToolError("the expression is empty", hint="send e.g. {\"expression\": \"(3 - 2) / 2\"}")
    if len(expression) > MAX_CHARS:
        raise ToolError(f"the expression is longer than {MAX_CHARS} characters")
    text = _normalise(expression)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"'{expression}' is not an arithmetic expression ({exc.msg})",
                        hint="send e.g. {\"expression\": \"(3 - 2) / 2\"}") from exc
    return _evaluate(tree)


def format_number(value: float | int) -> str:
    """A result as a model should read it: integers whole, other values to 6 significant digits.

    >>> format_number(3600), format_number(-19.05066152244055), format_number(4.0)
    ('3600', '-19.0507', '4')
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return f"{value:.6g}"
