"""Unit tests of the server's own logic, without a server: the state database (keys, jobs), turning OpenAI
``messages`` into a question and history, the body size counter, and upload names."""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import pytest

from jisik.errors import ConfigError, JisikError
from jisik.serve.app import ServerSettings, check_binding, is_loopback
from jisik.serve.jobs import safe_filename, without_folder
from jisik.serve.library import Library, check_name, parse_kb_argument
from jisik.serve.openai_api import conversation
from jisik.serve.schemas import ChatMessage
from jisik.serve.state import KEY_PREFIX, KeyStoreError, ServerState, hash_key, parse_duration


def test_keys_are_random_shown_once_and_stored_hashed(tmp_path: Path) -> None:
    state = ServerState(tmp_path / "server.db")
    plain, key = state.create_key(kb="manuals", role="read", name="helpdesk")
    other, _ = state.create_key(kb="manuals", role="read", name="helpdesk")
    assert plain.startswith(KEY_PREFIX) and len(plain) >= 40 and plain != other
    assert plain.encode() not in (tmp_path / "server.db").read_bytes()
    found, why = state.verify(plain)
    assert found is not None and found.id == key.id and why is None
    assert state.verify(plain + "x") == (None, "unknown")
    assert [k.name for k in state.list_keys(kb="manuals")] == ["helpdesk", "helpdesk"]
    assert state.list_keys(kb="policies") == []
    assert hash_key(plain) != hash_key(other)


def test_revoke_by_id_or_name_and_expiry(tmp_path: Path) -> None:
    state = ServerState(tmp_path / "server.db")
    first, a = state.create_key(kb="*", role="admin", name="ops")
    second, _ = state.create_key(kb="kb", role="write", name="ops")
    assert [k.id for k in state.revoke(a.id)] == [a.id]
    assert state.verify(first) == (None, "revoked") and state.verify(second)[0] is not None
    assert len(state.revoke("ops")) == 1 and state.verify(second) == (None, "revoked")
    with pytest.raises(KeyStoreError, match="no live key"):
        state.revoke("ops")
    assert not state.has_keys()  # revoked keys do not count: a loopback server is open again
    short, _ = state.create_key(kb="kb", role="read", name="temp", expires_in=0.2)
    assert state.has_keys()
    time.sleep(0.3)
    assert state.verify(short) == (None, "expired") and not state.has_keys()


@pytest.mark.parametrize("bad", [{"role": "owner"}, {"name": " "}, {"kb": ""}])
def test_bad_key_requests_are_named(tmp_path: Path, bad: dict[str, str]) -> None:
    with pytest.raises(KeyStoreError):
        ServerState(tmp_path / "s.db").create_key(**{"kb": "kb", "role": "read", "name": "x", **bad})
    with pytest.raises(KeyStoreError, match="cannot read the duration"):
        parse_duration("soon")


def test_a_damaged_state_db_is_one_clear_error(tmp_path: Path) -> None:
    damaged = tmp_path / "server.db"
    damaged.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(ConfigError, match="not a usable jisik server database"):
        ServerState(damaged)


def test_jobs_round_trip(tmp_path: Path) -> None:
    state = ServerState(tmp_path / "server.db")
    job = state.add_job("kb", [])
    state.update_job(job.id, status="running", files=["반품.pdf"], stage="files", done=1, total=2)
    state.update_job(job.id, report={"added": ["uploads/반품.pdf"]}, status="done")
    stored = state.job(job.id)
    assert stored is not None and stored.files == ["반품.pdf"] and stored.report == {"added": ["uploads/반품.pdf"]}
    assert stored.finished and [j.id for j in state.jobs("kb")] == [job.id] and state.jobs("other") == []


def test_messages_become_question_and_history() -> None:
    messages = [ChatMessage(role="system", content="be brief"),
                ChatMessage(role="user", content="반품 기간은?"),
                ChatMessage(role="assistant", content="14일입니다 [1]"),
                ChatMessage(role="user", content="질문만 두 번"),
                ChatMessage(role="user", content=[{"type": "text", "text": "그럼"}, {"type": "image_url"},
                                                  {"type": "text", "text": "환불은요?"}]),  # type: ignore[list-item]
                ]
    question, turns = conversation(messages)
    assert question == "그럼\n환불은요?"
    assert [(t.question, t.answer) for t in turns] == [("반품 기간은?", "14일입니다 [1]"), ("질문만 두 번", "")]


def test_upload_names_and_report_paths() -> None:
    assert safe_filename("/etc/../../반품.md") == "반품.md"
    assert safe_filename(unicodedata.normalize("NFD", "규정.pdf")) == unicodedata.normalize("NFC", "규정.pdf")
    for bad in ("", "..", ".env", "a/..", "\x00"):
        with pytest.raises(JisikError):
            safe_filename(bad)
    folder = Path("/srv/kb")
    assert without_folder({"failed": [{"path": "/srv/kb/uploads/x.pdf", "reason": "bad"}]}, folder) == {
        "failed": [{"path": "uploads/x.pdf", "reason": "bad"}]}


def test_names_binding_and_library_errors(tmp_path: Path) -> None:
    assert parse_kb_argument("help=./kb") == ("help", Path("kb"))
    with pytest.raises(ConfigError):
        check_name("a/b")
    assert is_loopback("127.0.0.5") and not is_loopback("10.0.0.1") and not is_loopback("example.com")
    open_note = check_binding(ServerSettings(host="127.0.0.1"), has_keys=False)
    assert open_note is not None and "only to it" in open_note
    assert check_binding(ServerSettings(host="0.0.0.0"), has_keys=True) is None
    with pytest.raises(ConfigError, match="refusing to listen"):
        check_binding(ServerSettings(host="0.0.0.0"), has_keys=False)
    with pytest.raises(ConfigError, match="two knowledge bases are named"):
        Library([("a", tmp_path / "x"), ("a", tmp_path / "y")])
    with pytest.raises(ConfigError, match="is not a folder"):
        Library([], root=tmp_path / "missing")
    with pytest.raises(ConfigError, match="cannot create knowledge bases"):
        Library([]).create("new")


def test_guard_block_is_a_400_before_the_stream_and_shutdown_waits_for_loading(
        tmp_path: Path, fake_embedder_env: None, caplog: pytest.LogCaptureFixture) -> None:
    """The app in process (FastAPI's TestClient): a question a `block` policy refuses is a 400 `guard_blocked`, not
    an error inside a 200 stream; stopping the app while the models still load logs no traceback."""
    from fastapi.testclient import TestClient

    from jisik.kb import KnowledgeBase
    from jisik.records import Document
    from jisik.serve.app import create_app

    kb = KnowledgeBase.init(tmp_path / "kb")
    kb.add_documents([Document(doc_id="faq", source="faq.md", text="반품은 14일 이내에 신청할 수 있습니다.")])
    kb.close()
    toml = tmp_path / "kb" / "jisik.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("pii_overrides = {  }",
                                                             'pii_overrides = { PHONE = "block" }'), encoding="utf-8")
    app = create_app(ServerSettings(kbs=[("kb", tmp_path / "kb")], state_db=tmp_path / "server.db"))
    with TestClient(app) as client:
        question = {"role": "user", "content": "제 번호 010-2345-6789로 연락"}
        response = client.post("/v1/chat/completions",
                               json={"model": "jisik/kb", "stream": True, "messages": [question]})
    assert response.status_code == 400 and response.json()["error"]["code"] == "guard_blocked"
    assert "010-2345-6789" not in response.text
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
