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


def _glob(word: str) -> str:
    """A source argument as a glob: a glob stays, a word matches anywhere.

    >>> _glob("AAPL"), _glob("*2023*")
    ('*AAPL*', '*2023*')
    """
    return word if any(ch in word for ch in "*?[") else f"*{word}*"


@dataclass(slots=True)
class SourceScope:
    """What a model's ``source`` and ``filters`` arguments come to: store filters, plus notes for the model on what
    could not be used (so it learns the forms, and the search still runs)."""

    filters: list[str] | None
    notes: list[str] = field(default_factory=list)
    query_extra: str = ""


def resolve_scope(kb: KnowledgeBase, source: str | None, filters: list[str] | None) -> SourceScope:
    """``source`` → a filter on document sources when some document's name matches it; else on the companies it
    names (``Apple's reports`` → ``company=AAPL``, from the documents' derived metadata); else no filter, its words
    added to the query and a note saying so. Filters that are not ``key=value`` expressions are left out, noted.

    Models write what they mean, not file names: a scope that matches nothing must widen the search, not empty it.
    """
    from jisik.filters import parse_condition

    notes: list[str] = []
    kept: list[str] = []
    for expression in filters or []:
        try:
            parse_condition(str(expression))
            kept.append(str(expression))
        except JisikError:
            notes.append(f"filter {expression!r} was ignored (write key=value, key>=value or key in a,b)")
    extra = ""
    if source and str(source).strip():
        word = str(source).strip()
        if kb.documents(_glob(word)):
            kept.insert(0, f"source={_glob(word)}")
        else:
            companies = _companies(kb, word)
            if companies:
                kept.insert(0, f"company in {','.join(companies)}")
            else:
                extra = word
                notes.append(f"no document name contains {word!r}: searched all documents "
                             "(list_documents shows the names)")
    return SourceScope(kept or None, notes, extra)


def _companies(kb: KnowledgeBase, text: str) -> list[str]:
    """Company values of the knowledge base's documents that ``text`` names (derived metadata, aliases)."""
    from jisik.retrieve.self_query import companies_in

    try:
        return companies_in(text, kb.catalogue())
    except JisikError:
        return []


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
        scope = resolve_scope(self.kb, arguments.get("source"), arguments.get("filters"))
        try:
            hits = self.kb.search(f"{query} {scope.query_extra}".strip(), k=k, filters=scope.filters)
        except JisikError as exc:  # a filter on a key the documents lack, say: the model's mistake, told to it
            raise ToolError(exc.message, hint=exc.hint) from exc
        notes = "".join(f"(Note: {note}.)\n" for note in scope.notes)
        if not hits:
            where = f" in documents matching {arguments['source']!r}" if arguments.get("source") else ""
            return ToolResult(f"{notes}No passages found for {query!r}{where}. Try other words or another source.")
        return ToolResult(notes + render_passages(hits, context), hits=hits)


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
        scope = resolve_scope(self.kb, arguments.get("source"), None)
        try:
            answer = self.kb.ask(question, llm=self.llm or "extractive", log=False, filters=scope.filters)
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
        every = self.kb.documents()  # read once, matched here: a word, else the companies it names, else all
        docs = _matching(every, [contains]) if contains else every
        note = ""
        if contains and not docs:  # "Apple" for files named by ticker
            docs = _matching(every, _companies(self.kb, contains))
            if not docs:
                docs = every
                note = f"No document name contains {contains!r}; all documents:\n"
        if not docs:
            return ToolResult("The collection is empty.")
        lines = [f"- {d['source']}" + (f" ({d['title']})" if d.get("title") else "") for d in docs[:self.limit]]
        more = f"\n… and {len(docs) - self.limit} more" if len(docs) > self.limit else ""
        follow = "\nNext: kb_search with a query and one of these names as source (e.g. " \
            f"{{\"query\": \"…\", \"source\": \"{_stem(docs[0]['source'])}\"}})."
        return ToolResult(f"{note}{len(docs)} document(s):\n" + "\n".join(lines) + more + follow)


def _matching(docs: list[dict[str, Any]], words: list[str]) -> list[dict[str, Any]]:
    """The documents whose id or source matches any of ``words`` (as :meth:`KnowledgeBase.documents` matches).

    >>> _matching([{"doc_id": "a", "source": "2023 Q1 AAPL.pdf"}, {"doc_id": "b", "source": "MSFT.pdf"}], ["AAPL"])
    [{'doc_id': 'a', 'source': '2023 Q1 AAPL.pdf'}]
    """
    from jisik.filters import source_matches

    patterns = [_glob(w) for w in words if w]
    return [d for d in docs if any(source_matches(p, d["doc_id"]) or source_matches(p, d["source"])
                                   for p in patterns)]


def _stem(source: str) -> str:
    """A document's file name without folder and suffix, as a ``source`` argument.

    >>> _stem("docs/2023 Q1 AAPL.pdf")
    '2023 Q1 AAPL'
    """
    return source.rsplit("/", 1)[-1].rsplit(".", 1)[0]


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
