"""Observable state of one process as the parent sees it (updated only by the hub thread).

Views read these objects (the notebook layer copies them into frozen snapshots,
``notebook/_snapshot.py``); they never write them.
"""

from __future__ import annotations

import itertools
import time
from enum import StrEnum
from typing import Any

from .._sections import TIMERS
from .._timing._timer import Sktimer

_ids = itertools.count(1)


class ProcessState(StrEnum):
    """Lifecycle of a process handle, as the parent sees it."""

    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"

    def __str__(self) -> str:
        return self.value

    @property
    def ended(self) -> bool:
        return self in (ProcessState.FINISHED, ProcessState.FAILED, ProcessState.KILLED)


TIMER_NAMES = TIMERS


class ProcessTimers:
    """One :class:`~suitkaise_nb.timing.Sktimer` per lifecycle section, plus ``full_run``.

    ``full_run`` aggregates prerun + run + postrun of each completed iteration.
    """

    __slots__ = TIMER_NAMES

    prerun: Sktimer
    run: Sktimer
    postrun: Sktimer
    onfinish: Sktimer
    result: Sktimer
    error: Sktimer
    full_run: Sktimer

    def __init__(self) -> None:
        for name in TIMER_NAMES:
            setattr(self, name, Sktimer())

    def items(self) -> list[tuple[str, Sktimer]]:
        return [(n, getattr(self, n)) for n in TIMER_NAMES]

    def __getstate__(self) -> dict[str, Sktimer]:
        return dict(self.items())

    def __setstate__(self, state: dict[str, Sktimer]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}={t.num_times}" for n, t in self.items() if t.num_times)
        return f"ProcessTimers({counts})"


class ProcessModel:
    """What the views need to know about one process."""

    def __init__(self, name: str, config: Any, timers: ProcessTimers) -> None:
        self.id = next(_ids)
        self.name = name
        self.pid: int | None = None
        self.state = ProcessState.CREATED
        self.section: str | None = None
        self.run = 0
        self.runs: int | None = config.runs
        self.join_in: float | None = config.join_in
        self.lives: int = config.lives
        self.lives_left: int = config.lives
        # failures that cost a life and were retried: (run, section, type, message, traceback)
        self.failures: list[tuple[int, str, str, str, str]] = []
        self.timers = timers
        self.created_at = time.time()
        self.started_at: float | None = None
        self.start_mono: float | None = None
        self.end_mono: float | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.exitcode: int | None = None
        self.handle_ref: Any = None  # weakref to the Skprocess object

    @property
    def elapsed(self) -> float:
        if self.start_mono is None:
            return 0.0
        end = self.end_mono if self.end_mono is not None else time.monotonic()
        return end - self.start_mono

    def __repr__(self) -> str:
        return (
            f"<ProcessModel {self.name} pid={self.pid} {self.state.value} "
            f"run={self.run}/{self.runs if self.runs is not None else '∞'}>"
        )
