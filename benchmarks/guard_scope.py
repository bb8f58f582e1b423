"""Calibrate the relevance floor of ``[guard] min_relevance = "auto"`` for the default embedder.

A question whose best chunk is less similar than the floor is answered "not found" instead of guessed. The
floor must almost never refuse a question the collection can answer, on every kind of collection, so it is
set from in-scope questions of every shared set together: the lowest per-set 1st percentile of the best
chunk's cosine. Reported beside it: how many out-of-scope questions it refuses (other sets' questions against
this set's passages, and hand-written off-topic questions in Korean and English).

    python benchmarks/guard_scope.py [--passages 1500] [--questions 300] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OFF_TOPIC = [
    "오늘 저녁 메뉴 추천해줘", "너는 누구니?", "고양이에 관한 시를 써 줘", "비트코인 가격 전망은?",
    "내일 서울 날씨 어때?",
    "재미있는 농담 하나 해줘", "파이썬으로 퀵소트 구현해줘", "연애 상담 좀 해줄래?", "주말에 갈 만한 캠핑장 알려줘",
    "로또 번호 추천해줘", "영어 이름 지어줘", "다이어트 식단 짜줘", "요즘 유행하는 노래는?", "라면 맛있게 끓이는 법",
    "Write a poem about cats", "What is the meaning of life?", "Tell me a joke", "Who will win the next election?",
    "Recommend a movie for tonight", "How do I fix my bicycle chain?", "Translate 'hello' into French",
    "What's your favourite colour?", "Give me a recipe for pancakes", "Can you write my homework essay?",
    "What is 17 times 23?", "Plan a trip to Jeju for me", "How tall is Mount Everest?", "Sing me a song",
]


def load_sets(passages: int, questions: int, seed: int) -> dict[str, tuple[list[str], list[str]]]:
    """name → (passages, questions whose gold passage is among them)."""
    rng = random.Random(seed)
    sets: dict[str, tuple[list[str], list[str]]] = {}
    squad = json.loads((DATA / "squad_v1.1_dev" / "dev-v1.1.json").read_text(encoding="utf-8"))
    pairs = [(p["context"], qa["question"]) for a in squad["data"] for p in a["paragraphs"] for qa in p["qas"]]
    sets["squad"] = _sample(pairs, passages, questions, rng)
    korean = json.loads((DATA / "msmarco_ko_en" / "msmarco_kor.json").read_text(encoding="utf-8"))
    sets["msmarco-ko"] = _sample([(r["positive"][0], r["query"]) for r in korean if r["positive"]], passages,
                                 questions, rng)
    english = json.loads((DATA / "msmarco_ko_en" / "msmarco_eng.json").read_text(encoding="utf-8"))
    sets["msmarco-en"] = _sample([(_first(r["positive"]), r["query"]) for r in english if r["positive"]], passages,
                                 questions, rng)
    folder = DATA / "belebele_ko"
    corpus = {d["_id"]: d["text"] for d in map(json.loads, (folder / "corpus.jsonl").open(encoding="utf-8"))}
    queries = {q["_id"]: q["text"] for q in map(json.loads, (folder / "queries.jsonl").open(encoding="utf-8"))}
    with (folder / "qrels" / "test.tsv").open(encoding="utf-8") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and r[0] in queries]
    sets["belebele-ko"] = _sample([(corpus[r[1]], queries[r[0]]) for r in rows if r[1] in corpus], passages,
                                  questions, rng)
    return sets


def _first(value: str | list[str]) -> str:
    return value if isinstance(value, str) else value[0]


def _sample(pairs: list[tuple[str, str]], passages: int, questions: int,
            rng: random.Random) -> tuple[list[str], list[str]]:
    chosen = rng.sample(pairs, min(questions, len(pairs)))
    texts = list(dict.fromkeys(p for p, _ in chosen))
    others = list(dict.fromkeys(p for p, _ in pairs if p not in set(texts)))
    rng.shuffle(others)
    texts += others[: max(0, passages - len(texts))]
    return texts, [q for _, q in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=1500)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--percentile", type=float, default=1.0, help="in-scope questions a floor may refuse, %")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} is missing: this benchmark needs the shared evaluation data")
    from jisik.config import EmbedderConfig
    from jisik.embed import create_embedder

    embedder = create_embedder(EmbedderConfig())
    sets = load_sets(args.passages, args.questions, args.seed)
    vectors = {name: (embedder.embed_documents(p), embedder.embed_queries(q)) for name, (p, q) in sets.items()}
    off_topic = embedder.embed_queries(OFF_TOPIC)
    best_in: dict[str, np.ndarray] = {name: (q @ p.T).max(axis=1) for name, (p, q) in vectors.items()}
    floors = {name: float(np.percentile(scores, args.percentile)) for name, scores in best_in.items()}
    floor = min(floors.values())
    print(f"machine: {machine()}")
    print(f"embedder: {embedder.model}; floor = min over sets of the {args.percentile:g}th percentile "
          f"of in-scope best cosine = {floor:.4f}")
    print(f"{'set':<12} {'in p1':>7} {'in p50':>7} {'in refused':>10} {'other sets refused':>19} "
          f"{'off-topic refused':>18}")
    report: dict[str, Any] = {"embedder": embedder.model, "floor": floor, "sets": {}}
    for name, (p, _) in vectors.items():
        others = np.concatenate([q for other, (_, q) in vectors.items() if other != name])
        best_other = (others @ p.T).max(axis=1)
        best_off = (off_topic @ p.T).max(axis=1)
        row = {"in_p1": floors[name], "in_p50": float(np.median(best_in[name])),
               "in_refused": float((best_in[name] < floor).mean()), "other_refused": float((best_other < floor).mean()),
               "off_topic_refused": float((best_off < floor).mean())}
        report["sets"][name] = row
        print(f"{name:<12} {row['in_p1']:7.4f} {row['in_p50']:7.4f} {row['in_refused']:10.1%} "
              f"{row['other_refused']:19.1%} {row['off_topic_refused']:18.1%}")
    print("refusal rates at candidate floors (in-scope / other sets / off-topic, averaged over sets):")
    for candidate in (0.76, 0.78, 0.79, 0.80, round(floor, 4)):
        rates = []
        for name, (p, _) in vectors.items():
            others = np.concatenate([q for other, (_, q) in vectors.items() if other != name])
            rates.append(((best_in[name] < candidate).mean(), ((others @ p.T).max(axis=1) < candidate).mean(),
                          ((off_topic @ p.T).max(axis=1) < candidate).mean()))
        worst_in = max(r[0] for r in rates)
        mean = np.mean(np.array(rates), axis=0)
        print(f"  {candidate:.4f}: in-scope {mean[0]:.1%} (worst set {worst_in:.1%}), other sets {mean[1]:.1%}, "
              f"off-topic {mean[2]:.1%}")
        report.setdefault("candidates", {})[str(candidate)] = {"in": float(mean[0]), "in_worst": float(worst_in),
                                                               "other": float(mean[1]), "off_topic": float(mean[2])}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
