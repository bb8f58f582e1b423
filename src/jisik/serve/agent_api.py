"""Agents on the OpenAI-compatible chat API: ``jisik/<kb>:agent`` models, and clients that bring their own tools.

A chat completion runs the knowledge base's agent (:meth:`jisik.kb.KnowledgeBase.agent`) when the model is
``jisik/<kb>:agent``, when the request offers ``tools``, or when the conversation ends with tool results. The
client's tools are *external* to the agent: when the model calls one, the run stops and the response is OpenAI's
(``finish_reason: "tool_calls"``, ``message.tool_calls``); the client runs the calls and sends the conversation
back with one ``role: "tool"`` message per call, and the run goes on where it stopped.

Where it stopped is kept here (:class:`ParkedRuns`: in this process's memory, bound to the API key and the
knowledge base, for an hour), keyed by the call ids handed to the client: the built-in calls of the run and the
passages they found never reach the client, yet the final answer cites them. A conversation whose run is not
parked any more (the server restarted, another worker took the request, an hour went by) resumes from the
messages the client sent, without those passages.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from jisik.agent.builtin import BUILTIN_TOOLS
from jisik.agent.tools import ToolContext, ToolResult
from jisik.errors import AgentError, JisikError
from jisik.generate.llms.base import Message, ToolCall, ToolChoice
from jisik.serve import schemas
from jisik.serve.errors import ApiError, status_of
from jisik.serve.library import AGENT_SUFFIX, Served
from jisik.serve.streaming import error_event, iterate_in_thread, sse

if TYPE_CHECKING:
    from jisik.agent.loop import Agent, Suspended
    from jisik.records import Answer

log = logging.getLogger("jisik.serve")
PARK_SECONDS = 3600.0  # a client runs its tools within the hour, or the run resumes without its passages
PARK_LIMIT = 2000  # parked call ids per server process; the oldest go first (a run's state is a few kB)


@dataclass(slots=True)
class ClientTool:
    """A tool of the client (OpenAI ``tools``): offered to the model, never run here — when the model calls it the
    agent stops and the call goes back to the client (``Answer.tool_calls``)."""

    name: str
    description: str
    parameters: dict[str, Any]

    def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        raise AgentError(f"the tool '{self.name}' runs on the client", hint="the agent returns its calls instead")


def client_tools(definitions: Sequence[schemas.ToolDefinition], taken: set[str]) -> list[ClientTool]:
    """The request's ``tools`` as :class:`ClientTool` objects; a name used twice or one of the agent's own is a 400."""
    made: list[ClientTool] = []
    for index, definition in enumerate(definitions):
        function = definition.function
        where = f"tools.{index}.function.name"
        if function.name in taken:
            raise ApiError(400, f"the tool name '{function.name}' is a built-in tool of the agent",
                           code="invalid_tools", param=where,
                           hint=f"rename your tool; built-in tools: {', '.join(sorted(taken))}")
        if any(t.name == function.name for t in made):
            raise ApiError(400, f"two tools are named '{function.name}'", code="invalid_tools", param=where,
                           hint="give each tool its own name")
        parameters = function.parameters.model_dump() if function.parameters is not None else \
            {"type": "object", "properties": {}, "required": []}
        made.append(ClientTool(function.name, function.description or "", parameters))
    return made


# -- the conversation ------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Conversation:
    """OpenAI ``messages`` as the agent takes them. ``exchange``: what follows the question (the assistant's tool
    calls and their results, in jisik's form); ``last_calls``: the ids of the calls the newest results answer."""

    question: str
    history: list[Message]
    exchange: list[Message]
    last_calls: list[str]


def _bad(message: str, index: int | None = None, *, field: str | None = None, hint: str | None = None) -> ApiError:
    param = "messages" if index is None else f"messages.{index}" + (f".{field}" if field else "")
    return ApiError(400, message, code="invalid_messages", param=param, hint=hint)


def _arguments(raw: str | dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    from jisik.generate.llms._tools import decode_arguments

    return decode_arguments(raw)


def read_conversation(messages: Sequence[schemas.ChatMessage]) -> Conversation:
    """The question (the last user message), the user and assistant messages before it as history, and the tool
    exchange after it — checked: every ``tool`` message answers an earlier call, once, and every call after the
    question has its result. System messages are left out (jisik's prompt rules, as for the plain model).

    >>> chat = [schemas.ChatMessage(role="user", content="반품 기간은?"),
    ...         schemas.ChatMessage(role="assistant", tool_calls=[schemas.ToolCall(
    ...             id="c1", function=schemas.FunctionCall(name="order", arguments='{"id": 7}'))]),
    ...         schemas.ChatMessage(role="tool", tool_call_id="c1", content="배송 중")]
    >>> talk = read_conversation(chat)
    >>> talk.question, [m.role for m in talk.exchange], talk.exchange[1].name, talk.last_calls
    ('반품 기간은?', ['assistant', 'tool'], 'order', ['c1'])
    """
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last_user is None:
        raise _bad("the conversation has no user message: the last one is the question")
    called: dict[str, str] = {}  # call id → tool name, of every assistant call so far
    answered: set[str] = set()
    for index, message in enumerate(messages):
        if message.role == "assistant":
            for call in message.tool_calls or ():
                called[call.id] = call.function.name
        elif message.role == "tool":
            call_id = message.tool_call_id
            if not call_id:
                raise _bad(f"messages[{index}] is a tool message without tool_call_id", index, field="tool_call_id",
                           hint="quote the id of the assistant's tool call it answers")
            if call_id not in called:
                raise _bad(f"the tool message messages[{index}] answers the call '{call_id}', which no earlier "
                           "assistant message made", index, field="tool_call_id",
                           hint="send the assistant message with its tool_calls before the tool results")
            if call_id in answered:
                raise _bad(f"the call '{call_id}' is answered twice (messages[{index}])", index, field="tool_call_id")
            answered.add(call_id)
    history: list[Message] = []
    for message in messages[:last_user]:
        text = message.text()
        if message.role == "user" or (message.role == "assistant" and text):
            history.append(Message(message.role, text))
    exchange: list[Message] = []
    in_exchange: dict[str, str] = {}
    last_calls: list[str] = []
    after = messages[last_user + 1:]
    for index in range(last_user + 1, len(messages)):
        message = messages[index]
        if message.role == "assistant":
            if not message.tool_calls:
                if not any(m.tool_calls for m in after):  # what the plain model always said
                    raise _bad("the last user or assistant message must be the user's question")
                raise _bad("after the question only the assistant's tool calls and their results may follow",
                           index, hint="the last user message is the question; earlier answers go before it")
            calls = []
            for call in message.tool_calls:
                arguments, error = _arguments(call.function.arguments)
                calls.append(ToolCall(call.id, call.function.name, arguments, error))
                in_exchange[call.id] = call.function.name
            exchange.append(Message("assistant", message.text(), tool_calls=tuple(calls)))
            last_calls = [call.id for call in message.tool_calls]
        elif message.role == "tool":
            call_id = message.tool_call_id or ""
            if call_id not in in_exchange:
                raise _bad(f"the tool message messages[{index}] answers '{call_id}', a call made before the question",
                           index, field="tool_call_id")
            exchange.append(Message("tool", message.text(), tool_call_id=call_id, name=in_exchange[call_id]))
    missing = [call_id for call_id in in_exchange if call_id not in answered]
    if missing:
        raise _bad(f"the tool call '{missing[0]}' ({in_exchange[missing[0]]}) has no result", hint="send one role: "
                   f"tool message per call after the assistant message, with tool_call_id '{missing[0]}'")
    return Conversation(messages[last_user].text(), history, exchange, last_calls)


# -- what a request asks for ----------------------------------------------------------------------------------
@dataclass(slots=True)
class AgentRequest:
    """A chat completion the agent answers: for ``served``, answered as ``model``."""

    served: Served
    model: str
    conversation: Conversation
    tools: list[ClientTool]  # the client's tools offered to the model
    tool_choice: ToolChoice
    one_call: bool  # parallel_tool_calls: false


def _choice_text(choice: Any) -> str:
    return f"'{choice}'" if isinstance(choice, str) else f"function '{choice.function.name}'"


def plan_agent(body: schemas.ChatCompletionRequest, served: Served, agent_model: bool,
               llm: str | None) -> AgentRequest | None:
    """The agent run a request asks for, or None for the plain answer (``jisik/<kb>`` without tools, or with
    ``tool_choice: "none"``). Every refusal is a 400 here, before anything runs or streams."""
    own = list(served.kb.config.agent.tools)
    mine = client_tools(body.tools or [], set(BUILTIN_TOOLS) | set(own))
    choice = body.tool_choice or "auto"
    talk = read_conversation(body.messages)
    offered = [] if choice == "none" else mine
    if not agent_model and not offered and not talk.exchange:
        if choice not in ("none", "auto"):
            raise ApiError(400, f"tool_choice {_choice_text(choice)} needs tools", code="invalid_tool_choice",
                           param="tool_choice", hint=f"send tools, or ask the model {served.agent_model}")
        return None
    if isinstance(choice, schemas.NamedToolChoice):
        names = [t.name for t in mine] + own
        if choice.function.name not in names:
            raise ApiError(400, f"tool_choice names the function '{choice.function.name}', which is not one of the "
                           "tools", code="invalid_tool_choice", param="tool_choice.function.name",
                           hint=f"name one of: {', '.join(names) or '(no tools)'}")
    if served.llm_backend(llm) == "extractive":
        if not agent_model and not talk.exchange and choice == "auto":
            return None  # an extractive server calls no tools: the plain answer, as a model may choose to give
        asked = f"the model {served.agent_model}" if agent_model else "this request (tools or tool results)"
        raise ApiError(400, f"{asked} needs the agent, which needs an LLM, and this server answers extractively "
                       "(the extractive answerer cannot call tools)", code="agent_needs_llm",
                       param="model" if agent_model else "tools",
                       hint="start the server with one: jisik serve --llm openai:http://127.0.0.1:8080/v1#MODEL "
                            "(or ollama:MODEL, llamacpp:/models/m.gguf), or set [llm] in the knowledge base")
    agent_choice: ToolChoice = "auto" if choice == "none" else choice if isinstance(choice, str) else \
        {"type": "function", "function": {"name": choice.function.name}}
    return AgentRequest(served, served.agent_model if agent_model else served.model, talk, offered, agent_choice,
                        body.parallel_tool_calls is False)


def make_agent(request: AgentRequest, body: schemas.ChatCompletionRequest, *, llm: str | None,
               session: str | None) -> Agent:
    """The knowledge base's agent for one request (its ``[agent]`` settings; sampling and language from the body)."""
    agent = request.served.kb.agent(llm=llm, external=request.tools, tool_choice=request.tool_choice)
    agent.session = session  # the turn is logged under the X-Jisik-Session; the client keeps the history itself
    if body.language is not None:
        agent.language = body.language
    agent.generation = agent.generation.with_(temperature=body.temperature, top_p=body.top_p, top_k=body.top_k,
                                              seed=body.seed)
    return agent


def precheck(agent: Agent, question: str) -> None:
    """Refuse a question before a stream starts (a 400, not an error event inside a 200): empty, too long, or
    blocked by the input guards — the checks :meth:`Agent.ask` makes first."""
    from jisik.generate.answerer import validate_question

    text = validate_question(question, agent.max_question_chars)
    if agent.guard is not None:
        agent.guard.question(text)


# -- runs stopped for the client's tools ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Parked:
    key_id: str | None
    kb: str
    state: Any  # jisik.agent.loop.Suspended
    at: float


class ParkedRuns:
    """Agent runs waiting for the client's tool results, by the call ids the client was given.

    >>> runs = ParkedRuns(limit=2)
    >>> runs.park(["call_a"], None, "kb", "state")
    >>> runs.find(["call_a"], None, "kb"), runs.find(["call_a"], "another key", "kb"), runs.find(["x"], None, "kb")
    ('state', None, None)
    """

    def __init__(self, *, limit: int = PARK_LIMIT, seconds: float = PARK_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.seconds, self.clock = limit, seconds, clock
        self._runs: OrderedDict[str, _Parked] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self) -> None:
        oldest = self.clock() - self.seconds
        while self._runs and (len(self._runs) > self.limit or next(iter(self._runs.values())).at < oldest):
            self._runs.popitem(last=False)

    def park(self, ids: Sequence[str], key_id: str | None, kb: str, state: Any) -> None:
        entry = _Parked(key_id, kb, state, self.clock())
        with self._lock:
            for call_id in ids:
                self._runs[call_id] = entry
                self._runs.move_to_end(call_id)
            self._expire()

    def find(self, ids: Sequence[str], key_id: str | None, kb: str) -> Any:
        """The state parked under ``ids`` (all of them, one run) for this key and knowledge base; else None."""
        with self._lock:
            self._expire()
            entries = [self._runs.get(call_id) for call_id in ids]
        entry = entries[0] if entries else None
        if entry is None or any(other is not entry for other in entries):
            return None
        return entry.state if (entry.key_id, entry.kb) == (key_id, kb) else None


_CREATE = threading.Lock()


def parked_runs(app: Any) -> ParkedRuns:
    """This server's :class:`ParkedRuns` (made on first use)."""
    with _CREATE:
        runs: ParkedRuns | None = getattr(app.state, "jisik_parked_runs", None)
        if runs is None:
            runs = app.state.jisik_parked_runs = ParkedRuns()
    return runs


def resume_state(request: AgentRequest, runs: ParkedRuns, key_id: str | None) -> Suspended | None:
    """Where the run goes on: the parked run plus the client's new results, else (not parked any more) the
    exchange the client sent; None for a new question."""
    talk = request.conversation
    if not talk.exchange:
        return None
    from jisik.agent.loop import Suspended

    last = max(i for i, m in enumerate(talk.exchange) if m.role == "assistant")
    parked = runs.find(talk.last_calls, key_id, request.served.name)
    if parked is not None:
        state: Suspended = replace(parked, messages=(*parked.messages, *talk.exchange[last + 1:]))
        return state
    log.info("%s: the run behind tool calls %s is not parked here; resuming from the client's messages",
             request.model, ", ".join(talk.last_calls))
    return Suspended(tuple(talk.exchange), (), sum(m.role == "assistant" for m in talk.exchange))


def hand_out_calls(request: AgentRequest, answer: Answer, runs: ParkedRuns,
                   key_id: str | None) -> list[schemas.ToolCallOut]:
    """The client's calls as OpenAI ``tool_calls``, each under a fresh id the run is parked by."""
    calls = list(answer.tool_calls)[:1] if request.one_call else list(answer.tool_calls)
    if not calls:
        return []
    minted = {str(c["id"]): f"call_{secrets.token_hex(12)}" for c in calls}
    dropped = {str(c["id"]) for c in answer.tool_calls} - set(minted)
    state = getattr(answer, "suspended", None)
    if state is not None:
        messages = list(state.messages)
        last = max(i for i, m in enumerate(messages) if m.role == "assistant")
        message = messages[last]
        renamed = tuple(replace(c, id=minted.get(c.id, c.id)) for c in message.tool_calls if c.id not in dropped)
        messages[last] = replace(message, tool_calls=renamed)
        runs.park(list(minted.values()), key_id, request.served.name, replace(state, messages=tuple(messages)))
    return [schemas.ToolCallOut(id=minted[str(c["id"])], function=schemas.FunctionCallOut(
        name=str(c["name"]), arguments=json.dumps(c["arguments"], ensure_ascii=False))) for c in calls]


# -- answers ----------------------------------------------------------------------------------------------------
def _usage(answer: Answer) -> dict[str, int]:
    prompt, completion = answer.usage.prompt_tokens, answer.usage.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _extensions(answer: Answer) -> dict[str, Any]:
    return {"citations": [c.to_dict() for c in answer.citations], "grounding": answer.grounding,
            "guard": answer.guard, "strategy": answer.strategy, "partial": answer.partial,
            "stopped_by": answer.stopped_by}


def ask(agent: Agent, request: AgentRequest, resume: Suspended | None,
        on_step: Callable[[dict[str, Any]], None] | None = None) -> Answer:
    talk = request.conversation
    if resume is None:
        return agent.ask(talk.question, history=talk.history, on_step=on_step)
    return agent.ask(talk.question, history=talk.history, on_step=on_step, resume=resume)


def completion(request: AgentRequest, answer: Answer, calls: list[schemas.ToolCallOut], completion_id: str,
               created: int) -> schemas.ChatCompletion:
    extensions = _extensions(answer)
    citations = [schemas.Citation(**c) for c in extensions.pop("citations")]
    message = schemas.AssistantMessage(content=(answer.text or None) if calls else answer.text,
                                       tool_calls=calls or None, citations=citations, trace=answer.trace,
                                       **extensions)
    return schemas.ChatCompletion(
        id=completion_id, created=created, model=request.model,
        choices=[schemas.Choice(message=message, finish_reason="tool_calls" if calls else "stop")],
        usage=schemas.Usage(**_usage(answer)))


class _Cancelled(Exception):
    """Raised into the agent's run from its step callback once the client has gone."""


def _run_in_thread(run: Callable[[Callable[[dict[str, Any]], None]], Answer]) -> Iterator[tuple[str, Any]]:
    """``("step", record)`` for each agent step as it happens, then ``("answer", Answer)``. The run has its own
    thread; when this iterator is closed (the client left) the run stops at its next step."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    gone = threading.Event()

    def on_step(step: dict[str, Any]) -> None:
        if gone.is_set():
            raise _Cancelled
        events.put(("step", step))

    def work() -> None:
        try:
            events.put(("answer", run(on_step)))
        except BaseException as exc:  # handed to the stream, which tells the client
            events.put(("error", exc))

    threading.Thread(target=work, name="jisik-agent", daemon=True).start()
    try:
        while True:
            kind, value = events.get()
            if kind == "error":
                raise value
            yield kind, value
            if kind == "answer":
                return
    finally:
        gone.set()


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


async def stream(request: AgentRequest, agent: Agent, resume: Suspended | None, *, runs: ParkedRuns,
                 key_id: str | None, completion_id: str, created: int, include_usage: bool,
                 counter: Any) -> AsyncIterator[str]:
    """Server-sent chunks: each agent step as ``delta.jisik_step`` while the run goes, then the answer (or the
    client's ``tool_calls``) and a final chunk with the citations, as the plain model's stream ends."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return sse({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": request.model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    yield chunk({"role": "assistant", "content": ""})
    answer: Answer | None = None
    try:
        async for kind, value in iterate_in_thread(_run_in_thread(lambda step: ask(agent, request, resume, step)),
                                                   counter):
            if kind == "step":
                yield chunk({"jisik_step": _jsonable(value)})
            else:
                answer = value
    except JisikError as exc:  # the backend failed mid-run: an error event, as OpenAI sends one
        yield error_event(exc, server_error=status_of(exc) >= 500)
        yield sse("[DONE]")
        return
    except Exception:
        log.exception("the agent failed in a stream of %s", request.model)
        yield error_event(JisikError("internal error; the server log has the details"), server_error=True)
        yield sse("[DONE]")
        return
    assert answer is not None
    calls = hand_out_calls(request, answer, runs, key_id)
    if answer.text:
        yield chunk({"content": answer.text})
    if calls:
        yield chunk({"tool_calls": [{"index": i, **c.model_dump()} for i, c in enumerate(calls)]})
    final = {**_extensions(answer), "invalid_citations": answer.invalid_citations}
    yield chunk(final, "tool_calls" if calls else "stop")
    if include_usage:
        yield sse({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                   "model": request.model, "choices": [], "usage": _usage(answer)})
    yield sse("[DONE]")


__all__ = ["AGENT_SUFFIX", "AgentRequest", "ClientTool", "Conversation", "ParkedRuns", "client_tools",
           "completion", "hand_out_calls", "make_agent", "parked_runs", "plan_agent", "precheck", "read_conversation",
           "resume_state", "stream"]
