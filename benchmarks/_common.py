"""Helpers every benchmark script shares: exact package versions, the machine, the LangChain adapter."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from collections.abc import Iterable
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
