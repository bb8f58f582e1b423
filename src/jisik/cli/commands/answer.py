"""Commands that answer questions and show the log: ``ask``, ``chat``, ``logs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from jisik.choices import AnswerLanguage, Chain, MemoryKind
from jisik.cli import render
from jisik.cli.app import (
    FilterOption,
    JsonOption,
    KbOption,
    LlmOption,
    ModeOption,
    choices,
    console,
    err_console,
    open_kb,
    run,
)
from jisik.errors import JisikError

TemperatureOption = Annotated[float | None, typer.Option(metavar="X", min=0, max=2,
                                                         help="sampling temperature (default 0: factual)")]
MaxTokensOption = Annotated[int | None, typer.Option("--max-tokens", metavar="N", min=1,
                                                     help="answer length limit in tokens")]
KOption = Annotated[int | None, typer.Option("-k", "--k", metavar="N", min=1, help="chunks to retrieve")]


def _sampling(temperature: float | None, top_p: float | None, top_k: int | None,
              max_tokens: int | None) -> dict[str, Any]:
    values = {"temperature": temperature, "top_p": top_p, "top_k": top_k, "max_tokens": max_tokens}
    return {key: value for key, value in values.items() if value is not None}


def ask(
    question: Annotated[str, typer.Argument(metavar="QUESTION", help="the question, in Korean or English")],
    kb: KbOption = Path("kb"),
    llm: LlmOption = None,
    chain: Annotated[Chain | None, typer.Option(metavar="CHAIN", help=choices(Chain))] = None,
    k: KOption = None,
    mode: ModeOption = None,
    filters: FilterOption = None,
    lang: Annotated[AnswerLanguage | None, typer.Option("--lang", metavar="LANG", help="answer language: "
                                                        f"{choices(AnswerLanguage)}")] = None,
    temperature: TemperatureOption = None,
    top_p: Annotated[float | None, typer.Option("--top-p", metavar="X", min=0, max=1,
                                                help="nucleus sampling")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", metavar="N", min=1,
                                              help="sample from the N likeliest tokens")] = None,
    max_tokens: MaxTokensOption = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="do not store this turn in the log")] = False,
    explain: Annotated[bool, typer.Option("--explain", help="show each sentence's support by its sources and "
                                                            "every guard decision")] = False,
    as_json: JsonOption = False,
) -> None:
    """Answer a question from the documents: streams the answer, then the numbered sources."""

    def body() -> None:
        with open_kb(kb) as base:
            stream = base.ask_stream(question, llm=llm, chain=chain, k=k, mode=mode, filters=filters or None,
                                     language=lang, log=not no_log,
                                     **_sampling(temperature, top_p, top_k, max_tokens))
            if as_json:
                answer = stream.result()
                console.print_json(json.dumps(answer.to_dict(), ensure_ascii=False))
            else:
                _print_stream(stream)
                if explain and stream.answer is not None:
                    _print_explanation(stream.answer)
            if base.read_only and not no_log:
                err_console.print("[dim]note:[/] the knowledge base is read-only: this question was not logged")

    run(body)


def _print_stream(stream: Any) -> None:
    for piece in stream:
        console.print(piece, end="", markup=False, highlight=False, soft_wrap=True)
    console.print()
    render.print_sources(console, err_console, stream.answer)


def _print_explanation(answer: Any) -> None:
    console.print()
    console.print("[bold]Support[/]" if answer.grounding else "[bold]Support[/]: not checked ([guard] grounding)")
    render.print_grounding(console, answer.grounding)
    for decision in answer.guard:
        console.print(f"guard: {render.describe_decision(decision)}", markup=False, highlight=False)


def chat(
    kb: KbOption = Path("kb"),
    llm: LlmOption = None,
    memory: Annotated[MemoryKind | None, typer.Option(metavar="KIND", help=choices(MemoryKind))] = None,
    session: Annotated[str | None, typer.Option(metavar="NAME", help="session name; an existing one is resumed "
                                                                     "from the log")] = None,
    k: KOption = None,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
) -> None:
    """Multi-turn chat with memory (/reset, /exit). Follow-ups are understood: "그럼 환불은요?"."""

    def body() -> None:
        with open_kb(kb) as base:
            conversation = base.chat(llm=llm, session=session, memory=memory, k=k,
                                     **_sampling(temperature, None, None, max_tokens))
            name, earlier = conversation.session, conversation.resumed
            started = (f"resumed session {name} ({earlier} earlier turn{'s' if earlier != 1 else ''})" if earlier
                       else f"new session {name}")
            err_console.print(f"{started} — /reset forgets, /exit or Ctrl-D leaves", highlight=False)
            while True:
                try:
                    line = console.input("[bold cyan]> [/]")
                except EOFError:
                    break
                text = line.strip()
                if text in ("/exit", "/quit"):
                    break
                if text == "/reset":
                    conversation.reset()
                    err_console.print(f"memory cleared for this chat; the log keeps the turns, and "
                                      f"`--session {name}` resumes from them later", highlight=False)
                    continue
                if not text:
                    continue
                try:
                    _print_stream(conversation.ask_stream(text))
                except JisikError as exc:
                    # one bad turn (backend hiccup, too-long question) does not end the conversation
                    err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
                    if exc.hint:
                        err_console.print(f"[dim]hint:[/] {exc.hint}", highlight=False)

    run(body)


def logs(
    kb: KbOption = Path("kb"),
    limit: Annotated[int, typer.Option("-n", "--limit", metavar="N", min=1, help="how many, newest first")] = 20,
    session: Annotated[str | None, typer.Option(metavar="NAME", help="only this chat session")] = None,
    turn: Annotated[int | None, typer.Option("--id", metavar="N", help="show one turn in full")] = None,
    as_json: JsonOption = False,
) -> None:
    """Past questions and answers: sources, latency, tokens, backend."""
    from jisik.errors import QueryError

    def body() -> None:
        with open_kb(kb) as base:
            rows = base.logs(limit=limit, session=session, turn_id=turn)
        if turn is not None and not rows:
            raise QueryError(f"turn {turn} does not exist" + (f" in session '{session}'" if session else ""),
                             hint="`jisik logs` lists the ids")
        if as_json:
            console.print_json(json.dumps(rows, ensure_ascii=False))
        elif not rows:
            console.print(f"no turns logged for session '{session}'" if session else
                          "no questions logged yet (jisik ask stores every answer)", markup=False, highlight=False)
        elif turn is not None:
            render.print_turn(console, rows[0])
        else:
            render.print_logs(console, rows)

    run(body)
