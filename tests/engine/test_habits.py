"""The engine under real habits: nesting, garbage-collected pools, failures inside the hub,
slow or thread-bound inputs, inherited descriptors, stop() racing the end, descendants and
odd timeout values (issue 16). Each case drives the public API, in a script where the
behaviour depends on how the parent was started."""

from __future__ import annotations

import gc
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from suitkaise_nb.processing import Pool, ProcessError, ShippingError

from . import habits

pytestmark = pytest.mark.timeout(120)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METHODS = ["auto", "forkserver", "spawn"]


def _script(tmp_path, body: str, method: str = "auto", timeout: float = 90) -> str:
    path = tmp_path / "script.py"
    path.write_text(
        "import suitkaise_nb\n"
        f"suitkaise_nb.config.start_method = {method!r}\n" + textwrap.dedent(body)
    )
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(tmp_path),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone_within(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    left = [p for p in pids if _alive(p)]
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


# -- 1. nested use ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_nested_pool_process_and_share_from_a_script(tmp_path, method):
    out = _script(
        tmp_path,
        """
        from suitkaise_nb.processing import Pool
        from tests.engine import habits

        if __name__ == "__main__":
            with Pool(2) as pool:
                print(pool.map(habits.inner_pool, [3, 4]))
                print(pool.map(habits.share_in_item, [1, 2]))
            print(habits.Outer().run())
        """,
        method,
    )
    assert out.splitlines() == [
        "[[0, 1, 4], [0, 1, 4, 9]]",
        "[2, 3]",
        "(42, [1, 4, 9], 5)",
    ]


@pytest.mark.kernel
def test_nested_use_in_a_kernel(tmp_path):
    from tests.notebook.kernel import execute, stdout

    nb = execute(
        [
            f"import sys; sys.path.insert(0, {ROOT!r})",
            "from suitkaise_nb.processing import Pool\nfrom tests.engine import habits\n"
            "with Pool(2) as pool:\n    print(pool.map(habits.inner_pool, [2]))\n"
            "print(habits.Outer().run())",
        ],
        tmp_path,
        timeout=90,
    )
    assert stdout(nb, 1).split() == ["[[0,", "1]]", "(42,", "[1,", "4,", "9],", "5)"]


# -- 2. pools left to the garbage collector ----------------------------------------------------


def test_pools_freed_by_the_collector_on_the_hub_thread_cost_nothing():
    """A Pool in a reference cycle collected on the hub thread must not stall the hub."""
    from suitkaise_nb._engine._launcher import Launcher

    hub = Launcher.get().hub
    slowest = 0.0
    for _ in range(30):
        t0 = time.monotonic()
        pool = Pool(2)
        pool.map(habits.square, range(4))
        pool.cycle = pool  # only the cyclic collector can free it
        del pool
        done = threading.Event()
        hub.call_soon(lambda: (gc.collect(), done.set()))  # collected on the hub thread
        assert done.wait(30)
        p = habits.Quick()
        assert p.run() == "value"  # the hub serves the next process at once
        slowest = max(slowest, time.monotonic() - t0)
    assert slowest < 5.0, f"an iteration took {slowest:.1f} s: the hub stalled"


def test_rerunning_a_pool_cell_costs_nothing():
    """``pool = Pool()`` run again: the dropped pool is freed by its reference count (no
    cycle), its workers killed without waiting."""
    gc.disable()
    try:
        pids: list[int] = []
        for _ in range(5):
            t0 = time.monotonic()
            pool = Pool(2)  # the previous one is dropped by this assignment
            assert pool.map(habits.square, [3]) == [9]
            assert time.monotonic() - t0 < 5.0
            pids += list(pool.model.workers)
        last = set(pool.model.workers)
        assert not _gone_within([p for p in pids if p not in last], 3.0)
        pool.close()
    finally:
        gc.enable()


# -- 3. a failure inside the hub fails its owner -----------------------------------------------


class FailsOnce:
    """Pickles, except in the first chunk (pickle, then dill, fail), so that the chunk fails
    as a whole while each item alone pickles."""

    failures_left = 2

    def __reduce__(self):
        if FailsOnce.failures_left > 0:
            FailsOnce.failures_left -= 1
            raise RuntimeError("the first picklings fail")
        return (int, (1,))


def test_a_chunk_that_fails_as_a_whole_fails_the_call():
    FailsOnce.failures_left = 2
    with Pool(2) as pool:
        with pytest.raises(ShippingError, match="pool item 0"):
            pool.map(habits.square, [FailsOnce(), 1, 2])  # no timeout: it must not hang
        assert pool.map(habits.square, [2]) == [4]


def test_an_exception_in_a_hub_callback_fails_the_call(monkeypatch):
    from suitkaise_nb._pool import _job

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the dispatcher")

    with Pool(2) as pool:
        monkeypatch.setattr(_job.Job, "chunk_size", broken)
        with pytest.raises(RuntimeError, match="a bug in the dispatcher"):
            pool.map(habits.square, range(10))
        monkeypatch.undo()
        assert pool.map(habits.square, [3]) == [9]


# -- 4. inputs are read in the caller's thread -------------------------------------------------


def test_a_slow_generator_does_not_stall_other_work():
    def slow():
        for i in range(20):
            time.sleep(0.1)
            yield i

    with Pool(2) as pool:
        fut = pool.map.background()(habits.square, slow())
        time.sleep(0.2)
        t0 = time.monotonic()
        assert habits.Sleeper(0.1).run() == 0.1
        took = time.monotonic() - t0
        assert fut.result(60) == [i * i for i in range(20)]
    assert took < 1.5, f"a 0.1 s process took {took:.2f} s while a generator fed a pool"


def test_a_generator_that_waits_on_another_process():
    talker = habits.Talker(5)
    talker.start()

    def asks():
        for _ in range(5):
            talker.tell("next")
            yield talker.listen(timeout=30)

    with Pool(2) as pool:
        assert pool.map(habits.square, asks()) == [0, 1, 4, 9, 16]
        assert list(pool.imap(habits.square, iter([5, 6]))) == [25, 36]
    talker.wait(30)


def test_a_thread_bound_iterator_is_read_in_the_callers_thread():
    db = sqlite3.connect(":memory:")
    db.execute("create table t (x integer)")
    db.executemany("insert into t values (?)", [(i,) for i in range(50)])
    with Pool(2) as pool:
        cursor = db.execute("select x from t order by x")
        assert pool.map(habits.square, (row[0] for row in cursor)) == [i * i for i in range(50)]
        cursor = db.execute("select x from t order by x")
        assert sorted(pool.unordered_imap(habits.square, (r[0] for r in cursor))) == [
            i * i for i in range(50)
        ]
    db.close()


def test_an_input_that_raises_fails_the_call_with_its_index():
    def bad():
        yield 1
        yield 2
        raise KeyError("broken input")

    with Pool(2) as pool:
        with pytest.raises(ProcessError, match="input iterable raised KeyError"):
            pool.map(habits.square, bad())


# -- 5. inherited descriptors ------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_the_fork_server_keeps_none_of_the_scripts_descriptors(tmp_path, method):
    out = _script(
        tmp_path,
        """
        import os, subprocess, sys
        r, w = os.pipe()
        cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        log = open("held.txt", "w")
        from suitkaise_nb.processing import Pool
        from tests.engine import habits

        if __name__ == "__main__":
            pool = Pool(2)
            print(pool.map(habits.square, [2]))
            os.close(w)
            print(repr(os.read(r, 10)))  # EOF: no other process holds the write end
            got, _ = cat.communicate(b"hello", timeout=20)
            print(got.decode())
            pool.close()
        """,
        method,
        timeout=60,
    )
    assert out.splitlines() == ["[4]", "b''", "hello"]


# -- 6. stop() racing the natural end ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_stop_racing_the_natural_end_1000_tries():
    failures = []
    for i in range(1000):
        p = habits.Quick()
        p.start()
        if i % 3 == 1:
            time.sleep(0.0005 * (i % 7))
        p.stop()
        try:
            assert p.result() == "value"
            assert p.process_state.value == "finished"
        except BaseException as exc:  # noqa: BLE001
            failures.append(f"{type(exc).__name__}: {exc}")
    assert not failures, failures[:5]


def test_stop_after_the_end_is_a_no_op():
    p = habits.Quick()
    assert p.run() == "value"
    p.stop()
    assert p.result() == "value"


# -- 7. descendants ----------------------------------------------------------------------------


def test_kill_takes_the_whole_tree():
    p = habits.Parent()
    p.start()
    pids = p.listen(timeout=30)
    assert len(pids) == 2 and all(_alive(x) for x in pids)
    p.kill()
    assert not _gone_within(pids, 3.0)


def test_a_pool_timeout_takes_the_whole_tree(tmp_path):
    path = str(tmp_path / "pids")
    with Pool(1) as pool:
        with pytest.raises(TimeoutError):
            pool.map.timeout(2)(habits.item_with_descendants, [path])
        pids = [int(x) for x in Path(path).read_text().split()]
        assert not _gone_within(pids[1:], 3.0)
        assert pool.map(habits.square, [3]) == [9]


def test_sigkill_of_the_parent_takes_every_tree(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys, time
            from tests.engine import habits
            from suitkaise_nb.processing import Pool, Share
            if __name__ == "__main__":
                p = habits.Parent()
                p.start()
                pids = p.listen(timeout=30)
                share = Share()
                pool = Pool(1)
                pids += [p.pid, share._sk.owner.spare.pid] + sorted(pool.model.workers)
                print(json.dumps(pids), flush=True)
                time.sleep(60)
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        pids = json.loads(proc.stdout.readline())
        assert all(_alive(x) for x in pids)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert not _gone_within(pids, 3.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


# -- 8. timeout values -------------------------------------------------------------------------


def test_nan_and_negative_timeouts_are_refused_and_inf_means_no_limit():
    p = habits.Sleeper(0.2)
    p.start()
    for bad in (math.nan, -1, -0.5):
        with pytest.raises(ValueError, match="timeout"):
            p.listen(bad)
        with pytest.raises(ValueError, match="timeout"):
            p.wait(bad)
        with pytest.raises(ValueError, match="timeout"):
            p.listen.timeout(3)(bad)
        with pytest.raises(ValueError, match="timeout"):
            p.wait.timeout(bad)
    assert p.wait(math.inf) is True
    assert p.listen(math.inf) is None  # ended: nothing more will come
    assert p.wait.timeout(math.inf)() is True
    assert p.result.timeout(math.inf)() == 0.2
    with Pool(1) as pool:
        with pytest.raises(ValueError, match="timeout"):
            pool.map.timeout(math.nan)
        assert pool.map.timeout(math.inf)(habits.square, [2]) == [4]
    pool = Pool(1)
    with pytest.raises(ValueError, match="timeout"):
        pool.close(timeout=math.nan)
    pool.close(timeout=math.inf)
    q = habits.Quick()
    with pytest.raises(ValueError, match="join_in"):
        q.process_config.join_in = math.nan
    with pytest.raises(ValueError, match="timeouts.run"):
        q.process_config.timeouts.run = -1
    q.process_config.timeouts.run = math.inf
    q.process_config.join_in = math.inf
    assert q.process_config.timeouts.run is None and q.process_config.join_in is None
    assert q.run() == "value"
