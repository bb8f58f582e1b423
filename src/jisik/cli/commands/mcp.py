"""``jisik mcp``: knowledge bases as an MCP server (tools and ``kb://`` resources) over stdio or streamable HTTP."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from jisik.cli.app import err_console, run

if TYPE_CHECKING:
    from jisik.kb import KnowledgeBase

# the same option, variable and default as `jisik serve` and `jisik keys`: one set of keys for both servers
StateOption = Annotated[Path, typer.Option("--state-db", envvar="JISIK_STATE_DB", metavar="FILE",
                                           help="the API keys (`jisik keys create`); checked over --http")]
_DEFAULT_STATE = Path("~/.jisik/server.db")
_DEFAULT_TOOLS = "kb_search,kb_ask,list_documents"


def mcp(
    kb: Annotated[list[str] | None, typer.Option(
        "--kb", metavar="[NAME=]PATH", help="a knowledge base to serve (repeatable); named after its folder "
                                            "unless NAME= is given")] = None,
    tools: Annotated[str, typer.Option("--tools", metavar="NAMES", help="comma-separated tools: kb_search, "
                                       "kb_ask, list_documents, calculator, today")] = _DEFAULT_TOOLS,
    llm: Annotated[str | None, typer.Option("--llm", metavar="SPEC", help="LLM kb_ask answers with (default: "
                                            "extractive; the host's model does the reasoning)")] = None,
    http: Annotated[str | None, typer.Option("--http", metavar="HOST:PORT", help="serve streamable HTTP at "
                                             "http://HOST:PORT/mcp instead of stdio")] = None,
    state_db: StateOption = _DEFAULT_STATE,
) -> None:
    """Serve knowledge bases to MCP hosts (Claude Desktop, IDEs, agents): search tools and kb:// resources."""

    def body() -> None:
        from jisik.errors import ConfigError
        from jisik.serve.library import Library, parse_kb_argument

        if not kb:
            raise ConfigError("nothing to serve", hint="pass --kb PATH (repeatable)")
        from jisik._lazy import require

        require("mcp", extra="mcp")
        library = Library([parse_kb_argument(value) for value in kb])
        library.open_all(warm=False)
        try:
            kbs = {served.name: served.kb for served in library.all()}
            names = [name.strip() for name in tools.split(",") if name.strip()]
            if http is None:
                _stdio(kbs, names, llm)
            else:
                _http(kbs, names, llm, http, state_db.expanduser())
        finally:
            library.close()

    run(body)


def _stdio(kbs: dict[str, KnowledgeBase], tools: list[str], llm: str | None) -> None:
    """One host on stdin/stdout: nothing but the protocol goes to stdout; models load on the first call."""
    from jisik.agent.mcp_server import build_mcp_server, run_stdio

    server = build_mcp_server(kbs, tools=tools, llm=llm)
    with contextlib.suppress(KeyboardInterrupt):  # the host closing the pipe is the usual end
        run_stdio(server)


def _http(kbs: dict[str, KnowledgeBase], tools: list[str], llm: str | None, address: str, state_db: Path) -> None:
    """Streamable HTTP with the jisik server's API keys; the models load before the first request."""
    from jisik.agent.mcp_server import build_mcp_server, check_http_binding, parse_address, run_http
    from jisik.serve.state import ServerState

    host, port = parse_address(address)
    keys = ServerState(state_db)
    note = check_http_binding(host, keys)
    server = build_mcp_server(kbs, tools=tools, llm=llm)
    for name, base in kbs.items():
        base.warm(llm="extractive")
        stats = base.store.stats()
        err_console.print(f"{name}: {base.path} ({stats.documents:,} documents, {stats.chunks:,} chunks)",
                          markup=False, highlight=False, soft_wrap=True)
    if note:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    shown = f"[{host}]" if ":" in host else host
    err_console.print(f"jisik mcp serving on http://{shown}:{port}/mcp", markup=False, highlight=False)
    run_http(server, host, port, kb_names=list(kbs), keys=keys)
