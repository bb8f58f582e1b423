"""A real Milvus 2.3.5 standalone server for the tests, from the ``milvus`` package (which embeds the server
binary): one per test session, in a temporary folder, reached on 127.0.0.1, always stopped.

The embedded etcd of that binary listens on etcd's default ports (2379 and 2380 on localhost) whatever the
``milvus`` package configures, so a second server on the machine (a benchmark, a developer's own) would
make it crash at start; here it gets a configuration file of its own with free loopback ports. (Milvus 2.3's
own gRPC ports have no listen-address setting: they listen on every interface, on free ports the package
picks.)
"""

from __future__ import annotations

import contextlib
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers import free_port

START_TIMEOUT_S = 120.0
# Milvus's defaults suit throughput; the tests flush and search with strong consistency all the time. Measured on
# this server: a flush 2.0-2.5 s -> 0.5 s, a strong search 0.3-0.6 s -> 0.06 s. (Loading a new collection stays
# ~2 s: queryCoord's collection observer ticks once a second.) The server lives for one session, so the expiration
# Milvus warns about changing between restarts never changes here.
QUICK = {
    "proxy.timeTickInterval": 50,  # ms (200): a strong search waits for the next time tick
    "dataCoord.segment.assignmentExpiration": 200,  # ms (2000): a flush waits for the segment's assignments
}


@dataclass(frozen=True)
class MilvusServerInfo:
    uri: str
    version: str
    folder: Path


def _etcd_config(folder: Path) -> tuple[Path, int]:
    """An embedded-etcd configuration on two free loopback ports; returns its path and the client port."""
    client, peer = free_port(), free_port()
    path = folder / "etcd.yaml"
    path.write_text("\n".join([
        "name: jisik-test",
        f"listen-client-urls: http://127.0.0.1:{client}",
        f"advertise-client-urls: http://127.0.0.1:{client}",
        f"listen-peer-urls: http://127.0.0.1:{peer}",
        f"initial-advertise-peer-urls: http://127.0.0.1:{peer}",
        f"initial-cluster: jisik-test=http://127.0.0.1:{peer}",
        "", ]), encoding="utf-8")
    return path, client


def _log_tail(folder: Path) -> str:
    parts = []
    for name in ("milvus-stderr.log", "etcd.log"):
        log = folder / "logs" / name
        if log.exists():
            parts.append(f"--- {name}\n" + log.read_text("utf-8", "replace")[-1500:])
    return "\n".join(parts)


def _stop(server: Any) -> None:
    """Stop the server process, and be sure it is gone (the package gives it one second, then kills it)."""
    process = server.server_proc
    with contextlib.suppress(Exception):
        server.stop()
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def milvus_server() -> Iterator[MilvusServerInfo]:
    """Start the server in a temporary folder and wait until it answers; stop it when the block ends."""
    from milvus import MilvusServer
    from pymilvus import MilvusClient

    with tempfile.TemporaryDirectory(prefix="jisik-milvus-") as tmp:
        folder = Path(tmp)
        etcd, etcd_port = _etcd_config(folder)
        server = MilvusServer(wait_for_started=False)
        server.set_base_dir(str(folder))
        server.config.configs["etcd_port"] = etcd_port
        server.config.template_text = server.config.template_text.replace(
            "etcd:\n", f"etcd:\n  config:\n    path: {etcd}\n", 1)
        for key, value in QUICK.items():
            server.config.set(key, value)
        try:
            server.start()
            uri = f"http://127.0.0.1:{server.listen_port}"
            deadline = time.monotonic() + START_TIMEOUT_S
            version = ""
            while not version:
                if server.server_proc.poll() is not None:
                    raise RuntimeError(f"Milvus exited with {server.server_proc.returncode}:\n{_log_tail(folder)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Milvus did not answer within {START_TIMEOUT_S:.0f}s:\n{_log_tail(folder)}")
                try:
                    client = MilvusClient(uri=uri, timeout=5)
                    version = client.get_server_version()
                    client.close()
                except Exception:  # not up yet
                    time.sleep(0.5)
            yield MilvusServerInfo(uri=uri, version=version, folder=folder)
        finally:
            _stop(server)


@pytest.fixture(scope="session")
def milvus_uri() -> Iterator[str]:
    """The URI of the session's Milvus 2.3.5 server (started on first use)."""
    with milvus_server() as info:
        yield info.uri
