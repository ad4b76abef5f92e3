"""Histograms as PNG bytes (matplotlib's Agg backend; imported here and nowhere else)."""

from __future__ import annotations

import io
from collections.abc import Sequence


def histogram_png(values: Sequence[float], title: str, width: float = 4.2) -> bytes:
    """A small histogram of durations (seconds, shown in ms) as PNG bytes."""
    from matplotlib.figure import Figure  # no pyplot: no global state, safe off the main thread

    fig = Figure(figsize=(width, 1.9), dpi=80)
    ax = fig.add_subplot(111)
    ms = [v * 1e3 for v in values]
    if ms:
        ax.hist(ms, bins=min(40, max(5, len(ms) // 5)), color="#1f77b4", alpha=0.85)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("ms", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
