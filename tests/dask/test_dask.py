"""Pool on a Dask cluster (``Pool(client=...)``): the same API and results as the local backend.

One ``LocalCluster`` on 127.0.0.1 (2 worker processes, 1 thread each) serves the whole module;
every test gets its own Pool on it, and the pool fixture checks, when the test ends, that none of
our tasks (keys ``sknb-...``) is left on the scheduler or on a worker.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from suitkaise_nb._pool._job import DEPTH
from suitkaise_nb._share._share import _client
from suitkaise_nb.processing import (
    Pool,
    ProcessTimeoutError,
    RemoteError,
    RemoteTraceback,
    RunError,
    Share,
    ShareError,
    WorkerDiedError,
)

from ..pool import fns as pfns
from ..pool.test_pool import call, counting, settled
from . import fns

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.timeout(120)

METHODS = ["map", "unordered_map", "imap", "unordered_imap"]
ORDERED = {"map": True, "unordered_map": False, "imap": True, "unordered_imap": False}
MODIFIERS = ["plain", "timeout", "background", "asynced", "timeout+background", "asynced+timeout"]


# ------------------------------------------------------------------------------------------
# the cluster and helpers
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    c = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def client(cluster: Any) -> Iterator[Any]:
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()


def _sched_keys(dask_scheduler: Any) -> list[str]:
    return [str(k) for k in dask_scheduler.tasks if str(k).startswith("sknb-")]


def _worker_keys(dask_worker: Any) -> list[str]:
    tasks = dask_worker.state.tasks
    return [f"{k}:{ts.state}" for k, ts in tasks.items() if str(k).startswith("sknb-")]


def our_tasks(client: Any) -> tuple[list[str], dict[str, list[str]]]:
    """Our task keys known to the scheduler, and to each worker (non-empty entries only)."""
    sched = client.run_on_scheduler(_sched_keys)
    workers = {a: ks for a, ks in client.run(_worker_keys).items() if ks}
    return sched, workers


def wait_until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}")
        time.sleep(0.05)


def worker_pids(client: Any) -> set[int]:
    try:
        pids = client.run(os.getpid, on_error="return").values()
    except Exception:
        return set()
    return {pid for pid in pids if isinstance(pid, int)}


def wait_quiet(client: Any, timeout: float = 10.0) -> None:
    """No task of ours left anywhere on the cluster (and both workers are up)."""
    client.wait_for_workers(2, timeout=60)
    try:
        wait_until(lambda: our_tasks(client) == ([], {}), timeout, "our tasks to be released")
    except AssertionError:
        raise AssertionError(f"our tasks are still on the cluster: {our_tasks(client)}") from None


@pytest.fixture
def pool(client: Any) -> Iterator[Pool]:
    p = Pool(client=client)
    try:
        yield p
    finally:
        p.terminate()
        wait_quiet(client)


def in_flight(p: Pool) -> int:
    return sum(len(s.futures) for s in p._core.slots)


def assert_usable(p: Pool) -> None:
    assert p.map(pfns.square, range(20)) == [x * x for x in range(20)]
    assert sorted(p.star().unordered_map(pfns.add, [(1, 2), (3, 4)])) == [3, 7]


# ------------------------------------------------------------------------------------------
# the map family, star() and the modifiers
# ------------------------------------------------------------------------------------------


def test_pool_on_the_cluster(pool: Pool, client: Any):
    assert pool.workers == sum(client.nthreads().values()) == 2
    assert "on dask" in repr(pool)
    assert pool.model.backend == "dask"
    other = Pool(3, client=client)  # workers= sets the number of slots
    assert other.workers == 3 and other.map(pfns.square, range(9)) == [x * x for x in range(9)]
    other.close()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("modifier", MODIFIERS)
@pytest.mark.parametrize("star", [False, True], ids=["items", "star"])
def test_every_method_with_every_modifier(pool: Pool, method: str, modifier: str, star: bool):
    if star:
        target: Any = pool.star()
        fn: Any = pfns.add
        items: Any = [(i, 10 * i) for i in range(30)]
        expected = [11 * i for i in range(30)]
    else:
        target, fn, items, expected = pool, pfns.square, list(range(30)), [i * i for i in range(30)]
    out = call(target, method, modifier, fn, items)
    if ORDERED[method]:
        assert out == expected
    else:
        assert sorted(out) == sorted(expected)


def test_same_results_as_the_local_backend(pool: Pool):
    cases: list[tuple[bool, Any, Any]] = [
        (False, pfns.square, range(200)),
        (False, pfns.identity, ["a", b"b", None, (1, 2), {"k": [1]}, 2.5]),
        (True, pfns.add3, [(i, i, i) for i in range(50)]),
        (False, pfns.Doubler, range(6)),
        (True, pfns.Summer, [(1, 2), (3, 4)]),
        (False, len, ["ab", "cde", ""]),
        (False, lambda x: x**3, range(10)),  # a lambda travels by value
    ]
    local = Pool(2)
    try:
        for star, fn, items in cases:
            for method in METHODS:
                want = list(getattr(local.star() if star else local, method)(fn, items))
                got = list(getattr(pool.star() if star else pool, method)(fn, items))
                if ORDERED[method]:
                    assert got == want, (method, fn)
                else:
                    assert sorted(map(repr, got)) == sorted(map(repr, want)), (method, fn)
        for method in METHODS:  # empty input
            assert list(getattr(pool, method)(pfns.square, [])) == []
    finally:
        local.close(timeout=10)
        local.terminate()


def test_unordered_results_come_in_completion_order(pool: Pool):
    items = [40, 1, 1, 1, 1, 1]  # item 0 takes 0.8 s, the rest 20 ms each
    out = pool.unordered_map(pfns.variable, items)
    assert sorted(out) == sorted(items)
    assert out[0] == 1 and out.index(40) > 0
    assert next(iter(pool.unordered_imap(pfns.variable, items))) == 1
    assert pool.map(pfns.variable, items) == items


def test_progress_from_completions_in_the_model(pool: Pool):
    assert pool.map(pfns.square, range(100)) == [x * x for x in range(100)]
    done = pool.model.calls[-1]
    assert done.total == 100 and done.done == 100 and done.error is None
    assert sum(w.done for w in pool.model.workers.values()) >= 100
    assert all(w.state == "idle" for w in pool.model.workers.values())


def test_asynced_maps_run_concurrently_under_gather(pool: Pool):
    async def go() -> list[Any]:
        return await asyncio.gather(
            pool.map.asynced()(pfns.sleep_square, range(4)),
            pool.map.asynced()(pfns.sleep_square, range(4, 8)),
            pool.star().map.asynced()(pfns.add, [(1, 1)]),
        )

    a, b, c = asyncio.run(go())
    assert a == [0, 1, 4, 9] and b == [16, 25, 36, 49] and c == [2]


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_errors_are_dual_typed_with_remote_traceback_and_item_index(pool: Pool, method: str):
    got: list[Any] = []
    with pytest.raises(ValueError) as info:
        for value in getattr(pool, method)(pfns.slow_fail_on_3, [1, 2, 3, 4, 5]):
            got.append(value)
    err = info.value
    assert isinstance(err, RuntimeError) and isinstance(err, RemoteError)
    assert "Cannot process 3" in str(err)
    assert "pool item 2" in str(err) and ": 3)" in str(err)
    assert err.item_index == 2  # type: ignore[attr-defined]
    tb = err.remote_traceback  # type: ignore[attr-defined]
    assert "fail_on_3" in tb and "ValueError: Cannot process 3" in tb
    assert isinstance(err.__cause__, RemoteTraceback)
    if method == "imap":  # an ordered imap yields what precedes the failing item
        assert got == [2, 4]
    assert_usable(pool)


def test_custom_and_odd_exceptions_and_unsendable_results(pool: Pool):
    with pytest.raises(pfns.CustomError) as info:
        pool.map(pfns.custom_fail, range(4))
    assert info.value.code == 42 and info.value.detail == "custom detail"
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(pfns.KwOnlyError, match="failed with code 1"):
        pool.map(pfns.kw_only_fail, range(3))
    with pytest.raises(TypeError, match="could not be sent back") as info2:
        pool.map(pfns.return_generator, range(4))
    assert info2.value.item_index == 2  # type: ignore[attr-defined]
    assert_usable(pool)


# ------------------------------------------------------------------------------------------
# Skprocess classes as targets
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_skprocess_class_target(pool: Pool, method: str):
    out = list(getattr(pool, method)(pfns.Doubler, range(6)))
    assert sorted(out) == [0, 2, 4, 6, 8, 10]
    out = list(getattr(pool.star(), method)(pfns.Summer, [(1, 2), (3, 4)]))
    assert sorted(out) == [9, 21]


def test_skprocess_lives_errors_and_handlers(pool: Pool):
    assert pool.map(pfns.Flaky, range(3)) == [(0, 3), (1, 3), (2, 3)]
    with pytest.raises(RunError) as info:
        pool.map(pfns.FlakyOneLife, [7])
    assert isinstance(info.value, RuntimeError)
    assert "attempt 1" in str(info.value) and "pool item 0" in str(info.value)
    with pytest.raises(RunError, match="boom"):
        pool.map(pfns.Failing, range(4))
    assert pool.map(pfns.Handled, range(4)) == [0, 1, "handled RunError", 3]


def test_skprocess_section_timeouts_on_worker_threads(pool: Pool, client: Any):
    """Dask runs items in worker threads, where SIGALRM cannot be used (it used to kill the
    Dask worker): a pure-Python overrun is interrupted, a blocking call when it returns."""
    before = set(client.run(os.getpid).values())
    t0 = time.monotonic()
    out = pool.map(pfns.SlowRun, [0, 1])  # item 1 spins 5 s in pure Python, timeout 0.2 s
    assert time.monotonic() - t0 < 3, "the section timeout did not interrupt the run"
    assert out == [0, ("timeout", "ProcessTimeoutError", "__run__", 1)]
    with pytest.raises(ProcessTimeoutError) as info:
        pool.map(fns.BlockingOverrun, [5])  # blocks 1 s in time.sleep: raised when it returns
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, RuntimeError)
    assert "exceeded its timeout of 0.2 s" in str(info.value)
    assert set(client.run(os.getpid).values()) == before, "a Dask worker died"


def test_section_timeouts_in_a_thread_leave_no_stray_alarm():
    """The timer thread's exception is raised in the section or dropped: never later."""
    from suitkaise_nb._pool._worker import _run_process_item, _Target

    out: list[Any] = []

    def body() -> None:
        try:
            ok = _run_process_item(_Target(fns.EdgeTimeouts, True), ())
            for _ in range(200_000):  # Python code after the lifecycle: a stray alarm lands here
                pass
            out.append(ok)
        except BaseException as exc:
            out.append(exc)

    for _ in range(3):
        t = threading.Thread(target=body)
        t.start()
        t.join(60)
    # 150 runs complete; a run whose alarm landed at its very end counts as timed out and is
    # retried (so ``ok`` may exceed 150), but nothing escapes the lifecycle
    assert len(out) == 3 and all(isinstance(v, int) and v >= 150 for v in out), out


# ------------------------------------------------------------------------------------------
# timeouts cancel the futures
# ------------------------------------------------------------------------------------------


def test_map_timeout_cancels_the_futures_and_the_pool_stays_usable(pool: Pool, client: Any):
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="did not finish within 0.3 seconds"):
        pool.map.timeout(0.3)(fns.slow_square, range(16))  # 16 x 0.3 s on 2 threads
    assert time.monotonic() - t0 < 2
    wait_until(lambda: in_flight(pool) == 0, 5, "the slots to drop their futures")
    # the scheduler forgets them at once; a worker thread finishes its current item (Dask
    # cannot interrupt a running task) and then skips the rest of its chunk
    wait_until(lambda: not our_tasks(client)[0], 5, "the scheduler to drop our tasks")
    assert all(not v for v in client.processing().values())
    wait_until(lambda: our_tasks(client) == ([], {}), 3, "the workers to drop our tasks")
    t0 = time.monotonic()
    assert_usable(pool)
    assert time.monotonic() - t0 < 3


def test_timeouts_through_background_asynced_star_and_imap(pool: Pool, client: Any):
    fut = pool.map.timeout(0.3).background()(fns.slow_square, range(8))
    with pytest.raises(TimeoutError):
        fut.result(10)

    async def go() -> Any:
        return (
            await pool.star()
            .unordered_map.asynced()
            .timeout(0.3)(fns.slow_square, [(i, 0.5) for i in range(4)])
        )

    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(go())
    assert time.monotonic() - t0 < 3

    # imap: the timeout bounds each item (wait for the threads still finishing the cancelled
    # items above: Dask cannot interrupt a running task)
    wait_quiet(client)
    it = pool.imap.timeout(0.6)(pfns.sleep_then, [0.05, 0.05, 1.5, 0.05])
    assert next(it) == 0.05 and next(it) == 0.05
    with pytest.raises(TimeoutError, match="did not arrive within"):
        next(it)
    wait_until(lambda: in_flight(pool) == 0, 5, "the slots to drop their futures")
    wait_quiet(client)
    assert_usable(pool)


def test_cancel_and_abandoned_imap_release_their_futures(pool: Pool, client: Any):
    fut = pool.map.background()(fns.slow_square, range(12))
    wait_until(lambda: in_flight(pool) > 0, 5, "tasks in flight")
    pool.cancel()
    with pytest.raises(Exception, match="cancelled"):
        fut.result(10)
    it = pool.imap(fns.slow_square, range(12))
    assert next(it) == 0
    it.close()
    wait_until(lambda: in_flight(pool) == 0, 5, "the slots to drop their futures")
    wait_quiet(client)
    assert_usable(pool)


# ------------------------------------------------------------------------------------------
# lazy input: a bounded number of futures in flight
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["imap", "unordered_imap"])
def test_imap_keeps_a_bounded_number_of_futures_in_flight(pool: Pool, method: str):
    gen, pulled = counting()  # endless
    it = iter(getattr(pool, method)(pfns.sleep_square, gen))  # 50 ms items
    first = [next(it) for _ in range(3)]
    if method == "imap":
        assert first == [0, 1, 4]
    # the consumer pauses: the input stops being pulled, the futures stay bounded
    peak = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], in_flight(pool))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        ahead = settled(pulled)
    finally:
        stop.set()
        watcher.join()
    assert ahead < 3 + 100, f"{ahead} items pulled for 3 consumed"
    assert peak[0] <= pool.workers * DEPTH, f"{peak[0]} futures in flight"
    for _ in range(20):  # consuming more pulls more, and it settles again
        next(it)
    assert 23 <= settled(pulled) < 23 + 100
    it.close()  # type: ignore[attr-defined]
    n = pulled()
    time.sleep(0.3)
    assert pulled() == n, "the input kept being pulled after the consumer stopped"
    wait_until(lambda: in_flight(pool) == 0, 5, "the slots to drop their futures")
    assert_usable(pool)


# ------------------------------------------------------------------------------------------
# a worker that dies
# ------------------------------------------------------------------------------------------


def test_worker_killed_during_a_map_is_survived(pool: Pool, client: Any):
    victim = next(iter(client.run(os.getpid).values()))
    fut = pool.map.background()(fns.slow_square, range(12))  # 12 x 0.3 s on 2 threads
    wait_until(lambda: in_flight(pool) > 0, 5, "tasks in flight")
    time.sleep(0.5)
    os.kill(victim, signal.SIGKILL)
    t0 = time.monotonic()
    assert fut.result(60) == [x * x for x in range(12)]  # Dask reschedules the lost tasks
    assert time.monotonic() - t0 < 30
    wait_until(lambda: len(worker_pids(client) - {victim}) == 2, 60, "the nanny's restart")
    assert_usable(pool)


def test_item_that_kills_every_worker_is_reported_not_hung(pool: Pool, client: Any, cluster: Any):
    """Past the scheduler's retry limit (``allowed-failures``, 3 by default; 0 here to keep
    the test short) the item fails with WorkerDiedError naming the item and Dask's reason."""
    old = cluster.scheduler.allowed_failures
    cluster.scheduler.allowed_failures = 0
    try:
        t0 = time.monotonic()
        with pytest.raises(WorkerDiedError) as info:
            pool.map(pfns.exit_on_3, [1, 3])
        assert time.monotonic() - t0 < 30
    finally:
        cluster.scheduler.allowed_failures = old
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.item_index == 1
    assert "pool item 1 could not run" in str(err) and "KilledWorker" in str(err)
    wait_until(lambda: len(worker_pids(client)) == 2, 60, "the nanny's restart")
    assert_usable(pool)


# ------------------------------------------------------------------------------------------
# the ways to name the cluster, and the optional dependency
# ------------------------------------------------------------------------------------------


def test_scheduler_address_form(cluster: Any):
    p = Pool(client=cluster.scheduler_address)  # "tcp://127.0.0.1:<port>"
    own = p._own_client
    assert own is not None and own.status == "running"
    try:
        assert p.star().map(pfns.add, [(1, 2), (3, 4)]) == [3, 7]
        assert list(p.imap(pfns.square, range(5))) == [0, 1, 4, 9, 16]
    finally:
        p.close()
    assert p._own_client is None and own.status == "closed"  # the pool closes what it opened


def test_bad_client_argument(client: Any):
    with pytest.raises(TypeError, match="distributed.Client or a scheduler address"):
        Pool(client=42)
    with pytest.raises(ValueError, match="workers must be a positive int"):
        Pool(0, client=client)


def test_without_distributed_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    with pytest.raises(ImportError, match=r"pip install 'suitkaise_nb\[dask\]'"):
        Pool(client="tcp://127.0.0.1:8786")
    # and in a fresh interpreter, where the import machinery really fails
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from suitkaise_nb.processing import Pool\n"
        "try:\n    Pool(client='tcp://127.0.0.1:1')\n"
        "except ImportError as e:\n    print('IMPORTERROR', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    ).stdout
    assert "IMPORTERROR" in out and "pip install 'suitkaise_nb[dask]'" in out


# ------------------------------------------------------------------------------------------
# Share with a Dask pool
# ------------------------------------------------------------------------------------------


def test_share_reaches_workers_on_the_same_machine(pool: Pool, client: Any):
    """A LocalCluster's workers run on this machine: the Share's AF_UNIX socket is reachable
    and its key authenticates them."""
    share = Share()
    try:
        share.total = 0
        share.seen = []
        pids = pool.star().map(fns.add_to_share, [(share, i) for i in range(40)])
        assert share.total == sum(range(40))
        assert sorted(share.seen) == list(range(40))
        assert set(pids) <= set(client.run(os.getpid).values())
        assert pool.map(fns.read_share, [share] * 3) == [sum(range(40))] * 3
    finally:
        share.exit()


def test_share_on_another_machine_gives_a_clear_error(pool: Pool):
    """What a worker on another machine gets: the socket path does not exist there. The
    client carries the name of the machine the Share lives on, so the error says so."""
    share = Share()
    try:
        share.total = 1
        fn, (path, key, host) = share.__reduce__()
        assert fn is _client and host == __import__("socket").gethostname()
        elsewhere = _client("/nonexistent/sknb-share-x/share.sock", key, "laptop-of-the-user")
        with pytest.raises(ShareError) as info:
            pool.map(fns.read_share, [elsewhere])
        text = str(info.value)
        assert isinstance(info.value, RuntimeError)
        assert "lives on machine 'laptop-of-the-user'" in text
        assert "AF_UNIX" in text and "only processes on the machine that created it" in text
        assert "pool item 0" in text
        # same machine, but the socket is gone (a stale client): both causes are named
        stale = _client("/nonexistent/sknb-share-y/share.sock", key)
        with pytest.raises(ShareError, match="does not exist here") as info2:
            stale.total  # noqa: B018
        assert "share.start()" in str(info2.value) and "another machine" in str(info2.value)
        # a client built without a host (as pickled before it was recorded) still works
        old = pickle.loads(pickle.dumps(_client(path, key)))
        assert old.total == 1
    finally:
        share.exit()


def test_pool_view_shows_the_cluster_workers_from_the_scheduler(pool: Pool, client: Any):
    """The backend keeps the model's cluster rows fresh (from Dask's callback thread, at most
    once a second); the view only reads the model."""
    from suitkaise_nb._pool._dask import cluster_rows
    from suitkaise_nb.notebook import _render
    from suitkaise_nb.notebook._snapshot import pool_snapshot

    fut = pool.map.background()(fns.slow_square, [2, 3])
    deadline = time.monotonic() + 10
    busy = ()
    while time.monotonic() < deadline:
        busy = cluster_rows(client)
        if sum(n for _, _, n, _, _ in busy) >= 1:
            break
        time.sleep(0.05)
    assert fut.result(30) == [4, 9]
    addresses = sorted(client.scheduler_info()["workers"])
    assert [row[0] for row in busy] == addresses  # every cluster worker, as the scheduler sees it
    assert all(threads == 1 for _, threads, _, _, _ in busy)
    assert sum(n for _, _, n, _, _ in busy) >= 1  # our tasks were seen running there
    assert [row[0] for row in pool.model.cluster] == addresses  # refreshed by the backend
    html = _render.pool_html(pool_snapshot(pool.model, None, pool.model.cluster))
    assert "sknb-cluster" in html and addresses[0] in html and "dask worker" in html
