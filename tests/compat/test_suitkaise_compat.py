"""Code written for suitkaise 0.4.14 runs unchanged (issue 19): one test per point, through the
public API. docs/compat.md lists what matches and the few differences kept on purpose."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import threading
import time
import warnings

import pytest

from suitkaise_nb import timing
from suitkaise_nb.processing import (
    Pipe,
    Pool,
    ProcessError,
    ResultTimeoutError,
    Share,
    ShippingError,
    Skprocess,
    autoreconnect,
)
from suitkaise_nb.timing import Sktimer, TimerStats, TimeThis, timethis

from ..pool import fns
from . import procs

pytestmark = pytest.mark.timeout(60)


# 1. imap with .background() / .asynced() gives a list
def test_imap_background_and_asynced_give_lists():
    with Pool(2) as pool:
        fut = pool.imap.background()(fns.square, range(5))
        assert fut.result(30) == [0, 1, 4, 9, 16]
        fut = pool.unordered_imap.background()(fns.square, range(5))
        got = fut.result(30)
        assert isinstance(got, list) and sorted(got) == [0, 1, 4, 9, 16]
        got = asyncio.run(pool.imap.asynced()(fns.square, range(3)))
        assert got == [0, 1, 4]
        got = asyncio.run(pool.star().unordered_imap.asynced()(fns.add, [(1, 2), (3, 4)]))
        assert sorted(got) == [3, 7]
        assert list(pool.imap(fns.square, range(3))) == [0, 1, 4]  # plain: still an iterator


# 2. threading primitives arrive as fresh objects
def test_threading_primitives_arrive_fresh_in_the_child():
    seen = procs.HoldsPrimitives().run()
    assert seen == {
        "lock": ("lock", True),
        "rlock": "RLock",
        "event": ("Event", False),
        "cond": "Condition",
        "sem": "Semaphore",
        "bsem": "BoundedSemaphore",
        "queue": ("Queue", True, 5),
    }
    lock = threading.Lock()
    lock.acquire()
    with Pool(1) as pool:
        assert pool.map(procs.lock_item, [(1, lock)]) == [True]


def test_what_still_cannot_travel_keeps_its_clear_error(tmp_path):
    class HoldsFile(Skprocess):
        def __init__(self, path):
            self.log = open(path, "w")  # noqa: SIM115

        def __run__(self):
            pass

    p = HoldsFile(tmp_path / "f.txt")
    try:
        with pytest.raises(ShippingError, match=r"HoldsFile\.log"):
            p.start()
    finally:
        p.log.close()
    share = Share()
    try:
        with pytest.raises(ShippingError, match=r"share\.lock"):
            share.lock = threading.Lock()  # a Share would guard nothing with a copied lock
    finally:
        share.exit()


# 3. a Pipe point handed to a plain multiprocessing.Process
@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_pipe_point_in_a_multiprocessing_process(method):
    anchor, point = Pipe.pair()
    ctx = multiprocessing.get_context(method)
    p = ctx.Process(target=procs.pipe_child, args=(point, 21))
    p.start()
    point.close()
    try:
        assert anchor.recv() == 42
    finally:
        p.join(30)
        anchor.close()
    assert p.exitcode == 0


# 4. sleep returns the time after sleeping
def test_sleep_returns_the_current_time():
    before = time.time()
    after = timing.sleep(0.01)
    assert isinstance(after, float) and before + 0.009 <= after <= time.time()
    got = asyncio.run(timing.sleep.asynced()(0.01))
    assert isinstance(got, float) and got >= before


# 5. a call or block that raises is not recorded
def test_timethis_and_timethis_block_skip_failures():
    @timethis()
    def flaky(fail):
        if fail:
            raise ValueError("no")
        return 1

    flaky(False)
    with pytest.raises(ValueError):
        flaky(True)
    assert flaky.timer.num_times == 1
    t = Sktimer()
    with TimeThis(t):
        pass
    with pytest.raises(KeyError), TimeThis(t):
        raise KeyError("x")
    assert t.num_times == 1

    @timethis()
    async def aflaky(fail):
        if fail:
            raise ValueError("no")

    asyncio.run(aflaky(False))
    with pytest.raises(ValueError):
        asyncio.run(aflaky(True))
    assert aflaky.timer.num_times == 1


# 6. timing methods through a Share are refused, reads and add_time work
def test_timer_in_a_share_refuses_timing_methods():
    share = Share()
    try:
        share.timer = Sktimer()
        for method in ("start", "stop", "pause", "resume", "lap", "discard"):
            with pytest.raises(TypeError, match="would measure time in the Share's server"):
                getattr(share.timer, method)()
        share.timer.add_time(0.5)
        share.timer.add_time(1.5)
        assert share.timer.num_times == 2 and share.timer.mean == 1.0
        assert share.timer.get_statistics().num_times == 2
    finally:
        share.exit()


# 7. Sktimer edges
def test_sktimer_edges():
    t = Sktimer()
    assert t.get_statistics() is None and t.get_stats() is None
    assert t.most_recent_index is None
    t.add_time(0.25)
    assert t.stdev is None and t.variance is None  # fewer than two samples
    assert t.get_time(0) == 0.25 and t.get_time(1) is None and t.get_time(-1) is None
    assert t.most_recent_index == 0
    t.add_time(0.75)
    assert t.most_recent_index == 1
    assert math.isclose(t.variance, 0.125) and math.isclose(t.stdev, math.sqrt(0.125))
    stats = t.get_stats()
    assert isinstance(stats, TimerStats)
    assert stats.get_time(0) == 0.25 and stats.get_time(1) == 0.75
    assert stats.get_time(2) is None and stats.get_time(-1) is None
    assert stats.most_recent_index == 1


# 8. tell/listen before start are RuntimeErrors; wait before start is True
def test_before_start():
    p = procs.Fails()
    with pytest.raises(RuntimeError) as info:
        p.tell("x")
    assert isinstance(info.value, ProcessError)
    with pytest.raises(RuntimeError):
        p.listen(0.1)
    assert p.wait() is True
    assert p.wait(0.1) is True


# 9. a stopped Share warns with a RuntimeWarning
def test_stopped_share_warns_runtime_warning():
    share = Share()
    share.x = 1
    share.stop()
    try:
        with pytest.warns(RuntimeWarning, match="Share is stopped"):
            assert share.x == 1
    finally:
        share.exit()


# 10. a value a Share refuses is also a ValueError
def test_refused_share_value_is_a_value_error():
    share = Share()
    try:
        with pytest.raises(ValueError) as info:
            share.lock = threading.Lock()
        assert isinstance(info.value, ShippingError)
    finally:
        share.exit()


# 11. repr(share)
def test_share_repr():
    share = Share()
    try:
        share.counter = 0
        share.log = []
        assert repr(share) == "Share(status=running, objects=['counter', 'log'])"
        share.stop()
        assert repr(share) == "Share(status=stopped, objects=['counter', 'log'])"
    finally:
        share.exit()


# 12. @autoreconnect with an unknown type key warns, the class stays usable
def test_autoreconnect_unknown_key_warns_at_definition():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        @autoreconnect(**{"nosuchdb.Connection": {"*": "pw"}})
        class Worker(Skprocess):
            def __init__(self):
                self.process_config.runs = 1

            def __run__(self):
                pass

            def __result__(self):
                return "ran"

    msgs = [str(w.message) for w in caught]
    assert any("nosuchdb.Connection" in m and "sqlite3.Connection" in m for m in msgs), msgs
    assert Worker().run() == "ran"


# kept on purpose (the seed contract)
def test_wait_modifiers_and_error_handler_value_are_kept():
    p = procs.Fails()
    p.start()
    assert p.wait.timeout(30)() is True
    assert p.wait.background()().result(30) is True
    assert p.result() == "handled"  # __error__'s value
    slow = fns_sleeper()
    slow.start()
    with pytest.raises(ResultTimeoutError):
        slow.wait.timeout(0.1)()
    slow.kill()


def fns_sleeper():
    from tests.engine.habits import Sleeper

    return Sleeper(30)
