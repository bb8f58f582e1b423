"""Evaluation gold: answers in BEIR queries, gold ids of records ingested with ``id_field``, globs that name
several files, citation accuracy on gold documents and pages, and datasets refused before any work.

Knowledge bases use the hashing embedder (a named fake): these tests are about matching logic, not quality.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from jisik.embed.hashing import HashingEmbedder
from jisik.errors import EvaluationError
from jisik.evaluate.datasets import EvalDataset, EvalExample, check_gold, load_beir
from jisik.evaluate.gold import GoldIndex, gold_citation_accuracy, preflight, record_key, split_page
from jisik.evaluate.report import AnswerResult, EvalReport
from jisik.evaluate.runner import RetrievalRunConfig, run_answer_eval, run_retrieval_eval
from jisik.generate.llms.base import Message
from jisik.generate.llms.fake import FakeLLM
from jisik.kb import KnowledgeBase
from jisik.records import Document, Hit, Segment


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(path: Path, rows: Sequence[object]) -> Path:
    return _write(path, "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")




def _beir(folder: Path, queries: Sequence[dict[str, Any]], qrels: str = "q1\td1\t1\nq2\td2\t1\n") -> Path:
    _jsonl(folder / "corpus.jsonl", [{"_id": "d1", "title": "Returns", "text": "Returns are accepted within 14 days."},
                                     {"_id": "d2", "text": "Shipping takes two days."},
                                     {"_id": "d3", "text": "Annual leave is 15 days."}])
    _jsonl(folder / "queries.jsonl", queries)
    _write(folder / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\n" + qrels)
    return folder


# --- a. answers in a BEIR folder ---------------------------------------------------------------------


def test_beir_reads_answers_from_queries(tmp_path: Path) -> None:
    folder = _beir(tmp_path / "beir", [{"_id": "q1", "text": "return window", "answers": "14 days"},
                                       {"_id": "q2", "text": "shipping time", "answers": ["two days", "2 days"]}])
    q1, q2 = load_beir(folder).examples
    assert (q1.answers, q2.answers) == (["14 days"], ["two days", "2 days"])
    assert q1.gold_doc_ids == ["d1"]


def test_beir_answers_of_the_wrong_type_are_named(tmp_path: Path) -> None:
    folder = _beir(tmp_path / "beir", [{"_id": "q1", "text": "return window", "answers": 14},
                                       {"_id": "q2", "text": "shipping"}])
    with pytest.raises(EvaluationError, match=r"queries.jsonl line 1: 'answers' must be a list of strings"):
        load_beir(folder)


def test_eval_cli_accepts_beir_answers(cli: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    folder = _beir(tmp_path / "beir", [{"_id": "q1", "text": "How many days are returns accepted within?",
                                        "answers": "14 days"},
                                       {"_id": "q2", "text": "How long does shipping take?",
                                        "answers": ["two days"]}])
    result = runner.invoke(cli, ["eval", str(folder), "--kb", str(tmp_path / "kb"), "--modes", "bm25", "--k", "1,3",
                                 "--answers", "--json"])
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)["answers"]
    assert answers["metrics"]["em"]["n"] == 2 and answers["skipped_without_answers"] == 0


# --- b. gold ids of records ingested with id_field -----------------------------------------------------


def test_record_key_is_the_user_id_whatever_the_file_prefix() -> None:
    assert record_key("ko/corpus.jsonl#p0001", "ko/corpus.jsonl") == "p0001"
    # The file part may get a longer prefix (two folders with the same name): the base name still anchors it.
    assert record_key("x/ko/corpus.jsonl#p0001", "ko/corpus.jsonl") == "p0001"
    assert record_key("x/ko/corpus.jsonl#a#b", "x/ko/corpus.jsonl") == "a#b"  # the id itself may hold '#'
    assert record_key("Super_Bowl_50#0", "Super_Bowl_50#0") is None  # a dataset corpus document: its id is its own
    assert record_key("docs/a.md", "docs/a.md") is None
    assert record_key("notcorpus.jsonl#p1", "corpus.jsonl") is None  # base names match whole, not as a suffix


def test_gold_index_resolves_exact_ids_then_path_tails_then_record_keys() -> None:
    index = GoldIndex([("x/ko/corpus.jsonl#p1", "ko/corpus.jsonl"), ("x/ko/corpus.jsonl#p2", "ko/corpus.jsonl"),
                       ("p2", "p2"), ("a/faq.csv#7", "a/faq.csv"), ("b/faq.csv#7", "b/faq.csv")])
    assert index.doc_ids_for_id("p1") == ["x/ko/corpus.jsonl#p1"]  # the record whose own id is p1
    assert index.doc_ids_for_id("p2") == ["p2"]  # an exact document id wins over a record key
    assert index.doc_ids_for_id("ko/corpus.jsonl#p2") == ["x/ko/corpus.jsonl#p2"]  # a shorter path form
    assert index.doc_ids_for_id("7") == ["a/faq.csv#7", "b/faq.csv#7"]  # ambiguous: either counts
    assert index.doc_ids_for_id("p9") == []


def test_gold_ids_match_a_jsonl_corpus_ingested_with_id_field(tmp_path: Path) -> None:
    corpus = tmp_path / "data" / "ko" / "corpus.jsonl"
    _jsonl(corpus, [{"_id": "p1", "text": "반품은 상품을 받은 날부터 14일 이내에 신청할 수 있습니다."},
                    {"_id": "p2", "text": "배송은 보통 이틀 걸립니다."},
                    {"_id": "p3", "text": "Annual leave is 15 days per year."}])
    kb = KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(64),
                            overrides={"loaders": {"id_field": "_id", "text_field": "text"}})
    kb.ingest([tmp_path / "data"])
    doc_ids = sorted(d["doc_id"] for d in kb.documents())
    assert all(d.endswith(("corpus.jsonl#p1", "corpus.jsonl#p2", "corpus.jsonl#p3")) for d in doc_ids)
    ds = EvalDataset("qrels", [EvalExample("q1", "반품 신청 기간", gold_doc_ids=["p1"]),
                               EvalExample("q2", "배송 기간", gold_doc_ids=["p2"]),
                               EvalExample("q3", "annual leave days", gold_doc_ids=["p3"])])
    assert not check_gold(ds, [(d["doc_id"], d["source"]) for d in kb.documents()])
    report = run_retrieval_eval(kb, ds, configs=[RetrievalRunConfig("bm25", "bm25")], ks=(1, 3))
    run = report.run("bm25")
    assert run.metrics["hit@3"].mean == 1.0 and run.metrics["hit@3"].n == 3
    assert any("own id" in note for note in report.notes)  # says how the gold ids were matched
    kb.close()


def test_row_numbers_are_not_taken_for_user_ids(tmp_path: Path) -> None:
    """Without id_field the part after '#' is a row number: gold '2' must stay missing, not match row 2."""
    _write(tmp_path / "data" / "faq.csv", "text\n반품은 14일 이내입니다.\n배송은 이틀 걸립니다.\n")
    kb = KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(64))
    kb.ingest([tmp_path / "data"])
    assert sorted(d["doc_id"] for d in kb.documents()) == ["data/faq.csv#1", "data/faq.csv#2"]
    ds = EvalDataset("q", [EvalExample("q1", "배송", gold_doc_ids=["2"]),
                           EvalExample("q2", "반품", gold_doc_ids=["faq.csv#1"])])  # a shorter path form still works
    with pytest.raises(EvaluationError, match=r"1 gold reference\(s\) in 1 question\(s\).*q1: doc id '2'"):
        run_retrieval_eval(kb, ds, configs=[RetrievalRunConfig("bm25", "bm25")], ks=(1,))
    kb.close()


# --- c. a glob names every matching file ---------------------------------------------------------------


def _hit(doc_id: str) -> Hit:
    return Hit(0, 1.0, "text", doc_id, doc_id, None, None, None, 0, 4)


def test_glob_gold_counts_every_matching_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """q1: "*AAPL*" names two filings, one retrieved (twice) → recall@3 1/2, hit@1 1.  q2: one filing at rank 2."""
    for name in ("2022 Q3 AAPL.md", "2023 Q1 AAPL.md", "2023 Q1 MSFT.md"):
        _write(tmp_path / "sec" / name, f"# {name}\n\nQuarterly report {name}.")
    kb = KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(64))
    kb.ingest([tmp_path / "sec"])
    old, new, msft = "sec/2022 Q3 AAPL.md", "sec/2023 Q1 AAPL.md", "sec/2023 Q1 MSFT.md"
    scripted = {"apple": [old, msft, old], "apple q1": [msft, new, old]}

    def fake_search_batch(queries: Sequence[str], **options: Any) -> list[list[Hit]]:
        return [[_hit(d) for d in scripted[q]] for q in queries]

    monkeypatch.setattr(kb, "search_batch", fake_search_batch)
    ds = EvalDataset("sec", [EvalExample("1", "apple", gold_sources=["*AAPL*"]),
                             EvalExample("2", "apple q1", gold_sources=["*2023 Q1 AAPL*"])])
    run = run_retrieval_eval(kb, ds, configs=[RetrievalRunConfig("bm25", "bm25")], ks=(1, 3)).run("bm25")
    means = {name: value.mean for name, value in run.metrics.items()}
    assert means["recall@3"] == pytest.approx((1 / 2 + 1) / 2)  # not hit@3 (1.0): one of two AAPL filings
    assert means["hit@3"] == 1.0 and means["recall@1"] == pytest.approx((1 / 2 + 0) / 2)
    assert means["precision@3"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert run.questions[0].gold == [old, new]  # the files the glob stands for
    assert [item.relevant for item in run.questions[0].retrieved] == [True, False, True]
    kb.close()


# --- d. citation accuracy on gold documents and pages --------------------------------------------------

PAGE_1 = "Net sales were 82,959 million dollars in the third quarter."
PAGE_2 = "Research and development expense grew because of headcount."
LONG_ANSWER = ("Apple's research and development expense increased, primarily driven by increases in "
               "headcount-related expenses, as the filing explains at length. SOURCE(S): 2023 Q3 AAPL.pdf")


def _cite_first(messages: Sequence[Message]) -> str:
    return "R&D grew with headcount [1]."


@pytest.fixture
def filing_kb(tmp_path: Path) -> KnowledgeBase:
    kb = KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(64))
    text = f"{PAGE_1}\n\n{PAGE_2}"
    kb.add_documents([Document("sec/2023 Q3 AAPL.pdf", "sec/2023 Q3 AAPL.pdf", text,
                               segments=[Segment(0, len(PAGE_1), page=1), Segment(len(PAGE_1) + 2, len(text), page=2)]),
                      Document("sec/2023 Q3 MSFT.pdf", "sec/2023 Q3 MSFT.pdf", "Cloud revenue rose.")])
    return kb


def test_gold_citation_accuracy_is_the_share_of_citations_on_gold() -> None:
    index = GoldIndex([("a.pdf", "docs/a.pdf"), ("b.pdf", "docs/b.pdf")])
    items = index.resolve(EvalExample("q", "?", gold_sources=["a.pdf#page=2"])).items
    assert gold_citation_accuracy([("a.pdf", 2), ("a.pdf", 3), ("b.pdf", 2)], items) == pytest.approx(1 / 3)
    assert gold_citation_accuracy([], items) == 0.0
    assert split_page("2023 Q3 AAPL.pdf#page=12") == ("2023 Q3 AAPL.pdf", 12)


def test_citation_accuracy_uses_gold_documents_and_pages(filing_kb: KnowledgeBase) -> None:
    ds = EvalDataset("sec", [
        EvalExample("doc", "research and development expense headcount", answers=[LONG_ANSWER],
                    gold_sources=["*2023 Q3 AAPL*"]),
        EvalExample("page", "research and development expense headcount", answers=[LONG_ANSWER],
                    gold_sources=["2023 Q3 AAPL.pdf#page=2"]),
        EvalExample("wrong-page", "research and development expense headcount", answers=[LONG_ANSWER],
                    gold_sources=["2023 Q3 AAPL.pdf#page=1"]),
        EvalExample("other-doc", "research and development expense headcount", answers=[LONG_ANSWER],
                    gold_doc_ids=["sec/2023 Q3 MSFT.pdf"]),
        EvalExample("no-gold", "research and development expense headcount", answers=["headcount"]),
    ])
    result = run_answer_eval(filing_kb, ds, llm=FakeLLM(_cite_first), mode="bm25")
    by_qid = {r.qid: r for r in result.records}
    assert by_qid["doc"].citations == ["sec/2023 Q3 AAPL.pdf p.2"]  # [1] is the page-2 chunk
    # The long reference answer is in no chunk, yet the answer cites the gold filing (and page).
    assert [by_qid[q].citation_accuracy for q in ("doc", "page", "wrong-page", "other-doc", "no-gold")] == [
        1.0, 1.0, 0.0, 0.0, 1.0]
    assert [by_qid[q].citation_basis for q in ("doc", "page", "other-doc", "no-gold")] == [
        "gold document", "gold page", "gold document", "reference answer"]
    assert result.citation_bases == {"gold document": 2, "gold page": 2, "reference answer": 1}
    definition = result.citation_definition
    assert "cites a gold document (2 questions)" in definition and "gold page (2 questions)" in definition
    assert "contains a reference answer (1 question" in definition
    report = EvalReport("sec", str(filing_kb.path), 5, [1], answers=result)
    for text in (report.to_markdown(), report.to_html(), json.dumps(report.to_dict())):
        assert "cites a gold document" in text
    loaded = AnswerResult.from_dict(result.to_dict())
    assert loaded.records[1].citation_basis == "gold page" and loaded.citation_definition == definition


# --- e. refused before ingesting and searching -----------------------------------------------------------


def test_preflight_refuses_what_cannot_be_evaluated() -> None:
    questions_only = EvalDataset("q", [EvalExample("1", "q?")])
    with pytest.raises(EvaluationError, match="no question in 'q' names a gold document"):
        preflight(questions_only, [], answers=False)
    with pytest.raises(EvaluationError, match="--answers needs reference answers") as err:
        preflight(EvalDataset("g", [EvalExample("1", "q?", gold_doc_ids=["a"])]), [("a", "a")], answers=True)
    assert err.value.hint and "queries.jsonl" in err.value.hint
    gold = EvalDataset("g", [EvalExample("1", "q?", gold_doc_ids=["a"]), EvalExample("2", "r?", gold_doc_ids=["zz"])])
    with pytest.raises(EvaluationError, match="1 gold reference"):
        preflight(gold, [("a", "a")], answers=False)
    assert preflight(gold, [("a", "a")], answers=False, allow_missing_gold=True).examples == ["2: doc id 'zz'"]
    with pytest.raises(EvaluationError, match="none of the gold documents"):
        preflight(gold, [("b", "b")], answers=False, allow_missing_gold=True)


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingesting or searching fails the test: a refusal must come first."""
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("ingested or searched before refusing the dataset")

    for name in ("add_documents", "ingest", "search_batch", "ask"):
        monkeypatch.setattr(KnowledgeBase, name, refuse)


@pytest.mark.usefixtures("no_work")
def test_eval_cli_refuses_before_ingesting(cli: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    no_answers = _beir(tmp_path / "plain", [{"_id": "q1", "text": "returns"}, {"_id": "q2", "text": "shipping"}])
    bad_qrels = _beir(tmp_path / "bad", [{"_id": "q1", "text": "returns"}, {"_id": "q2", "text": "shipping"}],
                      qrels="q1\td1\t1\nq2\td9\t1\n")
    questions_only = _jsonl(tmp_path / "q.jsonl", [{"question": "반품 기간은?"}])
    cases = [([str(no_answers), "--answers"], "--answers needs reference answers"),
             ([str(bad_qrels)], "1 gold reference(s) in 1 question(s) are not in the knowledge base"),
             ([str(questions_only)], "names a gold document")]
    for args, message in cases:
        result = runner.invoke(cli, ["eval", *args, "--kb", str(tmp_path / "kb"), "--modes", "bm25"])
        assert result.exit_code == 1, result.output
        assert message in " ".join(result.output.split()) and "Traceback" not in result.output
        assert result.output.count("error:") == 1
