"""Share handles: a mutable value read from a Share is a live handle wherever it goes, and
no write through any name is lost (SPEC §2 Share; issue 15)."""

from __future__ import annotations

import copy
import threading

import pytest

from suitkaise_nb.processing import Pool, Share

from . import handles
from .classes import Counter

pytestmark = pytest.mark.timeout(120)

N_PROCS = 4
COUNT = 1000


class Box:
    def __init__(self) -> None:
        self.inner = Counter()


@pytest.fixture
def share():
    s = Share()
    s.counter = Counter()
    s.items = []
    s.tally = {"x": 0}
    s.box = Box()
    s.counters = [Counter(), Counter()]
    yield s
    try:
        s.exit()
    except Exception:
        pass


def _expected(share: Share, mode: str, total: int) -> None:
    if mode in ("alias", "helper", "getattr", "attr"):
        assert share.counter.value == total
    elif mode == "list":
        assert len(share.items) == total
    elif mode == "dict":
        assert share.tally["x"] == total
    elif mode == "nested":
        assert share.box.inner.value == total
    elif mode == "iterate":
        assert [c.value for c in share.counters] == [total, total]


MODES = ["alias", "helper", "getattr", "list", "dict", "nested", "attr", "iterate"]


@pytest.mark.parametrize("mode", MODES)
def test_aliases_in_child_processes_are_exact(share, mode):
    count = COUNT if mode != "iterate" else COUNT // 4
    procs = [handles.AliasWorker(share, mode, count) for _ in range(N_PROCS)]
    for p in procs:
        p.start()
    for p in procs:
        assert p.result() == "done"
    _expected(share, mode, N_PROCS * count)


@pytest.mark.parametrize("mode", MODES)
def test_aliases_in_pool_workers_are_exact(share, mode):
    count = COUNT if mode != "iterate" else COUNT // 4
    with Pool(workers=N_PROCS) as pool:
        pool.star().map(handles.pool_alias, [(share, mode, count)] * N_PROCS)
    _expected(share, mode, N_PROCS * count)


@pytest.mark.parametrize("mode", ["alias", "list", "dict", "attr"])
def test_one_alias_from_four_threads_of_the_notebook(share, mode):
    """The owner process (a notebook or script), 4 threads on one alias."""
    alias = {"alias": share.counter, "attr": share.counter, "list": share.items}.get(
        mode, share.tally
    )

    def work() -> None:
        for _ in range(COUNT):
            if mode == "alias":
                alias.increment()
            elif mode == "attr":
                alias.value += 1
            elif mode == "list":
                alias.append(1)
            else:
                alias["x"] += 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _expected(share, mode, 4 * COUNT)


def test_handles_travel_as_handles(share):
    """A handle given to a process, a pool item or a tell() message still reaches the
    object in the server."""
    c = share.counter
    p = handles.HandleWorker(c, 100)
    p.run()
    assert share.counter.value == 100
    with Pool(workers=2) as pool:
        assert pool.star().map(handles.pool_handle, [(c, 50)] * 4) == [50] * 4
    assert share.counter.value == 300
    listener = handles.Listener(25)
    listener.start()
    listener.tell(share.counter)
    assert listener.listen(timeout=30) == "done"
    listener.wait()
    assert c.value == 325


def test_values_read_as_values(share):
    share.n = 5
    share.f = 1.5
    share.s = "text"
    share.b = b"x"
    share.none = None
    share.t = (1, ("a", 2.0), frozenset({3}))
    for name, kind in [("n", int), ("f", float), ("s", str), ("b", bytes), ("t", tuple)]:
        assert type(getattr(share, name)) is kind
    assert share.none is None
    assert share.t == (1, ("a", 2.0), frozenset({3}))
    assert type(share.counter.value) is int
    # a tuple that holds a mutable object is a handle too (its list can change)
    share.mixed = (1, [2])
    h = share.mixed
    h[1].append(3)
    assert share.mixed == (1, [2, 3])


def test_handle_operations_act_on_the_server(share):
    lst = share.items
    lst.extend([3, 1, 2])
    assert len(lst) == 3 and 2 in lst and list(lst) == [3, 1, 2]
    lst.sort()
    assert lst == [1, 2, 3] and lst[0] == 1 and lst[-1] == 3
    lst[0] = 10
    del lst[1]
    assert share.items == [10, 3]
    lst += [4]  # in place, on the server; the name keeps the handle
    assert share.items == [10, 3, 4] and isinstance(lst, list)
    assert lst + [5] == [10, 3, 4, 5] and [0] + lst == [0, 10, 3, 4]
    assert bool(lst) and not bool(share.tally.get("missing", 0))
    d = share.tally
    d["y"] = 1
    d["y"] += 2
    assert sorted(d) == ["x", "y"] and d["y"] == 3
    c = share.counter
    c.value = 41
    c.value += 1
    assert c.value == 42 and isinstance(c, Counter)
    assert f"{share.counter.value:>4}" == "  42"
    assert repr(share.items) == "[10, 3, 4]" and str(share.tally) == "{'x': 0, 'y': 3}"
    share.counter = Counter()  # a handle names a place: it now reaches the new object
    assert c.value == 0


def test_detached_copies_on_request(share):
    share.counter.increment(3)
    local = copy.copy(share.counter)
    assert type(local) is Counter and local.value == 3
    local.increment()
    assert share.counter.value == 3  # the copy is detached
    deep = copy.deepcopy(share.box)
    assert type(deep) is Box and deep.inner.value == 0
    mine = share.items.copy()  # a method's result is a value too
    assert type(mine) is list


def test_a_handle_assigned_into_the_share_aliases_in_the_server(share):
    """``share.a = share.counter`` makes both names reach one object, as in Python."""
    share.a = share.counter
    share.a.increment()
    assert share.counter.value == 1


def test_handles_follow_the_state_across_stop_and_start(share):
    """While the Share is stopped its owner keeps the state, and the owner's handles act on it
    (the seed's pipeline returns ``share.results.items`` from inside ``with Share()``)."""
    c = share.counter
    items = share.items
    items.append("before")
    assert share.stop() is True
    assert items == ["before"] and c.value == 0
    c.increment()  # lands in the kept state
    items.append("while stopped")
    share.start()
    assert share.counter.value == 1
    assert share.items == ["before", "while stopped"]
    c.increment()  # the same handle reaches the new server
    assert share.counter.value == 2
    with Share() as other:
        other.log = []
        log = other.log
        log.append(1)
    assert log == [1] and len(log) == 1


def test_handles_of_an_exited_share_fail_loudly(share):
    c = share.counter
    share.exit()
    with pytest.raises(Exception, match="exited"):
        c.increment()
