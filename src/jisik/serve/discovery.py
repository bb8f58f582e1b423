"""``<kb>/server.json``: how a running ``jisik serve`` tells a ``jisik search`` on the same machine where it is.

A fresh ``jisik search`` spends seconds and hundreds of MB loading Kiwi and the embedder (docs/benchmarks.md,
"Cold start"); a server over the same knowledge base has them loaded already. So a server on a loopback
address writes, for each knowledge base it opened at start::

    {"url": "http://127.0.0.1:8080", "pid": 4242, "name": "manuals", "path": "/home/me/manuals",
     "started": 1764547200.0, "env": "<hash of the JISIK_SECTION__KEY overrides it runs with>"}

(atomically, mode 0600, best effort) and removes it at shutdown if it is still its own. The CLI uses it only
when the pid is alive, the path is the knowledge base it was asked about, the URL is on loopback and both
processes see the same ``JISIK_*__*`` settings overrides; anything else — or any error on the way — and it
searches in-process as before.

Standard library only: the CLI imports this module on every search, and importing an HTTP client would cost
the start-up time this saves.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jisik._atomic import atomic_write

DISCOVERY_FILE = "server.json"
API_KEY_ENV = "JISIK_API_KEY"  # sent as a bearer key when the server requires keys
TIMEOUT_SECONDS = 3.0  # a server still loading its models answers later than this: search in-process then
_ANSWER_ONLY = ("JISIK_ANSWER__", "JISIK_GUARD__")  # settings sections a search never reads
log = logging.getLogger("jisik.serve")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on (or only reaches) this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("::1"), is_loopback("[::1]")
    (True, True, True, True)
    >>> is_loopback("0.0.0.0"), is_loopback("10.0.0.5"), is_loopback("example.com")
    (False, False, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def env_fingerprint(environ: Mapping[str, str]) -> str:
    """A short hash of the ``JISIK_SECTION__KEY`` settings overrides (jisik.config) that can change a search:
    a server started with other overrides (another embedder, another ``k``) would answer differently than the
    CLI would. ``[answer]`` and ``[guard]`` only act on answers, so they do not count.

    >>> env_fingerprint({"HOME": "/root", "JISIK_GUARD__GROUNDING": "annotate"}) == env_fingerprint({})
    True
    >>> env_fingerprint({"JISIK_RETRIEVAL__K": "3"}) == env_fingerprint({"JISIK_RETRIEVAL__K": "4"})
    False
    """
    pairs = sorted((name, value) for name, value in environ.items()
                   if name.startswith("JISIK_") and "__" in name and not name.startswith(_ANSWER_ONLY))
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]


def server_url(address: Any) -> str:
    """The base URL of a listening socket's address (``socket.getsockname()``).

    >>> server_url(("127.0.0.1", 8080)), server_url(("::1", 8080, 0, 0))
    ('http://127.0.0.1:8080', 'http://[::1]:8080')
    """
    host, port = str(address[0]), int(address[1])
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def write(kb_path: Path, *, url: str, name: str, pid: int | None = None) -> Path | None:
    """Write ``kb_path/server.json`` (temp file + rename, mode 0600); the path, or None where it could not be
    written (a read-only folder: the CLI then simply searches in-process)."""
    folder = kb_path.resolve()
    target = folder / DISCOVERY_FILE
    body = {"url": url, "pid": os.getpid() if pid is None else pid, "name": name, "path": str(folder),
            "started": time.time(), "env": env_fingerprint(os.environ)}
    try:
        atomic_write(target, json.dumps(body, ensure_ascii=False).encode())  # mode 0600, like every temp file
    except OSError as exc:
        log.debug("could not write %s: %s", target, exc)
        return None
    return target


def remove(kb_path: Path, pid: int | None = None) -> None:
    """Remove ``kb_path/server.json`` if it still names process ``pid`` (default: this one)."""
    target = kb_path.resolve() / DISCOVERY_FILE
    found = _read(target)
    if found is None or found.get("pid") != (os.getpid() if pid is None else pid):
        return  # another server took over the knowledge base since: its file stays
    try:
        target.unlink()
    except OSError as exc:
        log.debug("could not remove %s: %s", target, exc)


@dataclass(frozen=True)
class Discovered:
    """A live server over the knowledge base the CLI was asked about."""

    url: str
    name: str
    pid: int


def find(kb_path: Path) -> tuple[Discovered | None, str]:
    """The server ``kb_path/server.json`` names, if it is usable; else None and why not (for ``--debug``)."""
    folder = kb_path.resolve()
    found = _read(folder / DISCOVERY_FILE)
    if found is None:
        return None, f"no readable {DISCOVERY_FILE}"
    url, name, pid, path = found.get("url"), found.get("name"), found.get("pid"), found.get("path")
    if not (isinstance(url, str) and isinstance(name, str) and isinstance(pid, int) and isinstance(path, str)):
        return None, f"{DISCOVERY_FILE} lacks url, name, pid or path"
    if path != str(folder):
        return None, f"{DISCOVERY_FILE} is about {path}"
    host = urllib.parse.urlsplit(url).hostname or ""
    if not url.startswith("http://") or not is_loopback(host):
        return None, f"{url} is not on loopback"
    if not process_alive(pid):
        return None, f"server process {pid} is gone"
    if found.get("env") != env_fingerprint(os.environ):
        return None, "the server runs with other JISIK_*__* settings overrides"
    return Discovered(url.rstrip("/"), name, pid), ""


def post_json(url: str, body: Mapping[str, Any], *, api_key: str | None = None,
              timeout: float = TIMEOUT_SECONDS) -> Any:
    """POST ``body`` as JSON; the decoded answer. Raises OSError (urllib's errors are OSErrors; a non-200
    answer is ``urllib.error.HTTPError``) or ValueError (not JSON)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=json.dumps(body, ensure_ascii=False).encode(), headers=headers,
                                     method="POST")
    # no proxy: a proxy from the environment would take a loopback request off this machine, or fail it
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout) as response:
        if response.status != 200:
            raise urllib.error.HTTPError(url, response.status, "not 200", response.headers, None)
        return json.loads(response.read())


def _read(target: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (``kill(pid, 0)``: EPERM means it does, owned by someone else)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


__all__ = ["DISCOVERY_FILE", "Discovered", "env_fingerprint", "find", "is_loopback", "post_json", "remove",
           "server_url", "write"]
