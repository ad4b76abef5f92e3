"""Module-level classes and workers used by the Share tests (they ship by reference)."""

from __future__ import annotations

import os
import threading
import time

from suitkaise_nb.processing import Skprocess


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self, amount: int = 1) -> int:
        self.value += amount
        return self.value

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def pid(self) -> int:
        return os.getpid()


class Slow:
    def sleep(self, seconds: float) -> str:
        time.sleep(seconds)
        return "slept"


class Boom(Exception):
    """A user exception type defined at module level (importable by the client)."""


class Picky:
    def explode(self) -> None:
        raise Boom("picky exploded")


class AugWorker(Skprocess):
    """``share.n += 1`` ``count`` times in ``__run__`` (one run)."""

    def __init__(self, share, count: int) -> None:
        self.share = share
        self.count = count
        self.process_config.runs = 1

    def __run__(self) -> None:
        share = self.share
        for _ in range(self.count):
            share.n += 1

    def __result__(self) -> str:
        return "done"


class MethodWorker(Skprocess):
    """``share.c.increment()`` ``count`` times in ``__run__`` (one run)."""

    def __init__(self, share, count: int) -> None:
        self.share = share
        self.count = count
        self.process_config.runs = 1

    def __run__(self) -> None:
        share = self.share
        for _ in range(self.count):
            share.c.increment()

    def __result__(self) -> str:
        return "done"


class MixedWorker(Skprocess):
    """Several kinds of atomic updates from one process, ``runs`` times."""

    def __init__(self, share, tag: str, runs: int = 50) -> None:
        self.share = share
        self.tag = tag
        self.process_config.runs = runs

    def __run__(self) -> None:
        self.share.n += 1
        self.share.items += [self.tag]
        self.share.d[self.tag] += 1
        self.share.c.increment()
        self.share.c.value += 1
        self.share.seen.add(self.tag)

    def __result__(self) -> int:
        return self._current_run


class ServerPid(Skprocess):
    """Reads a value through the Share in a child and returns it."""

    def __init__(self, share) -> None:
        self.share = share
        self.process_config.runs = 1
        self.got = None

    def __run__(self) -> None:
        self.got = (self.share.c.pid(), self.share.n, self.share.timer.num_times)

    def __result__(self):
        return self.got


def pool_aug(share, count: int) -> int:
    for _ in range(count):
        share.n += 1
    return os.getpid()


def pool_method(share, count: int) -> int:
    for _ in range(count):
        share.c.increment()
    return os.getpid()


def pool_read(share) -> tuple:
    return (share.n, share.c.value, sorted(share.d.items()))


def threaded(share, threads: int, count: int) -> None:
    """``threads`` threads of one process each doing ``count`` atomic updates."""

    def work() -> None:
        for _ in range(count):
            share.n += 1
            share.c.increment()

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


class Holder:
    """A shared object that holds the Share itself and uses it inside its methods (which run
    in the server)."""

    def __init__(self, share) -> None:
        self.share = share

    def bump(self) -> int:
        self.share.n += 1
        self.share.log.append("bumped")
        return self.share.n


class DeferredFailure(Skprocess):
    """Operations sent without waiting (in-place ``+=``, a method call as a statement) that
    fail on the server: the error must still end this run, naming the statement's line."""

    def __init__(self, share, kind: str) -> None:
        self.share = share
        self.kind = kind
        self.caught = False
        self.process_config.runs = 1

    def __run__(self) -> None:
        share = self.share
        for _ in range(5):
            share.n += 1
        if self.kind == "aug":
            share.missing += 1  # DEFERRED-AUG
        elif self.kind == "method":
            share.c.fail("deferred boom")  # DEFERRED-METHOD
        elif self.kind == "then-raise":
            share.missing += 1
            raise KeyError("the run's own error")
        else:  # inside try: the error is raised on its own line, and caught
            try:
                share.missing += 1
            except AttributeError:
                self.caught = True
            try:
                share.c.fail("caught boom")
            except ValueError:
                self.caught = self.caught and True
            else:
                self.caught = False
        share.n += 1

    def __result__(self) -> bool:
        return self.caught


def pool_deferred_failure(share, i: int) -> int:
    share.n += 1
    if i == 7:
        share.missing += 1  # DEFERRED-POOL
    return i


def pool_deferred_then_raise(share, i: int) -> int:
    share.missing += 1
    raise KeyError(f"item {i} failed itself")
