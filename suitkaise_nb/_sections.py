"""The lifecycle sections of an Skprocess: one table for every layer.

``SECTIONS`` in order; ``DUNDERS[name]`` is the method that implements it (``"run"`` ->
``"__run__"``); ``TIMERS`` are the per-section timers of a process plus the aggregate
``full_run`` (prerun + run + postrun of one iteration).
"""

from __future__ import annotations

SECTIONS = ("prerun", "run", "postrun", "onfinish", "result", "error")
DUNDERS = {name: f"__{name}__" for name in SECTIONS}
TIMERS = (*SECTIONS, "full_run")
