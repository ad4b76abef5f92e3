"""``process_config``: how many runs, how long, how many lives, and per-section timeouts.

Every assignment is checked, so a bad value fails where it is written::

    self.process_config.runs = 10          # int >= 0, or None = until stopped
    self.process_config.join_in = 5.0      # seconds > 0, or None (inf: None)
    self.process_config.lives = 3          # int >= 1 (total attempts)
    self.process_config.timeouts.run = 2   # seconds > 0, or None
"""

from __future__ import annotations

from typing import Any

from .._modifiers import check_timeout
from .._sections import SECTIONS


def _check_seconds(field: str, value: Any) -> float | None:
    """Seconds > 0; None or inf: no limit."""
    seconds = check_timeout(value, field)
    if seconds == 0:
        raise ValueError(f"{field} must be a positive number of seconds or None, got {value!r}")
    return seconds


class Timeouts:
    """Per-section timeouts in seconds (None = no limit)."""

    __slots__ = SECTIONS

    def __init__(self) -> None:
        for name in SECTIONS:
            object.__setattr__(self, name, None)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in SECTIONS:
            raise AttributeError(
                f"process_config.timeouts has no section {name!r}; use one of {SECTIONS}"
            )
        object.__setattr__(self, name, _check_seconds(f"process_config.timeouts.{name}", value))

    def as_dict(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in SECTIONS}

    def __getstate__(self) -> dict[str, float | None]:
        return self.as_dict()

    def __setstate__(self, state: dict[str, float | None]) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)

    def __repr__(self) -> str:
        set_ = ", ".join(f"{k}={v}" for k, v in self.as_dict().items() if v is not None)
        return f"Timeouts({set_})"


class ProcessConfig:
    """The configuration an Skprocess subclass sets in its ``__init__``."""

    __slots__ = ("join_in", "lives", "runs", "timeouts")

    runs: int | None
    join_in: float | None
    lives: int
    timeouts: Timeouts

    def __init__(self) -> None:
        object.__setattr__(self, "runs", None)
        object.__setattr__(self, "join_in", None)
        object.__setattr__(self, "lives", 1)
        object.__setattr__(self, "timeouts", Timeouts())

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "runs":
            if value is not None and (type(value) is not int or value < 0):
                raise ValueError(
                    "process_config.runs must be an int >= 0 or None (until stopped), "
                    f"got {value!r}"
                )
        elif name == "lives":
            if type(value) is not int or value < 1:
                raise ValueError(
                    f"process_config.lives must be an int >= 1 (total attempts), got {value!r}"
                )
        elif name == "join_in":
            value = _check_seconds("process_config.join_in", value)
        elif name == "timeouts":
            if not isinstance(value, Timeouts):
                raise TypeError(
                    "process_config.timeouts cannot be replaced; set its fields instead, "
                    "e.g. process_config.timeouts.run = 2.0"
                )
        else:
            raise AttributeError(
                f"process_config has no field {name!r}; use runs, join_in, lives or timeouts"
            )
        object.__setattr__(self, name, value)

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)

    def __repr__(self) -> str:
        return (
            f"ProcessConfig(runs={self.runs}, join_in={self.join_in}, lives={self.lives}, "
            f"timeouts={self.timeouts!r})"
        )
