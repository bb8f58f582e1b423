"""Every error the server answers, in OpenAI's shape: ``{"error": {"message", "type", "code", "param", "hint"}}``.

The HTTP layer is the one place that turns :class:`~jisik.errors.JisikError` into status codes
(DESIGN.md style rule 5). A bug becomes a 500 whose body says only that, with a request id; the
traceback goes to the log, never to the client.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from jisik import errors

log = logging.getLogger("jisik.serve")

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "invalid_request_error", 405: "invalid_request_error", 409: "invalid_request_error",
         410: "invalid_request_error", 413: "invalid_request_error", 415: "invalid_request_error",
         422: "invalid_request_error", 429: "rate_limit_error", 500: "server_error", 503: "unavailable"}

# library errors → (status, code); the first matching class wins, so subclasses come first
_STATUS: list[tuple[type[errors.JisikError], int]] = [
    (errors.EmptyKnowledgeBaseError, 409),
    (errors.QueryError, 400),
    (errors.TemplateError, 500),
    (errors.ConfigError, 400),
    (errors.KnowledgeBaseNotFoundError, 404),
    (errors.StoreBusyError, 503),
    (errors.LLMUnavailableError, 503),
    (errors.GenerationError, 502),
    (errors.EmbeddingError, 503),
    (errors.MissingDependencyError, 503),
    (errors.IngestError, 400),
    (errors.LoaderError, 400),
]


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    hint: str | None = None


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorBody


class ApiError(Exception):
    """An error answer: raise it from a route or a dependency."""

    def __init__(self, status: int, message: str, *, code: str, param: str | None = None,
                 hint: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.hint = status, message, code, param, hint
        self.headers = headers


def not_found(what: str, name: str, *, code: str, hint: str | None = None) -> ApiError:
    return ApiError(404, f"no {what} named '{name}'", code=code, hint=hint)


def error_json(status: int, message: str, *, code: str | None, param: str | None = None,
               hint: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": TYPES.get(status, "invalid_request_error"), "code": code,
                      "param": param, "hint": hint}}
    return JSONResponse(body, status_code=status, headers=headers)


def status_of(exc: errors.JisikError) -> int:
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), 400)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """One line for pydantic's list of problems: the first, where it is, and how many more."""
    problems = exc.errors()
    if not problems:
        return "the request is not valid", None
    first = problems[0]
    loc = list(first.get("loc", ()))
    if loc and loc[0] in ("body", "query", "path", "header"):  # where it was; a field may be named "query"
        loc = loc[1:]
    location = [str(part) for part in loc]
    param = ".".join(location) or None
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON: " + str(first.get("ctx", {}).get("error", first["msg"])), None
    if first.get("type") == "missing":
        message = f"'{param}' is required"
    else:
        message = f"{first['msg']}" + (f" at '{param}'" if param else "")
        got = first.get("input")
        if got is not None and not isinstance(got, dict | list):
            message += f" (got {json.dumps(got, ensure_ascii=False, default=str)[:60]})"
    more = len(problems) - 1
    return message + (f"; and {more} more problem(s)" if more else ""), param


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the OpenAI shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_json(exc.status, exc.message, code=exc.code, param=exc.param, hint=exc.hint, headers=exc.headers)

    @app.exception_handler(errors.JisikError)
    async def _jisik_error(request: Request, exc: errors.JisikError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500 and status != 503:
            log.error("request failed: %s", exc)
        return error_json(status, exc.message, code=exc.code, hint=exc.hint)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return error_json(400, message, code="invalid_request", param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, ApiError):  # raised while the body arrived (too large): FastAPI wrapped it
            return await _api_error(request, exc.__cause__)
        messages = {404: f"no such endpoint: {request.method} {request.url.path}",
                    405: f"{request.method} is not allowed on {request.url.path}"}
        message = messages.get(exc.status_code, str(exc.detail))
        return error_json(exc.status_code, message, code={404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex[:12]
        log.exception("unexpected error in %s %s (request %s)", request.method, request.url.path, request_id)
        return error_json(500, f"internal error (request {request_id}); the server log has the details",
                          code="internal_error")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {400: "invalid request (bad JSON, wrong types, bad values)",
                                401: "missing, unknown, revoked or expired API key",
                                404: "no such knowledge base, model, document or job (or not visible to this key)",
                                413: "the request body is over the limit (--max-body-mb, --max-upload-mb)",
                                500: "a bug; the server log has the details"}.items()
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route: the common errors plus ``statuses``."""
    extra = {403: "this key's role does not allow it", 409: "conflict (exists already, or empty knowledge base)",
             410: "expired", 413: "too large", 503: "not ready, busy, or the LLM backend is down"}
    out = dict(ERROR_RESPONSES)
    for status in statuses:
        out[status] = {"model": ErrorResponse, "description": extra.get(status, "error")}
    return out
