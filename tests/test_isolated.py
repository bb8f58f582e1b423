"""The ``isolated`` marker: a test that crashes the interpreter fails alone, with its name and the signal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

INNER = '''
import os, signal, pytest

@pytest.mark.isolated
def test_crashes():
    os.kill(os.getpid(), signal.SIGSEGV)

@pytest.mark.isolated
def test_passes():
    assert 1 + 1 == 2

@pytest.mark.isolated
def test_fails():
    assert "left" == "right"

@pytest.mark.isolated
def test_skips():
    pytest.skip("no model here")

def test_after_the_crash():
    assert True
'''


def test_a_crash_fails_one_test_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("JISIK_ISOLATED_CHILD", None)
    result = subprocess.run([sys.executable, "-m", "pytest", "test_inner.py", "-p", "tests.isolated", "-o", "addopts=",
                             "-o", "markers=isolated: child", "-rA", "-q", "-p", "no:cacheprovider"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "2 failed, 2 passed, 1 skipped" in out, out
    assert "FAILED test_inner.py::test_crashes" in out and "crashed with SIGSEGV" in out, out
    assert "Fatal Python error: Segmentation fault" in out  # faulthandler's dump from the child
    assert "FAILED test_inner.py::test_fails" in out and "left" in out, out
    assert "PASSED test_inner.py::test_after_the_crash" in out and "no model here" in out, out


def test_an_isolated_test_last_in_its_module_tears_the_module_down(tmp_path: Path) -> None:
    """Module fixtures set up here for earlier tests are torn down after an isolated last test; before, the next
    module's first test failed with "previous item was not torn down properly"."""
    (tmp_path / "test_a.py").write_text(
        "import pytest\n\n@pytest.fixture(scope='module')\ndef resource():\n    yield 1\n\n"
        "def test_uses(resource):\n    assert resource == 1\n\n"
        "@pytest.mark.isolated\ndef test_last():\n    assert True\n")
    (tmp_path / "test_b.py").write_text("def test_first():\n    assert True\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("JISIK_ISOLATED_CHILD", None)
    result = subprocess.run([sys.executable, "-m", "pytest", "test_a.py", "test_b.py", "-p", "tests.isolated", "-o",
                             "addopts=", "-o", "markers=isolated: child", "-q", "-p", "no:cacheprovider"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "3 passed" in result.stdout, result.stdout + result.stderr
