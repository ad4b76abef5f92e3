"""The public observer API: everything the engine does is published as small frozen events.

An observer is any object with one or more hook methods named after the events it wants::

    class Printer:
        def process_state(self, event):      # ProcessStateChanged
            print(event.process.name, event.state)

    sub = suitkaise_nb.events.subscribe(Printer())
    ...
    sub.close()                               # or events.unsubscribe(observer)

Hooks are indexed by name, so an event nobody listens to costs one dict lookup. Hooks run on
the engine's hub thread (``*_started`` hooks run on the thread that called ``start()``/``map``);
they must be quick. An observer whose hook raises is unsubscribed and the error is logged on
the ``suitkaise_nb`` logger: a broken view never breaks the work.

=====================  =========================================================
hook                   event
=====================  =========================================================
process_started        ProcessStarted      (caller's thread, right after start())
process_state          ProcessStateChanged (starting/running/stopping/finished/...)
process_progress       ProcessProgress     (batched: run count, section, timing samples)
process_message        ProcessMessage      (tell() in either direction)
process_output         ProcessOutput       (captured child stdout/stderr)
process_ended          ProcessEnded        (result or error known, process gone)
pool_started           PoolStarted         (caller's thread)
pool_progress          PoolProgress        (batched per chunk: items done, durations)
pool_worker            PoolWorkerChanged   (worker pid, idle/busy on item k)
pool_ended             PoolEnded
share_started          ShareStarted
share_changed          ShareChanged        (attributes changed, op counts)
share_stopped          ShareStopped
timer_created          TimerCreated        (a @timethis global timer appeared)
=====================  =========================================================
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the types of the events' fields (the layers above publish them)
    from ._engine._model import ProcessModel
    from ._engine._process import Skprocess
    from ._pool._model import CallModel, PoolModel
    from ._pool._pool import Pool
    from ._share._share import ShareModel
    from ._timing._timer import Sktimer

log = logging.getLogger("suitkaise_nb")

HOOKS = (
    "process_started",
    "process_state",
    "process_progress",
    "process_message",
    "process_output",
    "process_ended",
    "pool_started",
    "pool_progress",
    "pool_worker",
    "pool_ended",
    "share_started",
    "share_changed",
    "share_stopped",
    "timer_created",
)

_lock = threading.Lock()
# hook name -> tuple of bound hook methods (replaced, never mutated: readers need no lock)
by_hook: dict[str, tuple[Any, ...]] = {}
_observers: list[Any] = []


class Subscription:
    """Returned by :func:`subscribe`; ``close()`` (or ``with``) unsubscribes."""

    def __init__(self, observer: Any) -> None:
        self.observer = observer

    def close(self) -> None:
        unsubscribe(self.observer)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rebuild() -> None:
    table: dict[str, list[Any]] = {}
    for obs in _observers:
        for hook in HOOKS:
            fn = getattr(obs, hook, None)
            if callable(fn):
                table.setdefault(hook, []).append(fn)
    global by_hook
    by_hook = {k: tuple(v) for k, v in table.items()}


def subscribe(observer: Any) -> Subscription:
    """Register ``observer``; it must define at least one hook method (see module doc)."""
    if not any(callable(getattr(observer, h, None)) for h in HOOKS):
        raise TypeError(
            f"{observer!r} defines none of the observer hooks; define one of: {', '.join(HOOKS)}"
        )
    with _lock:
        if observer not in _observers:
            _observers.append(observer)
            _rebuild()
    return Subscription(observer)


def unsubscribe(observer: Any) -> None:
    """Remove ``observer`` (no error when it is not subscribed)."""
    with _lock:
        if observer in _observers:
            _observers.remove(observer)
            _rebuild()


def observers() -> list[Any]:
    """The subscribed observers, in subscription order."""
    with _lock:
        return list(_observers)


def has_observers(hook: str) -> bool:
    return hook in by_hook


def emit(hook: str, event: Any) -> None:
    """Deliver ``event`` to every observer of ``hook``; drop observers that raise."""
    fns = by_hook.get(hook)
    if not fns:
        return
    for fn in fns:
        try:
            fn(event)
        except Exception:
            owner = getattr(fn, "__self__", fn)
            log.exception("suitkaise_nb observer %r raised in %s and was disabled", owner, hook)
            unsubscribe(owner)


# -- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessStarted:
    process: ProcessModel
    handle: Skprocess  # the Skprocess object started


@dataclass(frozen=True, slots=True)
class ProcessStateChanged:
    process: ProcessModel
    state: str
    previous: str


@dataclass(frozen=True, slots=True)
class ProcessProgress:
    process: ProcessModel
    run: int
    section: str | None
    lives_left: int
    samples: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProcessMessage:
    process: ProcessModel
    direction: str  # "to_child" or "from_child"
    message: Any
    time: float


@dataclass(frozen=True, slots=True)
class ProcessOutput:
    process: ProcessModel
    stream: str  # "stdout" or "stderr"
    text: str


@dataclass(frozen=True, slots=True)
class ProcessEnded:
    process: ProcessModel
    state: str
    result: Any
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class PoolStarted:
    pool: PoolModel
    call: CallModel
    handle: Pool


@dataclass(frozen=True, slots=True)
class PoolProgress:
    pool: PoolModel
    call: CallModel
    done: int
    durations: list[float]


@dataclass(frozen=True, slots=True)
class PoolWorkerChanged:
    pool: PoolModel
    pid: int
    state: str  # "idle", "busy", "dead", "starting"
    item: int | None


@dataclass(frozen=True, slots=True)
class PoolEnded:
    pool: PoolModel
    call: CallModel
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class ShareStarted:
    share: ShareModel


@dataclass(frozen=True, slots=True)
class ShareChanged:
    share: ShareModel
    attributes: tuple[str, ...]
    ops: int


@dataclass(frozen=True, slots=True)
class ShareStopped:
    share: ShareModel


@dataclass(frozen=True, slots=True)
class TimerCreated:
    name: str
    timer: Sktimer
