"""Training pairs for embedder tuning, made from a knowledge base's own chunks without any labels.

A *pseudo-query* is a piece of a chunk that stands in for a question about it:

- ``sentence`` (the default): one sentence of the chunk, picked by a stable hash. Its passage is the text the
  knowledge base embeds for that chunk (context header + chunk) with the sentence cut out, as in the Inverse
  Cloze Task (Lee et al. 2019, "Latent Retrieval for Weakly Supervised Open Domain QA", §5): with the
  sentence left in, the pair is solved by copying words and teaches the model nothing it does not know.
  ``keep_query`` keeps it in that share of pairs (ICT keeps it in 10%, so lexical matching is not unlearnt).
  benchmarks/tune_embed.py measures both ends.
- ``title``: the document's title and section path, paired with the chunk *without* its context header (the
  header holds the title: it would be a copy again). Only chunks whose document has a title take part.

Everything here is deterministic: which chunks are used (with ``max_queries``), which sentence, and which
documents are held out are pure functions of the texts, the ids and ``seed``; no Python hash, no row order.
The held-out split is by *document*, so no chunk of a held-out document is ever trained on, and batches never
hold two pairs of one document (another chunk of the same document is not a true negative).

Also here: the held-out check (:class:`EvalSet`, :func:`retrieval_metrics` — MRR@10 and R@5 through
:mod:`jisik.evaluate.metrics`) and the one edit an install makes to ``jisik.toml`` (:func:`with_embedder`).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from jisik.errors import TuningError
from jisik.tune.data import group_fraction

if TYPE_CHECKING:
    from jisik.embed.base import Embedder
    from jisik.kb import KnowledgeBase

QueryMode = Literal["sentence", "title"]
QUERY_MODES: tuple[QueryMode, ...] = ("sentence", "title")
# A pseudo-query shorter than this says too little to find its chunk by ("3.", "네."), and one longer than
# MAX_QUERY_CHARS is a paragraph, not a question; real queries of MS MARCO-ko average 25 characters.
MIN_QUERY_CHARS = 10
MAX_QUERY_CHARS = 300
# What is left of a passage once its sentence is cut out must still be a passage.
MIN_PASSAGE_CHARS = 20
_BLOCK = 512  # chunks split into sentences per call (one Kiwi batch)


@dataclass(frozen=True)
class SourceChunk:
    """One stored chunk as the embedder sees it: ``header`` is its context header ('' for none)."""

    chunk_id: int
    doc_id: str
    text: str
    header: str = ""
    title: str | None = None
    section: str | None = None

    @property
    def embedded(self) -> str:
        """The text the knowledge base embeds for this chunk: header line, then the chunk."""
        return f"{self.header}\n{self.text}" if self.header else self.text


@dataclass(frozen=True)
class PseudoQuery:
    """A training pair: ``query`` should find ``passage``, the chunk ``chunk_id`` of document ``doc_id``.

    ``cut`` is the passage without the query whatever ``keep_query`` decided (the held-out check always uses
    it: with the query left in, both models find it and the check cannot tell them apart)."""

    query: str
    passage: str
    doc_id: str
    chunk_id: int
    cut: str = ""

    @property
    def without_query(self) -> str:
        return self.cut or self.passage


@dataclass(frozen=True)
class PairOptions:
    """How pseudo-queries are made (see the module docstring)."""

    mode: QueryMode = "sentence"
    keep_query: float = 0.0
    max_queries: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in QUERY_MODES:
            raise TuningError(f"unknown pseudo-query mode {self.mode!r}", hint=f"use one of {', '.join(QUERY_MODES)}")
        if not 0.0 <= self.keep_query <= 1.0:
            raise TuningError(f"keep_query must be in [0, 1], not {self.keep_query}",
                              hint="0 cuts the sentence out of every passage, 1 keeps it in every one")
        if self.max_queries is not None and self.max_queries < 2:
            raise TuningError(f"max_queries must be at least 2, not {self.max_queries}")


def pick_sentence(text: str, spans: Sequence[tuple[int, int]], key: str, seed: int = 0) -> tuple[int, int] | None:
    """The span of the sentence of ``text`` that becomes the pseudo-query, or None when none fits.

    A candidate is :data:`MIN_QUERY_CHARS`..:data:`MAX_QUERY_CHARS` long and leaves at least
    :data:`MIN_PASSAGE_CHARS` of text behind; among candidates the choice is a stable hash of ``key`` (the
    chunk) and ``seed``.

    >>> t = "Refunds take 14 days. Exchanges take 30 days at any store."
    >>> s = pick_sentence(t, [(0, 21), (22, 59)], "chunk-1")
    >>> t[s[0]:s[1]]
    'Refunds take 14 days.'
    >>> pick_sentence("One sentence only, nothing left.", [(0, 32)], "c") is None
    True
    """
    candidates = [(a, b) for a, b in spans
                  if MIN_QUERY_CHARS <= b - a <= MAX_QUERY_CHARS and len(text) - (b - a) >= MIN_PASSAGE_CHARS]
    if not candidates:
        return None
    return candidates[int(group_fraction(key, seed) * len(candidates))]


def cut_span(text: str, span: tuple[int, int]) -> str:
    """``text`` without ``span``, the whitespace around the cut closed up.

    >>> cut_span("A b. C d. E f.", (5, 9))
    'A b. E f.'
    >>> cut_span("A b.\\nC d.", (5, 9))
    'A b.'
    """
    a, b = span
    before, after = text[:a].rstrip(), text[b:].lstrip()
    return f"{before} {after}".strip() if before and after else (before or after)


def title_query(chunk: SourceChunk) -> str | None:
    """The ``title`` mode's pseudo-query: the title, then the section path where it adds something.

    >>> title_query(SourceChunk(1, "d", "text", title="Refund policy", section="Returns > Refunds"))
    'Refund policy > Returns > Refunds'
    >>> title_query(SourceChunk(1, "d", "text")) is None
    True
    """
    title = " ".join((chunk.title or "").split())
    section = " ".join((chunk.section or "").split())
    query = f"{title} > {section}" if title and section and section.casefold() != title.casefold() else title
    return query if len(query) >= 2 else None


def pseudo_queries(chunks: Sequence[SourceChunk], sentence_spans: Sequence[Sequence[tuple[int, int]]] | None,
                   options: PairOptions) -> list[PseudoQuery]:
    """One pair per chunk that yields one (``sentence_spans[i]``: sentence spans of ``chunks[i].text``).

    >>> chunks = [SourceChunk(1, "a", "Refunds take 14 days. Exchanges take 30 days.", header="Policy")]
    >>> [(p.query, p.passage) for p in pseudo_queries(chunks, [[(0, 21), (22, 45)]], PairOptions())]
    [('Exchanges take 30 days.', 'Policy\\nRefunds take 14 days.')]
    >>> [(p.query, p.passage) for p in pseudo_queries(chunks, [[(0, 21), (22, 45)]], PairOptions(keep_query=1))]
    [('Exchanges take 30 days.', 'Policy\\nRefunds take 14 days. Exchanges take 30 days.')]
    """
    out: list[PseudoQuery] = []
    for i, chunk in enumerate(chunks):
        if options.mode == "title":
            query = title_query(chunk)
            if query is not None:
                out.append(PseudoQuery(query, chunk.text, chunk.doc_id, chunk.chunk_id))
            continue
        if sentence_spans is None:
            raise ValueError("the sentence mode needs the chunks' sentence spans")
        span = pick_sentence(chunk.text, sentence_spans[i], str(chunk.chunk_id), options.seed)
        if span is None:
            continue
        keep = group_fraction(f"keep:{chunk.chunk_id}", options.seed) < options.keep_query
        cut = replace(chunk, text=cut_span(chunk.text, span)).embedded
        out.append(PseudoQuery(chunk.text[span[0]:span[1]], chunk.embedded if keep else cut, chunk.doc_id,
                               chunk.chunk_id, cut))
    return out


def sample_order(chunks: Sequence[SourceChunk], seed: int = 0) -> list[SourceChunk]:
    """Chunks in a stable pseudo-random order (by a hash of their id), so ``max_queries`` takes a uniform,
    reproducible sample of the knowledge base instead of its first documents.

    >>> [c.chunk_id for c in sample_order([SourceChunk(i, "d", "") for i in range(4)])]
    [2, 1, 0, 3]
    """
    return sorted(chunks, key=lambda c: (group_fraction(f"chunk:{c.chunk_id}", seed), c.chunk_id))


def build_pseudo_queries(chunks: Sequence[SourceChunk], options: PairOptions) -> list[PseudoQuery]:
    """Pairs for up to ``options.max_queries`` chunks, sampled by :func:`sample_order`; sentences are split
    (Kiwi for Korean, rules for the rest) only for the chunks needed."""
    limit = options.max_queries or len(chunks)
    ordered = sample_order(chunks, options.seed)
    out: list[PseudoQuery] = []
    for start in range(0, len(ordered), _BLOCK):
        block = ordered[start:start + _BLOCK]
        spans = None
        if options.mode == "sentence":
            from jisik.text.sentences import split_sentences_batch

            spans = split_sentences_batch([c.text for c in block])
        out.extend(pseudo_queries(block, spans, options))
        if len(out) >= limit:
            break
    return out[:limit]


def split_by_document(pairs: Sequence[PseudoQuery], held_out: float, seed: int = 0
                      ) -> tuple[list[PseudoQuery], list[PseudoQuery]]:
    """Train and held-out pairs, no document on both sides: documents are ranked by a stable hash and the
    first ``held_out`` share of them (at least one, and never all) is held out.

    >>> pairs = [PseudoQuery(f"q{i}", f"p{i}", f"doc{i % 4}", i) for i in range(8)]
    >>> train, held = split_by_document(pairs, 0.25)
    >>> sorted({p.doc_id for p in held}), len(train)
    (['doc0'], 6)
    """
    if not 0 < held_out < 1:
        raise TuningError(f"the held-out share must be between 0 and 1, not {held_out}", hint="e.g. 0.1")
    docs = sorted({p.doc_id for p in pairs})
    if len(docs) < 2:
        raise TuningError(f"embedder tuning needs pseudo-queries from at least 2 documents, found {len(docs)}",
                          hint="ingest more documents: one is kept apart to check that tuning helps")
    ranked = sorted(docs, key=lambda d: (group_fraction(f"doc:{d}", seed), d))
    n_held = min(len(docs) - 1, max(1, round(len(docs) * held_out)))
    held = set(ranked[:n_held])
    return [p for p in pairs if p.doc_id not in held], [p for p in pairs if p.doc_id in held]


def batches(pairs: Sequence[PseudoQuery], batch_size: int, *, seed: int = 0, epoch: int = 0) -> list[list[int]]:
    """Indices of ``pairs`` in shuffled batches of ``batch_size`` in which no document appears twice (each
    pair's in-batch negatives are other documents' passages). A pair that would repeat a document waits for the
    next batch; the last batch may be smaller, and a batch of one (no negative) is dropped.

    >>> pairs = [PseudoQuery("q", "p", doc, i) for i, doc in enumerate("aabbcc")]
    >>> batches(pairs, 3)
    [[4, 3, 1], [5, 2, 0]]
    >>> [[pairs[i].doc_id for i in b] for b in batches(pairs, 3)]
    [['c', 'b', 'a'], ['c', 'b', 'a']]
    """
    if batch_size < 2:
        raise TuningError(f"the batch size must be at least 2 (in-batch negatives), not {batch_size}")
    order = sorted(range(len(pairs)), key=lambda i: (group_fraction(f"{epoch}:{i}:{pairs[i].chunk_id}", seed), i))
    pending = deque(order)
    out: list[list[int]] = []
    while pending:
        current: list[int] = []
        docs: set[str] = set()
        skipped: list[int] = []
        while pending and len(current) < batch_size:
            j = pending.popleft()
            if pairs[j].doc_id in docs:
                skipped.append(j)
            else:
                current.append(j)
                docs.add(pairs[j].doc_id)
        pending.extendleft(reversed(skipped))
        if len(current) < 2:  # what is left is one document's pairs: nothing to contrast them with
            break
        out.append(current)
    return out


def read_chunks(kb: KnowledgeBase) -> list[SourceChunk]:
    """Every chunk of ``kb`` with the context header it was embedded with (as recorded by the store).

    An empty knowledge base is a :class:`~jisik.errors.TuningError` that says to ingest first.
    """
    from jisik.ingest.context import CONTEXT_SETTING, hit_context_texts, parse_header_setting

    store = kb.store
    if store.is_empty():
        raise TuningError(f"the knowledge base at {kb.path} holds no chunks to make pseudo-queries from",
                          hint=f"ingest documents first: `jisik ingest DOCS --kb {kb.path}`")
    recorded = store.setting(CONTEXT_SETTING)
    fields = parse_header_setting(recorded)[0] if recorded is not None else kb.config.chunking.header
    out: list[SourceChunk] = []
    after = 0
    while page := store.chunk_texts(after=after, limit=1024):
        hits = store.hits([(i, 0.0) for i, _ in page])
        headed = hit_context_texts(hits, fields)
        for hit, embedded in zip(hits, headed, strict=True):
            header = embedded[: len(embedded) - len(hit.text)].removesuffix("\n") if embedded != hit.text else ""
            out.append(SourceChunk(hit.chunk_id, hit.doc_id, hit.text, header, hit.title, hit.section))
        after = page[-1][0]
    return out


# -- the held-out check -----------------------------------------------------------------------------------------------
@dataclass
class EvalSet:
    """Queries, a corpus and each query's gold passages (indexes into ``corpus``)."""

    queries: list[str]
    corpus: list[str]
    gold: list[list[int]]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> EvalSet:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def held_out_set(held: Sequence[PseudoQuery], chunks: Sequence[SourceChunk], *, max_queries: int,
                 distractors: int, seed: int = 0) -> EvalSet:
    """The held-out pseudo-queries against their own passages (the query cut out) plus up to ``distractors``
    chunks of other (training-side) documents, as the knowledge base embeds them.

    >>> held = [PseudoQuery("q", "p", "d1", 1)]
    >>> held_out_set(held, [SourceChunk(1, "d1", "p"), SourceChunk(2, "d2", "x")], max_queries=5, distractors=5)
    EvalSet(queries=['q'], corpus=['p', 'x'], gold=[[0]])
    """
    chosen = held[:max_queries]
    held_docs = {p.doc_id for p in held}
    corpus = [p.without_query for p in chosen]
    others = [c.embedded for c in sample_order([c for c in chunks if c.doc_id not in held_docs], seed)]
    return EvalSet([p.query for p in chosen], corpus + others[:distractors], [[i] for i in range(len(chosen))])


def retrieval_metrics(embedder: Embedder, data: EvalSet, *, batch: int = 256) -> dict[str, float]:
    """MRR@10 and R@5 (with R@1, R@10) of ``embedder`` on ``data``, by exact inner-product search,
    scored with :mod:`jisik.evaluate.metrics`."""
    from jisik.evaluate.metrics import recall_at_k, reciprocal_rank

    passages = embedder.embed_documents(data.corpus)
    queries = embedder.embed_queries(data.queries)
    ranked: list[list[int]] = []
    for start in range(0, len(queries), batch):
        scores = queries[start:start + batch] @ passages.T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        ranked.extend(top.tolist())
    n = max(len(ranked), 1)
    out = {"mrr@10": sum(reciprocal_rank(r, set(g), 10) for r, g in zip(ranked, data.gold, strict=True)) / n}
    for k in (1, 5, 10):
        out[f"r@{k}"] = sum(recall_at_k(r, set(g), k) for r, g in zip(ranked, data.gold, strict=True)) / n
    return out


def better(after: Mapping[str, float], before: Mapping[str, float], min_gain: float = 0.0) -> bool:
    """Whether the tuned embedder wins: a higher MRR@10 (by more than ``min_gain``) and no lower R@5.

    >>> better({"mrr@10": 0.6, "r@5": 0.8}, {"mrr@10": 0.5, "r@5": 0.8})
    True
    >>> better({"mrr@10": 0.5, "r@5": 0.9}, {"mrr@10": 0.5, "r@5": 0.8})
    False
    """
    return after["mrr@10"] > before["mrr@10"] + min_gain and after["r@5"] >= before["r@5"]


# -- the knowledge base's settings ----------------------------------------------------------------------------
def write_config(path: Path, text: str) -> None:
    """Replace ``jisik.toml`` atomically, keeping its permissions."""
    from jisik._atomic import atomic_write

    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    atomic_write(path, text.encode("utf-8"))
    os.chmod(path, mode)


_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*(#?)\s*(backend|model)\s*=")


def with_embedder(toml_text: str, *, backend: str, model: str) -> str:
    """``jisik.toml`` with ``[embedder] backend`` and ``model`` set, every other line (comments too) untouched;
    the result is checked against the settings schema. A key set in the file is replaced where it stands, else
    its commented placeholder (``# model =``, as ``jisik init`` writes it), else it is added under the header.

    >>> print(with_embedder('[embedder]\\nbackend = "auto"\\n# model =\\nbatch_size = 64\\n\\n[bm25]',
    ...                     backend="e5fast", model="/runs/emb1/embedder.bin"))
    [embedder]
    backend = "e5fast"
    model = "/runs/emb1/embedder.bin"
    batch_size = 64
    <BLANKLINE>
    [bm25]
    <BLANKLINE>
    """
    from jisik.config import KBConfig

    lines = toml_text.splitlines()
    # a JSON string is a TOML basic string (same escapes)
    wanted = {"backend": f"backend = {json.dumps(backend, ensure_ascii=False)}",
              "model": f"model = {json.dumps(model, ensure_ascii=False)}"}
    start = next((i for i, line in enumerate(lines) if (m := _SECTION.match(line)) and m[1].strip() == "embedder"),
                 None)
    if start is None:
        lines += ["", "[embedder]", *wanted.values()]
    else:
        end = next((i for i in range(start + 1, len(lines)) if _SECTION.match(lines[i])), len(lines))
        found = [(i, m[1] == "#", m[2]) for i in range(start + 1, end) if (m := _KEY.match(lines[i]))]
        for key in list(wanted):
            spots = [i for i, _, k in sorted(found, key=lambda f: f[1]) if k == key]  # set lines before comments
            if spots:
                lines[spots[0]] = wanted.pop(key)
        lines[start + 1:start + 1] = list(wanted.values())
    text = "\n".join(lines) + "\n"
    try:
        KBConfig.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise TuningError(f"jisik.toml would not be valid with the tuned embedder: {exc}",
                          hint="fix jisik.toml by hand, then run the install again") from exc
    return text
