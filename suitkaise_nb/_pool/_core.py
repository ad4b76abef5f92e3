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
``unordered_*`` take values in completion order. A backend only provides slots (``LocalSlot``
here: persistent worker processes from the zygote; Dask slots in ``_dask``).
"""

from __future__ import annotations

import itertools
import math
import mmap
import os
import pickle
import signal
import struct
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from .. import _errors as _remote
from .. import _events
from .._engine import _serial
from .._engine._launcher import Launcher, Spare, describe_exit
from .._engine._wire import AsyncConn, Frame, MemfdCache, encode
from .._errors import (
    Expired,
    PoolClosedError,
    ProcessError,
    ShippingError,
    WorkerDiedError,
)
from ._model import CallModel, PoolModel, WorkerInfo
from ._protocol import (
    K_CANCEL,
    K_CHUNK,
    K_FORGET,
    K_FREED,
    K_FUNC,
    K_OUTPUT,
    K_RESULTS,
    UNLOADED_CHUNK,
)

_job_ids = itertools.count(1)
_chunk_ids = itertools.count(1)
DEPTH = 2  # chunks in flight per slot: one running, one waiting
TARGET_CHUNK_SECONDS = 0.1  # per chunk: fewer round trips, the tail still splits finely
# the tail of a call splits what remains over the workers, but never into chunks of less than
# this much work: a chunk costs a round trip (~0.1 ms here), so tiny items stay in few chunks
MIN_CHUNK_SECONDS = 0.002
REMOTE_CHUNK_SECONDS = 0.2  # a Dask task costs a scheduler round trip: bigger chunks hide it
TIMED_ITEM_SECONDS = 20e-6
FORGET_DELAY = 0.2  # seconds an idle worker may keep a finished call's function
TRIM_DELAY = 2.0  # seconds an idle worker's channel keeps memfds for the next call's items
CHUNK_BYTES = 4 << 20  # once item/result sizes are known, a chunk carries at most ~4 MB
WINDOW_BYTES = 64 << 20  # and a lazy call keeps at most ~64 MB ahead of its consumer


class Job:
    """One map-family call."""

    def __init__(
        self,
        target: Any,
        iterable: Iterable[Any],
        *,
        star: bool,
        ordered: bool,
        lazy: bool,
        kind: str,
    ) -> None:
        self.id = next(_job_ids)
        self.target = target
        self.star = star
        self.ordered = ordered
        self.lazy = lazy
        try:
            total: int | None = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
        self.total = total
        # the input as a sequence to slice chunks from (exact builtin types only: a subclass
        # may index differently than it iterates); sliced by the hub thread
        self.seq: Any = iterable if type(iterable) in (list, tuple, range) else None
        # any other input is read by the caller's thread (see feed()): a slow generator, one
        # that waits on another process, a cursor bound to its thread must not run on the hub
        self.it: Iterator[Any] | None = iter(iterable) if self.seq is None else None
        self.fed: deque[Any] = deque()  # items read by the caller, not sent yet
        self.fed_done = self.seq is not None  # the input is exhausted (or raised)
        self.feed_want = 64  # items the dispatcher would like to find read ahead
        self.wake: Any = None  # asks the hub to dispatch (set by the core)
        self.next_index = 0
        self.exhausted = False
        self.retry: deque[tuple[int, list[Any]]] = deque()
        self.in_flight: dict[int, tuple[Any, int, list[Any]]] = {}
        self.results: dict[int, Any] = {}
        self.completed: deque[Any] = deque()
        self._ready: deque[Any] = deque()  # ordered values of the chunk being consumed
        self.done_count = 0
        self.consumed = 0
        self.error: BaseException | None = None
        self.error_index: int | None = None
        self.finished = False
        self.cond = threading.Condition()
        self.per_item: float | None = None
        self.probed = False  # the first chunk was pickled (item_bytes is known)
        self.slots_with_func: set[Any] = set()
        self.fn_blob = b""
        self.spec = getattr(target, "_sk_autoreconnect", None)
        self.call = CallModel(kind, target, total)
        self.window = 0
        self.target_seconds = TARGET_CHUNK_SECONDS  # the backend may ask for longer chunks
        self.item_bytes = 0.0  # serialized bytes per item (input or result, the larger)
        self.consumer = threading.get_ident()  # the thread reading the results (last seen)

    # -- hub thread ----------------------------------------------------------------------------
    def has_work(self) -> bool:
        if self.error is not None or self.finished:
            return False
        if self.retry:
            return True
        if self.exhausted:
            return False
        if self.seq is None and not self.fed and not self.fed_done:
            return False  # waiting for the caller to read more input (at its end: pull())
        return not (self.lazy and self.window and self.next_index - self.consumed >= self.window)

    def chunk_size(self, nslots: int) -> int:
        if self.per_item is None:
            # nothing measured yet. The call's first chunk is a small probe (its pickle tells
            # the size of an item); later ones may be large, because a chunk sent before the
            # cost is known carries a time budget: the worker hands back what it did not
            # reach (see budget()). A lazy input is still pulled a few items at a time.
            size = 4 if not self.probed or self.total is None else 50_000
        else:
            size = int(self.target_seconds / max(self.per_item, 1e-7))
            size = max(1, min(size, 50_000))
        if self.item_bytes > 0:  # large items or results: bound the bytes, not only the time
            size = max(1, min(size, int(CHUNK_BYTES / self.item_bytes)))
        if self.total is not None:
            remaining = self.total - self.next_index + sum(len(r[1]) for r in self.retry)
            share = math.ceil(remaining / (max(nslots, 1) * DEPTH))
            if self.per_item is not None:
                share = max(share, int(MIN_CHUNK_SECONDS / max(self.per_item, 1e-7)))
            size = min(size, max(1, share))
        if self.lazy:
            pipeline = max(nslots, 1) * (DEPTH + 2)
            window = max(size * pipeline, 64)
            if self.item_bytes > 0:
                window = min(window, max(pipeline, int(WINDOW_BYTES / self.item_bytes)))
            self.window = window
        self.feed_want = max(64, size * max(nslots, 1) * DEPTH)
        return size

    def budget(self) -> float | None:
        """Seconds a chunk may run before its worker hands the rest back: while the cost of
        an item is unknown, one chunk's worth of time (see ``execute_chunk``)."""
        return self.target_seconds if self.per_item is None else None

    def record_bytes(self, nbytes: int, n: int) -> None:
        """Track the serialized size per item (of the items sent or the results received)."""
        if n > 0:
            per = nbytes / n
            self.item_bytes = max(per, 0.5 * self.item_bytes + 0.5 * per)

    def stalled(self) -> bool:
        """A lazy call that waits for its consumer (nothing running; the window is full, or
        the input must be read by the consumer's thread)."""
        return (
            self.lazy
            and self.error is None
            and not self.finished
            and not self.in_flight
            and not self.retry
            and not self.exhausted
            and (
                (bool(self.window) and self.next_index - self.consumed >= self.window)
                or (self.seq is None and not self.fed and not self.fed_done)
            )
        )

    def pull(self, n: int) -> tuple[int, list[Any]] | None:
        if self.retry:
            first, back = self.retry.popleft()
            if len(back) > n:  # handed back or orphaned work goes out in today's chunk size
                self.retry.appendleft((first + n, back[n:]))
                back = back[:n]
            return first, back
        start = self.next_index
        if self.seq is not None:  # a list, tuple or range: one C-level slice
            items: Any = self.seq[start : start + n]
            if len(items) < n:
                self.exhausted = True
        else:  # what the caller's thread has read
            with self.cond:
                fed = self.fed
                if len(fed) <= n:
                    items = list(fed)
                    fed.clear()
                else:
                    items = [fed.popleft() for _ in range(n)]
                if not fed:
                    if self.fed_done:
                        self.exhausted = True
                    else:
                        self.cond.notify_all()  # the reader may be waiting: read more
        if not items:
            return None
        self.next_index += len(items)
        return start, items

    # -- the caller's thread: reading the input --------------------------------------------------
    def _room(self) -> int:
        room = self.feed_want - len(self.fed)
        if self.lazy:
            window = self.window or 64
            room = min(room, window - (self.next_index + len(self.fed) - self.consumed))
        return room

    def feed(self) -> None:
        """Read input items in the calling thread (the one waiting for results), as many as
        the dispatcher wants ahead, handing them over every few milliseconds so that a slow
        input never holds back work that is ready. Called without ``cond`` held."""
        it = self.it
        if it is None or self.fed_done or self.error is not None:
            return
        while True:
            room = self._room()
            if room <= 0:
                return
            batch: list[Any] = []
            done = False
            error: BaseException | None = None
            t0 = time.perf_counter()
            try:
                while len(batch) < room:
                    try:
                        batch.append(next(it))
                    except StopIteration:
                        done = True
                        break
                    except Exception as exc:
                        error = exc
                        break
                    if time.perf_counter() - t0 > 0.005:
                        break  # hand these over now (a slow input)
            finally:  # an interrupt keeps what was read
                with self.cond:
                    self.fed.extend(batch)
                    if done or error is not None:
                        self.fed_done = True
                if batch or done or error is not None:
                    self.wake()
            if error is not None:
                index = self.next_index + len(self.fed)
                self.fail(
                    ProcessError(f"the input iterable raised {type(error).__name__}: {error}"),
                    index,
                )
                return
            if done:
                return

    def _feed_unlocked(self) -> bool:
        """:meth:`feed` from a wait loop that holds ``cond``: True when it read something."""
        if self.it is None or self.fed_done or self.error is not None or self._room() <= 0:
            return False
        self.cond.release()
        try:
            self.feed()
        finally:
            self.cond.acquire()
        return True

    def fail(self, error: BaseException, index: int | None) -> None:
        with self.cond:
            if self.error is None:
                self.error = error
                self.error_index = index
                self.call.error = error
            self.cond.notify_all()

    def check_finished(self) -> bool:
        if self.finished:
            return True
        if not self.in_flight and (self.error is not None or (self.exhausted and not self.retry)):
            self.finish()
        return self.finished

    def finish(self) -> None:
        with self.cond:
            self.finished = True
            self.call.ended = time.monotonic()
            self.cond.notify_all()

    # -- consumer thread -------------------------------------------------------------------------
    def wait_list(self, deadline: float | None) -> list[Any]:
        with self.cond:
            while True:
                if self.error is not None:
                    raise self.error
                if self.finished:
                    break
                if not self._wait(deadline):
                    raise Expired()
        out: list[Any] = []
        for start in sorted(self.results):
            out.extend(self.results[start])
        return out

    def _wait(self, deadline: float | None) -> bool:
        """Wait a little for news (with ``cond`` held); False once ``deadline`` passed. The
        waiting thread reads input when the dispatcher wants more."""
        if self._feed_unlocked():
            return deadline is None or time.monotonic() < deadline
        if deadline is None:
            self.cond.wait(0.25)
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.cond.wait(min(left, 0.25))
        return True

    def take_next(self, deadline: float | None) -> tuple[bool, Any]:
        """(True, value) for the next value of this job's order; (False, None) at the end."""
        with self.cond:
            while True:
                if self.ordered:
                    i = self.consumed
                    if self._ready:
                        self.consumed += 1
                        self.consumer = threading.get_ident()
                        return True, self._ready.popleft()
                    values = self.results.pop(i, None)
                    if values is not None:
                        self._ready.extend(values)
                        continue
                    # after a failure, values before the failing item may never come (their
                    # chunks were cancelled or finished after the error): once the job is
                    # finished, a missing value means the error is next
                    if self.error is not None and (
                        self.error_index is None or self.error_index <= i or self.finished
                    ):
                        raise self.error
                    if self.finished and i >= self.next_index:
                        if self.error is not None:
                            raise self.error
                        return False, None
                else:
                    if self.completed:
                        self.consumed += 1
                        self.consumer = threading.get_ident()
                        return True, self.completed.popleft()
                    if self.error is not None:
                        raise self.error
                    if self.finished:
                        return False, None
                if not self._wait(deadline):
                    raise Expired()


class LocalSlot:
    """One persistent worker process."""

    backend = "local"

    def __init__(self, core: PoolCore, spare: Spare) -> None:
        self.core = core
        self.spare = spare
        self.pid = spare.pid
        self.alive = True
        self.killed = False
        self.outstanding: deque[int] = deque()  # chunk ids in flight, oldest first
        self.info = WorkerInfo(spare.pid)
        self.held: list[Any] = []  # encoded control frames waiting for the next frame
        self.flush_due = False
        self.trim_due = False
        self.shm_fd: int | None = None
        self.shm: mmap.mmap | None = None
        if hasattr(os, "memfd_create"):
            self.shm_fd = os.memfd_create("suitkaise-nb-worker")
            os.ftruncate(self.shm_fd, 4096)
            self.shm = mmap.mmap(self.shm_fd, 4096)
            struct.pack_into("<qq", self.shm, 0, -1, -1)
        self.conn = AsyncConn(spare.sock, self.on_frames, self.on_eof, core.hub.want_write)
        self.conn.spill_cache = MemfdCache()  # large items: memfds written again (K_FREED)

    def start(self) -> None:
        from .._engine._process import child_header, send_start

        payload: dict[str, Any] = {}
        if self.shm_fd is not None:
            payload["shm_fd"] = _serial.PassFd(self.shm_fd)
        data, bufs, fds = _serial.dumps_with_fds(payload, "object")
        header = child_header("suitkaise_nb._pool._worker:worker_main")
        send_start(self.conn, header, data, bufs, fds)
        self.core.launcher.watch_exit(self.pid, self.on_exit)
        self.core.hub.add_conn(self.conn)

    @property
    def current_items(self) -> tuple[int, int] | None:
        """(first, last) index of what the worker runs now (one item when they are equal)."""
        if self.shm is None:
            return None
        try:
            first, last = struct.unpack_from("<qq", self.shm, 0)
        except ValueError:
            return None
        return None if first < 0 else (first, last)

    def send(self, kind: int, data: Any, bufs: Any = ()) -> None:
        held, self.held = self.held, []
        try:
            self.conn.send(kind, data, bufs, prefix=held)
        except OSError:
            pass  # the exit report will follow

    def hold(self, kind: int, data: bytes) -> None:
        """Keep a small control frame to go out with the next frame: a wake-up of the worker
        costs more than the frame itself."""
        self.held.extend(encode(kind, data))

    def _flush_held(self) -> None:
        """Send held frames that no other frame took along (the pool went quiet)."""
        self.flush_due = False
        held, self.held = self.held, []
        if held and self.alive:
            try:
                self.conn.send_encoded(held)
            except OSError:
                pass

    # -- the slot interface the dispatcher uses (DaskSlot implements the same) -------------
    def send_func(self, job: Job) -> None:
        # goes out with the job's first chunk to this worker, which follows at once
        self.hold(K_FUNC, pickle.dumps((job.id, job.fn_blob, job.star)))

    def send_chunk(self, job: Job, chunk_id: int, data: Any, bufs: Any) -> None:
        self.send(K_CHUNK, data, bufs)

    def abort_chunk(self, job: Job, chunk_id: int, kill: bool) -> bool:
        """Stop a chunk; True when it is gone for good (the worker was killed)."""
        if kill and self.alive:
            self.kill()
            return True
        if job.ordered and job.lazy and job.error_index is not None:
            for slot, start, _items in job.in_flight.values():
                if slot is self and start < job.error_index:
                    # an ordered imap still yields what precedes the failing item: a cancel
                    # (per job, in the worker) would drop that chunk too, so let this one run
                    return False
        self.send(K_CANCEL, pickle.dumps(job.id))
        return not self.alive

    def forget(self, job: Job) -> None:
        # the worker drops the job's function with the next frame it gets, or within
        # FORGET_DELAY if none comes (a function may hold large captured data)
        if self.conn.spill_cache is not None and not self.trim_due:
            # an idle pool holds no spare memfd memory for long (the next call soon reuses it)
            self.trim_due = True
            self.core.hub.call_later(TRIM_DELAY, _weak_call, weakref.ref(self), "_trim_if_idle")
        if self.alive:
            self.hold(K_FORGET, pickle.dumps(job.id))
            if not self.flush_due:
                self.flush_due = True
                # by weak reference: a pool closed meanwhile is freed at once, not in 0.2 s
                self.core.hub.call_later(FORGET_DELAY, _weak_call, weakref.ref(self), "_flush_held")

    def _trim_if_idle(self) -> None:
        self.trim_due = False
        if self.conn.spill_cache is not None and not self.outstanding:  # else: next call's end
            self.conn.spill_cache.trim()

    def on_frames(self, frames: list[Frame]) -> None:
        for f in frames:
            if f.kind == K_RESULTS:
                nbytes = memoryview(f.main).nbytes + sum(b.nbytes for b in f.buffers)
                self.core.on_results(self, _serial.loads(f.main, f.buffers, f.fds), nbytes)
            elif f.kind == K_OUTPUT:
                stream, text = pickle.loads(f.main)
                self.core.on_output(stream, text)
            elif f.kind == K_FREED and self.conn.spill_cache is not None:
                self.conn.spill_cache.release(pickle.loads(f.main))

    def on_eof(self) -> None:
        pass

    def on_exit(self, code: int) -> None:
        conn = self.conn
        if not conn.eof and conn.read_lock.acquire(False):
            try:
                conn.read_available()
            finally:
                conn.read_lock.release()
        self.alive = False
        self.core.slot_died(self, code)
        self.release()

    def kill(self) -> None:
        self.killed = True
        if self.alive:
            Launcher.signal(self.spare, signal.SIGKILL)

    def close(self) -> None:
        """Ask the worker to exit (EOF on its channel)."""
        try:
            self.conn.sock.shutdown(2)
        except OSError:
            pass

    def release(self) -> None:
        self.core.hub.unwatch(self.conn.sock)
        self.conn.close()
        if self.spare.pidfd is not None:
            try:
                os.close(self.spare.pidfd)
            except OSError:
                pass
        if self.shm is not None:
            try:
                self.shm.close()
            except (BufferError, ValueError):
                pass
        if self.shm_fd is not None:
            try:
                os.close(self.shm_fd)
            except OSError:
                pass
            self.shm_fd = None


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

    def __init__(self, workers: int, backend: str = "local") -> None:
        self.launcher = Launcher.get()
        self.hub = self.launcher.hub  # dask pools use the hub thread too (no local workers)
        self.size = workers
        self.model = PoolModel(workers, backend)
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

    # -- starting and replacing workers ---------------------------------------------------
    def start_local(self) -> None:
        spares = self.launcher.take(self.size)
        for spare in spares:
            slot = LocalSlot(self, spare)
            self.slots.append(slot)
            self.model.workers[slot.pid] = slot.info
            slot.start()

    def _replace(self) -> None:
        if self.closing or self.closed:
            return

        def arrived(spare: Spare | None) -> None:
            if spare is None:
                return
            self.hub.call_soon(self._add_slot, spare)

        self.launcher.take_async(arrived)

    @_guarded
    def _add_slot(self, spare: Spare) -> None:
        if self.closing or self.closed:
            self.launcher.signal(spare, signal.SIGKILL)
            self.launcher.watch_exit(spare.pid, lambda code: None)
            spare.sock.close()
            return
        slot = LocalSlot(self, spare)
        self.slots.append(slot)
        self.model.workers[slot.pid] = slot.info
        slot.start()
        self._worker_event(slot, "idle", None)
        self.dispatch()

    # -- submitting (caller thread) -------------------------------------------------------
    def submit(self, job: Job) -> None:
        if self.closed or self.closing:
            raise PoolClosedError("the pool is closed; create a new Pool")
        job.fn_blob = _serial.dumps_function(job.target, what=_name(job.target))
        if self.model.backend == "dask":
            job.target_seconds = REMOTE_CHUNK_SECONDS
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
        timed = bool(job.per_item is None or job.per_item > TIMED_ITEM_SECONDS)
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
                job.per_item = est if job.per_item is None else 0.5 * job.per_item + 0.5 * est
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
        self._replace()
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

    def start_dask(self, client: Any) -> None:
        from ._dask import DaskSlot

        self.model.backend = "dask"
        self.client = client
        self.cluster_at = 0.0  # when the model's cluster rows were last refreshed
        for i in range(self.size):
            slot = DaskSlot(self, client, i + 1)
            self.slots.append(slot)
            self.model.workers[slot.pid] = slot.info

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


def _weak_call(ref: Any, method: str) -> None:
    """A delayed call on a slot that does not keep it alive (a closed pool is freed at once)."""
    slot = ref()
    if slot is not None:
        getattr(slot, method)()


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
