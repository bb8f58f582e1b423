"""SEC 10-Q: routing questions to the documents they name, and ranking documents by all their chunks (issue 14,
part 4), against jisik's default hybrid search on the same knowledge base.

    .venv/bin/python benchmarks/sec10q_routing.py --vectors .bench/i14/sec-vectors --workdir .bench/i14/sec-part4

The knowledge base is jisik's default ingest of the 20 PDFs (derived metadata on: ``year``, ``quarter``,
``company``, ``company_name`` from file names, titles and cover pages), embedded through
``retrieval_sec10q.SharedEmbedder`` over a vector cache (``--vectors`` is read, never written: vectors it lacks
are embedded and saved under ``--workdir``). One hybrid search per question fetches a pool of ``--pool`` chunks;
every system below reorders or filters that search, so they differ only in the step measured:

- ``default``: the first 10 chunks of the pool (exactly ``kb.search(q, k=10)``).
- ``filter``: the search again under the self-query route's filter (:func:`jisik.retrieve.self_query.route_question`;
  no filter when the question names nothing, or nothing matches).
- ``boost w``: the pool with ``w`` x (share of the route's fields a chunk's document has) added to each fused score.
- ``aggregate``: the pool reordered by document (best chunk + 0.5 x second + 0.25 x third;
  :mod:`jisik.retrieve.aggregate`), first 10 chunks.
- combinations, and document rankings (``docs: ...``: every file of the 40-chunk pool, ranked by MaxP = the
  default's order, or by the aggregation) for the metrics that count files rather than chunks.

Metrics as in ``retrieval_sec10q.score`` (document-level gold: a chunk is a hit when its file matches the
question's glob): hit@1, hit@5, MRR@10 over the distinct files of the first 10 chunks, and doc R@10 (share of a
question's gold files among them). Each system's difference from ``default``: paired bootstrap, 95%, 2,000
resamples (``jisik.evaluate.metrics.paired_bootstrap``). The boost weights are reported side by side, not picked:
the 195 questions are the only SEC questions there are, so a weight chosen on them would be tuned on the test.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _metrics import dedupe, hit_at_k, recall_at_k, reciprocal_rank_at_k
from retrieval_sec10q import Question, SharedEmbedder, VectorCache, load_questions

K = 10
METRICS = ("hit@1", "hit@5", "MRR@10", "doc R@10")
BOOSTS = (0.05, 0.1, 0.2, 0.5)


def per_question(files: Sequence[str], question: Question) -> dict[str, float]:
    """The four metrics of one question from a ranked list of distinct files."""
    gold = set(question.gold)
    return {"hit@1": hit_at_k(files, gold, 1), "hit@5": hit_at_k(files, gold, 5),
            "MRR@10": reciprocal_rank_at_k(files, gold, 10), "doc R@10": recall_at_k(files, gold, 10)}


def chunk_files(hits: Sequence[Any]) -> list[str]:
    """Distinct files of the first K chunks, in rank order."""
    return [str(f) for f in dedupe(Path(h.doc_id).name for h in hits[:K])]


def doc_files(ranking: Sequence[tuple[str, float]]) -> list[str]:
    return [Path(doc).name for doc, _ in ranking]


def open_kb(workdir: Path, vectors: Path, data: Path, rebuild: bool,
            engine: str = "auto") -> tuple[Any, SharedEmbedder, dict[str, Any]]:
    from jisik import KnowledgeBase
    from jisik.config import EmbedderConfig
    from jisik.embed import create_embedder

    if engine == "hashing":  # a smoke test of this script, not a measurement
        from jisik.embed.hashing import HashingEmbedder

        inner: Any = HashingEmbedder(384)
    else:
        inner = create_embedder(EmbedderConfig(backend="auto"))
    cache = VectorCache(vectors, inner.dim)  # read only: saved below to the workdir's own copy
    cache.folder = workdir / "vectors"
    shared = SharedEmbedder(inner, cache)
    path = workdir / "kb"
    info: dict[str, Any] = {"cached_vectors": len(cache.rows)}
    if rebuild or not (path / "jisik.sqlite3").exists():
        shutil.rmtree(path, ignore_errors=True)
        started = time.perf_counter()
        kb = KnowledgeBase.open(path, create=True, embedder=shared)  # type: ignore[arg-type]
        report = kb.ingest([data / "docs"])
        cache.save()  # the embedding is the slow part: kept even if a later step fails
        info |= {"ingest_s": round(time.perf_counter() - started, 1), "embedded_fresh": shared.log.fresh,
                 "failed": report.failed}
    else:
        kb = KnowledgeBase.open(path, embedder=shared)  # type: ignore[arg-type]
    info["chunks"] = kb.status()["chunks"]
    return kb, shared, info


def evaluate(systems: dict[str, list[list[str]]], questions: Sequence[Question]) -> dict[str, Any]:
    from jisik.evaluate.metrics import paired_bootstrap

    scored = {name: [per_question(files, q) for files, q in zip(runs, questions, strict=True)]
              for name, runs in systems.items()}
    base = scored["default"]
    out: dict[str, Any] = {}
    for name, rows in scored.items():
        entry: dict[str, Any] = {}
        for metric in METRICS:
            values = [r[metric] for r in rows]
            mean = sum(values) / len(values)
            if name == "default":
                entry[metric] = {"mean": mean}
            else:
                diff, low, high = paired_bootstrap(values, [r[metric] for r in base], resamples=2000, seed=0)
                entry[metric] = {"mean": mean, "diff": diff, "low": low, "high": high}
        out[name] = entry
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from jisik.retrieve.aggregate import aggregate_hits, document_ranking
    from jisik.retrieve.self_query import boost_hits, catalogue_of, route_question

    data = Path(args.data)
    files = sorted(p.name for p in (data / "docs").glob("*.pdf"))
    questions = load_questions(data, files)[: args.limit]
    kb, shared, info = open_kb(Path(args.workdir), Path(args.vectors), data, args.rebuild, args.engine)
    try:
        catalogue = catalogue_of(kb.store)
        texts = [q.text for q in questions]
        started = time.perf_counter()
        routes = [route_question(t, catalogue) for t in texts]
        route_ms = (time.perf_counter() - started) * 1000 / len(texts)
        pool = kb.search_batch(texts, k=args.pool)
        filtered, fallbacks = [], 0
        for text, route, unfiltered in zip(texts, routes, pool, strict=True):
            hits = kb.search_batch([text], k=args.pool, filters=route.filter)[0] if route.filter else unfiltered
            if not hits:  # cannot happen for a route the catalogue vouched for; kept as the searcher would
                hits, fallbacks = unfiltered, fallbacks + 1
            filtered.append(hits)
        # the same steps through the knowledge base's own [routing] settings (what `jisik search` does)
        base = kb.config
        configured: dict[str, list[list[str]]] = {}
        for label, routing in CONFIGURED:
            kb.config = base.model_copy(update={"routing": base.routing.model_copy(update=routing)})
            configured[label] = [chunk_files(hits) for hits in kb.search_batch(texts, k=K)]
        kb.config = base
        shared.cache.save()
    finally:
        kb.close()

    def chunks(make: Callable[[int], Sequence[Any]]) -> list[list[str]]:
        return [chunk_files(make(i)) for i in range(len(questions))]

    systems: dict[str, list[list[str]]] = {
        "default": chunks(lambda i: pool[i]),
        "filter": chunks(lambda i: filtered[i]),
        **{f"boost {w}": chunks(lambda i, w=w: boost_hits(pool[i], routes[i], w)) for w in BOOSTS},
        "aggregate": chunks(lambda i: aggregate_hits(pool[i])),
        "filter + aggregate": chunks(lambda i: aggregate_hits(filtered[i])),
        **{f"boost {w} + aggregate": chunks(lambda i, w=w: aggregate_hits(boost_hits(pool[i], routes[i], w)))
           for w in (0.1, 0.2)},
        f"docs: MaxP of {args.pool}": [doc_files(document_ranking(p, decay=0.0)) for p in pool],
        f"docs: aggregate of {args.pool}": [doc_files(document_ranking(p)) for p in pool],
        f"docs: filter + aggregate of {args.pool}": [doc_files(document_ranking(p)) for p in filtered],
        **configured,
    }
    routed = [i for i, r in enumerate(routes) if r]
    with_filter = [i for i in routed if routes[i].filter]
    keeps_gold = [i for i in with_filter if set(files_of(routes[i], catalogue)) & set(questions[i].gold)]
    exact = [i for i in with_filter if set(files_of(routes[i], catalogue)) == set(questions[i].gold)]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": cpu_name(), "python": platform.python_version(),
        "questions": len(questions), "files": len(files), "pool": args.pool, "kb": info,
        "embedder": shared.model,
        "routing": {"routed": len(routed), "with_filter": len(with_filter), "filter_keeps_a_gold_file": len(keeps_gold),
                    "filter_is_exactly_gold": len(exact), "empty_fallbacks": fallbacks,
                    "route_ms_per_question": round(route_ms, 3),
                    "fields": _counts("+".join(sorted(routes[i].fields)) for i in routed)},
        "results": evaluate(systems, questions),
    }


# [routing] settings run through kb.search_batch; the boost is in standard deviations of the pool's fused scores
CONFIGURED: list[tuple[str, dict[str, Any]]] = [
    ("[routing] self_query = filter", {"self_query": "filter"}),
    *[(f"[routing] self_query = boost, boost = {w}", {"self_query": "boost", "boost": w}) for w in (0.5, 1.0, 2.0)],
]


def files_of(route: Any, catalogue: Any) -> list[str]:
    """The file names a route's filter keeps (the catalogue's entries matching its fields, as SEC file names)."""
    keep = [e for e in catalogue.entries if all(e.get(k) in v for k, v in route.fields.items())]
    return [f"{e['quarter'][:4]} Q{e['quarter'][-1]} {e['company']}.pdf" for e in keep
            if "quarter" in e and "company" in e]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _counts(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def render(report: dict[str, Any]) -> str:
    lines = [f"SEC 10-Q, {report['questions']} questions, {report['files']} PDFs, {report['kb']['chunks']:,} chunks, "
             f"pool {report['pool']}; {report['machine']}, {report['date']}", "",
             "| system | " + " | ".join(METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    for name, entry in report["results"].items():
        cells = []
        for metric in METRICS:
            m = entry[metric]
            cell = f"{m['mean']:.3f}"
            if "diff" in m:
                cell += f" ({m['diff']:+.3f} [{m['low']:+.3f}, {m['high']:+.3f}])"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    r = report["routing"]
    lines += ["", f"Routed {r['routed']} of {report['questions']} questions ({r['fields']}); {r['with_filter']} with a "
              f"filter, which keeps a gold file for {r['filter_keeps_a_gold_file']} and is exactly the gold files for "
              f"{r['filter_is_exactly_gold']}; {r['route_ms_per_question']} ms a question to route."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "sec10q"))
    parser.add_argument("--vectors", required=True, help="a retrieval_sec10q.VectorCache folder (read only)")
    parser.add_argument("--workdir", required=True, help="knowledge base and new vectors go here")
    parser.add_argument("--pool", type=int, default=40, help="chunks fetched per question (the default fetch_k)")
    parser.add_argument("--limit", type=int, default=None, help="first N questions only (a quick check)")
    parser.add_argument("--rebuild", action="store_true", help="ingest again even if the knowledge base exists")
    parser.add_argument("--out", default=None, help="write the report as JSON here")
    parser.add_argument("--engine", choices=["auto", "hashing"], default="auto",
                        help="hashing: check this script quickly with a fake embedder (numbers mean nothing)")
    args = parser.parse_args(argv)
    report = run(args)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    print(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
