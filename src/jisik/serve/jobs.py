"""Background ingest of uploaded files: one worker thread per knowledge base, progress in the state db.

An upload is saved under ``<kb>/uploads/.incoming/<job>/`` while the request arrives; the job moves the
files to ``<kb>/uploads/`` and ingests them there (doc ids ``uploads/<name>``), so the same name uploaded
again updates that document. Searches and answers go on meanwhile: the ingest takes the knowledge base's
writer lock, readers see the last committed generation.

Cancelling (shutdown) interrupts the ingest between batches, the way Ctrl-C does for ``jisik ingest``:
what was committed stays, and uploading the same files again finishes the rest without duplicates.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from jisik.errors import JisikError
from jisik.serve.discovery import process_alive
from jisik.serve.library import Library
from jisik.serve.state import Job, ServerState

log = logging.getLogger("jisik.serve.jobs")

UPLOADS = "uploads"
INCOMING = ".incoming"
PROGRESS_INTERVAL = 0.25  # seconds between progress writes: often enough for a bar, few enough for SQLite


class JobCancelled(BaseException):
    """Raised inside the ingest's progress callback to stop it between batches (crash-safe, like Ctrl-C)."""


def safe_filename(name: str) -> str:
    """The file name part of an uploaded name, in NFC (macOS sends decomposed Hangul), without separators.

    >>> safe_filename("../../etc/passwd"), safe_filename("C:\\\\docs\\\\반품.pdf")
    ('passwd', '반품.pdf')
    >>> safe_filename(unicodedata.normalize("NFD", "반품.md")) == "반품.md"
    True
    """
    base = PureWindowsPath(PurePosixPath(name).name).name
    base = unicodedata.normalize("NFC", base).strip().replace("\x00", "")
    if base in ("", ".", "..") or base.startswith("."):
        raise JisikError(f"'{name}' is not a usable file name", hint="upload files with a name such as 규정.pdf")
    return base[:255]


def without_folder(value: Any, folder: Path) -> Any:
    """``value`` (a report: dicts, lists, strings) with the knowledge base's folder cut from the paths in it:
    callers see ``uploads/규정.pdf``, not where the server keeps its files.

    >>> without_folder({"added": ["/srv/kb/uploads/a.md"], "n": 1}, Path("/srv/kb"))
    {'added': ['uploads/a.md'], 'n': 1}
    """
    prefix = str(folder.resolve()) + os.sep
    if isinstance(value, str):
        return value.replace(prefix, "")
    if isinstance(value, list):
        return [without_folder(item, folder) for item in value]
    if isinstance(value, dict):
        return {key: without_folder(item, folder) for key, item in value.items()}
    return value


@dataclass
class _Queued:
    job_id: str
    kb: str
    incoming: Path
    files: list[str]
    cancel: threading.Event = field(default_factory=threading.Event)


class JobRunner:
    """Runs ingest jobs in the background, one at a time per knowledge base."""

    def __init__(self, state: ServerState, library: Library, *, ttl: float = 3600.0) -> None:
        self.state = state
        self.library = library
        self.ttl = ttl
        self._queues: dict[str, queue.Queue[_Queued | None]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._running: dict[str, _Queued] = {}
        self._lock = threading.Lock()
        self._accepting = True

    @property
    def running_count(self) -> int:
        return len(self._running)

    @property
    def busy(self) -> bool:
        return bool(self._running) or any(not q.empty() for q in self._queues.values())

    # -- submitting ---------------------------------------------------------------------------------
    def incoming_folder(self, kb: str) -> tuple[Job, Path]:
        """A new job's id and the folder its uploaded files are written to."""
        served = self.library.get(kb)
        assert served is not None
        if not self._accepting:
            raise JisikError("the server is shutting down", hint="upload again once it is back")
        job = self.state.add_job(kb, [])
        folder = served.path / UPLOADS / INCOMING / job.id
        folder.mkdir(parents=True, exist_ok=True)
        return job, folder

    def submit(self, job: Job, folder: Path, files: list[str]) -> Job:
        """Queue the job whose files are now in ``folder``."""
        self.state.update_job(job.id, status="queued", files=files)
        item = _Queued(job.id, job.kb, folder, files)
        with self._lock:
            if job.kb not in self._queues:
                self._queues[job.kb] = queue.Queue()
                thread = threading.Thread(target=self._work, args=(job.kb,), name=f"jisik-ingest-{job.kb}",
                                          daemon=True)
                self._threads[job.kb] = thread
                thread.start()
            self._queues[job.kb].put(item)
        found = self.state.job(job.id)
        assert found is not None
        return found

    def abandon(self, job: Job, folder: Path, reason: str) -> None:
        """An upload that never completed (too large, client gone): the job fails, its files go."""
        shutil.rmtree(folder, ignore_errors=True)
        now = time.time()
        self.state.update_job(job.id, status="failed", error=reason, finished_at=now, expires_at=now + self.ttl)

    # -- running ------------------------------------------------------------------------------------
    def _work(self, kb: str) -> None:
        jobs = self._queues[kb]
        while (item := jobs.get()) is not None:
            with self._lock:
                self._running[kb] = item
            try:
                self._run(item)
            except Exception:  # a bug: the job says so, the worker lives on
                log.exception("ingest job %s failed unexpectedly", item.job_id)
                self._finish(item.job_id, "failed", error="internal error; the server log has the details")
            finally:
                with self._lock:
                    self._running.pop(kb, None)

    def _run(self, item: _Queued) -> None:
        served = self.library.get(item.kb)
        if item.cancel.is_set() or served is None:
            self._finish(item.job_id, "cancelled", error="cancelled before it started: upload again")
            shutil.rmtree(item.incoming, ignore_errors=True)
            return
        self.state.update_job(item.job_id, status="running", started_at=time.time(), stage="saving")
        destination = served.path / UPLOADS
        paths: list[Path] = []
        for name in item.files:
            target = destination / name
            os.replace(item.incoming / name, target)  # same file system: atomic
            paths.append(target)
        shutil.rmtree(item.incoming, ignore_errors=True)
        last = [0.0]

        def progress(stage: str, done: int, total: int) -> None:
            if item.cancel.is_set():
                raise JobCancelled
            now = time.monotonic()
            if stage != "tokens" and (now - last[0] >= PROGRESS_INTERVAL or done == total):
                last[0] = now
                self.state.update_job(item.job_id, stage=stage, done=done, total=total)

        try:
            report = served.kb.ingest(paths, progress=progress, wait=None)
        except JobCancelled:
            self._finish(item.job_id, "cancelled", error="the server stopped during this ingest; what was "
                         "committed stays: upload the same files again to finish the rest")
            return
        except JisikError as exc:
            self._finish(item.job_id, "failed", error=without_folder(str(exc), served.path))
            return
        summary = without_folder(report.to_dict(), served.path)
        status = "failed" if report.failed and not report.ingested and not report.unchanged else "done"
        error = None if status == "done" else "no file could be ingested; see report.failed"
        self._finish(item.job_id, status, report=summary, error=error)

    def _finish(self, job_id: str, status: str, *, report: dict[str, object] | None = None,
                error: str | None = None) -> None:
        now = time.time()
        self.state.update_job(job_id, status=status, report=report, error=error, finished_at=now,
                              expires_at=now + self.ttl)

    # -- stopping -----------------------------------------------------------------------------------
    def shutdown(self, grace: float) -> None:
        """Refuse new jobs, let running ones finish for ``grace`` seconds, then cancel them and the queued."""
        self._accepting = False
        with self._lock:
            threads = dict(self._threads)
            for jobs in self._queues.values():
                pending: list[_Queued] = []
                while True:
                    try:
                        queued = jobs.get_nowait()
                    except queue.Empty:
                        break
                    if queued is not None:
                        pending.append(queued)
                for queued in pending:
                    queued.cancel.set()
                    jobs.put(queued)  # the worker marks it cancelled and removes its files
                jobs.put(None)
        deadline = time.monotonic() + grace
        for thread in threads.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            for item in self._running.values():
                log.warning("cancelling ingest job %s (shutdown)", item.job_id)
                item.cancel.set()
        for thread in threads.values():
            thread.join(60)

    def mark_orphans(self) -> None:
        """Jobs left queued or running by a server process that is gone are failed, saying why."""
        for job in self.state.unfinished_jobs():
            if job.owner and process_alive(job.owner):
                continue
            self._finish(job.id, "failed", error="the server stopped before this job finished; what was "
                         "committed stays: upload the files again")


