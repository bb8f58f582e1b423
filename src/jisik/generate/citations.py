"""Map the ``[n]`` markers of an answer back to the numbered chunks the model was given.

Models write markers in many shapes: ``[1]``, ``[1, 3]``, ``[1][2]``, ``[2-4]``, ``[문서 1]``,
``[Document 2]``. All are read; markers that point at no source (``[7]`` when 5 were given) are
removed from the text and reported, never shown as if they were sources.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from jisik.records import Citation, Hit

_MARKER = re.compile(
    r"\[\s*(?:(?:문서|출처|source|document|doc)\s*)?(\d{1,3}(?:\s*(?:,|-|–|~)\s*(?:(?:문서|source|document|doc)\s*)?\d{1,3})*)\s*\]",
    re.IGNORECASE,
)
_MAX_RANGE = 20


@dataclass(slots=True)
class ResolvedCitations:
    text: str  # the answer with invalid markers removed
    cited: list[int]  # valid source numbers in order of first mention
    invalid: list[int]  # numbers that pointed at no source


def _numbers(group: str) -> list[int]:
    """Numbers in one marker's body, with ranges expanded.

    >>> _numbers("1, 3"), _numbers("2-4"), _numbers("1, document 2")
    ([1, 3], [2, 3, 4], [1, 2])
    """
    numbers: list[int] = []
    for part in re.split(r"\s*,\s*", group):
        bounds = [int(n) for n in re.findall(r"\d+", part)]
        if len(bounds) == 2 and 0 < bounds[1] - bounds[0] <= _MAX_RANGE:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds)
    return numbers


def resolve_citations(text: str, n_sources: int) -> ResolvedCitations:
    """Find markers, keep valid numbers (1..n_sources), drop invalid ones from the text.

    >>> r = resolve_citations("반품은 14일 이내입니다 [1][7]. 배송비는 무료입니다 [문서 2, 1].", 2)
    >>> r.text, r.cited, r.invalid
    ('반품은 14일 이내입니다 [1]. 배송비는 무료입니다 [2, 1].', [1, 2], [7])
    """
    cited: list[int] = []
    invalid: list[int] = []

    def replace(match: re.Match[str]) -> str:
        numbers = _numbers(match.group(1))
        valid = [n for n in numbers if 1 <= n <= n_sources]
        for n in numbers:
            if n in valid:
                if n not in cited:
                    cited.append(n)
            elif n not in invalid:
                invalid.append(n)
        if not valid:
            return ""
        return "[" + ", ".join(str(n) for n in dict.fromkeys(valid)) + "]"

    cleaned = _MARKER.sub(replace, text)
    cleaned = re.sub(r"[ \t]+([.,!?。])", r"\1", cleaned) if invalid else cleaned
    return ResolvedCitations(cleaned.strip(), cited, invalid)


class StreamedMarkers:
    """Checks ``[n]`` markers in an answer while it streams, so no streamed marker points at no source.

    Text from an unclosed ``[`` is held back until its ``]`` arrives (or it grows past
    ``_HOLD`` characters: then it is not a marker); a complete marker is rewritten as
    :func:`resolve_citations` would (invalid numbers dropped).

    >>> markers = StreamedMarkers(2)
    >>> [markers.feed(p) for p in ["14일입니다 [", "1][", "7]. 끝 [참고"]] + [markers.flush()]
    ['14일입니다 ', '[1]', '. 끝 ', '[참고']
    """

    _HOLD = 40

    def __init__(self, n_sources: int) -> None:
        self.n_sources = n_sources
        self._held = ""

    def feed(self, piece: str) -> str:
        text, self._held = self._held + piece, ""
        out: list[str] = []
        while text:
            start = text.find("[")
            if start < 0:
                out.append(text)
                break
            out.append(text[:start])
            rest = text[start:]
            end = rest.find("]")
            if end < 0:
                if len(rest) <= self._HOLD:
                    self._held = rest
                    break
                out.append("[")
                text = rest[1:]
                continue
            candidate = rest[: end + 1]
            if _MARKER.fullmatch(candidate):
                out.append(resolve_citations(candidate, self.n_sources).text)
                text = rest[end + 1 :]
            else:
                out.append("[")
                text = rest[1:]
        return "".join(out)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


def citation_for(number: int, hit: Hit, *, span: tuple[int, int] | None = None, cited: bool = True) -> Citation:
    """A :class:`Citation` of a whole chunk, or of ``span`` (document offsets) inside it.

    >>> h = Hit(7, 0.8, "반품은 14일 이내입니다. 배송비는 무료.", "faq", "faq.md", None, 2, None, 100, 122)
    >>> c = citation_for(1, h, span=(100, 114))
    >>> c.quote, c.span, c.page
    ('반품은 14일 이내입니다.', (100, 114), 2)
    """
    start, end = span if span is not None else (hit.start, hit.end)
    quote = hit.text[start - hit.start : end - hit.start] if span is not None else hit.text
    return Citation(number=number, chunk_id=hit.chunk_id, doc_id=hit.doc_id, source=hit.source, page=hit.page,
                    section=hit.section, span=(start, end), quote=quote, score=hit.score, cited=cited,
                    title=hit.title, scores=dict(hit.scores))


def build_citations(hits: Sequence[Hit], cited: Sequence[int],
                    spans: dict[int, tuple[int, int]] | None = None) -> tuple[list[Citation], list[Citation]]:
    """(citations in marker order, every source given) for numbered ``hits`` (number = index + 1)."""
    spans = spans or {}
    sources = [citation_for(i + 1, hit, span=spans.get(i + 1), cited=(i + 1) in cited) for i, hit in enumerate(hits)]
    return [sources[n - 1] for n in cited], sources
