"""Typed errors. Each carries a stable ``code`` and a message that says what to do next.

Only the CLI and HTTP layers turn these into exit codes or status codes; library code raises them.
"""

from __future__ import annotations


class JisikError(Exception):
    """Base of every error jisik raises on purpose.

    ``hint`` is one line telling the user what to do next; the CLI prints it under the message.
    """

    code = "jisik_error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(JisikError):
    """A config file, key or value is wrong."""

    code = "config_error"


class MissingDependencyError(JisikError):
    """An optional dependency is not installed; the hint names the ``pip install`` command."""

    code = "missing_dependency"


class KnowledgeBaseNotFoundError(JisikError):
    code = "kb_not_found"


class EmbedderMismatchError(JisikError):
    """The knowledge base was indexed with another embedder (name or dimension)."""

    code = "embedder_mismatch"


class LoaderError(JisikError):
    """A file could not be read or parsed. Ingestion reports it and goes on with the other files."""

    code = "loader_error"

    def __init__(self, path: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"{path}: {reason}", hint=hint)
        self.path = path
        self.reason = reason


class UnsupportedFormatError(LoaderError):
    code = "unsupported_format"


class EmbeddingError(JisikError):
    """The embedding backend failed (server down, bad response, wrong dimension)."""

    code = "embedding_error"


class StoreError(JisikError):
    code = "store_error"


class StoreBusyError(StoreError):
    """Another process (or thread) is writing the knowledge base and the caller chose not to wait longer."""

    code = "store_busy"


class QueryError(JisikError):
    """A search request is invalid (empty query, bad filter, bad mode)."""

    code = "query_error"


class IngestError(JisikError):
    """Nothing could be ingested, or ``strict`` was set and a file failed."""

    code = "ingest_error"


class TemplateError(ConfigError):
    """A prompt template file is unreadable or lacks a required variable (named in the message)."""

    code = "template_error"


class EmptyKnowledgeBaseError(QueryError):
    """A question was asked of a knowledge base that holds no documents."""

    code = "empty_kb"


class GenerationError(JisikError):
    """The language model failed: server down, unknown model, malformed or cut-off response."""

    code = "generation_error"


class LLMUnavailableError(GenerationError):
    """The LLM backend cannot be reached or the model is not there; the hint says how to fix it."""

    code = "llm_unavailable"


class LLMResponseError(GenerationError):
    """The LLM backend answered something that is not a valid response (bad JSON, broken stream)."""

    code = "llm_bad_response"


class ToolsUnsupportedError(GenerationError):
    """The LLM server turned down native tool calls (``tools`` in the request); the agent uses ReAct instead."""

    code = "tools_unsupported"


class AgentError(JisikError):
    """An agent could not run: no LLM, an unknown tool or strategy, a bad tool definition."""

    code = "agent_error"


class ToolError(AgentError):
    """A tool failed or was called with bad arguments. The agent shows the message to the model, not the user."""

    code = "tool_error"


class EvaluationError(JisikError):
    """An evaluation dataset, baseline or judge is unusable; nothing is reported as complete."""

    code = "evaluation_error"


class TuningError(JisikError):
    """Fine-tuning cannot start or had to stop: bad training data, a model it cannot adapt, a diverged loss."""

    code = "tuning_error"


class TrainingDataError(TuningError):
    """Rows of a training file are malformed; the message names the file and line numbers."""

    code = "training_data_error"


class TrainingDivergedError(TuningError):
    """The training loss became NaN or infinite; the run stopped at the step and batch named."""

    code = "training_diverged"
