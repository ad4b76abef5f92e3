"""Micro-benchmark of suitkaise_nb.timing.Sktimer; prints a markdown table.

    python bench/timing_bench.py            # 10k and 1M samples
    python bench/timing_bench.py --quick    # 10k and 100k samples

Single process, single thread. Each figure is the best of a few repeats.
"""

import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suitkaise_nb.timing import Sktimer, TimeThis, timethis  # noqa: E402

REPEATS = 3


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.1f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def best(fn, repeats=REPEATS):
    """Best wall time (ns) of fn() over `repeats` runs; fn returns its own elapsed ns."""
    return min(fn() for _ in range(repeats))


def filled(data, max_times=None):
    t = Sktimer(max_times=max_times)
    add = t.add_time
    for x in data:
        add(x)
    return t


def bench_size(n: int, rows: list) -> None:
    rng = random.Random(n)
    data = [rng.lognormvariate(-6, 1) for _ in range(n)]
    extra = [rng.lognormvariate(-6, 1) for _ in range(100)]

    def add_cost():
        t = Sktimer()
        add = t.add_time
        t0 = time.perf_counter_ns()
        for x in data:
            add(x)
        return (time.perf_counter_ns() - t0) / n

    rows.append((f"`add_time` (unbounded), {n:,} samples", fmt_ns(best(add_cost)), "per call"))

    def add_window_cost():
        t = Sktimer(max_times=1000)
        add = t.add_time
        t0 = time.perf_counter_ns()
        for x in data:
            add(x)
        return (time.perf_counter_ns() - t0) / n

    rows.append(
        (
            f"`add_time` (max_times=1000), {n:,} samples",
            fmt_ns(best(add_window_cost)),
            "per call, window full",
        )
    )

    timers = [filled(data) for _ in range(REPEATS)]

    def p95_cold():
        t = timers.pop()
        t0 = time.perf_counter_ns()
        t.percentile(95)
        return time.perf_counter_ns() - t0

    rows.append((f"`percentile(95)` first call, {n:,} samples", fmt_ns(best(p95_cold)), "sorts"))

    t = filled(data)
    t.percentile(95)

    def p95_after_adds():
        for x in extra:
            t.add_time(x)
        t0 = time.perf_counter_ns()
        t.percentile(95)
        return time.perf_counter_ns() - t0

    rows.append(
        (
            f"`percentile(95)` after 100 more adds, {n:,} samples",
            fmt_ns(best(p95_after_adds)),
            "merges the cache",
        )
    )

    def p95_repeat():
        k = 1000
        t0 = time.perf_counter_ns()
        for _ in range(k):
            t.percentile(95)
        return (time.perf_counter_ns() - t0) / k

    rows.append((f"`percentile(95)` repeated, {n:,} samples", fmt_ns(best(p95_repeat)), "cached"))

    def mean_cost():
        k = 10_000
        t0 = time.perf_counter_ns()
        for _ in range(k):
            t.mean  # noqa: B018
        return (time.perf_counter_ns() - t0) / k

    rows.append((f"`mean`, {n:,} samples", fmt_ns(best(mean_cost)), "O(1)"))

    def stats_cost():
        t0 = time.perf_counter_ns()
        t.get_stats()
        return time.perf_counter_ns() - t0

    rows.append(
        (f"`get_stats()`, {n:,} samples", fmt_ns(best(stats_cost)), "copies sorted samples")
    )


def bench_overheads(rows: list) -> None:
    k = 100_000

    def start_stop():
        t = Sktimer()
        t0 = time.perf_counter_ns()
        for _ in range(k):
            t.start()
            t.stop()
        return (time.perf_counter_ns() - t0) / k

    rows.append(("`start()` + `stop()`", fmt_ns(best(start_stop)), "per pair"))

    def time_this():
        t = Sktimer()
        t0 = time.perf_counter_ns()
        for _ in range(k):
            with TimeThis(t):
                pass
        return (time.perf_counter_ns() - t0) / k

    rows.append(("`with TimeThis(timer):` empty block", fmt_ns(best(time_this)), "per block"))

    def decorated():
        @timethis(Sktimer())
        def f():
            return None

        def g():
            return None

        t0 = time.perf_counter_ns()
        for _ in range(k):
            f()
        t1 = time.perf_counter_ns()
        for _ in range(k):
            g()
        t2 = time.perf_counter_ns()
        return ((t1 - t0) - (t2 - t1)) / k

    rows.append(("`@timethis()` overhead per call", fmt_ns(best(decorated)), "vs undecorated"))


def main() -> None:
    quick = "--quick" in sys.argv
    sizes = [10_000, 100_000] if quick else [10_000, 1_000_000]
    rows: list = []
    for n in sizes:
        bench_size(n, rows)
    bench_overheads(rows)
    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{platform.processor() or platform.system()}; best of {REPEATS}\n"
    )
    print("| operation | cost | note |")
    print("|---|---:|---|")
    for name, cost, note in rows:
        print(f"| {name} | {cost} | {note} |")


if __name__ == "__main__":
    main()
