"""The incremental BM25 index: exactly a fresh bm25s build after any changes, immutable snapshots, files.

bm25s (float64) is the reference for every method: after random adds, replacements and deletions, the
scores of the live documents equal those of bm25s indexing just those documents, and stay equal after
merged(), rebased() and a save/load round trip.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bm25s  # the reference implementation (dev extra)
import numpy as np
import pytest
import rank_bm25

from jisik.store import bm25_index
from jisik.store.bm25_index import LAYOUT, METHODS, LexicalIndex

WORDS = ["반품", "환불", "기간", "배송", "배송비", "카드", "취소", "교환", "사이즈", "색상", "회원", "탈퇴",
         "refund", "return", "policy", "days", "card", "shipping", "free", "size", "color", "member",
         *[f"w{i}" for i in range(40)]]
QUERIES = [["반품"], ["환불", "기간", "반품"], ["refund", "refund", "days"], ["w3", "없는말", "w7"],
           ["shipping", "배송", "free", "w1", "w2"], ["없는말"], []]


def random_doc(rng: random.Random) -> list[str]:
    """0 to 14 terms with repeats; a few common words, a long tail (df changes matter)."""
    n = rng.choice([0, 1, 2, 3, 5, 8, 14]) if rng.random() < 0.9 else 0
    return [rng.choice(WORDS[:6]) if rng.random() < 0.3 else rng.choice(WORDS) for _ in range(n)]


def reference_scores(method: str, docs: Sequence[Sequence[str]], queries: Sequence[Sequence[str]]) -> list[Any]:
    """bm25s (float64) over just ``docs``, per query; zeros when no query term is in them (as the index)."""
    known = {t for d in docs for t in d}
    model = None
    if known:
        model = bm25s.BM25(k1=1.2, b=0.75, delta=0.5, method=method, dtype="float64")
        with contextlib.redirect_stderr(io.StringIO()):
            model.index([list(d) for d in docs], show_progress=False)
    results = []
    for query in queries:
        wanted = [t for t in query if t in known]
        results.append(np.asarray(model.get_scores(wanted), dtype=np.float64) if model is not None and wanted
                       else np.zeros(len(docs)))
    return results


def assert_matches(index: LexicalIndex, live: dict[int, list[str]], method: str) -> None:
    assert sorted(index.ids.tolist()) == sorted(live) and index.size == len(live)
    docs = [live[i] for i in index.ids.tolist()]
    for query, expected in zip(QUERIES, reference_scores(method, docs, QUERIES), strict=True):
        ours = index.scores(query)
        assert ours.dtype == np.float64 and ours.shape == (len(live),)
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6, err_msg=f"{method} {query}")


def same_scores(a: LexicalIndex, b: LexicalIndex) -> None:
    """Two snapshots give every live chunk the same scores (in any row order) and the same top_k."""
    assert sorted(a.ids.tolist()) == sorted(b.ids.tolist())
    for query in QUERIES:
        sa, sb = dict(zip(a.ids.tolist(), a.scores(query), strict=True)), dict(zip(b.ids.tolist(), b.scores(query),
                                                                                    strict=True))
        assert all(abs(sa[i] - sb[i]) <= 1e-9 for i in sa), query
        assert [i for i, _ in a.top_k(query, 5, None)] == [i for i, _ in b.top_k(query, 5, None)], query


@pytest.mark.parametrize("method", METHODS)
def test_random_changes_score_like_a_fresh_bm25s_build(method: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bm25_index, "SEAL_ROWS", 16)  # several delta segments, sealed and open
    rng = random.Random(METHODS.index(method))
    most_segments = 0
    live = {i: random_doc(rng) for i in range(25)}
    index = LexicalIndex(method=method).build(list(live), list(live.values()))
    assert_matches(index, live, method)
    next_id, ancestor = 25, index
    for step in range(300):
        removed = rng.sample(sorted(live), min(len(live), rng.choice([0, 0, 1, 2, 5])))
        replaced = removed[:rng.randint(0, len(removed))]  # same id, new terms
        added = [(i, random_doc(rng)) for i in replaced]
        for _ in range(rng.choice([0, 1, 1, 3, 8])):
            added.append((next_id, random_doc(rng)))
            next_id += 1
        unknown = [10_000 + step] if rng.random() < 0.1 else []
        index = index.with_changes(added, removed + unknown)
        for i in removed:
            del live[i]
        live.update(added)
        most_segments = max(most_segments, index.stats()["segments"])
        if step % 3 == 0:
            assert_matches(index, live, method)
        if step % 60 == 59:
            merged = index.merged()
            assert merged.stats()["segments"] <= 1 and merged.stats()["tombstones"] == 0
            same_scores(index, merged)
            rebased = index.rebased(ancestor.merged())  # a merge of an older snapshot, writes replayed on it
            same_scores(index, rebased)
            assert_matches(rebased, live, method)
            index.save(tmp_path / "bm25", step)
            loaded = LexicalIndex(method=method)
            assert loaded.load(tmp_path / "bm25", step)
            same_scores(index, loaded)
            # go on from the rebased snapshot or the loaded one (a load starts a new lineage: rebase from it on)
            ancestor, index = (index, rebased) if step % 120 == 59 else (loaded, loaded)
    assert_matches(index, live, method)
    assert most_segments >= 5


def test_every_method_keeps_bm25s_empty_document_and_repeated_term_rules() -> None:
    """bm25l/bm25+ score a document without the term (even an empty one) by the term's tf=0 weight at the
    average length; a query term given twice counts twice; empty documents count in N and the average."""
    docs = [["a", "b", "a"], [], ["b"], ["c", "c", "c", "c"], []]
    for method in METHODS:
        index = LexicalIndex(method=method).build(range(len(docs)), docs)
        queries = [["a"], ["a", "a"], ["b", "c"], ["a", "zzz"]]
        for query, expected in zip(queries, reference_scores(method, docs, queries), strict=True):
            np.testing.assert_allclose(index.scores(query), expected, atol=1e-9)
        assert np.all(index.scores(["zzz"]) == 0)
    assert LexicalIndex(method="bm25+").build(range(5), docs).scores(["a"])[1] > 0  # the empty document


def test_robertson_matches_rank_bm25_after_changes() -> None:
    """robertson is the classic Okapi BM25 that rank_bm25.BM25Okapi computes (times k1 + 1)."""
    corpus = {0: ["반품", "기간", "14", "일"], 1: ["배송", "기간", "무료"], 2: ["환불", "카드", "취소", "기간"],
              3: ["반품", "배송비", "고객", "부담"], 4: ["회원", "탈퇴"], 5: ["교환", "사이즈", "색상"]}
    index = LexicalIndex(k1=1.5, b=0.75, method="robertson").build([0, 1, 2, 3, 4], [corpus[i] for i in range(5)])
    index = index.with_changes([(5, corpus[5]), (1, ["배송", "기간", "무료", "무료"])], [1, 4])
    corpus[1] = ["배송", "기간", "무료", "무료"]
    del corpus[4]
    docs = [corpus[i] for i in index.ids.tolist()]
    reference = rank_bm25.BM25Okapi(docs, k1=1.5, b=0.75, epsilon=0.25)
    for query in (["반품"], ["배송", "무료"], ["카드", "환불", "없는말"]):
        np.testing.assert_allclose(index.scores(query) * 2.5, reference.get_scores(query), rtol=1e-9, atol=1e-9)


def test_a_held_snapshot_never_changes() -> None:
    old = LexicalIndex().build([1, 2, 3], [["alpha", "beta"], ["beta"], ["gamma", "alpha"]])
    before = {tuple(q): (old.scores(q).copy(), old.top_k(q, 10, None)) for q in (["alpha"], ["beta", "gamma"])}
    ids, stats = old.ids.copy(), old.stats()
    new = old.with_changes([(4, ["alpha", "delta"]), (2, ["epsilon"])], [2, 3])
    new.merged()
    new.with_changes([(9, ["alpha"] * 5)], [1])
    assert np.array_equal(old.ids, ids) and old.stats() == stats and old.size == 3
    for query, (scores, top) in before.items():
        assert np.array_equal(old.scores(list(query)), scores) and old.top_k(list(query), 10, None) == top
    assert old.top_k(["delta"], 5, None) == [] and old.top_k(["epsilon"], 5, None) == []  # its vocabulary
    assert [i for i, _ in new.top_k(["epsilon"], 5, None)] == [2]


def test_readers_of_a_snapshot_are_unaffected_by_concurrent_writes() -> None:
    rng = random.Random(3)
    base = LexicalIndex().build(range(200), [random_doc(rng) for _ in range(200)])
    expected = [base.top_k(q, 10, None) for q in QUERIES]
    failures: list[Any] = []

    def read() -> None:
        for _ in range(50):
            got = [base.top_k(q, 10, None) for q in QUERIES]
            if got != expected:
                failures.append(got)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    index = base
    for step in range(100):  # new terms are interned into the vocabulary the readers look terms up in
        index = index.with_changes([(1000 + step, [f"new{step}", "반품"])], [step])
    for thread in readers:
        thread.join()
    assert not failures


def test_top_k_contract() -> None:
    index = LexicalIndex().build([10, 11, 12, 13], [["a", "b"], ["a"], ["c"], ["a", "a", "c"]])
    scores = dict(zip(index.ids.tolist(), index.scores(["a"]), strict=True))
    top = index.top_k(["a"], 10, None)  # k beyond the matches: only positive scores, best first
    assert [i for i, _ in top] == sorted((i for i in scores if scores[i] > 0), key=lambda i: -scores[i])
    assert [s for _, s in top] == sorted((s for _, s in top), reverse=True) and len(top) == 3
    assert [i for i, _ in index.top_k(["a"], 1, None)] == [top[0][0]]
    assert [i for i, _ in index.top_k(["a"], 10, np.array([11, 12, 99]))] == [11]
    assert index.top_k(["a"], 10, np.array([], dtype=np.int64)) == []
    assert index.top_k(["nothing"], 10, None) == [] and index.top_k([], 10, None) == []
    assert index.top_k(["a"], 0, None) == []
    assert LexicalIndex().top_k(["a"], 5, None) == [] and LexicalIndex().size == 0
    gone = index.with_changes([], [10, 11, 12, 13])
    assert gone.top_k(["a"], 5, None) == [] and gone.size == 0 and gone.scores(["a"]).shape == (0,)
    assert gone.merged().size == 0 and gone.merged().top_k(["a"], 5, None) == []
    back = gone.with_changes([(10, ["a"])], [])
    assert [i for i, _ in back.top_k(["a"], 5, None)] == [10]


def test_top_k_breaks_ties_by_chunk_id_whatever_the_row_order() -> None:
    docs = {i: ["x", "y"] for i in range(40)}
    index = LexicalIndex().build(list(docs), list(docs.values()))
    index = index.with_changes([(i, ["x", "y"]) for i in (3, 1, 2)], [1, 2, 3])  # rows now out of id order
    assert [i for i, _ in index.top_k(["x"], 5, None)] == [0, 1, 2, 3, 4]
    assert [i for i, _ in index.merged().top_k(["x"], 5, np.array([39, 2, 30]))] == [2, 30, 39]


def test_top_k_agrees_with_a_full_sort_on_larger_random_indexes() -> None:
    """The probe bound (k-th best among the rarest term's documents) never drops a true top-k document."""
    rng = np.random.default_rng(5)
    vocabulary = [f"t{i}" for i in range(300)]
    weights = 1.0 / np.arange(1, 301)
    docs = [list(rng.choice(vocabulary, size=int(rng.integers(1, 40)), p=weights / weights.sum()))
            for _ in range(3000)]
    for method in ("lucene", "bm25l"):
        index = LexicalIndex(method=method).build(range(3000), docs)
        index = index.with_changes([(5000 + i, docs[i]) for i in range(100)], list(range(0, 300, 2)))
        ids = index.ids
        for _ in range(30):
            query = list(rng.choice(vocabulary[:60], size=int(rng.integers(1, 5))))
            allowed = rng.choice(ids, size=500, replace=False) if rng.random() < 0.3 else None
            scores = index.scores(query)
            keep = scores > 0 if allowed is None else (scores > 0) & np.isin(ids, allowed)
            order = np.lexsort((ids[keep], -scores[keep]))[:10]
            expected = [(int(i), float(s)) for i, s in zip(ids[keep][order], scores[keep][order], strict=True)]
            assert index.top_k(query, 10, allowed) == expected


def test_changes_are_checked() -> None:
    index = LexicalIndex().build([1, 2], [["a"], ["b"]])
    with pytest.raises(ValueError, match="already in the BM25 index"):
        index.with_changes([(2, ["c"])], [])
    with pytest.raises(ValueError, match="twice"):
        index.with_changes([(5, ["c"]), (5, ["d"])], [])
    with pytest.raises(ValueError, match="twice"):
        LexicalIndex().build([1, 1], [["a"], ["b"]])
    with pytest.raises(ValueError, match="fresh"):
        index.build([3], [["c"]])
    with pytest.raises(ValueError, match="unknown BM25 method"):
        LexicalIndex(method="bm26")
    assert index.with_changes([], [99]) is index  # unknown ids are ignored
    assert index.with_changes([(2, ["c"])], [2]).scores(["c"]).tolist()[-1] > 0  # remove + add = replace
    with pytest.raises(ValueError, match="earlier snapshot"):
        index.rebased(LexicalIndex().build([1], [["a"]]).merged())


def test_merge_thresholds_and_stats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bm25_index, "MERGE_MIN_ROWS", 20)
    monkeypatch.setattr(bm25_index, "MERGE_MIN_TOMBSTONES", 10)
    monkeypatch.setattr(bm25_index, "SEAL_ROWS", 8)
    index = LexicalIndex().build(range(100), [["a", f"t{i}"] for i in range(100)])
    assert not index.needs_merge()
    assert index.stats() == {"documents": 100, "segments": 1, "tombstones": 0, "delta": 0, "terms": 101}
    for step in range(5):  # 5 writes of 4 rows: the delta is sealed at 8 rows, so 3 delta segments
        index = index.with_changes([(1000 + 4 * step + i, ["b"]) for i in range(4)], [])
    assert index.stats()["segments"] == 4 and index.stats()["delta"] == 20 and not index.needs_merge()
    index = index.with_changes([(2000, ["b"])], [])  # 21 delta rows > max(20, 10% of 100)
    assert index.needs_merge()
    merged = index.merged()
    assert not merged.needs_merge() and merged.stats()["segments"] == 1 and merged.size == 121
    dead = merged.with_changes([], list(range(13)))  # 13 tombstones > max(10, 10% of 121)
    assert dead.needs_merge() and dead.stats()["tombstones"] == 13 and dead.stats()["terms"] == 89
    monkeypatch.setattr(bm25_index, "MAX_SEGMENTS", 2)
    assert index.needs_merge()


def test_save_and_load(tmp_path: Path) -> None:
    folder = tmp_path / "bm25"
    index = LexicalIndex(k1=1.5, method="bm25+").build([1, 2, 3], [["반품", "기간"], ["배송"], []])
    index = index.with_changes([(4, ["반품", "반품"])], [2])
    index.save(folder, 7)
    header = json.loads((folder / "header.json").read_text(encoding="utf-8"))
    assert header["layout"] == LAYOUT and header["count"] == 3 and header["method"] == "bm25+"
    loaded = LexicalIndex(k1=1.5, method="bm25+")
    assert loaded.load(folder, 7)
    same_scores(index, loaded)
    assert loaded.stats() == index.stats()
    with pytest.raises(ValueError, match="fresh"):
        loaded.load(folder, 7)
    assert not LexicalIndex(k1=1.5, method="bm25+").load(folder, 8)  # another generation
    assert not LexicalIndex(method="bm25+").load(folder, 7)  # other k1
    assert not LexicalIndex(k1=1.5, method="bm25+", delta=1.0).load(folder, 7)
    assert not LexicalIndex().load(tmp_path / "missing", 7)
    empty = tmp_path / "empty"
    LexicalIndex().save(empty, 1)
    reloaded = LexicalIndex()
    assert reloaded.load(empty, 1) and reloaded.size == 0 and reloaded.top_k(["a"], 3, None) == []


def _damaged_copies(tmp_path: Path) -> list[tuple[str, Path]]:
    index = LexicalIndex().build(range(50), [[f"t{i % 7}", f"u{i % 3}", "반품"] for i in range(50)])
    index = index.with_changes([(100, ["x"])], [3])
    folder = tmp_path / "good"
    index.save(folder, 1)
    cases = []

    def copy(name: str) -> Path:
        target = tmp_path / name
        target.mkdir()
        for file in folder.iterdir():
            (target / file.name).write_bytes(file.read_bytes())
        cases.append((name, target))
        return target

    target = copy("flipped-segment")
    data = bytearray((target / "segment-0.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (target / "segment-0.npz").write_bytes(bytes(data))
    target = copy("truncated-segment")
    (target / "segment-1.npz").write_bytes((target / "segment-1.npz").read_bytes()[:100])
    target = copy("missing-alive")
    (target / "alive.npy").unlink()
    target = copy("bad-vocabulary")
    (target / "vocabulary.json").write_text('["t0", "t0"]', encoding="utf-8")
    target = copy("broken-header")
    (target / "header.json").write_text("{broken", encoding="utf-8")
    target = copy("wrong-count")
    header = json.loads((target / "header.json").read_text(encoding="utf-8"))
    (target / "header.json").write_text(json.dumps({**header, "count": 3}), encoding="utf-8")
    target = copy("old-bm25s-format")  # what the previous bm25s LexicalIndex wrote: no "layout"
    old = {k: header[k] for k in ("format", "version", "generation", "k1", "b", "method")}
    (target / "header.json").write_text(json.dumps({**old, "count": 50}), encoding="utf-8")
    return cases


def test_a_damaged_or_old_folder_does_not_load(tmp_path: Path) -> None:
    cases = _damaged_copies(tmp_path)
    good = LexicalIndex()
    assert good.load(tmp_path / "good", 1) and good.size == 50
    for name, folder in cases:
        index = LexicalIndex()
        assert not index.load(folder, 1), name
        assert index.size == 0 and index.top_k(["반품"], 3, None) == [], name  # left empty, still usable
