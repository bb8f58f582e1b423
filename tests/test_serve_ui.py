"""The web chat UI in a real headless Chromium (Playwright) against a real `jisik serve` on loopback.

One server for the module: a knowledge base made by `jisik init` (the default, real embedder and the
extractive answerer), empty until the first test uploads a Korean document through the UI, a second empty one,
and one write key
(with a key in the state database the server wants one on every request, so the test sees the header sent).
Every test gets a fresh browser context, so localStorage (conversations, settings, language) starts empty;
all but the first-run test find the key already stored, as after a first visit.

Screenshots go to build/test-artifacts/ui/ for a person to look at: Hangul must render as glyphs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jisik.testing.server import ServerProcess, running_server

try:
    from playwright.sync_api import Browser, Page, sync_playwright
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # reported by the browser fixture as a failure, not a skip
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "build" / "test-artifacts" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update"]
KB = "policies"
OTHER_KB = "manuals"  # stays empty: conversations remember which knowledge base they asked
DOC_NAME = "반품 정책.md"
DOCUMENT = """# 반품 정책

저희 쇼핑몰은 고객이 안심하고 구매할 수 있도록 다음과 같은 반품 정책을 운영합니다.

반품은 상품을 받은 날부터 14일 이내에 신청할 수 있습니다. 신청은 마이페이지의 주문 내역에서 할 수 있습니다.

단순 변심으로 반품하는 경우 왕복 배송비 6,000원은 고객이 부담합니다. 상품에 하자가 있으면 배송비는 회사가 부담합니다.

환불은 반품 상품이 물류 센터에 도착한 뒤 3영업일 안에 결제 수단으로 처리됩니다.
"""
QUESTION = "반품 기간은 며칠인가요?"


def jisik(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "jisik", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"jisik {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass
class Served:
    process: ServerProcess
    key: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("serve-ui")
    kbs, state_db = {KB: base / KB, OTHER_KB: base / OTHER_KB}, base / "server.db"
    for path in kbs.values():
        jisik("init", str(path))
    key = json.loads(jisik("keys", "create", "--kb", "*", "--role", "write", "--name", "ui-test",
                           "--state-db", str(state_db), "--json"))["key"]
    with running_server(kbs, state_db=state_db, env={"JISIK_RAISE_UNEXPECTED": "1"}) as process:
        yield Served(process, key)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install_browser.sh (installs chromium and fonts-noto-cjk)")
    if sync_playwright is None:
        pytest.fail("the playwright Python package is missing: pip install playwright (no browser download "
                    "needed: the test drives /usr/bin/chromium; see scripts/install_browser.sh)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@dataclass
class UI:
    """A page of the chat UI and what it sent: chat request bodies, the Authorization header of every API
    request, the chat responses' content types, uncaught errors in the page."""

    page: Page
    server: ServerProcess
    key: str
    chats: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    chat_content_types: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def wait(self, script: str, arg: Any = None, timeout: float = 60.0) -> Any:
        """Wait until `script` (a JS function) returns something truthy; fail with what the UI and server said."""
        try:
            return self.page.wait_for_function(script, arg=arg, timeout=timeout * 1000).json_value()
        except PlaywrightTimeout:
            shown = self.page.evaluate("""() => [...document.querySelectorAll('.error-box:not([hidden]), #notice')]
                                                .map(e => e.textContent.trim()).filter(Boolean)""")
            raise AssertionError(f"UI did not reach {script!r} in {timeout:.0f} s; errors shown: {shown}; "
                                 f"page errors: {self.errors}\nserver log (end):\n{self.server.log()[-3000:]}"
                                 ) from None

    def wait_kbs(self) -> None:
        self.wait("kb => [...document.querySelectorAll('#kb-select option')].some(o => o.value === kb)", KB,
                  timeout=30)

    def user_messages(self) -> list[str]:
        return self.page.locator(".message.user .message-body").all_inner_texts()

    def ask(self, text: str, *, done: bool = True) -> dict[str, Any]:
        """Type `text` into the question box, press Enter, wait for the answer; the answer as stored."""
        answers = self.page.locator(".message.assistant").count()
        box = self.page.locator("#question")
        box.click()
        box.press_sequentially(text)
        box.press("Enter")
        return self.wait_answer(answers + 1, done=done)

    def wait_answer(self, count: int, *, done: bool = True) -> dict[str, Any]:
        """Wait for the `count`-th answer to end (successfully unless `done` is false); it as stored.

        The keyboard tests only need the question sent: their answer may be an error when the knowledge base
        is still empty (a test run on its own), and that is not what they test.
        """
        self.wait("""n => { const m = document.querySelectorAll('.message.assistant');
                          return m.length >= n && m[n - 1].dataset.status !== 'streaming'; }""", count)
        status = self.page.locator(".message.assistant").nth(count - 1).get_attribute("data-status")
        if done:
            assert status == "done", f"answer {count} ended {status!r}: {self.page.inner_text('#messages')}"
        return self.stored_messages()[-1]

    def stored_messages(self) -> list[dict[str, Any]]:
        conversations = self.page.evaluate("() => JSON.parse(localStorage.getItem('jisik.conversations'))")
        current = self.page.evaluate("() => localStorage.getItem('jisik.currentConversation')")
        return next(c for c in conversations if c["id"] == current)["messages"]


def open_ui(browser: Browser, served: Served, *, locale: str = "ko-KR", stored_key: bool = True,
            viewport: tuple[int, int] = (1280, 860)) -> UI:
    """A fresh browser context on the UI; with `stored_key` the key is in localStorage before the first load."""
    server = served.process
    context = browser.new_context(locale=locale, viewport={"width": viewport[0], "height": viewport[1]})
    if stored_key:  # once per context, so that what a test does to the key survives its reloads
        context.add_init_script(f"""if (!sessionStorage.getItem('seeded')) {{
            localStorage.setItem('jisik.apiKey', {json.dumps(served.key)});
            sessionStorage.setItem('seeded', '1'); }}""")
    page = context.new_page()
    ui = UI(page, server, served.key)

    def on_request(request: Any) -> None:
        path = urllib.parse.urlsplit(request.url).path
        if request.url.startswith(server.base_url) and path.startswith(("/api/", "/v1/")):
            ui.auth.append(request.headers.get("authorization"))
        if request.url.endswith("/v1/chat/completions") and request.method == "POST":
            ui.chats.append(request.post_data_json)

    def on_response(response: Any) -> None:
        if response.url.endswith("/v1/chat/completions"):
            ui.chat_content_types.append(response.headers.get("content-type", ""))

    page.on("request", on_request)
    page.on("response", on_response)
    page.on("pageerror", lambda error: ui.errors.append(str(error)))
    page.goto(server.url("/"))
    if stored_key:
        ui.wait_kbs()
    return ui


def close_ui(ui: UI) -> None:
    ui.page.context.close()
    assert not ui.errors, f"uncaught errors in the page: {ui.errors}"


@pytest.fixture
def ui(browser: Browser, served: Served) -> Iterator[UI]:
    opened = open_ui(browser, served)
    yield opened
    close_ui(opened)


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def api_get(ui: UI, path: str) -> Any:
    request = urllib.request.Request(ui.server.url(urllib.parse.quote(path)),
                                     headers={"Authorization": f"Bearer {ui.key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def server_error(ui: UI, body: dict[str, Any]) -> dict[str, Any]:
    """The error the server gives for this chat request, sent directly: a 4xx body, or an error event in the stream."""
    request = urllib.request.Request(ui.server.url("/v1/chat/completions"), data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {ui.key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            events = [line[6:] for line in response.read().decode().splitlines() if line.startswith("data: ")]
    except urllib.error.HTTPError as error:
        return dict(json.loads(error.read())["error"])
    return next(json.loads(e)["error"] for e in events if e != "[DONE]" and "error" in json.loads(e))


def shown_error(ui: UI) -> str:
    return ui.page.locator(".message.assistant .error-box").last.inner_text()


def test_first_visit_upload_ask_and_open_citation(browser: Browser, served: Served, tmp_path: Path) -> None:
    ui = open_ui(browser, served, stored_key=False)
    try:
        first_visit_upload_ask_and_open_citation(ui, tmp_path)
    finally:
        close_ui(ui)


def first_visit_upload_ask_and_open_citation(ui: UI, tmp_path: Path) -> None:
    page = ui.page
    # no key yet: the server's 401 message is shown and settings open at the key field
    ui.wait("() => document.getElementById('settings-dialog').open && "
            "!document.getElementById('settings-error').hidden", timeout=30)
    assert "this server needs an API key" in page.inner_text("#settings-error")
    assert "jisik keys create" in page.inner_text("#settings-error")  # the hint
    assert "this server needs an API key" in page.inner_text("#notice")
    assert page.evaluate("document.activeElement.id") == "setting-key"
    page.keyboard.type(ui.key)
    page.click("#settings-save")
    ui.wait_kbs()
    assert page.is_hidden("#notice")
    page.select_option("#kb-select", KB)
    assert "0" in page.inner_text("#kb-info"), page.inner_text("#kb-info")  # the knowledge base starts empty
    sent = len(ui.auth)

    # upload a Korean document and a broken PDF: the report lists the one added and the one that failed
    document = tmp_path / DOC_NAME
    document.write_text(DOCUMENT, encoding="utf-8")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\nthis is not really a pdf\n")
    page.click("#upload-open")
    assert KB in page.inner_text("#upload-target")
    page.set_input_files("#upload-files", [str(document), str(broken)])
    page.evaluate("""() => { window.__jobStates = [];
        const dialog = document.getElementById('upload-dialog');
        new MutationObserver(() => window.__jobStates.push(dialog.dataset.jobStatus))
            .observe(dialog, {attributes: true, attributeFilter: ['data-job-status']}); }""")
    page.click("#upload-start")
    ui.wait("() => ['done', 'failed', 'cancelled'].includes("
            "document.getElementById('upload-dialog').dataset.jobStatus)", timeout=90)
    assert page.get_attribute("#upload-dialog", "data-job-status") == "done", page.inner_text("#upload-dialog")
    states = page.evaluate("window.__jobStates")
    assert states[0] in ("queued", "running") and states[-1] == "done", states  # progress was shown on the way
    report = page.locator("#upload-report")
    report.wait_for()
    assert "추가 1" in report.inner_text() and "실패 1" in report.inner_text(), report.inner_text()
    assert page.locator("#upload-report .ok li").all_inner_texts() == [DOC_NAME]
    failed = page.locator("#upload-report .bad li")
    assert failed.count() == 1
    assert failed.locator(".report-file").inner_text() == "broken.pdf"
    assert failed.locator(".report-reason").inner_text().strip(), "a failed file must say why"
    screenshot(page, "upload-report.png")
    page.click("#upload-dialog button[value=close]")
    ui.wait("() => /문서 1개/.test(document.getElementById('kb-info').textContent)", timeout=10)

    # retrieval settings go with the question as jisik's extension fields
    page.click("#settings-open")
    page.select_option("#setting-mode", "hybrid")
    page.fill("#setting-k", "3")
    page.fill("#setting-filters", "source=uploads/*\n")
    page.click("#settings-save")

    answer = ui.ask(QUESTION)
    assert ui.chats[-1]["model"] == f"jisik/{KB}"
    assert ui.chats[-1]["stream"] is True
    assert ui.chats[-1]["messages"] == [{"role": "user", "content": QUESTION}]
    assert (ui.chats[-1]["mode"], ui.chats[-1]["k"], ui.chats[-1]["filters"]) == ("hybrid", 3, ["source=uploads/*"])
    assert ui.chat_content_types[-1].startswith("text/event-stream")
    shown = page.locator(".message.assistant .message-body").last
    assert "14일" in shown.inner_text(), shown.inner_text()
    assert "14일" in answer["content"] and answer["citations"], answer
    cites = shown.locator("button.cite")
    assert cites.count() >= 1 and cites.first.is_enabled()
    assert "[" not in shown.inner_text(), "every [n] marker became a button"
    assert DOC_NAME in page.locator(".message.assistant .sources").last.inner_text()
    screenshot(page, "answer.png")

    # the passage panel: file name, metadata, the cited stretch in <mark>
    number = int(cites.first.get_attribute("data-number") or 0)
    citation = next(c for c in answer["citations"] if c["number"] == number)
    cites.first.click()
    mark = page.locator("#passage-text mark")
    mark.wait_for()
    assert page.inner_text("#passage-heading") == DOC_NAME
    assert f"uploads/{DOC_NAME}" in page.inner_text("#passage-meta")
    passage = api_get(ui, f"/api/kbs/{KB}/passages/{citation['chunk_id']}")
    start, end = citation["span"][0] - passage["span"][0], citation["span"][1] - passage["span"][0]
    assert mark.inner_text() == passage["text"][start:end] == citation["quote"]
    assert mark.get_attribute("data-highlight") == "span", "the citation's document offsets located the quote"
    assert "14일" in mark.inner_text()
    screenshot(page, "citation-panel.png")
    page.set_viewport_size({"width": 390, "height": 780})  # a phone: the panel covers the chat
    assert page.locator("#passage-panel").bounding_box()["width"] <= 390
    screenshot(page, "citation-panel-narrow.png")
    page.click("#passage-close")
    assert page.is_hidden("#passage-panel")
    page.set_viewport_size({"width": 1280, "height": 860})

    # a follow-up carries the conversation so far
    ui.ask("그럼 환불은 언제 되나요?")
    assert [m["role"] for m in ui.chats[-1]["messages"]] == ["user", "assistant", "user"]
    assert ui.chats[-1]["messages"][1]["content"] == answer["content"]

    # the conversation survives a reload, its answer still with citation buttons
    page.reload()
    ui.wait("() => document.querySelectorAll('.message.assistant button.cite:not([disabled])').length > 0")
    assert page.locator(".conversation-title").all_inner_texts() == [QUESTION]
    # every request since the key was saved carried it: kb list, upload (XHR), job events, chat, passage
    assert set(ui.auth[sent:]) == {f"Bearer {ui.key}"}, set(ui.auth[sent:])


def test_enter_while_composing_hangul_does_not_send(ui: UI, record_property: Any) -> None:
    """Enter while a syllable is composed does not send; after the syllable is committed it does.

    Method: real IME composition through the DevTools protocol (Input.imeSetComposition, then an Enter key
    press, then Input.insertText to commit), which in Chromium gives the page compositionstart and a keydown
    with isComposing true, as a real Korean IME does. Only if this Chromium's CDP produces no composition
    events does the test fall back to synthetic compositionstart / keydown(isComposing, 229) / compositionend
    from page.evaluate; the method used is recorded as the test's `ime_method` property and printed.
    """
    page = ui.page
    box = page.locator("#question")
    box.click()
    page.keyboard.insert_text("반품 기간은 며칠인가")
    page.evaluate("""() => { window.__events = [];
        const box = document.getElementById('question');
        for (const type of ['compositionstart', 'compositionend', 'keydown'])
            box.addEventListener(type, e => window.__events.push(
                {type, key: e.key ?? null, isComposing: e.isComposing ?? null, keyCode: e.keyCode ?? null})); }""")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.imeSetComposition", {"text": "요", "selectionStart": 1, "selectionEnd": 1})
    composed = any(e["type"] == "compositionstart" for e in page.evaluate("window.__events"))
    method = "cdp" if composed else "synthetic"
    record_property("ime_method", method)
    print(f"IME composition method: {method}")
    if method == "cdp":
        page.keyboard.press("Enter")
        enters = [e for e in page.evaluate("window.__events") if e["type"] == "keydown" and e["key"] == "Enter"]
        assert enters and enters[-1]["isComposing"], f"the Enter was not part of the composition: {enters}"
    else:
        page.evaluate("""() => { const box = document.getElementById('question');
            box.dispatchEvent(new CompositionEvent('compositionstart', {data: ''}));
            box.value += '요';
            box.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', code: 'Enter', keyCode: 229,
                                                            isComposing: true, bubbles: true, cancelable: true})); }""")
    page.wait_for_timeout(300)
    assert ui.user_messages() == [] and ui.chats == [], "Enter that finishes a syllable must not send"

    if method == "cdp":
        cdp.send("Input.insertText", {"text": "요"})  # commits the composition: compositionend
    else:
        page.evaluate("""() => document.getElementById('question').dispatchEvent(
            new CompositionEvent('compositionend', {data: '요'}))""")
    assert box.input_value().strip() == "반품 기간은 며칠인가요"
    page.keyboard.press("Enter")
    ui.wait_answer(1, done=False)
    assert ui.user_messages() == ["반품 기간은 며칠인가요"]
    assert len(ui.chats) == 1 and ui.chats[0]["messages"][-1]["content"] == "반품 기간은 며칠인가요"
    assert box.input_value() == ""


def test_enter_after_compositionend_in_the_same_task_does_not_send(ui: UI) -> None:
    """Event orders CDP cannot produce, dispatched as synthetic events: Safari's compositionend-then-keydown
    in one task, and a keyCode 229 keydown with no composition events at all."""
    page = ui.page
    page.locator("#question").fill("환불")
    defaults = page.evaluate("""() => {
        const box = document.getElementById('question');
        const enter = (keyCode, isComposing) => {
            const event = new KeyboardEvent('keydown', {key: 'Enter', code: 'Enter', keyCode, which: keyCode,
                                                        isComposing, bubbles: true, cancelable: true});
            if (event.keyCode !== keyCode) Object.defineProperty(event, 'keyCode', {value: keyCode});
            box.dispatchEvent(event);
            return event.defaultPrevented;
        };
        const results = {};
        results.keyCode229Alone = enter(229, false);
        box.dispatchEvent(new CompositionEvent('compositionstart', {data: ''}));
        results.whileComposing = enter(229, true);
        box.dispatchEvent(new CompositionEvent('compositionend', {data: '불'}));
        results.safari229 = enter(229, false);      // Safari: after compositionend, same task, keyCode 229
        results.sameTask13 = enter(13, false);      // and even a plain Enter in that same task
        return results;
    }""")
    assert defaults == {"keyCode229Alone": False, "whileComposing": False, "safari229": False, "sameTask13": False}
    page.wait_for_timeout(300)
    assert ui.user_messages() == [] and ui.chats == []

    page.keyboard.press("Enter")  # a later task: an ordinary Enter sends
    ui.wait_answer(1, done=False)
    assert ui.user_messages() == ["환불"]


def test_shift_enter_is_a_newline(ui: UI) -> None:
    page = ui.page
    box = page.locator("#question")
    box.click()
    box.press_sequentially("첫 줄")
    box.press("Shift+Enter")
    box.press_sequentially("둘째 줄")
    page.wait_for_timeout(200)
    assert box.input_value() == "첫 줄\n둘째 줄"
    assert ui.user_messages() == [] and ui.chats == []
    box.press("Enter")
    ui.wait_answer(1, done=False)
    assert ui.chats[0]["messages"][-1]["content"] == "첫 줄\n둘째 줄"
    assert ui.user_messages() == ["첫 줄\n둘째 줄"]


def test_language_toggle(ui: UI, browser: Browser, served: Served) -> None:
    page = ui.page
    assert page.evaluate("document.documentElement.lang") == "ko"
    assert (page.inner_text("#send"), page.inner_text("#settings-open")) == ("보내기", "설정")
    page.click("#lang-toggle")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert (page.inner_text("#send"), page.inner_text("#settings-open")) == ("Send", "Settings")
    assert page.get_attribute("#question", "placeholder") == "Ask about your documents…"
    assert page.inner_text("#lang-toggle") == "한국어"
    page.reload()
    ui.wait("() => document.documentElement.lang === 'en' && document.getElementById('send').textContent === 'Send'")
    page.click("#lang-toggle")
    assert page.evaluate("document.documentElement.lang") == "ko"
    assert page.inner_text("#new-conversation") == "새 대화"

    english = open_ui(browser, served, locale="en-US")  # the default follows navigator.language
    try:
        assert english.page.evaluate("document.documentElement.lang") == "en"
        assert english.page.inner_text("#send") == "Send"
    finally:
        close_ui(english)


def test_bad_api_key_shows_the_server_message_and_opens_settings(ui: UI) -> None:
    page = ui.page
    page.click("#settings-open")
    page.fill("#setting-key", "not-a-real-key")
    page.click("#settings-save")
    ui.wait("() => document.getElementById('settings-dialog').open && "
            "!document.getElementById('settings-error').hidden", timeout=15)
    assert "Bearer not-a-real-key" in ui.auth
    message = page.inner_text("#settings-error")
    assert "the API key is not valid" in message and "jisik keys create" in message, message  # message and hint
    assert "Traceback" not in message
    assert page.evaluate("document.activeElement.id") == "setting-key"
    assert page.evaluate("localStorage.getItem('jisik.apiKey')") == "not-a-real-key"
    assert page.locator("#kb-select option").all_inner_texts() == ["사용할 수 있는 지식 베이스가 없습니다"]
    page.fill("#setting-key", ui.key)
    page.click("#settings-save")
    ui.wait("kb => [...document.querySelectorAll('#kb-select option')].some(o => o.value === kb) && "
            "document.getElementById('notice').hidden", KB, timeout=15)
    assert page.evaluate("localStorage.getItem('jisik.apiKey')") == ui.key
    assert ui.auth[-1] == f"Bearer {ui.key}"


def test_conversations_remember_their_knowledge_base(ui: UI) -> None:
    page = ui.page
    page.select_option("#kb-select", KB)
    ui.ask(QUESTION, done=False)
    page.click("#new-conversation")
    assert ui.user_messages() == [] and page.is_visible("#empty-state")
    page.select_option("#kb-select", OTHER_KB)
    ui.ask("설치 방법을 알려 주세요", done=False)
    assert ui.chats[-1]["model"] == f"jisik/{OTHER_KB}"
    assert ui.chats[-1]["messages"] == [{"role": "user", "content": "설치 방법을 알려 주세요"}]  # no history
    # that knowledge base is empty: whatever the server says about it is what the user reads
    error = server_error(ui, ui.chats[-1])
    assert error["message"] in shown_error(ui) and (error.get("hint") or "") in shown_error(ui), shown_error(ui)
    titles = page.locator(".conversation-title")
    assert titles.all_inner_texts() == ["설치 방법을 알려 주세요", QUESTION]  # the newest first

    titles.nth(1).click()
    assert ui.user_messages() == [QUESTION]
    assert page.input_value("#kb-select") == KB
    page.reload()
    ui.wait_kbs()
    assert ui.user_messages() == [QUESTION] and page.input_value("#kb-select") == KB

    page.locator(".conversation-delete").first.click()  # the other one
    assert page.locator(".conversation-title").all_inner_texts() == [QUESTION]
    assert ui.user_messages() == [QUESTION]
    page.locator(".conversation-delete").first.click()
    assert page.locator(".conversation").count() == 0 and ui.user_messages() == []
    assert page.evaluate("JSON.parse(localStorage.getItem('jisik.conversations'))") == []


def test_error_in_the_stream_is_shown(ui: UI) -> None:
    """A filter the server cannot read: its message and hint are shown under the question, never a stack."""
    page = ui.page
    page.select_option("#kb-select", KB)
    page.click("#settings-open")
    page.fill("#setting-filters", "nonsense")
    page.click("#settings-save")
    ui.ask(QUESTION, done=False)
    assert ui.chats[-1]["filters"] == ["nonsense"]
    error = server_error(ui, ui.chats[-1])
    shown = shown_error(ui)
    assert error["message"] in shown and "filter" in shown, shown
    assert error.get("hint") and error["hint"] in shown, shown
    assert page.get_attribute(".message.assistant >> nth=-1", "data-status") == "error"
    assert "Traceback" not in page.inner_text("#messages")


def test_client_helpers_in_the_browser(ui: UI) -> None:
    """The page's own modules, in Chromium: the SSE reader with awkward chunk boundaries, answer rendering
    (model text never becomes HTML), and highlighting by code-point offsets past an emoji."""
    page = ui.page
    events = page.evaluate("""async () => {
        const { readEvents } = await import('/static/api.js');
        const chunks = ['data: {"a"', ':1}\\r', '\\n\\r\\n', ': keep-alive\\n\\n', 'event: job\\ndata: x\\n',
                        'data: y\\n\\n', 'data: [DONE]\\n\\n'];
        const body = new ReadableStream({ start(c) {
            for (const chunk of chunks) c.enqueue(new TextEncoder().encode(chunk)); c.close(); } });
        const out = [];
        for await (const e of readEvents(new Response(body))) out.push([e.event, e.data]);
        return out;
    }""")
    assert events == [["message", '{"a":1}'], ["job", "x\ny"], ["message", "[DONE]"]]

    rendered = page.evaluate("""async () => {
        const { renderAnswer } = await import('/static/render.js');
        const box = document.createElement('div');
        renderAnswer(box, '<img src=x onerror="window.pwned=1"> 답은 14일 [1, 2], 연도 [2024], 없는 번호 [9].',
                     [{number: 1}, {number: 2}], () => {});
        return {images: box.querySelectorAll('img').length, buttons: [...box.querySelectorAll('button.cite')]
                .map(b => b.textContent), text: box.textContent};
    }""")
    assert rendered["images"] == 0 and rendered["buttons"] == ["1", "2"]
    assert rendered["text"].startswith("<img src=x") and "[2024]" in rendered["text"] and "[9]" in rendered["text"]

    text = "😀 안내\n반품은 14일 이내입니다. 끝"
    quote = "반품은 14일 이내입니다."
    start = 100 + text.index(quote)  # Python offsets count code points, as jisik's spans do
    located = page.evaluate("""async ([passage, citation]) => {
        const { locateCitation } = await import('/static/render.js');
        return locateCitation(passage, citation);
    }""", [{"text": text, "span": [100, 100 + len(text)]},
           {"span": [start, start + len(quote)], "quote": quote}])
    assert located == {"how": "span", "parts": ["😀 안내\n", quote, " 끝"]}
