"""Module-level workers for the handle and integrity tests (they ship by reference)."""

from __future__ import annotations

import os
import threading

from suitkaise_nb.processing import Skprocess


def bump(counter, count: int) -> None:
    """A helper that receives a shared object as an argument."""
    for _ in range(count):
        counter.increment()


def alias_ops(share, mode: str, count: int, tag: str = "x") -> None:
    """``count`` writes to the Share through a name other than ``share.attr``."""
    if mode == "alias":
        c = share.counter
        for _ in range(count):
            c.increment()
    elif mode == "helper":
        bump(share.counter, count)
    elif mode == "getattr":
        c = getattr(share, "counter")  # noqa: B009  (a C caller: the oracle cannot see it)
        for _ in range(count):
            c.increment()
    elif mode == "list":
        lst = share.items
        for _ in range(count):
            lst.append(tag)
    elif mode == "dict":
        d = share.tally
        for _ in range(count):
            d[tag] += 1
    elif mode == "nested":
        inner = share.box.inner
        for _ in range(count):
            inner.increment()
    elif mode == "attr":
        c = share.counter
        for _ in range(count):
            c.value += 1
    elif mode == "iterate":
        for _ in range(count):
            for c in share.counters:
                c.increment()
    else:
        raise ValueError(mode)


class AliasWorker(Skprocess):
    def __init__(self, share, mode: str, count: int, tag: str = "x") -> None:
        self.share = share
        self.mode = mode
        self.count = count
        self.tag = tag
        self.process_config.runs = 1

    def __run__(self) -> None:
        alias_ops(self.share, self.mode, self.count, self.tag)

    def __result__(self) -> str:
        return "done"


class HandleWorker(Skprocess):
    """Holds a handle (not the Share) as an attribute."""

    def __init__(self, counter, count: int) -> None:
        self.counter = counter
        self.count = count
        self.process_config.runs = 1

    def __run__(self) -> None:
        for _ in range(self.count):
            self.counter.increment()


class Listener(Skprocess):
    """Receives a handle in a tell() message and writes through it."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.process_config.runs = 1

    def __run__(self) -> None:
        counter = self.listen(timeout=30)
        for _ in range(self.count):
            counter.increment()
        self.tell("done")


def pool_alias(share, mode: str, count: int, tag: str = "x") -> int:
    alias_ops(share, mode, count, tag)
    return os.getpid()


def pool_handle(counter, count: int) -> int:
    bump(counter, count)
    return count


# -- integrity: deferred errors ----------------------------------------------------------------


class SwallowWorker(Skprocess):
    """A write sent without waiting fails; an unrelated ``except ValueError`` follows."""

    def __init__(self, share) -> None:
        self.share = share
        self.process_config.runs = 1

    def __run__(self) -> None:
        share = self.share
        share.c.fail("deferred write")  # SWALLOW-LINE
        try:
            share.n = int(share.n)  # a read: it must not raise the write's error here
            int("not a number")
        except ValueError:
            pass
        share.after = True

    def __result__(self) -> str:
        return "no error"


class TwoThreads(Skprocess):
    """The main thread sends a failing write without waiting; another thread fails on its own
    line (and catches it) while the first is in flight."""

    def __init__(self, share) -> None:
        self.share = share
        self.process_config.runs = 1

    def __run__(self) -> None:
        share = self.share
        share.c.fail("main thread")  # MAIN-THREAD-LINE
        caught = []

        def other() -> None:
            for _ in range(20):
                try:
                    share.c.fail("other thread")
                except ValueError as exc:
                    caught.append(str(exc))
                share.n += 1

        t = threading.Thread(target=other)
        t.start()
        t.join()
        share.caught = caught


def pool_swallow(share, i: int) -> int:
    share.c.fail(f"item {i}")  # POOL-SWALLOW-LINE
    try:
        share.n  # noqa: B018  (a read)
    except ValueError:
        pass
    return i


def pool_one_fails(share, i: int) -> int:
    share.n += 1
    if i == 5:
        share.c.fail(f"item {i}")  # POOL-ONE-LINE
    return i


# -- integrity: values that cannot travel -----------------------------------------------------


def _only_in(pid: int) -> Unrebuildable:
    if os.getpid() != pid:
        raise ValueError(f"this object can only be rebuilt in process {pid}")
    return Unrebuildable()


class Unrebuildable:
    """Pickles anywhere, but unpickles only in the process that pickled it."""

    def __reduce__(self):
        return (_only_in, (os.getpid(),))


class OwnerRefuses:
    """Unpickles in the Share's server, but not in the process that created it."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.value = 1

    def __setstate__(self, state) -> None:
        if os.getpid() == state["owner"]:
            raise ValueError("not rebuilt in its creator")
        self.__dict__.update(state)


class MakesLock:
    """A shared object that, in the server, comes to hold something that cannot be pickled."""

    def __init__(self) -> None:
        self.value = 7

    def arm(self) -> None:
        self.lock = threading.Lock()

    def disarm(self) -> None:
        del self.lock


class SyncWorker(Skprocess):
    """``share.sync()`` is where a child may ask for its deferred errors itself."""

    def __init__(self, share) -> None:
        self.share = share
        self.process_config.runs = 1
        self.got = ""

    def __run__(self) -> None:
        self.share.c.fail("via sync")
        try:
            self.share.sync()
        except ValueError as exc:
            self.got = f"ValueError: {exc}"

    def __result__(self) -> str:
        return self.got
