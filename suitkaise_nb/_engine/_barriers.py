"""Points where this process lets others see what it did ("happens-before" barriers).

Share writes are pipelined (sent without waiting for their answers). Before this process
hands control or information to another one — ``start()``, a Pool call, ``tell()``, the end of
a pool chunk or of a child's lifecycle — every pipelined write must have been applied. Modules
that pipeline register a function here; the engine calls :func:`settle` at those points. An
empty list costs nothing, and the engine never imports the modules that register.
"""

from __future__ import annotations

from collections.abc import Callable

barriers: list[Callable[[], None]] = []


def settle() -> None:
    """Wait until everything this process sent is applied (and raise a deferred error)."""
    for barrier in barriers:
        barrier()
