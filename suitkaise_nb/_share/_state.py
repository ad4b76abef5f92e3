"""The Share's state and the operations on it, apart from any transport.

The server (``_server``) runs every request through :meth:`State.execute`; a stopped Share's
owner keeps the state in its own process and runs its handles' operations on it the same way
(see ``_share``), so a handle reaches the Share's state wherever it is.
"""

from __future__ import annotations

import builtins
import datetime
import decimal
import enum
import fractions
import numbers
import operator
import os
from collections import deque
from typing import Any

from .._timing._timer import Sktimer
from ._protocol import BINARY_OPS, UNARY_OPS, Item, Ref

#: Sktimer methods that measure the calling thread's time: through a Share they would run in
#: the server (add_time and every read are fine)
_TIMER_LOCAL = frozenset({"start", "stop", "pause", "resume", "lap", "discard"})


def where_text(path: tuple[Any, ...]) -> str:
    """``share.d['k'].x`` for a path (in messages)."""
    return "share" + "".join(repr([p.key]) if type(p) is Item else f".{p}" for p in path)


#: values read as values (copies); anything else is read as a live handle (see ``_share``)
PLAIN_TYPES = frozenset(
    {
        int,
        float,
        complex,
        bool,
        str,
        bytes,
        type(None),
        range,
        type(...),
        decimal.Decimal,
        fractions.Fraction,
        datetime.date,
        datetime.datetime,
        datetime.time,
        datetime.timedelta,
        datetime.timezone,
    }
)


def is_value(v: Any) -> bool:
    """Immutable: numbers, str, bytes, None, dates, enum members, and tuples / frozensets of
    those. Such a value is read as itself; anything else is read as a handle."""
    t = type(v)
    if t in PLAIN_TYPES:
        return True
    if t is tuple or t is frozenset:
        return all(is_value(x) for x in v)
    if isinstance(v, enum.Enum):
        return True
    return isinstance(v, numbers.Number) and not hasattr(v, "__dict__")


def _swapped(fn: Any) -> Any:
    return lambda a, b: fn(b, a)


#: what a handle's operators run on the server (see ``_protocol.BINARY_OPS``)
_OPS: dict[str, Any] = {name: getattr(operator, name) for name in BINARY_OPS}
_OPS.update({"r" + name.rstrip("_"): _swapped(getattr(operator, name)) for name in BINARY_OPS})
_OPS.update({name: getattr(operator, name, None) or getattr(builtins, name) for name in UNARY_OPS})
_OPS.update(
    {
        "truth": operator.truth,
        "contains": operator.contains,
        "format": format,
        "hash": hash,
    }
)
#: containers whose elements are reached by position (an iteration gives handles to them)
INDEXED = (list, tuple, deque)


class State:
    """A root dict of named objects, and the operations a Share request can ask for."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def walk(self, path: tuple[Any, ...]) -> Any:
        try:
            obj = self.root[path[0]]
        except KeyError:
            raise AttributeError(f"the Share has no attribute {path[0]!r}") from None
        for step in path[1:]:
            obj = obj[step.key] if type(step) is Item else getattr(obj, step)
        return obj

    def assign(self, path: tuple[Any, ...], value: Any) -> None:
        if len(path) == 1:
            self.root[path[0]] = value
            return
        target, last = self.walk(path[:-1]), path[-1]
        if type(last) is Item:
            target[last.key] = value
        else:
            setattr(target, last, value)

    def execute(self, op: str, path: tuple[Any, ...], args: tuple[Any, ...]) -> Any:
        if op == "get":
            return self.walk(path)
        if op == "set":
            self.assign(path, args[0])
            return None
        if op == "aug":
            fn = getattr(operator, args[0])
            self.assign(path, fn(self.walk(path), args[1]))
            return None
        if op == "call":
            return self._method(path)(*args[0], **args[1])
        if op == "callx":  # a call whose value nobody reads (not even pickled)
            self._method(path)(*args[0], **args[1])
            return None
        if op == "del":
            if len(path) == 1:
                try:
                    del self.root[path[0]]
                except KeyError:
                    raise AttributeError(f"the Share has no attribute {path[0]!r}") from None
            else:
                target, last = self.walk(path[:-1]), path[-1]
                if type(last) is Item:
                    del target[last.key]
                else:
                    delattr(target, last)
            return None
        if op == "getitem":
            return self.walk(path)[args[0]]
        if op == "setitem":
            self.walk(path)[args[0]] = args[1]
            return None
        if op == "delitem":
            del self.walk(path)[args[0]]
            return None
        if op == "augitem":
            container = self.walk(path)
            fn = getattr(operator, args[1])
            container[args[0]] = fn(container[args[0]], args[2])
            return None
        if op == "op":
            return _OPS[args[0]](self.walk(path), *args[1:])
        if op == "len":
            return len(self.walk(path))
        if op == "iter":
            return self.elements(self.walk(path))
        if op == "contains":
            return args[0] in self.walk(path)
        if op == "repr":
            return repr(self.walk(path))
        if op == "str":
            return str(self.walk(path))
        if op == "type":
            return type(self.walk(path))
        if op == "copy":
            return self.walk(path)
        if op == "names":
            return list(self.root)
        if op == "has":
            return path[0] in self.root
        if op == "clear":
            self.root.clear()
            return None
        if op == "ping":
            return os.getpid()
        raise ValueError(f"unknown Share operation {op!r}")

    def _method(self, path: tuple[Any, ...]) -> Any:
        fn = self.walk(path)
        if path[-1] in _TIMER_LOCAL and isinstance(getattr(fn, "__self__", None), Sktimer):
            raise TypeError(
                f"{where_text(path)}() would measure time in the Share's server process, not in "
                "yours: time the work where it runs (a local Sktimer, or TimeThis) and record "
                f"the result with {where_text(path[:-1])}.add_time(seconds)"
            )
        return fn

    @staticmethod
    def elements(obj: Any) -> list[Any]:
        """An iteration's answer: values as they are, mutable elements of a list, tuple or
        deque as ``Ref(i)`` (the client makes handles to them), the rest as copies."""
        items = list(obj)
        if isinstance(obj, INDEXED):
            return [x if is_value(x) else Ref(i) for i, x in enumerate(items)]
        return items

    def local(self, op: str, path: tuple[Any, ...], args: tuple[Any, ...]) -> Any:
        """An operation on this state in this process (the owner's kept state while the Share
        is stopped): answered as the server answers."""
        return self.answer(op, path, args)

    def answer(self, op: str, path: tuple[Any, ...], args: tuple[Any, ...]) -> Any:
        """:meth:`execute`, answered as the server answers: ``REF`` (the ``ref`` argument's
        stand-in) for a read of a mutable value."""
        value = self.execute(op, path, args)
        if (op == "get" or op == "getitem") and not is_value(value):
            return REF
        return value


#: what :meth:`State.answer` gives for a mutable value (the caller makes a handle)
REF: Any = object()
