"""Commands that read the knowledge base: ``search``, ``status``, ``docs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from jisik.choices import Fusion
from jisik.cli import render
from jisik.cli.app import (
    FilterOption,
    JsonOption,
    KbOption,
    ModeOption,
    choices,
    console,
    debugging,
    err_console,
    open_kb,
    run,
)
from jisik.records import Hit


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
    fusion: Annotated[Fusion | None, typer.Option(metavar="METHOD", help=f"hybrid fusion: {choices(Fusion)}")] = None,
    rrf_k: Annotated[int | None, typer.Option(metavar="N", min=1, help="RRF constant (default 60)")] = None,
    dense_weight: Annotated[float | None, typer.Option(metavar="X", min=0, help="hybrid weight of dense "
                                                                                "results")] = None,
    bm25_weight: Annotated[float | None, typer.Option(metavar="X", min=0, help="hybrid weight of BM25 "
                                                                               "results")] = None,
    rerank: Annotated[str | None, typer.Option(metavar="SPEC", help="rerank the best candidates: "
                                               "cross-encoder:FOLDER, llm, llm:LLM-SPEC, llm-listwise:LLM-SPEC "
                                               "or none (default [rerank])")] = None,
    no_server: Annotated[bool, typer.Option("--no-server", help="search in this process even when a `jisik "
                                            "serve` on this machine serves the knowledge base")] = False,
    as_json: JsonOption = False,
) -> None:
    """Search the knowledge base and show the best chunks with source, page and section.

    When a `jisik serve` on a loopback address serves the same knowledge base (it leaves `server.json` in
    the folder), the search is sent to it, which has the models loaded already; any problem and it runs here.
    """

    def body() -> None:
        options: dict[str, Any] = {"mode": mode, "k": k, "filters": filters or None, "threshold": threshold,
                                   "lambda_mult": lambda_mult, "fetch_k": fetch_k, "fusion": fusion,
                                   "rrf_k": rrf_k, "dense_weight": dense_weight, "bm25_weight": bm25_weight}
        hits = None if no_server or rerank is not None else _search_via_server(kb, query, options)
        if hits is None:
            with open_kb(kb) as base:
                hits = base.search(query, rerank=rerank, **options)
        if as_json:
            console.print_json(json.dumps([h.to_dict() for h in hits], ensure_ascii=False))
        else:
            render.print_hits(console, hits)

    run(body)


def _search_via_server(kb: Path, query: str, options: dict[str, Any]) -> list[Hit] | None:
    """The hits a running ``jisik serve`` over ``kb`` gives (``<kb>/server.json``), or None: no such server,
    or anything at all went wrong (then the caller searches in-process, and a bad query gets its usual message
    there). ``--debug`` says on stderr which way it went and why."""
    import os
    import urllib.parse

    from jisik.serve import discovery

    found, why = discovery.find(kb)
    if found is not None:
        url = f"{found.url}/api/kbs/{urllib.parse.quote(found.name, safe='')}/search"
        body = {"query": query, **{key: value for key, value in options.items() if value is not None}}
        try:
            answer = discovery.post_json(url, body, api_key=os.environ.get(discovery.API_KEY_ENV) or None)
            hits = [_hit(raw) for raw in answer["hits"]]
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            why = f"{url}: {exc}"
        else:
            if debugging():
                err_console.print(f"debug: searched via the server at {found.url} (pid {found.pid})",
                                  markup=False, highlight=False, soft_wrap=True)
            return hits
    if debugging():
        err_console.print(f"debug: searching in-process ({why})", markup=False, highlight=False, soft_wrap=True)
    return None


def _hit(raw: dict[str, Any]) -> Hit:
    """A hit from the server's JSON (``Hit.to_dict()``: ``span`` is ``[start, end]``)."""
    start, end = raw["span"]
    return Hit(chunk_id=int(raw["chunk_id"]), score=float(raw["score"]), text=str(raw["text"]),
               doc_id=str(raw["doc_id"]), source=str(raw["source"]), title=raw.get("title"), page=raw.get("page"),
               section=raw.get("section"), start=int(start), end=int(end), metadata=dict(raw.get("metadata") or {}),
               scores={str(name): float(value) for name, value in (raw.get("scores") or {}).items()})


def status(kb: KbOption = Path("kb"), as_json: JsonOption = False) -> None:
    """Show counts, the embedder, the index and files that failed to ingest."""

    def body() -> None:
        with open_kb(kb) as base:
            info = base.status()
        if as_json:
            console.print_json(json.dumps(info, ensure_ascii=False))
            return
        table = Table(show_header=False)
        for key in ("path", "documents", "chunks", "files", "analyzer", "index", "context_header", "fusion"):
            table.add_row(key, str(info[key]))
        table.add_row("embedder", f"{info['embedder']['model']} (dim {info['embedder']['dim']}, "
                                  f"backend {info['embedder']['backend']})")
        dense, lexical = info.get("dense"), info.get("lexical")
        if dense:
            table.add_row("vectors", f"{dense['state']}; {dense['delta']:,} in the delta, "
                                     f"{dense['tombstones']:,} deleted not yet merged")
        if lexical:
            table.add_row("bm25", f"{lexical.get('documents', 0):,} chunks; {lexical.get('delta', 0):,} in the delta, "
                                  f"{lexical.get('tombstones', 0):,} deleted not yet merged")
        if milvus := info.get("milvus"):
            table.add_row("milvus", f"collection {milvus['collection']} at {milvus['uri']} ({milvus['server']}); "
                                    f"consistency {milvus['consistency']}, bm25 {milvus['bm25']}, "
                                    f"{milvus['tombstones']:,} deleted not yet purged")
        table.add_row("generation", str(info["generation"]))
        table.add_row("disk", f"{info['disk_bytes'] / 1e6:.1f} MB")
        console.print(table)
        for failed in info["failed_files"]:
            err_console.print(f"[yellow]failed[/] {failed['path']}: {failed['reason']}", highlight=False)

    run(body)


def docs(pattern: Annotated[str | None, typer.Argument(
             metavar="PATTERN", help="only ids or sources matching this glob (policies/*, *.pdf); "
                                     "a word without * ? [ matches anywhere")] = None,
         kb: KbOption = Path("kb"), as_json: JsonOption = False) -> None:
    """List documents: the id `jisik delete` takes, source, title and chunk count."""

    def body() -> None:
        with open_kb(kb) as base:
            found = base.documents(pattern)
        if as_json:
            console.print_json(json.dumps(found, ensure_ascii=False))
        elif not found:
            console.print(f"no documents match '{pattern}'" if pattern else "no documents yet (add some with "
                          "`jisik ingest`)", markup=False, highlight=False)
        else:
            render.print_documents(console, found)

    run(body)
