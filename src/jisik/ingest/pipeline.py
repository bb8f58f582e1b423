"""Incremental, crash-safe ingestion: discover → hash → load → chunk → analyze → embed → write.

Files whose content hash matches the ledger are skipped before any parsing or embedding. Each
batch of files is written in one store transaction together with its ledger rows, so a killed
process leaves whole files or nothing, and a re-run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jisik.errors import IngestError, JisikError, LoaderError
from jisik.ingest.chunking import chunk_documents
from jisik.ingest.context import chunk_context_texts
from jisik.ingest.derived_metadata import add_derived_metadata
from jisik.ingest.loaders import CONVERTIBLE_EXTENSIONS, SUPPORTED_EXTENSIONS, load
from jisik.records import Chunk, Document, MetadataValue
from jisik.store.base import FileRecord, IngestUnit, chunk_key

if TYPE_CHECKING:
    from jisik.config import KBConfig
    from jisik.embed.base import Embedder, Vectors
    from jisik.store.base import Store
    from jisik.text.analyzers import Analyzer

logger = logging.getLogger(__name__)

# Embedding batches of this many chunks keep the engine busy while bounding memory and the work
# a crash can lose.
BATCH_CHUNKS = 256
# Chunks per embedder call: progress is reported after each (a 256-chunk call takes seconds on 2 cores).
EMBED_STEP = 64
# A file with more chunks than this is staged part by part (Store.stage): its analyser terms and vectors
# never all sit in memory at once (a 50 MB file held 1.16 GB before), an interrupt keeps the parts done,
# and searches see the file only when its last part is written.
LARGE_FILE_CHUNKS = 4 * BATCH_CHUNKS
HASH_BLOCK = 1 << 20

ProgressCallback = Callable[[str, int, int], None]


@dataclass(slots=True)
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    seconds: float = 0.0

    @property
    def ingested(self) -> int:
        return len(self.added) + len(self.updated)

    def to_dict(self) -> dict[str, object]:
        return {"added": self.added, "updated": self.updated, "unchanged": len(self.unchanged),
                "empty": self.empty, "failed": [{"path": p, "reason": r} for p, r in self.failed],
                "warnings": self.warnings,
                "pruned": self.pruned, "documents": self.documents, "chunks": self.chunks,
                "seconds": round(self.seconds, 3)}


@dataclass(slots=True)
class _Pending:
    record: FileRecord
    is_update: bool


@dataclass(slots=True)
class _Prepared:
    """One file (or in-memory document) ready to embed."""

    pending: _Pending
    documents: list[Document]
    chunks: list[Chunk]
    terms: list[list[str]]
    warnings: list[str] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def special_file_kind(mode: int) -> str | None:
    """What a non-regular, non-folder file is (None for regular files and folders).

    Reading a named pipe blocks until someone writes to it, and a device can be endless, so such files
    are never opened.

    >>> special_file_kind(stat.S_IFIFO | 0o644)
    'a named pipe'
    >>> special_file_kind(stat.S_IFREG | 0o644) is None
    True
    """
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kinds = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "not a file")


def discover(paths: Iterable[Path]) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """Expand files and folders into ``(file, root)`` pairs of supported files, sorted.

    Hidden files and folders (``.git``) are skipped. A path that does not exist is reported, and so
    are formats people often have but jisik cannot read (.hwp, .xlsx …), with how to convert them.
    Special files (named pipes, sockets, devices) are listed here and skipped by the ledger step, which
    stats every file anyway.
    """
    found: list[tuple[Path, Path]] = []
    missing: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if path.is_file():
            found.append((path, path.parent))
        elif path.is_dir():
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    file = Path(folder) / name
                    suffix = file.suffix.lower()
                    known = suffix in SUPPORTED_EXTENSIONS or suffix in CONVERTIBLE_EXTENSIONS
                    if known and not name.startswith("."):
                        found.append((file, path))  # special files among them: _plan, which stats each anyway
        elif os.path.lexists(path):  # a named pipe or device given by name, or a broken link
            found.append((path, path.parent))
        else:
            missing.append((str(raw), "no such file or folder"))
    unique = {f: r for f, r in found}
    return sorted(unique.items()), missing


class IngestPipeline:
    def __init__(self, store: Store, embedder: Embedder, analyzer: Analyzer, config: KBConfig,
                 progress: ProgressCallback | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.analyzer = analyzer
        self.config = config
        self.progress = progress or (lambda stage, done, total: None)
        self._chunks_planned = 0  # chunks of the files prepared so far (the total grows as files are read)
        self._chunks_done = 0
        self._tokens_done = 0
        self._tokens_per_char: float | None = None

    def run(self, paths: Sequence[Path], *, prune: bool = False, strict: bool = False,
            metadata: dict[str, MetadataValue] | None = None) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        files, missing = discover(paths)
        report.failed.extend(missing)
        if strict and missing:
            raise IngestError(f"{missing[0][0]}: {missing[0][1]}", hint="fix the path or drop --strict")
        ledger = self.store.file_records()
        todo = self._plan(files, ledger, report)
        if prune:
            self._prune(files, [Path(p).expanduser().resolve() for p in paths], ledger, report)
        self._process(todo, report, strict=strict, metadata=metadata or {})
        self.progress("index", 0, 1)
        self.store.commit_indexes()
        self.progress("index", 1, 1)
        report.seconds = time.perf_counter() - started
        return report

    def run_documents(self, documents: Sequence[Document]) -> IngestReport:
        """Ingest in-memory documents (no files). Each is tracked in the ledger as ``doc:<doc_id>``,
        so adding an unchanged document again is skipped and a changed one replaces its chunks."""
        started = time.perf_counter()
        report = IngestReport()
        ledger = self.store.file_records()
        prepared = []
        for doc in documents:
            if not doc.content_hash:
                doc.content_hash = hashlib.sha256(doc.text.encode("utf-8")).hexdigest()
            key = f"doc:{doc.doc_id}"
            known = ledger.get(key)
            if known and known.status == "ok" and known.content_hash == doc.content_hash:
                report.unchanged.append(key)
                continue
            record = FileRecord(path=key, root="doc:", content_hash=doc.content_hash, size=len(doc.text),
                                mtime=doc.mtime or 0.0)
            prepared.append((_Pending(record, is_update=known is not None), doc))
        batch: list[_Prepared] = []
        batch_chunks = 0
        for done, (pending, doc) in enumerate(prepared, start=1):
            add_derived_metadata(doc, self.config.metadata)
            counter = self.embedder if hasattr(self.embedder, "count_tokens") else None
            chunks = chunk_documents([doc], self.config.chunking, token_counter=counter)  # type: ignore[arg-type]
            batch.append(_Prepared(pending, [doc], chunks, []))
            batch_chunks += len(chunks)
            self._chunks_planned += len(chunks)
            if batch_chunks >= BATCH_CHUNKS * 4:
                self._flush(batch, report)
                batch, batch_chunks = [], 0
            self.progress("files", done, len(prepared))
        self._flush(batch, report)
        self.store.commit_indexes()
        report.seconds = time.perf_counter() - started
        return report

    def _analyze(self, batch: list[_Prepared]) -> None:
        """Fill in BM25 terms for a batch in one analyzer call (the analyzer is fastest in bulk).

        :meth:`_flush` runs it on a helper thread while the embedder works on the same batch."""
        texts = [text for item in batch for text in self._lexical_texts(item.documents, item.chunks)]
        terms = self.analyzer.analyze_batch(texts)
        offset = 0
        for item in batch:
            item.terms.extend(terms[offset : offset + len(item.chunks)])
            offset += len(item.chunks)

    def _plan(self, files: list[tuple[Path, Path]], ledger: dict[str, FileRecord],
              report: IngestReport) -> list[tuple[Path, Path, _Pending]]:
        todo = []
        failures: list[FileRecord] = []
        for done, (file, root) in enumerate(files, start=1):
            self.progress("scan", done, len(files))
            key = str(file)
            try:
                stat = file.stat()
                special = special_file_kind(stat.st_mode)
                if special:  # never opened: reading a named pipe blocks, a device can be endless
                    report.failed.append((key, f"not a regular file ({special}): skipped"))
                    continue
                known = ledger.get(key)
                # Same size and mtime as an ok ledger row: trust it without reading the file again.
                if known and known.status == "ok" and known.size == stat.st_size and known.mtime == stat.st_mtime:
                    report.unchanged.append(key)
                    continue
                digest = file_sha256(file)
            except OSError as exc:  # permission denied, vanished: shown by `jisik status` like any failure
                reason = exc.strerror or str(exc)
                report.failed.append((key, reason))
                failures.append(FileRecord(path=key, root=str(root), content_hash="", size=0, mtime=0.0,
                                           status="error", error=reason))
                continue
            if known and known.status == "ok" and known.content_hash == digest:
                report.unchanged.append(key)
                continue
            record = FileRecord(path=key, root=str(root), content_hash=digest, size=stat.st_size,
                                mtime=stat.st_mtime)
            todo.append((file, root, _Pending(record, is_update=known is not None and known.status == "ok")))
        if failures:
            self.store.record_failures(failures)
        return todo

    def _prune(self, files: list[tuple[Path, Path]], roots: list[Path], ledger: dict[str, FileRecord],
               report: IngestReport) -> None:
        present = {str(f) for f, _ in files}
        root_strs = [str(r) for r in roots]
        gone = [path for path, record in ledger.items()
                if path not in present and (record.root in root_strs
                                            or any(path.startswith(r + os.sep) for r in root_strs))
                and not Path(path).exists()]
        if gone:
            self.store.delete_files(gone)
            report.pruned.extend(gone)

    def _prepare(self, file: Path, root: Path, pending: _Pending, metadata: dict[str, MetadataValue]) -> _Prepared:
        # doc ids are relative to the root's parent, so they start with the ingested folder's name:
        # `jisik ingest ./manuals` gives "manuals/policies/returns.pdf".
        loaded = load(file, root=root.parent, config=self.config.loaders)
        documents = loaded.documents
        for doc in documents:
            doc.metadata.update(metadata)
            # after the user's --meta, so theirs and the loader's values are kept (only missing fields are added)
            add_derived_metadata(doc, self.config.metadata)
        counter = self.embedder if hasattr(self.embedder, "count_tokens") else None
        chunks = chunk_documents(documents, self.config.chunking, token_counter=counter)  # type: ignore[arg-type]
        # BM25 terms are filled in per batch by _flush, in one analyzer call beside the embedder.
        return _Prepared(pending, documents, chunks, [], list(loaded.warnings))

    def _process(self, todo: list[tuple[Path, Path, _Pending]], report: IngestReport, *, strict: bool,
                 metadata: dict[str, MetadataValue]) -> None:
        if not todo:
            return
        total = len(todo)
        batch: list[_Prepared] = []
        batch_chunks = 0
        done = 0
        # Loading and chunking of the next file run in a worker thread; Kiwi analysis of a whole
        # batch runs on another while the embedder works on that batch (see _flush).
        with ThreadPoolExecutor(max_workers=1) as pool:
            for future in _prefetch(pool, self._prepare, todo, metadata):
                file_key = todo[done][0]
                done += 1
                try:
                    prepared = future.result()
                except LoaderError as exc:
                    reason = f"{exc.reason} ({exc.hint})" if exc.hint else exc.reason
                    self._fail(report, str(file_key), reason, todo[done - 1][2].record, strict)
                    self.progress("files", done, total)
                    continue
                except JisikError as exc:
                    self._fail(report, str(file_key), exc.message, todo[done - 1][2].record, strict)
                    self.progress("files", done, total)
                    continue
                except Exception as exc:  # a parser bug must not stop the other files...
                    # ...but it is a bug, not a bad file: its traceback goes to the log (shown by `jisik --debug`),
                    # and JISIK_RAISE_UNEXPECTED=1 (set by the test suite) lets it fail the run.
                    logger.exception("unexpected error while loading %s", file_key)
                    if os.environ.get("JISIK_RAISE_UNEXPECTED") == "1":
                        raise
                    self._fail(report, str(file_key), f"{type(exc).__name__}: {exc} (a bug in jisik: please report "
                               "it with the output of `jisik --debug ingest …`)", todo[done - 1][2].record, strict)
                    self.progress("files", done, total)
                    continue
                report.warnings.extend(prepared.warnings)
                self._chunks_planned += len(prepared.chunks)
                if len(prepared.chunks) > LARGE_FILE_CHUNKS:
                    self._flush(batch, report)
                    batch, batch_chunks = [], 0
                    self._write_large(prepared, report)
                    self.progress("files", done, total)
                    continue
                batch.append(prepared)
                batch_chunks += len(prepared.chunks)
                if batch_chunks >= BATCH_CHUNKS:
                    self._flush(batch, report)
                    batch, batch_chunks = [], 0
                self.progress("files", done, total)
        self._flush(batch, report)

    def _fail(self, report: IngestReport, path: str, reason: str, record: FileRecord, strict: bool) -> None:
        report.failed.append((path, reason))
        record.status, record.error = "error", reason
        self.store.record_failures([record])
        if strict:
            raise IngestError(f"{path}: {reason}", hint="fix or remove the file, or drop --strict")

    def _flush(self, batch: list[_Prepared], report: IngestReport) -> None:
        if not batch:
            return
        texts = [text for item in batch for text in self._embedding_texts(item.documents, item.chunks)]
        # One Kiwi call for the batch (its fast path), overlapped with embedding. Analysing file by
        # file in the prefetch thread (one file ahead) made the embedder wait for Kiwi on every small
        # file: 768 one-passage files took 1.17x the embedder's own time before, 1.08x after
        # (median of 4 bracketed runs, 2-core box; docs/benchmarks-speed.md).
        with ThreadPoolExecutor(max_workers=1) as helper:
            analysis = helper.submit(self._analyze, batch)
            vectors = self._embed(texts)
            analysis.result()
        units, offset = [], 0
        for item in batch:
            units.append(IngestUnit(file=item.pending.record, documents=item.documents, chunks=item.chunks,
                                    vectors=vectors[offset : offset + len(item.chunks)], terms=item.terms))
            offset += len(item.chunks)
        self.store.write(units)
        for item in batch:
            self._count(item, report)

    def _embedding_texts(self, documents: Sequence[Document], chunks: Sequence[Chunk]) -> list[str]:
        """What the embedder sees: each chunk behind its context header ([chunking] header)."""
        return chunk_context_texts(documents, chunks, self.config.chunking.header)

    def _lexical_texts(self, documents: Sequence[Document], chunks: Sequence[Chunk]) -> list[str]:
        """What BM25 indexes: the chunk, behind its header only with [chunking] header_bm25."""
        fields = self.config.chunking.header if self.config.chunking.header_bm25 else []
        return chunk_context_texts(documents, chunks, fields)

    def _embed(self, texts: list[str]) -> Vectors:
        """Embed in steps of :data:`EMBED_STEP`, reporting chunks and tokens done after each step."""
        parts = []
        for start in range(0, len(texts), EMBED_STEP):
            step = texts[start : start + EMBED_STEP]
            parts.append(self.embedder.embed_documents(step))
            self._chunks_done += len(step)
            self._tokens_done += self._tokens_of(step)
            self.progress("chunks", self._chunks_done, self._chunks_planned)
            self.progress("tokens", self._tokens_done, 0)
        if not parts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.concatenate(parts)

    def _tokens_of(self, texts: list[str]) -> int:
        """Tokens in ``texts`` for the progress display: counted exactly on the first step, then from the
        characters at that step's ratio (tokenising every chunk again cost 4.5% of the embedding time)."""
        chars = sum(len(t) for t in texts)
        if self._tokens_per_char is None:
            count = getattr(self.embedder, "count_tokens", None)
            self._tokens_per_char = sum(count(texts)) / max(chars, 1) if count else 0.25
        return round(chars * self._tokens_per_char)

    def _write_large(self, item: _Prepared, report: IngestReport) -> None:
        """Stage a big file part by part (analysed and embedded once, durable, not yet searchable), then
        publish it in one transaction. Parts staged by an interrupted run are not embedded again."""
        record = item.pending.record
        staged = self.store.staged_texts(record)
        todo: dict[str, Chunk] = {}
        for chunk in item.chunks:
            key = chunk_key(chunk.text)
            if key not in staged:
                todo.setdefault(key, chunk)
        resumed = len(item.chunks) - len(todo)
        if resumed:
            self._chunks_done += resumed
            report.warnings.append(f"{record.path}: resumed, {resumed} of {len(item.chunks)} chunks were staged")
        parts = list(todo.values())
        with ThreadPoolExecutor(max_workers=1) as helper:
            for start in range(0, len(parts), BATCH_CHUNKS):
                part = parts[start : start + BATCH_CHUNKS]
                terms = helper.submit(self.analyzer.analyze_batch, self._lexical_texts(item.documents, part))
                vectors = self._embed(self._embedding_texts(item.documents, part))
                self.store.stage(record, part, vectors, terms.result())
        self.store.write([IngestUnit(file=record, documents=item.documents, chunks=item.chunks,
                                     vectors=np.zeros((0, self.embedder.dim), dtype=np.float32), terms=[],
                                     staged=True)])
        self._count(item, report)

    @staticmethod
    def _count(item: _Prepared, report: IngestReport) -> None:
        path = item.pending.record.path
        if not item.chunks:
            report.empty.append(path)
        (report.updated if item.pending.is_update else report.added).append(path)
        report.documents += len(item.documents)
        report.chunks += len(item.chunks)


def _prefetch(pool: ThreadPoolExecutor, prepare: Callable[..., _Prepared], todo: list[tuple[Path, Path, _Pending]],
              metadata: dict[str, MetadataValue]) -> Iterator[Future[_Prepared]]:
    """Yield futures in order, keeping one file's preparation running ahead (and no more in memory)."""
    previous: Future[_Prepared] | None = None
    for file, root, pending in todo:
        current = pool.submit(prepare, file, root, pending, metadata)
        if previous is not None:
            yield previous
        previous = current
    if previous is not None:
        yield previous
