"""Query-side spelling correction for Korean BM25 terms: one jamo off, corrected to an indexed term.

A Korean typo is almost always one wrong key on the two-set keyboard, i.e. one jamo of one
syllable: 기간 typed 기깐 (initial ㄱ → ㄲ), 배송 typed 배승 (vowel), 환불 typed 환부 (final dropped).
BM25 then has nothing to match: the misspelt term is in no document. This module proposes, for a
query term that is **not** in the index's vocabulary, the indexed term one jamo away that most
documents contain — the same idea as a spelling suggester over the index's own terms (Lucene's
``DirectSpellChecker``, which also suggests only terms that occur in the index, ranked by frequency),
measured in jamo rather than syllables, because one syllable holds up to three keystrokes.

Candidates are generated rather than searched: a syllable has 19 initials, 21 vowels and 28 finals
(none included), so a word of n syllables has at most 65·n neighbours at distance 1 — about 260
dictionary look-ups for a 4-syllable word, well under a millisecond, with no index to build.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

__all__ = ["correct_terms", "neighbours", "split_syllable"]

_BASE = 0xAC00
_LAST = 0xD7A3
_N_INITIAL, _N_VOWEL, _N_FINAL = 19, 21, 28

# A term needs at least this many syllables to be corrected. One-syllable terms (일, 년, 차) are
# too short: nearly every jamo edit of them is another real word, so a "correction" is a guess.
MIN_SYLLABLES = 2


def split_syllable(syllable: str) -> tuple[int, int, int] | None:
    """(initial, vowel, final) indexes of a precomposed Hangul syllable; None for anything else.

    Final 0 means no final consonant (Unicode's arithmetic, chapter 3.12 of the standard).

    >>> split_syllable("간"), split_syllable("가"), split_syllable("a")
    ((0, 0, 4), (0, 0, 0), None)
    """
    code = ord(syllable) - _BASE
    if not 0 <= code <= _LAST - _BASE:
        return None
    return code // (_N_VOWEL * _N_FINAL), (code // _N_FINAL) % _N_VOWEL, code % _N_FINAL


def _syllable(initial: int, vowel: int, final: int) -> str:
    return chr(_BASE + (initial * _N_VOWEL + vowel) * _N_FINAL + final)


def neighbours(word: str) -> Iterator[str]:
    """Every word one jamo away from ``word``: one syllable's initial, vowel or final changed
    (a final added or dropped included). Non-Hangul characters are kept and never edited.

    >>> "기간" in set(neighbours("기깐")), "환불" in set(neighbours("환부")), len(set(neighbours("가")))
    (True, True, 65)
    """
    for i, char in enumerate(word):
        parts = split_syllable(char)
        if parts is None:
            continue
        initial, vowel, final = parts
        head, tail = word[:i], word[i + 1 :]
        for other in range(_N_INITIAL):
            if other != initial:
                yield head + _syllable(other, vowel, final) + tail
        for other in range(_N_VOWEL):
            if other != vowel:
                yield head + _syllable(initial, other, final) + tail
        for other in range(_N_FINAL):
            if other != final:
                yield head + _syllable(initial, vowel, other) + tail


def _hangul_syllables(term: str) -> int:
    return sum(1 for c in term if split_syllable(c) is not None)


def correct_terms(terms: Sequence[str], document_frequency: Callable[[str], int]) -> list[str]:
    """``terms`` with each Hangul term that no document contains replaced by its most frequent
    indexed neighbour one jamo away (:func:`neighbours`); a term with no such neighbour stays.

    ``document_frequency(term)`` is how many indexed chunks contain ``term`` (0 when none). Ties
    keep the first candidate in :func:`neighbours` order, so the result is deterministic.

    >>> df = {"반품": 40, "기간": 25, "반품기간": 3, "기관": 9}.get
    >>> correct_terms(["반품", "기깐", "iphon"], lambda t: df(t, 0))
    ['반품', '기간', 'iphon']
    """
    out: list[str] = []
    for term in terms:
        if _hangul_syllables(term) < MIN_SYLLABLES or document_frequency(term) > 0:
            out.append(term)
            continue
        best, best_df = term, 0
        for candidate in neighbours(term):
            df = document_frequency(candidate)
            if df > best_df:
                best, best_df = candidate, df
        out.append(best)
    return out
