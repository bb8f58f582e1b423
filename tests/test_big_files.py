"""One big file: progress by chunks and tokens, bounded memory (staged in parts), resumable on interrupt.

The hashing embedder is a named fake (fast, deterministic); the staging and the store are real."""

from __future__ import annotations

from pathlib import Path

import pytest

import jisik.ingest.pipeline as pipeline
from jisik.embed.hashing import HashingEmbedder
from jisik.kb import KnowledgeBase
from jisik.progress import PlainProgress


class CountingEmbedder(HashingEmbedder):
    """The hashing fake, counting the chunks it embeds and interrupting after ``stop_after`` calls."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__(64)
        self.embedded = 0
        self.calls = 0
        self.stop_after = stop_after

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.stop_after is not None and self.calls > self.stop_after:
            raise KeyboardInterrupt
        self.embedded += len(texts)
        return super().embed_documents(texts)


@pytest.fixture
def big(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(pipeline, "LARGE_FILE_CHUNKS", 16)
    monkeypatch.setattr(pipeline, "BATCH_CHUNKS", 8)
    monkeypatch.setattr(pipeline, "EMBED_STEP", 4)
    folder = tmp_path / "docs"
    folder.mkdir()
    paragraphs = [f"제{i}조 환불 규정 {i}번 항목은 구매 후 {i % 30 + 1}일 이내에 신청합니다. Item {i} covers refunds."
                  for i in range(120)]
    (folder / "big.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    (folder / "small.txt").write_text("배송은 2일 걸립니다.", encoding="utf-8")
    return folder


SMALL_CHUNKS = {"chunking": {"size": 120, "overlap": 0}}  # about one paragraph a chunk: 120 chunks


def _open(path: Path, embedder: HashingEmbedder) -> KnowledgeBase:
    return KnowledgeBase.open(path, create=True, embedder=embedder, overrides=SMALL_CHUNKS)


def _chunks(kb: KnowledgeBase) -> list[tuple[str, str]]:
    return sorted((h.doc_id, h.text) for h in kb.search("환불 규정 항목", mode="bm25", k=500))


def test_big_file_is_staged_in_parts_like_a_small_one(big: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    with _open(tmp_path / "staged", HashingEmbedder(64)) as kb:
        report = kb.ingest([big], progress=lambda stage, done, total: seen.append((stage, done, total)))
        assert len(report.added) == 2 and report.chunks > 16
        staged = _chunks(kb)
    with _open(tmp_path / "plain", HashingEmbedder(64)) as kb:
        pipeline_large = pipeline.LARGE_FILE_CHUNKS
        pipeline.LARGE_FILE_CHUNKS = 10**9  # the one-transaction path, for comparison
        try:
            kb.ingest([big])
        finally:
            pipeline.LARGE_FILE_CHUNKS = pipeline_large
        assert _chunks(kb) == staged and staged
    chunk_steps = [(done, total) for stage, done, total in seen if stage == "chunks"]
    assert len(chunk_steps) >= report.chunks // 4  # one report per embedder step, not one per file
    assert [d for d, _ in chunk_steps] == sorted(d for d, _ in chunk_steps)
    assert chunk_steps[-1] == (report.chunks, report.chunks)
    tokens = [done for stage, done, _ in seen if stage == "tokens"]
    assert tokens and tokens[-1] > report.chunks


def test_interrupted_big_file_is_invisible_then_resumes(big: Path, tmp_path: Path) -> None:
    embedder = CountingEmbedder(stop_after=5)  # 5 steps of 4 chunks: 2 parts of 8 staged, then interrupted
    with _open(tmp_path / "kb", embedder) as kb, pytest.raises(KeyboardInterrupt):
        kb.ingest([big / "big.txt"])
    with _open(tmp_path / "kb", HashingEmbedder(64)) as kb:
        assert kb.search("환불 규정 항목", mode="bm25", k=5) == []  # half a file is never searchable
        assert kb.store.stats().chunks == 0
    resumed = CountingEmbedder()
    with _open(tmp_path / "kb", resumed) as kb:
        report = kb.ingest([big / "big.txt"])
        assert report.added == [str(big / "big.txt")]
        assert any("resumed, 16 of" in w for w in report.warnings), report.warnings
        assert resumed.embedded == report.chunks - 16  # the staged parts were not embedded again
        assert kb.store.stats().chunks == report.chunks
        assert len(kb.search("환불 규정 항목", mode="bm25", k=500)) == report.chunks
        assert kb.store.staged_texts(kb.store.file_records()[str(big / "big.txt")]) == set()  # cleaned up


def test_plain_progress_prints_periodic_lines() -> None:
    now = [0.0]
    lines: list[str] = []
    progress = PlainProgress(lines.append, every=10, clock=lambda: now[0])
    progress("files", 0, 3)
    progress("chunks", 256, 1024)
    assert lines == []
    now[0] = 12.0
    progress("tokens", 40_960, 0)
    assert lines == ["ingesting: files 0/3, chunks 256/1,024, 40,960 tokens, 12s elapsed, eta 36s"]
    now[0] = 13.0
    progress("files", 3, 3)  # the end is always printed
    assert len(lines) == 2 and lines[-1].startswith("ingesting: files 3/3")
