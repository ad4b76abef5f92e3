"""suitkaise_nb: class-based subprocesses, pools and shared state, with live Jupyter views.

Layout::

    suitkaise_nb.processing   Skprocess, Pool, Share, Pipe, autoreconnect, errors (facade)
    suitkaise_nb.timing       Sktimer, TimeThis, timethis, ... (facade)
    suitkaise_nb.events       the public observer API the notebook views are built on
    suitkaise_nb.config       start method, serializer, auto views
    suitkaise_nb.notebook     IPython magics and ipywidgets views (loaded only in a kernel)
    suitkaise_nb._pool        Pool: the dispatcher, jobs, backends (local, Dask, inline)
    suitkaise_nb._share       Share: lifecycle, handles, connection, server, state
    suitkaise_nb._engine      processes: zygote, wire, hub, lifecycle (no IPython, ever)
    suitkaise_nb._timing      timers
    suitkaise_nb._errors      every exception, and the rebuilding of remote ones
    suitkaise_nb._events      the event types and the observer registry

The layers (each imports only those below it; ``lint-imports`` checks it, see pyproject.toml):
notebook -> facades -> _pool / _share -> _engine -> _timing -> _config, _modifiers -> _errors,
_events -> _sections.

Importing this package has no side effects outside a Jupyter kernel: no threads, no atexit
hooks, no IPython import. Inside a kernel it subscribes the notebook layer to the event stream
(so child output lands in the right cell and views appear), through the same public observer
API a user could call.
"""

from __future__ import annotations

import sys
from typing import Any

from ._config import config as config

__version__ = "0.1.0"
__all__ = ["__version__", "config", "dashboard", "load_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext suitkaise_nb``: register the magics and the live views."""
    from .notebook import _extension

    _extension.load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .notebook import _extension

    _extension.unload(ipython)


def dashboard() -> None:
    """Show a live view of every process, pool, share and timer of this kernel."""
    from .notebook import _kernel

    _kernel.dashboard()


def _connect_notebook_layer() -> None:
    app = sys.modules.get("ipykernel.kernelapp")
    if app is None:
        return
    try:
        if not app.IPKernelApp.initialized():
            return
    except Exception:
        return
    try:
        from .notebook import _kernel

        _kernel.connect()
    except Exception:  # pragma: no cover - a broken front-end must not break the core
        import logging

        logging.getLogger("suitkaise_nb").exception("could not connect the notebook layer")


_connect_notebook_layer()
