"""Evaluation: dataset loaders (and their errors), the retrieval and answer runners, reports, `jisik eval`.

Knowledge bases here use the hashing embedder (a named fake) so the tests exercise our own logic
fast; test_eval_cli_squad_real_embedder runs the real default embedder on a slice of SQuAD.
Answer tests use FakeLLM (the project's scripted test double) as answering model and judge.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from jisik.embed.hashing import HashingEmbedder
from jisik.errors import EvaluationError, LLMUnavailableError
from jisik.evaluate.datasets import (
    EvalDataset,
    EvalExample,
    check_gold,
    load_beir,
    load_csv,
    load_dataset,
    load_jsonl,
    load_msmarco,
    load_squad,
    source_matches,
)
from jisik.evaluate.report import EvalReport, compare, load_report
from jisik.evaluate.runner import RetrievalRunConfig, parse_judge_reply, run_answer_eval, run_retrieval_eval
from jisik.generate.llms.base import GenerationOptions, Message
from jisik.generate.llms.fake import FakeLLM
from jisik.kb import KnowledgeBase
from jisik.records import Hit

from .conftest import shared_data

DOCS = {
    "policies/returns.md": "# 반품\n\n반품은 상품을 받은 날부터 14일 이내에 신청할 수 있습니다. "
                           "반품 배송비는 무료입니다.",
    "policies/shipping.md": "# 배송\n\n배송은 보통 이틀 걸립니다. 제주도와 산간 지역은 사흘이 걸립니다.",
    "handbook/leave.md": "# Leave\n\nAnnual leave is 15 days per year for full-time employees. Unused leave expires.",
    "handbook/remote.md": "# Remote work\n\nRemote work is allowed two days a week with the approval of a manager.",
}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(path: Path, rows: Sequence[object]) -> Path:
    return _write(path, "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n")


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    for name, text in DOCS.items():
        _write(tmp_path / "docs" / name, text)
    return tmp_path / "docs"


@pytest.fixture
def kb(tmp_path: Path, docs: Path) -> KnowledgeBase:
    base = KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(64))
    base.ingest([docs])
    return base


def _dataset(*examples: EvalExample) -> EvalDataset:
    return EvalDataset("mini", list(examples))


# --- datasets ----------------------------------------------------------------------------------------


def test_load_jsonl(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "qa.jsonl", [
        {"id": "r1", "question": "반품 기간은?", "answers": "14일", "gold_sources": ["policies/returns.md"]},
        "",
        {"question": "How long is leave?", "answers": ["15 days", "15 days", "fifteen days"],
         "gold_doc_ids": "docs/handbook/leave.md", "topic": "hr"},
    ])
    ds = load_jsonl(path)
    assert ds.name == "qa" and ds.format == "jsonl" and ds.corpus is None
    first, second = ds.examples
    assert (first.qid, first.answers, first.gold_sources) == ("r1", ["14일"], ["policies/returns.md"])
    assert second.qid == "L3"  # no id: the line number
    assert second.answers == ["15 days", "fifteen days"] and second.gold_doc_ids == ["docs/handbook/leave.md"]
    assert second.metadata == {"topic": "hr"}


def test_jsonl_rows_without_question_are_named_not_skipped(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "qa.jsonl", [{"question": "ok?"}, {"query": "wrong key"}, {"question": "fine"},
                                          {"question": "  "}])
    with pytest.raises(EvaluationError) as err:
        load_jsonl(path)
    message = str(err.value)
    assert "2 problem(s) in 4 line(s)" in message
    assert "line 2: no 'question' (keys found: query)" in message and "line 4: 'question' is empty" in message
    assert err.value.hint and "question" in err.value.hint


@pytest.mark.parametrize(("answers", "expected"), [
    (3, "'answers' must be a list of strings or one string, got int"),
    (["14일", 14], "'answers' must be a list of strings, found a int in it"),
    ({"text": "14일"}, "got dict"),
])
def test_jsonl_answers_of_the_wrong_type(tmp_path: Path, answers: object, expected: str) -> None:
    path = _jsonl(tmp_path / "qa.jsonl", [{"question": "q", "answers": answers}])
    with pytest.raises(EvaluationError, match=re.escape(expected)):
        load_jsonl(path)


def test_jsonl_bad_json_duplicate_ids_and_empty(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match=r"line 2: not valid JSON"):
        load_jsonl(_jsonl(tmp_path / "a.jsonl", [{"question": "q"}, "{broken"]))
    with pytest.raises(EvaluationError, match=r"line 2: duplicate id 'x'"):
        load_jsonl(_jsonl(tmp_path / "b.jsonl", [{"id": "x", "question": "q"}, {"id": "x", "question": "r"}]))
    with pytest.raises(EvaluationError, match="holds no questions"):
        load_jsonl(_write(tmp_path / "c.jsonl", "\n\n"))
    with pytest.raises(EvaluationError, match="holds no questions"):
        load_dataset(_write(tmp_path / "d.json", "[]"))


SQUAD = {"version": "1.1", "data": [{"title": "Super_Bowl_50", "paragraphs": [
    {"context": "Super Bowl 50 was won by the Denver Broncos.",
     "qas": [{"id": "a1", "question": "Who won Super Bowl 50?",
              "answers": [{"text": "Denver Broncos", "answer_start": 29},
                          {"text": "Denver Broncos", "answer_start": 29}, {"text": "Broncos", "answer_start": 36}]}]},
    {"context": "The game was played at Levi's Stadium.",
     "qas": [{"id": "a2", "question": "Where was the game played?",
              "answers": [{"text": "Levi's Stadium", "answer_start": 23}]},
             {"id": "a3", "question": "Which stadium hosted it?", "answers": [{"text": "Levi's Stadium"}]}]},
]}]}


def test_load_squad_one_document_per_paragraph(tmp_path: Path) -> None:
    ds = load_squad(_write(tmp_path / "squad.json", json.dumps(SQUAD)))
    assert ds.format == "squad" and ds.corpus is not None
    assert [d.doc_id for d in ds.corpus] == ["Super_Bowl_50#0", "Super_Bowl_50#1"]
    assert ds.corpus[1].text == "The game was played at Levi's Stadium." and ds.corpus[0].title == "Super Bowl 50"
    first = ds.examples[0]
    assert (first.qid, first.answers, first.gold_doc_ids) == ("a1", ["Denver Broncos", "Broncos"], ["Super_Bowl_50#0"])
    assert [e.gold_doc_ids for e in ds.examples[1:]] == [["Super_Bowl_50#1"]] * 2
    assert load_dataset(tmp_path / "squad.json").format == "squad"


def test_squad_errors(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="not a SQuAD/KorQuAD file"):
        load_squad(_write(tmp_path / "a.json", json.dumps({"version": "1.1"})))
    bad = json.loads(json.dumps(SQUAD))
    bad["data"][0]["paragraphs"][1]["qas"][0]["question"] = ""
    bad["data"][0]["paragraphs"][1]["qas"][1]["answers"] = ["Levi's Stadium"]
    with pytest.raises(EvaluationError) as err:
        load_squad(_write(tmp_path / "b.json", json.dumps(bad)))
    assert "data[0].paragraphs[1].qas[0]: 'question' is empty" in str(err.value)
    assert "data[0].paragraphs[1].qas[1]: 'answers' must be a list of" in str(err.value)


def _beir(folder: Path, qrels: str) -> Path:
    _jsonl(folder / "corpus.jsonl", [{"_id": "d1", "title": "Returns", "text": "Returns within 14 days."},
                                     {"_id": "d2", "title": "", "text": "Shipping takes two days."},
                                     {"_id": "d3", "text": "Leave is 15 days."}])
    _jsonl(folder / "queries.jsonl", [{"_id": "q1", "text": "return window"}, {"_id": "q2", "text": "shipping"},
                                      {"_id": "q9", "text": "a query of another split"}])
    _write(folder / "qrels" / "test.tsv", qrels)
    return folder


def test_load_beir_keeps_graded_judgements(tmp_path: Path) -> None:
    folder = _beir(tmp_path / "beir", "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td3\t1\nq1\td2\t0\nq2\td2\t1\n")
    ds = load_beir(folder)
    assert ds.format == "beir" and [d.doc_id for d in ds.corpus or []] == ["d1", "d2", "d3"]
    assert ds.corpus and ds.corpus[0].text == "Returns\nReturns within 14 days."
    q1, q2 = ds.examples  # q9 has no judgement in this split
    assert q1.relevance == {"d1": 2.0, "d3": 1.0, "d2": 0.0} and q1.gold_doc_ids == ["d1", "d3"]
    assert q2.gold_doc_ids == ["d2"]
    assert load_dataset(folder).format == "beir"


def test_beir_errors(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match=r"query id 'q7' is not in queries.jsonl"):
        load_beir(_beir(tmp_path / "a", "q1\td1\t1\nq7\td1\t1\n"))
    with pytest.raises(EvaluationError, match="judges no query"):
        load_beir(_beir(tmp_path / "b", "query-id\tcorpus-id\tscore\n"))
    (tmp_path / "c").mkdir()
    with pytest.raises(EvaluationError, match=r"not a BEIR folder \(corpus.jsonl is missing\)"):
        load_beir(tmp_path / "c")


SEC_CSV = '''\ufeffQuestion,Source Docs,Question Type,Answer
How has Apple's revenue changed?,*AAPL*,Multi-Doc RAG,"It went up.

SOURCE(S): 2022 Q3 AAPL.pdf"
What is NVIDIA's margin?,*2023 Q3 NVDA*,Single-Doc RAG,64.6%
'''


def test_load_csv_sec10q_shape(tmp_path: Path) -> None:
    ds = load_csv(_write(tmp_path / "qna.csv", SEC_CSV))
    first, second = ds.examples
    assert first.question == "How has Apple's revenue changed?" and first.gold_sources == ["*AAPL*"]
    assert first.answers == ["It went up.\n\nSOURCE(S): 2022 Q3 AAPL.pdf"]
    assert first.metadata == {"Question Type": "Multi-Doc RAG"} and second.qid == "row2"
    assert load_dataset(tmp_path / "qna.csv").format == "csv"


def test_csv_errors(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match=r"row 2 \(line 3\): 'question' is empty"):
        load_csv(_write(tmp_path / "a.csv", "question,answer\nq1,a\n,b\n"))
    with pytest.raises(EvaluationError, match="no 'question' column"):
        load_csv(_write(tmp_path / "b.csv", "prompt,answer\nq1,a\n"))


def test_load_msmarco_dedupes_shared_passages(tmp_path: Path) -> None:
    rows = [{"id": 1, "query": "반품 기간", "positive": ["반품은 14일 이내입니다.", "환불 안내"]},
            {"id": 2, "query": "환불", "positive": "환불 안내"}]
    ds = load_msmarco(_write(tmp_path / "ms.json", json.dumps(rows, ensure_ascii=False)))
    assert ds.corpus is not None and len(ds.corpus) == 2
    assert ds.examples[1].gold_doc_ids == [ds.examples[0].gold_doc_ids[1]]
    assert load_dataset(tmp_path / "ms.json").format == "msmarco"


def test_load_dataset_dispatch_errors(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="no dataset at"):
        load_dataset(tmp_path / "missing.jsonl")
    with pytest.raises(EvaluationError, match=r"unknown dataset format '\.txt'"):
        load_dataset(_write(tmp_path / "x.txt", "q"))
    with pytest.raises(EvaluationError, match="not valid JSON"):
        load_dataset(_write(tmp_path / "y.json", "{"))
    rows = load_dataset(_write(tmp_path / "z.json", json.dumps([{"question": "q", "answers": ["a"]}])))
    assert rows.format == "json" and rows.examples[0].answers == ["a"]


def test_source_matching_and_check_gold() -> None:
    assert source_matches("docs/policies/returns.md", "returns.md")
    assert source_matches("docs/policies/returns.md", "./policies/returns.md")
    assert not source_matches("docs/policies/returns.md", "licies/returns.md")
    assert source_matches("sec10q/docs/2023 Q3 AAPL.pdf", "*AAPL*")
    ds = _dataset(EvalExample("q1", "?", gold_doc_ids=["a", "b"]), EvalExample("q2", "?", gold_sources=["x.md"]),
                  EvalExample("q3", "?", gold_sources=["*.pdf"]))
    missing = check_gold(ds, [("a", "a"), ("docs/x.md", "docs/x.md")])
    assert missing.count == 2 and set(missing.by_question) == {"q1", "q3"}
    assert "2 gold reference(s) in 2 question(s)" in missing.describe()
    assert not check_gold(ds, [(d, d) for d in ("a", "b", "docs/x.md", "f/y.pdf")])


# --- retrieval runner --------------------------------------------------------------------------------


def _hit(doc_id: str, score: float = 1.0) -> Hit:
    return Hit(0, score, "text", doc_id, doc_id, None, None, None, 0, 4)


def test_retrieval_metrics_by_hand(kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scripted rankings, so every number can be checked by hand.

    q1: gold at rank 2 → hit@1 0, hit@3 1, RR 1/2.  q2: gold at ranks 1 and 2 (two chunks of one
    document: credited once) → precision@3 1/3.  q3: gold nowhere → 0.  q4: two golds at ranks 1, 3.
    """
    gold = {"docs/policies/returns.md": "r", "docs/handbook/leave.md": "l", "docs/policies/shipping.md": "s"}
    r, lv, s = list(gold)
    scripted = {"q1": [lv, r, s], "q2": [r, r, s], "q3": [s, lv, s], "q4": [r, lv, s]}

    def fake_search_batch(queries: Sequence[str], **options: Any) -> list[list[Hit]]:
        assert options["k"] == 3 and options["mode"] == "bm25"
        return [[_hit(d) for d in scripted[q]] for q in queries]

    monkeypatch.setattr(kb, "search_batch", fake_search_batch)
    ds = _dataset(EvalExample("1", "q1", gold_doc_ids=[r]), EvalExample("2", "q2", gold_sources=["returns.md"]),
                  EvalExample("3", "q3", gold_doc_ids=[r]), EvalExample("4", "q4", gold_doc_ids=[r, s]))
    report = run_retrieval_eval(kb, ds, configs=[RetrievalRunConfig("bm25", mode="bm25")], ks=(1, 3),
                                batch_size=3)
    run = report.run("bm25")
    means = {name: value.mean for name, value in run.metrics.items()}
    assert means["hit@1"] == pytest.approx(2 / 4)
    assert means["hit@3"] == pytest.approx(3 / 4)
    assert means["recall@3"] == pytest.approx((1 + 1 + 0 + 1) / 4)
    assert means["recall@1"] == pytest.approx((0 + 1 + 0 + 0.5) / 4)
    assert means["precision@3"] == pytest.approx((1 / 3 + 1 / 3 + 0 + 2 / 3) / 4)
    assert means["mrr"] == pytest.approx((0.5 + 1 + 0 + 1) / 4)
    assert means["map"] == pytest.approx((0.5 + 1 + 0 + (1 + 2 / 3) / 2) / 4)
    assert run.recall_curve == pytest.approx([1.5 / 4, 2.5 / 4, 3 / 4])
    assert [q.hit_rank for q in run.questions] == [2, 1, None, 1]
    assert [item.relevant for item in run.questions[1].retrieved] == [True, True, False]
    low, high = run.metrics["hit@1"].low, run.metrics["hit@1"].high
    assert 0 <= low <= 0.5 <= high <= 1 and run.metrics["hit@1"].n == 4
    assert len(run.latencies_ms) == 4 and run.batch_size == 3


def test_real_retrieval_on_small_kb(kb: KnowledgeBase) -> None:
    ds = _dataset(EvalExample("r", "반품 기간은 며칠인가요?", gold_sources=["returns.md"]),
                  EvalExample("s", "배송은 얼마나 걸리나요?", gold_doc_ids=["docs/policies/shipping.md"]),
                  EvalExample("l", "How many days of annual leave?", gold_sources=["handbook/leave.md"]),
                  EvalExample("none", "no gold here"))
    report = run_retrieval_eval(kb, ds, configs=[RetrievalRunConfig("bm25", "bm25"),
                                                 RetrievalRunConfig("hybrid", "hybrid")], ks=(1, 3))
    assert report.run("bm25").metrics["hit@1"].mean == 1.0  # Kiwi morphemes: 반품은 ~ 반품, 배송은 ~ 배송
    assert report.excluded == {"none": "without gold documents"}
    assert report.kb_info["documents"] == 4 and report.n_questions == 4
    assert [len(r.questions) for r in report.runs] == [3, 3]


def test_missing_gold_stops_unless_allowed(kb: KnowledgeBase) -> None:
    ds = _dataset(EvalExample("ok", "반품 기간은?", gold_sources=["returns.md"]),
                  EvalExample("gone", "what about refunds?", gold_doc_ids=["docs/policies/refunds.md"]),
                  EvalExample("half", "배송은?", gold_sources=["shipping.md", "delivery.md"]))
    with pytest.raises(EvaluationError) as err:
        run_retrieval_eval(kb, ds, configs=[RetrievalRunConfig("bm25", "bm25")])
    assert "2 gold reference(s) in 2 question(s) are not in the knowledge base" in err.value.message
    assert "gone: doc id 'docs/policies/refunds.md'" in err.value.message
    assert err.value.hint and "--allow-missing-gold" in err.value.hint
    report = run_retrieval_eval(kb, ds, configs=[RetrievalRunConfig("bm25", "bm25")], allow_missing_gold=True)
    assert report.missing_gold["count"] == 2 and report.missing_gold["questions"] == 2
    assert report.excluded == {"gone": "whose gold is not in the knowledge base"}
    run = report.run("bm25")
    assert [q.qid for q in run.questions] == ["ok", "half"]
    assert run.questions[1].gold == ["shipping.md"]  # the missing reference is dropped, not counted as a miss
    assert "not in the knowledge base" in report.to_markdown()


def test_runner_input_errors(kb: KnowledgeBase) -> None:
    with pytest.raises(EvaluationError, match="names a gold document"):
        run_retrieval_eval(kb, _dataset(EvalExample("a", "q", answers=["x"])))
    ds = _dataset(EvalExample("a", "q", gold_sources=["returns.md"]))
    with pytest.raises(EvaluationError, match="unique"):
        run_retrieval_eval(kb, ds, configs=[RetrievalRunConfig("x", "bm25"), RetrievalRunConfig("x", "dense")])
    with pytest.raises(EvaluationError, match="positive"):
        run_retrieval_eval(kb, ds, ks=(0, 3))


def test_chunk_size_variant_is_built_once_from_the_same_files(kb: KnowledgeBase) -> None:
    ds = _dataset(EvalExample("r", "반품 배송비", gold_sources=["returns.md"]))
    configs = [RetrievalRunConfig("bm25@800", "bm25", chunk_size=800), RetrievalRunConfig("bm25@40", "bm25",
                                                                                          chunk_size=40)]
    report = run_retrieval_eval(kb, ds, configs=configs, ks=(1, 3))
    default, small = report.runs
    assert default.kb == str(kb.path) and default.chunks == 4
    assert small.chunks > default.chunks and Path(small.kb).parent == kb.path / "evals" / "cache"
    manifest = Path(small.kb) / "eval-manifest.json"
    stamp = manifest.stat().st_mtime_ns
    again = run_retrieval_eval(kb, ds, configs=configs, ks=(1, 3))
    assert again.runs[1].kb == small.kb and again.runs[1].chunks == small.chunks
    assert manifest.stat().st_mtime_ns == stamp  # unchanged files: the cache was reused as it was


# --- answers and judge -------------------------------------------------------------------------------


def _answers_by_question(messages: Sequence[Message]) -> str:
    if "annual leave?" in messages[-1].content:
        return "Annual leave is 15 days [1]."
    return "14일 이내입니다 [1]."


def _judge_reply(messages: Sequence[Message]) -> str:
    prompt = messages[-1].content
    if "faithfulness" not in prompt:
        return '{"ok": true}'  # the probe
    if "QUESTION:\n반품" in prompt:
        return 'Sure! ```json\n{"faithfulness": 5, "relevance": "4"}\n```'
    return "The answer looks fine to me."  # no JSON: counted as a failure for both metrics


def test_answer_eval_with_fake_llm_and_judge(kb: KnowledgeBase) -> None:
    ds = _dataset(EvalExample("ko", "반품 기간은 며칠인가요?", answers=["14일 이내"], gold_sources=["returns.md"]),
                  EvalExample("en", "How many days of annual leave?", answers=["15 days"]),
                  EvalExample("no-answer", "배송은?", gold_sources=["shipping.md"]))
    result = run_answer_eval(kb, ds, llm=FakeLLM(_answers_by_question), judge=FakeLLM(_judge_reply, name="judge"))
    assert result.complete and result.skipped_without_answers == 1
    ko, en = result.records
    assert (ko.language, ko.em) == ("ko", 0.0)  # "14일 이내입니다" ≠ "14일 이내" ...
    assert ko.f1 == pytest.approx(2 * (5 / 8) / (5 / 8 + 1))  # ... but KorQuAD's character F1 is high
    assert en.language == "en" and en.f1 == pytest.approx(2 * (2 / 5) * 1 / (2 / 5 + 1))
    assert ko.judge == {"faithfulness": 5.0, "relevance": 4.0}
    assert en.judge == {"faithfulness": None, "relevance": None}
    assert result.judge_failures == {"judge_faithfulness": 1, "judge_relevance": 1}
    assert result.metrics["judge_faithfulness"].mean == 5.0 and result.metrics["judge_faithfulness"].n == 1
    assert result.metrics["found_rate"].mean == 1.0 and result.metrics["em"].n == 2
    assert result.metrics["citation_accuracy"].mean == 1.0  # the cited chunk holds the reference answer


class _DownLLM(FakeLLM):
    def __init__(self, *, fail_from_call: int = 1) -> None:
        super().__init__(['{"faithfulness": 3, "relevance": 3}'], name="down")
        self.fail_from_call = fail_from_call
        self.count = 0

    def generate(self, messages: Sequence[Message], options: GenerationOptions) -> Any:
        self.count += 1
        if self.count >= self.fail_from_call:
            raise LLMUnavailableError("cannot reach http://127.0.0.1:9/v1", hint="start the server")
        return super().generate(messages, options)


def test_judge_down_stops_before_any_result(kb: KnowledgeBase) -> None:
    ds = _dataset(EvalExample("a", "반품 기간은?", answers=["14일"]))
    answering = FakeLLM(_answers_by_question)
    with pytest.raises(EvaluationError, match="the judge down does not answer"):
        run_answer_eval(kb, ds, llm=answering, judge=_DownLLM())
    assert answering.calls == []  # nothing was asked


def test_judge_failing_midway_marks_the_result_incomplete(kb: KnowledgeBase) -> None:
    ds = _dataset(*[EvalExample(f"q{i}", "반품 기간은?", answers=["14일"]) for i in range(4)])
    result = run_answer_eval(kb, ds, llm=FakeLLM(_answers_by_question), judge=_DownLLM(fail_from_call=3))
    assert not result.complete and result.incomplete_reason
    assert "judge down failed at question 2 of 4" in result.incomplete_reason
    assert len(result.records) == 2 and result.records[0].judge and not result.records[1].judge
    report = EvalReport("mini", "kb", 4, [1], answers=result)
    assert not report.complete and "INCOMPLETE" in report.to_html() and "INCOMPLETE" in report.to_markdown()


def test_parse_judge_reply_counts_failures_per_metric() -> None:
    assert parse_judge_reply('{"faithfulness": 4.5, "relevance": 0}') == {"faithfulness": 4.5, "relevance": None}
    assert parse_judge_reply('{"faithfulness": true, "relevance": "five"}') == {"faithfulness": None,
                                                                                 "relevance": None}
    assert parse_judge_reply('noise {"a": 1} {"faithfulness": 2, "relevance": 3}') == {"faithfulness": 2.0,
                                                                                        "relevance": 3.0}


# --- reports -----------------------------------------------------------------------------------------


def _report(kb: KnowledgeBase) -> EvalReport:
    ds = _dataset(EvalExample("r", "반품 기간은 며칠인가요?", answers=["14일"], gold_sources=["returns.md"]),
                  EvalExample("l", "How many days of annual leave?", gold_sources=["leave.md"]),
                  EvalExample("x", "<script>alert(1)</script> remote work?", gold_sources=["remote.md"]))
    report = run_retrieval_eval(kb, ds, configs=[RetrievalRunConfig("bm25", "bm25"),
                                                 RetrievalRunConfig("dense", "dense")], ks=(1, 3))
    report.answers = run_answer_eval(kb, ds, llm=FakeLLM(_answers_by_question))
    return report


def test_html_report_is_self_contained_with_svg_plots(kb: KnowledgeBase, tmp_path: Path) -> None:
    page = _report(kb).to_html()
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(svgs) == 3  # recall@k curves + one latency histogram per run
    for svg in svgs:
        ET.fromstring(svg)  # well-formed
    assert "polyline" in svgs[0] and "bm25" in svgs[0] and "dense" in svgs[0]
    assert "http" not in page and "<script" not in page and "&lt;script&gt;" in page  # escaped, no network
    assert "<link" not in page and "@import" not in page
    assert "반품 기간은 며칠인가요?" in page and "hit rank" in page and "docs/policies/returns.md" in page


def test_markdown_report_has_tables(kb: KnowledgeBase) -> None:
    text = _report(kb).to_markdown()
    assert "| metric | bm25 | dense |" in text
    assert re.search(r"\| hit@1 \| \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] \|", text)
    assert "| question | gold | retrieved (✓ = gold) | hit rank |" in text
    assert "## Answers" in text and "| em |" in text


def test_save_load_and_compare(kb: KnowledgeBase, tmp_path: Path) -> None:
    report = _report(kb)
    path = report.save(tmp_path / "evals" / "base.json")
    loaded = load_report(path)
    assert loaded.to_dict() == report.to_dict()
    assert compare(report, loaded, 0.0) == []
    worse = load_report(path)
    worse.run("bm25").metrics["hit@1"].mean -= 0.1
    worse.answers.metrics["f1"].mean -= 0.01  # type: ignore[union-attr]
    regressions = compare(worse, loaded, tolerance=0.02)
    assert [(r.run, r.metric) for r in regressions] == [("bm25", "hit@1")]
    assert regressions[0].message().startswith("regression: bm25 hit@1")
    other = load_report(path)
    other.n_questions = 99
    with pytest.raises(EvaluationError, match="baseline was measured on"):
        compare(report, other, 0.02)


def test_load_report_errors(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="no saved evaluation"):
        load_report(tmp_path / "none.json")
    with pytest.raises(EvaluationError, match="not a jisik evaluation report"):
        load_report(_write(tmp_path / "x.json", json.dumps({"runs": []})))
    with pytest.raises(EvaluationError, match="damaged"):
        load_report(_write(tmp_path / "y.json", json.dumps({"format": "jisik-eval-report", "version": 1})))


# --- CLI ---------------------------------------------------------------------------------------------




@pytest.fixture
def cli_kb(tmp_path: Path, docs: Path, fake_embedder_env: None) -> Path:
    with KnowledgeBase.open(tmp_path / "cli-kb", create=True) as base:
        base.ingest([docs])
    return tmp_path / "cli-kb"


def _qa(tmp_path: Path) -> Path:
    return _jsonl(tmp_path / "qa.jsonl", [
        {"id": "r", "question": "반품 기간은 며칠인가요?", "gold_sources": ["returns.md"]},
        {"id": "s", "question": "배송은 얼마나 걸리나요?", "gold_sources": ["policies/shipping.md"]},
        {"id": "l", "question": "How many days of annual leave?", "gold_doc_ids": ["docs/handbook/leave.md"]},
    ])


def test_eval_cli_reports_save_and_baseline_gate(cli: typer.Typer, runner: CliRunner, cli_kb: Path,
                                                 tmp_path: Path) -> None:
    qa = _qa(tmp_path)
    html, md = tmp_path / "out" / "report.html", tmp_path / "out" / "report.md"
    result = runner.invoke(cli, ["eval", str(qa), "--kb", str(cli_kb), "--modes", "bm25,dense", "--k", "1,3",
                                 "--report", str(html), "--markdown", str(md), "--save", "base"])
    assert result.exit_code == 0, result.output
    assert "<svg" in html.read_text(encoding="utf-8") and "| metric | bm25 | dense |" in md.read_text(encoding="utf-8")
    saved = cli_kb / "evals" / "base.json"
    assert saved.exists()
    same = runner.invoke(cli, ["eval", str(qa), "--kb", str(cli_kb), "--modes", "bm25,dense", "--k", "1,3",
                               "--baseline", "base"])
    assert same.exit_code == 0, same.output
    # A better baseline: every metric of the current run now counts as a drop.
    data = json.loads(saved.read_text(encoding="utf-8"))
    for run in data["runs"]:
        for metric in run["metrics"].values():
            metric["mean"] += 0.5
    saved.write_text(json.dumps(data), encoding="utf-8")
    gate = runner.invoke(cli, ["eval", str(qa), "--kb", str(cli_kb), "--modes", "bm25,dense", "--k", "1,3",
                               "--baseline", "base", "--tolerance", "0.02"])
    assert gate.exit_code == 1
    lines = [line for line in gate.output.splitlines() if line.startswith("regression: ")]
    assert any(line.startswith("regression: bm25 hit@1 ") for line in lines) and len(lines) == 2 * 10
    loose = runner.invoke(cli, ["eval", str(qa), "--kb", str(cli_kb), "--modes", "bm25,dense", "--k", "1,3",
                                "--baseline", str(saved), "--tolerance", "0.6"])
    assert loose.exit_code == 0, loose.output


def test_eval_cli_json_and_missing_gold(cli: typer.Typer, runner: CliRunner, cli_kb: Path, tmp_path: Path) -> None:
    qa = _jsonl(tmp_path / "qa.jsonl", [{"question": "반품 기간은?", "gold_sources": ["returns.md"]},
                                        {"question": "refunds?", "gold_sources": ["refunds.md"]}])
    stopped = runner.invoke(cli, ["eval", str(qa), "--kb", str(cli_kb), "--modes", "bm25"])
    assert stopped.exit_code == 1
    assert "error: 1 gold reference(s) in 1 question(s) are not in the knowledge base" in stopped.output
    assert "--allow-missing-gold" in stopped.output and "Traceback" not in stopped.output
    allowed = runner.invoke(cli, ["eval", str(qa), "--kb", str(cli_kb), "--modes", "bm25", "--k", "1,5",
                                  "--allow-missing-gold", "--json"])
    assert allowed.exit_code == 0, allowed.output
    data = json.loads(allowed.stdout)
    assert data["missing_gold"]["count"] == 1 and data["runs"][0]["metrics"]["hit@1"]["n"] == 1
    assert "questions" not in data["runs"][0] and data["runs"][0]["latency_ms"]["p50"] >= 0


def test_eval_cli_bad_input_is_one_line(cli: typer.Typer, runner: CliRunner, cli_kb: Path, tmp_path: Path) -> None:
    bad = _jsonl(tmp_path / "bad.jsonl", [{"question": "ok"}, {"answers": ["x"]}])
    result = runner.invoke(cli, ["eval", str(bad), "--kb", str(cli_kb)])
    assert result.exit_code == 1 and "line 2: no 'question'" in result.output and "Traceback" not in result.output
    for args, message in ((["--modes", "dense,fuzzy"], "unknown mode(s) in --modes: fuzzy"),
                          (["--k", "1,x"], "not a comma-separated list of integers"),
                          (["--judge", "ollama:x"], "--judge rates answers, so it needs --answers"),
                          (["--save", "a b"], "not a usable evaluation name")):
        result = runner.invoke(cli, ["eval", str(_qa(tmp_path)), "--kb", str(cli_kb), *args])
        assert result.exit_code == 1 and message in result.output, (args, result.output)


def test_eval_cli_chunk_sizes(cli: typer.Typer, runner: CliRunner, cli_kb: Path, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["eval", str(_qa(tmp_path)), "--kb", str(cli_kb), "--modes", "bm25",
                                 "--chunk-sizes", "40,800", "--k", "1,3", "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)["runs"]
    assert [(r["name"], r["chunk_size"]) for r in runs] == [("bm25@40", 40), ("bm25@800", 800)]
    assert runs[0]["chunks"] > runs[1]["chunks"]


def test_eval_cli_answers_with_the_extractive_answerer(cli: typer.Typer, runner: CliRunner, cli_kb: Path,
                                                       tmp_path: Path) -> None:
    qa = _jsonl(tmp_path / "qa.jsonl", [
        {"id": "r", "question": "반품은 며칠 이내에 신청할 수 있나요?", "answers": ["14일"],
         "gold_sources": ["returns.md"]},
        {"id": "l", "question": "How many days of annual leave per year?", "answers": ["15 days"]},
    ])
    md = tmp_path / "answers.md"
    result = runner.invoke(cli, ["eval", str(qa), "--kb", str(cli_kb), "--modes", "bm25", "--answers", "--json",
                                 "--markdown", str(md)])
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)["answers"]
    assert answers["llm"] == "extractive" and answers["complete"] and "records" not in answers
    assert set(answers["metrics"]) >= {"em", "f1", "found_rate"} and answers["metrics"]["em"]["n"] == 2
    assert "## Answers" in md.read_text(encoding="utf-8")


def test_eval_cli_judge_down_writes_nothing(cli: typer.Typer, runner: CliRunner, cli_kb: Path,
                                            tmp_path: Path) -> None:
    html = tmp_path / "r.html"
    qa = _jsonl(tmp_path / "qa.jsonl", [{"question": "반품 기간은?", "answers": ["14일"],
                                        "gold_sources": ["returns.md"]}])
    result = runner.invoke(cli, ["eval", str(qa), "--kb", str(cli_kb), "--answers", "--judge",
                                 "openai:http://127.0.0.1:9/v1#judge", "--report", str(html), "--save", "x"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "error:" in result.output and "127.0.0.1:9" in " ".join(result.output.split())
    assert not html.exists() and not (cli_kb / "evals" / "x.json").exists()


# --- real data ---------------------------------------------------------------------------------------


def test_shared_datasets_load() -> None:
    sec = load_dataset(shared_data("sec10q", "qna_data.csv"))
    assert len(sec.examples) == 195 and all(e.gold_sources and e.answers for e in sec.examples)
    pdfs = [f"docs/{p.name}" for p in shared_data("sec10q", "docs").glob("*.pdf")]
    assert not check_gold(sec, [(pdf, pdf) for pdf in pdfs])  # every "*2023 Q3 AAPL*" glob names a filing
    squad = load_dataset(shared_data("squad_v1.1_dev", "dev-v1.1.json"))
    assert (len(squad.examples), len(squad.corpus or [])) == (10570, 2067)
    korean = load_dataset(shared_data("msmarco_ko_en", "msmarco_kor.json"))
    assert len(korean.examples) == 6980 and korean.corpus


def test_eval_cli_squad_real_embedder(cli: typer.Typer, tmp_path: Path) -> None:
    """One SQuAD article (54 paragraphs) with the real default embedder, through the CLI."""
    data = json.loads(shared_data("squad_v1.1_dev", "dev-v1.1.json").read_text(encoding="utf-8"))
    subset = _write(tmp_path / "squad-one-article.json", json.dumps({"version": "1.1", "data": data["data"][:1]}))
    result = CliRunner().invoke(cli, ["eval", str(subset), "--kb", str(tmp_path / "kb"), "--modes", "bm25,hybrid",
                                      "--k", "1,5", "--limit", "40", "--json", "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kb_info"]["documents"] == 54 and report["n_questions"] == 40
    hybrid = next(r for r in report["runs"] if r["name"] == "hybrid")
    assert hybrid["metrics"]["hit@5"]["mean"] >= 0.7
    assert "e5" in report["kb_info"]["embedder"]
