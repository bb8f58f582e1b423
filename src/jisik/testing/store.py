"""The conformance suite every store backend passes — the embedded one, Milvus, or one outside jisik.

A backend's test module subclasses :class:`StoreConformance` (or only the capability classes it
implements) and provides one fixture, ``open_store``: a function that opens a handle on one store
(the same data on every call, empty at first). The suite binds it to a 4-dimensional embedder and the
``whitespace`` analyzer::

    from jisik.testing.store import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def open_store(self, tmp_path):
            return lambda: MyStore(tmp_path / "kb")

Capabilities: :class:`DocumentsConformance` (write, replace, delete, find, paging, empty, rollback,
read-your-writes, provenance), :class:`DenseSearchConformance`, :class:`LexicalSearchConformance`,
:class:`FilterConformance`, :class:`LedgerConformance` (failures, staging, turn log),
:class:`ConcurrencyConformance` (readers during writes, snapshots, a second handle) and
:class:`LargeCorpusConformance` (enough vectors to train an IVF index).

Most tests find the chunks that hold a word to see what a write, delete or rollback left visible. A backend
without lexical search (e.g. Milvus before 2.4, which has no sparse vectors) sets ``LEXICAL = False`` and
leaves :class:`LexicalSearchConformance` out: those tests then look through a dense search of every visible
chunk instead (:meth:`holding`), so every other capability is still checked for real::

    class TestDenseOnly(DocumentsConformance, DenseSearchConformance, FilterConformance, LedgerConformance):
        LEXICAL = False
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from jisik.errors import StoreError
from jisik.filters import Filter, build_filter
from jisik.records import Chunk, Document, Hit, Segment
from jisik.store.base import FileRecord, IngestUnit, Store, StoreReader

DIM = 4
# more chunks than any test here writes, except LargeCorpusConformance (which does not look for words)
EVERYTHING = 1000
OpenStore = Callable[[], Store]
Searcher = Store | StoreReader


def unit(path: str, docs: Sequence[tuple[str, str, dict[str, object]]], vectors: Sequence[Sequence[float]],
         terms: list[list[str]] | None = None, page: int | None = 1) -> IngestUnit:
    """One file's worth of documents with one chunk each (text = doc text), vectors normalised."""
    documents, chunks = [], []
    for doc_id, text, meta in docs:
        documents.append(Document(doc_id=doc_id, source=doc_id.split("#")[0], text=text, title=doc_id,
                                  segments=[Segment(0, len(text), page, "S")], metadata=dict(meta),  # type: ignore[arg-type]
                                  content_hash=doc_id))
        chunks.append(Chunk(doc_id=doc_id, ordinal=0, text=text, start=0, end=len(text), page=page, section="S"))
    matrix = np.asarray(vectors, dtype=np.float32).reshape(len(docs), -1)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    record = FileRecord(path=f"/data/{path}", root="/data", content_hash=path + str(time.time()), size=1, mtime=1.0)
    return IngestUnit(file=record, documents=documents, chunks=chunks, vectors=matrix,
                      terms=terms or [t.lower().split() for _, t, _ in docs])


def query(*values: float) -> np.ndarray:
    return np.asarray([values], dtype=np.float32)


def bound(open_store: OpenStore) -> Store:
    store = open_store()
    store.bind(embedder_model="conformance", dim=DIM, analyzer="whitespace")
    return store


class _Base:
    # False: the backend cannot search terms (it leaves LexicalSearchConformance out); the other tests look for
    # words through a dense search of everything instead
    LEXICAL = True

    def holding(self, searcher: Searcher, word: str, where: Filter | None = None) -> list[Hit]:
        """The visible chunks whose terms include ``word``, best first: a BM25 search or, without lexical search,
        every chunk a dense search returns, kept to those whose text holds the word (the suite's chunks are
        their terms: ``unit`` lower-cases and splits the text)."""
        where = where or Filter()
        if self.LEXICAL:
            return searcher.hits(searcher.search_lexical([[word]], EVERYTHING, where)[0])
        probe = np.full((1, DIM), 0.5, dtype=np.float32)
        hits = searcher.hits(searcher.search_dense(probe, EVERYTHING, where)[0])
        return [h for h in hits if word in h.text.lower().split()]

    def found(self, searcher: Searcher, word: str, where: Filter | None = None) -> list[str]:
        """Doc ids of :meth:`holding`."""
        return [h.doc_id for h in self.holding(searcher, word, where)]

    @pytest.fixture
    def store(self, open_store: OpenStore) -> Iterator[Store]:
        store = bound(open_store)
        yield store
        store.close()

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


def _doc_ids(store: Store, scored: list[tuple[int, float]]) -> list[str]:
    return [h.doc_id for h in store.hits(scored)]


class DocumentsConformance(_Base):
    def test_empty_store(self, store: Store) -> None:
        assert store.is_empty()
        assert store.search_dense(query(1, 0, 0, 0), 5, Filter()) == [[]]
        assert self.found(store, "anything") == []
        assert store.chunk_texts() == [] and store.documents() == []
        stats = store.stats()
        assert (stats.documents, stats.chunks, stats.files) == (0, 0, 0)
        store.commit_indexes()  # nothing to index is not an error
        assert store.hits([]) == []

    def test_searched_before_the_first_write(self, open_store: OpenStore) -> None:
        """A search of a store that has not yet learnt its vector size, then writes: they are found."""
        store = open_store()
        try:
            assert store.search_dense(query(1, 0, 0, 0), 3, Filter()) == [[]]
            store.bind(embedder_model="conformance", dim=DIM, analyzer="whitespace")
            store.write([unit("first.md", [("first.md", "first words", {})], [[1, 0, 0, 0]])])
            assert _doc_ids(store, store.search_dense(query(1, 0, 0, 0), 3, Filter())[0]) == ["first.md"]
        finally:
            store.close()

    def test_rewrite_replaces_chunks_of_a_file(self, filled: Store) -> None:
        filled.write([unit("a.md", [("a.md", "refund rules changed", {"lang": "en"})], [[0, 0, 0, 1]])])
        filled.commit_indexes()
        assert filled.stats().chunks == 4
        assert [h.text for h in self.holding(filled, "refund")] == ["refund rules changed"]
        assert self.found(filled, "days") == []
        assert _doc_ids(filled, filled.search_dense(query(0, 0, 0, 1), 1, Filter())[0]) == ["a.md"]

    def test_delete_documents_and_files(self, filled: Store) -> None:
        assert filled.delete_documents(["c.csv#1"]) == 1
        assert filled.delete_files(["/data/b.md"]) == 1
        filled.commit_indexes()
        found = filled.search_dense(query(0, 0, 1, 0), 10, Filter())[0]
        assert set(_doc_ids(filled, found)) == {"a.md", "c.csv#2"}
        assert "/data/b.md" not in filled.file_records()
        assert filled.delete_documents(["no-such-doc"]) == 0

    def test_find_documents(self, filled: Store) -> None:
        assert filled.find_documents("c.csv") == ["c.csv#1", "c.csv#2"]
        assert filled.find_documents("/data/a.md") == ["a.md"]
        assert filled.find_documents("nope") == []

    def test_vectors_round_trip(self, filled: Store) -> None:
        ids = [i for i, _ in filled.search_dense(query(1, 0, 0, 0), 4, Filter())[0]]
        vectors = filled.vectors(ids)
        assert vectors.shape == (4, DIM)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    def test_exported_files_write_back_unchanged(self, filled: Store) -> None:
        """``export_files`` gives back what a file's unit held (what ``jisik migrate`` copies), and writing it again
        changes nothing a search sees."""
        [exported] = filled.export_files(["/data/c.csv"])
        assert exported.file.path == "/data/c.csv" and exported.file.n_chunks == 2
        assert [d.doc_id for d in exported.documents] == ["c.csv#1", "c.csv#2"]
        assert exported.documents[0].metadata == {"lang": "ko", "year": 2024}
        assert [(c.doc_id, c.ordinal, c.text, c.page, c.section) for c in exported.chunks] == [
            ("c.csv#1", 0, "반품 기간 안내", 1, "S"), ("c.csv#2", 0, "배송 기간 안내", 1, "S")]
        assert exported.terms == [["반품", "기간", "안내"], ["배송", "기간", "안내"]]
        assert np.allclose(exported.vectors @ np.asarray([0, 0, 1, 0], dtype=np.float32), [1.0, 0.99388373], atol=1e-5)
        assert filled.export_files(["/data/no-such-file"]) == []
        before = {h.doc_id: h.text for h in filled.hits(filled.search_dense(query(0, 0, 1, 0), 10, Filter())[0])}
        filled.write([exported])
        after = {h.doc_id: h.text for h in filled.hits(filled.search_dense(query(0, 0, 1, 0), 10, Filter())[0])}
        assert after == before and filled.stats().chunks == 4

    def test_reopened_store_finds_everything_committed(self, filled: Store, open_store: OpenStore) -> None:
        """Saved indexes and the writes after the last save both come back on reopening."""
        filled.write([unit("late.md", [("late.md", "late addition", {})], [[0, 0, 0, 1]])])
        filled.close()
        again = bound(open_store)
        try:
            assert _doc_ids(again, again.search_dense(query(1, 0, 0, 0), 1, Filter())[0]) == ["a.md"]
            assert _doc_ids(again, again.search_dense(query(0, 0, 0, 1), 1, Filter())[0]) == ["late.md"]
            assert self.found(again, "refund") == ["a.md"]
            assert self.found(again, "late") == ["late.md"]
        finally:
            again.close()

    def test_read_your_writes_without_commit_indexes(self, filled: Store) -> None:
        """A write is searchable as soon as it is committed, before any index commit."""
        filled.write([unit("d.md", [("d.md", "warranty repair", {})], [[0.5, 0.5, 0, 0]])])
        assert self.found(filled, "warranty") == ["d.md"]
        assert _doc_ids(filled, filled.search_dense(query(0.5, 0.5, 0, 0), 1, Filter())[0]) == ["d.md"]
        filled.delete_documents(["d.md"])
        assert self.found(filled, "warranty") == []
        assert "d.md" not in _doc_ids(filled, filled.search_dense(query(0.5, 0.5, 0, 0), 10, Filter())[0])

    def test_failed_write_rolls_back_whole(self, filled: Store) -> None:
        """A batch with one bad unit (wrong vector size) changes nothing: not its good units, not the ledger."""
        before = (filled.stats().chunks, sorted(filled.file_records()))
        good = unit("e.md", [("e.md", "exchange rules", {})], [[1, 1, 0, 0]])
        bad = unit("f.md", [("f.md", "broken vector", {})], [[1, 0, 0, 0]])
        bad.vectors = np.ones((1, DIM + 3), dtype=np.float32)
        with pytest.raises(StoreError):
            filled.write([good, bad])
        assert (filled.stats().chunks, sorted(filled.file_records())) == before
        assert self.found(filled, "exchange") == []
        filled.write([good])  # and the store still takes writes afterwards
        assert self.found(filled, "exchange") == ["e.md"]

    def test_hits_carry_provenance(self, filled: Store) -> None:
        [hit] = self.holding(filled, "refund")
        assert (hit.source, hit.page, hit.section, hit.start, hit.end) == ("a.md", 1, "S", 0, len(hit.text))
        assert hit.metadata["year"] == 2021

    def test_paging_through_chunks_and_documents(self, store: Store) -> None:
        store.write([unit(f"p{i:02d}.md", [(f"p{i:02d}.md", f"page text {i}", {})], [[1, i, 0, 0]])
                     for i in range(25)])
        texts: list[tuple[int, str]] = []
        after = 0
        while page := store.chunk_texts(after=after, limit=7):
            assert len(page) <= 7
            texts.extend(page)
            after = page[-1][0]
        assert sorted(t for _, t in texts) == sorted(f"page text {i}" for i in range(25))
        assert len({i for i, _ in texts}) == 25
        docs: list[dict[str, Any]] = []
        while batch := store.documents(after=docs[-1]["doc_id"] if docs else None, limit=10):
            docs.extend(batch)
        assert [d["doc_id"] for d in docs] == [f"p{i:02d}.md" for i in range(25)]


class DenseSearchConformance(_Base):
    def test_dense_search_orders_by_cosine(self, filled: Store) -> None:
        hits = filled.hits(filled.search_dense(query(0, 0, 1, 0), 2, Filter())[0])
        assert [h.doc_id for h in hits] == ["c.csv#1", "c.csv#2"]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)

    def test_batch_and_k_beyond_the_corpus(self, filled: Store) -> None:
        results = filled.search_dense(np.vstack([query(1, 0, 0, 0), query(0, 1, 0, 0)]), 10, Filter())
        assert [_doc_ids(filled, r)[0] for r in results] == ["a.md", "b.md"]
        assert all(len(r) == 4 for r in results)


class LexicalSearchConformance(_Base):
    def test_lexical_search(self, filled: Store) -> None:
        assert _doc_ids(filled, filled.search_lexical([["반품"]], 5, Filter())[0]) == ["c.csv#1"]
        assert filled.search_lexical([["nothing-matches"]], 5, Filter())[0] == []
        assert filled.search_lexical([[]], 5, Filter())[0] == []

    def test_scores_follow_global_statistics_after_deletes(self, filled: Store) -> None:
        """IDF is over the live corpus: deleting the other '기간' documents raises the term's weight."""
        before = dict(filled.search_lexical([["기간"]], 5, Filter())[0])
        filled.delete_documents(["c.csv#2"])
        after = dict(filled.search_lexical([["기간"]], 5, Filter())[0])
        [only] = after
        assert after[only] > before[only]


class FilterConformance(_Base):
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
        dense = set(_doc_ids(filled, filled.search_dense(query(0.5, 0.5, 0.5, 0.5), 10, where)[0]))
        assert dense == expected
        for word in ("policy", "기간"):
            assert set(self.found(filled, word, where)) <= expected


class LedgerConformance(_Base):
    def test_failures_recorded_in_ledger(self, filled: Store) -> None:
        record = FileRecord(path="/data/bad.pdf", root="/data", content_hash="x", size=1, mtime=1.0,
                            status="error", error="not a PDF")
        filled.record_failures([record])
        assert filled.file_records()["/data/bad.pdf"].error == "not a PDF"
        assert filled.stats().failed_files == 1
        assert ("/data/bad.pdf", "not a PDF") in filled.failed_files()

    def test_staged_chunks_are_invisible_until_published(self, store: Store) -> None:
        big = unit("big.txt", [("big.txt", "first part", {}), ("big.txt#2", "second part", {})],
                   [[1, 0, 0, 0], [0, 1, 0, 0]])
        store.stage(big.file, big.chunks[:1], big.vectors[:1], big.terms[:1])
        assert self.found(store, "part") == [] and store.is_empty()
        store.stage(big.file, big.chunks[1:], big.vectors[1:], big.terms[1:])
        assert len(store.staged_texts(big.file)) == 2
        big.staged = True
        store.write([big])
        assert sorted(self.found(store, "part")) == ["big.txt", "big.txt#2"]
        assert store.staged_texts(big.file) == set()

    def test_turn_log_round_trip(self, filled: Store) -> None:
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


class ConcurrencyConformance(_Base):
    def test_a_reader_keeps_its_generation_while_a_writer_commits(self, filled: Store) -> None:
        def write() -> None:  # another thread: this one holds the read snapshot
            filled.write([unit("late.md", [("late.md", "refund late", {})], [[1, 0, 0, 0]])])
            filled.delete_documents(["a.md"])

        with filled.reader() as view:
            generation = view.generation
            writer = threading.Thread(target=write)
            writer.start()
            writer.join()
            hits = self.holding(view, "refund")
            assert [h.doc_id for h in hits] == ["a.md"] and {h.generation for h in hits} == {generation}
        assert self.found(filled, "refund") == ["late.md"]

    def test_another_handle_sees_commits_without_reopening(self, filled: Store, open_store: OpenStore) -> None:
        other = bound(open_store)
        try:
            assert len(self.found(other, "기간")) == 2
            filled.write([unit("new.md", [("new.md", "기간 연장", {})], [[0, 0, 0, 1]])])
            assert len(self.found(other, "기간")) == 3
            filled.delete_files(["/data/c.csv"])
            assert self.found(other, "기간") == ["new.md"]
        finally:
            other.close()

    def test_readers_during_writes_see_only_committed_generations(self, filled: Store) -> None:
        """Reader threads search while a writer adds files and a failing batch rolls back: every result
        belongs to a committed generation, no rolled-back row is ever seen, no reader fails."""
        committed: dict[int, set[str]] = {}  # generation -> doc ids alive in it
        alive = {"a.md", "b.md", "c.csv#1", "c.csv#2"}
        with filled.reader() as view:
            committed[view.generation] = set(alive)
        errors: list[BaseException] = []
        seen: list[tuple[int, list[str]]] = []
        stop = threading.Event()

        def read() -> None:
            try:
                while not stop.is_set():
                    with filled.reader() as view:
                        scored = view.search_lexical([["common"]], 50, Filter())[0] if self.LEXICAL else []
                        dense = view.search_dense(query(1, 1, 1, 1), 50, Filter())[0]
                        seen.append((view.generation, [h.doc_id for h in view.hits(scored + dense)]))
            except BaseException as exc:
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(4)]
        for thread in readers:
            thread.start()
        try:
            for i in range(30):
                doc = f"w{i}.md"
                generation = filled.write([unit(doc, [(doc, f"common word {i}", {})], [[1, 1, i % 3, 0]])])
                alive.add(doc)
                committed[generation] = set(alive)
                if i % 3 == 2:
                    filled.delete_documents([f"w{i - 1}.md"])
                    alive.discard(f"w{i - 1}.md")
                    with filled.reader() as view:
                        committed[view.generation] = set(alive)
                bad = unit(f"x{i}.md", [(f"x{i}.md", "common rolled back", {})], [[1, 1, 1, 1]])
                bad.vectors = np.ones((1, DIM + 1), dtype=np.float32)
                with pytest.raises(StoreError):
                    filled.write([bad])
        finally:
            stop.set()
            for thread in readers:
                thread.join()
        assert not errors, errors[0]
        assert seen
        known = sorted(committed)
        for generation, doc_ids in seen:
            assert not any(d.startswith("x") for d in doc_ids), doc_ids
            # the set alive at that generation: the last recorded generation at or before it
            at = max(g for g in known if g <= generation)
            assert set(doc_ids) <= committed[at], (generation, set(doc_ids) - committed[at])


class LargeCorpusConformance(_Base):
    """Enough vectors for an approximate index to train (IVF needs ~39 per cluster)."""

    VECTORS = 3000

    def test_every_stored_vector_finds_itself(self, store: Store) -> None:
        rng = np.random.default_rng(11)
        matrix = rng.normal(size=(self.VECTORS, DIM)).astype(np.float32)
        units = [unit(f"big/{n}.md", [(f"big/{n}.md", f"vector {n}", {})], [row]) for n, row in enumerate(matrix)]
        for start in range(0, len(units), 500):
            store.write(units[start : start + 500])
        store.commit_indexes()
        probes = rng.choice(self.VECTORS, size=50, replace=False)
        found = store.search_dense(matrix[probes] / np.linalg.norm(matrix[probes], axis=1, keepdims=True),
                                   1, Filter())
        recalled = sum(_doc_ids(store, hit)[0] == f"big/{n}.md" for n, hit in zip(probes, found, strict=True))
        assert recalled >= 48  # an approximate index may miss a near-tie now and then


class StoreConformance(DocumentsConformance, DenseSearchConformance, LexicalSearchConformance, FilterConformance,
                       LedgerConformance, ConcurrencyConformance, LargeCorpusConformance):
    """Every capability: what a complete backend passes."""
