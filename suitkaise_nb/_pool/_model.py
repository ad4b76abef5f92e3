"""Observable state of a pool and of its calls (updated by the hub thread only)."""

from __future__ import annotations

import time
from typing import Any

from .._engine._model import _ids


class WorkerInfo:
    __slots__ = ("busy_seconds", "done", "item", "pid", "state")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.state = "idle"  # idle, busy, dead
        self.item: int | None = None
        self.done = 0
        self.busy_seconds = 0.0


class CallModel:
    """One map/imap call."""

    def __init__(self, kind: str, target: Any, total: int | None) -> None:
        self.id = next(_ids)
        self.kind = kind
        self.target_name = getattr(target, "__qualname__", None) or repr(target)
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.ended: float | None = None
        self.error: BaseException | None = None
        self.cancelled = False

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        e = self.elapsed
        return self.done / e if e > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if self.total is None or self.done == 0 or self.ended is not None:
            return None
        return (self.total - self.done) / max(self.rate, 1e-9)


class PoolModel:
    def __init__(self, workers: int, backend: str) -> None:
        self.id = next(_ids)
        self.name = "Pool"
        self.size = workers
        self.backend = backend  # "local", "dask", "inline"
        self.worker_label = "pid"  # what a worker's key is to a user ("pid", or "slot")
        self.workers: dict[int, WorkerInfo] = {}
        self.calls: list[CallModel] = []
        self.durations: list[float] = []  # recent per-item durations (capped)
        self.errors: list[BaseException] = []
        self.state = "open"  # open, closing, closed
        self.created = time.time()
        self.handle_ref: Any = None
        # on a Dask cluster, what the scheduler last said of each worker, refreshed by the
        # backend (never by a view): (address, threads, our tasks there, cpu %, memory MB)
        self.cluster: tuple[tuple[str, int, int, float, float], ...] = ()
        self._probe: Any = None  # set by the pool: reads what each worker runs now

    def current_items(self) -> dict[int, tuple[int, int] | None]:
        """pid -> (first, last) index of the item(s) each worker runs right now (read from a
        page the worker writes before each item: cheap, and exact even while it computes)."""
        probe = self._probe
        return probe() if probe is not None else {}

    def record_durations(self, values: list[float]) -> None:
        d = self.durations
        d.extend(values)
        if len(d) > 20000:
            del d[: len(d) - 10000]

    @property
    def current(self) -> CallModel | None:
        for c in reversed(self.calls):
            if c.ended is None:
                return c
        return self.calls[-1] if self.calls else None
