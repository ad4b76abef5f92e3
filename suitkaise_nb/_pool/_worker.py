"""The pool worker loop (runs in a child).

A worker receives the job's callable once (FUNC), then chunks of consecutive items (CHUNK),
and answers each chunk with one RESULTS frame: the values, per-item durations (only when the
items are slow enough for timing to cost nothing; otherwise one average), and the first error
with its item index, type, pickled exception and traceback text.

Before each item the worker writes the item's index into a page shared with the parent
(``memfd``), so that if the worker dies the parent can name the exact item that killed it.
"""

from __future__ import annotations

import itertools
import mmap
import os
import pickle
import signal
import time
import traceback
from typing import Any

from .._engine import _barriers, _serial
from .._engine._child import ChildRuntime, _flush_std, route_std
from .._engine._wire import BlockingConn
from .._errors import EXC_RECIPE, short_repr
from ._protocol import (
    K_CANCEL,
    K_CHUNK,
    K_FORGET,
    K_FREED,
    K_FUNC,
    K_OUTPUT,
    K_RESULTS,
    UNLOADABLE,
    UNLOADED_CHUNK,
)

_perf = time.perf_counter


class _Target:
    __slots__ = ("fn", "is_process", "spec", "star")

    def __init__(self, fn: Any, star: bool) -> None:
        self.fn = fn
        self.star = star
        from .._engine._process import Skprocess

        self.is_process = isinstance(fn, type) and issubclass(fn, Skprocess)
        self.spec = getattr(fn, "_sk_autoreconnect", None) if self.is_process else None


def _run_process_item(target: _Target, item: Any) -> Any:
    """Build the Skprocess from the item and run its whole lifecycle here, in the worker."""
    from .._engine._child import run_lifecycle

    proc = target.fn(*item) if target.star else target.fn(item)
    if target.spec is not None:
        from .._engine._reconnect import reconnect_in_child

        err = reconnect_in_child(proc)
        if err is not None:
            raise err
    rt = ChildRuntime(None, {})
    proc.__dict__["_sk"] = rt
    outcome = run_lifecycle(proc, rt)
    if outcome.kind == "error":
        assert outcome.error is not None
        raise outcome.error
    return outcome.value


def _error_payload(index: int, item: Any, exc: BaseException) -> tuple[Any, ...]:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    remote_tb = getattr(exc, "remote_traceback", "")
    if remote_tb:
        tb = remote_tb
    return (
        index,
        short_repr(item),
        type(exc).__module__,
        type(exc).__qualname__,
        str(exc),
        _exception_blob(exc),
        tb,
    )


def _exception_blob(exc: BaseException) -> bytes | None:
    """The pickled exception, or, when it cannot be rebuilt from its pickle (an ``__init__``
    that takes other arguments than ``.args``, e.g. keyword-only ones), a recipe that rebuilds
    it without calling ``__init__``: (marker, class, args, attributes)."""
    try:
        blob = _serial.dumps_bytes(exc)
        pickle.loads(blob)  # what the parent will do: fails for such an __init__
        return blob
    except Exception:
        pass
    try:
        state = dict(getattr(exc, "__dict__", {}))
        return _serial.dumps_bytes((EXC_RECIPE, type(exc), exc.args, state))
    except Exception:
        try:
            return _serial.dumps_bytes((EXC_RECIPE, type(exc), exc.args, {}))
        except Exception:
            return None


#: the chunk running now: (index of its first item, the values computed so far)
_running: tuple[int, list[Any]] = (0, [])


def _current_item() -> int:
    """The index of the item running now (each item's value is appended when it returns)."""
    start, values = _running
    return start + len(values)


def execute_chunk(
    target: _Target | None,
    start: int,
    items: list[Any],
    timed: bool,
    cur: Any = None,
    cancelled: Any = None,
    budget: float | None = None,
) -> tuple[list[Any], list[float], Any, float] | None:
    """Run one chunk; (values, durations, first error or None, busy seconds), or None when
    ``cancelled()`` said to give up. Slow items (``timed``) are timed one by one and their
    index is published in ``cur`` before each; fast items run in a C-level ``map`` (only the
    chunk's range is published, so a crash names the range). With a ``budget`` (seconds; the
    first chunks of a call, before the cost of its items is known) the chunk may end early:
    the items left once it is spent are handed back unrun (fewer values and no error), for the
    parent to send again in chunks sized by what this one measured. Used by local workers and
    by Dask tasks alike."""
    global _running
    values: list[Any] = []
    durations: list[float] = []
    _running = (start, values)
    error = None
    t_chunk = _perf()
    if target is None:
        msg = "the job's function never arrived"
        error = (start, "", "builtins", "RuntimeError", msg, None, "")
    elif budget is not None and not target.is_process:
        fn = target.fn
        mapper: Any = itertools.starmap if target.star else map
        n, pos, step = len(items), 0, 1
        try:
            while pos < n:  # C-level maps over batches of 1, 2, 4, ... items
                end = min(n, pos + step)
                if cur is not None:
                    cur[0] = start + pos
                    cur[1] = start + end - 1
                values.extend(mapper(fn, items[pos:end]))
                pos = end
                step *= 2
                if _perf() - t_chunk >= budget:
                    break
        except BaseException as exc:
            error = _error_payload(start + len(values), items[len(values)], exc)
        timed = False  # one mean duration for the chunk, below
    elif not timed and not target.is_process:
        if cur is not None:
            cur[0] = start
            cur[1] = start + len(items) - 1
        try:
            if target.star:
                values.extend(itertools.starmap(target.fn, items))
            else:
                values.extend(map(target.fn, items))
        except BaseException as exc:
            error = _error_payload(start + len(values), items[len(values)], exc)
    else:
        fn, star, is_process = target.fn, target.star, target.is_process
        next_poll = t_chunk + 0.05
        i = start
        try:
            for item in items:
                if cur is not None:
                    cur[0] = cur[1] = i
                t0 = _perf()
                if is_process:
                    values.append(_run_process_item(target, item))
                elif star:
                    values.append(fn(*item))
                else:
                    values.append(fn(item))
                t1 = _perf()
                durations.append(t1 - t0)
                if cancelled is not None and t1 > next_poll:
                    next_poll = t1 + 0.05
                    if cancelled():
                        return None
                i += 1
                if budget is not None and t1 - t_chunk >= budget:
                    break  # hand the rest back (see the docstring)
        except BaseException as exc:
            error = _error_payload(i, items[i - start], exc)
    busy = _perf() - t_chunk
    if not timed and values:
        durations = [busy / len(values)]
    return values, durations, error, busy


def _deferred_errors(
    start: int, items: list[Any], values: list[Any], durations: list[float], error: Any
) -> tuple[list[Any], list[float], Any]:
    """Settle the chunk's Share writes sent without waiting. The first item whose write failed
    fails (the items before it keep their values); when an item failed by itself first, the
    write's error is noted on it."""
    errors = _barriers.take_errors()
    if not errors:
        return values, durations, error
    unknown = start + len(values)  # a unit not recorded: the item running at the end
    first, unit = min(errors, key=lambda pair: unknown if pair[1] is None else pair[1])
    k = len(values) if unit is None else max(0, min(unit - start, len(values)))
    for other, _unit in errors:
        if other is not first:
            first.add_note(_barriers.also_failed(other))
    if type(error) is tuple and error[0] <= start + k:
        # an item failed by itself first: its error wins, this one is noted
        return values, durations, (*error[:6], f"{error[6]}\n{_barriers.also_failed(first)}\n")
    if k >= len(items):
        k = len(items) - 1
    return values[:k], durations[:k], _error_payload(start + k, items[k], first)


def results_payload(
    job: int,
    chunk: int,
    start: int,
    items: list[Any],
    out: tuple[list[Any], list[float], Any, float],
) -> tuple[bytes, list[Any]]:
    """Serialize a chunk's answer; a value that cannot travel becomes that item's error."""
    values, durations, error, busy = out
    try:
        return _serial.dumps((job, chunk, values, durations, error, busy), what="result")
    except Exception:
        for k, v in enumerate(values):
            try:
                _serial.dumps(v)
            except Exception as exc:
                err = TypeError(
                    f"the result of this item could not be sent back: {type(exc).__name__}: {exc}"
                )
                error = _error_payload(start + k, items[k], err)
                values = values[:k]
                break
        return _serial.dumps((job, chunk, values, durations[: len(values)], error, busy))


class _Worker:
    def __init__(self, conn: BlockingConn, shm: mmap.mmap | None) -> None:
        self.conn = conn
        self.shm = shm
        # [first, last] index of the item(s) running now, readable by the parent
        self.cur = memoryview(shm).cast("q") if shm is not None else None
        self.targets: dict[int, _Target] = {}
        self.cancelled: set[int] = set()
        self.pending: list[Any] = []

    def set_current(self, index: int) -> None:
        if self.cur is not None:
            self.cur[0] = self.cur[1] = index

    def poll_cancel(self, job: int) -> bool:
        for f in self.conn.poll_frames():
            if f.kind == K_CANCEL:
                self.cancelled.add(pickle.loads(f.main))
            else:
                self.pending.append(f)
        return job in self.cancelled

    def run_chunk(
        self, job: int, chunk: int, start: int, items: list[Any], timed: bool, budget: float | None
    ) -> None:
        target = self.targets.get(job)
        out = execute_chunk(
            target, start, items, timed, self.cur, lambda: self.poll_cancel(job), budget
        )
        self.set_current(-1)
        if out is None:  # the parent no longer wants this chunk
            self.send_results(job, chunk, start, [], [], "cancelled", 0.0, [])
            return
        values, durations, error, busy = out
        # results mean "done": the items' Share writes are applied, and one that failed
        # fails the item that sent it
        values, durations, error = _deferred_errors(start, items, values, durations, error)
        self.send_results(job, chunk, start, values, durations, error, busy, items)

    def send_results(
        self,
        job: int,
        chunk: int,
        start: int,
        values: list[Any],
        durations: list[float],
        error: Any,
        busy: float,
        items: list[Any],
    ) -> None:
        data, bufs = results_payload(job, chunk, start, items, (values, durations, error, busy))
        _flush_std()
        freed = self.conn.reader.released_spills()
        if freed:  # before the results: the parent may reuse them for the chunk it sends next
            self.conn.send(K_FREED, pickle.dumps(freed))
        self.conn.send(K_RESULTS, data, bufs)

    def loop(self) -> int:
        conn = self.conn
        while True:
            if self.pending:
                f = self.pending.pop(0)
            else:
                try:
                    f = conn.recv()
                except (EOFError, OSError):
                    return 0
            if f is None:
                continue
            kind = f.kind
            if kind == K_CHUNK:
                try:
                    job, chunk, start, items, timed, budget = _serial.loads(
                        f.main, f.buffers, f.fds
                    )
                    f = None  # its buffers (memfd mappings) must not outlive the items
                except Exception as exc:
                    # an item that pickled in the parent but cannot be rebuilt here: a data
                    # error of this chunk (the parent knows which chunk: the oldest it sent
                    # us that is unanswered), not a reason for this worker to die
                    err = (-1, UNLOADABLE, *_error_payload(-1, None, exc)[2:])
                    self.conn.send(K_RESULTS, pickle.dumps((-1, UNLOADED_CHUNK, [], [], err, 0.0)))
                    continue
                if job in self.cancelled:
                    self.send_results(job, chunk, start, [], [], "cancelled", 0.0, [])
                    continue
                self.run_chunk(job, chunk, start, items, timed, budget)
            elif kind == K_FUNC:
                job, fn_blob, star = pickle.loads(f.main)
                try:
                    fn = _serial.loads(fn_blob)
                    self.targets[job] = _Target(fn, star)
                except BaseException as exc:
                    err = _error_payload(-1, None, exc)
                    self.conn.send(K_RESULTS, pickle.dumps((job, -1, [], [], err, 0.0)))
            elif kind == K_FORGET:
                job = pickle.loads(f.main)
                self.targets.pop(job, None)
                self.cancelled.discard(job)
            elif kind == K_CANCEL:
                self.cancelled.add(pickle.loads(f.main))


class _OutputForwarder:
    """In kernel mode: captured text goes to the parent as OUTPUT frames, in order."""

    def __init__(self, conn: BlockingConn) -> None:
        self.conn = conn

    def output(self, stream: str, text: str) -> None:
        try:
            self.conn.send(K_OUTPUT, pickle.dumps((stream, text)))
        except OSError:
            os._exit(1)

    def flush_soon(self) -> None:
        pass


def worker_main(conn: BlockingConn, payload: Any, header: dict[str, Any]) -> int:
    """Entry of a pool worker child."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means
    shm = None
    fd = payload.get("shm_fd")
    if fd is not None:
        try:
            shm = mmap.mmap(fd, 4096)
        finally:
            os.close(fd)
    route_std(_OutputForwarder(conn), bool(header.get("capture")))
    # each chunk's end reports what a deferred write raised, naming the item that sent it
    _barriers.allow_deferred(_current_item)
    conn.reader.mapped = []  # large items' memfds are reported back when unmapped (K_FREED)
    return _Worker(conn, shm).loop()
