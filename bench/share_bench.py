"""Share benchmark: suitkaise_nb Share vs multiprocessing.Manager, multiprocessing.Value and
suitkaise 0.4.14 Share, 4 processes x 1,000 increments each.

    python bench/share_bench.py           # what docs/performance.md shows
    python bench/share_bench.py --quick   # tiny counts, for development
    python bench/share_bench.py --only read --only Manager   # some contenders only

Re-executes itself under ``.venv-bench``. Every contender runs ``--procs`` processes that each
do ``--incs`` increments in a loop; each process notes ``time.monotonic()`` before and after
its loop, and ops/s = total increments / (last loop end - first loop start), so process start
costs (different per library) are left out. "exact" = the final count equals procs x incs.
Repetitions are interleaved (rotating order). The Share contenders run in each library's own
``Skprocess`` (how a Share is used), the ``multiprocessing`` ones in ``multiprocessing.Process``
(fork). A process that does not finish within ``HANG`` s is killed and the repetition counted
as hung.

* ``share.n += 1``: one atomic augmented assignment on the server (suitkaise_nb); in suitkaise
  0.4.14 the same statement (a read then a write, not atomic there).
* ``share.c.increment()``: a method call on a shared user object.
* ``c = share.c; c.increment()``: the same through an alias (a live handle; suitkaise: a proxy).
* ``share.one``: a value read (each process sums what it read: "exact" = procs x incs).
* Manager ``Value`` + ``Lock``: ``with lock: v.value += 1``; Manager ``Namespace`` + ``Lock``:
  ``with lock: ns.n += 1``; ``multiprocessing.Value``: ``with v.get_lock(): v.value += 1``.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

HANG = 120.0


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> None:
        self.value += 1


# -- Skprocess bodies (built on each library's Skprocess below) --------------------------------
def _w_init(self, share, incs, mode):
    self.share, self.incs, self.mode = share, incs, mode
    self.process_config.runs = 1
    self.span = None
    self.total = 0


def _w_run(self):
    share, n, mode = self.share, self.incs, self.mode
    total = 0
    t0 = time.monotonic()
    if mode == "method":
        for _ in range(n):
            share.c.increment()
    elif mode == "alias":
        c = share.c  # a live handle (a proxy in suitkaise)
        for _ in range(n):
            c.increment()
    elif mode == "read":
        for _ in range(n):
            total += share.one
    else:
        for _ in range(n):
            share.n += 1
    self.span = (t0, time.monotonic())
    self.total = total


def _w_result(self):
    return self.span, self.total


_BODY = {"__init__": _w_init, "__run__": _w_run, "__result__": _w_result}


def _build(base: type, name: str) -> type:
    cls = type(name, (base,), {"__module__": __name__, "__qualname__": name, **_BODY})
    globals()[name] = cls
    return cls


# -- multiprocessing targets -------------------------------------------------------------------
def _mp_value_lock(v, lock, n, q):
    t0 = time.monotonic()
    for _ in range(n):
        with lock:
            v.value += 1
    q.put((t0, time.monotonic()))


def _mp_ns_lock(ns, lock, n, q):
    t0 = time.monotonic()
    for _ in range(n):
        with lock:
            ns.n += 1
    q.put((t0, time.monotonic()))


def _mp_value(v, n, q):
    t0 = time.monotonic()
    lock = v.get_lock()
    for _ in range(n):
        with lock:
            v.value += 1
    q.put((t0, time.monotonic()))


# -- one repetition each: returns (ops/s, final count) -----------------------------------------
def _run_sk(share_cls, proc_cls, mode, procs, incs):
    share = share_cls()
    try:
        share.c = Counter()
        share.n = 0
        share.one = 1
        ps = [proc_cls(share, incs, mode) for _ in range(procs)]
        for p in ps:
            p.start()
        spans = []
        total = 0
        for p in ps:
            if not p.wait(timeout=HANG):
                for q in ps:
                    q.kill()
                return None, None
            span, got = p.result()
            spans.append(span)
            total += got
        if mode == "read":
            final = total  # every read returned 1
        else:
            # suitkaise returns proxies
            final = int(share.c.value if mode in ("method", "alias") else share.n)
        return _rate(spans, procs * incs), final
    finally:
        share.stop()


def _run_mp(kind, procs, incs):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    mgr = None
    if kind == "value":
        v = ctx.Value("i", 0)
        args = (v,)
        target = _mp_value
    else:
        mgr = ctx.Manager()
        lock = mgr.Lock()
        if kind == "mvalue":
            v = mgr.Value("i", 0)
            args, target = (v, lock), _mp_value_lock
        else:
            v = mgr.Namespace()
            v.n = 0
            args, target = (v, lock), _mp_ns_lock
    try:
        ps = [ctx.Process(target=target, args=(*args, incs, q)) for _ in range(procs)]
        for p in ps:
            p.start()
        spans = [q.get(timeout=HANG) for _ in ps]
        for p in ps:
            p.join()
        final = v.n if kind == "ns" else v.value
        return _rate(spans, procs * incs), final
    finally:
        if mgr is not None:
            mgr.shutdown()


def _rate(spans, total):
    return total / (max(s[1] for s in spans) - min(s[0] for s in spans))


def main() -> None:
    import argparse

    C.ensure_bench_venv(__file__)
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--incs", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", action="append", help="contenders whose name contains this")
    a = ap.parse_args()
    if a.quick:
        a.incs, a.reps = 200, 1

    from suitkaise_nb.processing import Share as NbShare
    from suitkaise_nb.processing import Skprocess as NbSkprocess

    nbp = _build(NbSkprocess, "NbIncrementer")
    modes = {
        "aug": "`share.n += 1`",
        "method": "`share.c.increment()`",
        "alias": "`c = share.c; c.increment()`",
        "read": "`share.one` (a value read)",
    }

    def sk(share_cls, proc_cls, mode):
        return lambda: _run_sk(share_cls, proc_cls, mode, a.procs, a.incs)

    contenders = {f"suitkaise_nb Share, {text}": sk(NbShare, nbp, m) for m, text in modes.items()}
    contenders.update(
        {
            "mp.Manager Value + Lock": lambda: _run_mp("mvalue", a.procs, a.incs),
            "mp.Manager Namespace + Lock": lambda: _run_mp("ns", a.procs, a.incs),
            "mp.Value + get_lock()": lambda: _run_mp("value", a.procs, a.incs),
        }
    )
    try:
        from suitkaise.processing import Share as SkShare
        from suitkaise.processing import Skprocess as SkSkprocess

        skp = _build(SkSkprocess, "SkIncrementer")
        for m, text in modes.items():
            contenders[f"suitkaise 0.4.14 Share, {text}"] = sk(SkShare, skp, m)
    except ImportError:
        print("[share_bench] suitkaise not installed", file=sys.stderr)
    if a.only:
        contenders = {n: f for n, f in contenders.items() if any(o in n for o in a.only)}

    names = list(contenders)
    rates: dict[str, list[float]] = {n: [] for n in names}
    finals: dict[str, list[object]] = {n: [] for n in names}
    hung = dict.fromkeys(names, 0)
    for i in range(a.reps):
        k = i % len(names)
        for n in names[k:] + names[:k]:
            print(f"[share_bench] {n} #{i}", file=sys.stderr, flush=True)
            r, final = contenders[n]()
            if r is None:
                hung[n] += 1
                continue
            rates[n].append(r)
            finals[n].append(final)
    want = a.procs * a.incs
    manager = statistics.median(rates.get("mp.Manager Value + Lock") or [0.0]) or None
    rows = []
    for n in names:
        med = statistics.median(rates[n]) if rates[n] else None
        exact = sum(f == want for f in finals[n])
        is_nb = n.startswith("suitkaise_nb")
        is_write = is_nb and "value read" not in n
        vs = C.fmt_ratio(med / manager) if med and manager else ""
        ok = med is not None and exact == a.reps
        if is_write:
            ok = ok and manager is not None and med >= 10 * manager
        rows.append(
            [
                n,
                C.fmt_rate(med),
                C.fmt_rate(max(rates[n]) if rates[n] else None),
                vs,
                f"{exact}/{a.reps}" + (f" ({hung[n]} hung)" if hung[n] else ""),
                ", ".join(f"{f:,}" if isinstance(f, int) else str(f) for f in finals[n]),
                (">= 10x Manager, exact" if is_write else "exact") if is_nb else "",
                ("yes" if ok else "**NO**") if is_nb else "",
            ]
        )
    print(f"### Share ({C.machine_line()})\n")
    print(
        f"{a.procs} processes x {a.incs:,} increments, {a.reps} interleaved repetitions; "
        f"expected final count {want:,}.\n"
    )
    headers = [
        "contender",
        "ops/s median",
        "ops/s best",
        "vs Manager + Lock",
        "exact",
        "final counts",
        "target",
        "met",
    ]
    print(C.markdown_table(headers, rows, "lrrrrlll"))


if __name__ == "__main__":
    main()
