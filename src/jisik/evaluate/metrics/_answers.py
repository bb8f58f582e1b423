"""Generated answers: citation accuracy and groundedness in the retrieved contexts."""

from __future__ import annotations

import re
from collections.abc import Sequence

from jisik.errors import EvaluationError
from jisik.evaluate.metrics._common import AnswerStyle, Language, _check_nonempty, _check_same_length
from jisik.evaluate.metrics._qa import normalize_answer
from jisik.evaluate.metrics._tokenize import _kiwi_tokens_batch
from jisik.text.analyzers import ENGLISH_STOPWORDS, KOREAN_STOPWORDS, normalize_text
from jisik.text.sentences import split_sentences_batch


def citation_accuracy(
    cited_texts: Sequence[str], support: str | Sequence[str], *, style: AnswerStyle = "squad"
) -> float:
    """Share of cited chunks whose normalised text contains at least one supporting string.

    Both sides go through :func:`normalize_answer` with ``style``. ``"squad"`` matches whole words
    (``cat`` is not in ``concatenate``); ``"korquad"`` matches any substring, since Korean particles
    glue to the answer (``환불`` is in ``환불은``). No citations score 0.0.

    >>> citation_accuracy(["Returns are accepted within 14 days.", "Shipping is free."], "14 days")
    0.5
    >>> citation_accuracy(["환불은 14일 이내에 가능합니다"], ["14일"], style="korquad")
    1.0
    """
    supports = [normalize_answer(s, style=style) for s in ([support] if isinstance(support, str) else support)]
    supports = [s for s in supports if s]
    if not supports:
        raise EvaluationError("no non-empty supporting string to look for", hint="pass the gold answer text")
    if not cited_texts:
        return 0.0
    texts = [normalize_answer(t, style=style) for t in cited_texts]
    if style == "squad":
        texts, supports = [f" {t} " for t in texts], [f" {s} " for s in supports]
    return sum(1 for t in texts if any(s in t for s in supports)) / len(texts)


_WORD = re.compile(r"[^\W_]+")


def _content_tokens_batch(texts: Sequence[str], language: Language) -> list[set[str]]:
    """Content tokens: Kiwi lexical morphemes minus Korean stopwords (ko), or lowercased words
    minus English stopwords (en)."""
    if language == "ko":
        return [{t for t in tokens if t not in KOREAN_STOPWORDS} for tokens in _kiwi_tokens_batch(texts)]
    if language == "en":
        return [{w for w in _WORD.findall(normalize_text(t).lower()) if w not in ENGLISH_STOPWORDS} for t in texts]
    raise EvaluationError(f"unknown language {language!r}", hint="use 'en' or 'ko'")


def _grounded_flags(
    answers: Sequence[str], contexts_list: Sequence[Sequence[str]], language: Language, threshold: float
) -> list[list[bool]]:
    """Per answer, per sentence with content tokens: whether it is covered ≥ threshold."""
    if not 0.0 <= threshold <= 1.0:
        raise EvaluationError(f"threshold must be in [0, 1], not {threshold}")
    spans = split_sentences_batch(answers)
    sentences = [[a[s:e] for s, e in sp] for a, sp in zip(answers, spans, strict=True)]
    contexts = ["\n".join(c) for c in contexts_list]
    tokens = _content_tokens_batch([s for ss in sentences for s in ss] + contexts, language)
    ctx_tokens = tokens[len(tokens) - len(contexts) :]
    flags, pos = [], 0
    for ss, ctx in zip(sentences, ctx_tokens, strict=True):
        sent_tokens = [t for t in tokens[pos : pos + len(ss)] if t]
        pos += len(ss)
        flags.append([len(t & ctx) / len(t) >= threshold for t in sent_tokens])
    return flags


def groundedness(answer: str, contexts: Sequence[str], *, language: Language = "en", threshold: float = 0.5) -> float:
    """Share of the answer's sentences that the contexts support, by lexical coverage.

    The answer is split into sentences (:func:`jisik.text.sentences.split_sentences`). A sentence's
    content tokens are its distinct Kiwi lexical morphemes minus Korean stopwords (``"ko"``) or its
    distinct lowercased words minus English stopwords (``"en"``); it is grounded when at least
    ``threshold`` of them occur among the content tokens of all contexts together. Sentences with no
    content tokens are not counted; an answer with none scores 1.0 (it claims nothing). A lexical
    proxy: it catches invented facts (names, numbers) but not negations or wrong relations.

    >>> ctx = ["Returns are accepted within 14 days of delivery."]
    >>> groundedness("Returns are accepted within 14 days. Refunds take 3 weeks by cheque.", ctx)
    0.5
    >>> groundedness("환불은 14일 이내에 가능합니다.", ["14일 이내 환불이 가능합니다."], language="ko")
    1.0
    """
    if isinstance(contexts, str):
        contexts = [contexts]
    flags = _grounded_flags([answer], [contexts], language, threshold)[0]
    return sum(flags) / len(flags) if flags else 1.0


def groundedness_rate(
    answers: Sequence[str],
    contexts_list: Sequence[Sequence[str]],
    *,
    language: Language = "en",
    threshold: float = 0.5,
) -> float:
    """Share of answers that are fully grounded (:func:`groundedness` = 1.0); one Kiwi batch for all.

    >>> groundedness_rate(["Returns within 14 days.", "Refunds by cheque."], [["Returns within 14 days."]] * 2)
    0.5
    """
    _check_same_length("answers", answers, "contexts_list", contexts_list)
    _check_nonempty("answers", answers)
    contexts_list = [[c] if isinstance(c, str) else c for c in contexts_list]
    flags = _grounded_flags(answers, contexts_list, language, threshold)
    return sum(1 for f in flags if all(f)) / len(flags)
