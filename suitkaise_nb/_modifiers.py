"""Call modifiers: ``.timeout(s)``, ``.background()`` and ``.asynced()``.

Several blocking operations of suitkaise_nb (``Skprocess.wait``/``result``/``run``/``listen``,
``Pool.map`` and friends, ``timing.sleep``) can be called in four ways::

    process.wait()                                 # plain blocking call
    process.wait.timeout(5)()                      # blocking, gives up after 5 s
    process.wait.background()()                    # concurrent.futures.Future, at once
    await process.wait.asynced()()                 # awaitable, for event loops / Jupyter

This module implements that once, for any function or method, with the
:func:`modifiable` decorator.

=====================================  ==========================================================
Expression                             Result
=====================================  ==========================================================
``f(*a, **k)``                         the plain call (no extra machinery on this path)
``f.timeout(s)(*a, **k)``              the result, or ``timeout_error`` after ``s`` seconds
``f.background()(*a, **k)``            a ``concurrent.futures.Future`` holding result/exception
``f.asynced()(*a, **k)``               a coroutine; ``await`` it to get the result
``f.timeout(s).background()(...)``     a Future; it raises ``timeout_error`` if ``s`` passes
``f.background().timeout(s)(...)``     the same (modifiers compose in any order)
``f.asynced().timeout(s)(...)``        a coroutine that raises ``timeout_error`` after ``s``
``f.background().asynced()``           ``TypeError``: a call is either a Future or awaitable
=====================================  ==========================================================

Design
------
* ``modifiable`` turns a function into a :class:`Modifiable`. It is a non-data descriptor,
  so on a class ``Cls.method`` is the :class:`Modifiable` itself and ``obj.method`` is a
  :class:`BoundModifiable`, created per attribute access like a bound method. Everything
  the modifiers need (native deadline support, names, the error type) is computed once
  at decoration time, so nothing is inspected per call. A ``BoundModifiable`` is a
  ``functools.partial(func, obj)`` subclass: calling it reaches the function with no
  Python frame in between, and ``obj.method(...)`` costs one small ``__get__`` over a
  normal method call (about half a microsecond). A plain ``Modifiable`` adds one frame.
* ``.timeout``, ``.background`` and ``.asynced`` return immutable call objects
  (:class:`TimedCall`, :class:`BackgroundCall`, :class:`AsyncCall`) that hold the target
  and the accumulated timeout. Each offers the same three methods again, so options
  compose in any order; the class of the call object *is* its mode (plain / Future /
  awaitable), which keeps both the dispatch and the static types simple. Calling
  ``.timeout`` again replaces the earlier limit; ``.timeout(None)`` removes it.
* Timeouts are **native** when the wrapped function has a keyword parameter named
  ``_deadline``: the call then receives ``_deadline=time.monotonic() + s`` (an absolute
  ``time.monotonic()`` value) and must honour it itself -- typically by passing
  :func:`remaining` (``_deadline``) to its own blocking waits -- and signal expiry by
  raising :class:`DeadlineExpired` (or calling :func:`check_deadline`). The mechanism
  turns that into ``timeout_error("<qualname>() did not finish within s seconds")``
  raised ``from None``. A generator returned by a native call is wrapped so that
  ``DeadlineExpired`` raised while iterating is converted the same way (``imap``).
  Implementations that call other native modifiables should forward ``_deadline=`` in a
  plain call (not ``.timeout(...)``) so that the outermost call is the one reported.
* Without a ``_deadline`` parameter, ``.timeout(s)`` runs the call on a helper daemon
  thread and waits up to ``s`` seconds. On expiry ``timeout_error`` is raised but **the
  call keeps running** in that thread until it returns by itself (Python threads cannot
  be interrupted); its eventual result is discarded.
* ``.background()`` starts one daemon thread per call (named
  ``suitkaise_nb-background-<n> (<qualname>)``), running in a copy of the caller's
  ``contextvars`` context, and returns its ``Future`` immediately. There is no shared
  executor, so long waits can never starve each other. Exceptions (also
  ``BaseException``) land in the Future; cancelling the Future before the thread has
  started skips the call.
* ``.asynced()`` returns a coroutine that starts such a background call and awaits it
  through ``asyncio.wrap_future``, so the event-loop thread never blocks and it works
  in an already running loop (a Jupyter kernel) and under ``asyncio.gather``.
  Cancelling the awaiting task does not disturb the worker thread: the blocking call
  simply finishes and its result is dropped.
* Deadlines are fixed when the call is made: when ``(...)`` is called for the plain and
  ``.background()`` forms, and when the coroutine starts running for ``.asynced()``.
* Pickling: a module-level (or class-level) :class:`Modifiable` pickles by reference.
  One defined in ``__main__`` (a notebook cell) pickles by value -- the wrapped function
  and the error class -- so that dill/cloudpickle can ship it to a subprocess. A
  :class:`BoundModifiable` pickles like a bound method (``getattr(obj, name)``).
* Importing this module starts no threads and registers nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import itertools
import math
import numbers
import sys
import threading
import time
import types
from collections.abc import Callable, Coroutine, Generator
from concurrent.futures import Future
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    NoReturn,
    ParamSpec,
    TypeVar,
    cast,
    overload,
)

from ._errors import DeadlineExpired

__all__ = [
    "AsyncCall",
    "BackgroundCall",
    "BoundModifiable",
    "DeadlineExpired",
    "Modifiable",
    "TimedCall",
    "check_deadline",
    "modifiable",
    "remaining",
]

P = ParamSpec("P")
R = TypeVar("R")
_P2 = ParamSpec("_P2")
_R2 = TypeVar("_R2")
_T = TypeVar("_T")
_M = TypeVar("_M", bound="Modifiable[Any, Any]")

#: Thread names of ``.background()`` / ``.asynced()`` workers start with this.
BACKGROUND_THREAD_PREFIX = "suitkaise_nb-background"
#: Thread names of the helper threads of thread-based ``.timeout()`` start with this.
TIMEOUT_THREAD_PREFIX = "suitkaise_nb-timeout"

_thread_counter = itertools.count(1)  # next() on a count is atomic under the GIL


# ---------------------------------------------------------------------------------------
# deadlines
# ---------------------------------------------------------------------------------------


def remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (a ``time.monotonic()`` value), never below 0.0.

    ``None`` (no deadline) stays ``None``, so the result can be passed straight on as
    the ``timeout=`` of ``queue.get``, ``Event.wait``, ``Future.result`` and the like.
    """
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    return left if left > 0.0 else 0.0


def check_deadline(deadline: float | None) -> None:
    """Raise :class:`DeadlineExpired` if ``deadline`` is set and has passed."""
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExpired


def check_timeout(value: object, name: str = "timeout") -> float | None:
    """A timeout argument: seconds >= 0, ``None`` or ``inf`` for "no limit" (returned as
    None). NaN and negative values raise ``ValueError`` naming the argument; anything that is
    not a number raises ``TypeError``. The one check every blocking call uses."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds or None, got {value!r}")
    seconds = float(value)
    if math.isnan(seconds):
        raise ValueError(f"{name} must be a number of seconds or None, got NaN")
    if seconds < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return None if math.isinf(seconds) else seconds


def _validate_seconds(seconds: object) -> float | None:
    """Check the argument of ``.timeout()``; ``None`` and ``inf`` mean "no limit"."""
    if seconds is None:
        return None
    if isinstance(seconds, bool):
        raise ValueError(f"timeout(seconds): seconds must be a positive number, not {seconds!r}")
    if not isinstance(seconds, numbers.Real):
        raise TypeError(
            "timeout(seconds): seconds must be a positive number or None, "
            f"not {type(seconds).__name__}"
        )
    value = check_timeout(seconds, "timeout(seconds)")
    if value == 0.0:
        raise ValueError(f"timeout(seconds): seconds must be a positive number, not {seconds!r}")
    return value


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g} second" if seconds == 1.0 else f"{seconds:g} seconds"


# ---------------------------------------------------------------------------------------
# the decorator and the descriptor
# ---------------------------------------------------------------------------------------


@overload
def modifiable(
    func: None = None, /, *, timeout_error: type[BaseException] = ..., collect: bool = ...
) -> Callable[[Callable[P, R]], Modifiable[P, R]]: ...
@overload
def modifiable(func: Callable[P, R], /) -> Modifiable[P, R]: ...
def modifiable(
    func: Callable[P, R] | None = None,
    /,
    *,
    timeout_error: type[BaseException] = TimeoutError,
    collect: bool = False,
) -> Modifiable[P, R] | Callable[[Callable[P, R]], Modifiable[P, R]]:
    """Give a function or method the ``.timeout()``, ``.background()``, ``.asynced()`` modifiers.

    Use as ``@modifiable(timeout_error=ResultTimeoutError)`` or bare ``@modifiable``.
    ``timeout_error`` is the exception class raised (with one message argument) when a
    ``.timeout(s)`` call does not finish in time. A keyword parameter named ``_deadline``
    on the function opts into native timeouts (see the module docstring). With ``collect``
    (a function that returns an iterator), ``.background()`` and ``.asynced()`` give the list
    of its values, collected on the background thread.
    """
    _check_error_class(timeout_error)

    def decorate(f: Callable[P, R]) -> Modifiable[P, R]:
        return Modifiable(f, timeout_error=timeout_error, collect=collect)

    if func is None:
        return decorate
    return decorate(func)


def _check_error_class(timeout_error: object) -> None:
    if not (isinstance(timeout_error, type) and issubclass(timeout_error, BaseException)):
        raise TypeError(
            f"modifiable(timeout_error=...) must be an exception class, not {timeout_error!r}"
        )


def _accepts_deadline(func: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return False
    param = signature.parameters.get("_deadline")
    return param is not None and param.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


class _Unbound:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<unbound>"

    def __reduce__(self) -> str:
        return "_UNBOUND"


#: Marker for "no instance": the call wraps a plain function or an unbound method.
_UNBOUND: Any = _Unbound()


class _Core:
    """What the modifiers need to know about one decorated function (fixed at decoration)."""

    __slots__ = (
        "attr_name",
        "collect",
        "func",
        "modifiable",
        "native",
        "qualname",
        "timeout_error",
    )

    def __init__(
        self,
        modifiable: Modifiable[Any, Any],
        func: Callable[..., Any],
        timeout_error: type[BaseException],
        collect: bool = False,
    ) -> None:
        self.modifiable = modifiable
        self.collect = collect
        self.func = func
        self.timeout_error = timeout_error
        self.native = _accepts_deadline(func)
        name = getattr(func, "__name__", None)
        self.attr_name: str = name if isinstance(name, str) else type(func).__name__
        qualname = getattr(func, "__qualname__", None)
        self.qualname: str = qualname if isinstance(qualname, str) else self.attr_name

    def describe(self, obj: object) -> str:
        kind = "function" if obj is _UNBOUND else "bound method"
        return f"modifiable {kind} {self.qualname}"

    def expired_error(self, seconds: float) -> BaseException:
        return self.timeout_error(
            f"{self.qualname}() did not finish within {_format_seconds(seconds)}"
        )


class Modifiable(Generic[P, R]):
    """A function carrying the call modifiers; see :func:`modifiable` and the module doc.

    On a class it is a descriptor: ``Cls.meth`` is this object, ``obj.meth`` a
    :class:`BoundModifiable`. ``__name__``, ``__qualname__``, ``__doc__``, ``__module__``,
    ``__wrapped__`` and the function's ``__dict__`` are copied as by ``functools.wraps``.
    """

    __wrapped__: Callable[P, R]

    def __init__(
        self,
        func: Callable[P, R],
        *,
        timeout_error: type[BaseException] = TimeoutError,
        collect: bool = False,
    ) -> None:
        if isinstance(func, staticmethod | classmethod):
            raise TypeError(
                "modifiable cannot wrap a staticmethod/classmethod object; "
                "put @modifiable below @staticmethod/@classmethod"
            )
        if not callable(func):
            raise TypeError(f"modifiable expects a callable, not {type(func).__name__}")
        _check_error_class(timeout_error)
        functools.update_wrapper(self, func)
        self._core = _Core(self, func, timeout_error, collect)
        self._func: Callable[..., R] = func
        if not isinstance(getattr(self, "__qualname__", None), str):
            self.__qualname__ = self._core.qualname  # odd callables, e.g. partial objects
        if not isinstance(getattr(self, "__name__", None), str):
            self.__name__ = self._core.attr_name

    @property
    def timeout_error(self) -> type[BaseException]:
        """The exception class raised when a ``.timeout(s)`` call runs out of time."""
        return self._core.timeout_error

    @property
    def native_deadline(self) -> bool:
        """True when the function takes ``_deadline`` and implements timeouts itself."""
        return self._core.native

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._func(*args, **kwargs)

    def timeout(self, seconds: float | None) -> TimedCall[P, R]:
        """A call that raises ``timeout_error`` when it takes longer than ``seconds``."""
        return TimedCall(self._core, _UNBOUND, _validate_seconds(seconds))

    def background(self) -> BackgroundCall[P, R]:
        """A call that returns a ``concurrent.futures.Future`` immediately."""
        return BackgroundCall(self._core, _UNBOUND, None)

    def asynced(self) -> AsyncCall[P, R]:
        """A call that returns an awaitable (run off the event loop thread)."""
        return AsyncCall(self._core, _UNBOUND, None)

    # -- descriptor protocol ----------------------------------------------------------

    def __set_name__(self, owner: type, name: str) -> None:
        self._core.attr_name = name

    @overload
    def __get__(self: _M, obj: None, objtype: type | None = None) -> _M: ...
    @overload
    def __get__(
        self: Modifiable[Concatenate[_T, _P2], _R2], obj: _T, objtype: type | None = None
    ) -> BoundModifiable[_P2, _R2]: ...
    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return _bind(self._func, obj, self._core)

    # -- misc -------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<{self._core.describe(_UNBOUND)}>"

    def __reduce__(self) -> str | tuple[Any, ...]:
        module = getattr(self, "__module__", None)
        qualname = self._core.qualname
        if isinstance(module, str) and module != "__main__" and _lookup(module, qualname) is self:
            return qualname  # pickled by reference, like a function
        return (_rebuild_modifiable, (self._func, self._core.timeout_error, self._core.collect))


def _lookup(module: str, qualname: str) -> object:
    target: object = sys.modules.get(module)
    try:
        for part in qualname.split("."):
            target = getattr(target, part)
    except AttributeError:
        return None
    return target


def _rebuild_modifiable(
    func: Callable[..., Any], timeout_error: type[BaseException], collect: bool = False
) -> Modifiable[..., Any]:
    return Modifiable(func, timeout_error=timeout_error, collect=collect)


_NOT_FORWARDED = frozenset({"_c", "_obj", "_seconds", "args", "func", "keywords"})
_FORWARDED_DUNDERS = frozenset({"__qualname__", "__annotations__", "__type_params__"})


class _Described:
    """Metadata of bound modifiables and call objects, delegated to the :class:`Modifiable`.

    Attributes not found here (``__qualname__``, attributes set on the function) are
    looked up on the :class:`Modifiable`, as bound methods do with their function.
    """

    __slots__ = ()

    def _parts(self) -> tuple[_Core, Any]:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        # Only reached when the normal lookup fails. Internal names (possibly not yet set)
        # and protocol dunders are never forwarded.
        if name in _NOT_FORWARDED or (name.startswith("__") and name not in _FORWARDED_DUNDERS):
            raise AttributeError(name)
        return getattr(self._parts()[0].modifiable, name)

    @property
    def __name__(self) -> str:
        return self._parts()[0].modifiable.__name__

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        """The wrapped function, bound to the instance when there is one."""
        core, obj = self._parts()
        return core.func if obj is _UNBOUND else types.MethodType(core.func, obj)

    @property
    def __self__(self) -> Any:
        """The instance the method is bound to (``None`` for a plain function)."""
        obj = self._parts()[1]
        return None if obj is _UNBOUND else obj

    @property
    def __func__(self) -> Modifiable[Any, Any]:
        """The unbound :class:`Modifiable`."""
        return self._parts()[0].modifiable

    @property
    def timeout_error(self) -> type[BaseException]:
        """The exception class raised when a ``.timeout(s)`` call runs out of time."""
        return self._parts()[0].timeout_error

    @property
    def native_deadline(self) -> bool:
        """True when the function takes ``_deadline`` and implements timeouts itself."""
        return self._parts()[0].native


if TYPE_CHECKING:

    class _PartialBase:
        args: tuple[Any, ...]

else:
    _PartialBase = functools.partial


class BoundModifiable(_PartialBase, _Described, Generic[P, R]):
    """``obj.method`` for a :class:`Modifiable` method: the instance is already bound.

    At run time it is a :class:`functools.partial` of the wrapped function and the
    instance, so a plain call goes straight to the function without a Python frame.
    """

    __slots__ = ("_c",)

    _c: _Core

    if TYPE_CHECKING:

        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def _parts(self) -> tuple[_Core, Any]:
        return self._c, self.args[0]

    def timeout(self, seconds: float | None) -> TimedCall[P, R]:
        """A call that raises ``timeout_error`` when it takes longer than ``seconds``."""
        return TimedCall(self._c, self.args[0], _validate_seconds(seconds))

    def background(self) -> BackgroundCall[P, R]:
        """A call that returns a ``concurrent.futures.Future`` immediately."""
        return BackgroundCall(self._c, self.args[0], None)

    def asynced(self) -> AsyncCall[P, R]:
        """A call that returns an awaitable (run off the event loop thread)."""
        return AsyncCall(self._c, self.args[0], None)

    def __repr__(self) -> str:
        return f"<{self._c.describe(self.args[0])}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BoundModifiable):
            return NotImplemented
        return self._c is other._c and self.args[0] is other.args[0]

    def __hash__(self) -> int:
        return hash((id(self._c), id(self.args[0])))

    def __reduce__(self) -> tuple[Any, ...]:
        return (getattr, (self.args[0], self._c.attr_name))


_make_bound = cast(Callable[[Callable[..., Any], Any], BoundModifiable[Any, Any]], BoundModifiable)


def _bind(func: Callable[..., Any], obj: Any, core: _Core) -> BoundModifiable[Any, Any]:
    """``obj.method``: a C-level partial (calling it adds no frame) that knows its core."""
    bound = _make_bound(func, obj)
    bound._c = core  # noqa: SLF001  (set once here, where the bound method is made)
    return bound


# ---------------------------------------------------------------------------------------
# call objects produced by the modifiers
# ---------------------------------------------------------------------------------------


class _ModifiedCall(_Described):
    __slots__ = ("_c", "_obj", "_seconds")

    def __init__(self, core: _Core, obj: Any, seconds: float | None) -> None:
        self._c = core
        self._obj = obj
        self._seconds = seconds

    def _parts(self) -> tuple[_Core, Any]:
        return self._c, self._obj

    @property
    def seconds(self) -> float | None:
        """The time limit of this call (``None`` for none)."""
        return self._seconds

    _mode = ""

    def __repr__(self) -> str:
        text = self._c.describe(self._obj)
        if self._seconds is not None:
            text += f" .timeout({self._seconds:g})"
        return f"<{text}{self._mode}>"

    def __reduce__(self) -> tuple[Any, ...]:
        target = (
            self._c.modifiable if self._obj is _UNBOUND else self._c.modifiable.__get__(self._obj)
        )
        return (_rebuild_call, (target, self._mode.strip(), self._seconds))

    def _combine_error(self, wanted: str) -> NoReturn:
        raise TypeError(
            f"{self._c.qualname}: {self._mode.strip()} and {wanted} cannot be combined; "
            ".background() returns a concurrent.futures.Future and .asynced() an awaitable, "
            "so use only one (asyncio.wrap_future() turns such a Future into an awaitable)"
        )


def _rebuild_call(
    target: Modifiable[Any, Any] | BoundModifiable[Any, Any], mode: str, seconds: float | None
) -> _ModifiedCall:
    call = target.timeout(seconds)
    if mode == ".background()":
        return call.background()
    if mode == ".asynced()":
        return call.asynced()
    return call


class TimedCall(_ModifiedCall, Generic[P, R]):
    """A blocking call with a time limit (from ``.timeout(s)``)."""

    __slots__ = ()

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        seconds = self._seconds
        deadline = None if seconds is None else time.monotonic() + seconds
        return cast(R, _call_sync(self._c, self._obj, args, kwargs, seconds, deadline))

    def timeout(self, seconds: float | None) -> TimedCall[P, R]:
        """The same call with a new time limit (replacing this one)."""
        return TimedCall(self._c, self._obj, _validate_seconds(seconds))

    def background(self) -> BackgroundCall[P, R]:
        """This call, returning a ``concurrent.futures.Future`` immediately."""
        return BackgroundCall(self._c, self._obj, self._seconds)

    def asynced(self) -> AsyncCall[P, R]:
        """This call, returning an awaitable."""
        return AsyncCall(self._c, self._obj, self._seconds)


class BackgroundCall(_ModifiedCall, Generic[P, R]):
    """A call returning a ``concurrent.futures.Future`` at once (from ``.background()``)."""

    __slots__ = ()

    _mode = " .background()"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        seconds = self._seconds
        deadline = None if seconds is None else time.monotonic() + seconds
        return _start_background(self._c, self._obj, args, kwargs, seconds, deadline)

    def timeout(self, seconds: float | None) -> BackgroundCall[P, R]:
        """The same call with a new time limit (replacing this one)."""
        return BackgroundCall(self._c, self._obj, _validate_seconds(seconds))

    def background(self) -> BackgroundCall[P, R]:
        """The same call (``.background()`` twice is harmless)."""
        return BackgroundCall(self._c, self._obj, self._seconds)

    def asynced(self) -> NoReturn:
        """Always raises ``TypeError``: a call is either a Future or an awaitable."""
        self._combine_error(".asynced()")


class AsyncCall(_ModifiedCall, Generic[P, R]):
    """A call returning a coroutine (from ``.asynced()``); await it for the result."""

    __slots__ = ()

    _mode = " .asynced()"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        return self._run(args, kwargs)

    async def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        seconds = self._seconds
        deadline = None if seconds is None else time.monotonic() + seconds
        future = _start_background(self._c, self._obj, args, kwargs, seconds, deadline)
        result: R = await asyncio.wrap_future(future)
        return result

    def timeout(self, seconds: float | None) -> AsyncCall[P, R]:
        """The same call with a new time limit (replacing this one)."""
        return AsyncCall(self._c, self._obj, _validate_seconds(seconds))

    def background(self) -> NoReturn:
        """Always raises ``TypeError``: a call is either a Future or an awaitable."""
        self._combine_error(".background()")

    def asynced(self) -> AsyncCall[P, R]:
        """The same call (``.asynced()`` twice is harmless)."""
        return AsyncCall(self._c, self._obj, self._seconds)


def _wrapped_doc(self: _Described) -> str | None:
    return self._parts()[0].modifiable.__doc__


# Instances report the wrapped function's docstring (``help(process.wait)``, ``wait?`` in
# Jupyter); the class's own docstring stays readable as ``Cls.__doc__.__doc__``. This has to
# be set after class creation because every class body defines ``__doc__`` itself.
for _cls in (BoundModifiable, TimedCall, BackgroundCall, AsyncCall):
    _cls.__doc__ = property(_wrapped_doc, doc=_cls.__doc__)  # type: ignore[assignment]
del _cls


# ---------------------------------------------------------------------------------------
# execution
# ---------------------------------------------------------------------------------------


def _call_sync(
    core: _Core,
    obj: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    seconds: float | None,
    deadline: float | None,
) -> Any:
    """Run one call in this thread, honouring ``seconds`` (limit) and ``deadline`` (when)."""
    func = core.func
    if obj is not _UNBOUND:
        args = (obj, *args)
    if seconds is None or deadline is None:
        return func(*args, **kwargs)

    if core.native:
        given = kwargs.get("_deadline")
        kwargs = dict(kwargs)
        kwargs["_deadline"] = deadline if given is None else min(deadline, given)
        try:
            result = func(*args, **kwargs)
        except DeadlineExpired:
            raise core.expired_error(seconds) from None
        if isinstance(result, types.GeneratorType):
            return _guard_generator(result, core, seconds)
        return result

    # No native support: run the call on a helper thread and stop waiting at the deadline.
    # The call itself cannot be interrupted and keeps running after we give up on it.
    future = _spawn(functools.partial(func, *args, **kwargs), TIMEOUT_THREAD_PREFIX, core)
    try:
        future.exception(timeout=remaining(deadline))  # raises TimeoutError only if not done
    except TimeoutError:
        raise core.expired_error(seconds) from None
    return future.result()


def _guard_generator(
    gen: Generator[Any, Any, Any], core: _Core, seconds: float
) -> Generator[Any, Any, Any]:
    """Convert ``DeadlineExpired`` raised while iterating a native call's generator."""
    try:
        return (yield from gen)
    except DeadlineExpired:
        raise core.expired_error(seconds) from None


def _start_background(
    core: _Core,
    obj: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    seconds: float | None,
    deadline: float | None,
) -> Future[Any]:
    call = functools.partial(_call_sync, core, obj, args, kwargs, seconds, deadline)
    if core.collect:  # an iterator: the future gives its values, read here
        return _spawn(lambda: list(call()), BACKGROUND_THREAD_PREFIX, core)
    return _spawn(call, BACKGROUND_THREAD_PREFIX, core)


def _spawn(call: Callable[[], R], prefix: str, core: _Core) -> Future[R]:
    """Run ``call`` on a new daemon thread; its outcome lands in the returned Future."""
    future: Future[R] = Future()
    context = contextvars.copy_context()

    def worker() -> None:
        if not future.set_running_or_notify_cancel():
            return  # cancelled before it started
        try:
            result = context.run(call)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    name = f"{prefix}-{next(_thread_counter)} ({core.qualname})"
    threading.Thread(target=worker, name=name, daemon=True).start()
    return future
