"""Module-level processes and functions for the suitkaise-compatibility tests."""

from __future__ import annotations

import queue
import threading

from suitkaise_nb.processing import Skprocess


class HoldsPrimitives(Skprocess):
    """Threading primitives held by a process: fresh, unlocked and empty in the child."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rlock = threading.RLock()
        self.event = threading.Event()
        self.cond = threading.Condition()
        self.sem = threading.Semaphore(3)
        self.bsem = threading.BoundedSemaphore(2)
        self.q: queue.Queue[int] = queue.Queue(maxsize=5)
        self.lock.acquire()  # locked here: unlocked there
        self.event.set()
        self.q.put(1)
        self.process_config.runs = 1
        self.seen: dict[str, object] = {}

    def __run__(self) -> None:
        self.seen = {
            "lock": (type(self.lock).__name__, self.lock.acquire(blocking=False)),
            "rlock": type(self.rlock).__name__,
            "event": (type(self.event).__name__, self.event.is_set()),
            "cond": type(self.cond).__name__,
            "sem": type(self.sem).__name__,
            "bsem": type(self.bsem).__name__,
            "queue": (type(self.q).__name__, self.q.empty(), self.q.maxsize),
        }
        with self.cond:
            self.cond.notify_all()
        self.sem.acquire()
        self.bsem.acquire()
        self.bsem.release()

    def __result__(self) -> dict[str, object]:
        return self.seen


def lock_item(item: tuple[int, threading.Lock]) -> bool:
    """A pool item that carries a lock: it arrives unlocked."""
    n, lock = item
    return lock.acquire(blocking=False)


def pipe_child(point, value: int) -> None:
    """The target of a plain multiprocessing.Process, with a Pipe point."""
    point.send(value * 2)
    point.close()


class Fails(Skprocess):
    def __init__(self) -> None:
        self.process_config.runs = 1

    def __run__(self) -> None:
        raise ValueError("boom")

    def __error__(self) -> str:
        return "handled"
