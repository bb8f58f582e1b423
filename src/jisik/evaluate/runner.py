"""Run an evaluation: retrieval over a knowledge base, and optionally answers (with an LLM judge).

Retrieval
    Each :class:`RetrievalRunConfig` (a mode, a depth, search options, optionally a chunk size) is
    run over every question that has gold documents, in batches through ``kb.search_batch``. Each gold
    reference is resolved against the knowledge base's documents first (:class:`~jisik.evaluate.gold.GoldIndex`):
    a gold doc id names one document (also a CSV/JSONL record by its own ``id_field`` id), a gold source
    one file, a glob every file it matches (so recall@k of ``*AAPL*`` is the share of AAPL filings
    found), a ``#page=N`` suffix one page of it. A hit counts as gold when it is on a gold document
    (and page). Ranks count chunks, so ``recall@5`` means "among the 5 chunks a user of ``-k 5`` would
    get"; a second chunk of an already found gold item is not credited twice.

    Gold documents that are not in the knowledge base stop the run (:class:`EvaluationError`, with
    the count and examples), because every metric would silently understate retrieval. With
    ``allow_missing_gold`` the run goes on: the missing references are listed in the report,
    questions none of whose gold is present are left out of the metrics, and missing references of
    the others are dropped from their gold sets.

Chunk sizes
    A config with ``chunk_size`` different from the knowledge base's own ``[chunking] size`` runs
    against a separate knowledge base built with that size in ``<kb>/evals/cache/chunks-<size>-<hash>``
    (``hash`` covers the whole configuration, so changing the embedder builds a new one). It is built
    from the same source files (the main knowledge base's ingestion ledger: each file is re-read from
    its path) plus the dataset's corpus if it has one, with the same embedder object, and updated
    incrementally: a manifest of file hashes lets an unchanged cache be reused without reading a file.
    Delete the cache folder to reclaim the space.

Answers
    :func:`run_answer_eval` asks every question that has reference answers (``kb.ask``) and scores
    exact match and F1 (KorQuAD normalisation for Korean questions, SQuAD's otherwise), citation
    accuracy, groundedness, found-rate and latency. Citation accuracy is the share of citations on a
    gold document (on the gold page, when the gold names one) for questions with gold, and, for those
    without, the share of cited chunks that contain a reference answer; each record says which
    (``citation_basis``) and the report states the definition used.
    An optional judge LLM rates faithfulness and relevance from 1 to 5, replying in JSON; replies
    that cannot be parsed are counted per metric and shown, never turned into a score. A judge that
    does not answer a probe request stops the evaluation before anything is written; a failure
    midway marks the result incomplete.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from jisik.errors import EvaluationError, JisikError
from jisik.evaluate import metrics
from jisik.evaluate.datasets import EvalDataset, EvalExample
from jisik.evaluate.gold import (
    GoldIndex,
    GoldItem,
    MissingGold,
    Resolution,
    check_gold,
    citation_basis,
    describe_matching,
    gold_citation_accuracy,
    missing_gold_error,
)
from jisik.evaluate.metrics import AnswerStyle
from jisik.evaluate.report import (
    AnswerRecord,
    AnswerResult,
    EvalReport,
    MetricValue,
    QuestionResult,
    RetrievedItem,
    RunResult,
)
from jisik.records import Document, Hit

if TYPE_CHECKING:
    from jisik.generate.llms.base import LLM
    from jisik.ingest.pipeline import IngestReport
    from jisik.kb import KnowledgeBase

__all__ = [
    "RetrievalRunConfig",
    "build_report",
    "check_judge",
    "ingest_corpus",
    "judge_answer",
    "parse_judge_reply",
    "run_answer_eval",
    "run_retrieval_eval",
    "variant_kb",
]

ProgressFn = Callable[[str, int, int], None]
JUDGE_METRICS = ("faithfulness", "relevance")
CACHE_FOLDER = Path("evals") / "cache"
MANIFEST = "eval-manifest.json"


def _quiet(stage: str, done: int, total: int) -> None:
    return None


@dataclass(slots=True)
class RetrievalRunConfig:
    """One retrieval setting to measure. ``k`` is the depth retrieved (default: the largest of ``ks``);
    ``options`` go to ``kb.search_batch`` (``fetch_k``, ``lambda_mult``, ``fusion``, ``filters``, …)."""

    name: str
    mode: str | None = None
    k: int | None = None
    chunk_size: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


# --- corpus and chunk-size variants ------------------------------------------------------------------


def ingest_corpus(kb: KnowledgeBase, dataset: EvalDataset, *, progress: ProgressFn | None = None) -> IngestReport:
    """Add the dataset's corpus to ``kb`` (incremental: documents already there unchanged are skipped)."""
    if not dataset.corpus:
        raise EvaluationError(f"dataset '{dataset.name}' has no corpus to ingest",
                              hint="ingest its documents with `jisik ingest`")
    return kb.add_documents(dataset.corpus, progress=progress)


def _variant_chunking(kb: KnowledgeBase, size: int) -> Any:
    from jisik.config import ChunkingConfig

    current = kb.config.chunking
    overlap = current.overlap if current.overlap < size else size // 8
    try:
        return ChunkingConfig(**{**current.model_dump(), "size": size, "overlap": overlap})
    except ValidationError as exc:
        raise EvaluationError(f"chunk size {size} is not valid: {exc.errors()[0]['msg']}",
                              hint="use a positive size, e.g. --chunk-sizes 400,800") from exc


def variant_kb(kb: KnowledgeBase, chunk_size: int, dataset: EvalDataset | None = None, *,
               cache_dir: Path | None = None, progress: ProgressFn | None = None) -> KnowledgeBase:
    """``kb`` itself when it already uses ``chunk_size``, else a cached copy re-chunked to that size.

    The copy holds the main knowledge base's ingested files (re-read from their paths) and the
    dataset's corpus; it shares ``kb``'s embedder, so the model is loaded once.
    """
    from jisik.config import dump_config
    from jisik.ingest.loaders import load_file
    from jisik.kb import KnowledgeBase

    if chunk_size == kb.config.chunking.size:
        return kb
    config = kb.config.model_copy(update={"chunking": _variant_chunking(kb, chunk_size)})
    digest = hashlib.sha256(dump_config(config).encode("utf-8")).hexdigest()[:10]
    folder = (cache_dir or kb.path / CACHE_FOLDER) / f"chunks-{chunk_size}-{digest}"
    files = {path: record for path, record in kb.store.file_records().items()
             if record.status == "ok" and not path.startswith("doc:")}
    corpus = dataset.corpus if dataset and dataset.corpus else []
    if not files and not corpus:
        raise EvaluationError(
            f"cannot build a knowledge base with chunk size {chunk_size}: {kb.path} has no ingested files to "
            "re-read and the dataset has no corpus",
            hint="documents added from memory cannot be re-chunked; drop --chunk-sizes or use a dataset with a corpus")
    gone = [path for path in files if not Path(path).exists()]
    if gone:
        raise EvaluationError(
            f"cannot build the chunk size {chunk_size} variant: {len(gone)} ingested file(s) no longer exist, "
            f"e.g. {gone[0]}", hint="run `jisik ingest … --prune` so the knowledge base matches the files")
    manifest = {"files": {p: r.content_hash for p, r in sorted(files.items())},
                "corpus": hashlib.sha256("\n".join(f"{d.doc_id}\t{hashlib.sha256(d.text.encode()).hexdigest()}"
                                                   for d in corpus).encode("utf-8")).hexdigest()}
    variant = KnowledgeBase.init(folder, config, exist_ok=True)
    variant.close()
    variant = KnowledgeBase.open(folder, create=False, embedder=kb.embedder)
    manifest_file = folder / MANIFEST
    try:
        stored = json.loads(manifest_file.read_text(encoding="utf-8")) if manifest_file.exists() else None
    except (OSError, json.JSONDecodeError):
        stored = None
    if stored == manifest:
        return variant
    documents: list[Document] = []
    for path, record in files.items():
        documents.extend(load_file(Path(path), root=Path(record.root).parent, config=kb.config.loaders))
    documents.extend(corpus)
    wanted = {d.doc_id for d in documents}
    variant.add_documents(documents, progress=progress)
    for stale in [d["doc_id"] for d in variant.documents() if d["doc_id"] not in wanted]:
        variant.delete(stale)
    manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    return variant


# --- retrieval ---------------------------------------------------------------------------------------


def _check_ks(ks: Sequence[int]) -> list[int]:
    cleaned = sorted(set(ks))
    if not cleaned or cleaned[0] < 1:
        raise EvaluationError(f"k values must be positive integers, got {list(ks)}", hint="e.g. --k 1,3,5,10")
    return cleaned


def _ranking(hits: Sequence[Hit], items: Sequence[GoldItem]) -> tuple[list[str], list[bool]]:
    """Per-chunk ranking for the metrics: the key of the first gold item a hit satisfies that no earlier
    hit did, else a unique filler; and whether each hit is on gold at all.

    >>> h = [Hit(i, 1.0, "", d, d, None, None, None, 0, 1) for i, d in enumerate(["x", "a", "a", "b"])]
    >>> _ranking(h, [GoldItem("a", frozenset({"a"})), GoldItem("b", frozenset({"b"}))])
    (['\\x00miss1', 'a', '\\x00miss3', 'b'], [False, True, True, True])
    """
    ranking: list[str] = []
    relevant: list[bool] = []
    seen: set[str] = set()
    for rank, hit in enumerate(hits, start=1):
        keys = [item.key for item in items if item.satisfied_by(hit.doc_id, hit.page)]
        relevant.append(bool(keys))
        # A file in two globs' sets (or a page and its file) credits the item not yet found.
        fresh = next((key for key in keys if key not in seen), None)
        if fresh is not None:
            seen.add(fresh)
            ranking.append(fresh)
        else:
            ranking.append(f"\x00miss{rank}")
    return ranking, relevant


def _ci(values: Sequence[float], *, resamples: int, seed: int) -> MetricValue:
    mean, low, high = metrics.bootstrap_ci(list(values), confidence=0.95, resamples=resamples, seed=seed)
    return MetricValue(float(mean), float(low), float(high), len(values))


def _gold_index(kb: KnowledgeBase) -> GoldIndex:
    """The documents of ``kb`` indexed for gold; records match by their own id only when ``kb`` gives
    rows one (``[loaders] id_field``), not by row number."""
    return GoldIndex([(d["doc_id"], d["source"]) for d in kb.documents()],
                     record_ids=kb.config.loaders.id_field is not None)


def _kb_info(kb: KnowledgeBase) -> dict[str, Any]:
    status = kb.status()
    return {"documents": status["documents"], "chunks": status["chunks"],
            "embedder": status["embedder"]["model"], "analyzer": status["analyzer"], "index": status["index"],
            "chunk_size": kb.config.chunking.size, "chunk_unit": kb.config.chunking.unit}


def build_report(kb: KnowledgeBase, dataset: EvalDataset, ks: Sequence[int]) -> EvalReport:
    """An empty report with the header filled in (dataset, knowledge base, time, version)."""
    from jisik import __version__

    return EvalReport(dataset=dataset.name, kb=str(kb.path), n_questions=len(dataset.examples), ks=list(ks),
                      dataset_path=dataset.path, dataset_format=dataset.format,
                      created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                      jisik_version=str(__version__), kb_info=_kb_info(kb), notes=list(dataset.notes))


def run_retrieval_eval(kb: KnowledgeBase, dataset: EvalDataset, *,
                       configs: Sequence[RetrievalRunConfig] | None = None, ks: Sequence[int] = (1, 3, 5, 10),
                       allow_missing_gold: bool = False, batch_size: int = 16, cache_dir: Path | None = None,
                       resamples: int = 1000, seed: int = 0, progress: ProgressFn | None = None) -> EvalReport:
    """Measure each retrieval config over the questions of ``dataset`` that have gold documents."""
    report_progress = progress or _quiet
    ks = _check_ks(ks)
    if batch_size < 1:
        raise EvaluationError(f"batch size must be at least 1, got {batch_size}")
    configs = list(configs or [RetrievalRunConfig(kb.config.retrieval.mode, mode=kb.config.retrieval.mode)])
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise EvaluationError(f"run names must be unique, got {names}")
    if not dataset.examples:
        raise EvaluationError(f"dataset '{dataset.name}' holds no questions")
    gold_examples = dataset.with_gold
    if not gold_examples:
        raise EvaluationError(f"no question in '{dataset.name}' names a gold document, so retrieval cannot be scored",
                              hint="add gold_doc_ids or gold_sources to the questions, or evaluate answers only "
                                   "(--answers)")
    report = build_report(kb, dataset, ks)
    report.excluded = {e.qid: "without gold documents" for e in dataset.examples if not e.has_gold}

    # One knowledge base per chunk size; gold must be present in each one used.
    kbs: dict[int | None, KnowledgeBase] = {}
    for config in configs:
        if config.chunk_size not in kbs:
            kbs[config.chunk_size] = kb if config.chunk_size is None else variant_kb(
                kb, config.chunk_size, dataset, cache_dir=cache_dir, progress=progress)
    gold_dataset = EvalDataset(dataset.name, gold_examples)
    # Gold is resolved in each knowledge base used (a variant re-reads the files, so its ids could differ);
    # a reference missing from any of them is dropped from all, so every run scores the same gold.
    indexes = {base: _gold_index(base) for base in dict.fromkeys(kbs.values())}
    missing = MissingGold()
    for index in indexes.values():
        for qid, absent in check_gold(gold_dataset, index).by_question.items():
            missing.add(qid, absent)
    try:
        if missing and not allow_missing_gold:
            raise missing_gold_error(missing, dataset, next(iter(indexes.values())))
        if missing:
            report.missing_gold = {"count": missing.count, "questions": len(missing.by_question),
                                   "examples": missing.examples[:5]}
        scored: dict[KnowledgeBase, list[tuple[EvalExample, list[GoldItem]]]] = {base: [] for base in indexes}
        resolutions: list[Resolution] = []
        for example in gold_examples:
            absent = missing.by_question.get(example.qid, [])
            per_kb = {base: index.resolve(example, skip=absent) for base, index in indexes.items()}
            first = next(iter(per_kb.values()))
            if not first.items:
                report.excluded[example.qid] = "whose gold is not in the knowledge base"
                continue
            resolutions.append(first)
            for base, resolution in per_kb.items():
                scored[base].append((example, resolution.items))
        if not resolutions:
            raise EvaluationError("none of the gold documents is in the knowledge base, so nothing can be scored",
                                  hint="ingest the dataset's documents first")
        report.notes.extend(describe_matching(resolutions))
        for number, config in enumerate(configs, start=1):
            base = kbs[config.chunk_size]
            report.runs.append(_run_one(base, config, scored[base], ks, batch_size=batch_size,
                                        resamples=resamples, seed=seed, progress=report_progress,
                                        label=f"run {number}/{len(configs)}"))
    finally:
        for base in kbs.values():
            if base is not kb:
                base.close()
    return report


def _run_one(kb: KnowledgeBase, config: RetrievalRunConfig, scored: list[tuple[EvalExample, list[GoldItem]]],
             ks: list[int], *, batch_size: int, resamples: int, seed: int, progress: ProgressFn,
             label: str) -> RunResult:
    depth = config.k or ks[-1]
    usable_ks = [k for k in ks if k <= depth]
    if not usable_ks:
        raise EvaluationError(f"run '{config.name}' retrieves {depth} chunks, fewer than every k in {ks}")
    mode = config.mode or kb.config.retrieval.mode
    questions = [example.question for example, _ in scored]
    # Warm-up, untimed: the first search loads the embedding model and the indexes.
    kb.search_batch(questions[:1], mode=mode, k=depth, **config.options)
    results: list[list[Hit]] = []
    latencies: list[float] = []
    started = time.perf_counter()
    for start in range(0, len(questions), batch_size):
        batch = questions[start : start + batch_size]
        tick = time.perf_counter()
        results.extend(kb.search_batch(batch, mode=mode, k=depth, **config.options))
        elapsed_ms = (time.perf_counter() - tick) * 1000
        latencies.extend([elapsed_ms / len(batch)] * len(batch))
        progress(f"search {config.name}", min(start + batch_size, len(questions)), len(questions))
    seconds = time.perf_counter() - started
    values: dict[str, list[float]] = {}
    curve = [0.0] * depth
    records: list[QuestionResult] = []
    for (example, items), hits in zip(scored, results, strict=True):
        ranking, relevant_flags = _ranking(hits, items)
        relevant = {item.key for item in items}
        grades = {item.key: item.grade for item in items}
        per_query = _query_metrics(ranking, relevant, grades, usable_ks)
        for key, value in per_query.items():
            values.setdefault(key, []).append(value)
        for j in range(depth):
            curve[j] += metrics.recall_at_k(ranking, relevant, j + 1)
        hit_rank = next((i + 1 for i, flag in enumerate(relevant_flags) if flag), None)
        retrieved = [RetrievedItem(rank, hit.doc_id, hit.source, float(hit.score), hit.page, flag)
                     for rank, (hit, flag) in enumerate(zip(hits, relevant_flags, strict=True), start=1)]
        records.append(QuestionResult(example.qid, example.question, [item.key for item in items], retrieved,
                                      hit_rank, latencies[len(records)]))
    n = len(scored)
    return RunResult(name=config.name, mode=mode, k=depth, chunk_size=config.chunk_size, options=dict(config.options),
                     metrics={key: _ci(v, resamples=resamples, seed=seed) for key, v in values.items()},
                     recall_curve=[c / n for c in curve], latencies_ms=latencies, questions=records,
                     batch_size=batch_size, seconds=seconds, kb=str(kb.path),
                     chunks=int(kb.status()["chunks"]))


def _query_metrics(ranking: list[str], relevant: set[str], grades: Mapping[str, float],
                   ks: list[int]) -> dict[str, float]:
    """Every retrieval metric of one query, keyed as in the report (``hit@5``, ``mrr``, ...)."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"hit@{k}"] = metrics.hit_at_k(ranking, relevant, k)
    for k in ks:
        out[f"recall@{k}"] = metrics.recall_at_k(ranking, relevant, k)
    for k in ks:
        out[f"precision@{k}"] = metrics.precision_at_k(ranking, relevant, k)
    graded = grades if any(g != 1.0 for g in grades.values()) else relevant
    for k in ks:
        out[f"ndcg@{k}"] = metrics.ndcg_at_k(ranking, graded, k)
    out["mrr"] = metrics.reciprocal_rank(ranking, relevant)
    out["map"] = metrics.average_precision(ranking, relevant)
    return out


# --- answers -----------------------------------------------------------------------------------------

_MARKERS = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")

JUDGE_SYSTEM = "You are a strict, fair evaluator of answers written by a document question-answering assistant."
JUDGE_PROMPT = """Rate the ANSWER on two scales from 1 to 5.

faithfulness: 5 = every claim in the answer is supported by the CONTEXT; 3 = some claims are not supported;
1 = the answer is mostly unsupported by, or contradicts, the CONTEXT.
relevance: 5 = the answer directly and completely answers the QUESTION; 3 = partly; 1 = it does not address it.

Reply with only a JSON object and nothing else, for example: {{"faithfulness": 4, "relevance": 5}}

QUESTION:
{question}

CONTEXT:
{context}

ANSWER:
{answer}
"""


def strip_markers(text: str) -> str:
    """The answer without its ``[n]`` citation markers, for EM/F1.

    >>> strip_markers("반품은 14일 이내입니다 [1, 2]. 환불은 3일 [3].")
    '반품은 14일 이내입니다. 환불은 3일.'
    """
    return _MARKERS.sub("", text).strip()


def parse_judge_reply(text: str) -> dict[str, float | None]:
    """Scores from a judge reply: each of ``faithfulness`` and ``relevance`` as 1–5, or None when the
    reply does not hold a valid value for it (no JSON, key missing, not a number, out of range).

    >>> parse_judge_reply('```json\\n{"faithfulness": 4, "relevance": "5"}\\n```')
    {'faithfulness': 4.0, 'relevance': 5.0}
    >>> parse_judge_reply('{"faithfulness": 9}'), parse_judge_reply("I think it is good")
    ({'faithfulness': None, 'relevance': None}, {'faithfulness': None, 'relevance': None})
    """
    data: Any = None
    start, end = text.find("{"), text.rfind("}")
    candidates = [text[start : end + 1]] if start != -1 and end > start else []
    candidates += [match.group(0) for match in re.finditer(r"\{[^{}]*\}", text)]
    for candidate in candidates:  # the whole outer object first, then each flat object in the reply
        try:
            parsed = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(parsed, dict) and any(metric in parsed for metric in JUDGE_METRICS):
            data = parsed
            break
    scores: dict[str, float | None] = {}
    for metric in JUDGE_METRICS:
        value = data.get(metric) if isinstance(data, dict) else None
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        scores[metric] = number if number is not None and 1 <= number <= 5 else None
    return scores


def judge_answer(judge: LLM, question: str, answer: str,
                 contexts: Sequence[str]) -> tuple[dict[str, float | None], str]:
    """Ask ``judge`` to rate one answer; returns the parsed scores and the raw reply.

    The context is cut to fit the judge's context window (whole sources, best first).
    """
    from jisik.generate.llms.base import GenerationOptions, Message

    fixed = sum(judge.count_tokens([JUDGE_SYSTEM, JUDGE_PROMPT, question, answer]))
    budget = max(0, judge.context_window - fixed - 128)
    kept: list[str] = []
    for number, (text, tokens) in enumerate(zip(contexts, judge.count_tokens(list(contexts)), strict=True), start=1):
        if tokens + 8 > budget:
            break
        kept.append(f"[{number}] {text}")
        budget -= tokens + 8
    prompt = JUDGE_PROMPT.format(question=question, answer=answer, context="\n\n".join(kept) or "(no sources)")
    completion = judge.generate([Message("system", JUDGE_SYSTEM), Message("user", prompt)],
                                GenerationOptions(temperature=0.0, max_tokens=64))
    return parse_judge_reply(completion.text), completion.text


def check_judge(judge: LLM) -> None:
    """Send the judge one tiny request; :class:`EvaluationError` when it does not answer."""
    from jisik.generate.llms.base import GenerationOptions, Message

    try:
        judge.generate([Message("user", 'Reply with {"ok": true} and nothing else.')],
                       GenerationOptions(temperature=0.0, max_tokens=16))
    except (JisikError, OSError) as exc:
        reason = exc.message if isinstance(exc, JisikError) else str(exc)
        hint = exc.hint if isinstance(exc, JisikError) and exc.hint else "start the judge's server or fix --judge"
        raise EvaluationError(f"the judge {judge.name} does not answer: {reason}",
                              hint=f"{hint}; nothing was measured or written") from exc


def run_answer_eval(kb: KnowledgeBase, dataset: EvalDataset, *, llm: str | LLM | None = None, k: int | None = None,
                    mode: str | None = None, judge: LLM | None = None, probe_judge: bool = True,
                    resamples: int = 1000, seed: int = 0, progress: ProgressFn | None = None) -> AnswerResult:
    """Ask every question that has reference answers and score the answers (see the module docs)."""
    from jisik.generate.language import detect_language

    report_progress = progress or _quiet
    examples = dataset.with_answers
    if not examples:
        raise EvaluationError(f"no question in '{dataset.name}' has a reference answer",
                              hint="add 'answers' to the questions, or drop --answers")
    if judge is not None and probe_judge:
        check_judge(judge)
    # Gold says where an answer is, so citations are judged against it when a question has gold.
    index = _gold_index(kb) if any(e.has_gold for e in examples) else None
    llm_name = llm if isinstance(llm, str) else (llm.name if llm is not None else kb.config.llm.backend)
    result = AnswerResult(llm=llm_name, metrics={}, records=[], judge=judge.name if judge else None,
                          judge_failures={f"judge_{m}": 0 for m in JUDGE_METRICS} if judge else {},
                          skipped_without_answers=len(dataset.examples) - len(examples))
    for number, example in enumerate(examples, start=1):
        tick = time.perf_counter()
        try:
            answer = kb.ask(example.question, llm=llm, k=k, mode=mode, log=False)
        except JisikError as exc:
            if number == 1:
                raise EvaluationError(f"the answering model failed on the first question: {exc.message}",
                                      hint=exc.hint or "check --llm; nothing was written") from exc
            result.complete = False
            result.incomplete_reason = (f"the answering model failed at question {number} of {len(examples)} "
                                        f"({example.qid}): {exc.message}; results cover the first {number - 1}")
            break
        latency_ms = (time.perf_counter() - tick) * 1000
        language = detect_language(example.question)
        style: AnswerStyle = "korquad" if language == "ko" else "squad"
        prediction = strip_markers(answer.text)
        chunk_text = {s.chunk_id: s.quote for s in answer.sources}
        cited = [chunk_text.get(c.chunk_id, c.quote) for c in answer.citations]
        contexts = [s.quote for s in answer.sources]
        items = index.resolve(example).items if index is not None else []
        accuracy: float | None = None
        if answer.citations:
            accuracy = (gold_citation_accuracy([(c.doc_id, c.page) for c in answer.citations], items) if items
                        else float(metrics.citation_accuracy(cited, example.answers, style=style)))
        record = AnswerRecord(
            qid=example.qid, question=example.question, answers=example.answers, prediction=answer.text,
            language=language, found=answer.found,
            em=float(metrics.exact_match(prediction, example.answers, style=style)),
            f1=float(metrics.token_f1(prediction, example.answers, style=style)),
            citation_accuracy=accuracy, citation_basis=citation_basis(items) if accuracy is not None else None,
            groundedness=(float(metrics.groundedness(prediction, contexts, language=language))
                          if contexts and answer.found else None),
            citations=[f"{c.source}" + ("" if c.page is None else f" p.{c.page}") for c in answer.citations],
            latency_ms=latency_ms)
        if judge is not None:
            try:
                scores, _ = judge_answer(judge, example.question, prediction, contexts)
            except (JisikError, OSError) as exc:
                result.records.append(record)
                result.complete = False
                result.incomplete_reason = (f"the judge {judge.name} failed at question {number} of {len(examples)} "
                                            f"({example.qid}): {exc}; results cover the first {number} questions, "
                                            f"judge scores the first {number - 1}")
                break
            record.judge = scores
            for metric, score in scores.items():
                if score is None:
                    result.judge_failures[f"judge_{metric}"] += 1
        result.records.append(record)
        report_progress("answers", number, len(examples))
    result.metrics = _answer_metrics(result.records, judge is not None, resamples=resamples, seed=seed)
    return result


def _answer_metrics(records: Sequence[AnswerRecord], judged: bool, *, resamples: int,
                    seed: int) -> dict[str, MetricValue]:
    columns: dict[str, list[float]] = {
        "em": [r.em for r in records],
        "f1": [r.f1 for r in records],
        "citation_accuracy": [r.citation_accuracy for r in records if r.citation_accuracy is not None],
        "groundedness": [r.groundedness for r in records if r.groundedness is not None],
        "found_rate": [1.0 if r.found else 0.0 for r in records],
    }
    if judged:
        for metric in JUDGE_METRICS:
            columns[f"judge_{metric}"] = [score for r in records
                                          if (score := r.judge.get(metric)) is not None]
    return {name: _ci(values, resamples=resamples, seed=seed) for name, values in columns.items() if values}
