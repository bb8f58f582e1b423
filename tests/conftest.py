"""Shared fixtures. Unit tests may only talk to loopback: anything else fails loudly."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from jisik.embed.hashing import HashingEmbedder
from tests.helpers import FAKE_EMBEDDER
from tests.isolated import pytest_runtest_protocol  # noqa: F401  (hook: @pytest.mark.isolated runs in a child)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DOCS = ROOT / "examples" / "sample_docs"
SHARED_DATA = ROOT.parent / "shared" / "data"

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> object:
    host = address[0] if isinstance(address, tuple) else None
    if isinstance(host, str) and host not in ("localhost",):
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise RuntimeError(f"network access to {host} is blocked in tests")
        except ValueError:
            raise RuntimeError(f"network access to {host} is blocked in tests") from None
    return _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _unexpected_errors_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in a loader, chunker or analyzer fails the test instead of becoming a "failed file"."""
    monkeypatch.setenv("JISIK_RAISE_UNEXPECTED", "1")


@pytest.fixture(autouse=True)
def _scripted_answers_are_not_grounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests script LLM replies (FakeLLM) that the hashing embedder's sources need not support: the groundedness
    guard only annotates them here, instead of its default of dropping unsupported sentences. Tests of the guard
    itself (tests/test_guard_*.py) remove this override."""
    monkeypatch.setenv("JISIK_GUARD__GROUNDING", "annotate")


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    yield


@pytest.fixture
def fake_embedder_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Knowledge bases opened by CLI commands in this test use the hashing embedder."""
    for key, value in FAKE_EMBEDDER.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def runner(fake_embedder_env: None) -> CliRunner:
    return CliRunner()


@pytest.fixture
def hashing_embedder() -> HashingEmbedder:
    return HashingEmbedder(dim=64)


@pytest.fixture
def sample_docs() -> Path:
    return SAMPLE_DOCS


def shared_data(*parts: str) -> Path:
    """Path into ../shared/data, skipping the test with a clear message when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"evaluation data not found at {path} (see ../shared/data/README.md)")
    return path


@pytest.fixture
def cli() -> typer.Typer:
    """A Typer app with only `jisik eval` registered (tests of the eval command)."""
    from jisik.cli.commands.eval import register

    app = typer.Typer()

    @app.callback()
    def _main() -> None:  # a group, so `eval` is a subcommand as in the real app
        pass

    register(app)
    return app
