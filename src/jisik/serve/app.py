"""The server process: settings, the FastAPI app and what it holds, request logs, health and readiness.

>>> app = create_app(ServerSettings(kbs=[("manuals", Path("kb"))]))   # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8080)                     # doctest: +SKIP

Start-up opens every knowledge base (a missing or damaged one stops the server with one clear line),
then loads the models in the background: ``/healthz`` answers at once, ``/readyz`` once they are loaded.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jisik.errors import ConfigError
from jisik.serve.discovery import is_loopback
from jisik.serve.state import DEFAULT_STATE_DB

log = logging.getLogger("jisik.serve")
access_log = logging.getLogger("jisik.serve.access")
SETTINGS_ENV = "JISIK_SERVE_SETTINGS"  # how `jisik serve --workers N` hands the settings to each worker


class ServerSettings(BaseModel):
    """What ``jisik serve`` was told (every option has the same name there, with dashes)."""

    model_config = ConfigDict(extra="forbid")

    kbs: list[tuple[str, Path]] = Field(default_factory=list)
    root: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    llm: str | None = Field(None, description="LLM spec for every knowledge base (default: each one's [llm])")
    state_db: Path = DEFAULT_STATE_DB
    cors_origins: list[str] = Field(default_factory=list)
    max_upload_mb: float = Field(50.0, gt=0)
    max_body_mb: float = Field(2.0, gt=0, description="JSON request bodies")
    job_ttl: float = Field(3600.0, gt=0, description="seconds a finished job stays visible")
    shutdown_grace: float = Field(10.0, ge=0, description="seconds running ingest jobs get at shutdown")
    workers: int = Field(1, ge=1)
    threads: int = Field(64, ge=4, description="request threads (searches run in them)")


@dataclass
class ServerContext:
    """Everything a request handler reaches through ``request.app.state.context``."""

    settings: ServerSettings
    state: Any  # ServerState
    library: Any  # Library
    jobs: Any  # JobRunner
    streams: Any  # StreamCounter
    require_keys: bool
    started_at: float = field(default_factory=time.time)
    warm_error: str | None = None


def check_binding(settings: ServerSettings, has_keys: bool) -> str | None:
    """Refuse an open server on a non-loopback address; the start-up note for an open loopback one."""
    if is_loopback(settings.host):
        if not has_keys:
            return (f"no API keys exist: the server is open to anyone on this machine, and only to it "
                    f"({settings.host}). Create keys with `jisik keys create` before binding elsewhere.")
        return None
    if not has_keys:
        raise ConfigError(f"refusing to listen on {settings.host} without API keys: anyone who can reach it could "
                          "read and change the knowledge bases",
                          hint="create one first: jisik keys create --kb NAME --role read --name WHO "
                               "(or use --host 127.0.0.1)")
    return None


def create_app(settings: ServerSettings, *, report: Callable[[str], None] | None = None) -> Any:
    """The FastAPI application for ``settings``."""
    from jisik._lazy import require

    for module, package in (("fastapi", "fastapi"), ("uvicorn", "uvicorn"), ("python_multipart", "python-multipart")):
        require(module, extra="serve", package=package)
    import anyio.to_thread
    from fastapi import FastAPI
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    from jisik.serve import errors, kb_api, openai_api, schemas
    from jisik.serve.jobs import JobRunner
    from jisik.serve.library import Library
    from jisik.serve.state import ServerState
    from jisik.serve.streaming import StreamCounter

    say = report or log.info
    state = ServerState(settings.state_db)
    library = Library(settings.kbs, root=settings.root, llm=settings.llm)
    library.open_all(say, warm=False)  # a missing or damaged knowledge base stops the start here, in one line
    context = ServerContext(settings=settings, state=state, library=library,
                            jobs=JobRunner(state, library, ttl=settings.job_ttl), streams=StreamCounter(),
                            require_keys=not is_loopback(settings.host))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        context.jobs.mark_orphans()

        def warm() -> None:
            try:
                library.warm_all(say)
                say(f"ready in {time.time() - context.started_at:.1f} s")
            except Exception as exc:  # readyz says so; requests load lazily and report the same error
                context.warm_error = str(exc)
                log.exception("loading the models failed")

        warming = threading.Thread(target=warm, name="jisik-warm", daemon=True)
        warming.start()
        yield
        # stopped while the models were still loading: let that finish before the stores close under it
        await anyio.to_thread.run_sync(warming.join, 120)
        say("stopping: finishing running ingest jobs" if context.jobs.busy else "stopping")
        await anyio.to_thread.run_sync(context.jobs.shutdown, settings.shutdown_grace)
        library.close()
        state.close()

    app = FastAPI(title="jisik", version=_version(), lifespan=lifespan,
                  description="Question answering over your own documents, in Korean and English: an "
                              "OpenAI-compatible API (each knowledge base is a model, `jisik/<name>`) with citations, "
                              "and a knowledge-base API. Errors are `{\"error\": {message, type, code, param, hint}}`.")
    app.state.context = context
    errors.install(app)
    _complete_schema(app)
    app.include_router(openai_api.router)
    app.include_router(kb_api.router)

    @app.get("/healthz", response_model=schemas.Health, tags=["operations"])
    def healthz() -> schemas.Health:
        """The process is up (it may still be loading models: see /readyz)."""
        return schemas.Health(active_streams=context.streams.active, jobs_running=context.jobs.running_count)

    @app.get("/readyz", response_model=schemas.Ready, tags=["operations"],
             responses={503: {"model": schemas.Ready, "description": "still loading, or loading failed"}})
    def readyz() -> Any:
        """200 once every knowledge base is open and its models are loaded; 503 before."""
        body = schemas.Ready(ready=library.ready and context.warm_error is None,
                             knowledge_bases={s.name: s.ready for s in library.all()})
        return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)

    static = resources.files("jisik.serve") / "static"
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=str(static)), name="static")

        @app.get("/", include_in_schema=False)
        def index() -> FileResponse:
            return FileResponse(str(static / "index.html"), headers={"Cache-Control": "no-cache"})

    app.add_middleware(_RequestLog, max_body=int(settings.max_body_mb * 1e6),
                       max_upload=int(settings.max_upload_mb * 1e6), worker_header=settings.workers > 1)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Jisik-Session"])
    return app


def _complete_schema(app: Any) -> None:
    """What FastAPI's generated schema lacks: the streamed chunk's model (SSE routes reference it), the key
    schemes, and no 422 responses (validation errors are 400 here, in the OpenAI shape)."""
    from jisik.serve.schemas import ChatCompletionChunk

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return dict(app.openapi_schema)
        schema: dict[str, Any] = generate()
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        chunk = ChatCompletionChunk.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in chunk.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas["ChatCompletionChunk"] = chunk
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                if not isinstance(operation, dict):
                    continue
                operation.get("responses", {}).pop("422", None)
                if path not in ("/healthz", "/readyz"):
                    operation["security"] = [{"bearer": []}, {"apiKey": []}, {}]  # {}: open mode on loopback
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def app_from_environment() -> Any:
    """The app a ``--workers N`` worker process builds, from the settings ``jisik serve`` put in the environment."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise ConfigError(f"{SETTINGS_ENV} is not set", hint="start workers with `jisik serve --workers N`")
    settings = ServerSettings.model_validate_json(raw)
    return create_app(settings, report=lambda line: log.info("[worker %d] %s", os.getpid(), line))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jisik")
    except PackageNotFoundError:
        return "0"


class _RequestLog:
    """Pure ASGI middleware: one JSON access-log line per request, and the body size limits (uploads and JSON),
    checked on Content-Length and again as the body arrives (a chunked body declares none).

    The line holds method, path (never the query string: it may hold a key someone pasted), status,
    milliseconds, the key's id and the knowledge base — no key, question or document text.
    """

    def __init__(self, app: Any, *, max_body: int, max_upload: int, worker_header: bool = False) -> None:
        from jisik.serve.errors import ApiError, error_json

        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload
        self._error, self._json = ApiError, error_json
        # with --workers N, which process answered (X-Jisik-Worker: pid) helps to read the logs of each
        self.worker = [(b"x-jisik-worker", str(os.getpid()).encode())] if worker_header else []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [0]
        path: str = scope.get("path", "")
        if scope.get("method") == "POST" and path.endswith("/documents"):
            limit, code, hint = self.max_upload, "upload_too_large", "upload fewer or smaller files, or raise " \
                                                                     "--max-upload-mb"
        else:
            limit, code, hint = self.max_body, "body_too_large", "send less, or raise --max-body-mb"
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            response = self._json(413, f"the request body is {int(declared):,} bytes; the limit is {limit:,}",
                                  code=code, hint=hint)
            await response(scope, receive, send)
            self._log(scope, 413, start)
            return
        seen = [0]

        async def counted_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    raise self._error(413, f"the request body is over the limit of {limit:,} bytes", code=code,
                                      hint=hint)
            return message

        async def logged_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                if self.worker:
                    message = {**message, "headers": [*message.get("headers", []), *self.worker]}
            await send(message)

        try:
            await self.app(scope, counted_receive, logged_send)
        finally:
            self._log(scope, status[0] or 499, start)  # 499: the client went away before an answer

    @staticmethod
    def _log(scope: dict[str, Any], status: int, start: float) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        state = scope.get("state") or {}
        path = scope.get("path", "")
        parts = path.split("/")
        kb = parts[3] if len(parts) > 3 and parts[1] == "api" and parts[2] == "kbs" else state.get("kb")
        access_log.info(json.dumps({"method": scope.get("method"), "path": path, "status": status,
                                    "ms": round((time.perf_counter() - start) * 1000, 1),
                                    "key": state.get("key_id"), "kb": kb}, ensure_ascii=False))


__all__ = ["ServerContext", "ServerSettings", "app_from_environment", "check_binding", "create_app",
           "is_loopback"]
