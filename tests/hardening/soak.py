"""The body of the soak test, run inside one Jupyter kernel (imported by a cell).

``soak()`` repeats Skprocess start/run cycles and Pool create/map/close cycles, checks every
result, and samples this process's figures (``measure.figures``) after a warm-up, at
checkpoints and at the end. It returns them as a dict (the cell prints it as JSON); the test
in ``test_soak.py`` asserts the bounds.
"""

from __future__ import annotations

import time
from typing import Any

from suitkaise_nb.processing import Pool
from tests.engine.procs import Count
from tests.pool.fns import square

from .measure import figures, settled_figures


def process_cycle(i: int) -> None:
    p = Count(runs=1 + i % 3)
    if i % 2:
        assert p.run() == 1 + i % 3
    else:
        p.start()
        assert p.wait(30)
        assert p.result() == 1 + i % 3
    assert not p.is_alive


def pool_cycle(i: int) -> None:
    items = range(i % 7, i % 7 + 16)
    want = [x * x for x in items]
    if i % 2:
        with Pool(2) as pool:
            assert pool.map(square, items) == want
    else:
        pool = Pool(2)
        try:
            assert list(pool.imap(square, items)) == want
        finally:
            pool.close()


def soak(
    proc_cycles: int = 500, pool_cycles: int = 200, warmup: int = 30, checkpoints: int = 5
) -> dict[str, Any]:
    out: dict[str, Any] = {"proc_cycles": proc_cycles, "pool_cycles": pool_cycles}
    for i in range(warmup):
        process_cycle(i)
        pool_cycle(i)
    base = figures()
    out["warm"] = base
    max_children = base["children"]  # the zygote and its warm spare(s)
    samples = []
    t0 = time.monotonic()
    for i in range(proc_cycles):
        process_cycle(i)
        if (i + 1) % (proc_cycles // checkpoints) == 0:
            samples.append(("process", i + 1, settled_figures(max_children, max_fds=base["fds"])))
    out["process_seconds"] = round(time.monotonic() - t0, 2)
    t0 = time.monotonic()
    for i in range(pool_cycles):
        pool_cycle(i)
        if (i + 1) % (pool_cycles // checkpoints) == 0:
            samples.append(("pool", i + 1, settled_figures(max_children, max_fds=base["fds"])))
    out["pool_seconds"] = round(time.monotonic() - t0, 2)
    out["samples"] = samples
    out["end"] = settled_figures(max_children, max_fds=base["fds"])
    return out
