"""Resource figures of a process (fds, threads, children, RSS) and a peak-RSS sampler.

Used by the hardening tests in the pytest process and, imported by a cell, inside a Jupyter
kernel (the soak test), so it needs nothing but psutil.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from typing import Any

import psutil

MB = 1024 * 1024


def live_children(proc: psutil.Process | None = None) -> list[psutil.Process]:
    """Descendants of ``proc`` (default: this process) that are not zombies."""
    proc = proc or psutil.Process()
    out = []
    for k in proc.children(recursive=True):
        try:
            if k.status() != psutil.STATUS_ZOMBIE:
                out.append(k)
        except psutil.Error:
            pass
    return out


def figures() -> dict[str, Any]:
    """Open fds, OS threads, Python threads, live descendants, RSS (MiB) and open ipywidgets
    of this process."""
    gc.collect()
    me = psutil.Process()
    widgets = sys.modules.get("ipywidgets.widgets.widget")
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": me.num_threads(),
        "py_threads": sorted(t.name for t in threading.enumerate()),
        "children": len(live_children(me)),
        "rss_mb": round(me.memory_info().rss / MB, 1),
        "widgets": len(widgets._instances) if widgets is not None else 0,
    }


def settled_figures(
    max_children: int, timeout: float = 5.0, max_fds: int | None = None
) -> dict[str, Any]:
    """``figures()`` once the descendants are down to ``max_children`` (children that just
    ended are reaped by the zygote a moment later) and, with ``max_fds``, the open descriptors
    down to that (a pool's channels are released when its workers' exit reports arrive, and
    replacement spares arrive asynchronously), or after ``timeout`` seconds: a real leak
    stays above the bound and is reported."""
    deadline = time.monotonic() + timeout
    while True:
        fig = figures()
        settled = fig["children"] <= max_children and (max_fds is None or fig["fds"] <= max_fds)
        if settled or time.monotonic() > deadline:
            return fig
        time.sleep(0.05)


class PeakRSS:
    """Samples the RSS of a set of processes in a thread; ``peak`` holds the highest value
    (MiB) seen for each role.

    ``roles`` maps a role name to a callable returning the pids to sample for it (called on
    every sample, so workers replaced during the measurement are picked up). The value for a
    role is the highest *sum* of the RSS of its processes at one instant.
    """

    def __init__(self, roles: dict[str, Any], interval: float = 0.01) -> None:
        self.roles = roles
        self.interval = interval
        self.peak: dict[str, float] = dict.fromkeys(roles, 0.0)
        self._procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peak-rss", daemon=True)

    def _rss(self, pid: int) -> int:
        p = self._procs.get(pid)
        if p is None:
            p = self._procs[pid] = psutil.Process(pid)
        return p.memory_info().rss

    def sample(self) -> None:
        for role, pids in self.roles.items():
            total = 0
            for pid in pids():
                try:
                    total += self._rss(pid)
                except psutil.Error:
                    self._procs.pop(pid, None)
            self.peak[role] = max(self.peak[role], total / MB)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
