"""The dispatcher's ordering, timeout and abort paths, driven through the public Pool API on
in-process slots (``_pool._inline``): no process is started, each test takes milliseconds."""

from __future__ import annotations

import time

import pytest

from suitkaise_nb._pool._inline import InlineBackend
from suitkaise_nb.processing import Pool, PoolClosedError

pytestmark = pytest.mark.timeout(30)


def square(x: int) -> int:
    return x * x


def fails_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


def _wait_queued(backend: InlineBackend, n: int) -> None:
    deadline = time.monotonic() + 5
    while sum(len(s.queue) for s in backend.slots) < n:
        assert time.monotonic() < deadline, "the dispatcher sent no chunks"
        time.sleep(0.001)


def test_results_come_in_input_order_whatever_order_chunks_finish():
    backend = InlineBackend(manual=True)
    with Pool(2, _backend=backend) as pool:
        fut = pool.map.background()(square, list(range(8)))
        _wait_queued(backend, 4)  # two slots, two chunks in flight each
        first, second = backend.slots
        second.run_next(len(second.queue) - 1)  # the last chunk sent finishes first
        first.run_next(len(first.queue) - 1)
        while any(s.queue for s in backend.slots):
            for s in backend.slots:
                if s.queue:
                    s.run_next()
        assert fut.result(5) == [x * x for x in range(8)]


def test_unordered_results_come_in_completion_order():
    backend = InlineBackend(manual=True)
    with Pool(1, _backend=backend) as pool:
        fut = pool.unordered_map.background()(square, [1, 2])
        _wait_queued(backend, 1)
        (slot,) = backend.slots
        if len(slot.queue) == 2:  # two chunks of one item each: finish the second first
            slot.run_next(1)
        slot.run_all()
        got = fut.result(5)
        assert sorted(got) == [1, 4]


def test_a_timeout_aborts_the_chunks_and_the_pool_stays_usable():
    backend = InlineBackend(manual=True)
    with Pool(2, _backend=backend) as pool:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            pool.map.timeout(0.2)(square, list(range(6)))  # nobody runs the chunks
        assert time.monotonic() - t0 < 2.0
        deadline = time.monotonic() + 5  # the abort reaches the slots through the hub
        while not any(s.aborted for s in backend.slots) and time.monotonic() < deadline:
            time.sleep(0.001)
        assert any(s.aborted for s in backend.slots)
        assert not any(s.queue for s in backend.slots)  # the aborted chunks are gone
        fut = pool.map.background()(square, [5])
        _wait_queued(backend, 1)
        for s in backend.slots:
            s.run_all()
        assert fut.result(5) == [25]


def test_cancel_fails_the_call_and_an_item_error_names_the_item():
    backend = InlineBackend(manual=True)
    with Pool(2, _backend=backend) as pool:
        fut = pool.map.background()(square, list(range(6)))
        _wait_queued(backend, 2)
        pool.cancel()
        with pytest.raises(PoolClosedError, match="cancelled"):
            fut.result(5)
    with Pool(2, _backend=InlineBackend()) as pool:  # automatic: chunks run at once
        with pytest.raises(ValueError, match="three") as info:
            pool.map(fails_on_three, list(range(6)))
        assert "pool item 3" in str(info.value)
        assert pool.map(square, range(5)) == [0, 1, 4, 9, 16]
        assert list(pool.imap(square, iter(range(4)))) == [0, 1, 4, 9]


def test_no_process_is_started():
    import psutil

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with Pool(2, _backend=InlineBackend()) as pool:
        assert pool.map(square, range(100)) == [x * x for x in range(100)]
    after = {p.pid for p in psutil.Process().children(recursive=True)}
    assert after <= before
