"""Pool, tested the way a user would use it: the map family with every modifier, lazy imap,
Skprocess targets, errors, timeouts, crashes, interrupts, closing and bad input.

Every test gets its own pool (``pool`` fixture, 2 workers) that is torn down in a finalizer, so
the autouse leak check of ``tests/conftest.py`` sees no child process left.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from suitkaise_nb.processing import (
    Pool,
    ProcessError,
    ProcessTimeoutError,
    RemoteError,
    RemoteTraceback,
    RunError,
    ShippingError,
)

from . import fns

pytestmark = pytest.mark.timeout(60)

METHODS = ["map", "unordered_map", "imap", "unordered_imap"]
ORDERED = {"map": True, "unordered_map": False, "imap": True, "unordered_imap": False}


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _shutdown(p: Pool) -> None:
    try:
        p.close(timeout=10)
    finally:
        p.terminate()


@pytest.fixture
def make_pool() -> Iterator[Callable[..., Pool]]:
    pools: list[Pool] = []

    def make(workers: int | None = 2) -> Pool:
        p = Pool(workers)
        pools.append(p)
        return p

    yield make
    for p in pools:
        _shutdown(p)


@pytest.fixture
def pool(make_pool: Callable[..., Pool]) -> Pool:
    return make_pool(2)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(cond: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}")
        time.sleep(0.01)


def wait_gone(pids: set[int] | list[int], timeout: float = 5.0, pool: Pool | None = None) -> None:
    """Wait until ``pids`` have exited (and, with ``pool``, left its model)."""
    wait_until(lambda: not any(_alive(p) for p in pids), timeout, f"pids {pids} to exit")
    if pool is not None:
        wait_until(lambda: not (worker_pids(pool) & set(pids)), timeout, "the model to drop them")


def worker_pids(p: Pool) -> set[int]:
    return set(p.model.workers)


def wait_full(p: Pool, n: int = 2, timeout: float = 10.0) -> set[int]:
    """Wait until the pool has ``n`` live workers again (after replacements)."""
    wait_until(lambda: len(worker_pids(p)) == n, timeout, f"{n} workers")
    return worker_pids(p)


def assert_usable(p: Pool, n: int = 2) -> None:
    assert p.map(fns.square, range(20)) == [x * x for x in range(20)]
    assert sorted(p.unordered_map(fns.square, range(5))) == [0, 1, 4, 9, 16]
    wait_full(p, n)


def run_method(p: Any, method: str, fn: Any, items: Any) -> list[Any]:
    """Call ``p.<method>(fn, items)`` and always return a list."""
    return list(getattr(p, method)(fn, items))


def call(p: Any, method: str, modifier: str, fn: Any, items: Any) -> list[Any]:
    """``p.<method>.<modifier>(...)(fn, items)``, resolved to a list."""
    m = getattr(p, method)
    if modifier == "plain":
        out = m(fn, items)
    elif modifier == "timeout":
        out = m.timeout(20)(fn, items)
    elif modifier == "background":
        fut = m.background()(fn, items)
        out = fut.result(20)
    elif modifier == "asynced":
        out = asyncio.run(m.asynced()(fn, items))
    elif modifier == "timeout+background":
        out = m.timeout(20).background()(fn, items).result(20)
    elif modifier == "asynced+timeout":
        out = asyncio.run(m.asynced().timeout(20)(fn, items))
    else:  # pragma: no cover
        raise ValueError(modifier)
    return list(out)


def settled(read: Callable[[], int], quiet: float = 0.3, timeout: float = 8.0) -> int:
    """The value of ``read()`` once it has not changed for ``quiet`` seconds (fails if it keeps
    changing for ``timeout`` seconds: the input is pulled without bound)."""
    deadline = time.monotonic() + timeout
    value = read()
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = read()
        if now != value:
            value, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= quiet:
            return value
    raise AssertionError(f"still pulling input after {timeout}s while the consumer is paused")


def counting(n: int | None = None) -> tuple[Iterator[int], Callable[[], int]]:
    """A generator over 0, 1, 2, ... (endless when ``n`` is None) and a pulled-count reader."""
    pulled = [0]

    def gen() -> Iterator[int]:
        source = itertools.count() if n is None else range(n)
        for i in source:
            pulled[0] += 1
            yield i

    return gen(), lambda: pulled[0]


# ------------------------------------------------------------------------------------------
# the map family, star() and the modifiers
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "modifier",
    ["plain", "timeout", "background", "asynced", "timeout+background", "asynced+timeout"],
)
@pytest.mark.parametrize("star", [False, True], ids=["items", "star"])
def test_every_method_with_every_modifier(pool: Pool, method: str, modifier: str, star: bool):
    if star:
        target: Any = pool.star()
        fn: Any = fns.add
        items: Any = [(i, 10 * i) for i in range(30)]
        expected = [11 * i for i in range(30)]
    else:
        target, fn, items, expected = pool, fns.square, list(range(30)), [i * i for i in range(30)]
    out = call(target, method, modifier, fn, items)
    if ORDERED[method]:
        assert out == expected
    else:
        assert sorted(out) == sorted(expected)


def test_map_family_over_many_tiny_items_and_empty_input(pool: Pool):
    n = 50_000
    assert pool.map(fns.square, range(n)) == [x * x for x in range(n)]
    assert sum(pool.unordered_imap(fns.square, range(n))) == sum(x * x for x in range(n))
    for method in METHODS:
        assert run_method(pool, method, fns.square, []) == []
        assert run_method(pool.star(), method, fns.add, iter([])) == []


def test_star_with_three_arguments_and_builtin_callables(pool: Pool):
    assert pool.star().map(fns.add3, [(1, 2, 3), (4, 5, 6)]) == [6, 15]
    assert pool.map(int, ["1", "2", "3"]) == [1, 2, 3]  # a class that is not an Skprocess
    assert pool.map(len, ["ab", "cde"]) == [2, 3]
    assert pool.star().map(pow, [(2, 10), (3, 2)]) == [1024, 9]


def test_unordered_results_come_in_completion_order(pool: Pool):
    items = [40, 1, 1, 1, 1, 1]  # item 0 takes 0.8 s, the rest 20 ms each
    out = pool.unordered_map(fns.variable, items)
    assert sorted(out) == sorted(items)
    assert out[0] == 1 and out.index(40) > 0
    first = next(iter(pool.unordered_imap(fns.variable, items)))
    assert first == 1
    assert pool.map(fns.variable, items) == items  # map keeps input order


def test_timeout_expiry_through_background_and_asynced(pool: Pool):
    fut = pool.map.timeout(0.3).background()(fns.sleep_then, [20, 20])
    with pytest.raises(TimeoutError):
        fut.result(10)

    async def go() -> Any:
        return await pool.star().unordered_map.asynced().timeout(0.3)(fns.sleep_then, [(20, 1)])

    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(go())
    assert time.monotonic() - t0 < 3
    assert_usable(pool)


def test_asynced_maps_run_concurrently_under_gather(pool: Pool):
    async def go() -> list[Any]:
        return await asyncio.gather(
            pool.map.asynced()(fns.sleep_square, range(4)),
            pool.map.asynced()(fns.sleep_square, range(4, 8)),
            pool.star().map.asynced()(fns.add, [(1, 1)]),
        )

    a, b, c = asyncio.run(go())
    assert a == [0, 1, 4, 9] and b == [16, 25, 36, 49] and c == [2]


def test_slow_items_spread_over_all_workers(make_pool: Callable[..., Pool]):
    p = make_pool(2)
    t0 = time.monotonic()
    pids = p.map(fns.pid_after, [0.6, 0.6])
    took = time.monotonic() - t0
    assert len(set(pids)) == 2, f"both items ran on one worker: {pids}"
    assert took < 1.15, f"two 0.6 s items on two workers took {took:.2f}s"


@pytest.mark.parametrize("method", ["map", "imap", "unordered_map"])
def test_first_chunks_hand_back_what_their_time_budget_did_not_reach(
    make_pool: Callable[..., Pool], method: str
):
    """Before a call knows what an item costs, its chunks may be large (tiny items then need
    no extra round trip), so a worker hands back the items it did not reach within one
    chunk's time. Slow items must still spread evenly, and every value arrive once, in order
    where the method promises order."""
    p = make_pool(2)
    wait_full(p)
    # 16 slow items first, then 48 instant ones: the first large chunk holds most of the
    # slow ones; handed back, they are shared out one by one
    got = run_method(p, "map", fns.pid_after, [0.05] * 16 + [0.0] * 48)
    assert len(got) == 64
    counts = {pid: got[:16].count(pid) for pid in set(got[:16])}
    assert len(counts) == 2 and min(counts.values()) >= 6, counts
    squares = run_method(p, method, fns.square, range(50_000))
    want = [x * x for x in range(50_000)]
    assert (sorted(squares) if method == "unordered_map" else squares) == want


def test_large_items_reuse_memfds_without_mixing_contents(make_pool: Callable[..., Pool]):
    """Items of 1 MB or more travel in memfds that the parent writes again once the worker
    reports it unmapped them: every round must still see its own bytes, and the number of
    memfds stays bounded instead of growing with the calls."""
    p = make_pool(2)
    for round_, n in enumerate((10, 120)):
        payload = [os.urandom(16) * (1 << 16) + bytes([round_, i]) for i in range(n)]
        want = [fns.digest(b) for b in payload]
        assert p.map(fns.digest, payload) == want
    caches = [s.conn.spill_cache for s in p._core.slots]
    created = sum(c.created for c in caches)
    assert created <= 65, created  # reused: 130 items went out in at most 65 memfds
    # and none is held unused for long once the pool is idle (trimmed TRIM_DELAY after a call)
    wait_until(lambda: all(not c.free for c in caches), what="the memfd caches to be trimmed")


def test_an_array_kept_by_the_worker_is_not_overwritten(make_pool: Callable[..., Pool]):
    """A numpy array arrives mapped on its memfd without a copy; if the worker keeps it, the
    memfd is never reported free, so later items cannot change the kept array."""
    np = pytest.importorskip("numpy")
    p = make_pool(1)
    arrays = [np.full(1 << 18, i, dtype=np.int64) for i in range(6)]  # 2 MB each
    want = [fns.digest(a.tobytes()) for a in arrays]
    assert p.map(fns.keep_array, arrays[:3]) == want[:3]
    assert p.map(fns.digest, [os.urandom(1 << 21) for _ in range(6)])  # reuse what is free
    assert p.map(fns.keep_array, arrays[3:]) == want[3:]
    assert p.map(fns.kept_digests, [None]) == [want]


# ------------------------------------------------------------------------------------------
# lazy input
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["imap", "unordered_imap"])
def test_imap_endless_generator_consumer_stops_early(pool: Pool, method: str):
    gen, pulled = counting()
    got = []
    for value in getattr(pool, method)(fns.square, gen):
        got.append(value)
        if len(got) == 10:
            break
    if method == "imap":
        assert got == [x * x for x in range(10)]
    else:
        assert len(set(got)) == 10
    # a chunk being pulled when the consumer stopped may complete; then pulling stops
    settled(pulled, quiet=0.4, timeout=3.0)
    assert_usable(pool)


@pytest.mark.parametrize("method", ["imap", "unordered_imap"])
def test_imap_pulls_a_bounded_number_of_items_ahead(pool: Pool, method: str):
    # slow items: only a handful may be pulled ahead of a paused consumer
    gen, pulled = counting()
    it = iter(getattr(pool, method)(fns.sleep_square, gen))
    first = [next(it) for _ in range(3)]
    assert len(first) == 3
    ahead = settled(pulled)
    assert ahead < 3 + 100, f"{ahead} items pulled for 3 consumed"
    # consuming more pulls more, and it settles again
    for _ in range(20):
        next(it)
    assert 23 <= settled(pulled) < 23 + 100
    it.close()  # type: ignore[attr-defined]

    # tiny items: the window is larger, but it is bounded too
    gen, pulled = counting()
    it = iter(getattr(pool, method)(fns.square, gen))
    for _ in range(5):
        next(it)
    assert settled(pulled) < 1_000_000
    it.close()  # type: ignore[attr-defined]
    assert_usable(pool)


def test_imap_of_large_items_keeps_memory_flat(pool: Pool):
    """1 MB items with a cheap function and a paused consumer: the pull-ahead window must be
    bounded in bytes, not only in (cheap) items."""
    pulled = [0]

    def big() -> Iterator[bytes]:
        while True:
            pulled[0] += 1
            yield b"x" * 1_000_000

    it = pool.imap(fns.length, big())
    assert [next(it) for _ in range(3)] == [1_000_000] * 3
    ahead = settled(lambda: pulled[0], timeout=5.0)
    assert ahead <= 200, f"{ahead} MB pulled ahead of a consumer that took 3 items"
    it.close()


def test_imap_input_is_consumed_lazily_not_up_front(pool: Pool):
    gen, pulled = counting(100_000)
    it = pool.imap(fns.sleep_square, gen)
    assert next(it) == 0
    assert pulled() < 100_000
    it.close()


def test_input_iterable_that_raises(pool: Pool):
    def bad_input() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("disk on fire")

    with pytest.raises(ProcessError, match="disk on fire"):
        pool.map(fns.square, bad_input())
    with pytest.raises(ProcessError, match="disk on fire"):
        list(pool.imap(fns.square, bad_input()))
    assert_usable(pool)


def test_a_pool_iterator_as_input_of_a_pool_call_works(pool: Pool):
    # the input is read by the caller's thread, never by the thread that delivers results
    assert list(pool.imap(fns.square, pool.imap(fns.square, range(5)))) == [0, 1, 16, 81, 256]
    assert pool.map(fns.square, (pool.map(fns.square, [x])[0] for x in range(3))) == [0, 1, 16]
    chained = pool.imap(fns.square, pool.imap(fns.square, itertools.count()))
    assert [next(chained) for _ in range(4)] == [0, 1, 16, 81]
    del chained  # abandoned half-read: the pool stays usable
    assert pool.map(fns.square, list(pool.imap(fns.square, range(4)))) == [0, 1, 16, 81]
    assert_usable(pool)


# ------------------------------------------------------------------------------------------
# Skprocess classes as the target
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_skprocess_class_target(pool: Pool, method: str):
    out = run_method(pool, method, fns.Doubler, range(6))
    assert sorted(out) == [0, 2, 4, 6, 8, 10]
    out = run_method(pool.star(), method, fns.Summer, [(1, 2), (3, 4)])
    assert sorted(out) == [9, 21]


def test_skprocess_lives_are_honoured(pool: Pool):
    assert pool.map(fns.Flaky, range(3)) == [(0, 3), (1, 3), (2, 3)]
    with pytest.raises(RunError) as info:
        pool.map(fns.FlakyOneLife, [7])
    err = info.value
    assert isinstance(err, RuntimeError) and isinstance(err, ProcessError)
    assert "attempt 1" in str(err) and "pool item 0" in str(err)
    assert_usable(pool)


def test_skprocess_timeouts_and_error_handler_are_honoured(pool: Pool):
    t0 = time.monotonic()
    out = pool.map(fns.SlowRun, [0, 1, 2])
    assert time.monotonic() - t0 < 3, "section timeouts did not interrupt the run"
    assert out[0] == 0
    # item 1 spins in pure Python, item 2 blocks in sleep: both are interrupted
    assert out[1] == ("timeout", "ProcessTimeoutError", "__run__", 1)
    assert out[2] == ("timeout", "ProcessTimeoutError", "__run__", 2)
    assert pool.map(fns.Handled, range(4)) == [0, 1, "handled RunError", 3]


def test_skprocess_timeout_without_handler_raises(pool: Pool):
    with pytest.raises(ProcessTimeoutError) as info:
        pool.map(fns.SlowRunNoHandler, [5])
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, RuntimeError)
    with pytest.raises(RunError, match="boom"):
        pool.map(fns.Failing, range(4))
    assert_usable(pool)


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------


def test_worker_error_is_original_type_and_runtimeerror(pool: Pool):
    before = worker_pids(pool)
    with pytest.raises(ValueError) as info:
        pool.map(fns.fail_on_3, [1, 2, 3, 4, 5])
    err = info.value
    assert isinstance(err, RuntimeError) and isinstance(err, RemoteError)
    text = str(err)
    assert "Cannot process 3" in text
    assert "pool item 2" in text and ": 3)" in text  # index 2 in the input, value 3
    assert err.item_index == 2  # type: ignore[attr-defined]
    assert "fail_on_3" in err.remote_traceback  # type: ignore[attr-defined]
    assert "ValueError: Cannot process 3" in err.remote_traceback  # type: ignore[attr-defined]
    assert isinstance(err.__cause__, RemoteTraceback)
    # the seed's way: except RuntimeError
    try:
        pool.map(fns.fail_on_3, [3])
    except RuntimeError as e:
        assert "Cannot process 3" in str(e)
    # an error is not a crash: the same workers go on
    assert pool.map(fns.fail_on_3, [1, 2, 4, 5]) == [2, 4, 8, 10]
    assert worker_pids(pool) == before


def test_error_keeps_custom_type_and_attributes(pool: Pool):
    with pytest.raises(fns.CustomError) as info:
        pool.map(fns.custom_fail, range(4))
    assert info.value.code == 42 and info.value.detail == "custom detail"
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(KeyError):
        pool.map(fns.key_error_on_2, range(4))
    # an exception whose __init__ cannot be called with its .args (keyword-only)
    with pytest.raises(fns.KwOnlyError) as kw:
        pool.map(fns.kw_only_fail, range(3))
    assert kw.value.code == 1
    assert isinstance(kw.value, RuntimeError)
    assert "pool item 1" in str(kw.value)


def test_error_names_the_item_with_a_short_repr(pool: Pool):
    with pytest.raises(ValueError) as info:
        pool.map(fns.fail_on_bad, ["ok", "fine", "bad-item"])
    assert "pool item 2: 'bad-item'" in str(info.value)
    with pytest.raises(ValueError) as info:
        pool.map(fns.fail_on_bad, [[1], list(range(10_000))])
    text = str(info.value)
    assert "pool item 1" in text and len(text) < 300, text


@pytest.mark.parametrize("method", METHODS)
def test_error_in_every_method_and_star(pool: Pool, method: str):
    with pytest.raises(ValueError, match=r"Cannot process 3 \(pool item 3: 3\)"):
        run_method(pool, method, fns.slow_fail_on_3, range(8))
    with pytest.raises(RuntimeError, match="pool item 1"):
        run_method(pool.star(), method, fns.add, [(1, 2), (1, "x"), (3, 4)])
    assert_usable(pool)


def test_imap_yields_the_items_before_the_error(pool: Pool):
    got = []
    with pytest.raises(ValueError):
        for value in pool.imap(fns.slow_fail_on_3, range(8)):
            got.append(value)
    assert got == [0, 2, 4]


def test_error_cancels_the_rest_of_the_call(pool: Pool):
    items = [3] + [0.3] * 30  # item 0 fails at once; the rest would take 4.5 s on 2 workers
    t0 = time.monotonic()
    with pytest.raises(ValueError):
        pool.map(fns.slow_fail_on_3, items)
    assert time.monotonic() - t0 < 2.5  # far below the 4.5 s the rest would take
    t1 = time.monotonic()
    assert pool.map(fns.square, [1, 2, 3]) == [1, 4, 9]
    assert time.monotonic() - t1 < 2.5, "the next call waited for the cancelled items"


# ------------------------------------------------------------------------------------------
# timeouts
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["map", "unordered_map"])
def test_map_timeout_bounds_the_whole_call(pool: Pool, method: str):
    # six 0.25 s items on two workers: 0.75 s in all, no item near the limit
    assert sorted(getattr(pool, method).timeout(5)(fns.sleep_then, [0.25] * 6)) == [0.25] * 6
    with pytest.raises(TimeoutError):
        getattr(pool, method).timeout(0.5)(fns.sleep_then, [0.25] * 12)
    assert_usable(pool)

    before = worker_pids(pool)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="did not finish within"):
        getattr(pool, method).timeout(0.5)(fns.sleep_then, [30, 30])
    assert time.monotonic() - t0 < 3.0
    wait_gone(before, pool=pool)  # both workers ran an overdue item: killed
    after = wait_full(pool)
    assert not (after & before)
    assert_usable(pool)


@pytest.mark.parametrize("method", ["imap", "unordered_imap"])
def test_imap_timeout_bounds_each_item(pool: Pool, method: str):
    # 0.3 s per item, 2.4 s of work in all: more than the limit, but every item comes in time
    # (the limit is generous: a loaded CI machine must not make this fail)
    out = list(getattr(pool, method).timeout(2.0)(fns.sleep_then, [0.3] * 8))
    assert out == [0.3] * 8

    before = worker_pids(pool)
    got = []
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="within 0.5 seconds"):
        for value in getattr(pool, method).timeout(0.5)(fns.sleep_then, [0.05, 30, 30]):
            got.append(value)
    assert time.monotonic() - t0 < 6.0  # a hang guard, not a speed test
    assert got == [0.05]
    wait_gone(before, pool=pool)
    assert not (wait_full(pool) & before)
    assert_usable(pool)


def test_timeout_kills_pure_python_loops(pool: Pool):
    before = worker_pids(pool)
    with pytest.raises(TimeoutError):
        pool.map.timeout(0.3)(fns.spin, [20, 20])
    wait_gone(before)
    assert_usable(pool)


# ------------------------------------------------------------------------------------------
# the crash table
# ------------------------------------------------------------------------------------------


def _sigkill_from_outside(p: Pool, tmp_path: Any) -> Any:
    """Run hang_and_report over 0..5; when item 3 blocks, SIGKILL its worker from outside."""
    path = tmp_path / "pid"
    items = [(x, str(path)) for x in range(6)]
    fut = p.star().map.background()(fns.hang_and_report, items)
    wait_until(lambda: path.exists() and path.read_text() != "", 10, "item 3 to start")
    pid = int(path.read_text())
    info = p.model.workers[pid]
    assert info.state == "busy"
    os.kill(pid, signal.SIGKILL)
    return fut.result(10)


CRASHES = {
    "exception": (lambda p, tmp: p.map(fns.fail_on_3, range(6)), ValueError, ["Cannot process"]),
    "os._exit": (lambda p, tmp: p.map(fns.exit_on_3, range(6)), RuntimeError, ["exit code 7"]),
    "segfault": (lambda p, tmp: p.map(fns.segfault_on_3, range(6)), RuntimeError, ["SIGSEGV"]),
    "sigkill": (_sigkill_from_outside, RuntimeError, ["SIGKILL"]),
    "unpicklable item": (
        lambda p, tmp: p.map(fns.identity, [0, 1, 2, (x for x in ()), 4]),
        ShippingError,
        ["generator"],
    ),
    "unpicklable result": (
        lambda p, tmp: p.map(fns.return_generator, [0, 1, 3, 2, 4]),
        RuntimeError,
        ["generator", "could not be sent back"],
    ),
}
CRASH_INDEX = {
    "exception": 3,
    "os._exit": 3,
    "segfault": 3,
    "sigkill": 3,
    "unpicklable item": 3,
    "unpicklable result": 3,
}
DIES = {"os._exit", "segfault", "sigkill"}


@pytest.mark.parametrize("case", list(CRASHES))
def test_crash_table(pool: Pool, case: str, tmp_path: Any):
    run, exc_type, words = CRASHES[case]
    before = worker_pids(pool)
    t0 = time.monotonic()
    with pytest.raises(exc_type) as info:
        run(pool, tmp_path)
    assert time.monotonic() - t0 < 15, "took too long to report"
    text = str(info.value)
    index = CRASH_INDEX[case]
    assert f"pool item {index}" in text, text
    for w in words:
        assert w in text, text
    if case in DIES:
        pid = info.value.pid  # type: ignore[attr-defined]
        assert pid in before and f"pid {pid}" in text, text
        wait_gone([pid], pool=pool)
        assert info.value.item_index == index  # type: ignore[attr-defined]
    assert_usable(pool)
    if case in DIES:
        assert len(worker_pids(pool) - before) == 1  # exactly the dead worker was replaced
    else:
        assert worker_pids(pool) == before


def test_crash_in_unordered_imap_and_skprocess_target(pool: Pool):
    with pytest.raises(RuntimeError, match=r"pool item 3 \(3\).*exit code 7"):
        list(pool.unordered_imap(fns.exit_on_3, range(6)))
    assert_usable(pool)


def test_unpicklable_function(pool: Pool):
    numbers = (n for n in range(10))

    def uses_generator(x: int) -> int:
        return x + next(numbers)

    with pytest.raises(TypeError, match="generator"):
        pool.map(uses_generator, [1, 2])
    assert_usable(pool)


# ------------------------------------------------------------------------------------------
# KeyboardInterrupt
# ------------------------------------------------------------------------------------------


def _interrupt_after(delay: float) -> threading.Thread:
    main = threading.main_thread().ident
    assert main is not None

    def fire() -> None:
        time.sleep(delay)
        signal.pthread_kill(main, signal.SIGINT)

    t = threading.Thread(target=fire, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("method", METHODS)
def test_keyboard_interrupt_during_a_call(pool: Pool, method: str):
    assert threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = worker_pids(pool)
        timer = _interrupt_after(0.4)
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_method(pool, method, fns.sleep_then, [30, 30, 30, 30])
        took = time.monotonic() - t0
        timer.join()
    finally:
        signal.signal(signal.SIGINT, old)
    assert took < 0.4 + 2.0, f"control came back after {took:.2f}s"
    wait_gone(before, pool=pool)  # the in-flight work was killed
    assert not (wait_full(pool) & before)
    assert_usable(pool)


def test_keyboard_interrupt_during_pure_python_work(pool: Pool):
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        timer = _interrupt_after(0.3)
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            pool.map(fns.spin, [30] * 4)
        took = time.monotonic() - t0
        timer.join()
    finally:
        signal.signal(signal.SIGINT, old)
    assert took < 0.3 + 2.0
    assert_usable(pool)


# ------------------------------------------------------------------------------------------
# closing
# ------------------------------------------------------------------------------------------


def test_close_waits_for_running_calls(make_pool: Callable[..., Pool]):
    p = make_pool(2)
    pids = worker_pids(p)
    fut = p.map.background()(fns.sleep_then, [0.5, 0.5, 0.5])
    time.sleep(0.1)
    t0 = time.monotonic()
    p.close()
    assert time.monotonic() - t0 >= 0.3, "close() did not wait"
    assert fut.result(1) == [0.5, 0.5, 0.5]
    assert not p.is_open
    wait_gone(pids)
    with pytest.raises(ProcessError, match="closed"):
        p.map(fns.square, [1])
    p.close()  # idempotent
    p.terminate()


@pytest.mark.parametrize("fn", [fns.square, fns.sleep_square], ids=["tiny", "slow"])
def test_close_with_a_half_read_imap_does_not_hang(make_pool: Callable[..., Pool], fn: Any):
    """``it = pool.imap(...)`` read partly inside ``with Pool()``: leaving the block must not
    wait forever for a consumer that is this very thread."""
    p = make_pool(2)
    pids = worker_pids(p)
    gen, pulled = counting()  # endless
    t0 = time.monotonic()
    with p:
        it = p.imap(fn, gen)
        assert next(it) == 0
    assert time.monotonic() - t0 < 15
    wait_gone(pids)
    # what was computed can still be read, then the iterator says why it ended
    got = 1
    with pytest.raises(ProcessError, match="closed"):
        for _ in it:
            got += 1
    assert 1 <= got <= pulled()


def test_close_waits_for_an_imap_read_by_another_thread(make_pool: Callable[..., Pool]):
    p = make_pool(2)
    got: list[int] = []

    def consume() -> None:
        for v in p.star().imap(fns.sleep_then, [(0.005, i) for i in range(200)]):
            got.append(v)
            time.sleep(0.01)  # a slow reader: the pull-ahead window fills up and waits

    reader = threading.Thread(target=consume)
    reader.start()
    time.sleep(0.2)
    p.close()
    reader.join(20)
    assert got == list(range(200))


def test_terminate_kills_running_calls(make_pool: Callable[..., Pool]):
    p = make_pool(2)
    pids = worker_pids(p)
    fut = p.map.background()(fns.sleep_then, [30, 30])
    gen_fut = p.imap.background()(fns.sleep_then, [30])
    time.sleep(0.2)
    t0 = time.monotonic()
    p.terminate()
    assert time.monotonic() - t0 < 2
    with pytest.raises(ProcessError, match="terminated"):
        fut.result(5)
    with pytest.raises(ProcessError):
        list(gen_fut.result(5))
    wait_gone(pids)
    assert not p.is_open
    with pytest.raises(ProcessError):
        p.map(fns.square, [1])
    p.terminate()
    p.close()


def test_context_manager(make_pool: Callable[..., Pool]):
    with Pool(2) as p:
        pids = worker_pids(p)
        assert p.map(fns.square, [1, 2]) == [1, 4]
    assert not p.is_open
    wait_gone(pids)

    with pytest.raises(ZeroDivisionError), Pool(2) as p2:
        pids = worker_pids(p2)
        p2.map.background()(fns.sleep_then, [30])
        time.sleep(0.1)
        raise ZeroDivisionError  # leaving with an exception terminates: no 30 s wait
    wait_gone(pids)


def test_an_abandoned_pool_is_cleaned_up():
    p = Pool(2)
    pids = worker_pids(p)
    assert p.map(fns.square, [3]) == [9]
    del p
    import gc

    gc.collect()
    wait_gone(pids)


EXIT_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, {root!r})
from suitkaise_nb.processing import Pool
from tests.pool import fns
pool = Pool(2)
fut = pool.map.background()(fns.sleep_then, [30, 30])
it = pool.imap(fns.sleep_then, [30, 30])
time.sleep(0.3)
print(json.dumps(sorted(pool.model.workers)), flush=True)
sys.exit(0)  # the pool is busy and never closed
"""


def test_script_exiting_with_a_busy_unclosed_pool(tmp_path: Any):
    import json
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parents[2])
    script = tmp_path / "busy.py"
    script.write_text(EXIT_SCRIPT.format(root=root))
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - t0 < 10, "exit waited for the pool's work"
    pids = json.loads(out.stdout.splitlines()[0])
    assert len(pids) == 2
    wait_gone(pids, timeout=3)


# ------------------------------------------------------------------------------------------
# concurrency, sizes, bad input
# ------------------------------------------------------------------------------------------


def test_concurrent_calls_from_several_threads(pool: Pool):
    results: dict[int, Any] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            items = list(range(k * 100, k * 100 + 100))
            if k % 3 == 0:
                results[k] = pool.map(fns.square, items)
            elif k % 3 == 1:
                results[k] = list(pool.imap(fns.sleep_square, items[:10]))
            else:
                results[k] = sorted(pool.star().unordered_map(fns.add, [(x, x) for x in items]))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    for k in range(6):
        items = list(range(k * 100, k * 100 + 100))
        if k % 3 == 0:
            assert results[k] == [x * x for x in items]
        elif k % 3 == 1:
            assert results[k] == [x * x for x in items[:10]]
        else:
            assert results[k] == [2 * x for x in items]


def test_an_error_in_one_call_does_not_disturb_a_concurrent_one(pool: Pool):
    slow = pool.map.background()(fns.sleep_square, range(20))
    with pytest.raises(ValueError):
        pool.map(fns.slow_fail_on_3, range(10))
    assert slow.result(20) == [x * x for x in range(20)]


def test_workers_none_is_cpu_count(make_pool: Callable[..., Pool]):
    p = make_pool(None)
    n = os.cpu_count()
    assert p.workers == n
    assert len(worker_pids(p)) == n
    assert p.map(fns.square, range(10)) == [x * x for x in range(10)]


def test_single_worker(make_pool: Callable[..., Pool]):
    p = make_pool(1)
    assert p.map(fns.square, range(10)) == [x * x for x in range(10)]
    assert len(set(p.map(fns.pid_after, [0.0] * 4))) == 1


@pytest.mark.parametrize("workers", [0, -1, 1.5, "2", True])
def test_bad_worker_counts(workers: Any):
    with pytest.raises((ValueError, TypeError), match="workers"):
        Pool(workers)


def test_bad_targets_and_items(pool: Pool):
    for fn in (5, None, "square"):
        for method in METHODS:
            with pytest.raises(TypeError, match="function or an Skprocess"):
                run_method(pool, method, fn, [1])
    with pytest.raises(TypeError, match="class"):
        pool.map(fns.Doubler(1), [1])
    for items in (5, None, 3.5):
        for method in METHODS:
            with pytest.raises(TypeError, match="iterable"):
                run_method(pool, method, fns.square, items)
    # star() with items that are not tuples: a clear error naming the item
    with pytest.raises(TypeError, match="pool item 1"):
        pool.star().map(fns.add, [(1, 2), 5])
    assert_usable(pool)


# ------------------------------------------------------------------------------------------
# functions typed into a notebook cell: shipped by value, and re-shipped when they change
# ------------------------------------------------------------------------------------------


def _cell(code: str) -> dict[str, Any]:
    """Run ``code`` as a notebook cell does: in a namespace whose ``__name__`` is __main__."""
    ns: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(code, "<cell>", "exec"), ns)
    return ns


def test_a_cell_function_sees_what_its_globals_hold_at_each_call(pool: Pool):
    from suitkaise_nb._engine import _serial

    ns = _cell(
        "import math\n"
        "K = 2\n"
        "ITEMS = [10]\n"
        "def helper(x):\n    return x + 1\n"
        "def f(x):\n    return helper(x) * K + math.floor(0.5)\n"
        "def g(x):\n    return x + ITEMS[0]\n"
    )
    f, g = ns["f"], ns["g"]
    assert pool.map(f, [1, 2]) == [4, 6]
    # nothing changed: the same pickle is reused (no second dill pass)
    assert _serial.dumps_function(f) is _serial.dumps_function(f)
    ns["K"] = 3  # a rebound global
    assert pool.map(f, [1]) == [6]
    exec("def helper(x):\n    return x + 100\n", ns)  # a helper redefined in another cell
    assert pool.map(f, [1]) == [303]
    # a mutable global can change in place: never reused, always the current contents
    assert pool.map(g, [1]) == [11]
    ns["ITEMS"][0] = 20
    assert pool.map(g, [1]) == [21]
    assert _serial.dumps_function(g) is not _serial.dumps_function(g)
