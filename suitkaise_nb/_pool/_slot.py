"""What the dispatcher needs of a place that runs chunks: the ``Slot`` protocol.

A backend (``_local``: persistent worker processes; ``_dask``: tasks on a Dask cluster;
``_inline``: this process, for tests) makes slots and hands them to the core with
``PoolCore.add_slot``. The core sends work down; a slot reports back up, always on the hub
thread::

    core ──send_func(job)──────────────►  slot   the job's callable (before its first chunk)
         ──send_chunk(job, id, data)───►         one chunk: (job, id, start, items, ...) pickled
         ──abort_chunk(job, id, kill)──►         stop it; True when it is gone for good
         ──forget(job)─────────────────►         the job ended: drop its callable
         ──kill() / close()────────────►         now / when idle
    core ◄──on_results(slot, payload)──          a chunk's answer (values, durations, error)
         ◄──slot_died(slot, exit code)──         a worker process died (its chunks are orphaned)
         ◄──chunk_lost(slot, id, reason)─        a chunk that will never be answered
         ◄──slot_closed(slot)───────────         a slot without an exit report is done

``outstanding`` holds the ids of the chunks in flight, oldest first (answers come in that
order); the core keeps at most ``DEPTH`` there. ``info`` is what the views show of the slot.
A backend says how long a chunk should run (``chunk_seconds``) and what a slot id means to a
user (``worker_label``: a pid, or a slot number).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from ._model import WorkerInfo


class Slot(Protocol):
    pid: int  # a process id (local), or a slot number
    alive: bool
    killed: bool
    outstanding: deque[int]
    info: WorkerInfo

    def send_func(self, job: Any) -> None: ...

    def send_chunk(self, job: Any, chunk_id: int, data: Any, bufs: Any) -> None: ...

    def abort_chunk(self, job: Any, chunk_id: int, kill: bool) -> bool: ...

    def forget(self, job: Any) -> None: ...

    def kill(self) -> None: ...

    def close(self) -> None: ...

    @property
    def current_items(self) -> tuple[int, int] | None:
        """(first, last) index of what runs now, where the backend can tell."""
        ...


class Backend(Protocol):
    name: str  # "local", "dask", "inline": what the views call it
    chunk_seconds: float  # how much work one chunk should carry
    worker_label: str  # what a slot's ``pid`` is, for the views ("pid", "slot")

    def hub(self) -> Any:
        """The hub thread the core runs on."""
        ...

    def start(self, core: Any) -> None:
        """Make the pool's slots (``core.add_slot``)."""
        ...

    def replace(self, core: Any) -> None:
        """A slot died: start another (when the backend's slots can die)."""
        ...

    def close(self) -> None:
        """The pool is closed or terminated: release what the backend holds."""
        ...
