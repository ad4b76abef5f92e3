"""``Share``: attribute-style shared state, one consistent copy in a server process.

::

    share = Share()                 # starts the server (a child, the safe way)
    share.counter = Counter()       # the object now lives in the server
    share.counter.increment()       # runs there, atomically
    share.count += 1                # one atomic in-place operation, not a read and a write
    share.counter.value             # a read returns a value (a copy)
    pool.map(Worker, [share] * 4)   # a Share travels to children as a client that connects
                                    # (HMAC-authenticated, AF_UNIX) on first use

How an access is turned into one operation is explained in ``_oracle``. The owner (the
process that created the Share) can ``stop()`` it — the state is kept and comes back with
``start()`` — ``exit()`` it (state dropped), ``clear()`` it, and use it as a context manager.
"""

from __future__ import annotations

import atexit
import os
import pickle
import shutil
import socket
import stat
import tempfile
import threading
import time
import warnings
import weakref
from collections import deque
from sys import _getframe
from typing import Any

from .. import _errors as _remote
from .. import _events
from .._engine import _barriers, _serial
from .._engine._launcher import Launcher, Spare, track, untrack
from .._engine._model import _ids
from .._engine._wire import AsyncConn, BlockingConn, Frame
from .._errors import RemoteTraceback, ShareError, ShareValueError, ShippingError
from .._modifiers import check_timeout
from ._oracle import inplace_symbol, protected, usage
from ._protocol import (
    BINARY_OPS,
    K_ERR,
    K_EXIT,
    K_OK,
    K_READY,
    K_REF,
    K_REQ,
    K_RESUME,
    K_SNAPSHOT,
    K_STATE,
    K_STATE_ERR,
    K_STATS,
    REFLECTED_OPS,
    UNARY_OPS,
    HandshakeError,
    Item,
    Ref,
    client_handshake,
)
from ._state import REF as _REF
from ._state import State


class ShareModel:
    """What a Share view shows (updated by the hub thread)."""

    def __init__(self) -> None:
        self.id = next(_ids)
        self.name = "Share"
        self.state = "created"  # created, running, stopped, exited, failed
        self.names: list[str] = []
        self.reprs: dict[str, tuple[str, str]] = {}
        self.ops = 0
        self.per_client: dict[int, int] = {}
        self.changed_at: dict[str, float] = {}
        self.started = time.monotonic()
        self.handle_ref: Any = None
        self.rate = 0.0
        self.last_sample = (time.monotonic(), 0)  # (when, ops) of the last statistics


# -- the connection a process uses to talk to the server -----------------------------------------

#: In the server process, the running server: a Share handle held by a shared object and used
#: inside one of its methods runs its operations in place (a request to the server it is
#: already inside would wait for itself forever).
_in_server: Any = None


def serving_here(server: Any) -> None:
    """Called by the server process once: handles used inside it run in place."""
    global _in_server
    _in_server = server


_GONE = (
    "the Share server is gone (stopped, or it died); in the process that created it, "
    "share.start() starts it again"
)
_SHARE_HINT = (
    "A Share keeps its values in its server process: store data and objects that can be "
    "pickled, and create sockets, locks and connections in the process that uses them."
)


def check_socket_path(path: str) -> None:
    """Refuse a socket whose directory is not a private (0700) directory of this user, or
    that is not a socket of this user: someone else may have put it there. Raises
    FileNotFoundError when the socket is not there."""
    d = os.path.dirname(path)
    st = os.lstat(d)
    uid = os.geteuid()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise ShareError(
            f"refusing to connect to the Share: its socket directory {d} is no longer a private "
            f"directory of this user (owner uid {st.st_uid}, mode {stat.filemode(st.st_mode)}); "
            "another user may have replaced it. Nothing was sent or read."
        )
    st = os.lstat(path)
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != uid:
        raise ShareError(
            f"refusing to connect to the Share: {path} is not a socket of this user "
            f"(owner uid {st.st_uid}, {stat.filemode(st.st_mode)}). Nothing was sent or read."
        )


class _Link:
    """One authenticated connection per process (shared by its threads under a lock).

    Operations whose answer nobody waits for (see ``_barriers``) are sent at once; their
    answers are read, in order, before the next request or at a barrier. Their errors are
    kept in ``errors`` (never raised by an unrelated operation) until the engine takes them
    at the end of the unit of work that sent them, or ``share.sync()`` raises them."""

    def __init__(self, path: str, key: bytes, host: str | None = None) -> None:
        self.path = path
        self.key = key
        self.host = socket.gethostname() if host is None else host  # where the server runs
        self.lock = threading.Lock()
        self.conn: BlockingConn | None = None
        self.pid = 0
        self.broken: str | None = None
        self.unacked = 0  # pipelined requests whose answers were not read yet
        # what each one was, and where: (op, path, inplace op, file, line, unit of work)
        self.sites: deque[tuple[str, tuple[Any, ...], str, str, int, Any]] = deque()
        self.errors: list[_barriers.Deferred] = []
        # in the owner, while its Share is stopped: the state it keeps (handles act on it)
        self.kept: State | None = None

    def _connect(self) -> BlockingConn:
        try:
            check_socket_path(self.path)
        except OSError as exc:
            raise ShareError(self._unreachable(exc)) from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise ShareError(self._unreachable(exc)) from None
        try:
            client_handshake(sock, self.key)
        except HandshakeError as exc:
            sock.close()
            raise ShareError(
                f"the handshake with the Share server at {self.path} failed: {exc} (the server "
                "refused this client's key, or the peer is not the Share's server). No request "
                "was sent and nothing was unpickled."
            ) from None
        return BlockingConn(sock)

    def _unreachable(self, exc: OSError) -> str:
        here = socket.gethostname()
        limit = (
            "A Share is reached through a local (AF_UNIX) socket, so only processes on the "
            "machine that created it can use it: not, for example, the workers of a Dask "
            "cluster on other machines (a LocalCluster on the same machine works). There, "
            "return values from the items and combine them where the Share lives."
        )
        if self.host != here:
            return (
                f"cannot reach the Share server: this Share lives on machine {self.host!r} and "
                f"this process runs on {here!r}. {limit}"
            )
        if isinstance(exc, FileNotFoundError):
            return (
                f"cannot reach the Share server: its socket {self.path} does not exist here. "
                "Either the Share was stopped or exited (the process that created it must call "
                "share.start()), or this process runs on another machine than the one that "
                f"created the Share. {limit}"
            )
        return (
            f"cannot reach the Share server ({exc}); is the Share running? "
            "(the process that created it must call share.start())"
        )

    def _live_conn(self) -> BlockingConn:
        if self.broken:
            raise ShareError(self.broken)
        if self.conn is None or self.pid != os.getpid():
            if self.pid != os.getpid():  # a forked copy: the parent's answers are not ours
                self.unacked = 0
                self.sites.clear()
                self.errors = []
            self.conn = self._connect()
            self.pid = os.getpid()
        return self.conn

    def _lost(self) -> None:
        """The connection broke: the writes still unconfirmed are reported, not forgotten."""
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        if self.unacked:
            sites = list(self.sites)
            err = ShareError(
                f"{self.unacked} Share operation(s) sent without waiting were never confirmed: "
                "the server stopped or died before it answered, so they may not have been applied"
            )
            if sites:
                err.add_note(_site_note(*sites[0]))
            self.errors.append((err, sites[0][5] if sites else None))
        self.unacked = 0
        self.sites.clear()

    def _drain_locked(self) -> None:
        """Read the answers of pipelined requests; their errors are kept (``errors``)."""
        conn = self.conn
        sites = self.sites
        try:
            while self.unacked and conn is not None:
                f = conn.recv()
                self.unacked -= 1
                site = sites.popleft() if sites else None
                if f is not None and f.kind == K_ERR:
                    err = _server_error(pickle.loads(f.main))
                    if site is not None:
                        err.add_note(_site_note(*site))
                    self.errors.append((err, site[5] if site is not None else None))
        except (EOFError, OSError):
            self._lost()
        except BaseException:  # interrupted while reading: the rest can no longer be matched
            self._lost()
            raise

    def settle(self) -> None:
        """Wait until every pipelined write of this process is applied (errors are kept)."""
        if self.unacked and self.pid == os.getpid():
            with self.lock:
                self._drain_locked()

    def settled(self) -> bool:
        return self.pid != os.getpid() or not (self.unacked or self.errors)

    def take_errors(self) -> list[_barriers.Deferred]:
        if self.pid != os.getpid():
            return []  # a copy made by fork: the parent's answers are not ours
        self.settle()
        if not self.errors:
            return []
        with self.lock:
            errors, self.errors = self.errors, []
        return errors

    def send_async(
        self, op: str, path: tuple[Any, ...], args: tuple[Any, ...] = (), depth: int = 2
    ) -> None:
        """An operation whose value nobody needs: sent now, its answer read later (in order),
        at the next request or barrier (see ``_barriers``)."""
        if _in_server is not None or self.kept is not None:
            here = self._here()
            if here is not None:
                here.local(op, path, args)
                return
        try:
            data, bufs = _serial.dumps((op, path, args), what="the value sent to the Share")
        except ShippingError as exc:
            raise _named(exc, op, path, args) from exc.__cause__
        caller = _getframe(depth)  # the user's line (``depth`` frames up)
        inplace = args[-2] if op in ("aug", "augitem") else ""
        unit = _barriers.current_unit
        site = (
            op,
            path,
            inplace,
            caller.f_code.co_filename,
            caller.f_lineno,
            unit() if unit is not None else None,
        )
        with self.lock:
            self._send_locked(data, bufs)
            self.unacked += 1
            self.sites.append(site)
            if self.unacked >= _MAX_UNACKED:
                self._drain_locked()
        _barriers.pending.add(self)

    def _send_locked(self, data: bytes, bufs: list[Any]) -> BlockingConn:
        """Send one request; a connection found closed before anything was sent (the server
        was restarted) is opened again once."""
        for attempt in (0, 1):
            conn = self._live_conn()
            try:
                conn.send(K_REQ, data, bufs)
                return conn
            except (BrokenPipeError, ConnectionResetError):
                self._lost()
                if attempt:
                    raise ShareError(_GONE) from None
            except OSError:
                self._lost()
                raise ShareError(_GONE) from None
        raise ShareError(_GONE)  # pragma: no cover (the loop returns or raises)

    def request(self, op: str, path: tuple[Any, ...], args: tuple[Any, ...] = ()) -> Any:
        """One operation, waiting for its answer; ``_REF`` when the value is mutable."""
        if _in_server is not None or self.kept is not None:
            here = self._here()
            if here is not None:
                return here.local(op, path, args)
        try:
            data, bufs = _serial.dumps((op, path, args), what="the value sent to the Share")
        except ShippingError as exc:
            raise _named(exc, op, path, args) from exc.__cause__
        with self.lock:
            conn = self.conn
            if conn is None or self.unacked or self.pid != os.getpid():
                if self.unacked and self.pid == os.getpid():
                    self._drain_locked()
                conn = self._live_conn()
            try:
                conn.send(K_REQ, data, bufs)
            except OSError:  # a server restarted meanwhile: nothing was delivered
                conn = self._send_locked(data, bufs)
            try:
                f = conn.recv()
            except (EOFError, OSError):
                self._lost()
                raise ShareError(_GONE) from None
            except BaseException:
                # interrupted between request and answer: the answer would be read by the
                # next request; drop the connection (the server finishes the operation)
                self._lost()
                raise
        assert f is not None  # recv() without a timeout gives a frame or raises
        kind = f.kind
        if kind == K_OK:
            return _serial.loads(f.main, f.buffers, f.fds)
        if kind == K_REF:
            return _REF
        raise _server_error(pickle.loads(f.main))

    def _here(self) -> Any:
        """Where an operation runs without a connection: the server itself (a shared object's
        method using a handle of its own Share), or the owner's kept state while the Share is
        stopped; None: on the server, through the connection."""
        srv = _in_server
        if srv is not None and srv.path == self.path:
            return srv
        return self.kept

    def get(self, path: tuple[Any, ...]) -> Any:
        """Read ``path``: a value when immutable, else a live handle to it."""
        value = self.request("get", path)
        return _Proxy(self, path) if value is _REF else value

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None


_MAX_UNACKED = 512


def _where(path: tuple[Any, ...]) -> str:
    return "share" + "".join(repr([p.key]) if type(p) is Item else f".{p}" for p in path)


def _named(
    exc: ShippingError, op: str, path: tuple[Any, ...], args: tuple[Any, ...]
) -> ShareValueError:
    """A value the Share cannot keep, named by its place in the Share (not by its place in
    our request tuple)."""
    value: Any = args
    what = f"the arguments of {_where(path)}(...)"
    if op == "set":
        value, what = args[0], _where(path)
    elif op == "setitem":
        value, what = args[1], f"{_where(path)}[{args[0]!r}]"
    elif op in ("aug", "augitem"):
        value = args[-1]
        what = f"the right side of {_where(path)} {inplace_symbol(args[-2])}"
    elif op in ("call", "callx"):
        value = list(args[0]) + list(args[1].values())
    cause = exc.__cause__ or exc
    err = _serial.explain_unshippable(value, what, cause, hint=_SHARE_HINT)
    return ShareValueError(str(err), path=err.path, type_name=err.type_name)


def _site_note(
    op: str, path: tuple[Any, ...], inplace: str, filename: str, lineno: int, unit: Any = None
) -> str:
    where = _where(path)
    symbol = inplace_symbol(inplace)
    what = {"aug": f"{where} {symbol} ...", "augitem": f"{where}[...] {symbol} ..."}
    statement = what.get(op, f"{where} = ..." if op == "set" else f"{where}(...)")
    item = f" in pool item {unit}" if unit is not None else ""
    return (
        f"(raised by `{statement}` at {filename}:{lineno}{item}, which was sent without waiting "
        "for its answer; put it inside try/except to get its error on its own line)"
    )


def _server_error(payload: tuple[Any, ...]) -> BaseException:
    mod, qualname, text, tb, blob = payload
    exc: BaseException | None = None
    if blob is not None:
        try:
            exc = pickle.loads(blob)
        except Exception:
            exc = None
    if exc is None:
        exc = _remote.remote_class(RuntimeError)(f"{mod}.{qualname}: {text}")
    exc.__cause__ = RemoteTraceback(tb)
    return exc


# -- proxies -------------------------------------------------------------------------------------


class _AugOp:
    __slots__ = ("nowait", "op", "operand")

    def __init__(self, op: str, operand: Any, nowait: bool) -> None:
        self.op = op
        self.operand = operand
        self.nowait = nowait  # nobody waits for the answer (see _barriers)


def _make_aug(op: str) -> Any:
    def method(self: _AugTarget, other: Any) -> _AugOp:
        return _AugOp(op, other, self.nowait)

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


def _send_aug(
    link: _Link, op: str, path: tuple[Any, ...], args: tuple[Any, ...], aug: _AugOp
) -> None:
    if aug.nowait:
        link.send_async(op, path, args, depth=3)  # the user's line is above our caller
    else:
        link.request(op, path, args)


def _access(link: _Link, path: tuple[Any, ...], how: str) -> Any:
    if how == "value":
        return link.get(path)
    if how == "aug":
        return _AUG
    if how == "aug-discard":
        return _aug_marker()
    if how == "augitem" or how == "augitem-discard":
        return _Proxy(link, path, how)
    if how == "method-discard" and _barriers.may_defer():
        return _Proxy(link, path, how)
    return _Proxy(link, path)


def _handle(path: str, key: bytes, host: str | None, where: tuple[Any, ...]) -> Any:
    """Rebuild a shipped handle: in its own server, the object itself; elsewhere a handle on
    this process's connection to that server."""
    srv = _in_server
    if srv is not None and srv.path == path:
        return srv.walk(where)
    return _Proxy(_link_for(path, key, host), where)


def _binop(name: str) -> Any:
    def method(self: _Proxy, other: Any) -> Any:
        return self._link.request("op", self._path, (name, other))

    method.__name__ = f"__{name.rstrip('_')}__"
    return method


def _unop(name: str) -> Any:
    def method(self: _Proxy) -> Any:
        return self._link.request("op", self._path, (name,))

    method.__name__ = f"__{name}__"
    return method


def _inplace(name: str) -> Any:
    def method(self: _Proxy, other: Any) -> _Proxy:
        self._link.request("aug", self._path, (name, other))
        return self  # the name keeps the handle; the object changed in the server

    method.__name__ = f"__{name}__"
    return method


class _Proxy:
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

    def __init__(self, link: _Link, path: tuple[Any, ...], how: str = "") -> None:
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_how", how)
        object.__setattr__(self, "_cls", None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("__", "_repr_", "_ipython", "_sk_")):
            raise AttributeError(name)
        return _access(self._link, (*self._path, name), usage(_getframe(1)))

    # Operations that can fail on the server (a method raising, a missing key, a property
    # without a setter) wait for their answer, so that the error is raised on their own line.
    def __setattr__(self, name: str, value: Any) -> None:
        if type(value) is _AugOp:
            _send_aug(self._link, "aug", (*self._path, name), (value.op, value.operand), value)
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
            return _Proxy(self._link, (*self._path, Item(key)), _ITEM_PATHS[how])
        value = self._link.request("getitem", self._path, (key,))
        return _Proxy(self._link, (*self._path, Item(key))) if value is _REF else value

    def __setitem__(self, key: Any, value: Any) -> None:
        if type(value) is _AugOp:
            _send_aug(self._link, "augitem", self._path, (key, value.op, value.operand), value)
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
        return iter([_Proxy(link, (*path, Item(x.index))) if type(x) is Ref else x for x in items])

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
        return (_handle, (link.path, link.key, link.host, self._path))


for _name in BINARY_OPS + REFLECTED_OPS:
    setattr(_Proxy, f"__{_name.rstrip('_')}__", _binop(_name))
for _name in UNARY_OPS:
    setattr(_Proxy, f"__{_name}__", _unop(_name))
for _op in _INPLACE_OPS:
    setattr(_Proxy, f"__{_op}__", _inplace(_op))


# -- Share -----------------------------------------------------------------------------------------

_OWN = ("_sk",)
_MISSING = object()


class _Owner:
    """What only the creating process has: the server's lifecycle."""

    def __init__(self, share: Share) -> None:
        self.share_ref = weakref.ref(share)
        self.model = ShareModel()
        self.dir: str | None = None
        self.spare: Spare | None = None
        self.conn: AsyncConn | None = None
        self.launcher: Launcher | None = None
        self.key = os.urandom(32)  # kept across stop()/start(): children reconnect
        self.ready = threading.Event()
        self.ended = threading.Event()
        self.snapshot: dict[str, Any] = {}
        self.got_state = threading.Event()
        self.state_frame: Frame | None = None  # STATE or STATE_ERR, taken by stop()
        # the connection of this process, kept across stop()/start(): handles made from it
        # act on the kept state while the Share is stopped, and on the server again after
        self.link: _Link | None = None
        self.error: str | None = None
        self.stopping = False

    def on_frames(self, frames: list[Frame]) -> None:
        for f in frames:
            if f.kind == K_READY:
                self.ready.set()
            elif f.kind == K_STATS:
                self._stats(pickle.loads(f.main))
            elif f.kind in (K_STATE, K_STATE_ERR):
                self.state_frame = f
                self.got_state.set()

    def _stats(self, stats: dict[str, Any]) -> None:
        m = self.model
        now = time.monotonic()
        t0, n0 = m.last_sample
        if now > t0:
            m.rate = (stats["ops"] - n0) / (now - t0)
        m.last_sample = (now, stats["ops"])
        m.ops = stats["ops"]
        m.per_client = stats["per_client"]
        m.names = stats["names"]
        for name in stats["changed"]:
            m.changed_at[name] = now
        m.reprs.update(stats["reprs"])
        for gone in set(m.reprs) - set(m.names):
            m.reprs.pop(gone, None)
        _events.emit(
            "share_changed", _events.ShareChanged(m, tuple(stats["changed"]), stats["ops"])
        )

    def on_eof(self) -> None:
        pass

    def on_exit(self, code: int) -> None:
        if self.conn is not None and not self.conn.eof and self.conn.read_lock.acquire(False):
            try:
                self.conn.read_available()
            finally:
                self.conn.read_lock.release()
        if not self.stopping:
            self.error = (
                f"the Share server (pid {self.model_pid()}) died unexpectedly (exit {code}); "
                "its state is lost"
            )
            self.model.state = "failed"
            self.snapshot = {}  # a later start() begins empty, not from an older stop()
            link = self.link
            if link is not None:
                link.broken = self.error  # later calls say why at once
        if self.conn is not None and self.launcher is not None:
            self.launcher.hub.unwatch(self.conn.sock)
            self.conn.close()
        self.ready.set()
        self.got_state.set()
        self.ended.set()
        _events.emit("share_stopped", _events.ShareStopped(self.model))

    def model_pid(self) -> int | None:
        return self.spare.pid if self.spare is not None else None


class Share:
    """Shared state across processes. See the module docstring for the semantics."""

    _sk: Any

    def __init__(self, auto_start: bool = True) -> None:
        if not isinstance(auto_start, bool):
            raise TypeError(f"auto_start must be True or False, got {auto_start!r}")
        owner = _Owner(self)
        object.__setattr__(self, "_sk", _State(owner, None))
        owner.model.handle_ref = weakref.ref(self)
        # a Share dropped while running (``share = Share()`` re-run in a cell) ends its server
        weakref.finalize(self, _reap, owner, self._sk).atexit = False
        if auto_start:
            self.start()

    # -- lifecycle (owner only) -----------------------------------------------------------------
    def _owner(self, what: str) -> _Owner:
        owner: _Owner | None = self._sk.owner
        if owner is None:
            raise ShareError(
                f"share.{what}() can only be called in the process that created the Share"
            )
        return owner

    @property
    def is_running(self) -> bool:
        """True while the server is up."""
        owner = self._sk.owner
        if owner is None:
            return self._sk.link is not None
        return self._sk.link is not None and not owner.ended.is_set()

    @property
    def has_error(self) -> bool:
        """True when the server died on its own (its state is then lost)."""
        owner = self._sk.owner
        return bool(owner is not None and owner.error)

    @property
    def model(self) -> ShareModel | None:
        owner = self._sk.owner
        return owner.model if owner is not None else None

    def start(self) -> None:
        """Start the server (with the state kept by a previous ``stop()``)."""
        owner = self._owner("start")
        if self.is_running:
            return
        self._release_dead(owner)
        state = dict(owner.snapshot)
        if owner.dir is None or not _still_private(owner.dir):
            owner.dir = _socket_dir()  # fresh, 0700
        path = os.path.join(owner.dir, "share.sock")
        try:
            os.unlink(path)  # left by a server that was killed
        except FileNotFoundError:
            pass
        key = owner.key
        launcher = Launcher.get()
        from .._engine._process import child_header, send_start

        data, bufs, fds = _serial.dumps_with_fds(
            {"state": state, "authkey": key, "path": path}, "the Share's state"
        )
        spare = launcher.take(1)[0]
        owner.launcher = launcher
        owner.spare = spare
        owner.ready.clear()
        owner.ended.clear()
        owner.got_state.clear()
        owner.error = None
        owner.stopping = False
        conn = AsyncConn(spare.sock, owner.on_frames, owner.on_eof, launcher.hub.want_write)
        owner.conn = conn
        launcher.watch_exit(spare.pid, owner.on_exit)
        send_start(conn, child_header("suitkaise_nb._share._server:serve_main"), data, bufs, fds)
        launcher.hub.add_conn(conn)
        if not owner.ready.wait(30) or owner.ended.is_set():
            raise ShareError(f"the Share server did not start: {owner.error or 'timeout'}")
        link = owner.link
        if link is None:
            link = owner.link = _Link(path, key)
        else:  # the same connection object: handles made before a stop() work again
            link.close()
            link.path, link.broken, link.kept = path, None, None
        with _links_lock:  # handles sent back to this process use it too
            _links[(path, key)] = link
        self._sk.link = link
        owner.model.state = "running"
        track(self, self._shutdown_at_exit)
        _events.emit("share_started", _events.ShareStarted(owner.model))

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop the server, keeping its state for a later ``start()``. True when it ended
        within ``timeout`` seconds (otherwise it is killed and its state is lost: a later
        ``start()`` begins empty). When a value cannot be carried over (it cannot be pickled,
        or rebuilt here), raises :class:`ShareValueError` naming it and the Share keeps
        running with its state."""
        owner = self._owner("stop")
        timeout = check_timeout(timeout)
        if not self.is_running:
            self._release_dead(owner)
            return True
        link = self._sk.link
        owner.stopping = True
        self._sk.link = None
        assert owner.conn is not None
        owner.snapshot = {}  # an older snapshot must not come back if this one never arrives
        owner.state_frame = None
        owner.got_state.clear()
        try:
            owner.conn.send(K_SNAPSHOT, b"")
        except OSError:
            pass
        got = owner.got_state.wait(timeout)
        frame, owner.state_frame = owner.state_frame, None
        if got and frame is not None:
            try:
                owner.snapshot = _load_state(frame)
            except BaseException:
                self._resume(owner, link)
                raise
            try:
                owner.conn.send(K_EXIT, b"")
            except OSError:
                pass
        ok = got and frame is not None and owner.ended.wait(max(0.1, timeout or 0.0) or None)
        if not ok and owner.spare is not None:
            Launcher.signal(owner.spare, 9)
            owner.ended.wait(5)
        link.close()
        if ok:  # handles of this process now act on the state kept here
            link.kept = State(owner.snapshot)
        else:
            link.broken = (
                f"the Share was stopped, but its server did not hand over its state within "
                f"{timeout} s and was killed: the state is lost"
            )
        self._cleanup(owner)
        owner.model.state = "stopped"
        untrack(self)
        return bool(ok)

    def _resume(self, owner: _Owner, link: _Link) -> None:
        """The state could not be carried over: the server goes on serving it."""
        assert owner.conn is not None
        try:
            owner.conn.send(K_RESUME, b"")
        except OSError:
            pass
        owner.stopping = False
        self._sk.link = link

    def exit(self) -> None:
        """Stop the server and drop its state."""
        owner = self._owner("exit")
        if self.is_running:
            owner.stopping = True
            link = self._sk.link
            self._sk.link = None
            assert owner.conn is not None
            try:
                owner.conn.send(K_EXIT, b"")
            except OSError:
                pass
            if not owner.ended.wait(5) and owner.spare is not None:
                Launcher.signal(owner.spare, 9)
                owner.ended.wait(5)
            link.close()
            self._cleanup(owner, keep_dir=False)
        else:
            self._release_dead(owner)
            self._cleanup(owner, keep_dir=False)
        owner.snapshot = {}
        if owner.link is not None:
            owner.link.kept = None
            owner.link.broken = "this Share was exited (its state was dropped)"
        owner.model.state = "exited"
        untrack(self)

    def _release_dead(self, owner: _Owner) -> None:
        """After the server died on its own: close what is left of it (idempotent)."""
        link: _Link | None = self._sk.link
        if link is not None:
            link.close()  # its ``broken`` message stays for later calls
        if owner.ended.is_set():
            self._cleanup(owner)

    def _cleanup(self, owner: _Owner, keep_dir: bool = True) -> None:
        """Release the server's process handle. Its socket directory is kept (0700, ours) for
        the next ``start()``, so that no one else can take its name meanwhile, unless the
        Share exits."""
        if owner.spare is not None and owner.spare.pidfd is not None:
            try:
                os.close(owner.spare.pidfd)
            except OSError:
                pass
            owner.spare = owner.spare._replace(pidfd=None)  # never closed twice
        if owner.dir is not None and not keep_dir:
            shutil.rmtree(owner.dir, ignore_errors=True)
            owner.dir = None

    def _shutdown_at_exit(self) -> None:
        owner = self._sk.owner
        if owner is not None and owner.spare is not None and not owner.ended.is_set():
            owner.stopping = True
            Launcher.signal(owner.spare, 9)
        if owner is not None and owner.dir is not None:
            shutil.rmtree(owner.dir, ignore_errors=True)

    def sync(self) -> None:
        """Wait until this process's writes sent without waiting are applied, and raise the
        error one of them got. (In an Skprocess child or a pool worker, ``share.x += v``,
        ``share.x = v`` and method calls used as statements outside ``try``/``with`` are sent
        without waiting. ``tell()``, ``Pipe.send()``, ``start()`` and a Pool call wait for them
        too, so other processes always see them; their errors fail the lifecycle section or
        the pool item that sent them, at its end, naming the line.)"""
        link = self._sk.link
        if link is not None:
            errors = [err for err, _unit in link.take_errors()]
            if errors:
                for other in errors[1:]:
                    errors[0].add_note(_barriers.also_failed(other))
                raise errors[0]

    def clear(self) -> None:
        """Remove every attribute."""
        link = self._live_link("clear")
        if link is None:
            owner = self._owner("clear")
            owner.snapshot.clear()
            return
        link.request("clear", ())

    def __enter__(self) -> Share:
        if self._sk.owner is not None and not self.is_running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sk.owner is not None:
            self.stop()

    # -- attribute access -----------------------------------------------------------------------
    def _live_link(self, what: str) -> _Link | None:
        link: _Link | None = self._sk.link
        if link is not None:
            return link
        owner: _Owner | None = self._sk.owner
        if owner is not None and owner.error:
            raise ShareError(owner.error)
        if owner is None:
            raise ShareError("this Share is not running")
        warnings.warn(
            f"the Share is not running ({what} applied to its stopped state); call share.start()",
            UserWarning,
            stacklevel=3,
        )
        return None

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("__", "_repr_", "_ipython")):
            raise AttributeError(name)
        link = self._live_link(f"reading {name!r}")
        if link is None:  # the state kept while stopped (its objects themselves)
            try:
                return self._sk.owner.snapshot[name]
            except KeyError:
                raise AttributeError(f"the Share has no attribute {name!r}") from None
        return _access(link, (name,), usage(_getframe(1)))

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
            return
        _check_name(name)
        link = self._live_link(f"assigning {name!r}")
        if link is None:
            owner = self._sk.owner
            if isinstance(value, _AugOp):
                raise ShareError("in-place operations need a running Share; call share.start()")
            owner.snapshot[name] = value
            return
        if type(value) is _AugOp:
            _send_aug(link, "aug", (name,), (value.op, value.operand), value)
        elif _barriers.may_defer() and not protected(_getframe(1)):
            # in the thread of a child that reports deferred errors, outside try/with: sent
            # without waiting (a value the server cannot rebuild fails the section or item)
            link.send_async("set", (name,), (value,))
        else:
            link.request("set", (name,), (value,))  # raises here, on the assignment's line

    def __delattr__(self, name: str) -> None:
        _check_name(name)
        link = self._live_link(f"deleting {name!r}")
        if link is None:
            if self._sk.owner.snapshot.pop(name, _MISSING) is _MISSING:
                raise AttributeError(f"the Share has no attribute {name!r}")
            return
        link.request("del", (name,))

    def __dir__(self) -> list[str]:
        names = list(super().__dir__())
        link = self._sk.link
        if link is not None:
            try:
                names += link.request("names", ())
            except ShareError:
                pass
        return sorted(set(names))

    def __reduce__(self) -> Any:
        link = self._sk.link
        if link is None:
            raise ShareError(
                "a stopped Share cannot be sent to another process; call share.start() first"
            )
        link.settle()  # the receiving process must see what this one wrote
        return (_client, (link.path, link.key, link.host))

    def __repr__(self) -> str:
        owner = self._sk.owner
        if owner is None:
            return "<Share client>"
        return f"<Share {owner.model.state} ops={owner.model.ops}>"


_SUN_PATH_MAX = 100  # AF_UNIX paths are limited to 107 bytes on Linux (103 on macOS)


def _private_base(base: str) -> bool:
    """A directory only this user can write to (``$XDG_RUNTIME_DIR`` normally is)."""
    try:
        st = os.stat(base)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _still_private(d: str) -> bool:
    try:
        st = os.lstat(d)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077


def _socket_dir() -> str:
    """A new private (0700) directory whose ``share.sock`` path fits in an AF_UNIX address:
    in ``$XDG_RUNTIME_DIR`` when it is this user's own, else in the temporary directory (or a
    shorter standard one when ``TMPDIR`` is long). ``mkdtemp`` creates it with a random name
    and fails rather than reuse a directory someone else made."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    bases: list[str | None] = [runtime] if runtime and _private_base(runtime) else []
    bases += [None, "/tmp", "/var/tmp"]
    for base in bases:
        if base is not None and not os.path.isdir(base):
            continue
        try:
            d = tempfile.mkdtemp(prefix="sknb-share-", dir=base)
        except OSError:
            continue
        if len(os.fsencode(os.path.join(d, "share.sock"))) <= _SUN_PATH_MAX:
            return d
        os.rmdir(d)
    raise ShareError(
        "no temporary directory has a path short enough for the Share's unix socket; "
        "set TMPDIR to a short directory"
    )


def _load_state(frame: Frame) -> dict[str, Any]:
    """The state sent by a stopping server, rebuilt one attribute at a time (so that the one
    that cannot be rebuilt here is named)."""
    if frame.kind == K_STATE_ERR:
        raise ShareValueError(
            f"share.stop() cannot keep the state: {pickle.loads(frame.main)}. "
            "The Share is still running, with its state."
        )
    state: dict[str, Any] = {}
    for name, data, first, count in pickle.loads(frame.main):
        try:
            state[name] = _serial.loads(data, frame.buffers[first : first + count])
        except Exception as exc:
            raise ShareValueError(
                f"share.stop() cannot keep the state: share.{name} cannot be rebuilt in this "
                f"process ({type(exc).__name__}: {exc}). The Share is still running, with its "
                f"state; delete it (del share.{name}) or store a value that can be unpickled "
                "here.",
                path=f"share.{name}",
            ) from exc
    return state


def _reap(owner: _Owner, state: _State) -> None:
    """The owning Share was garbage-collected: kill its server (the state goes with it)."""
    if state.link is not None:
        state.link.close()
    spare = owner.spare
    if spare is not None and not owner.ended.is_set():
        owner.stopping = True
        Launcher.signal(spare, 9)
        if spare.pidfd is not None:
            try:
                os.close(spare.pidfd)
            except OSError:
                pass
            owner.spare = spare._replace(pidfd=None)
    if owner.dir is not None:
        shutil.rmtree(owner.dir, ignore_errors=True)
        owner.dir = None


def _check_name(name: str) -> None:
    """``share.stop = 1`` would be stored but could never be read back (``share.stop`` is the
    method): refuse the names of the Share's own API."""
    if name in _API:
        raise AttributeError(
            f"{name!r} is part of the Share's own API (share.{name}); "
            "store the value under another name"
        )


class _State:
    __slots__ = ("link", "owner")

    def __init__(self, owner: _Owner | None, link: _Link | None) -> None:
        self.owner = owner
        self.link = link


#: One connection per process and server: the handles rebuilt for every pool chunk (or
#: process, or item) share it, instead of paying a connection and handshake each time.
_links: dict[tuple[str, bytes], _Link] = {}
_links_lock = threading.Lock()
_MAX_LINKS = 16


_exit_hook = False


def _close_links_at_exit() -> None:
    """This process's client connections are closed at exit, not left to the collector."""
    global _exit_hook
    if not _exit_hook:
        _exit_hook = True
        atexit.register(_close_links)


def _close_links() -> None:
    with _links_lock:
        links = list(_links.values())
        _links.clear()
    for link in links:
        try:
            link.close()
        except Exception:
            pass


def _link_for(path: str, key: bytes, host: str | None = None) -> _Link:
    """This process's connection to the server at ``path`` (made on first use)."""
    with _links_lock:
        link = _links.get((path, key))
        if link is None:
            if len(_links) >= _MAX_LINKS:  # the oldest (a restarted Share has a new key)
                _links.pop(next(iter(_links))).close()  # handles still using it reconnect
            link = _links[(path, key)] = _Link(path, key, host)
            _close_links_at_exit()
    return link


def _client(path: str, key: bytes, host: str | None = None) -> Share:
    share = Share.__new__(Share)
    object.__setattr__(share, "_sk", _State(None, _link_for(path, key, host)))
    return share


_API = frozenset(n for n in dir(Share) if not n.startswith("_"))
