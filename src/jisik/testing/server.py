"""Start a real ``jisik serve`` process on loopback for tests and benchmarks.

>>> with running_server({"manuals": Path("kb")}, state_db=Path("server.db")) as server:  # doctest: +SKIP
...     httpx.get(server.url("/v1/models")).json()
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServerProcess:
    """A running server: its base URL, the process and the file its output goes to."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_seconds: float

    def url(self, path: str) -> str:
        return self.base_url + path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def wait_ready(base_url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> float:
    """Poll ``/readyz`` until it answers 200; seconds it took. Raises with the server's output otherwise."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"jisik serve exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(base_url + "/readyz", timeout=2) as response:
                if response.status == 200 and json.loads(response.read()).get("ready"):
                    return time.perf_counter() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"jisik serve was not ready after {timeout:.0f} s:\n{log_path.read_text(errors='replace')}")


@contextmanager
def running_server(kbs: Mapping[str, Path], *, state_db: Path, args: Sequence[str] = (),
                   env: Mapping[str, str] | None = None, host: str = "127.0.0.1", port: int | None = None,
                   timeout: float = 120.0) -> Iterator[ServerProcess]:
    """``jisik serve --kb NAME=PATH ...`` on ``host``:``port`` (a free one by default) until the block ends.

    The server's stdout and stderr go to ``<state_db>.log``; it is stopped with SIGTERM (graceful shutdown)
    and killed if it has not exited 30 s later.
    """
    port = port or free_port()
    command = [sys.executable, "-m", "jisik", "serve", "--host", host, "--port", str(port),
               "--state-db", str(state_db)]
    for name, path in kbs.items():
        command += ["--kb", f"{name}={path}"]
    command += list(args)
    log_path = state_db.with_suffix(".log")
    log_file = log_path.open("wb")
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    # a server on every interface is reached through loopback
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "::1": "[::1]"}.get(host, host)
    base_url = f"http://{shown}:{port}"
    try:
        ready = wait_ready(base_url, process, log_path, timeout)
        yield ServerProcess(base_url, process, log_path, ready)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log_file.close()
