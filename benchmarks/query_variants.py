"""BM25 on original and perturbed Korean queries: question words, spacing (띄어쓰기) and one-jamo typos.

Issue 14, part 5. Every query analysis below meets the same index: chunks analysed with ``ko-en``'s
:meth:`analyze_batch`, scored by jisik's own :class:`~jisik.store.bm25_index.LexicalIndex` (lucene BM25,
k1 1.2, b 0.75, the store's defaults). Only the query side changes:

- ``index analysis``: the query analysed like a chunk (what jisik did before issue 14);
- ``-question words``: :meth:`KoreanEnglishAnalyzer.analyze_queries` without its space tolerance;
- ``+space tolerance``: ``analyze_queries`` as shipped (Kiwi forgives one space inside a morpheme);
- ``+typo fix``: and :func:`jisik.text.spelling.correct_terms` against the index's vocabulary;
- ``kiwi.space()``: the query re-spaced by Kiwi's own spacing model before ``analyze_queries`` (a
  candidate that was measured and not adopted).

Query sets, each seeded (``--seed``; every perturbation is drawn per query from ``random.Random(seed, query)``):

- ``original``;
- ``no spaces``: each space between two Hangul words removed with probability 1/2 (at least one);
- ``split words``: one space inserted at a random place inside one word of 3+ syllables;
- ``typo``: one jamo (initial, vowel or final) of one syllable changed at random, in one content word
  (a Hangul word of 2+ syllables whose first two syllables start a term of the index analysis).

Datasets: MS MARCO Korean (corpus = distinct positives, gold = the query's positives), Belebele Korean
(BEIR layout); MS MARCO English and SQuAD dev (original queries only: English must not change).

    python benchmarks/query_variants.py                       # everything (~10 min on 2 busy cores)
    python benchmarks/query_variants.py --datasets belebele-ko --limit 300

Results and the machine they ran on go to docs/benchmarks-retrieval.md ("Query side (issue 14)").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import machine
from _metrics import evaluate_run
from retrieval import DATASETS as RETRIEVAL_SETS
from retrieval import Dataset

from jisik.store.bm25_index import LexicalIndex
from jisik.text._kiwi import get_kiwi
from jisik.text.analyzers import KoreanEnglishAnalyzer
from jisik.text.spelling import correct_terms, split_syllable

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / ".bench" / "cache" / "query_variants"
K = 10
BATCH = 256


def _load(name: str) -> Dataset:
    """The same sets, corpora, queries and gold as ``benchmarks/retrieval.py`` (its loaders)."""
    relative, loader = RETRIEVAL_SETS[name]
    return loader(DATA / relative, name)


DATASETS: dict[str, Callable[[], Dataset]] = {name: (lambda n=name: _load(n))
                                              for name in ("msmarco-ko", "belebele-ko", "msmarco-en", "squad")}


# -- perturbations -------------------------------------------------------------------------------------------
_HANGUL_WORD = re.compile(r"[\uac00-\ud7a3]+")
_SPACE_BETWEEN_HANGUL = re.compile(r"(?<=[\uac00-\ud7a3]) (?=[\uac00-\ud7a3])")


def _rng(seed: int, text: str) -> random.Random:
    return random.Random(f"{seed}:{text}")


def remove_spaces(query: str, seed: int) -> str:
    """Each space between two Hangul words removed with probability 1/2, at least one.

    >>> remove_spaces("반품 기간은 며칠 인가요", 1) != "반품 기간은 며칠 인가요"
    True
    """
    spaces = [m.start() for m in _SPACE_BETWEEN_HANGUL.finditer(query)]
    if not spaces:
        return query
    rng = _rng(seed, query)
    drop = {s for s in spaces if rng.random() < 0.5} or {rng.choice(spaces)}
    return "".join(c for i, c in enumerate(query) if i not in drop)


def split_word(query: str, seed: int) -> str:
    """One space inserted inside one Hangul word of 3+ syllables (not next to its ends' particles).

    >>> split_word("반품기간은 며칠", 3).replace(" ", "") == "반품기간은며칠"
    True
    """
    words = [m for m in _HANGUL_WORD.finditer(query) if len(m.group()) >= 3]
    if not words:
        return query
    rng = _rng(seed, query)
    word = rng.choice(words)
    cut = word.start() + rng.randrange(1, len(word.group()) - 1)
    return query[:cut] + " " + query[cut:]


def typo(query: str, seed: int, is_content: Callable[[str], bool]) -> str:
    """One jamo of one syllable of one content word changed to another jamo of the same slot."""
    words = [m for m in _HANGUL_WORD.finditer(query) if len(m.group()) >= 2 and is_content(m.group())]
    if not words:
        return query
    rng = _rng(seed, query)
    word = rng.choice(words)
    at = word.start() + rng.randrange(0, min(len(word.group()), 3))  # in the stem, not a trailing particle
    parts = split_syllable(query[at])
    assert parts is not None
    initial, vowel, final = parts
    slot = rng.randrange(3)
    if slot == 0:
        initial = rng.choice([i for i in range(19) if i != initial])
    elif slot == 1:
        vowel = rng.choice([v for v in range(21) if v != vowel])
    else:
        final = rng.choice([f for f in range(28) if f != final])
    char = chr(0xAC00 + (initial * 21 + vowel) * 28 + final)
    return query[:at] + char + query[at + 1 :]


# -- BM25 ----------------------------------------------------------------------------------------------------
def corpus_terms(analyzer: KoreanEnglishAnalyzer, data: Dataset) -> list[list[str]]:
    """The chunks' terms (index analysis), cached on disk by corpus and analyser source."""
    source = (ROOT / "src" / "jisik" / "text" / "analyzers.py").read_bytes()
    tag = b"multi" if analyzer._multi_dict else b"lite"
    digest = hashlib.sha256(source + tag + "\0".join(data.corpus).encode()).hexdigest()[:16]
    path = CACHE / f"{data.name}-{digest}.json"
    if path.exists():
        cached: list[list[str]] = json.loads(path.read_text(encoding="utf-8"))
        return cached
    terms: list[list[str]] = []
    for start in range(0, len(data.corpus), BATCH):
        terms.extend(analyzer.analyze_batch(data.corpus[start : start + BATCH]))
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
    return terms


@dataclass
class Index:
    lexical: LexicalIndex
    df: dict[str, int]

    def frequency(self, term: str) -> int:
        return self.df.get(term, 0)


def build_index(terms: Sequence[Sequence[str]]) -> Index:
    df: Counter[str] = Counter()
    for row in terms:
        df.update(set(row))
    lexical = LexicalIndex(k1=1.2, b=0.75, method="lucene").build(np.arange(len(terms)), terms)
    return Index(lexical, dict(df))


def run(index: Index, query_terms: Sequence[Sequence[str]], gold: Sequence[set[int]]) -> dict[str, float]:
    ranked = [[i for i, _ in index.lexical.top_k(terms, K, None)] for terms in query_terms]
    return evaluate_run(ranked, list(gold), ks=(1, 5, 10))


QueryAnalysis = Callable[[Sequence[str], Index], list[list[str]]]


def analyses(analyzer: KoreanEnglishAnalyzer) -> dict[str, QueryAnalysis]:
    no_tolerance = KoreanEnglishAnalyzer(query_space_tolerance=0, multi_dict=analyzer._multi_dict)
    kiwi = get_kiwi(multi_dict=analyzer._multi_dict)

    def batched(fn: Callable[[list[str]], list[list[str]]], queries: Sequence[str]) -> list[list[str]]:
        out: list[list[str]] = []
        for start in range(0, len(queries), BATCH):
            out.extend(fn(list(queries[start : start + BATCH])))
        return out

    def typo_fixed(queries: Sequence[str], index: Index) -> list[list[str]]:
        return [correct_terms(t, index.frequency) for t in batched(analyzer.analyze_queries, queries)]

    def oov_typo_fixed(queries: Sequence[str], index: Index) -> list[list[str]]:
        out = []
        for q, terms in zip(queries, batched(analyzer.analyze_queries, queries), strict=True):
            unknown = {t.form for t in kiwi.tokenize(q) if t.oov}
            def frequency(term: str, unknown: set[str] = unknown) -> int:  # a known Kiwi word counts as indexed
                return index.frequency(term) if term in unknown or index.frequency(term) else 1

            out.append(correct_terms(terms, frequency))
        return out

    def respaced(queries: Sequence[str], index: Index) -> list[list[str]]:
        return batched(lambda qs: analyzer.analyze_queries(list(kiwi.space(qs))), queries)

    return {
        "index analysis": lambda qs, _: batched(analyzer.analyze_batch, qs),
        "-question words": lambda qs, _: batched(no_tolerance.analyze_queries, qs),
        "+space tolerance": lambda qs, _: batched(analyzer.analyze_queries, qs),
        "+typo fix": typo_fixed,
        "+typo fix, Kiwi OOV only": oov_typo_fixed,
        "kiwi.space()": respaced,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--limit", type=int, default=None, help="first N queries of each set")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--no-multi-dict", action="store_true",
                        help="Kiwi without its multi-word dictionary, for the index and the queries (cold start)")
    parser.add_argument("--originals", action="store_true", help="original queries only, no perturbed sets")
    args = parser.parse_args(argv)
    analyzer = KoreanEnglishAnalyzer(multi_dict=not args.no_multi_dict)
    results: list[dict[str, object]] = []
    print(f"machine: {machine()}", flush=True)
    print("\n| set | queries | query analysis | R@1 | R@5 | MRR@10 | ms/query |\n|---|---|---|---:|---:|---:|---:|")
    for name in args.datasets:
        data = DATASETS[name]()
        queries, gold = data.queries[: args.limit], data.gold[: args.limit]
        index = build_index(corpus_terms(analyzer, data))
        sets = {"original": queries}
        if data.name.endswith("-ko") and not args.originals:
            stems = {t[:2] for t in index.df if len(t) >= 2}
            sets |= {"no spaces": [remove_spaces(q, args.seed) for q in queries],
                     "split words": [split_word(q, args.seed) for q in queries],
                     "typo": [typo(q, args.seed, lambda w, stems=stems: w[:2] in stems) for q in queries]}
        for set_name, texts in sets.items():
            changed = sum(a != b for a, b in zip(texts, queries, strict=True))
            for label, analysis in analyses(analyzer).items():
                if not data.name.endswith("-ko") and label not in ("index analysis", "+typo fix", "+space tolerance"):
                    continue
                t0 = time.perf_counter()
                terms = analysis(texts, index)
                ms = (time.perf_counter() - t0) * 1000 / len(texts)
                scores = run(index, terms, gold)
                results.append({"dataset": name, "queries": set_name, "analysis": label, "changed": changed,
                                "n": len(texts), "ms_per_query": ms, **scores})
                print(f"| {name} | {set_name} ({changed:,} of {len(texts):,} changed) | {label} | "
                      f"{scores['R@1']:.3f} | {scores['R@5']:.3f} | {scores['MRR@10']:.3f} | {ms:.2f} |", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"machine": machine(), "seed": args.seed, "results": results}, indent=1,
                                       ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
