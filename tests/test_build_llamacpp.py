"""scripts/build_llamacpp.py: portable flags, a cache key that changes with them, and the installed copy."""

from __future__ import annotations

import importlib.util
import json
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_llamacpp", ROOT / "scripts" / "build_llamacpp.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flags_are_portable_and_keyed() -> None:
    script = _script()
    flags = script.cmake_args("x86_64")
    assert "-DGGML_NATIVE=OFF" in flags and "-DGGML_AVX2=ON" in flags
    assert not any(f.startswith(("-DGGML_AVX512", "-DGGML_AMX")) and f.endswith("=ON") for f in flags)
    assert script.build_key(flags) == script.build_key(list(flags))
    assert script.build_key(flags) != script.build_key([*flags[:-1], "-DGGML_AVX512=ON"])


def test_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = _script()
    monkeypatch.setenv("JISIK_WHEEL_CACHE", str(tmp_path))
    assert script.cache_root() == tmp_path
    assert script.cached_wheel(tmp_path) is None  # no build.json: an interrupted build is never reused


def test_the_suite_runs_the_portable_build() -> None:
    """scripts/test.sh installs llama-cpp-python from the script's own cache, not from pip's build."""
    try:
        dist = metadata.distribution("llama-cpp-python")
    except metadata.PackageNotFoundError:
        pytest.skip("llama-cpp-python is not installed (scripts/test.sh installs it)")
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    folder = Path(direct.get("url", "").removeprefix("file://")).parent
    build = json.loads((folder / "build.json").read_text()) if (folder / "build.json").is_file() else {}
    if not build:
        pytest.skip(f"llama-cpp-python was installed from {direct.get('url', 'an index')}, not by the script")
    assert "-DGGML_NATIVE=OFF" in build["cmake_args"] and build["version"] == dist.version
