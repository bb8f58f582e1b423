"""Lexical analysers: text → the terms a BM25 index stores.

Whitespace tokenisation fails Korean: particles and endings glue to the word (반품은, 반품을,
반품이, 반품했다 are four different "words" for one idea), so a query for 반품 misses most
documents. :class:`KoreanEnglishAnalyzer` (``"ko-en"``, the default) cuts Hangul into morphemes
with Kiwi and keeps only content morphemes, stems English with Snowball, and bigrams other CJK.

Every analyser is batch-first (``analyze_batch``); ``analyze(text)`` wraps it. Choices below were
tuned on MS MARCO Korean/English with ``benchmarks/analyzers.py``; the figures are in
``docs/benchmarks-analyzers.md``.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from jisik.errors import ConfigError
from jisik.text._kiwi import get_kiwi

__all__ = [
    "ANALYZERS",
    "DEFAULT_ANALYZER",
    "KOREAN_QUESTION_WORDS",
    "Analyzer",
    "EnglishAnalyzer",
    "KoreanEnglishAnalyzer",
    "WhitespaceAnalyzer",
    "analyze_queries",
    "get_analyzer",
]


@runtime_checkable
class Analyzer(Protocol):
    """Turns texts into lists of index terms. The same analyser must index and query."""

    name: str

    def analyze_batch(self, texts: Sequence[str]) -> list[list[str]]:
        """Terms of each text, in text order (duplicates kept: BM25 counts them)."""
        ...

    def analyze(self, text: str) -> list[str]:
        """``analyze_batch([text])[0]``."""
        ...


class _BatchAnalyzer:
    """Shared behaviour: the single-text call wraps the batch call."""

    name = "?"

    def analyze_batch(self, texts: Sequence[str]) -> list[list[str]]:
        raise NotImplementedError

    def analyze(self, text: str) -> list[str]:
        return self.analyze_batch([text])[0]

    def analyze_queries(self, texts: Sequence[str]) -> list[list[str]]:
        """Terms of search queries; the same as :meth:`analyze_batch` unless an analyser knows better."""
        return self.analyze_batch(texts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


# --- character classes -------------------------------------------------------------------------

# Hangul syllables, jamo, compatibility jamo and the extended jamo blocks.
_HANGUL = "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7a3\ud7b0-\ud7ff"
# Other CJK scripts written without spaces: Hiragana, Katakana (with ー), CJK ideographs and
# their extensions and compatibility block. Hangul is deliberately not here (Kiwi handles it).
_CJK = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# Letters of every other script (Latin, Greek, Cyrillic, ...): "not non-word, not digit, not _,
# not Hangul, not CJK". Python's ``re`` has no class subtraction; a negated class does the job.
_LETTER = rf"[^\W\d_{_HANGUL}{_CJK}]"

_HAS_HANGUL = re.compile(rf"[{_HANGUL}]")
_HANGUL_RUN = re.compile(rf"[{_HANGUL}]+")
_CJK_RUN = re.compile(rf"[{_CJK}]+")
_TOKEN_RE = re.compile(
    rf"(?P<hangul>[{_HANGUL}]+)"
    rf"|(?P<cjk>[{_CJK}]+)"
    r"|(?P<num>\d+(?:[.,]\d+)*)"
    rf"|(?P<word>{_LETTER}+(?:'{_LETTER}+)*)"
)
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
# Curly apostrophes to ASCII so "don’t" and "don't" are one term.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\uff07": "'"})


_COMPAT_JAMO = re.compile("([\u3131-\u318e]+)")


def normalize_text(text: str) -> str:
    """NFKC plus ASCII apostrophes: full-width letters, circled digits, ligatures, units fold.

    Hangul compatibility jamo (ㅋㅋ, ㅠㅠ) are left as they are: NFKC would turn them into the
    conjoining jamo used inside syllables, which Kiwi reads as letters rather than symbols.

    >>> normalize_text("ＡＢＣ ① ﬁle ㎏ don’t ㅋㅋ")
    "ABC 1 file kg don't ㅋㅋ"
    """
    if _COMPAT_JAMO.search(text):
        parts = _COMPAT_JAMO.split(text)  # odd indexes are the jamo runs
        text = "".join(p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(parts))
    else:
        text = unicodedata.normalize("NFKC", text)
    return text.translate(_APOSTROPHES)


# --- English ----------------------------------------------------------------------------------


def _word_set(words: str) -> frozenset[str]:
    """A frozenset from a whitespace-separated literal (long word lists stay readable)."""
    return frozenset(words.split())


# A short list on purpose: BM25's IDF already discounts common words; a stop list only has to
# drop words that carry no topic at all. The list is Lucene's English set (33 words) plus the
# auxiliaries, pronouns and wh-words that dominate questions ("how many years did ..."), chosen by
# comparing R@10 on MS MARCO English: see docs/benchmarks-analyzers.md.
ENGLISH_STOPWORDS: frozenset[str] = _word_set(
    """a an and are as at be but by for if in into is it no not of on or such that the their then
    there these they this to was will with
    am been being can could did do does doing had has have having he her hers him his i its itself
    me my our ours she should so than them those through us we were what when where which while
    who whom why would you your yours how
    about also any both each from more most other same some just only very own over under up
    's"""
)


def fold_accents(word: str) -> str:
    """Strip diacritics from non-ASCII letters so "café" and "cafe" match; ASCII passes through.

    >>> fold_accents("café"), fold_accents("naïve"), fold_accents("plain")
    ('cafe', 'naive', 'plain')
    """
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


class _Stemmer:
    """Snowball English (Porter2) with a memo; one Snowball object per thread.

    snowballstemmer's pure-Python stemmers keep their working string on the object, so two threads
    must not share one. Stemming dominates English analysis time and words follow Zipf's law, so a
    memo of recent words saves ~90% of the calls; it is bounded by clearing it when full.
    """

    _MAX_MEMO = 200_000

    def __init__(self) -> None:
        self._local = threading.local()
        self._memo: dict[str, str] = {}

    def _snowball(self) -> Any:
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            import snowballstemmer

            stemmer = snowballstemmer.stemmer("english")
            self._local.stemmer = stemmer
        return stemmer

    def stem(self, word: str) -> str:
        stem = self._memo.get(word)
        if stem is None:
            stem = str(self._snowball().stemWord(word))
            if len(self._memo) >= self._MAX_MEMO:
                self._memo.clear()
            self._memo[word] = stem
        return stem


def number_terms(number: str) -> list[str]:
    """Index terms for a run of digits with ``.``/``,`` in it.

    Thousands separators go ("1,000" = "1000"); one dot is a decimal and stays; several dots are a
    date or version and split into parts; leading zeros go so "2023.05.01" matches "2023년 5월 1일".

    >>> number_terms("1,000"), number_terms("3.5"), number_terms("2023.05.01"), number_terms("007")
    (['1000'], ['3.5'], ['2023', '5', '1'], ['7'])
    >>> number_terms("1,2,3"), number_terms("3.50")
    (['1', '2', '3'], ['3.5'])
    """
    if "," in number:
        if _THOUSANDS.fullmatch(number):
            number = number.replace(",", "")
        else:
            return [term for part in number.split(",") for term in number_terms(part)]
    parts = number.split(".")
    if len(parts) == 2:
        whole = parts[0].lstrip("0") or "0"
        fraction = parts[1].rstrip("0")
        return [f"{whole}.{fraction}" if fraction else whole]
    return [part.lstrip("0") or "0" for part in parts]


def cjk_bigrams(run: str) -> list[str]:
    """Overlapping character bigrams of a Han/Kana run; a single character stays a unigram.

    This is Lucene's CJKBigramFilter: robust for languages written without spaces when no
    segmenter is available, at the cost of a bigger index.

    >>> cjk_bigrams("東京タワー"), cjk_bigrams("國")
    (['東京', '京タ', 'タワ', 'ワー'], ['國'])
    """
    if len(run) < 2:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def _word_term(word: str, stemmer: _Stemmer, stopwords: frozenset[str]) -> str | None:
    """Lowercase, fold accents, drop stopwords, stem ASCII words (Snowball English only fits them)."""
    word = fold_accents(word.lower())
    if word in stopwords:
        return None
    return stemmer.stem(word) if word.isascii() else word


def _scan(
    text: str, stemmer: _Stemmer, stopwords: frozenset[str], *, hangul_words: bool
) -> Iterator[tuple[int, str]]:
    """(position, term) for every non-Hangul token, and for Hangul runs when ``hangul_words``."""
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        value = match.group()
        pos = match.start()
        if kind == "word":
            term = _word_term(value, stemmer, stopwords)
            if term:
                yield pos, term
        elif kind == "num":
            for term in number_terms(value):
                yield pos, term
        elif kind == "cjk":
            for term in cjk_bigrams(value):
                yield pos, term
        elif hangul_words:
            yield pos, value


class EnglishAnalyzer(_BatchAnalyzer):
    """``"en"``: lowercase, Snowball English stems, a short stop list; CJK bigrams, numbers kept.

    Hangul words pass through whole (no morphology): use ``"ko-en"`` for Korean.

    >>> EnglishAnalyzer().analyze("The returns were returned on 2023-11-23.")
    ['return', 'return', '2023', '11', '23']
    """

    name = "en"

    def __init__(self, *, stopwords: frozenset[str] = ENGLISH_STOPWORDS) -> None:
        self._stopwords = stopwords
        self._stemmer = _Stemmer()

    def analyze_batch(self, texts: Sequence[str]) -> list[list[str]]:
        return [
            [term for _, term in _scan(normalize_text(t), self._stemmer, self._stopwords, hangul_words=True)]
            for t in texts
        ]


class WhitespaceAnalyzer(_BatchAnalyzer):
    """``"whitespace"``: lowercase and split on whitespace. The naive baseline, for comparisons only.

    >>> WhitespaceAnalyzer().analyze("반품은 14일 이내 Returns.")
    ['반품은', '14일', '이내', 'returns.']
    """

    name = "whitespace"

    def analyze_batch(self, texts: Sequence[str]) -> list[list[str]]:
        return [t.lower().split() for t in texts]


# --- Korean -----------------------------------------------------------------------------------

# Kiwi (Sejong) tags whose morphemes become terms. Tuned on MS MARCO Korean (see the doc):
#   NNG/NNP  common/proper nouns: the bulk of the topic.
#   NNB      bound nouns: units after numbers (년, 월, 원, 개, 명) carry meaning; the empty ones
#            (것, 수, 등, 때문) are in KOREAN_STOPWORDS instead.
#   NR       numerals written in Hangul (하나, 셋째).
#   XR       roots of 하다-adjectives (깨끗, 간단).
#   VV/VA    verb and adjective stems, as lemmas "stem+다" (먹었어요 → 먹다) so they never collide
#            with a noun of the same spelling (차다 "to kick" vs 차 "car").
#   MAG      general adverbs (가장, 자주, 미리, 함께): measured a small gain.
# Dropped: particles J*, endings E*, suffixes XS*/prefixes XP* (하, 되, 들, 적, 불), copulas VCP/VCN,
# auxiliaries VX (주다, 보다 in 해 주다/해 보다), determiners MM, pronouns NP (그것, 무엇, 어디:
# measured a loss), conjunctive adverbs MAJ, interjections IC, symbols S*/W_* (non-Hangul tokens come
# from our own scanner instead, which is consistent with the English analyser).
KOREAN_TAGS: frozenset[str] = frozenset({"NNG", "NNP", "NNB", "NR", "XR", "VV", "VA", "MAG"})
_VERB_TAGS = frozenset({"VV", "VA"})
_COMPOUND_TAGS = frozenset({"NNG", "NNP"})

# Lemmas so frequent and empty that they only add noise: light verbs (하다, 되다), existence
# (있다, 없다), the empty bound nouns, and 및 (MAG "and"). IDF would shrink them anyway; removing
# them also shrinks the index.
KOREAN_STOPWORDS: frozenset[str] = _word_set("하다 되다 있다 없다 같다 않다 이다 것 수 등 때문 데 바 듯 및 더 또")

# Words that say *that* something is asked, not *what*: interrogatives as Kiwi lemmatises them
# (어떻게 → 어떻다/VA, 언제 and 왜 and 얼마나/MAG, 얼마/NNG). 무엇, 누구, 어디 (NP) and 몇, 어느, 어떤, 무슨
# (MM) are already outside KOREAN_TAGS; they are listed so the set reads whole. Dropped from
# queries only (:meth:`KoreanEnglishAnalyzer.analyze_queries`): in a question they match every chunk
# that happens to say 언제 or 어떻게, but a chunk that contains them still indexes them, so old
# knowledge bases need no re-analysis. Measured in docs/benchmarks-retrieval.md, "Query side".
KOREAN_QUESTION_WORDS: frozenset[str] = _word_set(
    "무엇 뭐 무슨 누구 어디 언제 왜 몇 얼마 얼마나 어느 어떤 어떻다 어떠하다 어찌 어째서 어떡하다")

# Kiwi may read a query's space inside a morpheme as a typo ("반 품기간" → 반품 기간) at most this
# many times per morpheme. Queries only: chunk text is edited prose, a question is typed in a hurry.
QUERY_SPACE_TOLERANCE = 1

# "ㄹ/을 수 있다/없다" ("can / cannot") is the verbal way to say 가능 ("possible"): 반품할 수 있다 and
# 반품 가능 should match each other, and so should 반품할 수 없다 and 반품 불가능 (Kiwi splits 불가능
# into the prefix 불 + 가능 and prefixes are dropped). So ETM + 수(NNB) + 있/없 becomes the term 가능.
POSSIBLE = "가능"


def _is_possibility(tokens: Sequence[Any], i: int) -> bool:
    """Whether ``tokens[i]`` is the 수 of "ㄹ 수 있다/없다" (preceded by an adnominal ending)."""
    tok = tokens[i]
    return (
        tok.form == "수"
        and tok.tag == "NNB"
        and i > 0
        and tokens[i - 1].tag == "ETM"
        and i + 1 < len(tokens)
        and tokens[i + 1].form in ("있", "없")
        and tokens[i + 1].tag[:2] in ("VA", "VV", "VX")
    )


def korean_terms(
    tokens: Sequence[Any],
    *,
    tags: frozenset[str] = KOREAN_TAGS,
    stopwords: frozenset[str] = KOREAN_STOPWORDS,
    compounds: bool = True,
) -> Iterator[tuple[int, str]]:
    """(position, term) for the content morphemes in Kiwi's tokens.

    Kiwi gives "반품할 수 있어요" as 반품/NNG 하/XSV ᆯ/ETM 수/NNB 있/VA 어요/EF; this yields
    ``(0, "반품"), (4, "가능")``: the light verb 하 is a suffix, the "수 있" pair becomes 가능.
    Non-Hangul morphemes (SL, SN, SH, W_URL...) are skipped: the caller scans them itself.

    With ``compounds``, two nouns written together also give their join: 반품기간 → 반품, 기간,
    반품기간. The parts keep recall for "반품 기간" or "기간"; the join rewards the exact compound
    (measured +0.6 point R@1 and MRR@10 on MS MARCO Korean).
    """
    skip_next = False
    for i, tok in enumerate(tokens):
        if compounds and i > 0 and tok.tag in _COMPOUND_TAGS:
            prev = tokens[i - 1]
            joined = prev.form + tok.form
            if prev.tag in _COMPOUND_TAGS and prev.start + prev.len == tok.start and _HANGUL_RUN.fullmatch(joined):
                yield prev.start, joined
        if skip_next:
            skip_next = False
            continue
        tag = tok.tag.partition("-")[0]  # irregular conjugations: VV-I, VA-R → VV, VA
        if _is_possibility(tokens, i):
            skip_next = True  # the 있/없 that follows belongs to the pattern
            yield tok.start, POSSIBLE
            continue
        if tag not in tags:
            continue
        form = tok.form + "다" if tag in _VERB_TAGS else tok.form
        if form in stopwords:
            continue
        if _HANGUL_RUN.fullmatch(form):
            yield tok.start, form
        else:
            # Multi-word dictionary names (해리 S. 트루먼, 맥라렌 F1) and mixed forms (우라늄-238):
            # their Hangul parts become terms; the other parts come from the script scanner.
            for part in _HANGUL_RUN.finditer(form):
                yield tok.start + part.start(), part.group()


def _cjk_spans(text: str) -> list[tuple[int, int, str]]:
    """Han/Kana runs that Kiwi must take as one foreign token (tag SH).

    Without them Kiwi reads a particle after Katakana as a noun (東京タワー에 → 에/NNG); with
    them it is the particle it is. Latin runs are not forced: Kiwi already tags them SL (whose
    output we ignore), and forcing them breaks its multi-word names (맥라렌 F1 → 맥 + 라 + 렌) and
    costs ~15% of the analysis time.
    """
    return [(m.start(), m.end(), "SH") for m in _CJK_RUN.finditer(text)]


class KoreanEnglishAnalyzer(_BatchAnalyzer):
    """``"ko-en"`` (default): Kiwi morphemes for Hangul, Snowball stems for English, bigrams for CJK.

    Each text is scanned once by script: Hangul goes to Kiwi (in one batch call for the whole
    batch, on Kiwi's worker threads), Latin words are lowercased, stop-listed and stemmed, numbers
    normalised, Han/Kana runs bigrammed. Terms come out in text order.

    >>> KoreanEnglishAnalyzer().analyze("iPhone 15 반품은 14일 이내에 할 수 있습니다")
    ['iphon', '15', '반품', '14', '일', '이내', '가능']
    """

    name = "ko-en"

    def __init__(
        self,
        *,
        num_workers: int | None = None,
        korean_tags: frozenset[str] = KOREAN_TAGS,
        korean_stopwords: frozenset[str] = KOREAN_STOPWORDS,
        english_stopwords: frozenset[str] = ENGLISH_STOPWORDS,
        noun_compounds: bool = True,
        question_words: frozenset[str] = KOREAN_QUESTION_WORDS,
        query_space_tolerance: int = QUERY_SPACE_TOLERANCE,
        multi_dict: bool = True,
    ) -> None:
        self._num_workers = num_workers
        self._multi_dict = multi_dict
        # without the multi-word dictionary a few chunks analyse differently: a name of its own, so a
        # knowledge base indexed with one refuses the other (store.bind) instead of mismatching silently
        self.name = "ko-en" if multi_dict else "ko-en-lite"
        self._compounds = noun_compounds
        self._tags = korean_tags
        self._ko_stop = korean_stopwords
        self._query_stop = korean_stopwords | question_words
        self._query_tolerance = query_space_tolerance
        self._query_config: Any = None  # Kiwi's config with the query's space tolerance, made once
        self._en_stop = english_stopwords
        self._stemmer = _Stemmer()

    def analyze_batch(self, texts: Sequence[str]) -> list[list[str]]:
        return self._analyze(texts, self._ko_stop, None)

    def analyze_queries(self, texts: Sequence[str]) -> list[list[str]]:
        """Terms of search queries: :meth:`analyze_batch` without the question words
        (:data:`KOREAN_QUESTION_WORDS`), and with Kiwi forgiving a stray space inside a word.

        The index side is untouched, so the terms still meet the same chunk terms.

        >>> KoreanEnglishAnalyzer().analyze_queries(["반품 기간은 언제까지인가요?", "배송비는 어떻게 되나요?"])
        [['반품', '기간'], ['배송비']]
        """
        return self._analyze(texts, self._query_stop, self._space_config())

    def _space_config(self) -> Any:
        """A copy of Kiwi's global config with the query space tolerance (None: Kiwi's own)."""
        if self._query_tolerance <= 0:
            return None
        if self._query_config is None:
            import copy

            config = copy.copy(get_kiwi(self._num_workers, multi_dict=self._multi_dict).global_config)
            config.space_tolerance = self._query_tolerance
            self._query_config = config
        return self._query_config

    def _analyze(self, texts: Sequence[str], ko_stop: frozenset[str], config: Any) -> list[list[str]]:
        normalized = [normalize_text(t) for t in texts]
        out: list[list[str] | None] = [None] * len(texts)
        korean = [i for i, t in enumerate(normalized) if _HAS_HANGUL.search(t)]
        if korean:
            kiwi = get_kiwi(self._num_workers, multi_dict=self._multi_dict)
            # Texts with Han/Kana need forced spans (see _cjk_spans); the rest, nearly all, do not.
            with_cjk = [i for i in korean if _CJK_RUN.search(normalized[i])]
            cjk_set = frozenset(with_cjk)
            plain = [i for i in korean if i not in cjk_set]
            for group, pretokenized in ((plain, None), (with_cjk, _cjk_spans)):
                if group:
                    # Kiwi yields results as its threads finish them: turning each into terms
                    # right away overlaps this Python work with the analysis of the next texts.
                    batch = kiwi.tokenize((normalized[i] for i in group), pretokenized=pretokenized,
                                          override_config=config)
                    for i, tokens in zip(group, batch, strict=True):
                        out[i] = self._terms(normalized[i], tokens, ko_stop)
        return [self._terms(text, (), ko_stop) if terms is None else terms
                for terms, text in zip(out, normalized, strict=True)]

    def _terms(self, text: str, tokens: Sequence[Any], ko_stop: frozenset[str]) -> list[str]:
        """Merge the scanner's non-Hangul terms with Kiwi's Korean terms, in text order."""
        terms = list(_scan(text, self._stemmer, self._en_stop, hangul_words=False))
        if tokens:
            terms.extend(korean_terms(tokens, tags=self._tags, stopwords=ko_stop, compounds=self._compounds))
            terms.sort(key=_position)  # stable: keeps the order of terms from one token
        return [term for _, term in terms]


def _position(item: tuple[int, str]) -> int:
    return item[0]


def analyze_queries(analyzer: Analyzer, queries: Sequence[str]) -> list[list[str]]:
    """The BM25 terms of search ``queries``: the analyser's ``analyze_queries`` where it has one
    (``ko-en`` drops question words there), else its ``analyze_batch`` (a plug-in analyser that only
    follows the :class:`Analyzer` protocol).

    >>> analyze_queries(WhitespaceAnalyzer(), ["Return policy?"])
    [['return', 'policy?']]
    """
    method = getattr(analyzer, "analyze_queries", None)
    return method(list(queries)) if callable(method) else analyzer.analyze_batch(list(queries))


# --- registry ---------------------------------------------------------------------------------

DEFAULT_ANALYZER = "ko-en"

ANALYZERS: Mapping[str, Callable[[], Analyzer]] = MappingProxyType(
    {
        "ko-en": KoreanEnglishAnalyzer,
        # Kiwi without its multi-word dictionary: ~190 MB less and a faster cold start, BM25 quality within
        # 0.1 point MRR@10 (docs/benchmarks.md, "Cold start"); opt-in for new knowledge bases
        "ko-en-lite": lambda: KoreanEnglishAnalyzer(multi_dict=False),
        "en": EnglishAnalyzer,
        "whitespace": WhitespaceAnalyzer,
    }
)


def get_analyzer(name: str = DEFAULT_ANALYZER) -> Analyzer:
    """A new analyser by registry name (the Kiwi model behind ``"ko-en"`` is shared per process).

    >>> get_analyzer("en").name
    'en'
    """
    try:
        factory = ANALYZERS[name]
    except KeyError:
        valid = ", ".join(repr(n) for n in ANALYZERS)
        raise ConfigError(
            f"Unknown analyzer {name!r}", hint=f"choose one of {valid} (default {DEFAULT_ANALYZER!r})"
        ) from None
    return factory()
