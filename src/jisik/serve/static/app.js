// jisik's chat UI: conversations (kept in localStorage), the knowledge-base picker, streamed answers with
// clickable citations, the passage panel and settings. api.js talks to the server, render.js builds DOM from
// server text, upload.js runs the upload dialog, i18n.js holds the words.

import { ApiError, apiKey, getPassage, listKbs, setApiKey, streamChat } from "./api.js";
import { applyLanguage, initialLanguage, language, t } from "./i18n.js";
import { fileName, fillError, renderAnswer, renderPassage, renderSources } from "./render.js";
import { setupUpload } from "./upload.js";

const $ = (id) => document.getElementById(id);
const el = {
  sidebarToggle: $("sidebar-toggle"), layout: document.querySelector(".layout"), sidebar: $("sidebar"),
  kbSelect: $("kb-select"), kbInfo: $("kb-info"), langToggle: $("lang-toggle"),
  uploadOpen: $("upload-open"), settingsOpen: $("settings-open"),
  newConversation: $("new-conversation"), conversationList: $("conversation-list"),
  notice: $("notice"), emptyState: $("empty-state"), messages: $("messages"),
  composer: $("composer"), question: $("question"), send: $("send"), stop: $("stop"),
  passagePanel: $("passage-panel"), passageHeading: $("passage-heading"), passageMeta: $("passage-meta"),
  passageStatus: $("passage-status"), passageText: $("passage-text"), passageClose: $("passage-close"),
  settingsDialog: $("settings-dialog"), settingsForm: $("settings-form"), settingsError: $("settings-error"),
  settingMode: $("setting-mode"), settingK: $("setting-k"), settingFilters: $("setting-filters"),
  settingKey: $("setting-key"),
  uploadDialog: $("upload-dialog"),
};

// ---------------------------------------------------------------- storage

const STORE = { conversations: "jisik.conversations", current: "jisik.currentConversation",
  settings: "jisik.settings", kb: "jisik.kb" };

function readJSON(key, fallback) {
  try {
    const value = JSON.parse(localStorage.getItem(key));
    return value ?? fallback;
  } catch {
    return fallback; // a hand-edited or foreign value: start clean rather than fail to load
  }
}

const state = {
  kbs: [],
  conversations: readJSON(STORE.conversations, []).filter((c) => c && c.id && Array.isArray(c.messages)),
  currentId: localStorage.getItem(STORE.current),
  settings: { mode: "hybrid", k: null, filters: [], ...readJSON(STORE.settings, {}) },
  streaming: null, // {controller, conversation} while an answer streams
  passages: new Map(), // "kb\u0000chunk_id" -> passage, so a second click does not fetch again
  openPassage: null, // {passage, citation} shown in the panel, redrawn when the language changes
};

// An answer still marked as streaming when the page loads was cut off by a reload or a closed tab.
for (const conversation of state.conversations) {
  for (const message of conversation.messages) if (message.status === "streaming") message.status = "interrupted";
}

function saveConversations() {
  try {
    localStorage.setItem(STORE.conversations, JSON.stringify(state.conversations));
    if (state.currentId) localStorage.setItem(STORE.current, state.currentId);
    else localStorage.removeItem(STORE.current);
  } catch (err) {
    console.warn("jisik: could not save conversations", err); // storage full or disabled: keep going
  }
}

function newId() {
  // crypto.randomUUID exists only in secure contexts, and the server may be opened over plain http on a LAN
  return globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function currentConversation() {
  return state.conversations.find((c) => c.id === state.currentId) || null;
}

// ---------------------------------------------------------------- errors and notices

function showNotice(err) {
  fillError(el.notice, err);
}

function clearNotice() {
  el.notice.hidden = true;
  el.notice.replaceChildren();
}

/** Every error the user sees goes through here: a 401 also opens settings at the API key field. */
function handleError(err, box) {
  if (box) fillError(box, err);
  else showNotice(err);
  if (err instanceof ApiError && err.status === 401) openSettings(err);
}

// ---------------------------------------------------------------- knowledge bases

function selectedKb() {
  return el.kbSelect.value || null;
}

function kbRecord(name) {
  return state.kbs.find((kb) => kb.name === name) || null;
}

function renderKbInfo() {
  const kb = kbRecord(selectedKb());
  el.kbInfo.textContent = kb && kb.documents !== undefined
    ? t("kbInfo", { documents: kb.documents ?? 0, chunks: kb.chunks ?? 0 }) : "";
  el.uploadOpen.disabled = !kb;
  updateComposer();
}

async function loadKbs() {
  try {
    state.kbs = await listKbs();
  } catch (err) {
    state.kbs = [];
    handleError(err);
  }
  const wanted = currentConversation()?.kb || localStorage.getItem(STORE.kb) || el.kbSelect.value;
  const options = state.kbs.map((kb) => {
    const option = document.createElement("option");
    option.value = kb.name;
    option.textContent = kb.name;
    return option;
  });
  if (!options.length) {
    const option = document.createElement("option");
    option.value = "";
    option.textContent = t("noKbs");
    options.push(option);
  }
  el.kbSelect.replaceChildren(...options);
  el.kbSelect.disabled = !state.kbs.length;
  if (kbRecord(wanted)) el.kbSelect.value = wanted;
  renderKbInfo();
}

function onKbChange() {
  const kb = selectedKb();
  if (!kb) return;
  localStorage.setItem(STORE.kb, kb);
  const conversation = currentConversation();
  if (conversation && conversation.kb !== kb) {
    stopStreaming();
    conversation.kb = kb; // later questions of this conversation go to the new knowledge base
    saveConversations();
    renderConversationList();
  }
  renderKbInfo();
}

// ---------------------------------------------------------------- conversations

function renderConversationList() {
  const items = [...state.conversations]
    .sort((a, b) => (b.updated || 0) - (a.updated || 0))
    .map((conversation) => {
      const li = document.createElement("li");
      li.className = "conversation";
      const select = document.createElement("button");
      select.type = "button";
      select.className = "conversation-select";
      select.dataset.id = conversation.id;
      if (conversation.id === state.currentId) select.setAttribute("aria-current", "true");
      const title = document.createElement("span");
      title.className = "conversation-title";
      title.textContent = conversation.title || t("untitled");
      const kb = document.createElement("span");
      kb.className = "conversation-kb muted";
      kb.textContent = conversation.kb || "";
      select.append(title, kb);
      select.addEventListener("click", () => switchConversation(conversation.id));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "conversation-delete icon-button";
      remove.setAttribute("aria-label", t("deleteConversation", { title: conversation.title || t("untitled") }));
      remove.title = remove.getAttribute("aria-label");
      remove.textContent = "✕";
      remove.addEventListener("click", () => deleteConversation(conversation.id));
      li.append(select, remove);
      return li;
    });
  el.conversationList.replaceChildren(...items);
}

function createConversation() {
  const conversation = { id: newId(), title: "", kb: selectedKb(), created: Date.now(), updated: Date.now(),
    messages: [] };
  state.conversations.push(conversation);
  state.currentId = conversation.id;
  return conversation;
}

function newConversation() {
  stopStreaming();
  const current = currentConversation();
  // an empty conversation is already a new one: do not pile up untitled entries
  if (!current || current.messages.length) createConversation();
  saveConversations();
  renderAll();
  closeSidebarIfNarrow();
  el.question.focus();
}

function switchConversation(id) {
  if (id === state.currentId) return closeSidebarIfNarrow();
  stopStreaming();
  state.currentId = id;
  const conversation = currentConversation();
  if (conversation?.kb && kbRecord(conversation.kb)) el.kbSelect.value = conversation.kb;
  saveConversations();
  closePassage();
  renderAll();
  closeSidebarIfNarrow();
}

function deleteConversation(id) {
  if (state.streaming?.conversation.id === id) stopStreaming();
  state.conversations = state.conversations.filter((c) => c.id !== id);
  if (state.currentId === id) {
    const latest = [...state.conversations].sort((a, b) => (b.updated || 0) - (a.updated || 0))[0];
    state.currentId = latest?.id || null;
    if (latest?.kb && kbRecord(latest.kb)) el.kbSelect.value = latest.kb;
    closePassage();
  }
  saveConversations();
  renderAll();
}

// ---------------------------------------------------------------- messages

// message -> its DOM view; a WeakMap keeps DOM out of the objects saved to localStorage
const views = new WeakMap();

/** One message's DOM; update() re-renders it from the message object (during streaming, many times). */
function messageView(message) {
  const li = document.createElement("li");
  li.className = `message ${message.role}`;
  const who = document.createElement("p");
  who.className = "message-role";
  who.textContent = message.role === "user" ? t("you") : t("assistant");
  const body = document.createElement("div");
  body.className = "message-body";
  li.append(who, body);
  if (message.role === "user") {
    body.textContent = message.content;
    return { li, update() {} };
  }
  const sourcesHeading = document.createElement("p");
  sourcesHeading.className = "sources-heading";
  const sources = document.createElement("ol");
  sources.className = "sources";
  const status = document.createElement("p");
  status.className = "message-status muted";
  const error = document.createElement("div");
  error.className = "error-box";
  error.setAttribute("role", "alert");
  error.hidden = true;
  li.append(status, sourcesHeading, sources, error);
  const onCite = (citation, button) => openCitation(message.kb, citation, button);
  const update = () => {
    const streaming = message.status === "streaming";
    li.setAttribute("aria-busy", String(streaming));
    li.dataset.status = message.status;
    renderAnswer(body, message.content || "", streaming ? null : message.citations || [], onCite);
    body.hidden = !message.content;
    renderSources(sources, streaming ? [] : message.citations, onCite);
    sourcesHeading.textContent = t("sources");
    sourcesHeading.hidden = sources.hidden;
    const note = { streaming: message.content ? "" : t("thinking"), stopped: t("stopped"),
      interrupted: t("interrupted") }[message.status] || "";
    status.textContent = note;
    status.hidden = !note;
    if (message.status === "error") fillError(error, message.error);
    else error.hidden = true;
  };
  update();
  return { li, update };
}

function isNearBottom() {
  const scroller = el.messages;
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
}

function scrollToBottom() {
  el.messages.scrollTop = el.messages.scrollHeight;
}

function renderMessages() {
  const conversation = currentConversation();
  const messages = conversation?.messages || [];
  el.messages.replaceChildren(...messages.map((message) => {
    const view = messageView(message);
    views.set(message, view);
    return view.li;
  }));
  el.emptyState.hidden = messages.length > 0;
  scrollToBottom();
}

function renderAll() {
  renderConversationList();
  renderMessages();
  renderKbInfo();
}

function updateComposer() {
  const busy = Boolean(state.streaming);
  el.send.hidden = busy;
  el.stop.hidden = !busy;
  el.send.disabled = !selectedKb();
}

/** user/assistant turns of finished exchanges: an answer that failed or was stopped drops its question too. */
function history(messages) {
  const turns = [];
  for (let i = 0; i + 1 < messages.length; i += 1) {
    const [question, answer] = [messages[i], messages[i + 1]];
    if (question.role === "user" && answer.role === "assistant") {
      if (answer.status === "done" && answer.content) {
        turns.push({ role: "user", content: question.content }, { role: "assistant", content: answer.content });
      }
      i += 1;
    }
  }
  return turns;
}

function retrievalParams() {
  const { mode, k, filters } = state.settings;
  const params = {};
  if (mode) params.mode = mode;
  if (Number.isInteger(k) && k > 0) params.k = k;
  if (filters?.length) params.filters = filters;
  return params;
}

async function send() {
  const text = el.question.value.trim();
  const kb = selectedKb();
  if (!text || state.streaming || !kb) return;
  clearNotice();
  let conversation = currentConversation();
  if (!conversation) conversation = createConversation();
  conversation.kb = kb;
  const turns = history(conversation.messages);
  const question = { role: "user", content: text };
  const answer = { role: "assistant", content: "", citations: null, status: "streaming", kb };
  conversation.messages.push(question, answer);
  if (!conversation.title) conversation.title = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  conversation.updated = Date.now();
  saveConversations();
  renderConversationList();
  el.question.value = "";
  resizeQuestion();
  el.emptyState.hidden = true;
  for (const message of [question, answer]) {
    views.set(message, messageView(message));
    el.messages.append(views.get(message).li);
  }
  scrollToBottom();

  const controller = new AbortController();
  state.streaming = { controller, conversation };
  updateComposer();
  let frame = 0;
  const redraw = () => {
    frame = 0;
    const follow = isNearBottom();
    views.get(answer)?.update();
    if (follow) scrollToBottom();
  };
  try {
    const result = await streamChat(
      { model: `jisik/${kb}`, messages: [...turns, { role: "user", content: text }], ...retrievalParams() },
      {
        signal: controller.signal,
        onDelta(full) {
          answer.content = full;
          // one DOM rebuild per frame however fast the tokens come
          if (!frame) frame = requestAnimationFrame(redraw);
        },
      },
    );
    answer.content = result.text;
    answer.citations = result.citations;
    answer.status = "done";
  } catch (err) {
    if (err?.name === "AbortError") {
      answer.status = "stopped";
    } else {
      answer.status = "error";
      answer.error = { message: err?.message || t("networkError"), hint: err?.hint || "" };
      if (err instanceof ApiError && err.status === 401) openSettings(err);
    }
  } finally {
    if (frame) cancelAnimationFrame(frame);
    if (state.streaming?.controller === controller) state.streaming = null;
    conversation.updated = Date.now();
    saveConversations();
    const follow = isNearBottom();
    views.get(answer)?.update();
    if (follow) scrollToBottom();
    updateComposer();
  }
}

function stopStreaming() {
  state.streaming?.controller.abort();
}

// ---------------------------------------------------------------- composer and the Korean IME

// Enter sends, Shift+Enter is a newline, and an Enter that belongs to an input method (finishing a Hangul
// syllable, picking a Hanja or kana candidate) must never send. Browsers disagree on how such an Enter looks:
// - Chrome/Firefox: keydown with isComposing true (keyCode 229) before compositionend;
// - Safari: compositionend first, then a keydown with isComposing false but keyCode 229, in the same task;
// - some IMEs send keydown 229 with no composition events at all.
// So four guards: our own flag between compositionstart and compositionend, event.isComposing,
// keyCode 229, and a flag set by compositionend that lasts until the current task ends (setTimeout 0).
let composing = false;
let compositionJustEnded = false;

el.question.addEventListener("compositionstart", () => {
  composing = true;
});
el.question.addEventListener("compositionend", () => {
  composing = false;
  compositionJustEnded = true;
  setTimeout(() => {
    compositionJustEnded = false;
  }, 0);
});
el.question.addEventListener("blur", () => {
  composing = false; // a composition abandoned by leaving the field ends without compositionend in some browsers
});

el.question.addEventListener("keydown", (event) => {
  if (event.key !== "Enter") return;
  if (event.isComposing || composing || event.keyCode === 229 || compositionJustEnded) return; // the IME's Enter
  if (event.shiftKey || event.altKey) return; // newline: the textarea's default
  event.preventDefault();
  send();
});

function resizeQuestion() {
  el.question.style.height = "auto";
  el.question.style.height = `${Math.min(el.question.scrollHeight, 220)}px`;
}

el.question.addEventListener("input", resizeQuestion);
el.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
el.stop.addEventListener("click", stopStreaming);

// ---------------------------------------------------------------- passage panel

let citationTrigger = null;

async function openCitation(kb, citation, button) {
  citationTrigger = button;
  for (const active of document.querySelectorAll(".cite.active, .source.active")) active.classList.remove("active");
  for (const same of button.closest(".message")?.querySelectorAll(`[data-number="${citation.number}"]`) || []) {
    same.classList.add("active");
  }
  el.passagePanel.hidden = false;
  el.layout.classList.add("passage-open");
  el.passageHeading.textContent = fileName(citation.source);
  el.passageMeta.replaceChildren();
  el.passageText.replaceChildren();
  el.passageStatus.textContent = t("loading");
  state.openPassage = null;
  el.passagePanel.dataset.chunkId = citation.chunk_id;
  el.passageHeading.focus();
  const key = `${kb}\u0000${citation.chunk_id}`;
  try {
    let passage = state.passages.get(key);
    if (!passage) {
      passage = await getPassage(kb, citation.chunk_id);
      state.passages.set(key, passage);
    }
    if (el.passagePanel.dataset.chunkId !== String(citation.chunk_id)) return; // another citation was clicked
    el.passageStatus.textContent = "";
    state.openPassage = { passage, citation };
    drawPassage();
  } catch (err) {
    el.passageStatus.textContent = "";
    const box = document.createElement("div");
    box.className = "error-box";
    el.passageText.replaceChildren(box);
    handleError(err, box);
  }
}

function drawPassage() {
  const { passage, citation } = state.openPassage;
  renderPassage({ heading: el.passageHeading, meta: el.passageMeta, text: el.passageText }, passage, citation);
}

function closePassage() {
  if (el.passagePanel.hidden) return;
  el.passagePanel.hidden = true;
  state.openPassage = null;
  el.layout.classList.remove("passage-open");
  for (const active of document.querySelectorAll(".cite.active, .source.active")) active.classList.remove("active");
  if (citationTrigger?.isConnected) citationTrigger.focus();
  citationTrigger = null;
}

el.passageClose.addEventListener("click", closePassage);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !el.passagePanel.hidden && !document.querySelector("dialog[open]")) closePassage();
});

// ---------------------------------------------------------------- settings

function fillSettingsForm() {
  el.settingMode.value = state.settings.mode || "hybrid";
  el.settingK.value = Number.isInteger(state.settings.k) ? String(state.settings.k) : "";
  el.settingFilters.value = (state.settings.filters || []).join("\n");
  el.settingKey.value = apiKey();
}

function openSettings(err = null) {
  fillSettingsForm();
  if (err) fillError(el.settingsError, err);
  else el.settingsError.hidden = true;
  if (el.uploadDialog.open) el.uploadDialog.close();
  if (!el.settingsDialog.open) el.settingsDialog.showModal();
  (err ? el.settingKey : el.settingMode).focus();
}

el.settingsOpen.addEventListener("click", () => openSettings());
el.settingsDialog.addEventListener("close", () => {
  if (el.settingsDialog.returnValue !== "save") return;
  const k = Number.parseInt(el.settingK.value, 10);
  state.settings = {
    mode: el.settingMode.value,
    k: Number.isInteger(k) && k > 0 ? k : null,
    filters: el.settingFilters.value.split("\n").map((line) => line.trim()).filter(Boolean),
  };
  localStorage.setItem(STORE.settings, JSON.stringify(state.settings));
  const keyChanged = el.settingKey.value.trim() !== apiKey();
  setApiKey(el.settingKey.value.trim());
  if (keyChanged) {
    clearNotice();
    state.passages.clear();
    loadKbs(); // what this key may see
  }
});

// ---------------------------------------------------------------- upload

const upload = setupUpload({
  selectedKb,
  handleError,
  async afterUpload() {
    state.passages.clear(); // re-uploaded documents get new chunks
    await loadKbs();
  },
});

// ---------------------------------------------------------------- layout, language, start

const wide = window.matchMedia("(min-width: 760px)");

function setSidebar(open) {
  el.layout.classList.toggle("sidebar-hidden", !open);
  el.sidebarToggle.setAttribute("aria-expanded", String(open));
}

function closeSidebarIfNarrow() {
  if (!wide.matches) setSidebar(false);
}

el.sidebarToggle.addEventListener("click", () => setSidebar(el.layout.classList.contains("sidebar-hidden")));
wide.addEventListener("change", () => setSidebar(wide.matches));
el.newConversation.addEventListener("click", newConversation);
el.kbSelect.addEventListener("change", onKbChange);

el.langToggle.addEventListener("click", () => {
  applyLanguage(language() === "ko" ? "en" : "ko");
  // text built by code (not data-i18n) is rebuilt in the new language
  renderAll();
  if (state.openPassage) drawPassage();
  if (!state.kbs.length) loadKbs();
  upload.relabel();
});

applyLanguage(initialLanguage());
setSidebar(wide.matches);
if (state.currentId && !currentConversation()) state.currentId = null;
renderAll();
loadKbs().then(() => {
  const conversation = currentConversation();
  if (conversation && !conversation.kb && selectedKb()) conversation.kb = selectedKb();
  renderKbInfo();
});
el.question.focus();
