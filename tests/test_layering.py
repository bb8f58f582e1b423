"""Dependencies run one way (docs/architecture.md, "Layers"): the bottom layer imports nothing above it,
the pipeline stages import neither the knowledge base nor the CLI, and nothing in the library imports the CLI.

Two checks: a static one over every import statement in src/jisik (lazy imports inside functions
included, ``if TYPE_CHECKING:`` blocks left out: they never run), and a runtime one that imports a module
in a fresh interpreter and looks at ``sys.modules``, so what an import really loads is checked too.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "jisik"

# Lower layers never import higher ones. Stages (rank 1) may use each other's contracts.
BOTTOM = ("jisik.errors", "jisik.records", "jisik.filters", "jisik.config", "jisik.registry", "jisik.choices",
          "jisik._lazy", "jisik._atomic", "jisik._paths", "jisik.progress")
STAGES = ("jisik.text", "jisik.embed", "jisik.store", "jisik.ingest", "jisik.retrieve", "jisik.generate",
          "jisik.guard", "jisik.testing", "jisik.agent")
RANKS = {**dict.fromkeys(BOTTOM, 0), **dict.fromkeys(STAGES, 1), "jisik.kb": 2, "jisik.evaluate": 3, "jisik.serve": 3,
         "jisik.tune": 3, "jisik.agent.mcp_server": 3,
         "jisik.cli": 4, "jisik.__main__": 4}


def rank(module: str) -> int:
    """The layer of a module: its longest prefix in RANKS.

    >>> rank("jisik.store.local"), rank("jisik.cli.commands.eval"), rank("jisik.filters")
    (1, 4, 0)
    """
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in RANKS:
            return RANKS[prefix]
    raise KeyError(f"{module} belongs to no layer: add it to RANKS in tests/test_layering.py and to the "
                   "'Layers' section of docs/architecture.md")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every jisik import in the file that can run (not under TYPE_CHECKING)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:  # relative: resolve against this package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, target] if target else base)
            found.append((node.lineno, target))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return [(line, name) for line, name in found if name == "jisik" or name.startswith("jisik.")]


def test_imports_run_downwards() -> None:
    violations = []
    for path in sorted(SRC.rglob("*.py")):
        source = module_name(path)
        if source == "jisik":  # the package's lazy façade (jisik.KnowledgeBase) sits above everything
            continue
        for line, target in runtime_imports(path):
            if target != "jisik" and rank(target) > rank(source):
                violations.append(f"{path.relative_to(SRC.parent)}:{line}: {source} (layer {rank(source)}) "
                                  f"imports {target} (layer {rank(target)})")
    assert not violations, "imports against the layers:\n" + "\n".join(violations)


def test_only_the_cli_imports_the_cli() -> None:
    offenders = [f"{path.relative_to(SRC.parent)}:{line}"
                 for path in SRC.rglob("*.py")
                 if not module_name(path).startswith("jisik.cli") and module_name(path) != "jisik.__main__"
                 for line, target in runtime_imports(path) if target.startswith("jisik.cli")]
    assert not offenders


def test_the_cli_commands_do_not_import_each_other() -> None:
    """Commands share jisik.cli.app (and render), never another command module."""
    for path in (SRC / "cli" / "commands").glob("*.py"):
        own = module_name(path)
        others = [t for _, t in runtime_imports(path) if t.startswith("jisik.cli.commands") and t != own]
        assert not others, f"{own} imports {others}"


def _loaded_by(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, timeout=120)
    loaded: list[str] = json.loads(out.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize(("code", "forbidden"), [
    # settings are read and validated (backend names included) without loading any stage or numpy
    ("import jisik.config; jisik.config.load_config(None, environ={})",
     ("jisik.ingest", "jisik.store", "jisik.retrieve", "jisik.embed", "jisik.generate", "jisik.kb", "numpy")),
    ("import jisik.registry; jisik.registry.embedders.names()", ("jisik.config", "jisik.embed", "jisik.store")),
    ("import jisik.filters, jisik.records", ("jisik.retrieve", "jisik.ingest", "jisik.store", "jisik.cli")),
    ("import jisik.store.base", ("jisik.retrieve", "jisik.ingest", "jisik.cli", "jisik.kb")),
    ("import jisik.store", ("jisik.store.local", "jisik.store.base")),  # the factory module is cheap
    ("import jisik.ingest.chunking, jisik.ingest.loaders", ("jisik.retrieve", "jisik.kb", "jisik.cli")),
    ("import jisik.kb", ("jisik.cli", "jisik.evaluate")),
    # `jisik --help` loads the commands but no knowledge base, store or model code
    ("import jisik.cli", ("jisik.kb", "jisik.store", "jisik.embed", "jisik.ingest", "jisik.retrieve", "numpy")),
])
def test_what_an_import_loads(code: str, forbidden: tuple[str, ...]) -> None:
    loaded = _loaded_by(code)
    unwanted = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in forbidden)]
    assert not unwanted, f"`{code}` loaded {unwanted}"
