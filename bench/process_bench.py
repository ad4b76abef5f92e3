"""Skprocess engine benchmark: suitkaise_nb vs suitkaise 0.4.14 (PyPI) vs multiprocessing.

    python bench/process_bench.py             # full run (what docs/performance.md shows)
    python bench/process_bench.py --quick     # tiny counts, for development

The script re-executes itself under ``.venv-bench`` (created on first use, see
bench/README.md), where suitkaise 0.4.14 is installed; it is never a project dependency.

All contenders run in ONE process invocation and their repetitions are interleaved (the
order rotates every repetition), so machine noise hits all of them alike:

1. start -> first line of ``__run__``: ``time.monotonic()`` (CLOCK_MONOTONIC, system-wide on
   Linux) taken in the parent right before ``start()`` and as the first statement of the
   child's ``__run__`` / target, handed back through the result (or a pipe for
   ``multiprocessing``).
2. no-op start + wait (+ result) wall time: ``start(); wait(); result()`` of a one-run
   process with an empty ``__run__``; ``start(); join()`` of an empty target for
   ``multiprocessing``.
3. tell/listen round trips per second: parent ``tell`` -> child ``listen`` -> child ``tell``
   -> parent ``listen``, in chunks interleaved between contenders, after a warm-up;
   the baseline is a ``multiprocessing.Pipe`` echo child (fork).
4. a 100,000-run no-op ``Skprocess`` (``runs=100_000``, empty ``__run__``): wall time of
   ``start(); wait(); result()`` with the suitkaise_nb event stream observed
   (``suitkaise_nb.events.subscribe`` of an object counting ``process_progress`` and
   ``process_state`` events) vs not observed, alternating; suitkaise 0.4.14 once, capped.

A start that hangs is killed after ``HANG`` seconds, counted in the table and left out of the
statistics (suitkaise 0.4.14 occasionally deadlocks in its forked child here); a watchdog ends
the run with every thread's stack if any step stalls for ``WATCHDOG_S`` seconds.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

# multiprocessing's forkserver children re-run this script as "__mp_main__" before every
# target: Python 3.11's ForkServer.ensure_running keeps only a "main_path" key of the
# preparation data, which get_preparation_data no longer produces, so __main__ is never
# preloaded in the server. Importing both libraries (or even importlib.metadata, ~50 ms) there
# would be added to every forkserver start, which is not what the baseline should measure, so
# everything beyond the stdlib basics is loaded only in the real main module. The mp targets
# below need nothing else.
_LOAD_CONTENDERS = __name__ != "__mp_main__"
SK_VERSION: str | None = None
if _LOAD_CONTENDERS:
    import argparse
    import statistics
    from importlib import metadata
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))

    import _common as C

    from suitkaise_nb import events as nb_events
    from suitkaise_nb.processing import Skprocess as NbSkprocess

    try:
        from suitkaise.processing import Skprocess as SkSkprocess  # PyPI suitkaise (0.4.14)

        SK_VERSION = metadata.version("suitkaise")
    except ImportError:  # not in the bench venv: its columns say so
        SkSkprocess = None

NB = "suitkaise_nb"
SK = f"suitkaise {SK_VERSION or '0.4.14'}"
FORK = "mp fork"
FORKSERVER = "mp forkserver"
STOP = "__bench_stop__"

TARGETS = {
    "first": 10e-3,  # start -> first line of __run__, median
    "noop": 15e-3,  # no-op start + wait, median
    "rt": 10_000.0,  # tell/listen round trips per second
    "observe": 1.2,  # observed / not observed, 100k-run process
}
# What issue 3 quotes for the same machine size when quiet; used to scale the targets to the
# load of this run (the table's "met" column is against the absolute targets).
REFERENCE = {"first": 19e-3, "noop": 28e-3, "rt_pipe": 14_000.0}


# -- the processes under test: ONE class body, built on each library's Skprocess --------------
def _probe_init(self):
    self.process_config.runs = 1
    self.t_first = None


def _probe_run(self):
    self.t_first = time.monotonic()


def _probe_result(self):
    return self.t_first


def _noop_init(self):
    self.process_config.runs = 1


def _noop_run(self):
    pass


def _echo_init(self):
    self.process_config.runs = 1


def _echo_run(self):
    while True:
        msg = self.listen()
        if msg == STOP:
            break
        self.tell(msg)


def _many_init(self, runs):
    self.process_config.runs = runs


def _many_run(self):
    pass


_BODIES: dict[str, dict[str, Any]] = {
    "StartProbe": {"__init__": _probe_init, "__run__": _probe_run, "__result__": _probe_result},
    "Noop": {"__init__": _noop_init, "__run__": _noop_run},
    "Echo": {"__init__": _echo_init, "__run__": _echo_run},
    "NoopMany": {"__init__": _many_init, "__run__": _many_run},
}


def _build(base: type, prefix: str) -> dict[str, type]:
    out = {}
    for name, body in _BODIES.items():
        qual = prefix + name
        cls = type(qual, (base,), {"__module__": __name__, "__qualname__": qual, **body})
        globals()[qual] = cls  # importable by name, like a class statement at module level
        out[name] = cls
    return out


NB_CLASSES: dict[str, type] = {}
SK_CLASSES: dict[str, type] | None = None
if _LOAD_CONTENDERS:
    NB_CLASSES = _build(NbSkprocess, "Nb")
    SK_CLASSES = _build(SkSkprocess, "Sk") if SkSkprocess is not None else None


# -- multiprocessing targets --------------------------------------------------------------------
def _mp_probe(conn):
    t_first = time.monotonic()
    conn.send(t_first)


def _mp_noop():
    pass


def _mp_echo(conn):
    while True:
        msg = conn.recv()
        if msg == STOP:
            break
        conn.send(msg)


# -- one measurement each -----------------------------------------------------------------------
# Every blocking step has a deadline, so a hang of any contender ends the bench with a
# message saying where instead of stalling it. Starts have their own (HANG: a hung start is
# killed, counted and left out of the statistics); the hot loops (tell/listen, Pipe echo) are
# written as a user writes them, without timeouts, and a watchdog covers them.
HANG = 15.0
WATCHDOG_S = 300.0
_T0 = time.monotonic()


class BenchHang(RuntimeError):
    pass


class _Watchdog:
    """If a step takes longer than its budget: print every thread's stack, SIGKILL our
    multiprocessing children (suitkaise's manager and the mp contenders; suitkaise_nb's
    children exit with their parent) and exit with status 3.

    A plain sleeping thread rather than ``faulthandler.dump_traceback_later(exit=True)``: that
    one exits without a chance to take suitkaise's manager process down with us."""

    def __init__(self) -> None:
        self.deadline: float | None = None
        self.what = ""
        self.thread: threading.Thread | None = None

    def arm(self, what: str, seconds: float = WATCHDOG_S) -> None:
        self.what, self.deadline = what, time.monotonic() + seconds
        if self.thread is None:
            self.thread = threading.Thread(target=self._loop, name="bench-watchdog", daemon=True)
            self.thread.start()

    def disarm(self) -> None:
        self.deadline = None

    def _loop(self) -> None:
        while True:
            time.sleep(2.0)
            deadline = self.deadline
            if deadline is not None and time.monotonic() > deadline:
                print(f"\nwatchdog: step {self.what!r} hung; stacks:", file=sys.stderr)
                faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
                for child in multiprocessing.active_children():
                    try:
                        os.kill(child.pid, signal.SIGKILL)
                    except OSError:
                        pass
                sys.stderr.flush()
                os._exit(3)


WATCHDOG = _Watchdog()
_current_step = ""


def _step(msg: str | None = None, arm: bool = True) -> None:
    """Progress on stderr; re-arm the watchdog for the next step."""
    global _current_step
    if msg:
        _current_step = msg
        print(f"[process_bench {time.monotonic() - _T0:6.1f} s] {msg}", file=sys.stderr, flush=True)
    if arm:
        WATCHDOG.arm(_current_step)


def _wait_or_hang(p: Any, what: str, timeout: float = HANG) -> None:
    if not p.wait(timeout=timeout):
        try:
            p.kill()
        finally:
            raise BenchHang(f"{what}: {type(p).__name__} did not end within {timeout:.0f} s")


def sk_first_line(classes: dict[str, type]) -> float:
    p = classes["StartProbe"]()
    t0 = time.monotonic()
    p.start()
    _wait_or_hang(p, "start -> first line")
    t_first = p.result()
    return t_first - t0


def sk_noop(classes: dict[str, type]) -> float:
    p = classes["Noop"]()
    t0 = time.perf_counter()
    p.start()
    _wait_or_hang(p, "no-op start + wait")
    p.result()
    return time.perf_counter() - t0


class MpContender:
    def __init__(self, method: str) -> None:
        self.method = f"mp {method}"
        self.ctx = multiprocessing.get_context(method)
        self.r, self.w = self.ctx.Pipe(duplex=False)

    def first_line(self) -> float:
        p = self.ctx.Process(target=_mp_probe, args=(self.w,))
        t0 = time.monotonic()
        p.start()
        if not self.r.poll(HANG):
            p.kill()
            raise BenchHang(f"{self.method}: no first line within {HANG:.0f} s")
        t_first = self.r.recv()
        self._join(p)
        return t_first - t0

    def _join(self, p: Any) -> None:
        p.join(HANG)
        if p.exitcode is None:
            p.kill()
            raise BenchHang(f"{self.method}: child did not exit within {HANG:.0f} s")

    def noop(self) -> float:
        p = self.ctx.Process(target=_mp_noop)
        t0 = time.perf_counter()
        p.start()
        self._join(p)
        return time.perf_counter() - t0


def interleaved(
    contenders: dict[str, Callable[[], float]], reps: int, warmup: int, hangs: dict[str, int]
) -> dict[str, list[float]]:
    """``reps`` samples of each contender, the order rotating every repetition.

    A start that hangs (BenchHang) is killed, counted in ``hangs`` and left out."""
    names = list(contenders)

    def sample(name: str) -> float | None:
        try:
            return contenders[name]()
        except BenchHang as exc:
            hangs[name] = hangs.get(name, 0) + 1
            print(f"[process_bench] {name}: {exc}; killed, not counted", file=sys.stderr)
            return None

    for _ in range(warmup):
        for name in names:
            sample(name)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for i in range(reps):
        _step()
        k = i % len(names)
        for name in names[k:] + names[:k]:
            x = sample(name)
            if x is not None:
                samples[name].append(x)
    return samples


# -- tell/listen ------------------------------------------------------------------------------
class SkEcho:
    def __init__(self, classes: dict[str, type]) -> None:
        self.p = classes["Echo"]()
        self.p.start()

    def chunk(self, n: int) -> float:
        tell, listen = self.p.tell, self.p.listen
        t0 = time.perf_counter()
        for i in range(n):
            tell(i)
            got = listen()  # no timeout: the hot loop as a user writes it (watchdog armed)
            if got != i:
                raise BenchHang(f"tell/listen: sent {i}, got {got!r}")
        return time.perf_counter() - t0

    def close(self) -> None:
        self.p.tell(STOP)
        _wait_or_hang(self.p, "tell/listen echo")
        self.p.result()


class PipeEcho:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.p = ctx.Process(target=_mp_echo, args=(child,))
        self.p.start()
        child.close()

    def chunk(self, n: int) -> float:
        send, recv = self.conn.send, self.conn.recv
        t0 = time.perf_counter()
        for i in range(n):
            send(i)
            if recv() != i:
                raise BenchHang(f"Pipe echo: wrong echo for {i}")
        return time.perf_counter() - t0

    def close(self) -> None:
        self.conn.send(STOP)
        self.p.join(HANG)


def bench_roundtrips(total: int, chunks: int, warmup: int) -> dict[str, float]:
    echoes: dict[str, Any] = {NB: SkEcho(NB_CLASSES)}
    if SK_CLASSES is not None:
        echoes[SK] = SkEcho(SK_CLASSES)
    echoes[FORK] = PipeEcho()
    names = list(echoes)
    for name in names:
        echoes[name].chunk(warmup)
    per = max(1, total // chunks)
    spent = dict.fromkeys(names, 0.0)
    for i in range(chunks):
        _step()
        k = i % len(names)
        for name in names[k:] + names[:k]:
            spent[name] += echoes[name].chunk(per)
    for e in echoes.values():
        e.close()
    return {name: per * chunks / spent[name] for name in names}


# -- 100k-run process ---------------------------------------------------------------------------
class EventCounter:
    def __init__(self) -> None:
        self.progress = 0
        self.state = 0

    def process_progress(self, event):
        self.progress += 1

    def process_state(self, event):
        self.state += 1


def nb_many(runs: int, observe: bool) -> tuple[float, EventCounter | None]:
    p = NB_CLASSES["NoopMany"](runs)
    counter = EventCounter() if observe else None
    sub = nb_events.subscribe(counter) if counter is not None else None
    try:
        t0 = time.perf_counter()
        p.start()
        _wait_or_hang(p, f"{runs:,}-run process", timeout=max(HANG, runs * 1e-3))
        p.result()
        elapsed = time.perf_counter() - t0
    finally:
        if sub is not None:
            sub.close()
    if p.current_run != runs:
        raise RuntimeError(f"expected {runs} runs, got {p.current_run}")
    return elapsed, counter


def sk_many(runs: int, cap: float) -> float | None:
    """Wall time of the 0.4.14 process, or None when it did not finish within ``cap``."""
    assert SK_CLASSES is not None
    p = SK_CLASSES["NoopMany"](runs)
    t0 = time.perf_counter()
    p.start()
    if not p.wait(timeout=cap):
        p.kill()
        return None
    p.result()
    return time.perf_counter() - t0


# -- main ----------------------------------------------------------------------------------------
def sp(values: list[float]) -> dict[str, float]:
    return C.summary(values) if values else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny counts (development)")
    ap.add_argument("--starts", type=int, default=50, help="start->first line samples each")
    ap.add_argument("--noops", type=int, default=50, help="no-op start+wait samples each")
    ap.add_argument("--roundtrips", type=int, default=5000, help="timed round trips each")
    ap.add_argument("--runs", type=int, default=100_000, help="runs of the many-run process")
    ap.add_argument("--many-reps", type=int, default=3, help="observed/unobserved pairs")
    ap.add_argument("--cap", type=float, default=60.0, help="seconds allowed to suitkaise")
    args = ap.parse_args()
    if args.quick:
        args.starts, args.noops, args.roundtrips = 6, 6, 600
        args.runs, args.many_reps, args.cap = 2000, 1, 20.0
    C.ensure_bench_venv(__file__)

    threads_at_start = threading.active_count()
    fork, forkserver = MpContender("fork"), MpContender("forkserver")
    # no watchdog thread yet: suitkaise_nb forks its zygote only from a single-threaded parent
    _step("cold starts", arm=False)

    # 0. cold first start of each, in a fresh process (one sample; suitkaise_nb first so its
    # zygote is forked while this process is single-threaded, as in a plain script)
    cold = {NB: sk_first_line(NB_CLASSES)}
    if SK_CLASSES is not None:
        cold[SK] = sk_first_line(SK_CLASSES)
    cold[FORK] = fork.first_line()
    cold[FORKSERVER] = forkserver.first_line()
    _step(f"start -> first line, {args.starts} x {len(cold)} interleaved")

    def contenders(kind: str) -> dict[str, Callable[[], float]]:
        out: dict[str, Callable[[], float]] = {}
        fn = sk_first_line if kind == "first" else sk_noop
        out[NB] = lambda: fn(NB_CLASSES)
        if SK_CLASSES is not None:
            out[SK] = lambda: fn(SK_CLASSES)
        out[FORK] = getattr(fork, "first_line" if kind == "first" else "noop")
        out[FORKSERVER] = getattr(forkserver, "first_line" if kind == "first" else "noop")
        return out

    t_phase = time.perf_counter()
    hangs: dict[str, int] = {}
    first = interleaved(contenders("first"), args.starts, warmup=3, hangs=hangs)
    _step(f"no-op start + wait, {args.noops} x {len(cold)} interleaved")
    noop = interleaved(contenders("noop"), args.noops, warmup=3, hangs=hangs)
    t_starts = time.perf_counter() - t_phase

    _step(f"tell/listen, {args.roundtrips:,} round trips each")
    t_phase = time.perf_counter()
    rt = bench_roundtrips(args.roundtrips, chunks=10, warmup=max(100, args.roundtrips // 10))
    t_rt = time.perf_counter() - t_phase

    t_phase = time.perf_counter()
    plain: list[float] = []
    observed: list[float] = []
    counters: list[EventCounter] = []
    nb_many(min(args.runs, 1000), observe=False)  # warm-up
    for i in range(args.many_reps):
        for obs in (False, True) if i % 2 == 0 else (True, False):
            _step(f"{args.runs:,}-run suitkaise_nb, {'observed' if obs else 'not observed'}")
            elapsed, counter = nb_many(args.runs, obs)
            (observed if obs else plain).append(elapsed)
            if counter is not None:
                counters.append(counter)
    sk_many_t: float | None | str = "not installed"
    sk_small: float | None = None
    if SK_CLASSES is not None:
        _step(f"{args.runs:,}-run {SK} (cap {args.cap:.0f} s)")
        sk_many_t = sk_many(args.runs, args.cap)
        if sk_many_t is None:
            small = max(1, args.runs // 100)
            _step(f"{small:,}-run {SK} for an estimate")
            sk_small_t = sk_many(small, args.cap)
            sk_small = None if sk_small_t is None else sk_small_t / small
    t_many = time.perf_counter() - t_phase

    WATCHDOG.disarm()
    report(args, cold, first, noop, rt, plain, observed, counters, sk_many_t, sk_small, hangs)
    print(
        f"\nphases: starts {t_starts:.1f} s, round trips {t_rt:.1f} s, "
        f"{args.runs:,}-run {t_many:.1f} s; threads in the parent at start: {threads_at_start}"
    )


def report(
    args, cold, first, noop, rt, plain, observed, counters, sk_many_t, sk_small, hangs
) -> None:
    names = [NB, SK, FORK, FORKSERVER]
    fs = {n: sp(v) for n, v in first.items()}
    ns = {n: sp(v) for n, v in noop.items()}

    def cell(d: dict[str, dict[str, float]], name: str, key: str) -> str:
        return C.fmt_s(d[name][key]) if name in d else "n/a"

    def speedup(a: float | None, b: float | None, rate: bool = False) -> str:
        if not a or not b:
            return "n/a"
        return C.fmt_ratio(a / b if rate else b / a)

    def met(ok: bool) -> str:
        return "yes" if ok else "**NO**"

    rows: list[list[str]] = []
    nb_f, sk_f = fs[NB]["median"], fs.get(SK, {}).get("median")
    rows.append(
        [
            f"start -> first line of `__run__`, median of {args.starts}",
            *(cell(fs, n, "median") for n in names),
            speedup(nb_f, sk_f),
            "<= 10 ms",
            met(nb_f <= TARGETS["first"]),
        ]
    )
    rows.append(
        [
            "start -> first line of `__run__`, p90",
            *(cell(fs, n, "p90") for n in names),
            speedup(fs[NB]["p90"], fs.get(SK, {}).get("p90")),
            "",
            "",
        ]
    )
    rows.append(
        [
            "start -> first line, first start in a fresh process (1 sample)",
            *(C.fmt_s(cold[n]) if n in cold else "n/a" for n in names),
            speedup(cold[NB], cold.get(SK)),
            "(~40 ms, issue 3)",
            met(cold[NB] <= 0.040),
        ]
    )
    nb_n, sk_n = ns[NB]["median"], ns.get(SK, {}).get("median")
    rows.append(
        [
            f"no-op start + wait (+ result), median of {args.noops}",
            *(cell(ns, n, "median") for n in names),
            speedup(nb_n, sk_n),
            "<= 15 ms",
            met(nb_n <= TARGETS["noop"]),
        ]
    )
    rows.append(
        [
            "no-op start + wait (+ result), p90",
            *(cell(ns, n, "p90") for n in names),
            speedup(ns[NB]["p90"], ns.get(SK, {}).get("p90")),
            "",
            "",
        ]
    )
    rows.append(
        [
            f"starts that hung (killed after {HANG:.0f} s, left out of the rows above)",
            *(str(hangs.get(n, 0)) if n in fs else "n/a" for n in names),
            "",
            "0",
            met(hangs.get(NB, 0) == 0),
        ]
    )
    rows.append(
        [
            f"tell/listen round trips per second ({args.roundtrips:,}; mp: `Pipe` echo)",
            C.fmt_rate(rt[NB]),
            C.fmt_rate(rt.get(SK)),
            C.fmt_rate(rt[FORK]),
            "—",
            speedup(rt[NB], rt.get(SK), rate=True),
            ">= 10,000/s",
            met(rt[NB] >= TARGETS["rt"]),
        ]
    )
    if isinstance(sk_many_t, str):
        sk_txt = sk_many_t
    elif sk_many_t is None:
        sk_txt = f"> {args.cap:.0f} s"
        if sk_small is not None:
            sk_txt += f" (~{C.fmt_s(sk_small * args.runs)} est.)"
    else:
        sk_txt = C.fmt_s(sk_many_t)
    p_med, o_med = statistics.median(plain), statistics.median(observed)
    sk_num = sk_many_t if isinstance(sk_many_t, float) else None
    if sk_num is None and sk_small is not None:
        sk_num = sk_small * args.runs
    rows.append(
        [
            f"{args.runs:,}-run no-op process, not observed, median of {len(plain)}",
            C.fmt_s(p_med),
            sk_txt,
            "—",
            "—",
            speedup(p_med, sk_num),
            "",
            "",
        ]
    )
    ev = counters[-1] if counters else None
    evs = f", {ev.progress:,} progress + {ev.state} state events" if ev else ""
    rows.append(
        [
            f"{args.runs:,}-run no-op process, observed{evs}",
            C.fmt_s(o_med),
            "—",
            "—",
            "—",
            "",
            "",
            "",
        ]
    )
    ratio = o_med / p_med
    rows.append(
        [
            "observing cost (observed / not observed)",
            C.fmt_ratio(ratio),
            "—",
            "—",
            "—",
            "",
            "<= 1.2x",
            met(ratio <= TARGETS["observe"]),
        ]
    )

    print(f"### Skprocess engine ({C.machine_line()})\n")
    try:
        from suitkaise_nb._engine._launcher import Launcher

        inst = Launcher._instance
        how = "forked zygote" if inst is not None and inst.forked else "spawned zygote"
    except Exception:
        how = "?"
    print(f"suitkaise_nb start method: auto ({how}); suitkaise: {SK_VERSION or 'not installed'}\n")
    headers = [
        "measure",
        NB,
        SK,
        FORK,
        FORKSERVER,
        "suitkaise_nb speed-up vs suitkaise",
        "target (suitkaise_nb)",
        "met",
    ]
    print(C.markdown_table(headers, rows, align="lrrrrrll"))
    print(
        "\nspeed-up > 1 means suitkaise_nb is faster. mp columns: `multiprocessing.Process` "
        "with an empty target, `start(); join()` (no result channel)."
    )
    if sk_f and sk_n:
        kf, kn = sk_f / REFERENCE["first"], sk_n / REFERENCE["noop"]
        kr = REFERENCE["rt_pipe"] / rt[FORK]
        sf, sn, sr = TARGETS["first"] * kf, TARGETS["noop"] * kn, TARGETS["rt"] / kr
        print(
            f"\nLoad check: issue 3 quotes suitkaise 0.4.14 at ~19 ms (first line) and ~28 ms "
            f"(no-op) and `multiprocessing.Pipe` at ~14,000/s; this run measured "
            f"{C.fmt_s(sk_f)}, {C.fmt_s(sk_n)} and {C.fmt_rate(rt[FORK])}, i.e. this machine "
            f"was {kf:.1f}x / {kn:.1f}x / {kr:.1f}x slower. Scaled alike, the targets become "
            f"{C.fmt_s(sf)} (suitkaise_nb: {C.fmt_s(nb_f)}, "
            f"{'met' if nb_f <= sf else 'missed'}), {C.fmt_s(sn)} ({C.fmt_s(nb_n)}, "
            f"{'met' if nb_n <= sn else 'missed'}) and {C.fmt_rate(sr)} "
            f"({C.fmt_rate(rt[NB])}, {'met' if rt[NB] >= sr else 'missed'})."
        )


if __name__ == "__main__":
    main()
