"""The ``jisik`` command line: thin commands over :class:`~jisik.kb.KnowledgeBase`.

Errors are printed as one line plus a hint; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_args

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from typer.core import TyperCommand

from jisik import cli_render as render
from jisik.choices import AnswerLanguage, Chain, Fusion, MemoryKind, SearchMode
from jisik.errors import JisikError
from jisik.progress import PlainProgress
from jisik.records import MetadataValue

if TYPE_CHECKING:
    from typer._click import Context, HelpFormatter  # Typer vendors its own click

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="jisik: question answering over your own documents, in Korean and English.")
console = Console()
err_console = Console(stderr=True)
_state: dict[str, bool] = {"debug": False}

KbOption = Annotated[Path, typer.Option("--kb", envvar="JISIK_KB", metavar="PATH", help="knowledge base folder")]
JsonOption = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
T = TypeVar("T")


def _choices(alias: Any) -> str:
    """The values of a Literal alias for help text: ``dense | bm25 | hybrid | mmr``."""
    return " | ".join(get_args(alias))


class _Command(TyperCommand):
    """Help with one placeholder style: an upper-case word per value (``--kb PATH``, ``-k N``,
    ``QUERY``). Typer would print the Python type after each argument (``QUERY <str>``)."""

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        arguments: list[tuple[str, str]] = []
        options: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((record[0].split(" <", 1)[0], record[1]))
            else:
                options.append(record)
        for title, records in (("Arguments", arguments), ("Options", options)):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks on errors")] = False) -> None:
    _state["debug"] = debug
    if debug:  # library warnings and unexpected errors (with their tracebacks) go to stderr
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _run(action: Callable[[], T]) -> T:
    """Run a command body, turning JisikError into one clear line and exit code 1."""
    try:
        return action()
    except JisikError as exc:
        if _state["debug"]:
            raise
        # soft_wrap: one logical line each, folded by the terminal, so paths in it can be copied whole
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, markup=True, soft_wrap=True)
        if exc.hint:
            err_console.print(f"[dim]hint:[/] {exc.hint}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err_console.print("interrupted; the knowledge base is consistent — re-run to finish")
        raise typer.Exit(130) from None


def _open(kb: Path, *, create: bool = False) -> Any:
    from jisik.kb import KnowledgeBase

    return KnowledgeBase.open(kb, create=create)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """Progress bars on a terminal; without one (a log, CI), a plain line every PLAIN_PROGRESS_SECONDS."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    if not err_console.is_terminal:
        yield PlainProgress(err_console.print)
        return
    labels = {"scan": "scanning", "files": "ingesting", "chunks": "embedding", "index": "indexing",
              "reindex": "re-indexing"}
    columns = (TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[tokens]}"))
    with Progress(*columns, console=err_console, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage == "tokens":
                if "chunks" in tasks:
                    bar.update(tasks["chunks"], tokens=f"{done:,} tokens")
                return
            if stage not in labels:
                return
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels[stage], total=total, tokens="")
            bar.update(tasks[stage], completed=done, total=total)

        yield report


def _parse_meta(items: list[str]) -> dict[str, MetadataValue]:
    from jisik.errors import ConfigError
    from jisik.retrieve.filters import parse_scalar

    meta: dict[str, MetadataValue] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--meta '{item}' is not key=value", hint="e.g. --meta dept=legal --meta year=2024")
        meta[key.strip()] = parse_scalar(value)
    return meta


@app.command()
def init(path: Annotated[Path, typer.Argument(metavar="PATH", help="folder to create")] = Path("kb")) -> None:
    """Create a knowledge base folder with a jisik.toml holding every setting."""
    from jisik.kb import KnowledgeBase

    def body() -> None:
        KnowledgeBase.init(path).close()
        console.print(f"created knowledge base at [bold]{path}[/] (settings: {path / 'jisik.toml'})")

    _run(body)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="files or folders to ingest")],
    kb: KbOption = Path("kb"),
    # no "[default: no-prune]": it adds nothing and wraps at the hyphen on 80 columns
    prune: Annotated[bool, typer.Option(show_default=False, help="remove documents whose files are gone")] = False,
    strict: Annotated[bool, typer.Option(show_default=False, help="stop at the first file that fails")] = False,
    meta: Annotated[list[str] | None, typer.Option("--meta", metavar="KEY=VALUE",
                                                   help="added to every document (repeatable)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest files and folders; unchanged files are skipped, changed ones replaced."""

    def body() -> None:
        metadata = _parse_meta(meta or [])
        with _open(kb, create=True) as base, _progress(not as_json) as progress:
            report = base.ingest(paths, prune=prune, strict=strict, metadata=metadata, progress=progress)
        if as_json:
            console.print_json(json.dumps(report.to_dict(), ensure_ascii=False))
        else:
            _print_ingest(report)
        if report.failed and report.ingested == 0 and not report.unchanged:
            raise typer.Exit(1)

    _run(body)


def _print_ingest(report: Any) -> None:
    for path, reason in report.failed:
        err_console.print(f"[yellow]skipped[/] {path}: {reason}", highlight=False)
    for path in report.empty:
        err_console.print(f"[yellow]no text[/] {path}", highlight=False)
    for warning in report.warnings:
        err_console.print(f"[dim]warning[/] {warning}", highlight=False)
    console.print(
        f"{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
        f"{len(report.failed)} failed, {len(report.pruned)} pruned — {report.documents} documents, "
        f"{report.chunks} chunks in {report.seconds:.1f}s")


ModeOption = Annotated[SearchMode | None, typer.Option(metavar="MODE", help=f"retrieval: {_choices(SearchMode)}")]
FilterOption = Annotated[list[str] | None, typer.Option(
    "--filter", metavar="EXPR", help="key=value, key>=n, key in a,b, source=glob/*.pdf (repeatable, all must hold)")]


@app.command()
def search(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="question or keywords")],
    kb: KbOption = Path("kb"),
    mode: ModeOption = None,
    k: Annotated[int | None, typer.Option("-k", "--k", metavar="N", min=1, help="number of results")] = None,
    filters: FilterOption = None,
    threshold: Annotated[float | None, typer.Option(metavar="X", help="minimum cosine similarity "
                                                                      "(bm25 mode: score)")] = None,
    lambda_mult: Annotated[float | None, typer.Option("--lambda", metavar="X", min=0, max=1,
                                                      help="MMR: 1 relevance … 0 diversity")] = None,
    fetch_k: Annotated[int | None, typer.Option(metavar="N", min=1, help="candidates per retriever")] = None,
    fusion: Annotated[Fusion | None, typer.Option(metavar="METHOD", help=f"hybrid fusion: {_choices(Fusion)}")] = None,
    rrf_k: Annotated[int | None, typer.Option(metavar="N", min=1, help="RRF constant (default 60)")] = None,
    dense_weight: Annotated[float | None, typer.Option(metavar="X", min=0, help="hybrid weight of dense "
                                                                                "results")] = None,
    bm25_weight: Annotated[float | None, typer.Option(metavar="X", min=0, help="hybrid weight of BM25 "
                                                                               "results")] = None,
    as_json: JsonOption = False,
) -> None:
    """Search the knowledge base and show the best chunks with source, page and section."""

    def body() -> None:
        with _open(kb) as base:
            hits = base.search(query, mode=mode, k=k, filters=filters or None, threshold=threshold,
                               lambda_mult=lambda_mult, fetch_k=fetch_k, fusion=fusion, rrf_k=rrf_k,
                               dense_weight=dense_weight, bm25_weight=bm25_weight)
        if as_json:
            console.print_json(json.dumps([h.to_dict() for h in hits], ensure_ascii=False))
        else:
            render.print_hits(console, hits)

    _run(body)


@app.command()
def status(kb: KbOption = Path("kb"), as_json: JsonOption = False) -> None:
    """Show counts, the embedder, the index and files that failed to ingest."""

    def body() -> None:
        with _open(kb) as base:
            info = base.status()
        if as_json:
            console.print_json(json.dumps(info, ensure_ascii=False))
            return
        table = Table(show_header=False)
        for key in ("path", "documents", "chunks", "files", "analyzer", "index"):
            table.add_row(key, str(info[key]))
        table.add_row("embedder", f"{info['embedder']['model']} (dim {info['embedder']['dim']}, "
                                  f"backend {info['embedder']['backend']})")
        table.add_row("disk", f"{info['disk_bytes'] / 1e6:.1f} MB")
        console.print(table)
        for failed in info["failed_files"]:
            err_console.print(f"[yellow]failed[/] {failed['path']}: {failed['reason']}", highlight=False)

    _run(body)


@app.command()
def delete(target: Annotated[str, typer.Argument(metavar="TARGET", help="document id, source, file or folder path")],
           kb: KbOption = Path("kb"), as_json: JsonOption = False) -> None:
    """Delete documents from the knowledge base."""
    from jisik.errors import QueryError

    def body() -> None:
        with _open(kb) as base:
            removed = base.delete(target)
        if not removed:
            raise QueryError(f"nothing in the knowledge base matches '{target}'",
                             hint="`jisik docs` lists the ids and sources, e.g. `jisik docs 'policies/*'`")
        if as_json:
            console.print_json(json.dumps({"deleted": removed}, ensure_ascii=False))
        else:
            console.print(f"deleted {len(removed)} document(s)")

    _run(body)


@app.command()
def docs(pattern: Annotated[str | None, typer.Argument(
             metavar="PATTERN", help="only ids or sources matching this glob (policies/*, *.pdf); "
                                     "a word without * ? [ matches anywhere")] = None,
         kb: KbOption = Path("kb"), as_json: JsonOption = False) -> None:
    """List documents: the id `jisik delete` takes, source, title and chunk count."""

    def body() -> None:
        with _open(kb) as base:
            found = base.documents(pattern)
        if as_json:
            console.print_json(json.dumps(found, ensure_ascii=False))
        elif not found:
            console.print(f"no documents match '{pattern}'" if pattern else "no documents yet (add some with "
                          "`jisik ingest`)", markup=False, highlight=False)
        else:
            render.print_documents(console, found)

    _run(body)


@app.command()
def reindex(kb: KbOption = Path("kb"),
            embeddings: Annotated[bool, typer.Option(help="also re-embed every chunk (after changing "
                                                          "[embedder])")] = False) -> None:
    """Rebuild the BM25 and vector indexes from stored chunks (after a config change)."""

    def body() -> None:
        with _open(kb) as base, _progress(True) as progress:
            count = base.reindex(embeddings=embeddings, progress=progress)
        console.print(f"re-indexed {count} chunks")

    _run(body)


LlmOption = Annotated[str | None, typer.Option("--llm", metavar="SPEC", help="extractive | ollama:MODEL | "
                                                 "openai:URL#MODEL | openai:MODEL | llamacpp:FILE.gguf | "
                                                 "transformers:FOLDER")]
TemperatureOption = Annotated[float | None, typer.Option(metavar="X", min=0, max=2,
                                                         help="sampling temperature (default 0: factual)")]
MaxTokensOption = Annotated[int | None, typer.Option("--max-tokens", metavar="N", min=1,
                                                     help="answer length limit in tokens")]
KOption = Annotated[int | None, typer.Option("-k", "--k", metavar="N", min=1, help="chunks to retrieve")]


def _sampling(temperature: float | None, top_p: float | None, top_k: int | None,
              max_tokens: int | None) -> dict[str, Any]:
    values = {"temperature": temperature, "top_p": top_p, "top_k": top_k, "max_tokens": max_tokens}
    return {key: value for key, value in values.items() if value is not None}


@app.command()
def ask(
    question: Annotated[str, typer.Argument(metavar="QUESTION", help="the question, in Korean or English")],
    kb: KbOption = Path("kb"),
    llm: LlmOption = None,
    chain: Annotated[Chain | None, typer.Option(metavar="CHAIN", help=_choices(Chain))] = None,
    k: KOption = None,
    mode: ModeOption = None,
    filters: FilterOption = None,
    lang: Annotated[AnswerLanguage | None, typer.Option("--lang", metavar="LANG", help="answer language: "
                                                        f"{_choices(AnswerLanguage)}")] = None,
    temperature: TemperatureOption = None,
    top_p: Annotated[float | None, typer.Option("--top-p", metavar="X", min=0, max=1,
                                                help="nucleus sampling")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", metavar="N", min=1,
                                              help="sample from the N likeliest tokens")] = None,
    max_tokens: MaxTokensOption = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="do not store this turn in the log")] = False,
    as_json: JsonOption = False,
) -> None:
    """Answer a question from the documents: streams the answer, then the numbered sources."""

    def body() -> None:
        with _open(kb) as base:
            stream = base.ask_stream(question, llm=llm, chain=chain, k=k, mode=mode, filters=filters or None,
                                     language=lang, log=not no_log,
                                     **_sampling(temperature, top_p, top_k, max_tokens))
            if as_json:
                answer = stream.result()
                console.print_json(json.dumps(answer.to_dict(), ensure_ascii=False))
            else:
                _print_stream(stream)
            if base.read_only and not no_log:
                err_console.print("[dim]note:[/] the knowledge base is read-only: this question was not logged")

    _run(body)


def _print_stream(stream: Any) -> None:
    for piece in stream:
        console.print(piece, end="", markup=False, highlight=False, soft_wrap=True)
    console.print()
    _print_sources(stream.answer)


def _print_sources(answer: Any) -> None:
    for number in answer.invalid_citations:
        err_console.print(f"[yellow]note[/] the answer cited [{number}], which is not one of its sources; removed",
                          highlight=False)
    if not answer.citations:
        return
    console.print()
    console.print("[bold]Sources[/]")
    for citation in answer.citations:
        where = citation.source + ("" if citation.page is None else f", p. {citation.page}")
        if citation.section:
            where += f", {citation.section}"
        quote = " ".join(citation.quote.split())
        quote = quote[:200] + ("…" if len(quote) > 200 else "")
        console.print(f"[{citation.number}] {where}", markup=False, highlight=False)
        console.print(f"    {quote}", style="dim", markup=False, highlight=False)


@app.command()
def chat(
    kb: KbOption = Path("kb"),
    llm: LlmOption = None,
    memory: Annotated[MemoryKind | None, typer.Option(metavar="KIND", help=_choices(MemoryKind))] = None,
    session: Annotated[str | None, typer.Option(metavar="NAME", help="session name; an existing one is resumed "
                                                                     "from the log")] = None,
    k: KOption = None,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
) -> None:
    """Multi-turn chat with memory (/reset, /exit). Follow-ups are understood: "그럼 환불은요?"."""

    def body() -> None:
        with _open(kb) as base:
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

    _run(body)


@app.command()
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
        with _open(kb) as base:
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

    _run(body)


from jisik.evaluate.cli import register as _register_eval  # noqa: E402  (needs `app` above; no import cycle)

_register_eval(app)
for _info in app.registered_commands:  # every command, eval's too, gets the one-placeholder help
    if _info.cls in (None, TyperCommand):
        _info.cls = _Command


def main() -> None:
    app(prog_name="jisik")


if __name__ == "__main__":
    main()
