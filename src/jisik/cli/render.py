"""Terminal output for the CLI that fits the terminal's width.

Tables drop or narrow their less important columns instead of breaking words, and search hits
become short blocks (rank, score, source, then the text across the whole width) when a table
would squeeze the text into a sliver. Every function takes the Console to print on.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from jisik.records import Hit

# A search table is worth it only when its text column gets at least this many cells; below that
# (80 columns: about 18) each hit prints as a block instead.
SEARCH_TABLE_MIN_TEXT = 40
BLOCK_TEXT_LINES = 3  # 6 hits stay within one screen at 80x40
SNIPPET_CHARS = 300


@dataclass(frozen=True, slots=True)
class Column:
    """One table column.

    ``drop`` orders what goes when the table is too wide: the highest number first, 0 never.
    ``wrap`` columns fold their text at spaces and share the width the others leave.
    """

    header: str
    drop: int = 0
    wrap: bool = False
    min_width: int = 8
    justify: Literal["left", "right"] = "left"


def table_cost(widths: Sequence[int]) -> int:
    """Cells a Rich table with these content widths takes: padding and a rule per column, one edge.

    >>> table_cost([2, 10])
    19
    """
    return sum(widths) + 3 * len(widths) + 1


def fit_columns(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> list[int | None]:
    """Content width of each column for a table at most ``width`` cells wide; None drops it.

    Columns that do not wrap get their widest cell. Wrapping ones get at least their longest
    word (so no word is split across lines) and ``min_width``, then share what is left, up to
    their widest cell. While even that is too wide, the column with the highest ``drop`` goes.
    A droppable column with nothing in it goes at once.

    >>> cols = [Column("id"), Column("text", wrap=True), Column("ms", drop=1)]
    >>> fit_columns(cols, [["1", "a fairly long answer", "12"]], 40)
    [2, 20, 2]
    >>> fit_columns(cols, [["1", "a fairly long answer", "12"]], 20)
    [2, 11, None]
    """
    natural = [max([cell_len(col.header), *(cell_len(row[i]) for row in rows)]) for i, col in enumerate(columns)]
    floor = [min(natural[i], max(col.min_width, cell_len(col.header), _longest_word(row[i] for row in rows)))
             if col.wrap else natural[i] for i, col in enumerate(columns)]
    kept = [i for i, col in enumerate(columns) if not col.drop or any(row[i] for row in rows)]
    while table_cost([floor[i] for i in kept]) > width:
        droppable = [i for i in kept if columns[i].drop]
        if not droppable:
            break
        kept.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    widths = {i: floor[i] for i in kept}
    spare = width - table_cost(list(widths.values()))
    flexible = [i for i in kept if columns[i].wrap]
    while spare < 0 and any(widths[i] > 4 for i in flexible):
        # nothing left to drop: narrow the widest wrapping column (its longest words then fold)
        widest = max(flexible, key=lambda i: widths[i])
        widths[widest] -= 1
        spare += 1
    while spare > 0 and (hungry := [i for i in flexible if widths[i] < natural[i]]):
        share = max(1, spare // len(hungry))
        for i in hungry:
            give = min(share, natural[i] - widths[i], spare)
            widths[i] += give
            spare -= give
    return [widths.get(i) for i in range(len(columns))]


def _longest_word(cells: Any) -> int:
    return max((cell_len(word) for cell in cells for word in cell.split()), default=0)


def fitted_table(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> tuple[Table, list[str]]:
    """A table that fits ``width``, and the headers of the columns it left out."""
    widths = fit_columns(columns, rows, width)
    kept = [i for i, w in enumerate(widths) if w is not None]
    table = Table()
    for i in kept:
        col = columns[i]
        table.add_column(col.header, width=widths[i], justify=col.justify, no_wrap=not col.wrap,
                         overflow="fold" if col.wrap else "ellipsis")
    for row in rows:
        table.add_row(*(Text(row[i]) for i in kept))  # Text: a "[b]" in a question is not markup
    hidden = [col.header for col, w in zip(columns, widths, strict=True) if w is None and any(
        row[columns.index(col)] for row in rows)]  # an empty column is left out without a word
    return table, hidden


def _print_table(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str]], see_all: str) -> None:
    table, hidden = fitted_table(columns, rows, console.width)
    console.print(table)
    if hidden:
        console.print(f"hidden at this width: {', '.join(hidden)} ({see_all})", style="dim", highlight=False)


# -- search -----------------------------------------------------------------------------------------
def print_hits(console: Console, hits: Sequence[Hit]) -> None:
    if not hits:
        console.print("no results")
        return
    rows = [[str(rank), f"{hit.score:.4f}", hit.source, "" if hit.page is None else str(hit.page),
             hit.section or "", short(hit.text, SNIPPET_CHARS)] for rank, hit in enumerate(hits, start=1)]
    score_label = "rerank" if all("rerank" in hit.scores for hit in hits) else "score"  # whose score it is
    columns = [Column("#", justify="right"), Column(score_label, justify="right"), Column("source", wrap=True),
               Column("page", drop=1, justify="right"), Column("section", wrap=True, drop=2, min_width=12),
               Column("text", wrap=True, min_width=SEARCH_TABLE_MIN_TEXT)]
    widths = fit_columns(columns, rows, console.width)
    text_width = widths[-1] or 0
    if text_width >= SEARCH_TABLE_MIN_TEXT and table_cost([w for w in widths if w]) <= console.width:
        _print_table(console, columns, rows, "see --json")
    else:
        _print_hit_blocks(console, hits)


def _print_hit_blocks(console: Console, hits: Sequence[Hit]) -> None:
    """Each hit as a short block: rank, score, source and page, section; then the text.

    >>> from io import StringIO
    >>> out = Console(file=StringIO(), width=40)
    >>> _print_hit_blocks(out, [Hit(chunk_id=1, score=0.5, text="one two three", doc_id="a", source="a.md",
    ...                            title=None, page=2, section="Intro", start=0, end=13)])
    >>> print(out.file.getvalue())
    1. 0.5000  a.md, p. 2 — Intro
      one two three
    <BLANKLINE>
    """
    indent = "  "
    avail = max(10, console.width - len(indent))
    for rank, hit in enumerate(hits, start=1):
        if rank > 1:
            console.print()
        label = "rerank " if "rerank" in hit.scores else ""  # the score is the reranker's, not the retrievers'
        head = Text(f"{rank}. ", style="bold") + Text(f"{label}{hit.score:.4f}  ")
        head += Text(hit.source + ("" if hit.page is None else f", p. {hit.page}"), style="bold")
        if hit.section:
            head += Text(f" — {hit.section}", style="dim")
        console.print(head, no_wrap=True, overflow="ellipsis")  # one line: a long section is cut, not wrapped
        lines = Text(" ".join(hit.text.split())).wrap(console, avail)
        shown = lines[:BLOCK_TEXT_LINES]
        if len(lines) > BLOCK_TEXT_LINES:
            last = shown[-1]
            last.append("…")
            last.truncate(avail, overflow="ellipsis")
        for line in shown:
            line.rstrip()
            console.print(Text(indent) + line)


# -- logs -------------------------------------------------------------------------------------------
def print_logs(console: Console, rows: Sequence[dict[str, Any]]) -> None:
    """The turn log as a table; on narrow terminals tokens, sources, latency go first."""
    columns = [Column("id", justify="right"), Column("when"), Column("question", wrap=True, min_width=16),
               Column("answer", wrap=True, drop=1, min_width=16), Column("sources", wrap=True, drop=4),
               Column("backend", drop=2), Column("ms", drop=3, justify="right"),
               Column("tokens", drop=5, justify="right")]
    cells = []
    for row in rows:
        sources = ", ".join(sorted({c["source"] for c in row["citations"]}))
        cells.append([str(row["id"]), when(row["created_at"]), short(row["question"], 60), short(row["answer"], 80),
                      short(sources, 80), row["backend"], f"{row['latency_ms']:.0f}",
                      f"{row['prompt_tokens']}+{row['completion_tokens']}"])
    _print_table(console, columns, cells, "see --json, or --id N")


def print_turn(console: Console, row: dict[str, Any]) -> None:
    console.print(f"[bold]#{row['id']}[/] {when(row['created_at'])}  {row['kind']}"
                  + (f"  session {row['session']}" if row["session"] else ""), highlight=False)
    console.print(Text("Q: ", style="bold") + Text(row["question"]))
    if row["standalone_question"]:
        console.print(Text("rewritten: ", style="dim") + Text(row["standalone_question"]))
    console.print(Text("A: ", style="bold") + Text(row["answer"]))
    for citation in row["citations"]:
        page = "" if citation["page"] is None else f", p. {citation['page']}"
        console.print(f"  [{citation['number']}] {citation['source']}{page}", markup=False, highlight=False)
    console.print(f"retrieved: {', '.join(f'{cid}:{score:.3f}' for cid, score in row['retrieved'])}",
                  highlight=False)
    for decision in row.get("guard") or []:
        console.print(f"guard: {describe_decision(decision)}", markup=False, highlight=False)
    if row.get("trace"):
        console.print("[bold]Steps[/]")
        for step in row["trace"]:
            print_step(console, step)
    first = "" if row["first_token_ms"] is None else f", first token {row['first_token_ms']:.0f} ms"
    console.print(f"{row['backend']}: {row['latency_ms']:.0f} ms (retrieval {row['retrieval_ms']:.0f} ms{first}), "
                  f"{row['prompt_tokens']} prompt + {row['completion_tokens']} answer tokens", highlight=False)


def describe_step(step: dict[str, Any]) -> str:
    """One agent step on one line: what was called, with what, what came back, and its cost.

    >>> describe_step({"step": 2, "type": "tool", "tool": "kb_search", "arguments": {"query": "margin"},
    ...                "passages": [3, 4], "observation": "[3] a.pdf", "prompt_tokens": 812,
    ...                "completion_tokens": 31, "ms": 1520.0})
    '2. kb_search {"query": "margin"} → passages [3][4]  (812+31 tokens, 1.5 s)'
    """
    tokens = f"{step.get('prompt_tokens', 0)}+{step.get('completion_tokens', 0)} tokens"
    cost = f"  ({tokens}, {step.get('ms', 0) / 1000:.1f} s)"
    kind = step.get("type")
    if kind in ("tool", "repeated"):
        arguments = json.dumps(step.get("arguments"), ensure_ascii=False)
        passages = step.get("passages") or []
        result = ("passages " + "".join(f"[{n}]" for n in passages)) if passages else \
            short(" ".join(str(step.get("observation", "")).split()), 60)
        prefix = "repeated, refused: " if kind == "repeated" else ""
        return f"{step['step']}. {prefix}{step.get('tool')} {short(arguments, 80)} → {result}{cost}"
    if kind == "invalid":
        return f"{step['step']}. unreadable reply: {step.get('error')}{cost}"
    if kind == "limit":
        return f"{step['step']}. stopped: {step.get('reason')}"
    if kind == "external":
        return f"{step['step']}. the caller's tool {step.get('tool')} was called{cost}"
    return f"{step['step']}. final answer{cost}"


def print_step(console: Console, step: dict[str, Any]) -> None:
    """An agent step as ``--trace`` shows it: the thought (dim), then :func:`describe_step`."""
    thought = " ".join(str(step.get("thought") or "").split())
    if thought:
        console.print(f"   {short(thought, 160)}", style="dim", markup=False, highlight=False)
    console.print(describe_step(step), markup=False, highlight=False)


def describe_decision(decision: dict[str, Any]) -> str:
    """One guard decision in words, never with the personal data itself.

    >>> describe_decision({"guard": "pii", "place": "logs", "action": "redact",
    ...                    "detail": {"type": "PHONE", "count": 2}})
    'pii in logs: redact (type PHONE, count 2)'
    """
    detail = ", ".join(f"{key} {', '.join(map(str, value)) if isinstance(value, list) else value}"
                       for key, value in decision.get("detail", {}).items())
    return f"{decision['guard']} in {decision['place']}: {decision['action']}" + (f" ({detail})" if detail else "")


def print_grounding(console: Console, grounding: Sequence[dict[str, Any]]) -> None:
    """Each answer sentence with its support score and what did not match (``jisik ask --explain``)."""
    for item in grounding:
        mark = "✓" if item["supported"] else "✗"
        cites = "".join(f"[{n}]" for n in item["citations"])
        console.print(f"{mark} {item['score']:.2f} {cites} {short(item['text'], 100)}", markup=False, highlight=False)
        for problem in item["problems"]:
            console.print(f"      {problem}", style="dim", markup=False, highlight=False)


# -- documents --------------------------------------------------------------------------------------
def print_documents(console: Console, docs: Sequence[dict[str, Any]]) -> None:
    """Documents with the id `jisik delete` takes; the source goes first on narrow terminals (the id
    usually starts with it)."""
    columns = [Column("id", wrap=True), Column("title", wrap=True, drop=1, min_width=12),
               Column("chunks", justify="right"), Column("source", wrap=True, drop=2)]
    rows = [[d["doc_id"], d["title"] or "", str(d["chunks"]), d["source"]] for d in docs]
    _print_table(console, columns, rows, "see --json")
    chunks = sum(d["chunks"] for d in docs)
    console.print(f"{len(docs)} document{'s' if len(docs) != 1 else ''}, {chunks} chunks", highlight=False)


def when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def short(text: str, width: int) -> str:
    """
    >>> short("a  b\\nc", 10), short("abcdef", 4)
    ('a b c', 'abc…')
    """
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def print_sources(console: Console, err_console: Console, answer: Any) -> None:
    """The numbered sources under an answer, and a note for each marker that cited no source."""
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
