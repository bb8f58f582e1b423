"""Evaluation metrics against reference implementations.

BLEU against sacrebleu, ROUGE and the Porter stemmer against rouge-score / NLTK, EM/F1 against the
official SQuAD v1.1 and KorQuAD v1 scripts (their logic is written out below as the reference),
P/R/F1 against scikit-learn, nDCG/MAP/MRR/P/R against trec_eval (pytrec_eval) and scikit-learn.
Each reference check runs on a corpus built in this file; SQuAD v1.1 dev adds a larger real-data
check when ../shared/data is present. Reference packages that are not installed skip their test.
"""

from __future__ import annotations

import functools
import json
import math
import random
import re
import string
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jisik.errors import EvaluationError
from jisik.evaluate.metrics import (
    PRF,
    average_precision,
    bootstrap_ci,
    citation_accuracy,
    classification_scores,
    corpus_bleu,
    exact_match,
    from_confusion,
    groundedness,
    groundedness_rate,
    hit_at_k,
    kiwi_tokens,
    ndcg_at_k,
    normalize_answer,
    paired_bootstrap,
    per_label_scores,
    porter_stem,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    retrieval_scores,
    rouge,
    rouge_corpus,
    rouge_tokenize,
    sentence_bleu,
    token_f1,
    tokenize_13a,
)
from tests.conftest import shared_data

# --- test corpora ------------------------------------------------------------------------------

# Varied English: numbers, decimals, hyphens, quotes, abbreviations, HTML entities, brackets.
SENTENCES = [
    "The cat is on the mat.",
    "Returns are accepted within 14 days of delivery, provided the item is unused.",
    "In 2019, the company's revenue grew by 3.5% to $1,250 million.",
    "Dr. Smith said: \"It's too early to tell,\" and left the room.",
    "The 1990-1995 period saw rapid growth in e-commerce (especially in the U.S.).",
    "Please contact support@example.com or call 555-0100 for help!",
    "Which NFL team represented the AFC at Super Bowl 50?",
    "Where did Super Bowl 50 take place?",
    "The Denver Broncos defeated the Carolina Panthers 24-10 to earn their third title.",
    "Tesla &amp; Edison disagreed about AC &lt;-&gt; DC power distribution.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "He ran, jumped, and swam; then he rested for 2.5 hours.",
    "What is the capital of France? Paris is the capital of France.",
    "Users can't reset their passwords without verifying their e-mail first.",
    "The quick brown fox jumps over the lazy dog.",
    "Generalization improves when models are regularized and trained on diverse data.",
    "She was relational, conditional, and rational about the hopefulness of the operation.",
    "Connecting, connected, connection, connections: all share one stem.",
    "The universities' communities organized international conferences in 2021/2022.",
    "Normal text with    irregular   spacing\tand a tab.",
    "Prices: 10,000 won, 3.50 dollars, and 1.2.3 versions -- oh my.",
    "Running runners run; the happiest happiness happens happily.",
    "A [bracketed] {braced} <angled> `ticked` ~tilde~ ^caret^ |pipe| text.",
    "Generously, the skies were dying to be lying and tying news of innings.",
]
REPLACEMENTS = ["the", "a", "cat", "dog", "data", "2019", "Paris", "is", ",", ".", "run", "company", "growth"]


def perturb(text: str, rng: random.Random) -> str:
    """A plausible system output: words dropped, swapped, replaced or repeated, case changed."""
    words = text.split()
    out: list[str] = []
    for word in words:
        roll = rng.random()
        if roll < 0.08:
            continue
        if roll < 0.16:
            out.append(rng.choice(REPLACEMENTS))
        elif roll < 0.2:
            out.extend([word, word])
        elif roll < 0.24:
            out.append(word.lower() if word[0].isupper() else word.capitalize())
        else:
            out.append(word)
    if len(out) > 2 and rng.random() < 0.3:
        i = rng.randrange(len(out) - 1)
        out[i], out[i + 1] = out[i + 1], out[i]
    return " ".join(out)


def english_pairs(n_variants: int = 4, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = [(perturb(s, rng), s) for s in SENTENCES for _ in range(n_variants)]
    pairs += [(s, s) for s in SENTENCES[:5]]  # identical
    pairs += [("", SENTENCES[0]), (SENTENCES[1], "!!!"), ("zzz qqq", SENTENCES[2])]  # empty and disjoint
    return pairs


@functools.cache
def _squad_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def squad_dev() -> Any:
    return _squad_json(shared_data("squad_v1.1_dev", "dev-v1.1.json"))


def squad_questions(limit: int = 3000) -> list[str]:
    data = squad_dev()
    out = [qa["question"] for art in data["data"] for par in art["paragraphs"] for qa in par["qas"]]
    return out[:limit]


def squad_contexts(limit: int = 600) -> list[str]:
    data = squad_dev()
    return [par["context"] for art in data["data"] for par in art["paragraphs"]][:limit]


# --- BLEU ----------------------------------------------------------------------------------------


SACRE_SMOOTH = {"none": "none", "add1": "add-k", "floor": "floor", "exp": "exp"}


def _sacrebleu() -> Any:
    return pytest.importorskip("sacrebleu")


def test_bleu_textbook_example() -> None:
    s = sentence_bleu("the cat is on mat", ["the cat is on the mat"])
    assert s.precisions == pytest.approx([1.0, 0.75, 2 / 3, 0.5])
    assert s.brevity_penalty == pytest.approx(math.exp(1 - 6 / 5))
    assert s.score == pytest.approx(math.exp(1 - 6 / 5) * (1 * 0.75 * 2 / 3 * 0.5) ** 0.25)
    assert round(s.score, 3) == 0.579
    assert (s.hyp_len, s.ref_len, s.counts, s.totals) == (5, 6, [5, 3, 2, 1], [5, 4, 3, 2])


@pytest.mark.parametrize("smoothing", ["none", "add1", "floor", "exp"])
def test_corpus_bleu_matches_sacrebleu(smoothing: str) -> None:
    sb = _sacrebleu()
    pairs = english_pairs()
    cands, refs = [c for c, _ in pairs], [r for _, r in pairs]
    ours = corpus_bleu(cands, [[r] for r in refs], smoothing=smoothing)  # type: ignore[arg-type]
    theirs = sb.corpus_bleu(cands, [refs], smooth_method=SACRE_SMOOTH[smoothing])
    assert abs(ours.score * 100 - theirs.score) < 0.01
    assert ours.score * 100 == pytest.approx(theirs.score, abs=1e-9)
    # sacrebleu reports add-k's counts after adding k; ours are the raw counts.
    k = 1 if smoothing == "add1" else 0
    assert (ours.hyp_len, ours.ref_len, ours.counts[0], ours.totals[0]) == (
        theirs.sys_len, theirs.ref_len, theirs.counts[0], theirs.totals[0],
    )
    assert [c + k for c in ours.counts[1:]] == theirs.counts[1:]
    assert [t + k for t in ours.totals[1:]] == theirs.totals[1:]
    assert [p * 100 for p in ours.precisions] == pytest.approx(theirs.precisions)


def test_corpus_bleu_multi_reference_and_max_n() -> None:
    sb = _sacrebleu()
    rng = random.Random(1)
    cands = [perturb(s, rng) for s in SENTENCES]
    refs_a = [perturb(s, rng) for s in SENTENCES]
    refs_b = [perturb(s, rng) for s in SENTENCES]
    ours = corpus_bleu(cands, [[a, b] for a, b in zip(refs_a, refs_b, strict=True)])
    theirs = sb.corpus_bleu(cands, [refs_a, refs_b])
    assert ours.score * 100 == pytest.approx(theirs.score, abs=1e-9)
    assert ours.ref_len == theirs.ref_len
    for max_n in (1, 2, 3, 6):
        ours_n = corpus_bleu(cands, [[r] for r in refs_a], max_n=max_n)
        theirs_n = sb.BLEU(max_ngram_order=max_n).corpus_score(cands, [refs_a])
        assert ours_n.score * 100 == pytest.approx(theirs_n.score, abs=1e-9)


@pytest.mark.parametrize("smoothing", ["none", "add1", "floor", "exp"])
def test_sentence_bleu_matches_sacrebleu_smoothing(smoothing: str) -> None:
    sb = _sacrebleu()
    pairs = [*english_pairs(seed=2), ("Paris", "Paris"), ("the cat", "the cat sat"), ("a b c", "a b d")]
    for cand, ref in pairs:
        ours = sentence_bleu(cand, [ref], smoothing=smoothing)  # type: ignore[arg-type]
        theirs = sb.sentence_bleu(cand, [ref], smooth_method=SACRE_SMOOTH[smoothing], use_effective_order=True)
        assert ours.score * 100 == pytest.approx(theirs.score, abs=1e-9), (cand, ref)
        assert ours.brevity_penalty == pytest.approx(theirs.bp)


def test_corpus_bleu_matches_sacrebleu_on_squad_questions() -> None:
    sb = _sacrebleu()
    questions = squad_questions()
    rng = random.Random(3)
    cands = [perturb(q, rng) for q in questions]
    ours = corpus_bleu(cands, [[q] for q in questions])
    theirs = sb.corpus_bleu(cands, [questions])
    assert abs(ours.score * 100 - theirs.score) < 0.01
    assert ours.score * 100 == pytest.approx(theirs.score, abs=1e-9)
    ours_exp = corpus_bleu(cands, [[q] for q in questions], smoothing="exp")
    assert ours_exp.score * 100 == pytest.approx(sb.corpus_bleu(cands, [questions], smooth_method="exp").score)


def test_tokenize_13a_matches_sacrebleu_on_sentences() -> None:
    tok = pytest.importorskip("sacrebleu.tokenizers.tokenizer_13a").Tokenizer13a()
    for text in [*SENTENCES, "a-\nb", "end with dash-\n", "<skipped> x", "&quot;q&quot; 1.5. 2,3,a", "x.y,z"]:
        assert tokenize_13a(text) == tok(text.rstrip()).split(), text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*"ab1 .,-'\"&;<>$()/\n9_", "&quot;", "&amp;", "&lt;", "&gt;", "<skipped>", "é"])))
def test_tokenize_13a_matches_sacrebleu_property(parts: list[str]) -> None:
    tok = pytest.importorskip("sacrebleu.tokenizers.tokenizer_13a").Tokenizer13a()
    text = "".join(parts)
    assert tokenize_13a(text) == tok(text.rstrip()).split()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["the", "cat", "sat", "on", "mat", "a", "1", ",", "."]), min_size=1, max_size=12))
def test_bleu_properties(words: list[str]) -> None:
    text = " ".join(words)
    assert sentence_bleu(text, [text]).score == pytest.approx(1.0)
    other = " ".join(reversed(words))
    for smoothing in ("none", "add1", "floor", "exp"):
        s = sentence_bleu(other, [text, "a cat"], smoothing=smoothing)
        assert 0.0 <= s.score <= 1.0
        assert all(0.0 <= p <= 1.0 for p in s.precisions)


def test_bleu_edge_cases_and_errors() -> None:
    assert sentence_bleu("", ["the cat"]).score == 0.0
    assert sentence_bleu("dog", ["the cat"]).score == 0.0
    # Without effective order a 2-token match has no 3- or 4-grams: standard corpus BLEU is 0.
    assert corpus_bleu(["the cat"], [["the cat"]]).score == 0.0
    assert corpus_bleu(["the cat"], [["the cat"]], effective_order=True).score == pytest.approx(1.0)
    assert sentence_bleu("the cat", ["the  cat"], tokenize=str.split).score == pytest.approx(1.0)
    with pytest.raises(EvaluationError):
        corpus_bleu(["a"], [["a"], ["b"]])
    with pytest.raises(EvaluationError):
        corpus_bleu(["a"], [[]])
    with pytest.raises(EvaluationError):
        corpus_bleu(["a"], ["a"])  # a bare string is not a list of references
    with pytest.raises(EvaluationError):
        sentence_bleu("a", "a")
    with pytest.raises(EvaluationError):
        sentence_bleu("a", ["a"], max_n=0)
    with pytest.raises(EvaluationError):
        sentence_bleu("a", ["a"], smoothing="add-k")  # type: ignore[arg-type]
    with pytest.raises(EvaluationError):
        corpus_bleu([], [])


def test_bleu_korean_with_kiwi_tokens() -> None:
    tok: Callable[[str], list[str]] = lambda t: kiwi_tokens(t, lexical=False)  # noqa: E731
    s = sentence_bleu("환불은 14일 이내에 가능합니다", ["환불은 14일 이내에 가능합니다"], tokenize=tok)
    assert s.score == pytest.approx(1.0)
    assert sentence_bleu("환불이 가능합니다", ["환불은 가능합니다"], tokenize=tok).precisions[0] > 0.5


# --- Porter stemmer and ROUGE -----------------------------------------------------------------------

STEM_WORDS = " ".join((
    "caresses ponies ties caress cats feed agreed plastered bled motoring sing conflated troubled sized hopping "
    "tanned falling hissing fizzed failing filing happy sky relational conditional rational valenci hesitanci "
    "digitizer conformabli radicalli differentli vileli analogousli vietnamization predication operator feudalism "
    "decisiveness hopefulness callousness formaliti sensitiviti sensibiliti triplicate formative formalize "
    "electriciti electrical hopeful goodness revival allowance inference airliner gyroscopic adjustable defensible "
    "irritant replacement adjustment dependent adoption homologou communism activate angulariti homologous "
    "effective bowdlerize probate rate cease controll roll generously skies dying lying tying news innings outings "
    "cannings howe proceed exceed succeed dies spied died spy fly try enjoy enjoyment archaeology geology theology "
    "fruitfulli typically yyyy syzygy toy by y ay eye played cowboys days technology monday replay 1990s covid19 "
    "agreement abate aaa bbb is as at a oats trees ivy troubles private oaten orrery",
)).split()


def test_porter_stem_matches_nltk() -> None:
    porter = pytest.importorskip("nltk.stem.porter")
    nltk_stem = porter.PorterStemmer().stem
    words = list(STEM_WORDS)
    for text in SENTENCES:
        words += re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
    mismatches = [(w, porter_stem(w), nltk_stem(w)) for w in words if porter_stem(w) != nltk_stem(w)]
    assert not mismatches


def test_porter_stem_matches_nltk_on_squad_vocabulary() -> None:
    porter = pytest.importorskip("nltk.stem.porter")
    nltk_stem = porter.PorterStemmer().stem
    vocab = {w for c in squad_contexts(limit=10_000) for w in re.sub(r"[^a-z0-9]+", " ", c.lower()).split()}
    mismatches = [(w, porter_stem(w), nltk_stem(w)) for w in sorted(vocab) if porter_stem(w) != nltk_stem(w)]
    assert len(vocab) > 10_000
    assert not mismatches[:20]


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="aeiouybcdglmnstzrw", min_size=1, max_size=14))
def test_porter_stem_matches_nltk_property(word: str) -> None:
    porter = pytest.importorskip("nltk.stem.porter")
    assert porter_stem(word) == porter.PorterStemmer().stem(word)


ROUGE_TYPES = ["rouge1", "rouge2", "rouge3", "rougeL", "rougeLsum"]


def _assert_rouge_equal(ours: dict[str, PRF], theirs: dict[str, Any], label: object) -> None:
    for key, score in theirs.items():
        got = ours[key]
        assert got.precision == pytest.approx(score.precision, abs=1e-9), (key, label)
        assert got.recall == pytest.approx(score.recall, abs=1e-9), (key, label)
        assert got.f1 == pytest.approx(score.fmeasure, abs=1e-9), (key, label)


@pytest.mark.parametrize("stemmer", [False, True])
def test_rouge_matches_rouge_score(stemmer: bool) -> None:
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(ROUGE_TYPES, use_stemmer=stemmer)
    pairs = english_pairs(seed=4)
    rng = random.Random(5)
    # Multi-line texts so that rougeLsum's summary-level LCS has several sentences on each side.
    for _ in range(30):
        ref_lines = rng.sample(SENTENCES, 3)
        pairs.append(("\n".join(perturb(s, rng) for s in rng.sample(ref_lines, 2)), "\n".join(ref_lines)))
    for cand, ref in pairs:
        _assert_rouge_equal(rouge(cand, ref, types=ROUGE_TYPES, stemmer=stemmer), scorer.score(ref, cand), (cand, ref))


def test_rouge_corpus_matches_mean_of_rouge_score() -> None:
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    pairs = english_pairs(seed=6)
    ours = rouge_corpus([c for c, _ in pairs], [r for _, r in pairs], types=["rouge1", "rougeL"], stemmer=True)
    theirs = [scorer.score(r, c) for c, r in pairs]
    for key in ("rouge1", "rougeL"):
        assert ours[key].precision == pytest.approx(np.mean([t[key].precision for t in theirs]), abs=1e-12)
        assert ours[key].recall == pytest.approx(np.mean([t[key].recall for t in theirs]), abs=1e-12)
        assert ours[key].f1 == pytest.approx(np.mean([t[key].fmeasure for t in theirs]), abs=1e-12)


def test_rouge_matches_rouge_score_on_squad_contexts() -> None:
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    rng = random.Random(7)
    for context in squad_contexts(limit=150):
        cand = perturb(context, rng)
        _assert_rouge_equal(rouge(cand, context, stemmer=True), scorer.score(context, cand), context[:40])


def test_rouge_worked_example() -> None:
    r = rouge("the cat sat mat", "the cat sat on the mat")
    assert r["rouge1"] == PRF(1.0, 4 / 6, 0.8)
    assert r["rouge2"].precision == pytest.approx(2 / 3) and r["rouge2"].recall == pytest.approx(2 / 5)
    assert r["rougeL"].recall == pytest.approx(4 / 6)


def test_rouge_korean_uses_morphemes_not_whitespace() -> None:
    cand, ref = "환불은 14일 이내에 가능합니다", "환불이 가능해요"
    assert not set(cand.split()) & set(ref.split())  # 환불은 ≠ 환불이, 가능합니다 ≠ 가능해요
    assert rouge(cand, ref, language="en")["rouge1"].f1 == 0.0  # the English tokeniser drops Hangul
    ko = rouge(cand, ref, language="ko")["rouge1"]
    assert rouge_tokenize(ref, language="ko") == ["환불", "가능"]
    assert ko.recall == 1.0 and ko.precision == pytest.approx(2 / 5)
    corpus = rouge_corpus([cand, "배송은 무료입니다"], [ref, "배송비는 무료예요"], types=["rouge1"], language="ko")
    assert 0 < corpus["rouge1"].f1 < 1


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(["the", "cat", "Cats", "sat", "on", "mat", "a", "1", "."]), max_size=10),
    st.lists(st.sampled_from(["the", "cat", "sitting", "on", "mat", "dog", "1"]), max_size=10),
)
def test_rouge_properties(a_words: list[str], b_words: list[str]) -> None:
    a, b = " ".join(a_words), " ".join(b_words)
    ab, ba = rouge(a, b, types=ROUGE_TYPES), rouge(b, a, types=ROUGE_TYPES)
    for key in ROUGE_TYPES:
        assert ab[key].precision == pytest.approx(ba[key].recall)
        assert ab[key].f1 == pytest.approx(ba[key].f1)
        assert all(0.0 <= v <= 1.0 for v in (ab[key].precision, ab[key].recall, ab[key].f1))
    if rouge_tokenize(a):
        assert rouge(a, a)["rouge1"] == PRF(1.0, 1.0, 1.0)


def test_whitespace_rouge_score_misses_korean_matches() -> None:
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

    class Whitespace:
        def tokenize(self, text: str) -> list[str]:
            return text.split()

    cand, ref = "환불은 14일 이내에 가능합니다", "환불이 가능해요"
    whitespace = rouge_scorer.RougeScorer(["rouge1", "rougeL"], tokenizer=Whitespace()).score(ref, cand)
    assert whitespace["rouge1"].fmeasure == whitespace["rougeL"].fmeasure == 0.0
    ours = rouge(cand, ref, types=["rouge1", "rougeL"], language="ko")
    assert ours["rouge1"].f1 > 0.5 and ours["rougeL"].f1 > 0.5


def test_rouge_errors() -> None:
    with pytest.raises(EvaluationError):
        rouge("a", "b", types=["rouge0"])
    with pytest.raises(EvaluationError):
        rouge("a", "b", types="rouge1")
    with pytest.raises(EvaluationError):
        rouge("a", "b", language="fr")  # type: ignore[arg-type]
    with pytest.raises(EvaluationError):
        rouge_corpus(["a"], ["a", "b"])
    with pytest.raises(EvaluationError):
        rouge_corpus([], [])


# --- classification ---------------------------------------------------------------------------


def test_from_confusion_worked_example_and_zero_division() -> None:
    s = from_confusion(40, 50, 5, 5)
    assert (s.accuracy, s.support) == (0.9, 45)
    assert s.precision == pytest.approx(40 / 45) and s.recall == pytest.approx(40 / 45)
    assert s.f1 == pytest.approx(40 / 45)
    assert from_confusion(0, 0, 0, 0) == from_confusion(0, 0, 0, 0).__class__(0.0, 0.0, 0.0, 0.0, 0)
    assert from_confusion(0, 3, 2, 0).precision == 0.0
    with pytest.raises(EvaluationError):
        from_confusion(-1, 0, 0, 0)


def test_classification_hand_computed() -> None:
    y_true = ["a", "a", "b", "c", "c", "c"]
    y_pred = ["a", "b", "b", "c", "a", "c"]
    macro = classification_scores(y_true, y_pred)
    # a: P 1/2 R 1/2; b: P 1/2 R 1; c: P 1 R 2/3.
    assert macro.precision == pytest.approx((0.5 + 0.5 + 1) / 3)
    assert macro.recall == pytest.approx((0.5 + 1 + 2 / 3) / 3)
    assert macro.f1 == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    micro = classification_scores(y_true, y_pred, average="micro")
    assert micro.precision == micro.recall == micro.f1 == micro.accuracy == pytest.approx(4 / 6)
    assert classification_scores(y_true, y_pred, average="binary", positive="c").recall == pytest.approx(2 / 3)
    assert per_label_scores(y_true, y_pred)["c"].support == 3


@pytest.mark.parametrize("seed", range(5))
def test_classification_matches_sklearn(seed: int) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(seed)
    labels = ["x", "y", "z", "w"][: 2 + seed % 3]
    y_true = [rng.choice(labels) for _ in range(60)]
    y_pred = [t if rng.random() < 0.6 else rng.choice(labels) for t in y_true]
    for average in ("macro", "micro"):
        ours = classification_scores(y_true, y_pred, average=average)
        p, r, f, _ = metrics.precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
        assert (ours.precision, ours.recall, ours.f1) == pytest.approx((p, r, f))
        assert ours.accuracy == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    per = per_label_scores(y_true, y_pred)
    p, r, f, support = metrics.precision_recall_fscore_support(y_true, y_pred, labels=list(per), zero_division=0)
    assert [s.precision for s in per.values()] == pytest.approx(list(p))
    assert [s.recall for s in per.values()] == pytest.approx(list(r))
    assert [s.f1 for s in per.values()] == pytest.approx(list(f))
    assert [s.support for s in per.values()] == list(support)
    bin_true = [int(t == labels[0]) for t in y_true]
    bin_pred = [int(p == labels[0]) for p in y_pred]
    ours_bin = classification_scores(bin_true, bin_pred, average="binary")
    p, r, f, _ = metrics.precision_recall_fscore_support(bin_true, bin_pred, average="binary", zero_division=0)
    assert (ours_bin.precision, ours_bin.recall, ours_bin.f1) == pytest.approx((p, r, f))


def test_classification_errors() -> None:
    with pytest.raises(EvaluationError):
        classification_scores([1, 0], [1])
    with pytest.raises(EvaluationError):
        classification_scores([], [])
    with pytest.raises(EvaluationError):
        classification_scores(["a", "b"], ["a", "a"], average="binary")  # no positive label given
    with pytest.raises(EvaluationError):
        classification_scores([1, 0], [1, 1], positive=1)  # positive needs average="binary"
    with pytest.raises(EvaluationError):
        classification_scores([1, 0], [1, 1], average="weighted")  # type: ignore[arg-type]


# --- QA: reference implementations of the official scripts ----------------------------------------


def squad_v11_normalize(s: str) -> str:
    """SQuAD v1.1 evaluate script: lower, drop punctuation, drop articles, fix whitespace."""
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_v11_f1(prediction: str, ground_truth: str) -> float:
    pred, gold = squad_v11_normalize(prediction).split(), squad_v11_normalize(ground_truth).split()
    num_same = sum((Counter(pred) & Counter(gold)).values())
    if num_same == 0:
        return 0
    precision, recall = num_same / len(pred), num_same / len(gold)
    return (2 * precision * recall) / (precision + recall)


def korquad_v1_normalize(s: str) -> str:
    """KorQuAD v1.0 evaluate script: the listed symbols → space, then lower, drop punctuation, fix whitespace."""
    for symbol in ["'", '"', "《", "》", "<", ">", "〈", "〉", "(", ")", "‘", "’"]:
        s = s.replace(symbol, " ")
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    return " ".join(s.split())


def korquad_v1_f1(prediction: str, ground_truth: str) -> float:
    """KorQuAD v1.0 evaluate script: F1 over the characters of the whitespace tokens."""
    pred_chars = [ch for tok in korquad_v1_normalize(prediction).split() for ch in tok]
    gold_chars = [ch for tok in korquad_v1_normalize(ground_truth).split() for ch in tok]
    num_same = sum((Counter(pred_chars) & Counter(gold_chars)).values())
    if num_same == 0:
        return 0
    precision, recall = num_same / len(pred_chars), num_same / len(gold_chars)
    return (2 * precision * recall) / (precision + recall)


def max_over(metric: Callable[[str, str], float], prediction: str, golds: list[str]) -> float:
    return max(metric(prediction, g) for g in golds)


KOREAN_QA = [
    ("《걸리버 여행기》", ["걸리버 여행기"]),
    ("덴버 브롱코스가", ["덴버 브롱코스", "브롱코스"]),
    ("1876년(고종 13년)", ["1876년"]),
    ("‘제31호’", ["태정관령 제31호"]),
    ("<어린 왕자>", ["〈어린 왕자〉"]),
    ("\"세종대왕\"", ["세종 대왕"]),
    ("약 3.5%", ["3.5%", "약 3.5 퍼센트"]),
    ("The Beatles", ["the beatles", "비틀즈"]),
    ("", ["서울"]),
    ("부산", ["서울"]),
    ("KorQuAD 1.0!", ["korquad 1.0"]),
    ("삼성전자(주)", ["삼성전자"]),
]
ENGLISH_QA = [
    ("the Denver Broncos", ["Denver Broncos"]),
    ("Broncos, Denver", ["Denver Broncos", "Broncos"]),
    ("Santa Clara, California", ["Levi's Stadium", "Santa Clara, California"]),
    ("an apple a day", ["apple"]),
    ("", ["x"]),
    ("Theory of relativity", ["the theory"]),
    ("3.5%", ["3.5 %"]),
    ("U.S.A.", ["USA"]),
]


def test_squad_em_f1_match_official_script() -> None:
    for pred, golds in ENGLISH_QA + KOREAN_QA:
        assert normalize_answer(pred) == squad_v11_normalize(pred)
        assert exact_match(pred, golds) == max_over(
            lambda p, g: float(squad_v11_normalize(p) == squad_v11_normalize(g)), pred, golds
        )
        assert token_f1(pred, golds) == pytest.approx(max_over(squad_v11_f1, pred, golds))


def test_korquad_em_f1_match_official_script() -> None:
    for pred, golds in KOREAN_QA + ENGLISH_QA:
        assert normalize_answer(pred, style="korquad") == korquad_v1_normalize(pred)
        expected_em = max_over(lambda p, g: float(korquad_v1_normalize(p) == korquad_v1_normalize(g)), pred, golds)
        assert exact_match(pred, golds, style="korquad") == expected_em
        assert token_f1(pred, golds, style="korquad") == pytest.approx(max_over(korquad_v1_f1, pred, golds))
    # Character F1 gives partial credit where a particle is attached; word F1 gives none.
    assert token_f1("브롱코스가", ["브롱코스"], style="korquad") == pytest.approx(8 / 9)
    assert token_f1("브롱코스가", ["브롱코스"]) == 0.0


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="가나다 ab A.,'\"()《》〈〉<>‘’-the an", max_size=20),
    st.text(alphabet="가나다 ab A.,'\"()《》〈〉<>‘’-the an", max_size=20),
)
def test_qa_metrics_match_official_scripts_property(pred: str, gold: str) -> None:
    assert normalize_answer(pred) == squad_v11_normalize(pred)
    assert normalize_answer(pred, style="korquad") == korquad_v1_normalize(pred)
    assert token_f1(pred, [gold]) == pytest.approx(squad_v11_f1(pred, gold))
    assert token_f1(pred, [gold], style="korquad") == pytest.approx(korquad_v1_f1(pred, gold))
    assert 0.0 <= token_f1(pred, [gold]) <= 1.0


def test_squad_dev_em_f1_match_official_script() -> None:
    data = squad_dev()
    rng = random.Random(8)
    checked = 0
    for art in data["data"][:10]:
        for par in art["paragraphs"]:
            for qa in par["qas"]:
                golds = [a["text"] for a in qa["answers"]]
                pred = perturb(rng.choice(golds), rng) if rng.random() < 0.7 else rng.choice(golds)
                assert exact_match(pred, golds) == max_over(
                    lambda p, g: float(squad_v11_normalize(p) == squad_v11_normalize(g)), pred, golds
                )
                assert token_f1(pred, golds) == pytest.approx(max_over(squad_v11_f1, pred, golds))
                checked += 1
    assert checked > 1000


def test_qa_errors_and_single_string_gold() -> None:
    assert exact_match("Paris", "paris") == 1.0
    with pytest.raises(EvaluationError):
        exact_match("a", [])
    with pytest.raises(EvaluationError):
        token_f1("a", ["a"], style="trivia")  # type: ignore[arg-type]


# --- retrieval ----------------------------------------------------------------------------------


def test_retrieval_hand_worked() -> None:
    run = ["d3", "d1", "d7", "d1", "d9"]
    rel = {"d1", "d9", "d4"}
    assert hit_at_k(run, rel, 1) == 0.0 and hit_at_k(run, rel, 2) == 1.0
    # The repeated d1 counts once: distinct ranking d3 d1 d7 d9.
    assert recall_at_k(run, rel, 4) == pytest.approx(2 / 3)
    assert precision_at_k(run, rel, 4) == 0.5
    assert precision_at_k(run, rel, 10) == 0.2
    assert reciprocal_rank(run, rel) == 0.5
    assert average_precision(run, rel) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert average_precision(run, rel, k=2) == pytest.approx((1 / 2) / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(run, rel, 5) == pytest.approx(dcg / ideal)
    graded = {"d1": 2, "d9": 1, "d4": 3, "d3": 0}
    assert ndcg_at_k(run, graded, 2) == pytest.approx((2 / math.log2(3)) / (3 + 2 / math.log2(3)))
    assert recall_at_k(run, graded, 2) == pytest.approx(1 / 3)  # grade 0 is not relevant
    assert recall_at_k([1, 2], set(), 2) == ndcg_at_k([1, 2], set(), 2) == average_precision([1, 2], set()) == 0.0
    assert ndcg_at_k([5, 6, 7], [6, 7], 3) == pytest.approx(
        (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    )


def _random_runs(seed: int, graded: bool) -> tuple[list[list[str]], list[dict[str, int]]]:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(40)]
    runs, qrels = [], []
    for _ in range(30):
        judged = rng.sample(docs, rng.randint(1, 8))
        qrels.append({d: (rng.randint(1, 3) if graded else 1) for d in judged})
        runs.append(rng.sample(docs, rng.randint(0, 25)))
    return runs, qrels


@pytest.mark.parametrize("graded", [False, True])
def test_retrieval_matches_trec_eval(graded: bool) -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    runs, qrels = _random_runs(9 + graded, graded)
    ks = (1, 3, 5, 10)
    measures = {"map", "recip_rank", *(f"{m}.{','.join(map(str, ks))}" for m in ("P", "recall", "ndcg_cut"))}
    evaluator = pytrec_eval.RelevanceEvaluator({str(i): q for i, q in enumerate(qrels)}, measures)
    # Distinct descending scores keep our rank order (trec_eval sorts by score).
    results = evaluator.evaluate(
        {str(i): {d: float(len(run) - r) for r, d in enumerate(run)} for i, run in enumerate(runs)}
    )
    for i, (run, rel) in enumerate(zip(runs, qrels, strict=True)):
        ref = results.get(str(i), {})
        for k in ks:
            assert precision_at_k(run, rel, k) == pytest.approx(ref.get(f"P_{k}", 0.0))
            assert recall_at_k(run, rel, k) == pytest.approx(ref.get(f"recall_{k}", 0.0))
            assert ndcg_at_k(run, rel, k) == pytest.approx(ref.get(f"ndcg_cut_{k}", 0.0))
        assert reciprocal_rank(run, rel) == pytest.approx(ref.get("recip_rank", 0.0))
        assert average_precision(run, rel) == pytest.approx(ref.get("map", 0.0))


def test_ndcg_matches_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    runs, qrels = _random_runs(11, graded=True)
    docs = [f"d{i}" for i in range(40)]
    for run, rel in zip(runs, qrels, strict=True):
        if len(run) < 2:
            continue
        # sklearn scores every document; put the unretrieved ones after the run.
        order = run + [d for d in docs if d not in run]
        scores = [[len(order) - order.index(d) for d in docs]]
        truth = [[rel.get(d, 0) for d in docs]]
        for k in (1, 3, 5, 10):
            assert ndcg_at_k(order, rel, k) == pytest.approx(metrics.ndcg_score(truth, scores, k=k))


def test_retrieval_scores_averages_and_errors() -> None:
    runs, qrels = _random_runs(12, graded=False)
    scores = retrieval_scores(runs, [set(q) for q in qrels], ks=(1, 5))
    assert set(scores) == {f"{m}@{k}" for m in ("hit", "recall", "precision", "ndcg") for k in (1, 5)} | {"mrr", "map"}
    pairs = list(zip(runs, qrels, strict=True))
    assert scores["recall@5"] == pytest.approx(np.mean([recall_at_k(r, q, 5) for r, q in pairs]))
    assert scores["mrr"] == pytest.approx(np.mean([reciprocal_rank(r, q) for r, q in pairs]))
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert retrieval_scores([[1, 2]], [{2: 3.0}], ks=[2])["ndcg@2"] == pytest.approx(1 / math.log2(3))
    with pytest.raises(EvaluationError):
        retrieval_scores([[1]], [{1}, {2}])
    with pytest.raises(EvaluationError):
        retrieval_scores([[1]], [set()])
    with pytest.raises(EvaluationError):
        retrieval_scores([[1]], [{1}], ks=[0])
    with pytest.raises(EvaluationError):
        retrieval_scores([], [])
    with pytest.raises(EvaluationError):
        hit_at_k([1], {1}, 0)
    with pytest.raises(EvaluationError):
        ndcg_at_k([1], {1: -1.0}, 1)
    with pytest.raises(EvaluationError):
        recall_at_k(["d1"], "d1", 1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 15), max_size=20),
    st.sets(st.integers(0, 15), max_size=6),
    st.integers(1, 12),
)
def test_retrieval_properties(run: list[int], rel: set[int], k: int) -> None:
    values = [
        hit_at_k(run, rel, k), recall_at_k(run, rel, k), precision_at_k(run, rel, k),
        reciprocal_rank(run, rel, k), ndcg_at_k(run, rel, k), average_precision(run, rel, k),
    ]
    assert all(0.0 <= v <= 1.0 + 1e-12 for v in values)
    assert hit_at_k(run, rel, k) >= recall_at_k(run, rel, k) - 1e-12
    assert recall_at_k(run, rel, k) <= recall_at_k(run, rel, k + 1)
    if rel and list(dict.fromkeys(run))[: len(rel)] and set(list(dict.fromkeys(run))[: len(rel)]) == rel:
        assert ndcg_at_k(run, rel, len(rel)) == pytest.approx(1.0)


# --- answers ----------------------------------------------------------------------------------------


def test_citation_accuracy() -> None:
    chunks = ["Returns are accepted within 14 days.", "The cat concatenated strings.", "Shipping is free."]
    assert citation_accuracy(chunks, "14 days") == pytest.approx(1 / 3)
    assert citation_accuracy(chunks, ["cat", "free"]) == pytest.approx(2 / 3)  # "cat" ≠ "concatenated"
    assert citation_accuracy(chunks, "The 14 Days!") == pytest.approx(1 / 3)  # normalised like the answer
    assert citation_accuracy([], "x") == 0.0
    ko = ["환불은 14일 이내에 가능합니다.", "배송비는 무료입니다."]
    assert citation_accuracy(ko, "환불", style="korquad") == 0.5
    assert citation_accuracy(ko, "환불", style="squad") == 0.0  # whole words: 환불은 is one word
    with pytest.raises(EvaluationError):
        citation_accuracy(chunks, ["", "!!"])


def test_groundedness_english_and_korean() -> None:
    ctx = ["Returns are accepted within 14 days of delivery.", "Refunds go back to the original card."]
    assert groundedness("Returns are accepted within 14 days.", ctx) == 1.0
    assert groundedness("Returns are accepted within 14 days. Refunds are paid in gold bars.", ctx) == 0.5
    assert groundedness("Refunds are paid in gold bars.", ctx, threshold=0.2) == 1.0  # refunds: 1 of 4 words
    assert groundedness("", ctx) == 1.0
    assert groundedness("Returns within 14 days.", "Returns within 14 days.") == 1.0  # one context as a string
    ko_ctx = ["환불이 14일 이내에 가능합니다.", "배송은 3일이 걸립니다."]
    answer = "환불은 14일 이내에 가능합니다. 교환은 30일 안에 현금으로 됩니다."
    assert groundedness(answer, ko_ctx, language="ko") == 0.5
    # Whole words miss the match because of the particle (환불은 vs 환불이); morphemes find it.
    assert groundedness("환불은 가능합니다.", ["환불이 가능합니다."], language="en", threshold=1.0) == 0.0
    assert groundedness("환불은 가능합니다.", ["환불이 가능합니다."], language="ko", threshold=1.0) == 1.0
    with pytest.raises(EvaluationError):
        groundedness("x", ctx, threshold=1.5)
    with pytest.raises(EvaluationError):
        groundedness("x", ctx, language="fr")  # type: ignore[arg-type]


def test_groundedness_rate() -> None:
    answers = ["Returns are accepted within 14 days.", "Returns within 14 days. Paid in gold bars.", "환불 가능"]
    contexts = [["Returns are accepted within 14 days."]] * 2 + [["환불이 가능합니다"]]
    assert groundedness_rate(answers, contexts) == pytest.approx(1 / 3)
    assert groundedness_rate(answers, contexts, language="ko") == pytest.approx(2 / 3)
    with pytest.raises(EvaluationError):
        groundedness_rate(answers, contexts[:1])
    with pytest.raises(EvaluationError):
        groundedness_rate([], [])


# --- bootstrap ------------------------------------------------------------------------------------


def test_bootstrap_ci_matches_scipy_percentile() -> None:
    stats = pytest.importorskip("scipy.stats")
    values = list(np.random.default_rng(0).normal(0.6, 0.2, size=300))
    mean, low, high = bootstrap_ci(values, resamples=5000)
    ref = stats.bootstrap((values,), np.mean, confidence_level=0.95, n_resamples=5000, method="percentile",
                          random_state=1).confidence_interval
    assert mean == pytest.approx(float(np.mean(values)))
    assert low == pytest.approx(ref.low, abs=0.005) and high == pytest.approx(ref.high, abs=0.005)
    # And the normal approximation: mean ± 1.96 standard errors.
    se = float(np.std(values) / math.sqrt(len(values)))
    assert low == pytest.approx(mean - 1.96 * se, abs=0.006) and high == pytest.approx(mean + 1.96 * se, abs=0.006)


def test_bootstrap_ci_properties_and_errors() -> None:
    values = [0.0, 1.0, 1.0, 0.5, 0.25] * 20
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    mean, low, high = bootstrap_ci(values)
    assert low <= mean <= high
    _, low90, high90 = bootstrap_ci(values, confidence=0.9)
    assert high90 - low90 < high - low
    assert bootstrap_ci([0.4]) == (0.4, 0.4, 0.4)
    big = bootstrap_ci(list(np.linspace(0, 1, 50_000)), resamples=200)  # resampled in chunks
    assert big[1] < 0.5 < big[2]
    diff, dlow, dhigh = paired_bootstrap([0.9, 0.8, 0.7, 0.9] * 10, [0.5, 0.6, 0.4, 0.5] * 10)
    assert diff == pytest.approx(0.325) and 0 < dlow <= diff <= dhigh
    with pytest.raises(EvaluationError):
        bootstrap_ci([])
    with pytest.raises(EvaluationError):
        bootstrap_ci([1.0], confidence=1.0)
    with pytest.raises(EvaluationError):
        bootstrap_ci([1.0], resamples=0)
    with pytest.raises(EvaluationError):
        bootstrap_ci([float("nan")])
    with pytest.raises(EvaluationError):
        paired_bootstrap([1.0], [1.0, 2.0])
