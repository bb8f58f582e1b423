"""The store conformance suite on the embedded store, for each FAISS index kind, plus its own
crash-recovery behaviour and a BM25 check against rank_bm25."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import bm25s  # reference implementations (dev extra)
import numpy as np
import pytest
import rank_bm25

from jisik.errors import EmbedderMismatchError
from jisik.filters import Filter
from jisik.store.bm25_index import LexicalIndex
from jisik.store.local import LocalStore
from jisik.testing.store import DIM, StoreConformance, unit


@pytest.fixture(params=["flat", "hnsw", "ivf"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], LocalStore]:
    return lambda: LocalStore(tmp_path / "kb", index_kind=request.param)


class TestLocalStore(StoreConformance):
    pass


def test_bind_refuses_other_embedder(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    s.bind(embedder_model="e5", dim=384, analyzer="ko-en")
    with pytest.raises(EmbedderMismatchError, match="reindex"):
        s.bind(embedder_model="minilm", dim=384, analyzer="ko-en")
    with pytest.raises(EmbedderMismatchError, match="analyzer"):
        s.bind(embedder_model="e5", dim=384, analyzer="whitespace")
    s.bind(embedder_model="minilm", dim=384, analyzer="ko-en", replace=True)


def test_stale_or_corrupt_index_files_are_rebuilt_from_sqlite(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    s.bind(embedder_model="test", dim=DIM, analyzer="whitespace")
    s.write([unit("a.md", [("a.md", "alpha beta", {})], [[1, 0, 0, 0]])])
    s.commit_indexes()
    # Simulate a crash after the next SQLite commit but before the index save.
    s.write([unit("b.md", [("b.md", "gamma delta", {})], [[0, 1, 0, 0]])])
    s.close()
    header = json.loads((tmp_path / "index" / "dense" / "header.json").read_text())
    assert header["count"] == 1
    reopened = LocalStore(tmp_path)
    q = np.asarray([[0, 1, 0, 0]], dtype=np.float32)
    assert [h.doc_id for h in reopened.hits(reopened.search_dense(q, 1, Filter())[0])] == ["b.md"]
    assert [h.doc_id for h in reopened.hits(reopened.search_lexical([["gamma"]], 1, Filter())[0])] == ["b.md"]
    reopened.close()
    # Corrupt index files: still answered from SQLite.
    (tmp_path / "index" / "dense" / "header.json").write_text("{broken")
    shutil.rmtree(tmp_path / "index" / "bm25")
    again = LocalStore(tmp_path)
    assert len(again.search_dense(q, 5, Filter())[0]) == 2
    assert again.hits(again.search_lexical([["alpha"]], 1, Filter())[0])[0].doc_id == "a.md"
    again.close()


def test_bm25_scores_match_rank_bm25() -> None:
    """method='robertson' is the classic Okapi BM25 that rank_bm25.BM25Okapi computes."""
    corpus = [["반품", "기간", "14", "일"], ["배송", "기간", "무료"], ["환불", "카드", "취소", "기간"],
              ["반품", "배송비", "고객", "부담"], ["회원", "탈퇴"], ["교환", "사이즈", "색상"]]
    index = LexicalIndex(k1=1.5, b=0.75, method="robertson").build(np.arange(len(corpus), dtype=np.int64), corpus)
    reference = rank_bm25.BM25Okapi(corpus, k1=1.5, b=0.75, epsilon=0.25)
    for query in (["반품"], ["기간", "배송"], ["카드", "환불", "없는말"]):
        ours = index.scores(query)
        theirs = reference.get_scores(query)
        # rank_bm25 multiplies every term by (k1 + 1), a constant that leaves rankings unchanged, and floors
        # negative IDF (terms in over half the docs) at epsilon * mean IDF; no query term here is that common.
        assert np.allclose(ours * (1.5 + 1), theirs, rtol=1e-9, atol=1e-9), (query, ours, theirs)


def test_lucene_bm25_matches_formula() -> None:
    corpus = [["a", "b"], ["b", "c", "c"], ["d"]]
    index = LexicalIndex(k1=1.2, b=0.75, method="lucene").build(np.arange(3, dtype=np.int64), corpus)
    n, avgdl = 3, (2 + 3 + 1) / 3

    def score(term: str, doc: list[str]) -> float:
        df = sum(term in d for d in corpus)
        tf = doc.count(term)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        return idf * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * len(doc) / avgdl)) if tf else 0.0

    expected = [score("c", d) + score("b", d) for d in corpus]
    assert np.allclose(index.scores(["c", "b"]), expected, rtol=1e-12)


def test_streamed_token_id_build_scores_like_the_token_build() -> None:
    """The store builds BM25 from rows read one at a time (less memory); scores equal bm25s's own build."""
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(200)] + ["반품", "환불", "기간"]
    corpus = [[str(w) for w in rng.choice(words, size=int(rng.integers(0, 30)))] for _ in range(400)]
    for method in ("lucene", "robertson", "bm25+"):
        tokens = LexicalIndex(method=method).build(np.arange(len(corpus), dtype=np.int64), corpus)
        streamed = LexicalIndex(method=method).build_streaming((i, doc) for i, doc in enumerate(corpus))
        reference = bm25s.BM25(k1=1.2, b=0.75, method=method, dtype="float64")
        reference.index(corpus, show_progress=False)
        for query in (["반품"], ["w1", "w2", "w3"], ["기간", "없는말"], [""], []):
            known = [t for t in query if t in reference.vocab_dict and t]
            expected = reference.get_scores(known) if known else np.zeros(len(corpus))
            assert np.allclose(streamed.scores(query), expected, rtol=0, atol=1e-9), (method, query)
            assert np.array_equal(tokens.scores(query), streamed.scores(query)), (method, query)
            assert tokens.top_k(query, 10, None) == streamed.top_k(query, 10, None)


def test_ivf_trains_once_there_are_enough_vectors_and_status_says_so(tmp_path: Path) -> None:
    """The first writes are few (IVF cannot train yet): the index says it is flat until N vectors; once the
    corpus passes N, the next commit trains it, and a reopened store keeps the trained index."""
    store = LocalStore(tmp_path, index_kind="ivf")
    store.bind(embedder_model="test", dim=DIM, analyzer="whitespace")
    rng = np.random.default_rng(5)
    store.write([unit("first.md", [("first.md", "first", {})], [[1, 0, 0, 0]])])
    store.commit_indexes()
    state = store.stats().extra["dense"]
    assert state["trained"] is False and "untrained: flat until" in state["state"]
    vectors = rng.normal(size=(3000, DIM))
    for start in range(0, 3000, 500):
        store.write([unit(f"v{n}.md", [(f"v{n}.md", f"vector {n}", {})], [vectors[n]])
                     for n in range(start, start + 500)])
    store.commit_indexes()
    state = store.stats().extra["dense"]
    assert state["trained"] is True and state["trained_on"] == 3001
    assert "lists trained on 3,001 vectors" in state["state"]
    store.close()
    reopened = LocalStore(tmp_path, index_kind="ivf")
    probe = vectors[42] / np.linalg.norm(vectors[42])
    assert reopened.hits(reopened.search_dense(probe[None, :].astype(np.float32), 1, Filter())[0])[0].doc_id == "v42.md"
    assert reopened.stats().extra["dense"]["trained"] is True
    reopened.close()
