"""Serialization: data by the fastest pickle path, code by value when it has to travel.

``dumps(obj)`` first tries the C pickler with protocol 5 (large buffers go out-of-band, see
``_wire``). Objects whose classes or functions live in ``__main__`` (a script, or a notebook
cell) cannot be found by name in another process; the pickle then mentions ``__main__`` and we
redo it with the by-value serializer chosen in ``suitkaise_nb.config.serializer`` (dill by
default, cloudpickle as an option). Lambdas, closures and local classes fail the C pickler and
take the same road.

Pipe endpoints and other objects that carry a file descriptor register it with the active
:func:`collecting_fds` context while being pickled; the descriptors travel with the frame as
SCM_RIGHTS and :func:`loads` hands them back to the rebuilders through :func:`received_fd`.

When nothing works, :func:`explain_unshippable` walks the object to name the attribute that
cannot travel (``MyProcess.db (sqlite3.Connection)``) with a hint.
"""

from __future__ import annotations

import contextvars
import copyreg
import io
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._errors import ShippingError

_FD_SINK: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "suitkaise_nb_fd_sink", default=None
)
_FD_SOURCE: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "suitkaise_nb_fd_source", default=None
)
_MAIN_MARK = b"__main__"

_EXTRA_REDUCERS: contextvars.ContextVar[dict[type, Any] | None] = contextvars.ContextVar(
    "suitkaise_nb_extra_reducers", default=None
)

Dumped = tuple[bytes, list[pickle.PickleBuffer]]


@contextmanager
def extra_reducers(table: dict[type, Any]) -> Iterator[None]:
    """Within this context, objects of the given types are pickled with the given reducers
    (``copyreg`` style: ``reducer(obj) -> (callable, args)``). Used by ``@autoreconnect``."""
    current = _EXTRA_REDUCERS.get()
    merged = {**current, **table} if current else dict(table)
    token = _EXTRA_REDUCERS.set(merged)
    try:
        yield
    finally:
        _EXTRA_REDUCERS.reset(token)


def _plain_dumps(obj: Any, buffers: list[pickle.PickleBuffer]) -> bytes:
    extra = _EXTRA_REDUCERS.get()
    if not extra:
        return pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    f = io.BytesIO()
    p = pickle.Pickler(f, protocol=5, buffer_callback=buffers.append)
    p.dispatch_table = {**copyreg.dispatch_table, **extra}
    p.dump(obj)
    return f.getvalue()


@contextmanager
def collecting_fds() -> Iterator[list[int]]:
    """Collect the descriptors that objects register while being pickled in this context."""
    sink: list[int] = []
    token = _FD_SINK.set(sink)
    try:
        yield sink
    finally:
        _FD_SINK.reset(token)


def register_fd(fd: int) -> int | None:
    """Called by ``__reduce__`` of fd-carrying objects; index in the frame, None if no sink."""
    sink = _FD_SINK.get()
    if sink is None:
        return None
    sink.append(fd)
    return len(sink) - 1


class PassFd:
    """Wrap a descriptor so that it travels with the frame and arrives as an int."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> Any:
        import os

        index = register_fd(os.dup(self.fd))
        if index is None:
            raise RuntimeError("a descriptor can only travel in a frame (collecting_fds)")
        return (received_fd, (index,))


def received_fd(index: int) -> int:
    """The descriptor number ``index`` of the frame being unpickled."""
    source = _FD_SOURCE.get()
    if source is None or index >= len(source):
        raise RuntimeError("a file descriptor was expected with this message but none arrived")
    return source[index]


def _by_value_dumps(obj: Any, buffers: list[pickle.PickleBuffer]) -> bytes:
    from .._config import config

    if config.serializer == "cloudpickle":
        import cloudpickle

        f = io.BytesIO()
        cp = cloudpickle.Pickler(f, protocol=5, buffer_callback=buffers.append)
        extra = _EXTRA_REDUCERS.get()
        if extra:
            cp.dispatch_table = {**cp.dispatch_table, **extra}
        cp.dump(obj)
        return f.getvalue()
    f = io.BytesIO()
    p = _dill_pickler_class()(
        f, protocol=5, buffer_callback=buffers.append, recurse=True, byref=False
    )
    extra = _EXTRA_REDUCERS.get()
    if extra:
        p.dispatch_table = {**copyreg.dispatch_table, **extra}
    p.dump(obj)
    return f.getvalue()


_REFUSED_HINTS = {
    "lock": "a lock cannot be shared with another process (it would silently become a new, "
    "unrelated lock); create it in __prerun__, or keep shared state in a Share",
    "file": "an open file cannot follow the process (reopening could truncate or duplicate "
    "it); pass the path and open the file in __prerun__",
}


def _refused_types() -> dict[type, str]:
    import _thread
    import threading

    table: dict[type, str] = {
        _thread.LockType: "lock",
        type(threading.RLock()): "lock",
        threading.Condition: "lock",
        threading.Semaphore: "lock",
        threading.BoundedSemaphore: "lock",
        threading.Event: "lock",
    }
    for cls in (
        io.TextIOWrapper,
        io.BufferedReader,
        io.BufferedWriter,
        io.BufferedRandom,
        io.FileIO,
    ):
        table[cls] = "file"
    return table


_dill_cls: Any = None


def _dill_pickler_class() -> Any:
    """dill's Pickler, minus its habit of rebuilding locks and reopening files."""
    global _dill_cls
    if _dill_cls is None:
        import dill

        def refuse(kind: str) -> Any:
            def save(pickler: Any, obj: Any) -> None:
                raise TypeError(f"cannot pickle '{type(obj).__qualname__}': {_REFUSED_HINTS[kind]}")

            return save

        dispatch = dict(dill.Pickler.dispatch)
        for cls, kind in _refused_types().items():
            dispatch[cls] = refuse(kind)
        _dill_cls = type("_SkDillPickler", (dill.Pickler,), {"dispatch": dispatch})
    return _dill_cls


def warm_up() -> None:
    """Import the by-value serializer now (dill takes ~80 ms to import), so that the first
    ``start()`` of a class defined in ``__main__`` does not pay for it."""
    from .._config import config

    if config.serializer == "cloudpickle":
        import cloudpickle  # noqa: F401
    else:
        _dill_pickler_class()


def dumps(obj: Any, *, what: str = "object") -> Dumped:
    """Serialize ``obj``; returns the pickle and its out-of-band buffers.

    Raises :class:`ShippingError` naming the attribute that cannot travel.
    """
    if type(obj) is bytes and len(obj) >= OOB_MIN:
        obj = _OobBytes(obj)
    buffers: list[pickle.PickleBuffer] = []
    try:
        if _EXTRA_REDUCERS.get() is None:
            data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
        else:
            data = _plain_dumps(obj, buffers)
        if len(data) >= OOB_MIN and not buffers and type(obj) in (tuple, list):
            # big bytes inside a small container (a Share request, a result tuple): send
            # them out of band too (only paid by large pickles)
            wire = oob_items(list(obj))
            if any(x is not y for x, y in zip(wire, obj, strict=True)):
                return dumps(wire if type(obj) is list else tuple(wire), what=what)
        if _MAIN_MARK not in data:
            return data, buffers
    except ShippingError:
        raise
    except Exception as exc:
        if _is_endpoint_error(exc):
            raise
    buffers = []
    try:
        return _by_value_dumps(obj, buffers), buffers
    except ShippingError:
        raise
    except Exception as exc:
        if _is_endpoint_error(exc):
            raise
        raise explain_unshippable(obj, what, exc) from exc


OOB_MIN = 1 << 18  # bytes objects from this size travel out of band (no copy into the pickle)


class _OobBytes:
    """Pickles a large ``bytes`` as an out-of-band buffer; it unpickles as ``bytes`` again.

    Protocol 5 sends numpy arrays and bytearrays out of band by itself, but copies ``bytes``
    into the pickle stream (and the check for ``__main__`` would then scan all of it)."""

    __slots__ = ("b",)

    def __init__(self, b: bytes) -> None:
        self.b = b

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (bytes, (pickle.PickleBuffer(self.b) if protocol >= 5 else self.b,))


def oob_items(items: list[Any]) -> list[Any]:
    """``items`` with each large ``bytes`` (also inside a tuple) marked to go out of band."""
    out = items
    for k, item in enumerate(items):
        t = type(item)
        if t is bytes:
            if len(item) < OOB_MIN:
                continue
            new: Any = _OobBytes(item)
        elif t is tuple and any(type(x) is bytes and len(x) >= OOB_MIN for x in item):
            new = tuple(_OobBytes(x) if type(x) is bytes and len(x) >= OOB_MIN else x for x in item)
        else:
            continue
        if out is items:
            out = list(items)
        out[k] = new
    return out


def dumps_with_fds(obj: Any, what: str) -> tuple[bytes, list[pickle.PickleBuffer], list[int]]:
    """:func:`dumps` inside :func:`collecting_fds`, for message paths (tell, pipes, Share):
    returns the pickle, its buffers and the descriptors to send with them."""
    if type(obj) is bytes and len(obj) >= OOB_MIN:
        obj = _OobBytes(obj)
    sink: list[int] = []
    token = _FD_SINK.set(sink)
    try:
        if _EXTRA_REDUCERS.get() is None:  # the usual message: plain data, one pickle call
            buffers: list[pickle.PickleBuffer] = []
            try:
                data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
            except Exception:
                data = b""  # let dumps() find the way (by value) or explain the failure
            if data and _MAIN_MARK not in data:
                return data, buffers, sink
            del sink[:]
        data, buffers = dumps(obj, what=what)
    finally:
        _FD_SINK.reset(token)
    return data, buffers, sink


def dumps_bytes(obj: Any, *, what: str = "object") -> bytes:
    """Like :func:`dumps` but in-band (for small control payloads)."""
    data, buffers = dumps(obj, what=what)
    if not buffers:
        return data
    return pickle.dumps(pickle.loads(data, buffers=buffers), protocol=5)


def loads(data: Any, buffers: list[memoryview] | None = None, fds: list[int] | None = None) -> Any:
    """Inverse of :func:`dumps` (pickle can read what dill and cloudpickle wrote)."""
    if fds:
        token = _FD_SOURCE.set(fds)
        try:
            return pickle.loads(data, buffers=buffers or ())
        finally:
            _FD_SOURCE.reset(token)
    return pickle.loads(data, buffers=buffers or ())


def _is_endpoint_error(exc: BaseException) -> bool:
    from ._errors import PipeEndpointError

    return isinstance(exc, PipeEndpointError)


_HINT = (
    "Hint: decorate the Skprocess class with @autoreconnect for database connections, "
    "or create the object in __prerun__ (it runs in the child) instead of __init__."
)


def _try(obj: Any) -> BaseException | None:
    try:
        _by_value_dumps(obj, [])
    except Exception as exc:
        return exc
    return None


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in list(obj.items())[:1000]:
            yield f"[{k!r}]", v
    elif isinstance(obj, list | tuple | set | frozenset):
        for i, v in enumerate(list(obj)[:1000]):
            yield f"[{i}]", v
    else:
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict):
            for k, v in state.items():
                if k.startswith("_sk_"):
                    continue
                yield f".{k}", v


def explain_unshippable(obj: Any, what: str, error: BaseException) -> ShippingError:
    """Find the deepest attribute of ``obj`` that cannot be serialized and describe it."""
    path = what
    cur = obj
    cause: BaseException = error
    for _ in range(20):
        for suffix, child in _children(cur):
            exc = _try(child)
            if exc is not None:
                path += suffix
                cur = child
                cause = exc
                break
        else:
            break
    tname = f"{type(cur).__module__}.{type(cur).__qualname__}"
    if tname.startswith("builtins."):
        tname = tname[len("builtins.") :]
    hint = _HINT if not any(h in str(cause) for h in _REFUSED_HINTS.values()) else ""
    msg = f"cannot ship {path} ({tname}) to another process: {cause}. {hint}".rstrip()
    return ShippingError(msg, path=path, type_name=tname)
