"""Tokenisers the metrics share: mteval's ``13a`` (BLEU), Kiwi morphemes (Korean), the Porter
stemmer and the ROUGE tokeniser."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from jisik.errors import EvaluationError
from jisik.evaluate.metrics._common import Language
from jisik.text._kiwi import get_kiwi
from jisik.text.analyzers import normalize_text

# --- mteval-v13a (BLEU) ---------------------------------------------------------------------------

# mteval-v13a's language-dependent rules, as sacrebleu's default "13a" tokeniser applies them:
# ASCII punctuation except ' - . , becomes a token; "." and "," split off unless between digits;
# "-" splits off after a digit.
_13A_RULES = (
    (re.compile(r"([!-&(-+/:-@\[-`{-~])"), r" \1 "),
    (re.compile(r"([^0-9])([.,])"), r"\1 \2 "),
    (re.compile(r"([.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)
_13A_ENTITIES = (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))


@lru_cache(maxsize=65536)
def _tokenize_13a(text: str) -> tuple[str, ...]:
    line = text.rstrip().replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    for entity, char in _13A_ENTITIES:
        line = line.replace(entity, char)
    line = f" {line} "
    for pattern, repl in _13A_RULES:
        line = pattern.sub(repl, line)
    return tuple(line.split())


def tokenize_13a(text: str) -> list[str]:
    """The ``13a`` tokenisation of mteval-v13a (WMT), sacrebleu's default for BLEU. Case is kept.

    >>> tokenize_13a("It costs $3.50, doesn't it? (2019-2020)")
    ['It', 'costs', '$', '3.50', ',', "doesn't", 'it', '?', '(', '2019', '-', '2020', ')']
    """
    return list(_tokenize_13a(text))


# --- Korean morphemes --------------------------------------------------------------------------

# Kiwi (Sejong) tags that carry lexical meaning: nouns, pronouns, numerals, verb and adjective
# stems, determiners, adverbs, roots, and non-Hangul words (Latin, Hanja, numbers, URLs...).
# Particles (J*), endings (E*), affixes (XP*, XS*), copulas, auxiliaries and punctuation are left out.
_LEXICAL_TAGS = frozenset({"NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "MM", "MAG", "XR", "SL", "SH", "SN"})
_VERB_TAGS = frozenset({"VV", "VA"})


def _morphemes(tokens: Sequence[object], lexical: bool) -> list[str]:
    out = []
    for tok in tokens:
        form, tag = str(getattr(tok, "form", "")), str(getattr(tok, "tag", "")).partition("-")[0]
        if lexical and tag not in _LEXICAL_TAGS and not tag.startswith("W_"):
            continue
        if form.strip():
            out.append(form.lower() + "다" if lexical and tag in _VERB_TAGS else form.lower())
    return out


def _kiwi_tokens_batch(texts: Sequence[str], *, lexical: bool = True) -> list[list[str]]:
    """:func:`kiwi_tokens` of each text, in one Kiwi batch call."""
    if not texts:
        return []
    results = get_kiwi().tokenize([normalize_text(t) for t in texts])
    return [_morphemes(tokens, lexical) for tokens in results]


def kiwi_tokens(text: str, *, lexical: bool = True) -> list[str]:
    """Kiwi morphemes of ``text``, lowercased; verb and adjective stems as lemmas (먹다).

    ``lexical`` keeps only meaning-bearing morphemes (nouns, stems, adverbs, numbers, foreign
    words): 환불은 and 환불이 both give 환불. ``lexical=False`` keeps every morpheme (particles,
    endings, punctuation), the usual tokenisation for Korean BLEU.

    >>> kiwi_tokens("환불은 14일 이내에 가능합니다")
    ['환불', '14', '일', '이내', '가능']
    >>> kiwi_tokens("환불이 됩니다", lexical=False)
    ['환불', '이', '되', 'ᆸ니다']
    """
    return _kiwi_tokens_batch([text], lexical=lexical)[0]


# --- Porter stemmer (as NLTK's default mode, which rouge-score uses) --------------------------------

# NLTK's departures from Porter (1980): a few irregular forms, -ies/-ied on 4-letter words,
# y→i only after a consonant, "bli"→"ble" (Porter's later correction), extra step-2 rules
# alli/fulli/logi, and words of 1-2 letters left alone.
_PORTER_IRREGULAR = {
    "skies": "sky", "sky": "sky", "dying": "die", "lying": "lie", "tying": "tie", "news": "news",
    "innings": "inning", "inning": "inning", "outings": "outing", "outing": "outing", "cannings": "canning",
    "canning": "canning", "howe": "howe", "proceed": "proceed", "exceed": "exceed", "succeed": "succeed",
}
_STEP2 = (
    ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"), ("izer", "ize"), ("bli", "ble"),
    ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous"), ("ization", "ize"), ("ation", "ate"),
    ("ator", "ate"), ("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous"), ("aliti", "al"),
    ("iviti", "ive"), ("biliti", "ble"), ("fulli", "ful"), ("logi", "log"),
)
_STEP3 = (("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"), ("ful", ""), ("ness", ""))
_STEP4 = ("al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion", "ou", "ism", "ate",
          "iti", "ous", "ive", "ize")


def _cv(word: str) -> str:
    """'c'/'v' per letter: a, e, i, o, u are vowels; y is a vowel after a consonant."""
    out: list[str] = []
    for i, ch in enumerate(word):
        out.append("v" if ch in "aeiou" or (ch == "y" and i > 0 and out[-1] == "c") else "c")
    return "".join(out)


def _measure(stem: str) -> int:
    """Porter's m: the number of vowel-consonant sequences in [C](VC)^m[V]."""
    return _cv(stem).count("vc")


def _ends_cvc(stem: str) -> bool:
    """Porter's *o (consonant-vowel-consonant, the last not w/x/y); NLTK also accepts a 2-letter vc."""
    cv = _cv(stem)
    return (cv.endswith("cvc") and stem[-1] not in "wxy") or cv == "vc"


def _first_rule(word: str, rules: Sequence[tuple[str, str]], condition: Callable[[str], bool]) -> str:
    """Apply the first rule whose suffix ``word`` ends with, if its stem meets ``condition``."""
    for suffix, replacement in rules:
        if word.endswith(suffix):
            stem = word[: len(word) - len(suffix)]
            return stem + replacement if condition(stem) else word
    return word


def _step1(word: str) -> str:
    if word.endswith("ies") and len(word) == 4:
        word = word[:-1]
    else:
        word = _first_rule(word, (("sses", "ss"), ("ies", "i"), ("ss", "ss"), ("s", "")), lambda s: True)
    if word.endswith("ied"):
        word = word[:-3] + ("ie" if len(word) == 4 else "i")
    elif word.endswith("eed"):
        word = word[:-1] if _measure(word[:-3]) > 0 else word
    else:
        for suffix in ("ed", "ing"):
            if word.endswith(suffix) and "v" in _cv(word[: -len(suffix)]):
                word = word[: -len(suffix)]
                if word.endswith(("at", "bl", "iz")):
                    word += "e"
                elif len(word) >= 2 and word[-1] == word[-2] and _cv(word)[-1] == "c":
                    word = word if word[-1] in "lsz" else word[:-1]
                elif _measure(word) == 1 and _ends_cvc(word):
                    word += "e"
                break
    if word.endswith("y") and len(word) > 2 and _cv(word)[-2] == "c":
        word = word[:-1] + "i"
    return word


def _step2(word: str) -> str:
    if word.endswith("alli") and _measure(word[:-4]) > 0:
        return _step2(word[:-2])
    if word.endswith("logi"):
        return word[:-1] if _measure(word[:-3]) > 0 else word
    return _first_rule(word, _STEP2, lambda s: _measure(s) > 0)


def _step4(word: str) -> str:
    for suffix in _STEP4:
        if word.endswith(suffix):
            stem = word[: -len(suffix)]
            ok = _measure(stem) > 1 and (suffix != "ion" or stem[-1] in "st")
            return stem if ok else word
    return word


@lru_cache(maxsize=65536)
def porter_stem(word: str) -> str:
    """Porter (1980) stem of a lowercase word, with NLTK's extensions (``PorterStemmer()``'s default).

    rouge-score stems with NLTK's ``PorterStemmer``; this reproduces it without the NLTK dependency.

    >>> [porter_stem(w) for w in ["caresses", "ponies", "dies", "hopping", "relational", "generously", "skies"]]
    ['caress', 'poni', 'die', 'hop', 'relat', 'gener', 'sky']
    """
    word = word.lower()
    if word in _PORTER_IRREGULAR:
        return _PORTER_IRREGULAR[word]
    if len(word) <= 2:
        return word
    word = _step4(_first_rule(_step2(_step1(word)), _STEP3, lambda s: _measure(s) > 0))
    if word.endswith("e"):
        m = _measure(word[:-1])
        if m > 1 or (m == 1 and not _ends_cvc(word[:-1])):
            word = word[:-1]
    if word.endswith("ll") and _measure(word[:-1]) > 1:
        word = word[:-1]
    return word


# --- ROUGE tokens (as rouge-score) ---------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _stem_tokens(tokens: list[str]) -> list[str]:
    # As rouge-score: only tokens longer than 3 characters, and only ASCII words (Porter is English).
    return [porter_stem(t) if len(t) > 3 and t.isascii() and t.isalnum() else t for t in tokens]


def _rouge_tokenize_batch(texts: Sequence[str], language: Language, stemmer: bool) -> list[list[str]]:
    if language == "ko":
        batch = _kiwi_tokens_batch(texts)
    elif language == "en":
        batch = [_NON_ALNUM.sub(" ", t.lower()).split() for t in texts]
    else:
        raise EvaluationError(f"unknown language {language!r}", hint="use 'en' or 'ko'")
    return [_stem_tokens(tokens) if stemmer else tokens for tokens in batch]


def rouge_tokenize(text: str, *, language: Language = "en", stemmer: bool = False) -> list[str]:
    """ROUGE tokens. ``"en"``: rouge-score's tokeniser (lowercase, anything but a-z/0-9 separates
    words, so Hangul and accented letters vanish); ``"ko"``: :func:`kiwi_tokens`. ``stemmer``
    Porter-stems English words longer than 3 letters.

    >>> rouge_tokenize("The cats' 2 naïve owners!", stemmer=True)
    ['the', 'cat', '2', 'na', 've', 'owner']
    >>> rouge_tokenize("고양이가 매트에 앉았다", language="ko")
    ['고양이', '매트', '앉다']
    """
    return _rouge_tokenize_batch([text], language, stemmer)[0]
