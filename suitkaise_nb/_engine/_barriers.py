"""Points where this process lets others see what it did ("happens-before" barriers).

Share writes may be pipelined (sent without waiting for their answers). Before this process
hands control or information to another one — ``start()``, a Pool call, ``tell()``,
``Pipe.send()``, the end of a pool chunk or of a lifecycle section — every pipelined write must
have been applied. What pipelines adds itself to :data:`pending`; the engine calls
:func:`settle` at those points. An empty set costs nothing, and the engine never imports the
modules that add to it.

Errors of pipelined writes are *kept*, never raised by whatever operation happened to read the
answer: a ``try/except`` around an unrelated line must not swallow them. They belong to the
unit of work that sent them (a lifecycle section, a pool item), and only the engine, at the
end of that unit, takes them (:func:`take_errors`) and fails it, naming the line.

Only one thread of a process pipelines: the thread that runs the work (the child's main thread;
see :func:`allow_deferred`). Any other thread waits for each answer, so an error is never
credited to another thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol


class Unsettled(Protocol):
    """Something of this process with writes in flight or errors not taken yet (a Share
    connection). It adds itself to :data:`pending` when it sends without waiting."""

    def settle(self) -> None:
        """Wait until every pipelined write was applied (errors are kept)."""

    def take_errors(self) -> list[Deferred]:
        """Settle, then hand over (and forget) the errors of pipelined writes."""

    def settled(self) -> bool:
        """Nothing in flight and no error kept (or it belongs to another process)."""


#: an error a pipelined write got, and the unit of work (pool item index) that sent it
Deferred = tuple[BaseException, "int | None"]

#: what has writes in flight: empty almost always, so a barrier is one truth test
pending: set[Unsettled] = set()

#: The thread allowed to pipeline (None: no thread, every operation waits). Set in a process
#: whose units of work end at a barrier that reports errors to its parent (an Skprocess child,
#: a pool worker), to the thread that runs that work. Elsewhere (the notebook or script itself,
#: a Dask worker whose tasks share threads) operations wait, so an error is raised on its line.
defer_thread: int | None = None

#: In a pool worker: the index of the item running now (recorded with each pipelined write,
#: so that its error fails that item).
current_unit: Callable[[], int] | None = None


def allow_deferred(unit: Callable[[], int] | None = None) -> None:
    """Let the calling thread pipeline Share writes (see the module docstring)."""
    global defer_thread, current_unit
    defer_thread = threading.get_ident()
    current_unit = unit


def may_defer() -> bool:
    """True in the thread that may pipeline."""
    return defer_thread is not None and defer_thread == threading.get_ident()


def settle() -> None:
    """Wait until everything this process sent is applied (errors are kept for their unit)."""
    if pending:
        for thing in list(pending):
            thing.settle()
            if thing.settled():
                pending.discard(thing)


def take_errors() -> list[Deferred]:
    """Settle and take every error a pipelined write got, oldest first, with its unit."""
    if not pending:
        return []
    errors: list[Deferred] = []
    for thing in list(pending):
        errors += thing.take_errors()
        pending.discard(thing)
    return errors


def check() -> None:
    """Settle; raise the first error a pipelined write got (the others are noted on it)."""
    if not pending:
        return
    errors = [err for err, _unit in take_errors()]
    if errors:
        first = errors[0]
        for other in errors[1:]:
            first.add_note(also_failed(other))
        raise first


def settle_noting(failure: BaseException) -> None:
    """:func:`settle` after ``failure`` ended the work: a deferred error is not raised over
    it (it would hide the first failure) but noted on it, so neither is lost."""
    try:
        errors = [err for err, _unit in take_errors()]
    except Exception as exc:  # the server is gone: that is worth a note too
        errors = [exc]
    for err in errors:
        failure.add_note(also_failed(err))


def also_failed(other: BaseException) -> str:
    """The note that records a deferred error next to the failure that came first."""
    return f"(also, a Share operation sent without waiting failed: {type(other).__name__}: {other})"
