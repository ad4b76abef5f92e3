"""``make demo``'s HTML export shows what the views showed last (issue 18, point 5): final
values and counts, a histogram image in every view that has one, the dashboard as the
notebook left it (a timer fed after it was shown, every process ended) — readable offline."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ._util import ROOT, leftovers, marked_env

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(600)]


def _cells(html: str) -> list[tuple[str, Any]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    out = []
    for c in soup.select("div.jp-Cell.jp-CodeCell"):
        editor = c.select_one(".jp-InputArea-editor")
        out.append((editor.get_text() if editor else "", c))
    return out


def _cell(cells: list[tuple[str, Any]], code: str) -> Any:
    found = [c for src, c in cells if code in src]
    assert len(found) == 1, f"{len(found)} cells hold {code!r}"
    return found[0]


def _view(cell: Any, kind: str) -> tuple[str, Any]:
    """(text, element) of the one ``sknb-<kind>`` view in the cell's output."""
    (view,) = cell.select(f".jp-OutputArea div.sknb-{kind}")
    return view.get_text(" ", strip=True), view


def _histograms(cell: Any) -> list[str]:
    return [img["src"] for img in cell.select(".jp-OutputArea img.sknb-hist")]


def _one_svg_histogram(cell: Any) -> None:
    srcs = _histograms(cell)
    assert len(srcs) == 1 and srcs[0].startswith("data:image/svg+xml;base64,"), srcs


def test_make_demo_exports_the_latest_state(tmp_path: Path) -> None:
    out = tmp_path / "executed"
    venv = Path(sys.prefix)
    env, token = marked_env()
    # -o: the venv is this one, already installed; run only the demo's own steps
    proc = subprocess.run(
        ["make", "-C", str(ROOT), "-o", f"{venv}/.lab", "demo", f"VENV={venv}", f"DEMO_OUT={out}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    left = leftovers(token)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not left, left
    html = (out / "quickstart.html").read_text()
    assert "unpkg.com" not in html  # no widget manager fetched from a CDN: readable offline
    cells = _cells(html)

    # a timer shown as a cell's value: its count, its histogram
    timer = next(c for src, c in cells if src.strip() == "timer")
    text, _ = _view(timer, "timer")
    assert "29 times" in text, text
    _one_svg_histogram(timer)

    # a process that ran to its end
    collatz = _cell(cells, "proc = Collatz(27)")
    text, _ = _view(collatz, "process")
    assert "finished" in text and "run 40/40" in text, text
    _one_svg_histogram(collatz)

    # started in one cell, waited for in the next: exported as it ended, not as it started
    heartbeat = _cell(cells, "beat.start()")
    text, _ = _view(heartbeat, "process")
    printed = _cell(cells, "beats = beat.result()").select_one(".jp-OutputArea").get_text()
    beats = re.search(r"(\d+) beats in about two seconds", printed)
    assert beats, printed
    assert "finished" in text and f"run {beats.group(1)} " in text, (text, printed)
    _one_svg_histogram(heartbeat)

    # pools: every item, closed, a histogram of item durations
    pools = (("prints = pool.map(fingerprint, words)", "60/60"), ("share.votes = 0", "5/5"))
    for code, items in pools:
        pool = _cell(cells, code)
        text, _ = _view(pool, "pool")
        assert "closed" in text and f"{items} items" in text, text
        _one_svg_histogram(pool)

    # the Share stopped right after its last change: its final values and operation count
    share = next(c for src, c in cells if src.strip() == "share")
    text, _ = _view(share, "share")
    assert "Tally(50)" in text and re.search(r"votes int 50\b", text), text
    ops = re.search(r"([\d,]+) operations", text)
    assert ops and int(ops.group(1).replace(",", "")) >= 100, text
    assert "50 50" in _cell(cells, "share.votes = 0").get_text()

    # the dashboard as the notebook left it: every process ended, the timer fed after it
    dash = _cell(cells, "suitkaise_nb.dashboard()")
    text, element = _view(dash, "dashboard")
    assert "3 processes · 2 pools · 1 share · 1 timer" in text, text
    states = [s["data-state"] for s in element.select(".sknb-state[data-state]")]
    assert states and set(states) <= {"finished", "closed", "stopped"}, states
    assert re.search(r"slow_square 50 ", text), text  # 20 calls before it, 30 after
