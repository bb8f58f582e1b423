"""PII detection quality and speed: jisik's :class:`~jisik.guard.pii.PiiDetector` against Microsoft Presidio's
analyzer, side by side in one run, on the labelled set in ``benchmarks/data/pii/`` (Korean and English).

    python benchmarks/guard_pii.py                       # both systems, both languages
    python benchmarks/guard_pii.py --json .bench/guard_pii.json
    python benchmarks/guard_pii.py --no-presidio         # jisik only (Presidio not installed)

Precision, recall and F2 (recall weighted 4× precision: a missed resident number costs more than a masked date)
per entity type and language. Two matchings: **exact** (same type, same start and end: the headline) and
**overlap** (same type, spans overlap; one prediction per gold entity). PERSON and ADDRESS are jisik's optional
types (``names=True, addresses=True``), scored on Korean rows only; Presidio finds names and addresses only
with a spaCy NER model, which this benchmark does not download, so they are n/a for it.

Presidio (``pip install presidio-analyzer``; never a dependency of jisik) is set up as fairly as it goes
without model downloads:

- an NLP engine with no model: tokens are ``\\w+`` runs and punctuation, lemmas the lower-cased tokens, so its
  context words still work (its enhancer matches context words as substrings: "주민등록번호는" holds
  "주민등록번호");
- its Korean recognizers (KR_RRN, KR_FRN, KR_BRN, KR_DRIVER_LICENSE, KR_PASSPORT), which ship disabled,
  are enabled for Korean *and* English text, with Korean context words added to the English ones;
- the generic e-mail, phone (``phonenumbers`` with region KR added), credit-card, IP and US bank-number
  recognizers run for both languages (US_BANK_NUMBER is its only account recognizer);
- it is scored at its default threshold (0) and at the threshold that maximises its own overall F2
  (searched on this set: generous to Presidio).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, package_versions

from jisik.guard.pii import PiiDetector

DATA = Path(__file__).resolve().parent / "data" / "pii"
STRUCTURED = ("KR_RRN", "KR_FRN", "KR_BRN", "KR_PASSPORT", "KR_DRIVER_LICENSE", "PHONE", "EMAIL", "CREDIT_CARD",
              "BANK_ACCOUNT", "IP_ADDRESS")
OPTIONAL = ("PERSON", "ADDRESS")
PRESIDIO_TO_JISIK = {"PHONE_NUMBER": "PHONE", "EMAIL_ADDRESS": "EMAIL", "CREDIT_CARD": "CREDIT_CARD",
                     "IP_ADDRESS": "IP_ADDRESS", "US_BANK_NUMBER": "BANK_ACCOUNT", "KR_RRN": "KR_RRN",
                     "KR_FRN": "KR_FRN", "KR_BRN": "KR_BRN", "KR_PASSPORT": "KR_PASSPORT",
                     "KR_DRIVER_LICENSE": "KR_DRIVER_LICENSE"}

Span = tuple[str, int, int]  # type, start, end


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def scores(self) -> dict[str, float | int]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        f2 = 5 * p * r / (4 * p + r) if p + r else 0.0
        return {"precision": round(p, 4), "recall": round(r, 4), "f2": round(f2, 4), "tp": self.tp, "fp": self.fp,
                "fn": self.fn, "support": self.tp + self.fn}


def match(gold: Sequence[Span], pred: Sequence[Span], mode: str) -> tuple[int, int, int]:
    """True positives, false positives and false negatives of one row. ``exact``: same type and offsets;
    ``overlap``: same type and overlapping spans, each gold entity matched at most once.

    >>> match([("PHONE", 0, 13)], [("PHONE", 0, 13)], "exact"), match([("PHONE", 0, 13)], [("PHONE", 1, 13)], "exact")
    ((1, 0, 0), (0, 1, 1))
    >>> match([("PHONE", 0, 13)], [("PHONE", 1, 13), ("EMAIL", 20, 30)], "overlap")
    (1, 1, 0)
    """
    used: set[int] = set()
    tp = 0
    for p in pred:
        for i, g in enumerate(gold):
            if i in used or g[0] != p[0]:
                continue
            if (g[1], g[2]) == (p[1], p[2]) if mode == "exact" else (p[1] < g[2] and g[1] < p[2]):
                used.add(i)
                tp += 1
                break
    return tp, len(pred) - tp, len(gold) - tp


def evaluate(rows: list[dict[str, Any]], preds: list[list[Span]], types: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("exact", "overlap"):
        per = {t: Counts() for t in types}
        total = Counts()
        for row, pred in zip(rows, preds, strict=True):
            gold = [(e["type"], e["start"], e["end"]) for e in row["entities"] if e["type"] in types]
            for t in types:
                tp, fp, fn = match([g for g in gold if g[0] == t], [p for p in pred if p[0] == t], mode)
                for c in (per[t], total):
                    c.tp, c.fp, c.fn = c.tp + tp, c.fp + fp, c.fn + fn
        out[mode] = {t: c.scores() for t, c in per.items() if c.tp + c.fn + c.fp}
        out[mode]["ALL"] = total.scores()
    return out


def load(lang: str, limit: int | None, name: str = "pii_{lang}") -> list[dict[str, Any]]:
    path = DATA / f"{name.format(lang=lang)}.jsonl"
    if not path.exists():
        sys.exit(f"{path} is missing: run python benchmarks/data/pii/make_pii_set.py")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r["lang"] == lang][:limit]


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    """The result of ``fn`` and its best CPU time (this process) over ``repeat`` runs. CPU time, not wall time:
    the box is shared with other jobs, and a run that waits for a core has not done more work."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.process_time()
        result = fn()
        best = min(best, time.process_time() - t0)
    return result, best


def prose(lang: str, limit: int = 2000) -> list[str]:
    """Ordinary text for the speed check: MS MARCO passages from ../shared/data (empty if it is absent)."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "msmarco_ko_en" / \
        ("msmarco_kor.json" if lang == "ko" else "msmarco_eng.json")
    if not path.exists():
        return []
    rows = json.loads(path.read_text(encoding="utf-8"))
    out: list[str] = []
    for row in rows:
        pos = row["positive"]
        out.extend(pos if isinstance(pos, list) else [pos])
    return out[:limit]


def chunks_of(texts: Sequence[str], size: int = 1000) -> list[str]:
    """The texts joined into chunks of about ``size`` characters, as a retriever would hand them over."""
    out, cur = [], ""
    for t in texts:
        cur = f"{cur}\n{t}" if cur else t
        if len(cur) >= size:
            out.append(cur)
            cur = ""
    return out + ([cur] if cur else [])


# ------------------------------------------------------------------------------------------ Presidio


def make_presidio() -> Any:
    try:
        import tldextract
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpArtifacts
        from presidio_analyzer.nlp_engine.no_op_nlp_engine import NoOpNlpEngine
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IpRecognizer,
            KrBrnRecognizer,
            KrDriverLicenseRecognizer,
            KrFrnRecognizer,
            KrPassportRecognizer,
            KrRrnRecognizer,
            PhoneRecognizer,
            UsBankRecognizer,
        )
        from spacy.tokens import Doc
    except ImportError:
        sys.exit("Presidio is not installed: pip install presidio-analyzer (or run with --no-presidio)")
    # its e-mail check asks tldextract, which would download the public-suffix list: use the bundled copy
    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    token_re = re.compile(r"\w+|[^\w\s]")

    class TokenizingNlpEngine(NoOpNlpEngine):  # type: ignore[misc]
        """No model: regex tokens and lower-cased lemmas, enough for Presidio's context words."""

        def process_text(self, text: str, language: str) -> Any:
            found = list(token_re.finditer(text))
            words = [m.group() for m in found]
            spaces = [bool(i + 1 < len(found) and found[i + 1].start() > m.end()) for i, m in enumerate(found)]
            return NlpArtifacts(entities=[], tokens=Doc(self._vocab, words=words, spaces=spaces),
                                tokens_indices=[m.start() for m in found], lemmas=[w.lower() for w in words],
                                nlp_engine=self, language=language, scores=[])

    langs = ["en", "ko"]
    engine = TokenizingNlpEngine(models=[{"lang_code": lang, "model_name": "none"} for lang in langs])
    engine.load()
    registry = RecognizerRegistry(supported_languages=langs)
    ko_context = {
        "KR_RRN": ["주민등록번호", "주민번호", "주민"], "KR_FRN": ["외국인등록", "외국인"], "KR_BRN": ["사업자"],
        "KR_PASSPORT": ["여권"], "KR_DRIVER_LICENSE": ["운전면허", "면허"],
        "PHONE_NUMBER": ["전화", "연락처", "휴대폰", "핸드폰", "번호"], "EMAIL_ADDRESS": ["메일", "이메일"],
        "CREDIT_CARD": ["카드", "결제"], "IP_ADDRESS": ["아이피", "접속"],
        "US_BANK_NUMBER": ["계좌", "은행", "입금", "송금"],
    }
    for lang in langs:
        korean = [cls(supported_language=lang) for cls in
                  (KrRrnRecognizer, KrFrnRecognizer, KrBrnRecognizer, KrPassportRecognizer, KrDriverLicenseRecognizer)]
        generic = [EmailRecognizer(supported_language=lang), CreditCardRecognizer(supported_language=lang),
                   IpRecognizer(supported_language=lang), UsBankRecognizer(supported_language=lang),
                   PhoneRecognizer(supported_language=lang,
                                   supported_regions=("KR", *PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS))]
        for rec in korean + generic:
            entity = rec.supported_entities[0]
            rec.context = list(rec.context or []) + ko_context.get(entity, [])
            registry.add_recognizer(rec)
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=langs)


def presidio_predict(analyzer: Any, texts: Sequence[str], lang: str) -> list[list[tuple[str, int, int, float]]]:
    out = []
    for text in texts:
        results = analyzer.analyze(text=text, language=lang, entities=list(PRESIDIO_TO_JISIK))
        out.append([(PRESIDIO_TO_JISIK[r.entity_type], r.start, r.end, r.score) for r in results])
    return out


def resolve(found: list[tuple[str, int, int, float]], threshold: float) -> list[Span]:
    """Presidio may return overlapping results of different types: keep the best-scoring, then longest."""
    kept: list[tuple[str, int, int, float]] = []
    for f in sorted((f for f in found if f[3] >= threshold), key=lambda f: (-f[3], f[1] - f[2])):
        if all(f[2] <= k[1] or k[2] <= f[1] for k in kept):
            kept.append(f)
    return [(t, s, e) for t, s, e, _ in kept]


# ------------------------------------------------------------------------------------------ report


def table(results: dict[str, Any], lang: str, mode: str) -> str:
    systems = [s for s in results["systems"] if lang in results["systems"][s]]
    lines = ["| type | n | " + " | ".join(f"{s} P / R / F2" for s in systems) + " |",
             "|---|---:|" + "---:|" * len(systems)]
    types = [t for t in (*STRUCTURED, *OPTIONAL, "ALL")
             if any(t in results["systems"][s][lang][mode] for s in systems)]
    for t in types:
        cells = []
        n = 0
        for s in systems:
            sc = results["systems"][s][lang][mode].get(t)
            if sc is None:
                cells.append("n/a")
                continue
            n = max(n, int(sc["support"]))
            cells.append(f"{sc['precision']:.3f} / {sc['recall']:.3f} / {sc['f2']:.3f}")
        lines.append(f"| {t} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--limit", type=int, help="first N rows per language (a quick check)")
    ap.add_argument("--no-presidio", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="timing runs (best is kept)")
    ap.add_argument("--show-errors", action="store_true", help="print jisik's misses on the hand-written rows")
    args = ap.parse_args()

    results: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d"),
                               "versions": package_versions(["jisik", "presidio-analyzer", "phonenumbers",
                                                             "kiwipiepy"]),
                               "headline": "exact", "systems": {}, "timing_ms_per_1000_chars": {}}
    detector = PiiDetector()
    optional = PiiDetector(names=True, addresses=True)
    analyzer = None if args.no_presidio else make_presidio()
    for lang in ("ko", "en"):
        rows = load(lang, args.limit)
        texts = [r["text"] for r in rows]
        n_chars = sum(map(len, texts))
        chunks = chunks_of(texts)
        timing: dict[str, float] = {}

        found, secs = timed(lambda t=texts: detector.detect_batch(t), args.repeat)
        timing["jisik snippets"] = secs * 1000 / (n_chars / 1000)
        _, secs = timed(lambda c=chunks: detector.detect_batch(c), args.repeat)
        timing["jisik 1,000-char chunks"] = secs * 1000 / (n_chars / 1000)
        preds = [[(e.type, e.start, e.end) for e in ents] for ents in found]
        results["systems"].setdefault("jisik", {})[lang] = evaluate(rows, preds, STRUCTURED)
        if lang == "ko":
            optional.detect_batch(texts[:2])  # load Kiwi outside the timing
            found_opt, secs = timed(lambda t=texts: optional.detect_batch(t), 1)
            timing["jisik names+addresses snippets"] = secs * 1000 / (n_chars / 1000)
            preds_opt = [[(e.type, e.start, e.end) for e in ents] for ents in found_opt]
            results["systems"]["jisik"][lang]["optional"] = evaluate(rows, preds_opt, OPTIONAL)
            for mode in ("exact", "overlap"):
                opt = results["systems"]["jisik"][lang]["optional"][mode]
                results["systems"]["jisik"][lang][mode].update({t: opt[t] for t in OPTIONAL if t in opt})

        if analyzer is not None:
            raw, secs = timed(lambda t=texts, lg=lang: presidio_predict(analyzer, t, lg), args.repeat)
            timing["presidio snippets"] = secs * 1000 / (n_chars / 1000)
            _, secs = timed(lambda c=chunks, lg=lang: presidio_predict(analyzer, c, lg), 1)
            timing["presidio 1,000-char chunks"] = secs * 1000 / (n_chars / 1000)
            default = evaluate(rows, [resolve(r, 0.0) for r in raw], STRUCTURED)
            best_t, best = 0.0, default
            for t10 in range(1, 10):
                ev = evaluate(rows, [resolve(r, t10 / 10) for r in raw], STRUCTURED)
                if ev["exact"]["ALL"]["f2"] > best["exact"]["ALL"]["f2"]:
                    best_t, best = t10 / 10, ev
            results["systems"].setdefault("presidio (threshold 0)", {})[lang] = default
            results["systems"].setdefault("presidio (best threshold)", {})[lang] = {**best, "threshold": best_t}
        passages = prose(lang)
        if passages:
            p_chars = sum(map(len, passages)) / 1000
            found_p, secs = timed(lambda t=passages: detector.detect_batch(t), args.repeat)
            timing["jisik MS MARCO passages"] = secs * 1000 / p_chars
            counts: dict[str, int] = {}
            for ents in found_p:
                for e in ents:
                    counts[e.type] = counts.get(e.type, 0) + 1
            results.setdefault("prose_detections", {})[lang] = {"passages": len(passages), "by_type": counts,
                                                                 "examples": sorted({e.text for ents in found_p
                                                                                     for e in ents})[:40]}
            if analyzer is not None:
                _, secs = timed(lambda t=passages, lg=lang: presidio_predict(analyzer, t, lg), 1)
                timing["presidio MS MARCO passages"] = secs * 1000 / p_chars
        results["timing_ms_per_1000_chars"][lang] = {k: round(v, 3) for k, v in timing.items()}
        results.setdefault("rows", {})[lang] = {"rows": len(rows), "chars": n_chars, "chunks": len(chunks)}

    # the hand-written rows: written before the detector ran on them, never tuned on
    for lang in ("ko", "en"):
        rows = load(lang, None, "pii_handwritten")
        texts = [r["text"] for r in rows]
        hand: dict[str, Any] = {}
        preds = [[(e.type, e.start, e.end) for e in ents] for ents in optional.detect_batch(texts)]
        hand["jisik"] = evaluate(rows, preds, STRUCTURED + (OPTIONAL if lang == "ko" else ()))
        if analyzer is not None:
            raw = presidio_predict(analyzer, texts, lang)
            hand["presidio (threshold 0)"] = evaluate(rows, [resolve(r, 0.0) for r in raw], STRUCTURED)
            t = results["systems"]["presidio (best threshold)"][lang]["threshold"]
            hand["presidio (best threshold)"] = evaluate(rows, [resolve(r, t) for r in raw], STRUCTURED)
        results.setdefault("handwritten", {})[lang] = {"rows": len(rows), "systems": hand}
        if args.show_errors:
            for row, pred in zip(rows, preds, strict=True):
                gold = {(e["type"], e["start"], e["end"]) for e in row["entities"]}
                for kind, items in (("missed", gold - set(pred)), ("spurious", set(pred) - gold)):
                    for typ, a, b in sorted(items):
                        print(f"handwritten {lang} {kind} {typ} {row['text'][a:b]!r} in {row['text']!r}")

    for lang in ("ko", "en"):
        for mode in ("exact", "overlap"):
            extra = ""
            if "presidio (best threshold)" in results["systems"]:
                best = results["systems"]["presidio (best threshold)"][lang]["threshold"]
                extra = f" (Presidio best threshold {best})"
            print(f"\n### {lang}, {mode} match{' (headline)' if mode == 'exact' else ''}{extra}\n")
            print(table(results, lang, mode))
    for lang in ("ko", "en"):
        hand = results["handwritten"][lang]
        print(f"\n### hand-written rows, {lang} ({hand['rows']} rows), exact match\n")
        print(table({"systems": {k: {lang: v} for k, v in hand["systems"].items()}}, lang, "exact"))
    print("\n### CPU time, ms per 1,000 characters (best of runs)\n")
    for lang, t in results["timing_ms_per_1000_chars"].items():
        print(lang, json.dumps(t, ensure_ascii=False))
    for lang, found in results.get("prose_detections", {}).items():
        print(f"\njisik on {found['passages']} MS MARCO {lang} passages (unlabelled):", json.dumps(found["by_type"]),
              "\n  e.g.", json.dumps(found["examples"][:15], ensure_ascii=False))
    print("\nmachine:", json.dumps(results["machine"]), "\nversions:", json.dumps(results["versions"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
