"""SEC 10-Q: document-level retrieval from the raw PDFs, each framework with its own default pipeline.

Part of ``benchmarks/retrieval.py`` (``--datasets sec10q``); kept in its own module because, unlike the
other sets, every system here loads, splits and indexes the 20 PDFs itself:

- jisik: ``KnowledgeBase.ingest([folder])`` with its defaults (pypdfium2 loader, 800-character chunks
  with 100 overlap, Kiwi ``ko-en`` BM25, FAISS flat), searched in modes dense / bm25 / hybrid
  (default fusion: weighted).
- LangChain, as in its RAG tutorial: ``PyPDFDirectoryLoader`` (pypdf; ``silent_errors=True``, because its
  default raises on the two files pypdf cannot open and the run would stop) +
  ``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)`` + ``FAISS.from_documents``
  over the shared e5 embeddings + ``BM25Retriever.from_documents`` + ``EnsembleRetriever`` (0.5 / 0.5).
- LlamaIndex: ``SimpleDirectoryReader(folder).load_data()`` (its PDFReader, pypdf, one document per
  page; skips unreadable files) + ``VectorStoreIndex.from_documents`` (default ``SentenceSplitter``,
  1,024 tokens, overlap 200) over the shared e5 embeddings through a small ``BaseEmbedding`` adapter
  (no OpenAI) + ``BM25Retriever.from_defaults(docstore=...)`` + ``QueryFusionRetriever`` (reciprocal
  rerank, ``num_queries=1`` so no LLM is called), as in LlamaIndex's BM25 hybrid example.

k = 10 everywhere (LangChain's FAISS retriever default of 4 and LlamaIndex's 2 raised to 10).

Gold is document-level: ``Source Docs`` in ``qna_data.csv`` is a glob over file names (``*2023 Q3 AAPL*``
for one filing, ``*AAPL*`` for all four of a company); a retrieved chunk is a hit when its file matches.
Each system's top-10 chunks become a list of files, deduped in rank order; hit@k = a gold file among the
first k distinct files, MRR@10 = 1 / rank of the first gold file. Also: doc R@10 (share of a question's
gold files among the top-10 chunks' files; matters for the multi-document questions) and chunk P@10
(share of the 10 chunks that come from a gold file).

Speed: each system's ingest is timed twice, wall and process CPU. *Cold*: the embedding engine embeds
every chunk the system hands it, for real (through a wrapper that records the time spent inside it and
stores the vectors). *Warm*: the same ingest again right after, every vector now a cache lookup, so the time
is the pipeline's own work (load, split, index, store) without any overlap with embedding. Query
latency: one query at a time, p50/p95 over all questions, with query vectors precomputed (a cache
lookup), so **query embedding is excluded** for every system alike.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import hashlib
import json
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _common import langchain_embeddings
from _metrics import dedupe, hit_at_k, recall_at_k, reciprocal_rank_at_k

K = 10
NAME = "sec10q"
METRICS = ("hit@1", "hit@5", "hit@10", "MRR@10", "doc R@10", "chunk P@10")


# -- data -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    text: str
    glob: str
    qtype: str
    chunk_type: str
    gold: frozenset[str]


def load_questions(folder: Path, files: Sequence[str]) -> list[Question]:
    """The questions of ``qna_data.csv`` whose ``Source Docs`` glob matches at least one of ``files``.

    Gold = the matching file names (restricted to ``files``). The file has a UTF-8 byte order mark.
    """
    with (folder / "qna_data.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        pattern = row["Source Docs"].strip()
        gold = frozenset(f for f in files if fnmatch.fnmatch(f, pattern))
        if gold:
            out.append(Question(row["Question"].strip(), pattern, row["Question Type"], row["Source Chunk Type"],
                                gold))
    return out


# -- embeddings: one engine, a persistent per-text cache, time inside the engine recorded -----------------
class VectorCache:
    """Vectors of texts (keyed by role + SHA-256 of the text) saved as .npy + .json under ``folder``."""

    def __init__(self, folder: Path, dim: int) -> None:
        self.folder, self.dim = folder, dim
        self.rows: dict[str, np.ndarray] = {}
        keys_file, vectors_file = folder / "keys.json", folder / "vectors.npy"
        if keys_file.exists() and vectors_file.exists():
            keys = json.loads(keys_file.read_text(encoding="utf-8"))
            matrix = np.load(vectors_file)
            if matrix.shape == (len(keys), dim):
                self.rows = dict(zip(keys, matrix, strict=True))

    @staticmethod
    def key(role: str, text: str) -> str:
        return hashlib.sha256(f"{role}\0{text}".encode()).hexdigest()[:32]

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = list(self.rows)
        matrix = np.vstack([self.rows[k] for k in keys]) if keys else np.zeros((0, self.dim), np.float32)
        np.save(self.folder / "vectors.tmp.npy", matrix.astype(np.float32))
        (self.folder / "keys.tmp.json").write_text(json.dumps(keys), encoding="utf-8")
        (self.folder / "vectors.tmp.npy").replace(self.folder / "vectors.npy")
        (self.folder / "keys.tmp.json").replace(self.folder / "keys.json")


@dataclass
class EmbedLog:
    """What one system asked the engine for: texts, how many were embedded afresh, and the time it took."""

    texts: list[str] = field(default_factory=list)
    fresh: int = 0
    calls: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0


class SharedEmbedder:
    """A jisik ``Embedder`` over the real engine and a :class:`VectorCache`; every system reads through it.

    ``log`` is swapped per system, so each one's embedding time and volume is recorded apart. With
    ``cold`` set, every passage is embedded by the engine even when cached (a cold ingest must not gain
    from texts another system, or an earlier batch, already embedded); the vectors still go to the cache.
    """

    def __init__(self, inner: Any, cache: VectorCache) -> None:
        self.inner, self.cache = inner, cache
        self.model: str = inner.model
        self.dim: int = inner.dim
        self.log = EmbedLog()
        self.cold = False

    def _vectors(self, texts: Sequence[str], role: str) -> np.ndarray:
        wall, cpu = time.perf_counter(), time.process_time()
        keys = [VectorCache.key(role, t) for t in texts]
        cold = self.cold and role == "passage"
        missing = [i for i, k in enumerate(keys) if cold or k not in self.cache.rows]
        if missing:
            embed = self.inner.embed_documents if role == "passage" else self.inner.embed_queries
            vectors = np.asarray(embed([texts[i] for i in missing]), dtype=np.float32)
            for i, vector in zip(missing, vectors, strict=True):
                self.cache.rows[keys[i]] = vector
        out = np.vstack([self.cache.rows[k] for k in keys]) if keys else np.zeros((0, self.dim), np.float32)
        if role == "passage":
            self.log.texts.extend(texts)
            self.log.fresh += len(missing)
            self.log.calls += 1
            self.log.wall_s += time.perf_counter() - wall
            self.log.cpu_s += time.process_time() - cpu
        return out

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectors(texts, "passage")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectors(texts, "query")


# -- the three pipelines ----------------------------------------------------------------------------------
Search = Callable[[str], list[str]]  # question -> file names of the top-K chunks, best first


@dataclass
class Built:
    """One system after ingest: its searchers, what it loaded, and how long ingest took."""

    framework: str
    searchers: dict[str, Search]
    files_loaded: set[str]
    chunks: int
    wall_s: float
    cpu_s: float
    stages: dict[str, float]
    embed: EmbedLog
    notes: list[str] = field(default_factory=list)
    close: Callable[[], None] = lambda: None
    variants: dict[str, Search] = field(default_factory=dict)  # exploratory, not the default pipeline


@contextlib.contextmanager
def _clock() -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield out
    finally:
        out["wall_s"], out["cpu_s"] = time.perf_counter() - wall, time.process_time() - cpu


def build_jisik(folder: Path, embedder: SharedEmbedder, workdir: Path) -> Built:
    from jisik import KnowledgeBase

    path = workdir / "jisik-kb"
    shutil.rmtree(path, ignore_errors=True)
    with _clock() as clock:
        kb = KnowledgeBase.open(path, create=True, embedder=embedder)  # type: ignore[arg-type]
        report = kb.ingest([folder])
    status = kb.status()
    loaded = {Path(d["doc_id"]).name for d in kb.documents()}

    def searcher(mode: str) -> Search:
        return lambda q: [Path(h.doc_id).name for h in kb.search_batch([q], k=K, mode=mode)[0]]

    notes = [f"ingest warnings: {'; '.join(report.warnings)}"] if report.warnings else []
    if report.failed:
        notes.append(f"failed files: {report.failed}")
    return Built("jisik", {m: searcher(m) for m in ("dense", "bm25", "hybrid")}, loaded, status["chunks"],
                 clock["wall_s"], clock["cpu_s"], {}, embedder.log, notes, kb.close)


def build_langchain(folder: Path, embedder: SharedEmbedder) -> Built:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.document_loaders import PyPDFDirectoryLoader
        from langchain_community.retrievers import BM25Retriever
        from langchain_community.vectorstores import FAISS
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    stages: dict[str, float] = {}
    with _clock() as clock:
        t = time.perf_counter()
        pages = PyPDFDirectoryLoader(str(folder), silent_errors=True).load()
        stages["load_s"] = time.perf_counter() - t
        t = time.perf_counter()
        chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(pages)
        stages["split_s"] = time.perf_counter() - t
        t = time.perf_counter()
        store = FAISS.from_documents(chunks, langchain_embeddings(embedder))
        stages["faiss_s"] = time.perf_counter() - t
        t = time.perf_counter()
        bm25 = BM25Retriever.from_documents(chunks, k=K)
        stages["bm25_s"] = time.perf_counter() - t
        dense = store.as_retriever(search_kwargs={"k": K})
        ensemble = EnsembleRetriever(retrievers=[bm25, dense], weights=[0.5, 0.5])
    loaded = {Path(p.metadata["source"]).name for p in pages}

    def searcher(retriever: Any) -> Search:
        return lambda q: [Path(d.metadata["source"]).name for d in retriever.invoke(q)][:K]

    searchers = {"FAISS (e5)": searcher(dense), "BM25Retriever": searcher(bm25),
                 "EnsembleRetriever": searcher(ensemble)}
    return Built("LangChain", searchers, loaded, len(chunks), clock["wall_s"], clock["cpu_s"], stages,
                 embedder.log, [f"{len(pages):,} pages loaded"])


def build_llamaindex(folder: Path, embedder: SharedEmbedder, variants: bool = False) -> Built:
    try:  # SimpleDirectoryReader's PDF reader lives here; without it PDFs would be read as plain text
        import llama_index.readers.file  # noqa: F401
    except ImportError as exc:
        raise SystemExit("sec10q needs LlamaIndex's file readers: pip install llama-index-readers-file") from exc
    from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.core.llms import MockLLM
    from llama_index.core.retrievers import QueryFusionRetriever
    from llama_index.retrievers.bm25 import BM25Retriever
    from pydantic import PrivateAttr

    class JisikEmbedding(BaseEmbedding):
        """LlamaIndex adapter over the shared e5 embedder (no OpenAI; e5 prefixes added by the engine)."""

        _inner: Any = PrivateAttr()

        def __init__(self, inner: SharedEmbedder, **kwargs: Any) -> None:
            super().__init__(model_name=inner.model, **kwargs)
            self._inner = inner

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._inner.embed_queries([query])[0].tolist()  # type: ignore[no-any-return]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._inner.embed_documents([text])[0].tolist()  # type: ignore[no-any-return]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._inner.embed_documents(texts).tolist()  # type: ignore[no-any-return]

    stages: dict[str, float] = {}
    with _clock() as clock:
        t = time.perf_counter()
        documents = SimpleDirectoryReader(str(folder)).load_data()
        stages["load_s"] = time.perf_counter() - t
        t = time.perf_counter()
        index = VectorStoreIndex.from_documents(documents, embed_model=JisikEmbedding(embedder))
        stages["split_embed_index_s"] = time.perf_counter() - t
        t = time.perf_counter()
        bm25 = BM25Retriever.from_defaults(docstore=index.docstore, similarity_top_k=K)
        stages["bm25_s"] = time.perf_counter() - t
        vector = index.as_retriever(similarity_top_k=K)
        fusion = QueryFusionRetriever([vector, bm25], llm=MockLLM(), similarity_top_k=K, num_queries=1,
                                      mode="reciprocal_rerank", use_async=False)
    loaded = {d.metadata["file_name"] for d in documents}

    def searcher(retriever: Any) -> Search:
        return lambda q: [n.node.metadata["file_name"] for n in retriever.retrieve(q)][:K]

    searchers = {"VectorStoreIndex (e5)": searcher(vector), "BM25Retriever": searcher(bm25),
                 "QueryFusionRetriever": searcher(fusion)}
    built = Built("LlamaIndex", searchers, loaded, len(index.docstore.docs), clock["wall_s"], clock["cpu_s"],
                  stages, embedder.log, [f"{len(documents):,} page documents loaded"])
    if variants:
        # How much of LlamaIndex's lead comes from its default of putting metadata (page label, file path,
        # which names company and quarter) into the embedded and BM25 text: the same pipeline without it.
        from llama_index.core import Document

        bare = [Document(text=d.text, metadata=d.metadata, excluded_embed_metadata_keys=list(d.metadata),
                         excluded_llm_metadata_keys=list(d.metadata)) for d in documents]
        log, embedder.log = embedder.log, EmbedLog()  # not part of the timed ingest
        bare_index = VectorStoreIndex.from_documents(bare, embed_model=JisikEmbedding(embedder))
        embedder.log = log
        bare_vector = bare_index.as_retriever(similarity_top_k=K)
        bare_bm25 = BM25Retriever.from_defaults(docstore=bare_index.docstore, similarity_top_k=K)
        bare_fusion = QueryFusionRetriever([bare_vector, bare_bm25], llm=MockLLM(), similarity_top_k=K,
                                           num_queries=1, mode="reciprocal_rerank", use_async=False)
        built.variants = {"VectorStoreIndex (e5), no metadata in text": searcher(bare_vector),
                          "BM25Retriever, no metadata in text": searcher(bare_bm25),
                          "QueryFusionRetriever, no metadata in text": searcher(bare_fusion)}
    return built


# -- evaluation -------------------------------------------------------------------------------------------
def score(runs: Sequence[Sequence[str]], questions: Sequence[Question]) -> dict[str, float]:
    """Document-level metrics of chunk runs (each a list of the top-K chunks' file names)."""
    n = len(questions)
    out: dict[str, float] = {}
    files = [dedupe(r) for r in runs]
    for k in (1, 5, 10):
        out[f"hit@{k}"] = sum(hit_at_k(f, set(q.gold), k) for f, q in zip(files, questions, strict=True)) / n
    out["MRR@10"] = sum(reciprocal_rank_at_k(f, set(q.gold), 10) for f, q in zip(files, questions, strict=True)) / n
    out["doc R@10"] = sum(recall_at_k(f, set(q.gold), 10) for f, q in zip(files, questions, strict=True)) / n
    out["chunk P@10"] = sum(sum(x in q.gold for x in r[:K]) / K for r, q in zip(runs, questions, strict=True)) / n
    return out


def score_common(runs: Sequence[Sequence[str]], questions: Sequence[Question], common: set[str]) -> dict[str, float]:
    """:func:`score` as if every system had indexed only the files all of them could read.

    Keeps the questions with a gold file in ``common``, restricts their gold to it, and drops chunks of
    other files from every ranking (so a list can be shorter than K: conservative for the system that
    read more files, since it cannot refill the list).
    """
    keep = [i for i, q in enumerate(questions) if q.gold & common]
    subset = [Question(questions[i].text, questions[i].glob, questions[i].qtype, questions[i].chunk_type,
                       questions[i].gold & common) for i in keep]
    return score([[f for f in runs[i] if f in common] for i in keep], subset)


def _timed_queries(search: Search, questions: Sequence[Question]) -> tuple[list[list[str]], list[float]]:
    search(questions[0].text)  # warm-up (first-call imports and lazy loads are not query latency)
    runs, times = [], []
    for q in questions:
        t = time.perf_counter()
        runs.append(search(q.text))
        times.append((time.perf_counter() - t) * 1000)
    return runs, times


def _percentile(values: Sequence[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p))


def run(data: Path, engine: Any, engine_label: str, cache_dir: Path, *, limit_queries: int | None = None,
        files_limit: int | None = None, skip_peers: bool = False, runs_folder: Path | None = None,
        variants: bool = False) -> dict[str, Any]:
    """Build every system from the PDFs, ask every question, and return the report entry."""
    docs = data / "docs"
    all_files = sorted(p.name for p in docs.glob("*.pdf"))
    workdir = Path(tempfile.mkdtemp(prefix="jisik-sec10q-"))
    try:
        if files_limit:
            all_files = all_files[:files_limit]
            folder = workdir / "docs"  # a subset for a quick check: copied to /tmp, never into the repo
            folder.mkdir()
            for name in all_files:
                shutil.copy2(docs / name, folder / name)
        else:
            folder = docs
        questions = load_questions(data, all_files)[:limit_queries]
        cache = VectorCache(cache_dir / f"sec10q-{_slug(engine.model)}-{_slug(engine_label)}", engine.dim)
        shared = SharedEmbedder(engine, cache)
        started = time.perf_counter()
        shared.embed_queries([q.text for q in questions])
        query_embed_s = time.perf_counter() - started
        builders: list[Callable[[bool], Built]] = [lambda _v: build_jisik(folder, shared, workdir)]
        if not skip_peers:
            builders += [lambda _v: build_langchain(folder, shared), lambda v: build_llamaindex(folder, shared, v)]
        systems: list[dict[str, Any]] = []
        ingests: list[dict[str, Any]] = []
        for build in builders:
            shared.log, shared.cold = EmbedLog(), True
            built = build(variants)
            shared.cold = False
            cache.save()
            ingests.append(_ingest_entry(built, engine))
            print(f"  {built.framework} ingest (cold): {ingests[-1]}", file=sys.stderr, flush=True)
            try:
                for label, search in [*built.searchers.items(), *built.variants.items()]:
                    runs, times = _timed_queries(search, questions)
                    name = f"{built.framework} {label}"
                    entry = {"system": name, "framework": built.framework, "metrics": score(runs, questions),
                             "p50_ms": statistics.median(times), "p95_ms": _percentile(times, 95),
                             "by_type": _by_type(runs, questions), "runs": runs,
                             "variant": label in built.variants}
                    systems.append(entry)
                    print(f"  {name}: {entry['metrics']} p50 {entry['p50_ms']:.1f} ms", file=sys.stderr,
                          flush=True)
            finally:
                built.close()
            del built
        for build, ingest in zip(builders, ingests, strict=True):  # warm: every vector is a cache lookup
            shared.log = EmbedLog()
            built = build(False)
            built.close()
            ingest["warm"] = {"wall_s": built.wall_s, "cpu_s": built.cpu_s, "embed_wall_s": built.embed.wall_s,
                              "embedded_fresh": built.embed.fresh, "stages": built.stages}
            print(f"  {built.framework} ingest (warm): {ingest['warm']}", file=sys.stderr, flush=True)
            del built
        common = set.intersection(*(set(i["files_loaded"]) for i in ingests))
        answerable = [i for i, q in enumerate(questions) if q.gold & common]
        for entry in systems:
            runs = entry.pop("runs")
            if runs_folder is not None:
                target = runs_folder / NAME
                target.mkdir(parents=True, exist_ok=True)
                (target / f"{_slug(entry['system'])}.json").write_text(json.dumps(runs), encoding="utf-8")
            if len(answerable) < len(questions):
                entry["metrics_common"] = score_common(runs, questions, common)
        return {"kind": NAME, "files": len(all_files), "questions": len(questions),
                "questions_common": len(answerable), "files_common": len(common),
                "question_types": _counts(q.qtype for q in questions), "embedder": engine_label,
                "query_embed_s": query_embed_s, "ingest": ingests, "results": systems}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _ingest_entry(built: Built, engine: Any) -> dict[str, Any]:
    log = built.embed
    counter = getattr(engine, "count_tokens", None)
    tokens = sum(min(n, 512) for n in counter(log.texts)) if counter and log.texts else None
    return {"framework": built.framework, "files_loaded": sorted(built.files_loaded), "chunks": built.chunks,
            "wall_s": built.wall_s, "cpu_s": built.cpu_s, "embed_wall_s": log.wall_s, "embed_cpu_s": log.cpu_s,
            "embedded_texts": len(log.texts), "embedded_fresh": log.fresh, "embed_calls": log.calls,
            "embedded_chars": sum(map(len, log.texts)), "embedded_tokens_512": tokens,
            "stages": built.stages, "notes": built.notes}


def _by_type(runs: Sequence[Sequence[str]], questions: Sequence[Question]) -> dict[str, dict[str, float]]:
    out = {}
    for qtype in sorted({q.qtype for q in questions}):
        idx = [i for i, q in enumerate(questions) if q.qtype == qtype]
        out[qtype] = score([runs[i] for i in idx], [questions[i] for i in idx]) | {"n": len(idx)}
    return out


def _counts(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)


# -- report -----------------------------------------------------------------------------------------------
_SAME_MODE = {"dense": ("jisik dense", ("FAISS (e5)", "VectorStoreIndex (e5)")),
              "bm25": ("jisik bm25", ("BM25Retriever",)),
              "hybrid": ("jisik hybrid", ("EnsembleRetriever", "QueryFusionRetriever"))}


def _jisik_peer(system: str) -> str | None:
    """The jisik system of the same kind (dense / bm25 / hybrid), for latency ratios."""
    for jisik, suffixes in _SAME_MODE.values():
        if system == jisik or any(system.endswith(s) for s in suffixes):
            return jisik
    return None


def ingest_table(ingests: Sequence[dict[str, Any]]) -> list[str]:
    """Cold (engine embeds for real) and warm (vectors cached) ingest, with ratios to jisik."""
    jisik = next((i for i in ingests if i["framework"] == "jisik"), None)
    lines = ["| ingest | files | chunks | e5 tokens | cold wall s | of which embedding s | cold CPU s "
             "| warm wall s | warm CPU s | × jisik cold wall | × jisik warm wall | × jisik warm CPU |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def ratio(i: dict[str, Any], *path: str) -> str:
        a, b = i, jisik
        for step in path:
            a, b = (a or {}).get(step), (b or {}).get(step)  # type: ignore[union-attr]
        return f"{a / b:.2f}" if isinstance(a, float) and isinstance(b, float) and b else "–"

    for i in ingests:
        warm = i.get("warm", {})
        fresh = "" if i["embedded_fresh"] == i["embedded_texts"] else f" ({i['embedded_fresh']:,} fresh)"
        tokens = f"{i['embedded_tokens_512']:,}" if i.get("embedded_tokens_512") else "–"
        warm_cells = f"{warm['wall_s']:.1f} | {warm['cpu_s']:.1f}" if warm else "– | –"
        lines.append(f"| {i['framework']} | {len(i['files_loaded'])} | {i['chunks']:,} | {tokens} | "
                     f"{i['wall_s']:.1f} | {i['embed_wall_s']:.1f}{fresh} | {i['cpu_s']:.1f} | {warm_cells} | "
                     f"{ratio(i, 'wall_s')} | {ratio(i, 'warm', 'wall_s')} | {ratio(i, 'warm', 'cpu_s')} |")
    return lines


def render(entry: dict[str, Any]) -> str:
    """The sec10q section: quality + latency table, ingest table with ratios, per-type hit@5."""
    results, ingests = entry["results"], entry["ingest"]
    by_name = {r["system"]: r for r in results}
    head = (f"## sec10q: {entry['files']} PDFs, {entry['questions']} questions, document-level gold "
            f"(embedder: {entry['embedder']})")
    def quality(rows: Sequence[dict[str, Any]]) -> list[str]:
        out = ["| system | hit@1 | hit@5 | hit@10 | MRR@10 | doc R@10 | chunk P@10 | p50 ms | × jisik p50 |",
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            cells = " | ".join(f"{r['metrics'][m]:.3f}" for m in METRICS)
            ref = _jisik_peer(r["system"])
            base = by_name[ref]["p50_ms"] if ref in by_name else None
            ratio = f"{r['p50_ms'] / base:.1f}" if base else "–"
            out.append(f"| {r['system']} | {cells} | {r['p50_ms']:.1f} | {ratio} |")
        return out

    lines = [head, "", *quality([r for r in results if not r.get("variant")])]
    lines += ["", "p50 = median latency of one query at a time, query embedding excluded (precomputed, looked "
              "up); × jisik p50 = over the jisik search of the same kind (dense, bm25, hybrid)."]
    variants = [r for r in results if r.get("variant")]
    if variants:
        lines += ["", "Exploratory (not a default pipeline; `--variants`):", "", *quality(variants)]
    if entry["questions_common"] < entry["questions"]:
        lines += ["", f"As if every system had indexed only the {entry['files_common']} of {entry['files']} files "
                  f"that all of them could read: the {entry['questions_common']} questions with a gold file among "
                  "them, chunks of the other files dropped from every ranking:", "",
                  "| system | hit@1 | hit@5 | hit@10 | MRR@10 |", "|---|---:|---:|---:|---:|"]
        for r in results:
            m = r.get("metrics_common", r["metrics"])
            lines.append(f"| {r['system']} | " + " | ".join(f"{m[k]:.3f}" for k in METRICS[:4]) + " |")
    lines += ["", *ingest_table(ingests)]
    for i in ingests:
        for note in i["notes"]:
            lines.append(f"- {i['framework']}: {note}")
    types = sorted(next(iter(results))["by_type"]) if results else []
    if types:
        counts = entry["question_types"]
        lines += ["", "hit@5 by question type:", "",
                  "| system | " + " | ".join(f"{t} ({counts.get(t, 0)})" for t in types) + " |",
                  "|---|" + "---:|" * len(types)]
        for r in results:
            lines.append(f"| {r['system']} | " + " | ".join(f"{r['by_type'][t]['hit@5']:.3f}" for t in types) + " |")
    return "\n".join(lines)
