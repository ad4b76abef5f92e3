"""Wiring of the notebook layer into a running kernel (called from the package root)."""

from __future__ import annotations

from typing import Any

_state: dict[str, Any] = {}


def _shell() -> Any:
    from IPython import get_ipython

    return get_ipython()


def connect() -> None:
    """Subscribe the output router (and, later, the auto views) once per kernel."""
    if "router" in _state:
        return
    shell = _shell()
    if shell is None:
        return
    from .. import events
    from ._output import OutputRouter

    router = OutputRouter(shell)
    events.subscribe(router)
    _state["router"] = router


def load(ipython: Any) -> None:
    """``%load_ext suitkaise_nb``."""
    connect()
    _state["loaded"] = True


def unload(ipython: Any) -> None:
    _state.pop("loaded", None)
