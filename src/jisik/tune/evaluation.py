"""Before/after scores of a generative model on held-out RAG examples, with jisik's own metrics.

For each example (made by ``jisik tune data``: the answerer's prompt over retrieved passages, the reference
answers and the passage numbers that hold them in ``meta``) the model answers greedily; the scores are

- ``em`` / ``f1``: SQuAD exact match and token F1 of the answer with its ``[n]`` markers removed, against the
  reference answers (``jisik.evaluate.metrics``); questions whose answer was not retrieved count when the model
  answers with the not-found sentence (EM = F1 = 1) and score 0 otherwise;
- ``found_rate``: answers that are not the not-found sentence, over questions whose answer was retrieved;
- ``cited_rate``: answers with at least one valid ``[n]`` marker; ``citation_validity``: answers whose markers
  all point at a passage that exists, over answers with markers; ``cites_answer``: answers citing a passage that
  contains the reference answer, over questions whose answer was retrieved.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jisik.tune import _deps
from jisik.tune.data import Example

_MARKERS = re.compile(r"\s*\[[^\[\]]{1,20}\]")


def strip_markers(text: str) -> str:
    """The answer without its citation markers.

    >>> strip_markers("Denver Broncos [1].")
    'Denver Broncos.'
    """
    return _MARKERS.sub("", text).strip()


@dataclass
class GenerationScores:
    """Averages over the examples scored, and each answer (for the report)."""

    em: float
    f1: float
    found_rate: float
    cited_rate: float
    citation_validity: float
    cites_answer: float
    n: int
    seconds: float
    answers: list[str]

    def metrics(self) -> dict[str, float]:
        return {"em": self.em, "f1": self.f1, "found_rate": self.found_rate, "cited_rate": self.cited_rate,
                "citation_validity": self.citation_validity, "cites_answer": self.cites_answer,
                "n": float(self.n), "seconds_per_answer": self.seconds / max(self.n, 1)}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def score_answers(examples: Sequence[Example], answers: Sequence[str]) -> GenerationScores:
    """Score ``answers`` (one per example) as the module docstring says.

    >>> ex = Example([{"role": "user", "content": "q"}], completion=[{"role": "assistant", "content": "30 days [2]"}],
    ...              meta={"answers": ["30 days"], "cited": [2], "found": True, "passages": 3})
    >>> s = score_answers([ex, ex], ["30 days [2].", "It is 30 days [4]"])
    >>> s.em, s.cited_rate, s.citation_validity, s.cites_answer
    (0.5, 0.5, 0.5, 0.5)
    """
    from jisik.evaluate.metrics import exact_match, token_f1
    from jisik.generate.citations import resolve_citations
    from jisik.generate.language import is_not_found

    em: list[float] = []
    f1: list[float] = []
    found: list[float] = []
    cited: list[float] = []
    valid: list[float] = []
    right: list[float] = []
    for example, answer in zip(examples, answers, strict=True):
        meta = example.meta
        golds = [str(a) for a in meta.get("answers", [])] or [
            strip_markers(example.completion[-1]["content"]) if example.completion else ""]
        refused = is_not_found(answer)
        retrieved = bool(meta.get("found", True))
        if retrieved:
            text = strip_markers(answer)
            em.append(exact_match(text, golds))
            f1.append(token_f1(text, golds))
            found.append(0.0 if refused else 1.0)
        else:
            em.append(float(refused))
            f1.append(float(refused))
        resolved = resolve_citations(answer, int(meta.get("passages", 0)) or 99)
        cited.append(1.0 if resolved.cited else 0.0)
        if resolved.cited or resolved.invalid:
            valid.append(0.0 if resolved.invalid else 1.0)
        if retrieved and meta.get("cited"):
            right.append(1.0 if set(resolved.cited) & set(meta["cited"]) else 0.0)
    return GenerationScores(_mean(em), _mean(f1), _mean(found), _mean(cited), _mean(valid), _mean(right),
                            len(answers), 0.0, list(answers))


def generate_answers(model: Any, tokenizer: Any, examples: Sequence[Example], *, max_new_tokens: int = 48,
                     max_prompt_tokens: int = 2048,
                     progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Greedy answers of ``model`` to each example's prompt, through the tokenizer's chat template."""
    torch = _deps.torch()
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    answers: list[str] = []
    try:
        for index, example in enumerate(examples):
            ids = tokenizer.apply_chat_template(example.prompt, add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)
            input_ids = ids["input_ids"][:, -max_prompt_tokens:].to(device)
            with torch.no_grad():
                out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                     max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
            answers.append(tokenizer.decode(out[0, input_ids.shape[1]:], skip_special_tokens=True).strip())
            if progress is not None:
                progress(index + 1, len(examples))
    finally:
        if was_training:
            model.train()
    return answers


def evaluate_generation(model: Any, tokenizer: Any, examples: Sequence[Example], *, max_new_tokens: int = 48,
                        progress: Callable[[int, int], None] | None = None) -> GenerationScores:
    """Generate and score (see the module docstring); ``seconds`` is the wall time of generation."""
    started = time.perf_counter()
    answers = generate_answers(model, tokenizer, examples, max_new_tokens=max_new_tokens, progress=progress)
    scores = score_answers(examples, answers)
    scores.seconds = time.perf_counter() - started
    return scores
