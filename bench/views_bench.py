"""Live-views overhead: ``suitkaise_nb.config.auto_views = True`` vs ``False`` in a real kernel.

    python bench/views_bench.py           # what docs/performance.md shows
    python bench/views_bench.py --quick   # tiny counts, for development

Re-executes itself under ``.venv-bench``. One IPython kernel (jupyter_client, see
``_kernel.py``; ``%load_ext suitkaise_nb`` first) runs, one cell per measurement, alternating
views on / off (ABBA order), in the same kernel:

* ``pool.map(sq, range(--items))`` on a ``Pool(2)`` opened once (``sq`` typed into a cell);
* an ``Skprocess`` typed into a cell with ``process_config.runs = --runs`` and an empty
  ``__run__``: ``p.start(); p.wait(); p.result()``.

The wall time is taken inside the cell (``time.perf_counter()`` around the call), so kernel
round trips are not counted. The iopub messages of each cell are counted to show that views
were really created with views on (``comm_open``/``comm_msg``) and not with views off.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

TARGET = 1.05

SETUP = """
%load_ext suitkaise_nb
import time, json
import suitkaise_nb
from suitkaise_nb.processing import Pool, Skprocess

def sq(x):
    return x * x

class Noop(Skprocess):
    def __init__(self, runs):
        self.process_config.runs = runs
    def __run__(self):
        pass

pool = Pool(2)
pool.map(sq, range(1000))
"""
POOL = """
suitkaise_nb.config.auto_views = {on}
t = time.perf_counter()
out = pool.map(sq, range({n}))
dt = time.perf_counter() - t
assert len(out) == {n} and out[-1] == ({n} - 1) ** 2
print("RESULT" + json.dumps(dt))
"""
PROC = """
suitkaise_nb.config.auto_views = {on}
t = time.perf_counter()
p = Noop({n})
p.start()
p.wait()
p.result()
dt = time.perf_counter() - t
print("RESULT" + json.dumps(dt))
"""


def main() -> None:
    import argparse

    C.ensure_bench_venv(__file__)
    from _kernel import Kernel

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=30, help="pairs (on, off) per workload")
    a = ap.parse_args()
    if a.quick:
        a.items, a.runs, a.reps = 10_000, 10_000, 1
    work = {
        f"`Pool(2).map` of {a.items:,} tiny items": (POOL, a.items),
        f"Skprocess, {a.runs:,} no-op runs": (PROC, a.runs),
    }
    t: dict[tuple[str, bool], list[float]] = {(w, on): [] for w in work for on in (True, False)}
    comms: dict[tuple[str, bool], list[int]] = {k: [] for k in t}
    with Kernel(cwd=str(C.ROOT)) as k:
        k.run(SETUP, timeout=300)
        k.run(POOL.format(on=True, n=1000))  # warm-up, both paths
        k.run(PROC.format(on=True, n=1000))
        for i in range(a.reps):
            for w, (cell, n) in work.items():
                for on in (True, False) if i % 2 == 0 else (False, True):
                    print(f"[views_bench] {w} views={on} #{i}", file=sys.stderr, flush=True)
                    out = k.run(cell.format(on=on, n=n), timeout=600)
                    t[(w, on)].append(json.loads(out.split("RESULT", 1)[1]))
                    cnt = k.last_counts
                    comms[(w, on)].append(cnt.get("comm_open", 0) + cnt.get("comm_msg", 0))
        k.run("pool.close()")
    rows = []
    for w in work:
        on, off = statistics.median(t[(w, True)]), statistics.median(t[(w, False)])
        ratio = on / off
        rows.append(
            [
                w,
                C.fmt_s(off),
                C.fmt_s(on),
                C.fmt_ratio(ratio),
                ", ".join(C.fmt_s(x) for x in t[(w, False)]),
                ", ".join(C.fmt_s(x) for x in t[(w, True)]),
                f"{statistics.median(comms[(w, True)]):.0f} / "
                f"{statistics.median(comms[(w, False)]):.0f}",
                "<= 1.05x",
                "yes" if ratio <= TARGET else f"**NO** (+{(ratio - 1) * 100:.0f} %)",
            ]
        )
    print(f"### Live views ({C.machine_line()})\n")
    print(f"Same kernel, {a.reps} (on, off) pairs per workload, ABBA order; medians.\n")
    headers = [
        "workload",
        "views off",
        "views on",
        "on / off",
        "off, each",
        "on, each",
        "comm msgs per cell (on / off)",
        "target",
        "met",
    ]
    print(C.markdown_table(headers, rows, "lrrrllrll"))


if __name__ == "__main__":
    main()
