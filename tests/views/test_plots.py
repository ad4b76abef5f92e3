"""Histogram axes: units that fit, tick labels that never overlap (issue 18, point 10)."""

from __future__ import annotations

import random

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from suitkaise_nb.notebook._plots import histogram_figure, histogram_png, time_axis

CASES = {
    "barely varying (300.175-300.180 ms)": [
        0.300175 + random.Random(1).random() * 5e-6 for _ in range(200)
    ],
    "microseconds": [2e-6 + random.Random(2).random() * 3e-6 for _ in range(300)],
    "milliseconds": [0.005 + random.Random(3).random() * 0.01 for _ in range(300)],
    "seconds": [12 + random.Random(4).random() * 30 for _ in range(50)],
    "one value": [0.25] * 10,
    "wide": [1e-4, 0.5, 2.0, 9.0],
}


@pytest.mark.parametrize("name", list(CASES))
def test_tick_labels_fit(name):
    values = CASES[name]
    fig = histogram_figure(values, name)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    ticks = [
        (t, label)
        for t, label in zip(ax.get_xticks(), ax.get_xticklabels(), strict=True)
        if lo <= t <= hi and label.get_text()
    ]
    assert 2 <= len(ticks) <= 6, [label.get_text() for _, label in ticks]
    texts = [label.get_text() for _, label in ticks]
    assert len(set(texts)) == len(texts), texts  # distinct: enough decimals
    boxes = [label.get_window_extent(canvas.get_renderer()) for _, label in ticks]
    for a, b in zip(boxes, boxes[1:], strict=False):
        assert a.x1 < b.x0, (texts, a, b)  # no two labels overlap
    assert histogram_png(values, name).startswith(b"\x89PNG")


def test_units_suit_the_durations():
    assert time_axis([2e-6, 5e-6])[1] == "µs"
    assert time_axis([0.01, 0.02])[1] == "ms"
    assert time_axis([12.0, 40.0])[1] == "s"
    assert time_axis([0.300175, 0.300180])[2] >= 3  # enough decimals to tell ticks apart
