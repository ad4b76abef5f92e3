"""The Dask backend: the same pool, with chunks running as tasks on a ``distributed`` cluster.

::

    Pool(client=Client(...)) ─► PoolCore with N DaskSlots (N = the cluster's threads, or
                                 ``workers=``); each slot keeps up to DEPTH tasks in flight
    dispatch ─► DaskSlot.send_chunk ─► client.submit(run_chunk_task, fn, chunk)
                                         (the same execute_chunk as a local worker)
    future done (Dask's callback thread: fetch the result) ─► hub.call_soon ─► on_results

The callable travels as our own by-value bytes (dill), so functions and Skprocess classes
typed into notebook cells run on the workers. Timeouts and cancellation cancel the futures;
Dask cannot interrupt a task that is already running, so its worker thread finishes the
current item and skips the rest of the chunk. A worker that dies is survived by Dask (it
reschedules the task) until its retry limit (``distributed.scheduler.allowed-failures``),
after which the item is reported with ``WorkerDiedError``.

Items run in worker threads: Skprocess section timeouts use a timer thread there instead of
SIGALRM (``_child._call_in_thread``). A ``Share`` is served through an AF_UNIX socket: the
workers of a cluster on this machine (``LocalCluster``) can use it; workers on other machines
cannot, and get a ShareError that says the Share lives on another machine.

``distributed`` is an optional extra: ``pip install 'suitkaise_nb[dask]'``.
"""

from __future__ import annotations

import functools
import pickle
import time
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
    job, chunk, start, items, timed, budget = _serial.loads(data, [memoryview(b) for b in bufs])
    out = execute_chunk(target, start, items, timed, cancelled=_cancel_probe(), budget=budget)
    if out is None:  # the future was cancelled (a timeout): the rest of the chunk is skipped
        return pickle.dumps(
            (_serial.dumps_bytes((job, chunk, [], [], "cancelled", 0.0)), []), protocol=5
        )
    from .._engine import _barriers

    _barriers.settle()  # the items' pipelined Share writes are applied before the answer
    payload, pbufs = results_payload(job, chunk, start, items, out)
    if pbufs:
        return pickle.dumps((payload, [bytes(memoryview(b)) for b in pbufs]), protocol=5)
    return pickle.dumps((payload, []), protocol=5)


def _cancel_probe() -> Any:
    """A callable telling whether the Dask task running in this thread was cancelled.

    Dask cannot interrupt a running task: after ``future.cancel()`` the worker keeps the thread
    busy until the function returns (the task shows as "cancelled" there). Between slow items
    ``execute_chunk`` asks this probe, so a cancelled chunk stops after its current item.
    """
    try:
        from distributed import get_worker
        from distributed.worker import thread_state

        worker = get_worker()
        key = thread_state.key
    except Exception:
        return None

    def cancelled() -> bool:
        ts = worker.state.tasks.get(key)
        return ts is not None and ts.state == "cancelled"

    return cancelled


def cluster_rows(client: Any) -> tuple[tuple[str, int, int, float, float], ...]:
    """(address, threads, our tasks there, cpu %, memory MB) per cluster worker, as the
    scheduler reports them (two scheduler round trips: never called by a view)."""
    try:
        processing = client.processing()
        workers = client.scheduler_info()["workers"]
    except Exception:
        return ()
    rows = []
    for addr, w in sorted(workers.items()):
        ours = sum(1 for key in processing.get(addr, ()) if str(key).startswith("sknb-"))
        metrics = w.get("metrics", {})
        rows.append(
            (
                addr,
                int(w.get("nthreads", 0)),
                ours,
                float(metrics.get("cpu", 0.0)),
                float(metrics.get("memory", 0)) / 1e6,
            )
        )
    return tuple(rows)


CLUSTER_EVERY = 1.0  # seconds between refreshes of the pool model's cluster rows
REMOTE_CHUNK_SECONDS = 0.2  # a Dask task costs a scheduler round trip: bigger chunks hide it


class DaskBackend:
    """Slots that submit chunks as tasks to a ``distributed`` cluster."""

    name = "dask"
    chunk_seconds = REMOTE_CHUNK_SECONDS
    worker_label = "slot"

    def __init__(self, client: Any) -> None:
        self.client = client
        self.cluster_at = 0.0  # when the pool model's cluster rows were last refreshed

    def hub(self) -> Any:
        from .._engine._launcher import Launcher

        return Launcher.get().hub  # the same hub thread as local work (no local workers)

    def start(self, core: Any) -> None:
        for i in range(core.size):
            core.add_slot(DaskSlot(core, self, i + 1))

    def replace(self, core: Any) -> None:
        pass  # Dask reschedules what a lost worker ran; a slot never dies

    def close(self) -> None:
        pass

    def refresh_cluster(self, model: Any) -> None:
        """At most once a second, on the calling (Dask's callback) thread: what the scheduler
        says of each worker, for the views."""
        now = time.monotonic()
        if now - self.cluster_at >= CLUSTER_EVERY:
            self.cluster_at = now
            model.cluster = cluster_rows(self.client)


class DaskSlot:
    """A virtual worker: up to DEPTH tasks of the pool in flight on the cluster."""

    def __init__(self, core: Any, backend: DaskBackend, index: int) -> None:
        self.core = core
        self.backend = backend
        self.client = backend.client
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
        fut.add_done_callback(functools.partial(self._fetch, job, chunk_id))

    def _fetch(self, job: Any, chunk_id: int, fut: Any) -> None:
        """Dask's callback thread: read the outcome (the result is fetched from the worker here,
        not in the hub thread), then hand plain data to the hub. The future itself never
        reaches the hub: the traceback rebuilt from an item's error keeps the hub's frames
        alive, and a future held there would pin the task's result on the cluster."""
        outcome: tuple[str, Any]
        try:
            if fut.cancelled():
                outcome = ("cancelled", None)
            elif fut.status == "error":
                exc = fut.exception()
                outcome = ("error", f"{type(exc).__name__}: {exc}")
            else:
                outcome = ("ok", fut.result())
        except BaseException as exc:  # cancelled meanwhile, or the client lost the cluster
            if fut.cancelled():
                outcome = ("cancelled", None)
            else:
                outcome = ("error", f"{type(exc).__name__}: {exc}")
        del fut
        self.core.hub.call_soon(self._done, job, chunk_id, outcome)
        self.backend.refresh_cluster(self.core.model)  # on this (Dask's) thread, not a view's

    def _done(self, job: Any, chunk_id: int, outcome: tuple[str, Any]) -> None:
        self.futures.pop(chunk_id, None)
        kind, value = outcome
        if kind == "cancelled":
            self.core.on_results(self, (job.id, chunk_id, [], [], "cancelled", 0.0))
        elif kind == "error":
            self.core.chunk_lost(self, chunk_id, f"the Dask task failed: {value}")
        else:
            payload, bufs = pickle.loads(value)
            del value, outcome
            self.core.on_results(self, _serial.loads(payload, [memoryview(b) for b in bufs]))

    def abort_chunk(self, job: Any, chunk_id: int, kill: bool) -> bool:
        if not kill and job.ordered and job.lazy and job.error_index is not None:
            entry = self.core.chunks.get(chunk_id)
            if entry is not None and entry[1] + len(entry[2]) <= job.error_index:
                # an ordered imap still yields what precedes the failing item (a local worker
                # finishes such a chunk too): let it run
                return False
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
