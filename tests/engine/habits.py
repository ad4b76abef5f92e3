"""Module-level processes and functions for the engine-habit tests (they ship by reference)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from suitkaise_nb.processing import Pool, Share, Skprocess


def square(x: int) -> int:
    return x * x


def inner_pool(n: int) -> list[int]:
    """A Pool inside a pool worker."""
    with Pool(2) as pool:
        return pool.map(square, range(n))


class Inner(Skprocess):
    def __init__(self, n: int) -> None:
        self.n = n
        self.process_config.runs = 1

    def __run__(self) -> None:
        self.n *= 2

    def __result__(self) -> int:
        return self.n


class Outer(Skprocess):
    """An Skprocess that starts an Skprocess, a Pool and a Share of its own."""

    def __init__(self) -> None:
        self.process_config.runs = 1
        self.got: tuple = ()

    def __run__(self) -> None:
        child = Inner(21)
        child.start()
        value = child.result()
        with Pool(2) as pool:
            mapped = pool.map(square, [1, 2, 3])
        share = Share()
        share.n = 0
        share.n += 5
        shared = share.n
        share.exit()
        self.got = (value, mapped, shared)

    def __result__(self) -> tuple:
        return self.got


def share_in_item(x: int) -> int:
    """A Share created inside a pool worker."""
    share = Share()
    try:
        share.total = x
        share.total += 1
        return share.total
    finally:
        share.exit()


class Quick(Skprocess):
    def __init__(self) -> None:
        self.process_config.runs = 1

    def __run__(self) -> None:
        pass

    def __result__(self) -> str:
        return "value"


class Sleeper(Skprocess):
    """Runs for ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.process_config.runs = 1

    def __run__(self) -> None:
        time.sleep(self.seconds)

    def __result__(self) -> float:
        return self.seconds


class Talker(Skprocess):
    """Tells ``count`` numbers, one per ``listen``ed request."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.process_config.runs = 1

    def __run__(self) -> None:
        for i in range(self.count):
            self.listen(timeout=30)
            self.tell(i)


def _spawn_descendants() -> list[int]:
    """A plain subprocess and a multiprocessing child, both sleeping for a minute."""
    import multiprocessing

    sub = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ctx = multiprocessing.get_context("fork")
    mp = ctx.Process(target=time.sleep, args=(60,))
    mp.start()
    return [sub.pid, mp.pid]


class Parent(Skprocess):
    """Starts descendants, tells their pids, then sleeps."""

    def __init__(self) -> None:
        self.process_config.runs = 1

    def __run__(self) -> None:
        self.tell(_spawn_descendants())
        time.sleep(60)


def item_with_descendants(path: str) -> None:
    """A pool item that starts descendants, writes their pids to ``path``, then hangs."""
    pids = _spawn_descendants()
    with open(path, "w") as fh:
        fh.write(" ".join(map(str, [os.getpid(), *pids])))
    time.sleep(60)
