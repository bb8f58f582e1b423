"""The extractive answerer end to end on SQuAD v1.1 dev: retrieve over all paragraphs, then answer.

For every question: ``kb.search`` (hybrid, k=6) over a knowledge base of all 2,067 dev paragraphs
(one Document per paragraph, doc_id = paragraph id, title = article; default chunking), then
``ExtractiveAnswerer.answer``. Reported:

- answer contains gold: the answer sentence(s) contain a gold answer (SQuAD normalisation);
- SQuAD EM and token F1 of the answer text (sentences without markers) against the gold answers;
- cited chunk contains gold: the first cited chunk, and any cited chunk, contains a gold answer;
- the ceiling: gold paragraph among the 6 hits (hit@6), and a gold answer anywhere in the hits;
- baselines: the first sentence of the top hit, and the answerer without an embedder (lexical);
- NOT_FOUND calibration: how often it says "not found" on the real hits (wrongly, mostly) and on
  hits from which the answer was taken away: the best hits outside the question's article, and the
  best hits without the gold paragraph (other paragraphs of the article may still hold the answer);
- the time the answerer adds per question, retrieval excluded.

With ``--msmarco-ko N`` it also runs a Korean check on MS MARCO Korean: each question with its
positive passage placed at a random rank among 5 BM25 hard negatives (Kiwi ``ko-en`` terms, over all
Korean passages), and the rate the chosen sentence comes from the positive passage.

    python benchmarks/answer_squad.py                         # everything (~25 min the first time here)
    python benchmarks/answer_squad.py --limit 1000 --json .bench/answer.json
    python benchmarks/answer_squad.py --limit 0 --msmarco-ko 500     # the Korean check only

The knowledge base, the question vectors and the retrieved hits are cached under .bench/answer-squad/,
so reruns only answer. Results go to docs/benchmarks-answer.md.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jisik.config import EmbedderConfig
from jisik.embed import Embedder, create_embedder
from jisik.embed.base import Vectors
from jisik.evaluate.metrics import exact_match, normalize_answer, token_f1  # official SQuAD v1.1 definitions
from jisik.generate.extractive import ExtractiveAnswerer, ExtractiveResult, candidate_spans
from jisik.kb import KnowledgeBase
from jisik.records import Document, Hit
from jisik.text.analyzers import get_analyzer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SQUAD = DATA / "squad_v1.1_dev" / "dev-v1.1.json"
MSMARCO_KO = DATA / "msmarco_ko_en" / "msmarco_kor.json"
BENCH = ROOT / ".bench" / "answer-squad"
K = 6
BATCH = 64
VARIANTS = ("all", "other-article", "no-paragraph")

def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """A gold answer, normalised, occurs in the normalised text on word boundaries.

    >>> contains_answer("It was won by the Denver Broncos.", ["Denver Broncos", "Broncos"])
    True
    >>> contains_answer("Broncosville", ["Broncos"])
    False
    """
    norm = f" {normalize_answer(text)} "
    return any(f" {normalize_answer(a)} " in norm for a in answers if normalize_answer(a))


# -- data ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    answers: tuple[str, ...]
    paragraph: str  # doc_id of its paragraph
    title: str


def load_squad(path: Path = SQUAD) -> tuple[list[Document], list[Question]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    documents, questions = [], []
    for article in data:
        title = article["title"]
        for p_index, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"{title}#{p_index}"
            documents.append(Document(doc_id=doc_id, source="squad-dev", text=paragraph["context"], title=title))
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                questions.append(Question(qa["id"], qa["question"], answers, doc_id, title))
    return documents, questions


# -- embedder with a question-vector cache ------------------------------------------------------------
class QueryCacheEmbedder:
    """Wraps an embedder; ``embed_queries`` answers from a precomputed table (retrieval only)."""

    def __init__(self, inner: Embedder, table: dict[str, np.ndarray]) -> None:
        self.inner, self.table = inner, table
        self.model, self.dim = inner.model, inner.dim

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self.inner.embed_documents(texts)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        missing = [t for t in dict.fromkeys(texts) if t not in self.table]
        if missing:
            self.table.update(zip(missing, self.inner.embed_queries(missing), strict=True))
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


def _digest(texts: Sequence[str]) -> str:
    return hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:12]


def question_vectors(embedder: Embedder, questions: Sequence[Question]) -> dict[str, np.ndarray]:
    texts = list(dict.fromkeys(q.text for q in questions))
    path = BENCH / f"questions-{_digest(texts)}.npy"
    if path.exists():
        vectors = np.load(path)
    else:
        print(f"embedding {len(texts):,} questions ...", file=sys.stderr)
        vectors = np.concatenate([embedder.embed_queries(texts[i : i + 256]) for i in range(0, len(texts), 256)])
        np.save(path, vectors)
    return dict(zip(texts, vectors, strict=True))


def open_kb(embedder: Embedder, documents: Sequence[Document]) -> KnowledgeBase:
    folder = BENCH / "kb"
    kb = KnowledgeBase.open(folder, create=True, embedder=embedder)
    if kb.status()["documents"] != len(documents):
        print(f"building the knowledge base in {folder} ({len(documents):,} paragraphs) ...", file=sys.stderr)
        t0 = time.perf_counter()
        kb.add_documents(documents)
        print(f"  done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return kb


def _hit_from_dict(d: dict[str, Any]) -> Hit:
    span = d.pop("span")
    return Hit(start=span[0], end=span[1], **d)


def retrieve(kb: KnowledgeBase, questions: Sequence[Question], variant: str) -> list[list[Hit]]:
    """Top-6 hybrid hits: over everything, outside the question's article, or without its paragraph."""
    path = BENCH / f"hits-{variant}-{_digest([q.qid for q in questions])}.json"
    if path.exists():
        return [[_hit_from_dict(h) for h in hits] for hits in json.loads(path.read_text())]
    key: Callable[[Question], str] = {"all": lambda q: "", "other-article": lambda q: q.title,
                                      "no-paragraph": lambda q: q.paragraph}[variant]
    field = {"other-article": "title", "no-paragraph": "doc_id"}.get(variant)
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        groups.setdefault(key(q), []).append(i)
    out: list[list[Hit]] = [[] for _ in questions]
    t0 = time.perf_counter()
    for value, rows in groups.items():
        filters = {field: {"ne": value}} if field else None
        for start in range(0, len(rows), BATCH):
            part = rows[start : start + BATCH]
            for row, hits in zip(part, kb.search_batch([questions[r].text for r in part], k=K, filters=filters),
                                 strict=True):
                out[row] = hits
    print(f"retrieved {variant}: {len(questions):,} questions in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    path.write_text(json.dumps([[h.to_dict() for h in hits] for hits in out]))
    return out


# -- evaluation -------------------------------------------------------------------------------------------
def answer_text(result: ExtractiveResult) -> str:
    return " ".join(s.text for s in result.sentences) if result.found else ""


def first_sentence(hits: Sequence[Hit]) -> ExtractiveResult:
    """Baseline: the first sentence of the top hit, always "found"."""
    from jisik.generate.extractive import SelectedSentence

    if not hits:
        return ExtractiveResult([], False, 0.0)
    spans = candidate_spans([hits[0].text])[0]
    if not spans:
        return ExtractiveResult([], False, 0.0)
    s, e = spans[0]
    return ExtractiveResult([SelectedSentence(0, s, e, hits[0].text[s:e], 1.0)], True, 1.0)


def score_run(questions: Sequence[Question], hits: Sequence[Sequence[Hit]],
              results: Sequence[ExtractiveResult]) -> dict[str, float]:
    n = len(questions)
    contains = em = f1 = first_cited = any_cited = not_found = words = 0.0
    for q, q_hits, r in zip(questions, hits, results, strict=True):
        text = answer_text(r)
        contains += contains_answer(text, q.answers) if text else 0.0
        em += exact_match(text, q.answers)
        f1 += token_f1(text, q.answers)
        cited = list(dict.fromkeys(s.hit_index for s in r.sentences)) if r.found else []
        first_cited += bool(cited) and contains_answer(q_hits[cited[0]].text, q.answers)
        any_cited += any(contains_answer(q_hits[i].text, q.answers) for i in cited)
        not_found += not r.found
        words += len(text.split())
    return {"contains": contains / n, "em": em / n, "f1": f1 / n, "first_cited": first_cited / n,
            "any_cited": any_cited / n, "not_found": not_found / n, "words": words / max(1.0, n - not_found)}


def ceiling(questions: Sequence[Question], hits: Sequence[Sequence[Hit]]) -> dict[str, float]:
    n = len(questions)
    gold_retrieved = sum(any(h.doc_id == q.paragraph for h in hs) for q, hs in zip(questions, hits, strict=True))
    answer_in_hits = sum(any(contains_answer(h.text, q.answers) for h in hs)
                         for q, hs in zip(questions, hits, strict=True))
    return {"hit@6": gold_retrieved / n, "answer_in_hits": answer_in_hits / n}


def timed_answers(answerer: ExtractiveAnswerer, questions: Sequence[Question],
                  hits: Sequence[Sequence[Hit]]) -> tuple[list[ExtractiveResult], list[float]]:
    results, millis = [], []
    for q, q_hits in zip(questions, hits, strict=True):
        t0 = time.perf_counter()
        results.append(answerer.answer(q.text, q_hits))
        millis.append((time.perf_counter() - t0) * 1000)
    return results, millis


def batched_answers(answerer: ExtractiveAnswerer, questions: Sequence[Question],
                    hits: Sequence[Sequence[Hit]]) -> list[ExtractiveResult]:
    out: list[ExtractiveResult] = []
    for start in range(0, len(questions), BATCH):
        out.extend(answerer.answer_batch([q.text for q in questions[start : start + BATCH]],
                                         hits[start : start + BATCH]))
    return out


# -- Korean check -----------------------------------------------------------------------------------------
def msmarco_ko(answerer: ExtractiveAnswerer, lexical: ExtractiveAnswerer, n: int, seed: int = 0) -> dict[str, Any]:
    """Positive passage at a random rank among 5 BM25 hard negatives; share of answers quoting it.

    Also the NOT_FOUND rate when the 6 best BM25 non-positives are given instead (MS MARCO labels are
    sparse, so some of those may in fact answer the question).
    """
    from jisik.store.bm25_index import LexicalIndex

    rows = json.loads(MSMARCO_KO.read_text(encoding="utf-8"))
    passages = list(dict.fromkeys(p for row in rows for p in row["positive"]))
    analyzer = get_analyzer("ko-en")
    index = LexicalIndex().build(np.arange(len(passages)), analyzer.analyze_batch(passages))
    rng = random.Random(seed)
    sample = rng.sample(rows, min(n, len(rows)))
    questions, hit_lists, negative_lists, gold_ranks = [], [], [], []
    for row in sample:
        positives = set(row["positive"])
        ranked = index.top_k(analyzer.analyze(row["query"]), 40, None)
        negatives = [passages[i] for i, _ in ranked if passages[i] not in positives][:K]
        while len(negatives) < K:  # pad with random passages when BM25 finds too few
            extra = rng.choice(passages)
            if extra not in positives and extra not in negatives:
                negatives.append(extra)
        gold = rng.randrange(K)
        questions.append(row["query"])
        hit_lists.append(_plain_hits([*negatives[:gold], row["positive"][0], *negatives[gold : K - 1]]))
        negative_lists.append(_plain_hits(negatives))
        gold_ranks.append(gold)
    out: dict[str, Any] = {"questions": len(questions)}
    for name, system in (("answerer", answerer), ("answerer, no embedder", lexical)):
        results, millis = [], []
        for q, hits in zip(questions, hit_lists, strict=True):
            t0 = time.perf_counter()
            results.append(system.answer(q, hits))
            millis.append((time.perf_counter() - t0) * 1000)
        first = sum(r.found and r.sentences[0].hit_index == g for r, g in zip(results, gold_ranks, strict=True))
        chosen = sum(r.found and any(s.hit_index == g for s in r.sentences)
                     for r, g in zip(results, gold_ranks, strict=True))
        negatives_only = system.answer_batch(questions, negative_lists)
        out[name] = {"first_from_positive": first / len(questions), "any_from_positive": chosen / len(questions),
                     "not_found": sum(not r.found for r in results) / len(questions),
                     "not_found_negatives_only": sum(not r.found for r in negatives_only) / len(questions),
                     "median_ms": statistics.median(millis)}
    out["examples"] = [{"question": q, "answer": answer_text(answerer.answer(q, h))}
                       for q, h in list(zip(questions, hit_lists, strict=True))[:3]]
    return out


def _plain_hits(texts: Sequence[str]) -> list[Hit]:
    return [Hit(chunk_id=i, score=1.0 / (i + 1), text=t, doc_id=f"p{i}", source="msmarco-ko", title=None,
                page=None, section=None, start=0, end=len(t)) for i, t in enumerate(texts)]


# -- report -----------------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def markdown(report: dict[str, Any]) -> str:
    lines = []
    if "squad" in report:
        sq = report["squad"]
        lines += [f"SQuAD v1.1 dev, {sq['questions']:,} questions, hybrid k={K}; "
                  f"gold paragraph retrieved (hit@6) {_pct(sq['ceiling']['hit@6'])}%, "
                  f"a gold answer somewhere in the hits {_pct(sq['ceiling']['answer_in_hits'])}%.", "",
                  "| system | answer contains gold % | EM | F1 | first cited chunk has gold % "
                  "| any cited chunk has gold % | says not found % | words/answer |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, m in sq["systems"].items():
            lines.append(f"| {name} | {_pct(m['contains'])} | {_pct(m['em'])} | {_pct(m['f1'])} | "
                         f"{_pct(m['first_cited'])} | {_pct(m['any_cited'])} | {_pct(m['not_found'])} | "
                         f"{m['words']:.1f} |")
        lines += ["", "NOT_FOUND calibration (answerer defaults):", "",
                  "| hits given | says not found % | a gold answer still in the hits % |", "|---|---:|---:|"]
        for name, m in sq["calibration"].items():
            lines.append(f"| {name} | {_pct(m['not_found'])} | {_pct(m['answer_in_hits'])} |")
        t = sq["timing"]
        lines += ["", f"Answerer time per question (retrieval excluded): median {t['median_ms']:.1f} ms, "
                      f"p95 {t['p95_ms']:.1f} ms with its sentence-vector cache as the run left it; "
                      f"cold cache (first {t['cold_n']} questions, cache off): median {t['cold_median_ms']:.1f} ms, "
                      f"p95 {t['cold_p95_ms']:.1f} ms; no embedder: median {t['lexical_median_ms']:.1f} ms."]
    if "msmarco_ko" in report:
        mk = report["msmarco_ko"]
        lines += ["", f"MS MARCO Korean, {mk['questions']:,} questions, positive at a random rank among "
                      f"{K - 1} BM25 hard negatives:", "",
                  "| system | first sentence from the positive % | any sentence from the positive % "
                  "| says not found % | says not found, negatives only % | median ms |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name in ("answerer", "answerer, no embedder"):
            m = mk[name]
            lines.append(f"| {name} | {_pct(m['first_from_positive'])} | {_pct(m['any_from_positive'])} | "
                         f"{_pct(m['not_found'])} | {_pct(m['not_found_negatives_only'])} | {m['median_ms']:.1f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N SQuAD questions (default all; 0 skips)")
    parser.add_argument("--msmarco-ko", type=int, default=300, help="Korean check sample size (0 skips)")
    parser.add_argument("--cold", type=int, default=200, help="questions timed with the vector cache off")
    parser.add_argument("--json", type=Path, default=None, help="write the full report here")
    args = parser.parse_args(argv)
    BENCH.mkdir(parents=True, exist_ok=True)
    embedder = create_embedder(EmbedderConfig())
    analyzer = get_analyzer("ko-en")
    # A cache big enough for every SQuAD sentence: the calibration runs revisit all paragraphs.
    answerer = ExtractiveAnswerer(embedder, analyzer, cache_size=200_000)
    lexical = ExtractiveAnswerer(None, analyzer)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"), "python": platform.python_version(), "machine": platform.machine(),
        "embedder": f"{type(embedder).__name__} {embedder.model}",
        "answerer": {"max_sentences": answerer.max_sentences, "min_score": answerer.min_score,
                     "weights": list(answerer.weights.as_array()), "dense_floor": answerer.dense_floor,
                     "second_margin": answerer.second_margin},
    }
    if args.limit != 0 and SQUAD.exists():
        documents, questions = load_squad()
        questions = questions[: args.limit] if args.limit else questions
        kb = open_kb(QueryCacheEmbedder(embedder, question_vectors(embedder, questions)), documents)
        hits = {v: retrieve(kb, questions, v) for v in VARIANTS}
        kb.close()
        results, millis = timed_answers(answerer, questions, hits["all"])
        cold = ExtractiveAnswerer(embedder, analyzer, cache_size=0)
        _, cold_ms = timed_answers(cold, questions[: args.cold], hits["all"][: args.cold])
        lexical_results, lexical_ms = timed_answers(lexical, questions, hits["all"])
        one = copy.copy(answerer)  # shares the sentence-vector cache
        one.max_sentences = 1
        systems = {
            "first sentence of top hit (baseline)": [first_sentence(h) for h in hits["all"]],
            "extractive, no embedder": lexical_results,
            "extractive (default)": results,
            "extractive, max_sentences=1": batched_answers(one, questions, hits["all"]),
        }
        calibration = {"real hits (all paragraphs)": {"not_found": sum(not r.found for r in results) / len(results),
                                                      **ceiling(questions, hits["all"])}}
        for variant, label in (("other-article", "best hits outside the question's article"),
                               ("no-paragraph", "best hits without the gold paragraph")):
            res = batched_answers(answerer, questions, hits[variant])
            calibration[label] = {"not_found": sum(not r.found for r in res) / len(res),
                                  **ceiling(questions, hits[variant])}
        report["squad"] = {
            "questions": len(questions), "ceiling": ceiling(questions, hits["all"]),
            "systems": {name: score_run(questions, hits["all"], r) for name, r in systems.items()},
            "calibration": calibration,
            "timing": {"median_ms": statistics.median(millis), "p95_ms": float(np.percentile(millis, 95)),
                       "cold_n": len(cold_ms), "cold_median_ms": statistics.median(cold_ms),
                       "cold_p95_ms": float(np.percentile(cold_ms, 95)),
                       "lexical_median_ms": statistics.median(lexical_ms)},
            "examples": [{"question": q.text, "gold": q.answers[0], "answer": answer_text(r)}
                         for q, r in list(zip(questions, results, strict=True))[:5]],
        }
    elif args.limit != 0:
        print(f"SQuAD not found at {SQUAD}; skipped", file=sys.stderr)
    if args.msmarco_ko and MSMARCO_KO.exists():
        report["msmarco_ko"] = msmarco_ko(answerer, lexical, args.msmarco_ko)
    print(markdown(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
