"""The notebook layer in a real Jupyter kernel (nbclient): output routing, views, magics."""

from __future__ import annotations

import pytest

from .kernel import WIDGET, execute, outputs, stdout

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

CLASS_CELL = """
from suitkaise_nb.processing import Skprocess
class Helper(Skprocess):
    scale = 3
    def __init__(self, n):
        self.n = n
        self.f = lambda x: x * self.scale
        self.process_config.runs = 3
    @property
    def doubled(self):
        return self.n * 2
    def _helper(self, x):
        return self.f(x) + self.doubled
    def __run__(self):
        print("child says", self._helper(self._current_run))
    def __result__(self):
        return self._helper(10)
"""


def _html(output) -> str:
    return output.data.get("text/html", "")


def test_cell_class_ships_and_prints_into_its_cell_with_a_live_view(tmp_path):
    nb = execute(
        [
            CLASS_CELL,
            "p = Helper(5)\nprint('result', p.run())",
            "import time\nclass Late(Skprocess):\n    def __init__(self):\n"
            "        self.process_config.runs = 2\n    def __run__(self):\n"
            "        time.sleep(0.4)\n        print('late line', self._current_run)\n"
            "p2 = Late()\np2.start()",
            "time.sleep(2)\nprint('later cell')",
        ],
        tmp_path,
    )
    out = stdout(nb, 1)
    assert out.splitlines() == ["child says 10", "child says 13", "child says 16", "result 40"]
    views = [o for o in outputs(nb, 1, "display_data") if "sknb-process" in _html(o)]
    assert len(views) == 1
    # quick work is shown as HTML only (no widget tree left behind for a run that is over)
    assert WIDGET not in views[0].data
    html = views[0].data["text/html"]  # the final state, left for viewers without widgets
    assert "finished" in html and "run 3/3" in html and "40" in html
    # p2 ran long enough to go live: its display got the widget, then the final state
    live = [o for o in outputs(nb, 2, "display_data") if "sknb-process" in _html(o)]
    assert len(live) == 1 and WIDGET in live[0].data, live
    assert "finished" in live[0].data["text/html"] and "run 2/2" in live[0].data["text/html"]
    # p2 outlived its cell: its output lands in the cell that started it, not in the next one
    late = "".join(o.data.get("text/plain", "") for o in outputs(nb, 2, "display_data"))
    assert "late line 0" in late and "late line 1" in late
    assert "late line" not in stdout(nb, 3)


def test_auto_views_switch_and_pool_view(tmp_path):
    nb = execute(
        [
            "import suitkaise_nb\nfrom suitkaise_nb.processing import Pool\n"
            "def sq(x):\n    return x * x",
            "with Pool(2) as pool:\n    print(sum(pool.map(sq, range(100))))",
            "suitkaise_nb.config.auto_views = False\n"
            "with Pool(2) as pool:\n    print(sum(pool.map(sq, range(100))))",
        ],
        tmp_path,
    )
    assert stdout(nb, 1).strip() == stdout(nb, 2).strip() == "328350"
    views = [o for o in outputs(nb, 1, "display_data") if "sknb-pool" in _html(o)]
    assert len(views) == 1 and "100/100" in views[0].data["text/html"]
    assert not [o for o in outputs(nb, 2, "display_data") if "sknb-pool" in _html(o)]
    assert not [o for o in outputs(nb, 2, "display_data") if WIDGET in o.data]


def test_timer_value_shows_a_view_and_html(tmp_path):
    nb = execute(
        [
            "from suitkaise_nb.timing import Sktimer\nt = Sktimer()\n"
            "for i in range(20):\n    t.add_time(0.001 * (i + 1))\nt",
        ],
        tmp_path,
    )
    shown = outputs(nb, 0, "display_data")
    assert shown and WIDGET in shown[0].data
    assert "sknb-timer" in shown[0].data["text/html"] and "20" in shown[0].data["text/plain"]


def test_magics_in_a_kernel(tmp_path):
    nb = execute(
        [
            "%load_ext suitkaise_nb\nfactor = 2",
            "%%skprocess --runs 3\ntotal = 0\n# %% run\ntotal += factor\n# %% result\ntotal",
            "%%skprocess --bg --name w --runs 100000\nimport time\n# %% run\ntime.sleep(0.01)\n"
            "# %% onfinish\nprint('bye from onfinish')",
            "import time\ntime.sleep(0.5)\n%skstop w\nprint(w.wait(10), w.process_state)",
            "%sklist",
            "%%skprocess\nx = 1\n# %% run\ny = x + 1\nraise KeyError('from the cell')",
        ],
        tmp_path,
        allow_errors=True,
    )
    result = outputs(nb, 1, "execute_result")
    assert result and result[0].data["text/plain"] == "6"
    said, waited = stdout(nb, 3).strip().splitlines()
    assert said.startswith("stopping w (w, pid ") and "it ends after its current section" in said
    assert waited == "True finished"
    bye = "".join(o.data.get("text/plain", "") for o in outputs(nb, 2, "display_data"))
    bye += stdout(nb, 2) + stdout(nb, 3)
    assert "bye from onfinish" in bye
    listed = outputs(nb, 4, "execute_result")[0].data["text/html"]
    assert "w" in listed and "finished" in listed
    err = outputs(nb, 5, "error")[0]
    tb = "\n".join(err.traceback)
    assert "line 4" in tb and "KeyError('from the cell')" in tb
