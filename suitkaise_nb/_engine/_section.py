"""Lifecycle methods as descriptors, and what tells an Skprocess class from its base.

``Skprocess.__init_subclass__`` wraps each lifecycle method of a subclass in a :class:`Section`,
so that ``process.__run__`` is callable and has ``.timer`` (this instance's timer). The child
(``_child``) and ``@autoreconnect`` (``_reconnect``) need to recognise Skprocess classes without
importing ``_process`` (which imports them): the base class carries :data:`BASE_MARK`.
"""

from __future__ import annotations

from typing import Any

from .._sections import DUNDERS
from .._timing._timer import Sktimer

#: set to True in the class body of ``Skprocess`` itself (and inherited by every subclass)
BASE_MARK = "_sk_lifecycle_base"


def is_skprocess_class(obj: Any) -> bool:
    """True for ``Skprocess`` and its subclasses."""
    return isinstance(obj, type) and bool(getattr(obj, BASE_MARK, False))


def is_base(klass: type) -> bool:
    """True for the class that defines the lifecycle (``Skprocess``), not a subclass."""
    return bool(klass.__dict__.get(BASE_MARK, False))


class Section:
    """Descriptor around a lifecycle method: ``obj.__run__`` is callable and has ``.timer``."""

    __slots__ = ("func", "name")

    def __init__(self, func: Any, name: str) -> None:
        self.func = func
        self.name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        return BoundSection(self, obj)

    def __call__(self, obj: Any, *args: Any, **kwargs: Any) -> Any:
        return self.func(obj, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.func, name)

    def __reduce__(self) -> Any:
        return (Section, (self.func, self.name))


class BoundSection:
    __slots__ = ("obj", "section")

    def __init__(self, section: Section, obj: Any) -> None:
        self.section = section
        self.obj = obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.section.func(self.obj, *args, **kwargs)

    @property
    def timer(self) -> Sktimer:
        """This instance's :class:`Sktimer` for this section."""
        timer: Sktimer = getattr(self.obj.timers, self.section.name)
        return timer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.section.func, name)

    def __repr__(self) -> str:
        return f"<lifecycle section {type(self.obj).__name__}.{DUNDERS[self.section.name]}>"
