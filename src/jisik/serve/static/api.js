// Talking to the jisik server: the API key header, error objects, server-sent events over fetch, uploads.
// EventSource is not used anywhere: it cannot send the Authorization header.

import { t } from "./i18n.js";

const KEY_STORAGE = "jisik.apiKey";

export function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

function authHeaders(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : { ...extra };
}

/** An error the user should read: the server's message and hint (never a stack), and its HTTP status. */
export class ApiError extends Error {
  constructor(message, { status = 0, hint = "", type = "", code = "" } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.hint = hint;
    this.type = type;
    this.code = code;
  }
}

/** The server's `{"error": {...}}` as an ApiError; a non-JSON body (a proxy's HTML page) gets a generic text. */
export function errorFromBody(status, bodyText) {
  try {
    const body = JSON.parse(bodyText);
    const error = body?.error;
    if (error && typeof error === "object" && error.message) {
      return new ApiError(String(error.message), {
        status, hint: error.hint ? String(error.hint) : "", type: error.type || "", code: error.code || "",
      });
    }
    // FastAPI's own {"detail": ...} in case a route slips past the server's error handler
    if (typeof body?.detail === "string") return new ApiError(body.detail, { status });
  } catch {
    // not JSON: fall through
  }
  return new ApiError(t("httpError", { status }), { status });
}

/** fetch() with the key header; throws ApiError on a network failure or a non-2xx answer. */
export async function apiFetch(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: authHeaders(options.headers) });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(t("networkError"));
  }
  if (!response.ok) throw errorFromBody(response.status, await response.text());
  return response;
}

export async function getJSON(path, options = {}) {
  return (await apiFetch(path, options)).json();
}

/**
 * Server-sent events from a fetch Response: yields {event, data, id} per event (data lines joined by "\n").
 * Lines may end in \n, \r\n or \r, and a chunk may end anywhere, even between \r and \n, so a trailing \r
 * waits for the next chunk before it counts as a line end.
 */
export async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let data = [];
  let event = "";
  let id = "";
  const line = (text) => {
    if (text === "") {
      const out = data.length ? { event: event || "message", data: data.join("\n"), id } : null;
      data = [];
      event = "";
      return out;
    }
    if (text.startsWith(":")) return null; // comment / keep-alive
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") event = value;
    else if (field === "id") id = value;
    return null;
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      for (;;) {
        const match = /\r\n|\n|\r/.exec(buffer);
        if (!match) break;
        if (match[0] === "\r" && match.index === buffer.length - 1) break; // maybe half of \r\n
        const out = line(buffer.slice(0, match.index));
        buffer = buffer.slice(match.index + match[0].length);
        if (out) yield out;
      }
    }
    // a last event without its blank line: lenient, deliver it rather than lose the end of an answer
    if (buffer) line(buffer);
    const out = line("");
    if (out) yield out;
  } finally {
    reader.releaseLock();
  }
}

/** The knowledge bases this key may see; the server answers a list, or {"data": [...]} like /v1/models. */
export async function listKbs() {
  const body = await getJSON("/api/kbs");
  const list = Array.isArray(body) ? body : body?.data ?? body?.kbs ?? [];
  return list.filter((kb) => kb && typeof kb.name === "string");
}

export async function getPassage(kb, chunkId) {
  return getJSON(`/api/kbs/${encodeURIComponent(kb)}/passages/${encodeURIComponent(chunkId)}`);
}

/**
 * Stream a chat completion: calls onDelta(text) for each content piece and returns
 * {text, citations, finishReason}. Errors (HTTP or an error event inside the stream) throw ApiError.
 */
export async function streamChat(body, { signal, onDelta }) {
  const response = await apiFetch("/v1/chat/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  let text = "";
  let citations = null;
  let finishReason = null;
  let done = false;
  for await (const { data } of readEvents(response)) {
    if (data === "[DONE]") {
      done = true;
      break;
    }
    let chunk;
    try {
      chunk = JSON.parse(data);
    } catch {
      continue; // not ours to show; the answer goes on
    }
    if (chunk.error) throw errorFromBody(0, JSON.stringify(chunk));
    const choice = chunk.choices?.[0];
    if (!choice) continue; // the usage chunk has no choices
    const delta = choice.delta || {};
    if (typeof delta.content === "string" && delta.content) {
      text += delta.content;
      onDelta(text);
    }
    if (Array.isArray(delta.citations)) citations = delta.citations;
    // the guards may change the answer after it streamed (unsupported sentences dropped): show theirs
    if (typeof delta.final_text === "string") {
      text = delta.final_text;
      onDelta(text);
    }
    if (choice.finish_reason) finishReason = choice.finish_reason;
  }
  if (!done && !finishReason) throw new ApiError(t("streamEnded"));
  return { text, citations: citations || [], finishReason };
}

/**
 * Upload files with XMLHttpRequest, the only browser API that reports upload progress.
 * onProgress(fraction or null when the size is unknown); resolves with the job the server answers (202).
 */
export function uploadFiles(kb, files, { onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/kbs/${encodeURIComponent(kb)}/documents`);
    const key = apiKey();
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    xhr.upload.onprogress = (e) => onProgress?.(e.lengthComputable ? e.loaded / e.total : null);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject(new ApiError(t("httpError", { status: xhr.status }), { status: xhr.status }));
        }
      } else {
        reject(errorFromBody(xhr.status, xhr.responseText));
      }
    };
    xhr.onerror = () => reject(new ApiError(t("networkError")));
    xhr.onabort = () => reject(new DOMException("aborted", "AbortError"));
    signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(form);
  });
}

const FINAL = new Set(["done", "failed", "cancelled"]);

export function jobFinished(job) {
  return FINAL.has(job?.status);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follow an ingest job until it ends, calling onUpdate(job) on every change. Reads the job's event
 * stream; if that is unavailable or ends early (a proxy cutting long responses), polls every 500 ms.
 */
export async function followJob(kb, job, onUpdate) {
  const base = `/api/kbs/${encodeURIComponent(kb)}/jobs/${encodeURIComponent(job.id)}`;
  onUpdate(job);
  if (jobFinished(job)) return job;
  let last = job;
  try {
    const response = await apiFetch(`${base}/events`, { headers: { Accept: "text/event-stream" } });
    for await (const { data } of readEvents(response)) {
      let update;
      try {
        update = JSON.parse(data);
      } catch {
        continue;
      }
      if (update?.error && !update.status) throw errorFromBody(0, data);
      if (!update?.status) continue;
      last = update;
      onUpdate(update);
      if (jobFinished(update)) return update;
    }
  } catch (err) {
    // 401/403/404/410 will not get better by polling; anything else (a dropped stream) falls back
    if (err instanceof ApiError && [401, 403, 404, 410].includes(err.status)) throw err;
  }
  for (;;) {
    await sleep(500);
    const update = await getJSON(base);
    if (JSON.stringify(update) !== JSON.stringify(last)) onUpdate(update);
    last = update;
    if (jobFinished(update)) return update;
  }
}
