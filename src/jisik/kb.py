"""KnowledgeBase: the façade the CLI, the server and library users call.

>>> kb = KnowledgeBase.open("./kb")                      # doctest: +SKIP
>>> kb.ingest(["./manuals"])                             # doctest: +SKIP
>>> hits = kb.search("반품 기간은 며칠인가요?", mode="hybrid", k=6)  # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from jisik.config import CONFIG_FILE, KBConfig, LLMConfig, RerankConfig, dump_config, load_config
from jisik.embed import Embedder, create_embedder
from jisik.errors import ConfigError, EmbedderMismatchError, KnowledgeBaseNotFoundError, QueryError
from jisik.filters import Filter, build_filter
from jisik.ingest.context import CONTEXT_SETTING, header_setting, hit_context_texts, parse_header_setting
from jisik.ingest.pipeline import IngestPipeline, IngestReport, ProgressCallback
from jisik.records import Answer, Document, Hit, MetadataValue
from jisik.retrieve.fusion import score_spread
from jisik.retrieve.searcher import Searcher, SearchOptions
from jisik.store import create_store
from jisik.store.ledger import DB_FILE
from jisik.store.writer_lock import hold_writer_lock
from jisik.text.analyzers import Analyzer, get_analyzer

FilterSpec = Filter | Mapping[str, Any] | Iterable[str] | None
if TYPE_CHECKING:
    from jisik.agent.loop import Agent
    from jisik.agent.tools import Tool
    from jisik.embed.base import Vectors
    from jisik.generate.answerer import Answerer, AnswerStream, TurnRecord
    from jisik.generate.chat import ChatSession
    from jisik.generate.llms.base import LLM
    from jisik.generate.prompts import PromptSet
    from jisik.guard.policy import Guard
    from jisik.retrieve.rerank.base import Reranker

WaitCallback = Callable[[str], None]  # told once: "waiting for ingest by pid N…"
_SAMPLING = ("temperature", "top_p", "top_k", "max_tokens", "seed", "stop")
_RESUME_TURNS = 1000  # a resumed chat loads at most this many earlier turns; memory keeps fewer anyway


class KnowledgeBase:
    """A folder holding ``jisik.toml``, the SQLite database and the derived indexes."""

    def __init__(self, path: Path, config: KBConfig, *, embedder: Embedder | None = None) -> None:
        self.path = path
        self.config = config
        self.store = create_store(config, path)  # the backend [store] names (jisik.registry.stores)
        self._embedder = embedder
        self._analyzer: Analyzer | None = None
        self._bound = False
        self._llms: dict[str, LLM] = {}
        self._extractive: Any = None
        self._prompts: Any = None
        self._guards: dict[bool, Guard] = {}
        self._catalogue_cache: tuple[int | None, Any] | None = None
        self._rerankers: dict[str, Reranker | None] = {}
        # one server process shares a KnowledgeBase between request threads: models load once, not per race
        self._parts_lock = threading.RLock()

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def init(cls, path: str | Path, config: KBConfig | None = None, *, exist_ok: bool = False) -> KnowledgeBase:
        """Create the folder and write ``jisik.toml`` with every setting spelled out."""
        folder = Path(path).expanduser()
        config_file = folder / CONFIG_FILE
        if config_file.exists() and not exist_ok:
            raise ConfigError(f"{folder} already holds a knowledge base", hint="open it, or choose another folder")
        existed = folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        written = not config_file.exists()
        if written:
            config_file.write_text(dump_config(config or KBConfig()), encoding="utf-8")
        try:
            return cls.open(folder, create=False)
        except BaseException:
            # a store that cannot open (an unreachable server, a missing token) leaves nothing half-made behind,
            # so the same `jisik init` works once the cause is fixed
            if written and not existed:
                shutil.rmtree(folder, ignore_errors=True)
            elif written:
                config_file.unlink(missing_ok=True)
            raise

    @classmethod
    def open(cls, path: str | Path, *, create: bool = False, embedder: Embedder | None = None,
             overrides: Mapping[str, Any] | None = None) -> KnowledgeBase:
        """Open the knowledge base in ``path``.

        A folder that holds none raises :class:`~jisik.errors.KnowledgeBaseNotFoundError` (naming the
        path and ``jisik init``) and is not created, so a mistyped path cannot open an empty knowledge
        base; ``create=True`` (or :meth:`init`) makes a missing one.
        """
        folder = Path(path).expanduser()
        config_file = folder / CONFIG_FILE
        if not config_file.exists() and not (folder / DB_FILE).exists():
            if not create:
                raise KnowledgeBaseNotFoundError(f"no knowledge base at {folder}",
                                                 hint=f"create one with `jisik init {folder}`")
            return cls.init(folder).__with_overrides(overrides, embedder)
        config = load_config(config_file, overrides=overrides)
        return cls(folder, config, embedder=embedder)

    def __with_overrides(self, overrides: Mapping[str, Any] | None, embedder: Embedder | None) -> KnowledgeBase:
        if not overrides and embedder is None:
            return self
        self.close()
        return KnowledgeBase(self.path, load_config(self.path / CONFIG_FILE, overrides=overrides),
                             embedder=embedder)

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    @property
    def read_only(self) -> bool:
        """Opened read-only (a read-only folder or mount, or ``JISIK_READ_ONLY=1``): search and ask work,
        nothing is written — not even the turn log."""
        return bool(self.store.read_only)

    # -- parts, created lazily (the embedder loads a model) -----------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._parts_lock:
                if self._embedder is None:
                    self._embedder = create_embedder(self.config.embedder)
        return self._embedder

    @property
    def analyzer(self) -> Analyzer:
        if self._analyzer is None:
            with self._parts_lock:
                if self._analyzer is None:
                    self._analyzer = get_analyzer(self.config.bm25.analyzer)
        return self._analyzer

    def _bind(self, *, embedder: bool = True) -> None:
        """Record the embedder and analyzer on first use, or check them against what the store recorded.

        ``embedder=False`` (a BM25 search, which never embeds): the analyzer is checked against the recorded
        one without loading the embedding model, which would cost a cold ``jisik search --mode bm25`` about
        1 s and 170 MB (docs/benchmarks.md, "Cold start"). A store that recorded nothing yet stays unbound.
        """
        if not self._bound and not embedder:
            recorded = self.store.stats()
            if recorded.embedder_model is not None and recorded.embedder_dim is not None:
                self.store.bind(embedder_model=recorded.embedder_model, dim=recorded.embedder_dim,
                                analyzer=self.analyzer.name)
            return
        if not self._bound:
            with self._parts_lock:
                if not self._bound:
                    self.store.bind(embedder_model=self.embedder.model, dim=self.embedder.dim,
                                    analyzer=self.analyzer.name)
                    self._bound = True

    def warm(self, *, llm: str | LLM | None = None) -> None:
        """Load what the first question would: the embedder (one query through it), the analyzer, the
        indexes and the LLM (``llm`` spec, default ``[llm]``), so a server's first request is not slow."""
        self.embedder.embed_queries(["warm-up"])
        self.analyzer.analyze_batch(["warm-up", "준비 운동"])  # Hangul: Kiwi loads now, not on the first question
        if not self.store.is_empty():
            self._bind()
        with self.store.reader():
            pass
        if self._resolve_llm(llm) is None and not self.store.is_empty():
            # one answer end to end loads what the extractive path loads lazily (the sentence splitter)
            self._extractive_answerer().answer("warm-up", self.search("warm-up", k=1))

    def passage(self, chunk_id: int) -> Hit | None:
        """One stored chunk (text, source, page, span) by id, as a score-less :class:`Hit`; None if absent."""
        from jisik.errors import StoreError

        with self.store.reader() as reader:
            try:
                found = reader.hits([(chunk_id, 0.0)])
            except StoreError:  # hits() treats an id it cannot find as index damage; here it is just absent
                return None
        return found[0] if found else None

    # -- operations -------------------------------------------------------------------------------
    @contextmanager
    def _writing(self, operation: str, wait: float | None, on_wait: WaitCallback | None) -> Iterator[None]:
        """The knowledge base's writer lock for one write operation (one writer at a time, any process)."""
        self.store.require_writable()
        with hold_writer_lock(self.path, operation, wait=wait, on_wait=on_wait):
            yield

    def ingest(self, paths: Sequence[str | Path], *, prune: bool = False, strict: bool = False,
               metadata: Mapping[str, MetadataValue] | None = None, progress: ProgressCallback | None = None,
               wait: float | None = None, on_wait: WaitCallback | None = None) -> IngestReport:
        """Add or update files and folders; unchanged files are skipped without re-embedding.

        While another process writes this knowledge base, waits up to ``wait`` seconds (None: as long as
        it takes, 0: not at all — :class:`~jisik.errors.StoreBusyError`), telling ``on_wait`` once."""
        with self._writing("ingest", wait, on_wait):
            self._bind()
            pipeline = IngestPipeline(self.store, self.embedder, self.analyzer, self._ingest_config(), progress)
            return pipeline.run([Path(p) for p in paths], prune=prune, strict=strict, metadata=dict(metadata or {}))

    def add_documents(self, documents: Sequence[Document], *, progress: ProgressCallback | None = None,
                      wait: float | None = None, on_wait: WaitCallback | None = None) -> IngestReport:
        """Ingest in-memory :class:`~jisik.records.Document` objects (no files needed).

        >>> doc = Document(doc_id="faq/1", source="faq", text="반품은 14일 이내 가능합니다.")  # doctest: +SKIP
        >>> kb.add_documents([doc])  # doctest: +SKIP
        """
        with self._writing("add_documents", wait, on_wait):
            self._bind()
            pipeline = IngestPipeline(self.store, self.embedder, self.analyzer, self._ingest_config(), progress)
            return pipeline.run_documents(documents)

    def _ingest_config(self) -> KBConfig:
        """The configuration new chunks are made with: ``[chunking] header`` as this knowledge base recorded it.

        A knowledge base's vectors must all come from the same kind of text. The header setting is recorded
        with the first chunks; a jisik.toml that does not name it (one written before headers existed) keeps
        the recorded one — ``none`` for a knowledge base that already held chunks then — and one that names
        a different setting is refused until ``jisik reindex --embeddings`` re-embeds everything with it.
        """
        chunking = self.config.chunking
        wanted = header_setting(chunking.header, chunking.header_bm25)
        recorded = self.store.setting(CONTEXT_SETTING)
        if recorded is None:
            recorded = wanted if self.store.is_empty() else header_setting([], bm25=False)
            self.store.set_setting(CONTEXT_SETTING, recorded)
        if recorded == wanted:
            return self.config
        if {"header", "header_bm25"} & chunking.model_fields_set:
            raise EmbedderMismatchError(
                f"this knowledge base's chunks were embedded with context header '{recorded}', "
                f"but [chunking] asks for '{wanted}'",
                hint=f"set [chunking] header back, or re-embed everything with `jisik reindex --kb {self.path} "
                     "--embeddings`")
        fields, bm25 = parse_header_setting(recorded)
        return self.config.model_copy(update={"chunking": chunking.model_copy(
            update={"header": fields, "header_bm25": bm25})})

    def search(self, query: str, *, mode: str | None = None, k: int | None = None, filters: FilterSpec = None,
               threshold: float | None = None, **options: Any) -> list[Hit]:
        """Top-``k`` chunks for ``query``. ``search(q) == search_batch([q])[0]``."""
        return self.search_batch([query], mode=mode, k=k, filters=filters, threshold=threshold, **options)[0]

    def search_batch(self, queries: Sequence[str], *, mode: str | None = None, k: int | None = None,
                     filters: FilterSpec = None, threshold: float | None = None, rerank: str | Reranker | None = None,
                     **options: Any) -> list[list[Hit]]:
        """Top-``k`` chunks for each query, read from one committed generation of the store.

        ``rerank`` (default ``[rerank]``): a spec (``"cross-encoder:/models/bge-reranker-v2-m3"``,
        ``"llm:ollama:qwen2.5:7b"``, ``"none"``) or a :class:`~jisik.retrieve.rerank.Reranker`. With one, the
        best ``max(k, [rerank] candidates)`` fused hits are reordered by it and cut to ``k``; each hit's
        ``score`` is then the reranker's (also in ``hit.scores["rerank"]``, beside the retrievers' scores).
        """
        unknown = set(options) - {"fetch_k", "lambda_mult", "fusion", "rrf_k", "dense_weight", "bm25_weight"}
        if unknown:
            raise QueryError(f"unknown search option(s): {', '.join(sorted(unknown))}",
                             hint="valid: mode, k, filters, threshold, rerank, fetch_k, lambda_mult, fusion, rrf_k, "
                                  "dense_weight, bm25_weight")
        search_options = SearchOptions.resolve(self.config.retrieval, build_filter(filters), mode=mode, k=k,
                                               threshold=threshold, **options)
        reranker = self.reranker if rerank is None else self._resolve_reranker(rerank)
        lexical_only = search_options.mode == "bm25"  # BM25 never embeds: the embedder is not loaded for it
        self._bind(embedder=not lexical_only)
        # read-only model/dim properties: the Embedder protocol's plain attributes do not admit them
        embedder = cast("Embedder", _DeferredEmbedder(self)) if lexical_only else self.embedder
        searcher = Searcher(self.store, embedder, self.analyzer)
        routing = self.config.routing
        # routing needs documents with derived metadata (companies, periods); most collections have none
        routed = routing.self_query != "off" and bool(self._catalogue())
        if reranker is None and not routed and routing.aggregate == "off":
            return searcher.search_batch(queries, search_options)
        # the routing boost and the aggregation reorder the whole candidate pool, the reranker its best
        # `candidates`: a passage the fusion ranked 15th can still come first
        reranked = max(search_options.k, self.config.rerank.candidates) if reranker else search_options.k
        pool = max(reranked, search_options.fetch_k if routed or routing.aggregate != "off" else 0)
        wide = replace(search_options, k=pool)
        rows = self._routed_search(searcher, list(queries), wide) if routed else searcher.search_batch(queries, wide)
        if routing.aggregate != "off":
            from jisik.retrieve.aggregate import aggregate_hits

            rows = [aggregate_hits(row, level=routing.aggregate, depth=routing.aggregate_depth,
                                   decay=routing.aggregate_decay) for row in rows]
        if reranker is not None:
            rows = reranker.rerank_batch(list(queries), [row[:reranked] for row in rows])
        return [row[: search_options.k] for row in rows]

    def _routed_search(self, searcher: Searcher, queries: list[str], options: SearchOptions) -> list[list[Hit]]:
        """Search with ``[routing] self_query``: the companies and periods a question names (matched to the values
        this knowledge base's documents hold) filter the search, or lift those documents' chunks."""
        from jisik.retrieve.self_query import boost_hits, llm_route, route_question

        routing = self.config.routing
        catalogue = self._catalogue()
        model = self._resolve_llm(None) if routing.self_query_llm else None  # the [llm] backend; none: the rules
        routes = [llm_route(q, catalogue, model) if model is not None else route_question(q, catalogue)
                  for q in queries]
        if routing.self_query == "boost":
            rows = searcher.search_batch(queries, options)
            # the boost is in standard deviations of the pool's scores: the same for every fusion, whatever its scale
            return [boost_hits(row, route, routing.boost * (score_spread([h.score for h in row]) or 1.0))
                    if route else row for row, route in zip(rows, routes, strict=True)]
        out = []
        for query, route in zip(queries, routes, strict=True):
            if route.filter:
                narrowed = replace(options, where=Filter(options.where.conditions + route.filter.conditions))
                hits = searcher.search_batch([query], narrowed)[0]
                if hits:  # a route that matches nothing searched (a stale catalogue): search everything
                    out.append(hits)
                    continue
            out.append(searcher.search_batch([query], options)[0])
        return out

    def catalogue(self) -> Any:
        """The companies, quarters and years the documents hold (:class:`~jisik.retrieve.self_query.Catalogue`)."""
        return self._catalogue()

    def _catalogue(self) -> Any:
        """The companies, quarters and years the documents hold, read once per committed generation."""
        from jisik.retrieve.self_query import catalogue_of

        generation = getattr(self.store, "generation", None)  # a backend without generations: read every time
        cached = self._catalogue_cache
        if cached is None or cached[0] != generation or generation is None:
            self._catalogue_cache = cached = (generation, catalogue_of(self.store, self.config.metadata.aliases))
        return cached[1]

    @property
    def reranker(self) -> Reranker | None:
        """The ``[rerank]`` reranker, loaded on first use (None when ``backend = "none"``)."""
        return self._resolve_reranker(self.config.rerank)

    def _resolve_reranker(self, rerank: str | Reranker | RerankConfig) -> Reranker | None:
        """A reranker for a spec or settings, created once per knowledge base; None means no reranking."""
        from jisik.retrieve.rerank import create_reranker, parse_rerank_spec

        if isinstance(rerank, RerankConfig):
            settings = rerank
        elif isinstance(rerank, str):
            overrides = parse_rerank_spec(rerank)
            if overrides["backend"] != self.config.rerank.backend:  # the configured model belongs to the old one
                overrides = {"model": None, **overrides}
            settings = self.config.rerank.model_copy(update=overrides)
        else:
            return rerank
        if settings.backend == "none":
            return None
        key = settings.model_dump_json()
        with self._parts_lock:
            if key not in self._rerankers:
                self._rerankers[key] = create_reranker(settings, resolve_llm=self._resolve_llm)
            return self._rerankers[key]

    def delete(self, target: str, *, wait: float | None = None, on_wait: WaitCallback | None = None) -> list[str]:
        """Delete documents by doc id, source, file path or folder; returns the doc ids removed."""
        candidates = [target]
        resolved = Path(target).expanduser()
        if resolved.exists() or resolved.is_absolute():
            candidates.append(str(resolved.resolve()))
        with self._writing("delete", wait, on_wait):
            doc_ids = sorted({d for c in candidates for d in self.store.find_documents(c)})
            if doc_ids:
                self.store.delete_documents(doc_ids)
                self.store.commit_indexes()
        return doc_ids

    def reindex(self, *, embeddings: bool = False, progress: ProgressCallback | None = None,
                wait: float | None = None, on_wait: WaitCallback | None = None) -> int:
        """Rebuild indexes from stored chunks: re-analyze BM25 terms, and with ``embeddings`` re-embed.

        Use it after changing ``[bm25] analyzer`` or ``[embedder]``; documents are not re-read.
        """
        with self._writing("reindex", wait, on_wait):
            return self._reindex(embeddings=embeddings, progress=progress)

    def _reindex(self, *, embeddings: bool, progress: ProgressCallback | None) -> int:
        report = progress or (lambda stage, done, total: None)
        total = self.store.stats().chunks
        # re-embedding applies [chunking] header as configured; re-analysing alone keeps the recorded one
        chunking = self.config.chunking if embeddings else self._ingest_config().chunking
        lexical_fields = chunking.header if chunking.header_bm25 else []
        done, after = 0, 0
        while page := self.store.chunk_texts(after=after, limit=256):
            part_ids = [i for i, _ in page]
            found = {hit.chunk_id: hit for hit in self.store.hits([(i, 0.0) for i in part_ids])}
            hits = [found[i] for i in part_ids]  # title, source, section and page make the headers
            self.store.replace_terms(part_ids, self.analyzer.analyze_batch(hit_context_texts(hits, lexical_fields)))
            if embeddings:
                self.store.replace_vectors(part_ids,
                                           self.embedder.embed_documents(hit_context_texts(hits, chunking.header)))
            done, after = done + len(page), part_ids[-1]
            report("reindex", done, max(total, done))
        if embeddings:
            self.store.set_setting(CONTEXT_SETTING, header_setting(chunking.header, chunking.header_bm25))
        self.store.bind(embedder_model=self.embedder.model, dim=self.embedder.dim, analyzer=self.analyzer.name,
                        replace=True)
        self._bound = True
        self.store.commit_indexes()
        return done

    def status(self) -> dict[str, Any]:
        with self.store.reader():  # loads the indexes, so their state (IVF training, delta) is reported too
            pass
        stats = self.store.stats()
        return {
            "path": str(self.path), "documents": stats.documents, "chunks": stats.chunks, "files": stats.files,
            "failed_files": [{"path": p, "reason": r} for p, r in self.store.failed_files()],
            "embedder": {"model": stats.embedder_model, "dim": stats.embedder_dim,
                         "backend": self.config.embedder.backend},
            "analyzer": stats.analyzer, "index": stats.index_kind, "disk_bytes": stats.disk_bytes,
            # how the vectors were made (a knowledge base from before context headers: none) and how search fuses
            "context_header": self.store.setting(CONTEXT_SETTING) or "none", "fusion": self.config.retrieval.fusion,
            **stats.extra,
        }

    def documents(self, pattern: str | None = None) -> list[dict[str, Any]]:
        """Documents (doc_id, source, title, chunks); ``pattern`` globs the id or source (``policies/*``)."""
        from jisik.filters import source_matches

        docs: list[dict[str, Any]] = []
        while page := self.store.documents(after=docs[-1]["doc_id"] if docs else None, limit=1000):
            docs.extend(page)
        docs.sort(key=lambda d: (d["source"], d["doc_id"]))
        if pattern is None:
            return docs
        return [d for d in docs if source_matches(pattern, d["doc_id"]) or source_matches(pattern, d["source"])]

    # -- answers ----------------------------------------------------------------------------------
    def ask(self, question: str, *, llm: str | LLM | None = None, k: int | None = None, mode: str | None = None,
            chain: str | None = None, filters: FilterSpec = None, language: str | None = None,
            log: bool = True, **sampling: Any) -> Answer:
        """Answer ``question`` from the documents, citing them: ``Answer(text, citations, usage)``.

        ``llm`` is a spec such as ``"ollama:qwen2.5:7b"``, ``"openai:http://localhost:8000/v1#model"``,
        ``"llamacpp:/models/m.gguf"`` or ``"extractive"`` (default: ``[llm]`` in jisik.toml), or an
        :class:`~jisik.generate.llms.base.LLM` object. ``sampling``: temperature, top_p, top_k, max_tokens, seed,
        stop (a tuple of strings).

        >>> answer = kb.ask("반품 기간은 며칠인가요?")        # doctest: +SKIP
        >>> answer.text, answer.citations[0].source            # doctest: +SKIP
        ('반품은 상품을 받은 날부터 14일 이내에 신청할 수 있습니다 [1]', 'policies/returns.md')
        """
        return self.ask_stream(question, llm=llm, k=k, mode=mode, chain=chain, filters=filters,
                               language=language, log=log, **sampling).result()

    def ask_stream(self, question: str, *, llm: str | LLM | None = None, k: int | None = None,
                   mode: str | None = None, chain: str | None = None, filters: FilterSpec = None,
                   language: str | None = None, log: bool = True, **sampling: Any) -> AnswerStream:
        """Like :meth:`ask`, streamed: iterate for text pieces, then read ``stream.answer``.

        Bad input (empty question, empty knowledge base, bad template) raises here, before iteration.
        """
        answerer = self.answerer(llm=llm, k=k, mode=mode, filters=filters, **sampling)
        return answerer.stream(question, chain=chain, language=language, log=log)

    def chat(self, *, llm: str | LLM | None = None, session: str | None = None, memory: str | None = None,
             k: int | None = None, mode: str | None = None, filters: FilterSpec = None,
             **sampling: Any) -> ChatSession:
        """A conversation: ``chat.ask(q)`` / ``chat.ask_stream(q)`` remember earlier turns.

        >>> chat = kb.chat()                                     # doctest: +SKIP
        >>> chat.ask("반품 기간은 며칠인가요?"); chat.ask("그럼 환불은요?")   # doctest: +SKIP
        """
        from jisik.generate.chat import ChatSession
        from jisik.generate.memory import Turn

        answerer = self.answerer(llm=llm, k=k, mode=mode, filters=filters, **sampling)
        # a session name already in the log continues that conversation (chat.resumed says how many turns)
        earlier = self.store.turns(limit=_RESUME_TURNS, session=session)[::-1] if session else []
        history = [Turn(t["question"], t["answer"], t["standalone_question"]) for t in earlier]
        return ChatSession(answerer, self.config.answer, session=session, memory=memory, history=history)

    def answerer(self, *, llm: str | LLM | None = None, k: int | None = None, mode: str | None = None,
                 filters: FilterSpec = None, **sampling: Any) -> Answerer:
        """The :class:`~jisik.generate.answerer.Answerer` for these settings (used by ask and chat)."""
        from jisik.generate.answerer import Answerer
        from jisik.generate.llms.base import GenerationOptions

        unknown = set(sampling) - set(_SAMPLING)
        if unknown:
            raise QueryError(f"unknown option(s): {', '.join(sorted(unknown))}",
                             hint=f"valid: llm, k, mode, chain, filters, language, log, {', '.join(_SAMPLING)}")
        prompts = self.prompt_set()  # templates first: a bad template is reported before any server is called
        model = self._resolve_llm(llm)
        settings = self.config.llm
        generation = GenerationOptions(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k,
                                       max_tokens=settings.max_tokens, stop=tuple(settings.stop),
                                       seed=settings.seed).with_(**sampling)
        answer_config = self.config.answer
        search_k = k or answer_config.k
        search_mode = mode or answer_config.mode
        self._bind()

        def search(question: str) -> list[Hit]:
            return self.search(question, k=search_k, mode=search_mode, filters=filters)

        return Answerer(search=search, is_empty=self.store.is_empty, llm=model,
                        extractive=self._extractive_answerer() if model is None else None,
                        prompts=prompts, config=answer_config, generation=generation,
                        backend_name="extractive" if model is None else model.name,
                        log=None if self.read_only else self._log_turn,  # read-only: turns are not logged
                        guard=self.guard(llm))

    def agent(self, *, llm: str | LLM | None = None, tools: Sequence[str | Tool | Callable[..., Any]] | None = None,
              strategy: str | None = None, session: str | None = None, memory: str | None = None,
              external: Sequence[Tool] = (), tool_choice: Any = "auto", **limits: Any) -> Agent:
        """An agent that answers with tools over this knowledge base (``[agent]`` in jisik.toml).

        ``tools``: built-in names (``kb_search``, ``kb_ask``, ``list_documents``, ``calculator``, ``today``),
        entry-point tool names, :class:`~jisik.agent.tools.Tool` objects or plain functions (made tools from their
        type hints). ``session`` continues a conversation from the log; ``memory`` picks its kind (``jisik chat``'s
        kinds). ``limits``: max_steps, timeout, step_tokens, observation_tokens, repeat_limit, retries.

        >>> agent = kb.agent(llm="openai:http://127.0.0.1:8080/v1#qwen")        # doctest: +SKIP
        >>> answer = agent.ask("Compare Apple's and Microsoft's gross margin")  # doctest: +SKIP
        >>> [step["tool"] for step in answer.trace if step["type"] == "tool"]  # doctest: +SKIP
        ['kb_search', 'kb_search']
        """
        from jisik.agent.builtin import BUILTIN_TOOLS, builtin_tools
        from jisik.agent.loop import Agent, AgentLimits
        from jisik.agent.tools import ToolSet, entry_point_tools
        from jisik.errors import AgentError
        from jisik.generate.chat import summarize_with
        from jisik.generate.llms.base import GenerationOptions
        from jisik.generate.memory import Memory, Turn

        settings = self.config.agent
        unknown = set(limits) - {"max_steps", "timeout", "step_tokens", "observation_tokens", "repeat_limit",
                                 "retries"}
        if unknown:
            raise QueryError(f"unknown agent option(s): {', '.join(sorted(unknown))}",
                             hint="valid: max_steps, timeout, step_tokens, observation_tokens, repeat_limit, retries")
        model = self._resolve_llm(llm)
        if model is None:
            raise AgentError("an agent needs an LLM; the extractive answerer cannot call tools",
                             hint="pass --llm (e.g. --llm openai:http://127.0.0.1:8080/v1#MODEL or "
                                  "--llm llamacpp:/models/m.gguf), or set [llm] backend")
        self._bind()
        toolset = ToolSet()
        wanted = list(tools) if tools is not None else list(settings.tools)
        named = [t for t in wanted if isinstance(t, str)]
        plugin_names = [n for n in named if n not in BUILTIN_TOOLS]
        plugins = {t.name: t for t in entry_point_tools(self, names=plugin_names)} if plugin_names else {}
        for item in wanted:
            if isinstance(item, str) and item in BUILTIN_TOOLS:
                toolset.add(builtin_tools(self, [item], llm=model, k=settings.k)[0])
            elif isinstance(item, str):
                if item not in plugins:
                    raise AgentError(f"unknown tool '{item}'", hint=f"built-in tools: {', '.join(BUILTIN_TOOLS)}; "
                                     "others come from packages (entry-point group jisik.tools)")
                toolset.add(plugins[item])
            else:
                toolset.add(item)
        for item in external:
            toolset.add(item)
        config = self.config.llm
        generation = GenerationOptions(temperature=config.temperature, top_p=config.top_p, top_k=config.top_k,
                                       max_tokens=config.max_tokens, stop=tuple(config.stop), seed=config.seed)
        values = {key: getattr(settings, key) for key in ("max_steps", "timeout", "step_tokens",
                                                          "observation_tokens", "repeat_limit", "retries")}
        conversation: Memory | None = None
        if session is not None or memory is not None:
            answer = self.config.answer
            conversation = Memory(kind=memory or answer.memory, turns_limit=answer.memory_turns,
                                  tokens_limit=answer.memory_tokens, count=model.count_tokens,
                                  summarize=summarize_with(model, self.prompt_set(), generation, answer.memory_tokens))
            earlier = self.store.turns(limit=_RESUME_TURNS, session=session)[::-1] if session else []
            conversation.extend(Turn(t["question"], t["answer"], t["standalone_question"]) for t in earlier)
        return Agent(model, toolset, strategy=strategy or settings.strategy,
                     limits=AgentLimits(**{**values, **limits}), generation=generation, guard=self.guard(model),
                     memory=conversation, log=None if self.read_only else self._log_turn,
                     language=self.config.answer.language, session=session, tool_choice=tool_choice,
                     external=[t.name for t in external], max_question_chars=self.config.answer.max_question_chars)

    def prompt_set(self) -> PromptSet:
        """The answer templates of this knowledge base (built-ins overridden by ``[answer] templates_dir``)."""
        from jisik.generate.prompts import PromptSet

        with self._parts_lock:
            if self._prompts is None:
                self._prompts = PromptSet(self.config.answer.templates_dir)
            prompts: PromptSet = self._prompts
            return prompts

    def guard(self, llm: str | LLM | None = None) -> Guard:
        """The guards for answers with ``llm`` (``[guard]``): remote LLMs get placeholders where ``auto`` says so."""
        from jisik.guard.policy import Guard, llm_is_remote

        if llm is None or isinstance(llm, str):
            remote = llm_is_remote(self._llm_settings(llm))
        else:  # an LLM object: remote when it talks to a server off this machine
            url = getattr(llm, "url", None) or getattr(llm, "base_url", None)
            remote = bool(url) and llm_is_remote(LLMConfig(backend="openai", url=str(url)))
        with self._parts_lock:
            if remote not in self._guards:
                judge = None
                if self.config.guard.grounding_judge:  # an LLM that rates each sentence too (slower, stronger)
                    from jisik.guard.policy import llm_judge

                    judge = llm_judge(self._resolve_llm(self.config.guard.grounding_judge))
                self._guards[remote] = Guard(self.config.guard, remote_llm=remote, embedder=self.embedder,
                                             analyzer=self.analyzer, judge=judge)
            return self._guards[remote]

    def llm_for(self, llm: str | LLM | None) -> LLM | None:
        """The LLM a ``--llm`` spec names, read over this knowledge base's ``[llm]`` settings and made once per
        knowledge base (None: the extractive answerer; an LLM object is returned as is)."""
        return self._resolve_llm(llm)

    def _resolve_llm(self, llm: str | LLM | None) -> LLM | None:
        """An LLM object for a spec, created once per knowledge base; None means extractive."""
        if llm is not None and not isinstance(llm, str):
            return llm
        from jisik.generate.llms import create_llm

        settings = self._llm_settings(llm)
        if settings.backend == "extractive":
            return None
        key = settings.model_dump_json()
        with self._parts_lock:
            if key not in self._llms:
                self._llms[key] = create_llm(settings)
            return self._llms[key]

    def _llm_settings(self, llm: str | None) -> LLMConfig:
        from jisik.generate.llms import parse_llm_spec

        overrides = parse_llm_spec(llm) if llm else {}
        if overrides.get("backend", self.config.llm.backend) != self.config.llm.backend:
            # another backend: the configured server, model and window belong to the old one
            overrides = {"url": None, "model": None, "context_window": None, **overrides}
        return self.config.llm.model_copy(update=overrides)

    def _extractive_answerer(self) -> Any:
        with self._parts_lock:
            if self._extractive is None:
                from jisik.generate.extractive import ExtractiveAnswerer

                self._extractive = ExtractiveAnswerer(self.embedder, self.analyzer)
            return self._extractive

    def _log_turn(self, record: TurnRecord) -> int:
        answer = record.answer
        guard = self.guard()
        clean = guard.for_log  # [guard] pii_logs: the log never holds detected personal data in clear
        citations = [{**c.to_dict(), "quote": clean(c.quote)} for c in answer.citations]
        grounding = [{**s, "text": clean(s["text"])} for s in answer.grounding]
        return self.store.log_turn({
            "created_at": record.created_at, "kind": record.kind, "session": record.session,
            "question": clean(answer.question), "standalone_question": clean(answer.standalone_question),
            "language": answer.language, "retrieved": [[cid, score] for cid, score in record.retrieved],
            "prompt_tokens": answer.usage.prompt_tokens, "completion_tokens": answer.usage.completion_tokens,
            "answer": clean(answer.text), "citations": citations, "found": int(answer.found),
            "backend": answer.backend, "latency_ms": record.latency_ms, "retrieval_ms": answer.usage.retrieval_ms,
            "first_token_ms": answer.usage.first_token_ms, "guard": answer.guard, "grounding": grounding,
            "trace": answer.trace,
        })

    def logs(self, *, limit: int = 20, session: str | None = None, turn_id: int | None = None) -> list[dict[str, Any]]:
        """Logged questions and answers, newest first (question, answer, citations, latency, tokens)."""
        if limit < 1:  # SQLite reads LIMIT -1 as "no limit"
            raise QueryError(f"limit must be at least 1, not {limit}")
        return self.store.turns(limit=limit, session=session, turn_id=turn_id)


class _DeferredEmbedder:
    """The knowledge base's embedder, loaded only if something calls it (a BM25 search never does)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self._kb = kb

    @property
    def model(self) -> str:
        return self._kb.embedder.model

    @property
    def dim(self) -> int:
        return self._kb.embedder.dim

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._kb.embedder.embed_documents(texts)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._kb.embedder.embed_queries(texts)
