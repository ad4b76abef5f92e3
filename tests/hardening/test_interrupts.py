"""KeyboardInterrupt while blocked in ``wait()``, ``result()``, ``run()``, ``listen()``,
``Pool.map``, ``Pool.imap`` iteration and a ``Share`` method call: control comes back within
2 s and the objects are left consistent (the process can still be stopped or killed, the
channel still carries messages in order, the pool still maps, the Share still answers each
request with its own answer).

The interrupt is a real SIGINT sent to the main thread (``signal.pthread_kill``), as the
terminal's Ctrl-C or Jupyter's interrupt (SIGINT to the kernel) deliver it: it also wakes a
blocking system call, which ``_thread.interrupt_main()`` would not. The time printed is from
the signal to the moment the caller has the KeyboardInterrupt in hand.

The kernel interrupt during ``pool.map``/``imap`` is ``tests/pool/test_pool_kernel.py``; the
kernel interrupts of ``result()`` and of a Share call are in ``test_kernel_lifecycle.py``.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from suitkaise_nb.processing import Pool, ProcessError, Share
from tests.engine.procs import Forever, Slow
from tests.pool import fns

from .procs import Reflector, Sleeper, digest

pytestmark = pytest.mark.timeout(60)

CONTROL_BACK = 2.0  # seconds from the SIGINT to the KeyboardInterrupt in the caller's hands
DELAY = 0.3  # the call is blocked this long before the signal


def interrupted(call: Callable[[], Any], delay: float = DELAY) -> float:
    """Run ``call`` (which must block), SIGINT the main thread after ``delay`` s, and return
    the seconds from the signal to the KeyboardInterrupt."""
    assert threading.current_thread() is threading.main_thread()
    main = threading.main_thread().ident
    assert main is not None
    sent: list[float] = []
    armed = threading.Event()

    def fire() -> None:
        armed.wait()
        time.sleep(delay)
        sent.append(time.monotonic())
        signal.pthread_kill(main, signal.SIGINT)

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Thread(target=fire, daemon=True)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            armed.set()  # from here on the signal can only land inside this block
            call()
        back = time.monotonic()
    finally:
        timer.join()
        signal.signal(signal.SIGINT, old)
    took = back - sent[0]
    print(f"control back {took * 1000:.1f} ms after SIGINT")
    return took


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def started() -> Iterator[Callable[[Any], Any]]:
    """Start an Skprocess for the test; anything still alive at the end is killed."""
    procs: list[Any] = []

    def start(p: Any) -> Any:
        p.start()
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.is_alive:
            p.kill()


@pytest.fixture
def pool() -> Iterator[Pool]:
    p = Pool(2)
    yield p
    p.terminate()


# -- Skprocess --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["plain", "timeout"])
def test_wait_interrupted_then_stop_gives_the_result(started, how: str):
    p = started(Forever())
    call = p.wait if how == "plain" else p.wait.timeout(60)
    assert interrupted(call) < CONTROL_BACK
    # the interrupt was the caller's: the process runs on, and a graceful stop still works
    assert p.is_alive and p.process_state.value == "running"
    p.stop()
    assert p.wait(10)
    assert p.result()[:2] == ("stopped", True)


@pytest.mark.parametrize("how", ["plain", "timeout"])
def test_result_interrupted_then_kill(started, how: str):
    p = started(Forever())
    call = p.result if how == "plain" else p.result.timeout(60)
    assert interrupted(call) < CONTROL_BACK
    assert p.is_alive
    pid = p.pid
    p.kill()
    assert not p.is_alive and p.process_state.value == "killed"
    assert _wait_for(lambda: not _alive(pid))
    with pytest.raises(ProcessError, match="kill"):
        p.result()


def test_run_interrupted_kills_the_process_it_started():
    p = Forever()
    assert interrupted(p.run) < CONTROL_BACK
    # run() documents that it kills what it started
    assert not p.is_alive and p.process_state.value == "killed"
    assert _wait_for(lambda: not _alive(p.pid))


@pytest.mark.parametrize("how", ["plain", "timeout"])
def test_listen_interrupted_then_the_channel_still_works(started, how: str):
    p = started(Reflector())
    call = p.listen if how == "plain" else p.listen.timeout(60)
    assert interrupted(call) < CONTROL_BACK
    for i in range(3):
        msg = bytes([i]) * (1000 + i)
        p.tell(msg)
        assert p.listen(10) == ("digest", digest(msg))
        assert p.listen(10) == msg
    p.tell("stop")
    assert p.result() == 3


def test_listen_interrupted_while_a_large_message_arrives(started):
    """The SIGINT lands while 40 MB messages are being received: the next listen() still gets
    whole messages, in order, intact."""
    p = started(Reflector())
    blob = bytes(range(256)) * (40 * 1024 * 1024 // 256)
    want = ("digest", digest(blob))
    got: list[Any] = []

    def receive_forever() -> None:
        while True:
            got.append(p.listen())

    interrupts = 0
    for delay in (0.002, 0.005, 0.02, 0.05):
        p.tell(blob)
        assert interrupted(receive_forever, delay) < CONTROL_BACK
        interrupts += 1
        # drain what this round still has in flight
        while len(got) < 2 * interrupts:
            msg = p.listen(20)
            assert msg is not None, f"a message was lost after interrupt {interrupts}"
            got.append(msg)
    assert len(got) == 8
    for i in range(0, 8, 2):
        assert got[i] == want
        assert got[i + 1] == blob
    p.tell("stop")
    assert p.result() == 4


# -- Pool --------------------------------------------------------------------------------------


def _usable(pool: Pool) -> None:
    assert pool.map(fns.square, range(10)) == [x * x for x in range(10)]
    assert _wait_for(lambda: len(pool.model.workers) == 2)


def test_map_of_skprocess_targets_interrupted(pool: Pool):
    before = set(pool.model.workers)
    assert interrupted(lambda: pool.map(Slow, [30] * 4)) < CONTROL_BACK
    # the busy workers were killed and replaced
    assert _wait_for(lambda: not any(_alive(pid) for pid in before))
    _usable(pool)
    assert not set(pool.model.workers) & before


@pytest.mark.parametrize("method", ["imap", "unordered_imap"])
def test_imap_iteration_interrupted_midway(pool: Pool, method: str):
    it = getattr(pool, method)(fns.sleep_then, [0.01] * 4 + [30] * 4)
    first = [next(it) for _ in range(4)]
    assert first == [0.01] * 4
    assert interrupted(lambda: next(it)) < CONTROL_BACK
    # the iterator is finished, not left half-open
    with pytest.raises(StopIteration):
        next(it)
    _usable(pool)
    pool.close(timeout=10)
    assert not pool.is_open


# -- Share -------------------------------------------------------------------------------------


def test_share_call_interrupted_while_the_server_works():
    share = Share()
    try:
        share.sleeper = Sleeper()
        share.n = 1
        assert interrupted(lambda: share.sleeper.nap(2.0)) < CONTROL_BACK
        # the server finishes the interrupted call; every later request gets its own answer
        # (calls on shared objects stay out of assert statements: pytest rewrites them into
        # reads of a copy followed by a local call)
        share.n += 1
        n = share.n
        calls = share.sleeper.nap(0)
        stored = share.sleeper.calls
        assert (n, calls, stored) == (2, 2, 2)
        assert share.is_running and not share.has_error
    finally:
        share.exit()
