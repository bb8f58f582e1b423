"""``jisik agent``: answer with tools (search each company, period or fact separately, compute, then answer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from jisik.choices import MemoryKind
from jisik.cli import render
from jisik.cli.app import JsonOption, KbOption, LlmOption, choices, console, err_console, open_kb, run
from jisik.errors import JisikError

STRATEGY_HELP = "auto (native tool calls where the backend has them, else ReAct) | native | react | self-ask"


def agent(
    question: Annotated[str | None, typer.Argument(metavar="[QUESTION]", help="the question; leave it out for a "
                                                   "conversation (/reset, /exit)")] = None,
    kb: KbOption = Path("kb"),
    llm: LlmOption = None,
    strategy: Annotated[str | None, typer.Option(metavar="NAME", help=STRATEGY_HELP)] = None,
    tools: Annotated[str | None, typer.Option(metavar="A,B", help="tools by name (default [agent] tools): kb_search, "
                                              "kb_ask, list_documents, calculator, today, or a plugin's")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", metavar="N", min=1, help="model turns")] = None,
    timeout: Annotated[float | None, typer.Option(metavar="SECONDS", min=1, help="time limit of a run")] = None,
    session: Annotated[str | None, typer.Option(metavar="NAME", help="conversation name; an existing one is "
                                                "resumed from the log")] = None,
    memory: Annotated[MemoryKind | None, typer.Option(metavar="KIND", help=choices(MemoryKind))] = None,
    trace: Annotated[bool, typer.Option("--trace", help="show every step as it happens")] = False,
    no_log: Annotated[bool, typer.Option("--no-log", help="do not store this turn in the log")] = False,
    as_json: JsonOption = False,
) -> None:
    """Answer with tools: several searches, arithmetic, then a cited answer (steps in `jisik logs --id N`)."""
    limits: dict[str, Any] = {key: value for key, value in (("max_steps", max_steps), ("timeout", timeout))
                              if value is not None}
    names = [t.strip() for t in tools.split(",") if t.strip()] if tools else None

    def body() -> None:
        with open_kb(kb) as base:
            conversational = question is None or session is not None or memory is not None
            runner = base.agent(llm=llm, tools=names, strategy=strategy, session=session if conversational else None,
                                memory=memory or ("window" if question is None else None), **limits)
            if question is not None:
                _answer(runner, question, trace=trace, as_json=as_json, log=not no_log)
                return
            err_console.print(f"agent with {', '.join(runner.tools.names())} — /reset forgets, /exit or Ctrl-D "
                              "leaves", highlight=False)
            while True:
                try:
                    line = console.input("[bold cyan]> [/]").strip()
                except EOFError:
                    break
                if line in ("/exit", "/quit"):
                    break
                if line == "/reset":
                    if runner.memory is not None:
                        runner.memory.reset()
                    err_console.print("memory cleared for this conversation; the log keeps the turns")
                    continue
                if not line:
                    continue
                try:
                    _answer(runner, line, trace=trace, as_json=False, log=not no_log)
                except JisikError as exc:  # one bad turn does not end the conversation
                    err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
                    if exc.hint:
                        err_console.print(f"[dim]hint:[/] {exc.hint}", highlight=False)

    run(body)


def _answer(runner: Any, question: str, *, trace: bool, as_json: bool, log: bool) -> None:
    on_step = (lambda step: render.print_step(err_console, step)) if trace else None
    answer = runner.ask(question, on_step=on_step, log=log)
    if as_json:
        console.print_json(json.dumps(answer.to_dict(), ensure_ascii=False))
        return
    console.print(answer.text, markup=False, highlight=False, soft_wrap=True)
    render.print_sources(console, err_console, answer)
    tools_used = sum(1 for s in answer.trace if s.get("type") == "tool")
    usage = answer.usage
    err_console.print(f"[dim]{answer.strategy}: {len(answer.trace)} steps, {tools_used} tool calls, "
                      f"{usage.prompt_tokens}+{usage.completion_tokens} tokens, {usage.total_ms / 1000:.1f} s"
                      + (f", stopped: {answer.stopped_by}" if answer.stopped_by else "") + "[/]", highlight=False)
