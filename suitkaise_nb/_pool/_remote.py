"""Rebuild a worker's exception in the caller, keeping its type.

The caller receives an instance of a class deriving from both the original exception type and
:class:`RemoteError` (a RuntimeError): ``except ValueError`` and ``except RuntimeError`` both
catch a ValueError raised in a worker. The child's traceback is chained as ``__cause__`` (a
:class:`RemoteTraceback`), shown by IPython through ``_render_traceback_``, and the message
names the item: ``Cannot process 3 (pool item 2: 3)``.
"""

from __future__ import annotations

import pickle
import reprlib
import threading
from typing import Any

from .._engine._errors import RemoteError, RemoteTraceback

_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80
_short.maxlist = 6
_short.maxdict = 6


def short_repr(obj: Any) -> str:
    """A repr cut to a sane length, that never raises."""
    try:
        return _short.repr(obj)
    except Exception:
        return f"<{type(obj).__name__} object>"


#: first element of the (marker, class, args, attributes) recipe a worker sends for an
#: exception that cannot be rebuilt from its own pickle
EXC_RECIPE = "suitkaise_nb.exception-recipe"

_classes: dict[type, type] = {}
_lock = threading.Lock()


def _remote_str(self: BaseException) -> str:
    base = type(self).__mro__[1]
    try:
        text = base.__str__(self)  # type: ignore[call-arg]
    except Exception:
        text = ""
    index = getattr(self, "item_index", None)
    if index is None or index < 0:
        return text
    return f"{text} (pool item {index}: {getattr(self, 'item_repr', '?')})"


def _reduce(self: BaseException) -> Any:
    base = type(self).__mro__[1]
    return (_rebuild_pickled, (base, self.args, dict(self.__dict__)))


def _rebuild_pickled(base: type, args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    cls = remote_class(base)
    obj: BaseException = cls.__new__(cls, *args)
    obj.args = args
    obj.__dict__.update(state)
    return obj


def remote_class(base: type) -> type:
    """The cached class deriving from ``base`` and RemoteError."""
    if issubclass(base, RemoteError):
        return base
    with _lock:
        cls = _classes.get(base)
        if cls is None:
            try:
                cls = type(
                    base.__name__,
                    (base, RemoteError),
                    {
                        "__module__": base.__module__,
                        "__qualname__": base.__qualname__,
                        "__str__": _remote_str,
                        "__reduce__": _reduce,
                    },
                )
            except TypeError:  # a base that cannot be mixed (layout conflict, @final ...)
                cls = type(
                    base.__name__,
                    (RemoteError,),
                    {
                        "__module__": base.__module__,
                        "__qualname__": base.__qualname__,
                        "__str__": _remote_str,
                    },
                )
            _classes[base] = cls
        return cls


def rebuild(payload: tuple[Any, ...]) -> BaseException:
    """From the worker's error payload to the exception raised in the caller."""
    index, item_repr, mod, qualname, text, blob, tb = payload
    original: Any = None
    if blob is not None:
        try:
            original = pickle.loads(blob)
        except Exception:
            original = None
    base: type | None = None
    args: tuple[Any, ...] = ()
    state: dict[str, Any] = {}
    if isinstance(original, BaseException):
        base, args, state = type(original), original.args, getattr(original, "__dict__", {})
    elif isinstance(original, tuple) and len(original) == 4 and original[0] == EXC_RECIPE:
        _, base, args, state = original
    exc: BaseException
    if base is not None and isinstance(base, type) and issubclass(base, BaseException):
        cls = remote_class(base)
        try:
            exc = cls.__new__(cls, *args)
            exc.args = args
            exc.__dict__.update(state)
        except Exception:
            exc = _fallback(mod, qualname, text)
    else:
        exc = _fallback(mod, qualname, text)
    exc.remote_traceback = tb  # type: ignore[attr-defined]
    exc.item_index = index  # type: ignore[attr-defined]
    exc.item_repr = item_repr  # type: ignore[attr-defined]
    if tb:
        exc.__cause__ = RemoteTraceback(tb)
    return exc


def _fallback(mod: str, qualname: str, text: str) -> BaseException:
    """A RemoteError named like the original type, when that type cannot be rebuilt here."""
    cls = type(
        qualname.rsplit(".", 1)[-1],
        (RemoteError,),
        {"__module__": mod, "__str__": _remote_str},
    )
    return cls(text)
