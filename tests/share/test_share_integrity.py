"""Share integrity: nothing is lost or credited to the wrong place silently (issue 15 §2, §4)."""

from __future__ import annotations

import threading
import traceback
from pathlib import Path

import pytest

from suitkaise_nb.processing import Pool, ProcessError, Share, ShareValueError, ShippingError

from . import handles
from .classes import Counter

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def share():
    s = Share()
    s.c = Counter()
    s.counter = Counter()
    s.n = 0
    yield s
    try:
        s.exit()
    except Exception:
        pass


def _line(marker: str) -> int:
    with open(handles.__file__) as fh:
        for n, text in enumerate(fh, 1):
            if marker in text:
                return n
    raise AssertionError(marker)


# -- stop() keeps the state or says why -----------------------------------------------------------


def test_stop_with_a_value_the_server_cannot_pickle_names_it_and_keeps_running(share):
    share.m = handles.MakesLock()
    share.m.arm()  # in the server, share.m now holds a lock
    share.n = 5
    with pytest.raises(ShareValueError, match=r"share\.m\b") as info:
        share.stop()
    assert "lock" in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ShippingError)
    assert share.is_running  # the state stayed where it was, and is served
    assert share.n == 5 and share.m.value == 7
    share.n += 1
    share.m.disarm()
    assert share.stop() is True
    share.start()
    assert share.n == 6 and share.m.value == 7


def test_stop_with_a_value_this_process_cannot_rebuild_names_it(share):
    share.o = handles.OwnerRefuses()
    share.keep = [1, 2]
    with pytest.raises(ShareValueError, match=r"share\.o cannot be rebuilt"):
        share.stop()
    assert share.is_running and share.keep == [1, 2] and share.o.value == 1
    del share.o
    assert share.stop() is True
    share.start()
    assert share.keep == [1, 2]


def test_stop_applies_requests_that_already_arrived(share):
    """Writes a child sent before stop() are in the kept state or reported, never dropped."""
    with Pool(workers=2) as pool:
        pool.star().map(handles.pool_alias, [(share, "alias", 300)] * 2)
    assert share.counter.value == 600
    share.counter = Counter()
    p = handles.AliasWorker(share, "alias", 500)
    p.start()
    p.wait()
    assert share.stop() is True
    share.start()
    assert share.counter.value == 500


# -- the owner's assignments raise on their own line ---------------------------------------------


def test_owner_assignment_the_server_cannot_rebuild_raises_on_its_line(share):
    with pytest.raises(ValueError, match="can only be rebuilt in process") as info:
        share.u = handles.Unrebuildable()  # OWNER-LINE
    this = test_owner_assignment_the_server_cannot_rebuild_raises_on_its_line.__code__
    line = next(n for f, n in traceback.walk_tb(info.tb) if f.f_code is this)
    assert "OWNER-LINE" in Path(__file__).read_text().splitlines()[line - 1]
    assert not hasattr(share, "u")
    share.n = 3  # the next line is not blamed for it
    assert share.n == 3


def test_unshippable_values_are_named_by_their_place_in_the_share(share):
    with pytest.raises(ShareValueError) as info:
        share.lock = threading.Lock()
    msg = str(info.value)
    assert "share.lock" in msg and "autoreconnect" not in msg and "Share[" not in msg
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    share.d = {}
    with pytest.raises(ShareValueError, match=r"share\.d\['k'\]"):
        share.d["k"] = threading.Lock()
    with pytest.raises(ShareValueError, match=r"arguments of share\.c\.increment"):
        share.c.increment(threading.Lock())
    with pytest.raises(ShareValueError, match=r"right side of share\.n \+="):
        share.n += threading.Lock()
    assert share.n == 0 and share.d == {}


# -- deferred errors in children -------------------------------------------------------------------


def test_deferred_error_is_not_swallowed_by_an_unrelated_except(share):
    p = handles.SwallowWorker(share)
    p.start()
    with pytest.raises(ProcessError) as info:
        p.result()
    err = info.value
    assert isinstance(err.original_error, ValueError)
    assert "deferred write" in str(err.original_error)
    assert f"handles.py:{_line('SWALLOW-LINE')}" in err.remote_traceback
    assert share.after is True  # the section ran to its end; then the error failed it


def test_deferred_error_belongs_to_its_thread(share):
    p = handles.TwoThreads(share)
    p.start()
    with pytest.raises(ProcessError) as info:
        p.result()
    err = info.value
    assert "main thread" in str(err.original_error)
    assert "other thread" not in str(err.original_error)
    assert f"handles.py:{_line('MAIN-THREAD-LINE')}" in err.remote_traceback
    assert share.caught == ["other thread"] * 20  # each raised on its own line, in its thread
    assert share.n == 20


def test_pool_items_whose_writes_failed_do_not_succeed(share):
    with Pool(workers=2) as pool:
        with pytest.raises(ValueError, match="item") as info:
            pool.star().map(handles.pool_swallow, [(share, i) for i in range(8)])
        notes = " ".join(getattr(info.value, "__notes__", []))
        assert f"handles.py:{_line('POOL-SWALLOW-LINE')}" in notes
        with pytest.raises(ValueError, match="item 5") as info:
            pool.star().map(handles.pool_one_fails, [(share, i) for i in range(10)])
        assert "pool item 5" in str(info.value)
        assert pool.star().map(handles.pool_alias, [(share, "alias", 1)]) != []


def test_sync_raises_a_deferred_error_where_the_user_asks(share):
    p = handles.SyncWorker(share)
    assert p.run() == "ValueError: via sync"
