"""Histograms as PNG bytes (matplotlib's Agg backend; imported here and nowhere else)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
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
