"""BM25 as sparse vectors: what the Milvus store keeps for each chunk and sends for each query.

Why sparse vectors and not Milvus's own BM25 function: Korean needs jisik's analyzer (Kiwi), and the
numbers must be the embedded store's. Milvus's BM25 function analyses text itself (no Kiwi; milvus-lite
has only ``standard`` and ``jieba``, servers ``lindera``) and keeps its statistics per segment, while
BM25 with *global* statistics factors into an inner product: a chunk's vector holds each term's
saturated frequency ``tf / (tf + k1 (1 - b + b len / avgdl))`` and the query's holds each term's IDF.
jisik keeps the statistics (live chunks, total length, document frequencies) itself, in the knowledge
base's SQLite, in step with every write; Milvus only multiplies (docs/scale-out.md, measured).

The one approximation: a chunk's weights use the average length *when they were written*
(``avgdl_ref``); commit re-weighs every chunk once the live average drifts past
``[store] avgdl_tolerance`` (5%), so scores stay within that of the embedded store's.
The formulas are :mod:`jisik.store.bm25_index`'s own, for the methods that factor this way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from jisik.store.bm25_index import idf, normaliser, term_weight

# bm25l and bm25+ give every document a weight for query terms it lacks: not an inner product over its terms.
SPARSE_METHODS = ("lucene", "robertson", "atire")

SparseVector = dict[int, float]


def chunk_weights(term_ids: Sequence[int], avgdl: float, *, k1: float, b: float, method: str) -> SparseVector:
    """The stored vector of one chunk: its distinct term ids with their BM25 term-frequency weight.

    ``term_ids`` has one entry per occurrence (the chunk's length is their number).

    >>> chunk_weights([7, 7, 3], 3.0, k1=1.2, b=0.75, method="lucene")
    {7: 0.625, 3: 0.45454545454545453}
    """
    if not term_ids:
        return {}
    counts = Counter(term_ids)
    dn = float(normaliser(method, [len(term_ids)], avgdl, k1, b)[0])
    ids = list(counts)
    weights = term_weight(method, np.asarray([counts[i] for i in ids], dtype=np.float64), np.full(len(ids), dn), k1,
                          0.0)
    return {int(i): float(w) for i, w in zip(ids, weights.tolist(), strict=True)}


def query_weights(multiplicity: Mapping[int, int], df: Mapping[int, int], n_chunks: int, *,
                  method: str) -> SparseVector:
    """The query vector: IDF of each known term (live document frequency > 0) times its count in the query.

    >>> {t: round(w, 4) for t, w in query_weights({7: 1, 3: 2, 9: 1}, {7: 1, 3: 3, 9: 0}, 3, method="lucene").items()}
    {7: 0.9808, 3: 0.2671}
    """
    known = [t for t in multiplicity if df.get(t, 0) > 0]
    if not known or n_chunks <= 0:
        return {}
    values = idf(method, np.asarray([df[t] for t in known]), n_chunks)
    return {int(t): float(v) * multiplicity[t] for t, v in zip(known, values.tolist(), strict=True)}


def dot(query: Mapping[int, float], chunk: Mapping[int, float]) -> float:
    """The inner product Milvus computes (``metric_type = "IP"``).

    >>> dot({1: 2.0, 5: 1.0}, {1: 0.5, 4: 3.0})
    1.0
    """
    return float(sum(weight * chunk.get(term, 0.0) for term, weight in query.items()))


def drift(avgdl: float, avgdl_ref: float) -> float:
    """How far the live average chunk length has moved from the one the stored weights used.

    >>> round(drift(105.0, 100.0), 3), drift(10.0, 0.0)
    (0.05, inf)
    """
    return abs(avgdl - avgdl_ref) / avgdl_ref if avgdl_ref > 0 else float("inf")
