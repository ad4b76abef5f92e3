"""One map-family call: its input, its chunks' sizes and its results.

The dispatcher (``_core``) asks a job for work (:meth:`Job.pull`) and hands it results; the
caller's thread waits on the job (:meth:`Job.wait_list`, :meth:`Job.take_next`) and, while it
waits, reads the job's input when it is not a list, tuple or range (:meth:`Job.feed`).

Times: a *deadline* is an instant on ``time.monotonic()``'s clock (None: none); everything else
in seconds is a duration (``item_cost``: the measured seconds one item takes).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from .._errors import Expired, ProcessError
from ._model import CallModel

_job_ids = itertools.count(1)
DEPTH = 2  # chunks in flight per slot: one running, one waiting
TARGET_CHUNK_SECONDS = 0.1  # per chunk: fewer round trips, the tail still splits finely
# the tail of a call splits what remains over the workers, but never into chunks of less than
# this much work: a chunk costs a round trip (~0.1 ms here), so tiny items stay in few chunks
MIN_CHUNK_SECONDS = 0.002
TIMED_ITEM_SECONDS = 20e-6  # items slower than this are timed one by one
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
        self.item_cost: float | None = None
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
        if self.item_cost is None:
            # nothing measured yet. The call's first chunk is a small probe (its pickle tells
            # the size of an item); later ones may be large, because a chunk sent before the
            # cost is known carries a time budget: the worker hands back what it did not
            # reach (see budget()). A lazy input is still pulled a few items at a time.
            size = 4 if not self.probed or self.total is None else 50_000
        else:
            size = int(self.target_seconds / max(self.item_cost, 1e-7))
            size = max(1, min(size, 50_000))
        if self.item_bytes > 0:  # large items or results: bound the bytes, not only the time
            size = max(1, min(size, int(CHUNK_BYTES / self.item_bytes)))
        if self.total is not None:
            remaining = self.total - self.next_index + sum(len(r[1]) for r in self.retry)
            share = math.ceil(remaining / (max(nslots, 1) * DEPTH))
            if self.item_cost is not None:
                share = max(share, int(MIN_CHUNK_SECONDS / max(self.item_cost, 1e-7)))
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
        return self.target_seconds if self.item_cost is None else None

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
