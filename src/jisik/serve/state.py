"""The server's own state, shared by every worker process: API keys (hashed) and ingest jobs.

One SQLite file (``--state-db``, default ``~/.jisik/server.db``) in WAL mode, so ``jisik keys`` and every
``jisik serve`` worker see a new or revoked key on their next request, and any worker can report a job
another one runs.

Keys are 256-bit random tokens (``jsk_`` + 43 url-safe characters). Only their SHA-256 is stored: for
random keys of that length a fast hash is as strong as a slow password hash (nothing to brute-force from a
dictionary), and it costs microseconds per request. The plain key is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jisik.errors import ConfigError, JisikError

Role = Literal["read", "write", "admin"]
ROLES: tuple[Role, ...] = ("read", "write", "admin")
ALL_KBS = "*"
KEY_PREFIX = "jsk_"
DEFAULT_STATE_DB = Path("~/.jisik/server.db")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kb TEXT NOT NULL,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL,
    last_used_at REAL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kb TEXT NOT NULL,
    status TEXT NOT NULL,
    files TEXT NOT NULL,
    stage TEXT NOT NULL DEFAULT '',
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    report TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    expires_at REAL,
    owner INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_kb ON jobs (kb, created_at);
"""


class KeyStoreError(JisikError):
    """A key operation failed: unknown key, bad role, bad expiry."""

    code = "key_error"


def hash_key(key: str) -> str:
    """The stored form of an API key.

    >>> hash_key("jsk_example")[:16]
    '17af4276a8c65750'
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_duration(text: str) -> float:
    """Seconds in ``30d``, ``12h``, ``45m``, ``90s`` (a plain number is days).

    >>> parse_duration("30d"), parse_duration("12h"), parse_duration("2")
    (2592000.0, 43200.0, 172800.0)
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhms]?)\s*", text)
    if not match:
        raise KeyStoreError(f"cannot read the duration '{text}'", hint="use e.g. 30d, 12h, 45m or 90s")
    value, unit = float(match.group(1)), match.group(2) or "d"
    seconds = value * {"d": 86400, "h": 3600, "m": 60, "s": 1}[unit]
    if seconds <= 0:
        raise KeyStoreError(f"the duration '{text}' is not positive", hint="use e.g. 30d")
    return seconds


# never accept a key from the URL: URLs end up in proxy logs, browser history and Referer headers
QUERY_KEY_NAMES = frozenset({"api_key", "apikey", "api-key", "key", "token", "access_token", "auth"})


class MalformedAuthorization(ValueError):
    """The ``Authorization`` header is there but not ``Bearer <key>``."""


def key_in_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """The API key a request sends: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; None when neither is
    sent. Shared by the HTTP server and the MCP server (each turns the error into its own 401).

    >>> key_in_headers("Bearer jsk_1", None), key_in_headers(None, " jsk_2 "), key_in_headers(None, None)
    ('jsk_1', 'jsk_2', None)
    >>> key_in_headers("Basic dXNlcg==", None)
    Traceback (most recent call last):
    jisik.serve.state.MalformedAuthorization: the Authorization header must be 'Bearer <key>'
    """
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise MalformedAuthorization("the Authorization header must be 'Bearer <key>'")
        return value.strip()
    return x_api_key.strip() if x_api_key and x_api_key.strip() else None


@dataclass(slots=True, frozen=True)
class ApiKey:
    """A stored key, without the key itself."""

    id: str
    name: str
    kb: str
    role: Role
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None

    def allows(self, kb: str, role: Role) -> bool:
        """Whether this key may act on ``kb`` with ``role``.

        >>> k = ApiKey("a1", "helpdesk", "manuals", "write", 0, None, None, None)
        >>> k.allows("manuals", "read"), k.allows("manuals", "admin"), k.allows("policies", "read")
        (True, False, False)
        """
        return (self.kb == ALL_KBS or self.kb == kb) and ROLES.index(self.role) >= ROLES.index(role)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kb": self.kb, "role": self.role, "created_at": self.created_at,
                "expires_at": self.expires_at, "revoked_at": self.revoked_at, "last_used_at": self.last_used_at}


@dataclass(slots=True)
class Job:
    """One background ingest of uploaded files."""

    id: str
    kb: str
    status: str  # receiving | queued | running | done | failed | cancelled
    files: list[str]
    stage: str = ""
    done: int = 0
    total: int = 0
    report: dict[str, Any] | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    expires_at: float | None = None
    owner: int | None = None  # pid of the server process that runs it

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "cancelled")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kb": self.kb, "status": self.status, "files": self.files, "stage": self.stage,
                "done": self.done, "total": self.total, "report": self.report, "error": self.error,
                "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at}


_KEY_COLUMNS = "id, name, kb, role, created_at, expires_at, revoked_at, last_used_at"
_JOB_COLUMNS = "id, kb, status, files, stage, done, total, report, error, created_at, started_at, finished_at, " \
               "expires_at, owner"


class ServerState:
    """Keys and jobs in one SQLite file; safe to use from many threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the folder of the server state database {self.path}: {exc}",
                              hint="pass --state-db PATH in a writable folder") from None
        self._local = threading.local()
        try:
            with self._connect() as db:
                db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path} is not a usable jisik server database: {exc}",
                              hint="pass --state-db with another file, or move this one away") from None
        if os.name == "posix":
            os.chmod(self.path, 0o600)  # hashes only, but nobody else needs to read them

    def _connect(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- keys ---------------------------------------------------------------------------------------
    def create_key(self, *, kb: str, role: str, name: str, expires_in: float | None = None) -> tuple[str, ApiKey]:
        """A new key: ``(plain key, its record)``. The plain key is not stored anywhere."""
        if role not in ROLES:
            raise KeyStoreError(f"unknown role '{role}'", hint="use read, write or admin")
        if not name.strip():
            raise KeyStoreError("a key needs a name", hint="--name helpdesk (who or what uses it)")
        if not kb.strip():
            raise KeyStoreError("a key needs a knowledge base", hint="--kb NAME, or --kb '*' for all of them")
        plain = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = secrets.token_hex(4)
        now = time.time()
        expires = now + expires_in if expires_in else None
        with self._write() as db:
            db.execute(f"INSERT INTO keys ({_KEY_COLUMNS}, hash) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, ?)",
                       (key_id, name.strip(), kb.strip(), role, now, expires, hash_key(plain)))
        return plain, ApiKey(key_id, name.strip(), kb.strip(), role, now, expires, None, None)

    def list_keys(self, *, kb: str | None = None) -> list[ApiKey]:
        """Every key (or those of ``kb``, ``*`` included), oldest first."""
        rows = self._connect().execute(f"SELECT {_KEY_COLUMNS} FROM keys ORDER BY created_at, id").fetchall()
        found = [ApiKey(*row) for row in rows]
        return [k for k in found if kb is None or k.kb in (kb, ALL_KBS)]

    def has_keys(self) -> bool:
        """Whether any key that still works exists (revoked and expired ones do not count)."""
        row = self._connect().execute("SELECT 1 FROM keys WHERE revoked_at IS NULL AND "
                                      "(expires_at IS NULL OR expires_at > ?) LIMIT 1", (time.time(),)).fetchone()
        return row is not None

    def revoke(self, id_or_name: str) -> list[ApiKey]:
        """Revoke the key with this id, or every live key with this name; the revoked keys."""
        live = [k for k in self.list_keys() if k.revoked_at is None and id_or_name in (k.id, k.name)]
        if not live:
            raise KeyStoreError(f"no live key has the id or name '{id_or_name}'", hint="jisik keys list shows them")
        by_id = [k for k in live if k.id == id_or_name]
        chosen = by_id or live
        with self._write() as db:
            db.executemany("UPDATE keys SET revoked_at = ? WHERE id = ?", [(time.time(), k.id) for k in chosen])
        return chosen

    def verify(self, plain: str) -> tuple[ApiKey | None, str | None]:
        """``(key, None)`` for a key that works, else ``(None, why)``: unknown, revoked or expired."""
        row = self._connect().execute(f"SELECT {_KEY_COLUMNS} FROM keys WHERE hash = ?",
                                      (hash_key(plain),)).fetchone()
        if row is None:
            return None, "unknown"
        key = ApiKey(*row)
        now = time.time()
        if key.revoked_at is not None:
            return None, "revoked"
        if key.expires_at is not None and key.expires_at <= now:
            return None, "expired"
        if key.last_used_at is None or now - key.last_used_at > 60:  # once a minute is plenty, and cheap
            with self._write() as db:
                db.execute("UPDATE keys SET last_used_at = ? WHERE id = ?", (now, key.id))
        return key, None

    # -- jobs ---------------------------------------------------------------------------------------
    def add_job(self, kb: str, files: Sequence[str]) -> Job:
        job = Job(id=secrets.token_hex(8), kb=kb, status="receiving", files=list(files), owner=os.getpid())
        with self._write() as db:
            db.execute(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES (?, ?, ?, ?, '', 0, 0, NULL, NULL, ?, NULL, NULL, "
                       "NULL, ?)", (job.id, kb, job.status, json.dumps(job.files, ensure_ascii=False), job.created_at,
                                    job.owner))
        return job

    def update_job(self, job_id: str, **values: Any) -> None:
        allowed = {"status", "stage", "done", "total", "report", "error", "started_at", "finished_at", "expires_at",
                   "files"}
        assert set(values) <= allowed, set(values) - allowed
        for column in ("report", "files"):
            if values.get(column) is not None:
                values[column] = json.dumps(values[column], ensure_ascii=False)
        assignments = ", ".join(f"{column} = ?" for column in values)
        with self._write() as db:
            db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values.values(), job_id))

    def job(self, job_id: str) -> Job | None:
        row = self._connect().execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def jobs(self, kb: str, *, limit: int = 50) -> list[Job]:
        rows = self._connect().execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE kb = ? ORDER BY created_at DESC "
                                       "LIMIT ?", (kb, limit)).fetchall()
        return [_job(row) for row in rows]

    def unfinished_jobs(self) -> list[Job]:
        rows = self._connect().execute(f"SELECT {_JOB_COLUMNS} FROM jobs "
                                       "WHERE status IN ('receiving', 'queued', 'running')").fetchall()
        return [_job(row) for row in rows]

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def _job(row: Sequence[Any]) -> Job:
    values = list(row)
    values[3] = json.loads(values[3])
    values[7] = json.loads(values[7]) if values[7] else None
    return Job(*values)
