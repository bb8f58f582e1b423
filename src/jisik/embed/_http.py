"""A tiny JSON-over-HTTP helper on the standard library, shared by the server-backed embedders.

Standard library only, so talking to a local server adds no dependency to the core install.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from jisik.errors import EmbeddingError


def post_json(url: str, payload: dict[str, Any], *, headers: dict[str, str] | None = None,
              timeout: float = 60.0, service: str = "server", start_hint: str = "") -> Any:
    """POST ``payload`` as JSON and return the decoded JSON answer, or raise EmbeddingError."""
    body = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise EmbeddingError(f"{service} at {url} answered HTTP {exc.code}: {detail}",
                             hint="check the model name and the server log") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EmbeddingError(f"cannot reach {service} at {url}: {reason}",
                             hint=start_hint or f"start the {service} or fix the URL") from exc
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise EmbeddingError(f"{service} at {url} returned invalid JSON: {raw[:200]!r}") from exc
