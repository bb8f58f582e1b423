"""Request and response bodies of the HTTP API (the OpenAPI schema is generated from these).

Requests are strict about types (a string where a number belongs is a 400, as OpenAI answers) and
ignore fields they do not know (OpenAI clients send many: ``frequency_penalty``, ``logprobs`` …).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jisik.agent.tools import TOOL_NAME
from jisik.choices import AnswerLanguage, Chain, Fusion, SearchMode


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- shared --------------------------------------------------------------------------------------------
Filters = Annotated[list[Annotated[str, Field(max_length=1000)]] | None, Field(
    None, max_length=50, description="`jisik search --filter` expressions, all must hold: "
                                     "`lang=ko`, `page>=3`, `source=uploads/*.pdf`")]
K = Annotated[int | None, Field(None, ge=1, le=100, description="chunks to retrieve")]


class _Located(_Body):
    """Where a chunk comes from: the fields citations, hits and passages share."""

    chunk_id: int
    doc_id: str
    source: str
    title: str | None = None
    page: int | None = None
    section: str | None = None


class Citation(_Located):
    number: int = Field(description="the n of the [n] marker in the text")
    span: list[int] = Field(description="[start, end]: the cited characters' offsets in the document")
    quote: str = Field(description="the cited text")
    score: float
    scores: dict[str, float] = Field(default_factory=dict, description="per retriever: dense, bm25, …")
    cited: bool = True


class Hit(_Located):
    score: float
    text: str
    span: list[int]
    metadata: dict[str, Any] = Field(default_factory=dict)
    scores: dict[str, float] = Field(default_factory=dict)


# -- OpenAI: chat ----------------------------------------------------------------------------------
class TextPart(_Request):
    type: str
    text: str | None = None


class FunctionCall(_Request):
    name: str = Field(max_length=64)
    arguments: str | dict[str, Any] = Field("", description="a JSON object as a string (an object is taken too)")


class ToolCall(_Request):
    """A call an assistant message made (the ``tool_calls`` of a response, sent back in the conversation)."""

    id: str = Field(min_length=1, max_length=256)
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = Field(None, max_length=128, description="an assistant message's calls")
    tool_call_id: str | None = Field(None, max_length=256, description="a tool message: the call it answers")

    def text(self) -> str:
        """The text: a string, or its text parts joined (images and other parts are ignored)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if part.type == "text" and part.text)


class FunctionParameters(BaseModel):
    """A function's arguments as JSON Schema: an object schema (other keywords are kept and passed on)."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["object"] = "object"
    properties: dict[str, dict[str, Any]] = Field(default_factory=dict)
    required: list[str] = Field(default_factory=list)


class FunctionDefinition(_Request):
    name: str = Field(pattern=TOOL_NAME.pattern, description="letters, digits, _ . -; starts with a letter or _")
    description: str | None = Field(None, max_length=10_000)
    parameters: FunctionParameters | None = None
    strict: bool | None = None


class ToolDefinition(_Request):
    """One of the client's tools (OpenAI function tools): the model may call it; the client runs it."""

    type: Literal["function"]
    function: FunctionDefinition


class FunctionName(_Request):
    name: str = Field(max_length=64)


class NamedToolChoice(_Request):
    type: Literal["function"]
    function: FunctionName


class StreamOptions(_Request):
    include_usage: bool = False


class ChatCompletionRequest(_Request):
    model: str = Field(description="`jisik/<knowledge base>` (GET /v1/models)")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = Field(None, ge=1, le=1, description="only 1 is supported")
    user: str | None = None
    tools: list[ToolDefinition] | None = Field(None, max_length=128, description="the client's own tools: the "
                                               "agent may call them besides its built-in ones (docs/server-agents.md)")
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = Field(
        None, description="none: the client's tools are not offered; auto (default); required: a tool call first; "
                          "or one tool by name")
    parallel_tool_calls: bool | None = Field(None, description="false: at most one client tool call per answer")
    # jisik extensions (the openai client sends them with extra_body=...)
    k: K = None
    mode: SearchMode | None = None
    filters: Filters = None
    language: AnswerLanguage | None = None
    chain: Chain | None = None
    top_k: int | None = Field(None, ge=1)


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class FunctionCallOut(BaseModel):
    name: str
    arguments: str = Field(description="a JSON object, as a string")


class ToolCallOut(BaseModel):
    id: str = Field(description="quote it as the tool_call_id of the tool message that answers this call")
    type: Literal["function"] = "function"
    function: FunctionCallOut


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCallOut] | None = Field(None, description="calls of the client's tools to run "
                                                                   "(finish_reason tool_calls)")
    citations: list[Citation] = Field(default_factory=list, description="jisik extension: the [n] sources")
    standalone_question: str | None = Field(None, description="jisik extension: a follow-up rewritten for search")
    grounding: list[dict[str, Any]] = Field(default_factory=list, description="jisik extension: support of each "
                                            "sentence by its sources")
    guard: list[dict[str, Any]] = Field(default_factory=list, description="jisik extension: guard decisions")
    # agents (jisik/<kb>:agent, or a request with tools)
    trace: list[dict[str, Any]] | None = Field(None, description="jisik extension: the agent's steps")
    strategy: str | None = Field(None, description="jisik extension: native, react or self-ask")
    partial: bool | None = Field(None, description="jisik extension: a limit stopped the agent early")
    stopped_by: str | None = Field(None, description="jisik extension: the limit, or external_tool")


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str = Field("stop", description="stop, or tool_calls")


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class ChunkFunctionCall(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ChunkToolCall(BaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: ChunkFunctionCall | None = None


class ChunkDelta(BaseModel):
    role: str | None = None
    content: str | None = None
    tool_calls: list[ChunkToolCall] | None = None
    jisik_step: dict[str, Any] | None = Field(None, description="jisik extension: one agent step, as it happens")
    strategy: str | None = None
    partial: bool | None = None
    stopped_by: str | None = None
    citations: list[Citation] | None = None
    invalid_citations: list[int] | None = None
    grounding: list[dict[str, Any]] | None = None
    guard: list[dict[str, Any]] | None = None
    final_text: str | None = Field(None, description="the answer after the guards, when it differs from the "
                                                     "streamed text (show this instead)")


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed answer (``data: {...}``; the stream ends with ``data: [DONE]``)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


# -- OpenAI: models and embeddings ----------------------------------------------------------------
class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "jisik"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class EmbeddingRequest(_Request):
    model: str
    input: Annotated[str, Field(max_length=100_000)] | Annotated[list[Annotated[str, Field(max_length=100_000)]],
                                                                  Field(min_length=1, max_length=2048)]
    encoding_format: Literal["float", "base64"] = "float"
    input_type: Literal["passage", "query"] = Field("passage", description="jisik extension: e5 prefix")
    user: str | None = None


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


# -- knowledge-base API ------------------------------------------------------------------------------
class KBSummary(BaseModel):
    name: str
    model: str
    documents: int
    chunks: int
    read_only: bool
    role: str | None = Field(description="what the caller's key may do here: read, write or admin")


class KBList(BaseModel):
    data: list[KBSummary]


class CreateKB(_Request):
    name: str = Field(min_length=1, max_length=64, pattern=r"^\w[\w.-]*$",
                      description="letters (any script), digits, _ . -; starts with a letter or digit")


class DocumentInfo(_Body):
    doc_id: str
    source: str
    title: str | None = None
    chunks: int


class DocumentList(BaseModel):
    data: list[DocumentInfo]


class Deleted(BaseModel):
    deleted: list[str]


class SearchRequest(_Request):
    query: str = Field(min_length=1, max_length=10_000, pattern=r"\S")
    mode: SearchMode | None = None
    k: K = None
    filters: Filters = None
    threshold: float | None = None
    fetch_k: int | None = Field(None, ge=1, le=1000)
    lambda_mult: float | None = Field(None, ge=0, le=1)
    fusion: Fusion | None = None
    rrf_k: int | None = Field(None, ge=1)
    dense_weight: float | None = Field(None, ge=0)
    bm25_weight: float | None = Field(None, ge=0)


class SearchResponse(BaseModel):
    hits: list[Hit]
    took_ms: float


class HistoryTurn(_Request):
    question: str
    answer: str


class AskRequest(_Request):
    question: str = Field(min_length=1, max_length=1_000_000, pattern=r"\S",
                          description="over [answer] max_question_chars (4,000 by default) is refused with a 400")
    history: list[HistoryTurn] = Field(default_factory=list, max_length=100)
    k: K = None
    mode: SearchMode | None = None
    filters: Filters = None
    language: AnswerLanguage | None = None
    chain: Chain | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    stream: bool = False
    session: str | None = Field(None, max_length=128, description="log the turn under this chat session")


class AnswerUsage(_Body):
    prompt_tokens: int
    completion_tokens: int


class AnswerBody(_Body):
    text: str
    question: str
    standalone_question: str | None = None
    citations: list[Citation]
    sources: list[Citation]
    usage: AnswerUsage
    backend: str
    language: str
    found: bool
    invalid_citations: list[int]
    log_id: int | None = None
    grounding: list[dict[str, Any]] = Field(default_factory=list)
    guard: list[dict[str, Any]] = Field(default_factory=list)


class Passage(_Located):
    text: str
    span: list[int] = Field(description="[start, end] of the chunk in its document")
    metadata: dict[str, Any] = Field(default_factory=dict)


class JobBody(BaseModel):
    id: str
    kb: str
    status: Literal["receiving", "queued", "running", "done", "failed", "cancelled"]
    files: list[str]
    stage: str
    done: int
    total: int
    report: dict[str, Any] | None = Field(description="added, updated, unchanged, failed [{path, reason}], …")
    error: str | None = None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None


class JobList(BaseModel):
    data: list[JobBody]


class CreateKey(_Request):
    kb: str = Field(min_length=1, max_length=64, description="a knowledge base name, or * for all")
    role: Literal["read", "write", "admin"] = "read"
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: float | None = Field(None, gt=0, le=3650)


class KeyBody(BaseModel):
    id: str
    name: str
    kb: str
    role: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None


class CreatedKey(KeyBody):
    key: str = Field(description="shown once; only its hash is stored")


class KeyList(BaseModel):
    data: list[KeyBody]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    active_streams: int
    jobs_running: int


class Ready(BaseModel):
    ready: bool
    knowledge_bases: dict[str, bool]
