"""SVG plots for the HTML evaluation report: a line chart and a histogram, drawn as inline ``<svg>``
markup with no JavaScript, CDN or matplotlib, so the page stays one self-contained file."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

__all__ = ["PALETTE", "svg_histogram", "svg_line_chart"]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _nice_step(span: float, ticks: int = 5) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks.

    >>> _nice_step(1.0), _nice_step(37.0), _nice_step(0.0)
    (0.2, 10.0, 1.0)
    """
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power + 1e-12:
            return float(round(factor * power, 12))
    return float(10 * power)


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if abs(value) < 1e4 else f"{value:.0f}"


def _ticks(low: float, high: float, step: float) -> list[float]:
    """Axis ticks: the multiples of ``step`` from ``low`` to ``high``.

    >>> _ticks(0.05, 0.5, 0.1)
    [0.1, 0.2, 0.30000000000000004, 0.4, 0.5]
    """
    ticks = []
    tick = math.ceil(low / step) * step
    while tick <= high + 1e-9:
        ticks.append(tick)
        tick += step
    return ticks


def svg_line_chart(series: Mapping[str, Sequence[tuple[float, float]]], *, title: str, x_label: str,
                   y_label: str, y_range: tuple[float, float] | None = (0.0, 1.0), width: int = 560,
                   height: int = 320) -> str:
    """An inline ``<svg>`` line chart, one polyline per series, with axes, grid and a legend.

    >>> svg = svg_line_chart({"bm25": [(1, 0.5), (2, 0.75)]}, title="t", x_label="k", y_label="recall")
    >>> svg.startswith("<svg") and "polyline" in svg and "bm25" in svg
    True
    """
    left, right, top, bottom = 56, 130, 34, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [p for values in series.values() for p in values]
    x_min = min((p[0] for p in points), default=0.0)
    x_max = max((p[0] for p in points), default=1.0)
    if x_max == x_min:
        x_max = x_min + 1
    if y_range is None:
        y_lo = min((p[1] for p in points), default=0.0)
        y_hi = max((p[1] for p in points), default=1.0)
        y_lo, y_hi = (0.0, y_hi * 1.1 or 1.0) if y_lo >= 0 else (y_lo, y_hi)
    else:
        y_lo, y_hi = y_range

    def sx(x: float) -> float:
        return left + (x - x_min) / (x_max - x_min) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y_lo) / ((y_hi - y_lo) or 1) * plot_h

    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{html.escape(title)}" font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="18" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    for tick in _ticks(y_lo, y_hi, _nice_step(y_hi - y_lo)):
        y = sy(tick)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>')
    x_step = max(1.0, _nice_step(x_max - x_min, 10)) if x_max - x_min >= 1 else _nice_step(x_max - x_min)
    for tick in _ticks(x_min, x_max, x_step):
        x = sx(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" stroke="#333"/>'
                     f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_fmt(tick)}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle">{html.escape(x_label)}'
                 f'</text><text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{html.escape(y_label)}</text>')
    for index, (name, values) in enumerate(series.items()):
        color = PALETTE[index % len(PALETTE)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in values)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts.extend(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{color}"><title>'
                     f'{html.escape(name)}: {x:g} → {y:.3f}</title></circle>' for x, y in values)
        legend_y = top + 12 + index * 16
        parts.append(f'<line x1="{left + plot_w + 10}" y1="{legend_y - 4}" x2="{left + plot_w + 28}" '
                     f'y2="{legend_y - 4}" stroke="{color}" stroke-width="3"/>'
                     f'<text x="{left + plot_w + 32}" y="{legend_y}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_histogram(values: Sequence[float], *, title: str, x_label: str, bins: int = 20,
                  x_range: tuple[float, float] | None = None, color: str = PALETTE[0], width: int = 360,
                  height: int = 220) -> str:
    """An inline ``<svg>`` histogram of ``values`` (counts per equal-width bin).

    >>> svg = svg_histogram([1.0, 2.0, 2.5, 9.0], title="latency", x_label="ms", bins=4)
    >>> svg.count("<rect") - 1  # a frame, then bars for the bins [1, 3) (three values) and [7, 9] (one)
    2
    """
    left, right, top, bottom = 44, 14, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = x_range if x_range else (min(values, default=0.0), max(values, default=1.0))
    if hi <= lo:
        hi = lo + 1.0
    counts = [0] * bins
    for value in values:
        index = min(bins - 1, max(0, int((value - lo) / (hi - lo) * bins)))
        counts[index] += 1
    peak = max(counts) or 1
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{html.escape(title)}" font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="18" font-size="12" font-weight="bold">{html.escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>']
    bar_w = plot_w / bins
    for index, count in enumerate(counts):
        if not count:
            continue
        bar_h = count / peak * plot_h
        start = lo + (hi - lo) * index / bins
        parts.append(f'<rect x="{left + index * bar_w + 0.5:.1f}" y="{top + plot_h - bar_h:.1f}" '
                     f'width="{max(bar_w - 1, 0.5):.1f}" height="{bar_h:.1f}" fill="{color}"><title>'
                     f'{_fmt(start)}–{_fmt(start + (hi - lo) / bins)}: {count}</title></rect>')
    for fraction in (0.0, 0.5, 1.0):
        x = left + fraction * plot_w
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle">'
                     f'{_fmt(lo + fraction * (hi - lo))}</text>')
    parts.append(f'<text x="{left - 6}" y="{top + 8}" text-anchor="end">{peak}</text>'
                 f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>'
                 f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle">'
                 f'{html.escape(x_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
