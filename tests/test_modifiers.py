"""Tests for suitkaise_nb._modifiers: .timeout(), .background(), .asynced() on any callable."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import logging
import math
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import suitkaise_nb
from suitkaise_nb._modifiers import (
    AsyncCall,
    BackgroundCall,
    BoundModifiable,
    DeadlineExpired,
    Modifiable,
    TimedCall,
    check_deadline,
    modifiable,
    remaining,
)

# Every test here may start threads; none should take more than a couple of seconds.
pytestmark = pytest.mark.timeout(30)

# Loose upper bound on how late a timeout may fire: catches hangs, not jitter.
SLACK = 2.0


class CustomTimeout(Exception):
    """A timeout_error that is *not* a TimeoutError, to prove the configured type is used."""


# ---------------------------------------------------------------------------------------
# subjects
# ---------------------------------------------------------------------------------------


@modifiable
def add(a: int, b: int = 0) -> int:
    """Add two numbers."""
    return a + b


@modifiable(timeout_error=CustomTimeout)
def sleepy(seconds: float, value: Any = "done") -> Any:
    """Sleep, then return value (no native deadline support)."""
    time.sleep(seconds)
    return value


@modifiable
def fails(exc: BaseException) -> None:
    raise exc


class Worker:
    """A class using modifiable methods, both native (``_deadline``) and thread-based."""

    def __init__(self, value: int = 1) -> None:
        self.value = value
        self.deadlines: list[float | None] = []
        self.threads: list[threading.Thread] = []
        self.release = threading.Event()

    @modifiable(timeout_error=CustomTimeout)
    def wait(self, timeout: float | None = None, *, _deadline: float | None = None) -> bool:
        """Wait until released (native deadline)."""
        self.deadlines.append(_deadline)
        self.threads.append(threading.current_thread())
        while True:
            if self.release.wait(0.01):
                return True
            check_deadline(_deadline)
            if timeout is not None:
                return False

    @modifiable(timeout_error=CustomTimeout)
    def compute(self, x: int, delay: float = 0.0) -> int:
        """Multiply x by value after a delay (no native deadline)."""
        time.sleep(delay)
        return x * self.value

    @modifiable(timeout_error=CustomTimeout)
    def stream(self, n: int, *, _deadline: float | None = None) -> Iterator[int]:
        """Yield 0..n-1 slowly, honouring the deadline while iterating."""
        for i in range(n):
            if remaining(_deadline) == 0.0:
                raise DeadlineExpired
            time.sleep(0.05)
            yield i

    @modifiable
    def boom(self) -> None:
        raise ValueError("boom")


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def resolve(value: Any) -> Any:
    """Turn the return value of any modifier combination into its result."""
    if isinstance(value, concurrent.futures.Future):
        return value.result(timeout=10)
    if inspect.iscoroutine(value):
        return asyncio.run(value)
    return value


def apply_chain(target: Any, chain: tuple[str, ...], seconds: float = 5.0) -> Any:
    for step in chain:
        target = target.timeout(seconds) if step == "timeout" else getattr(target, step)()
    return target


VALID_CHAINS: list[tuple[str, ...]] = [
    (),
    ("timeout",),
    ("background",),
    ("asynced",),
    ("timeout", "background"),
    ("background", "timeout"),
    ("timeout", "asynced"),
    ("asynced", "timeout"),
    ("timeout", "timeout"),
    ("background", "background"),
    ("asynced", "asynced"),
    ("timeout", "background", "timeout"),
    ("asynced", "timeout", "asynced"),
]

INVALID_CHAINS: list[tuple[str, ...]] = [
    ("background", "asynced"),
    ("asynced", "background"),
    ("timeout", "background", "asynced"),
    ("timeout", "asynced", "background"),
    ("background", "timeout", "asynced"),
    ("asynced", "timeout", "background"),
]


def chain_id(chain: tuple[str, ...]) -> str:
    return ".".join(chain) or "plain"


# ---------------------------------------------------------------------------------------
# plain calls and binding
# ---------------------------------------------------------------------------------------


def test_plain_calls_go_straight_through() -> None:
    w = Worker(3)
    assert add(2, b=5) == 7
    assert w.compute(4) == 12
    assert Worker.compute(w, 5) == 15
    assert w.wait(timeout=0) is False
    assert w.deadlines == [None]  # a plain call passes no deadline


def test_descriptor_binding() -> None:
    w = Worker()
    assert isinstance(Worker.compute, Modifiable)
    assert Worker.__dict__["compute"] is Worker.compute
    bound = w.compute
    assert isinstance(bound, BoundModifiable)
    assert bound.__self__ is w
    assert bound.__func__ is Worker.compute
    assert bound == w.compute and hash(bound) == hash(w.compute)
    assert bound != Worker().compute
    assert isinstance(add, Modifiable)


def test_modifier_types() -> None:
    w = Worker()
    assert isinstance(add.timeout(1), TimedCall)
    assert isinstance(add.background(), BackgroundCall)
    assert isinstance(add.asynced(), AsyncCall)
    assert isinstance(w.compute.timeout(1).background(), BackgroundCall)
    assert isinstance(w.compute.asynced().timeout(1), AsyncCall)
    assert w.compute.timeout(3).seconds == 3.0
    assert w.compute.timeout(3).timeout(1).seconds == 1.0  # later timeout replaces
    assert w.compute.timeout(3).timeout(None).seconds is None


# ---------------------------------------------------------------------------------------
# every combination, on a function and on methods
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("chain", VALID_CHAINS, ids=chain_id)
def test_chain_on_plain_function(chain: tuple[str, ...]) -> None:
    call = apply_chain(add, chain)
    out = call(20, b=22)
    if "background" in chain:
        assert isinstance(out, concurrent.futures.Future)
    if "asynced" in chain:
        assert inspect.iscoroutine(out)
    assert resolve(out) == 42


@pytest.mark.parametrize("chain", VALID_CHAINS, ids=chain_id)
def test_chain_on_method_without_deadline(chain: tuple[str, ...]) -> None:
    w = Worker(7)
    assert resolve(apply_chain(w.compute, chain)(6)) == 42
    # the unbound form takes the instance explicitly
    assert resolve(apply_chain(Worker.compute, chain)(w, 2)) == 14


@pytest.mark.parametrize("chain", VALID_CHAINS, ids=chain_id)
def test_chain_on_native_deadline_method(chain: tuple[str, ...]) -> None:
    w = Worker()
    w.release.set()
    assert resolve(apply_chain(w.wait, chain, seconds=5.0)()) is True
    (deadline,) = w.deadlines
    if "timeout" in chain:
        assert deadline is not None
        assert 0.0 < deadline - time.monotonic() <= 5.0
    else:
        assert deadline is None


@pytest.mark.parametrize("chain", INVALID_CHAINS, ids=chain_id)
def test_background_and_asynced_cannot_combine(chain: tuple[str, ...]) -> None:
    for target in (add, Worker().compute):
        with pytest.raises(TypeError, match=r"\.background\(\) and \.asynced\(\)|cannot be"):
            apply_chain(target, chain)


# ---------------------------------------------------------------------------------------
# .timeout()
# ---------------------------------------------------------------------------------------


def test_native_timeout_raises_configured_error() -> None:
    w = Worker()
    start = time.monotonic()
    with pytest.raises(CustomTimeout) as info:
        w.wait.timeout(0.2)()
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 0.2 + SLACK
    assert "Worker.wait()" in str(info.value)
    assert "0.2 seconds" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert isinstance(w.deadlines[0], float)
    # native timeouts run the call in the calling thread, no helper thread
    assert w.threads == [threading.current_thread()]


def test_native_timeout_keeps_an_earlier_explicit_deadline() -> None:
    w = Worker()
    w.release.set()
    earlier = time.monotonic() + 1.0
    assert w.wait.timeout(60)(_deadline=earlier) is True
    assert w.deadlines == [earlier]


def test_native_timeout_guards_returned_generator() -> None:
    w = Worker()
    assert list(w.stream.timeout(5)(3)) == [0, 1, 2]
    got: list[int] = []
    with pytest.raises(CustomTimeout, match=r"Worker\.stream\(\) did not finish within 0\.12"):
        for item in w.stream.timeout(0.12)(100):
            got.append(item)
    assert 1 <= len(got) < 100


def test_plain_call_lets_deadline_expired_through() -> None:
    # Plain calls do no conversion: nested implementations forward _deadline themselves.
    w = Worker()
    with pytest.raises(DeadlineExpired):
        w.wait(_deadline=time.monotonic() - 1)
    assert issubclass(DeadlineExpired, TimeoutError)


def test_thread_timeout_raises_configured_error_and_call_keeps_running() -> None:
    finished = threading.Event()
    release = threading.Event()

    @modifiable(timeout_error=CustomTimeout)
    def blocker() -> str:
        release.wait(10)
        finished.set()
        return "late"

    start = time.monotonic()
    with pytest.raises(CustomTimeout, match=r"blocker\(\) did not finish within 0\.2 seconds"):
        blocker.timeout(0.2)()
    assert 0.2 <= time.monotonic() - start < 0.2 + SLACK
    assert not finished.is_set()  # the call is still running on its helper thread
    helpers = [t for t in threading.enumerate() if t.name.startswith("suitkaise_nb-timeout")]
    assert helpers and all(t.daemon for t in helpers)
    release.set()
    assert finished.wait(5)


def test_thread_timeout_on_method_and_default_error_type() -> None:
    w = Worker()
    with pytest.raises(CustomTimeout, match=r"Worker\.compute\(\)"):
        w.compute.timeout(0.1)(1, delay=0.6)
    assert w.compute.timeout(2)(5, delay=0.01) == 5

    @modifiable
    def slow() -> None:
        time.sleep(0.5)

    with pytest.raises(TimeoutError):
        slow.timeout(0.05)()


def test_thread_timeout_propagates_the_calls_own_errors() -> None:
    # A TimeoutError raised by the call itself must not be mistaken for expiry.
    with pytest.raises(TimeoutError, match="inner") as info:
        fails.timeout(5)(TimeoutError("inner"))
    assert str(info.value) == "inner"
    with pytest.raises(ValueError, match="boom"):
        Worker().boom.timeout(5)()


def test_timeout_none_and_inf_mean_no_limit() -> None:
    assert sleepy.timeout(None)(0, "x") == "x"
    assert sleepy.timeout(math.inf).seconds is None


@pytest.mark.parametrize("bad", [0, 0.0, -1, -0.5, math.nan, True, False])
def test_timeout_rejects_bad_values(bad: Any) -> None:
    for target in (add, Worker().wait, add.background(), Worker().compute.asynced()):
        with pytest.raises(ValueError, match="seconds"):
            target.timeout(bad)


@pytest.mark.parametrize("bad", ["5", [1], object()])
def test_timeout_rejects_non_numbers(bad: Any) -> None:
    with pytest.raises(TypeError, match="seconds"):
        add.timeout(bad)


# ---------------------------------------------------------------------------------------
# .background()
# ---------------------------------------------------------------------------------------


def test_background_returns_future_with_result_at_once() -> None:
    release = threading.Event()

    @modifiable
    def gated(x: int) -> int:
        release.wait(10)
        return x * 2

    future = gated.background()(21)
    assert isinstance(future, concurrent.futures.Future)
    assert not future.done()  # returned before the call finished
    release.set()
    assert future.result(timeout=10) == 42


def test_background_future_holds_the_exception() -> None:
    future = Worker().boom.background()()
    with pytest.raises(ValueError, match="boom"):
        future.result(timeout=10)
    assert isinstance(future.exception(), ValueError)


def test_background_thread_is_named_daemon_and_per_call() -> None:
    barrier = threading.Barrier(3, timeout=10)  # needs 3 calls running at the same time
    seen: list[threading.Thread] = []

    @modifiable
    def meet() -> None:
        seen.append(threading.current_thread())
        barrier.wait()

    futures = [meet.background()() for _ in range(3)]
    for f in futures:
        f.result(timeout=10)
    assert len({t.ident for t in seen}) == 3
    for t in seen:
        assert t.name.startswith("suitkaise_nb-background")
        assert "meet" in t.name
        assert t.daemon


def test_background_with_timeout_in_both_orders() -> None:
    w = Worker()
    for call in (w.wait.timeout(0.15).background(), w.wait.background().timeout(0.15)):
        start = time.monotonic()
        future = call()
        with pytest.raises(CustomTimeout):
            future.result(timeout=10)
        assert time.monotonic() - start < 0.15 + SLACK
    for sleepy_call in (sleepy.timeout(0.1).background(), sleepy.background().timeout(0.1)):
        with pytest.raises(CustomTimeout):
            sleepy_call(1).result(timeout=10)


def test_background_runs_in_a_copy_of_the_callers_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    @modifiable
    def read() -> str:
        return var.get()

    token = var.set("caller")
    try:
        assert read.background()().result(timeout=10) == "caller"
        assert asyncio.run(read.asynced()()) == "caller"
    finally:
        var.reset(token)


# ---------------------------------------------------------------------------------------
# .asynced()
# ---------------------------------------------------------------------------------------


def test_asynced_in_asyncio_run() -> None:
    w = Worker(2)
    coro = w.compute.asynced()(21)
    assert inspect.iscoroutine(coro)
    assert asyncio.run(coro) == 42


def test_asynced_inside_running_loop_does_not_block_it() -> None:
    async def main() -> tuple[int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        # a blocking 0.3 s call awaited from inside a coroutine of the running loop
        value = await Worker(3).compute.asynced()(5, delay=0.3)
        task.cancel()
        return value, ticks

    value, ticks = asyncio.run(main())
    assert value == 15
    assert ticks >= 5  # the loop kept running while the blocking call was in progress


def test_asynced_gather_runs_concurrently() -> None:
    async def main() -> list[Any]:
        return await asyncio.gather(
            sleepy.asynced()(0.4, "a"),
            sleepy.asynced()(0.4, "b"),
            Worker(1).compute.asynced()(9, delay=0.4),
        )

    start = time.monotonic()
    assert asyncio.run(main()) == ["a", "b", 9]
    elapsed = time.monotonic() - start
    assert elapsed < 1.0  # sequential would take 1.2 s


def test_asynced_with_timeout_in_both_orders() -> None:
    w = Worker()

    async def main() -> None:
        for call in (w.wait.asynced().timeout(0.15), w.wait.timeout(0.15).asynced()):
            with pytest.raises(CustomTimeout, match=r"Worker\.wait\(\)"):
                await call()
        with pytest.raises(CustomTimeout):
            await sleepy.asynced().timeout(0.1)(1)
        assert await sleepy.asynced().timeout(5)(0, "ok") == "ok"

    asyncio.run(main())


def test_asynced_propagates_exceptions() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="boom"):
            await Worker().boom.asynced()()

    asyncio.run(main())


def test_cancelling_the_awaiting_task_leaves_the_worker_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = threading.Event()
    finished = threading.Event()
    errors: list[BaseException] = []
    old_hook = threading.excepthook

    def hook(args: Any) -> None:
        errors.append(args.exc_value)

    threading.excepthook = hook

    @modifiable
    def blocking() -> str:
        started.set()
        time.sleep(0.3)
        finished.set()
        return "finished"

    async def main() -> None:
        task = asyncio.create_task(blocking.asynced()())
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # let the worker finish while the loop is still alive
        while not finished.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)

    try:
        with caplog.at_level(logging.DEBUG):
            asyncio.run(main())
            # and once more with the loop already closed when the worker finishes
            finished.clear()
            started.clear()
            asyncio.run(_cancel_early(blocking, started))
            assert finished.wait(5)
            time.sleep(0.05)
    finally:
        threading.excepthook = old_hook
    assert errors == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def _cancel_early(func: Callable[[], Any], started: threading.Event) -> None:
    task = asyncio.ensure_future(func.asynced()())  # type: ignore[attr-defined]
    while not started.is_set():
        await asyncio.sleep(0.01)
    task.cancel()


# ---------------------------------------------------------------------------------------
# metadata, repr, pickling, import side effects
# ---------------------------------------------------------------------------------------


def test_metadata_is_preserved() -> None:
    assert add.__name__ == "add"
    assert add.__qualname__ == "add"
    assert add.__doc__ == "Add two numbers."
    assert add.__module__ == __name__
    assert inspect.signature(add) == inspect.signature(add.__wrapped__)
    assert str(inspect.signature(add)) == "(a: 'int', b: 'int' = 0) -> 'int'"

    w = Worker()
    assert Worker.wait.__qualname__ == "Worker.wait"
    assert Worker.wait.__doc__ == "Wait until released (native deadline)."
    bound = w.wait
    assert bound.__name__ == "wait"
    assert bound.__qualname__ == "Worker.wait"
    assert bound.__doc__ == "Wait until released (native deadline)."
    assert bound.__wrapped__.__self__ is w  # type: ignore[attr-defined]
    assert "self" not in inspect.signature(bound).parameters
    assert "self" in inspect.signature(Worker.wait).parameters
    call = w.wait.timeout(1).background()
    assert call.__name__ == "wait" and call.__qualname__ == "Worker.wait"
    assert call.__doc__ == "Wait until released (native deadline)."
    assert inspect.getdoc(w.wait) == "Wait until released (native deadline)."


def test_native_detection_and_error_type() -> None:
    assert Worker.wait.native_deadline and Worker().stream.native_deadline
    assert not Worker.compute.native_deadline and not add.native_deadline
    assert Worker.wait.timeout_error is CustomTimeout
    assert Worker().wait.timeout(1).timeout_error is CustomTimeout
    assert add.timeout_error is TimeoutError


def test_repr() -> None:
    w = Worker()
    assert repr(w.wait) == "<modifiable bound method Worker.wait>"
    assert repr(Worker.wait) == "<modifiable function Worker.wait>"
    assert repr(add) == "<modifiable function add>"
    assert repr(w.wait.timeout(5).background()) == (
        "<modifiable bound method Worker.wait .timeout(5) .background()>"
    )
    assert repr(add.asynced().timeout(0.5)) == "<modifiable function add .timeout(0.5) .asynced()>"


def test_decorator_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="exception class"):
        modifiable(timeout_error=int)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        modifiable(42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="staticmethod"):
        modifiable(staticmethod(len))


def test_pickling() -> None:
    assert pickle.loads(pickle.dumps(add)) is add
    assert pickle.loads(pickle.dumps(Worker.wait)) is Worker.wait
    w = Worker(5)
    w.release = None  # type: ignore[assignment]  # Events do not pickle; the rest must
    clone = pickle.loads(pickle.dumps(w))
    assert clone.value == 5 and clone.compute(2) == 10
    bound = pickle.loads(pickle.dumps(w.compute))
    assert isinstance(bound, BoundModifiable) and bound(3) == 15
    call = pickle.loads(pickle.dumps(w.compute.timeout(2).background()))
    assert isinstance(call, BackgroundCall) and call.seconds == 2.0
    assert call(4).result(timeout=10) == 20
    assert pickle.loads(pickle.dumps(add.asynced())).__class__ is AsyncCall


def test_remaining_and_check_deadline() -> None:
    assert remaining(None) is None
    assert remaining(time.monotonic() - 5) == 0.0
    left = remaining(time.monotonic() + 10)
    assert left is not None and 9.0 < left <= 10.0
    check_deadline(None)
    check_deadline(time.monotonic() + 10)
    with pytest.raises(DeadlineExpired):
        check_deadline(time.monotonic() - 0.001)


def test_import_starts_no_threads() -> None:
    code = (
        "import threading, sys\n"
        "before = threading.active_count()\n"
        "import suitkaise_nb._modifiers\n"
        "assert threading.active_count() == before, threading.enumerate()\n"
        "print('ok')\n"
    )
    root = Path(suitkaise_nb.__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=root,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
