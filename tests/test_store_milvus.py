"""The Milvus store: the conformance suite on milvus-lite (every capability) and on a real Milvus 2.3.5 server
(every capability it has: no sparse vectors, so no BM25), then what is Milvus's own: quoting, metadata filters
against the embedded store's answers, BM25 against the embedded store's scores, crashes between Milvus and
SQLite, rows lost behind jisik's back, and bad configurations.

milvus-lite runs in this process (one data folder per test); the server is started once per session
(tests/milvus_server.py) and each test gets a collection of its own.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

from jisik.config import KBConfig
from jisik.errors import ConfigError, EmbedderMismatchError, QueryError, StoreError
from jisik.filters import Filter, build_filter
from jisik.store.base import IngestUnit, Store
from jisik.store.local import LocalStore
from jisik.store.milvus import MilvusStore, create_milvus_store
from jisik.testing.store import (
    DIM,
    ConcurrencyConformance,
    DenseSearchConformance,
    DocumentsConformance,
    FilterConformance,
    LargeCorpusConformance,
    LedgerConformance,
    StoreConformance,
    bound,
    query,
    unit,
)
from jisik.text.analyzers import analyze_queries, get_analyzer
from tests import milvus_server

milvus_uri = milvus_server.milvus_uri  # the fixture: the session's server
OpenMilvus = Callable[..., MilvusStore]
EVERY = np.full((1, DIM), 0.5, dtype=np.float32)  # a dense probe that returns every chunk (k large enough)


def _collection() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def _drop(uri: str, names: Sequence[str]) -> None:
    client = MilvusClient(uri=uri, timeout=30)
    try:
        for name in names:
            with contextlib.suppress(Exception):
                client.drop_collection(name)
    finally:
        client.close()


@pytest.fixture
def server_collection(milvus_uri: str) -> Iterator[str]:
    """A collection name of this test's own on the server, dropped afterwards."""
    name = _collection()
    yield name
    _drop(milvus_uri, [name])


@pytest.fixture(params=["lite", "server"])
def open_milvus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenMilvus]:
    """Opens a MilvusStore on milvus-lite (in the test's folder) or on the session's server, with this test's
    collection; every store opened is closed (and on the server its collections dropped) afterwards."""
    server = request.param == "server"
    # milvus-lite: one data folder for the test, shared by its knowledge-base folders as a server would be
    uri = request.getfixturevalue("milvus_uri") if server else str(tmp_path / "milvus.db")
    default = _collection()
    opened: list[MilvusStore] = []
    names: set[str] = {default}

    def open_(folder: str = "kb", **kwargs: Any) -> MilvusStore:
        kwargs.setdefault("collection", default)
        names.add(kwargs["collection"])
        store = MilvusStore(tmp_path / folder, uri=uri, **kwargs)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
    if server:
        _drop(uri, sorted(names))


def _bound(folder: Path, uri: str, collection: str) -> MilvusStore:
    """A Milvus store bound as the conformance suite binds its stores."""
    store = MilvusStore(folder, uri=uri, collection=collection)
    store.bind(embedder_model="conformance", dim=DIM, analyzer="whitespace")
    return store


def _doc_ids(store: Store, where: Filter | None = None) -> list[str]:
    """Every visible document a dense search finds, sorted (the few of these tests: milvus-lite's HNSW, once
    built, returns about its ``ef`` (64) nearest whatever k)."""
    return sorted(h.doc_id for h in store.hits(store.search_dense(EVERY, 1000, where or Filter())[0]))


def _milvus_stats(store: Store) -> dict[str, Any]:
    """What ``stats()`` says of the Milvus side (``jisik status`` shows it)."""
    extra = store.stats().extra["milvus"]
    assert isinstance(extra, dict)
    return extra


def _raw(store: MilvusStore) -> MilvusClient:
    """A pymilvus client of our own on the store's Milvus (milvus-lite: the server this process already runs)."""
    return MilvusClient(uri=store.uri, timeout=30)


def _rows(client: MilvusClient, collection: str, expression: str) -> int:
    result = client.query(collection, filter=expression, output_fields=["count(*)"], consistency_level="Strong")
    return int(result[0]["count(*)"]) if result else 0


# -- 1, 2: the conformance suite ----------------------------------------------------------------------------
class TestLite(StoreConformance):
    """Every capability, on milvus-lite."""

    @pytest.fixture
    def open_store(self, tmp_path: Path) -> Callable[[], Store]:
        collection = _collection()
        return lambda: MilvusStore(tmp_path / "kb", uri="milvus.db", collection=collection)


class TestServer(DocumentsConformance, DenseSearchConformance, FilterConformance, LedgerConformance,
                 ConcurrencyConformance, LargeCorpusConformance):
    """Every capability Milvus 2.3 has; it has no sparse vectors, so the suite looks for words densely."""

    LEXICAL = False

    @pytest.fixture
    def open_store(self, tmp_path: Path, milvus_uri: str,
                   server_collection: str) -> Callable[[], Store]:
        return lambda: MilvusStore(tmp_path / "kb", uri=milvus_uri, collection=server_collection)


def test_lexical_search_on_a_server_without_sparse_vectors_says_what_to_do(
        tmp_path: Path, milvus_uri: str, server_collection: str) -> None:
    store = _bound(tmp_path / "kb", milvus_uri, server_collection)
    try:
        store.write([unit("a.md", [("a.md", "refund policy", {})], [[1, 0, 0, 0]])])
        assert _milvus_stats(store)["bm25"] == "none"
        with pytest.raises(StoreError, match="no sparse vectors") as caught:
            store.search_lexical([["refund"]], 5, Filter())
        assert 'mode = "dense"' in str(caught.value.hint) and "2.4" in str(caught.value.hint)
        # dense search, hits and the rest of the store work as ever
        assert _doc_ids(store) == ["a.md"]
    finally:
        store.close()


# -- 3: Milvus's own behaviour ----------------------------------------------------------------------------
QUOTED = "q\"uo'te\\d.md"  # a document id and source holding ", ' and \


def test_quotes_and_backslashes_in_ids_and_sources(open_milvus: OpenMilvus) -> None:
    store = open_milvus()
    store.bind(embedder_model="conformance", dim=DIM, analyzer="whitespace")
    other = f"{QUOTED}.bak"  # a second file whose id only starts like the first one
    store.write([unit(QUOTED, [(QUOTED, "quoted words", {"note": "it's \"so\" \\ odd"})], [[1, 0, 0, 0]]),
                 unit(other, [(other, "backup words", {})], [[0, 1, 0, 0]]),
                 unit("plain.md", [("plain.md", "plain words", {})], [[0, 0, 1, 0]])])
    assert _doc_ids(store, build_filter({"doc_id": QUOTED})) == [QUOTED]
    assert _doc_ids(store, build_filter({"source": QUOTED})) == [QUOTED]
    assert _doc_ids(store, build_filter({"doc_id": [QUOTED, "plain.md"]})) == sorted([QUOTED, "plain.md"])
    assert _doc_ids(store, build_filter({"doc_id": {"ne": QUOTED}})) == sorted([other, "plain.md"])
    assert _doc_ids(store, build_filter({"note": "it's \"so\" \\ odd"})) == [QUOTED]
    [hit] = store.hits(store.search_dense(query(1, 0, 0, 0), 1, build_filter({"doc_id": QUOTED}))[0])
    assert (hit.doc_id, hit.source, hit.text) == (QUOTED, QUOTED, "quoted words")
    assert store.find_documents(QUOTED) == [QUOTED]
    assert store.delete_documents([QUOTED]) == 1
    assert _doc_ids(store, build_filter({"doc_id": QUOTED})) == []
    assert store.delete_files([f"/data/{other}"]) == 1
    assert _doc_ids(store) == ["plain.md"] and store.stats().chunks == 1
    assert sorted(store.file_records()) == ["/data/plain.md"]


# The same documents and filter on the embedded store and on Milvus must find the same documents.
FILTER_DOCS: list[tuple[str, dict[str, object]]] = [
    ("docs/a/y1.md", {"year": "2021", "lang": "ko", "tags": ["a", "b"]}),
    ("docs/a/y2.md", {"year": 2021, "tags": ["b"], "zip": "007"}),
    ("docs/b/y3.md", {"year": "2023", "lang": "en", "tags": "a", "ok": True}),
    ("docs/b/y4.md", {"years": [2020, 2023], "ok": "true"}),
    ("docs/c/y5.md", {"lang": "ko", "zip": "7", "score": "0.5"}),
    ("docs/c/y6.md", {}),
]
FILTER_CASES = {
    # numbers given as text, in the metadata and in the filter
    "year-text-meta-int-filter": {"year": 2021},
    "year-text-filter": {"year": "2021"},
    "year-range": {"year": {"gte": 2021, "lt": 2023}},
    "year-range-text-bound": {"year": {"gte": "2022"}},
    "score-text-decimal": {"score": 0.5},
    # lists: a list value holds the filter's value
    "tags-contains": {"tags": "a"},
    "tags-in": {"tags": ["a", "c"]},
    "list-equals-an-item": {"years": 2023},
    # ne: documents without the key are kept (the embedded store's NOT EXISTS)
    "ne-on-a-key-some-lack": {"lang": {"ne": "ko"}},
    "ne-on-a-key-none-has": {"colour": {"ne": "red"}},
    "ne-on-a-list": {"tags": {"ne": "a"}},
    "ne-on-a-number-as-text": {"year": {"ne": 2021}},
    # globs on source, with and without the leading folder; globs on metadata
    "source-glob-folder": {"source": "a/*"},
    "source-glob-full": {"source": "docs/*/y[15].md"},
    "meta-glob": {"lang": "k*"},
    # edge cases of the text/number split
    "zero-padded-text": {"zip": "007"},
    "number-vs-zero-padded-text": {"zip": "7"},
    "range-over-a-list": {"years": {"gte": 2022}},
    "boolean-given-as-text": {"ok": "true"},
}


@pytest.fixture(scope="class", params=["lite", "server"])
def both_stores(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[Store, Store]]:
    """The embedded store and a Milvus store (lite or server) holding FILTER_DOCS."""
    folder = tmp_path_factory.mktemp("filters")
    server = request.param == "server"
    uri = request.getfixturevalue("milvus_uri") if server else "milvus.db"
    collection = _collection()
    stores: list[Store] = [bound(lambda: LocalStore(folder / "local")),
                           bound(lambda: MilvusStore(folder / "milvus", uri=uri, collection=collection))]
    try:
        for store in stores:
            store.write([unit(d, [(d, f"text of {d}", m)], [[1, n, 0, 0]]) for n, (d, m) in enumerate(FILTER_DOCS)])
        yield stores[0], stores[1]
    finally:
        for store in stores:
            store.close()
        if server:
            _drop(uri, [collection])


class TestFiltersAgreeWithTheEmbeddedStore:
    @pytest.mark.parametrize("spec", list(FILTER_CASES.values()), ids=list(FILTER_CASES))
    def test_same_documents(self, both_stores: tuple[Store, Store], spec: dict[str, object]) -> None:
        local, milvus = both_stores
        where = build_filter(spec)
        assert _doc_ids(milvus, where) == _doc_ids(local, where)

    def test_section_globs_are_prefixes(self, both_stores: tuple[Store, Store]) -> None:
        local, milvus = both_stores
        assert _doc_ids(milvus, build_filter({"section": "S*"})) == _doc_ids(local, build_filter({"section": "S*"}))
        assert len(_doc_ids(milvus, build_filter({"section": "S*"}))) == len(FILTER_DOCS)
        with pytest.raises(QueryError, match="section") as caught:
            milvus.search_dense(EVERY, 10, build_filter({"section": "*S"}))
        assert "prefix" in str(caught.value.hint)


# -- 4: BM25 on Milvus's sparse vectors gives the embedded store's scores -----------------------------------
KO_SUBJECTS = ["반품 신청은", "환불 요청은", "배송 조회는", "회원 탈퇴는", "교환 접수는", "쿠폰 사용은",
               "포인트 적립은", "주문 취소는", "영수증 발급은", "상담 예약은", "선물 포장은", "정기 구독 해지는"]
KO_PREDICATES = ["구매일로부터 14일 이내에 가능합니다", "마이페이지에서 직접 할 수 있습니다",
                 "영업일 기준으로 3일이 걸립니다", "고객 센터에 전화로 문의해 주세요",
                 "카드 결제는 취소가 바로 반영됩니다", "해외 배송 상품은 제외됩니다",
                 "사이즈와 색상만 바꿀 수 있습니다", "무료 배송 조건을 먼저 확인해 주세요",
                 "주말과 공휴일에는 처리되지 않습니다", "앱에서 알림으로 결과를 알려 드립니다"]
EN_SUBJECTS = ["Returns", "Refunds", "Shipping upgrades", "Warranty repairs", "Gift cards", "Store credit",
               "Price matching", "Account deletion", "Order changes"]
EN_PREDICATES = ["are accepted within thirty days of purchase", "take five business days to process",
                 "require the original receipt", "are free for premium members", "cannot be combined with other offers",
                 "need a signed form from the customer", "are handled by the support team by phone",
                 "apply to orders shipped abroad", "are confirmed by email within one day", "stop during holidays"]
EXTRAS = ["", " 다만 일부 상품은 예외입니다.", " 자세한 내용은 약관을 참고하세요.", " See the terms for details.",
          " Large items ship separately."]
BM25_QUERIES = ["반품 기간은 언제까지인가요?", "환불 카드 취소", "배송 조회", "고객 센터 전화 문의", "영수증 발급",
                "refund receipt", "shipping days abroad", "warranty repair by phone", "gift card offers",
                "포인트 적립 쿠폰 사용", "교환 사이즈 색상", "해외 배송 free shipping", "premium members 무료"]


def _sentences() -> list[str]:
    """210 Korean and English sentences: every subject with every predicate, an extra clause now and then."""
    out = []
    for n, (subject, predicate) in enumerate((s, p) for s in KO_SUBJECTS for p in KO_PREDICATES):
        out.append(f"{subject} {predicate}.{EXTRAS[n % 3]}")
    for n, (subject, predicate) in enumerate((s, p) for s in EN_SUBJECTS for p in EN_PREDICATES):
        out.append(f"{subject} {predicate}.{EXTRAS[(n % 3) + 2 if n % 3 else 0]}")
    return out


def _corpus_units(docs: Sequence[tuple[str, str, list[str]]], seed: int) -> list[IngestUnit]:
    rng = np.random.default_rng(seed)
    return [unit(doc_id, [(doc_id, text, {})], [rng.normal(size=DIM).tolist()], terms=[terms])
            for doc_id, text, terms in docs]


def _length_neutral_third(lengths: dict[str, int], seed: int) -> list[str]:
    """A third of the documents whose average length is the corpus's, so deleting them leaves the average
    chunk length (and with it every stored BM25 weight) as it was: only N and the document frequencies move."""
    ids = sorted(lengths)
    assert len(ids) % 3 == 0 and sum(lengths.values()) % 3 == 0
    target = sum(lengths.values()) // 3
    rng = random.Random(seed)
    chosen = set(rng.sample(ids, len(ids) // 3))
    for _ in range(10_000):
        gap = target - sum(lengths[d] for d in chosen)
        if gap == 0:
            return sorted(chosen)
        inside = rng.choice(sorted(chosen))
        outside = [d for d in ids if d not in chosen and (lengths[d] - lengths[inside]) * gap > 0
                   and abs(lengths[d] - lengths[inside]) <= abs(gap)]
        if outside:
            chosen.remove(inside)
            chosen.add(rng.choice(outside))
    raise AssertionError("no length-neutral third found")


def _ranked(store: Store, terms: list[str]) -> list[tuple[str, float]]:
    return [(h.doc_id, h.score) for h in store.hits(store.search_lexical([terms], 10, Filter())[0])]


def _chunk_ids(store: Store) -> dict[str, int]:
    """doc id -> chunk id of every chunk (one per document here), page by page (not a search: milvus-lite's
    HNSW returns at most its ``ef`` nearest, whatever k)."""
    out: dict[str, int] = {}
    after = 0
    while page := store.chunk_texts(after=after, limit=500):
        out.update((h.doc_id, h.chunk_id) for h in store.hits([(i, 0.0) for i, _ in page]))
        after = page[-1][0]
    return out


def _scores(store: Store, terms: list[str], doc_ids: Sequence[str]) -> list[float]:
    """``lexical_scores`` of these documents (one chunk each) for one query."""
    chunk_of = _chunk_ids(store)
    with store.reader() as view:
        return view.lexical_scores([terms], [[chunk_of[d] for d in doc_ids]])[0]


def _assert_same_bm25(local: Store, milvus: Store, queries: list[list[str]], probe: Sequence[str]) -> None:
    for terms in queries:
        ours, theirs = _ranked(local, terms), _ranked(milvus, terms)
        assert theirs, terms
        assert [s for _, s in theirs] == pytest.approx([s for _, s in ours], rel=1e-4), terms
        # the same documents, up to ties: each of Milvus's top ten has that score in the embedded store
        assert _scores(local, terms, [d for d, _ in theirs]) == pytest.approx([s for _, s in theirs], rel=1e-4)
        if len({round(s, 4) for _, s in ours}) == len(ours):  # no near-ties: the very same order
            assert [d for d, _ in theirs] == [d for d, _ in ours], terms
        assert _scores(milvus, terms, probe) == pytest.approx(_scores(local, terms, probe), rel=1e-4, abs=1e-9)


def test_bm25_scores_match_the_embedded_store_through_deletes_and_drift(tmp_path: Path) -> None:
    analyzer = get_analyzer("ko-en")  # the package's default [bm25] analyzer
    sentences = _sentences()
    analysed = analyzer.analyze_batch(sentences)
    docs = [(f"s{n:03d}.md", text, terms) for n, (text, terms) in enumerate(zip(sentences, analysed, strict=True))]
    docs = docs[: len(docs) // 3 * 3]
    filler = (3 - sum(len(t) for _, _, t in docs) % 3) % 3  # a term or two more: the total length divides by 3
    if filler:
        docs[-1] = (docs[-1][0], docs[-1][1], docs[-1][2] + ["filler"] * filler)
    queries = analyze_queries(analyzer, BM25_QUERIES)
    assert all(queries) and len(docs) >= 200
    options = {"k1": 1.2, "b": 0.75, "method": "lucene"}
    local = LocalStore(tmp_path / "local", bm25_options=options)
    milvus = MilvusStore(tmp_path / "milvus", uri="milvus.db", collection=_collection(), bm25_options=options)
    try:
        for store in (local, milvus):
            store.bind(embedder_model="conformance", dim=DIM, analyzer=analyzer.name)
            store.write(_corpus_units(docs, seed=3))
            store.commit_indexes()
        probe = [d for d, _, _ in random.Random(5).sample(docs, 40)]  # arbitrary ids, most without the terms
        _assert_same_bm25(local, milvus, queries, probe)
        before = {tuple(q): _ranked(milvus, q) for q in queries}

        # a length-neutral third goes: IDF over the live corpus changes, the stored weights stay right
        doomed = _length_neutral_third({d: len(t) for d, _, t in docs}, seed=7)
        assert local.delete_documents(doomed) == milvus.delete_documents(doomed) == len(docs) // 3
        assert _milvus_stats(milvus)["avgdl"] == _milvus_stats(milvus)["avgdl_weights"]
        alive = [d for d in probe if d not in set(doomed)]
        _assert_same_bm25(local, milvus, queries, alive)
        assert any(_ranked(milvus, q) != before[tuple(q)] for q in queries)

        # many longer chunks: the average length drifts past 5%; commit re-weighs every stored vector
        rng = random.Random(11)
        long_texts = [" ".join(rng.sample(sentences, 4)) for _ in range(90)]
        long_terms = analyzer.analyze_batch(long_texts)
        long_docs = [(f"long{n:02d}.md", text, terms)
                     for n, (text, terms) in enumerate(zip(long_texts, long_terms, strict=True))]
        for store in (local, milvus):
            store.write(_corpus_units(long_docs, seed=13))
        extra = _milvus_stats(milvus)
        assert abs(extra["avgdl"] / extra["avgdl_weights"] - 1) > 0.05
        stale = [(_ranked(local, q), _ranked(milvus, q)) for q in queries]
        assert any(ours[0][1] != pytest.approx(theirs[0][1], rel=1e-4) for ours, theirs in stale if ours)
        for store in (local, milvus):
            store.commit_indexes()
        assert _milvus_stats(milvus)["avgdl"] == _milvus_stats(milvus)["avgdl_weights"]
        _assert_same_bm25(local, milvus, queries, [*alive, "long00.md", "long01.md"])
    finally:
        local.close()
        milvus.close()


# -- 5: crashes between Milvus and SQLite, and rows lost behind jisik's back --------------------------------
def _lost() -> IngestUnit:
    """The two-document file the failing writes below lose."""
    return unit("lost.md", [("lost.md", "lost words", {}), ("lost.md#2", "more words", {})],
                [[0, 1, 0, 0], [0, 0, 1, 0]])


def test_a_write_that_fails_after_its_insert_leaves_no_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    collection = _collection()
    store = _bound(tmp_path / "kb", "milvus.db", collection)
    try:
        store.write([unit("kept.md", [("kept.md", "kept words", {})], [[1, 0, 0, 0]])])
        generation = store.generation
        real = MilvusStore._set_meta

        def fails_at_commit(conn: sqlite3.Connection, key: str, value: object) -> None:
            if key == "generation":  # the last step: the rows are in Milvus by now
                raise OSError("disk full")
            real(conn, key, value)

        monkeypatch.setattr(MilvusStore, "_set_meta", staticmethod(fails_at_commit))
        with pytest.raises(OSError, match="disk full"):
            store.write([_lost()])
        monkeypatch.undo()
        raw = _raw(store)
        try:
            assert _rows(raw, collection, f"gen > {generation}") == 0
            assert _rows(raw, collection, "id > 0") == store.stats().chunks == 1
        finally:
            raw.close()
        assert store.generation == generation and sorted(store.file_records()) == ["/data/kept.md"]
        store.write([_lost()])  # the file is ingested again
        assert _doc_ids(store) == ["kept.md", "lost.md", "lost.md#2"] and store.stats().chunks == 3
    finally:
        store.close()


KILLED_WRITER = textwrap.dedent("""
    import os, sys
    from contextlib import contextmanager
    from pathlib import Path

    from jisik.store.connections import Connections
    from jisik.store.milvus import MilvusStore
    from jisik.testing.store import bound, unit

    folder, uri, collection = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    store = bound(lambda: MilvusStore(folder, uri=uri, collection=collection))
    store.write([unit("kept.md", [("kept.md", "kept words", {})], [[1, 0, 0, 0]])])
    print("committed", store.generation, flush=True)
    write = Connections.write

    @contextmanager
    def dies_before_commit(self):
        outermost = not self.get().in_transaction
        with write(self) as conn:
            yield conn
            if outermost:  # the write's body is done (its rows are in Milvus); SQLite has not committed
                print("killed before COMMIT", flush=True)
                os.kill(os.getpid(), 9)

    Connections.write = dies_before_commit
    store.write([unit("lost.md", [("lost.md", "lost words", {}), ("lost.md#2", "more words", {})],
                      [[0, 1, 0, 0], [0, 0, 1, 0]])])
    print("still alive", flush=True)
""")


def _killed_writer(folder: Path, uri: str, collection: str) -> int:
    """A child process writes kept.md, then lost.md, and is SIGKILLed between lost.md's Milvus insert and its
    SQLite COMMIT; returns the generation its first write committed."""
    child = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(folder), uri, collection],
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == -9 and "killed before COMMIT" in child.stdout, child.stdout + child.stderr[-2000:]
    committed = re.search(r"committed (\d+)", child.stdout)
    assert committed, child.stdout
    return int(committed.group(1))


def test_a_writer_killed_before_sqlite_commits_leaves_nothing_behind(tmp_path: Path) -> None:
    folder, collection = tmp_path / "kb", _collection()
    generation = _killed_writer(folder, "milvus.db", collection)
    raw = MilvusClient(uri=str(folder / "milvus.db"), timeout=30)
    try:
        raw.load_collection(collection)
        assert _rows(raw, collection, f"gen > {generation}") == 2  # the crash left the lost write's rows
        store = MilvusStore(folder, uri="milvus.db", collection=collection)
        try:
            # invisible: searches, counts and the ledger know only the committed write
            assert _doc_ids(store) == ["kept.md"] and sorted(store.file_records()) == ["/data/kept.md"]
            assert store.stats().chunks == 1 and store.last_reconcile is None
            # the handle's first write deletes them, and the file is ingested again
            store.write([_lost()])
            assert _rows(raw, collection, f"gen > {store.generation}") == 0
            assert _doc_ids(store) == ["kept.md", "lost.md", "lost.md#2"]
            assert _rows(raw, collection, "id > 0") == store.stats().chunks == 3
        finally:
            store.close()
    finally:
        raw.close()


def test_a_writer_killed_while_another_handle_keeps_writing(tmp_path: Path, milvus_uri: str,
                                                          server_collection: str) -> None:
    """Two processes on one knowledge base and server: one dies between its insert and its commit while the
    other, which had written before, goes on writing. The dead write's rows must never become visible."""
    folder = tmp_path / "kb"
    store = _bound(folder, milvus_uri, server_collection)
    try:
        store.write([unit("first.md", [("first.md", "first words", {})], [[0, 0, 0, 1]])])
        _killed_writer(folder, milvus_uri, server_collection)
        store.write([unit("second.md", [("second.md", "second words", {})], [[0, 0, 1, 1]])])
        assert sorted(store.file_records()) == ["/data/first.md", "/data/kept.md", "/data/second.md"]
        # the dead write's rows had generation 4, which second.md's write then committed (and their chunk ids)
        assert _doc_ids(store) == ["first.md", "kept.md", "second.md"]
        raw = _raw(store)
        try:
            assert _rows(raw, server_collection, 'doc_id in ["lost.md", "lost.md#2"]') == 0
            assert _rows(raw, server_collection, "id > 0") == store.stats().chunks == 3
        finally:
            raw.close()
    finally:
        store.close()


def test_rows_deleted_behind_jisiks_back_are_forgotten_on_open(open_milvus: OpenMilvus) -> None:
    store = open_milvus()
    store.bind(embedder_model="conformance", dim=DIM, analyzer="whitespace")
    store.write([unit("a.md", [("a.md", "alpha words", {})], [[1, 0, 0, 0]]),
                 unit("b.csv", [("b.csv#1", "beta words", {}), ("b.csv#2", "gamma words", {})],
                      [[0, 1, 0, 0], [0, 0, 1, 0]]),
                 unit("c.md", [("c.md", "delta words", {})], [[0, 0, 0, 1]])])
    raw = _raw(store)
    try:
        raw.delete(store.collection, filter='doc_id == "b.csv#2"')  # one document of b.csv
        store.close()
        with pytest.warns(UserWarning, match="missing chunks of 1 file"):
            store = open_milvus()
        assert store.last_reconcile is not None and store.last_reconcile.forgotten_files == ["/data/b.csv"]
        assert sorted(store.file_records()) == ["/data/a.md", "/data/c.md"]  # the next ingest writes b.csv again
        assert [d["doc_id"] for d in store.documents()] == ["a.md", "c.md"]
        assert _doc_ids(store) == ["a.md", "c.md"]
        stats = store.stats()
        assert stats.chunks == stats.documents == _rows(raw, store.collection, "id > 0") == 2
        assert _milvus_stats(store)["avgdl"] == 2.0
        with store.reader() as view:
            assert view.document_frequency("words") == 2 and view.document_frequency("beta") == 0
    finally:
        raw.close()


# -- 6: bad input ----------------------------------------------------------------------------------------
def test_an_unreachable_server_fails_fast_naming_it(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed once the block ends
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot reach Milvus at " + uri) as caught:
        MilvusStore(tmp_path / "kb", uri=uri, timeout=2.0)
    assert time.monotonic() - started < 2.0 + 5
    assert "server is running" in str(caught.value.hint)


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from jisik.store.milvus import MilvusStore
    store = MilvusStore(Path(sys.argv[1]), uri="milvus.db", collection="held")
    store.bind(embedder_model="conformance", dim=4, analyzer="whitespace")
    print("holding", flush=True)
    time.sleep(120)
""")


def test_a_milvus_lite_folder_held_by_another_process(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "kb")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding", holder.stderr
        started = time.monotonic()
        with pytest.raises(StoreError, match="in use by another process") as caught:
            MilvusStore(tmp_path / "kb", uri="milvus.db", collection="held")
        assert time.monotonic() - started < 10
        assert "one process at a time" in str(caught.value.hint)
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_a_collection_of_other_vectors_or_another_knowledge_base_is_refused(open_milvus: OpenMilvus) -> None:
    first = open_milvus("first")
    first.bind(embedder_model="conformance", dim=4, analyzer="whitespace")
    first.write([unit("a.md", [("a.md", "alpha", {})], [[1, 0, 0, 0]])])
    with pytest.raises(EmbedderMismatchError, match="dim 4") as mismatch:  # the same folder, an 8-dim embedder
        first.bind(embedder_model="other", dim=8, analyzer="whitespace")
    assert "reindex" in str(mismatch.value.hint)
    # a new knowledge-base folder on the same collection, with that embedder: refused as it opens
    with pytest.raises(StoreError, match="already holds a knowledge base") as caught:
        open_milvus("second").bind(embedder_model="other", dim=8, analyzer="whitespace")
    assert "[store] collection" in str(caught.value.hint)
    # a knowledge base of its own, pointed at the first one's collection
    third = open_milvus("third", collection=_collection())
    third.bind(embedder_model="other", dim=8, analyzer="whitespace")
    third.close()
    with pytest.raises(StoreError, match="belongs to another knowledge base") as caught:
        open_milvus("third", collection=first.collection)
    assert "[store] collection" in str(caught.value.hint)
    assert _doc_ids(first) == ["a.md"]  # and the first one is untouched


def test_an_empty_knowledge_base_rebound_to_another_dimension_takes_its_vectors(tmp_path: Path) -> None:
    """``bind(replace=True)`` (``jisik reindex --embeddings``) with a new embedder of another size, on a knowledge
    base with no chunks: the store accepts it, so its collection must take the new vectors, now and reopened."""
    collection = _collection()
    store = _bound(tmp_path / "kb", "milvus.db", collection)
    try:
        store.bind(embedder_model="wider", dim=8, analyzer="whitespace", replace=True)
        wide = unit("a.md", [("a.md", "alpha", {})], [[1, 0, 0, 0, 0, 0, 0, 0]])
        store.write([wide])
        assert [h.doc_id for h in store.hits(store.search_dense(np.ones((1, 8), np.float32), 1, Filter())[0])] \
            == ["a.md"]
    finally:
        store.close()
    again = MilvusStore(tmp_path / "kb", uri="milvus.db", collection=collection)
    try:
        assert again.dim == 8 and again.stats().chunks == 1
    finally:
        again.close()


def test_a_collection_jisik_did_not_make_is_refused(open_milvus: OpenMilvus) -> None:
    probe = open_milvus("probe", collection=_collection())  # only to reach the same Milvus
    foreign = _collection()
    raw = _raw(probe)
    try:
        schema = raw.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
        raw.create_collection(foreign, schema=schema)
        with pytest.raises(StoreError, match="not made by jisik"):
            open_milvus("kb", collection=foreign)
    finally:
        with contextlib.suppress(Exception):
            raw.drop_collection(foreign)
        raw.close()


def test_bm25_variants_that_are_not_an_inner_product_are_refused(tmp_path: Path) -> None:
    for method in ("bm25+", "bm25l"):
        config = KBConfig.model_validate({"store": {"backend": "milvus"}, "bm25": {"method": method}})
        with pytest.raises(ConfigError, match=re.escape(f"method '{method}'")) as caught:
            create_milvus_store(config, tmp_path / "kb")
        assert "lucene" in str(caught.value.hint)

