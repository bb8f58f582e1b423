"""Cold start (issue 14, part 6): a fresh ``jisik search`` loads only what its mode needs.

Timing is not asserted (the shared test machines are too noisy for that); what is asserted is the cause
of the gain: ``--mode dense`` never imports Kiwi, ``--mode bm25`` never creates the embedder. Each check
runs the real command line in a fresh interpreter, since this test process may have loaded both already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FAKE_EMBEDDER, run_jisik

PROBE = """
import json, sys
import jisik.kb
created = []
real = jisik.kb.create_embedder
def counting(config):
    created.append(config.backend)
    return real(config)
jisik.kb.create_embedder = counting
from jisik.cli import app
try:
    app(sys.argv[1:], prog_name="jisik", standalone_mode=False)
finally:
    print(json.dumps({"kiwi": "kiwipiepy" in sys.modules, "embedders": created}), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cold") / "kb"
    assert run_jisik("init", str(folder), env=FAKE_EMBEDDER).returncode == 0
    done = run_jisik("ingest", str(Path(__file__).resolve().parents[1] / "examples" / "sample_docs"),
                     "--kb", str(folder), env=FAKE_EMBEDDER)
    assert done.returncode == 0, done.stderr
    return folder


def probe(kb: Path, mode: str) -> dict[str, object]:
    import os

    done = subprocess.run([sys.executable, "-c", PROBE, "search", "반품 기간은 며칠인가요?", "--kb", str(kb),
                           "--mode", mode, "--json"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **FAKE_EMBEDDER})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout), "the search found nothing"
    result: dict[str, object] = json.loads(done.stderr.strip().splitlines()[-1])
    return result


def test_dense_search_does_not_load_kiwi(kb: Path) -> None:
    assert probe(kb, "dense") == {"kiwi": False, "embedders": ["hashing"]}


def test_bm25_search_does_not_create_the_embedder(kb: Path) -> None:
    assert probe(kb, "bm25") == {"kiwi": True, "embedders": []}


def test_hybrid_search_loads_both(kb: Path) -> None:
    assert probe(kb, "hybrid") == {"kiwi": True, "embedders": ["hashing"]}


def test_bm25_search_still_refuses_another_analyzer(kb: Path, tmp_path: Path) -> None:
    """Skipping the embedder must not skip the check that the chunks' terms came from this analyser."""
    done = run_jisik("search", "반품", "--kb", str(kb), "--mode", "bm25",
                     env={**FAKE_EMBEDDER, "JISIK_BM25__ANALYZER": "en"})
    assert done.returncode != 0
    assert "analyzer 'ko-en'" in done.stderr and "reindex" in done.stderr
