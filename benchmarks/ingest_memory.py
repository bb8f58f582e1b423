"""Peak memory (RSS) and time of `jisik ingest` on one big text file and on a big folder.

    python benchmarks/ingest_memory.py --file-mb 50 --embedder hashing
    python benchmarks/ingest_memory.py --folder-mb 1024 --files 1024 --embedder hashing
    python benchmarks/ingest_memory.py --file-mb 5 --embedder default

Each run is a fresh `jisik ingest` process into a fresh knowledge base; its peak RSS is the kernel's
high-water mark for the child (``getrusage(RUSAGE_CHILDREN).ru_maxrss``). ``--embedder hashing`` (jisik's
deterministic fake) measures the pipeline's own memory (loading, chunking, Kiwi, SQLite, indexes) without
spending an hour in the model; ``default`` is the real multilingual-e5 engine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PARAGRAPHS = [
    "제{n}조(환불) 회사는 반품 상품이 물류센터에 도착한 날부터 3영업일 이내에 환불한다. 2024. 3. 15.부터 시행한다.",
    "Section {n}. Refunds are issued within three business days after the returned item is inspected.",
    "고객은 상품을 받은 날부터 14일 이내에 교환 또는 반품을 신청할 수 있으며, "
    "단순 변심의 경우 왕복 배송비 6,000원을 부담한다.",
    "Employees receive 15 days of paid annual leave; unused days may be carried over up to five days ({n}).",
]


def write_text(path: Path, megabytes: float, seed: int = 0) -> None:
    """A deterministic Korean/English policy-style text of about ``megabytes`` MB (UTF-8)."""
    target = int(megabytes * 1024 * 1024)
    written = 0
    n = seed
    with path.open("w", encoding="utf-8") as out:
        while written < target:
            paragraph = PARAGRAPHS[n % len(PARAGRAPHS)].format(n=n) + "\n\n"
            out.write(paragraph)
            written += len(paragraph.encode("utf-8"))
            n += 1


def run_ingest(source: Path, embedder: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, last output line) of one `jisik ingest` process."""
    kb = Path(tempfile.mkdtemp(prefix="jisik-mem-kb-"))
    env = dict(os.environ)
    if embedder == "hashing":
        env.update({"JISIK_EMBEDDER__BACKEND": "hashing", "JISIK_EMBEDDER__DIM": "384"})
    jisik = Path(sys.executable).with_name("jisik")
    started = time.perf_counter()
    result = subprocess.run([str(jisik), "ingest", str(source), "--kb", str(kb / "kb")], env=env,
                            capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    shutil.rmtree(kb, ignore_errors=True)
    if result.returncode != 0:
        sys.exit(f"jisik ingest failed: {result.stderr[-2000:]}")
    last = (result.stdout.strip().splitlines() or [""])[-1]
    return seconds, peak_kib / 1024, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file-mb", type=float, help="one text file of this size")
    parser.add_argument("--folder-mb", type=float, help="a folder of this total size")
    parser.add_argument("--files", type=int, default=1024, help="files in the folder (--folder-mb)")
    parser.add_argument("--embedder", choices=["hashing", "default"], default="hashing")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jisik-mem-"))
    try:
        if args.file_mb:
            source = work / "big.txt"
            write_text(source, args.file_mb)
            what = f"one {args.file_mb:g} MB text file"
        elif args.folder_mb:
            source = work / "docs"
            source.mkdir()
            for i in range(args.files):
                write_text(source / f"doc{i:05d}.txt", args.folder_mb / args.files, seed=i * 7)
            what = f"a {args.folder_mb:g} MB folder of {args.files} files"
        else:
            parser.error("give --file-mb or --folder-mb")
        size = sum(p.stat().st_size for p in ([source] if source.is_file() else source.iterdir())) / 2**20
        seconds, peak, last = run_ingest(source, args.embedder)
        print(f"| {what} ({size:.0f} MiB on disk) | {args.embedder} | {peak:,.0f} MiB | {seconds:,.0f} s | {last} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
