"""Commands that write the knowledge base: ``init``, ``ingest``, ``delete``, ``reindex``, ``migrate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from jisik.cli.app import JsonOption, KbOption, console, err_console, open_kb, progress_bars, run
from jisik.records import MetadataValue

# another process writing the same knowledge base: wait (saying so once) up to this long
WaitOption = Annotated[float | None, typer.Option(
    "--wait", metavar="SECONDS", show_default=False,
    help="wait at most this long for another write to this knowledge base (default: as long as it takes; "
         "0: fail at once)")]


def _waiting(message: str) -> None:
    err_console.print(f"[dim]{message}[/]", highlight=False)


def parse_meta(items: list[str]) -> dict[str, MetadataValue]:
    """``--meta key=value`` pairs, values read as numbers or booleans where they are.

    >>> parse_meta(["dept=legal", "year=2024"])
    {'dept': 'legal', 'year': 2024}
    """
    from jisik.errors import ConfigError
    from jisik.filters import parse_scalar

    meta: dict[str, MetadataValue] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--meta '{item}' is not key=value", hint="e.g. --meta dept=legal --meta year=2024")
        meta[key.strip()] = parse_scalar(value)
    return meta


def init(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="folder to create")] = Path("kb"),
    store: Annotated[str | None, typer.Option(metavar="BACKEND", help="store backend: local (default) or milvus")
                     ] = None,
    uri: Annotated[str | None, typer.Option(metavar="URI",
                                            help="milvus: a milvus-lite .db path or http(s)://host:19530")] = None,
    token_env: Annotated[str | None, typer.Option(metavar="VAR",
                                                  help="milvus: the environment variable holding the token")] = None,
    collection: Annotated[str | None, typer.Option(metavar="NAME",
                                                   help="milvus: the collection of this knowledge base")] = None,
    database: Annotated[str | None, typer.Option(metavar="NAME",
                                                 help="milvus: the database (the server's default if unset)")] = None,
) -> None:
    """Create a knowledge base folder with a jisik.toml holding every setting."""
    from jisik.config import KBConfig
    from jisik.errors import ConfigError
    from jisik.kb import KnowledgeBase

    def body() -> None:
        chosen = {"backend": store, "uri": uri, "token_env": token_env, "collection": collection,
                  "database": database}
        settings = {key: value for key, value in chosen.items() if value is not None}
        if settings and settings.get("backend", "local") == "local" and len(settings) > ("backend" in settings):
            raise ConfigError("--uri, --token-env, --collection and --database are settings of the milvus store",
                              hint="add --store milvus")
        config = KBConfig.model_validate({"store": settings}) if settings else None
        KnowledgeBase.init(path, config).close()
        console.print(f"created knowledge base at [bold]{path}[/] (settings: {path / 'jisik.toml'})")

    run(body)


def ingest(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="files or folders to ingest")],
    kb: KbOption = Path("kb"),
    # no "[default: no-prune]": it adds nothing and wraps at the hyphen on 80 columns
    prune: Annotated[bool, typer.Option(show_default=False, help="remove documents whose files are gone")] = False,
    strict: Annotated[bool, typer.Option(show_default=False, help="stop at the first file that fails")] = False,
    meta: Annotated[list[str] | None, typer.Option("--meta", metavar="KEY=VALUE",
                                                   help="added to every document (repeatable)")] = None,
    wait: WaitOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest files and folders; unchanged files are skipped, changed ones replaced."""

    def body() -> None:
        metadata = parse_meta(meta or [])
        # ingesting is an explicit write: a folder without a knowledge base gets one (stderr says so)
        with open_kb(kb, create=True) as base, progress_bars(not as_json) as progress:
            report = base.ingest(paths, prune=prune, strict=strict, metadata=metadata, progress=progress,
                                 wait=wait, on_wait=_waiting)
        if as_json:
            console.print_json(json.dumps(report.to_dict(), ensure_ascii=False))
        else:
            _print_ingest(report)
        if report.failed and report.ingested == 0 and not report.unchanged:
            raise typer.Exit(1)

    run(body)


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


def delete(target: Annotated[str, typer.Argument(metavar="TARGET", help="document id, source, file or folder path")],
           kb: KbOption = Path("kb"), wait: WaitOption = None, as_json: JsonOption = False) -> None:
    """Delete documents from the knowledge base."""
    from jisik.errors import QueryError

    def body() -> None:
        with open_kb(kb) as base:
            removed = base.delete(target, wait=wait, on_wait=_waiting)
        if not removed:
            raise QueryError(f"nothing in the knowledge base matches '{target}'",
                             hint="`jisik docs` lists the ids and sources, e.g. `jisik docs 'policies/*'`")
        if as_json:
            console.print_json(json.dumps({"deleted": removed}, ensure_ascii=False))
        else:
            console.print(f"deleted {len(removed)} document(s)")

    run(body)


def reindex(kb: KbOption = Path("kb"),
            embeddings: Annotated[bool, typer.Option(help="also re-embed every chunk (after changing "
                                                          "[embedder])")] = False,
            wait: WaitOption = None) -> None:
    """Rebuild the BM25 and vector indexes from stored chunks (after a config change)."""

    def body() -> None:
        with open_kb(kb) as base, progress_bars(True) as progress:
            count = base.reindex(embeddings=embeddings, progress=progress, wait=wait, on_wait=_waiting)
        console.print(f"re-indexed {count} chunks")

    run(body)


def migrate(
    to: Annotated[Path, typer.Option("--to", metavar="PATH", show_default=False,
                                     help="knowledge base to copy into: its jisik.toml [store] says where; "
                                          "a missing one is created with the source's settings")],
    kb: KbOption = Path("kb"),
    # jisik.store.migrate.DEFAULT_BATCH_FILES (not imported here: `jisik --help` loads no store code)
    batch: Annotated[int, typer.Option("--batch", metavar="N", min=1,
                                       help="files per write (a kill loses at most one write)")] = 64,
    prune: Annotated[bool, typer.Option(show_default=False,
                                        help="remove the target's files that the source does not have")] = False,
    wait: WaitOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy a knowledge base into another store backend without embedding again (resumable, then verified)."""

    def body() -> None:
        from jisik.store.migrate import migrate as copy_knowledge_base
        from jisik.store.migrate import opened
        from jisik.store.writer_lock import hold_writer_lock

        with opened(kb, to) as (source, target), \
                hold_writer_lock(to, "migrate", wait=wait, on_wait=_waiting), \
                progress_bars(not as_json) as progress:
            report = copy_knowledge_base(source, target, batch_files=batch, prune=prune, progress=progress)
        if as_json:
            console.print_json(json.dumps(report.to_dict(), ensure_ascii=False))
        else:
            _print_migration(report, to)
        if not report.ok:
            raise typer.Exit(1)

    run(body)


def _print_migration(report: Any, target: Path) -> None:
    check = report.verification
    kept = [path for path in report.extra if path not in report.pruned]
    if kept:
        err_console.print(f"[yellow]{len(kept)} file(s)[/] in {target} are not in the source (kept; --prune "
                          f"removes them), e.g. {kept[0]}", highlight=False, soft_wrap=True)
    console.print(f"{report.copied} files copied, {report.skipped} already there, {report.failures} failed files "
                  f"recorded, {len(report.pruned)} pruned — {report.documents} documents, {report.chunks} chunks in "
                  f"{report.seconds:.1f}s", highlight=False)
    counts = ", ".join(f"{name} {s}" for name, (s, _t) in check.counts.items())
    searches = (f"first hit the same for {check.dense_agree}/{check.sampled} dense and "
                f"{check.lexical_agree}/{check.lexical_sampled} BM25 searches (top-10 overlap "
                f"{check.dense_overlap:.2f}, {check.lexical_overlap:.2f})")
    if check.ok:
        console.print(f"verified: {counts}; {searches}", highlight=False)
        return
    err_console.print(f"[bold red]verification failed:[/] {searches}", highlight=False, soft_wrap=True)
    for line in check.mismatches:
        err_console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
