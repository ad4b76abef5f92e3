"""``%load_ext suitkaise_nb``: the magics, on top of the kernel wiring (``_kernel``)."""

from __future__ import annotations

from typing import Any

from . import _kernel


def load(ipython: Any) -> None:
    """``%load_ext suitkaise_nb``."""
    _kernel.connect()
    if "magics" not in _kernel.state:
        try:
            from ._magics import SkMagics
        except ImportError:
            _kernel.state["magics"] = None
        else:
            ipython.register_magics(SkMagics)
            _kernel.state["magics"] = SkMagics
    _kernel.state["loaded"] = True


def unload(ipython: Any) -> None:
    """``%unload_ext suitkaise_nb``: stop routing and views (the magics stay registered)."""
    _kernel.disconnect()
