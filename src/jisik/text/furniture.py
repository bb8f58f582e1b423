"""Page furniture: running headers, footers and page numbers that a PDF repeats at the edges of its pages.

They are not content, and the extractive answerer quoted them: "Apple Inc. | Q3 2022 Form 10-Q | 17" shares
the question's words (the company, the form) and answers nothing. But a running header is often the only
place a chunk names its document, which retrieval needs, so the PDF loader drops only page numbers
(:func:`strip_furniture` with the :func:`is_page_number` shapes), records one example of every other
furniture line under :data:`METADATA_KEY`, and the answerer cuts those lines off what it quotes
(:func:`trim_furniture`) and counts their words as context. A line is furniture when its *shape*
(whitespace collapsed, every run of digits replaced by ``#``, so page numbers match) is among the first or
last :data:`EDGE_LINES` lines of at least :data:`MIN_SHARE` of a document's pages (and of at least
:data:`MIN_PAGES` pages). Lines without a letter (page numbers "17", "- 17 -") are furniture only as the
very first or last line of a page and with at most one number, so a table row of figures that happens to
end a page is never taken.

Measured on the 20 SEC 10-Q filings: running headers cover 44-92% of their pages ("Table of Contents",
"Apple Inc. | Q# # Form #-Q | #", "PART I" / "Item #"), section running heads 21-35% ("PART II",
"MD&A #"); the most frequent edge line that is content, "See accompanying Notes to Condensed
Consolidated Financial Statements.", closes 18% of Apple's pages. Hence 20%. Two lines at each edge catch
all of these; a third adds only statement headings such as "(Unaudited)".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence, Set

__all__ = [
    "EDGE_LINES", "METADATA_KEY", "MIN_PAGES", "MIN_SHARE", "furniture_examples", "furniture_shapes", "is_page_number",
    "line_shape", "metadata_lines", "metadata_shapes", "strip_furniture", "trim_furniture",
]

METADATA_KEY = "page_furniture"  # document metadata: one example line of each furniture shape, one per line
EDGE_LINES = 2  # headers and footers take one or two lines; a third line is already body (SEC: same catch)
MIN_SHARE = 0.20
MIN_PAGES = 3
_LETTER = re.compile(r"[^\W\d_]")
_DIGITS = re.compile(r"\d+")


def line_shape(line: str) -> str:
    """A line with whitespace collapsed and each run of digits replaced by ``#``.

    >>> line_shape("  Apple Inc. | Q3 2022  Form 10-Q | 17 ")
    'Apple Inc. | Q# # Form #-Q | #'
    """
    return _DIGITS.sub("#", " ".join(line.split()))


def is_page_number(shape: str) -> bool:
    """A shape without letters and with one number ("#", "- # -", "# /"): what a page number looks like.

    >>> is_page_number("- # -"), is_page_number("Apple Inc. | #"), is_page_number("# #")
    (True, False, False)
    """
    return not _LETTER.search(shape) and shape.count("#") == 1 and len(shape) <= 8


def _edge_indices(count: int, edge: int) -> list[int]:
    """Indices of the first and last ``edge`` of ``count`` lines, leaving at least one line of body between.

    >>> _edge_indices(10, 3), _edge_indices(3, 3), _edge_indices(1, 3)
    ([0, 1, 2, 7, 8, 9], [0, 2], [])
    """
    side = min(edge, (count - 1) // 2)
    return [*range(side), *range(count - side, count)] if side > 0 else []


def _edge_shapes(lines: Sequence[str], edge: int) -> set[str]:
    """Shapes that may be furniture on a page whose non-empty lines are ``lines``."""
    indices = _edge_indices(len(lines), edge)
    shapes = {line_shape(lines[i]) for i in indices}
    return {s for s in shapes if _LETTER.search(s)} | {
        line_shape(lines[i]) for i in indices[:1] + indices[-1:] if is_page_number(line_shape(lines[i]))}


def furniture_shapes(pages: Sequence[str], *, share: float = MIN_SHARE, edge: int = EDGE_LINES,
                     min_pages: int = MIN_PAGES) -> set[str]:
    """Shapes of the lines that recur at the edges of at least ``share`` (and ``min_pages``) of ``pages``.

    >>> pages = [f"ACME Corp. | Report | {n}\\nPage {n} body: item {n * 7}.\\n{n}" for n in range(1, 6)]
    >>> sorted(furniture_shapes(pages))
    ['#', 'ACME Corp. | Report | #']
    """
    counts: Counter[str] = Counter()
    for page in pages:
        lines = [line for line in page.splitlines() if line.strip()]
        if lines:
            counts.update(_edge_shapes(lines, edge))
    needed = max(min_pages, share * len(pages))
    return {shape for shape, n in counts.items() if n >= needed}


def strip_furniture(pages: Sequence[str], shapes: set[str] | None = None, *, edge: int = EDGE_LINES) -> list[str]:
    """``pages`` without their furniture lines (only at the edges; the same words mid-page stay).

    >>> pages = [f"ACME Corp. | Report | {n}\\nPage {n} says ACME Corp. | Report | 9.\\n{n}" for n in range(1, 6)]
    >>> strip_furniture(pages)[1]
    'Page 2 says ACME Corp. | Report | 9.'
    """
    shapes = furniture_shapes(pages, edge=edge) if shapes is None else shapes
    if not shapes:
        return list(pages)
    out = []
    for page in pages:
        lines = page.splitlines()
        filled = [i for i, line in enumerate(lines) if line.strip()]
        ends = [filled[j] for j in _edge_indices(len(filled), edge)]
        outer = set(ends[:1] + ends[-1:])  # where a page number may stand
        keep = [line for i, line in enumerate(lines)
                if i not in ends or line_shape(line) not in shapes or (not _LETTER.search(line) and i not in outer)]
        out.append("\n".join(keep).strip("\n"))
    return out


def furniture_examples(pages: Sequence[str], shapes: Set[str]) -> list[str]:
    """The first line of each furniture shape as written (digits kept), in order of appearance.

    >>> furniture_examples(["Apple Inc. | Q3 2022 Form 10-Q | 3\\nBody."], {"Apple Inc. | Q# # Form #-Q | #"})
    ['Apple Inc. | Q3 2022 Form 10-Q | 3']
    """
    found: dict[str, str] = {}
    for page in pages:
        for line in page.splitlines():
            shape = line_shape(line)
            if shape in shapes and shape not in found:
                found[shape] = " ".join(line.split())
    return list(found.values())


def metadata_lines(metadata: Mapping[str, object]) -> list[str]:
    """The furniture lines a loader recorded under :data:`METADATA_KEY` (none when absent).

    >>> metadata_lines({METADATA_KEY: "Apple Inc. | Q3 2022 Form 10-Q | 3"})
    ['Apple Inc. | Q3 2022 Form 10-Q | 3']
    """
    value = metadata.get(METADATA_KEY)
    return value.split("\n") if isinstance(value, str) and value else []


def metadata_shapes(metadata: Mapping[str, object]) -> frozenset[str]:
    """The shapes of :func:`metadata_lines`: what :func:`trim_furniture` cuts.

    >>> sorted(metadata_shapes({METADATA_KEY: "Apple Inc. | Q3 2022 Form 10-Q | 3"}))
    ['Apple Inc. | Q# # Form #-Q | #']
    """
    return frozenset(line_shape(line) for line in metadata_lines(metadata))


def trim_furniture(text: str, start: int, end: int, shapes: Set[str]) -> tuple[int, int]:
    """Shrink ``[start, end)`` so it neither starts nor ends with a furniture line (may become empty).

    For text that kept its furniture, or a chunk that spans a page end: the answerer must not quote it.

    >>> t = "pressure.\\nApple Inc. | Q3 2022 Form 10-Q | 17"
    >>> t[slice(*trim_furniture(t, 0, len(t), {"Apple Inc. | Q# # Form #-Q | #"}))]
    'pressure.'
    """
    while start < end:
        newline = text.find("\n", start, end)
        first_end = end if newline == -1 else newline
        if line_shape(text[start:first_end]) not in shapes:
            break
        start = end if newline == -1 else newline + 1
    while start < end:
        newline = text.rfind("\n", start, end)
        if line_shape(text[newline + 1 : end]) not in shapes:
            break
        end = max(start, newline)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
