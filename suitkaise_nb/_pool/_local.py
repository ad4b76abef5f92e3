"""The local backend: persistent worker processes from the engine's fork server.

Each ``LocalSlot`` is one worker process (``_worker``) on an ``AsyncConn``. Before each item the
worker writes the item's index into a page shared with the parent (a ``memfd``), so that if the
worker dies the parent can name the exact item that killed it (``current_items``).
"""

from __future__ import annotations

import mmap
import os
import pickle
import signal
import struct
import weakref
from collections import deque
from typing import Any

from .._engine import _serial
from .._engine._launcher import Launcher, Spare
from .._engine._process import child_header, send_start
from .._engine._wire import AsyncConn, Frame, MemfdCache, encode
from ._job import TARGET_CHUNK_SECONDS, Job
from ._model import WorkerInfo
from ._protocol import K_CANCEL, K_CHUNK, K_FORGET, K_FREED, K_FUNC, K_OUTPUT, K_RESULTS

FORGET_DELAY = 0.2  # seconds an idle worker may keep a finished call's function
TRIM_DELAY = 2.0  # seconds an idle worker's channel keeps memfds for the next call's items


class LocalBackend:
    """Worker processes on this machine."""

    name = "local"
    chunk_seconds = TARGET_CHUNK_SECONDS
    worker_label = "pid"

    def __init__(self) -> None:
        self.launcher = Launcher.get()

    def hub(self) -> Any:
        return self.launcher.hub

    def start(self, core: Any) -> None:
        for spare in self.launcher.take(core.size):
            self._add(core, spare)

    def _add(self, core: Any, spare: Spare) -> None:
        slot = LocalSlot(core, self.launcher, spare)
        core.add_slot(slot)
        slot.start()

    def replace(self, core: Any) -> None:
        def arrived(spare: Spare | None) -> None:
            if spare is not None:
                core.hub.call_soon(self._arrived, core, spare)

        self.launcher.take_async(arrived)

    def _arrived(self, core: Any, spare: Spare) -> None:
        if core.closing or core.closed:
            self.launcher.signal(spare, signal.SIGKILL)
            self.launcher.watch_exit(spare.pid, lambda code: None)
            spare.sock.close()
            return
        self._add(core, spare)
        core.dispatch()

    def close(self) -> None:
        pass


class LocalSlot:
    """One persistent worker process."""

    def __init__(self, core: Any, launcher: Launcher, spare: Spare) -> None:
        self.core = core
        self.launcher = launcher
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
        payload: dict[str, Any] = {}
        if self.shm_fd is not None:
            payload["shm_fd"] = _serial.PassFd(self.shm_fd)
        data, bufs, fds = _serial.dumps_with_fds(payload, "object")
        header = child_header("suitkaise_nb._pool._worker:worker_main")
        send_start(self.conn, header, data, bufs, fds)
        self.launcher.watch_exit(self.pid, self.on_exit)
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


def _weak_call(ref: Any, method: str) -> None:
    """A delayed call on a slot that does not keep it alive (a closed pool is freed at once)."""
    slot = ref()
    if slot is not None:
        getattr(slot, method)()
