"""The extractive answerer: quotes the retrieved sentences that best answer the question, with citations.

It is jisik's default "LLM". It needs no model beyond the embedder the knowledge base already has,
runs offline, and every word it returns is a verbatim quote of a retrieved chunk followed by its
citation marker, so it cannot invent facts. It cannot rephrase, combine or compute either: it
answers "which sentence says it", and says it cannot find the answer when no sentence says it.

Each hit's text is split into sentences (:func:`~jisik.text.sentences.split_sentences_batch`; a
"sentence" longer than ``max_chars`` — a table row, a list without full stops — is cut into windows
at spaces). Every candidate sentence gets four features, each in ``[0, 1]``:

``lexical``
    The share of the question's IDF mass that the sentence contains: question terms come from the
    knowledge base's analyser (Kiwi morphemes for Korean, stems for English), and the IDF is computed
    over this question's candidate sentences, so a term that every candidate shares (the topic)
    counts little and a rare one (the thing asked about) counts much. A question term absent from
    every candidate keeps the largest IDF: when the hits lack what is asked, coverage stays low.
``context``
    The same coverage over the sentence together with the sentence before it in its hit, so that
    "It opened in 1850." can answer "When did the Louvre open?" when the sentence before names it.
``dense``
    The cosine between the question's and the sentence's embeddings (e5 ``query:`` / ``passage:``),
    rescaled from ``[dense_floor, 1]`` to ``[0, 1]`` (see :data:`DENSE_FLOOR`). All candidate
    sentences of a batch are embedded in one call, and vectors are cached by text because the same
    chunks come back for related questions.
``rank``
    The retriever's opinion: ``1 / (1 + rank / 2)`` for the hit's 0-based rank (1, 0.67, 0.5, ...).

They are summed with :class:`ScoreWeights` (0.20 lexical, 0.20 context, 0.50 dense, 0.10 rank; they
add up to 1, so scores are in ``[0, 1]``). When the question asks for an amount or a date
(:func:`~jisik.generate.answer_type.expected_figure`: "how much", "얼마", "언제", "what was the gross
margin"), candidates that hold none and are not sentences (headers, captions, rows of a table of
contents) are scaled down by :data:`FIGURE_PENALTY` (left out, by default) as long as some candidate
holds one: a table row with the figure then outranks a header that only repeats the question's words.
The best sentence is the answer when its score reaches ``min_score`` (0.40); a second sentence is
added when it scores within ``second_margin`` (0.05) of the best and does not repeat it (overlapping
chunks repeat sentences); the sentence right after the best one is allowed. Weights, floor, margin and
threshold were grid-searched on the questions of the first 24 SQuAD v1.1 dev articles (hits from jisik's
hybrid search), checked on the other 24 and on MS MARCO
Korean; ``benchmarks/answer_squad.py`` measures them and ``docs/benchmarks-answer.md`` has the numbers.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from jisik.embed.base import Embedder, Vectors
from jisik.generate.answer_type import expected_figure, has_figure
from jisik.generate.language import NOT_FOUND
from jisik.records import Hit
from jisik.text.analyzers import Analyzer
from jisik.text.furniture import metadata_lines, metadata_shapes, trim_furniture
from jisik.text.sentences import split_sentences_batch, strip_span

__all__ = [
    "DENSE_FLOOR",
    "FIGURE_PENALTY",
    "MIN_SCORE",
    "MIN_SCORE_LEXICAL",
    "QUESTION_WORDS",
    "Candidate",
    "ExtractiveAnswerer",
    "ExtractiveResult",
    "ScoreWeights",
    "SelectedSentence",
    "after_heading_line",
    "candidate_spans",
    "coverage",
    "dense_feature",
    "figure_factors",
    "idf_weights",
    "is_heading",
    "rank_prior",
    "render",
    "window_spans",
]

Span = tuple[int, int]
Features = npt.NDArray[np.float64]

# Interrogatives as the ``ko-en`` analyser emits them. They never appear in the sentence that answers
# (the answer replaces them: 며칠 → 14일, how many → 3), so leaving them in would only lower every
# candidate's coverage. English wh-words are already analyser stopwords; "many"/"much" stem to these.
QUESTION_WORDS: frozenset[str] = frozenset(
    {"며칠", "얼마", "얼마나", "언제", "왜", "몇", "어떻다", "어느", "mani", "much"}
)

# multilingual-e5 squeezes cosines into a narrow band. On SQuAD dev (question vs sentence), sentences that
# hold the answer have median 0.86 (5th percentile 0.78), the other sentences of the same hits 0.80, and
# sentences of unrelated articles 0.78 (95th percentile 0.82). Cosines below the floor count as 0, so the
# dense feature spreads over [0, 1] like the others (0.70-0.80 all gave the same accuracy within 0.2
# points). Other embedders have other bands: pass ``dense_floor`` (e.g. 0.0 for the hashing test
# embedder) and re-tune ``min_score``.
DENSE_FLOOR = 0.75
# Best score below which the answer is "not found". On SQuAD dev with e5 it says "not found" for 6% of
# questions whose real hits are given (two thirds of them would have quoted a wrong sentence anyway) and
# for 88% of questions given the best hits of other articles; 0.35 gives 2% / 75%, 0.45 13% / 94%.
MIN_SCORE = 0.40
# Without an embedder scores are lexical (and rank) only and separate less well: 0.45 gives 11% / 75%
# (0.40: 6% / 58%; 0.50: 18% / 85%).
MIN_SCORE_LEXICAL = 0.45
MAX_CHARS = 400  # longer "sentences" are cut into windows of at most this many characters
SECOND_MARGIN = 0.05  # second sentence in ~17% of answers: +4 points "contains the answer", -0.6 F1
CACHE_SIZE = 8192  # sentence vectors kept (384 float32 each for e5-small: about 12 MiB)
# Share of its score a line loses when the question asks for an amount or a date that the line lacks and other
# candidates hold. Only lines that are not sentences (a header, a caption, a row of a table of contents) are
# cut: a sentence may give the figure in words the tests miss ("in the spring", "a few"). Cutting sentences too
# cost 4.9 points of "answer contains gold" on 1,000 SQuAD questions (75.0% -> 70.1%); lines only, nothing
# (75.1%). 1 takes such lines out: a header shares more rare question words ("Apple", "10-Q") than the row
# with the figure, so a milder cut still lets it win.
FIGURE_PENALTY = 1.0


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    """How much each feature counts; they should add up to 1 so scores stay in ``[0, 1]``.

    Measured as the share of SQuAD dev questions whose best sentence holds the answer (hybrid top-6
    hits): all four 77.9%; dense alone 70.0%, lexical alone 71.0%, lexical + context + rank 74.1%.
    The grid search (steps of 0.1) put most weight on the dense cosine, which recognises paraphrase
    ("how long" ~ "within 14 days") that term overlap misses; dropping lexical costs 1.1 points,
    context 1.3, rank 0.5 (it breaks near-ties in favour of the retriever's first choice).
    """

    lexical: float = 0.20
    context: float = 0.20
    dense: float = 0.50
    rank: float = 0.10

    def as_array(self) -> Features:
        return np.array([self.lexical, self.context, self.dense, self.rank], dtype=np.float64)

    def without_dense(self) -> ScoreWeights:
        """The same weights with ``dense`` removed and the rest scaled back up to the same total.

        >>> ScoreWeights(0.4, 0.1, 0.3, 0.2).without_dense()
        ScoreWeights(lexical=0.5714285714285715, context=0.14285714285714288, dense=0.0, rank=0.28571428571428575)
        """
        total = self.lexical + self.context + self.rank
        scale = (total + self.dense) / total if total else 0.0
        return replace(self, lexical=self.lexical * scale, context=self.context * scale, dense=0.0,
                       rank=self.rank * scale)


@dataclass(frozen=True, slots=True)
class SelectedSentence:
    """One quoted sentence: ``hits[hit_index].text[start:end] == text``; its marker is ``[hit_index + 1]``."""

    hit_index: int
    start: int
    end: int
    text: str
    score: float


@dataclass(slots=True)
class ExtractiveResult:
    """The sentences that answer, in the order they are read; ``found`` is False when none does."""

    sentences: list[SelectedSentence]
    found: bool
    best_score: float


@dataclass(frozen=True, slots=True)
class Candidate:
    """A sentence (or window) of one hit, before scoring; ``ordinal`` counts sentences within the hit."""

    hit_index: int
    ordinal: int
    start: int
    end: int
    text: str


# -- pure helpers -----------------------------------------------------------------------------------


def window_spans(text: str, start: int, end: int, max_chars: int) -> list[Span]:
    """Cut ``text[start:end]`` into stripped pieces of at most ``max_chars``, at line ends or spaces.

    A piece ends at the last line break within the limit when that lies in its second half (a table
    row stays whole, with its label and figures), else at the last space there, otherwise (long words,
    unspaced scripts) exactly at the limit.

    >>> t = "aaa bbb ccc ddd"
    >>> [t[s:e] for s, e in window_spans(t, 0, len(t), 8)]
    ['aaa bbb', 'ccc ddd']
    >>> u = "abcdefghij"
    >>> [u[s:e] for s, e in window_spans(u, 0, len(u), 4)]
    ['abcd', 'efgh', 'ij']
    >>> rows = "Sales $ 1 $ 2\\nTotal cost $ 3 $ 4\\nNet $ 5"
    >>> [rows[s:e] for s, e in window_spans(rows, 0, len(rows), 24)]
    ['Sales $ 1 $ 2', 'Total cost $ 3 $ 4', 'Net $ 5']
    """
    spans: list[Span] = []
    pos = start
    while pos < end:
        limit = pos + max_chars
        if limit >= end:
            cut = end
        else:
            newline = text.rfind("\n", pos + max_chars // 2, limit + 1)
            space = text.rfind(" ", pos + max_chars // 2, limit + 1)
            cut = newline if newline > pos else space if space > pos else limit
        s, e = strip_span(text, pos, cut)
        if s < e:
            spans.append((s, e))
        pos = cut
    return spans


_SENTENCE_END = (".", "?", "!", "。", ":", ";", "다", "요", ")", '"', "”", "’", "」", "』")
HEADING_MAX_CHARS = 80
# What a table row holds and a heading does not: an amount ("1,234,567", "$ 35,885", "43.3 %").
_ROW_FIGURE = re.compile(r"\d{1,3}(?:,\d{3})+|\d+\.\d+\s?%|[$€£¥₩]\s?\d")


def is_heading(text: str, start: int, end: int) -> bool:
    """True for a short line of its own, without closing punctuation or an amount, that more text follows.

    Chunks carry their section's heading ("반품 기간", "Annual leave"); it shares the question's words
    but answers nothing, so it must not be quoted as the answer. A table row ("1. 유형자산 3,210,987,654")
    has the same shape but holds the answer.

    >>> t = "반품 기간\\n\\n상품을 받은 날부터 14일 이내에 반품할 수 있습니다."
    >>> is_heading(t, 0, 5), is_heading(t, 7, len(t))
    (True, False)
    >>> r = "1. 유형자산 3,210,987,654\\n2. 무형자산 456,789,012"
    >>> is_heading(r, 0, 21)
    False
    """
    line = text[start:end]
    if "\n" in line or len(line) > HEADING_MAX_CHARS or line.rstrip().endswith(_SENTENCE_END):
        return False
    if _ROW_FIGURE.search(line):
        return False
    before = text[:start].rstrip(" \t")
    after = text[end:].lstrip(" \t")
    return (not before or before.endswith("\n")) and after.startswith("\n") and bool(after.strip())


def after_heading_line(text: str, start: int, end: int, titles: Iterable[str]) -> int:
    """Where a sentence really starts when its chunk's heading is glued to it by a single newline.

    Only a first line that is one of ``titles`` (the hit's section path and title) or a Markdown
    heading is cut: judging by shape alone would cut hard-wrapped sentences.

    >>> t = "Returns\\nReturns take 14 days."
    >>> t[after_heading_line(t, 0, len(t), {"Returns"}):]
    'Returns take 14 days.'
    >>> w = "The return period is 14 days from the\\ndate of delivery."
    >>> after_heading_line(w, 0, len(w), {"Returns"})
    0
    """
    newline = text.find("\n", start, end)
    if newline == -1:
        return start
    first = text[start:newline].strip()
    rest = strip_span(text, newline, end)
    if first and (first.startswith("#") or first in set(titles)) and rest[0] < rest[1]:
        return rest[0]
    return start


def candidate_spans(texts: Sequence[str], max_chars: int = MAX_CHARS) -> list[list[Span]]:
    """Sentence spans of each text, long sentences windowed, headings left out (one splitter call for all).

    >>> t = "Returns\\n\\nReturns take 14 days. Shipping is free."
    >>> [t[s:e] for s, e in candidate_spans([t])[0]]
    ['Returns take 14 days.', 'Shipping is free.']
    """
    out: list[list[Span]] = []
    for text, spans in zip(texts, split_sentences_batch(texts), strict=True):
        pieces: list[Span] = []
        for s, e in spans:
            if is_heading(text, s, e):
                continue
            pieces.extend(window_spans(text, s, e, max_chars) if e - s > max_chars else [(s, e)])
        out.append(pieces)
    return out


def idf_weights(query_terms: Iterable[str], collection: Sequence[set[str]]) -> dict[str, float]:
    """BM25's IDF, ``log(1 + (N - df + 0.5) / (df + 0.5))``, of each query term over ``collection``.

    Always positive; a term in every text weighs little, an absent one the most.

    >>> w = idf_weights(["return", "day", "refund"], [{"return", "day"}, {"return", "ship"}])
    >>> {t: round(v, 3) for t, v in w.items()}
    {'return': 0.182, 'day': 0.693, 'refund': 1.792}
    """
    n = len(collection)
    weights: dict[str, float] = {}
    for term in query_terms:
        df = sum(1 for terms in collection if term in terms)
        weights[term] = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
    return weights


def coverage(weights: Mapping[str, float], terms: set[str]) -> float:
    """Share of the question's IDF mass found in ``terms`` (0 when the question has no terms).

    >>> coverage({"return": 0.2, "day": 0.7, "refund": 1.6}, {"return", "day"})
    0.36
    """
    total = sum(weights.values())
    if total <= 0.0:
        return 0.0
    return sum(w for t, w in weights.items() if t in terms) / total


def rank_prior(rank: int) -> float:
    """The retriever's vote for its ``rank``-th hit (0-based): ``1 / (1 + rank / 2)``.

    Gentle on purpose: the second hit keeps two thirds, so a clearly better sentence lower down wins.

    >>> [round(rank_prior(r), 2) for r in range(4)]
    [1.0, 0.67, 0.5, 0.4]
    """
    return 1.0 / (1.0 + rank / 2.0)


def dense_feature(cosines: npt.ArrayLike, floor: float = DENSE_FLOOR) -> Features:
    """Cosines rescaled from ``[floor, 1]`` to ``[0, 1]``; below the floor is 0.

    >>> dense_feature([0.6, 0.75, 0.85, 1.0]).round(2).tolist()
    [0.0, 0.0, 0.4, 1.0]
    """
    values = np.asarray(cosines, dtype=np.float64)
    return np.clip((values - floor) / max(1.0 - floor, 1e-9), 0.0, 1.0)


def figure_factors(question: str, texts: Sequence[str], penalty: float = FIGURE_PENALTY) -> Features:
    """Score multipliers: ``1 - penalty`` for lines (not sentences) without the figure the question asks for.

    All 1 when the question asks for no figure, or when no text holds one.

    >>> texts = ["수수료는 3,000원이다.", "반품 수수료 안내", "반품은 무료다."]
    >>> figure_factors("반품 수수료는 얼마인가요?", texts).tolist()
    [1.0, 0.0, 1.0]
    >>> figure_factors("반품 수수료는 얼마인가요?", ["반품 수수료 안내"]).tolist()
    [1.0]
    >>> figure_factors("Who runs the shop?", ["Kim runs it."]).tolist()
    [1.0]
    """
    kind = expected_figure(question)
    if kind is None or penalty <= 0.0:
        return np.ones(len(texts), dtype=np.float64)
    holds = np.array([has_figure(t, kind) for t in texts], dtype=bool)
    if not holds.any():
        return np.ones(len(texts), dtype=np.float64)
    lines = np.array([not t.rstrip().endswith(_SENTENCE_END) for t in texts], dtype=bool)
    return np.where(~holds & lines, 1.0 - penalty, 1.0)


def _same_place(a: Candidate, b: Candidate, hits: Sequence[Hit]) -> bool:
    """Whether two candidates quote the same text: identical words, or overlapping spans of one document."""
    if " ".join(a.text.split()) == " ".join(b.text.split()):
        return True
    ha, hb = hits[a.hit_index], hits[b.hit_index]
    if ha.doc_id != hb.doc_id:
        return False
    return ha.start + a.start < hb.start + b.end and hb.start + b.start < ha.start + a.end


def select(candidates: Sequence[Candidate], scores: Sequence[float], hits: Sequence[Hit], *,
           max_sentences: int, margin: float) -> list[int]:
    """Indices of the chosen candidates: the best, then others within ``margin`` of it, no repeats.

    Ties go to the earlier candidate (higher-ranked hit, earlier sentence), so the choice is
    deterministic. The chosen are returned in reading order: document order when they come from the
    same document, otherwise best first.
    """
    if not candidates:
        return []
    order = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
    best = scores[order[0]]
    chosen = [order[0]]
    for i in order[1:]:
        if len(chosen) >= max_sentences or scores[i] < best - margin:
            break
        if not any(_same_place(candidates[i], candidates[j], hits) for j in chosen):
            chosen.append(i)
    if len({hits[candidates[i].hit_index].doc_id for i in chosen}) == 1:
        chosen.sort(key=lambda i: (hits[candidates[i].hit_index].start + candidates[i].start))
    return chosen


def render(result: ExtractiveResult, language: str) -> str:
    """The answer text: each sentence followed by its marker ``[hit_index + 1]``, or the not-found message.

    >>> s = [SelectedSentence(0, 0, 21, "Returns take 14 days.", 0.8),
    ...      SelectedSentence(2, 5, 22, "Shipping is free.", 0.7)]
    >>> render(ExtractiveResult(s, True, 0.8), "en")
    'Returns take 14 days. [1] Shipping is free. [3]'
    >>> render(ExtractiveResult([], False, 0.1), "ko")
    '문서에서 답을 찾을 수 없습니다.'
    """
    if not result.found or not result.sentences:
        return NOT_FOUND.get(language, NOT_FOUND["en"])
    return " ".join(f"{s.text} [{s.hit_index + 1}]" for s in result.sentences)


# -- the answerer -----------------------------------------------------------------------------------


class _VectorCache:
    """A bounded, thread-safe LRU of sentence vectors keyed by text."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, embedder: Embedder, texts: Sequence[str]) -> Vectors:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._data))
        fresh = embedder.embed_documents(missing) if missing else None
        out = np.empty((len(texts), embedder.dim), dtype=np.float32)
        with self._lock:
            found = dict(zip(missing, fresh, strict=True)) if fresh is not None else {}
            for row, text in enumerate(texts):
                vector = found.get(text)
                if vector is None:
                    vector = self._data[text]
                    self._data.move_to_end(text)
                out[row] = vector
            if self._size > 0:
                for text, vector in found.items():
                    self._data[text] = vector
                while len(self._data) > self._size:
                    self._data.popitem(last=False)
        return out


class ExtractiveAnswerer:
    """Answers by quoting the best sentences of the hits, each followed by its citation marker.

    ``embedder`` may be None: scoring is then lexical (and rank) only, with the weights scaled up.
    ``min_score`` defaults to :data:`MIN_SCORE` with an embedder and :data:`MIN_SCORE_LEXICAL` without.
    """

    def __init__(self, embedder: Embedder | None, analyzer: Analyzer, *, max_sentences: int = 2,
                 min_score: float | None = None, weights: ScoreWeights | None = None,
                 dense_floor: float = DENSE_FLOOR, second_margin: float = SECOND_MARGIN,
                 max_chars: int = MAX_CHARS, cache_size: int = CACHE_SIZE,
                 figure_penalty: float = FIGURE_PENALTY) -> None:
        if max_sentences < 1:
            raise ValueError("max_sentences must be at least 1")
        self.embedder = embedder
        self.analyzer = analyzer
        self.max_sentences = max_sentences
        if min_score is None:
            min_score = MIN_SCORE if embedder is not None else MIN_SCORE_LEXICAL
        self.min_score = min_score
        weights = weights or ScoreWeights()
        self.weights = weights if embedder is not None else weights.without_dense()
        self.dense_floor = dense_floor
        self.second_margin = second_margin
        self.max_chars = max_chars
        self.figure_penalty = figure_penalty
        self._cache = _VectorCache(cache_size)

    def answer(self, question: str, hits: Sequence[Hit]) -> ExtractiveResult:
        """``answer_batch([question], [hits])[0]``."""
        return self.answer_batch([question], [hits])[0]

    def answer_batch(self, questions: Sequence[str], hits: Sequence[Sequence[Hit]]) -> list[ExtractiveResult]:
        """One result per question; ``hits[i]`` are the retrieved chunks for ``questions[i]``, best first."""
        weights = self.weights.as_array()
        results = []
        for question, question_hits, (candidates, features) in zip(questions, hits,
                                                                    self.features_batch(questions, hits), strict=True):
            factors = figure_factors(question, [c.text for c in candidates], self.figure_penalty)
            scores = ((features @ weights) * factors).tolist() if candidates else []
            results.append(self._result(candidates, scores, question_hits))
        return results

    def _result(self, candidates: list[Candidate], scores: list[float], hits: Sequence[Hit]) -> ExtractiveResult:
        chosen = select(candidates, scores, hits, max_sentences=self.max_sentences, margin=self.second_margin)
        best = max(scores, default=0.0)
        if not chosen or best < self.min_score:
            return ExtractiveResult([], False, best)
        sentences = [
            SelectedSentence(candidates[i].hit_index, candidates[i].start, candidates[i].end, candidates[i].text,
                             scores[i])
            for i in chosen
        ]
        return ExtractiveResult(sentences, True, best)

    def features_batch(self, questions: Sequence[str],
                       hits: Sequence[Sequence[Hit]]) -> list[tuple[list[Candidate], Features]]:
        """Candidates of each question and their feature rows ``[lexical, context, dense, rank]``.

        Public so benchmarks can tune :class:`ScoreWeights` without re-embedding; one analyser call,
        one sentence-splitter call and at most two embedder calls serve the whole batch.
        """
        if len(questions) != len(hits):
            raise ValueError(f"{len(questions)} questions but {len(hits)} hit lists")
        flat_hits = [hit for question_hits in hits for hit in question_hits]
        spans = candidate_spans([hit.text for hit in flat_hits], self.max_chars)
        per_question: list[list[Candidate]] = []
        pos = 0
        for question_hits in hits:
            candidates = []
            for hit_index, hit in enumerate(question_hits):
                titles = {part.strip() for part in (hit.section or "").split(" > ")} | {hit.title or ""}
                furniture = metadata_shapes(hit.metadata)  # running headers the loader found: never quoted
                for ordinal, (s, e) in enumerate(spans[pos + hit_index]):
                    if hit.text[s:e].strip().lstrip("#").strip() in titles:  # a title alone answers nothing
                        continue
                    s = after_heading_line(hit.text, s, e, titles)
                    if furniture:
                        s, e = trim_furniture(hit.text, s, e, furniture)
                        if s >= e:
                            continue
                    candidates.append(Candidate(hit_index, ordinal, s, e, hit.text[s:e]))
            per_question.append(candidates)
            pos += len(question_hits)
        all_texts = [c.text for candidates in per_question for c in candidates]
        # The chunk's own heading ("반품 기간") belongs to every sentence under it: it joins the context. So does
        # the running header of its document ("Apple Inc. | Q3 2022 Form 10-Q"), which names what the question
        # names to pick the document ("Apple", "10-Q") and which no sentence repeats.
        headings = ["\n".join([(hit.section or "").rsplit(" > ", 1)[-1], *metadata_lines(hit.metadata)])
                    for hit in flat_hits]
        analyzed = self.analyzer.analyze_batch([*questions, *all_texts, *headings])
        n_q, n_s = len(questions), len(all_texts)
        question_terms, sentence_terms = analyzed[:n_q], analyzed[n_q : n_q + n_s]
        heading_terms = [set(t) for t in analyzed[n_q + n_s :]]
        dense = self._cosines(questions, per_question, all_texts)
        out: list[tuple[list[Candidate], Features]] = []
        offset = hit_offset = 0
        for q_terms, candidates, cosines, question_hits in zip(question_terms, per_question, dense, hits,
                                                               strict=True):
            terms = [set(t) for t in sentence_terms[offset : offset + len(candidates)]]
            sections = [heading_terms[hit_offset + c.hit_index] for c in candidates]
            offset += len(candidates)
            hit_offset += len(question_hits)
            out.append((candidates, self._features(q_terms, candidates, terms, cosines, sections)))
        return out

    def _cosines(self, questions: Sequence[str], per_question: Sequence[Sequence[Candidate]],
                 all_texts: Sequence[str]) -> list[Features]:
        """Cosine of every candidate with its question (zeros without an embedder)."""
        sizes = [len(c) for c in per_question]
        if self.embedder is None or not all_texts:
            return [np.zeros(n) for n in sizes]
        asked = [q for q, n in zip(questions, sizes, strict=True) if n]
        q_vectors = iter(self.embedder.embed_queries(asked))
        s_vectors = self._cache.embed(self.embedder, all_texts)
        out: list[Features] = []
        offset = 0
        for n in sizes:
            if n:
                out.append((s_vectors[offset : offset + n] @ next(q_vectors)).astype(np.float64))
            else:
                out.append(np.zeros(0))
            offset += n
        return out

    def _features(self, question_terms: Sequence[str], candidates: Sequence[Candidate],
                  terms: Sequence[set[str]], cosines: Features, sections: Sequence[set[str]] = ()) -> Features:
        asked = [t for t in dict.fromkeys(question_terms) if t not in QUESTION_WORDS]
        idf = idf_weights(asked, terms)
        features = np.zeros((len(candidates), 4), dtype=np.float64)
        for row, candidate in enumerate(candidates):
            before = candidates[row - 1] if row else None
            adjacent = before is not None and before.hit_index == candidate.hit_index \
                and before.ordinal == candidate.ordinal - 1
            previous = terms[row - 1] if adjacent else set()
            heading = sections[row] if sections else set()
            features[row, 0] = coverage(idf, terms[row])
            features[row, 1] = coverage(idf, terms[row] | previous | heading)
            features[row, 3] = rank_prior(candidate.hit_index)
        if len(candidates):
            features[:, 2] = dense_feature(cosines, self.dense_floor)
            # A sentence in another language than the question shares none of its terms: judged on meaning
            from jisik.generate.crosslingual import cross_language_features  # imported here: it imports us

            features = cross_language_features(features, question_terms, candidates, cosines, self.dense_floor)
        return features
