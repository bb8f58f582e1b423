"""The knowledge bases one server serves, by name: opened and warmed once, shared by every request.

A :class:`~jisik.kb.KnowledgeBase` is safe to share between request threads: the store gives each
thread its own SQLite connection and each search one committed generation (docs/architecture.md,
"Concurrency"), and the models load once behind the knowledge base's lock.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from jisik.config import CONFIG_FILE
from jisik.errors import ConfigError, KnowledgeBaseNotFoundError
from jisik.kb import KnowledgeBase

MODEL_PREFIX = "jisik/"
AGENT_SUFFIX = ":agent"  # jisik/<kb>:agent, the knowledge base's agent (a name cannot hold ':')
_NAME = re.compile(r"^[\w][\w.-]{0,63}$")  # \w covers Hangul: 매뉴얼 is a fine name


def check_name(name: str) -> str:
    """A knowledge base's name: letters (any script), digits, ``_ . -``; 1 to 64 characters.

    >>> check_name("매뉴얼-2024")
    '매뉴얼-2024'
    >>> check_name("../etc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    jisik.errors.ConfigError: '../etc' is not a valid knowledge base name (use letters, digits, _ . -, ...)
    """
    if not _NAME.match(name) or name in (".", ".."):
        raise ConfigError(f"'{name}' is not a valid knowledge base name",
                          hint="use letters, digits, _ . -, at most 64, starting with a letter or digit")
    return name


def parse_kb_argument(value: str) -> tuple[str, Path]:
    """``--kb`` values: ``NAME=PATH`` or a bare ``PATH`` named after its folder.

    >>> parse_kb_argument("./manuals")
    ('manuals', PosixPath('manuals'))
    >>> parse_kb_argument("help=./kb/v2")
    ('help', PosixPath('kb/v2'))
    """
    name, sep, path = value.partition("=")
    if sep and _NAME.match(name):
        return name, Path(path).expanduser()
    folder = Path(value).expanduser()
    return check_name(folder.resolve().name if folder.name in ("", ".", "..") else folder.name), folder


@dataclass
class Served:
    """One knowledge base as the server sees it."""

    name: str
    path: Path
    kb: KnowledgeBase
    ready: bool = False
    load_seconds: float = 0.0

    @property
    def model(self) -> str:
        return MODEL_PREFIX + self.name

    @property
    def agent_model(self) -> str:
        return MODEL_PREFIX + self.name + AGENT_SUFFIX

    def llm_backend(self, llm: str | None) -> str:
        """The backend answers use: the server's ``--llm`` spec, else the knowledge base's ``[llm] backend``."""
        from jisik.generate.llms import parse_llm_spec

        backend = parse_llm_spec(llm).get("backend") if llm else None
        return str(backend or self.kb.config.llm.backend)

    def serves_agent(self, llm: str | None) -> bool:
        """Whether ``jisik/<kb>:agent`` is listed: ``[agent] serve`` is on and answers come from an LLM (the
        extractive answerer cannot call tools; a request for the agent then gets a 400 that says so)."""
        return bool(self.kb.config.agent.serve) and self.llm_backend(llm) != "extractive"


class Library:
    """Name → knowledge base. ``root`` is the folder new knowledge bases are created in (``--root``)."""

    def __init__(self, entries: Iterable[tuple[str, Path]], *, root: Path | None = None,
                 llm: str | None = None) -> None:
        self.root = root
        self.llm = llm
        self._entries: dict[str, Path] = {}
        for name, path in entries:
            if name in self._entries:
                raise ConfigError(f"two knowledge bases are named '{name}'",
                                  hint="give one another name: --kb OTHER=PATH")
            self._entries[name] = path
        if root is not None:
            if not root.is_dir():
                raise ConfigError(f"--root {root} is not a folder", hint="create it, or pass an existing folder")
            for folder in sorted(root.iterdir()):
                if (folder / CONFIG_FILE).exists() and _NAME.match(folder.name):
                    self._entries.setdefault(folder.name, folder)
        self._served: dict[str, Served] = {}
        self._lock = threading.Lock()
        self._opened = False

    def open_all(self, report: Callable[[str], None] = lambda line: None, *, warm: bool = True) -> None:
        """Open every knowledge base (a missing or damaged one raises here) and, with ``warm``, load its
        models, telling ``report`` about each."""
        for name, path in list(self._entries.items()):
            self._open(name, path)
        if warm:
            self.warm_all(report)

    def warm_all(self, report: Callable[[str], None] = lambda line: None) -> None:
        """Load the models of every opened knowledge base (the embedder, indexes and LLM), once."""
        for served in self.all():
            self._warm(served, report)
        self._opened = True

    def _open(self, name: str, path: Path) -> Served:
        try:
            kb = KnowledgeBase.open(path)
        except KnowledgeBaseNotFoundError as exc:
            raise KnowledgeBaseNotFoundError(f"--kb {name}: {exc.message}", hint=exc.hint) from None
        served = Served(name, path, kb)
        with self._lock:
            self._served[name] = served
        return served

    def _warm(self, served: Served, report: Callable[[str], None]) -> None:
        if served.ready:
            return
        start = time.perf_counter()
        served.kb.warm(llm=self.llm)
        served.ready, served.load_seconds = True, time.perf_counter() - start
        status = served.kb.store.stats()
        report(f"{served.model}: {served.path} ({status.documents:,} documents, {status.chunks:,} chunks; "
               f"loaded in {served.load_seconds:.1f} s{', read-only' if served.kb.read_only else ''})")

    def create(self, name: str) -> Served:
        """A new, empty knowledge base ``root/name`` (requires ``--root``)."""
        check_name(name)
        if self.root is None:
            raise ConfigError("this server cannot create knowledge bases",
                              hint="start it with --root FOLDER to create them there")
        with self._lock:
            if name in self._served:
                raise ConfigError(f"a knowledge base named '{name}' exists already", hint="choose another name")
            folder = self.root / name
            if folder.exists():
                raise ConfigError(f"{folder} exists already", hint="choose another name")
            KnowledgeBase.init(folder).close()
            self._entries[name] = folder
        served = self._open(name, folder)
        self._warm(served, lambda line: None)
        return served

    def get(self, name: str) -> Served | None:
        return self._served.get(name)

    def all(self) -> list[Served]:
        return list(self._served.values())

    @property
    def ready(self) -> bool:
        return self._opened and all(s.ready for s in self._served.values())

    def close(self) -> None:
        for served in self._served.values():
            served.kb.close()
