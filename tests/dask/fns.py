"""Module-level functions used by the Dask pool tests (the LocalCluster's workers import this
module: they inherit the test process's ``sys.path``)."""

from __future__ import annotations

import os
import time

from suitkaise_nb.processing import Skprocess


def add_to_share(share, i):
    """Star target: one atomic ``+=`` on the Share and a method call on a shared object."""
    share.total += i
    share.seen.append(i)
    return os.getpid()


def read_share(share):
    return share.total


def slow_square(x, delay=0.3):
    time.sleep(delay)
    return x * x


def cpu_5ms(x):
    end = time.perf_counter() + 0.005
    while time.perf_counter() < end:
        pass
    return x


class EdgeTimeouts(Skprocess):
    """Runs that last about as long as their timeout: the timer often fires just as a section
    returns (the race ``_child._call_in_thread`` must get right)."""

    def __init__(self):
        self.process_config.runs = 150
        self.process_config.lives = 10_000
        self.process_config.timeouts.run = 0.002
        self.ok = 0

    def __run__(self):
        end = time.perf_counter() + 0.002
        while time.perf_counter() < end:
            pass
        self.ok += 1

    def __result__(self):
        return self.ok


class BlockingOverrun(Skprocess):
    """``__run__`` blocks 1 s in ``time.sleep`` with a 0.2 s timeout and no ``__error__``."""

    def __init__(self, value):
        self.value = value
        self.process_config.runs = 1
        self.process_config.timeouts.run = 0.2

    def __run__(self):
        time.sleep(1.0)

    def __result__(self):
        return self.value
