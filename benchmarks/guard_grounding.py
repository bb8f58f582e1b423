"""The groundedness filter (jisik.guard.grounding) on a labelled set built from real passages, Korean and English.

The labelled set is built at run time, in memory, from ../shared/data (nothing is copied into the repository),
deterministically from ``--seed``. Four sets of passages: SQuAD v1.1 dev and MS MARCO English (en), MS MARCO
Korean and Belebele Korean (ko). Each case gives the checker three sources: a passage P and two distractors
(other paragraphs of the same SQuAD article; elsewhere the passages of the pool that share most terms with P),
in random order, and an answer of one to three labelled sentences, each with a marker (after its full stop, as
the extractive answerer writes, or before it, as LLMs do). Sentences, from P unless said otherwise:

supported (negatives for "unsupported")
    ``verbatim``   a sentence of P, untouched
    ``paraphrase`` rewritten by rules: a leading phrase moved to the end (en), the first two phrases swapped
                   (ko), formal/plain endings swapped (ko), one or two synonyms from a hand-written list
unsupported (positives)
    ``number``     one digit of a number changed;  ``date``: the same for a year, month or day
    ``negation``   a negation added or removed (not, never, n't; 않다, 없다, 아니다)
    ``entity``     a name (capitalised words; Kiwi proper nouns) replaced by one from another passage
    ``addition``   a true sentence plus an invented clause or phrase (with a name, a number or neither)
    ``foreign``    a sentence of a passage that is not among the sources (same article or nearest), cited to P
    ``miscited``   a sentence of a distractor, cited to P (the checker should say which source supports it)

Reported: precision and recall of "unsupported" overall, per language and set, the detection rate per kind; the
extractive answerer's own answers on SQuAD and MS MARCO ko (``kb.ask`` over a small knowledge base under
``.bench/guard-grounding/``, each answer checked against the full texts of its sources) and how many pass; the
threshold sweep on all sets together (the default is calibrated there), the threshold each set alone would pick
and leave-one-set-out results; the same without an embedder; and the time ``check`` takes per answer.

    python benchmarks/guard_grounding.py --json .bench/guard-grounding.json   # ~1,160 + ~650 harder sentences,
                                   # 200 + 200 questions: ~3.5 min on 2 cores once the answers are cached
    python benchmarks/guard_grounding.py --quick          # ~490 + ~270 sentences, 60 + 60 questions: ~3 min

The harder cases (a shortened or more heavily reworded sentence; a name or number replaced by another of the same
passage; one qualifying word added) and answers across languages are reported apart, for information.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine

from jisik.config import EmbedderConfig
from jisik.embed import create_embedder
from jisik.guard import grounding
from jisik.guard.grounding import GroundingChecker
from jisik.records import Document
from jisik.text._kiwi import get_kiwi
from jisik.text.analyzers import get_analyzer
from jisik.text.sentences import split_sentences_batch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SQUAD = DATA / "squad_v1.1_dev" / "dev-v1.1.json"
MSMARCO_KO = DATA / "msmarco_ko_en" / "msmarco_kor.json"
MSMARCO_EN = DATA / "msmarco_ko_en" / "msmarco_eng.json"
BELEBELE = DATA / "belebele_ko" / "corpus.jsonl"
BENCH = ROOT / ".bench" / "guard-grounding"
SUPPORTED_KINDS = ("verbatim", "paraphrase")
UNSUPPORTED_KINDS = ("number", "date", "negation", "entity", "addition", "foreign", "miscited")
# harder cases, reported apart (informational): not what the targets are about
HARD_SUPPORTED = ("shortened", "reworded")
HARD_UNSUPPORTED = ("name-inside", "number-inside", "one-word")


# -- passages -------------------------------------------------------------------------------------------
@dataclass
class Passage:
    set: str
    language: str
    text: str
    group: str  # SQuAD article; elsewhere the passage itself


def _demojibake(text: str) -> str:
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _first(positive: str | list[str]) -> str:
    return _demojibake(positive if isinstance(positive, str) else positive[0])


def load_passages() -> dict[str, list[Passage]]:
    sets: dict[str, list[Passage]] = {}
    squad = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    sets["squad"] = [Passage("squad", "en", p["context"], a["title"]) for a in squad for p in a["paragraphs"]]
    english = json.loads(MSMARCO_EN.read_text(encoding="utf-8"))
    sets["msmarco-en"] = [Passage("msmarco-en", "en", _first(r["positive"]), f"m{r['id']}") for r in english]
    korean = json.loads(MSMARCO_KO.read_text(encoding="utf-8"))
    sets["msmarco-ko"] = [Passage("msmarco-ko", "ko", r["positive"][0], f"m{r['id']}") for r in korean]
    lines = BELEBELE.read_text(encoding="utf-8").splitlines()
    sets["belebele-ko"] = [Passage("belebele-ko", "ko", json.loads(x)["text"], json.loads(x)["_id"]) for x in lines]
    return sets


_SENTENCES: dict[str, list[str]] = {}


def split_all(texts: Sequence[str]) -> None:
    """Fill the sentence cache for ``texts`` with one splitter call."""
    todo = [t for t in dict.fromkeys(texts) if t not in _SENTENCES]
    for text, spans in zip(todo, split_sentences_batch(todo), strict=True):
        _SENTENCES[text] = _fit(text, spans)


def sentences_of(text: str) -> list[str]:
    if text not in _SENTENCES:
        split_all([text])
    return _SENTENCES[text]


def _fit(text: str, spans: Sequence[tuple[int, int]]) -> list[str]:
    """Sentences fit to be answers: 40-300 characters, at least six words, no URL, ending like a sentence."""
    out = []
    for s, e in spans:
        sent = text[s:e]
        if 40 <= len(sent) <= 300 and len(sent.split()) >= 6 and "http" not in sent and "www." not in sent \
                and sent.endswith((".", "다.", "요.")) and "\n" not in sent:
            out.append(sent)
    return out


# -- perturbations --------------------------------------------------------------------------------------
SYNONYMS_EN = {
    "began": "started", "started": "began", "begin": "start", "large": "big", "big": "large",
    "used": "utilized", "important": "significant", "major": "significant", "famous": "well-known",
    "built": "constructed", "created": "made", "received": "got", "located": "situated", "because": "since",
    "approximately": "about", "largest": "biggest", "main": "principal", "called": "named", "helped": "assisted",
    "shows": "demonstrates", "several": "a number of", "often": "frequently", "usually": "typically",
    "small": "little", "died": "passed away", "quickly": "rapidly", "including": "such as",
    "increased": "rose", "reduced": "lowered", "produced": "made", "bought": "purchased", "allowed": "permitted",
    "needed": "required", "children": "kids", "movie": "film", "film": "movie", "area": "region",
    "region": "area", "country": "nation", "company": "firm", "later": "afterwards",
    "however": "nevertheless", "very": "highly", "about": "around", "around": "about", "among": "amongst",
    "first": "earliest", "common": "widespread", "known": "recognized", "different": "various",
    "various": "different", "became": "turned into", "type": "kind", "types": "kinds", "include": "comprise",
    "includes": "comprises", "must": "has to", "usual": "typical", "start": "beginning", "near": "close to",
}
SYNONYMS_KO = {
    "그러나": "하지만", "하지만": "그러나", "매우": "아주", "아주": "매우", "사용": "이용", "이용": "사용",
    "대략": "약", "또한": "아울러", "위치한": "자리한", "위치하고": "자리하고", "주요": "핵심", "중요한": "주요한",
    "제작": "생산", "나라": "국가", "국가": "나라", "회사": "기업", "기업": "회사", "아이들": "어린이들",
    "빠르게": "신속하게", "신속하게": "빠르게", "구입": "구매", "구매": "구입", "일반적으로": "보통",
    "보통": "일반적으로",
    "자주": "흔히", "흔히": "자주", "함께": "같이", "대부분": "대다수", "가장": "제일", "많은": "다수의",
    "시작": "개시", "때문에": "까닭에", "통해": "통하여", "다른": "여타", "모든": "전체", "특히": "무엇보다",
    "다양한": "여러", "여러": "다양한", "방법": "방식", "방식": "방법", "정도": "가량",
}
_ENDINGS_KO = [("했다.", "했습니다."), ("었다.", "었습니다."), ("았다.", "았습니다."), ("였다.", "였습니다."),
               ("이다.", "입니다."), ("있다.", "있습니다."), ("없다.", "없습니다."), ("된다.", "됩니다."),
               ("한다.", "합니다."), ("진다.", "집니다."), ("난다.", "납니다.")]
_LEAD_EN = re.compile(r"^(In|On|At|During|After|Before|By|Since|From|Until|Between|Throughout) ([^,]{3,60}), (.+)\.$")


def _case(word: str, like: str) -> str:
    return word[0].upper() + word[1:] if like[:1].isupper() else word


def _synonyms(s: str, table: dict[str, str], rng: random.Random, korean: bool) -> tuple[str, int]:
    pattern = (r"(?<![가-힣])(" if korean else r"\b(") + "|".join(sorted(map(re.escape, table), key=len,
                                                                         reverse=True)) + (")" if korean else r")\b")
    spots = [m for m in re.finditer(pattern, s, flags=0 if korean else re.IGNORECASE)
             if korean or m.start() == 0 or m.group()[0].islower()]  # a capitalised word inside is a name
    rng.shuffle(spots)
    chosen = sorted(spots[: rng.choice((1, 2))], key=lambda m: m.start(), reverse=True)
    for m in chosen:
        word = m.group()
        s = s[:m.start()] + _case(table[word.lower()] if not korean else table[word], word) + s[m.end():]
    return s, len(chosen)


def paraphrase(s: str, language: str, rng: random.Random) -> str | None:
    changes = 0
    if language == "en":
        m = _LEAD_EN.match(s)
        if m and not re.match(r"[A-Z][a-z]+ [A-Z]", m.group(3)):
            rest = m.group(3)
            first = rest.split(" ", 1)[0]
            rest = rest if (first.isupper() or first in ("I",) or re.match(r"[A-Z][a-z]+[A-Z]", first)
                            or first.lower() not in grounding._OPENERS) else rest[0].lower() + rest[1:]
            s = f"{rest[0].upper()}{rest[1:]} {m.group(1).lower()} {m.group(2)}."
            changes += 1
        s, n = _synonyms(s, SYNONYMS_EN, rng, korean=False)
    else:
        words = s.split(" ")
        if len(words) > 3 and re.search(r"[은는이가]$", words[0]) \
                and re.search(r"(에|에서|에는|부터|까지|에서는)$", words[1]):
            words[0], words[1] = words[1], words[0]
            s = " ".join(words)
            changes += 1
        for plain, formal in _ENDINGS_KO:
            if s.endswith(plain):
                s, changes = s[: -len(plain)] + formal, changes + 1
                break
            if s.endswith(formal):
                s, changes = s[: -len(formal)] + plain, changes + 1
                break
        s, n = _synonyms(s, SYNONYMS_KO, rng, korean=True)
    return s if changes + n >= (1 if language == "en" else 2) else None


_MONTHS = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"


def change_digit(s: str, rng: random.Random, want: str) -> str | None:
    """One digit of a number (want="number") or of a date part (want="date") changed."""
    spots = []
    for m in re.finditer(r"\d+", s):
        after, before = s[m.end():m.end() + 2], s[max(0, m.start() - 12):m.start()]
        value = int(m.group())
        is_date = (1500 <= value <= 2030 and len(m.group()) == 4) or after.startswith(("년", "월", "일")) \
            or bool(re.search(_MONTHS + r"\s*$", before)) or bool(re.match(r"\s*" + _MONTHS, after))
        if (want == "date") == is_date:
            spots.append(m)
    if not spots:
        return None
    m = rng.choice(spots)
    digits = list(m.group())
    i = rng.randrange(len(digits)) if want == "number" else len(digits) - 1
    choices = [d for d in "0123456789" if d != digits[i] and not (i == 0 and d == "0" and len(digits) > 1)]
    digits[i] = rng.choice(choices)
    return s[:m.start()] + "".join(digits) + s[m.end():]


_AUX_EN = re.compile(r"(?<=\w )(is|are|was|were|has|have|had|can|could|will|would|should|may|must|does|did)\b")
_KO_ADD = [("하지 않았다.", "했다."), ("하지 않았습니다.", "했습니다."), ("하지 않는다.", "한다."),
           ("하지 않습니다.", "합니다."),
           ("되지 않았다.", "되었다."), ("되지 않는다.", "된다."), ("되지 않습니다.", "됩니다."), ("없다.", "있다."),
           ("없습니다.", "있습니다."), ("없었다.", "있었다."), ("없었습니다.", "있었습니다.")]


def _batchim(ch: str) -> bool:
    return "가" <= ch <= "힣" and (ord(ch) - 0xAC00) % 28 != 0


def negate(s: str, language: str, rng: random.Random) -> str | None:
    if language == "en":
        removals = [(r"\s+not\b", ""), (r"\bcan't\b", "can"), (r"\bwon't\b", "will"), (r"n't\b", ""),
                    (r"\bnever\s+", "")]
        present = [(p, r) for p, r in removals if re.search(p, s)]
        if present and rng.random() < 0.6:
            p, r = present[0]
            return re.sub(p, r, s, count=1)
        m = _AUX_EN.search(s)
        if m:
            return s[:m.end()] + " not" + s[m.end():]
        m = re.search(r"(?<=\w )([a-z]+ed)\b", s)
        return s[:m.start()] + "never " + s[m.start():] if m else None
    for negated, plain in _KO_ADD:  # removal first when the sentence ends negated
        if s.endswith(negated) and rng.random() < 0.7:
            return s[: -len(negated)] + plain
    m = re.search(r"([가-힣])[이가] 아(니다|닙니다)\.$", s)
    if m and rng.random() < 0.7:
        return s[:m.start()] + m.group(1) + ("이다." if m.group(2) == "니다" else "입니다.")
    for negated, plain in _KO_ADD:
        if s.endswith(plain):
            return s[: -len(plain)] + negated
    m = re.search(r"([가-힣])(이다|입니다)\.$", s)
    if m:
        particle = "이" if _batchim(m.group(1)) else "가"
        return s[:m.start()] + m.group(1) + f"{particle} " + ("아니다." if m.group(2) == "이다" else "아닙니다.")
    if "있는 " in s:
        return s.replace("있는 ", "없는 ", 1)
    return None


_CAPS = re.compile(r"(?<=[a-z,] )[A-Z][a-zA-Z]+(?: [A-Z][a-zA-Z]+)*")


def names_en(text: str) -> list[str]:
    return [m.group() for m in _CAPS.finditer(text)
            if not any(w.lower() in grounding._OPENERS for w in m.group().split())
            and not re.fullmatch(_MONTHS, m.group())]


def names_ko(text: str) -> list[tuple[int, int, str]]:
    return names_ko_batch([text])[0]


def names_ko_batch(texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
    return [[(t.start, t.start + t.len, t.form) for t in tokens
             if t.tag == "NNP" and len(t.form) >= 2 and re.fullmatch(r"[가-힣 ]+", t.form)]
            for tokens in get_kiwi().tokenize(list(texts))]


def swap_entity(s: str, passage: str, language: str, pool: Sequence[str], rng: random.Random) -> str | None:
    folded = passage.lower()
    if language == "en":
        spots = names_en(s)
        if not spots:
            return None
        old = rng.choice(spots)
        same = [n for n in pool if len(n.split()) == len(old.split()) and n.lower() not in folded]
        if not same:
            return None
        return s.replace(old, rng.choice(same), 1)
    tokens = names_ko(s)
    if not tokens:
        return None
    start, end, old = rng.choice(tokens)
    same = [n for n in pool if n not in passage and n.replace(" ", "") not in passage.replace(" ", "")
            and _batchim(n[-1]) == _batchim(old[-1])]
    if not same:
        return None
    return s[:start] + rng.choice(same) + s[end:]


ADDITIONS_EN = [
    ", which was later criticised by {name}", ", according to a {year} report", " and was widely praised by critics",
    ", although this was disputed by local historians", ", mainly because of rising costs",
    ", which led to protests in {name}", " after a long public debate", ", with support from {name}",
    ", and the decision was reversed two years later", ", making it the most visited site in the region",
    ", a figure that doubled within {n} years", ", largely thanks to funding from private donors",
]
PREFIXES_EN = ["According to {name}, ", "Despite strong opposition, ", "Since {year}, ", "Unexpectedly for experts, "]
ADDITIONS_KO = ["이후 {name}에서도 큰 인기를 얻었", "지역 주민들의 강한 반대에 부딪혔",
                "{year}년에 정부의 공식 승인을 받았",
                "당시 언론으로부터 많은 비판을 받았", "이 결정은 {n}년 뒤에 번복되었", "주로 민간 기부금으로 운영되었",
                "{name}의 지원을 받아 규모가 두 배로 늘었", "전문가들 사이에서 오랫동안 논란이 되었"]
PREFIXES_KO = ["{name}의 보고서에 따르면, ", "강한 반대에도 불구하고 ", "{year}년 이후 ", "전문가들의 예상과 달리 "]
_JOIN_KO = [("었다.", "었으며"), ("았다.", "았으며"), ("였다.", "였으며"), ("했다.", "했으며"), ("이다.", "이며"),
            ("있다.", "있으며"), ("한다.", "하며"), ("된다.", "되며"), ("었습니다.", "었으며"), ("았습니다.", "았으며"),
            ("였습니다.", "였으며"), ("했습니다.", "했으며"), ("입니다.", "이며"), ("있습니다.", "있으며"),
            ("합니다.", "하며"), ("됩니다.", "되며")]


def add_clause(s: str, language: str, pool: Sequence[str], passage: str, rng: random.Random) -> str | None:
    names = [n for n in pool if n.lower() not in passage.lower()]
    fill = {"name": rng.choice(names) if names else "the city council", "year": str(rng.randrange(1900, 2020)),
            "n": str(rng.randrange(3, 9))}
    if language == "en":
        if rng.random() < 0.3:
            prefix = rng.choice(PREFIXES_EN).format(**fill)
            first = s.split(" ", 1)[0].replace("’", "'")
            body = s if (first.lower() not in grounding._OPENERS or first == "I") else s[0].lower() + s[1:]
            return prefix + body
        return s[:-1] + rng.choice(ADDITIONS_EN).format(**fill) + "."
    if rng.random() < 0.3:
        return rng.choice(PREFIXES_KO).format(**fill) + s
    for end, join in _JOIN_KO:
        if s.endswith(end):
            formal = end.endswith("습니다.")
            clause = rng.choice(ADDITIONS_KO).format(**fill)
            return s[: -len(end)] + join + ", " + clause + ("습니다." if formal else "다.")
    return None


def perturb(kind: str, s: str, passage: str, language: str, names: Sequence[str], rng: random.Random) -> str | None:
    if kind in ("number", "date"):
        return change_digit(s, rng, kind)
    if kind == "negation":
        return negate(s, language, rng)
    if kind == "entity":
        return swap_entity(s, passage, language, names, rng)
    return add_clause(s, language, names, passage, rng)


# -- the labelled set -----------------------------------------------------------------------------------
@dataclass
class Item:
    text: str
    kind: str
    unsupported: bool
    cite: int  # 1-based


@dataclass
class Case:
    set: str
    language: str
    sources: list[str]
    items: list[Item]
    answer: str = ""
    spans: tuple[tuple[int, int], ...] = ()


def _terms(texts: Sequence[str]) -> list[set[str]]:
    return [set(t) for t in get_analyzer("ko-en").analyze_batch(texts)]


def build_cases(sets: dict[str, list[Passage]], per_set: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    hard_rng = random.Random(seed + 7)  # its own stream: the main set does not change with the hard one
    cases: list[Case] = []
    for name, passages in sets.items():
        language = passages[0].language
        by_group: dict[str, list[Passage]] = defaultdict(list)
        for p in passages:
            by_group[p.group].append(p)
        order = list(range(len(passages)))
        rng.shuffle(order)
        pool = [passages[i] for i in order[: min(len(order), 500)]]
        pool_terms = _terms([p.text for p in pool])
        split_all([p.text for p in pool] + ([p.text for p in passages] if name == "squad" else []))
        if language == "en":
            names = sorted({n for p in pool[:400] for n in names_en(p.text)})
        else:
            names = sorted({n for found in names_ko_batch([p.text for p in pool[:300]]) for _, _, n in found})
        made = 0
        for index, passage in enumerate(pool):
            if made >= per_set:
                break
            own = sentences_of(passage.text)
            if len(own) < 2:
                continue
            if name == "squad":  # distractors and foreign sentences from the same article
                others = [p for p in by_group[passage.group] if p.text != passage.text]
                rng.shuffle(others)
            else:  # the pool passages that share most terms with this one
                mine = pool_terms[index]
                ranked = sorted(range(len(pool)), key=lambda j: -len(mine & pool_terms[j]) / (len(pool_terms[j]) + 5))
                others = [pool[j] for j in ranked if pool[j].text != passage.text][:10]
            if len(others) < 3:
                continue
            distractors, outside = others[:2], others[2:]
            foreign = [s for p in outside for s in sentences_of(p.text)]
            sources = [passage.text, distractors[0].text, distractors[1].text]
            rng.shuffle(sources)
            cite = sources.index(passage.text) + 1
            wrong = [(s, sources.index(d.text) + 1) for d in distractors for s in sentences_of(d.text)]
            items = [Item(rng.choice(own), "verbatim", False, cite)]
            para = [p for p in (paraphrase(s, language, rng) for s in rng.sample(own, len(own))) if p][:1]
            items += [Item(p, "paraphrase", False, cite) for p in para]
            kinds = list(UNSUPPORTED_KINDS)
            rng.shuffle(kinds)
            for kind in kinds[:4]:
                if kind == "foreign":
                    if foreign:
                        items.append(Item(rng.choice(foreign), kind, True, cite))
                    continue
                if kind == "miscited":
                    if wrong:
                        text, _ = rng.choice(wrong)
                        items.append(Item(text, kind, True, cite))
                    continue
                for s in rng.sample(own, len(own)):
                    changed = perturb(kind, s, passage.text, language, names, rng)
                    if changed and changed != s:
                        items.append(Item(changed, kind, True, cite))
                        break
            hard = make_hard(own, passage.text, language, hard_rng)
            for item in hard:
                item.cite = cite
            rng.shuffle(items)
            items += hard
            while items:  # answers of one to three sentences
                take = items[: rng.choice((1, 2, 3))]
                items = items[len(take):]
                cases.append(_compose(Case(name, language, sources, take), rng))
            made += 1
    return cases


def build_cross_cases(per_direction: int, seed: int) -> list[Case]:
    """Answers in one language over sources in the other (MS MARCO's aligned Korean and English passages): a
    sentence of the passage's translation (supported), the same with a digit changed, and a sentence of a
    neighbouring passage (both unsupported)."""
    rng = random.Random(seed + 1)
    korean = {r["id"]: r["positive"][0] for r in json.loads(MSMARCO_KO.read_text(encoding="utf-8"))}
    english = {r["id"]: _first(r["positive"]) for r in json.loads(MSMARCO_EN.read_text(encoding="utf-8"))}
    ids = sorted(set(korean) & set(english))
    rng.shuffle(ids)
    pool = ids[:400]
    cases: list[Case] = []
    for answer_lang, answers, sources_by in (("ko", korean, english), ("en", english, korean)):
        split_all([answers[i] for i in pool])
        terms = _terms([sources_by[i] for i in pool])
        made = 0
        for n, i in enumerate(pool):
            if made >= per_direction:
                break
            own = sentences_of(answers[i])
            if not own:
                continue
            ranked = sorted((j for j in range(len(pool)) if j != n), key=lambda j: -len(terms[n] & terms[j]))
            distractors, outside = ranked[:2], ranked[2:6]
            sources = [sources_by[i], *(sources_by[pool[j]] for j in distractors)]
            rng.shuffle(sources)
            cite = sources.index(sources_by[i]) + 1
            items = [Item(rng.choice(own), "translation", False, cite)]
            changed = next((c for c in (change_digit(x, rng, "number") for x in own) if c), None)
            if changed:
                items.append(Item(changed, "number", True, cite))
            foreign = [x for j in outside for x in sentences_of(answers[pool[j]])]
            if foreign:
                items.append(Item(rng.choice(foreign), "foreign", True, cite))
            for item in items:
                cases.append(_compose(Case(f"cross-{answer_lang}", answer_lang, sources, [item]), rng))
            made += 1
    return cases


_ADVERBS_EN = ("officially", "mostly", "recently", "exclusively", "annually", "originally", "rarely", "largely")
_ADVERBS_KO = ("공식적으로", "주로", "최근에", "오직", "처음으로", "매년", "대부분", "드물게")


def make_hard(own: Sequence[str], passage: str, language: str, rng: random.Random) -> list[Item]:
    """One of each harder kind where the passage allows: a shortened sentence and a heavier rewording (both
    supported); a name or a number replaced by another of the same passage, one qualifying word added."""
    items: list[Item] = []
    for s in rng.sample(list(own), len(own)):  # shortened: a trailing clause or a bracket dropped
        short = re.sub(r"\s*\([^()]{2,80}\)", "", s)
        if short == s and ", " in s:
            head = s[: s.rfind(", ")]
            short = head + ("." if language == "en" or head.endswith("다") else s[-1])
        if short != s and len(short.split()) >= 6 and not re.search(r"(으며|이며|하며|되며|고|지만)\.$", short):
            items.append(Item(short, "shortened", False, 0))
            break
    table = SYNONYMS_EN if language == "en" else SYNONYMS_KO
    for s in rng.sample(list(own), len(own)):
        pattern = (r"\b(" if language == "en" else r"(?<![가-힣])(") + "|".join(map(re.escape, table)) + (
            r")\b" if language == "en" else ")")
        spots = [m for m in re.finditer(pattern, s) if language == "ko" or m.start() == 0 or m.group()[0].islower()]
        if len(spots) >= 3:
            out = s
            for m in reversed(spots):
                out = out[:m.start()] + _case(table[m.group().lower() if language == "en" else m.group()],
                                              m.group()) + out[m.end():]
            items.append(Item(out, "reworded", False, 0))
            break
    # a name of the passage put in another's place
    if language == "en":
        names = list(dict.fromkeys(names_en(passage)))
        for s in rng.sample(list(own), len(own)):
            mine = names_en(s)
            others = [n for n in names if n not in s and len(n.split()) == 1]
            if mine and others:
                items.append(Item(s.replace(rng.choice(mine), rng.choice(others), 1), "name-inside", True, 0))
                break
    else:
        found = names_ko_batch([passage, *own])
        names = list(dict.fromkeys(n for _, _, n in found[0]))
        for s, spots in zip(own, found[1:], strict=True):
            others = [n for n in names if n not in s]
            if spots and others:
                start, end, old = rng.choice(spots)
                same = [n for n in others if _batchim(n[-1]) == _batchim(old[-1])] or others
                items.append(Item(s[:start] + rng.choice(same) + s[end:], "name-inside", True, 0))
                break
    numbers = list(dict.fromkeys(re.findall(r"(?<![\d.,])\d+(?![\d.,]\d)", passage)))
    for s in rng.sample(list(own), len(own)):
        mine = [m for m in re.finditer(r"(?<![\d.,])\d+(?![\d.,]\d)", s)]
        others = [n for n in numbers if n not in re.findall(r"\d+", s)]
        if mine and others:
            m = rng.choice(mine)
            items.append(Item(s[:m.start()] + rng.choice(others) + s[m.end():], "number-inside", True, 0))
            break
    for s in rng.sample(list(own), len(own)):  # one qualifying word
        if language == "en":
            m = _AUX_EN.search(s)
            if m and not s[m.end():].startswith(" not"):
                items.append(Item(s[:m.end()] + " " + rng.choice(_ADVERBS_EN) + s[m.end():], "one-word", True, 0))
                break
        else:
            cut = s.rfind(" ")
            if cut > 0:
                items.append(Item(s[:cut] + " " + rng.choice(_ADVERBS_KO) + s[cut:], "one-word", True, 0))
                break
    return items


def _compose(case: Case, rng: random.Random) -> Case:
    """The answer text, each sentence followed by its marker (after the full stop or before it)."""
    parts, spans, pos = [], [], 0
    for item in case.items:
        text = item.text
        piece = f"{text} [{item.cite}]" if rng.random() < 0.5 else f"{text[:-1]} [{item.cite}]{text[-1]}"
        spans.append((pos, pos + len(piece)))
        parts.append(piece)
        pos += len(piece) + 1
    case.answer = " ".join(parts)
    case.spans = tuple(spans)
    return case


# -- evaluation -----------------------------------------------------------------------------------------
@dataclass
class Scored:
    set: str
    language: str
    kind: str
    unsupported: bool
    score: float
    flagged: bool  # at the checker's threshold
    problems: list[str]
    pieces: int  # how many checker sentences overlap the labelled one
    text: str = ""


def score_cases(checker: GroundingChecker, cases: Sequence[Case]) -> tuple[list[Scored], list[float]]:
    rows, times = [], []
    for case in cases:
        t0 = time.perf_counter()
        supports = checker.check(case.answer, case.sources, language=case.language)
        times.append(time.perf_counter() - t0)
        for item, (s, e) in zip(case.items, case.spans, strict=True):
            mine = [x for x in supports if x.start < e and x.end > s]
            score = min((x.score for x in mine), default=1.0)
            flagged = any(not x.supported for x in mine)
            rows.append(Scored(case.set, case.language, item.kind, item.unsupported, score, flagged,
                               [p for x in mine for p in x.problems], len(mine), item.text))
    return rows, times


def prf(rows: Sequence[Scored], threshold: float | None = None) -> dict[str, float]:
    def flag(r: Scored) -> bool:
        return r.flagged if threshold is None else r.score < threshold
    tp = sum(1 for r in rows if r.unsupported and flag(r))
    fp = sum(1 for r in rows if not r.unsupported and flag(r))
    fn = sum(1 for r in rows if r.unsupported and not flag(r))
    p = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * p * rec / (p + rec) if p + rec else 0.0
    return {"n": len(rows), "unsupported": tp + fn, "precision": round(p, 4), "recall": round(rec, 4),
            "f1": round(f1, 4)}


# -- the extractive answerer's own answers ---------------------------------------------------------------
_OFF = {"guard": {"grounding": "off", "pii": False, "injection": False, "min_relevance": None}}


def extractive_answers(name: str, documents: list[Document], questions: list[str]) -> list[dict[str, Any]]:
    """``kb.ask`` for each question (cached under .bench/guard-grounding/), with the full texts of its sources."""
    from jisik.kb import KnowledgeBase

    cache = BENCH / f"answers-{name}-{len(documents)}-{len(questions)}.json"
    if cache.exists():
        return list(json.loads(cache.read_text(encoding="utf-8")))
    folder = BENCH / f"kb-{name}-{len(documents)}"
    kb = KnowledgeBase.open(folder, create=True, overrides=_OFF)
    if kb.status()["documents"] != len(documents):
        print(f"  indexing {len(documents)} {name} documents in {folder} ...", file=sys.stderr)
        kb.add_documents(documents)
    out = []
    for q in questions:
        answer = kb.ask(q, log=False)
        texts = []
        for source in answer.sources:
            hit = kb.passage(source.chunk_id)
            texts.append(hit.text if hit is not None else source.quote)
        out.append({"question": q, "text": answer.text, "found": answer.found, "sources": texts,
                    "language": answer.language})
    kb.close()
    BENCH.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    return out


def extractive_sets(n_questions: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    squad = json.loads(SQUAD.read_text(encoding="utf-8"))["data"][:7]
    docs = [Document(doc_id=f"{a['title']}#{i}", source="squad-dev", text=p["context"], title=a["title"])
            for a in squad for i, p in enumerate(a["paragraphs"])]
    qs = [qa["question"] for a in squad for p in a["paragraphs"] for qa in p["qas"]]
    out = {"squad": extractive_answers("squad", docs, rng.sample(qs, n_questions))}
    korean = json.loads(MSMARCO_KO.read_text(encoding="utf-8"))
    rng.shuffle(korean)
    asked, extra = korean[:n_questions], korean[n_questions:n_questions + 3 * n_questions]
    docs = [Document(doc_id=f"m{r['id']}#{j}", source="msmarco-ko", text=t)
            for r in asked + extra for j, t in enumerate(r["positive"])]
    out["msmarco-ko"] = extractive_answers("msmarco-ko", docs, [r["query"] for r in asked])
    return out


def check_extractive(checker: GroundingChecker, answers: Sequence[dict[str, Any]]
                     ) -> tuple[list[float], list[bool], list[float], list[dict[str, Any]]]:
    """Per answer: its lowest sentence score, whether every sentence passed, the time; failures kept."""
    lowest, passed, times, failures = [], [], [], []
    for a in answers:
        t0 = time.perf_counter()
        supports = checker.check(a["text"], a["sources"], language=a["language"])
        times.append(time.perf_counter() - t0)
        lowest.append(min((s.score for s in supports), default=1.0))
        ok = all(s.supported for s in supports)
        passed.append(ok)
        if not ok:
            failures.append({"answer": a["text"][:300], "problems": [p for s in supports for p in s.problems]})
    return lowest, passed, times, failures


# -- calibration ----------------------------------------------------------------------------------------
THRESHOLDS = [round(0.30 + 0.01 * i, 2) for i in range(61)]


def sweep(rows: Sequence[Scored], lowest: dict[str, list[float]]) -> list[dict[str, Any]]:
    out = []
    for t in THRESHOLDS:
        entry: dict[str, Any] = {"threshold": t, **prf(rows, t)}
        for name, scores in lowest.items():
            entry[f"pass_{name}"] = round(sum(1 for x in scores if x >= t) / max(1, len(scores)), 4)
        out.append(entry)
    return out


def best_threshold(rows: Sequence[Scored], lowest: dict[str, list[float]], floor: float = 0.99,
                   tolerance: float = 0.005) -> float:
    """The middle of the thresholds whose F1 of "unsupported" is within ``tolerance`` of the best, among those
    where every extractive set passes ``floor``: the plateau's middle leaves the most room on both sides (lighter
    rule paraphrases here than a model writes; unsupported sentences whose penalties only just bite)."""
    entries = sweep(rows, lowest)
    ok = [e for e in entries if all(v >= floor for k, v in e.items() if k.startswith("pass_"))] or entries
    top = max(e["f1"] for e in ok)
    return float(statistics.median_low([e["threshold"] for e in ok if e["f1"] >= top - tolerance]))


def timing(times: Sequence[float]) -> dict[str, float]:
    ms = sorted(1000 * t for t in times)
    return {"n": len(ms), "mean_ms": round(statistics.fmean(ms), 1), "median_ms": round(statistics.median(ms), 1),
            "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1), "max_ms": round(ms[-1], 1)}


def table(title: str, rows: dict[str, dict[str, Any]], columns: Sequence[str]) -> str:
    lines = [f"\n{title}", "| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(str(values.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="25 passages per set and 60 questions per answer set")
    parser.add_argument("--seed", type=int, default=2024, help="13 was used while the checker was developed")
    parser.add_argument("--per-set", type=int, default=None, help="passages per set (default 60; quick 25)")
    parser.add_argument("--questions", type=int, default=None, help="extractive questions per set (200; quick 60)")
    parser.add_argument("--no-lexical", action="store_true", help="skip the run without an embedder")
    parser.add_argument("--json", type=Path, default=None, help="write the full report here")
    args = parser.parse_args()
    if not SQUAD.exists():
        sys.exit(f"skipped: {DATA} is missing (see ../shared/data/README.md)")
    per_set = args.per_set or (25 if args.quick else 60)
    n_questions = args.questions or (60 if args.quick else 200)
    report: dict[str, Any] = {"machine": machine(), "seed": args.seed, "per_set": per_set,
                              "questions": n_questions, "threshold": grounding.THRESHOLD}
    print(json.dumps(report["machine"]))

    t0 = time.perf_counter()
    cases = build_cases(load_passages(), per_set, args.seed)
    n_items = sum(len(c.items) for c in cases)
    print(f"labelled set: {len(cases)} answers, {n_items} sentences ({time.perf_counter() - t0:.0f} s to build)")
    report["labelled"] = {"answers": len(cases), "sentences": n_items}

    embedder = create_embedder(EmbedderConfig())
    analyzer = get_analyzer("ko-en")
    checker = GroundingChecker(embedder=embedder, analyzer=analyzer)
    checker.check("warm up [1].", ["warm up the model."])
    rows, times = score_cases(checker, cases)
    report["time_labelled"] = timing(times)

    answers = extractive_sets(n_questions, args.seed)
    lowest, extractive = {}, {}
    for name, items in answers.items():
        low, passed, ext_times, failures = check_extractive(checker, items)
        found = [p for p, a in zip(passed, items, strict=True) if a["found"]]
        lowest[name] = low
        extractive[name] = {"answers": len(items), "found": len(found),
                            "pass_rate": round(sum(passed) / len(passed), 4),
                            "pass_rate_found": round(sum(found) / max(1, len(found)), 4),
                            "time": timing(ext_times), "failures": failures[:10]}
    report["extractive"] = extractive
    # the slow path: the same answers with their sentences reworded where the rules apply, a fresh checker (cold
    # caches: every source is split, analysed and embedded anew)
    cold = GroundingChecker(embedder=embedder, analyzer=analyzer)
    slow_times, slow_rng = [], random.Random(args.seed)
    for items in answers.values():
        for a in items:
            if not a["found"]:
                continue
            pairs = re.findall(r"(.+?)\s*(\[\d+(?:, \d+)*\])\s*", a["text"])
            reworded = " ".join(f"{paraphrase(x, a['language'], slow_rng) or x} {m}" for x, m in pairs)
            if reworded == " ".join(f"{x} {m}" for x, m in pairs):
                continue  # nothing reworded: quotes, settled without the slow path
            t0 = time.perf_counter()
            cold.check(reworded, a["sources"], language=a["language"])
            slow_times.append(time.perf_counter() - t0)
    report["time_reworded_extractive"] = timing(slow_times)

    hard_rows = [r for r in rows if r.kind in (*HARD_SUPPORTED, *HARD_UNSUPPORTED)]
    rows = [r for r in rows if r.kind not in (*HARD_SUPPORTED, *HARD_UNSUPPORTED)]
    report["overall"] = prf(rows)
    report["by_language"] = {lang: prf([r for r in rows if r.language == lang]) for lang in ("en", "ko")}
    report["by_set"] = {name: prf([r for r in rows if r.set == name]) for name in dict.fromkeys(r.set for r in rows)}
    kinds: dict[str, dict[str, Any]] = {}
    for kind in (*SUPPORTED_KINDS, *UNSUPPORTED_KINDS):
        for lang in ("en", "ko"):
            mine = [r for r in rows if r.kind == kind and r.language == lang]
            if mine:
                kinds[f"{kind} ({lang})"] = {"n": len(mine),
                                             "flagged": round(sum(r.flagged for r in mine) / len(mine), 3),
                                             "median_score": round(statistics.median(r.score for r in mine), 3)}
    report["by_kind"] = kinds
    report["hard"] = {"overall": prf(hard_rows), "by_kind": {}}
    for kind in (*HARD_SUPPORTED, *HARD_UNSUPPORTED):
        for lang in ("en", "ko"):
            mine = [r for r in hard_rows if r.kind == kind and r.language == lang]
            if mine:
                report["hard"]["by_kind"][f"{kind} ({lang})"] = {
                    "n": len(mine), "flagged": round(sum(r.flagged for r in mine) / len(mine), 3),
                    "median_score": round(statistics.median(r.score for r in mine), 3)}
    report["split_mismatch"] = sum(1 for r in rows if r.pieces != 1)

    report["sweep"] = sweep(rows, lowest)
    report["calibrated"] = best_threshold(rows, lowest)
    alone = {name: best_threshold([r for r in rows if r.set == name], lowest) for name in report["by_set"]}
    held_out = {}
    for name in report["by_set"]:
        t = best_threshold([r for r in rows if r.set != name], lowest)
        held_out[name] = {"threshold": t, **prf([r for r in rows if r.set == name], t)}
    report["threshold_alone"] = alone
    report["leave_one_set_out"] = held_out

    cross_cases = build_cross_cases(per_set // 2, args.seed)
    cross_rows, _ = score_cases(checker, cross_cases)
    report["cross_language"] = {"overall": prf(cross_rows), "by_kind": {}}
    for d in ("cross-ko", "cross-en"):
        for kind in ("translation", "number", "foreign"):
            m = [r for r in cross_rows if r.set == d and r.kind == kind]
            if m:
                report["cross_language"]["by_kind"][f"{kind} ({d})"] = {
                    "n": len(m), "flagged": round(sum(r.flagged for r in m) / len(m), 3),
                    "median_score": round(statistics.median(r.score for r in m), 3)}

    if not args.no_lexical:
        lexical = GroundingChecker(embedder=None, analyzer=analyzer)
        lex_rows, lex_times = score_cases(lexical, cases)
        lex_rows = [r for r in lex_rows if r.kind not in (*HARD_SUPPORTED, *HARD_UNSUPPORTED)]
        lex_lowest = {name: check_extractive(lexical, items)[0] for name, items in answers.items()}
        report["lexical"] = {"overall": prf(lex_rows), "by_language": {
            lang: prf([r for r in lex_rows if r.language == lang]) for lang in ("en", "ko")},
            "calibrated": best_threshold(lex_rows, lex_lowest), "time": timing(lex_times),
            "extractive_pass": {k: round(sum(1 for x in v if x >= grounding.THRESHOLD) / len(v), 4)
                                for k, v in lex_lowest.items()}}

    cols = ["n", "unsupported", "precision", "recall", "f1"]
    print(table(f"unsupported = positive, threshold {grounding.THRESHOLD}", {"all": report["overall"],
                **{f"lang {k}": v for k, v in report["by_language"].items()}, **report["by_set"]}, cols))
    print(table("per kind (flagged = share marked unsupported)", kinds, ["n", "flagged", "median_score"]))
    print(table("extractive answers", {k: {**v, **{f"{m}": v["time"][m] for m in ("median_ms", "p90_ms")}}
                                        for k, v in extractive.items()},
                ["answers", "found", "pass_rate", "pass_rate_found", "median_ms", "p90_ms"]))
    print(table("threshold", {"calibrated on all sets": {"threshold": report["calibrated"]},
                              **{f"{k} alone": {"threshold": v} for k, v in alone.items()}}, ["threshold"]))
    print(table("leave one set out (threshold from the other sets)", held_out, ["threshold", *cols]))
    print(table("sweep", {str(e["threshold"]): e for e in report["sweep"][::5]},
                ["precision", "recall", "f1", *[f"pass_{k}" for k in lowest]]))
    print(table("harder cases (informational, not in the figures above)", report["hard"]["by_kind"],
                ["n", "flagged", "median_score"]))
    cross = report["cross_language"]
    print(table("across languages (answer ko over en sources, and en over ko; informational, not calibrated on)",
                {"all": cross["overall"]}, cols))
    print(table("across languages, per kind", cross["by_kind"], ["n", "flagged", "median_score"]))
    if "lexical" in report:
        lex = report["lexical"]
        print(table("without an embedder", {"all": lex["overall"], **lex["by_language"]}, cols))
        print(f"  lexical: calibrated {lex['calibrated']}, extractive pass {lex['extractive_pass']}, "
              f"time {lex['time']}")
    print(f"\ntime per answer, labelled set: {report['time_labelled']}")
    print(f"time per answer, extractive answers reworded, cold caches: {report['time_reworded_extractive']}")
    print(f"sentences split differently from the labels: {report['split_mismatch']} of {len(rows)}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report["rows"] = [asdict(r) for r in rows]
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
