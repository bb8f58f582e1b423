"""Gold references resolved against the documents of a knowledge base, and the checks run before any work.

A question's gold is given the way its dataset knows it; :class:`GoldIndex` turns each reference into
:class:`GoldItem` s, the things retrieval must find, each satisfied by a hit on any of its documents:

- a **gold doc id** names one document: the document with that id; else one whose id ends in
  ``/<gold>`` (the same path with a shorter folder prefix); else a CSV/JSONL record whose own id
  it is, see :func:`record_key` (only when the knowledge base gives rows their own ids with
  ``[loaders] id_field``; otherwise the ``#`` part is a row number, not a user's id). Ids that name
  several documents (two files with a record ``7``) are satisfied by any of them, and reported.
- a **gold source** (a path, a base name or a glob, see :func:`source_matches`) with an optional
  ``#page=N`` suffix (1-based, as jisik's citations): a path or base name is one item; a glob stands
  for every file it matches, one item per file, so ``*AAPL*`` over five filings asks for all five
  and recall@k is the share of them retrieved. Files, not documents: the rows of one CSV are one file.

Record ids are matched through the document id's structure rather than metadata because the store
does not list document metadata, and because it works on knowledge bases ingested before this code:
the tabular loader builds ``<file>#<id>`` and the file part always ends in the file's base name,
whatever folder prefix makes it unique.

:func:`preflight` refuses a dataset that cannot be evaluated as asked (nothing to measure, gold that
names no document of the knowledge base to be) before anything is ingested, embedded or searched.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from jisik.errors import EvaluationError

if TYPE_CHECKING:
    from jisik.evaluate.datasets import EvalDataset, EvalExample

__all__ = [
    "CITES_GOLD_DOCUMENT",
    "CITES_GOLD_PAGE",
    "CONTAINS_ANSWER",
    "GoldIndex",
    "GoldItem",
    "MissingGold",
    "Resolution",
    "check_gold",
    "check_usable",
    "citation_basis",
    "describe_matching",
    "gold_citation_accuracy",
    "missing_gold_error",
    "preflight",
    "record_key",
    "source_matches",
    "split_page",
]

MAX_EXAMPLES = 5
CITES_GOLD_DOCUMENT = "gold document"
CITES_GOLD_PAGE = "gold page"
CONTAINS_ANSWER = "reference answer"

_GLOB_CHARS = frozenset("*?[")
_PAGE = re.compile(r"#page=(\d+)$")


# --- matching one reference ----------------------------------------------------------------------------


def is_glob(gold: str) -> bool:
    """
    >>> is_glob("*2023 Q3 AAPL*"), is_glob("policies/returns.md")
    (True, False)
    """
    return bool(_GLOB_CHARS.intersection(gold))


def source_matches(source: str, gold: str) -> bool:
    """Whether a hit's ``source`` is the gold source ``gold`` (a path, a base name or a glob).

    A gold path matches the source itself or any source ending in ``/<gold>``; a name without a
    folder matches the base name; a glob is tried against the source and its base name.

    >>> source_matches("docs/policies/returns.md", "policies/returns.md")
    True
    >>> source_matches("docs/policies/returns.md", "returns.md"), source_matches("docs/old-returns.md", "returns.md")
    (True, False)
    >>> source_matches("sec10q/2023 Q3 AAPL.pdf", "*2023 Q3 AAPL*"), source_matches("x/2023 Q3 MSFT.pdf", "*AAPL*")
    (True, False)
    """
    source = source.replace("\\", "/")
    gold = gold.replace("\\", "/").strip()
    if not gold:
        return False
    base = PurePosixPath(source).name
    if is_glob(gold):
        return (fnmatch.fnmatchcase(source, gold) or fnmatch.fnmatchcase(base, gold)
                or fnmatch.fnmatchcase(source, "*/" + gold))
    gold = gold[2:] if gold.startswith("./") else gold
    return source == gold or source.endswith("/" + gold) or ("/" not in gold and base == gold)


def split_page(gold: str) -> tuple[str, int | None]:
    """A gold source and its page, from the ``#page=N`` suffix (the PDF fragment convention, 1-based).

    >>> split_page("2023 Q3 AAPL.pdf#page=12"), split_page("returns.md")
    (('2023 Q3 AAPL.pdf', 12), ('returns.md', None))
    """
    match = _PAGE.search(gold)
    if match is None:
        return gold, None
    return gold[: match.start()], int(match.group(1))


def record_key(doc_id: str, source: str) -> str | None:
    """The record's own id in the id of a CSV/TSV/JSONL row document (``<file>#<id>``), else None.

    The file part is found by the source's base name followed by ``#`` at a path boundary, so a longer
    (or shorter) folder prefix in the id than in the source does not matter, and the id may hold ``#``.

    >>> record_key("ko/corpus.jsonl#p0001", "ko/corpus.jsonl"), record_key("x/ko/corpus.jsonl#p1", "ko/corpus.jsonl")
    ('p0001', 'p1')
    >>> record_key("Super_Bowl_50#0", "Super_Bowl_50#0"), record_key("docs/a.md", "docs/a.md")
    (None, None)
    """
    marker = PurePosixPath(source.replace("\\", "/")).name + "#"
    if marker == "#" or doc_id == source:
        return None
    start = 0
    while (at := doc_id.find(marker, start)) != -1:
        if at == 0 or doc_id[at - 1] == "/":
            key = doc_id[at + len(marker):]
            return key or None
        start = at + 1
    return None


def _base_name(path: str) -> str:
    """
    >>> _base_name("./policies/returns.md "), _base_name("returns.md")
    ('returns.md', 'returns.md')
    """
    return PurePosixPath(path.replace("\\", "/").strip()).name


def _path_tails(doc_id: str, key: str | None) -> list[str]:
    """Shorter path forms of a document id: each drops one more leading folder (never inside a record id).

    >>> _path_tails("x/ko/corpus.jsonl#a/b", "a/b"), _path_tails("docs/a.md", None)
    (['ko/corpus.jsonl#a/b', 'corpus.jsonl#a/b'], ['a.md'])
    """
    path = doc_id if key is None else doc_id[: len(doc_id) - len(key) - 1]
    suffix = "" if key is None else "#" + key
    parts = path.split("/")
    return [("/".join(parts[i:]) + suffix) for i in range(1, len(parts))]


# --- gold items --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoldItem:
    """One thing a question must retrieve: satisfied by a hit on any of ``doc_ids`` (on ``page``, when set).

    ``key`` names it in rankings and reports: the gold as given, or, for a glob, the file it matched;
    ``reference`` is the reference it comes from, as :class:`MissingGold` names it (``source '*AAPL*'``).
    """

    key: str
    doc_ids: frozenset[str]
    page: int | None = None
    grade: float = 1.0
    reference: str = ""

    def satisfied_by(self, doc_id: str, page: int | None) -> bool:
        """
        >>> item = GoldItem("a.pdf#page=2", frozenset({"a.pdf"}), page=2)
        >>> item.satisfied_by("a.pdf", 2), item.satisfied_by("a.pdf", 3), item.satisfied_by("b.pdf", 2)
        (True, False, False)
        """
        return doc_id in self.doc_ids and (self.page is None or page == self.page)


@dataclass(slots=True)
class Resolution:
    """A question's gold items, the references that name nothing (``"doc id 'x'"``, ``"source 'y'"``),
    and how ids were matched: ``by_record`` pairs a gold id with the record it named by its own id,
    ``ambiguous`` a gold id with the several documents it names; ``globs`` counts files per glob."""

    items: list[GoldItem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    by_record: list[tuple[str, str]] = field(default_factory=list)
    ambiguous: list[tuple[str, list[str]]] = field(default_factory=list)
    globs: list[int] = field(default_factory=list)


class GoldIndex:
    """The ``(doc_id, source)`` of every document of a knowledge base, indexed to resolve gold references.

    ``record_ids``: match gold ids to CSV/JSONL records by their own id. Pass False when the knowledge
    base was ingested without ``[loaders] id_field``: the ``#`` part is then a row number, and gold ``7``
    meant for a missing document must not silently match row 7 of some CSV.

    >>> index = GoldIndex([("x/ko/corpus.jsonl#p1", "ko/corpus.jsonl"), ("docs/a.md", "docs/a.md")])
    >>> index.doc_ids_for_id("p1"), index.doc_ids_for_id("ko/corpus.jsonl#p1"), index.doc_ids_for_id("zz")
    (['x/ko/corpus.jsonl#p1'], ['x/ko/corpus.jsonl#p1'], [])
    >>> [item.key for item in index.resolve_sources(["*.md"])[0]]
    ['docs/a.md']
    """

    def __init__(self, documents: Iterable[tuple[str, str]], *, record_ids: bool = True) -> None:
        self._source_of: dict[str, str] = {}
        self._by_source: dict[str, list[str]] = {}
        self._by_tail: dict[str, list[str]] = {}
        self._by_key: dict[str, list[str]] = {}
        self._by_base: dict[str, list[str]] = {}
        for doc_id, source in documents:
            if doc_id in self._source_of:
                continue
            self._source_of[doc_id] = source
            if source not in self._by_source:
                self._by_base.setdefault(_base_name(source), []).append(source)
            self._by_source.setdefault(source, []).append(doc_id)
            key = record_key(doc_id, source)
            if key is not None and record_ids:
                self._by_key.setdefault(key, []).append(doc_id)
            for tail in _path_tails(doc_id, key):
                self._by_tail.setdefault(tail, []).append(doc_id)
        self._source_cache: dict[str, list[str]] = {}

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._source_of

    def __len__(self) -> int:
        return len(self._source_of)

    def _lookup(self, gold: str) -> tuple[list[str], str]:
        """The documents a gold id names and the rule that found them: exact, then path tail, then record id."""
        if gold in self._source_of:
            return [gold], "id"
        if gold in self._by_tail:
            return self._by_tail[gold], "path"
        return self._by_key.get(gold, []), "record"

    def doc_ids_for_id(self, gold: str) -> list[str]:
        return self._lookup(gold)[0]

    def sources_for(self, gold: str) -> list[str]:
        """The sources (files) a gold source names; cached, since many questions share one glob."""
        if gold not in self._source_cache:
            # A path or base name can only match sources of the same base name: no scan of every source.
            candidates = self._by_source if is_glob(gold) else self._by_base.get(_base_name(gold), [])
            self._source_cache[gold] = ([gold] if gold in self._by_source else
                                        [s for s in candidates if source_matches(s, gold)])
        return self._source_cache[gold]

    def resolve_sources(self, gold_sources: Sequence[str],
                        skip: Collection[str] = ()) -> tuple[list[GoldItem], list[str], list[int]]:
        """Items, missing references and files per glob for gold sources (``skip``: references to drop)."""
        items: list[GoldItem] = []
        missing: list[str] = []
        globs: list[int] = []
        for raw in gold_sources:
            reference = f"source '{raw}'"
            if reference in skip:
                continue
            pattern, page = split_page(raw)
            sources = self.sources_for(pattern)
            if not sources:
                missing.append(reference)
            elif is_glob(pattern):
                globs.append(len(sources))
                items += [GoldItem(s if page is None else f"{s}#page={page}", frozenset(self._by_source[s]), page,
                                   reference=reference) for s in sources]
            else:
                doc_ids = frozenset(d for s in sources for d in self._by_source[s])
                items.append(GoldItem(raw, doc_ids, page, reference=reference))
        return items, missing, globs

    def resolve(self, example: EvalExample, skip: Collection[str] = ()) -> Resolution:
        """The gold items of ``example``; references in ``skip`` (as :class:`MissingGold` names them) are
        dropped. Items naming the same documents (and page) as an earlier one are left out."""
        out = Resolution()
        for gold in example.gold_doc_ids:
            reference = f"doc id '{gold}'"
            if reference in skip:
                continue
            doc_ids, rule = self._lookup(gold)
            if not doc_ids:
                out.missing.append(reference)
                continue
            if rule == "record":
                out.by_record.append((gold, doc_ids[0]))
            if len(doc_ids) > 1:
                out.ambiguous.append((gold, doc_ids))
            out.items.append(GoldItem(gold, frozenset(doc_ids), None, example.relevance.get(gold, 1.0), reference))
        items, missing, out.globs = self.resolve_sources(example.gold_sources, skip)
        out.items += items
        out.missing += missing
        seen: set[tuple[frozenset[str], int | None]] = set()
        keys: set[str] = set()
        unique: list[GoldItem] = []
        for item in out.items:
            if (item.doc_ids, item.page) in seen or item.key in keys:
                continue  # e.g. a gold id and a gold source naming the same file: one thing to find
            seen.add((item.doc_ids, item.page))
            keys.add(item.key)
            unique.append(item)
        out.items = unique
        return out


def describe_matching(resolutions: Sequence[Resolution]) -> list[str]:
    """Report notes on gold that was not matched one to one by exact id, so the numbers can be read right.

    >>> for note in describe_matching([Resolution(by_record=[("p1", "ko/corpus.jsonl#p1")], globs=[5, 1])]):
    ...     print(note)
    1 gold id(s) matched a CSV/JSONL record by its own id (id_field), e.g. 'p1' → ko/corpus.jsonl#p1
    2 glob gold source(s) stand for every file they match (3.0 on average): recall@k is the share of those files found
    """
    notes: list[str] = []
    by_record = [pair for r in resolutions for pair in r.by_record]
    if by_record:
        gold, doc_id = by_record[0]
        notes.append(f"{len(by_record)} gold id(s) matched a CSV/JSONL record by its own id (id_field), "
                     f"e.g. '{gold}' → {doc_id}")
    ambiguous = [pair for r in resolutions for pair in r.ambiguous]
    if ambiguous:
        gold, doc_ids = ambiguous[0]
        shown = ", ".join(doc_ids[:3]) + (" …" if len(doc_ids) > 3 else "")
        notes.append(f"{len(ambiguous)} gold id(s) name several documents, e.g. '{gold}' → {shown}; a hit on any "
                     "of them counts")
    globs = [n for r in resolutions for n in r.globs]
    if any(n > 1 for n in globs):
        notes.append(f"{len(globs)} glob gold source(s) stand for every file they match ({sum(globs) / len(globs):.1f} "
                     "on average): recall@k is the share of those files found")
    return notes


# --- missing gold --------------------------------------------------------------------------------------


@dataclass(slots=True)
class MissingGold:
    """Gold references that name no document in the knowledge base.

    ``count`` counts references (a question with two missing gold ids adds 2); ``examples`` shows the
    first few as ``"<qid>: <gold>"``; ``by_question`` maps each affected question to its missing golds;
    ``unscorable`` lists the questions none of whose gold is present.
    """

    count: int = 0
    examples: list[str] = field(default_factory=list)
    by_question: dict[str, list[str]] = field(default_factory=dict)
    unscorable: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, qid: str, absent: Sequence[str], *, scorable: bool = True) -> None:
        """Record the missing references of one question (merged with earlier ones of the same question)."""
        merged = self.by_question.setdefault(qid, [])
        for item in absent:
            if item in merged:
                continue
            merged.append(item)
            self.count += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(f"{qid}: {item}")
        if not scorable and qid not in self.unscorable:
            self.unscorable.append(qid)

    def describe(self) -> str:
        shown = "; ".join(self.examples)
        more = f" (and {self.count - len(self.examples)} more)" if self.count > len(self.examples) else ""
        return (f"{self.count} gold reference(s) in {len(self.by_question)} question(s) are not in the "
                f"knowledge base, e.g. {shown}{more}")


def check_gold(dataset: EvalDataset, documents: GoldIndex | Iterable[tuple[str, str]]) -> MissingGold:
    """The gold references of ``dataset`` that name no document; ``documents`` are ``(doc_id, source)``.

    >>> from jisik.evaluate.datasets import EvalDataset, EvalExample
    >>> ds = EvalDataset("t", [EvalExample("q1", "?", gold_doc_ids=["a", "zz"]), EvalExample("q2", "?",
    ...                  gold_sources=["*.md"])])
    >>> missing = check_gold(ds, [("a", "a"), ("docs/b.txt", "docs/b.txt")])
    >>> missing.count, missing.examples, missing.unscorable
    (2, ["q1: doc id 'zz'", "q2: source '*.md'"], ['q2'])
    """
    index = documents if isinstance(documents, GoldIndex) else GoldIndex(documents)
    missing = MissingGold()
    for example in dataset.examples:
        resolution = index.resolve(example)
        if resolution.missing:
            missing.add(example.qid, resolution.missing, scorable=bool(resolution.items))
    return missing


def missing_gold_error(missing: MissingGold, dataset: EvalDataset, index: GoldIndex) -> EvaluationError:
    """The error that stops a run over missing gold, with the way out that fits (its corpus, the ids, the flag)."""
    corpus = dataset.corpus or []
    corpus_absent = any(d.doc_id not in index for d in corpus)
    start = (f"the dataset has a corpus of {len(corpus)} documents: add it with --ingest-corpus, or "
             if corpus_absent else "ingest the documents the dataset refers to, ")
    return EvaluationError(missing.describe(),
                           hint=start + "fix the gold ids, or pass --allow-missing-gold to evaluate anyway")


# --- before any work -----------------------------------------------------------------------------------


def check_usable(dataset: EvalDataset, *, answers: bool) -> None:
    """Refuse a dataset with nothing to measure: no reference answer for ``answers``, no gold for retrieval.

    >>> from jisik.evaluate.datasets import EvalDataset, EvalExample
    >>> try:
    ...     check_usable(EvalDataset("t", [EvalExample("q1", "?", gold_doc_ids=["a"])]), answers=True)
    ... except EvaluationError as exc:
    ...     print(exc.message)
    --answers needs reference answers, but no question in 't' has one
    """
    if not dataset.examples:
        raise EvaluationError(f"dataset '{dataset.name}' holds no questions", hint="add questions to the dataset")
    if answers and not dataset.with_answers:
        raise EvaluationError(
            f"--answers needs reference answers, but no question in '{dataset.name}' has one",
            hint="add 'answers' (a string or a list) to the questions — in a BEIR folder, to queries.jsonl — "
                 "or drop --answers")
    if not answers and not dataset.with_gold:
        raise EvaluationError(
            f"no question in '{dataset.name}' names a gold document, so retrieval cannot be scored",
            hint="its questions have reference answers: evaluate them with --answers" if dataset.with_answers else
            "add gold_doc_ids or gold_sources to the questions (or answers, and evaluate them with --answers)")


def preflight(dataset: EvalDataset, documents: Iterable[tuple[str, str]], *, answers: bool,
              allow_missing_gold: bool = False, record_ids: bool = True) -> MissingGold:
    """Refuse, before anything is ingested or searched, a dataset that cannot be evaluated as asked.

    ``documents`` are the ``(doc_id, source)`` the knowledge base will hold: what it holds now plus a
    corpus about to be ingested. Refused: nothing to measure (:func:`check_usable`); gold references
    that name none of those documents (unless ``allow_missing_gold``; the missing ones come back); and,
    even then, gold none of which exists. Datasets evaluated for answers only skip the gold checks.
    ``record_ids`` as in :class:`GoldIndex`.

    >>> from jisik.evaluate.datasets import EvalDataset, EvalExample
    >>> ds = EvalDataset("t", [EvalExample("q1", "?", gold_doc_ids=["a"]), EvalExample("q2", "?", gold_doc_ids=["z"])])
    >>> preflight(ds, [("a", "a")], answers=False, allow_missing_gold=True).examples
    ["q2: doc id 'z'"]
    """
    check_usable(dataset, answers=answers)
    if not dataset.with_gold:
        return MissingGold()
    index = GoldIndex(documents, record_ids=record_ids)
    missing = check_gold(dataset, index)
    if missing and not allow_missing_gold:
        raise missing_gold_error(missing, dataset, index)
    if len(missing.unscorable) == len(dataset.with_gold):
        raise EvaluationError(f"none of the gold documents of '{dataset.name}' is in the knowledge base, so "
                              "retrieval cannot be scored", hint="ingest the dataset's documents first")
    return missing


# --- citations -----------------------------------------------------------------------------------------


def citation_basis(items: Sequence[GoldItem]) -> str:
    """How a question's citations are judged: against its gold page(s), its gold document(s), or, with
    no gold, by whether the cited chunk contains a reference answer.

    >>> citation_basis([GoldItem("a.pdf#page=2", frozenset({"a.pdf"}), 2)]), citation_basis([])
    ('gold page', 'reference answer')
    """
    if not items:
        return CONTAINS_ANSWER
    return CITES_GOLD_PAGE if any(item.page is not None for item in items) else CITES_GOLD_DOCUMENT


def gold_citation_accuracy(citations: Sequence[tuple[str, int | None]], items: Sequence[GoldItem]) -> float:
    """Share of citations ``(doc_id, page)`` that cite a gold document (on its gold page, when one is given).

    Long reference answers (a paragraph of analysis, as in the SEC 10-Q set) are in no single chunk,
    so "the cited chunk contains the answer" would call correct citations wrong; the gold says where
    the answer is. No citations score 0.0.

    >>> items = [GoldItem("a.pdf", frozenset({"a.pdf"})), GoldItem("b.pdf#page=2", frozenset({"b.pdf"}), 2)]
    >>> gold_citation_accuracy([("a.pdf", 7), ("b.pdf", 2), ("b.pdf", 3), ("c.pdf", None)], items)
    0.5
    """
    if not citations:
        return 0.0
    return sum(1 for doc_id, page in citations if any(i.satisfied_by(doc_id, page) for i in items)) / len(citations)
