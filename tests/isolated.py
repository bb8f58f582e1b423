"""Run tests marked ``@pytest.mark.isolated`` in a child pytest process, one child per test.

Such tests load native model code (llama.cpp in process) that can crash the interpreter with a signal on a
CPU the build does not suit. In a child, a crash fails that one test with its name, the signal and the
child's last output (Python's faulthandler prints where it happened), and the rest of the run goes on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _pytest.reports import TestReport

CHILD_ENV = "JISIK_ISOLATED_CHILD"
CHILD_TIMEOUT = 900


def _child_command(item: pytest.Item, junit: Path) -> list[str]:
    return [sys.executable, "-X", "faulthandler", "-m", "pytest", item.nodeid, "-q", "--no-header",
            "-p", "no:cacheprovider", "-o", "addopts=", f"--junitxml={junit}"]


def _outcome(junit: Path, returncode: int, output: str) -> tuple[str, str | None]:
    """(outcome, message) for the child's run: passed, failed or skipped."""
    tail = output[-4000:]
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return "failed", f"crashed with {name} (native code) in its child process; its last output:\n{tail}"
    try:
        case = ET.parse(junit).getroot().find(".//testcase")
    except (OSError, ET.ParseError):
        case = None
    if case is None:
        return "failed", f"the child pytest (exit {returncode}) ran no test; its output:\n{tail}"
    for tag in ("failure", "error"):
        found = case.find(tag)
        if found is not None:
            return "failed", f"{found.get('message', '')}\n{found.text or ''}\n{tail}"
    skipped = case.find("skipped")
    if skipped is not None:
        return "skipped", skipped.get("message", "skipped in the child process")
    return "passed", None


def run_in_child(item: pytest.Item) -> list[TestReport]:
    """Setup, call and teardown reports for ``item`` run in a fresh interpreter."""
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="isolated-") as tmp:
        junit = Path(tmp) / "result.xml"
        env = dict(os.environ, **{CHILD_ENV: "1"})
        try:
            result = subprocess.run(_child_command(item, junit), cwd=item.config.rootpath, env=env,
                                    capture_output=True, text=True, timeout=CHILD_TIMEOUT)
            outcome, message = _outcome(junit, result.returncode, result.stdout + result.stderr)
        except subprocess.TimeoutExpired as exc:
            outcome, message = "failed", f"its child process ran past {CHILD_TIMEOUT}s: {exc}"
    stopped = time.time()
    path, lineno, _ = item.location
    common = {"nodeid": item.nodeid, "location": item.location, "keywords": dict.fromkeys(item.keywords, 1),
              "start": started, "stop": stopped}
    if outcome == "skipped":
        reports = [TestReport(outcome="skipped", longrepr=(path, (lineno or 0) + 1, f"Skipped: {message}"),
                              when="setup", duration=stopped - started, **common)]
    else:
        reports = [TestReport(outcome="passed", longrepr=None, when="setup", **common),
                   TestReport(outcome=outcome, longrepr=message, when="call", duration=stopped - started, **common)]
    reports.append(TestReport(outcome="passed", longrepr=None, when="teardown", **common))
    return reports


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if item.get_closest_marker("isolated") is None or os.environ.get(CHILD_ENV):
        return None
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in run_in_child(item):
        item.ihook.pytest_runtest_logreport(report=report)
    # Fixtures this process set up for earlier tests (module- or class-scoped) are torn down as the normal
    # protocol would: without this, an isolated test that is last in its module left the module's fixtures set
    # up, and the next module's first test failed with "previous item was not torn down properly".
    item.session._setupstate.teardown_exact(nextitem)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
