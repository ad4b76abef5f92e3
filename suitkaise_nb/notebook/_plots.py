"""Histograms as PNG bytes (matplotlib's Agg backend; imported here and nowhere else)."""

from __future__ import annotations

import io
from collections.abc import Sequence


def warm_up() -> None:
    """Import what ``histogram_png`` needs (seconds on a cold machine), ahead of the first plot."""
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401


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
    # fixed margins: tight_layout() measured every tick label and was half of the cost
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.24, top=0.87)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
