"""The observer that turns engine events into live views (the only link core → widgets).

Hooks run on the engine's threads and only record and mark views dirty; one display thread
redraws dirty views at most ten times a second (histograms about once a second), so the work
never waits for the display. A view that raises is dropped, never the work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from .._config import config
from ._snapshot import ProcessLog

log = logging.getLogger("suitkaise_nb")
REDRAW_EVERY = 0.1
KEEP = 100  # finished processes remembered for the dashboard
# work shorter than this shows its view (final state) at its cell's end; longer work gets it
# from the display thread while it runs (so a quick call pays no display on its own time)
SHOW_AFTER = 0.2


def _cell_id(shell: Any) -> str | None:
    try:
        parent = shell.get_parent()
    except Exception:
        return None
    header = parent.get("header", {}) if isinstance(parent, dict) else {}
    return header.get("msg_id")


class Bridge:
    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.lock = threading.RLock()
        self.processes: OrderedDict[int, Any] = OrderedDict()
        self.pools: OrderedDict[int, Any] = OrderedDict()
        self.shares: OrderedDict[int, Any] = OrderedDict()
        self.logs: dict[int, ProcessLog] = {}
        self.views: dict[int, Any] = {}
        self.extra_views: list[Any] = []  # timers and dashboards shown by the user
        self.pool_cells: dict[int, str | None] = {}
        self._thread: threading.Thread | None = None
        self.view_cells: dict[int, str | None] = {}  # id(view) -> cell that showed it
        self.running_cell: str | None = None  # the cell executing now (None between cells)
        # views of automatic work are displayed by the display thread (or at the cell's end):
        # a display flushes the kernel's output streams, which costs the caller milliseconds
        self.defer_show = callable(getattr(shell, "set_thread_parent", None))
        shell.events.register("pre_run_cell", self._pre_run_cell)
        shell.events.register("post_run_cell", self._post_run_cell)

    def _pre_run_cell(self, info: Any = None) -> None:
        self.running_cell = _cell_id(self.shell)

    def _post_run_cell(self, result: Any = None) -> None:
        """End of a cell (main thread): work that ended in this cell leaves its final state
        in the cell's output right now, before the cell's reply, so saved and converted
        notebooks have it."""
        cell = _cell_id(self.shell)
        self.running_cell = None
        with self.lock:
            views = list(self.views.values()) + list(self.extra_views)
        for view in views:
            try:
                if self.view_cells.get(id(view)) == cell:
                    view.show_pending()
                if view.needs_final():
                    view.refresh()
                    view.publish_final()
                else:  # the notebook file keeps the latest state (a later cell fed a timer...)
                    view.publish_current()
            except Exception:
                log.exception("suitkaise_nb view %r failed", view)

    def close(self) -> None:
        for name, fn in (
            ("pre_run_cell", self._pre_run_cell),
            ("post_run_cell", self._post_run_cell),
        ):
            try:
                self.shell.events.unregister(name, fn)
            except ValueError:
                pass
        with self.lock:
            self.views.clear()
            self.extra_views.clear()

    def shown(self, view: Any) -> None:
        self.view_cells[id(view)] = _cell_id(self.shell)

    def _auto_show(self, view: Any) -> None:
        """Show the view of work that just began in this cell: soon, from the display thread
        under this cell's parent message, or at the cell's end, whichever comes first."""
        self.shown(view)
        if self.defer_show:
            view.defer(self.shell.get_parent(), self.view_cells[id(view)])
        else:
            view.show()
        self._ensure_thread()

    def _show_from_thread(self, view: Any) -> None:
        if view.cell != self.running_cell:
            return  # that cell is over: its post_run_cell showed the view
        tokens = self.shell.set_thread_parent(view.parent)
        try:
            view.show_pending()
        finally:
            self.shell.reset_thread_parent(tokens)

    # -- registry ------------------------------------------------------------------------------
    def inventory(self) -> tuple[list[Any], list[Any], list[Any], dict[str, Any]]:
        from .._timing._api import global_timers

        with self.lock:
            return (
                list(self.processes.values()),
                list(self.pools.values()),
                [s for s in self.shares.values() if s.state != "exited"],
                global_timers(),
            )

    def _remember(self, table: OrderedDict[int, Any], model: Any) -> None:
        dropped = []
        with self.lock:
            table[model.id] = model
            for old_id in list(table):  # the oldest first; work still running stays
                if len(table) <= KEEP:
                    break
                view = self.views.get(old_id)
                if view is not None and not view.is_finished():
                    continue
                del table[old_id]
                self.logs.pop(old_id, None)
                self.pool_cells.pop(old_id, None)
                if view is not None:
                    del self.views[old_id]
                    self.view_cells.pop(id(view), None)
                    dropped.append(view)
        for view in dropped:  # its display keeps the final HTML; its widgets go
            try:
                view.close()
            except Exception:
                log.exception("suitkaise_nb: closing view %r failed", view)

    def _mark(self, model_id: int) -> None:
        view = self.views.get(model_id)
        if view is not None:
            view.dirty = True
            self._ensure_thread()

    # -- observer hooks (engine threads) -------------------------------------------------------
    def process_started(self, event: Any) -> None:
        model = event.process
        self._remember(self.processes, model)
        self.logs[model.id] = ProcessLog()
        if config.auto_views:
            from ._views import ProcessView

            view = ProcessView(model, event.handle, self.logs[model.id])
            self.views[model.id] = view
            self._auto_show(view)

    def process_state(self, event: Any) -> None:
        self._mark(event.process.id)

    def process_progress(self, event: Any) -> None:
        self._mark(event.process.id)

    def process_message(self, event: Any) -> None:
        lg = self.logs.get(event.process.id)
        if lg is not None:
            lg.add_message(event.time, event.direction, event.message)
        self._mark(event.process.id)

    def process_ended(self, event: Any) -> None:
        self._mark(event.process.id)

    def pool_started(self, event: Any) -> None:
        model = event.pool
        self._remember(self.pools, model)
        if not config.auto_views:
            return
        cell = _cell_id(self.shell)
        view = self.views.get(model.id)
        if view is not None and self.pool_cells.get(model.id) == cell:
            view.reopen()
            return
        from ._views import PoolView

        view = PoolView(model, event.handle)
        self.views[model.id] = view
        self.pool_cells[model.id] = cell
        self._auto_show(view)

    def pool_progress(self, event: Any) -> None:
        self._mark(event.pool.id)

    def pool_worker(self, event: Any) -> None:
        self._mark(event.pool.id)

    def pool_ended(self, event: Any) -> None:
        self._mark(event.pool.id)

    def share_started(self, event: Any) -> None:
        self._remember(self.shares, event.share)

    def share_changed(self, event: Any) -> None:
        self._mark(event.share.id)

    def share_stopped(self, event: Any) -> None:
        self._mark(event.share.id)

    # -- user-requested views --------------------------------------------------------------------
    def add_view(self, view: Any, key: int | None = None) -> Any:
        with self.lock:
            if key is not None:
                self.views[key] = view
            else:
                self.extra_views.append(view)
        self._ensure_thread()
        return view

    # -- display thread ------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        with self.lock:  # engine threads and the main thread race here: start exactly one
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="suitkaise_nb-display", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        from ._views import ViewState  # ipywidgets is there: the bridge exists only then

        while True:
            time.sleep(REDRAW_EVERY)
            with self.lock:
                views = list(self.views.items()) + [(None, v) for v in self.extra_views]
            now = time.monotonic()
            for key, view in views:
                # read before refreshing: the final summary is published only after a refresh
                # that began once the work had ended, so the widgets show the final state too
                finishing = view.needs_final()
                try:
                    if view.state is ViewState.PENDING:
                        if now - view.created >= SHOW_AFTER:
                            self._show_from_thread(view)
                        continue
                    if view.wants_widgets(now):
                        view.go_live()  # it runs long enough to be worth widgets
                        continue
                    if not finishing and (not view.dirty or view.widget is None):
                        continue
                    view.refresh(now)
                    if finishing:
                        view.publish_final()
                except Exception:
                    log.exception("suitkaise_nb view %r failed and was removed", view)
                    with self.lock:
                        if key is not None:
                            self.views.pop(key, None)
                        elif view in self.extra_views:
                            self.extra_views.remove(view)
