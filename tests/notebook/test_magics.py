"""%%skprocess and the line magics on an in-process IPython shell."""

from __future__ import annotations

import time

import pytest

from suitkaise_nb.processing import RunError, ShippingError

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def ip():
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "suitkaise_nb")
    import suitkaise_nb

    suitkaise_nb.config.auto_views = False  # no widgets in a terminal shell
    yield shell
    suitkaise_nb.config.auto_views = True
    from suitkaise_nb.notebook import _kernel

    _kernel.disconnect()


def test_sections_runs_and_result(ip):
    ip.user_ns["factor"] = 3
    cell = "total = 0\n# %% run\ntotal += factor * current_run\n# %% result\ntotal\n"
    assert ip.run_cell_magic("skprocess", "--runs 4", cell) == 3 * (0 + 1 + 2 + 3)


def test_no_marker_is_one_run_and_result_expression(ip):
    assert ip.run_cell_magic("skprocess", '--result "x * 2"', "x = 21\n") == 42


def test_names_persist_across_runs_and_sections(ip):
    cell = (
        "seen = []\n"
        "# %% prerun\n"
        "seen.append('pre')\n"
        "# %% run\n"
        "seen.append(current_run)\n"
        "# %% postrun\n"
        "seen.append('post')\n"
        "# %% result\n"
        "seen\n"
    )
    assert ip.run_cell_magic("skprocess", "--runs 2", cell) == ["pre", 0, "post", "pre", 1, "post"]


def test_bg_name_and_skstop(ip):
    cell = "import time\n# %% run\ntime.sleep(0.01)\n# %% result\ncurrent_run\n"
    proc = ip.run_cell_magic("skprocess", "--bg --name bgproc --runs 100000", cell)
    assert ip.user_ns["bgproc"] is proc
    deadline = time.monotonic() + 10
    while proc.current_run < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    ip.run_line_magic("skstop", "bgproc")
    assert proc.wait(10)
    assert str(proc.process_state) == "finished"
    assert 2 <= proc.result() < 100000


def test_skkill(ip):
    proc = ip.run_cell_magic("skprocess", "--bg --name victim --runs 100000", "# %% run\npass\n")
    ip.run_line_magic("skkill", "victim")
    assert str(proc.process_state) == "killed"


def test_join_in_lives_timeout(ip):
    n = ip.run_cell_magic(
        "skprocess",
        "--runs 1000000 --join-in 0.3",
        "import time\n# %% run\ntime.sleep(0.01)\n# %% result\ncurrent_run\n",
    )
    assert 5 < n < 100
    cell = "import time\n# %% run\ntime.sleep(5)\n# %% error\ntype(error).__name__, error.timeout\n"
    assert ip.run_cell_magic("skprocess", "--timeout 0.2 --lives 2", cell) == (
        "ProcessTimeoutError",
        0.2,
    )


def test_ship_option_and_shipping_error(ip):
    ip.user_ns["a"] = 5
    ip.user_ns["b"] = 7
    assert ip.run_cell_magic("skprocess", '--ship a --result "a + 1"', "pass\n") == 6
    ip.user_ns["numbers"] = (n for n in range(3))
    with pytest.raises(ShippingError, match="'numbers'"):
        ip.run_cell_magic("skprocess", "", "print(next(numbers))\n")
    with pytest.raises(NameError, match="nope"):
        ip.run_cell_magic("skprocess", "--ship nope", "pass\n")


def test_define_and_launch(ip):
    cell = (
        "from suitkaise_nb.processing import Skprocess\n"
        "class Twice(Skprocess):\n"
        "    def __init__(self, word, times=2):\n"
        "        self.word, self.times = word, times\n"
        "        self.process_config.runs = 1\n"
        "    def __result__(self):\n"
        "        return self.word * self.times\n"
    )
    assert ip.run_cell_magic("skprocess", 'Twice("ab", times=3) --name tw', cell) == "ababab"
    assert type(ip.user_ns["tw"]).__name__ == "Twice"


def test_error_traceback_points_at_the_cell_line(ip):
    cell = "x = 1\n# %% run\ny = x + 1\nraise ValueError('bad line')\n"
    with pytest.raises(RunError) as info:
        ip.run_cell_magic("skprocess", "", cell)
    tb = info.value.remote_traceback
    assert "line 4" in tb and "raise ValueError('bad line')" in tb
    assert "_cellproc" not in tb  # engine frames are hidden


def test_bad_marker_and_bad_name(ip):
    with pytest.raises(ValueError, match="unknown section marker"):
        ip.run_cell_magic("skprocess", "", "# %% middle\npass\n")
    with pytest.raises(ValueError, match="--name"):
        ip.run_cell_magic("skprocess", "--name 1bad", "pass\n")
    with pytest.raises(NameError, match="ghost"):
        ip.run_line_magic("skstop", "ghost")


def test_sklist_shows_processes(ip):
    ip.run_cell_magic("skprocess", "--name listed", "pass\n")
    html = ip.run_line_magic("sklist", "").data
    assert "listed" in html and "finished" in html
