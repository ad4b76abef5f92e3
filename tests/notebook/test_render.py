"""Snapshots and renderers are pure: test them on real models without a kernel."""

from __future__ import annotations

import pytest

from suitkaise_nb.notebook import _render as R
from suitkaise_nb.notebook._snapshot import (
    ProcessLog,
    process_snapshot,
    share_snapshot,
    timer_snapshot,
)
from suitkaise_nb.timing import Sktimer
from tests.engine import procs

pytestmark = pytest.mark.timeout(60)


def test_timer_snapshot_matches_the_timer():
    t = Sktimer()
    for i in range(1, 101):
        t.add_time(i / 1000)
    s = timer_snapshot(t, "run")
    assert s.count == 100 and s.min == 0.001 and s.max == 0.1
    assert s.median == pytest.approx(t.percentile(50))
    assert s.p95 == pytest.approx(t.percentile(95))
    assert "p95" in R.timer_html(s) and "n=100" in R.timer_text(s)


def test_timer_snapshot_percentiles_use_recent_samples_on_big_timers():
    t = Sktimer()
    for _ in range(10):
        t.add_time(1.0)
    for _ in range(5000):
        t.add_time(0.001)
    s = timer_snapshot(t, recent=5000)
    assert s.count == 5010 and s.max == 1.0 and s.p95 == pytest.approx(0.001)


def test_process_snapshot_and_render_a_finished_process():
    p = procs.Chatty()
    p.start()
    assert p.wait(10)
    log = ProcessLog(keep=3)
    for i in range(5):
        log.add_message(1_700_000_000 + i, "from_child", {"i": i, "blob": "x" * 500})
    snap = process_snapshot(p.model, log)
    assert snap.state == "finished" and snap.run == 5 and snap.runs == 5
    assert snap.dropped == 2 and len(snap.messages) == 3
    assert all(len(r) < 200 for _, _, r in snap.messages)  # reprs are cut
    html = R.process_html(snap)
    assert "run 5/5" in html and "finished" in html and "messages: 5" in html
    assert "sknb-output" not in html  # the child's output is in its cell, not repeated here
    assert "result: <code>&#x27;done&#x27;</code>" in html
    text = R.process_text(snap)
    assert text.startswith("Chatty [finished]") and "result: 'done'" in text


def test_failed_process_renders_its_traceback():
    p = procs.FailIn("run")
    p.start()
    p.wait(10)
    snap = process_snapshot(p.model)
    assert snap.state == "failed" and snap.error_type == "RunError"
    html = R.process_html(snap)
    assert "sknb-error" in html and "boom in run" in html and "procs.py" in html


def test_share_snapshot_renders_attributes():
    from suitkaise_nb.processing import Share

    share = Share()
    try:
        share.count = 3
        share.items = [1, 2, 3]
        share.count += 1
        import time

        deadline = time.monotonic() + 5
        while share.model.ops < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.25)  # the server pushes its stats every 0.1 s
        snap = share_snapshot(share.model)
        names = [a[0] for a in snap.attributes]
        assert names == ["count", "items"]
        html = R.share_html(snap)
        assert "count" in html and "[1, 2, 3]" in html
    finally:
        share.stop()


def test_fmt_seconds():
    assert R.fmt_seconds(None) == R.DASH
    assert R.fmt_seconds(2e-6) == "2.0 µs"
    assert R.fmt_seconds(0.0123) == "12.30 ms"
    assert R.fmt_seconds(3.5) == "3.50 s"
    assert R.fmt_seconds(125) == "2 min 05 s"
