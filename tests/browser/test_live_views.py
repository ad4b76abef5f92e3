"""What a person sees in JupyterLab and Notebook 7: the live process and pool views, checked
in Chromium.

Issue 6 "Must show": while the cell still runs the process view counts runs (strictly between
0 and 50) and logs the child's messages, and the pool view's progress moves (strictly between
0 and 40); at the end the process view shows finished, 50/50, the result and a histogram; a
runs=None process started in a finished cell ends as finished, with its ``__onfinish__``
output, when its view's Stop button is clicked.

Screenshots go to ``artifacts/browser/``. ``docs/img/live-views.png`` (the README's picture) is
the pool mid-run one, copied there when missing or when ``SKNB_UPDATE_DOCS_IMG=1``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from . import lab
from .conftest import REPO, LabServer

pytestmark = pytest.mark.browser

DOCS_SHOT = REPO / "docs" / "img" / "live-views.png"
# the committed screenshot is refreshed only on request (else every run would modify it)
UPDATE_DOCS_VAR = "SKNB_UPDATE_DOCS_IMG"

SETUP = """\
import sys, time
from suitkaise_nb.processing import Pool, Skprocess
print("kernel python:", sys.executable)
"""

PROCESS_CELL = """\
class Ticker(Skprocess):
    def __init__(self):
        self.process_config.runs = 50
        self.ticks = 0

    def __run__(self):
        time.sleep(0.05)
        self.ticks += 1
        if self.ticks % 5 == 0:
            self.tell(f"tick {self.ticks}")

    def __result__(self):
        return f"ticked {self.ticks} times"

p = Ticker()
print(p.run())
"""

POOL_CELL = """\
def slow_square(x):
    time.sleep(0.05)
    return x * x

with Pool(workers=2) as pool:
    squares = pool.map(slow_square, range(40))
print("sum of squares:", sum(squares))
"""

STOP_CELL = """\
import time
from suitkaise_nb.processing import Skprocess

class Forever(Skprocess):
    def __init__(self):
        self.process_config.runs = None
        self.n = 0

    def __run__(self):
        time.sleep(0.05)
        self.n += 1

    def __onfinish__(self):
        print(f"onfinish: stopped cleanly after {self.n} runs")

forever = Forever()
forever.start()
"""


def _fail(msg: str, state: dict[str, Any], server: LabServer) -> None:
    pytest.fail(f"{msg}\npage: {state}\njupyterlab/kernel log tail:\n{server.log_tail()}")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("front_end", ["jupyterlab", "notebook7"])
def test_process_and_pool_views_live_then_final(
    front_end: str, lab_server: LabServer, page: Any, artifacts: Path
) -> None:
    name = f"live-{front_end}.ipynb"
    lab.write_notebook(lab_server.root / name, [SETUP, PROCESS_CELL, POOL_CELL])
    lab_ui = front_end == "jupyterlab"
    t0 = time.monotonic()
    try:
        lab.open_notebook(
            page, lab_server.lab_url(name) if lab_ui else lab.notebook7_url(lab_server, name)
        )
        if lab_ui:
            lab.hide_left_sidebar(page)  # a wider notebook for the screenshots
        t_open = time.monotonic() - t0
        lab.run_all(page)

        proc_mid: dict[str, Any] | None = None
        pool_mid: dict[str, Any] | None = None
        seen: list[str] = []
        mid_counts: set[int] = set()  # run counts shown while the cell ran
        deadline = time.monotonic() + 120
        state = lab.read(page)
        started = False
        while True:
            state = lab.read(page)
            cells = state["cells"]
            started = started or lab.running(state)
            if started and lab.done(state):
                break
            if time.monotonic() > deadline:
                _fail("the notebook did not finish within 120 s", state, lab_server)
            c1, c2 = cells[1], cells[2]
            if c1["procs"]:
                v = c1["procs"][0]
                seen.append(
                    f"{time.monotonic() - t0:.2f} {c1['prompt']} {v['progress']} {v['log']}"
                )
            if "[*]" in (c1["prompt"] or "") and c1["procs"]:
                run = lab.number(r"run (\d+)/50", c1["procs"][0]["progress"])
                if run is not None and 0 < run < 50:
                    mid_counts.add(run)
            if proc_mid is None and "[*]" in (c1["prompt"] or "") and c1["procs"]:
                v = c1["procs"][0]
                run = lab.number(r"run (\d+)/50", v["progress"])
                msgs = lab.number(r"messages: (\d+)", v["log"])
                if run is not None and 0 < run < 50 and msgs is not None and msgs >= 1:
                    page.screenshot(path=str(artifacts / f"{front_end}-process-mid-run.png"))
                    proc_mid = {"run": run, "messages": msgs, "view": v}
            if (
                pool_mid is None
                and "[*]" in (c2["prompt"] or "")
                and "[*]" not in (c1["prompt"] or "")
                and c2["pools"]
            ):
                lab.scroll_into_view(page, ".sknb-pool-view")  # as a person would follow it
                d = lab.number(r"^(\d+)/40", c2["pools"][0]["progress"])
                if d is not None and 0 < d < 40:
                    page.screenshot(path=str(artifacts / f"{front_end}-pool-mid-run.png"))
                    pool_mid = {"done": d, "view": c2["pools"][0]}
            time.sleep(0.05)
        t_run = time.monotonic() - t0 - t_open

        # -- mid-run -------------------------------------------------------------------------
        if proc_mid is None:
            _fail(
                "while the process cell ran ([*]) the view never showed 0 < run < 50 with a "
                f"message in its log; views seen: {seen[-40:]}",
                state,
                lab_server,
            )
        if len(mid_counts) < 3:
            _fail(
                "the process view did not keep counting while the cell ran (it should redraw "
                f"about 10 times a second); run counts seen mid-run: {sorted(mid_counts)}",
                state,
                lab_server,
            )
        if pool_mid is None:
            _fail(
                "while the pool cell ran ([*]) its view never showed 0 < done < 40",
                state,
                lab_server,
            )

        # -- final -------------------------------------------------------------------------------
        # histograms are drawn off the display thread: the last one may land a moment after
        # the cell's end, as a person would see it
        try:
            state = lab.wait_for(
                page,
                lambda s: all(v["images"] for c in s["cells"] for v in c["procs"] + c["pools"]),
                15,
                "the final histograms",
            )
        except AssertionError:
            state = lab.read(page)  # the assertions below say what is missing
        setup, c1, c2 = state["cells"]
        assert f"kernel python: {sys.executable}" in setup["text"], setup
        assert len(c1["procs"]) == 1, c1
        v = c1["procs"][0]
        assert v["state"] == "finished", v
        assert v["progress"] == "run 50/50", v
        assert v["result"] and "ticked 50 times" in v["result"], v
        assert v["log"] and v["log"].startswith("messages: 10"), v
        assert v["images"] >= 1, f"no histogram image in the process view: {v}"
        assert "ticked 50 times" in c1["text"], c1["text"]
        stop = next(b for b in v["buttons"] if b["text"] == "Stop")
        assert stop["disabled"], v
        assert len(c2["pools"]) == 1, c2
        pv = c2["pools"][0]
        assert pv["progress"] == "40/40", pv
        assert pv["images"] >= 1, f"no histogram image in the pool view: {pv}"
        assert f"sum of squares: {sum(i * i for i in range(40))}" in c2["text"], c2["text"]

        page.screenshot(path=str(artifacts / f"{front_end}-live-final.png"))
        if lab_ui and (os.environ.get(UPDATE_DOCS_VAR) == "1" or not DOCS_SHOT.exists()):
            DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(artifacts / f"{front_end}-pool-mid-run.png", DOCS_SHOT)
        print(
            f"open {t_open:.1f} s, run {t_run:.1f} s; mid-run process {proc_mid['run']}/50 "
            f"({proc_mid['messages']} messages; counts seen {sorted(mid_counts)}), "
            f"pool {pool_mid['done']}/40"
        )
    finally:
        page.screenshot(path=str(artifacts / f"{front_end}-live-last.png"))
        lab.shutdown_kernels(lab_server)


@pytest.mark.timeout(240)
def test_stop_button_finishes_endless_process(
    lab_server: LabServer, page: Any, artifacts: Path
) -> None:
    lab.write_notebook(lab_server.root / "stop.ipynb", [STOP_CELL])
    try:
        lab.open_notebook(page, lab_server.lab_url("stop.ipynb"))
        lab.run_all(page)
        # the cell returns at once (start() does not block); the process keeps running
        state = lab.wait_for(
            page,
            lambda s: (
                lab.done(s)
                and bool(s["cells"][0]["procs"])
                and (lab.number(r"run (\d+)", s["cells"][0]["procs"][0]["progress"]) or 0) >= 3
                and s["cells"][0]["procs"][0]["state"] == "running"
            ),
            60,
            "the cell to finish with its process view running",
        )
        v = state["cells"][0]["procs"][0]
        assert v["progress"].startswith("run ") and "/" not in v["progress"], v
        page.screenshot(path=str(artifacts / "stop-before.png"))

        view = page.locator(".sknb-process-view").first
        # the button's accessible name also holds the icon's glyph: match its text instead
        view.locator("button", has_text=re.compile(r"^\s*Stop\s*$")).click()

        state = lab.wait_for(
            page,
            lambda s: (
                s["cells"][0]["procs"][0]["state"] in ("finished", "failed", "killed")
                and "onfinish: stopped cleanly" in s["cells"][0]["text"]
                and s["cells"][0]["procs"][0]["images"] >= 1
            ),
            30,
            "the process to end with its __onfinish__ output and histogram after Stop",
        )
        page.screenshot(path=str(artifacts / "stop-after.png"), full_page=True)
        v = state["cells"][0]["procs"][0]
        assert v["state"] == "finished", v
        # the view's final count is the one the child reported in __onfinish__
        runs = lab.number(r"stopped cleanly after (\d+) runs", state["cells"][0]["text"])
        assert v["progress"] == f"run {runs}", (v, state["cells"][0]["text"])
        assert all(b["disabled"] for b in v["buttons"]), v
        assert lab.done(state), state
    finally:
        lab.shutdown_kernels(lab_server)
