"""Share: one consistent, atomic shared state across processes (SPEC §2 Share, §6)."""

from __future__ import annotations

import copy
import os
import signal
import socket
import stat
import threading
import time
import warnings

import psutil
import pytest

from suitkaise_nb.processing import Pool, ProcessError, Share, ShareError
from suitkaise_nb.timing import Sktimer

from . import classes
from .classes import Boom, Counter, Picky

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def share():
    s = Share()
    yield s
    _finish(s)


@pytest.fixture
def make_share():
    """Factory for Shares built with custom arguments; every one is exited at the end."""
    made: list[Share] = []

    def make(**kwargs) -> Share:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = Share(**kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        _finish(s)


def _finish(s: Share) -> None:
    try:
        s.exit()
    except Exception:
        pass


def _server_pid(s: Share) -> int:
    pid = s._sk.link.request("ping", ())
    assert pid == s._sk.owner.spare.pid
    return pid


def _wait_for(pred, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


# -- values: assignment and reads ------------------------------------------------------------------


def test_primitives_and_containers_round_trip(share):
    share.i = 7
    share.f = 2.5
    share.s = "text"
    share.b = b"\x00\x01"
    share.none = None
    share.t = (1, "a")
    share.lst = [1, [2, 3]]
    share.d = {"a": 1, "b": [1, 2]}
    share.st = {1, 2}
    assert (share.i, share.f, share.s, share.b, share.none, share.t) == (
        7,
        2.5,
        "text",
        b"\x00\x01",
        None,
        (1, "a"),
    )
    assert share.lst == [1, [2, 3]]
    assert share.d == {"a": 1, "b": [1, 2]}
    assert share.st == {1, 2}
    # a read of a mutable value is a live handle: a write through it lands in the Share
    alias = share.lst
    alias.append(99)
    assert share.lst == [1, [2, 3], 99]
    assert isinstance(share.d, dict)
    # an explicit copy is detached
    local = copy.copy(share.lst)
    assert type(local) is list
    local.append(100)
    assert share.lst == [1, [2, 3], 99]
    deep = copy.deepcopy(share.d)
    assert type(deep) is dict and deep == {"a": 1, "b": [1, 2]}


def test_user_class_and_timer(share):
    share.c = Counter()
    share.timer = Sktimer()
    c = share.c
    assert isinstance(c, Counter) and c.value == 0
    for x in (0.1, 0.2, 0.3, 0.4):
        share.timer.add_time(x)
    assert share.timer.num_times == 4
    assert share.timer.mean == pytest.approx(0.25)
    assert share.timer.percentile(95) == pytest.approx(0.385)
    assert f"{share.timer.mean:.2f}" == "0.25"
    stats = share.timer.get_stats()
    assert stats.num_times == 4 and stats.max == pytest.approx(0.4)
    assert isinstance(share.timer, Sktimer)


def test_nested_reads_return_values(share):
    share.c = Counter()
    share.c.increment(5)
    v = share.c.value
    assert v == 5 and type(v) is int
    assert share.c.value + 1 == 6
    assert [share.c.value] == [5]


def test_method_calls_on_builtin_containers(share):
    share.lst = [3, 1]
    share.lst.append(2)
    share.lst.extend([5, 4])
    share.lst.sort()
    # (side-effecting calls stay out of ``assert``: pytest rewrites assert statements into
    # a read of ``share.lst`` followed by a local call on the copy)
    popped = share.lst.pop()
    assert popped == 5
    idx = share.lst.index(3)
    assert idx == 2
    assert share.lst == [1, 2, 3, 4]
    assert len(share.lst) == 4
    assert 3 in share.lst
    share.d = {}
    share.d.update(a=1)
    share.d.setdefault("b", []).append(1)  # the returned list is a copy
    assert share.d.get("a") == 1
    assert sorted(share.d.keys()) == ["a", "b"]
    gone = share.d.pop("b")
    assert gone == []
    assert share.d == {"a": 1}
    share.st = set()
    share.st.add(1)
    share.st.update({2, 3})
    share.st.discard(2)
    assert share.st == {1, 3}


def test_augmented_assignment_and_item_operations(share):
    share.n = 0
    share.n += 1
    share.n += 10
    share.n -= 2
    share.n *= 3
    assert share.n == 27
    share.items = [1]
    share.items += [2]
    share.items += (3,)
    assert share.items == [1, 2, 3]
    share.d = {"a": 1}
    share.d["a"] += 1
    share.d["b"] = 5
    k = "b"
    share.d[k] += 10
    assert share.d == {"a": 2, "b": 15}
    del share.d["a"]
    assert share.d == {"b": 15}
    assert share.d["b"] == 15
    share.lst = [0, 1, 2, 3]
    share.lst[0] = 9
    share.lst[1:3] = ["x"]
    del share.lst[-1]
    assert share.lst == [9, "x"]
    assert share.lst[0] == 9
    assert share.lst[0:1] == [9]


def test_stores_through_computed_keys_and_nested_paths(share):
    """Stores and updates whose key or target is an expression reach the server."""

    class Key:
        name = "z"

    key = Key()
    share.d = {}
    share.d[key.name] = 7
    share.d[key.name] += 1
    share.d[f"{key.name}2"] = 1
    share.d[("t", 1)] = 2
    assert share.d == {"z": 8, "z2": 1, ("t", 1): 2}
    del share.d[key.name]
    assert "z" not in share.d
    share.c = Counter()
    share.c.value = 10
    share.c.value += 3
    assert share.c.value == 13
    share.c.extra = "x"
    assert share.c.extra == "x"
    del share.c.extra
    with pytest.raises(AttributeError):
        share.c.extra  # noqa: B018
    # containers of containers / of objects
    share.lists = {"a": []}
    share.lists["a"].append(1)
    share.lists["a"] += [2]
    share.grid = [[0, 0], [0, 0]]
    share.grid[1][0] = 5
    share.grid[1][1] += 2
    share.counters = [Counter(), Counter()]
    share.counters[1].increment(4)
    share.counters[1].value += 1
    assert share.lists == {"a": [1, 2]}
    assert share.grid == [[0, 0], [5, 2]]
    assert share.counters[1].value == 5 and share.counters[0].value == 0


def test_clear_removes_attributes(share):
    share.a = 1
    share.b = [1]
    share.clear()
    with pytest.raises(AttributeError):
        share.a  # noqa: B018
    with pytest.raises(AttributeError):
        share.b.append(2)
    share.sync()
    assert not hasattr(share, "a")
    assert getattr(share, "b", "default") == "default"
    share.a = 2
    assert share.a == 2


def test_missing_attribute_and_delete(share):
    with pytest.raises(AttributeError):
        share.nothing  # noqa: B018
    share.x = 1
    del share.x
    with pytest.raises(AttributeError):
        share.x  # noqa: B018
    with pytest.raises(AttributeError):
        del share.x


def test_operations_of_one_process_apply_in_order(share):
    for i in range(20):
        share.obj = [i]
        share.obj.append(i + 1)
        share.obj = Counter()
        share.obj.increment(i)
        share.obj = ("final", i)
        assert share.obj == ("final", i)


def test_names_of_the_share_api_are_refused(share):
    for name in ("stop", "start", "clear", "is_running", "model"):
        with pytest.raises(AttributeError, match="own API"):
            setattr(share, name, 1)
    share.stopped = 1  # a name that merely starts like one is fine
    assert share.stopped == 1
    assert share.is_running


def test_dir_lists_shared_names(share):
    share.alpha = 1
    share.beta = 2
    names = dir(share)
    assert "alpha" in names and "beta" in names and "start" in names


def test_shared_object_using_the_share_inside_its_method(share):
    """A method running in the server may use a Share handle it holds (no self-deadlock)."""
    share.n = 0
    share.log = []
    share.h = classes.Holder(share)
    got = share.h.bump()
    assert got == 1
    assert share.n == 1 and share.log == ["bumped"]
    with Pool(workers=2) as pool:
        pool.star().map(_bump_times, [(share, 20)] * 3)
    assert share.n == 61 and len(share.log) == 61


def _bump_times(s: Share, k: int) -> None:
    for _ in range(k):
        s.h.bump()


# -- errors ---------------------------------------------------------------------------------------


def test_server_exception_reaches_caller_and_server_keeps_running(share):
    share.c = Counter()
    share.p = Picky()
    with pytest.raises(ValueError, match="bad thing") as info:
        share.c.fail("bad thing")
    cause = info.value.__cause__
    assert cause is not None and "fail" in str(cause) and "raise ValueError" in str(cause)
    with pytest.raises(Boom, match="picky exploded") as info2:
        share.p.explode()
    assert "explode" in str(info2.value.__cause__)
    with pytest.raises(KeyError):
        share.d = {}
        share.d["missing"] += 1
    with pytest.raises(TypeError):
        share.c.increment("not a number")
    # still serving, state intact
    now = share.c.increment()
    assert now == 1 and share.c.value == 1
    assert share.is_running and not share.has_error


def test_unshippable_value_gives_clear_error(share):
    lock = threading.Lock()
    with pytest.raises(Exception, match="(?i)lock|pickle"):
        share.lock = lock
    share.ok = 1
    assert share.ok == 1


def test_killed_server_sets_has_error_and_fails_fast(share):
    share.n = 1
    share.c = Counter()
    pid = _server_pid(share)
    ran_in = share.c.pid()
    assert ran_in == pid
    os.kill(pid, signal.SIGKILL)
    assert _wait_for(lambda: share.has_error)
    assert not share.is_running
    for _ in range(3):
        t0 = time.monotonic()
        with pytest.raises(ShareError, match="died unexpectedly"):
            share.n += 1
        with pytest.raises(ShareError, match="died unexpectedly"):
            share.n  # noqa: B018
        with pytest.raises(ShareError, match="died unexpectedly"):
            share.c.increment()
        assert time.monotonic() - t0 < 2.0
    assert share.model.state == "failed"


def test_killed_server_seen_by_a_client_in_a_child(share):
    share.n = 0
    pid = _server_pid(share)
    with Pool(workers=1) as pool:
        assert pool.star().map(classes.pool_aug, [(share, 5)])
        os.kill(pid, signal.SIGKILL)
        assert _wait_for(lambda: share.has_error)
        t0 = time.monotonic()
        with pytest.raises(Exception, match="Share"):
            pool.star().map(classes.pool_aug, [(share, 5)])
        assert time.monotonic() - t0 < 10.0


# -- lifecycle ------------------------------------------------------------------------------------


def test_start_stop_exit_is_running(make_share):
    s = make_share()
    assert s.is_running and not s.has_error
    s.n = 5
    assert s.stop(timeout=5.0) is True
    assert not s.is_running
    assert s.stop() is True  # idempotent
    s.start()
    assert s.is_running
    assert s.n == 5
    s.start()  # no-op while running
    s.exit()
    assert not s.is_running
    s.start()
    with pytest.raises(AttributeError):
        s.n  # noqa: B018
    s.exit()


def test_state_survives_stop_start_with_objects(make_share):
    s = make_share()
    s.c = Counter()
    s.c.increment(3)
    s.timer = Sktimer()
    s.timer.add_time(0.5)
    s.d = {"k": [1]}
    s.stop()
    s.start()
    assert s.c.value == 3
    assert s.timer.num_times == 1
    assert s.d == {"k": [1]}
    s.c.increment()
    assert s.c.value == 4


def test_stop_that_times_out_loses_the_state_instead_of_restoring_an_older_one(make_share):
    s = make_share()
    s.x = 1
    s.stop()
    s.start()
    s.x = 2
    s.slow = classes.Slow()
    errors: list[BaseException] = []

    def busy() -> None:
        try:
            s.slow.sleep(5)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=busy)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    assert s.stop(timeout=0.5) is False
    assert time.monotonic() - t0 < 3.0
    t.join(10)
    assert errors and isinstance(errors[0], ShareError)
    s.start()
    assert not hasattr(s, "x")  # not the x=1 of the first stop()


def test_restart_after_a_crash_begins_empty(make_share):
    s = make_share()
    s.x = 1
    s.stop()
    s.start()
    s.x = 2
    old_dir = os.path.dirname(s._sk.link.path)
    os.kill(_server_pid(s), signal.SIGKILL)
    assert _wait_for(lambda: s.has_error)
    s.start()
    assert not s.has_error and s.is_running
    # the same private directory serves again (no one else could take its name meanwhile)
    assert os.path.dirname(s._sk.link.path) == old_dir
    assert stat.S_IMODE(os.stat(old_dir).st_mode) == 0o700
    assert not hasattr(s, "x")
    s.x = 3
    assert s.x == 3


def test_auto_start_false_warns_and_applies_on_start(make_share):
    s = Share(auto_start=False)
    try:
        assert not s.is_running
        with pytest.warns(RuntimeWarning, match="Share is stopped"):
            s.counter = 0
        with pytest.warns(RuntimeWarning):
            s.items = [1]
        with pytest.warns(RuntimeWarning):
            assert s.counter == 0
        with pytest.warns(RuntimeWarning):
            del s.items
        s.start()
        assert s.is_running
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert s.counter == 0
            assert not hasattr(s, "items")
            s.counter = 100
        s.stop()
        with pytest.warns(RuntimeWarning):
            s.late = "x"
        s.start()
        assert (s.counter, s.late) == (100, "x")
    finally:
        s.exit()


def test_dropped_share_ends_its_server(make_share):
    """``share = Share()`` re-run in a cell: the Share that is no longer reachable ends."""
    import gc

    s = Share()
    s.x = 1
    pid = _server_pid(s)
    sock_dir = os.path.dirname(s._sk.link.path)
    del s
    gc.collect()
    assert _wait_for(lambda: not psutil.pid_exists(pid) or _is_zombie(pid))
    assert not os.path.exists(sock_dir)


def _is_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_context_manager(make_share):
    with Share() as s:
        assert s.is_running
        s.x = 1
        assert s.x == 1
    assert not s.is_running
    s.start()
    assert s.x == 1
    s.exit()


def test_lifecycle_only_in_owner(share):
    share.n = 0
    with Pool(workers=1) as pool:
        [msg] = pool.map(_try_stop, [share])
    assert "created" in msg
    assert share.n == 0


def _try_stop(s: Share) -> str:
    try:
        s.stop()
    except ShareError as exc:
        return str(exc)
    return "no error"


# -- across processes -----------------------------------------------------------------------------


def test_share_passed_to_skprocess(share):
    share.c = Counter()
    share.n = 3
    share.timer = Sktimer()
    share.timer.add_time(1.0)
    p = classes.ServerPid(share)
    got = p.run()
    assert got == (_server_pid(share), 3, 1)


def test_share_in_pool_workers_and_mixed_updates(share):
    share.n = 0
    share.items = []
    share.d = {"a": 0, "b": 0, "c": 0}
    share.c = Counter()
    share.seen = set()
    with Pool(workers=2) as pool:
        results = pool.star().map(classes.MixedWorker, [(share, t, 40) for t in "abc"])
    assert results == [40, 40, 40]
    assert share.n == 120
    assert sorted(share.items) == sorted(["a"] * 40 + ["b"] * 40 + ["c"] * 40)
    assert share.d == {"a": 40, "b": 40, "c": 40}
    assert share.c.value == 240
    assert share.seen == {"a", "b", "c"}


def _contention(share: Share, n_procs: int, count: int) -> None:
    share.n = 0
    share.c = Counter()
    procs = [classes.AugWorker(share, count) for _ in range(n_procs)]
    procs += [classes.MethodWorker(share, count) for _ in range(n_procs)]
    for p in procs:
        p.start()
    for p in procs:
        assert p.result() == "done"
    assert share.n == n_procs * count
    assert share.c.value == n_procs * count


def test_handles_rebuilt_in_one_process_share_one_connection(share):
    """Every pool chunk rebuilds its Share handle; they must not each connect and handshake."""
    import pickle

    share.n = 0
    a = pickle.loads(pickle.dumps(share))
    b = pickle.loads(pickle.dumps(share))
    assert a._sk.link is b._sk.link
    a.n += 1
    b.n += 1
    assert share.n == 2
    with Pool(workers=1) as pool:
        links = pool.map(_link_id, [share] * 50)
    assert len(set(links)) == 1


def _link_id(s: Share) -> int:
    s.n += 1
    return os.fstat(s._sk.link.conn.sock.fileno()).st_ino  # which socket


@pytest.mark.timeout(300)
def test_exact_under_contention_skprocess(share):
    """8 processes x 2,000 ``share.n += 1`` and 8 x 2,000 ``share.c.increment()``, all 16
    at once: exactly 16,000 each, in 20 runs of 20."""
    for _ in range(20):
        _contention(share, 8, 2000)


@pytest.mark.timeout(300)
def test_exact_under_contention_pool(share):
    for _ in range(20):
        share.n = 0
        share.c = Counter()
        with Pool(workers=8) as pool:
            pool.star().map(classes.pool_aug, [(share, 2000)] * 8)
            pool.star().map(classes.pool_method, [(share, 2000)] * 8)
        assert share.n == 16000
        assert share.c.value == 16000


def test_threads_of_one_process(share):
    share.n = 0
    share.c = Counter()
    classes.threaded(share, threads=8, count=300)
    assert share.n == 2400
    assert share.c.value == 2400
    # threads inside a child process too
    with Pool(workers=1) as pool:
        pool.star().map(classes.threaded, [(share, 4, 250)])
    assert share.n == 3400 and share.c.value == 3400


def test_share_usable_after_restart_in_new_children(make_share):
    s = make_share()
    s.n = 0
    with Pool(workers=2) as pool:
        pool.star().map(classes.pool_aug, [(s, 10)] * 2)
        s.stop()
        s.start()  # new socket and key: the shipped handles are rebuilt on each map
        pool.star().map(classes.pool_aug, [(s, 10)] * 2)
    assert s.n == 40


# -- security -------------------------------------------------------------------------------------


def test_socket_is_private(share):
    link = share._sk.link
    st = os.stat(link.path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    dst = os.stat(os.path.dirname(link.path))
    assert stat.S_IMODE(dst.st_mode) == 0o700
    assert st.st_uid == os.getuid() == dst.st_uid


def test_long_tmpdir_still_gives_a_usable_socket(make_share, tmp_path, monkeypatch):
    import tempfile

    long_dir = tmp_path / ("d" * 120)
    long_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long_dir))
    s = make_share()
    s.x = 1
    assert s.x == 1
    path = s._sk.link.path
    assert len(os.fsencode(path)) <= 100
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700


def test_wrong_key_is_refused(share):
    from suitkaise_nb._share._link import Link as _Link

    share.secret = 42
    bad = _Link(share._sk.link.path, b"\x00" * 32)
    with pytest.raises(ShareError, match="refused"):
        bad.request("get", ("secret",))
    # a client that sends a request without authenticating is dropped
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.settimeout(5)
    raw.connect(share._sk.link.path)
    raw.recv(32)
    from suitkaise_nb._engine import _serial
    from suitkaise_nb._engine._wire import encode, send_parts
    from suitkaise_nb._share._protocol import K_REQ

    data, bufs = _serial.dumps(("get", ("secret",), ()), what="test")
    send_parts(raw, encode(K_REQ, data, bufs) + [b"\0" * 64])
    try:
        assert raw.recv(100) == b""
    except ConnectionResetError:
        pass  # closed with our unread bytes in its buffer
    raw.close()
    assert share.secret == 42


def test_nothing_listens_on_tcp(share):
    share.x = 1
    proc = psutil.Process(_server_pid(share))
    conns = proc.net_connections(kind="all")
    assert conns, "the server holds its unix socket"
    assert all(c.family == socket.AF_UNIX for c in conns), conns
    assert not proc.net_connections(kind="inet")


# -- operations sent without waiting (write-behind in child processes) ---------------------------


@pytest.mark.parametrize(
    ("kind", "error", "marker"),
    [("aug", AttributeError, "DEFERRED-AUG"), ("method", ValueError, "DEFERRED-METHOD")],
)
def test_unwaited_operation_error_ends_its_run_and_names_its_line(share, kind, error, marker):
    """In a child, ``share.x += 1`` and a method call used as a statement are sent without
    waiting; an error they raise on the server still fails the run that sent them, and says
    which line sent it."""
    share.n = 0
    share.c = Counter()
    p = classes.DeferredFailure(share, kind)
    p.start()
    with pytest.raises(ProcessError) as info:
        p.result()
    assert isinstance(info.value.original_error, error)
    line = _marker_line(marker)
    assert f"classes.py:{line}" in info.value.remote_traceback
    assert "sent without waiting" in info.value.remote_traceback
    # the statements after it in the same section ran too (the error came back later): the
    # error ends the section, not the line. That is the price of not waiting.
    assert share.n == 6
    assert share.is_running and not share.has_error


def test_a_run_that_fails_itself_still_reports_its_unwaited_error(share):
    """The run's own exception wins, and the Share error it sent before is noted on it."""
    share.n = 0
    share.c = Counter()
    p = classes.DeferredFailure(share, "then-raise")
    p.start()
    with pytest.raises(ProcessError) as info:
        p.result()
    assert isinstance(info.value.original_error, KeyError)
    assert "no attribute 'missing'" in info.value.remote_traceback
    p2 = classes.DeferredFailure(share, "caught")  # the next process starts clean
    p2.start()
    assert p2.result() is True


def test_operations_inside_try_wait_and_raise_on_their_own_line(share):
    share.n = 0
    share.c = Counter()
    p = classes.DeferredFailure(share, "caught")
    p.start()
    assert p.result() is True  # both errors were caught by the child's own except clauses
    assert share.n == 6


def test_unwaited_error_in_a_pool_item_names_the_items_and_the_line(share):
    share.n = 0
    with Pool(workers=2) as pool:
        with pytest.raises(AttributeError, match="no attribute 'missing'") as info:
            pool.star().map(classes.pool_deferred_failure, [(share, i) for i in range(20)])
        notes = " ".join(getattr(info.value, "__notes__", []))
        assert f"classes.py:{_marker_line('DEFERRED-POOL')}" in notes
        assert len(pool.star().map(classes.pool_aug, [(share, 3)])) == 1  # still usable


def test_a_pool_item_that_fails_itself_still_reports_its_unwaited_error(share):
    with Pool(workers=1) as pool:
        with pytest.raises(KeyError, match="failed itself") as info:
            pool.star().map(classes.pool_deferred_then_raise, [(share, 0)])
        assert "no attribute 'missing'" in str(info.value.__cause__)


def test_the_owner_process_waits_for_every_operation(share):
    """In the notebook or script itself, an unprotected failing statement raises at once."""
    share.c = Counter()
    try:
        share.missing += 1
    except AttributeError:
        pass
    with pytest.raises(AttributeError):
        _unprotected_aug(share)
    with pytest.raises(ValueError, match="now"):
        _unprotected_call(share)
    assert share._sk.link.unacked == 0


def _unprotected_aug(share):
    share.missing += 1


def _unprotected_call(share):
    share.c.fail("now")


def test_usage_sees_try_and_with_blocks():
    import contextlib
    import sys

    from suitkaise_nb._share._oracle import usage

    seen = []

    class Probe:
        def __getattr__(self, name):
            seen.append(usage(sys._getframe(1)))
            return self

        def __call__(self, *a):
            return self

        def __iadd__(self, other):
            return self

        def __getitem__(self, key):
            return self

        def __setitem__(self, key, value):
            pass

    def plain(p):
        p.m()
        p.x += 1
        p.d[0] += 1
        v = p.m()
        return v

    def guarded(p):
        try:
            p.m()
            p.x += 1
            p.d[0] += 1
        except Exception:
            pass
        with contextlib.nullcontext():
            p.m()

    plain(Probe())
    assert seen[:3] == ["method-discard", "aug-discard", "augitem-discard"]
    assert seen[3] == "method"
    seen.clear()
    guarded(Probe())
    assert seen == ["method", "aug", "augitem", "method"]


def _marker_line(marker: str) -> int:
    with open(classes.__file__) as fh:
        for n, text in enumerate(fh, 1):
            if marker in text:
                return n
    raise AssertionError(marker)
