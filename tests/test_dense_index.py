"""DenseIndex snapshots checked against brute-force numpy top-k over the live set."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jisik.errors import StoreError
from jisik.store.faiss_index import DELTA_MIN, DenseIndex, ivf_min_train

DIM = 32
# Small, fast indexes whose approximate search is still near-exact on ~1,500 vectors: HNSW with a
# wide beam, IVF with 16 lists of which a query probes 8 (min training set 16 x 39 = 624 vectors).
OPTIONS: dict[str, dict[str, Any]] = {
    "flat": {},
    "hnsw": {"hnsw_m": 16, "ef_construction": 80, "ef_search": 64},
    "ivf": {"ivf_nlist": 16, "ivf_nprobe": 8},
}


def unit(rng: np.random.Generator, n: int, dim: int = DIM, centers: int = 40) -> np.ndarray:
    """Real-like unit vectors: noisy points around a few topics (random ones have no clusters for IVF)."""
    hubs = np.random.default_rng(dim).standard_normal((centers, dim)).astype(np.float32)  # same topics each call
    x = hubs[rng.integers(0, centers, n)] + 0.4 * rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute(live: dict[int, np.ndarray], queries: np.ndarray, k: int,
          allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    ids = np.array(sorted(i for i in live if allowed is None or i in set(allowed.tolist())), dtype=np.int64)
    if not len(ids):
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    scores = queries @ np.stack([live[int(i)] for i in ids]).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), ids[order]


def check(index: DenseIndex, live: dict[int, np.ndarray], queries: np.ndarray, k: int,
          allowed: np.ndarray | None, *, exact: bool) -> None:
    """Results are live, allowed, unique, correctly scored; exact equals brute force, else recall >= 0.95."""
    assert index.size == len(live)
    scores, ids = index.search(queries, k, allowed)
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    assert scores.shape == ids.shape == (len(queries), max(1, min(k, len(live))))
    want_scores, want_ids = brute(live, queries, k, allowed)
    ok = set(live) if allowed is None else set(live) & set(allowed.tolist())
    hits = total = 0
    for row in range(len(queries)):
        got = [int(i) for i in ids[row] if i >= 0]
        assert set(got) <= ok, "a removed id or one outside `allowed` came back"
        assert len(got) == len(set(got))
        assert (ids[row][len(got):] == -1).all()
        for i, s in zip(got, scores[row], strict=False):
            assert abs(float(s) - float(live[i] @ queries[row])) < 1e-4
        assert len(got) == min(k, len(ok)), "fewer results than live candidates"
        truth = want_ids[row].tolist()
        hits += len(set(got) & set(truth))
        total += len(truth)
        if exact:
            np.testing.assert_allclose(scores[row][: len(got)], want_scores[row], atol=1e-5)
    if exact:
        assert hits >= total - 1  # ties within float rounding may swap the last place
    elif total:
        assert hits / total >= 0.95, f"recall@{k} {hits / total:.3f}"


def run_sequence(kind: str, seed: int) -> tuple[list[tuple[DenseIndex, dict[int, np.ndarray]]], np.ndarray]:
    """Build, then random add / replace / delete rounds; every snapshot with its live set."""
    rng = np.random.default_rng(seed)
    vectors = unit(rng, 1_200)
    live = {i * 3: v for i, v in enumerate(vectors)}  # ids with gaps
    index = DenseIndex(DIM, kind, **OPTIONS[kind]).build(np.array(list(live)), vectors)
    history = [(index, dict(live))]
    next_id = 10_000
    for _ in range(8):
        present = np.array(sorted(live))
        removed = rng.choice(present, 40, replace=False)
        replaced = rng.choice(np.setdiff1d(present, removed), 40, replace=False)
        new = np.arange(next_id, next_id + 60)
        next_id += 60
        added = np.concatenate([replaced, new, removed[:5]])  # re-adding a removed id replaces it
        added_vectors = unit(rng, len(added))
        index = index.with_changes(added, added_vectors, removed)
        for i in removed:
            live.pop(int(i))
        live.update(zip(added.tolist(), added_vectors, strict=True))
        history.append((index, dict(live)))
    return history, unit(rng, 25)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_random_changes_match_brute_force(kind: str, tmp_path: Path) -> None:
    history, queries = run_sequence(kind, seed={"flat": 1, "hnsw": 2, "ivf": 3}[kind])
    exact = kind == "flat"
    rng = np.random.default_rng(7)
    for index, live in [*history[::3], history[-1]]:
        check(index, live, queries, 10, None, exact=exact)
        check(index, live, queries[:1], 10, None, exact=exact)  # one query: the single-thread path
    index, live = history[-1]
    assert index.describe()["tombstones"] > 0 and index.describe()["delta"] > 0
    present = np.array(sorted(live))
    allowed = np.concatenate([rng.choice(present, len(present) // 3, replace=False),
                              np.array([-5, 1, 999_999])])  # absent and removed ids are ignored
    check(index, live, queries, 10, allowed, exact=exact)
    few = rng.choice(present, 7, replace=False)  # a small filter: exact scan of the candidates
    check(index, live, queries, 10, few, exact=True)
    for merged in (index.merged(), index.merged(compact=True)):
        assert merged.describe()["delta"] == 0
        check(merged, live, queries, 10, None, exact=exact)
        check(merged, live, queries, 10, allowed, exact=exact)
    assert index.merged(compact=True).describe()["tombstones"] == 0
    index.save(tmp_path / "dense", 5)
    loaded = DenseIndex(DIM, kind, **OPTIONS[kind]).load(tmp_path / "dense", 5)
    assert loaded is not None
    assert loaded.describe() == index.describe()
    check(loaded, live, queries, 10, allowed, exact=exact)
    np.testing.assert_array_equal(loaded.search(queries, 10, None)[1], index.search(queries, 10, None)[1])


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_held_snapshots_keep_their_results(kind: str) -> None:
    history, queries = run_sequence(kind, seed=11)
    before = [index.search(queries, 10, None) for index, _ in history]
    history[-1][0].merged(compact=True)  # a merge makes a new base and leaves the old ones alone
    for (index, live), (scores, ids) in zip(history, before, strict=True):
        assert index.size == len(live)
        again = index.search(queries, 10, None)
        np.testing.assert_array_equal(again[1], ids)
        np.testing.assert_array_equal(again[0], scores)


def test_searches_from_threads_while_the_next_snapshot_is_made() -> None:
    rng = np.random.default_rng(5)
    vectors = unit(rng, 3_000)
    index = DenseIndex(DIM, "hnsw", **OPTIONS["hnsw"]).build(np.arange(3_000), vectors)
    queries = unit(rng, 4)
    expected = index.search(queries, 10, None)
    failures: list[str] = []

    def reader() -> None:
        for _ in range(30):
            if not np.array_equal(index.search(queries, 10, None)[1], expected[1]):
                failures.append("changed")

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    later = index
    for step in range(5):
        later = later.with_changes(np.arange(3_000 + step * 50, 3_050 + step * 50), unit(rng, 50),
                                   np.arange(step * 50, step * 50 + 50))
    later = later.merged(compact=True)
    for thread in threads:
        thread.join()
    assert not failures
    assert later.size == 3_000 and index.size == 3_000


def test_ivf_trains_once_there_are_enough_vectors_and_retrains_after_growth(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vectors = unit(rng, 3_000)
    options = {"ivf_nprobe": 4}  # default nlist; at least 4 x 4 lists, so training starts at 16 x 39
    assert ivf_min_train(nprobe=4) == 624
    assert "flat until 2,496 vectors" in DenseIndex(DIM, "ivf").describe()["state"]  # nprobe 16
    index = DenseIndex(DIM, "ivf", **options).build(np.arange(600), vectors[:600])
    info = index.describe()
    assert info["trained"] is False and info["nlist"] is None
    assert info["state"] == "ivf, untrained: flat until 624 vectors"
    assert not index.needs_merge()
    # saved untrained, reopened, grown past the minimum: training is due and merged() trains
    index.save(tmp_path / "dense", 1)
    reopened = DenseIndex(DIM, "ivf", **options).load(tmp_path / "dense", 1)
    assert reopened is not None and reopened.describe()["state"] == info["state"]
    grown = reopened.with_changes(np.arange(600, 700), vectors[600:700], np.zeros(0, np.int64))
    assert grown.needs_merge() and grown.describe()["trained"] is False
    trained = grown.merged()
    info = trained.describe()
    assert info["trained"] is True and info["trained_on"] == 700 and info["nlist"] == 17  # 700 // 39
    assert info["state"] == "ivf, 17 lists trained on 700 vectors" and not trained.needs_merge()
    # growth below 4x: the delta is appended on the same centroids
    bigger = trained.with_changes(np.arange(700, 2_700), vectors[700:2_700], np.arange(10))
    assert not bigger.needs_merge()
    folded = bigger.merged()
    assert folded.describe()["nlist"] == 17 and folded.describe()["trained_on"] == 700
    assert folded.describe()["base"] == 2_700 and folded.describe()["tombstones"] == 10
    check(folded, {i: vectors[i] for i in range(10, 2_700)}, unit(rng, 10), 10, None, exact=False)
    # 4x the training set: retrain with more lists
    grown = folded.with_changes(np.arange(2_700, 2_810), vectors[2_700:2_810], np.zeros(0, np.int64))
    assert grown.size == 2_800 and grown.needs_merge()
    retrained = grown.merged()
    info = retrained.describe()
    assert info["nlist"] == 71 and info["trained_on"] == 2_800 and info["tombstones"] == 0  # 2,800 // 39
    retrained.save(tmp_path / "dense", 2)
    loaded = DenseIndex(DIM, "ivf", **options).load(tmp_path / "dense", 2)
    assert loaded is not None and loaded.describe() == info
    # shrunk 4x: retrained with fewer lists; below the minimum: flat again
    shrunk = loaded.with_changes(np.zeros(0, np.int64), np.zeros((0, DIM), np.float32), np.arange(2_110))
    assert shrunk.size == 700 and shrunk.needs_merge()
    assert shrunk.merged().describe()["nlist"] == 17 and shrunk.merged().describe()["trained_on"] == 700
    emptied = shrunk.with_changes(np.zeros(0, np.int64), np.zeros((0, DIM), np.float32), np.arange(3_000))
    assert emptied.merged().size == 0 and emptied.merged().describe()["trained"] is False
    # a trained base emptied in place (few tombstones would not), saved, reopened and refilled
    emptied.save(tmp_path / "emptied", 3)
    refilled = DenseIndex(DIM, "ivf", **options).load(tmp_path / "emptied", 3)
    assert refilled is not None and refilled.describe()["trained"] is True and refilled.size == 0
    refilled = refilled.with_changes(np.arange(50), vectors[:50], np.zeros(0, np.int64)).merged()
    assert refilled.describe()["base"] == 50 and refilled.describe()["trained"] is False
    check(refilled, {i: vectors[i] for i in range(50)}, unit(rng, 3), 10, None, exact=True)
    reconfigured = DenseIndex(DIM, "ivf", ivf_nlist=32, ivf_nprobe=4).load(tmp_path / "dense", 2)
    assert reconfigured is not None and reconfigured.needs_merge()  # another nlist in the config: retrain
    assert reconfigured.merged().describe()["nlist"] == 32
    live = {i: vectors[i] for i in range(10, 2_810) if i < 3_000}
    check(loaded, live, unit(rng, 5), 10, np.arange(10, 200), exact=True)  # a small filter scans exactly


def test_ivf_build_trains_at_once_with_enough_vectors() -> None:
    vectors = unit(np.random.default_rng(4), 700)
    index = DenseIndex(DIM, "ivf", ivf_nprobe=4).build(np.arange(700), vectors)
    assert index.describe()["trained"] is True and index.describe()["nlist"] == 17


def test_hnsw_removal_keeps_the_graph_until_merged() -> None:
    rng = np.random.default_rng(8)
    vectors = unit(rng, 500)
    index = DenseIndex(DIM, "hnsw", **OPTIONS["hnsw"]).build(np.arange(500), vectors)
    removed = index.with_changes(np.zeros(0, np.int64), np.zeros((0, DIM), np.float32), np.arange(60))
    assert removed.shares_base(index)
    assert removed.describe()["tombstones"] == 60 and removed.describe()["base"] == 500
    assert removed.size == 440 and index.size == 500
    assert removed.needs_merge()  # 60 > 10 % of 500
    fresh = unit(rng, 5)
    replaced = index.with_changes(np.arange(5), fresh, np.zeros(0, np.int64))
    assert replaced.shares_base(index) and replaced.describe()["delta"] == 5
    assert not replaced.needs_merge()
    folded = replaced.merged()  # few tombstones: the graph is copied and the delta appended
    assert not folded.shares_base(index)
    assert folded.describe()["tombstones"] == 5 and folded.describe()["delta"] == 0
    assert folded.describe()["base"] == 505
    live = {i: (fresh[i] if i < 5 else vectors[i]) for i in range(500)}
    queries = np.concatenate([fresh, unit(rng, 5)])  # the replaced vectors are found under their ids
    check(folded, live, queries, 10, None, exact=False)
    check(folded, live, queries, 10, np.arange(3, 300), exact=False)
    assert (folded.search(fresh, 1, None)[1][:, 0] == np.arange(5)).all()
    compact = removed.merged()  # many tombstones: rebuilt from the live rows
    assert compact.describe()["tombstones"] == 0 and compact.describe()["base"] == 440
    assert removed.size == 440 and not compact.needs_merge()


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_edge_cases(kind: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    queries = unit(rng, 3)
    empty = DenseIndex(DIM, kind, **OPTIONS[kind])
    for index in (empty, empty.build(np.zeros(0, np.int64), np.zeros((0, DIM), np.float32))):
        _, ids = index.search(queries, 5, None)
        assert ids.shape == (3, 1) and (ids == -1).all() and index.size == 0
    vectors = unit(rng, 50)
    live = {i: v for i, v in enumerate(vectors)}
    index = empty.build(np.arange(50), vectors)
    check(index, live, queries, 80, None, exact=True)  # k > live: all 50, best first
    assert (index.search(queries, 5, np.zeros(0, np.int64))[1] == -1).all()
    check(index, live, queries, 5, np.array([3, 4]), exact=True)  # fewer allowed than k: padded
    gone = index.with_changes(np.zeros(0, np.int64), np.zeros((0, DIM), np.float32), np.arange(50))
    assert gone.size == 0 and (gone.search(queries, 5, None)[1] == -1).all()
    assert gone.merged().size == 0 and (gone.merged().search(queries, 5, None)[1] == -1).all()
    gone.save(tmp_path / "gone", 3)
    loaded = empty.load(tmp_path / "gone", 3)
    assert loaded is not None and loaded.size == 0
    delta_only = empty.with_changes(np.array([7, 9]), vectors[:2], np.zeros(0, np.int64))
    check(delta_only, {7: vectors[0], 9: vectors[1]}, queries, 5, None, exact=True)
    assert (delta_only.search(queries, 5, np.array([7]))[1][:, 0] == 7).all()
    check(delta_only.merged(), {7: vectors[0], 9: vectors[1]}, queries, 5, None, exact=True)


def test_save_reuses_an_unchanged_base_and_load_rejects_mismatches(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    vectors = unit(rng, 300)
    index = DenseIndex(DIM, "flat").build(np.arange(300), vectors)
    folder = tmp_path / "dense"
    index.save(folder, 1)
    inode = os.stat(folder / "base.faiss").st_ino
    changed = index.with_changes(np.array([1_000]), unit(rng, 1), np.array([4]))
    changed.save(folder, 2)
    assert os.stat(folder / "base.faiss").st_ino == inode  # hard-linked, not rewritten
    assert not (tmp_path / "dense.tmp").exists() and not (tmp_path / "dense.old").exists()
    assert DenseIndex(DIM, "flat").load(folder, 1) is None  # generation
    assert DenseIndex(DIM, "hnsw").load(folder, 2) is None  # kind
    assert DenseIndex(DIM + 1, "flat").load(folder, 2) is None  # dimension
    loaded = DenseIndex(DIM, "flat").load(folder, 2)
    assert loaded is not None and loaded.size == 300
    np.save(folder / "tombstones.npy", np.array([9_999], dtype=np.int64))  # out of range
    assert DenseIndex(DIM, "flat").load(folder, 2) is None
    changed.save(folder, 3)
    (folder / "delta_vectors.npy").write_bytes(b"garbage")
    assert DenseIndex(DIM, "flat").load(folder, 3) is None
    changed.merged().save(folder, 4)
    data = (folder / "base.faiss").read_bytes()
    (folder / "base.faiss").write_bytes(data[: len(data) // 2])  # truncated
    assert DenseIndex(DIM, "flat").load(folder, 4) is None
    (folder / "header.json").write_text('{"format": "jisik-faiss", "version": 1, "generation": 4, '
                                        '"kind": "flat", "dim": 32, "count": 300}')  # the old layout
    assert DenseIndex(DIM, "flat").load(folder, 4) is None
    assert DenseIndex(DIM, "flat").load(tmp_path / "missing", 4) is None


def test_merge_is_due_for_a_big_delta_or_many_tombstones() -> None:
    rng = np.random.default_rng(12)
    index = DenseIndex(8, "flat").build(np.arange(1_000), unit(rng, 1_000, 8))
    small = index.with_changes(np.arange(1_000, 1_000 + DELTA_MIN), unit(rng, DELTA_MIN, 8), np.arange(100))
    assert not small.needs_merge()  # 2,048 in the delta, 100 tombstones = 10 %
    assert small.with_changes(np.array([5_000]), unit(rng, 1, 8), np.zeros(0, np.int64)).needs_merge()
    assert small.with_changes(np.zeros(0, np.int64), np.zeros((0, 8), np.float32), np.array([100])).needs_merge()
    merged = small.merged()
    assert merged.describe()["base"] == 2_948 and not merged.needs_merge()


def test_bad_input_raises_store_error() -> None:
    with pytest.raises(StoreError):
        DenseIndex(8, "annoy")
    index = DenseIndex(8)
    with pytest.raises(StoreError):
        index.build(np.arange(3), np.zeros((2, 8), np.float32))
    with pytest.raises(StoreError):
        index.build(np.array([1, 1]), np.zeros((2, 8), np.float32))
    with pytest.raises(StoreError):
        index.with_changes(np.array([1, 1]), np.zeros((2, 8), np.float32), np.zeros(0, np.int64))
    with pytest.raises(StoreError):
        index.build(np.arange(2), np.ones((2, 8), np.float32)).search(np.zeros((1, 4), np.float32), 3, None)
