"""Training data: the three row formats, validation by line number, RAG-style examples built from a knowledge
base, and train/validation splits that keep related rows together.

Row formats (JSONL, one object per line; a JSON list or a CSV with the same keys also reads):

- chat: ``{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}`` ending with an
  assistant message — loss on that last answer only;
- prompt/completion: ``{"prompt": "...", "completion": "..."}`` (strings, or message lists);
- preference: ``{"prompt": ..., "chosen": ..., "rejected": ...}`` (DPO, reward models).

Any row may carry ``group`` (rows of one group never straddle the train/validation split) and ``meta``
(kept, not trained on: ``tune data`` stores the reference answers there for evaluation).

Everything is normalised to TRL's *conversational prompt/completion* form — ``prompt`` a message list,
``completion`` (or ``chosen``/``rejected``) a one-message list — so the chat template is applied once, by
the trainer, the same way at training and at answer time.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from jisik._atomic import atomic_write
from jisik.errors import TrainingDataError

if TYPE_CHECKING:
    from jisik.evaluate.datasets import EvalExample
    from jisik.generate.prompts import PromptSet
    from jisik.kb import KnowledgeBase
    from jisik.records import Hit

RowKind = Literal["sft", "preference"]
ROLES = ("system", "user", "assistant")
MAX_PROBLEMS_SHOWN = 8
FORMAT_HINT = ('each line needs {"messages": [...ending with an assistant message]}, {"prompt": ..., '
               '"completion": ...} or, for preferences, {"prompt": ..., "chosen": ..., "rejected": ...}')


@dataclass
class Example:
    """One normalised row: ``prompt`` messages, then the ``completion`` (SFT) or ``chosen``/``rejected``."""

    prompt: list[dict[str, str]]
    completion: list[dict[str, str]] | None = None
    chosen: list[dict[str, str]] | None = None
    rejected: list[dict[str, str]] | None = None
    group: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    line: int = 0

    def record(self) -> dict[str, Any]:
        """The row as written back to JSONL (and given to the trainers)."""
        out: dict[str, Any] = {"prompt": self.prompt}
        for name in ("completion", "chosen", "rejected"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.group:
            out["group"] = self.group
        if self.meta:
            out["meta"] = self.meta
        return out


class _Problems:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, what: str) -> None:
        self.items.append((line, what))

    def error(self, total: int) -> TrainingDataError:
        shown = "; ".join(f"line {line}: {what}" for line, what in self.items[:MAX_PROBLEMS_SHOWN])
        more = len(self.items) - MAX_PROBLEMS_SHOWN
        return TrainingDataError(
            f"{self.path}: {len(self.items)} of {total} row(s) unusable — {shown}" + (f" … and {more} more"
                                                                                       if more > 0 else ""),
            hint=f"{FORMAT_HINT}; fix the lines named, or pass --skip-bad-rows to train on the rest")


def read_rows(path: Path) -> list[tuple[int, Any]]:
    """(line number, parsed row) for a JSONL, JSON-list or CSV file; a line that is not JSON is returned as a
    :class:`ValueError` in place of the row, so validation reports it with the others."""
    if not path.is_file():
        raise TrainingDataError(f"training data {path} does not exist", hint="check the path")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainingDataError(f"cannot read {path}: {exc}", hint="save the file as UTF-8") from exc
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        return [(number + 2, dict(row)) for number, row in enumerate(reader)]  # line 1 is the header
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" and stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TrainingDataError(f"{path}: not valid JSON ({exc})", hint=FORMAT_HINT) from exc
        return [(index + 1, row) for index, row in enumerate(data)]
    rows: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            rows.append((number, ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})")))
    return rows


def _messages(value: Any, name: str, *, default_role: str) -> list[dict[str, str]]:
    """A message list from a string or a list of ``{"role", "content"}``; raises ValueError saying why not.

    >>> _messages("Hi", "prompt", default_role="user")
    [{'role': 'user', 'content': 'Hi'}]
    >>> _messages([{"role": "bot", "content": "x"}], "completion", default_role="assistant")
    Traceback (most recent call last):
    ValueError: completion[0]: role 'bot' is not system, user or assistant
    """
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{name} is empty")
        return [{"role": default_role, "content": value}]
    if not isinstance(value, list) or not value:
        raise ValueError(f"{name} must be a string or a non-empty list of messages")
    out: list[dict[str, str]] = []
    for index, message in enumerate(value):
        if not isinstance(message, Mapping):
            raise ValueError(f"{name}[{index}] is not an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValueError(f"{name}[{index}]: role {role!r} is not system, user or assistant")
        if not isinstance(content, str) or not content.strip():
            raise ValueError(f"{name}[{index}]: content is missing or empty")
        out.append({"role": str(role), "content": content})
    return out


def parse_row(row: Any, kind: RowKind, line: int = 0) -> Example:
    """One row as an :class:`Example` of ``kind``; raises ValueError naming what is wrong.

    >>> parse_row({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A [1]"}]},
    ...           "sft").completion
    [{'role': 'assistant', 'content': 'A [1]'}]
    >>> parse_row({"prompt": "Q", "chosen": "good", "rejected": "bad"}, "preference").rejected
    [{'role': 'assistant', 'content': 'bad'}]
    >>> parse_row({"prompt": "Q"}, "sft")
    Traceback (most recent call last):
    ValueError: needs "messages", or "prompt" with "completion"
    """
    if isinstance(row, ValueError):
        raise row
    if not isinstance(row, Mapping):
        raise ValueError("a row must be a JSON object")
    group = str(row.get("group") or "")
    meta: Mapping[str, Any] = row["meta"] if isinstance(row.get("meta"), Mapping) else {}
    if kind == "preference":
        missing = [k for k in ("prompt", "chosen", "rejected") if not row.get(k)]
        if missing:
            raise ValueError(f"preference rows need prompt, chosen and rejected; missing {', '.join(missing)}")
        chosen = _messages(row["chosen"], "chosen", default_role="assistant")
        rejected = _messages(row["rejected"], "rejected", default_role="assistant")
        if chosen == rejected:
            raise ValueError("chosen and rejected are the same answer")
        return Example(_messages(row["prompt"], "prompt", default_role="user"), chosen=chosen, rejected=rejected,
                       group=group, meta=dict(meta), line=line)
    if "messages" in row:
        messages = _messages(row["messages"], "messages", default_role="user")
        if messages[-1]["role"] != "assistant":
            raise ValueError("messages must end with an assistant message (the answer to learn)")
        if len(messages) < 2:
            raise ValueError("messages need at least one message before the assistant's answer")
        return Example(messages[:-1], completion=messages[-1:], group=group, meta=dict(meta), line=line)
    if "prompt" in row and "completion" in row:
        completion = _messages(row["completion"], "completion", default_role="assistant")
        if completion[-1]["role"] != "assistant":
            raise ValueError("completion must be the assistant's answer")
        return Example(_messages(row["prompt"], "prompt", default_role="user"), completion=completion,
                       group=group, meta=dict(meta), line=line)
    raise ValueError('needs "messages", or "prompt" with "completion"')


@dataclass
class LoadedData:
    """Validated examples and the rows skipped (line, reason) when bad rows were allowed."""

    examples: list[Example]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    path: str = ""


def load_examples(path: str | Path, kind: RowKind = "sft", *, skip_bad_rows: bool = False) -> LoadedData:
    """Read and validate a training file. Bad rows fail the whole file (every bad line named) unless
    ``skip_bad_rows``; then they are left out and listed in :attr:`LoadedData.skipped`."""
    path = Path(path)
    rows = read_rows(path)
    problems = _Problems(path)
    examples: list[Example] = []
    for line, row in rows:
        try:
            examples.append(parse_row(row, kind, line))
        except ValueError as exc:
            problems.add(line, str(exc))
    if problems.items and not skip_bad_rows:
        raise problems.error(len(rows))
    if not examples:
        raise TrainingDataError(f"{path} holds no usable {kind} rows" + (f" ({len(rows)} read)" if rows else ""),
                                hint=FORMAT_HINT)
    return LoadedData(examples, list(problems.items), str(path))


def group_fraction(group: str, seed: int = 0) -> float:
    """Where ``group`` falls in [0, 1): a stable hash, so a split never depends on row order or Python's
    hash seed.

    >>> round(group_fraction("Super_Bowl_50"), 4), round(group_fraction("Super_Bowl_50", seed=1), 4)
    (0.3337, 0.2509)
    """
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_group(examples: Sequence[Example], validation_fraction: float, *, seed: int = 0,
                   key: Callable[[Example], str] | None = None) -> tuple[list[Example], list[Example]]:
    """Train and validation examples such that no group is in both. A row without a group is its own group
    (its prompt text), so duplicated prompts still land on one side.

    >>> rows = [Example([{"role": "user", "content": f"q{i}"}], group=f"article{i % 5}") for i in range(50)]
    >>> train, val = split_by_group(rows, 0.2)
    >>> sorted({e.group for e in val}), len(train) + len(val)
    (['article3'], 50)
    """
    if not 0 <= validation_fraction < 1:
        raise TrainingDataError(f"the validation fraction must be in [0, 1), got {validation_fraction}",
                                hint="e.g. --validation-fraction 0.1")
    key = key or (lambda e: e.group or json.dumps(e.prompt, ensure_ascii=False))
    groups = sorted({key(e) for e in examples})
    if validation_fraction == 0 or len(groups) < 2:
        return list(examples), []
    # Rank groups by their hash and take the first fraction of them: the validation share then holds
    # even for few groups, and a group's side depends on the seed only.
    ranked = sorted(groups, key=lambda g: group_fraction(g, seed))
    n_val = max(1, round(len(groups) * validation_fraction))
    held = set(ranked[:n_val])
    return [e for e in examples if key(e) not in held], [e for e in examples if key(e) in held]


def write_examples(path: Path, examples: Iterable[Example]) -> int:
    """Write examples as JSONL atomically; returns how many."""
    records = [json.dumps(e.record(), ensure_ascii=False) for e in examples]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, ("\n".join(records) + ("\n" if records else "")).encode("utf-8"))
    return len(records)


# --- RAG-style examples from a knowledge base ------------------------------------------------------------------

_SPACE = re.compile(r"\s+")


def _fold(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def answer_passages(answers: Sequence[str], hits: Sequence[Hit]) -> list[int]:
    """1-based numbers of the passages whose text contains one of the reference ``answers`` (case and
    spacing ignored): what the target answer cites.

    >>> from jisik.records import Hit
    >>> hits = [Hit(1, 1.0, "Refunds take 5 days.", "a", "a.md", None, None, None, 0, 1),
    ...         Hit(2, 0.9, "The return period is 30  Days.", "b", "b.md", None, None, None, 0, 1)]
    >>> answer_passages(["30 days"], hits)
    [2]
    """
    folded = [_fold(a) for a in answers if a.strip()]
    return [i + 1 for i, hit in enumerate(hits) if any(a in _fold(hit.text) for a in folded)]


def rag_prompt(prompts: PromptSet, question: str, hits: Sequence[Hit], language: str) -> list[dict[str, str]]:
    """The system and user messages :class:`~jisik.generate.answerer.Answerer` sends for a ``stuff`` answer over
    ``hits`` — the same templates, numbering and document markers, so a model tuned on them meets at answer
    time exactly what it learned from."""
    from jisik.generate.prompts import answer_messages, format_context, format_context_entry

    context = format_context([format_context_entry(i + 1, hit) for i, hit in enumerate(hits)])
    return [{"role": m.role, "content": m.content}
            for m in answer_messages(prompts, "user", question, language, context)]  # type: ignore[arg-type]


@dataclass
class RagStats:
    """What :func:`build_rag_examples` made: with the answer retrieved, refusals taught, questions dropped."""

    questions: int = 0
    found: int = 0
    refusals: int = 0
    dropped: int = 0


def build_rag_examples(kb: KnowledgeBase, questions: Sequence[EvalExample], *, k: int | None = None,
                       mode: str | None = None, not_found: Literal["refuse", "drop"] = "refuse",
                       progress: Callable[[int, int], None] | None = None) -> tuple[list[Example], RagStats]:
    """SFT examples that teach answering from ``[n]`` context with citations.

    For each question with reference answers: retrieve ``k`` passages the way ``jisik ask`` does, build the
    answerer's prompt over them, and make the target ``"<answer> [n]"`` citing the passages that contain the
    answer. When no retrieved passage contains it, the target is the answerer's not-found sentence
    (``not_found="refuse"``: the model learns to refuse rather than invent) or the question is dropped.
    The group of an example is its gold document's article (``title#n`` → ``title``), so a split never puts
    one article's paragraphs on both sides.
    """
    from jisik.generate.language import NOT_FOUND, detect_language

    prompts = kb.prompt_set()
    usable = [q for q in questions if q.answers]
    if not usable:
        raise TrainingDataError("none of the questions has a reference answer",
                                hint="give answers (\"answer\" or \"answers\" per row; SQuAD/KorQuAD JSON has them)")
    k = k or kb.config.answer.k
    mode = mode or kb.config.answer.mode
    stats = RagStats(questions=len(usable))
    examples: list[Example] = []
    batch = 32
    for start in range(0, len(usable), batch):
        part = usable[start:start + batch]
        results = kb.search_batch([q.question for q in part], k=k, mode=mode)
        for question, hits in zip(part, results, strict=True):
            language = detect_language(question.question)
            cited = answer_passages(question.answers, hits)
            if cited:
                target = f"{question.answers[0].strip()} [{cited[0]}]"
                stats.found += 1
            elif not_found == "refuse":
                target = NOT_FOUND[language]
                stats.refusals += 1
            else:
                stats.dropped += 1
                continue
            gold = question.gold_doc_ids[0] if question.gold_doc_ids else ""
            group = str(question.metadata.get("group") or gold.split("#", 1)[0] or question.qid)
            examples.append(Example(
                rag_prompt(prompts, question.question, hits, language),
                completion=[{"role": "assistant", "content": target}], group=group,
                meta={"id": question.qid, "question": question.question, "answers": list(question.answers),
                      "cited": cited[:1], "found": bool(cited), "language": language, "passages": len(hits)}))
        if progress is not None:
            progress(min(start + batch, len(usable)), len(usable))
    return examples, stats
