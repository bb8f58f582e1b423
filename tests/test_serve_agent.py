"""Agents on `jisik serve`: the `jisik/<kb>:agent` models and clients that bring their own tools, driven through
the official `openai` client against a real server process on loopback.

The server's LLM is a *fake*, named as such: `ScriptedToolModel`, an OpenAI-compatible server on loopback whose
replies are scripted from what it is sent (jisik's real OpenAI backend and agent loop run; only the model is a
script). It searches the knowledge base first (`kb_search`), then calls the client's tool when one is offered,
then answers citing passage [1]. The knowledge base uses the hashing embedder (a named fake) so the server starts in
seconds; the answers' words matter here, not retrieval quality.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from jisik.serve.state import ServerState
from jisik.testing.server import ServerProcess, running_server
from tests.conftest import SAMPLE_DOCS
from tests.helpers import FAKE_EMBEDDER, run_jisik

QUESTION = "반품 기간은 며칠인가요? 주문 A-1은 어디쯤 왔나요?"
ENV = {**FAKE_EMBEDDER, "JISIK_RAISE_UNEXPECTED": "1", "JISIK_GUARD__GROUNDING": "annotate"}
ORDER_TOOL: Any = {"type": "function", "function": {
    "name": "order_status", "description": "The delivery status of an order, by its id.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string", "description": "e.g. A-1"}},
                   "required": ["order_id"]}}}
ETA_TOOL: Any = {"type": "function", "function": {
    "name": "delivery_eta", "description": "When an order arrives.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}
ONE_TURN = "한 번에"
PLAIN_ANSWER = "상품을 받은 날로부터 14일 이내에 반품할 수 있습니다 [1]."
FINAL_ANSWER = "주문 A-1은 배송 중이며, 반품은 상품을 받은 날로부터 14일 이내에 할 수 있습니다 [1]."


# -- the fake model -------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedToolModel

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": "fake", "object": "model", "max_model_len": 16384}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.requests.append(body)
        message = self.server.reply(body)
        usage = {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}
        if not body.get("stream"):
            self._send({"id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": "fake",
                        "choices": [{"index": 0, "message": message, "finish_reason":
                                     "tool_calls" if message.get("tool_calls") else "stop"}], "usage": usage})
            return
        events = [{"choices": [{"index": 0, "delta": {"content": message["content"]}, "finish_reason": None}]},
                  {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, {"choices": [], "usage": usage}]
        data = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data.encode())))
        self.end_headers()
        self.wfile.write(data.encode())

    def _send(self, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class ScriptedToolModel(ThreadingHTTPServer):
    """A fake OpenAI-compatible model: search first, then the client's tools when offered (order_status, then
    delivery_eta), then an answer citing [1] (a named tool_choice is obeyed at once). ``requests`` holds every chat
    request it got."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        offered = [t["function"]["name"] for t in body.get("tools") or []]
        messages = body["messages"]
        called = {c["id"]: c["function"]["name"] for m in messages if m["role"] == "assistant"
                  for c in m.get("tool_calls") or []}
        results = [called.get(m.get("tool_call_id")) for m in messages if m["role"] == "tool"]
        choice = body.get("tool_choice")

        def call(name: str, arguments: dict[str, Any], *more: tuple[str, dict[str, Any]]) -> dict[str, Any]:
            return {"role": "assistant", "content": None, "tool_calls": [{
                "id": f"fake_{len(messages)}_{i}", "type": "function",
                "function": {"name": n, "arguments": json.dumps(a, ensure_ascii=False)}}
                for i, (n, a) in enumerate([(name, arguments), *more])]}

        if not offered or choice == "none":
            return {"role": "assistant", "content": PLAIN_ANSWER}
        if isinstance(choice, dict):
            return call(choice["function"]["name"], {"order_id": "A-1"})
        if "order_status" in results:
            if "delivery_eta" in offered and "delivery_eta" not in results:
                return call("delivery_eta", {"order_id": "A-1"})
            return {"role": "assistant", "content": FINAL_ANSWER}
        if "kb_search" in results:
            if "order_status" in offered:
                return call("order_status", {"order_id": "A-1"})
            return {"role": "assistant", "content": PLAIN_ANSWER}
        if ONE_TURN in messages[1]["content"] and "order_status" in offered:  # both calls in one turn
            return call("kb_search", {"query": "반품 기간"}, ("order_status", {"order_id": "A-1"}))
        return call("kb_search", {"query": "반품 기간"})

    def chat_requests(self, since: int) -> list[dict[str, Any]]:
        return [r for r in self.requests[since:] if "messages" in r]


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedToolModel]:
    server = ScriptedToolModel()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# -- the jisik server -----------------------------------------------------------------------------------------
@dataclass
class Keys:
    admin: str  # every knowledge base
    shop: str  # reads shop only
    quiet: str  # reads quiet only


def make_kb(path: Path, *, docs: bool = True) -> Path:
    assert run_jisik("init", str(path), env=ENV).returncode == 0
    if docs:
        done = run_jisik("ingest", str(SAMPLE_DOCS), "--kb", str(path), env=ENV)
        assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(scope="module")
def kbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("kbs")
    quiet = make_kb(root / "quiet", docs=False)
    config = quiet / "jisik.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("serve = true", "serve = false"), encoding="utf-8")
    return {"shop": make_kb(root / "shop"), "quiet": quiet}


@pytest.fixture(scope="module")
def served(kbs: dict[str, Path], model: ScriptedToolModel,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Keys]]:
    """A keyed server on loopback over shop (the sample documents) and quiet ([agent] serve = false), answering
    with the scripted model."""
    state_db = tmp_path_factory.mktemp("server") / "server.db"
    state = ServerState(state_db)
    keys = Keys(*(state.create_key(kb=kb, role=role, name=name)[0] for kb, role, name in (
        ("*", "admin", "root"), ("shop", "read", "shop-reader"), ("quiet", "read", "quiet-reader"))))
    state.close()
    with running_server(kbs, state_db=state_db, env=ENV, args=["--llm", f"openai:{model.url}#fake"]) as process:
        yield process, keys


def client_for(served: tuple[ServerProcess, Keys], key: str | None = None) -> OpenAI:
    server, keys = served
    return OpenAI(base_url=server.url("/v1"), api_key=key or keys.admin, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def client(served: tuple[ServerProcess, Keys]) -> OpenAI:
    return client_for(served)


def extra(obj: Any) -> dict[str, Any]:
    return obj.model_extra or {}


def user(text: str = QUESTION) -> Any:
    return {"role": "user", "content": text}


# -- models -------------------------------------------------------------------------------------------------
def test_models_list_each_agent_after_its_knowledge_base(client: OpenAI, served: tuple[ServerProcess, Keys]) -> None:
    assert [m.id for m in client.models.list()] == ["jisik/shop", "jisik/shop:agent", "jisik/quiet"]
    assert client.models.retrieve("jisik/shop:agent").id == "jisik/shop:agent"
    with pytest.raises(openai.NotFoundError):  # [agent] serve = false: no agent
        client.models.retrieve("jisik/quiet:agent")
    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(model="jisik/quiet:agent", messages=[user()])
    assert refused.value.body["code"] == "model_not_found"


def test_a_key_without_the_knowledge_base_gets_404_for_its_agent_too(served: tuple[ServerProcess, Keys]) -> None:
    other = client_for(served, served[1].quiet)
    assert [m.id for m in other.models.list()] == ["jisik/quiet"]
    for name in ("jisik/shop", "jisik/shop:agent"):
        with pytest.raises(openai.NotFoundError) as refused:
            other.chat.completions.create(model=name, messages=[user()], tools=[ORDER_TOOL])
        assert refused.value.body["code"] == "model_not_found"
        assert refused.value.body["message"] == f"the model '{name}' does not exist"


# -- the agent model ------------------------------------------------------------------------------------------
def test_the_agent_model_searches_and_answers_with_citations_and_its_trace(client: OpenAI) -> None:
    response = client.chat.completions.create(model="jisik/shop:agent", messages=[user()])
    choice = response.choices[0]
    assert choice.finish_reason == "stop" and response.model == "jisik/shop:agent"
    assert "14일" in (choice.message.content or "") and not choice.message.tool_calls
    fields = extra(choice.message)
    assert fields["citations"] and fields["citations"][0]["number"] == 1 and fields["citations"][0]["quote"]
    assert [s["tool"] for s in fields["trace"] if s["type"] == "tool"] == ["kb_search"]
    assert fields["strategy"] == "native" and fields["partial"] is False and fields["stopped_by"] is None
    assert response.usage is not None and response.usage.prompt_tokens == 100  # two model turns of the fake


def test_the_agent_model_takes_earlier_turns_as_history(client: OpenAI, model: ScriptedToolModel) -> None:
    before = len(model.requests)
    client.chat.completions.create(model="jisik/shop:agent", messages=[
        {"role": "system", "content": "ignored: jisik's own prompt rules"}, user("배송비는 얼마인가요?"),
        {"role": "assistant", "content": "3,000원입니다 [1]."}, user()])
    sent = model.chat_requests(before)[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == "배송비는 얼마인가요?" and sent[3]["content"] == QUESTION
    assert "ignored" not in sent[0]["content"]


# -- the client's tools -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["jisik/shop:agent", "jisik/shop"])
def test_a_client_tool_round_trip_ends_with_an_answer_citing_the_search(client: OpenAI, model: ScriptedToolModel,
                                                                        name: str) -> None:
    messages: list[Any] = [user()]
    first = client.chat.completions.create(model=name, messages=messages, tools=[ORDER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].type == "function" and calls[0].function.name == "order_status"
    assert isinstance(calls[0].function.arguments, str) and json.loads(calls[0].function.arguments) == {
        "order_id": "A-1"}
    assert calls[0].id.startswith("call_") and not calls[0].id.startswith("call_fake")  # the server's own ids
    assert not choice.message.content
    trace = extra(choice.message)["trace"]
    assert [s["type"] for s in trace] == ["tool", "external"] and trace[0]["tool"] == "kb_search"
    assert extra(choice.message)["stopped_by"] == "external_tool" and extra(choice.message)["partial"] is False

    # the client runs its tool and sends the conversation back, the assistant message as the client returned it
    messages += [choice.message, {"role": "tool", "tool_call_id": calls[0].id, "content": "배송 중 (내일 도착)"}]
    before = len(model.requests)
    final = client.chat.completions.create(model=name, messages=messages, tools=[ORDER_TOOL])
    answer = final.choices[0]
    assert answer.finish_reason == "stop" and not answer.message.tool_calls
    assert "14일" in (answer.message.content or "") and "[1]" in (answer.message.content or "")
    citations = extra(answer.message)["citations"]
    assert [c["number"] for c in citations] == [1] and citations[0]["source"].endswith(".md")
    assert [(s["type"], s.get("external")) for s in extra(answer.message)["trace"]] == [("tool", True), ("final", None)]
    # the model saw the whole run: the search and its passages (kept on the server), then the client's result
    (sent,) = model.chat_requests(before)
    roles = [(m["role"], m.get("tool_call_id")) for m in sent["messages"]]
    assert roles[:2] == [("system", None), ("user", None)] and [r for r, _ in roles[2:]] == [
        "assistant", "tool", "assistant", "tool"]
    assert sent["messages"][3]["content"].startswith("[1] ") and roles[5][1] == calls[0].id
    assert sent["messages"][5]["content"] == "배송 중 (내일 도착)"


def test_two_rounds_of_client_tools_keep_the_run(client: OpenAI, model: ScriptedToolModel) -> None:
    messages: list[Any] = [user()]
    for expected in ("order_status", "delivery_eta"):
        response = client.chat.completions.create(model="jisik/shop:agent", messages=messages,
                                                  tools=[ORDER_TOOL, ETA_TOOL])
        message = response.choices[0].message
        assert response.choices[0].finish_reason == "tool_calls"
        (call,) = message.tool_calls or []
        assert call.function.name == expected
        messages += [message, {"role": "tool", "tool_call_id": call.id, "content": f"{expected}: 내일"}]
    before = len(model.requests)
    final = client.chat.completions.create(model="jisik/shop:agent", messages=messages, tools=[ORDER_TOOL, ETA_TOOL])
    assert final.choices[0].finish_reason == "stop"
    assert [c["number"] for c in extra(final.choices[0].message)["citations"]] == [1]
    (sent,) = model.chat_requests(before)
    assert [m["role"] for m in sent["messages"]] == ["system", "user", *["assistant", "tool"] * 3]
    assert [m["content"] for m in sent["messages"][5::2]] == ["order_status: 내일", "delivery_eta: 내일"]


def test_a_turn_calling_a_built_in_and_a_client_tool_runs_the_built_in_first(client: OpenAI,
                                                                             model: ScriptedToolModel) -> None:
    question = user(f"{ONE_TURN}알려 주세요: {QUESTION}")
    first = client.chat.completions.create(model="jisik/shop:agent", messages=[question], tools=[ORDER_TOOL])
    message = first.choices[0].message
    (call,) = message.tool_calls or []  # only the client's call goes back; kb_search ran on the server
    assert call.function.name == "order_status"
    assert [s["type"] for s in extra(message)["trace"]] == ["tool", "external"]
    before = len(model.requests)
    final = client.chat.completions.create(model="jisik/shop:agent", tools=[ORDER_TOOL], messages=[
        question, message, {"role": "tool", "tool_call_id": call.id, "content": "배송 중"}])
    assert [c["number"] for c in extra(final.choices[0].message)["citations"]] == [1]
    (sent,) = model.chat_requests(before)
    assistant, searched, result = sent["messages"][2:]
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["kb_search", "order_status"]
    assert searched["tool_call_id"] == assistant["tool_calls"][0]["id"] and searched["content"].startswith("[1] ")
    assert result == {"role": "tool", "content": "배송 중", "tool_call_id": call.id}


def test_streamed_run_sends_each_step_then_the_calls_then_the_answer(client: OpenAI) -> None:
    stream = client.chat.completions.create(model="jisik/shop:agent", messages=[user()], tools=[ORDER_TOOL],
                                            stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    steps = [extra(c.choices[0].delta)["jisik_step"] for c in chunks if "jisik_step" in extra(c.choices[0].delta)]
    assert [s["type"] for s in steps] == ["tool", "external"] and steps[0]["tool"] == "kb_search"
    assert steps[0]["passages"] and steps[0]["observation"].startswith("[1] ")
    deltas = [c.choices[0].delta.tool_calls for c in chunks if c.choices[0].delta.tool_calls]
    assert len(deltas) == 1 and deltas[0][0].index == 0 and deltas[0][0].function is not None
    call = deltas[0][0]
    assert call.function is not None and call.function.name == "order_status" and call.id
    assert json.loads(call.function.arguments or "") == {"order_id": "A-1"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    echoed = {"id": call.id, "type": "function", "function": {"name": "order_status",
                                                            "arguments": call.function.arguments}}
    messages: list[Any] = [user(), {"role": "assistant", "content": None, "tool_calls": [echoed]},
                           {"role": "tool", "tool_call_id": call.id, "content": "배송 중 (내일 도착)"}]
    stream = client.chat.completions.create(model="jisik/shop:agent", messages=messages, tools=[ORDER_TOOL],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "14일" in text
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(final) == 1 and final[0].choices[0].finish_reason == "stop"
    fields = extra(final[0].choices[0].delta)
    assert [c["number"] for c in fields["citations"]] == [1] and fields["strategy"] == "native"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_the_stream_is_server_sent_chunks_ending_with_done(served: tuple[ServerProcess, Keys]) -> None:
    server, keys = served
    body = {"model": "jisik/shop:agent", "messages": [user()], "stream": True}
    with httpx.stream("POST", server.url("/v1/chat/completions"), json=body, timeout=60,
                      headers={"Authorization": f"Bearer {keys.admin}"}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    parsed = [json.loads(e) for e in events[:-1]]
    assert all(p["object"] == "chat.completion.chunk" and p["model"] == "jisik/shop:agent" for p in parsed)
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"


def test_tool_choice_names_a_tool_or_keeps_the_clients_tools_out(client: OpenAI, model: ScriptedToolModel) -> None:
    named = client.chat.completions.create(model="jisik/shop", messages=[user()], tools=[ORDER_TOOL],
                                           tool_choice={"type": "function", "function": {"name": "order_status"}})
    assert named.choices[0].finish_reason == "tool_calls"
    assert [s["type"] for s in extra(named.choices[0].message)["trace"]] == ["external"]  # no search first
    before = len(model.requests)
    none = client.chat.completions.create(model="jisik/shop", messages=[user()], tools=[ORDER_TOOL],
                                          tool_choice="none")
    assert none.choices[0].finish_reason == "stop" and "14일" in (none.choices[0].message.content or "")
    assert extra(none.choices[0].message)["citations"] and extra(none.choices[0].message).get("trace") is None
    assert all("tools" not in r for r in model.chat_requests(before))  # the plain answer: no agent, no tools
    agent = client.chat.completions.create(model="jisik/shop:agent", messages=[user()], tools=[ORDER_TOOL],
                                           tool_choice="none")
    assert agent.choices[0].finish_reason == "stop"  # the agent with its own tools only
    assert [s["tool"] for s in extra(agent.choices[0].message)["trace"] if s["type"] == "tool"] == ["kb_search"]


def test_a_run_no_longer_parked_resumes_from_the_clients_messages(client: OpenAI, served: tuple[ServerProcess, Keys],
                                                                  model: ScriptedToolModel) -> None:
    first = client.chat.completions.create(model="jisik/shop:agent", messages=[user()], tools=[ORDER_TOOL])
    message = first.choices[0].message
    call = (message.tool_calls or [])[0]
    result = {"role": "tool", "tool_call_id": call.id, "content": "배송 중"}
    # another key may read shop too, but the run was parked for the first key: it resumes without its passages
    before = len(model.requests)
    other = client_for(served, served[1].shop)
    resumed = other.chat.completions.create(model="jisik/shop:agent", messages=[user(), message, result],
                                            tools=[ORDER_TOOL])
    assert resumed.choices[0].finish_reason == "stop"
    assert extra(resumed.choices[0].message)["citations"] == []  # [1] pointed at a passage this run never saw
    (sent,) = model.chat_requests(before)
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool"]


# -- refusals -----------------------------------------------------------------------------------------------------
def _refused(client: OpenAI, **request: Any) -> dict[str, Any]:
    request.setdefault("model", "jisik/shop:agent")
    request.setdefault("messages", [user()])
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**request)
    body: dict[str, Any] = refused.value.body  # type: ignore[assignment]
    return body


def test_bad_tools_tool_choice_and_tool_messages_are_400(client: OpenAI) -> None:
    clash = {"type": "function", "function": {"name": "kb_search", "parameters": {"type": "object"}}}
    assert _refused(client, tools=[clash])["code"] == "invalid_tools"
    assert _refused(client, tools=[ORDER_TOOL, ORDER_TOOL])["code"] == "invalid_tools"
    not_object = {"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}
    error = _refused(client, tools=[not_object])
    assert error["code"] == "invalid_request" and error["param"] == "tools.0.function.parameters.type"
    error = _refused(client, tools=[ORDER_TOOL], tool_choice={"type": "function", "function": {"name": "nope"}})
    assert error["code"] == "invalid_tool_choice" and "nope" in error["message"]
    error = _refused(client, model="jisik/shop", tool_choice="required")
    assert error["code"] == "invalid_tool_choice" and "jisik/shop:agent" in error["hint"]
    stray = [user(), {"role": "tool", "tool_call_id": "call_never_made", "content": "x"}]
    error = _refused(client, messages=stray, tools=[ORDER_TOOL])
    assert error["code"] == "invalid_messages" and "call_never_made" in error["message"]
    unanswered = [user(), {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "order_status", "arguments": "{}"}}]}]
    error = _refused(client, messages=unanswered, tools=[ORDER_TOOL])
    assert error["code"] == "invalid_messages" and "call_1" in error["message"] and "no result" in error["message"]
    assert _refused(client, messages=[user(" ")])["code"] == "query_error"
    assert _refused(client, messages=[user(" ")], stream=True)["code"] == "query_error"  # before the stream starts


def test_an_extractive_server_refuses_agents_with_a_hint(kbs: dict[str, Path], tmp_path: Path) -> None:
    with running_server({"shop": kbs["shop"]}, state_db=tmp_path / "server.db", env=ENV) as server:
        client = OpenAI(base_url=server.url("/v1"), api_key="unused", max_retries=0, timeout=60)
        assert [m.id for m in client.models.list()] == ["jisik/shop"]  # no agent listed without an LLM
        error = _refused(client)
        assert error["code"] == "agent_needs_llm" and "jisik serve --llm" in error["hint"]
        assert _refused(client, model="jisik/shop", tools=[ORDER_TOOL], tool_choice="required")["code"] == \
            "agent_needs_llm"
        # tools with tool_choice auto: an extractive answer calls none, the plain answer comes back
        plain = client.chat.completions.create(model="jisik/shop", messages=[user("반품 기간은 며칠인가요?")],
                                               tools=[ORDER_TOOL])
        assert plain.choices[0].finish_reason == "stop" and plain.choices[0].message.content
        assert not plain.choices[0].message.tool_calls and extra(plain.choices[0].message)["trace"] is None
