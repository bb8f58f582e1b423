"""The ``jisik`` command line: thin commands over :class:`~jisik.kb.KnowledgeBase`.

Errors are printed as one line plus a hint; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from jisik.errors import JisikError
from jisik.records import Hit, MetadataValue

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="jisik: question answering over your own documents, in Korean and English.")
console = Console()
err_console = Console(stderr=True)
_state: dict[str, bool] = {"debug": False}

KbOption = Annotated[Path, typer.Option("--kb", envvar="JISIK_KB", help="knowledge base folder")]
JsonOption = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
T = TypeVar("T")


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks on errors")] = False) -> None:
    _state["debug"] = debug


def _run(action: Callable[[], T]) -> T:
    """Run a command body, turning JisikError into one clear line and exit code 1."""
    try:
        return action()
    except JisikError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, markup=True)
        if exc.hint:
            err_console.print(f"[dim]hint:[/] {exc.hint}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err_console.print("interrupted; the knowledge base is consistent — re-run to finish")
        raise typer.Exit(130) from None


def _open(kb: Path, *, create: bool = False) -> Any:
    from jisik.kb import KnowledgeBase

    return KnowledgeBase.open(kb, create=create)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    labels = {"scan": "scanning", "files": "ingesting", "index": "indexing", "reindex": "re-indexing"}
    if not enabled:
        yield lambda stage, done, total: None
        return
    columns = (TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in labels:
                return
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels[stage], total=total)
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
def init(path: Annotated[Path, typer.Argument(help="folder to create")] = Path("kb")) -> None:
    """Create a knowledge base folder with a jisik.toml holding every setting."""
    from jisik.kb import KnowledgeBase

    def body() -> None:
        KnowledgeBase.init(path).close()
        console.print(f"created knowledge base at [bold]{path}[/] (settings: {path / 'jisik.toml'})")

    _run(body)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or folders to ingest")],
    kb: KbOption = Path("kb"),
    prune: Annotated[bool, typer.Option(help="remove documents whose files are gone")] = False,
    strict: Annotated[bool, typer.Option(help="stop at the first file that fails")] = False,
    meta: Annotated[list[str] | None, typer.Option("--meta", help="key=value added to every document")] = None,
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


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="question or keywords")],
    kb: KbOption = Path("kb"),
    mode: Annotated[str | None, typer.Option(help="dense | bm25 | hybrid | mmr")] = None,
    k: Annotated[int | None, typer.Option("-k", "--k", help="number of results")] = None,
    filters: Annotated[list[str] | None, typer.Option("--filter", help="key=value, key>=n, key in a,b, "
                                                      "source=glob/*.pdf (repeatable, all must hold)")] = None,
    threshold: Annotated[float | None, typer.Option(help="minimum cosine similarity (bm25 mode: score)")] = None,
    lambda_mult: Annotated[float | None, typer.Option("--lambda", help="MMR: 1 relevance … 0 diversity")] = None,
    fetch_k: Annotated[int | None, typer.Option(help="candidates per retriever")] = None,
    fusion: Annotated[str | None, typer.Option(help="hybrid fusion: rrf | weighted")] = None,
    rrf_k: Annotated[int | None, typer.Option(help="RRF constant (default 60)")] = None,
    dense_weight: Annotated[float | None, typer.Option(help="hybrid weight of dense results")] = None,
    bm25_weight: Annotated[float | None, typer.Option(help="hybrid weight of BM25 results")] = None,
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
            _print_hits(hits)

    _run(body)


def _print_hits(hits: list[Hit]) -> None:
    if not hits:
        console.print("no results")
        return
    table = Table(show_lines=True)
    for column in ("#", "score", "source", "page", "section", "text"):
        table.add_column(column, overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(hit.text.split())
        table.add_row(str(rank), f"{hit.score:.4f}", hit.source, "" if hit.page is None else str(hit.page),
                      hit.section or "", snippet[:300] + ("…" if len(snippet) > 300 else ""))
    console.print(table)


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
def delete(target: Annotated[str, typer.Argument(help="document id, source, file or folder path")],
           kb: KbOption = Path("kb"), as_json: JsonOption = False) -> None:
    """Delete documents from the knowledge base."""
    from jisik.errors import QueryError

    def body() -> None:
        with _open(kb) as base:
            removed = base.delete(target)
        if not removed:
            raise QueryError(f"nothing in the knowledge base matches '{target}'",
                             hint="see the ids with `jisik status` or `jisik search`")
        if as_json:
            console.print_json(json.dumps({"deleted": removed}, ensure_ascii=False))
        else:
            console.print(f"deleted {len(removed)} document(s)")

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


LlmOption = Annotated[str | None, typer.Option("--llm", help="extractive | ollama:MODEL | openai:URL#MODEL | "
                                                 "openai:MODEL | llamacpp:FILE.gguf | transformers:FOLDER")]
TemperatureOption = Annotated[float | None, typer.Option(help="sampling temperature (default 0: factual)")]
MaxTokensOption = Annotated[int | None, typer.Option("--max-tokens", help="answer length limit in tokens")]


def _sampling(temperature: float | None, top_p: float | None, top_k: int | None,
              max_tokens: int | None) -> dict[str, Any]:
    values = {"temperature": temperature, "top_p": top_p, "top_k": top_k, "max_tokens": max_tokens}
    return {key: value for key, value in values.items() if value is not None}


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question, in Korean or English")],
    kb: KbOption = Path("kb"),
    llm: LlmOption = None,
    chain: Annotated[str | None, typer.Option(help="stuff | map_reduce | refine")] = None,
    k: Annotated[int | None, typer.Option("-k", "--k", help="chunks to retrieve")] = None,
    mode: Annotated[str | None, typer.Option(help="retrieval: dense | bm25 | hybrid | mmr")] = None,
    filters: Annotated[list[str] | None, typer.Option("--filter", help="metadata filter, as in search")] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="answer language: auto | ko | en")] = None,
    temperature: TemperatureOption = None,
    top_p: Annotated[float | None, typer.Option("--top-p")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k")] = None,
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
                return
            _print_stream(stream)

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
    memory: Annotated[str | None, typer.Option(help="buffer | window | tokens | summary")] = None,
    session: Annotated[str | None, typer.Option(help="session name for the log")] = None,
    k: Annotated[int | None, typer.Option("-k", "--k", help="chunks to retrieve")] = None,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
) -> None:
    """Multi-turn chat with memory; follow-ups such as "그럼 환불은요?" are understood. /reset, /exit."""

    def body() -> None:
        with _open(kb) as base:
            conversation = base.chat(llm=llm, session=session, memory=memory, k=k,
                                     **_sampling(temperature, None, None, max_tokens))
            err_console.print(f"chat session {conversation.session} — /reset forgets, /exit or Ctrl-D leaves",
                              highlight=False)
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
                    err_console.print("memory cleared")
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
    limit: Annotated[int, typer.Option("-n", "--limit", help="how many, newest first")] = 20,
    session: Annotated[str | None, typer.Option(help="only this chat session")] = None,
    turn: Annotated[int | None, typer.Option("--id", help="show one turn in full")] = None,
    as_json: JsonOption = False,
) -> None:
    """Past questions and answers: sources, latency, tokens, backend."""

    def body() -> None:
        with _open(kb) as base:
            rows = base.logs(limit=limit, session=session, turn_id=turn)
        if as_json:
            console.print_json(json.dumps(rows, ensure_ascii=False))
            return
        if not rows:
            console.print("no questions logged yet (jisik ask stores every answer)")
            return
        if turn is not None:
            _print_turn(rows[0])
            return
        table = Table()
        for column in ("id", "when", "question", "answer", "sources", "backend", "ms", "tokens"):
            table.add_column(column, overflow="fold")
        for row in rows:
            sources = ", ".join(sorted({c["source"] for c in row["citations"]}))
            table.add_row(str(row["id"]), _when(row["created_at"]), _short(row["question"], 60),
                          _short(row["answer"], 80), _short(sources, 40), row["backend"], f"{row['latency_ms']:.0f}",
                          f"{row['prompt_tokens']}+{row['completion_tokens']}")
        console.print(table)

    _run(body)


def _print_turn(row: dict[str, Any]) -> None:
    console.print(f"[bold]#{row['id']}[/] {_when(row['created_at'])}  {row['kind']}"
                  + (f"  session {row['session']}" if row["session"] else ""), highlight=False)
    console.print(f"[bold]Q:[/] {row['question']}", highlight=False)
    if row["standalone_question"]:
        console.print(f"[dim]rewritten:[/] {row['standalone_question']}", highlight=False)
    console.print(f"[bold]A:[/] {row['answer']}", highlight=False)
    for citation in row["citations"]:
        page = "" if citation["page"] is None else f", p. {citation['page']}"
        console.print(f"  [{citation['number']}] {citation['source']}{page}", markup=False, highlight=False)
    console.print(f"retrieved: {', '.join(f'{cid}:{score:.3f}' for cid, score in row['retrieved'])}",
                  highlight=False)
    first = "" if row["first_token_ms"] is None else f", first token {row['first_token_ms']:.0f} ms"
    console.print(f"{row['backend']}: {row['latency_ms']:.0f} ms (retrieval {row['retrieval_ms']:.0f} ms{first}), "
                  f"{row['prompt_tokens']} prompt + {row['completion_tokens']} answer tokens", highlight=False)


def _when(timestamp: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def _short(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


from jisik.evaluate.cli import register as _register_eval  # noqa: E402  (needs `app` above; no import cycle)

_register_eval(app)


def main() -> None:
    app(prog_name="jisik")


if __name__ == "__main__":
    main()
