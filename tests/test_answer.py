"""kb.ask / kb.chat end to end over a real knowledge base, with FakeLLM (a named test double that
returns scripted replies and records the prompts) so the prompt, budget, citation, memory and log
logic is checked exactly. Real models are exercised in test_llms.py and test_extractive.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from jisik.embed.hashing import HashingEmbedder
from jisik.errors import EmptyKnowledgeBaseError, LLMResponseError, QueryError, TemplateError
from jisik.generate.llms.base import Message
from jisik.generate.llms.fake import FakeLLM
from jisik.generate.memory import Turn
from jisik.kb import KnowledgeBase
from jisik.records import Document

POLICY = [
    Document(doc_id="returns", source="policies/returns.md",
             text="반품은 상품을 받은 날부터 14일 이내에 신청할 수 있습니다. "
                  "단순 변심으로 인한 반품의 배송비는 고객이 부담합니다."),
    Document(doc_id="refunds", source="policies/refunds.md", text="환불은 반품 상품이 도착한 뒤 3영업일 안에 "
             "결제 수단으로 처리됩니다."),
    Document(doc_id="shipping", source="policies/shipping.md", text="Orders over 50,000 won ship free. "
             "Standard delivery takes two to three business days."),
]


def _kb(path: Path, **overrides: object) -> KnowledgeBase:
    return KnowledgeBase.open(path, create=True, embedder=HashingEmbedder(64), overrides=overrides or None)


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    base = _kb(tmp_path / "kb")
    base.add_documents(POLICY)
    yield base
    base.close()


def _user_prompt(llm: FakeLLM, call: int = -1) -> str:
    return llm.calls[call][-1].content


def test_ask_builds_numbered_korean_prompt_and_resolves_citations(kb: KnowledgeBase) -> None:
    llm = FakeLLM(["반품은 14일 이내에 신청할 수 있습니다 [1]."])
    answer = kb.ask("반품 기간은 며칠인가요?", llm=llm, k=3)
    system, user = llm.calls[0][0], llm.calls[0][-1]
    assert system.role == "system" and "문서에서 답을 찾을 수 없습니다" in system.content
    assert "[문서]" in user.content and user.content.rstrip().endswith("반품 기간은 며칠인가요?")
    assert "[1] (policies/" in user.content and "[2] (" in user.content
    assert answer.language == "ko" and answer.found
    assert answer.text == "반품은 14일 이내에 신청할 수 있습니다 [1]."
    assert [c.number for c in answer.citations] == [1]
    first_source = user.content.split("[1] (", 1)[1].split(")", 1)[0]
    assert answer.citations[0].source == first_source
    assert answer.citations[0].quote in " ".join(d.text for d in POLICY)
    assert len(answer.sources) == 3 and sum(s.cited for s in answer.sources) == 1
    assert llm.options[0].temperature == 0.0


def test_english_question_gets_english_template(kb: KnowledgeBase) -> None:
    llm = FakeLLM(["Shipping is free over 50,000 won [1]."])
    answer = kb.ask("When is shipping free?", llm=llm)
    assert "[Documents]" in _user_prompt(llm) and "I could not find the answer" in llm.calls[0][0].content
    assert answer.language == "en"
    kb.ask("When is shipping free?", llm=llm, language="ko")
    assert "[문서]" in _user_prompt(llm)


def test_invalid_citations_are_dropped_and_reported(kb: KnowledgeBase) -> None:
    answer = kb.ask("반품 기간은?", llm=FakeLLM(["14일입니다 [1][9]. 환불은 3일 [문서 2]."]), k=2)
    assert answer.invalid_citations == [9]
    assert "[9]" not in answer.text and "[2]" in answer.text
    assert [c.number for c in answer.citations] == [1, 2]


def test_not_found_answer_has_no_citations(kb: KnowledgeBase) -> None:
    answer = kb.ask("회사 창립일은?", llm=FakeLLM(["문서에서 답을 찾을 수 없습니다."]))
    assert not answer.found and answer.citations == [] and answer.sources


def test_budget_drops_lowest_ranked_chunks(kb: KnowledgeBase) -> None:
    roomy = FakeLLM(["답 [1]"], context_window=4096)
    kb.ask("반품 기간은 며칠인가요?", llm=roomy, k=3, max_tokens=30)
    full = sum(roomy.count_tokens([m.content for m in roomy.calls[0]]))
    window = full + 30 + 14 - 3  # 14: chat overhead of two messages; 3 short of fitting all three chunks
    llm = FakeLLM(["답 [1]"], context_window=window)
    answer = kb.ask("반품 기간은 며칠인가요?", llm=llm, k=3, max_tokens=30)
    sent = _user_prompt(llm)
    assert 1 <= len(answer.sources) < 3
    assert f"[{len(answer.sources) + 1}] (" not in sent
    assert sum(llm.count_tokens([m.content for m in llm.calls[0]])) + 30 <= window
    assert answer.usage.prompt_tokens <= window - 30


def test_question_longer_than_the_window_is_refused(kb: KnowledgeBase) -> None:
    with pytest.raises(QueryError, match="context window"):
        kb.ask("반품 " * 300, llm=FakeLLM(context_window=256), max_tokens=64)


@pytest.mark.parametrize("question", ["", "   \n\t"])
def test_empty_question(kb: KnowledgeBase, question: str) -> None:
    with pytest.raises(QueryError, match="empty"):
        kb.ask(question, llm=FakeLLM())
    assert kb.logs() == []


def test_huge_question_is_refused_before_any_work(kb: KnowledgeBase) -> None:
    llm = FakeLLM()
    with pytest.raises(QueryError, match="100,000 characters"):
        kb.ask("가" * 100_000, llm=llm)
    assert llm.calls == [] and kb.logs() == []


def test_empty_knowledge_base(tmp_path: Path) -> None:
    with _kb(tmp_path / "empty") as base, pytest.raises(EmptyKnowledgeBaseError, match="no documents"):
        base.ask("반품 기간은?", llm=FakeLLM())


def test_broken_stream_raises_and_logs_nothing(kb: KnowledgeBase) -> None:
    stream = kb.ask_stream("반품 기간은?", llm=FakeLLM(["14일입니다 [1]."], fail_after=2))
    pieces = []
    with pytest.raises(LLMResponseError):
        for piece in stream:
            pieces.append(piece)
    assert pieces and kb.logs() == []


def test_stream_pieces_join_to_answer_and_turn_is_logged(kb: KnowledgeBase) -> None:
    stream = kb.ask_stream("반품 기간은?", llm=FakeLLM(["반품은 14일 이내입니다 [1]."]))
    pieces = list(stream)
    assert len(pieces) > 3 and "".join(pieces) == stream.answer.text
    usage = stream.answer.usage
    assert usage.first_token_ms is not None and usage.backend_first_token_ms is not None
    assert usage.completion_tokens > 0 and usage.prompt_tokens > 0
    [row] = kb.logs()
    assert row["question"] == "반품 기간은?" and row["answer"] == stream.answer.text
    assert row["backend"] == "fake" and row["kind"] == "ask" and row["found"]
    assert [c["number"] for c in row["citations"]] == [1]
    assert row["retrieved"] and all(len(pair) == 2 for pair in row["retrieved"])
    assert row["id"] == stream.answer.log_id
    kb.ask("반품 기간은?", llm=FakeLLM(["x"]), log=False)
    assert len(kb.logs()) == 1


def test_chat_rewrites_followups_with_the_llm_and_keeps_memory(kb: KnowledgeBase) -> None:
    def reply(messages: Sequence[Message]) -> str:
        last = messages[-1].content
        if "[후속 질문]" in last:
            return "환불은 며칠 안에 처리되나요?"
        asked = last.rsplit("[질문]", 1)[-1]
        return "환불은 3영업일 안에 처리됩니다 [1]." if "환불" in asked else "반품은 14일 이내입니다 [1]."

    llm = FakeLLM(reply)
    chat = kb.chat(llm=llm, session="s1")
    chat.ask("반품 기간은 며칠인가요?")
    second = chat.ask("그럼 환불은요?")
    assert second.standalone_question == "환불은 며칠 안에 처리되나요?"
    rewrite_prompt = llm.calls[1][-1].content
    assert "반품 기간은 며칠인가요?" in rewrite_prompt and "그럼 환불은요?" in rewrite_prompt
    final = llm.calls[2]
    # the earlier turn travels as history, without its citation markers
    assert [m.role for m in final] == ["system", "user", "assistant", "user"]
    assert final[2].content == "반품은 14일 이내입니다."
    assert "환불은 며칠 안에 처리되나요?" in final[-1].content
    assert [r["session"] for r in kb.logs(session="s1")] == ["s1", "s1"]


def test_history_yields_to_context_when_the_window_is_small(kb: KnowledgeBase) -> None:
    llm = FakeLLM(["답 [1]"], context_window=220)
    chat = kb.chat(llm=llm, memory="buffer", max_tokens=64)
    for _ in range(4):
        chat.memory.add(Turn("질문 " * 20, "답변 " * 20))
    chat.ask("반품 기간은 며칠인가요?")
    sent = llm.calls[-1]
    assert sum(llm.count_tokens([m.content for m in sent])) + 64 <= 220
    assert "[1] (" in sent[-1].content  # the best chunk went in
    assert 2 <= len(sent) < 2 + 8  # older history messages were dropped to make room


def test_map_reduce_and_refine_call_per_group(kb: KnowledgeBase) -> None:
    llm = FakeLLM(lambda messages: "NONE" if "policies/shipping" in messages[-1].content else "14일 [1]")
    answer = kb.ask("반품 기간은?", llm=llm, chain="map_reduce", k=3)
    assert len(llm.calls) == 3 + 1 and answer.text == "14일 [1]"  # a map call per chunk, then reduce
    assert "NONE" not in llm.calls[-1][-1].content
    llm2 = FakeLLM(["초안 [1]", "초안 [1]", "최종 답 [1]"])
    answer2 = kb.ask("반품 기간은 며칠인가요?", llm=llm2, chain="refine", k=3)
    assert len(llm2.calls) == 3 and answer2.text == "최종 답 [1]"
    assert "초안" in llm2.calls[-1][-1].content  # the refine prompt carries the draft
    with pytest.raises(QueryError, match="unknown chain"):
        kb.ask("반품?", llm=llm, chain="stuffed")


def test_templates_dir_overrides_and_validates(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "user.ko.j2").write_text("질문: {{ question }}\n자료:\n{{ context }}", encoding="utf-8")
    with _kb(tmp_path / "kb", answer={"templates_dir": str(templates)}) as base:
        base.add_documents(POLICY[:1])
        llm = FakeLLM(["14일 [1]"])
        base.ask("반품 기간은?", llm=llm)
        assert _user_prompt(llm).startswith("질문: 반품 기간은?\n자료:\n[1] (")
    (templates / "user.en.txt").write_text("Context: {context}", encoding="utf-8")
    with _kb(tmp_path / "kb", answer={"templates_dir": str(templates)}) as base, \
            pytest.raises(TemplateError, match=r"missing \{question\}"):
        base.ask("반품 기간은?", llm=FakeLLM())


def test_unknown_sampling_option(kb: KnowledgeBase) -> None:
    with pytest.raises(QueryError, match="unknown option"):
        kb.ask("반품?", llm=FakeLLM(), temprature=0.5)
