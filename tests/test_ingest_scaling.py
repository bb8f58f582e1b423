"""Ingesting a CSV costs the same per row at 2,000 and at 8,000 rows (issue 11, part 4: linear writes).

Nothing is timed (the box is shared): the tests count work. SQLite reports its virtual-machine steps through
a progress handler on every connection the store opens, so a statement that scans earlier rows (a DELETE
that filters on an unindexed column, a lookup per row that walks a table) grows the steps per row; cProfile
counts the Python calls, so per-row Python work that touches every earlier document grows the calls per
row. The pipeline's helper threads run inline here (a synchronous executor) so one profiler sees every
call. The benchmark with the real costs is ``benchmarks/ingest_scaling.py``.

The hashing embedder (a named fake) and the whitespace analyzer keep the rows cheap; the store is real.
"""

from __future__ import annotations

import cProfile
import csv
import pstats
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import jisik.ingest.pipeline as pipeline
from jisik.config import KBConfig
from jisik.ingest.loaders.tabular import unique_columns
from jisik.kb import KnowledgeBase

SMALL, LARGE = 2_000, 8_000
# Work per row at LARGE over work per row at SMALL. Linear work gives slightly under 1 (fixed costs are
# spread over more rows). Ledger.stage's DELETE of other versions, once run on every part (it walks every row
# staged for the file), gave 1.9x the VM steps per row with these settings; now it runs once per file version.
MAX_RATIO = 1.1
VM_STEPS_PER_CALL = 100  # the progress handler runs every this many SQLite VM instructions
SETTINGS = {"embedder": {"backend": "hashing", "dim": 64}, "bm25": {"analyzer": "whitespace"}}


class _InlineExecutor:
    """``ThreadPoolExecutor`` stand-in that runs each task at once on the calling thread."""

    def __init__(self, max_workers: int | None = None) -> None:
        pass

    def __enter__(self) -> _InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered by future.result(), as a real executor would
            future.set_exception(exc)
        return future


@dataclass
class Work:
    vm_steps: int
    python_calls: int
    chunks: int


def write_csv(path: Path, rows: int, *, version: int = 1) -> None:
    """Distinct one-line rows (no two chunks share a text), with a category column as metadata."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["text", "category"])
        for n in range(rows):
            writer.writerow([f"주문 {n}번 v{version}: 반품은 {n % 30 + 1}일 이내 신청 (order {n})", f"c{n % 7}"])


def measure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int, *, update: bool = False) -> list[Work]:
    """Work of ingesting a new ``rows``-row CSV into a new knowledge base; with ``update``, then also of
    ingesting a changed version of every row over it (the file's documents are replaced)."""
    folder = tmp_path / f"data{rows}"
    folder.mkdir()
    csv_path = folder / "faq.csv"
    KnowledgeBase.init(tmp_path / f"kb{rows}", KBConfig.model_validate(SETTINGS)).close()
    steps = [0]

    def count_step() -> int:
        steps[0] += 1
        return 0  # go on

    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = real_connect(*args, **kwargs)
        conn.set_progress_handler(count_step, VM_STEPS_PER_CALL)
        return conn

    work = []
    with monkeypatch.context() as patch:
        patch.setattr(sqlite3, "connect", connect)
        patch.setattr(pipeline, "ThreadPoolExecutor", _InlineExecutor)
        with KnowledgeBase.init(tmp_path / f"kb{rows}", exist_ok=True) as kb:  # opened here: its connections count
            for version in (1, 2) if update else (1,):
                write_csv(csv_path, rows, version=version)
                steps[0] = 0
                profile = cProfile.Profile()
                profile.enable()
                try:
                    report = kb.ingest([folder])
                finally:
                    profile.disable()
                assert not report.failed and report.chunks == rows
                calls = int(pstats.Stats(profile).total_calls)  # type: ignore[attr-defined]
                work.append(Work(vm_steps=steps[0] * VM_STEPS_PER_CALL, python_calls=calls, chunks=rows))
    return work


def assert_linear(small: Work, large: Work) -> None:
    for name in ("vm_steps", "python_calls"):
        per_small = getattr(small, name) / small.chunks
        per_large = getattr(large, name) / large.chunks
        assert per_large <= MAX_RATIO * per_small, (
            f"{name} per row grew from {per_small:,.0f} at {small.chunks:,} rows to {per_large:,.0f} at "
            f"{large.chunks:,} rows ({per_large / per_small:.2f}x): some step of the ingest is super-linear")


def test_a_big_csv_staged_part_by_part_costs_the_same_per_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    # Both sizes take the big-file path (> LARGE_FILE_CHUNKS chunks): staged part by part, then published.
    # Small parts make any per-part cost that grows with the rows staged so far stand out. The second
    # ingest replaces every row: the file's documents, chunks and metadata are deleted and written again.
    monkeypatch.setattr(pipeline, "LARGE_FILE_CHUNKS", 1_000)
    monkeypatch.setattr(pipeline, "BATCH_CHUNKS", 32)
    small = measure(tmp_path, monkeypatch, SMALL, update=True)
    large = measure(tmp_path, monkeypatch, LARGE, update=True)
    assert_linear(small[0], large[0])
    assert_linear(small[1], large[1])


def test_a_csv_written_in_one_transaction_costs_the_same_per_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    monkeypatch.setattr(pipeline, "LARGE_FILE_CHUNKS", 10**9)  # one IngestUnit with every row
    (small,), (large,) = measure(tmp_path, monkeypatch, SMALL), measure(tmp_path, monkeypatch, LARGE)
    assert_linear(small, large)


def test_a_header_of_many_equal_column_names_is_numbered_in_one_pass() -> None:
    # Each name used to be looked up in the list of names so far, suffix after suffix: 2,000 copies of one
    # name took minutes (cubic). Now a set and the last suffix per name.
    names = unique_columns(["q"] * 20_000 + [""] * 20_000 + ["q_3"])
    assert len(set(names)) == len(names) == 40_001
    assert names[:3] == ["q", "q_2", "q_3"] and names[20_000] == "column_20001" and names[-1] == "q_3_2"
