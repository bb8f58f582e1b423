"""Adaptive hybrid fusion (the default) and search-time routing by derived metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jisik import KnowledgeBase
from jisik.config import KBConfig
from jisik.embed.hashing import HashingEmbedder
from jisik.records import Document
from jisik.retrieve.fusion import adaptive_weights, zscore_fusion
from jisik.store.bm25_index import LexicalIndex

SHOP = [
    Document(doc_id="returns", source="returns.md", text="반품 기간은 구매 후 14일입니다. 영수증이 필요합니다."),
    Document(doc_id="shipping", source="shipping.md",
             text="배송은 보통 2일에서 3일 걸립니다. 제주도는 하루 더 걸립니다."),
    Document(doc_id="warranty", source="warranty.md", text="제품 보증 기간은 1년입니다. 배터리는 6개월 보증합니다."),
    Document(doc_id="refunds-en", source="refunds.md", text="Refunds are paid within three business days."),
]


def test_adaptive_is_the_default_fusion() -> None:
    assert KBConfig().retrieval.fusion == "adaptive"


def test_lexical_scores_of_given_chunks_match_the_full_scoring() -> None:
    rng = np.random.default_rng(0)
    vocabulary = [f"t{i}" for i in range(30)]
    docs = [[str(t) for t in rng.choice(vocabulary, size=int(rng.integers(3, 12)))] for _ in range(50)]
    ids = np.arange(100, 150)
    index = LexicalIndex().build(ids, docs).with_changes([(200, ["t1", "t2", "t2"])], removed=[103, 117])
    query = ["t1", "t2", "t9"]
    full = dict(zip(index.ids.tolist(), index.scores(query).tolist(), strict=True))
    wanted = [200, 104, 103, 117, 149, 999]  # 103 and 117 deleted, 999 never indexed
    expected = [full.get(i, 0.0) for i in wanted]
    assert index.scores_of(query, wanted) == pytest.approx(expected)
    assert index.scores_of(["unknown"], wanted) == [0.0] * len(wanted)


def test_hybrid_hits_carry_both_scores_even_when_one_retriever_missed_them(tmp_path: Path) -> None:
    with KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder()) as kb:
        kb.add_documents(SHOP)
        hits = kb.search("반품 기간은 며칠인가요?", k=4)
    assert hits[0].doc_id == "returns"
    assert all("dense" in hit.scores and "hybrid" in hit.scores for hit in hits)
    # the dense-only candidates got their real BM25 score (0 when no term matches), not a missing one
    assert hits[0].scores["bm25"] > 0


def test_adaptive_fusion_follows_the_retriever_whose_best_candidate_stands_out() -> None:
    dense = [(1, 0.82), (2, 0.81), (3, 0.80), (4, 0.79)]  # flat: dense cannot tell
    bm25 = [(3, 12.0), (1, 2.0), (2, 1.5), (4, 1.0)]      # BM25's best stands far apart
    weights = adaptive_weights([dense, bm25], [0.5, 0.5])
    assert weights[1] > weights[0]
    fused = zscore_fusion([dense, bm25], weights, [dense, bm25])
    assert fused[0][0] == 3
    # the same lists with equal fixed weights would still follow dense's tiny margin less surely
    assert zscore_fusion([dense, bm25], [0.5, 0.5], [dense, bm25])[0][0] == 3


def test_cross_language_chunks_are_not_penalised_by_bm25(tmp_path: Path) -> None:
    with KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder()) as kb:
        kb.add_documents(SHOP)
        hits = kb.search("How long do refunds take?", k=4)
    assert hits[0].doc_id == "refunds-en"
    assert np.isfinite([hit.score for hit in hits]).all()


FILINGS = [
    Document(doc_id=f"sec/{name}.pdf", source=f"sec/{name}.pdf", title=name,
             text="Net sales increased compared with the same quarter a year ago. Gross margin was stable.")
    for name in ("2022 Q3 AAPL", "2023 Q3 AAPL", "2023 Q3 MSFT")
]


@pytest.mark.parametrize("self_query", ["filter", "boost"])
def test_a_question_naming_a_company_and_quarter_is_routed_to_that_filing(tmp_path: Path, self_query: str) -> None:
    overrides = {"routing": {"self_query": self_query, "boost": 2.0}}
    with KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(), overrides=overrides) as kb:
        kb.add_documents(FILINGS)
        assert kb.search("What was AAPL's gross margin in Q3 2023?", k=1)[0].doc_id == "sec/2023 Q3 AAPL.pdf"
        assert kb.search("Microsoft's net sales in the third quarter of 2023?", k=1)[0].doc_id == \
            "sec/2023 Q3 MSFT.pdf"
        # a question that names nothing the documents hold is searched as usual
        assert len(kb.search("How did gross margin change?", k=3)) == 3


def test_a_route_that_matches_no_document_falls_back_to_the_whole_collection(tmp_path: Path) -> None:
    overrides = {"routing": {"self_query": "filter"}}
    with KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(), overrides=overrides) as kb:
        kb.add_documents(FILINGS)
        hits = kb.search("AAPL gross margin in Q1 2021?", k=3)
    assert hits, "a route to a quarter no document has must not empty the search"


def test_document_aggregation_puts_the_best_supported_document_first(tmp_path: Path) -> None:
    docs = [Document(doc_id="one-strong", source="a.md", text="Gross margin fell. Gross margin notes."),
            Document(doc_id="many", source="b.md",
                     text="Gross margin rose.\n\nGross margin by segment.\n\nGross margin outlook.")]
    overrides = {"routing": {"self_query": "off", "aggregate": "document"}, "chunking": {"size": 30, "overlap": 0}}
    with KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(), overrides=overrides) as kb:
        kb.add_documents(docs)
        hits = kb.search("gross margin", k=4)
    order = [hit.doc_id for hit in hits]
    assert order == sorted(order, key=order.index)  # each document's chunks together
    assert order[0] == "many"


def test_a_korean_typo_still_finds_the_chunk_through_search(tmp_path: Path) -> None:
    with KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder()) as kb:
        kb.add_documents(SHOP)
        hits = kb.search("배타리는요?", mode="bm25", k=1)  # 배터리, one vowel off: no chunk holds 배타리
        assert [hit.doc_id for hit in hits] == ["warranty"]
        assert kb.search("반품기간", mode="bm25", k=1)[0].doc_id == "returns"  # no space: Kiwi splits the compound
