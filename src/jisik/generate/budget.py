"""Fit system prompt + history + context + question + reserved answer tokens into a context window.

Rule of precedence when the window is too small: the question and system prompt are never cut;
history goes first (oldest turn first), then the lowest-ranked chunks; if not even the best chunk
fits whole, it is shortened. A question that does not fit on its own is an error, because any
backend would otherwise truncate it silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from jisik.errors import QueryError
from jisik.generate.llms.base import Message, messages_token_overhead

CountTokens = Callable[[Sequence[str]], list[int]]

MIN_CHUNK_CHARS = 200  # a shortened chunk shorter than this is not worth sending


@dataclass(slots=True)
class FittedPrompt:
    """What was kept: indices into the candidate chunks (rank order), history kept, token count."""

    kept: list[int]
    history: list[Message]
    prompt_tokens: int
    dropped_history: int = 0
    shortened: dict[int, str] = field(default_factory=dict)  # chunk index -> shortened text


def fit_prompt(
    count: CountTokens,
    *,
    context_window: int,
    reserve_tokens: int,
    fixed_texts: Sequence[str],
    history: Sequence[Message],
    chunk_texts: Sequence[str],
    separator_tokens: int = 2,
) -> FittedPrompt:
    """Choose the history and chunks that fit, in rank order.

    ``fixed_texts`` are the system prompt and the user template rendered with the question and an
    empty context. Chunks are kept while they fit (a prefix of the ranking, so the best evidence
    always goes first); history is dropped from the oldest turn before any chunk is dropped only
    when the history alone would leave no room for the best chunk.

    >>> words = lambda texts: [len(t.split()) for t in texts]
    >>> fit_prompt(words, context_window=40, reserve_tokens=10, fixed_texts=["a b c"], history=[],
    ...            chunk_texts=["x " * 5, "y " * 5, "z " * 20]).kept
    [0, 1]
    """
    n_messages = 2 + len(history)
    fixed = sum(count(list(fixed_texts))) + messages_token_overhead(n_messages) + reserve_tokens
    if fixed > context_window:
        fixed_no_history = fixed - messages_token_overhead(n_messages) + messages_token_overhead(2)
        if fixed_no_history > context_window:
            raise QueryError(
                f"the question does not fit in the model's context window ({fixed_no_history} tokens needed "
                f"with {reserve_tokens} reserved for the answer, window {context_window})",
                hint="shorten the question, lower [llm] max_tokens or use a model with a larger context_window")
    history_tokens = count([m.content for m in history]) if history else []
    chunk_tokens = count(list(chunk_texts)) if chunk_texts else []
    kept_history = list(history)
    used_history = sum(history_tokens)
    dropped = 0
    first_chunk = chunk_tokens[0] + separator_tokens if chunk_tokens else 0
    # History yields to the best chunk: drop oldest messages until the top chunk fits (or history is gone).
    while kept_history and fixed + used_history + first_chunk > context_window:
        used_history -= history_tokens[dropped]
        kept_history.pop(0)
        dropped += 1
        fixed -= 4
    budget = context_window - fixed - used_history
    kept: list[int] = []
    shortened: dict[int, str] = {}
    for index, tokens in enumerate(chunk_tokens):
        cost = tokens + separator_tokens
        if cost > budget:
            break
        kept.append(index)
        budget -= cost
    if not kept and chunk_texts:
        text = shorten_to_fit(count, chunk_texts[0], budget - separator_tokens)
        if text is not None:
            kept.append(0)
            shortened[0] = text
            budget -= count([text])[0] + separator_tokens
    return FittedPrompt(kept, kept_history, context_window - reserve_tokens - budget, dropped, shortened)


def shorten_to_fit(count: CountTokens, text: str, budget: int) -> str | None:
    """The longest prefix of ``text`` (cut at a character, found by bisection) within ``budget`` tokens.

    >>> shorten_to_fit(lambda ts: [len(t) for t in ts], "a" * 500, 300) == "a" * 300
    True
    >>> shorten_to_fit(lambda ts: [len(t) for t in ts], "a" * 500, 10) is None
    True
    """
    if budget <= 0:
        return None
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if count([text[:middle]])[0] <= budget:
            low = middle
        else:
            high = middle - 1
    if low < min(MIN_CHUNK_CHARS, len(text)):
        return None
    return text[:low]
