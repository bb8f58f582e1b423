"""Cold start: one ``jisik search`` from a fresh process, per mode — wall time and peak RSS, median of N.

Issue 14, part 6. A small knowledge base (``examples/sample_docs`` ingested with the default settings)
is built once under ``.bench/cold_start/``; every run is then a new ``python -m jisik search`` process,
timed from spawn to exit, with its own peak resident memory from ``wait4`` (so no run sees another's
model in memory or in Python's import cache). The OS page cache stays warm after the first run, as it
would for a user who searches twice. ``phases`` also runs one in-process profile of where the time goes.

    python benchmarks/cold_start.py                      # modes bm25, dense, hybrid, 5 runs each
    python benchmarks/cold_start.py --runs 9 --modes hybrid
    python benchmarks/cold_start.py --phases             # plus a breakdown: imports, embedder, Kiwi, search
    python benchmarks/cold_start.py --server             # plus: searches a running `jisik serve` answers

``--server`` starts ``jisik serve --kb`` over the same knowledge base once (its start is not timed), then
times fresh ``jisik search`` processes that find it through ``<kb>/server.json`` and send it the search; the
RSS is the CLI process's own.

Results and the machine they ran on go to docs/benchmarks.md ("Cold start (issue 14)").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from _common import machine

ROOT = Path(__file__).resolve().parents[1]
KB = ROOT / ".bench" / "cold_start" / "kb"
QUERY = "반품 기간은 며칠인가요?"
PHASES = """
import resource, sys, time
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
def lap(what):
    global t
    now = time.perf_counter(); print(f"| {what} | {now - t:.2f} | {rss():.0f} |"); t = now
import jisik.cli; lap("import jisik.cli")
from jisik.kb import KnowledgeBase
kb = KnowledgeBase.open(sys.argv[1]); lap("open the knowledge base")
kb.embedder.embed_queries(["x"]); lap("embedder loaded, one query embedded")
kb.analyzer.analyze_queries(["준비 운동"]); lap("Kiwi loaded, one query analysed")
kb.search(sys.argv[2], k=3); lap("first hybrid search (indexes load)")
"""


def build_kb() -> None:
    if (KB / "jisik.sqlite3").exists():
        return
    shutil.rmtree(KB, ignore_errors=True)
    KB.parent.mkdir(parents=True, exist_ok=True)
    jisik = [sys.executable, "-m", "jisik"]
    subprocess.run([*jisik, "init", str(KB)], check=True, capture_output=True)
    subprocess.run([*jisik, "ingest", str(ROOT / "examples" / "sample_docs"), "--kb", str(KB)], check=True,
                   capture_output=True)


def one_run(argv: Sequence[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one fresh process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        error = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"{' '.join(argv)} failed ({process.returncode}): {error}")
    if process.stderr:
        process.stderr.close()
    return wall, usage.ru_maxrss / 1024  # Linux reports KB


def measure(label: str, command: Sequence[str], runs: int) -> None:
    """One table row: median, min and max wall time and median peak RSS of ``runs`` fresh processes."""
    one_run(command)  # warm the OS page cache (model files) so every measured run sees the same disk
    measured = [one_run(command) for _ in range(runs)]
    walls = [w for w, _ in measured]
    print(f"| `{label}` | {statistics.median(walls):.2f} | {min(walls):.2f} | {max(walls):.2f} | "
          f"{statistics.median(r for _, r in measured):.0f} |", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--modes", nargs="+", default=["bm25", "dense", "hybrid"])
    parser.add_argument("--phases", action="store_true", help="also print an in-process breakdown")
    parser.add_argument("--server", action="store_true", help="also time searches via a running jisik serve")
    args = parser.parse_args(argv)
    build_kb()
    print(f"machine: {machine()}\nknowledge base: examples/sample_docs, query {QUERY!r}, {args.runs} runs each\n")
    print("| command | wall s (median) | min | max | peak RSS MB (median) |\n|---|---:|---:|---:|---:|")
    commands = {"python -c 'import jisik.cli'": [sys.executable, "-c", "import jisik.cli"]}
    for mode in args.modes:
        commands[f"jisik search --mode {mode}"] = [sys.executable, "-m", "jisik", "search", QUERY, "--kb", str(KB),
                                                   "--mode", mode, "-k", "3"]
    for label, command in commands.items():
        measure(label, command, args.runs)
    if args.server:
        from jisik.testing.server import running_server

        with running_server({"kb": KB}, state_db=KB.parent / "server.db") as server:
            for mode in args.modes:
                command = [sys.executable, "-m", "jisik", "search", QUERY, "--kb", str(KB), "--mode", mode, "-k", "3"]
                check = subprocess.run([*command[:3], "--debug", *command[3:]], capture_output=True, text=True)
                if "via the server" not in check.stderr:
                    raise SystemExit(f"the search did not go to the server: {check.stderr}")
                measure(f"jisik search --mode {mode}, via a running jisik serve", command, args.runs)
            print(f"\nthe server was ready {server.ready_seconds:.1f} s after it started")
    if args.phases:
        print("\n| phase (in one process) | s | peak RSS MB so far |\n|---|---:|---:|")
        subprocess.run([sys.executable, "-c", PHASES, str(KB), QUERY], check=True)
    print(f"\nload average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
