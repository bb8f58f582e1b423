"""The conformance suite every Store backend must pass (local today, Milvus later).

A backend's test module subclasses :class:`StoreConformance` and provides a ``store`` fixture
that yields an empty store bound to a 4-dimensional embedder.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from jisik.records import Chunk, Document, Segment
from jisik.retrieve.filters import Filter, build_filter
from jisik.store.base import FileRecord, IngestUnit, Store

DIM = 4


def unit(path: str, docs: list[tuple[str, str, dict[str, object]]], vectors: list[list[float]],
         terms: list[list[str]] | None = None, page: int | None = 1) -> IngestUnit:
    """One file's worth of documents with one chunk each (text = doc text)."""
    documents, chunks = [], []
    for doc_id, text, meta in docs:
        documents.append(Document(doc_id=doc_id, source=doc_id.split("#")[0], text=text, title=doc_id,
                                  segments=[Segment(0, len(text), page, "S")], metadata=dict(meta),  # type: ignore[arg-type]
                                  content_hash=doc_id))
        chunks.append(Chunk(doc_id=doc_id, ordinal=0, text=text, start=0, end=len(text), page=page, section="S"))
    matrix = np.asarray(vectors, dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    record = FileRecord(path=f"/data/{path}", root="/data", content_hash=path + str(time.time()), size=1, mtime=1.0)
    return IngestUnit(file=record, documents=documents, chunks=chunks, vectors=matrix,
                      terms=terms or [t.lower().split() for _, t, _ in docs])


class StoreConformance:
    @pytest.fixture
    def filled(self, store: Store) -> Store:
        store.write([
            unit("a.md", [("a.md", "refund policy days", {"lang": "en", "year": 2021})], [[1, 0, 0, 0]]),
            unit("b.md", [("b.md", "shipping policy abroad", {"lang": "en", "year": 2023})], [[0, 1, 0, 0]]),
            unit("c.csv", [("c.csv#1", "반품 기간 안내", {"lang": "ko", "year": 2024}),
                           ("c.csv#2", "배송 기간 안내", {"lang": "ko", "year": 2022})],
                 [[0, 0, 1, 0], [0, 0, 0.9, 0.1]], terms=[["반품", "기간", "안내"], ["배송", "기간", "안내"]]),
        ])
        store.commit_indexes()
        return store

    def test_dense_search_orders_by_cosine(self, filled: Store) -> None:
        q = np.asarray([[0, 0, 1, 0]], dtype=np.float32)
        ids = filled.search_dense(q, 2, Filter())[0]
        hits = filled.hits(ids)
        assert [h.doc_id for h in hits] == ["c.csv#1", "c.csv#2"]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)

    def test_lexical_search(self, filled: Store) -> None:
        hits = filled.hits(filled.search_lexical([["반품"]], 5, Filter())[0])
        assert [h.doc_id for h in hits] == ["c.csv#1"]
        assert filled.search_lexical([["nothing-matches"]], 5, Filter())[0] == []

    def test_hits_carry_provenance(self, filled: Store) -> None:
        hit = filled.hits(filled.search_lexical([["refund"]], 1, Filter())[0])[0]
        assert (hit.source, hit.page, hit.section, hit.start, hit.end) == ("a.md", 1, "S", 0, len(hit.text))
        assert hit.metadata["year"] == 2021

    @pytest.mark.parametrize(("spec", "expected"), [
        ({"lang": "ko"}, {"c.csv#1", "c.csv#2"}),
        ({"lang": ["en"]}, {"a.md", "b.md"}),
        ({"year": {"gte": 2022, "lt": 2024}}, {"b.md", "c.csv#2"}),
        ({"source": "c.*"}, {"c.csv#1", "c.csv#2"}),
        ({"lang": {"ne": "ko"}}, {"a.md", "b.md"}),
        ({"page": 1, "doc_id": ["a.md", "b.md"]}, {"a.md", "b.md"}),
        ({"lang": "fr"}, set()),
    ])
    def test_filters(self, filled: Store, spec: dict[str, object], expected: set[str]) -> None:
        where = build_filter(spec)
        q = np.asarray([[0.5, 0.5, 0.5, 0.5]], dtype=np.float32)
        dense = {h.doc_id for h in filled.hits(filled.search_dense(q, 10, where)[0])}
        lexical = {h.doc_id for h in filled.hits(filled.search_lexical([["policy", "기간"]], 10, where)[0])}
        assert dense == expected
        assert lexical <= expected

    def test_rewrite_replaces_chunks_of_a_file(self, filled: Store) -> None:
        filled.write([unit("a.md", [("a.md", "refund rules changed", {"lang": "en"})], [[0, 0, 0, 1]])])
        filled.commit_indexes()
        assert filled.stats().chunks == 4
        hits = filled.hits(filled.search_lexical([["refund"]], 5, Filter())[0])
        assert [h.text for h in hits] == ["refund rules changed"]
        assert filled.search_lexical([["days"]], 5, Filter())[0] == []

    def test_delete_documents_and_files(self, filled: Store) -> None:
        assert filled.delete_documents(["c.csv#1"]) == 1
        assert filled.delete_files(["/data/b.md"]) == 1
        filled.commit_indexes()
        q = np.asarray([[0, 0, 1, 0]], dtype=np.float32)
        assert {h.doc_id for h in filled.hits(filled.search_dense(q, 10, Filter())[0])} == {"a.md", "c.csv#2"}
        assert "/data/b.md" not in filled.file_records()

    def test_vectors_round_trip(self, filled: Store) -> None:
        ids = [i for i, _ in filled.search_dense(np.asarray([[1, 0, 0, 0]], dtype=np.float32), 4, Filter())[0]]
        vectors = filled.vectors(ids)
        assert vectors.shape == (4, DIM)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    def test_find_documents(self, filled: Store) -> None:
        assert filled.find_documents("c.csv") == ["c.csv#1", "c.csv#2"]
        assert filled.find_documents("/data/a.md") == ["a.md"]
        assert filled.find_documents("nope") == []

    def test_failures_recorded_in_ledger(self, filled: Store) -> None:
        record = FileRecord(path="/data/bad.pdf", root="/data", content_hash="x", size=1, mtime=1.0,
                            status="error", error="not a PDF")
        filled.record_failures([record])
        assert filled.file_records()["/data/bad.pdf"].error == "not a PDF"
        assert filled.stats().failed_files == 1

    def test_turn_log_round_trip(self, filled: Store) -> None:
        assert not filled.is_empty()
        row = {"created_at": 1.0, "kind": "chat", "session": "s", "question": "반품?", "standalone_question": None,
               "language": "ko", "retrieved": [[1, 0.5]], "prompt_tokens": 10, "completion_tokens": 3,
               "answer": "14일 [1]", "citations": [{"number": 1, "source": "a.md"}], "found": 1,
               "backend": "fake", "latency_ms": 5.0, "retrieval_ms": 1.0, "first_token_ms": None}
        first = filled.log_turn(row)
        second = filled.log_turn({**row, "session": "other", "question": "환불?"})
        assert second > first
        assert [t["question"] for t in filled.turns()] == ["환불?", "반품?"]
        [only] = filled.turns(session="s")
        assert only["retrieved"] == [[1, 0.5]] and only["citations"][0]["source"] == "a.md" and only["found"] is True
        assert filled.turns(turn_id=second)[0]["session"] == "other"
        assert filled.turns(limit=1)[0]["id"] == second
