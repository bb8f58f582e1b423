"""Check, before loading a model, that the installed llama.cpp build can run on this CPU.

A llama-cpp-python built from source with llama.cpp's default ``-march=native`` only runs on CPUs like the
one it was built on: an AVX-512 build dies with SIGILL on an AVX2-only CPU, and a native build on an Intel
Xeon with AMX crashes with a segmentation fault on the first generation (llama-cpp-python 0.3.36). Either
would kill the whole process, so the build is asked what it was compiled for in a child process, where a
crash is only a report, and the answer is compared with ``/proc/cpuinfo``.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from jisik.errors import LLMUnavailableError

# llama.cpp's CPU feature names (``llama_print_system_info``) -> the /proc/cpuinfo flag that provides them.
# Features that are not instruction sets (LLAMAFILE, OPENMP, REPACK, ...) are not listed and never checked.
FEATURE_FLAGS: Mapping[str, str] = {
    "SSE3": "pni", "SSSE3": "ssse3", "AVX": "avx", "AVX2": "avx2", "AVX_VNNI": "avx_vnni", "F16C": "f16c",
    "FMA": "fma", "BMI2": "bmi2", "AVX512": "avx512f", "AVX512_VBMI": "avx512vbmi", "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16", "AMX_INT8": "amx_int8",
}
# Features that make a build crash even on a CPU that has them (seen: native builds on AMX Xeons).
KNOWN_BAD = {"AMX_INT8": "AMX (a -march=native build on an AMX Xeon) crashes on the first generation"}

REBUILD_HINT = ("rebuild llama-cpp-python for any x86-64 CPU: python scripts/build_llamacpp.py --install "
                "(or CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" pip install --force-reinstall --no-cache-dir "
                "--no-binary llama-cpp-python llama-cpp-python); JISIK_LLAMACPP_TRUST_BUILD=1 skips this check")

_PROBE = "import llama_cpp, sys; sys.stdout.write(llama_cpp.llama_print_system_info().decode('utf-8', 'replace'))"


def build_features(system_info: str) -> dict[str, bool]:
    """CPU features a llama.cpp build was compiled with, from ``llama_print_system_info()``.

    >>> build_features("CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 0 | OPENMP = 1 | ")
    {'SSE3': True, 'AVX2': True, 'AVX512': False, 'OPENMP': True}
    """
    features: dict[str, bool] = {}
    for line in system_info.splitlines():
        if not line.strip().startswith("CPU"):
            continue
        for item in line.split(":", 1)[-1].split("|"):
            name, _, value = item.partition("=")
            if name.strip() and value.strip():
                features[name.strip()] = value.strip() not in ("0", "")
    return features


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The instruction-set flags of the first CPU in a ``/proc/cpuinfo`` text.

    >>> sorted(cpu_flags("processor : 0\\nflags\\t\\t: fpu avx2 fma\\n"))
    ['avx2', 'fma', 'fpu']
    """
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def build_problems(features: Mapping[str, bool], flags: frozenset[str]) -> list[str]:
    """Why a build with ``features`` cannot run on a CPU with ``flags`` (empty: it can).

    >>> build_problems({"AVX2": True, "AVX512": True}, frozenset({"avx2"}))
    ['built for AVX512, which this CPU lacks (no avx512f in /proc/cpuinfo)']
    >>> build_problems({"AVX2": True, "AVX512": False}, frozenset({"avx2"}))
    []
    """
    problems = [f"built for {name}, which this CPU lacks (no {flag} in /proc/cpuinfo)"
                for name, flag in FEATURE_FLAGS.items() if features.get(name) and flag not in flags]
    problems += [f"built with {name}: {why}" for name, why in KNOWN_BAD.items() if features.get(name)]
    return problems


def probe_system_info(python: str = sys.executable, timeout: float = 60.0) -> str:
    """Ask the installed llama-cpp-python what it was built for, in a child process.

    Raises :class:`LLMUnavailableError` when the child crashes (a signal) or fails: the library cannot
    even be loaded here.
    """
    try:
        result = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LLMUnavailableError(f"could not check the llama.cpp build: {exc}", hint=REBUILD_HINT) from exc
    if result.returncode < 0:
        name = signal.Signals(-result.returncode).name
        raise LLMUnavailableError(f"llama.cpp crashed with {name} while loading on this CPU", hint=REBUILD_HINT)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise LLMUnavailableError(f"llama.cpp could not be loaded: {last}", hint=REBUILD_HINT)
    return result.stdout


def _read_cpuinfo() -> str | None:
    path = Path("/proc/cpuinfo")
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None  # not Linux: nothing to compare against


@functools.cache
def check_llamacpp_build() -> None:
    """Raise :class:`LLMUnavailableError` (one line, with the rebuild command) when the build cannot run here.

    Done once per process; skipped when ``JISIK_LLAMACPP_TRUST_BUILD=1`` or where there is no
    ``/proc/cpuinfo`` to compare with.
    """
    if os.environ.get("JISIK_LLAMACPP_TRUST_BUILD") == "1":
        return
    cpuinfo = _read_cpuinfo()
    if cpuinfo is None:
        return
    problems = build_problems(build_features(probe_system_info()), cpu_flags(cpuinfo))
    if problems:
        raise LLMUnavailableError("this llama.cpp build cannot run on this CPU: " + "; ".join(problems),
                                  hint=REBUILD_HINT)
