"""Which language a text is written in, Korean or English: for the answer's language, and for telling
which chunks a query's BM25 terms cannot match (retrieval)."""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["ko", "en"]


def _is_hangul(ch: str) -> bool:
    code = ord(ch)
    return 0xAC00 <= code <= 0xD7A3 or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F


def detect_language(text: str) -> Language:
    """``"ko"`` when Hangul is at least half of the letters, or when the sentence ends in Korean.

    The ending decides mixed questions: Korean grammar (particles, endings, the predicate) comes
    last, so "Galaxy S24 Ultra AS 기간은?" is Korean while "What does 반품 mean?" is English.

    >>> detect_language("반품 기간은 며칠인가요?"), detect_language("How long is the return window?")
    ('ko', 'en')
    >>> detect_language("Galaxy S24 Ultra AS 기간은?"), detect_language("What does 반품 mean?")
    ('ko', 'en')
    """
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "en"
    hangul = sum(1 for ch in letters if _is_hangul(ch))
    if hangul * 2 >= len(letters):
        return "ko"
    words = [word for word in text.split() if any(ch.isalpha() for ch in word)]
    return "ko" if hangul and any(_is_hangul(ch) for ch in words[-1]) else "en"


_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN = re.compile(r"[A-Za-z]")


def text_language(text: str) -> Language:
    """The language of a passage: ``"ko"`` when at least as many of its words hold Hangul as hold only Latin.

    Words, not letters, are counted because a Hangul syllable packs two or three letters: a Korean
    manual sentence full of English terms is still Korean, a word with both ("Ultra의") is Korean, and
    a URL is one word. Unlike :func:`detect_language` it does not look at the last word, which decides
    a short question but not a chunk.

    >>> text_language("API 키를 발급받으려면 Settings > Developer 메뉴로 이동하세요.")
    'ko'
    >>> text_language("Refunds are issued within 3 business days (환불)."), text_language("3,000원")
    ('en', 'ko')
    """
    hangul = latin = 0
    for word in text.split():
        if _HANGUL.search(word):
            hangul += 1
        elif _LATIN.search(word):
            latin += 1
    return "ko" if hangul and hangul >= latin else "en"
