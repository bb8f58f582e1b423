"""The web chat UI in a real headless Chromium (Playwright) against a real `jisik serve` on loopback.

One server for the module: a knowledge base made by `jisik init` (the default, real embedder and the
extractive answerer), empty until the first test uploads a Korean document through the UI. Every test gets
a fresh browser context, so localStorage (conversations, settings, language) starts empty.

Screenshots go to build/test-artifacts/ui/ for a person to look at: Hangul must render as glyphs.
"""

from __future__ import annotations

import json
import subprocess
import sys
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
DOC_NAME = "반품 정책.md"
DOCUMENT = """# 반품 정책

저희 쇼핑몰은 고객이 안심하고 구매할 수 있도록 다음과 같은 반품 정책을 운영합니다.

반품은 상품을 받은 날부터 14일 이내에 신청할 수 있습니다. 신청은 마이페이지의 주문 내역에서 할 수 있습니다.

단순 변심으로 반품하는 경우 왕복 배송비 6,000원은 고객이 부담합니다. 상품에 하자가 있으면 배송비는 회사가 부담합니다.

환불은 반품 상품이 물류 센터에 도착한 뒤 3영업일 안에 결제 수단으로 처리됩니다.
"""
QUESTION = "반품 기간은 며칠인가요?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("serve-ui")
    kb = base / KB
    init = subprocess.run([sys.executable, "-m", "jisik", "init", str(kb)], capture_output=True, text=True,
                          timeout=120)
    assert init.returncode == 0, f"jisik init failed:\n{init.stdout}\n{init.stderr}"
    with running_server({KB: kb}, state_db=base / "server.db", env={"JISIK_RAISE_UNEXPECTED": "1"}) as process:
        yield process


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
    """A page of the chat UI and what it sent: chat request bodies, Authorization headers, uncaught errors."""

    page: Page
    server: ServerProcess
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

    def user_messages(self) -> list[str]:
        return self.page.locator(".message.user .message-body").all_inner_texts()

    def ask(self, text: str) -> dict[str, Any]:
        """Type `text` into the question box, press Enter, wait for the answer; the answer as stored."""
        answers = self.page.locator(".message.assistant").count()
        box = self.page.locator("#question")
        box.click()
        box.press_sequentially(text)
        box.press("Enter")
        return self.wait_answer(answers + 1)

    def wait_answer(self, count: int) -> dict[str, Any]:
        """Wait for the `count`-th answer to finish; its message object from localStorage."""
        self.wait("""n => { const m = document.querySelectorAll('.message.assistant');
                          return m.length >= n && m[n - 1].dataset.status !== 'streaming'; }""", count)
        status = self.page.locator(".message.assistant").nth(count - 1).get_attribute("data-status")
        assert status == "done", f"answer {count} ended {status!r}: {self.page.inner_text('#messages')}"
        return self.stored_messages()[-1]

    def stored_messages(self) -> list[dict[str, Any]]:
        conversations = self.page.evaluate("() => JSON.parse(localStorage.getItem('jisik.conversations'))")
        current = self.page.evaluate("() => localStorage.getItem('jisik.currentConversation')")
        return next(c for c in conversations if c["id"] == current)["messages"]


def open_ui(browser: Browser, server: ServerProcess, locale: str = "ko-KR",
            viewport: tuple[int, int] = (1280, 860)) -> UI:
    context = browser.new_context(locale=locale, viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    ui = UI(page, server)

    def on_request(request: Any) -> None:
        if request.url.startswith(server.base_url):
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
    ui.wait("kb => [...document.querySelectorAll('#kb-select option')].some(o => o.value === kb)", KB, timeout=30)
    return ui


@pytest.fixture
def ui(browser: Browser, server: ServerProcess) -> Iterator[UI]:
    opened = open_ui(browser, server)
    yield opened
    opened.page.context.close()
    assert not opened.errors, f"uncaught errors in the page: {opened.errors}"


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def api_get(server: ServerProcess, path: str) -> Any:
    with urllib.request.urlopen(server.url(urllib.parse.quote(path)), timeout=10) as response:
        return json.loads(response.read())


def test_upload_ask_and_open_citation(ui: UI, tmp_path: Path) -> None:
    page = ui.page
    assert "0" in page.inner_text("#kb-info"), page.inner_text("#kb-info")  # the knowledge base starts empty

    # upload a Korean document and a broken PDF: the report lists the one added and the one that failed
    document = tmp_path / DOC_NAME
    document.write_text(DOCUMENT, encoding="utf-8")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\nthis is not really a pdf\n")
    page.click("#upload-open")
    page.set_input_files("#upload-files", [str(document), str(broken)])
    page.click("#upload-start")
    ui.wait("() => ['done', 'failed', 'cancelled'].includes("
            "document.getElementById('upload-dialog').dataset.jobStatus)", timeout=90)
    assert page.get_attribute("#upload-dialog", "data-job-status") == "done", page.inner_text("#upload-dialog")
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
    passage = api_get(ui.server, f"/api/kbs/{KB}/passages/{citation['chunk_id']}")
    start, end = citation["span"][0] - passage["span"][0], citation["span"][1] - passage["span"][0]
    assert mark.inner_text() == passage["text"][start:end] == citation["quote"]
    assert mark.get_attribute("data-highlight") == "span", "the citation's document offsets located the quote"
    assert "14일" in mark.inner_text()
    screenshot(page, "citation-panel.png")

    # a follow-up carries the conversation so far
    ui.ask("그럼 환불은 언제 되나요?")
    assert [m["role"] for m in ui.chats[-1]["messages"]] == ["user", "assistant", "user"]
    assert ui.chats[-1]["messages"][1]["content"] == answer["content"]

    # the conversation survives a reload, its answer still with citation buttons
    page.reload()
    ui.wait("() => document.querySelectorAll('.message.assistant button.cite:not([disabled])').length > 0")
    assert page.locator(".conversation-title").all_inner_texts() == [QUESTION]
    assert not ui.errors


def test_enter_while_composing_hangul_does_not_send(ui: UI) -> None:
    """Real IME composition through the DevTools protocol: Input.imeSetComposition, then Enter."""
    page = ui.page
    box = page.locator("#question")
    box.click()
    page.keyboard.insert_text("반품 기간은 며칠인가")
    page.evaluate("""() => { window.__keys = [];
        document.getElementById('question').addEventListener('keydown',
            e => window.__keys.push({key: e.key, isComposing: e.isComposing, keyCode: e.keyCode})); }""")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.imeSetComposition", {"text": "요", "selectionStart": 1, "selectionEnd": 1})
    page.keyboard.press("Enter")
    keys = page.evaluate("() => window.__keys")
    # this test relies on Chromium's CDP composition giving the page a composing Enter, as a real IME does
    assert {"key": "Enter", "isComposing": True, "keyCode": 229} in keys or \
        {"key": "Enter", "isComposing": True, "keyCode": 13} in keys, f"CDP composition did not compose: {keys}"
    page.wait_for_timeout(300)
    assert ui.user_messages() == [] and ui.chats == [], "Enter that finishes a syllable must not send"

    cdp.send("Input.insertText", {"text": "요"})  # commits the composition (compositionend)
    assert box.input_value().strip() == "반품 기간은 며칠인가요"
    page.keyboard.press("Enter")
    ui.wait_answer(1)
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
    ui.wait_answer(1)
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
    ui.wait_answer(1)
    assert ui.chats[0]["messages"][-1]["content"] == "첫 줄\n둘째 줄"
    assert ui.user_messages() == ["첫 줄\n둘째 줄"]


def test_language_toggle(ui: UI, browser: Browser) -> None:
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

    english = open_ui(browser, ui.server, locale="en-US")  # the default follows navigator.language
    try:
        assert english.page.evaluate("document.documentElement.lang") == "en"
        assert english.page.inner_text("#send") == "Send"
    finally:
        english.page.context.close()


def test_bad_api_key_shows_the_server_message_and_opens_settings(ui: UI) -> None:
    page = ui.page
    assert set(ui.auth) == {None}  # no key stored: no Authorization header
    page.click("#settings-open")
    page.fill("#setting-key", "not-a-real-key")
    page.click("#settings-save")
    ui.wait("() => document.getElementById('settings-dialog').open && "
            "!document.getElementById('settings-error').hidden", timeout=15)
    assert "Bearer not-a-real-key" in ui.auth
    message = page.inner_text("#settings-error")
    assert "API key" in message and "jisik keys create" in message, message  # the server's message and hint
    assert "Traceback" not in message
    assert page.evaluate("document.activeElement.id") == "setting-key"
    assert page.evaluate("localStorage.getItem('jisik.apiKey')") == "not-a-real-key"
    page.fill("#setting-key", "")
    page.click("#settings-save")
    ui.wait("kb => [...document.querySelectorAll('#kb-select option')].some(o => o.value === kb) && "
            "document.getElementById('notice').hidden", KB, timeout=15)
    assert page.evaluate("localStorage.getItem('jisik.apiKey')") is None
