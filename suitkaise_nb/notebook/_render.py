"""Pure renderers: snapshot → HTML or text. No widgets, no I/O (tqdm's format_meter idea)."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable

from .._sections import DUNDERS
from ._snapshot import PoolSnap, ProcessSnap, ShareSnap, TimerSnap

_STATE_COLOURS = {
    "created": "#888",
    "starting": "#1f77b4",
    "running": "#1f77b4",
    "stopping": "#ff7f0e",
    "finished": "#2ca02c",
    "failed": "#d62728",
    "killed": "#7f7f7f",
    "open": "#1f77b4",
    "closing": "#ff7f0e",
    "closed": "#2ca02c",
    "stopped": "#7f7f7f",
    "exited": "#7f7f7f",
}

DASH = "\u2013"  # an en dash for "no value"

_CSS = (
    "font-family: var(--jp-content-font-family, sans-serif); font-size: 13px; "
    "line-height: 1.4; max-width: 900px"
)


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return DASH
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    if s < 120:
        return f"{s:.2f} s"
    m, sec = divmod(int(s), 60)
    return f"{m} min {sec:02d} s"


def _esc(x: object) -> str:
    return html.escape(str(x))


def badge(state: str) -> str:
    colour = _STATE_COLOURS.get(state, "#555")
    return (
        f'<span class="sknb-state" data-state="{_esc(state)}" style="background:{colour};'
        'color:white;border-radius:3px;padding:1px 6px;font-size:12px">'
        f"{_esc(state)}</span>"
    )


def table(header: Iterable[str], rows: Iterable[Iterable[object]], cls: str = "") -> str:
    th = "".join(f'<th style="text-align:right;padding:1px 8px">{_esc(h)}</th>' for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td style="text-align:right;padding:1px 8px">{c}</td>' for c in r)
        + "</tr>"
        for r in rows
    )
    return f'<table class="{cls}" style="border-collapse:collapse"><tr>{th}</tr>{body}</table>'


def timer_rows(timers: Iterable[TimerSnap]) -> list[list[str]]:
    return [
        [
            f"<b>{_esc(t.name)}</b>",
            str(t.count),
            fmt_seconds(t.mean),
            fmt_seconds(t.median),
            fmt_seconds(t.p95),
            fmt_seconds(t.stdev),
            fmt_seconds(t.min),
            fmt_seconds(t.max),
        ]
        for t in timers
    ]


TIMER_HEADER = ("section", "count", "mean", "p50", "p95", "stdev", "min", "max")


def progress_text(run: int, runs: int | None, elapsed: float, join_in: float | None) -> str:
    if runs is not None:
        return f"run {run}/{runs}"
    if join_in is not None:
        return f"run {run} · {elapsed:.1f}/{join_in:g} s"
    return f"run {run}"


def _bar(fraction: float | None, colour: str = "#1f77b4") -> str:
    if fraction is None:
        return ""
    pct = max(0.0, min(1.0, fraction)) * 100
    return (
        '<div style="background:#eee;border-radius:3px;height:8px;width:320px;margin:3px 0">'
        f'<div style="background:{colour};height:8px;border-radius:3px;width:{pct:.1f}%">'
        "</div></div>"
    )


# -- process ----------------------------------------------------------------------


def process_html(s: ProcessSnap, *, with_log: bool = True) -> str:
    head = (
        f"<b>{_esc(s.name)}</b> &nbsp;{badge(s.state)}&nbsp; pid {_esc(s.pid or DASH)} · "
        f'<span class="sknb-progress">{_esc(progress_text(s.run, s.runs, s.elapsed, s.join_in))}'
        "</span>"
        f" · section {_esc(s.section or DASH)} · lives {s.lives_left}/{s.lives}"
        f" · {fmt_seconds(s.elapsed)}"
    )
    parts = [f'<div class="sknb-process" data-sknb-id="{s.id}" style="{_CSS}">', head]
    if s.runs:
        parts.append(_bar(s.run / s.runs, _STATE_COLOURS.get(s.state, "#1f77b4")))
    if s.timers:
        parts.append(table(TIMER_HEADER, timer_rows(s.timers), "sknb-timers"))
    if with_log and s.messages:
        rows = "".join(
            f"<div><code>{time.strftime('%H:%M:%S', time.localtime(t))}"
            f"{f'.{int(t % 1 * 1000):03d}'}</code> "
            f"{'→ child' if d == 'to_child' else '← child'} <code>{_esc(r)}</code></div>"
            for t, d, r in s.messages[-12:]
        )
        more = f" ({s.dropped} older not kept)" if s.dropped else ""
        parts.append(
            f'<details class="sknb-log" open><summary>messages: {len(s.messages) + s.dropped}'
            f"{more}</summary>{rows}</details>"
        )
    if s.failures:
        parts.append(_retries_html(s))
    if s.result is not None and s.error is None:
        parts.append(f'<div class="sknb-result">result: <code>{_esc(s.result)}</code></div>')
    if s.error is not None:
        if s.result is not None:
            parts.append(
                f'<div class="sknb-result">__error__ returned: <code>{_esc(s.result)}</code></div>'
            )
        parts.append(
            '<details class="sknb-error"><summary style="color:#d62728">'
            f"{_esc(s.error_type)}</summary><pre>{_esc(s.error)}</pre></details>"
        )
    parts.append("</div>")
    return "".join(parts)


def _retries_html(s: ProcessSnap) -> str:
    """Failures that cost a life and were retried: what failed, where, and the traceback."""
    n = len(s.failures)
    items = []
    for run, section, etype, message, tb in s.failures[-10:]:
        where = f"run {run + 1}, {DUNDERS.get(section, section)}"
        line = f"{_esc(where)}: <b>{_esc(etype)}</b>: {_esc(message)}"
        if tb:
            items.append(
                f'<details class="sknb-retry"><summary>{line}</summary>'
                f'<pre style="max-height:200px;overflow:auto;margin:2px 0">{_esc(tb)}</pre>'
                "</details>"
            )
        else:
            items.append(f'<div class="sknb-retry">{line}</div>')
    more = " (the last 10 shown)" if n > 10 else ""
    return (
        f'<div class="sknb-retries" style="color:#b35c00">{plural(n, "failure")} retried'
        f"{more}:{''.join(items)}</div>"
    )


def plural(n: int, word: str) -> str:
    """``1 client``, ``2 clients``, ``1 process``, ``3 processes`` (thousands separated)."""
    if n == 1:
        return f"1 {word}"
    return f"{n:,} {word}es" if word.endswith(("s", "x", "ch", "sh")) else f"{n:,} {word}s"


def process_text(s: ProcessSnap) -> str:
    lines = [
        f"{s.name} [{s.state}] pid {s.pid or '-'} · "
        f"{progress_text(s.run, s.runs, s.elapsed, s.join_in)} · lives {s.lives_left}/{s.lives}"
        f" · {fmt_seconds(s.elapsed)}"
    ]
    for t in s.timers:
        lines.append(
            f"  {t.name:<9} n={t.count:<6} mean={fmt_seconds(t.mean):>10} "
            f"p95={fmt_seconds(t.p95):>10} max={fmt_seconds(t.max):>10}"
        )
    if s.messages:
        lines.append(f"  messages: {len(s.messages) + s.dropped}")
    for run, section, etype, message, _tb in s.failures[-10:]:
        lines.append(f"  retried: run {run + 1}, {section}: {etype}: {message}")
    if s.result is not None:
        lines.append(f"  result: {s.result}")
    if s.error is not None:
        lines.append(f"  error: {s.error.splitlines()[-1]}")
    return "\n".join(lines)


# -- pool ----------------------------------------------------------------------


def pool_html(s: PoolSnap) -> str:
    state = "running" if s.running else s.state
    if s.error and not s.running:
        state = "failed"
    total = s.total
    frac = (s.done / total) if total else None
    prog = f"{s.done}/{total}" if total is not None else f"{s.done}"
    eta = f" · ETA {fmt_seconds(s.eta)}" if s.eta is not None and s.running else ""
    call = f"{_esc(s.kind)}({_esc(s.target)})" if s.kind else "idle"
    parts = [
        f'<div class="sknb-pool" data-sknb-id="{s.id}" style="{_CSS}">',
        f"<b>Pool</b> &nbsp;{badge(state)}&nbsp; {s.size} workers ({_esc(s.backend)}) · "
        f"{call} · "
        f'<span class="sknb-pool-progress">{prog}</span> items · {s.rate:,.0f} items/s{eta}'
        f" · {fmt_seconds(s.elapsed)}",
        _bar(frac, "#d62728" if s.error else "#1f77b4"),
    ]
    if s.workers:
        rows = [
            [str(w.pid), w.state + (f" on item {w.item}" if w.item is not None else ""), w.done]
            for w in s.workers
        ]
        first = s.worker_label
        parts.append(table((first, "state", "items done"), rows, "sknb-workers"))
    if s.cluster:
        rows = [
            [_esc(a), str(t), str(n), f"{cpu:.0f} %", f"{mem:,.0f} MB"]
            for a, t, n, cpu, mem in s.cluster
        ]
        header = ("dask worker", "threads", "our tasks", "cpu", "memory")
        parts.append(table(header, rows, "sknb-cluster"))
    if s.error:
        parts.append(
            '<details class="sknb-error"><summary style="color:#d62728">error</summary>'
            f"<pre>{_esc(s.error)}</pre></details>"
        )
    parts.append("</div>")
    return "".join(parts)


def pool_text(s: PoolSnap) -> str:
    total = s.total if s.total is not None else "?"
    lines = [
        f"Pool [{s.state}] {s.size} workers · {s.kind or 'idle'} {s.done}/{total} items · "
        f"{s.rate:,.0f} items/s"
    ]
    lines += [f"  worker {w.pid}: {w.state} · {w.done} done" for w in s.workers]
    if s.error:
        lines.append(f"  error: {s.error.splitlines()[-1]}")
    return "\n".join(lines)


# -- timer ----------------------------------------------------------------------


def timer_html(t: TimerSnap) -> str:
    return (
        f'<div class="sknb-timer" style="{_CSS}"><b>Sktimer</b> {_esc(t.name)} · '
        f"{t.count} times · total {fmt_seconds(t.total)}"
        + table(TIMER_HEADER, timer_rows([t]), "sknb-timers")
        + "</div>"
    )


def timer_text(t: TimerSnap) -> str:
    return (
        f"Sktimer {t.name}: n={t.count} mean={fmt_seconds(t.mean)} p50={fmt_seconds(t.median)} "
        f"p95={fmt_seconds(t.p95)} stdev={fmt_seconds(t.stdev)} min={fmt_seconds(t.min)} "
        f"max={fmt_seconds(t.max)}"
    )


# -- share ----------------------------------------------------------------------


def share_html(s: ShareSnap) -> str:
    rows = [
        [
            f"<b>{_esc(n)}</b>",
            _esc(t),
            f"<code>{_esc(r)}</code>",
            "" if a is None else f"{a:.1f} s ago",
        ]
        for n, t, r, a in s.attributes
    ]
    return (
        f'<div class="sknb-share" style="{_CSS}"><b>Share</b> &nbsp;{badge(s.state)}&nbsp; '
        f"{plural(len(s.attributes), 'attribute')} · {plural(s.ops, 'operation')} · "
        f"{s.rate:,.0f} ops/s · {plural(s.clients, 'client')}"
        + (table(("attribute", "type", "value", "changed"), rows, "sknb-attrs") if rows else "")
        + "</div>"
    )


def share_text(s: ShareSnap) -> str:
    lines = [
        f"Share [{s.state}] {plural(s.ops, 'operation')}, {plural(len(s.attributes), 'attribute')}"
    ]
    lines += [f"  {n} ({t}) = {r}" for n, t, r, _ in s.attributes]
    return "\n".join(lines)
