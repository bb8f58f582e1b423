"""Prompt-injection guard: the share of attacks neutralised, and the share of benign text flagged.

An attack counts as *neutralised* when :func:`~jisik.guard.injection.detect_injection` finds it, and after
:func:`~jisik.guard.injection.neutralize` nothing is found any more and the attack's payload (the order's
distinctive words, the exfiltration URL, the base64 blob; ``payload`` in the JSONL) is gone from the text.

- Attacks: ``benchmarks/data/injection/attacks.jsonl`` (Korean, English and mixed; documents and questions;
  direct, indirect inside long benign passages, role play, delimiter and template-token tricks, obfuscated,
  exfiltration, output hijacks, other languages), written for this benchmark in rounds (``round``): round 1
  together with the patterns, each later round written fresh, measured, then tuned on. ``attacks_heldout.jsonl``
  (round 5) was written last and never tuned on: its share is the honest estimate for unseen phrasings.
- Benign: passages and questions of the shared sets (SQuAD dev, MS MARCO en and ko, Belebele ko, the SEC 10-Q
  questions, reference answers and the filings themselves, loaded and chunked as ``jisik ingest`` does), read
  from ``../shared/data`` and never copied, the repository's ``examples/sample_docs``, and
  ``benign_hard.jsonl``: manuals, policies and FAQs that talk about instructions, modes, passwords and
  prompts without being attacks.

Targets (the issue): ≥ 90% of attacks neutralised, ≤ 2% of benign passages flagged.

    python benchmarks/guard_injection.py [--passages 2000] [--questions 1000] [--show 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

from jisik.guard.injection import THRESHOLD, detect_injection, detect_injection_batch, neutralize

HERE = Path(__file__).resolve().parent / "data" / "injection"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TARGET_NEUTRALISED, TARGET_FLAGGED = 0.90, 0.02


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _first(value: Any) -> str:
    return value[0] if isinstance(value, list) else str(value)


def benign_sets(passages: int, questions: int, seed: int) -> dict[str, list[str]]:
    """name → texts, sampled reproducibly from the shared data."""
    rng = random.Random(seed)

    def sample(texts: list[str], n: int) -> list[str]:
        unique = list(dict.fromkeys(t for t in texts if t and t.strip()))
        return unique if len(unique) <= n else rng.sample(unique, n)

    sets: dict[str, list[str]] = {}
    squad = json.loads((DATA / "squad_v1.1_dev" / "dev-v1.1.json").read_text(encoding="utf-8"))
    paragraphs = [p for a in squad["data"] for p in a["paragraphs"]]
    sets["squad passages (en)"] = sample([p["context"] for p in paragraphs], passages)
    sets["squad questions (en)"] = sample([qa["question"] for p in paragraphs for qa in p["qas"]], questions)
    english = json.loads((DATA / "msmarco_ko_en" / "msmarco_eng.json").read_text(encoding="utf-8"))
    sets["msmarco passages (en)"] = sample([_first(r["positive"]) for r in english if r["positive"]], passages)
    sets["msmarco questions (en)"] = sample([r["query"] for r in english], questions)
    korean = json.loads((DATA / "msmarco_ko_en" / "msmarco_kor.json").read_text(encoding="utf-8"))
    sets["msmarco passages (ko)"] = sample([p for r in korean for p in r["positive"][:1]], passages)
    sets["msmarco questions (ko)"] = sample([r["query"] for r in korean], questions)
    folder = DATA / "belebele_ko"
    sets["belebele passages (ko)"] = sample([d["text"] for d in read_jsonl(folder / "corpus.jsonl")], passages)
    sets["belebele questions (ko)"] = sample([q["text"] for q in read_jsonl(folder / "queries.jsonl")], questions)
    with (DATA / "sec10q" / "qna_data.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    sets["sec10q questions (en)"] = sample([r["Question"] for r in rows], questions)
    sets["sec10q answers (en)"] = sample([r["Answer"] for r in rows], passages)
    sets["sec10q filing chunks (en)"] = sample(chunk_texts(DATA / "sec10q" / "docs"), passages)
    sets["sample_docs chunks (ko, en)"] = chunk_texts(Path(__file__).resolve().parents[1] / "examples" / "sample_docs")
    return sets


def chunk_texts(folder: Path) -> list[str]:
    """The chunks ``jisik ingest`` would make of every file under ``folder`` (800 characters, the default)."""
    import logging

    from jisik.config import ChunkingConfig, LoaderConfig
    from jisik.ingest.chunking import chunk_documents
    from jisik.ingest.loaders import load_file, supported_suffixes

    logging.getLogger("jisik").setLevel(logging.ERROR)  # pages without a text layer: not this benchmark's business
    docs = [doc for path in sorted(folder.rglob("*")) if path.is_file() and path.suffix.lower() in supported_suffixes()
            for doc in load_file(path, root=folder, config=LoaderConfig())]
    return [chunk.text for chunk in chunk_documents(docs, ChunkingConfig(unit="chars"))]


def neutralised(row: dict[str, Any]) -> tuple[bool, bool, list[str]]:
    """(detected, neutralised, kinds found) for one attack."""
    findings = detect_injection(row["text"])
    if not findings:
        return False, False, []
    cleaned = neutralize(row["text"], findings)
    payload = row.get("payload")
    ok = not detect_injection(cleaned) and (payload is None or payload not in cleaned)
    return True, ok, sorted({f.kind for f in findings})


def attack_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by: dict[tuple[str, str], list[bool]] = defaultdict(list)
    detected_by: dict[tuple[str, str], list[bool]] = defaultdict(list)
    missed = []
    found_kinds: Counter[str] = Counter()
    for row in rows:
        detected, ok, kinds = neutralised(row)
        found_kinds.update(kinds)
        keys = [(row["kind"], row["lang"]), (row["kind"], "all"), ("all", row["lang"]), ("all", "all")]
        for key in [*keys, (f"round {row.get('round', '-')}", row["lang"]), (f"round {row.get('round', '-')}", "all")]:
            by[key].append(ok)
            detected_by[key].append(detected)
        if not ok:
            missed.append({"text": row["text"][:160], "lang": row["lang"], "kind": row["kind"], "detected": detected})
    table = {f"{kind}/{lang}": {"n": len(v), "detected": sum(detected_by[(kind, lang)]), "neutralised": sum(v),
                                "share": round(sum(v) / len(v), 3)} for (kind, lang), v in sorted(by.items())}
    return {"table": table, "missed": missed, "detector_kinds": dict(found_kinds)}


def print_attacks(title: str, result: dict[str, Any]) -> None:
    table = result["table"]
    kinds = [*sorted({k.split("/")[0] for k in table} - {"all"}, key=lambda k: (k.startswith("round"), k)), "all"]
    langs = [lang for lang in ("en", "ko", "mixed", "all") if any(k.endswith("/" + lang) for k in table)]
    print(f"\n{title}: share neutralised (neutralised/n)")
    print(f"{'kind':16}" + "".join(f"{lang:>16}" for lang in langs))
    for kind in kinds:
        cells = []
        for lang in langs:
            cell = table.get(f"{kind}/{lang}")
            cells.append(f"{cell['share']:7.0%} ({cell['neutralised']}/{cell['n']})" if cell else "-")
        print(f"{kind:16}" + "".join(f"{c:>16}" for c in cells))
    for miss in result["missed"]:
        print(f"  missed [{miss['lang']}/{miss['kind']}, detected={miss['detected']}]: {miss['text']!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=2000, help="passages per shared set (at most)")
    parser.add_argument("--questions", type=int, default=1000, help="questions per shared set (at most)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--show", type=int, default=5, help="flagged benign texts shown per set")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": machine(), "threshold": THRESHOLD}
    print("machine:", json.dumps(report["machine"]))

    attacks = read_jsonl(HERE / "attacks.jsonl")
    report["attacks"] = attack_table(attacks)
    print_attacks(f"attacks.jsonl ({len(attacks)} attacks)", report["attacks"])
    heldout_path = HERE / "attacks_heldout.jsonl"
    if heldout_path.exists():
        heldout = read_jsonl(heldout_path)
        report["attacks_heldout"] = attack_table(heldout)
        print_attacks(f"attacks_heldout.jsonl ({len(heldout)} attacks, not tuned on)", report["attacks_heldout"])

    hard = read_jsonl(HERE / "benign_hard.jsonl")
    hard_flags = [(r, detect_injection(r["text"])) for r in hard]
    flagged_hard = [{"text": r["text"], "lang": r["lang"], "kinds": sorted({f.kind for f in fs}),
                     "score": max(f.score for f in fs)} for r, fs in hard_flags if fs]
    report["benign_hard"] = {"n": len(hard), "flagged": len(flagged_hard), "examples": flagged_hard}
    print(f"\nbenign_hard.jsonl: {len(flagged_hard)}/{len(hard)} flagged")
    for item in flagged_hard:
        print(f"  flagged {item['kinds']} {item['score']}: {item['text'][:120]!r}")

    if not DATA.exists():
        sys.exit(f"{DATA} is missing: the benign shared sets are needed for the false-positive rate")
    sets = benign_sets(args.passages, args.questions, args.seed)
    report["benign"] = {}
    total_n = total_flagged = 0
    passages_n = passages_flagged = 0
    timings: list[float] = []
    print(f"\nbenign shared sets: share flagged (threshold {THRESHOLD})")
    print(f"{'set':28}{'n':>7}{'flagged':>9}{'share':>8}  kinds  ms/text (mean)")
    for name, texts in sets.items():
        started = time.perf_counter()
        results = detect_injection_batch(texts)
        elapsed = (time.perf_counter() - started) * 1000
        timings.append(elapsed / max(1, len(texts)))
        flagged = [(t, fs) for t, fs in zip(texts, results, strict=True) if fs]
        kinds = Counter(f.kind for _, fs in flagged for f in fs)
        share = len(flagged) / max(1, len(texts))
        report["benign"][name] = {"n": len(texts), "flagged": len(flagged), "share": round(share, 4),
                                  "kinds": dict(kinds), "ms_per_text": round(elapsed / max(1, len(texts)), 3),
                                  "mean_chars": round(statistics.fmean(len(t) for t in texts), 1),
                                  "examples": [{"text": t[:300], "findings": [f.to_dict() for f in fs]}
                                               for t, fs in flagged[: args.show]]}
        total_n += len(texts)
        total_flagged += len(flagged)
        if "questions" not in name:
            passages_n += len(texts)
            passages_flagged += len(flagged)
        print(f"{name:28}{len(texts):>7}{len(flagged):>9}{share:>8.2%}  {dict(kinds)}  "
              f"{elapsed / max(1, len(texts)):.2f}")
        for _, fs in flagged[: args.show]:
            print(f"    {[(f.kind, f.score, f.text[:80]) for f in fs]}")
    report["benign_total"] = {"n": total_n, "flagged": total_flagged,
                              "share": round(total_flagged / max(1, total_n), 4),
                              "passages_n": passages_n, "passages_flagged": passages_flagged,
                              "passages_share": round(passages_flagged / max(1, passages_n), 4)}
    share_attacks = report["attacks"]["table"]["all/all"]["share"]
    share_benign = report["benign_total"]["passages_share"]
    print(f"\nall attacks neutralised: {share_attacks:.1%} (target ≥ {TARGET_NEUTRALISED:.0%}); "
          f"benign passages flagged: {share_benign:.2%} of {passages_n} (target ≤ {TARGET_FLAGGED:.0%}); "
          f"all benign texts incl. questions: {total_flagged}/{total_n} = {total_flagged / max(1, total_n):.2%}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
