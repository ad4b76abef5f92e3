"""Pool benchmark: suitkaise_nb Pool vs multiprocessing.Pool (fork, forkserver),
concurrent.futures.ProcessPoolExecutor, loky, mpire, multiprocess and suitkaise 0.4.14.

    python bench/pool_bench.py            # what docs/performance.md shows
    python bench/pool_bench.py --quick    # tiny counts, for development

Re-executes itself under ``.venv-bench`` (the competitors live only there). Every contender
uses 2 workers and its default chunking (``map(fn, items)`` as a user writes it). All
contenders run in ONE invocation and repetitions are interleaved (rotating order):

1. create + map 2 items + close (warm: after one untimed round of every contender), median.
2. tiny tasks ``sq(x) = x*x`` over ``--tiny`` ints (100k), on an open pool: items/s, best of
   ``--reps``. A probe of 10 % of the items first: a contender whose probe rate would need
   more than ``--cap`` seconds for the full run is reported as "> cap" with that rate.
3. 200 items of 5 ms CPU each (``time.process_time`` busy loop, so each item really costs
   5 ms of CPU however loaded the machine is): efficiency = (200 x 5 ms / 2) / wall.
4. 20 items of 10 MB ``bytes`` (distinct objects) mapped to ``len``: MB/s into the workers.
5. the tiny-task run with ``sq`` typed into a notebook cell, in a real IPython kernel
   (jupyter_client, see ``_kernel.py``), each contender best of ``--reps`` after a warm-up
   map.

A watchdog ends the run with every thread's stack if a step stalls for ``WATCHDOG_S``.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time

# forkserver children re-run this file as __mp_main__ (see process_bench.py): keep it light
_LOAD = __name__ != "__mp_main__"

WATCHDOG_S = 240.0
CPU_ITEM = 0.005


def sq(x):
    return x * x


def burn(x):
    t = time.process_time()
    while time.process_time() - t < CPU_ITEM:
        pass
    return x


def nbytes(b):
    return len(b)


def nbytes_t(*b):  # mpire unpacks tuples: items are sent as (bytes,)
    return len(b[0])


# -- contenders: make(), map(h, fn, items), close(h) ------------------------------------------
def _mp(method):
    import multiprocessing as mp

    ctx = mp.get_context(method)
    return (lambda: ctx.Pool(2), lambda h, f, xs: h.map(f, xs), lambda h: (h.close(), h.join()))


def _ppe():
    from concurrent.futures import ProcessPoolExecutor

    return (
        lambda: ProcessPoolExecutor(2),
        lambda h, f, xs: list(h.map(f, xs)),
        lambda h: h.shutdown(wait=True),
    )


def _loky():
    from loky import ProcessPoolExecutor

    return (
        lambda: ProcessPoolExecutor(2),
        lambda h, f, xs: list(h.map(f, xs)),
        lambda h: h.shutdown(wait=True),
    )


def _mpire():
    from mpire import WorkerPool

    def m(h, f, xs):
        if f is nbytes:
            return h.map(nbytes_t, [(b,) for b in xs])
        return h.map(f, xs)

    return (lambda: WorkerPool(n_jobs=2), m, lambda h: h.stop_and_join())


def _multiprocess():
    import multiprocess

    return (
        lambda: multiprocess.Pool(2),
        lambda h, f, xs: h.map(f, xs),
        lambda h: (h.close(), h.join()),
    )


def _nb():
    from suitkaise_nb.processing import Pool

    return (lambda: Pool(2), lambda h, f, xs: h.map(f, xs), lambda h: h.close())


def _sk():
    from suitkaise.processing import Pool

    return (lambda: Pool(workers=2), lambda h, f, xs: h.map(f, xs), lambda h: h.close())


NB, SK = "suitkaise_nb", "suitkaise 0.4.14"
FORK, FS = "mp.Pool fork", "mp.Pool forkserver"
MAKERS = {
    NB: _nb,
    FORK: lambda: _mp("fork"),
    FS: lambda: _mp("forkserver"),
    "ProcessPoolExecutor": _ppe,
    "loky": _loky,
    "mpire": _mpire,
    "multiprocess": _multiprocess,
    SK: _sk,
}


class _Watchdog:
    def __init__(self) -> None:
        self.deadline: float | None = None
        self.what = ""
        threading.Thread(target=self._loop, daemon=True).start()

    def arm(self, what: str, s: float = WATCHDOG_S) -> None:
        print(f"[pool_bench] {what}", file=sys.stderr, flush=True)
        self.what, self.deadline = what, time.monotonic() + s

    def _loop(self) -> None:
        import multiprocessing as mp

        while True:
            time.sleep(1.0)
            if self.deadline is not None and time.monotonic() > self.deadline:
                print(f"\nwatchdog: {self.what!r} hung", file=sys.stderr)
                faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
                for c in mp.active_children():
                    try:
                        os.kill(c.pid, 9)
                    except OSError:
                        pass
                os._exit(3)


NOTEBOOK_CELL = r"""
import json, time, multiprocessing as mp
def sq(x):
    return x * x
N = {n}
xs = list(range(N))
res = {{}}
def run(name, make, m, close):
    try:
        h = make()
        try:
            m(h, sq, xs[:200])
            P = N // 10
            t = time.perf_counter(); m(h, sq, xs[:P]); r = P / (time.perf_counter() - t)
            if N / r > {cap}:
                res[name] = f"> {cap:.0f} s cap ({{r:,.0f}}/s on {{P:,}})"
                return
            best = 0.0
            for _ in range({reps}):
                t = time.perf_counter(); out = m(h, sq, xs); dt = time.perf_counter() - t
                assert out[-1] == (N - 1) ** 2 and len(out) == N
                best = max(best, N / dt)
            res[name] = best
        finally:
            close(h)
    except Exception as e:
        res[name] = f"fails ({{type(e).__name__}})"
from suitkaise_nb.processing import Pool as NbPool
run("suitkaise_nb", lambda: NbPool(2), lambda h, f, x: h.map(f, x), lambda h: h.close())
for meth, name in (("fork", "mp.Pool fork"), ("forkserver", "mp.Pool forkserver")):
    ctx = mp.get_context(meth)
    # a worker that cannot unpickle the task dies and map() waits forever: bound it
    run(name, lambda: ctx.Pool(2), lambda h, f, x: h.map_async(f, x).get({tmo}),
        lambda h: (h.terminate(), h.join()))
from concurrent.futures import ProcessPoolExecutor
run("ProcessPoolExecutor", lambda: ProcessPoolExecutor(2), lambda h, f, x: list(h.map(f, x)),
    lambda h: h.shutdown())
import loky
run("loky", lambda: loky.ProcessPoolExecutor(2), lambda h, f, x: list(h.map(f, x)),
    lambda h: h.shutdown())
import mpire
run("mpire", lambda: mpire.WorkerPool(n_jobs=2), lambda h, f, x: h.map(f, x),
    lambda h: h.stop_and_join())
import multiprocess
run("multiprocess", lambda: multiprocess.Pool(2), lambda h, f, x: h.map(f, x),
    lambda h: (h.close(), h.join()))
{sk}
print("RESULT" + json.dumps(res))
"""
SK_CELL = """
from suitkaise.processing import Pool as SkPool
t0 = time.perf_counter()
h = SkPool(workers=2)
try:
    small = xs[: N // 10]
    t = time.perf_counter(); h.map(sq, small); r = len(small) / (time.perf_counter() - t)
    if N / r > {cap}:
        res["suitkaise 0.4.14"] = f"> {cap:.0f} s cap ({{r:,.0f}}/s on {{len(small):,}})"
    else:
        t = time.perf_counter(); h.map(sq, xs)
        res["suitkaise 0.4.14"] = N / (time.perf_counter() - t)
finally:
    h.close()
"""


def main() -> None:
    import argparse
    import json
    import statistics
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _common as C

    C.ensure_bench_venv(__file__)
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tiny", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--creates", type=int, default=5)
    ap.add_argument("--cap", type=float, default=10.0)
    ap.add_argument("--no-kernel", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.tiny, a.reps, a.creates, a.cap = 5_000, 1, 2, 3.0
    wd = _Watchdog()
    ops = {}
    for name, mk in MAKERS.items():
        try:
            ops[name] = mk()
        except ImportError as e:
            print(f"[pool_bench] {name} missing: {e}", file=sys.stderr)
    names = list(ops)

    def rot(i):
        k = i % len(names)
        return names[k:] + names[:k]

    def fresh_map(name, fn, xs):
        make, m, close = ops[name]
        h = make()
        try:
            return m(h, fn, xs)
        finally:
            close(h)

    # 1. create + map 2 + close
    create: dict[str, list[float]] = {n: [] for n in names}
    for i in range(a.creates + 1):
        for n in rot(i):
            wd.arm(f"create+map2+close {n} #{i}", 60)
            t = time.perf_counter()
            assert fresh_map(n, sq, [1, 2]) == [1, 4]
            if i:  # round 0 is the warm-up
                create[n].append(time.perf_counter() - t)

    # 2-4 on open pools
    pools = {}
    for n in names:
        wd.arm(f"open {n}", 60)
        pools[n] = ops[n][0]()
        ops[n][1](pools[n], sq, list(range(200)))
    xs = list(range(a.tiny))
    tiny: dict[str, list[float]] = {n: [] for n in names}
    capped: dict[str, str] = {}
    probe = max(1, a.tiny // 10)  # per-map overheads make a smaller probe unfair (mpire)
    for n in names:
        wd.arm(f"tiny probe {n}", 120)
        t = time.perf_counter()
        ops[n][1](pools[n], sq, xs[:probe])
        r = probe / (time.perf_counter() - t)
        if a.tiny / r > a.cap:
            capped[n] = f"> {a.cap:.0f} s cap ({C.fmt_rate(r)} on {probe:,})"
    for i in range(a.reps):
        for n in rot(i):
            if n in capped:
                continue
            wd.arm(f"tiny {n} #{i}", 120)
            t = time.perf_counter()
            out = ops[n][1](pools[n], sq, xs)
            tiny[n].append(a.tiny / (time.perf_counter() - t))
            assert len(out) == a.tiny and out[-1] == (a.tiny - 1) ** 2
    n_cpu = 40 if a.quick else 200
    eff: dict[str, list[float]] = {n: [] for n in names}
    for i in range(a.reps):
        for n in rot(i):
            wd.arm(f"cpu {n} #{i}", 120)
            t = time.perf_counter()
            ops[n][1](pools[n], burn, list(range(n_cpu)))
            eff[n].append(n_cpu * CPU_ITEM / 2 / (time.perf_counter() - t))
    n_pay = 5 if a.quick else 20
    mb = 10 << 20
    payload = [bytes([i]) * mb for i in range(n_pay)]
    pay: dict[str, list[float]] = {n: [] for n in names}
    for i in range(a.reps):
        for n in rot(i):
            wd.arm(f"payload {n} #{i}", 120)
            t = time.perf_counter()
            out = ops[n][1](pools[n], nbytes, payload)
            pay[n].append(n_pay * 10 / (time.perf_counter() - t))
            assert list(out) == [mb] * n_pay
    del payload
    for n in names:
        wd.arm(f"close {n}", 60)
        ops[n][2](pools[n])

    # 5. notebook cell
    nbres: dict[str, object] = {}
    if not a.no_kernel:
        from _kernel import Kernel

        wd.arm("notebook kernel", 600)
        sk = SK_CELL.format(cap=a.cap) if SK in names else ""
        with Kernel(cwd=str(C.ROOT)) as k:
            out = k.run(
                NOTEBOOK_CELL.format(n=a.tiny, sk=sk, tmo=a.cap * 2, cap=a.cap, reps=a.reps),
                timeout=550,
            )
        nbres = json.loads(out.split("RESULT", 1)[1])
    wd.deadline = None

    # report
    def best(d, n):
        return max(d[n]) if d[n] else None

    def rate_cell(n):
        return capped.get(n) or C.fmt_rate(best(tiny, n))

    def nbcell(n):
        v = nbres.get(n)
        return C.fmt_rate(v) if isinstance(v, (int, float)) else (v or "n/a")

    cr = {n: statistics.median(create[n]) for n in names}
    rows = [
        [
            f"create + map 2 + close, warm, median of {a.creates}",
            *(C.fmt_s(cr[n]) for n in names),
            "<= 15 ms",
            "yes" if cr[NB] <= 0.015 else "**NO**",
        ],
        [
            f"tiny tasks `sq`, {a.tiny:,} ints, items/s (best of {a.reps})",
            *(rate_cell(n) for n in names),
            ">= 1.0x forkserver",
            _met(best(tiny, NB), best(tiny, FS), 1.0),
        ],
        [
            "  ratio to mp.Pool forkserver",
            *(_ratio(best(tiny, n), best(tiny, FS), C) for n in names),
            "",
            "",
        ],
        [
            f"{n_cpu} x 5 ms CPU, efficiency ideal/actual (best of {a.reps})",
            *(f"{best(eff, n):.2f}" for n in names),
            ">= 0.95",
            "yes" if best(eff, NB) >= 0.95 else "**NO**",
        ],
        [
            f"{n_pay} x 10 MB bytes -> len, MB/s (best of {a.reps})",
            *(f"{best(pay, n):,.0f}" for n in names),
            ">= 3x fork",
            _met(best(pay, NB), best(pay, FORK), 3.0),
        ],
        [
            "  ratio to mp.Pool fork",
            *(_ratio(best(pay, n), best(pay, FORK), C) for n in names),
            "",
            "",
        ],
        [
            f"tiny tasks, `sq` typed in a notebook cell, {a.tiny:,} ints, items/s "
            f"(best of {a.reps})",
            *(nbcell(n) for n in names),
            ">= 1.0x forkserver (script)",
            _met(nbres.get(NB), best(tiny, FS), 1.0),
        ],
    ]
    print(f"### Pool ({C.machine_line()})\n")
    print(C.markdown_table(["measure", *names, "target", "met"], rows, "l" + "r" * len(names)))
    print(
        "\n2 workers everywhere, default chunking. Rates are best-of because the machine is "
        "shared; efficiency counts each item as its 5 ms of CPU (`process_time`), so wall "
        "time lost to other load on the machine counts against every contender alike."
    )


def _ratio(a, b, C):
    if not a or not b:
        return "n/a"
    return C.fmt_ratio(a / b)


def _met(a, b, k, other="forkserver"):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return f"n/a ({other} n/a)" if isinstance(a, (int, float)) else "n/a"
    return "yes" if a >= k * b else f"**NO** ({a / b:.2f}x)"


if __name__ == "__main__" and _LOAD:
    main()
