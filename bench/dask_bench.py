"""Pool on a Dask LocalCluster vs the local backend: what does the cluster cost?

    .venv/bin/python bench/dask_bench.py            # 200 items x ~5 ms, 7 rounds
    .venv/bin/python bench/dask_bench.py --quick    # 40 items, 2 rounds

One invocation measures, with the repetitions interleaved (the order rotates every round, so
machine noise hits all contenders alike):

* ``Pool(2).map(cpu_5ms, items)``: the local backend, 2 worker processes;
* ``Pool(client=client).map(cpu_5ms, items)``: the Dask backend on a ``LocalCluster`` of 2
  worker processes with 1 thread each (127.0.0.1, no dashboard), so both have 2 CPUs' worth
  of workers;
* ``client.gather(client.map(cpu_5ms, items))``: plain Dask, one task per item, for reference.

``cpu_5ms`` is a pure-Python busy loop of ~5 ms, defined in this script (so it travels by
value, like a function typed into a notebook cell). The ideal time on 2 workers is
items x 5 ms / 2. The overhead ratio is the Dask backend's median wall time over the local
backend's.

Needs ``distributed`` (``pip install 'suitkaise_nb[dask]'``); without it the script says so
and exits 0. It runs in the current interpreter (no bench venv: there is no competitor).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

ITEM_SECONDS = 0.005


def cpu_5ms(x: int) -> int:
    end = time.perf_counter() + ITEM_SECONDS
    n = 0
    while time.perf_counter() < end:
        n += 1
    return x


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 items, 2 rounds")
    ap.add_argument("--items", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None)
    args = ap.parse_args()
    n_items = args.items or (40 if args.quick else 200)
    rounds = args.rounds or (2 if args.quick else 7)

    try:
        import distributed
    except ImportError:
        print(
            "dask_bench: skipped, 'distributed' is not installed (pip install 'suitkaise_nb[dask]')"
        )
        return 0

    from suitkaise_nb.processing import Pool

    items = list(range(n_items))
    expected = items
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    client = distributed.Client(cluster)
    local = Pool(2)
    dask_pool = Pool(client=client)

    def run_local() -> list[int]:
        return local.map(cpu_5ms, items)

    def run_dask_pool() -> list[int]:
        return dask_pool.map(cpu_5ms, items)

    def run_plain_dask() -> list[int]:
        return client.gather(client.map(cpu_5ms, items, pure=False))

    contenders = [
        ("local backend: `Pool(2).map`", run_local),
        ("Dask backend: `Pool(client=client).map`", run_dask_pool),
        ("plain Dask: `client.map` + `gather` (1 task/item)", run_plain_dask),
    ]
    times: dict[str, list[float]] = {name: [] for name, _ in contenders}
    try:
        for _, fn in contenders:  # warm-up: workers started, function shipped once
            assert fn() == expected
        for r in range(rounds):
            k = r % len(contenders)
            for name, fn in contenders[k:] + contenders[:k]:
                t0 = time.perf_counter()
                out = fn()
                times[name].append(time.perf_counter() - t0)
                assert out == expected, name
    finally:
        dask_pool.close()
        local.close()
        client.close()
        cluster.close()

    ideal = n_items * ITEM_SECONDS / 2
    base = statistics.median(times[contenders[0][0]])
    rows = []
    for name, _ in contenders:
        med = statistics.median(times[name])
        rows.append(
            [
                name,
                C.fmt_s(med),
                C.fmt_s(min(times[name])),
                C.fmt_ratio(med / ideal),
                C.fmt_ratio(med / base),
            ]
        )
    print(
        f"{n_items} items of ~{ITEM_SECONDS * 1e3:.0f} ms CPU, 2 workers each, "
        f"median of {rounds} interleaved rounds (ideal {C.fmt_s(ideal)})"
    )
    print(C.machine_line())
    print()
    print(
        C.markdown_table(
            ["contender", "wall (median)", "wall (best)", "vs ideal", "vs local backend"],
            rows,
            "lrrrr",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
