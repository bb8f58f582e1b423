"""Streaming JSON-over-HTTP on the standard library, shared by the server-backed LLMs.

Two stream formats are spoken by the servers we support:

- NDJSON (Ollama): one JSON object per line; the last one has ``"done": true``.
- Server-sent events (OpenAI and every server that copies it): ``data: {json}`` lines separated
  by blank lines, ending with ``data: [DONE]``. Comment lines (``: ping``) are skipped.

Every failure becomes a typed error: the server cannot be reached or is too slow →
:class:`LLMUnavailableError` (with the caller's hint on how to start it); an HTTP error status →
whatever the caller's ``on_status`` makes of it, else a :class:`GenerationError` quoting the server;
a line that is not JSON, an error reported inside the stream, or a stream that stops before its
end marker → :class:`LLMResponseError`, naming the line.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Generic, TypeVar

from jisik.errors import GenerationError, LLMResponseError, LLMUnavailableError

OnStatus = Callable[[int, str], GenerationError | None]
T = TypeVar("T")


class Probed(Generic[T]):
    """A server setting (context window, model id) given up front or read from the server once, on first use.

    >>> calls = []
    >>> window = Probed(lambda: calls.append(1) or 8192)
    >>> window.get(), window.get(), len(calls)
    (8192, 8192, 1)
    >>> Probed(lambda: 1 / 0, 4096).get()
    4096
    """

    def __init__(self, probe: Callable[[], T], value: T | None = None) -> None:
        self._probe = probe
        self.value = value
        self._lock = threading.Lock()

    def get(self) -> T:
        if self.value is None:
            with self._lock:  # several threads asking at once still probe only once
                if self.value is None:
                    self.value = self._probe()
        return self.value


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Who we talk to, for error messages: ``service`` names it, ``start_hint`` says how to start it."""

    service: str
    start_hint: str
    timeout: float = 120.0
    headers: tuple[tuple[str, str], ...] = ()
    on_status: OnStatus | None = None


def error_detail(body: str) -> str:
    """The human part of an error body: OpenAI's ``error.message``, Ollama's ``error``, FastAPI's ``detail``.

    >>> error_detail('{"error": "model \\'x\\' not found"}')
    "model 'x' not found"
    >>> error_detail('{"error": {"message": "bad key", "type": "auth"}}')
    'bad key'
    >>> error_detail('<html>oops</html>')
    '<html>oops</html>'
    """
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:300]
    if isinstance(data, dict):
        for key in ("error", "detail", "message"):
            value = data.get(key)
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
            if isinstance(value, str):
                return value
    return body.strip()[:300]


def _status_error(status: int, detail: str, url: str, endpoint: Endpoint) -> GenerationError:
    custom = endpoint.on_status(status, detail) if endpoint.on_status else None
    if custom is not None:
        return custom
    message = f"{endpoint.service} at {url} answered HTTP {status}: {detail}"
    if status in (401, 403):
        return LLMUnavailableError(message, hint="check the API key (llm.api_key_env names its variable)")
    if status == 404:
        return LLMUnavailableError(message, hint="check the URL and the model name (llm.url, llm.model)")
    return GenerationError(message, hint="see the server's log")


@contextlib.contextmanager
def request(url: str, endpoint: Endpoint, payload: dict[str, Any] | None = None) -> Iterator[IO[bytes]]:
    """Open ``url`` (POST ``payload`` as JSON, or GET when it is ``None``) and yield the response body."""
    body = None if payload is None else json.dumps(payload).encode("utf-8")
    req = urllib.request.Request(url, data=body, method="GET" if payload is None else "POST")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    for key, value in endpoint.headers:
        req.add_header(key, value)
    try:
        response = urllib.request.urlopen(req, timeout=endpoint.timeout)
    except urllib.error.HTTPError as exc:
        detail = error_detail(exc.read().decode("utf-8", "replace"))
        exc.close()
        raise _status_error(exc.code, detail, url, endpoint) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LLMUnavailableError(f"cannot reach {endpoint.service} at {url}: {reason}",
                                  hint=endpoint.start_hint) from exc
    with response:
        yield response


def get_json(url: str, endpoint: Endpoint) -> Any:
    """GET ``url`` and decode its JSON answer."""
    return _whole(url, endpoint, None)


def post_json(url: str, endpoint: Endpoint, payload: dict[str, Any]) -> Any:
    """POST ``payload`` and decode the JSON answer (a non-streamed request)."""
    return _whole(url, endpoint, payload)


def _whole(url: str, endpoint: Endpoint, payload: dict[str, Any] | None) -> Any:
    with request(url, endpoint, payload) as response:
        raw = _read(lambda: response.read(), url, endpoint)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise LLMResponseError(f"{endpoint.service} at {url} returned invalid JSON: {raw[:200]!r}",
                               hint="is the URL that of the right server?") from exc


def _read(read: Callable[[], bytes], url: str, endpoint: Endpoint) -> bytes:
    try:
        return read()
    except TimeoutError as exc:
        raise LLMUnavailableError(f"{endpoint.service} at {url} sent nothing for {endpoint.timeout:g}s",
                                  hint="raise llm.timeout or use a smaller model") from exc
    except (OSError, http.client.HTTPException) as exc:  # connection reset, incomplete chunked body, ...
        raise LLMResponseError(f"{endpoint.service} at {url}: stream ended early (connection lost: {exc!r})",
                               hint="the server may have crashed or been stopped; see its log") from exc


def _lines(response: IO[bytes], url: str, endpoint: Endpoint) -> Iterator[str]:
    iterator = iter(response)
    while True:
        raw = _read(lambda: next(iterator, b""), url, endpoint)
        if not raw:
            return
        yield raw.decode("utf-8", "replace").rstrip("\r\n")


def _parse(line: str, number: int, url: str, endpoint: Endpoint) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        raise LLMResponseError(f"{endpoint.service} at {url} sent an invalid stream line {number}: {line[:200]!r}",
                               hint="is the URL that of the right server?")
    error = obj.get("error")
    if error:
        detail = error_detail(json.dumps({"error": error}))
        raise LLMResponseError(f"{endpoint.service} reported an error mid-stream (line {number}): {detail}",
                               hint="see the server's log")
    return obj


def ndjson_events(response: IO[bytes], url: str, endpoint: Endpoint, *,
                  is_last: Callable[[dict[str, Any]], bool]) -> Iterator[dict[str, Any]]:
    """Decode an NDJSON stream, stopping after the object ``is_last`` accepts.

    Raises :class:`LLMResponseError` on a line that is not a JSON object, on ``{"error": ...}``
    and when the stream ends before its last object.
    """
    return _ndjson(_lines(response, url, endpoint), url, endpoint, is_last)


def _ndjson(lines: Iterable[str], url: str, endpoint: Endpoint,
            is_last: Callable[[dict[str, Any]], bool]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        obj = _parse(line, number, url, endpoint)
        yield obj
        if is_last(obj):
            return
    raise LLMResponseError(f"{endpoint.service} at {url}: stream ended early (no final 'done' object)",
                           hint="the server may have crashed or been stopped; see its log")


def sse_events(response: IO[bytes], url: str, endpoint: Endpoint, *,
               complete: Callable[[], bool] = lambda: False) -> Iterator[dict[str, Any]]:
    """Decode a server-sent-events stream of JSON ``data:`` payloads up to ``data: [DONE]``.

    A stream that closes without ``[DONE]`` raises :class:`LLMResponseError` unless ``complete()``
    says the caller already saw everything it needs (a server that omits the marker).
    """
    return _sse(_lines(response, url, endpoint), url, endpoint, complete)


def _sse(lines: Iterable[str], url: str, endpoint: Endpoint, complete: Callable[[], bool]) -> Iterator[dict[str, Any]]:
    """The SSE parser, on lines.

    >>> ep = Endpoint("server", "start it")
    >>> lines = [": ping", 'data: {"a": 1}', "", "data: [DONE]", ""]
    >>> list(_sse(lines, "u", ep, lambda: False))
    [{'a': 1}]
    >>> list(_sse(['data: {"a": 1}', ""], "u", ep, lambda: False))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    jisik.errors.LLMResponseError: server at u: stream ended early (no 'data: [DONE]') ...
    """
    data: list[str] = []
    event = ""
    first = 0
    for number, line in enumerate(lines, 1):
        if line == "":  # end of one event
            if data:
                payload = "\n".join(data)
                if payload.strip() == "[DONE]":
                    return
                if event == "error":
                    raise LLMResponseError(f"{endpoint.service} reported an error mid-stream (line {first}): "
                                           f"{error_detail(payload)}", hint="see the server's log")
                yield _parse(payload, first, url, endpoint)
            data, event = [], ""
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            if not data:
                first = number
            data.append(value)
        elif field == "event":
            event = value
    if data and "\n".join(data).strip() == "[DONE]":
        return
    if data:  # a last event without its blank line: only complete if it parses
        yield _parse("\n".join(data), first, url, endpoint)
    if not complete():
        raise LLMResponseError(f"{endpoint.service} at {url}: stream ended early (no 'data: [DONE]')",
                               hint="the server may have crashed or been stopped; see its log")
