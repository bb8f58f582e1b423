"""Guard policies: what happens to personal data, injected instructions and unsupported sentences, per place.

One :class:`Guard` per knowledge base holds the detectors (loaded once); each question gets its own
:class:`GuardedQuestion`, which carries the request's placeholders (``<KR_RRN_1>`` ↔ the value) so the
answer can restore them — for that request only; they are never stored.

Places and the careful defaults (``[guard]`` in jisik.toml, :class:`~jisik.config.GuardConfig`):

- ``input`` (the question): ``auto`` = placeholders when the LLM is remote, unchanged for a local one. The
  search always runs on the original question, here, on this machine.
- ``context`` (retrieved chunks going into the prompt): ``auto`` likewise; citations keep the original text.
- ``output`` (the answer): ``allow``; ``mask``/``redact`` for assistants that face the public.
- ``logs`` (the turn log): ``redact``: the log never holds detected personal data in clear.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from jisik.config import GuardConfig
from jisik.errors import QueryError
from jisik.guard.base import Entity, GuardDecision, SentenceSupport

if TYPE_CHECKING:
    from jisik.embed.base import Embedder
    from jisik.records import Hit
    from jisik.text.analyzers import Analyzer

LABELS_KO = {"KR_RRN": "주민등록번호", "KR_FRN": "외국인등록번호", "KR_BRN": "사업자등록번호",
             "KR_PASSPORT": "여권번호", "KR_DRIVER_LICENSE": "운전면허번호", "PHONE": "전화번호",
             "EMAIL": "이메일", "CREDIT_CARD": "카드번호", "BANK_ACCOUNT": "계좌번호", "IP_ADDRESS": "IP주소",
             "PERSON": "이름", "ADDRESS": "주소"}
LABELS_EN = {"KR_RRN": "resident registration number", "KR_FRN": "foreigner registration number",
             "KR_BRN": "business registration number", "KR_PASSPORT": "passport number",
             "KR_DRIVER_LICENSE": "driver's license number", "PHONE": "phone number", "EMAIL": "e-mail address",
             "CREDIT_CARD": "card number", "BANK_ACCOUNT": "bank account number", "IP_ADDRESS": "IP address",
             "PERSON": "name", "ADDRESS": "address"}
_PLACEHOLDER = re.compile(r"<([A-Z_]+)_(\d{1,4})>")
# min_relevance = "auto": the best chunk's cosine below which a question is out of scope, per embedder model.
# Calibrated with benchmarks/guard_scope.py on SQuAD, MS MARCO ko/en and Belebele ko together (docs/benchmarks.md):
# the lowest 1st percentile of in-scope best cosines is 0.807 (SQuAD); 0.78 leaves a margin for collections we
# have not seen (OCR'd pages score lower) and refuses no in-scope question of any set, while still refusing a
# third of other collections' questions and a tenth of chit-chat. Unknown embedders get no floor.
RELEVANCE_FLOORS: dict[str, float] = {"intfloat/multilingual-e5-small": 0.78}
REFUSAL = {"ko": "죄송하지만 이 질문에는 답할 수 없습니다.", "en": "Sorry, I cannot answer this question."}


class GuardBlockedError(QueryError):
    """A guard refused the request (personal data under a ``block`` policy, an injection under ``block``)."""

    code = "guard_blocked"


def llm_is_remote(settings: Any) -> bool:
    """Whether an LLM backend sends text off this machine: servers not on loopback (OpenAI's own by default).
    In-process backends (llamacpp, transformers) and extractive answers are local; an unknown plugin counts as
    remote (the careful guess).

    >>> from jisik.config import LLMConfig
    >>> llm_is_remote(LLMConfig(backend="ollama")), llm_is_remote(LLMConfig(backend="openai"))
    (False, True)
    >>> llm_is_remote(LLMConfig(backend="openai", url="http://127.0.0.1:8000/v1"))
    False
    """
    from urllib.parse import urlsplit

    backend = settings.backend
    if backend in ("extractive", "llamacpp", "transformers"):
        return False
    defaults = {"openai": "https://api.openai.com/v1", "ollama": "http://localhost:11434"}
    url = settings.url or defaults.get(backend)
    if not url:
        return True
    host = (urlsplit(url).hostname or "").strip("[]")
    if host == "localhost":
        return False
    import ipaddress

    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def llm_judge(llm: Any) -> Callable[[str, str], float]:
    """A groundedness judge over an LLM backend: (premise, hypothesis) → 1.0 when the model says the passage
    supports the statement, 0.0 when it says not. A backend that fails raises; the checker then falls back to its
    own score and says so in the sentence's problems (never a silent pass)."""
    from jisik.generate.llms.base import GenerationOptions, Message

    def judge(premise: str, hypothesis: str) -> float:
        prompt = ("Passage:\n" + premise[:6000] + "\n\nStatement: " + hypothesis +
                  "\n\nDoes the passage support every fact in the statement? Answer only yes or no.")
        reply = llm.generate([Message("user", prompt)], GenerationOptions(temperature=0.0, max_tokens=4)).text
        word = reply.strip().lower()
        if word.startswith(("yes", "예", "네")):
            return 1.0
        if word.startswith(("no", "아니")):
            return 0.0
        raise ValueError(f"the judge answered {reply[:40]!r}, not yes or no")

    return judge


def redact_label(entity_type: str, language: str) -> str:
    """The ``[label]`` a redacted value becomes.

    >>> redact_label("PHONE", "ko"), redact_label("PHONE", "en")
    ('[전화번호]', '[PHONE]')
    """
    return f"[{LABELS_KO.get(entity_type, entity_type)}]" if language == "ko" else f"[{entity_type}]"


@dataclass
class Placeholders:
    """Value ↔ placeholder for one request: the same value gets the same token everywhere in it.

    >>> p = Placeholders()
    >>> p.token("PHONE", "010-1234-5678"), p.token("PHONE", "010-1234-5678"), p.token("PHONE", "02-555-0101")
    ('<PHONE_1>', '<PHONE_1>', '<PHONE_2>')
    >>> p.restore("연락처는 <PHONE_2>입니다")
    '연락처는 02-555-0101입니다'
    """

    values: dict[str, str] = field(default_factory=dict)  # token → value
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def token(self, entity_type: str, value: str) -> str:
        key = (entity_type, value)
        if key not in self._tokens:
            count = sum(1 for t, _ in self._tokens if t == entity_type) + 1
            self._tokens[key] = f"<{entity_type}_{count}>"
            self.values[self._tokens[key]] = value
        return self._tokens[key]

    def restore(self, text: str) -> str:
        if not self.values:
            return text
        return _PLACEHOLDER.sub(lambda m: self.values.get(m.group(0), m.group(0)), text)


@dataclass
class GuardedQuestion:
    """The question as each place gets it, with the request's placeholders and decisions so far."""

    original: str
    for_model: str
    placeholders: Placeholders
    decisions: list[GuardDecision]
    refusal: str | None = None


class Guard:
    """The guards of one knowledge base. Detectors are created on first use and shared by every request."""

    def __init__(self, config: GuardConfig, *, remote_llm: bool, embedder: Embedder | None = None,
                 analyzer: Analyzer | None = None, judge: Callable[[str, str], float] | None = None) -> None:
        self.config = config
        self.remote_llm = remote_llm
        self.embedder = embedder
        self.analyzer = analyzer
        self.judge = judge
        self._pii: Any = None
        self._grounding: Any = None
        self._lock = threading.Lock()

    @property
    def relevance_floor(self) -> float | None:
        """The dense similarity the best chunk must reach, or None (no floor): ``min_relevance`` itself, or with
        ``auto`` the value calibrated for this embedder (:data:`RELEVANCE_FLOORS`; unknown embedders get none)."""
        setting = self.config.min_relevance
        if setting is None or isinstance(setting, float | int):
            return None if setting is None else float(setting)
        model = getattr(self.embedder, "model", None)
        return RELEVANCE_FLOORS.get(str(model)) if model else None

    # -- parts ----------------------------------------------------------------------------------------
    @property
    def pii(self) -> Any:
        """The :class:`~jisik.guard.pii.PiiDetector` for these settings (None when ``pii = false``)."""
        if self._pii is None and self.config.pii:
            with self._lock:
                if self._pii is None:
                    from jisik.guard.pii import PiiDetector

                    types = self._types()
                    self._pii = PiiDetector(types=types, names="PERSON" in types, addresses="ADDRESS" in types,
                                            allowlist=self.config.pii_allowlist, min_score=self.config.pii_min_score)
        return self._pii

    @property
    def grounding(self) -> Any:
        if self._grounding is None:
            with self._lock:
                if self._grounding is None:
                    from jisik.guard.grounding import GroundingChecker
                    from jisik.text.analyzers import get_analyzer

                    kwargs: dict[str, Any] = {}
                    if self.config.grounding_threshold is not None:
                        kwargs["threshold"] = self.config.grounding_threshold
                    # the dense evidence is calibrated on e5's cosine scale; other embedders (other scales, the
                    # hashing fake) use the lexical evidence alone, which scores nearly as well (docs/benchmarks.md)
                    calibrated = str(getattr(self.embedder, "model", "")) in RELEVANCE_FLOORS
                    self._grounding = GroundingChecker(embedder=self.embedder if calibrated else None,
                                                       analyzer=self.analyzer or get_analyzer("ko-en"),
                                                       judge=self.judge, **kwargs)
        return self._grounding

    # -- personal data ------------------------------------------------------------------------------
    def action(self, entity_type: str, place: str) -> str:
        """The action for one entity type at one place (overrides first, then the place's setting)."""
        override = self.config.pii_overrides.get(entity_type)
        if isinstance(override, str):
            return override
        if isinstance(override, dict) and place in override:
            return str(override[place])
        configured: str = getattr(self.config, f"pii_{place}")
        if configured == "auto":
            return "placeholder" if self.remote_llm else "allow"
        return configured

    def entities(self, texts: Sequence[str]) -> list[list[Entity]]:
        detector = self.pii
        if detector is None:
            return [[] for _ in texts]
        found: list[list[Entity]] = detector.detect_batch(list(texts))
        return found

    def apply(self, text: str, entities: Sequence[Entity], place: str, placeholders: Placeholders | None,
              decisions: list[GuardDecision] | None = None) -> str:
        """``text`` with each entity handled as the policy for ``place`` says; ``block`` raises."""
        from jisik.generate.language import detect_language

        if not entities:
            return text
        language = detect_language(text)
        out: list[str] = []
        position = 0
        done: dict[tuple[str, str], int] = {}
        for entity in sorted(entities, key=lambda e: e.start):
            if entity.start < position:
                continue
            action = self.action(entity.type, place)
            if action == "block":
                label = (LABELS_KO if language == "ko" else LABELS_EN).get(entity.type, entity.type)
                if decisions is not None:
                    decisions.append(GuardDecision("pii", place, "block", {"types": {entity.type: 1}}))
                raise GuardBlockedError(f"the text contains personal data ({label}) that this assistant does not "
                                        "accept", hint="remove it and ask again")
            out.append(text[position:entity.start])
            out.append(self._replace(entity, action, language, placeholders))
            position = entity.end
            done[(entity.type, action)] = done.get((entity.type, action), 0) + 1
        out.append(text[position:])
        if decisions is not None:
            for (entity_type, action), count in sorted(done.items()):
                decisions.append(GuardDecision("pii", place, action, {"type": entity_type, "count": count}))
        return "".join(out)

    @staticmethod
    def _replace(entity: Entity, action: str, language: str, placeholders: Placeholders | None) -> str:
        if action == "allow":
            return entity.text
        if action == "mask":
            from jisik.guard.pii import mask_value

            return str(mask_value(entity.type, entity.text))
        if action == "placeholder" and placeholders is not None:
            return placeholders.token(entity.type, entity.text)
        return redact_label(entity.type, language)  # redact (and placeholder where none can be kept: logs)

    def screen(self, text: str, place: str, placeholders: Placeholders | None = None,
               decisions: list[GuardDecision] | None = None) -> str:
        """One text through the personal-data policy of ``place``."""
        return self.apply(text, self.entities([text])[0], place, placeholders, decisions)

    def for_log(self, text: str | None) -> str | None:
        """What the turn log may keep of ``text``: personal data per ``pii_logs`` (placeholders become labels)."""
        if not text:
            return text
        return self.screen(text, "logs")

    # -- the question ---------------------------------------------------------------------------------
    def question(self, question: str) -> GuardedQuestion:
        """Screen a question: scope (deny-list), injection, personal data. Raises :class:`GuardBlockedError`."""
        decisions: list[GuardDecision] = []
        placeholders = Placeholders()
        lowered = question.casefold()
        topic = next((t for t in self.config.deny_topics if t.casefold() in lowered), None)
        if topic is not None:
            decisions.append(GuardDecision("scope", "input", "refuse", {"topic": topic}))
            return GuardedQuestion(question, question, placeholders, decisions, refusal=topic)
        text = question
        if self.config.injection and self.config.injection_input != "allow":
            from jisik.guard.injection import detect_injection, neutralize

            findings = detect_injection(text)
            if findings:
                kinds = sorted({f.kind for f in findings})
                action = self.config.injection_input
                decisions.append(GuardDecision("injection", "input", action, {"kinds": kinds}))
                if action == "block":
                    raise GuardBlockedError("the question contains instructions aimed at the assistant itself",
                                            hint="ask about the documents only")
                text = neutralize(text, findings)
        text = self.screen(text, "input", placeholders, decisions)
        return GuardedQuestion(question, text, placeholders, decisions)

    # -- retrieved context --------------------------------------------------------------------------------
    def context(self, hits: Sequence[Hit], placeholders: Placeholders,
                decisions: list[GuardDecision]) -> list[Hit | None]:
        """The chunks as the model gets them (copies; None for a dropped chunk). The hits themselves, and so
        the citations, keep the original text."""
        texts = self._untrusted_texts([h.text for h in hits], "context", [{"chunk_id": h.chunk_id} for h in hits],
                                      placeholders, decisions)
        return [None if text is None else hit if text == hit.text else replace(hit, text=text)
                for hit, text in zip(hits, texts, strict=True)]

    def untrusted(self, text: str, placeholders: Placeholders, decisions: list[GuardDecision]) -> str:
        """A tool's output as an agent's model may read it: like a retrieved chunk (``injection_context``:
        instructions neutralised, or the whole output dropped; personal data per ``pii_context``)."""
        shown = self._untrusted_texts([text], "tool", [{}], placeholders, decisions)[0]
        return "(the tool's output was withheld: it contained instructions aimed at the assistant)" \
            if shown is None else shown

    def _untrusted_texts(self, texts: list[str], place: str, details: Sequence[dict[str, Any]],
                         placeholders: Placeholders, decisions: list[GuardDecision]) -> list[str | None]:
        """Text from outside the question (chunks, tool output) as the model may read it: injected instructions
        per ``injection_context`` (neutralised, or the text dropped: None, as an empty text is), then personal data
        per ``pii_context``."""
        out: list[str | None] = list(texts)
        if self.config.injection and self.config.injection_context != "allow":
            from jisik.guard.injection import detect_injection_batch, neutralize

            action = self.config.injection_context
            for index, findings in enumerate(detect_injection_batch(texts)):
                if findings:
                    decisions.append(GuardDecision("injection", place, "drop" if action == "drop" else "neutralize",
                                                   {**details[index], "kinds": sorted({f.kind for f in findings})}))
                    out[index] = None if action == "drop" else neutralize(texts[index], findings)
        if any(self.action(t, "context") != "allow" for t in self._types()):
            kept = [i for i, text in enumerate(out) if text]
            found = self.entities([out[i] or "" for i in kept])
            for index, entities in zip(kept, found, strict=True):
                if entities:
                    out[index] = self.apply(out[index] or "", entities, "context", placeholders, decisions)
        return [text or None for text in out]

    def _types(self) -> list[str]:
        """The entity types in use: ``pii_types`` plus names and addresses when switched on."""
        extra = [t for t, on in (("PERSON", self.config.pii_names), ("ADDRESS", self.config.pii_addresses)) if on]
        return list(dict.fromkeys([*self.config.pii_types, *extra]))

    # -- the answer -----------------------------------------------------------------------------------------
    def output(self, pieces: Iterator[str], placeholders: Placeholders,
               decisions: list[GuardDecision]) -> Iterator[str]:
        """The answer's pieces with placeholders restored and personal data handled per ``pii_output``.

        Placeholders are held back until complete (``<PHO`` … ``NE_1>``). When output personal data is not
        simply allowed, text is released a sentence at a time, so a number split across pieces is still seen.
        """
        screen = self.config.pii and any(self.action(t, "output") != "allow" for t in self._types())
        held = ""
        for piece in pieces:
            held += piece
            cut = _safe_cut(held, by_sentence=screen)
            if cut:
                ready, held = held[:cut], held[cut:]
                yield self._release(ready, placeholders, decisions, screen)
        if held:
            yield self._release(held, placeholders, decisions, screen)

    def _release(self, text: str, placeholders: Placeholders, decisions: list[GuardDecision], screen: bool) -> str:
        restored = placeholders.restore(text)
        return self.screen(restored, "output", None, decisions) if screen else restored

    def quotes(self, citations: Sequence[Any], sources: Sequence[Any], decisions: list[GuardDecision]) -> None:
        """The quotes users see under an answer, through the ``output`` policy (when it is not ``allow``)."""
        if not self.config.pii or all(self.action(t, "output") == "allow" for t in self._types()):
            return
        for citation in [*citations, *sources]:
            citation.quote = self.screen(citation.quote, "output", None, decisions)

    def ground(self, text: str, sources: Sequence[str], language: str) -> list[SentenceSupport]:
        """Support of each sentence of ``text`` by the numbered ``sources``."""
        supports: list[SentenceSupport] = self.grounding.check(text, list(sources), language=language)
        return supports


def _safe_cut(text: str, *, by_sentence: bool) -> int:
    """How much of ``text`` can be released: not an unfinished placeholder (``<KR_RR``), and with
    ``by_sentence`` only whole sentences.

    >>> _safe_cut("연락처는 <PHO", by_sentence=False), _safe_cut("끝났다. 다음 문", by_sentence=True)
    (5, 5)
    """
    end = len(text)
    opening = text.rfind("<")
    if opening >= 0 and ">" not in text[opening:] and end - opening <= 24:
        end = opening
    if by_sentence:
        stops = [m.end() for m in re.finditer(r"[.!?。]\s|\n", text[:end])]
        end = stops[-1] if stops else 0
    return end
