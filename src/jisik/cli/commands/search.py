"""Commands that read the knowledge base: ``search``, ``status``, ``docs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from jisik.choices import Fusion
from jisik.cli import render
from jisik.cli.app import FilterOption, JsonOption, KbOption, ModeOption, choices, console, err_console, open_kb, run


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
    as_json: JsonOption = False,
) -> None:
    """Search the knowledge base and show the best chunks with source, page and section."""

    def body() -> None:
        with open_kb(kb) as base:
            hits = base.search(query, mode=mode, k=k, filters=filters or None, threshold=threshold,
                               lambda_mult=lambda_mult, fetch_k=fetch_k, fusion=fusion, rrf_k=rrf_k,
                               dense_weight=dense_weight, bm25_weight=bm25_weight, rerank=rerank)
        if as_json:
            console.print_json(json.dumps([h.to_dict() for h in hits], ensure_ascii=False))
        else:
            render.print_hits(console, hits)

    run(body)


def status(kb: KbOption = Path("kb"), as_json: JsonOption = False) -> None:
    """Show counts, the embedder, the index and files that failed to ingest."""

    def body() -> None:
        with open_kb(kb) as base:
            info = base.status()
        if as_json:
            console.print_json(json.dumps(info, ensure_ascii=False))
            return
        table = Table(show_header=False)
        for key in ("path", "documents", "chunks", "files", "analyzer", "index"):
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
