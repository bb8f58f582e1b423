#!/usr/bin/env python3
"""Build llama-cpp-python so that it runs on every x86-64 machine of this kind, and install it.

Why: pip builds llama-cpp-python from source with llama.cpp's default ``GGML_NATIVE=ON`` (``-march=native``).
That build is tied to the CPU it was made on (an AVX-512 build dies with SIGILL on an AVX2-only CPU), and a
native build on Intel Xeons with AMX crashes with a segmentation fault on the first generation. Worse, pip
caches built wheels by name and version only, so a native wheel made on one machine is silently reused on
another. This script:

1. builds with ``GGML_NATIVE=OFF`` and the instruction sets named explicitly (x86-64-v3: SSE4.2, AVX, AVX2,
   FMA, F16C, BMI2; no AVX-512, no AMX), which every AMD EPYC (Zen 2 and later) and Intel Xeon (Haswell and
   later) runs; measured on AMD EPYC Zen 4: as fast as the native build (see docs/backends.md);
2. keeps the wheel in its own cache, keyed by the package version, the CMake flags, the Python tag, the
   machine architecture and the compiler (``~/.cache/jisik/wheels`` or ``$JISIK_WHEEL_CACHE``); pip's own
   wheel cache is never read (``--no-cache-dir``), so a native wheel left there by anyone cannot be picked up;
3. with ``--install``, installs exactly that wheel (again when the installed copy came from anywhere else).

Usage::

    python scripts/build_llamacpp.py --install --extras server   # what scripts/test.sh runs
    python scripts/build_llamacpp.py --print-key                  # the cache key and flags, builds nothing
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

VERSION = "0.3.36"
PACKAGE = "llama-cpp-python"

# x86-64-v3, named flag by flag so the build never depends on the CPU it runs on.
X86_64_FLAGS = [
    "-DGGML_NATIVE=OFF",
    "-DGGML_SSE42=ON", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_BMI2=ON",
    "-DGGML_AVX_VNNI=OFF", "-DGGML_AVX512=OFF", "-DGGML_AVX512_VBMI=OFF", "-DGGML_AVX512_VNNI=OFF",
    "-DGGML_AVX512_BF16=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF",
]
# jisik uses text models only: skipping the multimodal (mtmd/llava) library saves about a third of the build.
COMMON_FLAGS = ["-DLLAVA_BUILD=OFF"]


def cmake_args(machine: str) -> list[str]:
    """The CMake flags for ``machine`` (``platform.machine()``).

    >>> cmake_args("x86_64")[:2]
    ['-DGGML_NATIVE=OFF', '-DGGML_SSE42=ON']
    >>> cmake_args("aarch64")
    ['-DGGML_NATIVE=OFF', '-DLLAVA_BUILD=OFF']
    """
    isa = X86_64_FLAGS if machine in ("x86_64", "AMD64") else ["-DGGML_NATIVE=OFF"]
    return [*isa, *COMMON_FLAGS]


def compiler_id() -> str:
    """First line of ``cc --version`` (a compiler upgrade gets a fresh build), or ``unknown``."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return "unknown"
    try:
        out = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.splitlines()[0].strip() if out else "unknown"


def build_key(args: list[str]) -> str:
    """A short hash of everything that changes the built binary."""
    parts = {"package": PACKAGE, "version": VERSION, "cmake_args": args, "python": sys.implementation.cache_tag,
             "machine": platform.machine(), "compiler": compiler_id()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def cache_root() -> Path:
    env = os.environ.get("JISIK_WHEEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "jisik" / "wheels"


def cached_wheel(folder: Path) -> Path | None:
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    return wheels[0] if wheels and (folder / "build.json").is_file() else None


def build(folder: Path, args: list[str]) -> Path:
    env = dict(os.environ, CMAKE_ARGS=" ".join(args), FORCE_CMAKE="1",
               CMAKE_BUILD_PARALLEL_LEVEL=os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2)))
    started = time.monotonic()
    print(f"building {PACKAGE} {VERSION} from source (about 10 minutes on 2 cores)\n  CMAKE_ARGS={env['CMAKE_ARGS']}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="llama-build-") as tmp:
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--no-binary", PACKAGE,
                   "-w", tmp, f"{PACKAGE}=={VERSION}"]
        result = subprocess.run(command, env=env)
        if result.returncode != 0:
            sys.exit(f"error: building {PACKAGE} failed (exit {result.returncode}); see the compiler output above")
        built = sorted(Path(tmp).glob("llama_cpp_python-*.whl"))
        if not built:
            sys.exit(f"error: pip wheel produced no wheel in {tmp}")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / built[0].name
        shutil.move(str(built[0]), target.with_suffix(".part"))
        os.replace(target.with_suffix(".part"), target)
    seconds = time.monotonic() - started
    info = {"package": PACKAGE, "version": VERSION, "cmake_args": args, "python": sys.implementation.cache_tag,
            "machine": platform.machine(), "compiler": compiler_id(), "build_seconds": round(seconds),
            "wheel_sha256": hashlib.sha256(target.read_bytes()).hexdigest()}
    (folder / "build.json").write_text(json.dumps(info, indent=2) + "\n")  # last: marks the folder complete
    print(f"built {target.name} in {seconds / 60:.1f} min -> {folder}", flush=True)
    return target


def installed_from(wheel: Path) -> bool:
    """Whether the installed llama-cpp-python was installed from exactly this wheel file."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        return False
    direct = dist.read_text("direct_url.json")
    if not direct or dist.version != VERSION:
        return False
    return bool(json.loads(direct).get("url") == wheel.resolve().as_uri())


def install(wheel: Path, extras: str) -> None:
    spec = f"{wheel}[{extras}]" if extras else str(wheel)
    if installed_from(wheel):
        print(f"{PACKAGE} {VERSION} already installed from {wheel.name}")
        # the extras' dependencies may still be missing; this installs only what is absent
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", spec], check=True)
        return
    # --force-reinstall: replace a copy that pip built (natively) or took from its cache
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
                   check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", spec], check=True)
    print(f"installed {PACKAGE} {VERSION} from {wheel}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--install", action="store_true", help="install the built wheel into this Python")
    parser.add_argument("--extras", default="", help="extras to install with it, e.g. server")
    parser.add_argument("--rebuild", action="store_true", help="build again even when the cache has the wheel")
    parser.add_argument("--print-key", action="store_true", help="print the cache folder and flags, build nothing")
    options = parser.parse_args()
    args = cmake_args(platform.machine())
    folder = cache_root() / f"{PACKAGE}-{VERSION}-{build_key(args)}"
    if options.print_key:
        print(json.dumps({"folder": str(folder), "cmake_args": args}, indent=2))
        return
    wheel = None if options.rebuild else cached_wheel(folder)
    if wheel is None:
        shutil.rmtree(folder, ignore_errors=True)
        wheel = build(folder, args)
    else:
        print(f"using cached {wheel.name} ({folder})")
    if options.install:
        install(wheel, options.extras)


if __name__ == "__main__":
    main()
