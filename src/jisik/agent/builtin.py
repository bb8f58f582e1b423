"""The built-in tools: ``kb_search``, ``kb_ask``, ``list_documents`` over a knowledge base, ``calculator``, ``today``.

Knowledge-base tools number every passage they show with the run's citation numbers (``[3]``), so a final
answer that cites ``[3]`` cites that passage whichever call found it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jisik.agent.calculator import calculate, format_number
from jisik.agent.tools import Tool, ToolContext, ToolResult
from jisik.errors import JisikError, ToolError
from jisik.generate.prompts import format_source

if TYPE_CHECKING:
    from jisik.generate.llms.base import LLM
    from jisik.kb import KnowledgeBase
    from jisik.records import Hit

BUILTIN_TOOLS = ("kb_search", "kb_ask", "list_documents", "calculator", "today")
DEFAULT_TOOLS = ("kb_search", "list_documents", "calculator", "today")
PASSAGE_CHARS = 700  # of each passage shown to the model: enough for a table row or two paragraphs


def render_passages(hits: list[Hit], context: ToolContext, *, chars: int = PASSAGE_CHARS) -> str:
    """Passages as the model reads them: ``[n] source, p. 3`` then the text, cut at ``chars``."""
    blocks = []
    for hit in hits:
        text = re.sub(r"[ \t]+", " ", hit.text.strip())
        if len(text) > chars:
            text = text[:chars].rsplit(" ", 1)[0] + " …"
        blocks.append(f"[{context.number(hit)}] {format_source(hit)}\n{text}")
    return "\n\n".join(blocks)


def _filters(source: str | None, filters: list[str] | None) -> list[str] | None:
    """The store filters for a search: ``source`` as a glob over document sources, plus ``key=value`` filters.

    >>> _filters("AAPL", None), _filters("*2023*", ["page>=2"])
    (['source=*AAPL*'], ['source=*2023*', 'page>=2'])
    """
    out = list(filters or [])
    if source:
        pattern = source if any(ch in source for ch in "*?[") else f"*{source}*"
        out.insert(0, f"source={pattern}")
    return out or None


@dataclass(slots=True)
class KBSearch:
    kb: KnowledgeBase
    k: int = 5
    name: str = "kb_search"
    description: str = ("Search the document collection. Returns numbered passages [n] with their source; "
                        "cite them as [n]. Search once per company, period or topic.")
    parameters: dict[str, Any] = field(default_factory=lambda: {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "what to look for, in the documents' words"},
            "source": {"type": "string", "description": "only documents whose file name contains this "
                       "(e.g. AAPL, 2023 Q2) or matches this glob"},
            "filters": {"type": "array", "items": {"type": "string"},
                        "description": "metadata filters such as year>=2023"},
            "k": {"type": "integer", "description": "passages to return (1–10)", "default": 5}},
        "required": ["query"]})

    def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        query = str(arguments["query"]).strip()
        if not query:
            raise ToolError("the query is empty", hint='send {"query": "…"}')
        k = max(1, min(int(arguments.get("k") or self.k), 10))
        try:
            hits = self.kb.search(query, k=k, filters=_filters(arguments.get("source"), arguments.get("filters")))
        except JisikError as exc:  # a bad filter is the model's mistake: say so
            raise ToolError(exc.message, hint=exc.hint) from exc
        if not hits:
            where = f" in documents matching {arguments['source']!r}" if arguments.get("source") else ""
            return ToolResult(f"No passages found for {query!r}{where}. Try other words or another source.")
        return ToolResult(render_passages(hits, context), hits=hits)


_MARKER = re.compile(r"\[(\d+)\]")


@dataclass(slots=True)
class KBAsk:
    kb: KnowledgeBase
    llm: LLM | None = None
    name: str = "kb_ask"
    description: str = ("Ask the document collection one simple question; returns a short answer citing "
                        "passages [n]. Use one call per fact (one company, one period).")
    parameters: dict[str, Any] = field(default_factory=lambda: {
        "type": "object",
        "properties": {"question": {"type": "string", "description": "one self-contained question"},
                       "source": {"type": "string", "description": "only documents whose file name contains this"}},
        "required": ["question"]})

    def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        question = str(arguments["question"]).strip()
        try:
            answer = self.kb.ask(question, llm=self.llm or "extractive", log=False,
                                 filters=_filters(arguments.get("source"), None))
        except JisikError as exc:
            raise ToolError(exc.message, hint=exc.hint) from exc
        if not answer.found:
            return ToolResult(answer.text)
        hits: list[Hit] = []
        numbers: dict[int, int] = {}
        for citation in answer.citations:
            hit = self.kb.passage(citation.chunk_id)
            if hit is not None:
                numbers[citation.number] = context.number(hit)
                hits.append(hit)
        text = _MARKER.sub(lambda m: f"[{numbers[int(m.group(1))]}]" if int(m.group(1)) in numbers else "",
                           answer.text)
        sources = "\n".join(f"[{context.number(hit)}] {format_source(hit)}" for hit in hits)
        return ToolResult(f"{text}\n\nSources:\n{sources}" if sources else text, hits=hits)


@dataclass(slots=True)
class ListDocuments:
    kb: KnowledgeBase
    limit: int = 50
    name: str = "list_documents"
    description: str = ("List the documents in the collection (source file names), optionally only those "
                        "whose name contains a word. Use it to learn which companies, periods or files exist.")
    parameters: dict[str, Any] = field(default_factory=lambda: {
        "type": "object",
        "properties": {"contains": {"type": "string", "description": "a word the file name must contain"}},
        "required": []})

    def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        contains = str(arguments.get("contains") or "").strip()
        pattern = None if not contains else contains if any(c in contains for c in "*?[") else f"*{contains}*"
        docs = self.kb.documents(pattern)
        if not docs:
            return ToolResult(f"No documents match {contains!r}." if contains else "The collection is empty.")
        lines = [f"- {d['source']}" + (f" ({d['title']})" if d.get("title") else "") for d in docs[:self.limit]]
        more = f"\n… and {len(docs) - self.limit} more" if len(docs) > self.limit else ""
        return ToolResult(f"{len(docs)} document(s):\n" + "\n".join(lines) + more)


@dataclass(slots=True)
class Calculator:
    name: str = "calculator"
    description: str = ("Evaluate arithmetic exactly, e.g. (94836 - 117154) / 117154 * 100. Numbers, + - * / ** % "
                        "and sqrt, round, abs, min, max, log.")
    parameters: dict[str, Any] = field(default_factory=lambda: {
        "type": "object", "properties": {"expression": {"type": "string", "description": "the arithmetic"}},
        "required": ["expression"]})

    def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return ToolResult(format_number(calculate(str(arguments["expression"]))))


@dataclass(slots=True)
class Today:
    clock: Any = None  # a function returning a date (tests); default: the local date
    name: str = "today"
    description: str = "Today's date (YYYY-MM-DD and the weekday)."
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {},
                                                                "required": []})

    def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        today: dt.date = self.clock() if self.clock else dt.date.today()
        return ToolResult(f"{today.isoformat()} ({today.strftime('%A')})")


def builtin_tools(kb: KnowledgeBase | None, names: tuple[str, ...] | list[str] = DEFAULT_TOOLS, *,
                  llm: LLM | None = None, k: int = 5) -> list[Tool]:
    """The built-in tools named (knowledge-base tools need ``kb``)."""
    from jisik.errors import AgentError

    made: list[Tool] = []
    for name in names:
        if name in ("kb_search", "kb_ask", "list_documents") and kb is None:
            raise AgentError(f"the tool '{name}' needs a knowledge base", hint="pass --kb FOLDER")
        if name == "kb_search":
            made.append(KBSearch(kb, k=k))  # type: ignore[arg-type]
        elif name == "kb_ask":
            made.append(KBAsk(kb, llm))  # type: ignore[arg-type]
        elif name == "list_documents":
            made.append(ListDocuments(kb))  # type: ignore[arg-type]
        elif name == "calculator":
            made.append(Calculator())
        elif name == "today":
            made.append(Today())
        else:
            raise AgentError(f"unknown built-in tool '{name}'", hint=f"built-in tools: {', '.join(BUILTIN_TOOLS)}")
    return made
