"""Timing statistics: ``Sktimer``, ``TimeThis``, ``@timethis`` and small time helpers.

This module only re-exports; the code lives in ``suitkaise_nb._timing``. Exported objects
carry ``__module__ = "suitkaise_nb.timing"`` so reprs, tracebacks and pickles use this path.
"""

from ._public import publish as _publish
from ._timing._api import TimeThis as TimeThis
from ._timing._api import clear_global_timers as clear_global_timers
from ._timing._api import elapsed as elapsed
from ._timing._api import sleep as sleep
from ._timing._api import time as time
from ._timing._api import timethis as timethis
from ._timing._timer import Sktimer as Sktimer
from ._timing._timer import TimerStats as TimerStats

__all__ = [
    "Sktimer",
    "TimeThis",
    "TimerStats",
    "clear_global_timers",
    "elapsed",
    "sleep",
    "time",
    "timethis",
]

_publish(globals())
