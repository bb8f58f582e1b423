"""What the guards find and decide: personal data (:class:`Entity`), instruction-like text
(:class:`InjectionFinding`), support of answer sentences (:class:`SentenceSupport`), and the audit record of
every decision (:class:`GuardDecision`).

Offsets always refer to the text the caller passed in (not to a normalised copy), so a finding can be
masked, highlighted or cited in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# where a guard looks: the user's question, retrieved chunks, the model's answer, what is written to logs
Place = Literal["input", "context", "output", "logs"]
PLACES: tuple[Place, ...] = ("input", "context", "output", "logs")
# what a policy does with a finding
Action = Literal["allow", "mask", "redact", "placeholder", "block"]
ACTIONS: tuple[Action, ...] = ("allow", "mask", "redact", "placeholder", "block")

# entity types the PII detector reports (validated ones first, lower-confidence ones last)
ENTITY_TYPES: tuple[str, ...] = (
    "KR_RRN",             # 주민등록번호
    "KR_FRN",             # 외국인등록번호
    "KR_BRN",             # 사업자등록번호
    "KR_PASSPORT",        # 여권번호
    "KR_DRIVER_LICENSE",  # 운전면허번호
    "PHONE",              # mobile, landline, 070, +82 (and international numbers written with +)
    "EMAIL",
    "CREDIT_CARD",        # Luhn-valid card numbers
    "BANK_ACCOUNT",       # only with context (계좌, 은행 names, 입금, account)
    "IP_ADDRESS",
    "PERSON",             # optional, lower confidence
    "ADDRESS",            # optional, lower confidence
)


@dataclass(frozen=True, slots=True)
class Entity:
    """One piece of personal data found in a text.

    ``score`` is a confidence in [0, 1]: a validated checksum gives ≥ 0.9, a format without a checksum (or a
    failed one where failures are legitimate, as for resident numbers issued since October 2020) less.
    ``reason`` says why, in a few words ("mod-11 check digit ok", "context: 계좌").
    """

    type: str
    start: int
    end: int
    text: str
    score: float
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "start": self.start, "end": self.end, "score": round(self.score, 3),
                "reason": self.reason}


@dataclass(frozen=True, slots=True)
class InjectionFinding:
    """Instruction-like text inside a document or question ("ignore previous instructions", "시스템 프롬프트를
    무시하고", fake role headers, delimiter tricks). ``kind`` names the pattern family."""

    kind: str
    start: int
    end: int
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "end": self.end, "score": round(self.score, 3)}


@dataclass(slots=True)
class SentenceSupport:
    """How well one answer sentence is supported by the sources.

    ``start``/``end`` are offsets in the answer text; ``citations`` the ``[n]`` numbers the sentence cites;
    ``score`` in [0, 1]; ``supported`` the decision at the configured threshold; ``problems`` names what did
    not match ("number 15 not in [1]", "negation differs", "cites [2], which does not support it").
    ``best_source`` is the source number that supports it best (cited or not), if any.
    """

    text: str
    start: int
    end: int
    citations: list[int]
    score: float
    supported: bool
    problems: list[str] = field(default_factory=list)
    best_source: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "span": [self.start, self.end], "citations": self.citations,
                "score": round(self.score, 3), "supported": self.supported, "problems": self.problems,
                "best_source": self.best_source}


@dataclass(frozen=True, slots=True)
class GuardDecision:
    """One decision for the audit log. Never holds the personal data itself: ``detail`` is e.g. the entity
    type and count, or the injection kind, or a support score."""

    guard: str   # "pii" | "injection" | "grounding" | "scope" | "length"
    place: Place | str
    action: str  # what was done: allow, mask, redact, placeholder, block, neutralize, drop, annotate, refuse
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"guard": self.guard, "place": self.place, "action": self.action, "detail": self.detail}
