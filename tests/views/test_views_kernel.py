"""What a person sees in the notebook, rebuilt from every output message as a front-end does
(``frontend.FrontEnd``): issue 18, points 1-9 and 11."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest

from .frontend import FrontEnd

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(240)]
ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def fe(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fe")
    f = FrontEnd(tmp)
    f.run(f"import sys; sys.path.insert(0, {ROOT!r})\n%load_ext suitkaise_nb")
    yield f
    f.close()


def cell(fe: FrontEnd, code: str, timeout: float = 90) -> int:
    return fe.run(textwrap.dedent(code), timeout)


def views(fe: FrontEnd, index: int, kind: str) -> list[str]:
    return [o.html for o in fe.outputs()[index] if f'class="sknb-{kind}"' in o.html]


def test_child_output_shows_once_in_its_cell_not_in_the_view(fe):
    i = cell(
        fe,
        """
        from suitkaise_nb.processing import Skprocess
        class Talker(Skprocess):
            def __init__(self):
                self.process_config.runs = 3
            def __run__(self):
                print(f"line from run {self._current_run}")
        Talker().run()
        """,
    )
    fe.settle()
    out = fe.stdout(i)
    for n in range(3):
        assert out.count(f"line from run {n}") == 1, out
    (view,) = views(fe, i, "process")
    assert "line from run" not in view  # not repeated inside the view


def test_retries_are_shown_with_error_run_and_traceback(fe):
    i = cell(
        fe,
        """
        class Flaky(Skprocess):
            def __init__(self):
                self.process_config.runs = 5
                self.process_config.lives = 2
                self.failed = False
            def __run__(self):
                if self._current_run == 2 and not self.failed:
                    self.failed = True
                    raise ValueError("flaky network")
            def __result__(self):
                return self._current_run
        flaky_result = Flaky().run()
        print(flaky_result)
        """,
    )
    fe.settle()
    assert fe.stdout(i).strip() == "5"
    (view,) = views(fe, i, "process")
    assert "1 failure retried" in view and "ValueError" in view and "flaky network" in view
    assert "run 3" in view and "__run__" in view  # which run, which section
    assert 'class="sknb-retry"' in view and "Traceback" in view  # the traceback on demand
    assert "run 5/5" in view and "lives 1/2" in view


def test_a_traceback_points_at_the_cell_and_its_line(fe):
    i = cell(
        fe,
        """
        class Boom(Skprocess):
            def __init__(self):
                self.process_config.runs = 1

            def __run__(self):
                x = 1
                y = 2
                raise KeyError("from the cell")  # THE-RAISING-LINE
        Boom().run()
        """,
    )
    err = fe.error(i)
    assert err is not None
    text = "\n".join(re.sub(r"\x1b\[[0-9;]*m", "", line) for line in err["traceback"])
    assert re.search(r"Cell In\[\d+\], line 8, in __run__", text), text
    assert "THE-RAISING-LINE" in text
    assert "ipykernel_" not in text


def test_named_cell_process_is_titled_by_its_name(fe):
    i = cell(
        fe,
        """
        %%skprocess --name crawler --runs 2
        n = 1
        """,
    )
    (view,) = views(fe, i, "process")
    assert "<b>crawler</b>" in view and "SkprocessCell" not in view
    j = cell(fe, "%sklist")
    listing = fe.html(j)
    assert "crawler" in listing and "SkprocessCell" not in listing


def test_values_in_python_order_and_plurals(fe):
    i = cell(
        fe,
        """
        class Echo(Skprocess):
            def __init__(self):
                self.process_config.runs = 1
            def __run__(self):
                self.tell({"zeta": 1, "alpha": 2, "mid": 3})
        e = Echo(); e.start(); e.wait()
        print(e.listen(5))
        share = Share() if "Share" in dir() else None
        """,
    )
    fe.settle()
    (view,) = views(fe, i, "process")
    assert "{&#x27;zeta&#x27;: 1, &#x27;alpha&#x27;: 2, &#x27;mid&#x27;: 3}" in view
    j = cell(
        fe,
        """
        from suitkaise_nb.processing import Share
        one = Share()
        one.x = 1
        one
        """,
    )
    fe.settle(1.5)
    (sview,) = views(fe, j, "share")
    assert "1 attribute" in sview and "1 attributes" not in sview
    assert re.search(r"\b1 client\b", sview) or "0 clients" in sview
    cell(fe, "one.exit()")


def test_a_share_stopped_right_after_its_last_change_shows_its_final_values(fe):
    i = cell(
        fe,
        """
        from suitkaise_nb.processing import Pool, Share
        votes = Share()
        votes.votes = 0
        display(votes)
        def vote(share):
            for _ in range(10):
                share.votes += 1
        with Pool(2) as pool:
            pool.map(vote, [votes] * 5)
        print(votes.votes)
        votes.stop()
        """,
    )
    fe.settle(1.5)
    assert fe.stdout(i).strip().endswith("50")
    (sview,) = views(fe, i, "share")
    assert re.search(r"votes.*50", sview, re.S), sview
    assert "stopped" in sview
    cell(fe, "votes.exit()")


def test_exports_keep_the_latest_state_of_every_view(fe):
    i = cell(
        fe,
        """
        from suitkaise_nb.timing import Sktimer
        feed = Sktimer()
        feed
        """,
    )
    cell(
        fe,
        """
        for k in range(150):
            feed.add_time(0.001 + k * 1e-6)
        """,
    )
    fe.settle()
    (tview,) = views(fe, i, "timer")
    assert re.search(r">150<", tview), tview  # the count a later cell reached
    assert 'class="sknb-hist"' in tview and "data:image/svg+xml;base64," in tview
    k = cell(
        fe,
        """
        import time
        class Long(Skprocess):
            def __run__(self):
                time.sleep(0.05)
        long = Long(); long.start()
        time.sleep(1.0)
        """,
    )
    fe.settle()
    (pview,) = views(fe, k, "process")
    assert "running" in pview and "run 0" not in pview  # exported as it is at the cell's end
    cell(fe, "long.stop(); long.wait(30)")


def test_skstop_says_what_it_stopped_and_the_view_agrees_with_the_result(fe):
    i = cell(
        fe,
        """
        import time
        class Counter400(Skprocess):
            def __init__(self):
                self.process_config.runs = 400
            def __run__(self):
                time.sleep(0.005)
            def __result__(self):
                return self._current_run
        c400 = Counter400(); c400.start()
        time.sleep(0.5)
        """,
    )
    j = cell(fe, "%skstop c400")
    assert re.match(
        r"stopping c400 \(Counter400, pid \d+, (running|stopping), run \d+/400\)", fe.stdout(j)
    ), fe.stdout(j)
    k = cell(fe, "print(c400.result())")
    fe.settle(1.5)
    runs = int(fe.stdout(k).strip())
    (view,) = views(fe, i, "process")
    assert f"run {runs}/400" in view, (runs, view)


def test_the_kernel_says_busy_again_after_another_thread_answers_during_a_cell(fe):
    """Point 9 without a browser: a request answered on another thread while a cell blocks
    (here on the control channel; JupyterLab's widget subshell does the same) ends with
    ``idle``, which front-ends show as the kernel's status. The kernel then says ``busy`` again
    under the cell, before the cell's own ``idle``."""
    msg_id = fe.submit(
        "import time\nfrom suitkaise_nb.processing import Pool\n"
        "with Pool(workers=1) as p:\n    p.map(time.sleep, [1.5])"
    )
    time.sleep(0.7)
    ctl = fe.kc.session.msg("kernel_info_request")
    fe.kc.control_channel.send(ctl)
    fe.finish(msg_id, 60)
    statuses = [
        (m["parent_header"].get("msg_id"), m["content"]["execution_state"])
        for m in fe.messages
        if m["msg_type"] == "status"
    ]
    answered = statuses.index((ctl["header"]["msg_id"], "idle"))
    ended = statuses.index((msg_id, "idle"))
    assert answered < ended, statuses
    assert (msg_id, "busy") in statuses[answered + 1 : ended], statuses
    assert (msg_id, "busy") not in statuses[ended:], statuses
