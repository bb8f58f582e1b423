"""Load test of the embedded store: searches while a writer ingests, across threads and processes.

    python benchmarks/store_load.py                      # 100,000 chunks, 8 readers, 60 s of writes
    python benchmarks/store_load.py --chunks 20000 --seconds 20
    python benchmarks/store_load.py --kill-runs 20       # SIGKILL the writer at random points

What runs, on one knowledge base of ``--chunks`` chunks (built once, cached under ``--cache``):

1. idle: ``--readers`` threads run hybrid searches (k=6) for ``--idle-seconds``; latency p50/p95.
2. threads: the same readers while a writer thread ingests files one by one (``kb.ingest([file])``, up to
   ``--files``, for ``--seconds``), replaces some earlier files with a second version, and tries a
   failing batch now and then (rolled back).
3. processes: the readers in a second process while this one writes.
4. first search after a one-file write, 20 times.
5. with ``--kill-runs N``: a writer process ingests continuously and is SIGKILLed at a random moment
   while reader threads search; then the knowledge base is checked (opens, no duplicate chunks, every
   committed file complete, searchable) and the next run resumes.

Every result is checked against the generation it reports: each writer file carries a marker
``m<i>v<version>``; a hit of version 1 of file i must come from a generation at or after the one that
committed it and before the one that replaced it, a hit of version 2 from one at or after its commit,
and a marker of a rolled-back batch must never appear. Embedder: jisik's hashing fake (dim 384) and the
``whitespace`` analyzer, so the figures are the store's and the search path's, not the model's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

from jisik.config import BM25Config, EmbedderConfig, KBConfig
from jisik.errors import StoreError
from jisik.kb import KnowledgeBase
from jisik.records import Chunk, Document, Segment
from jisik.store.base import FileRecord, IngestUnit

MARKER = re.compile(r"\bm(\d+)v(\d)\b")
ROLLED_BACK = "rolledback"
KOREAN = ["반품", "환불", "배송", "교환", "기간", "영업일", "고객", "상품", "신청", "부담", "규정", "시행", "연차",
          "휴가"]
ENGLISH = ["refund", "return", "shipping", "policy", "days", "leave", "annual", "employee", "item", "inspection",
           "warranty", "repair", "invoice", "payment"]


def vocabulary(size: int = 20_000) -> list[str]:
    return KOREAN + ENGLISH + [f"w{n}" for n in range(size)]


def zipf_text(rng: random.Random, words: list[str], length: int) -> str:
    # a Zipf-like draw: rank r with weight 1/r, the shape of real term frequencies
    ranks = [min(int(rng.paretovariate(1.0)), len(words)) - 1 for _ in range(length)]
    return " ".join(words[r] for r in ranks)


def config() -> KBConfig:
    return KBConfig(embedder=EmbedderConfig(backend="hashing", dim=384), bm25=BM25Config(analyzer="whitespace"))


def build_base(path: Path, chunks: int) -> None:
    """A knowledge base of ``chunks`` one-chunk documents, written straight into the store in batches."""
    if (path / "built").exists():
        return
    shutil.rmtree(path, ignore_errors=True)
    rng = random.Random(1)
    words = vocabulary()
    started = time.perf_counter()
    with KnowledgeBase.init(path, config()) as kb:
        kb._bind()
        per_file = 100
        for start in range(0, chunks, per_file * 10):
            units = []
            for f in range(start, min(start + per_file * 10, chunks), per_file):
                docs, parts = [], []
                for n in range(f, min(f + per_file, chunks)):
                    text = zipf_text(rng, words, 60)
                    docs.append(Document(doc_id=f"base/{f}.csv#{n}", source=f"base/{f}.csv", text=text,
                                         segments=[Segment(0, len(text), None, None)], content_hash=str(n)))
                    parts.append(Chunk(doc_id=docs[-1].doc_id, ordinal=0, text=text, start=0, end=len(text)))
                texts = [c.text for c in parts]
                record = FileRecord(path=f"/base/{f}.csv", root="/base", content_hash=str(f), size=1, mtime=1.0)
                units.append(IngestUnit(record, docs, parts, kb.embedder.embed_documents(texts),
                                        kb.analyzer.analyze_batch(texts)))
            kb.store.write(units)
        kb.store.commit_indexes()
    (path / "built").write_text(f"{time.perf_counter() - started:.1f} s\n")


@dataclass
class Checks:
    """What the writer committed, to check each search result against its generation."""

    committed: dict[int, int] = field(default_factory=dict)  # file -> generation of version 1
    replaced: dict[int, int] = field(default_factory=dict)  # file -> generation of version 2

    def violations(self, results: list[tuple[int, list[str]]]) -> list[str]:
        bad = []
        for generation, texts in results:
            for text in texts:
                if ROLLED_BACK in text:
                    bad.append(f"generation {generation}: a rolled-back row")
                for file_number, version in MARKER.findall(text):
                    i, v = int(file_number), int(version)
                    since = self.committed.get(i) if v == 1 else self.replaced.get(i)
                    until = self.replaced.get(i) if v == 1 else None
                    if since is None or generation < since or (until is not None and generation >= until):
                        bad.append(f"generation {generation}: m{i}v{v} (committed {since}, replaced {until})")
        return bad


def file_text(i: int, version: int, rng: random.Random, words: list[str]) -> str:
    return "\n\n".join(f"m{i}v{version} {zipf_text(rng, words, 50)} fresh{i % 50}" for _ in range(3))


def queries(rng: random.Random, words: list[str], n: int) -> list[str]:
    out = []
    for _ in range(n):
        terms = [words[min(int(rng.paretovariate(1.0)), len(words)) - 1] for _ in range(rng.randint(2, 4))]
        if rng.random() < 0.5:
            terms.append(f"fresh{rng.randrange(50)}")
        out.append(" ".join(terms))
    return out


def read_loop(kb: KnowledgeBase, stop: threading.Event, seed: int, latencies: list[float],
              results: list[tuple[int, list[str]]], errors: list[str]) -> None:
    rng = random.Random(seed)
    pool = queries(rng, vocabulary(), 500)
    n = 0
    while not stop.is_set():
        question = pool[n % len(pool)]
        n += 1
        started = time.perf_counter()
        try:
            hits = kb.search(question, mode="hybrid", k=6)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        generations = {h.generation for h in hits}
        if len(generations) > 1:
            errors.append(f"one search, several generations: {generations}")
        results.append((next(iter(generations)) if generations else -1, [h.text for h in hits]))


def run_readers(kb: KnowledgeBase, readers: int, seconds: float | None, stop: threading.Event | None = None,
                ) -> tuple[list[float], list[tuple[int, list[str]]], list[str]]:
    stop = stop or threading.Event()
    latencies: list[float] = []
    results: list[tuple[int, list[str]]] = []
    errors: list[str] = []
    threads = [threading.Thread(target=read_loop, args=(kb, stop, seed, latencies, results, errors))
               for seed in range(readers)]
    for thread in threads:
        thread.start()
    if seconds is not None:
        time.sleep(seconds)
        stop.set()
    for thread in threads:
        thread.join()
    return latencies, results, errors


def writer(kb: KnowledgeBase, docs: Path, checks: Checks, files: int, seconds: float, stop: threading.Event) -> int:
    """Ingest files one by one until ``files`` or ``seconds``; returns how many were written."""
    rng = random.Random(7)
    words = vocabulary()
    deadline = time.monotonic() + seconds
    written = 0
    for i in range(files):
        if time.monotonic() > deadline:
            break
        path = docs / f"f{i}.md"
        path.write_text(file_text(i, 1, rng, words), encoding="utf-8")
        kb.ingest([path])
        checks.committed[i] = kb.store.generation
        written += 1
        if i % 10 == 9:  # a replacement of an earlier file
            j = i - 5
            (docs / f"f{j}.md").write_text(file_text(j, 2, rng, words), encoding="utf-8")
            kb.ingest([docs / f"f{j}.md"])
            checks.replaced[j] = kb.store.generation
        if i % 25 == 24:  # a batch that fails half-way and rolls back
            text = f"{ROLLED_BACK} {zipf_text(rng, words, 20)}"
            bad = IngestUnit(FileRecord(path=f"/bad/{i}", root="/bad", content_hash="x", size=1, mtime=1.0),
                             [Document(doc_id=f"bad{i}", source="bad", text=text, content_hash="x")],
                             [Chunk(doc_id=f"bad{i}", ordinal=0, text=text, start=0, end=len(text))],
                             np.ones((1, 7), dtype=np.float32), [text.split()])
            with contextlib.suppress(StoreError):
                kb.store.write([bad])
    stop.set()
    return written


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "n": 0}
    array = np.asarray(values)
    return {"p50": round(float(np.percentile(array, 50)), 2), "p95": round(float(np.percentile(array, 95)), 2),
            "n": len(values)}


def working_copy(base: Path, work: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work / "kb")
    (work / "docs").mkdir()
    return work


def reader_process(kb_path: Path, readers: int, out: Path, stop_file: Path) -> None:
    """(child) readers until ``stop_file`` exists; latencies and results to ``out`` as JSON."""
    kb = KnowledgeBase.open(kb_path)
    stop = threading.Event()

    def watch() -> None:
        while not stop_file.exists():
            time.sleep(0.05)
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    kb.search("warm up", mode="hybrid", k=6)
    (out.with_suffix(".ready")).write_text("ready")
    latencies, results, errors = run_readers(kb, readers, None, stop)
    out.write_text(json.dumps({"latencies": latencies, "results": results, "errors": errors}))


def writer_process(kb_path: Path, docs: Path, files: int) -> None:
    """(child) ingest files f0..f{files} continuously, committed files printed; killed from outside."""
    kb = KnowledgeBase.open(kb_path)
    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    words = vocabulary()
    for i in range(files):
        path = docs / f"k{i}.md"
        if not path.exists():
            path.write_text(file_text(100_000 + i, 1, rng, words), encoding="utf-8")
        kb.ingest([docs])


def check_integrity(kb_path: Path) -> list[str]:
    """Problems of a knowledge base after a crash (empty: consistent)."""
    problems = []
    with sqlite3.connect(kb_path / "jisik.sqlite3") as conn:
        duplicates = conn.execute("SELECT COUNT(*) FROM (SELECT doc_id, ordinal FROM chunks GROUP BY doc_id, ordinal "
                                  "HAVING COUNT(*) > 1)").fetchone()[0]
        if duplicates:
            problems.append(f"{duplicates} duplicated chunks")
        short = conn.execute("SELECT COUNT(*) FROM documents d WHERE n_chunks != (SELECT COUNT(*) FROM chunks c "
                             "WHERE c.doc_id = d.doc_id)").fetchone()[0]
        if short:
            problems.append(f"{short} documents missing chunks")
        incomplete = conn.execute("SELECT COUNT(*) FROM files f WHERE status = 'ok' AND n_chunks != (SELECT COUNT(*) "
                                  "FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE d.file_path = f.path)"
                                  ).fetchone()[0]
        if incomplete:
            problems.append(f"{incomplete} committed files lost chunks")
        newest = conn.execute("SELECT text FROM chunks ORDER BY id DESC LIMIT 1").fetchone()
    with KnowledgeBase.open(kb_path) as kb:
        if newest and not kb.search(newest[0], mode="bm25", k=3):
            problems.append("the newest chunk is not searchable")
    return problems


def kill_runs(base: Path, work: Path, runs: int, readers: int) -> dict[str, Any]:
    working_copy(base, work)
    kb_path, docs = work / "kb", work / "docs"
    rng = random.Random(3)
    problems: list[str] = []
    reader_errors: list[str] = []
    latencies: list[float] = []
    kb = KnowledgeBase.open(kb_path)
    stop = threading.Event()
    def read() -> None:
        done, _, errors = run_readers(kb, readers, None, stop)
        latencies.extend(done)
        reader_errors.extend(errors)

    reading = threading.Thread(target=read)
    started = time.perf_counter()
    for run in range(runs):
        child = subprocess.Popen([sys.executable, __file__, "--writer-process", str(kb_path), str(docs)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if run == 0:
            reading.start()
        # the writer needs a few seconds to start (imports, loading the indexes of 100,000 chunks): kill it
        # mostly while it writes, sometimes while it starts
        time.sleep(rng.uniform(2.0, 15.0))
        if child.poll() is not None:
            problems.append(f"run {run}: the writer exited early: {child.stderr.read().decode()[-500:]}")
        child.send_signal(signal.SIGKILL)
        child.wait()
        found = check_integrity(kb_path)
        problems.extend(f"run {run}: {p}" for p in found)
        print(f"  kill run {run + 1}/{runs}: {found or 'consistent'}", flush=True)
    stop.set()
    reading.join()
    with sqlite3.connect(kb_path / "jisik.sqlite3") as conn:
        ingested = conn.execute("SELECT COUNT(*) FROM files WHERE path LIKE '%/k%.md'").fetchone()[0]
    kb.close()
    return {"runs": runs, "problems": problems, "reader_errors": reader_errors[:5], "files_committed": ingested,
            "reader_search_ms": percentiles(latencies), "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0, help="writer run length")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--kill-runs", type=int, default=0)
    parser.add_argument("--skip-load", action="store_true", help="only the kill runs")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "jisik-bench")
    parser.add_argument("--reader-process", nargs=3, metavar=("KB", "OUT", "STOP"), help=argparse.SUPPRESS)
    parser.add_argument("--writer-process", nargs=2, metavar=("KB", "DOCS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader_process:
        kb_arg, out, stop_file = args.reader_process
        reader_process(Path(kb_arg), args.readers, Path(out), Path(stop_file))
        return
    if args.writer_process:
        writer_process(Path(args.writer_process[0]), Path(args.writer_process[1]), 10_000)
        return

    print(json.dumps({"machine": machine()}, ensure_ascii=False))
    base = args.cache / f"store-load-{args.chunks}"
    build_base(base, args.chunks)
    print(f"base knowledge base: {args.chunks:,} chunks ({(base / 'built').read_text().strip()} to build)", flush=True)
    report: dict[str, Any] = {"chunks": args.chunks, "readers": args.readers}
    work = args.cache / "store-load-work"
    if not args.skip_load:
        working_copy(base, work)
        kb = KnowledgeBase.open(work / "kb")
        kb.search("warm up", mode="hybrid", k=6)
        idle, _, idle_errors = run_readers(kb, args.readers, args.idle_seconds)
        report["idle"] = {**percentiles(idle), "errors": len(idle_errors)}
        print("idle:", report["idle"], flush=True)

        checks, stop = Checks(), threading.Event()
        write = threading.Thread(target=lambda: report.__setitem__(
            "files_written_threads", writer(kb, work / "docs", checks, args.files, args.seconds, stop)))
        write.start()
        busy, results, errors = run_readers(kb, args.readers, None, stop)
        write.join()
        report["threads"] = {**percentiles(busy), "errors": len(errors), "first_errors": errors[:3],
                             "violations": checks.violations(results)[:5], "checked_results": len(results)}
        print("threads:", report["threads"], flush=True)
        report["first_search_after_write_ms"] = first_search_after_write(kb, work / "docs")
        print("first search after a one-file write:", report["first_search_after_write_ms"], flush=True)
        kb.close()

        working_copy(base, work)
        report["processes"] = two_processes(work, args)
        print("processes:", report["processes"], flush=True)
        idle_p95 = report["idle"]["p95"]
        report["ratios_p95_vs_idle"] = {"threads": round(report["threads"]["p95"] / idle_p95, 2),
                                        "processes": round(report["processes"]["p95"] / idle_p95, 2)}
        print("p95 during writes / idle p95:", report["ratios_p95_vs_idle"], flush=True)
    if args.kill_runs:
        report["kill"] = kill_runs(base, work, args.kill_runs, args.readers)
        print("kill runs:", report["kill"], flush=True)
    print(json.dumps(report, ensure_ascii=False))


def first_search_after_write(kb: KnowledgeBase, docs: Path) -> dict[str, float]:
    """The first hybrid search after a one-file ingest, against steady searches (one thread, no writes)."""
    rng = random.Random(11)
    words = vocabulary()
    pool = queries(rng, words, 60)
    steady = []
    for question in pool:
        started = time.perf_counter()
        kb.search(question, mode="hybrid", k=6)
        steady.append((time.perf_counter() - started) * 1000)
    first = []
    for n in range(20):
        marker = f"m{200_000 + n}v1"
        path = docs / f"after{n}.md"
        path.write_text(file_text(200_000 + n, 1, rng, words), encoding="utf-8")
        kb.ingest([path])
        started = time.perf_counter()
        kb.search(f"{marker} {pool[n]}", mode="hybrid", k=6)
        first.append((time.perf_counter() - started) * 1000)
        # searchable: the marker is a term only the new file has
        assert any(marker in h.text for h in kb.search(marker, mode="bm25", k=3)), f"{marker} is not found"
    steady_p95 = float(np.percentile(steady, 95))
    return {"first_p50": round(float(np.median(first)), 2), "first_max": round(max(first), 2),
            "steady_p50": round(float(np.median(steady)), 2), "steady_p95": round(steady_p95, 2),
            "first_max_vs_steady_p95": round(max(first) / steady_p95, 2)}


def two_processes(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    out, stop_file = work / "readers.json", work / "readers.stop"
    child = subprocess.Popen([sys.executable, __file__, "--readers", str(args.readers),
                              "--reader-process", str(work / "kb"), str(out), str(stop_file)])
    while not out.with_suffix(".ready").exists():
        if child.poll() is not None:
            raise SystemExit("the reader process failed")
        time.sleep(0.1)
    kb = KnowledgeBase.open(work / "kb")
    checks = Checks()
    written = writer(kb, work / "docs", checks, args.files, args.seconds, threading.Event())
    stop_file.write_text("stop")
    child.wait()
    kb.close()
    data = json.loads(out.read_text())
    results = [(g, texts) for g, texts in data["results"]]
    return {**percentiles(data["latencies"]), "errors": len(data["errors"]), "first_errors": data["errors"][:3],
            "violations": checks.violations(results)[:5], "checked_results": len(results), "files_written": written}


if __name__ == "__main__":
    main()
