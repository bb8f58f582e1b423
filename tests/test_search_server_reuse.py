"""``jisik search`` reuses a running ``jisik serve`` over the same knowledge base (issue 14, cold start).

The server leaves ``<kb>/server.json``; the CLI, a real ``jisik`` process here, sends its search there and
prints what it would have printed in-process. Which way it went: ``jisik --debug search`` says so on stderr,
and the server's request log shows the ``/api/kbs/<name>/search`` request. Servers use the hashing embedder.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jisik.serve import discovery
from jisik.testing.server import ServerProcess, free_port, running_server
from tests.conftest import SAMPLE_DOCS
from tests.helpers import FAKE_EMBEDDER, run_jisik

QUERY = "반품 기간은 며칠인가요?"
VIA_SERVER = "debug: searched via the server"
IN_PROCESS = "debug: searching in-process"


def make_kb(path: Path) -> Path:
    assert run_jisik("init", str(path), env=FAKE_EMBEDDER).returncode == 0
    result = run_jisik("ingest", str(SAMPLE_DOCS), "--kb", str(path), env=FAKE_EMBEDDER)
    assert result.returncode == 0, result.stderr
    return path


def search(kb: Path, *args: str, env: dict[str, str] | None = None,
           debug: bool = True) -> subprocess.CompletedProcess[str]:
    """``jisik --debug search ... --kb KB`` (``--debug`` says which way the search went; it also shows
    tracebacks instead of error messages)."""
    return run_jisik(*(["--debug"] if debug else []), "search", *args, "--kb", str(kb),
                     env={**FAKE_EMBEDDER, **(env or {})})


def search_requests(server: ServerProcess, name: str) -> int:
    return sum(f'"path": "/api/kbs/{name}/search"' in line for line in server.log().splitlines())


def wait_for_requests(server: ServerProcess, name: str, count: int) -> int:
    """The request log line is written just after the answer is sent: give it a moment."""
    deadline = time.monotonic() + 10
    while search_requests(server, name) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return search_requests(server, name)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_kb(tmp_path_factory.mktemp("reuse") / "manuals")


@pytest.fixture(scope="module")
def server(kb: Path) -> Iterator[ServerProcess]:
    with running_server({"manuals": kb}, state_db=kb.parent / "server.db", env=FAKE_EMBEDDER) as process:
        yield process


def test_server_json_names_the_running_server(server: ServerProcess, kb: Path) -> None:
    target = kb / discovery.DISCOVERY_FILE
    found = json.loads(target.read_text(encoding="utf-8"))
    assert found["pid"] == server.process.pid
    assert found["url"] == server.base_url
    assert found["path"] == str(kb.resolve()) and found["name"] == "manuals"
    assert abs(found["started"] - time.time()) < 600
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.parametrize("args", [(), ("--json",), ("--mode", "bm25", "-k", "2", "--json"),
                                  ("--mode", "hybrid", "--fusion", "rrf", "--filter", "source=*반품*", "--json"),
                                  ("--mode", "mmr", "--lambda", "0.3", "--fetch-k", "8", "--json")])
def test_search_is_answered_by_the_server_with_the_same_output(server: ServerProcess, kb: Path,
                                                               args: tuple[str, ...]) -> None:
    before = search_requests(server, "manuals")
    reused = search(kb, QUERY, *args)
    assert reused.returncode == 0, reused.stderr
    assert VIA_SERVER in reused.stderr and f"pid {server.process.pid}" in reused.stderr
    assert wait_for_requests(server, "manuals", before + 1) == before + 1
    local = search(kb, QUERY, *args, "--no-server")
    assert local.returncode == 0, local.stderr
    assert VIA_SERVER not in local.stderr
    assert reused.stdout == local.stdout and reused.stdout.strip()


def test_rerank_and_other_settings_search_in_process(server: ServerProcess, kb: Path) -> None:
    before = search_requests(server, "manuals")
    reranked = search(kb, QUERY, "--rerank", "none", "--json")  # the API has no rerank option
    assert reranked.returncode == 0, reranked.stderr and VIA_SERVER not in reranked.stderr
    other = search(kb, QUERY, "--json", env={"JISIK_RETRIEVAL__K": "1"})  # the server runs without it
    assert other.returncode == 0 and "other JISIK_*__* settings overrides" in other.stderr
    assert len(json.loads(other.stdout)) == 1
    assert search_requests(server, "manuals") == before


def test_a_query_the_server_refuses_gets_the_in_process_message(server: ServerProcess, kb: Path) -> None:
    before = search_requests(server, "manuals")
    reused = search(kb, QUERY, "--filter", "nonsense", debug=False)
    local = search(kb, QUERY, "--filter", "nonsense", "--no-server", debug=False)
    assert wait_for_requests(server, "manuals", before + 1) == before + 1  # asked, answered 400, fell back
    assert '"status": 400' in server.log().splitlines()[-1]
    assert reused.returncode == local.returncode == 1
    assert reused.stderr == local.stderr and "error: cannot read filter 'nonsense'" in reused.stderr
    assert reused.stdout == local.stdout == ""


@pytest.mark.parametrize("case", ["dead pid", "nobody listening", "other path", "not loopback", "not json"])
def test_an_unusable_server_json_falls_back_to_in_process(tmp_path: Path, kb: Path, case: str) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(kb, copy, ignore=shutil.ignore_patterns(discovery.DISCOVERY_FILE))
    body = {"url": f"http://127.0.0.1:{free_port()}", "pid": os.getpid(), "name": "copy", "path": str(copy.resolve()),
            "started": time.time(), "env": discovery.env_fingerprint({**os.environ, **FAKE_EMBEDDER})}
    body.update({"dead pid": {"pid": dead_pid()}, "nobody listening": {}, "other path": {"path": str(kb.resolve())},
                 "not loopback": {"url": "http://192.0.2.1:8080"}, "not json": {}}[case])
    text = "{not json" if case == "not json" else json.dumps(body)
    (copy / discovery.DISCOVERY_FILE).write_text(text, encoding="utf-8")
    result = search(copy, QUERY, "--json")
    assert result.returncode == 0, result.stderr
    assert IN_PROCESS in result.stderr and json.loads(result.stdout)
    expected = search(copy, QUERY, "--json", "--no-server")
    assert result.stdout == expected.stdout


def test_workers_write_one_file_for_the_parent_and_remove_it_at_shutdown(tmp_path: Path, kb: Path) -> None:
    copy = tmp_path / "help"
    shutil.copytree(kb, copy, ignore=shutil.ignore_patterns(discovery.DISCOVERY_FILE))
    target = copy / discovery.DISCOVERY_FILE
    with running_server({"help": copy}, state_db=tmp_path / "server.db", env=FAKE_EMBEDDER,
                        args=["--workers", "2"]) as server:
        found = json.loads(target.read_text(encoding="utf-8"))
        assert found["pid"] == server.process.pid and found["url"] == server.base_url  # the parent, not a worker
        result = search(copy, QUERY, "--json")
        assert result.returncode == 0 and VIA_SERVER in result.stderr, result.stderr
    assert not target.exists()
    after = search(copy, QUERY, "--json")
    assert after.returncode == 0 and "no readable server.json" in after.stderr


def test_the_file_is_removed_at_shutdown_and_a_newer_servers_file_is_kept(tmp_path: Path, kb: Path) -> None:
    copy = tmp_path / "solo"
    shutil.copytree(kb, copy, ignore=shutil.ignore_patterns(discovery.DISCOVERY_FILE))
    target = copy / discovery.DISCOVERY_FILE
    with running_server({"solo": copy}, state_db=tmp_path / "server.db", env=FAKE_EMBEDDER) as server:
        assert json.loads(target.read_text(encoding="utf-8"))["pid"] == server.process.pid
    assert not target.exists()
    with running_server({"solo": copy}, state_db=tmp_path / "server.db", env=FAKE_EMBEDDER):
        discovery.write(copy, url="http://127.0.0.1:1", name="solo", pid=os.getpid())  # another server took over
    assert json.loads(target.read_text(encoding="utf-8"))["pid"] == os.getpid()


def test_discovery_is_best_effort_where_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    assert discovery.write(blocker, url="http://127.0.0.1:1", name="x") is None  # not a folder: no error
    assert discovery.write(tmp_path / "missing", url="http://127.0.0.1:1", name="x") is None
    discovery.remove(tmp_path / "missing")  # nothing there: nothing to do
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
