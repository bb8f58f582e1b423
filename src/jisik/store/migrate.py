"""Copy a knowledge base into another store backend without embedding again (``jisik migrate``).

Why this shape: every store keeps each chunk's vector and BM25 terms beside its text, so a copy needs no
model. The source is read a few files at a time (:meth:`~jisik.store.base.ChunkStore.export_files`) and each
batch goes to the target in one :meth:`~jisik.store.base.ChunkStore.write`, the same atomic, per-file write
ingest uses. Only the Store protocol is used, so every direction works: local → Milvus, Milvus → local, or
local → local to move or compact a knowledge base.

Resumable: a file the target's ledger already holds with the same content hash and chunk count is skipped,
and a batch is committed whole or not at all, so a run killed at any point (even by SIGKILL) loses at most the
batch in flight, and running it again finishes the copy without duplicates.

Verified: document, chunk and file counts must agree, and for a deterministic sample of chunks a dense search
with the chunk's own vector and a BM25 search with its own terms must put the same chunk first on both stores
(:func:`verify_copy`).
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jisik.config import CONFIG_FILE, StoreConfig, dump_config, load_config
from jisik.embed.base import Vectors
from jisik.errors import ConfigError, EmbedderMismatchError, KnowledgeBaseNotFoundError
from jisik.filters import Filter
from jisik.ingest.context import CONTEXT_SETTING, header_setting
from jisik.records import Hit
from jisik.store import create_store
from jisik.store.base import FileRecord, IngestUnit, Store
from jisik.store.ledger import DB_FILE

ProgressCallback = Callable[[str, int, int], None]

# Files per write: one transaction each. Bigger batches commit less often; a kill loses at most one batch.
DEFAULT_BATCH_FILES = 64
# A batch also stops at this many chunks (the ledger says how many each file has), so memory stays bounded:
# 4096 chunks of 384 float32 dimensions are 6 MB of vectors, plus their text. A bigger file goes alone.
BATCH_CHUNKS = 4096
# Hits compared per sampled search; also the list the top-10 overlap is measured on.
VERIFY_K = 10
_MISMATCHES_KEPT = 5  # the report names the first few disagreements, not all of them


@dataclass(slots=True)
class Verification:
    """How the target compares with the source after a copy.

    ``counts`` maps documents, chunks, files and failed_files to ``(source, target)``; the target's count leaves
    out its *extra* files (ones the source does not have, kept without ``prune``). ``dense_agree`` and
    ``lexical_agree`` count the sampled chunks whose own-vector (own-terms) search put the same chunk first on
    both stores; the overlaps are the mean share of the top-10 lists the two stores have in common.
    """

    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    sampled: int = 0
    dense_agree: int = 0
    lexical_sampled: int = 0  # sampled chunks with terms (a chunk of only punctuation has none)
    lexical_agree: int = 0
    dense_overlap: float = 1.0
    lexical_overlap: float = 1.0
    mismatches: list[str] = field(default_factory=list)

    @property
    def counts_equal(self) -> bool:
        return all(source == target for source, target in self.counts.values())

    @property
    def ok(self) -> bool:
        return self.counts_equal and self.dense_agree == self.sampled and self.lexical_agree == self.lexical_sampled

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "counts_equal": self.counts_equal,
            "counts": {name: {"source": s, "target": t} for name, (s, t) in self.counts.items()},
            "sampled": self.sampled, "dense_agree": self.dense_agree, "lexical_sampled": self.lexical_sampled,
            "lexical_agree": self.lexical_agree, "dense_overlap": round(self.dense_overlap, 4),
            "lexical_overlap": round(self.lexical_overlap, 4), "mismatches": self.mismatches,
        }


@dataclass(slots=True)
class MigrationReport:
    """What one :func:`migrate` run did: files copied and skipped (already in the target with the same content
    hash), the documents and chunks copied, failed files' ledger rows copied, the target's files that the source
    does not have (``extra``; removed and listed in ``pruned`` with ``prune``), and the verification."""

    copied: int = 0
    skipped: int = 0
    documents: int = 0
    chunks: int = 0
    failures: int = 0
    extra: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    seconds: float = 0.0
    verification: Verification = field(default_factory=Verification)

    @property
    def ok(self) -> bool:
        return self.verification.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "copied": self.copied, "skipped": self.skipped, "documents": self.documents,
            "chunks": self.chunks, "failures": self.failures, "extra": self.extra, "pruned": self.pruned,
            "seconds": round(self.seconds, 3), "verification": self.verification.to_dict(),
        }


def migrate(source: Store, target: Store, *, batch_files: int = DEFAULT_BATCH_FILES, prune: bool = False,
            progress: ProgressCallback | None = None, verify_sample: int = 20) -> MigrationReport:
    """Copy every file, in-memory document and failure of ``source`` into ``target``; then verify the copy.

    The target is bound to the source's embedder, dimension, analyzer and context-header setting; a target that
    already holds chunks made otherwise is refused (:class:`~jisik.errors.EmbedderMismatchError`). ``progress``
    is told ``("files", done, total)`` as batches commit and ``("index", …)`` around the index update.
    The caller holds the target's writer lock (:func:`~jisik.store.writer_lock.hold_writer_lock`).
    """
    if batch_files < 1:
        raise ConfigError(f"batch_files must be at least 1, not {batch_files}")
    started = time.perf_counter()
    report_progress = progress or (lambda stage, done, total: None)
    target.require_writable()
    source_ledger = source.file_records()
    target_ledger = target.file_records()
    bind_like(source, target)
    report = MigrationReport(extra=sorted(set(target_ledger) - set(source_ledger)))
    if prune and report.extra:
        target.delete_files(report.extra)
        report.pruned = report.extra
        for path in report.pruned:
            del target_ledger[path]

    dim = int(source.setting("embedder_dim") or 0)
    files = sorted(path for path, record in source_ledger.items() if record.status == "ok")
    todo = [path for path in files if not same_row(source_ledger[path], target_ledger.get(path))]
    report.skipped = len(files) - len(todo)
    report_progress("files", report.skipped, len(files))
    for batch in plan_batches(todo, source_ledger, batch_files=batch_files, max_chunks=BATCH_CHUNKS):
        units = source.export_files(batch)
        exported = {unit.file.path for unit in units}
        # a file that gave no text has a ledger row and nothing else: written as ingest writes it
        units.extend(_empty_unit(source_ledger[path], dim) for path in batch if path not in exported)
        target.write(units)
        report.copied += len(units)
        report.documents += sum(len(unit.documents) for unit in units)
        report.chunks += sum(len(unit.chunks) for unit in units)
        report_progress("files", report.skipped + report.copied, len(files))

    failed = [record for path, record in sorted(source_ledger.items())
              if record.status != "ok" and not same_row(record, target_ledger.get(path))]
    # the target still holds documents of a file that has failed in the source since: they go, as in the source
    stale = [r.path for r in failed if (known := target_ledger.get(r.path)) is not None and known.status == "ok"]
    if stale:
        target.delete_files(stale)
    if failed:
        target.record_failures(failed)
    report.failures = len(failed)

    report_progress("index", 0, 1)
    target.commit_indexes()
    report_progress("index", 1, 1)
    extra = [target_ledger[path] for path in report.extra if path in target_ledger]
    report.verification = verify_copy(source, target, ledger=source_ledger, extra=extra, sample=verify_sample)
    report.seconds = time.perf_counter() - started
    return report


def same_row(source: FileRecord, target: FileRecord | None) -> bool:
    """Whether the target's ledger row already says what the source's does (the file needs no copy).

    >>> row = FileRecord("/d/a.txt", "/d", "ab12", 10, 1.0, n_documents=1, n_chunks=3)
    >>> same_row(row, FileRecord("/d/a.txt", "/d", "ab12", 10, 1.0, n_documents=1, n_chunks=3))
    True
    >>> same_row(row, FileRecord("/d/a.txt", "/d", "ab12", 10, 1.0, n_documents=1, n_chunks=2)), same_row(row, None)
    (False, False)
    """
    return (target is not None and target.status == source.status and target.content_hash == source.content_hash
            and target.n_documents == source.n_documents and target.n_chunks == source.n_chunks)


def plan_batches(paths: Sequence[str], ledger: dict[str, FileRecord], *, batch_files: int,
                 max_chunks: int) -> Iterator[list[str]]:
    """Consecutive groups of at most ``batch_files`` paths and (a single bigger file aside) ``max_chunks`` chunks.

    >>> ledger = {p: FileRecord(p, "/", "", 0, 0.0, n_chunks=n) for p, n in [("a", 3), ("b", 3), ("c", 9), ("d", 1)]}
    >>> list(plan_batches(["a", "b", "c", "d"], ledger, batch_files=3, max_chunks=6))
    [['a', 'b'], ['c'], ['d']]
    """
    batch: list[str] = []
    chunks = 0
    for path in paths:
        size = ledger[path].n_chunks
        if batch and (len(batch) >= batch_files or chunks + size > max_chunks):
            yield batch
            batch, chunks = [], 0
        batch.append(path)
        chunks += size
    if batch:
        yield batch


def _empty_unit(record: FileRecord, dim: int) -> IngestUnit:
    return IngestUnit(file=record, documents=[], chunks=[], vectors=np.zeros((0, dim), dtype=np.float32), terms=[])


def _context_of(store: Store) -> str | None:
    """The context-header setting the store's vectors were made with (``none`` for chunks made before headers
    were recorded, as :class:`~jisik.kb.KnowledgeBase` reads it); None for an empty store that recorded none."""
    recorded = store.setting(CONTEXT_SETTING)
    if recorded is None and not store.is_empty():
        return header_setting([], bm25=False)
    return recorded


def bind_like(source: Store, target: Store) -> None:
    """Bind ``target`` to the source's embedder, dimension and analyzer and record its context-header setting.

    A target that holds chunks made by another embedder, analyzer or header setting is refused: its vectors and
    the copied ones would not be comparable. An empty target bound to something else is bound again.
    """
    model, dim, analyzer = source.setting("embedder_model"), source.setting("embedder_dim"), source.setting("analyzer")
    if model is None:  # never bound: the source holds no chunks, only ledger rows (failures, files without text)
        return
    context = _context_of(source)
    if not target.is_empty():
        wanted = {"embedder": (model, int(dim or 0)), "analyzer": analyzer, "context header": context}
        theirs = {"embedder": (target.setting("embedder_model"), int(target.setting("embedder_dim") or 0)),
                  "analyzer": target.setting("analyzer"), "context header": _context_of(target)}
        for name, value in wanted.items():
            if value != theirs[name]:
                raise EmbedderMismatchError(
                    f"the target already holds chunks made with {name} {_describe(theirs[name])}, "
                    f"the source's are made with {_describe(value)}",
                    hint="migrate into a new or empty folder, or delete the target's documents first")
    target.bind(embedder_model=model, dim=int(dim or 0), analyzer=analyzer or "", replace=target.is_empty())
    if context is not None:
        target.set_setting(CONTEXT_SETTING, context)


def _describe(value: object) -> str:
    """A recorded setting as a message names it.

    >>> _describe(("intfloat/multilingual-e5-small", 384)), _describe("ko-en")
    ("'intfloat/multilingual-e5-small' (dim 384)", "'ko-en'")
    """
    if isinstance(value, tuple):
        return f"'{value[0]}' (dim {value[1]})"
    return f"'{value}'"


# -- verification ---------------------------------------------------------------------------------------------
def verify_copy(source: Store, target: Store, *, ledger: dict[str, FileRecord] | None = None,
                extra: Sequence[FileRecord] = (), sample: int = 20) -> Verification:
    """Compare the target with the source: counts, then ``sample`` chunks searched on both.

    ``extra``: the target's ledger rows of files the source does not have, left out of the target's counts.
    The sample is deterministic: chunks spread evenly over the source's files in path order and over each
    file's chunks. A sampled chunk agrees when the two stores' first hits (or, on a tie for first place, any of
    the tied hits) are the same chunk — same document id and text, as chunk ids differ between stores.
    """
    ledger = source.file_records() if ledger is None else ledger
    ours, theirs = source.stats(), target.stats()
    extra_ok = [r for r in extra if r.status == "ok"]
    result = Verification(counts={
        "documents": (ours.documents, theirs.documents - sum(r.n_documents for r in extra_ok)),
        "chunks": (ours.chunks, theirs.chunks - sum(r.n_chunks for r in extra_ok)),
        "files": (ours.files, theirs.files - len(extra_ok)),
        "failed_files": (ours.failed_files, theirs.failed_files - (len(extra) - len(extra_ok))),
    })
    if not result.counts_equal:
        result.mismatches.extend(f"{name}: {s} in the source, {t} in the target"
                                 for name, (s, t) in result.counts.items() if s != t)
    vectors, terms, labels = _sample_chunks(source, ledger, sample)
    if not labels:
        return result
    result.sampled = len(labels)
    dense = [_search_dense(store, np.stack(vectors)) for store in (source, target)]
    result.dense_agree, result.dense_overlap = _compare("dense", labels, dense[0], dense[1], result.mismatches)
    with_terms = [i for i, t in enumerate(terms) if t]
    if with_terms:
        queries = [terms[i] for i in with_terms]
        lexical = [_search_lexical(store, queries) for store in (source, target)]
        result.lexical_sampled = len(with_terms)
        result.lexical_agree, result.lexical_overlap = _compare(
            "bm25", [labels[i] for i in with_terms], lexical[0], lexical[1], result.mismatches)
    del result.mismatches[_MISMATCHES_KEPT:]
    return result


def spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all of them when ``k >= n``).

    >>> spread(10, 3), spread(2, 5), spread(5, 0)
    ([0, 3, 6], [0, 1], [])
    """
    if k >= n:
        return list(range(n))
    return [i * n // k for i in range(k)]


def _sample_chunks(source: Store, ledger: dict[str, FileRecord],
                   sample: int) -> tuple[list[Vectors], list[list[str]], list[str]]:
    """Vectors, terms and a label (``doc_id#ordinal``) of up to ``sample`` chunks of the source."""
    paths = sorted(p for p, r in ledger.items() if r.status == "ok" and r.n_chunks > 0)
    picked = [paths[i] for i in spread(len(paths), sample)]
    per_file = math.ceil(sample / len(picked)) if picked else 0
    vectors: list[Vectors] = []
    terms: list[list[str]] = []
    labels: list[str] = []
    for start in range(0, len(picked), 16):
        for unit in source.export_files(picked[start : start + 16]):
            for i in spread(len(unit.chunks), per_file):
                vectors.append(np.array(unit.vectors[i], dtype=np.float32))
                terms.append(list(unit.terms[i]))
                labels.append(f"{unit.chunks[i].doc_id}#{unit.chunks[i].ordinal}")
    return vectors[:sample], terms[:sample], labels[:sample]


def _search_dense(store: Store, queries: Vectors) -> list[list[Hit]]:
    return [store.hits(scored) for scored in store.search_dense(queries, VERIFY_K, Filter())]


def _search_lexical(store: Store, queries: list[list[str]]) -> list[list[Hit]]:
    return [store.hits(scored) for scored in store.search_lexical(queries, VERIFY_K, Filter())]


def _firsts(hits: list[Hit]) -> set[tuple[str, str]]:
    """The hits tied with the first one (same score up to float noise), as (doc id, text)."""
    best = hits[0].score
    return {(h.doc_id, h.text) for h in hits if math.isclose(h.score, best, rel_tol=1e-5, abs_tol=1e-6)}


def _top_agrees(ours: list[Hit], theirs: list[Hit]) -> bool:
    """Whether both stores put the same chunk first (either of the chunks tied for first counts).

    When every hit of both lists is tied for first, the tie runs past the list and each store may have cut it
    elsewhere: that agrees too, provided both found as many."""
    if not ours or not theirs:
        return not ours and not theirs
    first, other = _firsts(ours), _firsts(theirs)
    if first & other:
        return True
    return len(first) == len(ours) == len(theirs) == len(other) == VERIFY_K


def _compare(kind: str, labels: list[str], ours: list[list[Hit]], theirs: list[list[Hit]],
             mismatches: list[str]) -> tuple[int, float]:
    """(searches whose first hit agrees, mean top-k overlap); each disagreement is described in ``mismatches``."""
    agree, overlaps = 0, []
    for label, a, b in zip(labels, ours, theirs, strict=True):
        keys_a, keys_b = {(h.doc_id, h.text) for h in a}, {(h.doc_id, h.text) for h in b}
        overlaps.append(len(keys_a & keys_b) / max(len(keys_a), len(keys_b), 1))
        if _top_agrees(a, b):
            agree += 1
        else:
            mismatches.append(f"{kind} search with chunk {label}: the source's first hit is "
                              f"{a[0].doc_id if a else 'nothing'}, the target's {b[0].doc_id if b else 'nothing'}")
    return agree, sum(overlaps) / len(overlaps) if overlaps else 1.0


# -- opening the two knowledge bases ----------------------------------------------------------------------------
def _holds_kb(folder: Path) -> bool:
    return (folder / CONFIG_FILE).exists() or (folder / DB_FILE).exists()


def open_store(folder: Path) -> Store:
    """The store of the knowledge base in ``folder``, as its jisik.toml (``[store]``) configures it."""
    return create_store(load_config(folder / CONFIG_FILE), folder)


def check_folders(source: Path, target: Path) -> None:
    """Refuse a source that holds no knowledge base, a target that is the source, and a target that is a file."""
    if not _holds_kb(source):
        raise KnowledgeBaseNotFoundError(f"no knowledge base at {source}",
                                         hint="give --kb the folder that holds jisik.toml and jisik.sqlite3")
    if source.resolve() == target.resolve():
        raise ConfigError(f"the source and the target are the same knowledge base ({source})",
                          hint="give --to another folder")
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} is a file, not a knowledge-base folder", hint="give --to a folder")


def prepare_target(source: Path, target: Path) -> bool:
    """Give a target folder without a knowledge base the source's settings; returns whether it did.

    The target gets the source's jisik.toml; when the source is not in the embedded store, the source's settings
    with ``[store]`` reset to the embedded store instead — a copy of ``[store]`` could name the very Milvus
    collection being read. To copy into another backend, write the target's jisik.toml (``[store]``) first.
    """
    if _holds_kb(target):
        return False
    target.mkdir(parents=True, exist_ok=True)
    config_file = source / CONFIG_FILE
    config = load_config(config_file if config_file.exists() else None, environ={})
    if config_file.exists() and config.store.backend == StoreConfig().backend:
        shutil.copyfile(config_file, target / CONFIG_FILE)
    else:
        (target / CONFIG_FILE).write_text(dump_config(config.model_copy(update={"store": StoreConfig()})),
                                          encoding="utf-8")
    return True


@contextmanager
def opened(source: Path, target: Path) -> Iterator[tuple[Store, Store]]:
    """Both stores, closed at the end; a target folder without a knowledge base is given the source's settings
    (:func:`prepare_target`) once the source has opened."""
    check_folders(source, target)
    source_store = open_store(source)
    try:
        prepare_target(source, target)
        target_store = open_store(target)
        try:
            yield source_store, target_store
        finally:
            target_store.close()
    finally:
        source_store.close()
