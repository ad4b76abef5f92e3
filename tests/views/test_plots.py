"""Histogram axes: units that fit, tick labels that never overlap (issue 18, point 10)."""

from __future__ import annotations

import random

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from suitkaise_nb.notebook._plots import (
    histogram_figure,
    histogram_png,
    histogram_svg,
    nice_ticks,
    time_axis,
)

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


def _svg_ticks(svg: str) -> list[tuple[float, str]]:
    """(x, label) of the x axis's tick labels of an SVG histogram."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(svg)  # well-formed XML, or this raises
    ns = "{http://www.w3.org/2000/svg}"
    return [
        (float(t.get("x", "0")), t.text or "")
        for t in root.iter(f"{ns}text")
        if t.get("font-size") == "9" and t.get("text-anchor") == "middle"
    ]


@pytest.mark.parametrize("name", list(CASES))
def test_svg_histogram_ticks_fit(name):
    """The exported histogram (SVG, no matplotlib) follows the same rules."""
    values = CASES[name]
    svg = histogram_svg(values, name)
    ticks = _svg_ticks(svg)
    assert 2 <= len(ticks) <= 6, ticks
    texts = [label for _, label in ticks]
    assert len(set(texts)) == len(texts), texts
    char = 9 * 0.6  # px per character at font-size 9 (sans-serif digits are narrower)
    for (xa, a), (xb, b) in zip(ticks, ticks[1:], strict=False):
        assert xb - xa > (len(a) + len(b)) / 2 * char, ticks
    assert all(40 <= x <= 326 for x, _ in ticks), ticks  # inside the plot area
    assert time_axis(values)[1] in svg


def test_svg_histogram_takes_anything():
    for values in ([], [0.1], [float("nan"), 0.1, 0.2], [float("inf"), 1.0, 2.0]):
        _svg_ticks(histogram_svg(values, "t"))
    assert "&lt;run&gt;" in histogram_svg([0.1, 0.2], "<run>")  # the title is escaped


def test_nice_ticks():
    assert nice_ticks(0, 1) == ([0.0, 0.25, 0.5, 0.75, 1.0], 2)
    ticks, decimals = nice_ticks(300.175, 300.180)
    assert [f"{t:.{decimals}f}" for t in ticks] == ["300.176", "300.178", "300.180"]
    assert nice_ticks(5, 5) == ([5], 3)
