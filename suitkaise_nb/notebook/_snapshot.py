"""Pure snapshots: frozen copies of what a view shows, taken from the engine's models.

Taking a snapshot never blocks the work (models are read, not locked, except a timer's own
short lock); rendering works only from snapshots, so the same renderer serves the live
widget, ``_repr_html_``, the text fallback and the final HTML left in a saved notebook.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .._errors import readable_traceback, short_repr

RECENT = 5000  # samples behind percentiles and histograms in live views


@dataclass(frozen=True)
class TimerSnap:
    name: str
    count: int
    mean: float | None
    median: float | None
    p95: float | None
    stdev: float | None
    min: float | None
    max: float | None
    total: float
    recent: tuple[float, ...] = ()


def _pct(sorted_vals: list[float], p: float) -> float | None:
    if not sorted_vals:
        return None
    k = (len(sorted_vals) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def timer_snapshot(timer: Any, name: str = "", recent: int = RECENT) -> TimerSnap:
    """Exact count/mean/stdev/min/max/total; median and p95 over the last ``recent`` samples
    (exact whenever the timer holds fewer)."""
    values = timer.recent(recent) if hasattr(timer, "recent") else list(timer.times)[-recent:]
    ordered = sorted(values)
    return TimerSnap(
        name=name,
        count=timer.num_times,
        mean=timer.mean,
        median=_pct(ordered, 50),
        p95=_pct(ordered, 95),
        stdev=timer.stdev,
        min=timer.min,
        max=timer.max,
        total=timer.total_time,
        recent=tuple(values),
    )


@dataclass
class ProcessLog:
    """What the bridge keeps per process beyond the engine's model: the messages. (Its output
    is in the cell that started it, once: the view does not repeat it.)"""

    messages: list[tuple[float, str, str]] = field(default_factory=list)
    dropped: int = 0
    keep: int = 50

    def add_message(self, when: float, direction: str, obj: Any) -> None:
        self.messages.append((when, direction, short_repr(obj)))
        if len(self.messages) > self.keep:
            del self.messages[0]
            self.dropped += 1


@dataclass(frozen=True)
class ProcessSnap:
    id: int
    name: str
    pid: int | None
    state: str
    section: str | None
    run: int
    runs: int | None
    join_in: float | None
    elapsed: float
    lives: int
    lives_left: int
    timers: tuple[TimerSnap, ...]
    run_recent: tuple[float, ...]
    messages: tuple[tuple[float, str, str], ...]
    dropped: int
    failures: tuple[tuple[int, str, str, str, str], ...]  # retried: run, section, type, ...
    result: str | None
    error: str | None
    error_type: str | None


def _error_text(err: BaseException | None) -> tuple[str | None, str | None]:
    if err is None:
        return None, None
    tb = readable_traceback(getattr(err, "remote_traceback", "") or "")
    text = f"{type(err).__name__}: {err}"
    if tb:
        text = tb.rstrip() + "\n\n" + text
    return text, type(err).__name__


def process_snapshot(model: Any, log: ProcessLog | None = None) -> ProcessSnap:
    timers = []
    run_recent: tuple[float, ...] = ()
    for name, t in model.timers.items():
        if t.num_times:
            snap = timer_snapshot(t, name)
            timers.append(snap)
            if name == "run":
                run_recent = snap.recent
    ended = model.state.ended if hasattr(model.state, "ended") else False
    result = None
    if ended and model.result is not None:
        result = short_repr(model.result)
    err, etype = _error_text(model.error)
    log = log or ProcessLog()
    return ProcessSnap(
        id=model.id,
        name=model.name,
        pid=model.pid,
        state=str(model.state),
        section=model.section,
        run=model.run,
        runs=model.runs,
        join_in=model.join_in,
        elapsed=model.elapsed,
        lives=model.lives,
        lives_left=model.lives_left,
        timers=tuple(timers),
        run_recent=run_recent,
        messages=tuple(log.messages),
        dropped=log.dropped,
        failures=tuple(model.failures),
        result=result,
        error=err,
        error_type=etype,
    )


@dataclass(frozen=True)
class WorkerSnap:
    pid: int
    state: str
    item: int | None
    done: int


@dataclass(frozen=True)
class PoolSnap:
    id: int
    state: str
    size: int
    backend: str
    worker_label: str
    kind: str | None
    target: str | None
    total: int | None
    done: int
    rate: float
    eta: float | None
    elapsed: float
    running: bool
    error: str | None
    workers: tuple[WorkerSnap, ...]
    errors: tuple[str, ...]
    durations: tuple[float, ...]
    cluster: tuple[tuple[str, int, int, float, float], ...] = ()  # Dask workers (scheduler)


def pool_snapshot(
    model: Any,
    current_items: dict[int, Any] | None = None,
    cluster: tuple[tuple[str, int, int, float, float], ...] = (),
) -> PoolSnap:
    call = model.current
    workers = []
    for pid, w in sorted(model.workers.items()):
        item = w.item
        if current_items and pid in current_items and current_items[pid] is not None:
            item = current_items[pid][0]
        workers.append(WorkerSnap(pid, w.state, item if w.state == "busy" else None, w.done))
    err, _ = _error_text(call.error if call is not None else None)
    return PoolSnap(
        id=model.id,
        state=model.state,
        size=model.size,
        backend=model.backend,
        worker_label=model.worker_label,
        kind=call.kind if call else None,
        target=call.target_name if call else None,
        total=call.total if call else None,
        done=call.done if call else 0,
        rate=call.rate if call else 0.0,
        eta=call.eta if call else None,
        elapsed=call.elapsed if call else 0.0,
        running=bool(call and call.ended is None),
        error=err,
        workers=tuple(workers),
        errors=tuple(f"{type(e).__name__}: {e}" for e in model.errors[-5:]),
        durations=tuple(model.durations[-RECENT:]),
        cluster=cluster,
    )


@dataclass(frozen=True)
class ShareSnap:
    id: int
    state: str
    attributes: tuple[tuple[str, str, str, float | None], ...]  # name, type, repr, changed ago
    ops: int
    rate: float
    clients: int


def share_snapshot(model: Any) -> ShareSnap:
    now = time.monotonic()
    attrs = []
    for name in model.names:
        tname, rep = model.reprs.get(name, ("?", "…"))
        changed = model.changed_at.get(name)
        attrs.append((name, tname, rep, None if changed is None else now - changed))
    return ShareSnap(
        id=model.id,
        state=model.state,
        attributes=tuple(attrs),
        ops=model.ops,
        rate=model.rate,
        clients=len(model.per_client),
    )
