"""The inline backend: slots that run chunks in this process, for tests of the dispatcher.

Ordering, timeouts, aborts and errors are the dispatcher's (``_core``) business; with these
slots they can be tested in milliseconds, without starting a process. Each pool gets a hub
thread of its own. A slot runs a chunk with the same ``execute_chunk`` as a worker process:

* automatic (the default): on the hub thread, as soon as it is sent;
* ``manual=True``: chunks wait in ``slot.queue`` until the test calls ``slot.run_next()`` (or
  ``slot.run_all()``), so a test decides in which order chunks finish, or that one never does.
"""

from __future__ import annotations

import pickle
import threading
from collections import deque
from typing import Any

from .._engine import _serial
from .._engine._hub import Hub
from ._job import TARGET_CHUNK_SECONDS
from ._model import WorkerInfo


class InlineBackend:
    name = "inline"
    chunk_seconds = TARGET_CHUNK_SECONDS
    worker_label = "slot"

    def __init__(self, manual: bool = False) -> None:
        self.manual = manual
        self._hub = Hub()
        self._hub.start()
        self.slots: list[InlineSlot] = []

    def hub(self) -> Hub:
        return self._hub

    def start(self, core: Any) -> None:
        for i in range(core.size):
            slot = InlineSlot(core, i + 1, self.manual)
            self.slots.append(slot)
            core.add_slot(slot)

    def replace(self, core: Any) -> None:
        pass

    def close(self) -> None:
        self._hub.stop()


class InlineSlot:
    """Runs chunks in this process (see the module docstring)."""

    def __init__(self, core: Any, index: int, manual: bool) -> None:
        self.core = core
        self.pid = index
        self.alive = True
        self.killed = False
        self.outstanding: deque[int] = deque()
        self.info = WorkerInfo(index)
        self.manual = manual
        self.targets: dict[int, Any] = {}
        self.queue: deque[tuple[Any, int, bytes, list[Any]]] = deque()  # manual mode
        self.aborted: list[int] = []  # chunk ids the core asked to stop

    def send_func(self, job: Any) -> None:
        from ._worker import _Target

        self.targets[job.id] = _Target(_serial.loads(job.fn_blob), job.star)

    def send_chunk(self, job: Any, chunk_id: int, data: Any, bufs: Any) -> None:
        raw = [bytes(memoryview(b)) for b in bufs]
        if self.manual:
            self.queue.append((job, chunk_id, bytes(data), raw))
        else:
            self.core.hub.call_soon(self._run, job, chunk_id, bytes(data), raw)

    def _run(self, job: Any, chunk_id: int, data: bytes, bufs: list[bytes]) -> None:
        from ._worker import execute_chunk

        if not self.alive or chunk_id in self.aborted:
            return
        job_id, chunk, start, items, timed, budget = _serial.loads(
            data, [memoryview(b) for b in bufs]
        )
        out = execute_chunk(self.targets.get(job_id), start, items, timed, budget=budget)
        assert out is not None
        values, durations, error, busy = out
        payload = (job_id, chunk, values, durations, error, busy)
        self.core.on_results(self, pickle.loads(pickle.dumps(payload)))

    # -- manual mode: the test runs the chunks -----------------------------------------------
    def run_next(self, index: int = 0) -> None:
        """Run the chunk waiting at ``index`` (0: the oldest) and deliver its answer."""
        entry = self.queue[index]
        del self.queue[index]
        finished = threading.Event()

        def run() -> None:
            try:
                self._run(*entry)
            finally:
                finished.set()

        self.core.hub.call_soon(run)
        finished.wait(10)

    def run_all(self) -> None:
        while self.queue:
            self.run_next()

    # -- the rest of the slot interface --------------------------------------------------------
    def abort_chunk(self, job: Any, chunk_id: int, kill: bool) -> bool:
        self.aborted.append(chunk_id)
        self.queue = deque(e for e in self.queue if e[1] != chunk_id)
        if chunk_id in self.outstanding:  # it will never answer: tell the core at once
            self.core.hub.call_soon(
                self.core.on_results, self, (job.id, chunk_id, [], [], "cancelled", 0.0)
            )
        return False

    def forget(self, job: Any) -> None:
        self.targets.pop(job.id, None)

    def kill(self) -> None:
        self.killed = True
        self.close()

    def close(self) -> None:
        if self.alive:
            self.alive = False
            self.queue.clear()
            self.core.slot_closed(self)

    @property
    def current_items(self) -> tuple[int, int] | None:
        return None
