"""The Dask backend: the same pool, with chunks running as tasks on a ``distributed`` cluster.

::

    Pool(client=Client(...)) ─► PoolCore with N DaskSlots (N = the cluster's threads, or
                                 ``workers=``); each slot keeps up to DEPTH tasks in flight
    dispatch ─► DaskSlot.send_chunk ─► client.submit(run_chunk_task, fn, chunk)
                                         (the same execute_chunk as a local worker)
    future done (Dask's thread) ─► hub.call_soon ─► PoolCore.on_results

The callable travels as our own by-value bytes (dill), so functions and Skprocess classes
typed into notebook cells run on the workers. Timeouts and cancellation cancel the futures;
a worker that dies is survived by Dask (it reschedules the task) until its retry limit, after
which the item is reported with ``WorkerDiedError``.

``distributed`` is an optional extra: ``pip install 'suitkaise_nb[dask]'``.
"""

from __future__ import annotations

import pickle
from collections import deque
from typing import Any

from .._engine import _serial
from ._model import WorkerInfo

_fn_cache: dict[bytes, Any] = {}


def import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError(
            "Pool(client=...) runs on a Dask cluster and needs the 'distributed' package: "
            "pip install 'suitkaise_nb[dask]'"
        ) from None
    return distributed


def run_chunk_task(fn_blob: bytes, star: bool, data: bytes, bufs: list[bytes]) -> bytes:
    """Runs on a Dask worker: rebuild the callable (cached) and the chunk, run it, answer."""
    from ._worker import _Target, execute_chunk, results_payload

    key = fn_blob
    target = _fn_cache.get(key)
    if target is None:
        if len(_fn_cache) > 32:
            _fn_cache.clear()
        target = _fn_cache[key] = _Target(_serial.loads(fn_blob), star)
    job, chunk, start, items, timed = _serial.loads(data, [memoryview(b) for b in bufs])
    out = execute_chunk(target, start, items, timed)
    assert out is not None
    payload, pbufs = results_payload(job, chunk, start, items, out)
    if pbufs:
        return pickle.dumps((payload, [bytes(memoryview(b)) for b in pbufs]), protocol=5)
    return pickle.dumps((payload, []), protocol=5)


class DaskSlot:
    """A virtual worker: up to DEPTH tasks of the pool in flight on the cluster."""

    backend = "dask"

    def __init__(self, core: Any, client: Any, index: int) -> None:
        self.core = core
        self.client = client
        self.pid = index  # a slot number: the views show it where a local pool shows pids
        self.alive = True
        self.killed = False
        self.outstanding: deque[int] = deque()
        self.info = WorkerInfo(index)
        self.fns: dict[int, tuple[bytes, bool]] = {}
        self.futures: dict[int, Any] = {}

    def send_func(self, job: Any) -> None:
        self.fns[job.id] = (job.fn_blob, job.star)

    def send_chunk(self, job: Any, chunk_id: int, data: Any, bufs: Any) -> None:
        blob, star = self.fns[job.id]
        raw = [bytes(memoryview(b)) for b in bufs]
        fut = self.client.submit(
            run_chunk_task,
            blob,
            star,
            bytes(data),
            raw,
            pure=False,
            key=f"sknb-{job.id}-{chunk_id}",
        )
        self.futures[chunk_id] = fut
        fut.add_done_callback(lambda f: self.core.hub.call_soon(self._done, job, chunk_id, f))

    def _done(self, job: Any, chunk_id: int, fut: Any) -> None:
        self.futures.pop(chunk_id, None)
        if fut.cancelled() or fut.status == "cancelled":
            self.core.on_results(self, (job.id, chunk_id, [], [], "cancelled", 0.0))
            return
        exc = fut.exception() if fut.status == "error" else None
        if exc is not None:
            self.core.chunk_lost(
                self, chunk_id, f"the Dask task failed: {type(exc).__name__}: {exc}"
            )
            return
        payload, bufs = pickle.loads(fut.result())
        self.core.on_results(self, _serial.loads(payload, [memoryview(b) for b in bufs]))

    def abort_chunk(self, job: Any, chunk_id: int, kill: bool) -> bool:
        fut = self.futures.get(chunk_id)
        if fut is not None:
            fut.cancel()
        return False  # its (cancelled) answer still comes back through _done

    def forget(self, job: Any) -> None:
        self.fns.pop(job.id, None)

    def kill(self) -> None:
        for fut in list(self.futures.values()):
            fut.cancel()
        self.close()

    def close(self) -> None:
        if self.alive:
            self.alive = False
            self.core.slot_closed(self)

    @property
    def current_items(self) -> None:
        return None
