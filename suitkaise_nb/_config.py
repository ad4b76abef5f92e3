"""``suitkaise_nb.config``: the few switches that change how processes start and show.

==================  ==========================================================================
option              meaning
==================  ==========================================================================
start_method        "auto" (default): a fork server ("zygote") keeps warm spare children; it is
                    forked from the parent while the parent is single-threaded (a script) and
                    started as a fresh interpreter otherwise (a Jupyter kernel has threads).
                    "forkserver": always start the zygote as a fresh interpreter.
                    "spawn": every child is a fresh interpreter (slowest, most isolated).
serializer          "dill" (default) or "cloudpickle": how code defined in ``__main__`` (scripts,
                    notebook cells) travels by value. Plain data always uses pickle protocol 5.
spares              warm children kept ready by the zygote (default 2: a 2-worker Pool or two
                    processes start without waiting for a fork).
auto_views          show live widgets in Jupyter when a process or pool starts (default True).
capture_output      None (default): capture child stdout/stderr when running in a kernel, so it
                    lands in the cell that started the process; True/False force it.
flush_interval      seconds between batched event flushes from a child (default 0.02).
==================  ==========================================================================
"""

from __future__ import annotations

from typing import Any

_CHOICES: dict[str, tuple[Any, ...]] = {
    "start_method": ("auto", "forkserver", "spawn"),
    "serializer": ("dill", "cloudpickle"),
}


class Config:
    """Process-wide settings; assignment is validated."""

    start_method: str
    serializer: str
    spares: int
    auto_views: bool
    capture_output: bool | None
    flush_interval: float

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Restore every option to its default."""
        object.__setattr__(self, "start_method", "auto")
        object.__setattr__(self, "serializer", "dill")
        object.__setattr__(self, "spares", 2)
        object.__setattr__(self, "auto_views", True)
        object.__setattr__(self, "capture_output", None)
        object.__setattr__(self, "flush_interval", 0.02)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in type(self).__annotations__:
            known = ", ".join(sorted(type(self).__annotations__))
            raise AttributeError(f"config has no option {name!r}; the options are: {known}")
        if name in _CHOICES and value not in _CHOICES[name]:
            raise ValueError(f"config.{name} must be one of {_CHOICES[name]}, got {value!r}")
        if name == "spares" and (type(value) is not int or value < 0 or value > 64):
            raise ValueError(f"config.spares must be an int from 0 to 64, got {value!r}")
        if name == "auto_views" and not isinstance(value, bool):
            raise TypeError(f"config.auto_views must be True or False, got {value!r}")
        if name == "capture_output" and value not in (None, True, False):
            raise TypeError(f"config.capture_output must be None, True or False, got {value!r}")
        if name == "flush_interval" and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 5
        ):
            raise ValueError(f"config.flush_interval must be in (0, 5] seconds, got {value!r}")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={getattr(self, k)!r}" for k in type(self).__annotations__)
        return f"suitkaise_nb.config({opts})"


config = Config()
