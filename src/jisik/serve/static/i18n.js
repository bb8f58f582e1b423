// UI text in Korean and English. Elements carry data-i18n (text), data-i18n-placeholder,
// data-i18n-aria-label or data-i18n-title; applyLanguage() fills them, so the HTML holds keys, not prose.

const STRINGS = {
  ko: {
    appTitle: "jisik — 문서 질의응답",
    knowledgeBase: "지식 베이스",
    noKbs: "사용할 수 있는 지식 베이스가 없습니다",
    kbInfo: "문서 {documents}개 · 청크 {chunks}개",
    conversations: "대화 목록",
    toggleSidebar: "대화 목록 열기/닫기",
    newConversation: "새 대화",
    untitled: "새 대화",
    deleteConversation: "대화 삭제: {title}",
    upload: "문서 올리기",
    settings: "설정",
    languageToggle: "English",
    languageToggleLabel: "Switch to English",
    question: "질문",
    askPlaceholder: "문서에 대해 질문하세요…",
    send: "보내기",
    stop: "중지",
    composerHint: "Enter 보내기 · Shift+Enter 줄바꿈",
    emptyTitle: "무엇이든 물어보세요",
    emptyBody: "답변은 올린 문서에서만 찾으며, 번호를 누르면 근거가 된 구절을 볼 수 있습니다.",
    you: "나",
    assistant: "jisik",
    thinking: "답변을 찾는 중…",
    stopped: "(중지됨)",
    interrupted: "(답변이 끝나기 전에 페이지가 닫혔습니다)",
    sources: "출처",
    citation: "출처 {n} 보기",
    page: "{page}쪽",
    passage: "인용 구절",
    close: "닫기",
    file: "파일",
    title: "제목",
    pageLabel: "쪽",
    section: "절",
    loading: "불러오는 중…",
    settingsTitle: "설정",
    retrieval: "검색 설정",
    mode: "검색 방식",
    modeHybrid: "하이브리드 (의미 + 키워드)",
    modeDense: "의미 검색 (dense)",
    modeBm25: "키워드 검색 (BM25)",
    modeMmr: "MMR (다양성)",
    k: "가져올 구절 수 (k)",
    kPlaceholder: "서버 기본값",
    filters: "필터 (한 줄에 하나)",
    filtersHelp: "예: source=uploads/*.pdf",
    access: "접근",
    apiKey: "API 키",
    apiKeyHelp: "이 브라우저에만 저장되며 모든 요청에 Authorization: Bearer 헤더로 보냅니다.",
    save: "저장",
    cancel: "취소",
    uploadTitle: "문서 올리기",
    uploadTo: "올릴 지식 베이스: {kb}",
    chooseFiles: "파일 선택",
    dropHere: "파일을 여기에 끌어다 놓을 수도 있습니다",
    startUpload: "올리기",
    uploading: "올리는 중… {percent}%",
    uploaded: "올렸습니다. 처리 대기 중…",
    processing: "처리 중: {stage} {done}/{total}",
    processingNoTotal: "처리 중: {stage}",
    jobDone: "완료",
    jobFailed: "실패",
    jobCancelled: "취소됨",
    added: "추가",
    updated: "갱신",
    unchanged: "변경 없음",
    empty: "내용 없음",
    failed: "실패",
    warnings: "경고",
    reportSummary: "추가 {added} · 갱신 {updated} · 변경 없음 {unchanged} · 실패 {failed}",
    noFiles: "올릴 파일을 고르세요",
    networkError: "서버에 연결할 수 없습니다",
    httpError: "서버 오류 (HTTP {status})",
    streamEnded: "답변이 끝나기 전에 연결이 끊겼습니다",
    hint: "도움말",
  },
  en: {
    appTitle: "jisik — document Q&A",
    knowledgeBase: "Knowledge base",
    noKbs: "No knowledge base is available",
    kbInfo: "documents: {documents} · chunks: {chunks}",
    conversations: "Conversations",
    toggleSidebar: "Show or hide conversations",
    newConversation: "New conversation",
    untitled: "New conversation",
    deleteConversation: "Delete conversation: {title}",
    upload: "Upload documents",
    settings: "Settings",
    languageToggle: "한국어",
    languageToggleLabel: "한국어로 보기",
    question: "Question",
    askPlaceholder: "Ask about your documents…",
    send: "Send",
    stop: "Stop",
    composerHint: "Enter to send · Shift+Enter for a new line",
    emptyTitle: "Ask anything",
    emptyBody: "Answers come from your uploaded documents only; click a number to see the passage it cites.",
    you: "You",
    assistant: "jisik",
    thinking: "Looking for the answer…",
    stopped: "(stopped)",
    interrupted: "(the page was closed before the answer finished)",
    sources: "Sources",
    citation: "Show source {n}",
    page: "p. {page}",
    passage: "Cited passage",
    close: "Close",
    file: "File",
    title: "Title",
    pageLabel: "Page",
    section: "Section",
    loading: "Loading…",
    settingsTitle: "Settings",
    retrieval: "Retrieval",
    mode: "Search mode",
    modeHybrid: "Hybrid (meaning + keywords)",
    modeDense: "Dense (meaning)",
    modeBm25: "Keywords (BM25)",
    modeMmr: "MMR (diverse)",
    k: "Passages to retrieve (k)",
    kPlaceholder: "server default",
    filters: "Filters (one per line)",
    filtersHelp: "e.g. source=uploads/*.pdf",
    access: "Access",
    apiKey: "API key",
    apiKeyHelp: "Kept in this browser only; sent as an Authorization: Bearer header on every request.",
    save: "Save",
    cancel: "Cancel",
    uploadTitle: "Upload documents",
    uploadTo: "Into knowledge base: {kb}",
    chooseFiles: "Choose files",
    dropHere: "You can also drop files here",
    startUpload: "Upload",
    uploading: "Uploading… {percent}%",
    uploaded: "Uploaded. Waiting to be processed…",
    processing: "Processing: {stage} {done}/{total}",
    processingNoTotal: "Processing: {stage}",
    jobDone: "Done",
    jobFailed: "Failed",
    jobCancelled: "Cancelled",
    added: "Added",
    updated: "Updated",
    unchanged: "Unchanged",
    empty: "Empty",
    failed: "Failed",
    warnings: "Warnings",
    reportSummary: "added {added} · updated {updated} · unchanged {unchanged} · failed {failed}",
    noFiles: "Choose files to upload",
    networkError: "Cannot reach the server",
    httpError: "Server error (HTTP {status})",
    streamEnded: "The connection closed before the answer finished",
    hint: "Hint",
  },
};

const STORAGE_KEY = "jisik.lang";
let current = "en";

/** The language to start in: the one chosen before, else Korean for a Korean browser, else English. */
export function initialLanguage() {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved && saved in STRINGS) return saved;
  const preferred = navigator.languages?.length ? navigator.languages : [navigator.language || "en"];
  return preferred.some((tag) => tag.toLowerCase().startsWith("ko")) ? "ko" : "en";
}

export function language() {
  return current;
}

/** `t("kbInfo", {documents: 3})`: the string in the current language with {placeholders} filled. */
export function t(key, values = {}) {
  const template = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

/** Switch language, remember it, and re-label every element that carries a data-i18n* key. */
export function applyLanguage(lang, root = document) {
  current = lang in STRINGS ? lang : "en";
  localStorage.setItem(STORAGE_KEY, current);
  document.documentElement.lang = current;
  document.title = t("appTitle");
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}
