"""Sentence splitting as character spans into the original string.

Korean goes through Kiwi's ``split_into_sents`` (it knows that 했다 ends a sentence even without a
full stop, and that 3.5 or 1.2절 do not); every paragraph is then refined by a rule splitter for
English and other scripts that respects abbreviations, initials and decimals. Blank lines always end
a sentence. Spans never overlap and never start or end with whitespace; the whitespace between
sentences is outside every span.

Both splitters propose boundaries after a full stop that real documents use for other things: Korean
dates (``2024. 3. 15.``), list markers (``Ⅰ. 유동자산``, ``제3조(정의) 1.``, ``Item 2. Management's``) and
numbers inside Korean text (``유동자산 1. 현금``). Every such candidate, from either splitter, passes one
guard, :func:`false_stop`; a Kiwi sentence that ends at a false stop is merged with the next one. A line
that opens with a list marker starts a new sentence (:func:`split_at_items`): the marker belongs to its item.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from jisik.text._kiwi import get_kiwi

Span = tuple[int, int]

__all__ = [
    "detach_trailing_markers",
    "false_stop",
    "merge_false_stops",
    "paragraph_spans",
    "rule_sentence_spans",
    "split_at_items",
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


# Korean dates: "2024. 3. 15." and "2017. 2." (year, month, optional day, each closed by a full stop).
# A line break may fall inside one ("2024. 3.\n15.") where a PDF wraps the line.
_KO_DATE = re.compile(r"(?<![\d.])[12]\d{3}\.\s?(?:1[0-2]|0?[1-9])\.(?:\s?(?:3[01]|[12]\d|0?[1-9])\.)?")
# What may stand before a full stop as a list marker: a short number, a Roman numeral (Unicode Ⅰ-ⅻ or
# ASCII capitals), a single letter, or one of the Hangul enumerators 가, 나, 다, ...
_ENUMERATOR = re.compile(r"(?:\d{1,3}|[\u2160-\u217f]|[IVXLC]{1,6}|[A-Za-z]|[가나다라마바사아자차카타파하])")
_NUMERAL = re.compile(r"(?:[\d,]*\d|[\u2160-\u217f]|[IVXLC]{1,6})")
# Words after which "N." numbers a heading rather than ending a sentence, even mid-line. Words often cited at
# the end of a sentence ("see Section 2.", "in Table 3.") count only at the start of a line.
_HEADING_LABEL = re.compile(r"(?:\b(?:item|part|article|chapter)|제\s?\d+\s?[조항장절관편](?:의\s?\d+)?"
                            r"(?:\s?\([^()\n]{0,40}\))?)\s*$", re.IGNORECASE)
_LINE_LABEL = re.compile(
    r"^\s*(?:(?:item|part|article|chapter|section|note|schedule|exhibit|appendix|annex|step)\s+)?$", re.IGNORECASE)


def _token_start(text: str, dot: int) -> int:
    """Where the word that ends at ``text[dot]`` starts (after whitespace or an opening bracket)."""
    start = dot
    while start > 0 and not text[start - 1].isspace() and text[start - 1] not in "([\"'“‘":
        start -= 1
    return start


def _in_korean_date(text: str, dot: int) -> bool:
    """Whether ``text[dot]`` is the stop after the year or the month of a Korean date."""
    for match in _KO_DATE.finditer(text, max(0, dot - 12), min(len(text), dot + 12)):
        if match.start() <= dot < match.end() - 1:
            return True
    return False


def _is_list_marker(text: str, dot: int) -> bool:
    """Whether ``text[dot]`` closes an enumerator at the start of a line or after a heading label."""
    start = _token_start(text, dot)
    if not _ENUMERATOR.fullmatch(text, start, dot):
        return False
    line_start = text.rfind("\n", 0, start) + 1
    before = text[line_start:start]
    return bool(_LINE_LABEL.match(before) or _HEADING_LABEL.search(before))


def _numeral_in_korean(text: str, dot: int) -> bool:
    """Whether ``text[dot]`` follows a bare numeral with Hangul as the nearest letter on both sides.

    A Korean sentence ends in a verb or copula ending (Kiwi finds those), never in a bare number, so
    "유동자산 1. 현금및현금성자산" is one item of a list, not two sentences.
    """
    start = _token_start(text, dot)
    if not _NUMERAL.fullmatch(text, start, dot):
        return False
    after = text[dot + 1 : dot + 8].lstrip().lstrip("\"'“‘(「『[")
    if not after or not _HANGUL.match(after):
        return False
    for char in reversed(text[max(0, start - 200) : start]):
        if char.isalpha():
            return bool(_HANGUL.match(char))
    return False


def false_stop(text: str, dot: int) -> bool:
    """Whether the full stop ``text[dot]`` is not a sentence end although space follows it.

    True inside a Korean date, after a list marker at the start of a line or after a heading label
    (Item, Part, 제3조, 제3조(정의)), and after a bare numeral amid Korean words.

    >>> t = "규정은 2024. 3. 15. 시행한다. Ⅰ. 유동자산 1. 현금 See Fig. 3. The end. Item 2. MD&A"
    >>> [t[_token_start(t, i) : i + 1] for i, c in enumerate(t) if c == "." and false_stop(t, i)]
    ['2024.', '3.', '15.', 'Ⅰ.', '1.', '2.']
    """
    if text[dot] != ".":
        return False
    return _in_korean_date(text, dot) or _is_list_marker(text, dot) or _numeral_in_korean(text, dot)


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
    if punct == "." and false_stop(text, dot_end - 1):
        return False
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


_TRAILING_MARKER = re.compile(r"(?<=[.!?])\s+((?:\d{1,2}|[\u2160-\u217f]|[가나다라마바사아자차카타파하])\.)$")


def detach_trailing_markers(text: str, spans: Sequence[Span]) -> list[Span]:
    """Move a list marker that Kiwi left at the end of a sentence ("...하였다. 다.") to the next sentence.

    >>> t = "원고는 대여하였다. 다. 피고는 갚지 않았다."
    >>> [t[s:e] for s, e in detach_trailing_markers(t, [(0, 13), (14, 25)])]
    ['원고는 대여하였다.', '다. 피고는 갚지 않았다.']
    """
    out = list(spans)
    for i in range(len(out) - 1):
        start, end = out[i]
        match = _TRAILING_MARKER.search(text, start, end)
        if match:
            out[i] = strip_span(text, start, match.start())
            out[i + 1] = (match.start(1), out[i + 1][1])
    return out


def merge_false_stops(text: str, spans: Sequence[Span]) -> list[Span]:
    """Join each span that ends at a :func:`false_stop` to the span after it.

    Kiwi cuts "Ⅱ. 비유동자산" after the numeral; this puts the marker back with its item.

    >>> t = "Ⅱ. 비유동자산 1. 유형자산"
    >>> [t[s:e] for s, e in merge_false_stops(t, [(0, 2), (3, 11), (12, 17)])]
    ['Ⅱ. 비유동자산 1. 유형자산']
    """
    merged: list[Span] = []
    for span in spans:
        if merged and false_stop(text, merged[-1][1] - 1):
            merged[-1] = (merged[-1][0], span[1])
        else:
            merged.append(span)
    return merged


# A line that opens with a list marker: "1. ", "Ⅱ. ", "가. ", "Item 2. ", "제3조 " (a new item or article).
_ITEM_LINE = re.compile(
    r"\n[^\S\n]*(?=(?:(?i:item|part|article|chapter|section|note)\s+)?"
    r"(?:\d{1,3}|[\u2160-\u217f]|[IVXLC]{1,6}|[가나다라마바사아자차카타파하])\.\s|제\s?\d+\s?조)"
)


def split_at_items(text: str, start: int, end: int) -> list[Span]:
    """``text[start:end]`` cut before every line that opens with a list marker (one item per line).

    A statement or a list whose items carry no full stop is one "sentence" to both splitters; its items are
    the units a reader quotes ("1. 현금및현금성자산 1,234").

    >>> t = "Ⅰ. 유동자산\\n1. 현금및현금성자산 1,234\\n2. 매출채권 890\\nwrapped 3. not an item 2010.\\n7. 20."
    >>> [t[s:e] for s, e in split_at_items(t, 0, len(t))]
    ['Ⅰ. 유동자산', '1. 현금및현금성자산 1,234', '2. 매출채권 890\\nwrapped 3. not an item 2010.\\n7. 20.']
    """
    spans: list[Span] = []
    pos = start
    for match in _ITEM_LINE.finditer(text, start, end):
        dot = text.find(".", match.end(), match.end() + 12)
        if dot != -1 and _in_korean_date(text, dot):  # "설립되었으며, 2010.\n7. 20." wraps a date
            continue
        spans.append(strip_span(text, pos, match.start()))
        pos = match.end()
    spans.append(strip_span(text, pos, end))
    return [(s, e) for s, e in spans if s < e]


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
            found = detach_trailing_markers(texts[i], _kiwi_sentence_spans(texts[i], paragraph, sents))
            kiwi_spans[i, paragraph] = merge_false_stops(texts[i], found)
    out: list[list[Span]] = []
    for i, (text, paras) in enumerate(zip(texts, paragraphs, strict=True)):
        spans: list[Span] = []
        for paragraph in paras:
            for s, e in kiwi_spans.get((i, paragraph), [paragraph]):
                for item in split_at_items(text, s, e):
                    spans.extend(rule_sentence_spans(text, *item))
        out.append(spans)
    return out


def split_sentences(text: str) -> list[Span]:
    """Sentence spans ``(start, end)`` of ``text``, in order, without whitespace at either end.

    >>> t = "반품은 14일 이내에 가능합니다 교환은 30일까지 됩니다. See p. 3 for details."
    >>> [t[s:e] for s, e in split_sentences(t)]
    ['반품은 14일 이내에 가능합니다', '교환은 30일까지 됩니다.', 'See p. 3 for details.']
    """
    return split_sentences_batch([text])[0]
