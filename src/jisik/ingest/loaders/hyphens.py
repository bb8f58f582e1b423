"""Words broken at a line end by a hyphen: join the syllables of one word, keep the hyphen of a compound.

PDFium does not say which hyphen a PDF meant. pypdfium2 5.x returns every hyphen that ends a line,
TeX's discretionary "param-|eters" and Word's compound "stock-|based" alike, as U+FFFE (``get_text_range``)
or U+0002 (``get_text_bounded``) and joins the two lines; other builds keep ``-`` and the line break. Only
U+00AD (SOFT HYPHEN), where a producer writes it, is unambiguous. So each broken word is judged on the
evidence of its own document, which almost always spells the same word again (:func:`hyphen_verdict`):

1. a digit on either side ("COVID-|19", "10-|K") or a capital after a small letter ("non-|GAAP"): a hyphen;
2. the document writes the pair with a hyphen elsewhere ("stock-based"): a hyphen;
3. the document writes the joined word elsewhere ("parameters"): joined;
4. the document writes the first part as a hyphenated prefix ("non-controlling" for "non-|cancellable") or the
   second as a hyphenated suffix ("-based"), or the first part is a word that already follows a hyphen
   ("state-of-the-|art"; but "self-ref-|erential" is joined): a hyphen;
5. both parts are words of the document on their own ("well", "known"): a hyphen;
6. otherwise the second part is a word fragment ("discrim-|inators"): joined.

Measured with pypdfium2 5.15.2: of the 156 line-end hyphens in the 20 SEC 10-Q filings (148 reported as U+FFFE,
8 as "-" and a line break after a digit: "10-|K"), all compounds, 155 keep their hyphen ("self-|driving" is
joined); of the 53 in two TeX-made PDFs (a GNU manual and an ACM-style paper; all but "YYMMDDhhmm-|hh"
discretionary) 52 are joined.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MARK", "Vocabulary", "dehyphenate", "hyphen_verdict", "mark_line_end_hyphens", "vocabulary"]

MARK = "\ufffe"  # one marker for every spelling of "hyphen at a line end" (see mark_line_end_hyphens)
_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
_BROKEN = re.compile(rf"([^\W_]*){MARK}([^\W_]*)")
# A hyphen that ends a line between two word characters, as builds that keep the line break return it;
# U+00AD is a discretionary hyphen by definition, so it is dropped together with its line break.
_DASH_NEWLINE = re.compile(r"(?<=[^\W_])-[ \t]*\n[ \t]*(?=[^\W_])")
_SOFT_HYPHEN = re.compile(r"\u00ad(?:[ \t]*\n[ \t]*)?")


def mark_line_end_hyphens(text: str) -> str:
    """Every spelling of a line-end hyphen as :data:`MARK`; U+00AD dropped (it is always discretionary).

    >>> mark_line_end_hyphens("param\\x02eters com-\\npiler 10-\\nK dis\\u00ad\\ncrete")
    'param\\ufffeeters com\\ufffepiler 10\\ufffeK discrete'
    """
    text = text.replace("\x02", MARK)
    text = _SOFT_HYPHEN.sub("", text)
    return _DASH_NEWLINE.sub(MARK, text)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """How one document spells its words: the words (lowercase, hyphenated ones also joined) and hyphen pairs."""

    words: frozenset[str]
    pairs: frozenset[tuple[str, str]]
    prefixes: frozenset[str]  # first parts of hyphen pairs ("non" of "non-GAAP")
    suffixes: frozenset[str]  # second parts ("based" of "stock-based")


def vocabulary(pages: Sequence[str]) -> Vocabulary:
    """The :class:`Vocabulary` of a document's pages; words touching a :data:`MARK` are not counted.

    >>> v = vocabulary(["Stock-based pay \\ufffe. The para\\ufffemeters."])
    >>> sorted(v.words), sorted(v.pairs)
    (['based', 'pay', 'stock', 'stockbased', 'the'], [('stock', 'based')])
    """
    words: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for page in pages:
        for match in _WORD.finditer(page):
            start, end = match.span()
            if (start and page[start - 1] == MARK) or (end < len(page) and page[end] == MARK):
                continue  # a broken word is the question, not the evidence
            parts = match.group().lower().split("-")
            words.update(parts)
            words.add("".join(parts))
            pairs.update(itertools.pairwise(parts))
    return Vocabulary(frozenset(words), frozenset(pairs), frozenset(a for a, _ in pairs),
                      frozenset(b for _, b in pairs))


def hyphen_verdict(left: str, right: str, vocab: Vocabulary, *, in_compound: bool = False) -> bool:
    """Whether ``left`` + line-end hyphen + ``right`` keeps its hyphen (True) or is one word (False).

    ``in_compound``: a hyphen comes right before ``left`` ("state-of-the" before "art").

    >>> v = vocabulary(["well, it is known. We fit parameters; stock-based pay; non-controlling"])
    >>> [hyphen_verdict(a, b, v) for a, b in [("param", "eters"), ("discrim", "inators"), ("COVID", "19"),
    ...                                       ("well", "known"), ("stock", "based"), ("non", "cancellable")]]
    [False, False, True, True, True, True]
    """
    if not left or not right:
        return True
    if left[-1].isdigit() or right[0].isdigit() or (left[-1].islower() and right[0].isupper()):
        return True
    low_left, low_right = left.lower(), right.lower()
    if (low_left, low_right) in vocab.pairs:
        return True
    if low_left + low_right in vocab.words:
        return False
    if low_left in vocab.prefixes or low_right in vocab.suffixes:
        return True
    if in_compound and low_left in vocab.words:
        return True
    return low_left in vocab.words and low_right in vocab.words


def dehyphenate(pages: Sequence[str]) -> list[str]:
    """Resolve every :data:`MARK` of a document's pages to ``-`` or nothing, judged on the whole document.

    >>> dehyphenate(["Our model has few param\\ufffeeters.", "Fewer parameters; the state-of-the\\ufffeart."])
    ['Our model has few parameters.', 'Fewer parameters; the state-of-the-art.']
    """
    if not any(MARK in page for page in pages):
        return list(pages)
    vocab = vocabulary(pages)

    def resolve(match: re.Match[str]) -> str:
        left, right = match.group(1), match.group(2)
        in_compound = match.string[match.start() - 1 : match.start()] == "-"
        return f"{left}-{right}" if hyphen_verdict(left, right, vocab, in_compound=in_compound) else left + right

    return [_BROKEN.sub(resolve, page) for page in pages]
