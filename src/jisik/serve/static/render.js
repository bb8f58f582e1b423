// Building answer, source and passage DOM from model and server text. Nothing here uses innerHTML:
// model output and document text only ever become text nodes, so a "<script>" in a document stays text.

import { t } from "./i18n.js";

// The server normalises markers to "[1]" or "[1, 2]" (jisik.generate.citations); three digits at most,
// so "[2024]" in an answer stays text.
const MARKER = /\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/g;

/** Show an error in `box`: the server's message, and its hint when it gave one. */
export function fillError(box, err) {
  const message = document.createElement("p");
  message.className = "error-message";
  message.textContent = err?.message || t("networkError");
  box.replaceChildren(message);
  if (err?.hint) {
    const hint = document.createElement("p");
    hint.className = "error-hint";
    hint.textContent = `${t("hint")}: ${err.hint}`;
    box.append(hint);
  }
  box.hidden = false;
}

/** "uploads/반품 정책.md" -> "반품 정책.md" */
export function fileName(source) {
  return String(source || "").split(/[\\/]/).filter(Boolean).pop() || String(source || "");
}

/** One entry per citation number, in number order (the server may repeat a source). */
export function uniqueCitations(citations) {
  const byNumber = new Map();
  for (const c of citations || []) if (c && Number.isInteger(c.number) && !byNumber.has(c.number)) byNumber.set(c.number, c);
  return [...byNumber.values()].sort((a, b) => a.number - b.number);
}

/**
 * Fill `container` with the answer text, every [n] marker a citation button. While streaming
 * (`citations` null) the buttons are shown but disabled: the citations only arrive with the last chunk.
 * A marker whose numbers are all unknown once citations are known is left as plain text.
 */
export function renderAnswer(container, text, citations, onCite) {
  const byNumber = new Map(uniqueCitations(citations).map((c) => [c.number, c]));
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(MARKER)) {
    const numbers = match[1].split(",").map((part) => Number.parseInt(part.trim(), 10));
    const known = citations ? numbers.filter((n) => byNumber.has(n)) : numbers;
    if (!known.length) continue;
    fragment.append(text.slice(last, match.index));
    const group = document.createElement("span");
    group.className = "cite-group";
    for (const n of known) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "cite";
      button.textContent = String(n);
      button.dataset.number = String(n);
      button.setAttribute("aria-label", t("citation", { n }));
      if (citations) button.addEventListener("click", () => onCite(byNumber.get(n), button));
      else button.disabled = true;
      group.append(button);
    }
    fragment.append(group);
    last = match.index + match[0].length;
  }
  fragment.append(text.slice(last));
  container.replaceChildren(fragment);
}

/** "반품 정책.md · 3쪽 · 제목" for a source line. */
export function describeSource(c) {
  const parts = [fileName(c.source)];
  if (c.page !== null && c.page !== undefined && c.page !== "") parts.push(t("page", { page: c.page }));
  if (c.title && c.title !== fileName(c.source)) parts.push(c.title);
  return parts.join(" · ");
}

/** The list of sources under an answer: one button per citation, opening the passage panel. */
export function renderSources(list, citations, onCite) {
  const items = uniqueCitations(citations).map((c) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "source";
    button.dataset.number = String(c.number);
    const number = document.createElement("span");
    number.className = "source-number";
    number.textContent = `[${c.number}]`;
    const label = document.createElement("span");
    label.className = "source-label";
    label.textContent = describeSource(c);
    button.append(number, label);
    button.addEventListener("click", () => onCite(c, button));
    li.append(button);
    return li;
  });
  list.replaceChildren(...items);
  list.hidden = items.length === 0;
}

// jisik's offsets are Python string indices: code points. JavaScript strings index UTF-16 units, which
// differ after any character outside the BMP (emoji, rare Hanja), so slices go through code points.
function codePoints(text) {
  return Array.from(text);
}

/**
 * Where the cited stretch lies in the passage, as [before, marked, after]: by the citation's document
 * offsets relative to the chunk's own; if those do not land on the quote (they should), by finding the
 * quote in the text. `how` says which one worked: "span", "quote" or "none".
 */
export function locateCitation(passage, citation) {
  const text = passage.text || "";
  const chars = codePoints(text);
  const base = Array.isArray(passage.span) ? Number(passage.span[0]) : NaN;
  const span = Array.isArray(citation?.span) ? citation.span.map(Number) : null;
  const quote = (citation?.quote || "").trim();
  if (span && Number.isFinite(base)) {
    const start = Math.max(0, Math.min(chars.length, span[0] - base));
    const end = Math.max(start, Math.min(chars.length, span[1] - base));
    const marked = chars.slice(start, end).join("");
    if (end > start && (!quote || marked.trim() === quote)) {
      return { how: "span", parts: [chars.slice(0, start).join(""), marked, chars.slice(end).join("")] };
    }
  }
  if (quote) {
    const at = text.indexOf(quote);
    if (at >= 0) {
      console.warn("jisik: citation span does not match its quote; highlighted by text", { citation, passage });
      return { how: "quote", parts: [text.slice(0, at), quote, text.slice(at + quote.length)] };
    }
  }
  return { how: "none", parts: [text, "", ""] };
}

/** Fill the passage panel: file name as heading, title / page / section, the text with the cited <mark>. */
export function renderPassage(panel, passage, citation) {
  panel.heading.textContent = fileName(passage.source || citation?.source);
  const rows = [
    [t("file"), passage.source || citation?.source],
    [t("title"), passage.title || citation?.title],
    [t("pageLabel"), passage.page ?? citation?.page],
    [t("section"), passage.section || citation?.section],
  ].filter(([, value]) => value !== null && value !== undefined && value !== "");
  panel.meta.replaceChildren(...rows.flatMap(([name, value]) => {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    return [dt, dd];
  }));
  const { how, parts } = locateCitation(passage, citation);
  const [before, marked, after] = parts;
  const nodes = [document.createTextNode(before)];
  if (marked) {
    const mark = document.createElement("mark");
    mark.textContent = marked;
    mark.dataset.highlight = how;
    nodes.push(mark);
  }
  nodes.push(document.createTextNode(after));
  panel.text.replaceChildren(...nodes);
  panel.text.dataset.highlight = how;
  panel.text.querySelector("mark")?.scrollIntoView({ block: "center" });
}
