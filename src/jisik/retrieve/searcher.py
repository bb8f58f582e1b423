"""Search orchestration: dense, bm25, hybrid (RRF or weighted fusion) and MMR over any Store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, get_args

import numpy as np
from pydantic import BaseModel, ValidationError

from jisik.errors import QueryError
from jisik.filters import Filter
from jisik.records import Hit
from jisik.retrieve.fusion import adaptive_weights, reciprocal_rank_fusion, weighted_fusion, zscore_fusion
from jisik.retrieve.mmr import maximal_marginal_relevance
from jisik.text.analyzers import analyze_queries
from jisik.text.language import detect_language, text_language
from jisik.text.spelling import correct_terms

if TYPE_CHECKING:
    from jisik.choices import Fusion, SearchMode
    from jisik.config import RetrievalConfig
    from jisik.embed.base import Embedder, Vectors
    from jisik.store.base import ScoredIds, Store, StoreReader
    from jisik.text.analyzers import Analyzer

MAX_QUERY_CHARS = 10_000
# A chunk's language is settled by its first few sentences; reading no further bounds the cost of telling the
# language of the ~80 candidates of a hybrid search: 1.6 ms for 80 on the shared 2-core box at load average 9.
LANGUAGE_PREFIX_CHARS = 300


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """Per-call search settings; ``None`` fields fall back to the knowledge base's [retrieval] config."""

    mode: SearchMode
    k: int
    where: Filter
    threshold: float | None
    fetch_k: int
    lambda_mult: float
    fusion: Fusion
    rrf_k: int
    dense_weight: float
    bm25_weight: float

    @classmethod
    def resolve(cls, config: RetrievalConfig, where: Filter, **overrides: object) -> SearchOptions:
        """Merge per-call ``overrides`` into ``config`` and check them with the config's own rules.

        The same pydantic model that validates ``[retrieval]`` in jisik.toml validates the call, so
        ``fusion="xyz"`` or ``dense_weight=-1`` is refused here exactly as it would be in the file.
        """
        values = {name: getattr(config, name) for name in _OPTION_FIELDS}
        values.update({key: value for key, value in overrides.items() if value is not None})
        try:
            checked = type(config).model_validate(values)
        except ValidationError as exc:
            raise _option_error(exc, values, type(config)) from None
        return cls(where=where, **{name: getattr(checked, name) for name in _OPTION_FIELDS})


_OPTION_FIELDS = ("mode", "k", "threshold", "fetch_k", "lambda_mult", "fusion", "rrf_k", "dense_weight",
                  "bm25_weight")
_LABELS = {"mode": "search mode"}  # keeps the long-standing "unknown search mode 'x'" wording


def _option_error(exc: ValidationError, values: dict[str, object], model: type[BaseModel]) -> QueryError:
    """One QueryError for the first problem pydantic found, naming the option and what is allowed."""
    error = exc.errors()[0]
    name = ".".join(str(part) for part in error["loc"])
    if not name:  # a model-level rule, e.g. both weights 0
        return QueryError(str(error["msg"]).removeprefix("Value error, "),
                          hint="give dense_weight or bm25_weight a value above 0")
    value = values.get(name)
    if error["type"] == "literal_error":
        allowed = get_args(model.model_fields[name].annotation)
        return QueryError(f"unknown {_LABELS.get(name, name)} '{value}'", hint=f"use one of {', '.join(allowed)}")
    return QueryError(f"invalid {name} {value!r}: {str(error['msg']).lower()}")


class Searcher:
    def __init__(self, store: Store, embedder: Embedder, analyzer: Analyzer) -> None:
        self.store = store
        self.embedder = embedder
        self.analyzer = analyzer

    def search_batch(self, queries: Sequence[str], options: SearchOptions) -> list[list[Hit]]:
        """Hits for each query, all read from one committed generation of the store (``hit.generation``)."""
        for query in queries:
            _check_query(query)
        mode = options.mode
        pool = max(options.k, options.fetch_k)
        # embedding and analysis first: the store's read snapshot stays open only for the store's part
        query_vectors = self.embedder.embed_queries(list(queries)) if mode != "bm25" else None
        # the query side of the analyser: ko-en drops question words (언제, 어떻게 되나요) there (issue 14, part 5)
        query_terms = analyze_queries(self.analyzer, queries) if mode in ("bm25", "hybrid") else None
        with self.store.reader() as view:
            if query_terms is not None:  # a Korean term no chunk holds (a typo: 기깐) becomes its indexed neighbour
                query_terms = [correct_terms(terms, view.document_frequency) for terms in query_terms]
            dense = (view.search_dense(query_vectors, options.k if mode == "dense" else pool, options.where)
                     if query_vectors is not None else [[] for _ in queries])
            lexical = (view.search_lexical(query_terms, pool, options.where)
                       if query_terms is not None else [[] for _ in queries])
            results = []
            for row, query in enumerate(queries):
                qvec = query_vectors[row] if query_vectors is not None else None
                terms = query_terms[row] if query_terms is not None else []
                results.append(self._one(view, query, qvec, terms, dense[row], lexical[row], options))
        return results

    def _one(self, view: StoreReader, query: str, qvec: Vectors | None, terms: Sequence[str], dense: ScoredIds,
             lexical: ScoredIds, options: SearchOptions) -> list[Hit]:
        cosine = dict(dense)
        bm25 = dict(lexical)
        fetched: dict[int, Hit] = {}
        if options.mode == "dense":
            ranked = dense
        elif options.mode == "bm25":
            ranked = lexical
        elif options.mode == "hybrid":
            # The candidates' texts tell which of them BM25 cannot judge (another language than the
            # query); fetched once for the whole pool, they also make the returned hits below.
            ids = dict.fromkeys(i for i, _ in [*dense, *lexical])
            fetched = {hit.chunk_id: hit for hit in view.hits([(i, 0.0) for i in ids])}
            abstain = [set(), other_language_ids(query, {i: hit.text for i, hit in fetched.items()})]
            weights = [options.dense_weight, options.bm25_weight]
            if options.fusion == "rrf":
                ranked = reciprocal_rank_fusion([dense, lexical], k=options.rrf_k, weights=weights, abstain=abstain)
            elif options.fusion == "adaptive":
                # weights from this query's own score distributions, over the two top lists as retrieved ...
                judged = [dense, [(i, s) for i, s in lexical if i not in abstain[1]]]
                weights = adaptive_weights(judged, weights)
                # ... then every candidate scored by both retrievers, so none is judged by its absence
                complete = _complete(view, qvec, terms, cosine, bm25, list(ids))
                ranked = zscore_fusion(complete, weights, [dense, lexical], abstain=abstain)
            else:
                ranked = weighted_fusion([dense, lexical], weights, abstain=abstain)
        else:
            ranked = self._mmr(view, qvec, dense, options)
        needs_cosine = options.threshold is not None or options.mode == "hybrid"
        if needs_cosine and qvec is not None:
            missing = [i for i, _ in ranked[: options.k * 4] if i not in cosine]
            if missing:
                cosine.update(zip(missing, (view.vectors(missing) @ qvec).tolist(), strict=True))
        if options.threshold is not None:
            gate = bm25 if options.mode == "bm25" else cosine
            ranked = [(i, s) for i, s in ranked if gate.get(i, float("-inf")) >= options.threshold]
        top = ranked[: options.k]
        hits = [replace(fetched[i], score=s) for i, s in top if i in fetched] if fetched else view.hits(top)
        for hit in hits:
            if hit.chunk_id in cosine:
                hit.scores["dense"] = cosine[hit.chunk_id]
            if hit.chunk_id in bm25:
                hit.scores["bm25"] = bm25[hit.chunk_id]
            if options.mode in ("hybrid", "mmr"):
                hit.scores[options.mode] = hit.score
        return hits

    def _mmr(self, view: StoreReader, qvec: Vectors | None, dense: ScoredIds, options: SearchOptions,
             ) -> ScoredIds:
        if qvec is None or not dense:
            return []
        ids = [i for i, _ in dense]
        candidates = view.vectors(ids)
        picks = maximal_marginal_relevance(np.asarray(qvec, dtype=np.float32), candidates, options.k,
                                           options.lambda_mult)
        return [(ids[p], float(dense[p][1])) for p in picks]


def _complete(view: StoreReader, qvec: Vectors | None, terms: Sequence[str], cosine: dict[int, float],
              bm25: dict[int, float], candidates: list[int]) -> list[ScoredIds]:
    """Fill ``cosine`` and ``bm25`` in for every candidate of either list (cosines from the stored vectors, BM25
    scores from the index, 0.0 where no query term occurs) and return both lists in candidate order."""
    missing = [i for i in candidates if i not in cosine]
    if missing and qvec is not None:
        cosine.update(zip(missing, (view.vectors(missing) @ qvec).tolist(), strict=True))
    missing = [i for i in candidates if i not in bm25]
    if missing:
        scores = view.lexical_scores([terms], [missing])[0] if terms else [0.0] * len(missing)
        bm25.update(zip(missing, scores, strict=True))
    return [[(i, cosine[i]) for i in candidates if i in cosine], [(i, bm25[i]) for i in candidates]]


def other_language_ids(query: str, texts: Mapping[int, str]) -> set[int]:
    """The chunks written in another language than ``query``: BM25 cannot match any of its terms in them.

    Korean or English: the query by :func:`~jisik.text.language.detect_language` (its grammar, the
    rule that picks the answer's language: "Galaxy S24 보증 기간은?" is Korean, and its terms can match a
    Korean chunk), each chunk by :func:`~jisik.text.language.text_language`. A Korean chunk that
    quotes an English name stays Korean: a stray match of a name, URL or number is no reason to let BM25
    judge it for an English question.

    >>> other_language_ids("How long do refunds take?", {1: "환불은 3영업일 이내입니다.", 2: "Refunds take 3 days."})
    {1}
    """
    language = detect_language(query)
    return {i for i, text in texts.items() if text_language(text[:LANGUAGE_PREFIX_CHARS]) != language}


def _check_query(query: object) -> None:
    if not isinstance(query, str) or not query.strip():
        raise QueryError("the query is empty", hint="type a question or some keywords")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is {len(query):,} characters long; the limit is {MAX_QUERY_CHARS:,}",
                         hint="search with a shorter question or the key sentence")
