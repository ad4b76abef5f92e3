"""ipywidgets views. Each view is a small widget tree fed by one pure renderer.

A view is displayed as one mime bundle holding the widget *and* an HTML rendering of the same
snapshot, under a display id. Live front-ends show the widget; when the work ends the bundle is
updated with the final HTML, so a saved notebook (nbconvert, GitHub, no widget manager) shows a
readable summary instead of an empty gap.
"""

from __future__ import annotations

import base64
import enum
import html as html_lib
import itertools
import logging
import threading
import time
import weakref
from typing import Any

import ipywidgets as W
from IPython.display import display, update_display

from . import _render as R
from ._plots import histogram_png, histogram_svg, warm_up
from ._snapshot import (
    ProcessLog,
    pool_snapshot,
    process_snapshot,
    share_snapshot,
    timer_snapshot,
)

_ids = itertools.count(1)
log = logging.getLogger("suitkaise_nb")
PLOT_EVERY = 2.0  # seconds between histogram redraws of one view
# A histogram costs real CPU (matplotlib's import, then ~0.1 s a plot) on the machine that
# runs the work: work that ends within this many seconds gets its histogram once, at the end
# (drawn after the work, so it cannot slow it); longer work gets a live one.
FIRST_PLOT_AFTER = 3.0
# Work shown automatically first appears as HTML (one cheap display, in the cell that started
# it); its widgets (buttons, histogram: each a comm to the front-end) are built only once it has
# run this long, and the display is then updated in place. A quick map or run costs two small
# messages instead of a widget tree that would outlive it.
WIDGETS_AFTER = 0.3


class ViewState(enum.Enum):
    """Where a view's display is. (Whether its *work* has ended is the model's business:
    :meth:`View.is_finished`; whether it has widgets: ``view.widget is not None``.)"""

    NEW = "new"  # made, not displayed
    PENDING = "pending"  # to be displayed soon, in the cell that started the work
    SHOWN = "shown"  # displayed; its HTML (and widgets, once built) follow the work
    FINAL = "final"  # the work ended and its final HTML is in the notebook
    CLOSED = "closed"  # dropped from the registry: widgets closed, the display keeps the HTML


class View:
    """Base: a widget, an HTML/text rendering, a display id, a state and a dirty flag."""

    title = "view"
    lazy = False  # widgets built on show() (False) or once the work ran WIDGETS_AFTER (True)

    def __init__(self) -> None:
        self.display_id = f"suitkaise-nb-{self.title}-{next(_ids)}"
        self.state = ViewState.NEW
        self.dirty = True  # something changed since the last refresh
        self.last_plot = 0.0
        self.created = time.monotonic()
        self.plotted_count = -1
        self.cell: str | None = None  # the cell (and its parent message) it is displayed in
        self.parent: Any = None
        self.widget: W.Widget | None = None
        self.published_html: str | None = None  # the HTML the notebook file holds now
        # one refresh at a time (display thread, a cell's end on the main thread): a slower
        # refresh must not overwrite a newer one with an older rendering
        self._refresh_lock = threading.RLock()

    # subclasses: snapshot/render, and the widget tree
    def render(self) -> tuple[str, str]:
        raise NotImplementedError

    def build(self) -> W.Widget:
        raise NotImplementedError

    @property
    def displayed(self) -> bool:
        return self.state in (ViewState.SHOWN, ViewState.FINAL, ViewState.CLOSED)

    def ensure_built(self) -> None:
        with self._refresh_lock:
            if self.widget is None:
                self.widget = self.build()

    def update_widgets(self, html: str, plot_ok: bool) -> None:
        raise NotImplementedError

    def is_finished(self) -> bool:
        return False

    def histogram(self) -> tuple[Any, str] | None:
        """(durations, title) of the view's histogram, when it has one."""
        return None

    def refresh(self, now: float | None = None) -> None:
        with self._refresh_lock:
            # cleared before rendering: a change marked while this refresh runs (a histogram
            # can take a second) keeps the view dirty for the next tick instead of being lost
            self.dirty = False
            now = time.monotonic() if now is None else now
            html, _ = self.render()
            if self.widget is None:
                return
            live = now - self.created >= FIRST_PLOT_AFTER and now - self.last_plot >= PLOT_EVERY
            plot_ok = live or self.is_finished()
            with self.widget.hold_sync():
                self.update_widgets(html, plot_ok)

    def static_html(self) -> tuple[str, str]:
        """The HTML a notebook file keeps (where no widget manager runs): the rendering, and
        the histogram of the same moment as an image (SVG: no matplotlib, ~0.1 ms)."""
        html, text = self.render()
        hist = self.histogram()
        if hist is not None and len(hist[0]) >= 2:
            svg = histogram_svg(hist[0], hist[1]).encode()
            src = base64.b64encode(svg).decode("ascii")
            alt = html_lib.escape(hist[1], quote=True)
            html += f'<img class="sknb-hist" alt="{alt}" src="data:image/svg+xml;base64,{src}">'
        return html, text

    def bundle(self, widget: bool = True) -> dict[str, Any]:
        html, text = self.static_html()
        self.published_html = html
        out: dict[str, Any] = {"text/html": html, "text/plain": text}
        if widget and self.widget is not None:
            out["application/vnd.jupyter.widget-view+json"] = {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.widget.model_id,
            }
        return out

    def show(self) -> None:
        """Display in the current cell (widgets at once unless this view is lazy)."""
        if not self.lazy:
            self.ensure_built()
            self.refresh()
        if self.state in (ViewState.NEW, ViewState.PENDING):
            self.state = ViewState.SHOWN
        display(self.bundle(), raw=True, display_id=self.display_id)

    def defer(self, parent: Any, cell: str | None) -> None:
        """Display later (show_pending), in the cell whose parent message is ``parent``."""
        self.parent, self.cell = parent, cell
        self.state = ViewState.PENDING

    def show_pending(self) -> None:
        with self._refresh_lock:  # the display thread and the cell's end may both try
            if self.state is ViewState.PENDING:
                self.show()

    def go_live(self) -> None:
        """Build the widgets of a lazy view and swap them into its display (any thread)."""
        self.ensure_built()
        self.refresh()
        if self.displayed:
            update_display(self.bundle(), raw=True, display_id=self.display_id)

    def wants_widgets(self, now: float) -> bool:
        return (
            self.lazy
            and self.widget is None
            and self.state is ViewState.SHOWN
            and not self.is_finished()
            and (now - self.created >= WIDGETS_AFTER)
        )

    def needs_final(self) -> bool:
        """The work ended and the notebook does not have its final HTML yet."""
        return self.state is ViewState.SHOWN and self.is_finished()

    def publish_final(self) -> None:
        """Leave the final state as HTML in the notebook file (static fallback), histogram
        included."""
        if self.state is ViewState.SHOWN:
            self.state = ViewState.FINAL
            update_display(self.bundle(), raw=True, display_id=self.display_id)

    def publish_current(self) -> None:
        """Bring the HTML the notebook file keeps up to the view's present state (at a cell's
        end: a timer fed by later cells, a process still running, a dashboard), when it
        changed. Exports then show the latest state, not the first."""
        if self.state is not ViewState.SHOWN:
            return
        with self._refresh_lock:
            if self.widget is not None:
                self.refresh()
            html, _ = self.static_html()
            if html == self.published_html:
                return
        update_display(self.bundle(), raw=True, display_id=self.display_id)

    def reopen(self) -> None:
        """New work in the same view (a pool's next call in the same cell)."""
        if self.state is ViewState.FINAL:
            self.state = ViewState.SHOWN
        self.dirty = True

    def close(self) -> None:
        """Forget the widgets (their comms and models): the display keeps the HTML."""
        with self._refresh_lock:
            widget, self.widget = self.widget, None
            displayed = self.displayed
            if displayed:
                self.state = ViewState.CLOSED
        if widget is None:
            return
        if displayed:
            try:
                update_display(self.bundle(widget=False), raw=True, display_id=self.display_id)
            except Exception:
                pass
        _close_tree(widget)

    def _ipython_display_(self) -> None:
        self.show()


class _Plotter:
    """Histograms are drawn on their own thread, never on the display thread: a plot can take
    seconds (matplotlib's first import, a cold font cache) and must not hold back the text of
    any view meanwhile. Only the newest request per image is kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: dict[int, tuple[W.Image, tuple[float, ...], str]] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="suitkaise_nb-plots", daemon=True
                )
                self._thread.start()

    def submit(self, img: W.Image, values: Any, title: str) -> None:
        with self._lock:
            self._pending[id(img)] = (img, tuple(values), title)
        self.start()
        self._wake.set()

    def _loop(self) -> None:
        try:  # pay matplotlib's import while the first samples arrive
            warm_up()
        except Exception:
            log.exception("suitkaise_nb: matplotlib could not be imported")
        while True:
            self._wake.wait()
            with self._lock:
                self._wake.clear()
                jobs = list(self._pending.values())
                self._pending.clear()
            for img, values, title in jobs:
                try:
                    img.value = histogram_png(values, title)
                    img.layout.display = ""
                except Exception:
                    log.exception("suitkaise_nb histogram failed")


_plotter = _Plotter()


def _close_tree(widget: Any) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    layout = getattr(widget, "layout", None)
    widget.close()
    if layout is not None:
        layout.close()


def _hist_widget() -> W.Image:
    return W.Image(format="png", layout=W.Layout(display="none", max_width="420px"))


def _set_plot(img: W.Image, values: Any, title: str) -> None:
    if len(values) >= 2:
        _plotter.submit(img, values, title)


def _frontend_route(_data: Any, default: str | None) -> str | None:
    return default


def _button(**kw: Any) -> W.Button:
    """A button whose clicks run where the front-end sends them.

    JupyterLab 4 and Notebook 7 send widget messages on a kernel subshell when the kernel has
    them (ipykernel 7), so that a click runs on that subshell's thread while a cell blocks. But
    ipykernel sends a comm's incoming messages to the subshell of the request that last
    published on it (for widgets whose replies a waiting loop expects): our buttons are built
    and updated under the cell's request, on the main shell, so a Stop or Cancel clicked during
    ``map``, ``run()`` or ``result()`` waited for the cell to end. Stop, Kill and Cancel are
    safe on any thread and nothing waits for a reply to them, so their clicks go where the
    front-end sent them (the main shell when there is no subshell, as before).
    """
    button = W.Button(**kw)
    comm = getattr(button, "comm", None)
    if comm is not None and hasattr(comm, "_reply_subshell_for"):
        comm._reply_subshell_for = _frontend_route  # noqa: SLF001  (ipykernel 7)
    return button


class ProcessView(View):
    title = "process"
    lazy = True

    def __init__(self, model: Any, handle: Any, log: ProcessLog) -> None:
        super().__init__()
        self.model = model
        self.handle_ref = weakref.ref(handle) if handle is not None else None
        self.log = log

    def build(self) -> W.Widget:
        self.html = W.HTML()
        self.hist = _hist_widget()
        self.stop_btn = _button(description="Stop", icon="stop", layout=W.Layout(width="90px"))
        self.kill_btn = _button(
            description="Kill", icon="times", button_style="danger", layout=W.Layout(width="90px")
        )
        self.stop_btn.on_click(lambda _b: self._act("stop"))
        self.kill_btn.on_click(lambda _b: self._act("kill"))
        box = W.VBox(
            [self.html, W.HBox([self.stop_btn, self.kill_btn]), self.hist],
            layout=W.Layout(border="1px solid #ddd", padding="4px"),
        )
        box.add_class("sknb-process-view")
        return box

    def _act(self, what: str) -> None:
        proc = self.handle_ref() if self.handle_ref is not None else None
        if proc is None:
            return
        getattr(proc, what)()  # public methods only
        self.dirty = True

    def is_finished(self) -> bool:
        return bool(self.model.state.ended)

    def render(self) -> tuple[str, str]:
        snap = process_snapshot(self.model, self.log)
        self._snap = snap
        return R.process_html(snap), R.process_text(snap)

    def histogram(self) -> tuple[Any, str] | None:
        return self._snap.run_recent, "__run__ durations"

    def update_widgets(self, html: str, plot_ok: bool) -> None:
        self.html.value = html
        ended = self.is_finished()
        self.stop_btn.disabled = ended or str(self.model.state) == "stopping"
        self.kill_btn.disabled = ended
        snap = self._snap
        if plot_ok and len(snap.run_recent) != self.plotted_count:
            self.plotted_count = len(snap.run_recent)
            self.last_plot = time.monotonic()
            _set_plot(self.hist, snap.run_recent, "__run__ durations")


class PoolView(View):
    title = "pool"
    lazy = True

    def __init__(self, model: Any, pool: Any) -> None:
        super().__init__()
        self.model = model
        self.pool_ref = weakref.ref(pool) if pool is not None else None

    def build(self) -> W.Widget:
        self.html = W.HTML()
        self.hist = _hist_widget()
        self.cancel_btn = _button(
            description="Cancel", icon="ban", button_style="warning", layout=W.Layout(width="100px")
        )
        self.cancel_btn.on_click(lambda _b: self._cancel())
        box = W.VBox(
            [self.html, self.cancel_btn, self.hist],
            layout=W.Layout(border="1px solid #ddd", padding="4px"),
        )
        box.add_class("sknb-pool-view")
        return box

    def _cancel(self) -> None:
        pool = self.pool_ref() if self.pool_ref is not None else None
        if pool is not None:
            pool.cancel()
        self.dirty = True

    def is_finished(self) -> bool:
        call = self.model.current
        return call is None or call.ended is not None

    def render(self) -> tuple[str, str]:
        model = self.model  # public models only: the pool itself is never called from here
        snap = pool_snapshot(model, model.current_items(), model.cluster)
        self._snap = snap
        return R.pool_html(snap), R.pool_text(snap)

    def histogram(self) -> tuple[Any, str] | None:
        return self._snap.durations, "per-item durations"

    def update_widgets(self, html: str, plot_ok: bool) -> None:
        self.html.value = html
        self.cancel_btn.disabled = not self._snap.running
        # a closed pool has nothing to cancel: no button at all (not a faded one)
        self.cancel_btn.layout.display = "" if self.model.state == "open" else "none"
        durations = self._snap.durations
        if plot_ok and len(durations) != self.plotted_count:
            self.plotted_count = len(durations)
            self.last_plot = time.monotonic()
            _set_plot(self.hist, durations, "per-item durations")


class TimerView(View):
    title = "timer"

    def __init__(self, timer: Any, name: str = "") -> None:
        super().__init__()
        self.created -= FIRST_PLOT_AFTER  # a timer's samples are already there: plot at once
        self.timer = timer
        self.name = name

    def build(self) -> W.Widget:
        self.html = W.HTML()
        self.hist = _hist_widget()
        box = W.VBox([self.html, self.hist])
        box.add_class("sknb-timer-view")
        return box

    def render(self) -> tuple[str, str]:
        snap = timer_snapshot(self.timer, self.name)
        self._snap = snap
        return R.timer_html(snap), R.timer_text(snap)

    def histogram(self) -> tuple[Any, str] | None:
        return self._snap.recent, self.name or "durations"

    def update_widgets(self, html: str, plot_ok: bool) -> None:
        self.html.value = html
        if plot_ok and self._snap.count != self.plotted_count:
            self.plotted_count = self._snap.count
            self.last_plot = time.monotonic()
            _set_plot(self.hist, self._snap.recent, self.name or "durations")


class ShareView(View):
    title = "share"

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def build(self) -> W.Widget:
        self.html = W.HTML()
        box = W.VBox([self.html])
        box.add_class("sknb-share-view")
        return box

    def render(self) -> tuple[str, str]:
        snap = share_snapshot(self.model)
        return R.share_html(snap), R.share_text(snap)

    def update_widgets(self, html: str, plot_ok: bool) -> None:
        self.html.value = html


class Dashboard(View):
    """Every process, pool, share and global timer of this kernel, live, with Stop/Kill."""

    title = "dashboard"

    def __init__(self, bridge: Any) -> None:
        super().__init__()
        self.bridge = bridge
        self._row_ids: tuple[int, ...] = ()
        self._row_html: dict[int, W.HTML] = {}

    def build(self) -> W.Widget:
        self.header = W.HTML()
        self.rows = W.VBox()
        self.timers_html = W.HTML()
        box = W.VBox(
            [self.header, self.rows, self.timers_html],
            layout=W.Layout(border="1px solid #ddd", padding="4px"),
        )
        box.add_class("sknb-dashboard")
        return box

    def render(self) -> tuple[str, str]:
        """The whole dashboard as HTML/text: what a saved notebook shows without widgets."""
        procs, pools, shares, timers = self.bridge.inventory()
        head = (
            f"<b>suitkaise_nb dashboard</b> · {R.plural(len(procs), 'process')} · "
            f"{R.plural(len(pools), 'pool')} · {R.plural(len(shares), 'share')} · "
            f"{R.plural(len(timers), 'timer')}"
        )
        parts = [head]
        text = [head.replace("<b>", "").replace("</b>", "")]
        for m in procs:
            snap = process_snapshot(m, self.bridge.logs.get(m.id))
            parts.append(R.process_html(snap, with_log=False))
            text.append(R.process_text(snap))
        for m in pools:
            parts.append(R.pool_html(pool_snapshot(m)))
            text.append(R.pool_text(pool_snapshot(m)))
        for m in shares:
            parts.append(R.share_html(share_snapshot(m)))
            text.append(R.share_text(share_snapshot(m)))
        if timers:
            snaps = [timer_snapshot(t, name) for name, t in sorted(timers.items())]
            parts.append(R.table(R.TIMER_HEADER, R.timer_rows(snaps), "sknb-timers"))
            text.extend(R.timer_text(t) for t in snaps)
        return '<div class="sknb-dashboard">' + "".join(parts) + "</div>", "\n".join(text)

    def _live_header(self) -> str:
        """In the widget the processes have their own rows (with buttons): pools and shares."""
        procs, pools, shares, timers = self.bridge.inventory()
        parts = [
            f"<b>suitkaise_nb dashboard</b> · {R.plural(len(procs), 'process')} · "
            f"{R.plural(len(pools), 'pool')} · {R.plural(len(shares), 'share')} · "
            f"{R.plural(len(timers), 'timer')}"
        ]
        parts += [R.pool_html(pool_snapshot(m)) for m in pools]
        parts += [R.share_html(share_snapshot(m)) for m in shares]
        return "".join(parts)

    def update_widgets(self, html: str, plot_ok: bool) -> None:
        procs, _pools, _shares, timers = self.bridge.inventory()
        self.header.value = self._live_header()
        ids = tuple(m.id for m in procs)
        if ids != self._row_ids:
            rows = []
            self._row_html = {}
            self._row_buttons: dict[int, tuple[W.Button, W.Button]] = {}
            for m in procs:
                h = W.HTML()
                self._row_html[m.id] = h
                proc = m.handle_ref() if m.handle_ref is not None else None
                stop = _button(description="Stop", layout=W.Layout(width="70px"))
                kill = _button(
                    description="Kill", button_style="danger", layout=W.Layout(width="70px")
                )
                if proc is not None:
                    stop.on_click(lambda _b, p=proc: p.stop())
                    kill.on_click(lambda _b, p=proc: p.kill())
                self._row_buttons[m.id] = (stop, kill)
                rows.append(W.HBox([h, stop, kill]))
            self.rows.children = rows
            self._row_ids = ids
        for m in procs:
            snap = process_snapshot(m, self.bridge.logs.get(m.id))
            self._row_html[m.id].value = R.process_html(snap, with_log=False)
            stop, kill = self._row_buttons[m.id]
            gone = m.handle_ref is None or m.handle_ref() is None
            ended = bool(m.state.ended)  # buttons never offer what can no longer happen
            stop.disabled = gone or ended or str(m.state) == "stopping"
            kill.disabled = gone or ended
        if timers:
            snaps = [timer_snapshot(t, name) for name, t in sorted(timers.items())]
            self.timers_html.value = "<b>timers</b>" + R.table(
                R.TIMER_HEADER, R.timer_rows(snaps), "sknb-timers"
            )
        self.dirty = True  # the dashboard is always live
