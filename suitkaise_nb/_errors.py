"""Every exception of suitkaise_nb, and the rebuilding of exceptions raised in other processes.

The tree (public names are exported by ``suitkaise_nb.processing``)::

    ProcessError(Exception)                   base of every process failure
     ├── PreRunError                          raised in __prerun__
     │    └── ReconnectError(ShippingError)   an @autoreconnect connection did not reopen
     ├── RunError                             raised in __run__
     ├── PostRunError                         raised in __postrun__
     ├── OnFinishError                        raised in __onfinish__
     ├── ResultError                          raised in __result__ (or the result could not ship)
     ├── ErrorHandlerError                    raised in __error__
     ├── ProcessCrashedError                  the child died without reporting (signal, _exit)
     │    └── WorkerDiedError(RuntimeError)   a pool worker died running an item
     ├── PoolClosedError                      the pool was closed, terminated or cancelled
     ├── ShareError                           the Share cannot serve (stopped, or its server died)
     ├── ProcessTimeoutError(TimeoutError)    a lifecycle section overran its timeout
     ├── ResultTimeoutError(TimeoutError)     wait()/result()/listen() .timeout(s) expired
     ├── PipeEndpointError                    a Pipe end used or shipped the wrong way
     ├── NotStartedError(RuntimeError)        tell()/listen()/result() before start()
     └── ShippingError(TypeError)             an object could not be sent to another process
          ├── ShareValueError(ValueError)     a value a Share cannot keep (named share.attr)
          └── NotShippable                    (internal) a connection a reducer refused

    RemoteError(RuntimeError)                 mixed into rebuilt worker exceptions, so that
                                              ``except ValueError`` and ``except RuntimeError``
                                              both catch a ValueError raised in a Pool worker
    RemoteTraceback(Exception)                the other process's traceback, as a __cause__

    internal, never seen by users:
    DeadlineExpired(TimeoutError)             a native ``_deadline`` passed (-> timeout_error)
    PoolTimeout(TimeoutError)                 a pool call's deadline (-> TimeoutError)
    Expired(Exception)                        a job's wait passed its deadline
    SectionAlarm(BaseException)               SIGALRM in a section over its timeout (escapes
                                              ``except Exception``)
    UnsupportedConnection(Exception)          a live connection @autoreconnect cannot describe
    HandshakeError(ConnectionError)           a Share peer did not prove the key

Remote errors keep their type: :func:`rebuild` makes, in the caller, an instance of a class
deriving from both the original exception type and :class:`RemoteError`; the child's
traceback is chained as ``__cause__`` (a :class:`RemoteTraceback`), shown by IPython through
``_render_traceback_``, and the message names the item: ``Cannot process 3 (pool item 2: 3)``.
"""

from __future__ import annotations

import itertools
import pickle
import reprlib
import threading
from collections.abc import Callable
from typing import Any

#: Functions that make another process's traceback text readable here (the notebook layer
#: adds one that shows a frame of code typed into a cell as ``Cell In[2], line 9`` with its
#: line, as IPython does; the core never imports IPython).
TRACEBACK_REWRITERS: list[Callable[[str], str]] = []


def readable_traceback(text: str) -> str:
    """``text`` through every registered rewriter (unchanged if one fails)."""
    for rewrite in TRACEBACK_REWRITERS:
        try:
            text = rewrite(text)
        except Exception:
            pass
    return text


class RemoteTraceback(Exception):
    """Holds the traceback text of an exception raised in another process."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n" + readable_traceback(self.text).rstrip()


class ProcessError(Exception):
    """Base class of every failure of an Skprocess or a Pool task.

    Attributes
    ----------
    current_run: the run counter when it failed (None when unknown)
    original_error: the exception raised by user code, rebuilt with its original type
    remote_traceback: the child's traceback text ("" when there is none)
    """

    section: str | None = None

    def __init__(
        self,
        message: str = "",
        *,
        current_run: int | None = None,
        original_error: BaseException | None = None,
        remote_traceback: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.current_run = current_run
        self.original_error = original_error
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (type(self), self.message, self.__dict__.copy()))

    def _render_traceback_(self) -> list[str]:
        """IPython hook: show the child's frames rather than the parent's wait()."""
        lines: list[str] = []
        if self.remote_traceback:
            lines.append("Traceback in the child process:")
            lines.extend(readable_traceback(self.remote_traceback).rstrip().splitlines())
        lines.append(f"{type(self).__qualname__}: {self}")
        return lines


def _rebuild_error(cls: type[ProcessError], message: str, state: dict[str, Any]) -> ProcessError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class PreRunError(ProcessError):
    """An exception escaped ``__prerun__``."""

    section = "prerun"


class RunError(ProcessError):
    """An exception escaped ``__run__``."""

    section = "run"


class PostRunError(ProcessError):
    """An exception escaped ``__postrun__``."""

    section = "postrun"


class OnFinishError(ProcessError):
    """An exception escaped ``__onfinish__``."""

    section = "onfinish"


class ResultError(ProcessError):
    """An exception escaped ``__result__``, or its value could not be sent back."""

    section = "result"


class ErrorHandlerError(ProcessError):
    """An exception escaped ``__error__``."""

    section = "error"


class ProcessCrashedError(ProcessError):
    """The child process ended without reporting a result (a signal, ``os._exit``, OOM)."""

    def __init__(
        self,
        message: str = "",
        *,
        pid: int | None = None,
        exitcode: int | None = None,
        current_run: int | None = None,
    ) -> None:
        super().__init__(message, current_run=current_run)
        self.pid = pid
        self.exitcode = exitcode


class ProcessTimeoutError(ProcessError, TimeoutError):
    """A lifecycle section ran longer than its ``process_config.timeouts`` entry."""

    def __init__(
        self,
        message: str = "",
        *,
        section: str | None = None,
        timeout: float | None = None,
        current_run: int | None = None,
        remote_traceback: str = "",
    ) -> None:
        ProcessError.__init__(
            self, message, current_run=current_run, remote_traceback=remote_traceback
        )
        self.section = section
        self.timeout = timeout


class ResultTimeoutError(ProcessError, TimeoutError):
    """``.timeout(s)`` on wait/result/run/listen expired before the call could finish."""


class PipeEndpointError(ProcessError):
    """A Pipe end was shipped or used in a way it cannot be (e.g. sending the anchor)."""


class ShippingError(ProcessError, TypeError):
    """An object could not be serialized to travel to another process.

    ``path`` names the attribute (``MyProcess.db``) and ``type_name`` its type.
    """

    def __init__(self, message: str, *, path: str = "", type_name: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.type_name = type_name


class ShareValueError(ShippingError, ValueError):
    """A value a Share cannot keep (it cannot be pickled to the Share's server), named by its
    place in the Share (``share.conn``); also a ``ValueError``, as in suitkaise."""


class RemoteError(RuntimeError):
    """Mixed into exceptions rebuilt from another process.

    A ``ValueError`` raised in a worker is re-raised in the caller as an instance of a class
    deriving from both ``ValueError`` and ``RemoteError``, so either ``except`` clause catches it.
    """

    remote_traceback: str = ""
    item_index: int | None = None
    item_repr: str | None = None

    def _render_traceback_(self) -> list[str]:
        lines = []
        if self.remote_traceback:
            lines.append("Traceback in the worker process:")
            lines.extend(readable_traceback(self.remote_traceback).rstrip().splitlines())
        lines.append(f"{type(self).__qualname__}: {self}")
        return lines


SECTION_ERRORS: dict[str, type[ProcessError]] = {
    "prerun": PreRunError,
    "run": RunError,
    "postrun": PostRunError,
    "onfinish": OnFinishError,
    "result": ResultError,
    "error": ErrorHandlerError,
}


class NotStartedError(ProcessError, RuntimeError):
    """``tell()``, ``listen()``, ``result()``... on an Skprocess that was never started (also a
    RuntimeError, as in suitkaise)."""


class PoolClosedError(ProcessError):
    """The pool was closed or terminated."""


class WorkerDiedError(ProcessCrashedError, RuntimeError):
    """A pool worker process died while running an item (signal, os._exit, OOM)."""

    def __init__(self, message: str, *, pid: int, exitcode: int | None, item_index: int | None):
        super().__init__(message)
        self.pid = pid
        self.exitcode = exitcode
        self.item_index = item_index


class ShareError(ProcessError):
    """The Share cannot serve the request (stopped, exited, or its server died)."""


class ReconnectError(PreRunError, ShippingError):
    """A connection shipped with ``@autoreconnect`` could not be reopened in the child.

    ``path`` names the attribute (``Worker.db``), ``type_name`` its type; ``original_error``
    is the driver's exception (e.g. a wrong password).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        type_name: str = "",
        original_error: BaseException | None = None,
        remote_traceback: str = "",
    ) -> None:
        ShippingError.__init__(self, message, path=path, type_name=type_name)
        self.current_run = 0
        self.original_error = original_error
        self.remote_traceback = remote_traceback


class NotShippable(ShippingError):
    """Raised by an @autoreconnect reducer; ``reconnect_shipping`` adds the attribute path."""

    def __init__(self, obj: Any, type_name: str, reason: str, hint: str) -> None:
        super().__init__(f"cannot ship {type_name}: {reason}", type_name=type_name)
        self.obj = obj
        self.reason = reason
        self.hint = hint


class UnsupportedConnection(Exception):
    """A live object of a supported type that cannot be described (closed, in-memory...)."""

    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


class DeadlineExpired(TimeoutError):
    """Raised by a native-deadline implementation when its ``_deadline`` has passed.

    The modifier mechanism converts it into the decorated function's ``timeout_error``.
    It subclasses :class:`TimeoutError` so that, should one ever escape (a plain call
    made with an explicit ``_deadline=``), ``except TimeoutError`` still catches it.
    """


class PoolTimeout(TimeoutError):
    """A pool call's deadline passed."""


class Expired(Exception):
    """A job's wait passed its deadline (the pool turns it into a timeout)."""


class SectionAlarm(BaseException):
    """Raised by the SIGALRM handler when a section overruns its timeout (a BaseException,
    so that the user's ``except Exception`` cannot swallow it)."""


class HandshakeError(ConnectionError):
    """The peer did not prove that it knows the Share's key."""


# -- rebuilding exceptions raised in other processes ----------------------------------------------


class _ShortRepr(reprlib.Repr):
    """``reprlib`` with Python's own order: dict keys as inserted, sets as iterated
    (``reprlib`` sorts them, which shows a dict in an order its program never made)."""

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{" + self.fillvalue + "}"
        pieces = [
            f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}"
            for k, v in itertools.islice(x.items(), self.maxdict)
        ]
        if len(x) > self.maxdict:
            pieces.append(self.fillvalue)
        return "{" + ", ".join(pieces) + "}"

    def _unsorted(self, x: Any, level: int, left: str, right: str) -> str:
        if not x:
            return repr(x)
        if level <= 0:
            return left + self.fillvalue + right
        pieces = [self.repr1(v, level - 1) for v in itertools.islice(x, self.maxset)]
        if len(x) > self.maxset:
            pieces.append(self.fillvalue)
        return left + ", ".join(pieces) + right

    def repr_set(self, x: set[Any], level: int) -> str:
        return self._unsorted(x, level, "{", "}")

    def repr_frozenset(self, x: frozenset[Any], level: int) -> str:
        return self._unsorted(x, level, "frozenset({", "})")


_short = _ShortRepr()
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
