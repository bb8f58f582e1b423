"""Server-sent events from a blocking iterator (an answer being generated), freed when the client leaves.

The answer stream is synchronous (an LLM backend reading tokens, llama.cpp holding its lock). It runs
in its own thread, which hands pieces to the event loop. When the client disconnects, Starlette cancels
the response; the thread sees the stop flag at the next piece and closes the iterator *in its own
thread* (closing a generator that another thread is running raises), which ends the backend's
stream: its HTTP connection closes, llama.cpp's lock is released.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

log = logging.getLogger("jisik.serve")
T = TypeVar("T")

_ITEM, _END, _ERROR = 0, 1, 2


class StreamCounter:
    """How many streams are open right now (``/healthz`` shows it; tests check disconnects free them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0

    def add(self, delta: int) -> None:
        with self._lock:
            self.active += delta


async def iterate_in_thread(iterator: Iterator[T], counter: StreamCounter | None = None) -> AsyncIterator[T]:
    """Yield ``iterator``'s items without blocking the event loop; stop and close it if the consumer goes."""
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
    stop = threading.Event()

    def hand(kind: int, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(pieces.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed (server stopping): nobody is listening any more
            stop.set()

    def produce() -> None:
        try:
            for item in iterator:
                if stop.is_set():
                    break
                hand(_ITEM, item)
            else:
                hand(_END, None)
        except BaseException as exc:  # handed to the consumer, which decides what the client sees
            hand(_ERROR, exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            if counter is not None:
                counter.add(-1)

    if counter is not None:
        counter.add(1)
    threading.Thread(target=produce, name="jisik-stream", daemon=True).start()
    try:
        while True:
            kind, value = await pieces.get()
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value
    finally:
        stop.set()


def sse(data: Any, *, event: str | None = None) -> str:
    """One server-sent event.

    >>> sse({"text": "14일"})
    'data: {"text": "14일"}\\n\\n'
    >>> sse("[DONE]")
    'data: [DONE]\\n\\n'
    """
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(", ", ": "))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n"


def error_event(exc: Any, *, server_error: bool, event: str | None = None) -> str:
    """The event a stream sends when its backend fails after the 200 went out (OpenAI sends one too)."""
    return sse({"error": {"message": exc.message, "type": "server_error" if server_error else "invalid_request_error",
                          "code": exc.code, "hint": exc.hint}}, event=event)


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no buffering in nginx
