// The upload dialog: files go up with XMLHttpRequest (for its progress events), then the ingest job is
// followed to its end and its report shown: what was added or updated, and each failed file with its reason.

import { followJob, uploadFiles } from "./api.js";
import { t } from "./i18n.js";
import { fileName, fillError } from "./render.js";

const $ = (id) => document.getElementById(id);

// report fields are lists of paths, except "unchanged", which is a count
const count = (value) => (Array.isArray(value) ? value.length : Number(value) || 0);

/**
 * Wire the dialog. `selectedKb()` names the knowledge base to upload into, `handleError(err, box)` shows an
 * error (and opens settings on a 401), `afterUpload()` runs once a job has ended (to refresh the counts).
 * Returns {relabel}: redraw the dialog's built text after a language change.
 */
export function setupUpload({ selectedKb, handleError, afterUpload }) {
  const ui = {
    open: $("upload-open"), dialog: $("upload-dialog"), target: $("upload-target"), dropZone: $("drop-zone"),
    files: $("upload-files"), progress: $("upload-progress"), message: $("upload-message"),
    error: $("upload-error"), report: $("upload-report"), start: $("upload-start"),
  };
  let uploading = false;
  let lastJob = null;
  let lastKb = null;

  function reset() {
    lastJob = null;
    ui.progress.hidden = true;
    ui.progress.value = 0;
    ui.message.textContent = "";
    ui.error.hidden = true;
    ui.report.hidden = true;
    ui.report.replaceChildren();
  }

  function open() {
    const kb = selectedKb();
    if (!kb) return;
    if (!uploading) {
      reset();
      lastKb = kb;
    }
    ui.target.textContent = t("uploadTo", { kb: lastKb });
    ui.dialog.showModal();
  }

  // null: size unknown, an indeterminate bar
  function setProgress(fraction) {
    ui.progress.hidden = false;
    if (fraction === null || fraction === undefined || Number.isNaN(fraction)) ui.progress.removeAttribute("value");
    else ui.progress.value = Math.max(0, Math.min(1, fraction));
  }

  function showJob(job) {
    lastJob = job;
    ui.dialog.dataset.jobStatus = job.status;
    if (job.status === "queued") {
      ui.message.textContent = t("uploaded");
      setProgress(null);
    } else if (job.status === "running") {
      const total = Number(job.total) || 0;
      const stage = job.stage || "";
      ui.message.textContent = total
        ? t("processing", { stage, done: job.done ?? 0, total }) : t("processingNoTotal", { stage });
      setProgress(total ? (Number(job.done) || 0) / total : null);
    } else if (job.status === "done") {
      ui.message.textContent = t("jobDone");
      setProgress(1);
    } else if (job.status === "failed" || job.status === "cancelled") {
      ui.message.textContent = t(job.status === "failed" ? "jobFailed" : "jobCancelled");
      ui.progress.hidden = true;
      if (job.error) fillError(ui.error, typeof job.error === "string" ? { message: job.error } : job.error);
    }
    if (job.report) renderReport(job.report);
  }

  function reportList(titleKey, entries, cls) {
    const section = document.createElement("div");
    section.className = `report-group ${cls}`;
    const heading = document.createElement("h3");
    heading.textContent = `${t(titleKey)} (${entries.length})`;
    const list = document.createElement("ul");
    for (const entry of entries) {
      const li = document.createElement("li");
      if (entry && typeof entry === "object") { // a failed file: {path, reason}
        const name = document.createElement("span");
        name.className = "report-file";
        name.textContent = fileName(entry.path ?? entry.file ?? "");
        const reason = document.createElement("span");
        reason.className = "report-reason";
        reason.textContent = String(entry.reason ?? entry.error ?? "");
        li.append(name, reason);
      } else {
        li.textContent = fileName(String(entry)); // the server's paths are its own business; the name is ours
      }
      list.append(li);
    }
    section.append(heading, list);
    return section;
  }

  function renderReport(report) {
    const summary = document.createElement("p");
    summary.className = "report-summary";
    summary.textContent = t("reportSummary", { added: count(report.added), updated: count(report.updated),
      unchanged: count(report.unchanged), failed: count(report.failed) });
    const parts = [summary];
    for (const [key, cls] of [["added", "ok"], ["updated", "ok"], ["empty", "warn"], ["failed", "bad"],
      ["warnings", "warn"]]) {
      if (Array.isArray(report[key]) && report[key].length) parts.push(reportList(key, report[key], cls));
    }
    ui.report.replaceChildren(...parts);
    ui.report.hidden = false;
  }

  async function start() {
    const kb = lastKb || selectedKb();
    const files = [...(ui.files.files || [])];
    if (uploading || !kb) return;
    reset();
    if (!files.length) {
      ui.message.textContent = t("noFiles");
      return;
    }
    uploading = true;
    ui.start.disabled = true;
    delete ui.dialog.dataset.jobStatus;
    try {
      setProgress(0);
      ui.message.textContent = t("uploading", { percent: 0 });
      const job = await uploadFiles(kb, files, {
        onProgress(fraction) {
          setProgress(fraction);
          if (fraction !== null) ui.message.textContent = t("uploading", { percent: Math.round(fraction * 100) });
        },
      });
      await followJob(kb, job, showJob);
      ui.files.value = "";
      await afterUpload();
    } catch (err) {
      ui.progress.hidden = true;
      ui.message.textContent = "";
      handleError(err, ui.error);
    } finally {
      uploading = false;
      ui.start.disabled = false;
    }
  }

  ui.open.addEventListener("click", open);
  ui.start.addEventListener("click", start);
  ui.dropZone.addEventListener("dragover", (event) => {
    event.preventDefault();
    ui.dropZone.classList.add("dragging");
  });
  ui.dropZone.addEventListener("dragleave", () => ui.dropZone.classList.remove("dragging"));
  ui.dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    ui.dropZone.classList.remove("dragging");
    if (event.dataTransfer?.files?.length) ui.files.files = event.dataTransfer.files;
  });

  return {
    relabel() {
      if (!ui.dialog.open) return;
      if (lastKb) ui.target.textContent = t("uploadTo", { kb: lastKb });
      if (lastJob) showJob(lastJob);
    },
  };
}
