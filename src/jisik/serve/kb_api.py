"""The knowledge-base API (``/api``): knowledge bases, documents, uploads as background jobs, search, ask, keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from jisik.errors import JisikError
from jisik.generate.memory import Turn
from jisik.serve import schemas
from jisik.serve.auth import Caller, Principal, require
from jisik.serve.errors import ApiError, responses, status_of
from jisik.serve.jobs import UPLOADS, safe_filename
from jisik.serve.openai_api import start_answer
from jisik.serve.state import ALL_KBS, Job
from jisik.serve.streaming import SSE_HEADERS, error_event, iterate_in_thread, sse

router = APIRouter(prefix="/api", tags=["knowledge bases"])
UPLOAD_CHUNK = 1 << 20


def _context(request: Request) -> Any:
    return request.app.state.context


# -- knowledge bases ------------------------------------------------------------------------------------
def _summary(served: Any, principal: Principal) -> schemas.KBSummary:
    stats = served.kb.store.stats()
    return schemas.KBSummary(name=served.name, model=served.model, documents=stats.documents, chunks=stats.chunks,
                             read_only=served.kb.read_only, role=principal.role_for(served.name))


@router.get("/kbs", response_model=schemas.KBList, responses=responses())
def list_kbs(request: Request, principal: Caller) -> schemas.KBList:
    """The knowledge bases this key may read."""
    found = [s for s in _context(request).library.all() if principal.can(s.name, "read")]
    return schemas.KBList(data=[_summary(s, principal) for s in sorted(found, key=lambda s: s.name)])


@router.post("/kbs", status_code=201, response_model=schemas.KBSummary, responses=responses(403, 409))
def create_kb(body: schemas.CreateKB, request: Request,
              principal: Caller) -> schemas.KBSummary:
    """Create an empty knowledge base under the server's ``--root`` (admin of every knowledge base)."""
    if not principal.admin_of_all:
        raise ApiError(403, "creating knowledge bases needs an admin key for every knowledge base",
                       code="insufficient_role", hint="jisik keys create --kb '*' --role admin")
    library = _context(request).library
    if library.get(body.name) is not None:
        raise ApiError(409, f"a knowledge base named '{body.name}' exists already", code="kb_exists", param="name")
    return _summary(library.create(body.name), principal)


@router.get("/kbs/{kb}", responses=responses())
def kb_status(kb: str, request: Request, principal: Caller) -> dict[str, Any]:
    """What ``jisik status --json`` prints: counts, embedder, index state, failed files."""
    served = require(_context(request), principal, kb, "read")
    info = served.kb.status()
    info["path"] = served.name  # the folder is the server's business, not the caller's
    return {"name": served.name, "model": served.model, "read_only": served.kb.read_only, **info}


# -- documents ---------------------------------------------------------------------------------------------
@router.get("/kbs/{kb}/documents", response_model=schemas.DocumentList, responses=responses())
def list_documents(kb: str, request: Request, principal: Caller,
                   pattern: str | None = Query(None, max_length=500, description="glob on doc id or source"),
                   ) -> schemas.DocumentList:
    served = require(_context(request), principal, kb, "read")
    return schemas.DocumentList(data=[schemas.DocumentInfo(**d) for d in served.kb.documents(pattern)])


@router.delete("/kbs/{kb}/documents/{doc_id:path}", response_model=schemas.Deleted, responses=responses(403, 503))
def delete_document(kb: str, doc_id: str, request: Request,
                    principal: Caller) -> schemas.Deleted:
    """Delete a document by id or source (a folder prefix deletes every document in it)."""
    served = require(_context(request), principal, kb, "write")
    if served.kb.read_only:
        raise ApiError(409, f"'{kb}' is read-only", code="read_only")
    deleted = served.kb.delete(doc_id, wait=30)
    if not deleted:
        raise ApiError(404, f"no document '{doc_id}' in '{kb}'", code="document_not_found", param="doc_id",
                       hint=f"GET /api/kbs/{kb}/documents lists them")
    uploads = (served.path / UPLOADS).resolve()
    for removed in deleted:  # an uploaded file goes with its document, or the next upload would be stale
        if removed.startswith(UPLOADS + "/"):
            candidate = (served.path / removed).resolve()
            if candidate.parent == uploads and candidate.is_file():
                candidate.unlink()
    return schemas.Deleted(deleted=deleted)


@router.post("/kbs/{kb}/documents", status_code=202, response_model=schemas.JobBody,
             responses=responses(403, 409, 413, 503),
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["files"], "properties": {"files": {
                     "type": "array", "minItems": 1, "items": {"type": "string", "format": "binary"}}}}}}}})
async def upload_documents(kb: str, request: Request,
                           principal: Caller) -> schemas.JobBody:
    """Upload files (multipart field ``files``) and ingest them in the background: 202 with the job to follow."""
    context = _context(request)
    served = require(context, principal, kb, "write")
    if served.kb.read_only:
        raise ApiError(409, f"'{kb}' is read-only", code="read_only")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "upload files as multipart/form-data in the field 'files'", code="invalid_upload",
                       param="files")
    # the size limit (--max-upload-mb) is enforced as the body arrives, by the request middleware (serve/app.py)
    job, folder = await run_in_threadpool(context.jobs.incoming_folder, kb)
    try:
        names = await _receive_files(request, folder)
    except ApiError as exc:
        await run_in_threadpool(context.jobs.abandon, job, folder, exc.message)
        raise
    except JisikError as exc:
        await run_in_threadpool(context.jobs.abandon, job, folder, exc.message)
        raise ApiError(400, exc.message, code="invalid_upload", param="files", hint=exc.hint) from None
    except BaseException:  # the client went away mid-upload: nothing half-written stays
        await run_in_threadpool(context.jobs.abandon, job, folder, "the upload did not complete")
        raise
    submitted = await run_in_threadpool(context.jobs.submit, job, folder, names)
    return schemas.JobBody(**submitted.to_dict())


async def _receive_files(request: Request, folder: Path) -> list[str]:
    try:
        form = await request.form(max_files=1000, max_fields=100)
    except ApiError:
        raise
    except Exception as exc:  # a malformed multipart body, or the size limit hit while it arrived
        if isinstance(exc.__cause__, ApiError):
            raise exc.__cause__ from None
        raise ApiError(400, f"the multipart body cannot be read: {exc}", code="invalid_upload") from None
    try:
        uploads = [item for key, item in form.multi_items() if key == "files" and isinstance(item, UploadFile)]
        if not uploads:
            raise ApiError(400, "no files in the upload", code="invalid_upload", param="files",
                           hint="send them in the multipart field 'files'")
        names: list[str] = []
        for upload in uploads:
            name = safe_filename(upload.filename or "")
            if name in names:
                raise ApiError(400, f"two files are named '{name}'", code="invalid_upload", param="files")
            with (folder / name).open("wb") as out:
                while block := await upload.read(UPLOAD_CHUNK):
                    out.write(block)
            names.append(name)
        return names
    finally:
        await form.close()


# -- jobs --------------------------------------------------------------------------------------------------
def _job(context: Any, principal: Principal, kb: str, job_id: str) -> Job:
    require(context, principal, kb, "write")
    job: Job | None = context.state.job(job_id)
    if job is None or job.kb != kb:
        raise ApiError(404, f"no job '{job_id}' in '{kb}'", code="job_not_found", param="job_id")
    if job.expires_at is not None and job.expires_at < time.time():
        raise ApiError(410, f"the job '{job_id}' has expired (jobs are kept {context.settings.job_ttl:.0f} s after "
                       "they end)", code="job_expired", hint=f"GET /api/kbs/{kb}/documents shows what was ingested")
    return job


@router.get("/kbs/{kb}/jobs", response_model=schemas.JobList, responses=responses(403))
def list_jobs(kb: str, request: Request, principal: Caller) -> schemas.JobList:
    context = _context(request)
    require(context, principal, kb, "write")
    now = time.time()
    live = [j for j in context.state.jobs(kb) if j.expires_at is None or j.expires_at >= now]
    return schemas.JobList(data=[schemas.JobBody(**j.to_dict()) for j in live])


@router.get("/kbs/{kb}/jobs/{job_id}", response_model=schemas.JobBody, responses=responses(403, 410))
def get_job(kb: str, job_id: str, request: Request, principal: Caller) -> schemas.JobBody:
    return schemas.JobBody(**_job(_context(request), principal, kb, job_id).to_dict())


@router.get("/kbs/{kb}/jobs/{job_id}/events", responses={**responses(403, 410), 200: {
    "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/JobBody"}}},
    "description": "server-sent events: the job each time it changes, until it ends"}})
async def job_events(kb: str, job_id: str, request: Request, principal: Caller) -> Any:
    """The job as server-sent events (``data: {job}``) each time it changes, until it ends."""
    context = _context(request)
    job = await run_in_threadpool(_job, context, principal, kb, job_id)

    async def events() -> AsyncIterator[str]:
        last: dict[str, Any] | None = None
        current: Job | None = job
        while current is not None:
            shown = current.to_dict()
            if shown != last:
                yield sse(shown)
                last = shown
            if current.finished or await request.is_disconnected():
                return
            await asyncio.sleep(0.25)
            current = await run_in_threadpool(context.state.job, job_id)

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


# -- search, ask, passages ---------------------------------------------------------------------------------
@router.post("/kbs/{kb}/search", response_model=schemas.SearchResponse, responses=responses())
def search(kb: str, body: schemas.SearchRequest, request: Request,
           principal: Caller) -> schemas.SearchResponse:
    """Every mode and filter of ``jisik search``."""
    served = require(_context(request), principal, kb, "read")
    start = time.perf_counter()
    options = body.model_dump(exclude={"query", "mode", "k", "filters", "threshold"}, exclude_none=True)
    hits = served.kb.search(body.query, mode=body.mode, k=body.k, filters=body.filters or None,
                            threshold=body.threshold, **options)
    return schemas.SearchResponse(hits=[schemas.Hit(**h.to_dict()) for h in hits],
                                  took_ms=round((time.perf_counter() - start) * 1000, 2))


@router.post("/kbs/{kb}/ask", response_model=schemas.AnswerBody, responses={**responses(409, 503), 200: {
    "content": {"text/event-stream": {}}, "description": "the answer, or with stream=true server-sent events: "
                                                         "`delta` {text} … then `answer` (the whole answer)"}})
async def ask(kb: str, body: schemas.AskRequest, request: Request,
              principal: Caller) -> Any:
    """A cited answer (``jisik ask --json``); ``history`` makes it a follow-up in a conversation."""
    context = _context(request)
    served = require(context, principal, kb, "read")
    sampling = {key: value for key, value in {"temperature": body.temperature, "top_p": body.top_p,
                                              "top_k": body.top_k, "max_tokens": body.max_tokens}.items()
                if value is not None}
    history = [Turn(t.question, t.answer) for t in body.history]
    stream = await run_in_threadpool(start_answer, served, body.question, history, session=body.session, k=body.k,
                                     mode=body.mode, filters=body.filters, language=body.language, chain=body.chain,
                                     sampling=sampling, llm=context.settings.llm)
    if not body.stream:
        answer = await run_in_threadpool(stream.result)
        return answer.to_dict()

    async def events() -> AsyncIterator[str]:
        try:
            async for piece in iterate_in_thread(iter(stream), context.streams):
                yield sse({"text": piece}, event="delta")
        except JisikError as exc:
            yield error_event(exc, server_error=status_of(exc) >= 500, event="error")
            return
        assert stream.answer is not None
        yield sse(stream.answer.to_dict(), event="answer")

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/kbs/{kb}/passages/{chunk_id}", response_model=schemas.Passage, responses=responses())
def passage(kb: str, chunk_id: int, request: Request, principal: Caller) -> schemas.Passage:
    """One chunk by id: what a citation's ``chunk_id`` points at (the UI opens it to show the quote)."""
    served = require(_context(request), principal, kb, "read")
    hit = served.kb.passage(chunk_id) if 0 <= chunk_id < 2**63 else None
    if hit is None:
        raise ApiError(404, f"no passage {chunk_id} in '{kb}'", code="passage_not_found", param="chunk_id",
                       hint="it may have been replaced by a newer version of its document: ask again")
    data = hit.to_dict()
    return schemas.Passage(**{k: data[k] for k in ("chunk_id", "text", "doc_id", "source", "title", "page",
                                                   "section", "span", "metadata")})


# -- keys --------------------------------------------------------------------------------------------------
@router.get("/keys", response_model=schemas.KeyList, responses=responses(403))
def list_keys(request: Request, principal: Caller) -> schemas.KeyList:
    """Keys of the knowledge bases this key administers (never the keys themselves)."""
    context = _context(request)
    keys = [k for k in context.state.list_keys() if _administers(principal, k.kb)]
    if not keys and not _any_admin(context, principal):
        raise ApiError(403, "listing keys needs an admin key", code="insufficient_role")
    return schemas.KeyList(data=[schemas.KeyBody(**k.to_dict()) for k in keys])


@router.post("/keys", status_code=201, response_model=schemas.CreatedKey, responses=responses(403))
def create_key(body: schemas.CreateKey, request: Request,
               principal: Caller) -> schemas.CreatedKey:
    """A new key (shown once in ``key``) for a knowledge base this key administers."""
    context = _context(request)
    if body.kb == ALL_KBS:
        if not principal.admin_of_all:
            raise ApiError(403, "a key for every knowledge base needs an admin key for every knowledge base",
                           code="insufficient_role")
    else:
        require(context, principal, body.kb, "admin")
    plain, key = context.state.create_key(kb=body.kb, role=body.role, name=body.name,
                                          expires_in=body.expires_in_days * 86400 if body.expires_in_days else None)
    return schemas.CreatedKey(key=plain, **key.to_dict())


@router.delete("/keys/{key_id}", response_model=schemas.KeyList, responses=responses(403))
def revoke_key(key_id: str, request: Request, principal: Caller) -> schemas.KeyList:
    context = _context(request)
    target = next((k for k in context.state.list_keys() if k.id == key_id and _administers(principal, k.kb)), None)
    if target is None:
        raise ApiError(404, f"no key '{key_id}'", code="key_not_found", param="key_id")
    revoked = context.state.revoke(target.id)
    return schemas.KeyList(data=[schemas.KeyBody(**k.to_dict()) for k in revoked])


def _administers(principal: Principal, kb: str) -> bool:
    return principal.admin_of_all if kb == ALL_KBS else principal.can(kb, "admin")


def _any_admin(context: Any, principal: Principal) -> bool:
    return principal.admin_of_all or any(principal.can(s.name, "admin") for s in context.library.all())

