"""jisik (지식): local-first question answering over your own documents, in Korean and English."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["KnowledgeBase", "__version__"]

if TYPE_CHECKING:
    from jisik.kb import KnowledgeBase


def __getattr__(name: str) -> Any:
    # Lazy, so `import jisik` stays cheap for the CLI's --help.
    if name == "KnowledgeBase":
        from jisik.kb import KnowledgeBase

        return KnowledgeBase
    raise AttributeError(name)
