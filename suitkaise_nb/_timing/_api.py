"""The friendly half of :mod:`suitkaise_nb.timing`: context manager, decorator, helpers.

::

    TimeThis(timer=None, threshold=0.0)   with-block  -> timer.start() ... timer.discard()
                                                         + add_time(elapsed) if >= threshold
    @timethis(timer=None, ...)            wrapper     -> perf_counter around each call
        └── no timer given: a global timer, registered as "<module>.<qualname>"
            (stacked: "<module>.<qualname>#2", "#3", ... outward)
    _global_timers: name -> Sktimer      read with global_timers(), emptied by
                                          clear_global_timers(); subscribers in
                                          _on_global_timer_created get (name, timer)
    time(), sleep(s), sleep.asynced()(s), elapsed(t1, t2=None)

Design notes:

* ``@timethis`` measures each call with its own ``perf_counter`` pair instead of the
  timer's per-thread session, so recursive calls, concurrent coroutines on one event loop
  and threads all record correct, independent durations. A call that raises is recorded
  too (it took that long).
* ``TimeThis`` uses the timer's session (``start``/``discard``) so that ``pause()``,
  ``resume()`` and ``lap()`` work on the bound timer inside the block; nesting is fine.
* Re-decorating a function with the same name (re-running a notebook cell) registers a
  fresh timer under that name, replacing the old entry.
* Nothing here imports asyncio or inspect until it is needed.
"""

import functools
import logging
import numbers
import threading
import time as _time
import weakref
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, Protocol, Self, TypeVar, cast, overload

from ._timer import Sktimer, _check_max_times, _check_seconds, session_depth

__all__ = [
    "Sktimer",
    "TimeThis",
    "clear_global_timers",
    "elapsed",
    "global_timers",
    "sleep",
    "time",
    "timethis",
]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

_log = logging.getLogger("suitkaise_nb")

_global_timers: dict[str, Sktimer] = {}
#: a @timethis wrapper -> (timers @timethis created automatically on it, the innermost one),
#: for @timethis stacked on top of it
_stacked: weakref.WeakKeyDictionary[Any, tuple[int, Sktimer | None]] = weakref.WeakKeyDictionary()
_global_timers_lock = threading.Lock()
# Called as callback(name, timer) each time timethis creates a global timer (for example
# by a live dashboard). A callback that raises is removed and the error is logged.
_on_global_timer_created: list[Callable[[str, Sktimer], object]] = []


# --------------------------------------------------------------------------- registry


def global_timers() -> dict[str, Sktimer]:
    """A copy of the registry of timers created by ``@timethis()``: name -> Sktimer."""
    with _global_timers_lock:
        return dict(_global_timers)


def clear_global_timers() -> None:
    """Empty the registry of ``@timethis()`` timers.

    Decorated functions keep their ``.timer`` (and keep recording into it); the timers are
    only forgotten by the registry, not reset.
    """
    with _global_timers_lock:
        _global_timers.clear()


def _register_global_timer(name: str, timer: Sktimer) -> None:
    with _global_timers_lock:
        _global_timers[name] = timer
    for callback in list(_on_global_timer_created):
        try:
            callback(name, timer)
        except Exception:
            try:
                _on_global_timer_created.remove(callback)
            except ValueError:
                pass
            _log.exception(
                "timer-created callback %r raised and was unsubscribed (timer %r)",
                callback,
                name,
            )


def _timer_name(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", None) or "<unknown>"
    qualname = (
        getattr(func, "__qualname__", None)
        or getattr(func, "__name__", None)
        or type(func).__qualname__
    )
    return f"{module}.{qualname}"


def _check_threshold(threshold: object) -> float:
    return _check_seconds(threshold, "threshold")


# --------------------------------------------------------------------------- TimeThis


class TimeThis:
    """Time a ``with`` block; ``as`` binds the :class:`Sktimer` that records it.

    >>> with TimeThis() as t:      # a new timer
    ...     work()                 # doctest: +SKIP
    >>> t.most_recent              # doctest: +SKIP

    ``timer``: record into this timer instead of a new one. ``threshold``: record only when
    the block took at least this many seconds. The block is recorded even if it raises.
    Inside the block the bound timer's ``pause()``/``resume()``/``lap()`` apply to it.
    The measurement belongs to the calling thread; to time coroutines that run
    concurrently on one event loop, decorate them with ``@timethis()`` instead.
    """

    def __init__(self, timer: Sktimer | None = None, threshold: float = 0.0) -> None:
        if timer is not None and not isinstance(timer, Sktimer):
            raise TypeError(f"TimeThis(timer=...) takes an Sktimer, got {type(timer).__name__}")
        self.timer: Sktimer = timer if timer is not None else Sktimer()
        self.threshold: float = _check_threshold(threshold)
        # per thread: the timer's session depth right after each __enter__ (to notice a
        # block that stopped the timer itself)
        self._depths: dict[int, list[int]] = {}

    def __enter__(self) -> Sktimer:
        self.timer.start()
        self._depths.setdefault(threading.get_ident(), []).append(session_depth(self.timer))
        return self.timer

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ident = threading.get_ident()
        depths = self._depths.get(ident)
        depth = depths.pop() if depths else 0
        if not depths:
            self._depths.pop(ident, None)
        timer = self.timer
        if session_depth(timer) < depth:  # the block already called stop()/discard()
            return
        elapsed = timer.discard()
        if exc_type is None and elapsed >= self.threshold:  # a block that raised: not timed
            timer.add_time(elapsed)

    def __repr__(self) -> str:
        return f"TimeThis(timer={self.timer!r}, threshold={self.threshold!r})"


# --------------------------------------------------------------------------- timethis


class TimedFunction(Protocol[P, R_co]):
    """What ``@timethis()`` returns: the function, plus the timer it records into."""

    timer: Sktimer

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    # Used as a method, the wrapper binds like a function (typed loosely when bound).
    @overload
    def __get__(self, obj: None, objtype: type | None = None, /) -> Self: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None, /) -> Callable[..., R_co]: ...


def timethis(
    timer: Sktimer | None = None,
    threshold: float = 0.0,
    max_times: int | None = None,
) -> Callable[[Callable[P, R]], TimedFunction[P, R]]:
    """Decorator factory that times every call of a function: ``@timethis()``.

    Without ``timer`` a new global timer is created and registered under
    ``"<module>.<qualname>"`` (see ``global_timers()``); ``max_times`` sets its rolling
    window (or, with an explicit ``timer``, that timer's). Calls shorter than ``threshold``
    seconds are not recorded. Async functions are timed over the awaited call.

    The wrapper's ``.timer`` is the timer it records into. When several ``@timethis()`` are
    stacked on one function, every layer records into its own timer and ``.timer`` of the
    outermost wrapper is the innermost auto-created one.
    """
    if timer is not None and not isinstance(timer, Sktimer):
        if callable(timer):
            raise TypeError("timethis is a decorator factory: write @timethis(), not @timethis")
        raise TypeError(f"timethis(timer=...) takes an Sktimer, got {type(timer).__name__}")
    min_elapsed = _check_threshold(threshold)
    window = _check_max_times(max_times)

    def decorate(func: Callable[P, R]) -> TimedFunction[P, R]:
        import inspect

        if not callable(func):
            raise TypeError(f"@timethis() decorates a callable, got {type(func).__name__}")
        below = _stacked.get(func, (0, None))  # @timethis already applied under this one
        autos_below: int = below[0]
        innermost_auto: Sktimer | None = below[1]
        name: str | None = None
        if timer is None:
            own = Sktimer(max_times=window)
            base = _timer_name(func)
            name = base if autos_below == 0 else f"{base}#{autos_below + 1}"
            if innermost_auto is None:
                innermost_auto = own
            autos = autos_below + 1
        else:
            own = timer
            if window is not None:
                own.set_max_times(window)
            autos = autos_below

        record = own.add_time
        wrapper: Callable[..., Any]
        if inspect.iscoroutinefunction(func):
            async_func = cast(Callable[..., Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                t0 = _time.perf_counter()
                value = await async_func(*args, **kwargs)  # a call that raises is not timed
                took = _time.perf_counter() - t0
                if took >= min_elapsed:
                    record(took if took > 0.0 else 0.0)
                return value

            wrapper = async_wrapper
        else:

            @functools.wraps(func)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                t0 = _time.perf_counter()
                value = func(*args, **kwargs)  # a call that raises is not timed
                took = _time.perf_counter() - t0
                if took >= min_elapsed:
                    record(took if took > 0.0 else 0.0)
                return value

            wrapper = sync_wrapper

        timed = cast(Any, wrapper)
        timed.timer = innermost_auto if innermost_auto is not None else own
        _stacked[timed] = (autos, innermost_auto)
        if name is not None:
            _register_global_timer(name, own)
        return cast(TimedFunction[P, R], timed)

    return decorate


# --------------------------------------------------------------------------- helpers


def time() -> float:
    """Wall-clock time in seconds since the epoch (``time.time()``)."""
    return _time.time()


def elapsed(t1: float, t2: float | None = None) -> float:
    """Seconds between two ``time()`` readings, order-insensitive; ``t2`` defaults to now."""
    end = _time.time() if t2 is None else _as_float(t2, "t2")
    return abs(end - _as_float(t1, "t1"))


def _as_float(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"elapsed(): {what} must be a number, got {value!r}")
    return float(value)


class _Sleep:
    """``sleep(seconds)`` blocks; ``await sleep.asynced()(seconds)`` does not."""

    def __call__(self, seconds: float) -> float:
        """Block the calling thread for ``seconds`` (finite, >= 0); the time after it."""
        _time.sleep(_check_seconds(seconds, "sleep(seconds)"))
        return _time.time()

    def asynced(self) -> Callable[[float], Awaitable[float]]:
        """The non-blocking version, for ``await sleep.asynced()(seconds)``."""
        return _async_sleep

    def __repr__(self) -> str:
        return f"<function {self.__module__}.sleep>"

    def __reduce__(self) -> str:
        return "sleep"  # pickled by reference to the module-level instance


def _async_sleep(seconds: float) -> Awaitable[float]:
    """Validate now, then return a coroutine that sleeps and gives the time after it."""
    checked = _check_seconds(seconds, "sleep(seconds)")
    import asyncio

    async def sleep_then_time() -> float:
        await asyncio.sleep(checked)
        return _time.time()

    return sleep_then_time()


sleep: _Sleep = _Sleep()
