"""Helpers every benchmark script shares: exact package versions, the machine, the LangChain adapter."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Installed version of each distribution, or "not installed"."""
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> dict[str, Any]:
    """Python, platform, CPUs, load average (the box is shared) and memory."""
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpus": os.cpu_count(), "load_average": [round(x, 1) for x in os.getloadavg()]}
    try:  # the CPU model: machines of one kind differ (AMD EPYC, Intel Xeon with AVX-512)
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
        info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu_model"] = platform.processor() or "unknown"
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return info


def langchain_embeddings(embedder: Any) -> Any:
    """A LangChain ``Embeddings`` over a jisik embedder, so both frameworks embed with the same engine."""
    from langchain_core.embeddings import Embeddings

    class JisikEmbeddings(Embeddings):
        """LangChain adapter over the same jisik embedder (the engine adds the e5 prefixes)."""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed_documents(texts).tolist()  # type: ignore[no-any-return]

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed_queries([text])[0].tolist()  # type: ignore[no-any-return]

    return JisikEmbeddings()


@contextlib.contextmanager
def llama_server(gguf: Path, *, n_ctx: int, log_path: Path, alias: str = "model", threads: int | None = None,
                 chat_format: str | None = None, log: Callable[[str], None] = print) -> Iterator[str]:
    """``python -m llama_cpp.server`` on loopback for ``gguf`` (output to ``log_path``); yields the /v1 URL once
    ``/v1/models`` answers; stops the server on exit."""
    from jisik.testing.server import free_port

    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", str(n_ctx), "--model_alias", alias]
    if threads:
        command += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    if chat_format:
        command += ["--chat_format", chat_format]
    with log_path.open("w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + 180
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"llama_cpp.server exited ({process.returncode}); see {log_path}")
                try:
                    with urllib.request.urlopen(f"{url}/models", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("llama_cpp.server did not start in 180 s") from None
                    time.sleep(0.5)
            log(f"llama_cpp.server up at {url} (pid {process.pid})")
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
