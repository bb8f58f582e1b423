"""Moved: the backend-neutral filter model lives in :mod:`jisik.filters` (a bottom-layer module the
stores use too). This module re-exports it so existing imports keep working; import from
``jisik.filters`` in new code. (``store/base.py`` and ``store/local.py`` still import from here until
they are switched.)
"""

from __future__ import annotations

from jisik.filters import (
    BUILTIN_FIELDS,
    Condition,
    Filter,
    Op,
    Scalar,
    build_filter,
    parse_condition,
    parse_scalar,
    source_matches,
)

__all__ = ["BUILTIN_FIELDS", "Condition", "Filter", "Op", "Scalar", "build_filter", "parse_condition",
           "parse_scalar", "source_matches"]
