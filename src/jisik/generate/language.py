"""The answer's language: the not-found sentences, and detection re-exported from :mod:`jisik.text.language`."""

from __future__ import annotations

from jisik.text.language import Language, detect_language, text_language

__all__ = ["NOT_FOUND", "Language", "detect_language", "is_not_found", "text_language"]

NOT_FOUND: dict[str, str] = {
    "ko": "문서에서 답을 찾을 수 없습니다.",
    "en": "I could not find the answer in the documents.",
}


def is_not_found(text: str) -> bool:
    """True when an answer is (or starts with) the "cannot find it" sentence in either language.

    >>> is_not_found("문서에서 답을 찾을 수 없습니다."), is_not_found("The window is 14 days [1].")
    (True, False)
    """
    head = text.strip().lower()
    return any(head.startswith(message.lower().rstrip(".")) for message in NOT_FOUND.values())
