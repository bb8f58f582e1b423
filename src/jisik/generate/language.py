"""Which language a question is in, so the answer comes back in the same one."""

from __future__ import annotations

from typing import Literal

Language = Literal["ko", "en"]

NOT_FOUND: dict[str, str] = {
    "ko": "문서에서 답을 찾을 수 없습니다.",
    "en": "I could not find the answer in the documents.",
}


def _is_hangul(ch: str) -> bool:
    code = ord(ch)
    return 0xAC00 <= code <= 0xD7A3 or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F


def detect_language(text: str) -> Language:
    """``"ko"`` when Hangul makes up at least a fifth of the letters, else ``"en"``.

    A fifth, not a half: Korean questions about English products ("iPhone 15 Pro 반품은?") are
    still Korean questions.

    >>> detect_language("반품 기간은 며칠인가요?"), detect_language("How long is the return window?")
    ('ko', 'en')
    >>> detect_language("Galaxy S24 Ultra AS 기간은?")
    'ko'
    """
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "en"
    hangul = sum(1 for ch in letters if _is_hangul(ch))
    return "ko" if hangul * 5 >= len(letters) else "en"


def is_not_found(text: str) -> bool:
    """True when an answer is (or starts with) the "cannot find it" sentence in either language.

    >>> is_not_found("문서에서 답을 찾을 수 없습니다."), is_not_found("The window is 14 days [1].")
    (True, False)
    """
    head = text.strip().lower()
    return any(head.startswith(message.lower().rstrip(".")) for message in NOT_FOUND.values())
