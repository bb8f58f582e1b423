"""Self-ask with search (Press et al. 2022, arXiv:2210.03350) over a knowledge base.

The model writes follow-up questions; each is answered from the documents (``kb_ask`` when the agent has it,
else the passages ``kb_search`` finds) and written back as an intermediate answer that cites its passages;
the model ends with ``So the final answer is: …``::

    Question: 2023년 1분기와 2분기 Apple 매출 차이는?
    Are follow up questions needed here: Yes.
    Follow up: What were Apple's net sales in 2023 Q1?
    Intermediate answer: $117,154 million [1].
    Follow up: What were Apple's net sales in 2023 Q2?
    Intermediate answer: $94,836 million [2].
    So the final answer is: 22,318 million dollars less in Q2 [1][2].

Generation stops at ``Intermediate answer:`` so the model never answers its own follow-ups.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jisik.generate.llms.base import Message

if TYPE_CHECKING:
    from jisik.agent.loop import Agent, StepCallback, _Run

STOP = ("Intermediate answer:", "중간 답변:", "\nIntermediate answer")
_FOLLOW = re.compile(r"^[ \t*]*(?:follow[ -]?up(?: question)?|후속 질문)\s*\d*\s*[:：]\s*(.+)$",
                     re.IGNORECASE | re.MULTILINE)
_FINAL = re.compile(r"(?:so the final answer is|final answer|최종 답변은?|따라서 최종 답은?)\s*[:：]?\s*(.+)",
                    re.IGNORECASE | re.DOTALL)

_EXAMPLE = """Question: Which quarter had higher net sales, 2023 Q1 or 2023 Q2?
Are follow up questions needed here: Yes.
Follow up: What were the net sales in 2023 Q1?
Intermediate answer: Net sales were $117,154 million [1].
Follow up: What were the net sales in 2023 Q2?
Intermediate answer: Net sales were $94,836 million [2].
So the final answer is: 2023 Q1, with $117,154 million against $94,836 million [1][2]."""
_INSTRUCTIONS = {
    "en": "Break the question into follow-up questions that the documents can answer one at a time. Write one "
          "'Follow up:' line, then stop; its intermediate answer will be given to you. When you know enough, write "
          "'So the final answer is:' and the answer, citing the passages [n] of the intermediate answers.",
    "ko": "질문을 문서로 하나씩 답할 수 있는 후속 질문으로 나누세요. 'Follow up:' 한 줄을 쓰고 멈추면 "
          "중간 답변이 주어집니다. 충분히 알게 되면 'So the final answer is:' 다음에 중간 답변의 근거 [n]을 "
          "인용해 한국어로 답하세요.",
}


def parse_self_ask(text: str) -> tuple[str, str]:
    """``("follow", question)``, ``("final", answer)`` or ``("none", text)`` for one model turn.

    >>> parse_self_ask("Are follow up questions needed here: Yes.\\nFollow up: What was Apple's margin?")
    ('follow', "What was Apple's margin?")
    >>> parse_self_ask("So the final answer is: 44.5% [1].")
    ('final', '44.5% [1].')
    """
    follow = _FOLLOW.findall(text)
    final = _FINAL.search(text)
    if final and (not follow or final.start() > text.rfind(follow[-1])):
        return "final", final.group(1).strip()
    if follow:
        return "follow", follow[-1].strip()
    return "none", text.strip()


def run_self_ask(agent: Agent, run: _Run, question: str, past: Sequence[Message],
                 on_step: StepCallback | None) -> str:
    """The self-ask loop; the answers to follow-ups come from the agent's own tools (so they are guarded,
    numbered and traced like any tool call)."""
    answer_tool = "kb_ask" if "kb_ask" in agent.tools else "kb_search" if "kb_search" in agent.tools else None
    if answer_tool is None:
        from jisik.errors import AgentError

        raise AgentError("self-ask needs kb_ask or kb_search among the tools", hint="--tools kb_search,kb_ask")
    argument = "question" if answer_tool == "kb_ask" else "query"
    scratch = "Are follow up questions needed here:"
    system = f"{_INSTRUCTIONS[run.language]}\n\nExample:\n{_EXAMPLE}"
    options = agent.generation.with_(stop=tuple(dict.fromkeys([*agent.generation.stop, *STOP])))
    step = 0
    asked: set[str] = set()
    while True:
        reason = agent._limit_reached(run, step)
        if reason:
            run.stopped_by = reason
            agent._trace(run, on_step, {"type": "limit", "reason": reason, "started": time.perf_counter()})
            return _compose(scratch)
        run.messages = [Message("system", system), *past,
                        Message("user", f"Question: {question}\n{scratch}")]
        if not agent._fit(run):
            run.stopped_by = "context_full"
            return _compose(scratch)
        started = time.perf_counter()
        completion = agent.llm.generate(run.messages, options)
        agent._count(run, completion.prompt_tokens, completion.completion_tokens, completion.text)
        step += 1
        kind, value = parse_self_ask(completion.text)
        if kind == "final":
            agent._trace(run, on_step, {"type": "final", "thought": completion.text[:400], "started": started})
            return value
        if kind == "none" or value.casefold() in asked:  # no follow-up, or the same one again: answer now
            if kind != "none":
                run.calls[value.casefold()] = 2
            agent._trace(run, on_step, {"type": "final", "thought": "", "repairs": ["unlabelled_final"],
                                        "started": started})
            return value if kind == "none" and len(value) > 3 else _compose(scratch)
        asked.add(value.casefold())
        observation = agent._call_tool(run, answer_tool, {argument: value}, None, on_step, started,
                                       thought=f"Follow up: {value}")
        scratch += f"{' Yes.' if step == 1 else ''}\nFollow up: {value}\nIntermediate answer: {_first(observation)}"


def _first(observation: str, chars: int = 900) -> str:
    """An intermediate answer: a kb_ask answer without its source list, or the first passages, bounded."""
    text = observation.split("\n\nSources:")[0].strip()
    return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0] + " …"


def _compose(scratch: str) -> str:
    """The intermediate answers so far, as the answer of a run that a limit stopped."""
    answers = re.findall(r"Follow up: (.+)\nIntermediate answer: (.+?)(?=\nFollow up:|\Z)", scratch, re.DOTALL)
    return "\n".join(f"- {q.strip()} {a.strip()}" for q, a in answers)

