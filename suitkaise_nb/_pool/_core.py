"""The pool dispatcher: jobs, chunks and slots, driven by the engine's hub thread.

::

    caller thread                         hub thread                          workers (slots)
    ─────────────                         ──────────                          ───────────────
    Pool.map(fn, items) ─submit(job)─►  dispatch(): for each slot with room   FUNC once per job
         │                               pull a chunk from the job's input ─► CHUNK (start, items)
         │                               (adaptive size: ~100 ms of work)
         │   ◄──── cond.notify ──────── on RESULTS: store values, count,   ◄── RESULTS
    wait / iterate                       re-estimate item cost, dispatch       (values, durations,
                                                                                first error)
    A slot that dies: its exit report names the item it was running (shared page), the job
    fails with WorkerDiedError, chunks it had queued go back to their jobs, a new worker is
    started. Timeouts and KeyboardInterrupt abort the job: chunks are cancelled, busy workers
    are killed and replaced.

One core loop serves every method: ``map`` collects an ordered job, ``imap`` iterates one
(bounded: the input is pulled lazily, at most a window of items ahead of the consumer),
``unordered_*`` take values in completion order. The calls are ``Job`` objects (``_job``). A
backend only provides slots, behind the ``Slot`` protocol (``_slot``): persistent worker
processes (``_local``), tasks on a Dask cluster (``_dask``), or this very process for tests
(``_inline``). Nothing here depends on which.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from .. import _errors as _remote
from .. import _events
from .._engine import _serial
from .._engine._launcher import describe_exit
from .._errors import (
    PoolClosedError,
    ShippingError,
    WorkerDiedError,
)
from ._job import DEPTH, TIMED_ITEM_SECONDS, Job
from ._model import PoolModel
from ._protocol import (
    UNLOADED_CHUNK,
)
from ._slot import Backend, Slot

_chunk_ids = itertools.count(1)


def _guarded(method: Any) -> Any:
    """A dispatcher method run by the hub thread: an exception in it (a bug, or something a
    user object did that we did not foresee) fails the calls of this pool, with the error,
    instead of leaving their callers waiting for results that will never come."""

    def guarded(self: PoolCore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            self._broken(exc)
            return None

    guarded.__name__ = method.__name__
    guarded.__doc__ = method.__doc__
    return guarded


class PoolCore:
    """Everything a Pool does, minus the public API (which lives in ``_pool``)."""

    def __init__(self, workers: int, backend: Backend) -> None:
        self.backend = backend
        self.hub = backend.hub()
        self.size = workers
        self.model = PoolModel(workers, backend.name)
        self.model.worker_label = backend.worker_label
        self.model._probe = self.current_items  # noqa: SLF001  (the model's reader, given once)
        self.slots: list[Any] = []
        self.jobs: list[Job] = []
        self.chunks: dict[int, tuple[Job, int, list[Any], Any]] = {}
        self.lock = threading.Lock()
        self.closing = False
        self.closed = False
        self.all_gone = threading.Event()
        self._rr = 0
        self.owner_model: Any = self.model
        self.closer: int | None = None  # the thread waiting in close()

    def _broken(self, exc: BaseException) -> None:
        exc.add_note("(raised in the pool's dispatcher thread; the pool's running calls fail)")
        for job in list(self.jobs):
            if job.finished:
                continue
            job.fail(exc, None)
            try:
                for chunk_id, (slot, _start, _items) in list(job.in_flight.items()):
                    slot.abort_chunk(job, chunk_id, False)
            except Exception:
                pass
            job.in_flight.clear()
            job.retry.clear()
            try:
                self._end_job_if_done(job)
            except Exception:
                if job in self.jobs:
                    self.jobs.remove(job)
                job.finish()

    def current_items(self) -> dict[int, tuple[int, int] | None]:
        """pid -> (first, last) item each worker runs now (see ``PoolModel.current_items``)."""
        return {s.pid: s.current_items for s in list(self.slots)}

    # -- slots --------------------------------------------------------------------------------
    def start(self) -> None:
        """Make the backend's slots (on the caller's thread: a local backend waits for spares)."""
        self.backend.start(self)

    def add_slot(self, slot: Slot) -> None:
        """A slot joins the pool (any thread before it is used; the hub thread after)."""
        self.slots.append(slot)
        self.model.workers[slot.pid] = slot.info
        self._worker_event(slot, "idle", None)

    # -- submitting (caller thread) -------------------------------------------------------
    def submit(self, job: Job) -> None:
        if self.closed or self.closing:
            raise PoolClosedError("the pool is closed; create a new Pool")
        job.fn_blob = _serial.dumps_function(job.target, what=_name(job.target))
        job.target_seconds = self.backend.chunk_seconds
        self.model.calls.append(job.call)
        if len(self.model.calls) > 200:
            del self.model.calls[:100]
        hub, poke = self.hub, self.poke
        job.wake = lambda: hub.call_soon(poke, job)
        self.hub.call_soon(self._add_job, job)
        job.feed()  # the first items, read here before anyone waits

    @_guarded
    def _add_job(self, job: Job) -> None:
        self.jobs.append(job)
        self.poke(job)

    @_guarded
    def poke(self, job: Job) -> None:
        """News from a job's reader (input read, or the input failed): send work, or end it."""
        self._end_job_if_done(job)
        self.dispatch()

    def consumed(self, job: Job) -> None:
        """The consumer took a value: a throttled lazy job may pull more."""
        if job.lazy and not job.exhausted:
            self.hub.call_soon(self.dispatch)

    def abort(self, job: Job, error: BaseException, kill: bool) -> None:
        """Stop a job from any thread; with ``kill`` its busy workers are killed and replaced."""
        job.fail(error, None)
        self.hub.call_soon(self._abort, job, kill)

    @_guarded
    def _abort(self, job: Job, kill: bool) -> None:
        for chunk_id, (slot, _start, _items) in list(job.in_flight.items()):
            if slot.abort_chunk(job, chunk_id, kill) or kill:
                job.in_flight.pop(chunk_id, None)
        self._end_job_if_done(job)

    # -- dispatching (hub thread) ---------------------------------------------------------
    @_guarded
    def dispatch(self) -> None:
        if not self.jobs:
            return
        live = [s for s in self.slots if s.alive and not s.killed]
        # breadth first: every worker gets a chunk before any gets a second (queued) one,
        # otherwise a few slow items pile up on the first worker while the others idle
        for depth in range(1, DEPTH + 1):
            for slot in live:
                while len(slot.outstanding) < depth:
                    job = self._next_job()
                    if job is None:
                        return
                    size = job.chunk_size(len(live))
                    got = job.pull(size)
                    if got is None:
                        self._end_job_if_done(job)
                        continue
                    start, items = got
                    self._send_chunk(slot, job, start, items)

    def _next_job(self) -> Job | None:
        n = len(self.jobs)
        for k in range(n):
            job = self.jobs[(self._rr + k) % n]
            if job.has_work():
                self._rr = (self._rr + k + 1) % max(n, 1)
                return job
        return None

    def _send_chunk(self, slot: Any, job: Job, start: int, items: list[Any]) -> bool:
        timed = bool(job.item_cost is None or job.item_cost > TIMED_ITEM_SECONDS)
        chunk_id = next(_chunk_ids)
        # few items per chunk, or large ones: let big bytes go out of band (no pickle copy)
        wire_items = _serial.oob_items(items) if len(items) <= 16 or job.item_bytes > 1e4 else items
        payload = (job.id, chunk_id, start, wire_items, timed, job.budget())
        try:
            if job.spec is not None:
                from .._engine._reconnect import reconnect_shipping

                with reconnect_shipping(job.spec, items, f"item {start}"):
                    data, bufs = _serial.dumps(payload)
            else:
                data, bufs = _serial.dumps(payload, what="items")
        except Exception as chunk_exc:
            exc: BaseException = chunk_exc
            index = _find_unshippable(items, start)
            if index is None:  # only the chunk as a whole fails: report its first item
                index = start
            else:  # describe the item itself, not its place in the chunk's payload
                try:
                    _serial.dumps(items[index - start], what="item")
                except Exception as item_exc:
                    exc = item_exc
            item = items[index - start]
            err = ShippingError(
                f"pool item {index} ({_remote.short_repr(item)}) cannot be sent to a worker: {exc}",
                path=f"item {index}",
                type_name=type(item).__qualname__,
            )
            err.item_index = index  # type: ignore[attr-defined]
            err.item_repr = _remote.short_repr(item)  # type: ignore[attr-defined]
            job.fail(err, index)
            self._end_job_if_done(job)
            return False
        nbytes = len(data) + sum(memoryview(b).nbytes for b in bufs)
        if nbytes > 64 * len(items):
            job.record_bytes(nbytes, len(items))
        job.probed = True
        if slot not in job.slots_with_func:
            job.slots_with_func.add(slot)
            slot.send_func(job)
        job.in_flight[chunk_id] = (slot, start, items)
        slot.outstanding.append(chunk_id)
        self.chunks[chunk_id] = (job, start, items, slot)
        slot.send_chunk(job, chunk_id, data, bufs)
        if slot.info.state != "busy":
            slot.info.state = "busy"
            slot.info.item = start
            self._worker_event(slot, "busy", start)
        return True

    # -- results (hub thread) ---------------------------------------------------------------
    @_guarded
    def on_results(self, slot: Any, payload: tuple[Any, ...], nbytes: int = 0) -> None:
        job_id, chunk_id, values, durations, error, busy = payload
        if chunk_id == UNLOADED_CHUNK and slot.outstanding:
            chunk_id = slot.outstanding[0]  # the worker answers its chunks in order
            found = self.chunks.get(chunk_id)
            if found is not None:
                error = _locate_unloadable(found[1], found[2], error)
        entry = self.chunks.pop(chunk_id, None)
        if chunk_id in slot.outstanding:
            slot.outstanding.remove(chunk_id)
        if entry is None:
            if chunk_id == -1:  # the callable itself could not be rebuilt in the worker
                for job in self.jobs:
                    if job.id == job_id:
                        job.fail(_remote.rebuild(error), None)
                        self._end_job_if_done(job)
            self.dispatch()
            return
        job, start, items, _slot = entry
        job.in_flight.pop(chunk_id, None)
        n = len(values)
        if error is None and n < len(items) and job.error is None:
            job.retry.appendleft((start + n, items[n:]))  # handed back unrun (a budget)
        if nbytes > 64 * n:  # only results that are not tiny count
            job.record_bytes(nbytes, n)
        slot.info.done += n
        slot.info.busy_seconds += busy
        if error == "cancelled":
            error = None
        if job.error is None or (
            job.ordered
            and job.lazy
            and job.error_index is not None
            and start + n <= job.error_index
        ):  # an ordered imap still yields what precedes the failing item
            with job.cond:
                if job.ordered:
                    if values:
                        job.results[start] = values
                else:
                    job.completed.extend(values)
                job.done_count += n
                job.call.done = job.done_count
                job.cond.notify_all()
        if job.error is None:
            if n and busy > 0:
                est = busy / n
                job.item_cost = est if job.item_cost is None else 0.5 * job.item_cost + 0.5 * est
            if error is not None:
                exc = _remote.rebuild(error)
                self.model.errors.append(exc)
                job.fail(exc, error[0])
                self._abort(job, kill=False)
        if durations:
            self.model.record_durations(durations)
        if not slot.outstanding:
            slot.info.state = "idle"
            slot.info.item = None
            self._worker_event(slot, "idle", None)
        if _events.has_observers("pool_progress"):
            _events.emit(
                "pool_progress",
                _events.PoolProgress(self.owner_model, job.call, job.done_count, durations),
            )
        self._end_job_if_done(job)
        self.dispatch()

    def on_output(self, stream: str, text: str) -> None:
        if _events.has_observers("process_output"):
            _events.emit("process_output", _events.ProcessOutput(self.owner_model, stream, text))
        else:
            import sys

            (sys.stdout if stream == "stdout" else sys.stderr).write(text)

    def _end_job_if_done(self, job: Job) -> None:
        if job in self.jobs and job.check_finished():
            self.jobs.remove(job)
            for slot in job.slots_with_func:
                slot.forget(job)
            job.slots_with_func.clear()
            _events.emit("pool_ended", _events.PoolEnded(self.owner_model, job.call, job.error))
            if self.closing and not self.jobs:
                self._shutdown_workers()

    # -- deaths (hub thread) ----------------------------------------------------------------
    @_guarded
    def slot_died(self, slot: Any, code: int) -> None:
        if slot in self.slots:
            self.slots.remove(slot)
        slot.info.state = "dead"
        self._worker_event(slot, "dead", None)
        current = slot.current_items
        first = True
        for chunk_id in list(slot.outstanding):
            entry = self.chunks.pop(chunk_id, None)
            if entry is None:
                continue
            job, start, items, _ = entry
            job.in_flight.pop(chunk_id, None)
            running = first and not slot.killed
            first = False
            if job.error is not None or job.finished:
                pass
            elif running:
                lo, hi = current if current is not None else (start, start + len(items) - 1)
                index = lo
                k = index - start
                item_repr = _remote.short_repr(items[k]) if 0 <= k < len(items) else "?"
                what = (
                    f"pool item {lo} ({item_repr})"
                    if lo == hi
                    else f"one of pool items {lo}..{hi} (a chunk of fast items, first {item_repr})"
                )
                err = WorkerDiedError(
                    f"a pool worker (pid {slot.pid}) died while running {what}: "
                    f"{describe_exit(code)}",
                    pid=slot.pid,
                    exitcode=code,
                    item_index=index,
                )
                self.model.errors.append(err)
                job.fail(err, index)
            else:
                job.retry.append((start, items))  # never started: run it elsewhere
            self._end_job_if_done(job)
        slot.outstanding.clear()
        self.model.workers.pop(slot.pid, None)
        if self.closing or self.closed:
            if not any(s.alive for s in self.slots):
                self.all_gone.set()
            return
        self.backend.replace(self)
        self.dispatch()

    @_guarded
    def chunk_lost(self, slot: Any, chunk_id: int, reason: str) -> None:
        """A chunk whose answer will never come (a remote task that failed for good)."""
        entry = self.chunks.pop(chunk_id, None)
        if chunk_id in slot.outstanding:
            slot.outstanding.remove(chunk_id)
        if entry is None:
            self.dispatch()
            return
        job, start, items, _ = entry
        job.in_flight.pop(chunk_id, None)
        if job.error is None:
            last = start + len(items) - 1
            what = f"pool item {start}" if last == start else f"pool items {start}..{last}"
            err = WorkerDiedError(
                f"{what} could not run: {reason}", pid=-1, exitcode=None, item_index=start
            )
            self.model.errors.append(err)
            job.fail(err, start)
        self._end_job_if_done(job)
        self.dispatch()

    def _worker_event(self, slot: Any, state: str, item: int | None) -> None:
        if _events.has_observers("pool_worker"):
            _events.emit(
                "pool_worker", _events.PoolWorkerChanged(self.owner_model, slot.pid, state, item)
            )

    # -- closing ----------------------------------------------------------------------------
    def close(self, timeout: float | None = None) -> bool:
        """Let running jobs finish, then let the workers exit. True when all are gone."""
        if self.closed:
            return True
        self.closing = True
        self.model.state = "closing"
        self.closer = threading.get_ident()
        self.hub.call_soon(self._close_when_idle)
        ok = self.all_gone.wait(timeout)
        self.closed = True
        self.model.state = "closed"
        self.backend.close()
        return ok

    @_guarded
    def _close_when_idle(self) -> None:
        if not self.jobs:
            self._shutdown_workers()
        else:
            self._abandon_stalled()

    @_guarded
    def _abandon_stalled(self) -> None:
        """While closing: an imap that waits for a consumer who cannot come (``it =
        pool.imap(...)`` left half-read in a ``with Pool()`` block: its reader is the thread
        blocked in close(), or a thread that has ended) would keep close() waiting forever.
        It fails with PoolClosedError; the values computed so far can still be read from it.
        An imap read by another live thread is waited for, like any running call."""
        if not self.jobs or self.closed:
            return
        live = {t.ident for t in threading.enumerate()}
        for job in list(self.jobs):
            if job.stalled() and (job.consumer == self.closer or job.consumer not in live):
                job.fail(
                    PoolClosedError(
                        "the pool was closed while this call was waiting for its consumer "
                        "to take more values"
                    ),
                    None,
                )
                self._end_job_if_done(job)
        if self.jobs:
            self.hub.call_later(0.1, self._abandon_stalled)

    def _shutdown_workers(self) -> None:
        live = [s for s in self.slots if s.alive]
        if not live:
            self.all_gone.set()
            return
        for slot in live:
            slot.close()

    def slot_closed(self, slot: Any) -> None:
        """A slot that needs no exit report (Dask) is done."""
        if slot in self.slots:
            self.slots.remove(slot)
        self.model.workers.pop(slot.pid, None)
        if not any(s.alive for s in self.slots):
            self.all_gone.set()

    def terminate(self, wait: bool = True) -> None:
        """Kill every worker now; running jobs fail with PoolClosedError. With ``wait``, returns
        once the workers are gone (never on the hub thread: it is what reports them gone)."""
        if self.closed and self.all_gone.is_set():
            return
        self.closing = True
        err = PoolClosedError("the pool was terminated")
        for job in list(self.jobs):
            job.fail(err, None)
        if self.hub.in_hub_thread:
            self._terminate()
        else:
            self.hub.call_soon(self._terminate)
            if wait:
                self.all_gone.wait(10)
        self.closed = True
        self.model.state = "closed"
        self.backend.close()

    @_guarded
    def _terminate(self) -> None:
        for job in list(self.jobs):
            job.in_flight.clear()
            job.retry.clear()
            self._end_job_if_done(job)
        live = [s for s in self.slots if s.alive]
        if not live:
            self.all_gone.set()
        for slot in live:
            slot.kill()


def _name(target: Any) -> str:
    return getattr(target, "__qualname__", None) or type(target).__name__


def _locate_unloadable(start: int, items: list[Any], error: tuple[Any, ...]) -> tuple[Any, ...]:
    """A chunk the worker could not unpickle: name the item that does not rebuild (tried here;
    the chunk's first item when every one rebuilds in this process)."""
    index, item = start, items[0] if items else None
    for k, candidate in enumerate(items):
        try:
            data, bufs = _serial.dumps(candidate)
            _serial.loads(data, [memoryview(b) for b in bufs])
        except Exception:
            index, item = start + k, candidate
            break
    return (index, _remote.short_repr(item), *error[2:])


def _find_unshippable(items: list[Any], start: int) -> int | None:
    for k, item in enumerate(items):
        try:
            _serial.dumps(item)
        except Exception:
            return start + k
    return None
