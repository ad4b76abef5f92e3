"""The notebook layer's state in this kernel, and what shows objects as views.

``connect()`` runs when suitkaise_nb is imported inside a kernel: it keeps the kernel's status
"busy" while a cell runs (``_status``), subscribes the output router (child output lands in the
starting cell) and, when ipywidgets is installed, the view
bridge and the display formatters (one :class:`ViewKind` per type of object). ``_extension``
adds the magics on ``%load_ext suitkaise_nb``; the magics reach the bridge here.
"""

from __future__ import annotations

import functools
import linecache
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import _errors

#: this kernel's router, bridge and magics (one of each, made by connect() and load())
state: dict[str, Any] = {}
log = logging.getLogger("suitkaise_nb")


def _shell() -> Any:
    from IPython import get_ipython

    return get_ipython()


def _widgets_available() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def connect() -> None:
    """Subscribe the output router and the view bridge once per kernel."""
    if "router" in state:
        return
    shell = _shell()
    if shell is None:
        return
    from .. import events
    from ._output import OutputRouter
    from ._status import BusyWhileRunning

    state["status"] = BusyWhileRunning(shell)
    router = OutputRouter(shell)
    events.subscribe(router)
    state["router"] = router
    state["rewriter"] = cell_traceback_rewriter(shell)
    _errors.TRACEBACK_REWRITERS.append(state["rewriter"])
    if _widgets_available():
        from ._bridge import Bridge

        bridge = Bridge(shell)
        events.subscribe(bridge)
        state["bridge"] = bridge
        _register_formatters(shell, bridge)


_FRAME = re.compile(r'^(?P<indent> *)File "(?P<file>[^"]+)", line (?P<line>\d+)(?P<rest>.*)$', re.M)


def cell_traceback_rewriter(shell: Any) -> Callable[[str], str]:
    """A child's traceback names code typed into a cell by the kernel's temporary file
    (``/tmp/ipykernel_.../NNN.py``) and, having no copy of the cell, shows no line. Here the
    kernel knows both: such a frame becomes ``Cell In[2], line 9`` followed by that line, as
    IPython shows it."""

    def rewrite(text: str) -> str:
        names = getattr(getattr(shell, "compile", None), "_filename_map", None) or {}

        def frame(m: re.Match[str]) -> str:
            count = names.get(m["file"])
            if count is None:
                return m.group(0)
            line = int(m["line"])
            out = f"{m['indent']}Cell In[{count}], line {line}{m['rest']}"
            source = linecache.getline(m["file"], line).strip()
            if source:
                out += f"\n{m['indent']}    {source}"
            return out

        return _FRAME.sub(frame, text)

    return rewrite


def bridge() -> Any:
    connect()
    b = state.get("bridge")
    if b is None:
        raise ImportError(
            "the live views need ipywidgets: pip install 'suitkaise_nb' (it depends on "
            "ipywidgets>=8.1.9) in the kernel's environment"
        )
    return b


@dataclass(frozen=True)
class ViewKind:
    """How objects of one type appear as a cell's value: with a live view (``show``: return
    True when it showed one, None to fall back to the other formatters), and as static HTML
    (``html``: where no widget manager runs). A new kind of view is one entry of
    :func:`view_kinds`."""

    type: type
    show: Callable[[Any, Any], Any]  # (bridge, obj) -> True | None
    html: Callable[[Any, Any], str | None]  # (bridge, obj) -> HTML | None


def view_kinds() -> list[ViewKind]:
    from .._engine._process import Skprocess
    from .._pool._pool import Pool
    from .._share._share import Share
    from .._timing._timer import Sktimer
    from . import _render as R
    from ._snapshot import pool_snapshot, process_snapshot, share_snapshot, timer_snapshot

    return [
        ViewKind(
            Skprocess,
            _show_process,
            lambda b, p: (
                R.process_html(process_snapshot(p.model, b.logs.get(p.model.id)))
                if p.model is not None
                else None
            ),
        ),
        ViewKind(Pool, _show_pool, lambda b, p: R.pool_html(pool_snapshot(p.model))),
        ViewKind(Sktimer, _show_timer, lambda b, t: R.timer_html(timer_snapshot(t))),
        ViewKind(
            Share,
            _show_share,
            lambda b, s: R.share_html(share_snapshot(s.model)) if s.model is not None else None,
        ),
    ]


def _register_formatters(shell: Any, bridge: Any) -> None:
    """Objects shown as a cell's value get their view (or an HTML summary without widgets)."""
    html = shell.display_formatter.formatters["text/html"]
    ipy = shell.display_formatter.ipython_display_formatter
    for kind in view_kinds():
        html.for_type(kind.type, functools.partial(kind.html, bridge))
        ipy.for_type(kind.type, functools.partial(kind.show, bridge))


def _show_process(bridge: Any, proc: Any) -> Any:
    from .._config import config
    from ._views import ProcessView

    model = proc.model
    if model is None or not config.auto_views:
        return None  # falls back to the other formatters
    view = bridge.views.get(model.id)
    if view is None:
        from ._snapshot import ProcessLog

        view = bridge.add_view(
            ProcessView(model, proc, bridge.logs.setdefault(model.id, ProcessLog())), model.id
        )
    view.refresh()
    if bridge.view_cells.get(id(view)) != _cell_of(bridge):
        view.show()  # not already in this cell (e.g. %%skprocess --bg returns the handle)
        bridge.shown(view)
    return True


def _cell_of(bridge: Any) -> Any:
    from ._bridge import _cell_id

    return _cell_id(bridge.shell)


def _show_pool(bridge: Any, pool: Any) -> Any:
    from .._config import config
    from ._views import PoolView

    if not config.auto_views:
        return None
    view = bridge.views.get(pool.model.id) or bridge.add_view(
        PoolView(pool.model, pool), pool.model.id
    )
    view.refresh()
    view.show()
    return True


def _show_timer(bridge: Any, timer: Any) -> Any:
    from .._config import config
    from ._views import TimerView

    if not config.auto_views:
        return None
    view = bridge.add_view(TimerView(timer))
    view.refresh()
    view.dirty = True
    view.show()
    _keep_live(view)
    return True


def _show_share(bridge: Any, share: Any) -> Any:
    from .._config import config
    from ._views import ShareView

    if not config.auto_views or share.model is None:
        return None
    view = bridge.views.get(share.model.id) or bridge.add_view(
        ShareView(share.model), share.model.id
    )
    view.refresh()
    view.show()
    return True


def _keep_live(view: Any) -> None:
    """Timers have no events: their views redraw on every display tick."""
    original = view.refresh

    def refresh(now: float | None = None) -> None:
        original(now)
        view.dirty = True

    view.refresh = refresh


def dashboard() -> None:
    """Show the live dashboard of this kernel (in the current cell)."""
    from ._views import Dashboard

    b = bridge()
    view = b.add_view(Dashboard(b))
    view.refresh()
    view.show()


def timer_view(timer: Any, name: str = "") -> Any:
    from ._views import TimerView

    b = bridge()
    view = b.add_view(TimerView(timer, name))
    view.refresh()
    view.show()
    _keep_live(view)
    return view


def disconnect() -> None:
    """Undo :func:`connect` (views stop, output goes back to the terminal)."""
    from .. import events

    router = state.pop("router", None)
    if router is not None:
        events.unsubscribe(router)
        router.close()
    b = state.pop("bridge", None)
    if b is not None:
        events.unsubscribe(b)
        b.close()
    status = state.pop("status", None)
    if status is not None:
        status.close()
    rewriter = state.pop("rewriter", None)
    if rewriter in _errors.TRACEBACK_REWRITERS:
        _errors.TRACEBACK_REWRITERS.remove(rewriter)
    state.pop("loaded", None)
