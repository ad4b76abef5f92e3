"""Handles: live references to places in a Share (``share.counter``, ``share.d["k"]``).

A read whose value is mutable gives a :class:`Proxy`; everything done through it runs on the
server (see its docstring and docs/concepts). ``access`` turns what the oracle (``_oracle``) says
an attribute is for into the right object: a value or handle (a read), a lazy path (a chained
use), a marker for ``+=`` (one atomic in-place request), or a call sent without waiting.
"""

from __future__ import annotations

from sys import _getframe
from typing import Any

from .._engine import _barriers
from .._errors import ShareError
from ._link import Link, link_for, server_for
from ._oracle import usage
from ._protocol import BINARY_OPS, REFLECTED_OPS, UNARY_OPS, Item, Ref
from ._state import REF as _REF


class AugOp:
    __slots__ = ("nowait", "op", "operand")

    def __init__(self, op: str, operand: Any, nowait: bool) -> None:
        self.op = op
        self.operand = operand
        self.nowait = nowait  # nobody waits for the answer (see _barriers)


def _make_aug(op: str) -> Any:
    def method(self: _AugTarget, other: Any) -> AugOp:
        return AugOp(op, other, self.nowait)

    return method


class _AugTarget:
    """Stands for ``share.x`` inside ``share.x += y``; its in-place methods return the op."""

    __slots__ = ("nowait",)

    def __init__(self, nowait: bool) -> None:
        self.nowait = nowait


_INPLACE_OPS = [
    "iadd",
    "isub",
    "imul",
    "itruediv",
    "ifloordiv",
    "imod",
    "ipow",
    "ilshift",
    "irshift",
    "iand",
    "ior",
    "ixor",
    "imatmul",
]
for _op in _INPLACE_OPS:
    setattr(_AugTarget, f"__{_op}__", _make_aug(_op))

_AUG = _AugTarget(False)
_AUG_NOWAIT = _AugTarget(True)
# what ``share.d[k]`` is for -> how the path to the item is used
_ITEM_PATHS = {"chain": "", "item": "", "augitem": "augitem", "augitem-discard": "augitem-discard"}


def _aug_marker() -> _AugTarget:
    """The stand-in for ``share.x`` in ``share.x += y`` where the oracle said nobody can catch
    its error: its answer is not waited for in the thread that may pipeline."""
    return _AUG_NOWAIT if _barriers.may_defer() else _AUG


def send_aug(link: Link, op: str, path: tuple[Any, ...], args: tuple[Any, ...], aug: AugOp) -> None:
    if aug.nowait:
        link.send_async(op, path, args, depth=3)  # the user's line is above our caller
    else:
        link.request(op, path, args)


def access(link: Link, path: tuple[Any, ...], how: str) -> Any:
    if how == "value":
        return read(link, path)
    if how == "aug":
        return _AUG
    if how == "aug-discard":
        return _aug_marker()
    if how == "augitem" or how == "augitem-discard":
        return Proxy(link, path, how)
    if how == "method-discard" and _barriers.may_defer():
        return Proxy(link, path, how)
    return Proxy(link, path)


def read(link: Link, path: tuple[Any, ...]) -> Any:
    """Read ``path``: a value when immutable, else a live handle to it."""
    value = link.request("get", path)
    return Proxy(link, path) if value is _REF else value


def rebuild_handle(path: str, key: bytes, host: str | None, where: tuple[Any, ...]) -> Any:
    """Rebuild a shipped handle: in its own server, the object itself; elsewhere a handle on
    this process's connection to that server."""
    srv = server_for(path)
    if srv is not None:
        return srv.walk(where)
    return Proxy(link_for(path, key, host), where)


def _binop(name: str) -> Any:
    def method(self: Proxy, other: Any) -> Any:
        return self._link.request("op", self._path, (name, other))

    method.__name__ = f"__{name.rstrip('_')}__"
    return method


def _unop(name: str) -> Any:
    def method(self: Proxy) -> Any:
        return self._link.request("op", self._path, (name,))

    method.__name__ = f"__{name}__"
    return method


def _inplace(name: str) -> Any:
    def method(self: Proxy, other: Any) -> Proxy:
        self._link.request("aug", self._path, (name, other))
        return self  # the name keeps the handle; the object changed in the server

    method.__name__ = f"__{name}__"
    return method


class Proxy:
    """A live handle to a place in the Share (``share.counter``, ``share.d["k"]``).

    Everything done through it runs on the server, each operation atomic: attribute reads
    and writes, method calls, items, ``len``, ``in``, iteration, operators. Reads give values
    when immutable and handles when mutable, so a handle can be aliased, passed to helpers,
    threads and other processes (it pickles as a handle) and no write is lost. A handle names
    a *place*: after ``share.counter = Counter()`` it reaches the new object.
    ``copy.copy(handle)`` / ``copy.deepcopy(handle)`` give a detached local copy.

    ``_how`` is what the oracle said this path is for, when that changes how it is used: a
    subscript in an in-place assignment (``augitem``/``augitem-discard``), or a method call
    whose value nobody uses (``method-discard``: sent without waiting for its answer)."""

    __slots__ = ("_cls", "_how", "_link", "_path")

    def __init__(self, link: Link, path: tuple[Any, ...], how: str = "") -> None:
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_how", how)
        object.__setattr__(self, "_cls", None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("__", "_repr_", "_ipython", "_sk_")):
            raise AttributeError(name)
        return access(self._link, (*self._path, name), usage(_getframe(1)))

    # Operations that can fail on the server (a method raising, a missing key, a property
    # without a setter) wait for their answer, so that the error is raised on their own line.
    def __setattr__(self, name: str, value: Any) -> None:
        if type(value) is AugOp:
            send_aug(self._link, "aug", (*self._path, name), (value.op, value.operand), value)
        else:
            self._link.request("set", (*self._path, name), (value,))

    def __delattr__(self, name: str) -> None:
        self._link.request("del", (*self._path, name))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._how == "method-discard":
            self._link.send_async("callx", self._path, (args, kwargs))
            return None
        return self._link.request("call", self._path, (args, kwargs))

    def __getitem__(self, key: Any) -> Any:
        how = self._how
        if how == "augitem":
            return _AUG
        if how == "augitem-discard":
            return _aug_marker()
        how = usage(_getframe(1))
        if how == "augsub":  # ``handle[k] += y``
            return _AUG
        if how == "augsub-discard":
            return _aug_marker()
        if how in _ITEM_PATHS:  # share.d[k].m(), share.d[k][j] = v, share.d[k][j] += v, ...
            return Proxy(self._link, (*self._path, Item(key)), _ITEM_PATHS[how])
        value = self._link.request("getitem", self._path, (key,))
        return Proxy(self._link, (*self._path, Item(key))) if value is _REF else value

    def __setitem__(self, key: Any, value: Any) -> None:
        if type(value) is AugOp:
            send_aug(self._link, "augitem", self._path, (key, value.op, value.operand), value)
        else:
            self._link.request("setitem", self._path, (key, value))

    def __delitem__(self, key: Any) -> None:
        self._link.request("delitem", self._path, (key,))

    def __len__(self) -> int:
        n: int = self._link.request("len", self._path)
        return n

    def __iter__(self) -> Any:
        link, path = self._link, self._path
        items = link.request("iter", path)
        return iter([Proxy(link, (*path, Item(x.index))) if type(x) is Ref else x for x in items])

    def __reversed__(self) -> Any:
        return reversed(list(self))

    def __contains__(self, item: Any) -> bool:
        return bool(self._link.request("contains", self._path, (item,)))

    def __bool__(self) -> bool:
        return bool(self._link.request("op", self._path, ("truth",)))

    def __repr__(self) -> str:
        return str(self._link.request("repr", self._path))

    def __str__(self) -> str:
        return str(self._link.request("str", self._path))

    def __format__(self, spec: str) -> str:
        return str(self._link.request("op", self._path, ("format", spec)))

    def __hash__(self) -> int:
        return int(self._link.request("op", self._path, ("hash",)))

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(handle, Counter) is True
        cls = self._cls
        if cls is None:
            cls = self._link.request("type", self._path)
            object.__setattr__(self, "_cls", cls)
        return cls

    def __copy__(self) -> Any:
        """A detached copy: a local object that no longer follows the Share."""
        return self._link.request("copy", self._path)

    def __deepcopy__(self, memo: Any) -> Any:
        return self._link.request("copy", self._path)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy

        return numpy.asarray(self._link.request("copy", self._path), dtype=dtype)

    def __reduce__(self) -> Any:
        link = self._link
        if link.kept is not None:
            raise ShareError(
                "a handle of a stopped Share cannot be sent to another process; call "
                "share.start() first"
            )
        link.settle()  # the receiving process must see what this one wrote
        return (rebuild_handle, (link.path, link.key, link.host, self._path))


for _name in BINARY_OPS + REFLECTED_OPS:
    setattr(Proxy, f"__{_name.rstrip('_')}__", _binop(_name))
for _name in UNARY_OPS:
    setattr(Proxy, f"__{_name}__", _unop(_name))
for _op in _INPLACE_OPS:
    setattr(Proxy, f"__{_op}__", _inplace(_op))
