"""Groundedness: is each sentence of an answer said by the sources it cites?

:class:`GroundingChecker` splits an answer into sentences (Kiwi for Korean, via
:func:`~jisik.text.sentences.split_sentences_batch`), gives each the ``[n]`` markers it ends with or is followed by
(``"Returns take 14 days. [1] Shipping is free. [2]"``), strips them, and scores it against each source:

``lexical``
    The share of the sentence's content terms (the ``ko-en`` analyser: Kiwi morphemes, English stems) found in
    the evidence, averaged with that share for its *weakest clause* (cut at commas, semicolons, brackets, dashes,
    English conjunctions, Korean connective endings): an invented clause has almost none of its terms there,
    while a paraphrase loses a term here and there in every clause alike.
``dense``
    The best cosine between the sentence and a source sentence (or 400-character window), both embedded as e5
    ``query:`` texts (e5's symmetric use), rescaled from ``[DENSE_FLOOR, 1]`` to ``[0, 1]``: synonyms, reordering.
``constraints``
    Every number (``3만 5천`` = ``35,000``, ``1.5 million``, ``%``, ``원``, dates by their parts) must be among the
    evidence's numbers, every name (Kiwi proper nouns and unknown nouns, capitalised Latin words) must occur in
    it, each clause must hold as many negations (않/못/없/아니/불가, not/never/no/n't/without) as the source
    clause it restates, and no clause or run of :data:`MIN_RUN` words may be missing. Each violation multiplies
    the score by its penalty (0.5: one takes even a perfect score below the threshold).

``score = (LEXICAL_WEIGHT * lexical + DENSE_WEIGHT * dense) * penalties``; without an embedder, lexical alone.
A ``judge`` (NLI model or LLM: ``judge(premise, hypothesis)`` = probability the premise supports it) is averaged
in (:data:`JUDGE_WEIGHT`); a judge that raises or returns no probability leaves the built-in score and a
problem saying so. A verbatim quote of a cited source (case, spacing and markers aside) scores 1 with no further
work: every sentence of the extractive answerer is one. Sentences without content words and the not-found
message pass. Against sources in the other language (a Korean answer from English documents) only meaning and
numbers can be compared (:data:`CROSS_LANGUAGE_SHIFT`).

A sentence is ``supported`` when its score with the sources it cites reaches the threshold; if not, and another
source would do, the problem says so ("cites [2], which does not support it; [1] does"). A sentence that cites
nothing is judged against every source ("cites no source; [1] supports it"). The constants were set with
``benchmarks/guard_grounding.py`` (Korean and English; docs/benchmarks.md).
"""
from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from jisik.embed.base import Embedder, Vectors
from jisik.generate.citations import _MARKER, _numbers
from jisik.generate.extractive import dense_feature, window_spans
from jisik.generate.language import is_not_found
from jisik.guard.base import SentenceSupport
from jisik.text._kiwi import get_kiwi
from jisik.text.analyzers import Analyzer, fold_accents, normalize_text
from jisik.text.language import text_language
from jisik.text.sentences import split_sentences_batch

__all__ = [
    "CROSS_LANGUAGE_SHIFT", "DENSE_FLOOR", "DENSE_WEIGHT", "JUDGE_WEIGHT", "LEXICAL_WEIGHT", "PENALTY_NAME",
    "PENALTY_NEGATION", "PENALTY_NUMBER", "PENALTY_PART", "THRESHOLD", "GroundingChecker", "Judge", "clause_spans",
    "count_negations", "cut_at_markers", "extract_numbers", "latin_names", "missing_run", "negation_differs",
    "number_values", "strip_markers",
]

Judge = Callable[[str, str], float]

# -- constants (benchmarks/guard_grounding.py; docs/benchmarks.md) ---------------------------------------
# Support a sentence needs: the middle of the thresholds within 0.005 of the best F1 of "unsupported" on all
# labelled sets together (SQuAD, MS MARCO en/ko, Belebele ko), among those where >= 99% of the extractive
# answerer's answers pass. F1 is flat from 0.55 to 0.80; each set alone picks 0.67-0.68.
THRESHOLD = 0.68
# e5 cosines between sentences ("query:" both sides) sit in a narrow band: unrelated sentences 0.70-0.78,
# sentences on the same topic 0.80-0.88, a paraphrase 0.93-0.99, the same sentence 1.
DENSE_FLOOR = 0.80
LEXICAL_WEIGHT = 0.5
DENSE_WEIGHT = 0.5
# A single violated constraint takes even a perfect base score (1.0) below the threshold.
PENALTY_NUMBER = 0.5
PENALTY_NAME = 0.5
PENALTY_NEGATION = 0.5
JUDGE_WEIGHT = 0.5
PENALTY_PART = 0.5  # a clause, or a run of MIN_RUN words, that the evidence lacks: the sentence is partly supported
MIN_CLAUSE_TERMS = 2  # clauses with fewer content terms are too short to judge alone
MIN_RUN = 3  # consecutive missing terms that make an invented phrase (a paraphrase's synonyms are scattered)
UNRELATED = 0.2  # a second cited source holding less of the sentence than this is reported as not supporting it
# multilingual e5 gives a translation a lower cosine than the sentence itself: on MS MARCO, a Korean sentence and
# the best sentence of its English passage have median 0.88 (5th percentile 0.84), against 0.79 for a sentence of
# an unrelated passage; the shift puts translations where paraphrases in one language are.
CROSS_LANGUAGE_SHIFT = 0.08
WINDOWS_PER_SOURCE = 3  # source sentences embedded per answer sentence: those sharing most terms with it
MAX_CHARS = 400  # longer source sentences are cut into windows (as the extractive answerer does)
CACHE_SIZE = 16384  # source texts and window vectors (384 float32 each for e5-small: 25 MiB) kept between calls

def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words that say where an answer comes from or how it is laid out, not what it claims.
DISCOURSE_TERMS: frozenset[str] = _word_set(
    "다음 아래 요약 정리 답변 문서 출처 내용 follow summar answer document source")

# -- numbers --------------------------------------------------------------------------------------------
_NUMBER = re.compile(
    r"(?<![\d.,])(\d+(?:[.,]\d+)*)(?:\s?(천|백|십))?(?:\s?(조|억|만))?"
    r"(?:\s(thousand|million|billion|trillion)\b)?", re.IGNORECASE)
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SMALL = {"천": 1e3, "백": 1e2, "십": 1e1}
_BIG = {"조": 1e12, "억": 1e8, "만": 1e4}
_ENGLISH_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_WORD_NUMBERS = {w: float(i) for i, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"))}
_WORD_NUMBERS |= {"thirty": 30.0, "forty": 40.0, "fifty": 50.0, "sixty": 60.0, "seventy": 70.0, "eighty": 80.0,
                  "ninety": 90.0, "hundred": 100.0, "thousand": 1e3, "dozen": 12.0, "twice": 2.0, "once": 1.0}
_NUMBER_WORD = re.compile(r"\b(?:" + "|".join(_WORD_NUMBERS) + r")\b", re.IGNORECASE)


def _unit(small: str | None, big: str | None, scale: str | None) -> float:
    return _SMALL.get(small or "", 1.0) * _BIG.get(big or "", 1.0) * _ENGLISH_SCALE.get((scale or "").lower(), 1.0)


def _parts(digits: str) -> list[float]:
    """The numbers in one run of digits: thousands separators go, one dot is a decimal, more dots a date."""
    if "," in digits:
        if _THOUSANDS.fullmatch(digits):
            return [float(digits.replace(",", ""))]
        return [v for part in digits.split(",") if part for v in _parts(part)]
    pieces = digits.split(".")
    if len(pieces) == 2 and pieces[1]:
        return [float(digits)]
    return [float(p) for p in pieces if p]


def _key(value: float) -> float:
    return round(value, 6)


def extract_numbers(text: str) -> list[tuple[str, float]]:
    """(surface, value) of each number in ``text``, Korean and English units applied.

    Korean amounts are read group by group (``1억 2천만`` = 120,000,000); thousands separators go; a run with
    several dots (a date, a version) gives its parts; ``제3조`` is article 3, not 3 trillion.

    >>> extract_numbers("3만 5천 원, 30,000원, 1억 2천만 명")
    [('3만 5천', 35000.0), ('30,000', 30000.0), ('1억 2천만', 120000000.0)]
    >>> [v for _, v in extract_numbers("1.5 million people, 3.50%, 2024.03.15, 제3조")]
    [1500000.0, 3.5, 2024.0, 3.0, 15.0, 3.0]
    """
    found: list[tuple[int, int, float, float]] = []  # start, end, value, big unit
    for match in _NUMBER.finditer(text):
        digits, small, big, scale = match.groups()
        if big == "조" and text[max(0, match.start() - 1):match.start()] == "제":
            big = None
        values = _parts(digits)
        if len(values) != 1:
            found.extend((match.start(), match.start() + len(digits), v, 0.0) for v in values)
            continue
        end = match.end() if (small or big or scale) else match.start() + len(digits)
        value, rank = values[0] * _unit(small, big, scale), _BIG.get(big or "", 1.0)
        if found and found[-1][3] > rank and not text[found[-1][1]:match.start()].strip():
            start, _, previous, _ = found.pop()  # "1억 2천만": the smaller group adds to the larger one
            found.append((start, end, previous + value, rank))
        else:
            found.append((match.start(), end, value, rank))
    return [(text[s:e], v) for s, e, v, _ in found]


def number_values(text: str) -> frozenset[float]:
    """Every value a source offers: amounts with their units, the bare digits, English number words.

    >>> sorted(number_values("매출은 3만 5천 원이고 five stores"))
    [3.0, 5.0, 5000.0, 30000.0, 35000.0]
    """
    values = {_key(v) for _, v in extract_numbers(text)}
    for match in _NUMBER.finditer(text):  # each group alone too: "3만" and "5천" of "3만 5천", "2천" of "2천만"
        digits, small, big, scale = match.groups()
        parts = _parts(digits)
        values.update(_key(v) for v in parts)
        if len(parts) == 1:
            values.update({_key(parts[0] * _unit(small, None, None)), _key(parts[0] * _unit(small, big, scale))})
    values.update(_WORD_NUMBERS[m.group().lower()] for m in _NUMBER_WORD.finditer(text))
    return frozenset(values)


# -- negation -------------------------------------------------------------------------------------------
_NEGATION = re.compile(
    r"\b(?:not(?!\s+only\b)|never|no(?!\.\s?\d)|none|nobody|nothing|neither|nor|cannot|without)\b|n't\b"
    r"|않|없(?!애)|아니|아닌|아닙|아님|(?<![가-힣])못(?=\s|하|한|했|합)|(?<![가-힣])안(?=\s[가-힣])|불가(?!리)",
    re.IGNORECASE)


def count_negations(text: str) -> int:
    """How many negation cues ``text`` holds (Korean 않/못/없/아니/안/불가, English not/never/no/n't/without).

    >>> [count_negations(t) for t in ["반품할 수 없습니다.", "그는 가지 않았다.", "잘못된 정보가 아니다.",
    ...     "It is not only cheap.", "They didn't go and never will.", "See No. 5.", "불가리아", "안 된다"]]
    [1, 1, 1, 0, 2, 0, 0, 1]
    """
    return sum(1 for _ in _NEGATION.finditer(text))


# -- names ----------------------------------------------------------------------------------------------
_LATIN_WORD = re.compile(r"(?<![\w'’])[A-Za-z\u00c0-\u024f][\w'’\u00c0-\u024f-]*")
# Capitalised only because they open a sentence (a closed list: nouns at the start still count as names).
_OPENERS: frozenset[str] = _word_set(
    """a an and the this that these those there here it its he she they we you i his her their our my your
    in on at by for from to of with without within into onto over under after before during since until upon
    about above across against along among around as because although though while whereas if unless when
    where which who whom whose what why how however therefore thus then also furthermore moreover meanwhile
    instead still yet so but or nor both either neither each every all any some many most much more few
    several other another such one two three first second third finally later earlier today now often usually
    sometimes originally eventually subsequently according including following despite unlike like given
    overall only even just perhaps not no yes there's it's nevertheless nonetheless likewise hence otherwise
    indeed besides whilst regardless thereby altogether""")


def latin_names(text: str) -> list[str]:
    """Capitalised Latin words and acronyms that name something; the first word only if it is not a common opener.

    >>> latin_names("In 2016, the Denver Broncos beat the Carolina Panthers at Levi's Stadium.")
    ['Denver', 'Broncos', 'Carolina', 'Panthers', "Levi's", 'Stadium']
    >>> latin_names("Beyoncé released an album; NASA did not."), latin_names("However, it rained.")
    (['Beyoncé', 'NASA'], [])
    """
    names: list[str] = []
    for match in _LATIN_WORD.finditer(text):
        word = match.group().strip("-'’")
        if not word or not (word[0].isupper() or any(c.isupper() for c in word[1:])):
            continue
        before = text[:match.start()].rstrip()
        opens = not before or before[-1] in ".!?:\"“([" or not re.search(r"[A-Za-z\uac00-\ud7a3]", before)
        if opens and (word.lower() in _OPENERS or (word[1:].islower() and word.endswith(("ing", "ed", "ly")))):
            continue
        names.append(word)
    return names


def _fold(text: str) -> str:
    return fold_accents(normalize_text(text).casefold())


_PARTICLE = re.compile(r"(?<=[가-힣])(?:의|은|는|이|가|을|를|에|에서|와|과|도|로|으로|에게)$")


def _name_in(name: str, flat: str, words: frozenset[str]) -> bool:
    """Whether a name occurs in a source: as a substring (spaces ignored), or as a word up to a short suffix."""
    key = _fold(name)
    key = re.sub(r"['’]s$", "", key)
    squeezed = flat.replace(" ", "")
    if key.replace(" ", "") in squeezed:
        return True
    bare = _PARTICLE.sub("", key)  # an unknown word swallows its particle: 화이트스네이크의
    if bare != key and len(bare) >= 2 and bare.replace(" ", "") in squeezed:
        return True
    return any(len(w) >= 4 and (w.startswith(key) or key.startswith(w)) and abs(len(w) - len(key)) <= 2
               for w in words)


# -- clauses and markers --------------------------------------------------------------------------------
_CLAUSE_BREAK = re.compile(
    r"[,;:]\s+|\s+[–—-]\s+|\s*[()]\s*|\s+(?=(?:but|whereas|although|though|because|while|which|who|so that|"
    r"and then)\s)|(?<=지만)\s+|(?<=는데)\s+|(?<=면서)\s+|(?<=으며)\s+|(?<=이며)\s+|(?<=하며)\s+|(?<=되며)\s+"
    r"|(?<=으나)\s+|(?<=했고)\s+|(?<=었고)\s+|(?<=았고)\s+|(?<=였고)\s+", re.IGNORECASE)


def clause_spans(text: str) -> list[tuple[int, int]]:
    """Spans of the clauses of a sentence: cut at , ; : brackets, dashes, English conjunctions, Korean endings.

    >>> t = "He moved to Paris in 1990, which surprised everyone."
    >>> [t[s:e] for s, e in clause_spans(t)]
    ['He moved to Paris in 1990', 'which surprised everyone.']
    >>> k = "회사는 1990년에 설립되었으며 2000년에 상장했다."
    >>> [k[s:e] for s, e in clause_spans(k)]
    ['회사는 1990년에 설립되었으며', '2000년에 상장했다.']
    """
    spans, pos = [], 0
    for match in _CLAUSE_BREAK.finditer(text):
        if match.start() > pos:
            spans.append((pos, match.start()))
        pos = max(pos, match.end())
    if pos < len(text):
        spans.append((pos, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()] or [(0, len(text))]


@dataclass(frozen=True, slots=True)
class _Marker:
    position: int  # offset in the stripped text where the marker was
    start: int  # the marker's span in the original text
    end: int
    numbers: tuple[int, ...]


def strip_markers(text: str) -> tuple[str, list[int], list[_Marker]]:
    """``text`` without its ``[n]`` markers (and the spaces before them), the original offset of each kept
    character (plus one for the end) and the markers.

    >>> stripped, where, markers = strip_markers("Returns take 14 days [1]. Free [2, 3]")
    >>> stripped, [m.numbers for m in markers], [m.position for m in markers], where[len(stripped)]
    ('Returns take 14 days. Free', [(1,), (2, 3)], [20, 26], 37)
    """
    out: list[str] = []
    where: list[int] = []
    markers: list[_Marker] = []
    pos = 0
    for match in _MARKER.finditer(text):
        piece = text[pos:match.start()]
        kept = piece.rstrip()
        out.append(kept)
        where.extend(range(pos, pos + len(kept)))
        markers.append(_Marker(sum(map(len, out)), match.start(), match.end(), tuple(_numbers(match.group(1)))))
        pos = match.end()
    out.append(text[pos:])
    where.extend(range(pos, len(text)))
    where.append(len(text))
    return "".join(out), where, markers


def missing_run(terms: Sequence[str], evidence: frozenset[str]) -> list[str]:
    """The longest run of consecutive terms absent from ``evidence`` (numbers break a run: they are checked alone).

    Synonyms of a paraphrase are scattered; an invented phrase ("after a long public debate") is a run.

    >>> missing_run(["law", "pass", "long", "public", "debat", "1990"], frozenset({"law", "pass", "1990"}))
    ['long', 'public', 'debat']
    """
    runs = itertools.groupby(terms, key=lambda t: t not in evidence and not t[:1].isdigit())
    return max((list(run) for missing, run in runs if missing), key=len, default=[])


def negation_differs(clauses: Sequence[frozenset[str]], negations: Sequence[int],
                     source: Sequence[tuple[frozenset[str], int]], match: float = 0.3) -> bool:
    """Whether a clause holds more or fewer negations than the source clause it restates (the one sharing most
    terms, Jaccard ≥ ``match``). Source clauses that no clause restates do not count, so quoting half a
    sentence is fine.

    >>> src = [(frozenset({"return", "open", "item"}), 1), (frozenset({"ship", "free"}), 0)]
    >>> negation_differs([frozenset({"return", "open", "item"})], [0], src)
    True
    >>> negation_differs([frozenset({"ship", "free"})], [0], src)
    False
    """
    candidates = [(t, n) for t, n in source if t]
    for terms, count in zip(clauses, negations, strict=True):
        if not terms or not candidates:
            continue
        overlaps = [(len(terms & t) / len(terms | t), n) for t, n in candidates]
        best = max(o for o, _ in overlaps)
        # of equally close source clauses ("효과가 있는 것", "효과가 없는 것" share all terms), any that agrees will do
        if best >= match and all(n != count for o, n in overlaps if o == best):
            return True
    return False


_STOPS = ".!?。"


def cut_at_markers(text: str, spans: Sequence[tuple[int, int]], positions: Sequence[int]) -> list[tuple[int, int]]:
    """Sentence spans cut where a marker stands at a full stop or a line end: "etc [3]. Next" and "etc. [3] Next"
    end a sentence even when the splitter took the stop for an abbreviation's. ``positions``: where markers were.

    >>> t = "It has songs, films, etc. Definitions follow."
    >>> [t[s:e] for s, e in cut_at_markers(t, [(0, len(t))], [24])]
    ['It has songs, films, etc.', 'Definitions follow.']
    """
    cuts = set()
    for p in positions:
        if p < len(text) and text[p] in _STOPS and p + 1 < len(text) and text[p + 1].isspace():
            cuts.add(p + 1)  # "etc [3]. Next"
        elif 0 < p < len(text) and ((text[p - 1] in _STOPS and text[p].isspace()) or text[p] == "\n"):
            cuts.add(p)  # "etc. [3] Next", and a list item without a stop: "- 14일 [1]\n- 무료 [2]"
    out: list[tuple[int, int]] = []
    for s, e in spans:
        for cut in sorted(c for c in cuts if s < c < e):
            out.append((s, cut))
            s = cut
            while s < e and text[s].isspace():
                s += 1
        out.append((s, e))
    return out


_SPACES = re.compile(r"\s+")


def _flat(text: str) -> str:
    """Casefolded, accents folded, markers removed, whitespace collapsed: the form verbatim quotes are found in."""
    return _SPACES.sub(" ", _fold(_MARKER.sub(" ", text))).strip()


# -- internal records -----------------------------------------------------------------------------------
V = TypeVar("V")


def _remember(cache: dict[str, V], key: str, value: V) -> V:
    """Keep ``value`` in a bounded cache, emptied when full (dict writes are atomic: threads may share it)."""
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


@dataclass(frozen=True, slots=True)
class _Clauses:
    texts: tuple[str, ...]
    ordered: tuple[tuple[str, ...], ...]  # each clause's content terms in text order
    negations: tuple[int, ...]
    terms: tuple[frozenset[str], ...] = ()
    all_terms: frozenset[str] = frozenset()

    @classmethod
    def of(cls, texts: Sequence[str], ordered: Sequence[tuple[str, ...]]) -> _Clauses:
        return cls(tuple(texts), tuple(ordered), tuple(count_negations(c) for c in texts),
                   tuple(frozenset(t) for t in ordered), frozenset(t for clause in ordered for t in clause))


@dataclass(frozen=True, slots=True)
class _Source:
    flat: str
    windows: tuple[str, ...]
    clauses: tuple[_Clauses, ...]  # per window
    window_terms: tuple[frozenset[str], ...]
    terms: frozenset[str]
    numbers: frozenset[float]
    words: frozenset[str]
    language: str


@dataclass(slots=True)
class _Sentence:
    text: str
    start: int
    end: int
    citations: list[int]
    pieces: list[str]  # the text between markers, for the verbatim test
    clauses: _Clauses = _Clauses((), (), ())
    names: list[str] = field(default_factory=list)
    trivial: bool = False
    language: str = "en"


@dataclass(slots=True)
class _Evidence:
    score: float
    base: float
    lexical: float
    problems: list[str]
    verbatim: bool = False


def _label(sources: Iterable[int]) -> str:
    return "[" + ", ".join(str(j + 1) for j in sources) + "]"


def _missing_numbers(text: str, srcs: Sequence[_Source], chosen: Sequence[int]) -> list[str]:
    values = frozenset().union(*(srcs[j].numbers for j in chosen))
    return list(dict.fromkeys(surface for surface, value in extract_numbers(text) if _key(value) not in values))


def _share(terms: frozenset[str], evidence: frozenset[str]) -> float:
    return len(terms & evidence) / len(terms) if terms else 1.0


def _quoted(s: _Sentence, flats: Sequence[str]) -> SentenceSupport | None:
    """The decision for a sentence quoted verbatim from a source it cites, or for the not-found message; else None."""
    invalid = [n for n in s.citations if not 1 <= n <= len(flats)]
    problems = [f"cites [{n}], which is not a source" for n in invalid]
    if is_not_found(s.text):
        return SentenceSupport(s.text, s.start, s.end, s.citations, 1.0, True, problems, None)
    pieces = [_flat(p) for p in s.pieces if re.search(r"\w", p)]
    valid = [n for n in s.citations if 1 <= n <= len(flats)]
    if not pieces or not valid:
        return None
    for n in valid:
        if all(p in flats[n - 1] for p in pieces):
            return SentenceSupport(s.text, s.start, s.end, s.citations, 1.0, True, problems, n)
    if len(valid) > 1 and all(p in " ".join(flats[n - 1] for n in valid) for p in pieces):
        return SentenceSupport(s.text, s.start, s.end, s.citations, 1.0, True, problems, valid[0])
    return None


class GroundingChecker:
    """Scores each sentence of an answer against the numbered sources (``sources[i]`` is ``[i + 1]``).

    ``embedder`` None scores with terms and constraints only (weaker on paraphrase). ``judge`` is optional;
    see the module docstring for the method and :data:`THRESHOLD` for the default ``threshold``. Embedders other
    than multilingual e5 have other cosine bands: pass ``dense_floor`` (0.0 for the hashing test embedder).
    """

    def __init__(self, *, embedder: Embedder | None, analyzer: Analyzer, threshold: float = THRESHOLD,
                 judge: Judge | None = None, dense_floor: float = DENSE_FLOOR) -> None:
        self.embedder = embedder
        self.analyzer = analyzer
        self.threshold = threshold
        self.judge = judge
        self.dense_floor = dense_floor
        self._sources: dict[str, _Source] = {}
        self._vectors: dict[str, Vectors] = {}  # source windows
        self._flats: dict[str, str] = {}

    def check(self, answer: str, sources: Sequence[str], *, language: str = "auto") -> list[SentenceSupport]:
        """Support of each sentence of ``answer``: ``check_batch([answer], [sources])[0]``."""
        return self.check_batch([answer], [sources], language=language)[0]

    def check_batch(self, answers: Sequence[str], sources: Sequence[Sequence[str]], *,
                    language: str = "auto") -> list[list[SentenceSupport]]:
        """Support of each sentence of each answer, with one splitter, analyser, Kiwi and embedder call for all.

        Sentences quoted verbatim from a source they cite are settled first, without analysis or vectors (the
        extractive answerer's answers never go further); the rest are scored against every source.
        """
        if len(answers) != len(sources):
            raise ValueError(f"{len(answers)} answers but {len(sources)} source lists")
        sentences = self._sentences(answers)
        results: dict[tuple[int, int], SentenceSupport] = {}
        pending: list[tuple[int, int]] = []
        for i, (group, texts) in enumerate(zip(sentences, sources, strict=True)):
            flats = [self._flat(t) for t in texts]
            for k, sentence in enumerate(group):
                quoted = _quoted(sentence, flats)
                if quoted is None:
                    pending.append((i, k))
                else:
                    results[i, k] = quoted
        if pending:
            prepared = self._prepare(list(dict.fromkeys(t for i in dict.fromkeys(i for i, _ in pending)
                                                        for t in sources[i])))
            self._analyse([sentences[i][k] for i, k in pending], language)
            vectors = self._embed([(key, sentences[key[0]][key[1]], [prepared[t] for t in sources[key[0]]])
                                   for key in pending])
            for i, k in pending:
                results[i, k] = self._support(sentences[i][k], [prepared[t] for t in sources[i]], sources[i],
                                              vectors.get((i, k)), vectors)
        return [[results[i, k] for k in range(len(group))] for i, group in enumerate(sentences)]

    def _flat(self, text: str) -> str:
        cached = self._flats.get(text)
        return cached if cached is not None else _remember(self._flats, text, _flat(text))

    # -- preparation ------------------------------------------------------------------------------------
    def _sentences(self, answers: Sequence[str]) -> list[list[_Sentence]]:
        """Each answer's sentences with their markers; a marker belongs to the sentence it ends or follows."""
        stripped = [strip_markers(a) for a in answers]
        spans = split_sentences_batch([s for s, _, _ in stripped])
        out: list[list[_Sentence]] = []
        for (text, where, markers), found in zip(stripped, spans, strict=True):
            sentence_spans = cut_at_markers(text, found, [m.position for m in markers])
            group: list[_Sentence] = []
            for k, (s, e) in enumerate(sentence_spans):
                nxt = sentence_spans[k + 1][0] if k + 1 < len(sentence_spans) else len(text) + 1
                mine = [m for m in markers if (s < m.position <= e) or (e < m.position < nxt)
                        or (k == 0 and m.position <= s)]
                cited = list(dict.fromkeys(n for m in mine for n in m.numbers))
                end = max([where[e - 1] + 1, *(m.end for m in mine if m.position >= e)])
                cuts = [s, *sorted(m.position for m in mine if s < m.position < e), e]
                pieces = [text[a:b] for a, b in itertools.pairwise(cuts) if text[a:b].strip()]
                group.append(_Sentence(text[s:e], where[s], end, cited, pieces))
            out.append(group)
        return out

    def _prepare(self, texts: Sequence[str]) -> dict[str, _Source]:
        """Windows, clause terms, numbers and words of each source text (cached by text)."""
        prepared = {t: v for t in dict.fromkeys(texts) if (v := self._sources.get(t)) is not None}
        missing = [t for t in dict.fromkeys(texts) if t not in prepared]
        if not missing:
            return prepared
        windows: list[list[str]] = []
        for text, spans in zip(missing, split_sentences_batch(missing), strict=True):
            pieces = [p for s, e in spans for p in (window_spans(text, s, e, MAX_CHARS) if e - s > MAX_CHARS
                                                   else [(s, e)])]
            windows.append([text[s:e] for s, e in pieces])
        clauses = self._clauses([w for group in windows for w in group])
        pos = 0
        for text, group in zip(missing, windows, strict=True):
            mine = tuple(clauses[pos:pos + len(group)])
            pos += len(group)
            window_terms = tuple(c.all_terms for c in mine)
            words = frozenset(m.group().casefold() for m in re.finditer(r"\w+", _fold(text)))
            source = _Source(self._flat(text), tuple(group), mine, window_terms, frozenset().union(*window_terms),
                             number_values(text), words, text_language(text))
            prepared[text] = _remember(self._sources, text, source)
        return prepared

    def _clauses(self, texts: Sequence[str]) -> list[_Clauses]:
        """Clause terms and negation counts of each text, in one analyser call."""
        split = [[t[s:e] for s, e in clause_spans(t)] for t in texts]
        flat = [c for group in split for c in group]
        analysed = self.analyzer.analyze_batch(flat) if flat else []
        out, pos = [], 0
        for group in split:
            out.append(_Clauses.of(group, [tuple(t for t in analysed[pos + i] if t not in DISCOURSE_TERMS)
                                           for i in range(len(group))]))
            pos += len(group)
        return out

    def _analyse(self, flat: Sequence[_Sentence], language: str) -> None:
        """Clause terms and names of the answer sentences (one analyser and one Kiwi call)."""
        for sentence, clauses in zip(flat, self._clauses([s.text for s in flat]), strict=True):
            sentence.clauses = clauses
            sentence.trivial = not clauses.all_terms or is_not_found(sentence.text)
            sentence.names = latin_names(sentence.text)
            sentence.language = text_language(sentence.text)
        korean = [s for s in flat if not s.trivial and language != "en" and re.search("[가-힣]", s.text)]
        if korean:
            for sentence, tokens in zip(korean, get_kiwi().tokenize([s.text for s in korean]), strict=True):
                # proper nouns, and nouns Kiwi does not know (transliterated names: 스탈인, 유레스)
                sentence.names += [t.form for t in tokens if t.tag == "NNP" or (t.oov and t.tag.startswith("N"))]

    def _embed(self, pending: Sequence[tuple[tuple[int, int], _Sentence, Sequence[_Source]]]
               ) -> dict[object, Vectors]:
        """Vectors of the answer sentences (key ``(answer, sentence)``) and of the source windows that share most
        terms with them (key: the window's text), in one embedder call; windows are cached by text."""
        if self.embedder is None:
            return {}
        wanted: dict[object, str] = {}
        vectors: dict[object, Vectors] = {}
        for key, sentence, srcs in pending:
            if sentence.trivial:
                continue
            wanted[key] = sentence.text
            terms = sentence.clauses.all_terms
            for source in srcs:
                ranked = sorted(range(len(source.windows)), key=lambda w: -len(terms & source.window_terms[w]))
                # in another language terms cannot pick the windows: every one is compared
                for w in ranked[:WINDOWS_PER_SOURCE] if source.language == sentence.language else ranked:
                    window = source.windows[w]
                    cached = self._vectors.get(window)
                    if cached is None:
                        wanted[window] = window
                    else:
                        vectors[window] = cached
        if wanted:
            texts = list(dict.fromkeys(wanted.values()))
            rows = dict(zip(texts, self.embedder.embed_queries(texts), strict=True))
            for wanted_key, text in wanted.items():
                vectors[wanted_key] = rows[text]
                if isinstance(wanted_key, str):
                    _remember(self._vectors, wanted_key, rows[text])
        return vectors

    # -- scoring ----------------------------------------------------------------------------------------
    def _evidence(self, s: _Sentence, srcs: Sequence[_Source], chosen: Sequence[int], vector: Vectors | None,
                  vectors: dict[object, Vectors]) -> _Evidence:
        """How well the sources ``chosen`` (0-based) support ``s``."""
        label = _label(chosen)
        flat = " ".join(srcs[j].flat for j in chosen)
        pieces = [_flat(p) for p in s.pieces if re.search(r"\w", p)]
        if pieces and all(p in flat for p in pieces):
            return _Evidence(1.0, 1.0, 1.0, [], verbatim=True)
        terms = frozenset().union(*(srcs[j].terms for j in chosen))
        windows = [(w, c) for j in chosen for w, c in zip(srcs[j].windows, srcs[j].clauses, strict=True)]
        if all(srcs[j].language != s.language for j in chosen):
            return self._across(s, srcs, chosen, vector, vectors)
        problems: list[str] = []
        penalty = 1.0
        # lexical: the whole sentence and its weakest clause; an unsupported clause or run of words is a problem
        share = _share(s.clauses.all_terms, terms)
        judged = [(c, t) for c, t in zip(s.clauses.texts, s.clauses.terms, strict=True) if len(t) >= MIN_CLAUSE_TERMS]
        weakest_share, weakest = min(((_share(t, terms), c) for c, t in judged), default=(share, ""))
        lexical = (share + weakest_share) / 2
        run = missing_run([t for clause in s.clauses.ordered for t in clause], terms)
        if weakest_share < 0.5 and len(judged) > 1:
            problems.append(f"“{weakest.strip(' .,;:')}” is not in {label}")
            penalty *= PENALTY_PART
        elif len(run) >= MIN_RUN:
            problems.append(f"{', '.join(run)}: not in {label}")
            penalty *= PENALTY_PART
        elif share < 0.5:
            problems.append(f"only {share:.0%} of its words are in {label}")
        # dense: the best source sentence
        if vector is not None and windows:
            cosines = np.array([float(vector @ vectors[w]) for w, _ in windows if w in vectors] or [0.0])
            dense = float(dense_feature([cosines.max()], self.dense_floor)[0])
            base = LEXICAL_WEIGHT * lexical + DENSE_WEIGHT * dense
        else:
            base = lexical
        # exact-match constraints
        numbers = _missing_numbers(s.text, srcs, chosen)
        problems += [f"number {n} not in {label}" for n in numbers]
        penalty *= PENALTY_NUMBER ** len(numbers)
        words = frozenset().union(*(srcs[j].words for j in chosen))
        for name in dict.fromkeys(s.names):
            if not _name_in(name, flat, words):
                problems.append(f"name {name} not in {label}")
                penalty *= PENALTY_NAME
        if negation_differs(s.clauses.terms, s.clauses.negations,
                            [(t, n) for _, c in windows for t, n in zip(c.terms, c.negations, strict=True)]):
            problems.append(f"negation differs from {label}")
            penalty *= PENALTY_NEGATION
        return _Evidence(base * penalty, base, lexical, problems)

    def _across(self, s: _Sentence, srcs: Sequence[_Source], chosen: Sequence[int], vector: Vectors | None,
                vectors: dict[object, Vectors]) -> _Evidence:
        """Support by sources in another language (a Korean answer from English documents): words cannot be
        compared, so meaning (the cosine, raised by :data:`CROSS_LANGUAGE_SHIFT`) and numbers decide."""
        label = _label(chosen)
        windows = [w for j in chosen for w in srcs[j].windows if w in vectors]
        if vector is None or not windows:
            return _Evidence(0.0, 0.0, 0.0, [f"in another language than {label}, and no embedder to compare meaning"])
        best = max(float(vector @ vectors[w]) for w in windows)
        base = float(dense_feature([best + CROSS_LANGUAGE_SHIFT], self.dense_floor)[0])
        numbers = _missing_numbers(s.text, srcs, chosen)
        problems = [f"number {n} not in {label}" for n in numbers]
        penalty = PENALTY_NUMBER ** len(numbers)
        if base * penalty < self.threshold:
            problems.append(f"compared with {label} across languages, by meaning and numbers only")
        return _Evidence(base * penalty, base, base, problems)

    def _judged(self, s: _Sentence, evidence: _Evidence, texts: Sequence[str], chosen: Sequence[int]) -> str | None:
        """Mix the judge's probability into ``evidence`` (in place); a failure is returned as a problem."""
        if self.judge is None or evidence.verbatim:
            return None
        premise = "\n\n".join(texts[j] for j in chosen)
        try:
            probability = float(self.judge(premise, s.text))
            if not (math.isfinite(probability) and 0.0 <= probability <= 1.0):
                raise ValueError(f"returned {probability}, not a probability")
        except Exception as exc:  # any failure of a model or a server: fall back, and say so
            return f"judge failed ({type(exc).__name__}: {exc}); built-in score used"
        penalty = evidence.score / evidence.base if evidence.base > 0 else 1.0
        mixed = (1 - JUDGE_WEIGHT) * evidence.base + JUDGE_WEIGHT * probability
        evidence.base, evidence.score = mixed, mixed * penalty
        return None

    def _support(self, s: _Sentence, srcs: Sequence[_Source], texts: Sequence[str], vector: Vectors | None,
                 vectors: dict[object, Vectors]) -> SentenceSupport:
        """The decision for one sentence: its cited sources first, the others to say which would support it."""
        valid = [n - 1 for n in s.citations if 1 <= n <= len(srcs)]
        invalid = [n for n in s.citations if not 1 <= n <= len(srcs)]
        problems = [f"cites [{n}], which is not a source" for n in invalid]
        if s.trivial:
            return SentenceSupport(s.text, s.start, s.end, s.citations, 1.0, True, problems, None)
        if not srcs:
            return SentenceSupport(s.text, s.start, s.end, s.citations, 0.0, False, [*problems, "no sources"])
        each = [self._evidence(s, srcs, [j], vector, vectors) for j in range(len(srcs))]
        best = max(range(len(srcs)), key=lambda j: (each[j].score, j in valid, -j))
        if valid:
            chosen = valid
            evidence = each[valid[0]] if len(valid) == 1 else self._evidence(s, srcs, valid, vector, vectors)
        else:
            chosen = [best]
            evidence = each[best]
        failure = self._judged(s, evidence, texts, chosen)
        if failure:
            problems.append(failure)
        supported = evidence.score >= self.threshold
        miscited = False
        if not valid:
            problems.append("cites no source" + (f"; [{best + 1}] supports it" if supported else ""))
        elif not supported:
            others = [j for j in range(len(srcs)) if j not in valid and each[j].score >= self.threshold]
            miscited = bool(others)  # then what is wrong is the citation: why [n] fails would only distract
            if others:
                alt = max(others, key=lambda j: each[j].score)
                problems.append(f"cites {_label(valid)}, which does not support it; [{alt + 1}] does")
        elif len(valid) > 1:
            problems += [f"cites [{j + 1}], which does not support it" for j in valid
                         if not each[j].verbatim and each[j].lexical < UNRELATED]
        if not supported and not miscited:
            problems += evidence.problems or [f"weakly supported by {_label(chosen)} (score {evidence.score:.2f})"]
        best_source = best + 1 if each[best].score > 0 else None
        return SentenceSupport(s.text, s.start, s.end, s.citations, round(evidence.score, 4), supported,
                               problems, best_source)
