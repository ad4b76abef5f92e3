"""``Pool``: persistent worker processes and the map family.

================================  ==============================================================
call                              returns
================================  ==============================================================
``pool.map(fn, items)``           list, in input order
``pool.unordered_map(fn, items)``  list, in completion order
``pool.imap(fn, items)``          iterator, in input order (input pulled lazily, bounded)
``pool.unordered_imap(fn, it)``   iterator, in completion order
``pool.star().map(fn, pairs)``    same, with each item unpacked: ``fn(*item)``
``.timeout(s)``                   map/unordered_map: the whole call; imap: each item.
                                  Expiry raises TimeoutError; busy workers are killed, replaced
``.background()`` / ``.asynced()``  a Future / an awaitable
================================  ==============================================================

``fn`` may be a function (lambdas and functions typed into notebook cells travel by value) or
an Skprocess subclass: each item builds an instance (``Cls(item)`` or ``Cls(*item)``) which
runs its whole lifecycle in a worker and contributes its ``__result__``.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from .. import _events
from .._engine import _barriers, _serial
from .._engine._launcher import track, untrack
from .._errors import DeadlineExpired, Expired, PoolClosedError
from .._modifiers import check_timeout, modifiable
from ._core import PoolCore
from ._job import Job
from ._local import LocalBackend
from ._slot import Backend


def _check_target(fn: Any) -> None:
    if not callable(fn):
        raise TypeError(
            f"the first argument must be a function or an Skprocess subclass, got {fn!r}"
        )
    from .._engine._process import Skprocess

    if isinstance(fn, Skprocess):
        raise TypeError(
            f"pass the Skprocess class ({type(fn).__name__}), not an instance: the pool builds "
            "one instance per item"
        )


_ON_HUB = (
    "a Pool call or a Pool iterator was used on suitkaise_nb's hub thread (from an event "
    "observer, say): that thread delivers every result, so the call would wait forever. Make "
    "the call from your own thread instead."
)


def _check_iterable(items: Any) -> None:
    if isinstance(items, str | bytes) or not hasattr(items, "__iter__"):
        raise TypeError(f"the second argument must be an iterable of items, got {items!r}")


def _pool_method(f: Any) -> Any:
    """Name the method ``Pool.<name>`` in messages (``Pool.map() did not finish ...``)."""
    f.__qualname__ = f"Pool.{f.__name__}"
    return f


class _MapMethods:
    """The map family, shared by Pool and its ``star()`` view."""

    _core: PoolCore
    _star: bool
    _owner: Any

    def _job(self, fn: Any, items: Iterable[Any], kind: str, ordered: bool, lazy: bool) -> Job:
        _check_target(fn)
        _check_iterable(items)
        core = self._core
        if core.closed or core.closing:
            raise PoolClosedError("this pool is closed; create a new Pool")
        if core.hub.in_hub_thread:
            raise RuntimeError(_ON_HUB)
        _barriers.settle()  # the workers must see this process's pipelined Share writes
        spec = getattr(fn, "_sk_autoreconnect", None) if isinstance(fn, type) else None
        if spec is not None:
            items = _prepickled(items, spec)
        job = Job(fn, items, star=self._star, ordered=ordered, lazy=lazy, kind=kind)
        job.spec = None  # the items are already reduced (see _prepickled)
        if _events.has_observers("pool_started"):
            _events.emit("pool_started", _events.PoolStarted(core.model, job.call, self._owner))
        core.submit(job)
        return job

    def _collect(self, job: Job, deadline: float | None, ordered: bool) -> list[Any]:
        core = self._core
        try:
            if ordered:
                return job.wait_list(deadline)
            out: list[Any] = []
            while True:
                ok, value = job.take_next(deadline)
                if not ok:
                    return out
                out.append(value)
        except Expired:
            core.abort(job, TimeoutError("the pool call timed out"), kill=True)
            raise DeadlineExpired() from None
        except KeyboardInterrupt:
            core.abort(job, KeyboardInterrupt(), kill=True)
            # a fresh exception: its traceback stops here, without the waiting frames
            # (threading, the dispatcher), which IPython takes seconds to render in Context mode
            raise KeyboardInterrupt() from None
        except BaseException:
            if job.error is None:
                core.abort(job, PoolClosedError("the call was abandoned"), kill=False)
            raise

    def _iterate(self, job: Job, item_timeout: float | None) -> Iterator[Any]:
        import time

        core = self._core
        finished = False
        if core.hub.in_hub_thread:  # e.g. read by an event observer
            job.fail(RuntimeError(_ON_HUB), None)
            core.abort(job, RuntimeError(_ON_HUB), kill=False)
            raise RuntimeError(_ON_HUB)
        try:
            while True:
                deadline = None if item_timeout is None else time.monotonic() + item_timeout
                try:
                    ok, value = job.take_next(deadline)
                except Expired:
                    core.abort(job, TimeoutError("an imap item timed out"), kill=True)
                    raise TimeoutError(
                        f"the next item did not arrive within {item_timeout:.3g} seconds"
                    ) from None
                if not ok:
                    finished = True
                    return
                core.consumed(job)
                yield value
        except KeyboardInterrupt:
            core.abort(job, KeyboardInterrupt(), kill=True)
            finished = True
            raise KeyboardInterrupt() from None  # a short traceback, see _collect
        finally:
            if not finished and job.error is None and not job.finished:
                core.abort(job, PoolClosedError("the iteration was abandoned"), kill=False)

    @modifiable(timeout_error=TimeoutError)
    @_pool_method
    def map(self, fn: Any, items: Iterable[Any], /, *, _deadline: float | None = None) -> list[Any]:
        """``[fn(x) for x in items]`` across the workers, in input order."""
        return self._collect(self._job(fn, items, "map", True, False), _deadline, True)

    @modifiable(timeout_error=TimeoutError)
    @_pool_method
    def unordered_map(
        self, fn: Any, items: Iterable[Any], /, *, _deadline: float | None = None
    ) -> list[Any]:
        """Like ``map`` but the list is in completion order (fast items first)."""
        return self._collect(self._job(fn, items, "unordered_map", False, False), _deadline, False)

    @modifiable(timeout_error=TimeoutError, collect=True)
    @_pool_method
    def imap(
        self, fn: Any, items: Iterable[Any], /, *, _deadline: float | None = None
    ) -> Iterator[Any]:
        """An iterator of results in input order; the input is consumed lazily."""
        item_timeout = _seconds_left(_deadline)
        return self._iterate(self._job(fn, items, "imap", True, True), item_timeout)

    @modifiable(timeout_error=TimeoutError, collect=True)
    @_pool_method
    def unordered_imap(
        self, fn: Any, items: Iterable[Any], /, *, _deadline: float | None = None
    ) -> Iterator[Any]:
        """An iterator of results in completion order; the input is consumed lazily."""
        item_timeout = _seconds_left(_deadline)
        return self._iterate(self._job(fn, items, "unordered_imap", False, True), item_timeout)


class _Blob:
    """An item pickled ahead of time; it unpickles into the item itself in the worker."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __reduce__(self) -> Any:
        return (_serial.loads, (self.data,))


def _prepickled(items: Iterable[Any], spec: Any) -> list[_Blob]:
    """Items for an ``@autoreconnect`` target are reduced here, in the calling thread: live
    connections must be described by the thread that owns them (sqlite3 refuses others),
    and the dispatcher pickles on its own thread."""
    from .._engine._reconnect import reconnect_shipping

    out = []
    for i, item in enumerate(items):
        with reconnect_shipping(spec, item, f"item {i}"):
            out.append(_Blob(_serial.dumps_bytes(item, what=f"item {i}")))
    return out


def _seconds_left(deadline: float | None) -> float | None:
    """``.timeout(s)`` on imap bounds each item: turn the deadline back into seconds."""
    if deadline is None:
        return None
    import time

    return max(0.0, deadline - time.monotonic())


class _StarPool(_MapMethods):
    """``pool.star()``: the same methods, with every item unpacked as ``fn(*item)``."""

    def __init__(self, core: PoolCore, pool: Pool) -> None:
        self._core = core
        self._star = True
        self._owner = pool

    def __repr__(self) -> str:
        return f"<star view of {self._owner!r}>"


class Pool(_MapMethods):
    """A pool of persistent worker processes.

    ``Pool(workers=None)`` starts ``os.cpu_count()`` workers (the same safe way as an
    Skprocess) that are reused by every call until ``close()`` (waits for running calls) or
    ``terminate()`` (kills). Use it as a context manager.
    """

    def __init__(
        self, workers: int | None = None, *, client: Any = None, _backend: Backend | None = None
    ) -> None:
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
        ):
            raise ValueError(f"workers must be a positive int or None, got {workers!r}")
        self._star = False
        self._own_client = None
        if _backend is not None:  # tests: e.g. _inline.InlineBackend (chunks run in-process)
            backend: Backend = _backend
            workers = workers or 2
        elif client is not None:
            from ._dask import import_distributed

            distributed = import_distributed()
            if isinstance(client, str):
                client = self._own_client = distributed.Client(client)
            elif not isinstance(client, distributed.Client):
                raise TypeError(
                    f"client must be a distributed.Client or a scheduler address, got {client!r}"
                )
            if workers is None:
                workers = sum(client.nthreads().values()) or 1
            from ._dask import DaskBackend

            backend = DaskBackend(client)
        else:
            if workers is None:
                workers = os.cpu_count() or 1
            backend = LocalBackend()
        self._core = PoolCore(workers, backend)
        self._core.start()
        self._core.model.handle_ref = weakref.ref(self)
        track(self, self._shutdown_at_exit)
        self._finalizer = weakref.finalize(self, _finalize, self._core)

    @property
    def _owner(self) -> Pool:  # not an attribute: a Pool must not refer to itself (a cycle
        return self  # would leave it to the cyclic collector, on whatever thread it runs)

    @property
    def workers(self) -> int:
        """The number of worker processes."""
        return self._core.size

    @property
    def model(self) -> Any:
        """The observable model the views read."""
        return self._core.model

    @property
    def is_open(self) -> bool:
        return not (self._core.closed or self._core.closing)

    def star(self) -> _StarPool:
        """A view whose map methods call ``fn(*item)`` for each item (a tuple)."""
        return _StarPool(self._core, self)

    def cancel(self) -> None:
        """Cancel the calls running now (their callers get PoolClosedError); the busy workers
        are killed and replaced, and the pool stays usable."""
        core = self._core
        for job in list(core.jobs):
            core.abort(job, PoolClosedError("the call was cancelled"), kill=True)

    def close(self, timeout: float | None = None) -> None:
        """Wait for running calls to finish, then stop the workers (at most ``timeout``
        seconds; None or inf: as long as it takes)."""
        self._core.close(check_timeout(timeout))
        self._close_client()
        untrack(self)

    def terminate(self) -> None:
        """Kill the workers now; running calls raise PoolClosedError."""
        self._core.terminate()
        self._close_client()
        untrack(self)

    def _close_client(self) -> None:
        if self._own_client is not None:
            self._own_client.close()
            self._own_client = None

    def _shutdown_at_exit(self) -> None:
        self._core.terminate()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.terminate()

    def __repr__(self) -> str:
        state = self._core.model.state
        backend = "" if self._core.model.backend == "local" else f" on {self._core.model.backend}"
        return f"<Pool workers={self._core.size}{backend} {state}>"


def _finalize(core: PoolCore) -> None:
    """A Pool nobody closed was collected (``pool = Pool()`` run again, a cycle freed by the
    collector on any thread, the hub's included): its workers are killed without waiting."""
    if not core.closed:
        try:
            core.terminate(wait=False)
        except Exception:
            pass
