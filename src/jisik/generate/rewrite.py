"""Turn a follow-up ("그럼 환불은요?") into a standalone question before retrieval.

With an LLM, the model rewrites it from the conversation (the ``rewrite`` template). Without one
(the extractive answerer), a follow-up is recognised by its shape and prefixed with the previous
standalone question, which gives retrieval the missing topic: "반품 기간은 며칠인가요? 그럼 환불은요?".
"""

from __future__ import annotations

import re

_KO_FOLLOWUP_START = (
    "그럼", "그러면", "그건", "그것", "그거", "그리고", "또", "그래서", "그런데", "근데", "이건", "저건",
)
# "환불은요?", "배송비도요", "환불은?": a bare topic with a particle, nothing asked about it yet
_KO_FOLLOWUP_END = re.compile(r"^[가-힣A-Za-z0-9]+(은|는|도|만)(요)?\??$")
_EN_FOLLOWUP_START = ("and ", "what about", "how about", "also", "then ", "so ", "but ")
_EN_PRONOUN = re.compile(r"\b(it|its|that|this|those|these|they|them|their|there)\b", re.IGNORECASE)


def looks_like_followup(question: str) -> bool:
    """True for questions that lean on the previous turn.

    >>> looks_like_followup("그럼 환불은요?"), looks_like_followup("반품 기간은 며칠인가요?")
    (True, False)
    >>> looks_like_followup("What about refunds?"), looks_like_followup("How long does shipping take?")
    (True, False)
    >>> [looks_like_followup(q) for q in ("Is it free?", "환불은요?", "배송비는 얼마인가요?")]
    [True, True, False]
    """
    text = question.strip()
    lower = text.lower()
    if text.startswith(_KO_FOLLOWUP_START) or lower.startswith(_EN_FOLLOWUP_START):
        return True
    words = text.split()
    if len(words) == 1 and _KO_FOLLOWUP_END.match(text):
        return True
    return bool(_EN_PRONOUN.search(text)) and len(words) <= 6


def heuristic_rewrite(question: str, previous: str | None) -> str:
    """Prefix a follow-up with the previous standalone question; other questions pass unchanged.

    >>> heuristic_rewrite("그럼 환불은요?", "반품 기간은 며칠인가요?")
    '반품 기간은 며칠인가요? 그럼 환불은요?'
    >>> heuristic_rewrite("배송비는 얼마인가요?", "반품 기간은 며칠인가요?")
    '배송비는 얼마인가요?'
    """
    if not previous or not looks_like_followup(question):
        return question
    return f"{previous.strip()} {question.strip()}"


def clean_rewrite(output: str, question: str, *, max_chars: int = 500) -> str:
    """Take the model's first non-empty line; fall back to ``question`` when the output is unusable.

    >>> clean_rewrite("[독립 질문] 환불은 며칠 걸리나요?\\n설명: ...", "그럼 환불은요?")
    '환불은 며칠 걸리나요?'
    >>> clean_rewrite("", "그럼 환불은요?")
    '그럼 환불은요?'
    """
    for line in output.splitlines():
        line = re.sub(r"^\s*(\[[^\]]*\]|standalone question:|question:|질문:)\s*", "", line, flags=re.IGNORECASE)
        line = line.strip().strip('"').strip()
        if line:
            return line if len(line) <= max_chars else question
    return question
