"""Lazy imports of optional dependencies, failing with the exact install command."""

from __future__ import annotations

import importlib
from types import ModuleType

from jisik.errors import MissingDependencyError


def require(module: str, *, extra: str | None = None, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the install command.

    >>> require("json").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        target = f"jisik[{extra}]" if extra else (package or module)
        raise MissingDependencyError(
            f"The optional dependency '{package or module}' is not installed",
            hint=f"pip install '{target}'",
        ) from exc
