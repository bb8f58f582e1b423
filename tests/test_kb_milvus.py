"""The knowledge base end to end on the Milvus store (milvus-lite, in the test's folder): the same folder
ingested into the embedded store and into Milvus gives the same hits, answers and citations, through
changes, deletes, re-indexing and the CLI. The hashing embedder (a named fake) keeps it fast; the store
and Milvus are real."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from jisik.embed.hashing import HashingEmbedder
from jisik.errors import ConfigError
from jisik.kb import KnowledgeBase
from tests.helpers import FAKE_EMBEDDER, run_jisik

QUERIES = ["반품 기간은 며칠인가요?", "연차 휴가", "remote work policy", "배송비", "환불", "leave days"]
MILVUS = {"store": {"backend": "milvus", "collection": "kbtest"}}


def _kb(path: Path, milvus: bool) -> KnowledgeBase:
    return KnowledgeBase.open(path, create=True, embedder=HashingEmbedder(64), overrides=MILVUS if milvus else None)


@pytest.fixture
def docs(tmp_path: Path, sample_docs: Path) -> Path:
    target = tmp_path / "docs"
    shutil.copytree(sample_docs, target)
    return target


def _ranked(kb: KnowledgeBase, query: str, mode: str) -> list[tuple[str, str, float]]:
    return [(h.doc_id, h.text, h.score) for h in kb.search(query, mode=mode, k=5)]


def _same(local: list[tuple[str, str, float]], milvus: list[tuple[str, str, float]]) -> None:
    assert [(d, t) for d, t, _ in local] == [(d, t) for d, t, _ in milvus]
    assert [s for *_, s in milvus] == pytest.approx([s for *_, s in local], rel=1e-4, abs=1e-5)


def test_same_hits_as_the_embedded_store_in_every_mode(tmp_path: Path, docs: Path) -> None:
    with _kb(tmp_path / "local", False) as local, _kb(tmp_path / "milvus", True) as milvus:
        local.ingest([docs])
        report = milvus.ingest([docs])
        assert not report.failed and report.documents == 7
        assert milvus.status()["milvus"]["collection"] == "kbtest"
        for mode in ("dense", "bm25", "hybrid"):
            for query in QUERIES:
                _same(_ranked(local, query, mode), _ranked(milvus, query, mode))
        assert [h.doc_id for h in milvus.search("반품", filters={"source": "docs/policies/*"}, k=10)] == \
            [h.doc_id for h in local.search("반품", filters={"source": "docs/policies/*"}, k=10)]
        local_answer, milvus_answer = local.ask(QUERIES[0]), milvus.ask(QUERIES[0])
        assert milvus_answer.text == local_answer.text
        assert [(c.source, c.span) for c in milvus_answer.sources] == \
            [(c.source, c.span) for c in local_answer.sources]
        assert milvus_answer.sources and milvus_answer.sources[0].source == "docs/policies/반품정책.md"


def test_changes_deletes_and_reopening(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "one.md").write_text("# One\n\nalpha bravo charlie", encoding="utf-8")
    (folder / "two.md").write_text("# Two\n\ndelta echo foxtrot", encoding="utf-8")
    with _kb(tmp_path / "kb", True) as kb:
        assert len(kb.ingest([folder]).added) == 2
        again = kb.ingest([folder])
        assert (len(again.added), len(again.updated), len(again.unchanged)) == (0, 0, 2)
        time.sleep(0.01)
        (folder / "one.md").write_text("# One\n\nalpha golf hotel", encoding="utf-8")
        changed = kb.ingest([folder])
        assert [Path(p).name for p in changed.updated] == ["one.md"]
        assert kb.search("bravo", mode="bm25") == []
        assert kb.search("golf", mode="bm25")[0].source == "notes/one.md"
        (folder / "two.md").unlink()
        assert [Path(p).name for p in kb.ingest([folder], prune=True).pruned] == ["two.md"]
        assert kb.search("delta", mode="bm25") == []
        assert kb.status()["documents"] == 1 and kb.status()["chunks"] >= 1
        before = [(h.chunk_id, round(h.score, 5)) for h in kb.search("alpha golf", k=3)]
    with _kb(tmp_path / "kb", True) as kb:  # reopened: the same collection, the same results
        assert [(h.chunk_id, round(h.score, 5)) for h in kb.search("alpha golf", k=3)] == before
        assert kb.delete("notes/one.md") == ["notes/one.md"]
        assert kb.search("golf", mode="bm25") == [] and kb.status()["chunks"] == 0


def test_reindex_rewrites_terms_and_vectors_in_milvus(tmp_path: Path, docs: Path) -> None:
    with _kb(tmp_path / "kb", True) as kb:
        kb.ingest([docs])
        before = {mode: _ranked(kb, "반품 기간", mode) for mode in ("dense", "bm25")}
        kb.reindex(embeddings=True)
        for mode, hits in before.items():
            _same(hits, _ranked(kb, "반품 기간", mode))
        assert kb.status()["chunks"] == sum(1 for _ in kb.store.chunk_texts(limit=10_000))


def test_cli_init_ingest_search_status(tmp_path: Path, sample_docs: Path) -> None:
    kb = tmp_path / "kb"
    created = run_jisik("init", str(kb), "--store", "milvus", "--collection", "manuals", env=FAKE_EMBEDDER)
    assert created.returncode == 0, created.stderr
    settings = (kb / "jisik.toml").read_text(encoding="utf-8")
    assert 'backend = "milvus"' in settings and 'collection = "manuals"' in settings
    ingested = run_jisik("ingest", str(sample_docs), "--kb", str(kb), env=FAKE_EMBEDDER)
    assert ingested.returncode == 0, ingested.stderr
    found = run_jisik("search", "반품 기간", "--kb", str(kb), "--json", "--no-server", env=FAKE_EMBEDDER)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)[0]["source"].endswith("반품정책.md")
    status = json.loads(run_jisik("status", "--kb", str(kb), "--json", env=FAKE_EMBEDDER).stdout)
    assert status["milvus"]["collection"] == "manuals" and status["chunks"] > 5


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    missing = run_jisik("init", str(kb), "--store", "milvus", "--token-env", "JISIK_TEST_NO_SUCH_TOKEN",
                        env={**FAKE_EMBEDDER, "JISIK_TEST_NO_SUCH_TOKEN": ""})
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "JISIK_TEST_NO_SUCH_TOKEN ([store] token_env) is not set" in missing.stderr
    assert not kb.exists()  # nothing half-made: the same command works once the variable is set
    made = run_jisik("init", str(kb), "--store", "milvus", "--token-env", "JISIK_TEST_NO_SUCH_TOKEN",
                     env={**FAKE_EMBEDDER, "JISIK_TEST_NO_SUCH_TOKEN": "root:Milvus"})
    assert made.returncode == 0, made.stderr  # milvus-lite ignores the token
    local_only = run_jisik("init", str(tmp_path / "other"), "--collection", "x", env=FAKE_EMBEDDER)
    assert local_only.returncode == 1 and "--store milvus" in local_only.stderr
    (kb / "jisik.toml").write_text((kb / "jisik.toml").read_text(encoding="utf-8").replace(
        'token_env = "JISIK_TEST_NO_SUCH_TOKEN"', '# token_env =').replace(
        'uri = "milvus.db"', 'uri = "http://127.0.0.1:9"').replace("timeout = 30.0", "timeout = 2.0"),
        encoding="utf-8")
    started = time.monotonic()
    unreachable = run_jisik("search", "x", "--kb", str(kb), "--no-server", env=FAKE_EMBEDDER)
    assert unreachable.returncode == 1 and "cannot reach Milvus at http://127.0.0.1:9" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr and time.monotonic() - started < 30


def test_bm25_variants_that_do_not_factor_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bm25"):
        KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(64),
                           overrides={**MILVUS, "bm25": {"method": "bm25+"}})


def test_served_over_the_openai_api_and_the_cli_hands_off(tmp_path: Path, sample_docs: Path) -> None:
    """`jisik serve` on a milvus-lite knowledge base: the OpenAI client gets a cited answer; `jisik search` reaches
    the server (milvus-lite lets one process hold its folder, so a second process could not open it)."""
    import httpx
    from openai import OpenAI

    from jisik.testing.server import running_server

    kb = tmp_path / "kb"
    assert run_jisik("init", str(kb), "--store", "milvus", env=FAKE_EMBEDDER).returncode == 0
    assert run_jisik("ingest", str(sample_docs), "--kb", str(kb), env=FAKE_EMBEDDER).returncode == 0
    with running_server({"manuals": kb}, state_db=tmp_path / "server.db", env=FAKE_EMBEDDER) as server:
        client = OpenAI(base_url=server.url("/v1"), api_key="unused")
        reply = client.chat.completions.create(model="jisik/manuals",
                                               messages=[{"role": "user", "content": "반품 기간은 며칠인가요?"}])
        assert reply.choices[0].message.content
        hits = httpx.post(server.url("/api/kbs/manuals/search"), json={"query": "반품 기간", "k": 2}, timeout=60)
        assert hits.status_code == 200 and hits.json()["hits"][0]["source"].endswith("반품정책.md")
        handed = run_jisik("search", "반품 기간", "--kb", str(kb), "--json", env=FAKE_EMBEDDER)
        assert handed.returncode == 0, handed.stderr
        assert json.loads(handed.stdout)[0]["source"].endswith("반품정책.md")
        direct = run_jisik("search", "반품 기간", "--kb", str(kb), "--no-server", env=FAKE_EMBEDDER)
        assert direct.returncode == 1 and "in use by another process" in direct.stderr
        assert "Traceback" not in direct.stderr
