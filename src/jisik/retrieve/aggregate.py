"""Document- and page-level evidence from chunk hits: a long document whose best chunk ranks third but that
has three strong chunks can come first.

A document's score is its best chunk's plus a decayed sum of its next ones,
``s1 + decay * s2 + decay**2 * s3 ...`` over its ``depth`` best chunks. ``decay = 0`` is MaxP and ``decay = 1``
with ``depth = inf`` is SumP, the two passage-to-document aggregations of Dai & Callan (2019, "Deeper text
understanding for IR with contextual neural language modeling", SIGIR) — CombMAX and CombSUM of Fox & Shaw
(1994). The geometric decay sits between them: one very good chunk still beats many weak ones (MaxP is the
stronger of the two in Dai & Callan's runs), but among documents whose best chunks are close, the one with more
support wins. ``decay = 0.5, depth = 3`` caps a document's gain from support at 0.75 of its best chunk.

Scores are the search's own (fused scores are 0-1); with ``by="rank"`` each chunk counts ``1 / (60 + rank)``
instead (the RRF weight, Cormack et al. 2009), for scores that are not comparable across queries or lists.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Literal, TypeVar

if TYPE_CHECKING:
    from jisik.records import Hit

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

RANK_CONSTANT = 60  # Cormack et al. 2009, as in the RRF fusion


def aggregate_scores(scored: Sequence[tuple[K, float]], *, depth: int = 3, decay: float = 0.5) -> list[tuple[K, float]]:
    """Group ``(key, score)`` pairs (chunks, best first) by key; each key's score is its ``depth`` best scores
    weighted ``1, decay, decay**2, ...``. Best key first; ties keep the order of first appearance.

    >>> aggregate_scores([("a", 0.9), ("b", 0.8), ("c", 0.75), ("b", 0.7), ("b", 0.7)])
    [('b', 1.325), ('a', 0.9), ('c', 0.75)]
    >>> aggregate_scores([("a", 0.9), ("b", 0.8), ("b", 0.7)], decay=0.0)  # MaxP
    [('a', 0.9), ('b', 0.8)]
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth}")
    groups: dict[K, list[float]] = {}
    for key, score in scored:
        groups.setdefault(key, []).append(score)
    totals = []
    for order, (key, scores) in enumerate(groups.items()):
        best = sorted(scores, reverse=True)[:depth]
        totals.append((key, round(sum(s * decay**i for i, s in enumerate(best)), 12), order))
    totals.sort(key=lambda item: (-item[1], item[2]))
    return [(key, total) for key, total, _ in totals]


def rank_scores(keys: Sequence[K]) -> list[tuple[K, float]]:
    """``(key, 1 / (60 + rank))`` for keys in rank order: scores that depend on ranks alone.

    >>> rank_scores(["a", "b"])
    [('a', 0.01639344262295082), ('b', 0.016129032258064516)]
    """
    return [(key, 1.0 / (RANK_CONSTANT + rank)) for rank, key in enumerate(keys, start=1)]


def group_ranked(items: Sequence[T], key: Callable[[T], Hashable], score: Callable[[T], float], *, depth: int = 3,
                 decay: float = 0.5, by: Literal["score", "rank"] = "score") -> list[T]:
    """``items`` (best first) reordered group by group, best group first (:func:`aggregate_scores`); inside a
    group, items keep their order.

    >>> group_ranked([("a", .9), ("b", .8), ("c", .75), ("b", .7)], key=lambda x: x[0], score=lambda x: x[1])
    [('b', 0.8), ('b', 0.7), ('a', 0.9), ('c', 0.75)]
    >>> group_ranked([("a", 1.2), ("b", 0.8), ("c", -0.5), ("b", 0.7)], key=lambda x: x[0], score=lambda x: x[1])
    [('b', 0.8), ('b', 0.7), ('a', 1.2), ('c', -0.5)]
    """
    keys = [key(item) for item in items]
    scores = [score(i) for i in items]
    # negative scores (fused z-scores, below their mean) are measured from the pool's weakest item, so a group's
    # extra items add evidence: summed as they are, they would make a document lose by its own support
    floor = min([0.0, *scores])
    pairs = rank_scores(keys) if by == "rank" else [(k, s - floor) for k, s in zip(keys, scores, strict=True)]
    order = {k: position for position, (k, _) in enumerate(aggregate_scores(pairs, depth=depth, decay=decay))}
    return [item for _, item in sorted(enumerate(items), key=lambda pair: (order[keys[pair[0]]], pair[0]))]


def document_key(hit: Hit) -> str:
    return hit.doc_id


def page_key(hit: Hit) -> tuple[str, int | None]:
    return hit.doc_id, hit.page


def aggregate_hits(hits: Sequence[Hit], *, level: Literal["document", "page"] = "document", depth: int = 3,
                   decay: float = 0.5, by: Literal["score", "rank"] = "score") -> list[Hit]:
    """Hits reordered so the best-supported document (or page) comes first, its chunks together in their own
    order. Hits keep their scores: the order is the aggregation's, the score still the chunk's.

    Run it over the search's candidate pool (``fetch_k``), then cut to ``k``: a document can only gain from
    chunks that were retrieved.

    >>> from jisik.records import Hit
    >>> def hit(i, doc, score): return Hit(i, score, "", doc, doc, None, 1, None, 0, 1)
    >>> [h.chunk_id for h in aggregate_hits([hit(1, "x", .9), hit(2, "y", .8), hit(3, "y", .7), hit(4, "x", .1)])]
    [2, 3, 1, 4]
    """
    key = document_key if level == "document" else page_key
    return group_ranked(hits, key, lambda h: h.score, depth=depth, decay=decay, by=by)


def document_ranking(hits: Sequence[Hit], *, depth: int = 3, decay: float = 0.5,
                     by: Literal["score", "rank"] = "score") -> list[tuple[str, float]]:
    """``(doc_id, aggregated score)``, best document first.

    >>> from jisik.records import Hit
    >>> document_ranking([Hit(1, .9, "", "x", "x", None, 1, None, 0, 1), Hit(2, .5, "", "y", "y", None, 1, None, 0, 1)])
    [('x', 0.9), ('y', 0.5)]
    """
    scored = rank_scores([h.doc_id for h in hits]) if by == "rank" else [(h.doc_id, h.score) for h in hits]
    return aggregate_scores(scored, depth=depth, decay=decay)
