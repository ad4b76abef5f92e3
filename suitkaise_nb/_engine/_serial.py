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
import types
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .._errors import ShippingError

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


def collecting() -> bool:
    """True while an object is pickled for one of our frames (descriptors can travel)."""
    return _FD_SINK.get() is not None


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


def _by_value_dumps(obj: Any, buffers: list[pickle.PickleBuffer], strict: bool = False) -> bytes:
    from .._config import config

    if config.serializer == "cloudpickle":
        import cloudpickle

        f = io.BytesIO()
        cp = cloudpickle.Pickler(f, protocol=5, buffer_callback=buffers.append)
        table = {**cp.dispatch_table}
        if not strict:
            table.update(_fresh_reducers())
        extra = _EXTRA_REDUCERS.get()
        if extra:
            table.update(extra)
        cp.dispatch_table = table
        cp.dump(obj)
        return f.getvalue()
    f = io.BytesIO()
    p = _dill_pickler_class(strict)(
        f, protocol=5, buffer_callback=buffers.append, recurse=True, byref=False
    )
    extra = _EXTRA_REDUCERS.get()
    if extra:
        p.dispatch_table = {**copyreg.dispatch_table, **extra}
    p.dump(obj)
    return f.getvalue()


_REFUSED_HINTS = {
    "lock": "a lock cannot be shared with another process (it would silently become a new, "
    "unrelated lock); keep it out of the Share, and share the state it guards instead",
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


def _fresh_reducers() -> dict[type, Any]:
    """Threading primitives held by a process or a pool item arrive in the child as fresh
    objects of the same type, unlocked and empty (as suitkaise ships them): a lock guards
    the child's own threads. (A Share refuses them: see ``strict``.)"""
    import _thread
    import queue
    import threading

    def fresh(factory: Any, *args: Any) -> Any:
        return lambda obj: (factory, tuple(a(obj) if callable(a) else a for a in args))

    table: dict[type, Any] = {
        _thread.LockType: fresh(threading.Lock),
        type(threading.RLock()): fresh(threading.RLock),
        threading.Condition: fresh(threading.Condition),
        threading.Event: fresh(threading.Event),
        threading.Semaphore: fresh(threading.Semaphore, lambda o: getattr(o, "_value", 1)),
        threading.BoundedSemaphore: fresh(
            threading.BoundedSemaphore, lambda o: getattr(o, "_initial_value", 1)
        ),
    }
    for q in (queue.Queue, queue.LifoQueue, queue.PriorityQueue):
        table[q] = fresh(q, lambda o: o.maxsize)
    return table


_dill_cls: dict[bool, Any] = {}


def _code_globals(func: Any, recurse: bool = True) -> list[str]:
    """The global names ``func``'s code (and every code object nested in it) refers to.

    Same answer as ``dill.detect.nestedglobals``, which finds them by swapping the
    process-wide ``sys.stdout`` for a ``StringIO`` and parsing ``dis.dis`` output: text that
    another thread prints meanwhile (the cell printing while ``.background()`` ships its
    class) lands in that ``StringIO`` and is lost. ``dis.dis`` disassembles nested code
    objects whatever ``recurse`` says, so this walks them all too.
    """
    import dis

    from dill.detect import code as code_of

    first = code_of(func)
    if first is None:
        return []
    names: set[str] = set()
    todo = [first]
    while todo:
        co = todo.pop()
        for ins in dis.get_instructions(co):
            if "_GLOBAL" in ins.opname and isinstance(ins.argval, str):
                names.add(ins.argval)
        todo.extend(c for c in co.co_consts if isinstance(c, types.CodeType))
    return list(names)


def _quiet_dill_globals() -> None:
    """Make dill find a function's globals without touching ``sys.stdout`` (see above)."""
    import dill.detect

    dill.detect.nestedglobals = _code_globals


def _dill_pickler_class(strict: bool = False) -> Any:
    """dill's Pickler, minus its habit of reopening files, and with threading primitives
    shipped fresh (``strict``: refused, for a Share: a copied lock guards nothing)."""
    found = _dill_cls.get(strict)
    if found is None:
        import dill

        def refuse(kind: str) -> Any:
            def save(pickler: Any, obj: Any) -> None:
                raise TypeError(f"cannot pickle '{type(obj).__qualname__}': {_REFUSED_HINTS[kind]}")

            return save

        def rebuild(reducer: Any) -> Any:
            def save(pickler: Any, obj: Any) -> None:
                pickler.save_reduce(*reducer(obj), obj=obj)

            return save

        _quiet_dill_globals()
        dispatch = dict(dill.Pickler.dispatch)
        for cls, kind in _refused_types().items():
            if strict or kind != "lock":
                dispatch[cls] = refuse(kind)
        if not strict:
            for cls, reducer in _fresh_reducers().items():
                dispatch[cls] = rebuild(reducer)
        found = _dill_cls[strict] = type("_SkDillPickler", (dill.Pickler,), {"dispatch": dispatch})
    return found


def warm_up() -> None:
    """Import the by-value serializer now (dill takes ~80 ms to import), so that the first
    ``start()`` of a class defined in ``__main__`` does not pay for it."""
    from .._config import config

    if config.serializer == "cloudpickle":
        import cloudpickle  # noqa: F401
    else:
        _dill_pickler_class()


def dumps(
    obj: Any, *, what: str = "object", hint: str | None = None, strict: bool = False
) -> Dumped:
    """Serialize ``obj``; returns the pickle and its out-of-band buffers.

    Raises :class:`ShippingError` naming the attribute that cannot travel (with ``hint``, or
    the hint for process attributes). Threading primitives travel as fresh objects, unless
    ``strict`` (a Share's values), which refuses them.
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
                return dumps(
                    wire if type(obj) is list else tuple(wire), what=what, hint=hint, strict=strict
                )
        if _MAIN_MARK not in data:
            return data, buffers
    except ShippingError:
        raise
    except Exception as exc:
        if _is_endpoint_error(exc):
            raise
    buffers = []
    try:
        return _by_value_dumps(obj, buffers, strict), buffers
    except ShippingError:
        raise
    except Exception as exc:
        if _is_endpoint_error(exc):
            raise
        raise explain_unshippable(obj, what, exc, hint, strict) from exc


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


def dumps_with_fds(
    obj: Any, what: str, strict: bool = False
) -> tuple[bytes, list[pickle.PickleBuffer], list[int]]:
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
        data, buffers = dumps(obj, what=what, strict=strict)
    finally:
        _FD_SINK.reset(token)
    return data, buffers, sink


def dumps_bytes(obj: Any, *, what: str = "object") -> bytes:
    """Like :func:`dumps` but in-band (for small control payloads)."""
    data, buffers = dumps(obj, what=what)
    if not buffers:
        return data
    return pickle.dumps(pickle.loads(data, buffers=buffers), protocol=5)


# -- functions shipped again and again (every Pool call ships its callable) ------------------

_ATOMS = (int, float, complex, str, bytes, bool, type(None), range, type(...))
_fn_blobs: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], bytes]] = (
    weakref.WeakKeyDictionary()
)
_code_names: dict[types.CodeType, tuple[str, ...]] = {}


def dumps_function(fn: Any, *, what: str = "object") -> bytes:
    """:func:`dumps_bytes` for a callable, reusing the last pickle of the same function when
    nothing it would capture can have changed.

    A function typed into a notebook cell travels by value: dill pickles its code and the
    globals, closure cells and defaults it uses, ~0.5 ms for a one-line function, paid by
    every Pool call. The pickle is kept (per function object, weakly) with the exact objects
    it captured; it is reused when the function still refers to the same objects (``is``),
    and only when all of them are immutable values, modules, importable functions or classes,
    or such functions themselves. A list, a dict, an instance, anything that could be mutated
    in place, or a rebound global means a fresh pickle."""
    from .._config import config

    if type(fn) is not types.FunctionType or _EXTRA_REDUCERS.get() is not None:
        return dumps_bytes(fn, what=what)
    captured: list[Any] = [config.serializer]
    if not _capture(fn, captured, 0):
        return dumps_bytes(fn, what=what)
    key = tuple(captured)
    found = _fn_blobs.get(fn)
    if (
        found is not None
        and len(found[0]) == len(key)
        and all(a is b for a, b in zip(found[0], key, strict=True))
    ):
        return found[1]
    blob = dumps_bytes(fn, what=what)
    _fn_blobs[fn] = (key, blob)
    return blob


def _capture(fn: types.FunctionType, out: list[Any], depth: int) -> bool:
    """Append what pickling ``fn`` by value reads; False when one of them could change."""
    if depth > 3 or fn.__dict__:
        return False
    code = fn.__code__
    out += (code, fn.__name__, fn.__qualname__, fn.__module__)
    values: list[Any] = list(fn.__defaults__ or ())
    values += (fn.__kwdefaults__ or {}).values()
    for cell in fn.__closure__ or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:  # an empty cell (a name assigned later)
            return False
    g = fn.__globals__
    for name in _names(code):
        v = g.get(name, _capture)  # _capture: "not a global" (a builtin, an attribute name)
        out.append(name)
        out.append(v)
        if v is not _capture:
            values.append(v)
    for v in values:
        out.append(v)
        if not _stable(v, out, depth):
            return False
    return True


def _stable(v: Any, out: list[Any], depth: int) -> bool:
    t = type(v)
    if t in _ATOMS:
        return True
    if t is tuple or t is frozenset:
        return len(v) <= 64 and all(_stable(x, out, depth) for x in v)
    if t is types.ModuleType:
        return bool(v.__name__ != "__main__")
    if t is types.BuiltinFunctionType:
        return True
    module = getattr(v, "__module__", None)
    if t is types.FunctionType:
        if module != "__main__" and "<locals>" not in v.__qualname__:
            return True  # pickled by reference (importable)
        return _capture(v, out, depth + 1)
    if isinstance(v, type):
        return module not in (None, "__main__") and "<locals>" not in v.__qualname__
    return False


def _names(code: types.CodeType) -> tuple[str, ...]:
    """The global names ``code`` (and the code nested in it) may read."""
    found = _code_names.get(code)
    if found is None:
        names: list[str] = []
        stack = [code]
        while stack:
            c = stack.pop()
            names += c.co_names
            stack += (k for k in c.co_consts if type(k) is types.CodeType)
        found = tuple(dict.fromkeys(names))
        if len(_code_names) > 4096:
            _code_names.clear()
        _code_names[code] = found
    return found


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
    from .._errors import PipeEndpointError

    return isinstance(exc, PipeEndpointError)


_HINT = (
    "Hint: decorate the Skprocess class with @autoreconnect for database connections, "
    "or create the object in __prerun__ (it runs in the child) instead of __init__."
)


def _try(obj: Any, strict: bool = False) -> BaseException | None:
    try:
        _by_value_dumps(obj, [], strict)
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


def explain_unshippable(
    obj: Any, what: str, error: BaseException, hint: str | None = None, strict: bool = False
) -> ShippingError:
    """Find the deepest attribute of ``obj`` that cannot be serialized and describe it
    (``hint``: what to do about it, when the hint for process attributes does not apply)."""
    path = what
    cur = obj
    cause: BaseException = error
    for _ in range(20):
        for suffix, child in _children(cur):
            exc = _try(child, strict)
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
    if any(h in str(cause) for h in _REFUSED_HINTS.values()):
        hint = ""  # the cause says it already
    elif hint is None:
        hint = _HINT
    msg = f"cannot ship {path} ({tname}) to another process: {cause}. {hint}".rstrip()
    return ShippingError(msg, path=path, type_name=tname)
