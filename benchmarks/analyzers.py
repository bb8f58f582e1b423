"""BM25 retrieval quality and analysis speed of jisik's lexical analysers on MS MARCO ko/en.

Corpus = every distinct positive passage, queries = every query, gold = that query's positives.
There are no hard negatives, so absolute numbers are high; use the gaps between analysers.

    python benchmarks/analyzers.py                  # the registered analysers, Korean and English
    python benchmarks/analyzers.py --variants       # plus the ko-en tuning variants
    python benchmarks/analyzers.py --limit 1000     # a quick run on the first 1,000 queries
    python benchmarks/analyzers.py --speed          # ko-en throughput against Kiwi alone

Results and the machine they ran on go to docs/benchmarks-analyzers.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

from jisik.text._kiwi import get_kiwi
from jisik.text.analyzers import (
    KOREAN_TAGS,
    Analyzer,
    EnglishAnalyzer,
    KoreanEnglishAnalyzer,
    WhitespaceAnalyzer,
    cjk_bigrams,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "msmarco_ko_en"
LUCENE_STOPWORDS = frozenset(
    str.split(
        "a an and are as at be but by for if in into is it no not of on or such that the their then "
        "there these they this to was will with"
    )
)


@dataclass
class Dataset:
    name: str
    corpus: list[str]
    queries: list[str]
    gold: list[set[int]]


def load(path: Path, name: str, limit: int | None) -> Dataset:
    """Distinct positive passages as the corpus; each query's gold is the ids of its positives."""
    rows = json.loads(path.read_text(encoding="utf-8"))[:limit]
    ids: dict[str, int] = {}
    queries: list[str] = []
    gold: list[set[int]] = []
    for row in rows:
        positives = row["positive"] if isinstance(row["positive"], list) else [row["positive"]]
        gold.append({ids.setdefault(p, len(ids)) for p in positives})
        queries.append(row["query"])
    return Dataset(name, list(ids), queries, gold)


class HangulBigramAnalyzer:
    """Baseline: the ``en`` analyser, but Hangul words become character bigrams (no morphology)."""

    name = "hangul-bigram"

    def __init__(self) -> None:
        self._en = EnglishAnalyzer()

    def analyze_batch(self, texts: Sequence[str]) -> list[list[str]]:
        out = []
        for terms in self._en.analyze_batch(texts):
            out.append([b for t in terms for b in (cjk_bigrams(t) if "\uac00" <= t[0] <= "\ud7a3" else [t])])
        return out

    def analyze(self, text: str) -> list[str]:
        return self.analyze_batch([text])[0]


def _named(analyzer: Analyzer, name: str) -> Analyzer:
    analyzer.name = name
    return analyzer


def variants() -> list[Callable[[], Analyzer]]:
    """ko-en tuning variants: each changes one choice of the default."""
    tags = KOREAN_TAGS
    return [
        lambda: _named(KoreanEnglishAnalyzer(korean_tags=tags - {"MAG"}), "ko-en -MAG"),
        lambda: _named(KoreanEnglishAnalyzer(korean_tags=tags | {"NP"}), "ko-en +NP"),
        lambda: _named(KoreanEnglishAnalyzer(korean_tags=tags | {"XSN"}), "ko-en +XSN"),
        lambda: _named(KoreanEnglishAnalyzer(korean_tags=tags - {"NNB"}), "ko-en -NNB"),
        lambda: _named(KoreanEnglishAnalyzer(korean_tags=tags - {"VV", "VA"}), "ko-en -VV/VA"),
        lambda: _named(KoreanEnglishAnalyzer(korean_tags=tags - {"XR"}), "ko-en -XR"),
        lambda: _named(KoreanEnglishAnalyzer(korean_stopwords=frozenset()), "ko-en no ko stop"),
        lambda: _named(KoreanEnglishAnalyzer(noun_compounds=False), "ko-en no compounds"),
        lambda: _named(KoreanEnglishAnalyzer(english_stopwords=LUCENE_STOPWORDS), "ko-en lucene33 en stop"),
        lambda: _named(EnglishAnalyzer(stopwords=LUCENE_STOPWORDS), "en lucene33 stop"),
        lambda: _named(EnglishAnalyzer(stopwords=frozenset()), "en no stop"),
    ]


@dataclass
class Result:
    analyzer: str
    dataset: str
    recall: dict[int, float]
    mrr10: float
    docs_per_s: float
    chars_per_s: float
    index_s: float
    vocab: int


def evaluate(analyzer: Analyzer, data: Dataset, batch: int) -> Result:
    t0 = time.perf_counter()
    corpus_terms: list[list[str]] = []
    for start in range(0, len(data.corpus), batch):
        corpus_terms.extend(analyzer.analyze_batch(data.corpus[start : start + batch]))
    analyze_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(corpus_terms, show_progress=False)
    index_s = time.perf_counter() - t1
    query_terms = [terms or ["\0"] for terms in analyzer.analyze_batch(data.queries)]
    k = 10
    docs, _ = retriever.retrieve(query_terms, k=k, show_progress=False)
    recall = {1: 0.0, 5: 0.0, 10: 0.0}
    mrr = 0.0
    for row, gold in zip(np.asarray(docs), data.gold, strict=True):
        ranked = [int(d) for d in row]
        for cut in recall:
            recall[cut] += len(gold.intersection(ranked[:cut])) / len(gold)
        mrr += next((1.0 / (r + 1) for r, d in enumerate(ranked) if d in gold), 0.0)
    n = len(data.queries)
    chars = sum(map(len, data.corpus))
    return Result(
        analyzer.name,
        data.name,
        {cut: v / n for cut, v in recall.items()},
        mrr / n,
        len(data.corpus) / analyze_s,
        chars / analyze_s,
        index_s,
        len(retriever.vocab_dict),
    )


def speed(data: Dataset, batch: int) -> None:
    """Analysis throughput of ko-en against Kiwi's own tokenizer alone, with 1 and 2 threads."""
    texts = data.corpus
    chars = sum(map(len, texts))
    print("\n| what | threads | docs/s | chars/s |\n|---|---|---|---|")
    for workers in (1, 2):
        kiwi = get_kiwi(workers)
        kiwi.tokenize("")
        t = time.perf_counter()
        for start in range(0, len(texts), batch):
            list(kiwi.tokenize(texts[start : start + batch]))
        dt = time.perf_counter() - t
        print(f"| Kiwi tokenize alone | {workers} | {len(texts) / dt:,.0f} | {chars / dt:,.0f} |", flush=True)
        analyzer = KoreanEnglishAnalyzer(num_workers=workers)
        t = time.perf_counter()
        for start in range(0, len(texts), batch):
            analyzer.analyze_batch(texts[start : start + batch])
        dt = time.perf_counter() - t
        print(f"| ko-en analyze_batch | {workers} | {len(texts) / dt:,.0f} | {chars / dt:,.0f} |", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="folder with msmarco_kor.json / msmarco_eng.json")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N queries")
    parser.add_argument("--batch", type=int, default=256, help="texts per analyze_batch call")
    parser.add_argument("--variants", action="store_true", help="also run the ko-en tuning variants")
    parser.add_argument("--lang", choices=["ko", "en", "both"], default="both")
    parser.add_argument("--speed", action="store_true", help="only time ko-en against Kiwi alone (Korean corpus)")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"data folder {args.data} not found; pass --data", file=sys.stderr)
        return 2

    t = time.perf_counter()
    get_kiwi().tokenize("")  # load the model outside the timed part
    print(f"Kiwi model load: {time.perf_counter() - t:.1f} s", file=sys.stderr)

    factories: list[Callable[[], Analyzer]] = [
        WhitespaceAnalyzer,
        HangulBigramAnalyzer,
        EnglishAnalyzer,
        KoreanEnglishAnalyzer,
    ]
    if args.variants:
        factories += variants()
    datasets = []
    if args.lang in ("ko", "both"):
        datasets.append(load(args.data / "msmarco_kor.json", "msmarco-ko", args.limit))
    if args.lang in ("en", "both"):
        datasets.append(load(args.data / "msmarco_eng.json", "msmarco-en", args.limit))

    if args.speed:
        speed(load(args.data / "msmarco_kor.json", "msmarco-ko", args.limit), args.batch)
        return 0
    print("| data | analyzer | R@1 | R@5 | R@10 | MRR@10 | docs/s | chars/s | BM25 index s | vocab |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for data in datasets:
        for factory in factories:
            analyzer = factory()
            if data.name == "msmarco-en" and analyzer.name.startswith(("hangul", "ko-en ")):
                continue  # Korean-only variants say nothing about English
            if data.name == "msmarco-ko" and analyzer.name.startswith("en "):
                continue
            r = evaluate(analyzer, data, args.batch)
            print(
                f"| {r.dataset} ({len(data.corpus)} passages) | {r.analyzer} | {r.recall[1]:.3f} | "
                f"{r.recall[5]:.3f} | {r.recall[10]:.3f} | {r.mrr10:.3f} | {r.docs_per_s:,.0f} | "
                f"{r.chars_per_s:,.0f} | {r.index_s:.2f} | {r.vocab:,} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
