"""What every command shares: the Typer app, the consoles, error handling, opening a knowledge base,
progress bars and the common options.

Commands (:mod:`jisik.cli.commands`) import from here; this module imports no command, and the
library imports nothing from the CLI. Errors are printed as one line plus a hint; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

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
from typer.core import TyperCommand

from jisik.choices import SearchMode
from jisik.errors import JisikError
from jisik.progress import PlainProgress

if TYPE_CHECKING:
    from typer._click import Context, HelpFormatter  # Typer vendors its own click

    from jisik.kb import KnowledgeBase

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="jisik: question answering over your own documents, in Korean and English.")
console = Console()
err_console = Console(stderr=True)
_state: dict[str, bool] = {"debug": False}

LlmOption = Annotated[str | None, typer.Option("--llm", metavar="SPEC", help="extractive | ollama:MODEL | "
                                                 "openai:URL#MODEL | openai:MODEL | llamacpp:FILE.gguf | "
                                                 "transformers:FOLDER")]
KbOption = Annotated[Path, typer.Option("--kb", envvar="JISIK_KB", metavar="PATH", help="knowledge base folder")]
JsonOption = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
T = TypeVar("T")


def choices(alias: Any) -> str:
    """The values of a Literal alias for help text: ``dense | bm25 | hybrid | mmr``."""
    return " | ".join(get_args(alias))


ModeOption = Annotated[SearchMode | None, typer.Option(metavar="MODE", help=f"retrieval: {choices(SearchMode)}")]
FilterOption = Annotated[list[str] | None, typer.Option(
    "--filter", metavar="EXPR", help="key=value, key>=n, key in a,b, source=glob/*.pdf (repeatable, all must hold)")]


class Command(TyperCommand):
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


def debugging() -> bool:
    """Whether ``jisik --debug`` was given (commands then say more on stderr)."""
    return _state["debug"]


def print_error(exc: JisikError) -> None:
    """``error: message`` and ``hint: …`` on stderr, each one logical line (folded by the terminal,
    so paths in it can be copied whole)."""
    from rich.markup import escape

    # escaped: messages name settings as "[store] uri", which rich would take for markup and drop
    err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, markup=True, soft_wrap=True)
    if exc.hint:
        err_console.print(f"[dim]hint:[/] {escape(exc.hint)}", highlight=False, soft_wrap=True)


def run(action: Callable[[], T]) -> T:
    """Run a command body, turning JisikError into one clear line and exit code 1."""
    try:
        return action()
    except JisikError as exc:
        if _state["debug"]:
            raise
        print_error(exc)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err_console.print("interrupted; the knowledge base is consistent — re-run to finish")
        raise typer.Exit(130) from None


def open_kb(kb: Path, *, create: bool = False) -> KnowledgeBase:
    """Open the knowledge base at ``kb``. A missing one is an error (one line naming the path and
    ``jisik init``), unless ``create``: then it is made, and stderr says so (stdout stays clean for
    ``--json``)."""
    from jisik.errors import KnowledgeBaseNotFoundError
    from jisik.kb import KnowledgeBase

    try:
        return KnowledgeBase.open(kb)
    except KnowledgeBaseNotFoundError:
        if not create:
            raise
    base = KnowledgeBase.open(kb, create=True)
    err_console.print(f"created a new knowledge base at {kb}", markup=False, highlight=False, soft_wrap=True)
    return base


@contextmanager
def progress_bars(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
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
