"""Commands that serve knowledge bases to a team: ``serve`` and ``keys create|list|revoke``."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from jisik.cli.app import JsonOption, console, err_console, run

StateOption = Annotated[Path, typer.Option("--state-db", envvar="JISIK_STATE_DB", metavar="FILE",
                                           help="the server's keys and jobs (SQLite)")]
_DEFAULT_STATE = Path("~/.jisik/server.db")

keys_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                       help="API keys of the server: create (shown once, stored hashed), list, revoke.")


def serve(
    kb: Annotated[list[str] | None, typer.Option(
        "--kb", metavar="[NAME=]PATH", help="a knowledge base to serve (repeatable); named after its folder "
                                            "unless NAME= is given; the model is jisik/NAME")] = None,
    root: Annotated[Path | None, typer.Option(metavar="DIR", help="also serve every knowledge base in DIR, and "
                                              "create new ones there (POST /api/kbs)")] = None,
    host: Annotated[str, typer.Option(metavar="ADDR", help="address to listen on; other than loopback "
                                                           "needs API keys")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="N", min=0, max=65535)] = 8080,
    llm: Annotated[str | None, typer.Option("--llm", metavar="SPEC", help="LLM for every knowledge base "
                                            "(default: each one's [llm] in jisik.toml)")] = None,
    workers: Annotated[int, typer.Option(metavar="N", min=1, help="server processes on the same knowledge "
                                         "bases")] = 1,
    cors_origin: Annotated[list[str] | None, typer.Option("--cors-origin", metavar="URL", help="allow browser "
                                                          "requests from this origin (repeatable; off by "
                                                          "default)")] = None,
    max_upload_mb: Annotated[float, typer.Option(metavar="MB", min=0.001, help="largest upload request")] = 50.0,
    max_body_mb: Annotated[float, typer.Option(metavar="MB", min=0.001, help="largest JSON request")] = 2.0,
    job_ttl: Annotated[float, typer.Option(metavar="SECONDS", min=1, help="how long finished ingest jobs "
                                           "stay visible")] = 3600.0,
    shutdown_grace: Annotated[float, typer.Option(metavar="SECONDS", min=0, help="time running ingest jobs get "
                                                  "to finish at shutdown before they are cancelled")] = 10.0,
    state_db: StateOption = _DEFAULT_STATE,
    log_level: Annotated[str, typer.Option(metavar="LEVEL", help="info shows one JSON line per request; "
                                                                 "warning hides them")] = "info",
) -> None:
    """Serve knowledge bases: OpenAI-compatible API at /v1, knowledge-base API at /api, web chat UI at /."""

    def body() -> None:
        from jisik.errors import ConfigError
        from jisik.serve.app import SETTINGS_ENV, ServerSettings, check_binding, create_app
        from jisik.serve.library import parse_kb_argument
        from jisik.serve.state import ServerState

        if not kb and root is None:
            raise ConfigError("nothing to serve", hint="pass --kb PATH (repeatable) or --root DIR")
        level = getattr(logging, log_level.upper(), None)
        if not isinstance(level, int):
            raise ConfigError(f"unknown log level '{log_level}'", hint="use debug, info, warning or error")
        settings = ServerSettings(kbs=[parse_kb_argument(value) for value in kb or []], root=root, host=host,
                                  port=port, llm=llm, state_db=state_db.expanduser(), cors_origins=cors_origin or [],
                                  max_upload_mb=max_upload_mb, max_body_mb=max_body_mb, job_ttl=job_ttl,
                                  shutdown_grace=shutdown_grace, workers=workers)
        state = ServerState(settings.state_db)
        note = check_binding(settings, state.has_keys())
        state.close()
        _configure_logging(level)
        if note:
            err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
        import uvicorn

        common = {"host": host, "port": port, "access_log": False, "log_config": None,
                  "timeout_graceful_shutdown": max(1, int(shutdown_grace)) + 5}
        if workers == 1:
            app = create_app(settings, report=lambda line: err_console.print(line, markup=False,
                                                                              highlight=False, soft_wrap=True))
            served = [(s.name, s.path) for s in app.state.context.library.all()]
            _listen(uvicorn.Config(app, **common), served)  # type: ignore[arg-type]
            return
        from jisik.serve.library import Library

        preflight = Library(settings.kbs, root=settings.root)  # errors here, in one line, not once per worker
        preflight.open_all(warm=False)
        served = [(s.name, s.path) for s in preflight.all()]
        preflight.close()
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        _listen(uvicorn.Config("jisik.serve.app:app_from_environment", factory=True, workers=workers,
                               **common), served)  # type: ignore[arg-type]

    run(body)


def _listen(config: Any, served: list[tuple[str, Path]]) -> None:
    """What ``uvicorn.run`` does, with the socket bound here first: its address is then known (``--port 0``
    too) and goes into each knowledge base's ``server.json`` (loopback only), which ``jisik search`` uses to
    reuse this server's loaded models (jisik.serve.discovery). This process — the only one, or the parent of
    the workers — writes the files and removes them when it stops."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from jisik.serve import discovery

    sock = config.bind_socket()  # a port in use: uvicorn's one line, exit code 1
    url = discovery.server_url(sock.getsockname())
    err_console.print(f"jisik serving on {url}  (OpenAI API: {url}/v1, API docs: /docs)", highlight=False,
                      soft_wrap=True)
    written = [path for name, path in served
               if discovery.is_loopback(config.host) and discovery.write(path, url=url, name=name)]
    server = uvicorn.Server(config)
    stopped_by: list[int] = []

    def stop(signum: int, frame: Any) -> None:  # uvicorn re-raises SIGTERM after its graceful shutdown
        stopped_by.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        if config.workers > 1:
            Multiprocess(config, sockets=[sock]).run()  # the parent: it handles SIGTERM itself and returns
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        for path in written:
            discovery.remove(path)
        signal.signal(signal.SIGTERM, previous)
    if stopped_by:
        signal.raise_signal(stopped_by[0])  # exit as uvicorn would have: by the signal
    if config.workers == 1 and not server.started:
        sys.exit(1)


def _configure_logging(level: int) -> None:
    """Request lines (JSON) and server notes to stderr; uvicorn's own access log is off (it prints query
    strings, which may hold a key someone pasted)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("jisik.serve", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers = [handler]
        logger.propagate = False


def _when(stamp: float | None) -> str:
    return "-" if stamp is None else datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M")


@keys_app.command("create")
def keys_create(
    kb: Annotated[str, typer.Option("--kb", metavar="NAME", help="knowledge base name (as served), or '*' "
                                                                 "for all")],
    name: Annotated[str, typer.Option("--name", metavar="LABEL", help="who or what uses the key")],
    role: Annotated[str, typer.Option("--role", metavar="ROLE", help="read | write | admin")] = "read",
    expires: Annotated[str | None, typer.Option("--expires", metavar="DURATION",
                                                help="e.g. 30d, 12h (default: never)")] = None,
    state_db: StateOption = _DEFAULT_STATE,
    as_json: JsonOption = False,
) -> None:
    """Create a key; it is printed once (only its hash is stored)."""

    def body() -> None:
        from jisik.serve.state import ServerState, parse_duration

        state = ServerState(state_db)
        plain, key = state.create_key(kb=kb, role=role, name=name,
                                      expires_in=parse_duration(expires) if expires else None)
        if as_json:
            console.print_json(json.dumps({"key": plain, **key.to_dict()}, ensure_ascii=False))
            return
        console.print(plain, markup=False, highlight=False)
        err_console.print(f"key {key.id} '{key.name}': {key.role} on {key.kb}"
                          f"{', expires ' + _when(key.expires_at) if key.expires_at else ''}. "
                          "Keep it now: it is not shown again.", markup=False, highlight=False, soft_wrap=True)

    run(body)


@keys_app.command("list")
def keys_list(state_db: StateOption = _DEFAULT_STATE, as_json: JsonOption = False) -> None:
    """List keys (id, name, knowledge base, role, dates) — never the keys themselves."""

    def body() -> None:
        from jisik.serve.state import ServerState

        keys = ServerState(state_db).list_keys()
        if as_json:
            console.print_json(json.dumps([k.to_dict() for k in keys], ensure_ascii=False))
            return
        if not keys:
            console.print("no keys yet (create one with `jisik keys create --kb NAME --name WHO`)", markup=False)
            return
        table = Table("id", "name", "kb", "role", "created", "expires", "last used", "state")
        now = time.time()
        for k in keys:
            state = "revoked" if k.revoked_at else "expired" if k.expires_at and k.expires_at <= now else "active"
            table.add_row(k.id, k.name, k.kb, k.role, _when(k.created_at), _when(k.expires_at),
                          _when(k.last_used_at), state)
        console.print(table)

    run(body)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(metavar="ID-OR-NAME", help="the key's id, or its name (every live key "
                                                                   "with that name)")],
    state_db: StateOption = _DEFAULT_STATE,
) -> None:
    """Revoke a key: refused on the next request, in every server process."""

    def body() -> None:
        from jisik.serve.state import ServerState

        for revoked in ServerState(state_db).revoke(key):
            console.print(f"revoked {revoked.id} '{revoked.name}' ({revoked.role} on {revoked.kb})", markup=False)

    run(body)
