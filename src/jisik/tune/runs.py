"""A run folder: what was trained, from what, how, and what came out — ``run.json`` beside the artefacts.

Layout (every job writes the parts it has)::

    run.json         this manifest (kind, base model, data, options, hardware, status, evaluation, artefacts)
    metrics.csv      step,epoch,split,name,value (jisik.tune.tracking)
    tb/              TensorBoard events
    checkpoints/     trainer checkpoints (resume with --resume)
    adapter/         the LoRA adapter (PEFT format)
    merged/          full weights with the adapter merged in (jisik tune merge)
    model.gguf       the GGUF export; Modelfile for Ollama
    report.html      jisik tune report RUN
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from jisik._atomic import atomic_write
from jisik.errors import TuningError

MANIFEST = "run.json"
RUN_FORMAT = "jisik-tune-run"
RUN_VERSION = 1


@dataclass
class RunManifest:
    """What ``run.json`` holds. ``evaluation`` maps a phase (``before``/``after``) to metric → value."""

    kind: str
    base_model: str
    data: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    started: float = field(default_factory=time.time)
    finished: float | None = None
    seconds: float | None = None
    peak_memory_bytes: int | None = None
    evaluation: dict[str, dict[str, float]] = field(default_factory=dict)
    artefacts: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=lambda: package_versions())

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        record = {"format": RUN_FORMAT, "version": RUN_VERSION, **asdict(self)}
        path = folder / MANIFEST
        atomic_write(path, (json.dumps(record, ensure_ascii=False, indent=2, default=str) + "\n").encode())
        return path


def load_manifest(folder: Path) -> RunManifest:
    """The manifest of the run at ``folder``; a folder without one is a clear error."""
    path = folder / MANIFEST
    if not path.is_file():
        raise TuningError(f"{folder} is not a jisik tune run (no {MANIFEST})",
                          hint="pass the --out folder of a `jisik tune sft|dpo|reward|classify|embed` run")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TuningError(f"{path} is unreadable: {exc}", hint="re-run the training, or restore run.json") from exc
    if record.get("format") != RUN_FORMAT:
        raise TuningError(f"{path} is not a jisik tune manifest", hint="pass a run folder made by jisik tune")
    known = set(RunManifest.__dataclass_fields__)
    return RunManifest(**{k: v for k, v in record.items() if k in known})


def package_versions() -> dict[str, str]:
    """Versions of what training depends on, for the manifest (missing packages are left out)."""
    out = {"python": platform.python_version()}
    for name in ("jisik", "torch", "transformers", "peft", "trl", "accelerate", "bitsandbytes"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
