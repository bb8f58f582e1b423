"""Per-row cost of ingesting one FAQ-style CSV of 10,000 and of 100,000 rows (issue 11: linear writes).

    python benchmarks/ingest_scaling.py                       # 10,000 and 100,000 rows, hashing embedder
    python benchmarks/ingest_scaling.py --rows 2000 20000 --repeat 1
    python benchmarks/ingest_scaling.py --profile             # + cProfile of the largest size, top functions
    python benchmarks/ingest_scaling.py --real                # + the default embedder on 10,000 rows

A CSV gives one document per row (``faq.csv#12``), so one file of 100,000 rows is 100,000 documents and as
many chunks, written through the big-file path (``Store.stage`` part by part, then one publishing
transaction). The question and the answer are the text (two segments, so two chunks a row); both name the
row's order number, so no two chunks are equal and none is staged under another's key (``chunk_key``).

Each run is a fresh process ingesting into a fresh knowledge base through the library
(``KnowledgeBase.init`` + ``kb.ingest``), with the deterministic hashing embedder (dim 384), so the time is
jisik's own per-row cost: loading, chunking, analysis (Kiwi), ids, SQLite writes, index commit. The analyzer
and embedder are loaded before the clock starts (a fixed cost would flatter the larger size). Stages are
timed by wrapping the functions the pipeline calls (wall time, and the CPU time of the calling thread, which
leaves out waiting for the GIL); analysis runs on a helper thread *beside* the embedder, so "analyze" overlaps
"embed" and the stages do not add up to the total. Peak RSS is the child's high-water
mark. The per-row ratio (largest size / smallest) is the number issue 11 asks to keep ≤ 1.2; medians of
``--repeat`` runs, since the benchmark box is shared (its load average is printed).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

STAGES = ("load", "chunk", "analyze", "embed", "store_stage", "store_write", "index_commit")
TARGET_RATIO = 1.2

_PRODUCTS = ["무선 이어폰", "노트북 파우치", "전기 포트", "Smart Watch", "로봇 청소기", "USB-C 충전기", "캠핑 의자",
             "공기청정기 필터", "Yoga Mat", "블루투스 스피커", "유아 카시트", "Gaming Mouse", "텀블러", "가습기"]
_QUESTIONS = [  # every question names its own order number: no two chunks are equal
    "{product} 주문({order})을 취소하고 싶은데 어떻게 하나요?",
    "{product}을(를) 받은 지 {days}일이 지났는데 반품할 수 있나요? 주문번호는 {order}입니다.",
    "How long does delivery of the {product} (order {order}) take to {city}?",
    "{order} 주문 건의 {product} 교환 시 배송비는 누가 부담하나요?",
    "Can I change the shipping address for order {order} ({product})?",
    "{product}의 무상 보증 기간은 얼마인가요? (구매 번호 {order})",
    "{city} 지역은 {product} 당일 배송이 되나요? 주문 {order} 관련 문의입니다.",
    "Why was my payment for the {product} declined? The order number is {order}.",
    "{product} 영수증(세금계산서)을 다시 받을 수 있나요? 주문번호 {order}",
    "Is the {product} from order {order} covered by the {months}-month warranty if it was a gift?",
]
_ANSWERS = [
    "주문 후 {hours}시간 이내에는 마이페이지 > 주문내역에서 직접 취소할 수 있습니다. 이미 출고된 {product}은(는) "
    "수령 후 반품 절차로 진행되며, 환불은 회수 확인 후 {biz}영업일 안에 결제 수단으로 돌아갑니다({order}).",
    "상품을 받은 날부터 {days}일 이내라면 단순 변심 반품이 가능합니다. 왕복 배송비 {fee:,}원은 고객 부담이며, "
    "포장을 훼손한 {product}은(는) 반품이 제한될 수 있습니다. 문의 번호 {order}.",
    "Standard delivery of the {product} to {city} takes {biz} business days; express delivery arrives the next "
    "day when ordered before {hours}:00. You will get a tracking number by text message (ref. {order}).",
    "제품 하자로 인한 교환은 회사가 배송비를 부담합니다. 고객 변심에 의한 {product} 교환은 편도 {fee:,}원이 "
    "부과되며, 교환 신청은 고객센터(1588-{code})에서 주문번호 {order}로 접수합니다.",
    "The address can be changed until the order ships, usually within {hours} hours. After shipping, contact the "
    "courier with tracking number {order}; a redelivery fee of {fee:,} KRW may apply to the {product}.",
    "{product}의 무상 보증 기간은 구매일로부터 {months}개월입니다. 보증 기간 내 자연 고장은 무상 수리되며, "
    "파손·침수는 유상 수리로 처리됩니다. 접수 번호 {order}를 준비해 주세요.",
    "{city}는 오후 {hours}시 이전 결제 건에 한해 당일 배송을 지원합니다. 도서 산간 지역은 {biz}일이 더 걸리고 "
    "추가 배송비 {fee:,}원이 붙을 수 있습니다(주문 {order} 기준).",
    "Payments are declined most often because of an expired card or a daily limit. Try another card, or ask your "
    "bank to allow online payments of {fee:,} KRW; the order {order} for the {product} is kept for {hours} hours.",
    "세금계산서와 현금영수증은 마이페이지 > 증빙서류에서 다시 발급할 수 있습니다. 발급 기한은 결제 후 "
    "{months}개월이며, 사업자 번호 변경은 주문번호 {order}와 함께 1588-{code}로 요청해 주세요.",
    "Yes: the warranty follows the {product}, not the buyer. Register it with the serial number and the gift "
    "receipt within {days} days; repairs take about {biz} business days (case {order}).",
]
_CATEGORIES = ["주문/결제", "배송", "반품/교환", "보증/AS", "증빙서류", "Delivery", "Payments", "Warranty"]
_CITIES = ["서울", "부산", "대구", "인천", "광주", "대전", "Jeju", "Seoul", "Busan", "울산", "수원", "창원"]


def faq_row(n: int, rng: random.Random) -> tuple[str, str, str]:
    """One distinct (question, answer, category) row: every row carries its own order number ``n``."""
    t = rng.randrange(len(_QUESTIONS))
    values = {"product": rng.choice(_PRODUCTS), "days": rng.randint(3, 30), "city": rng.choice(_CITIES),
              "order": f"A{n:07d}", "months": rng.choice([6, 12, 24, 36]), "hours": rng.randint(1, 18),
              "biz": rng.randint(1, 7), "fee": rng.choice([3000, 3500, 5000, 6000, 12000]),
              "code": rng.randint(1000, 9999)}
    return _QUESTIONS[t].format(**values), _ANSWERS[t].format(**values), _CATEGORIES[(t + n) % len(_CATEGORIES)]


def write_csv(path: Path, rows: int, seed: int = 11) -> None:
    """A CSV of ``rows`` distinct FAQ rows (columns question, answer, category), UTF-8."""
    import csv

    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["question", "answer", "category"])
        for n in range(1, rows + 1):
            writer.writerow(faq_row(n, rng))


# --- one measured run (a child process) -----------------------------------------------------------------


class _Timers:
    """Wall seconds and calls per stage; with ``profile``, calls on other threads get their own cProfile."""

    def __init__(self, profile: bool) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)  # CPU of the calling thread: no waiting for the GIL
        self.calls: dict[str, int] = defaultdict(int)
        self.profile = profile
        self.thread_profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu_started = time.perf_counter(), time.thread_time()
            try:
                if self.profile and threading.current_thread() is not threading.main_thread():
                    prof = cProfile.Profile()
                    with self._lock:
                        self.thread_profiles.append(prof)
                    return prof.runcall(fn, *args, **kwargs)
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[stage] += time.perf_counter() - started
                    self.cpu[stage] += time.thread_time() - cpu_started
                    self.calls[stage] += 1

        return timed


def measure(csv_path: Path, kb_path: Path, embedder: str, profile: bool, top: int) -> dict[str, Any]:
    """Ingest ``csv_path`` into a new knowledge base at ``kb_path``; timings, counts and peak RSS."""
    import jisik.ingest.pipeline as pipeline
    from jisik.config import KBConfig
    from jisik.kb import KnowledgeBase

    settings: dict[str, Any] = {"loaders": {"text_field": ["question", "answer"]}}
    if embedder == "hashing":
        settings["embedder"] = {"backend": "hashing", "dim": 384}
    kb = KnowledgeBase.init(kb_path, KBConfig.model_validate(settings))
    kb.analyzer.analyze_batch(["모델을 먼저 불러옵니다 (warm-up)."])  # Kiwi loads outside the clock
    kb.embedder.embed_documents(["warm-up"])
    timers = _Timers(profile)
    for stage, name in (("load", "load"), ("chunk", "chunk_documents")):  # the names pipeline.py calls
        setattr(pipeline, name, timers.wrap(stage, getattr(pipeline, name)))
    analyzer, emb, store = kb.analyzer, kb.embedder, kb.store
    analyzer.analyze_batch = timers.wrap("analyze", analyzer.analyze_batch)  # type: ignore[method-assign]
    emb.embed_documents = timers.wrap("embed", emb.embed_documents)  # type: ignore[method-assign]
    store.stage = timers.wrap("store_stage", store.stage)  # type: ignore[method-assign]
    store.write = timers.wrap("store_write", store.write)  # type: ignore[method-assign]
    store.commit_indexes = timers.wrap("index_commit", store.commit_indexes)  # type: ignore[method-assign]
    main_profile = cProfile.Profile() if profile else None
    started, cpu_started = time.perf_counter(), time.process_time()
    if main_profile:
        main_profile.enable()
    report = kb.ingest([csv_path])
    if main_profile:
        main_profile.disable()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    stats = kb.store.stats()
    kb.close()
    if report.failed:
        raise SystemExit(f"ingest failed: {report.failed}")
    result: dict[str, Any] = {
        "seconds": seconds, "cpu_seconds": cpu_seconds, "documents": report.documents, "chunks": report.chunks,
        "stored_chunks": stats.chunks, "stages": {s: timers.seconds.get(s, 0.0) for s in STAGES},
        "calls": {s: timers.calls.get(s, 0) for s in STAGES},
        "stage_cpu": {s: timers.cpu.get(s, 0.0) for s in STAGES},
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_average": round(os.getloadavg()[0], 1),
    }
    if main_profile:
        stream = io.StringIO()
        merged = pstats.Stats(main_profile, stream=stream)
        for prof in timers.thread_profiles:
            merged.add(prof)
        merged.sort_stats("cumulative").print_stats(top)
        stream.write("\n--- by own time ---\n")
        merged.sort_stats("tottime").print_stats(top)
        result["profile"] = stream.getvalue()
    return result


# --- the driver --------------------------------------------------------------------------------------


def run_child(csv_path: Path, embedder: str, profile: bool, top: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="jisik-scale-kb-"))
    try:
        cmd = [sys.executable, __file__, "--child", str(csv_path), "--kb", str(work / "kb"), "--embedder", embedder,
               "--top", str(top), *(["--profile"] if profile else [])]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"benchmark child failed:\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(runs[0])
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    out["cpu_seconds"] = statistics.median(r["cpu_seconds"] for r in runs)
    out["all_seconds"] = [round(r["seconds"], 2) for r in runs]
    out["loads"] = [r["load_average"] for r in runs]
    out["stages"] = {s: statistics.median(r["stages"][s] for r in runs) for s in STAGES}
    out["stage_cpu"] = {s: statistics.median(r["stage_cpu"][s] for r in runs) for s in STAGES}
    out["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
    return out


def _print_run(label: str, rows: int, run: dict[str, Any]) -> None:
    us_row = run["seconds"] / rows * 1e6
    print(f"\n{label}: {rows:,} rows -> {run['documents']:,} documents, {run['chunks']:,} chunks "
          f"({run['stored_chunks']:,} stored)")
    print(f"  total {run['seconds']:.2f} s (runs: {run['all_seconds']}, load average after each: {run['loads']}), "
          f"{us_row:,.0f} us/row; "
          f"CPU {run['cpu_seconds']:.2f} s, {run['cpu_seconds'] / rows * 1e6:,.0f} us/row (all threads); "
          f"peak RSS {run['peak_rss_mib']:,.0f} MiB")
    for stage in STAGES:
        secs, cpu = run["stages"][stage], run["stage_cpu"][stage]
        note = "  (helper thread, overlaps embed)" if stage == "analyze" else ""
        print(f"  {stage:<13} {secs:8.2f} s {secs / rows * 1e6:8.1f} us/row  (thread CPU {cpu / rows * 1e6:7.1f})"
              f"  {run['calls'][stage]:>6} calls{note}")
    serial = sum(v for k, v in run["stages"].items() if k != "analyze")
    print(f"  {'other':<13} {run['seconds'] - serial:8.2f} s  (total minus the serial stages: ids, ledger, "
          "glue, waiting for analysis)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000], help="CSV sizes (rows)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; medians are reported (0: only --profile)")
    parser.add_argument("--profile", action="store_true", help="cProfile one run of the largest size")
    parser.add_argument("--top", type=int, default=30, help="functions shown by --profile")
    parser.add_argument("--real", action="store_true", help="also the default embedder on 10,000 rows, once")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--kb", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--embedder", default="hashing", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.kb, args.embedder, args.profile, args.top)))
        return

    info = machine()
    print(f"python {info['python']}, {info['cpus']} CPUs, load average {info['load_average']} (before)")
    work = Path(tempfile.mkdtemp(prefix="jisik-scale-"))
    results: dict[int, dict[str, Any]] = {}
    try:
        for rows in args.rows:
            write_csv(work / f"faq{rows}.csv", rows)
        runs: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for _ in range(args.repeat):  # sizes interleaved, so a change in the box's load hits all of them
            for rows in args.rows:
                runs[rows].append(run_child(work / f"faq{rows}.csv", "hashing", False, args.top))
        for rows in args.rows if args.repeat > 0 else ():
            results[rows] = _median_run(runs[rows])
            _print_run("hashing embedder (dim 384)", rows, results[rows])
        if len(results) > 1:
            small, large = min(results), max(results)
            for key, what in (("seconds", "wall"), ("cpu_seconds", "CPU")):
                ratio = (results[large][key] / large) / (results[small][key] / small)
                verdict = "ok" if ratio <= TARGET_RATIO else f"over the {TARGET_RATIO} goal"
                print(f"\nper-row ratio {large:,}/{small:,}, {what} time: {ratio:.2f} ({verdict})", end="")
            print("\nper-row ratio per stage, wall (thread CPU):")
            for stage in STAGES:
                ratios = []
                for key in ("stages", "stage_cpu"):
                    a, b = results[small][key][stage] / small, results[large][key][stage] / large
                    ratios.append(b / a if a else float("nan"))
                print(f"  {stage:<13} {ratios[0]:5.2f}x ({ratios[1]:.2f}x)")
        if args.profile:
            rows = max(args.rows)
            run = run_child(work / f"faq{rows}.csv", "hashing", True, args.top)
            print(f"\ncProfile of {rows:,} rows ({run['seconds']:.1f} s under the profiler; threads merged):")
            print(run["profile"])
        if args.real:
            rows = 10_000
            csv_path = work / f"faq{rows}.csv"
            if not csv_path.exists():
                write_csv(csv_path, rows)
            run = _median_run([run_child(csv_path, "default", False, args.top)])
            _print_run("default embedder", rows, run)
            embed = run["stages"]["embed"]
            print(f"  embedding share: {embed / run['seconds']:.0%} of the total")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average {[round(x, 1) for x in os.getloadavg()]} (after)")


if __name__ == "__main__":
    main()
