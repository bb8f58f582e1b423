"""Sentence splitting as character spans into the original string.

Korean goes through Kiwi's ``split_into_sents`` (it knows that 했다 ends a sentence even without a
full stop, and that 3.5 or 1.2절 do not); every paragraph is then refined by a rule splitter for
English and other scripts that respects abbreviations, initials and decimals. Blank lines always end
a sentence. Spans never overlap and never start or end with whitespace; the whitespace between
sentences is outside every span.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from jisik.text._kiwi import get_kiwi

Span = tuple[int, int]

__all__ = [
    "paragraph_spans",
    "rule_sentence_spans",
    "split_sentences",
    "split_sentences_batch",
    "strip_span",
]

_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7a3\ud7b0-\ud7ff]")
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n\s*")
# A sentence end: terminal punctuation, optional closing quotes/brackets, then whitespace.
# CJK full stops end a sentence with no space after them.
_CLOSERS = "\"'”’)]」』"
_LATIN_END = re.compile(rf"[.!?…]+[{re.escape(_CLOSERS)}]*(?=\s)")
_CJK_END = re.compile(rf"[。！？]+[{re.escape(_CLOSERS)}]*")
# Words that end in "." without ending a sentence (lowercase, without the final dot).
ABBREVIATIONS: frozenset[str] = frozenset(
    str.split(
        """mr mrs ms dr prof sr jr st mt vs etc e.g i.e cf al approx dept est fig figs no nos vol vols
    p pp ch sec art inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov dec
    a.m p.m u.s u.k u.n gen col lt sgt capt rev hon op ed eds"""
    )
)


def strip_span(text: str, start: int, end: int) -> Span:
    """Shrink ``[start, end)`` so it neither starts nor ends with whitespace (may become empty).

    >>> strip_span("  ab c \\n", 0, 8)
    (2, 6)
    """
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def paragraph_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Stripped, non-empty stretches of ``text[start:end]`` between blank lines.

    >>> paragraph_spans("One.\\n\\n  Two\\nlines.\\n \\n")
    [(0, 4), (8, 18)]
    """
    end = len(text) if end is None else end
    spans = []
    pos = start
    for match in _BLANK_LINE.finditer(text, start, end):
        spans.append(strip_span(text, pos, match.start()))
        pos = match.end()
    spans.append(strip_span(text, pos, end))
    return [(s, e) for s, e in spans if s < e]


def _ends_sentence(text: str, start: int, dot_end: int, punct: str) -> bool:
    """Whether the punctuation ``punct`` ending at ``dot_end`` closes a sentence.

    Not when the word before a single "." is a known abbreviation or a one-letter initial
    ("Dr.", "e.g.", "J."), nor when the next word starts in lowercase ("approx. five", "Yahoo! is").
    """
    nxt = dot_end
    while nxt < len(text) and text[nxt].isspace():
        nxt += 1
    if nxt < len(text) and text[nxt].islower():
        return False
    if punct != ".":
        return True
    word_start = dot_end - 1
    while word_start > start and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start : dot_end - 1].lower().lstrip("\"'“‘([")
    return not (word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()))


def rule_sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Rule-based sentence spans of ``text[start:end]``; for English and other spaced scripts.

    >>> t = "Dr. Kim paid $3.50 on Jan. 5. It rained! Then e.g. this. 東京に行った。次"
    >>> [t[s:e] for s, e in rule_sentence_spans(t)]
    ['Dr. Kim paid $3.50 on Jan. 5.', 'It rained!', 'Then e.g. this.', '東京に行った。', '次']
    """
    end = len(text) if end is None else end
    cuts: list[int] = []
    for match in _LATIN_END.finditer(text, start, end):
        punct = match.group().rstrip(_CLOSERS)
        if _ends_sentence(text, start, match.start() + len(punct), punct[-1]):
            cuts.append(match.end())
    cuts.extend(m.end() for m in _CJK_END.finditer(text, start, end))
    spans = []
    pos = start
    for cut in sorted(set(cuts)):
        spans.append(strip_span(text, pos, cut))
        pos = cut
    spans.append(strip_span(text, pos, end))
    return [(s, e) for s, e in spans if s < e]


def _kiwi_sentence_spans(text: str, paragraph: Span, sents: Sequence[Any]) -> list[Span]:
    """Kiwi's sentences of ``text[paragraph]`` as ordered, stripped spans of ``text``."""
    p_start, p_end = paragraph
    spans: list[Span] = []
    pos = p_start
    for sent in sents:
        # Kiwi reports code-point offsets into the string it was given; clamp them so spans stay
        # ordered and inside the paragraph whatever it returns.
        s, e = strip_span(text, max(pos, p_start + int(sent.start)), min(p_end, p_start + int(sent.end)))
        if s < e:
            spans.append((s, e))
            pos = e
    if pos < p_end:  # anything Kiwi left out (trailing symbols) joins the last sentence
        if spans:
            spans[-1] = strip_span(text, spans[-1][0], p_end)
        else:
            spans.append(paragraph)
    return spans


def split_sentences_batch(texts: Sequence[str]) -> list[list[Span]]:
    """:func:`split_sentences` of every text, with one Kiwi batch call for all Korean paragraphs."""
    paragraphs = [paragraph_spans(text) for text in texts]
    korean = [
        (i, p) for i, (text, paras) in enumerate(zip(texts, paragraphs, strict=True))
        for p in paras if _HANGUL.search(text, p[0], p[1])
    ]
    kiwi_spans: dict[tuple[int, Span], list[Span]] = {}
    if korean:
        kiwi = get_kiwi()
        pieces = [texts[i][s:e] for i, (s, e) in korean]
        results = kiwi.split_into_sents(pieces, return_sub_sents=False)
        for (i, paragraph), sents in zip(korean, results, strict=True):
            kiwi_spans[i, paragraph] = _kiwi_sentence_spans(texts[i], paragraph, sents)
    out: list[list[Span]] = []
    for i, (text, paras) in enumerate(zip(texts, paragraphs, strict=True)):
        spans: list[Span] = []
        for paragraph in paras:
            for s, e in kiwi_spans.get((i, paragraph), [paragraph]):
                spans.extend(rule_sentence_spans(text, s, e))
        out.append(spans)
    return out


def split_sentences(text: str) -> list[Span]:
    """Sentence spans ``(start, end)`` of ``text``, in order, without whitespace at either end.

    >>> t = "반품은 14일 이내에 가능합니다 교환은 30일까지 됩니다. See p. 3 for details."
    >>> [t[s:e] for s, e in split_sentences(t)]
    ['반품은 14일 이내에 가능합니다', '교환은 30일까지 됩니다.', 'See p. 3 for details.']
    """
    return split_sentences_batch([text])[0]
