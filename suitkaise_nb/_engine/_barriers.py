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

#: True in a process whose end is itself a barrier that reports errors to its parent (an
#: Skprocess child, a pool worker). There, a Share operation whose answer nobody uses (an
#: in-place ``+=``, a method call as a statement, outside any ``try``/``with``) is sent
#: without waiting, and an error it raised surfaces at the next barrier or read. Elsewhere
#: (the notebook or script itself) such operations wait, so an error is raised on its own line.
write_behind = False


def settle() -> None:
    """Wait until everything this process sent is applied (and raise a deferred error)."""
    for barrier in barriers:
        barrier()


def settle_noting(failure: BaseException) -> None:
    """:func:`settle` after ``failure`` ended the work: a deferred error is not raised over
    it (it would hide the first failure) but noted on it, so neither is lost."""
    try:
        settle()
    except Exception as other:
        failure.add_note(also_failed(other))


def also_failed(other: BaseException) -> str:
    """The note that records a deferred error next to the failure that came first."""
    return f"(also, a Share operation sent without waiting failed: {type(other).__name__}: {other})"
