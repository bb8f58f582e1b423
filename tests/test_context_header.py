"""Context headers: embedded (and optionally BM25-indexed) in front of each chunk, never stored in it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from jisik import KnowledgeBase
from jisik.embed.hashing import HashingEmbedder
from jisik.errors import EmbedderMismatchError
from jisik.records import Document, Segment


class RecordingHashingEmbedder(HashingEmbedder):
    """The hashing embedder (a fake: no model), remembering every passage text it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.passages: list[str] = []

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.passages.extend(texts)
        return super().embed_documents(texts)


def _refund_policy() -> Document:
    text = "Returns are accepted for 14 days.\n\nRefunds take three business days after we receive the item."
    cut = text.index("Refunds")
    return Document(doc_id="shop/refunds.md", source="shop/refunds.md", text=text, title="Refund policy",
                    segments=[Segment(0, cut - 2, section="Returns"), Segment(cut, len(text), section="Refunds")])


def _open(path: Path, embedder: HashingEmbedder, **chunking: object) -> KnowledgeBase:
    overrides = {"chunking": chunking} if chunking else None
    return KnowledgeBase.open(path, create=True, embedder=embedder, overrides=overrides)


def test_the_embedder_sees_the_header_and_the_store_keeps_the_exact_text(tmp_path: Path) -> None:
    embedder = RecordingHashingEmbedder()
    doc = _refund_policy()
    with _open(tmp_path / "kb", embedder) as kb:
        kb.add_documents([doc])
        assert embedder.passages == [
            "Refund policy > Returns\nReturns are accepted for 14 days.",
            "Refund policy > Refunds\nRefunds take three business days after we receive the item."]
        hits = kb.search("refunds three days", mode="dense", k=2)
    assert {hit.text for hit in hits} == {"Returns are accepted for 14 days.",
                                          "Refunds take three business days after we receive the item."}
    for hit in hits:  # citation spans still point at the document's own characters
        assert doc.text[hit.start:hit.end] == hit.text


def test_no_header_fields_embed_the_bare_chunk(tmp_path: Path) -> None:
    embedder = RecordingHashingEmbedder()
    with _open(tmp_path / "kb", embedder, header=[]) as kb:
        kb.add_documents([_refund_policy()])
    assert embedder.passages[0] == "Returns are accepted for 14 days."


def test_a_passage_without_title_or_section_gets_no_header(tmp_path: Path) -> None:
    embedder = RecordingHashingEmbedder()
    with _open(tmp_path / "kb", embedder) as kb:
        kb.add_documents([Document(doc_id="p1", source="p1", text="A bare passage.")])
    assert embedder.passages == ["A bare passage."]


def test_header_words_are_searchable_with_bm25_only_when_asked(tmp_path: Path) -> None:
    doc = Document(doc_id="filings/2023 Q3 AAPL.pdf", source="filings/2023 Q3 AAPL.pdf",
                   text="Net sales increased compared with the same quarter a year ago.", title="2023 Q3 AAPL")
    with _open(tmp_path / "plain", HashingEmbedder()) as kb:
        kb.add_documents([doc])
        assert kb.search("AAPL", mode="bm25") == []
    with _open(tmp_path / "indexed", HashingEmbedder(), header_bm25=True) as kb:
        kb.add_documents([doc])
        hits = kb.search("AAPL", mode="bm25")
    assert [hit.doc_id for hit in hits] == [doc.doc_id]
    assert hits[0].text == doc.text  # the header is indexed, not stored


def test_a_knowledge_base_from_before_headers_keeps_embedding_bare_chunks(tmp_path: Path) -> None:
    path = tmp_path / "kb"
    with _open(path, HashingEmbedder(), header=[]) as kb:
        kb.add_documents([Document(doc_id="old", source="old", text="Old chunk.", title="Old")])
        kb.store.set_setting("chunk_context", "none")
    # a jisik.toml written before the setting existed: it does not name [chunking] header at all
    toml = path / "jisik.toml"
    toml.write_text("\n".join(line for line in toml.read_text(encoding="utf-8").splitlines()
                              if not line.startswith(("header =", "header_bm25 ="))), encoding="utf-8")
    embedder = RecordingHashingEmbedder()
    with KnowledgeBase.open(path, embedder=embedder) as kb:
        kb.add_documents([_refund_policy()])
    assert embedder.passages[0] == "Returns are accepted for 14 days."


def test_changing_the_header_is_refused_until_reindex_reembeds(tmp_path: Path) -> None:
    path = tmp_path / "kb"
    with _open(path, HashingEmbedder()) as kb:
        kb.add_documents([_refund_policy()])
    embedder = RecordingHashingEmbedder()
    with KnowledgeBase.open(path, embedder=embedder, overrides={"chunking": {"header": ["title", "page"]}}) as kb:
        with pytest.raises(EmbedderMismatchError) as refused:
            kb.add_documents([Document(doc_id="new", source="new", text="New text.", title="New")])
        assert "jisik reindex" in (refused.value.hint or "") and "--embeddings" in (refused.value.hint or "")
        assert kb.reindex(embeddings=True) == 2
        assert embedder.passages == ["Refund policy\nReturns are accepted for 14 days.",
                                     "Refund policy\nRefunds take three business days after we receive the item."]
        kb.add_documents([Document(doc_id="new", source="new", text="New text.", title="New")])
        assert embedder.passages[-1] == "New\nNew text."
        assert kb.store.setting("chunk_context") == "embed:title,page"


def test_status_says_how_the_vectors_were_made(tmp_path: Path) -> None:
    with _open(tmp_path / "kb", HashingEmbedder()) as kb:
        kb.add_documents([_refund_policy()])
        status = kb.status()
    assert status["context_header"] == "embed:title,section"
    assert status["fusion"] == "adaptive"
