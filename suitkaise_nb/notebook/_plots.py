"""Histograms: PNG bytes for the live views (matplotlib's Agg backend; imported here and
nowhere else) and SVG text for the HTML a notebook file keeps (plain Python, ~0.1 ms: every
static rendering can carry an up-to-date one)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from html import escape
from typing import Any


def warm_up() -> None:
    """Import what ``histogram_png`` needs (seconds on a cold machine), ahead of the first plot."""
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401


def time_axis(values: Sequence[float]) -> tuple[float, str, int]:
    """(scale, unit, decimals) for durations in seconds: the unit that suits their size, and
    just enough decimals to tell ticks apart when they barely vary (300.175 .. 300.180 ms)."""
    hi = max(values) if values else 0.0
    scale, unit = (1e6, "µs") if hi < 1e-3 else (1e3, "ms") if hi < 10 else (1.0, "s")
    span = (max(values) - min(values)) * scale if values else 0.0
    if span <= 0:
        return scale, unit, 3
    step = span / 4  # about four ticks
    return scale, unit, max(0, min(6, -math.floor(math.log10(step))))


def histogram_figure(values: Sequence[float], title: str, width: float = 4.2) -> Any:
    """The histogram as a matplotlib ``Figure`` (no pyplot: no global state, any thread)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    fig = Figure(figsize=(width, 1.9), dpi=80)
    ax = fig.add_subplot(111)
    values = [v for v in values if math.isfinite(v)]
    scale, unit, decimals = time_axis(values)
    xs = [v * scale for v in values]
    if xs:
        lo, hi = min(xs), max(xs)
        if hi > lo:
            ax.hist(xs, bins=min(40, max(5, len(xs) // 5)), color="#1f77b4", alpha=0.85)
        else:  # one value: one bar, with room around it
            pad = abs(lo) * 0.01 or 1.0
            ax.hist(xs, bins=1, range=(lo - pad, hi + pad), color="#1f77b4", alpha=0.85)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.xaxis.set_major_formatter(FormatStrFormatter(f"%.{decimals}f"))
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(unit, fontsize=8)
    ax.tick_params(labelsize=7)
    # fixed margins: tight_layout() measured every tick label and was half of the cost
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.24, top=0.87)
    return fig


def histogram_png(values: Sequence[float], title: str, width: float = 4.2) -> bytes:
    """A small histogram of durations (seconds), in the unit that suits them, as PNG bytes."""
    fig = histogram_figure(values, title, width)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def nice_ticks(lo: float, hi: float, count: int = 4) -> tuple[list[float], int]:
    """About ``count`` round tick values in [lo, hi] (steps of 1, 2, 2.5 or 5 times a power
    of ten) and the decimals that tell them apart."""
    if hi <= lo:
        return [lo], 3
    raw = (hi - lo) / count
    power = 10.0 ** math.floor(math.log10(raw))
    mult = next(m for m in (1.0, 2.0, 2.5, 5.0, 10.0) if raw <= m * power * (1 + 1e-9))
    step = mult * power
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if mult == 2.5 else 0)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    tick = first
    while tick <= hi + step * 1e-9:
        ticks.append(tick)
        tick = first + len(ticks) * step
    return ticks, decimals


# the SVG's geometry: the live PNG's size (4.2 x 1.9 in at 80 dpi), its plot area inside
_W, _H = 336, 152
_X0, _X1, _Y0, _Y1 = 40.0, 326.0, 22.0, 118.0


def histogram_svg(values: Sequence[float], title: str) -> str:
    """The histogram of durations (seconds) as a standalone SVG document."""
    finite = [v for v in values if math.isfinite(v)]
    scale, unit, _ = time_axis(finite)
    xs = [v * scale for v in finite]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" font-family="sans-serif">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<text x="{_W / 2:.0f}" y="14" font-size="11" text-anchor="middle">{escape(title)}</text>',
    ]
    if xs:
        lo, hi = min(xs), max(xs)
        if hi <= lo:  # one value: one bar, with room around it
            pad = abs(lo) * 0.01 or 1.0
            lo, hi, bins = lo - pad, hi + pad, 1
        else:
            bins = min(40, max(5, len(xs) // 5))
        counts = [0] * bins
        width = (hi - lo) / bins
        for x in xs:
            counts[min(bins - 1, int((x - lo) / width))] += 1
        top = max(counts)
        bar = (_X1 - _X0) / bins
        for i, c in enumerate(counts):
            if c:
                h = c / top * (_Y1 - _Y0)
                parts.append(
                    f'<rect x="{_X0 + i * bar:.1f}" y="{_Y1 - h:.1f}" '
                    f'width="{max(bar - 0.6, 0.6):.1f}" height="{h:.1f}" '
                    'fill="#1f77b4" fill-opacity="0.85"/>'
                )
        ticks, decimals = nice_ticks(lo, hi)
        for t in ticks:
            x = _X0 + (t - lo) / (hi - lo) * (_X1 - _X0)
            parts.append(
                f'<line x1="{x:.1f}" y1="{_Y1}" x2="{x:.1f}" y2="{_Y1 + 3}" stroke="#333"/>'
                f'<text x="{x:.1f}" y="{_Y1 + 13}" font-size="9" text-anchor="middle">'
                f"{t:.{decimals}f}</text>"
            )
        for c in sorted({0, top}):
            y = _Y1 - c / top * (_Y1 - _Y0)
            parts.append(
                f'<text x="{_X0 - 4}" y="{y + 3:.1f}" font-size="9" text-anchor="end">{c}</text>'
            )
    parts += [
        f'<path d="M{_X0} {_Y0}V{_Y1}H{_X1}" fill="none" stroke="#333"/>',
        f'<text x="{(_X0 + _X1) / 2:.0f}" y="{_H - 8}" font-size="10" text-anchor="middle">'
        f"{unit}</text>",
        "</svg>",
    ]
    return "".join(parts)
