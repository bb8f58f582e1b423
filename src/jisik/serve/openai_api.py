"""OpenAI-compatible endpoints: ``/v1/models``, ``/v1/chat/completions`` (streamed or not), ``/v1/embeddings``.

Each knowledge base is a model, ``jisik/<name>``, and its agent another, ``jisik/<name>:agent``
(:mod:`jisik.serve.agent_api`, which also answers requests that bring ``tools``). Citations travel as an
extension field: ``message.citations`` in a completion, ``choices[0].delta.citations`` on the last content chunk
of a stream.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from jisik.errors import JisikError
from jisik.generate.answerer import AnswerStream
from jisik.generate.memory import Turn
from jisik.records import Answer
from jisik.serve import agent_api, schemas
from jisik.serve.auth import Caller, Principal, visible
from jisik.serve.errors import ApiError, responses, status_of
from jisik.serve.library import AGENT_SUFFIX, MODEL_PREFIX, Served
from jisik.serve.streaming import SSE_HEADERS, error_event, iterate_in_thread, sse

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
_STARTED = int(time.time())


def _context(request: Request) -> Any:
    return request.app.state.context


def _no_model(model: str) -> ApiError:
    return ApiError(404, f"the model '{model}' does not exist", code="model_not_found", param="model",
                    hint="models are jisik/<knowledge base> and jisik/<knowledge base>:agent (GET /v1/models)")


def served_model(request: Request, principal: Principal, model: str) -> Served:
    """The knowledge base behind ``jisik/<name>``; unknown (or invisible to this key) is 404 model_not_found."""
    served = visible(_context(request), principal, model.removeprefix(MODEL_PREFIX)) \
        if model.startswith(MODEL_PREFIX) else None
    if served is None:
        raise _no_model(model)
    request.state.kb = served.name  # for the request log line
    return served


def chat_model(request: Request, principal: Principal, model: str) -> tuple[Served, bool]:
    """(the knowledge base, whether its agent was asked for) behind ``jisik/<name>`` or ``jisik/<name>:agent``;
    the agent of a knowledge base with ``[agent] serve = false`` does not exist (404, as an unknown model)."""
    if not model.endswith(AGENT_SUFFIX):
        return served_model(request, principal, model), False
    try:
        served = served_model(request, principal, model.removesuffix(AGENT_SUFFIX))
    except ApiError:
        raise _no_model(model) from None
    if not served.kb.config.agent.serve:
        raise _no_model(model)
    return served, True


@router.get("/models", response_model=schemas.ModelList, responses=responses())
def list_models(request: Request, principal: Caller) -> schemas.ModelList:
    """Every knowledge base this key may read, as a model, each followed by its agent where the server runs one
    (``[agent] serve`` on, and an LLM to run it)."""
    context = _context(request)
    found = [s for s in context.library.all() if principal.can(s.name, "read")]
    ids = [i for s in found for i in (s.model, s.agent_model) if i == s.model or s.serves_agent(context.settings.llm)]
    return schemas.ModelList(data=[schemas.Model(id=i, created=_STARTED) for i in ids])


@router.get("/models/{model:path}", response_model=schemas.Model, responses=responses())
def get_model(model: str, request: Request, principal: Caller) -> schemas.Model:
    served, agent = chat_model(request, principal, model)
    if agent and not served.serves_agent(_context(request).settings.llm):
        raise _no_model(model)
    return schemas.Model(id=served.agent_model if agent else served.model, created=_STARTED)


def text_of(message: schemas.ChatMessage) -> str:
    """The text of a message: a string, or its text parts joined (images and other parts are ignored)."""
    return message.text()


def conversation(messages: list[schemas.ChatMessage]) -> tuple[str, list[Turn]]:
    """(the question, earlier turns) from OpenAI ``messages``: the last user message asks; the user and
    assistant messages before it pair into history. System messages are left out (jisik's prompt rules)."""
    talk = [(m.role, text_of(m)) for m in messages if m.role in ("user", "assistant")]
    if not talk or talk[-1][0] != "user":
        raise ApiError(400, "the last user or assistant message must be the user's question",
                       code="invalid_messages", param="messages")
    question = talk[-1][1]
    turns: list[Turn] = []
    pending: str | None = None
    for role, text in talk[:-1]:
        if role == "user":
            if pending is not None:
                turns.append(Turn(pending, ""))
            pending = text
        elif pending is not None:
            turns.append(Turn(pending, text))
            pending = None
    if pending is not None:
        turns.append(Turn(pending, ""))
    return question, turns


def _sampling(body: schemas.ChatCompletionRequest) -> dict[str, Any]:
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    values = {"temperature": body.temperature, "top_p": body.top_p, "top_k": body.top_k,
              "max_tokens": body.max_completion_tokens or body.max_tokens, "seed": body.seed,
              "stop": tuple(stop) if stop else None}
    return {key: value for key, value in values.items() if value is not None}


def start_answer(served: Served, question: str, history: list[Turn], *, session: str | None, k: int | None,
                 mode: str | None, filters: list[str] | None, language: str | None, chain: str | None,
                 sampling: dict[str, Any], llm: str | None) -> AnswerStream:
    """An answer stream for a question with its history (validated here: bad input raises before streaming)."""
    from jisik.filters import build_filter
    from jisik.generate.chat import ChatSession

    build_filter(filters or None)  # a bad filter is a 400 now, not an error event inside a 200 stream
    kb = served.kb
    if not history:
        return kb.ask_stream(question, llm=llm, k=k, mode=mode, filters=filters or None, chain=chain,
                             language=language, **sampling)
    answerer = kb.answerer(llm=llm, k=k, mode=mode, filters=filters or None, **sampling)
    chat = ChatSession(answerer, kb.config.answer, session=session, history=history)
    return chat.ask_stream(question, chain=chain, language=language)


def citations_of(answer: Answer) -> list[dict[str, Any]]:
    return [c.to_dict() for c in answer.citations]


def usage_of(answer: Answer, served: Served) -> dict[str, int]:
    """OpenAI's usage. The extractive answerer has no LLM tokens: the question and the answer are counted
    with the embedder's tokenizer instead, so clients that meter usage see something real."""
    prompt, completion = answer.usage.prompt_tokens, answer.usage.completion_tokens
    counter = getattr(served.kb.embedder, "count_tokens", None)
    if prompt == 0 and completion == 0 and counter is not None:
        prompt, completion = counter([answer.question, answer.text])
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


@router.post("/chat/completions", response_model=schemas.ChatCompletion,
             responses={**responses(409, 503), 200: {"content": {"text/event-stream": {"schema": {
                 "$ref": "#/components/schemas/ChatCompletionChunk"}}},
                 "description": "a completion, or with stream=true server-sent chat.completion.chunk events"}})
async def chat_completions(body: schemas.ChatCompletionRequest, request: Request,
                           principal: Caller,
                           session: str | None = Header(None, alias="X-Jisik-Session", max_length=128),
                           ) -> Any:
    """Answer the last user message from the knowledge base ``model``, with citations; ``jisik/<kb>:agent``, or
    ``tools`` of the client, run the knowledge base's agent (docs/server-agents.md)."""
    served, agent_model = chat_model(request, principal, body.model)
    context = _context(request)
    plan = agent_api.plan_agent(body, served, agent_model, context.settings.llm)
    if plan is not None:
        return await _agent_completion(plan, body, request, principal, session)
    question, history = conversation(body.messages)
    stream = await run_in_threadpool(
        start_answer, served, question, history, session=session, k=body.k, mode=body.mode, filters=body.filters,
        language=body.language, chain=body.chain, sampling=_sampling(body), llm=context.settings.llm)
    completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = _chunks(stream, completion_id, created, served, include_usage, context.streams)
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
    answer = await run_in_threadpool(stream.result)
    return schemas.ChatCompletion(
        id=completion_id, created=created, model=served.model,
        choices=[schemas.Choice(message=schemas.AssistantMessage(
            content=answer.text, citations=[schemas.Citation(**c) for c in citations_of(answer)],
            standalone_question=answer.standalone_question, grounding=answer.grounding, guard=answer.guard))],
        usage=schemas.Usage(**usage_of(answer, served)))


async def _agent_completion(plan: agent_api.AgentRequest, body: schemas.ChatCompletionRequest, request: Request,
                            principal: Principal, session: str | None) -> Any:
    context = _context(request)
    agent = await run_in_threadpool(agent_api.make_agent, plan, body, llm=context.settings.llm, session=session)
    runs = agent_api.parked_runs(request.app)
    resume = agent_api.resume_state(plan, runs, principal.key_id)
    completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    if body.stream:
        await run_in_threadpool(agent_api.precheck, agent, plan.conversation.question)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = agent_api.stream(plan, agent, resume, runs=runs, key_id=principal.key_id,
                                  completion_id=completion_id, created=created, include_usage=include_usage,
                                  counter=context.streams)
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
    answer = await run_in_threadpool(agent_api.ask, agent, plan, resume)
    calls = agent_api.hand_out_calls(plan, answer, runs, principal.key_id)
    return agent_api.completion(plan, answer, calls, completion_id, created)


async def _chunks(stream: AnswerStream, completion_id: str, created: int, served: Served, include_usage: bool,
                  counter: Any) -> AsyncIterator[str]:
    model = served.model

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return sse({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    yield chunk({"role": "assistant", "content": ""})
    try:
        pieces: list[str] = []
        async for piece in iterate_in_thread(iter(stream), counter):
            pieces.append(piece)
            yield chunk({"content": piece})
        streamed = "".join(pieces).strip()
    except JisikError as exc:  # the backend failed mid-answer: an error event, as OpenAI sends one
        yield error_event(exc, server_error=status_of(exc) >= 500)
        yield sse("[DONE]")
        return
    answer = stream.answer
    assert answer is not None
    # The text streamed as generated; markers removed by citation checking are told in the final chunk.
    final: dict[str, Any] = {"citations": citations_of(answer), "invalid_citations": answer.invalid_citations,
                             "grounding": answer.grounding, "guard": answer.guard}
    if streamed != answer.text:  # the guards changed the answer after it streamed: the text to show instead
        final["final_text"] = answer.text
    yield chunk(final, "stop")
    if include_usage:
        yield sse({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [], "usage": usage_of(answer, served)})
    yield sse("[DONE]")


@router.post("/embeddings", response_model=schemas.EmbeddingList, responses=responses(503))
def embeddings(body: schemas.EmbeddingRequest, request: Request,
               principal: Caller) -> schemas.EmbeddingList:
    """Vectors from the knowledge base's own embedder (so they match its index)."""
    served = served_model(request, principal, body.model)
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    embedder = served.kb.embedder
    vectors = embedder.embed_queries(texts) if body.input_type == "query" else embedder.embed_documents(texts)
    counter = getattr(embedder, "count_tokens", None)
    tokens = sum(counter(texts)) if counter else sum(len(t.split()) for t in texts)
    data = [schemas.Embedding(index=i, embedding=_encode(v, body.encoding_format)) for i, v in enumerate(vectors)]
    return schemas.EmbeddingList(data=data, model=served.model,
                                 usage=schemas.EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))


def _encode(vector: np.ndarray[Any, Any], encoding: str) -> list[float] | str:
    """A vector as floats, or as OpenAI's base64 of little-endian float32.

    >>> _encode(np.array([1.0, 0.5], dtype=np.float32), "base64")
    'AACAPwAAAD8='
    """
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]

