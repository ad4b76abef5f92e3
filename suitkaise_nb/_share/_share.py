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
import hashlib
import hmac
import os
import pickle
import shutil
import socket
import sys
import tempfile
import threading
import time
import warnings
import weakref
from collections import deque
from typing import Any

from .._engine import _barriers, _events, _serial
from .._engine._errors import ProcessError, RemoteTraceback
from .._engine._launcher import Launcher, Spare, track, untrack
from .._engine._model import _ids
from .._engine._wire import AsyncConn, BlockingConn, Frame
from .._pool import _remote
from ._oracle import inplace_symbol, usage
from ._protocol import (
    K_EXIT,
    K_HELLO,
    K_OK,
    K_READY,
    K_REQ,
    K_SNAPSHOT,
    K_STATE,
    K_STATS,
    Item,
)


class ShareError(ProcessError):
    """The Share cannot serve the request (stopped, exited, or its server died)."""


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
        self._last = (time.monotonic(), 0)


# -- the connection a process uses to talk to the server -----------------------------------------

#: In the server process, the running server: a Share handle held by a shared object and used
#: inside one of its methods runs its operations in place (a request to the server it is
#: already inside would wait for itself forever).
_in_server: Any = None


class _Link:
    """One authenticated connection per process (shared by its threads under a lock)."""

    def __init__(self, path: str, key: bytes, host: str | None = None) -> None:
        self.path = path
        self.key = key
        self.host = socket.gethostname() if host is None else host  # where the server runs
        self.lock = threading.Lock()
        self.conn: BlockingConn | None = None
        self.pid = 0
        self.broken: str | None = None
        self.unacked = 0  # pipelined requests whose answers were not read yet
        self.sites: deque[tuple[str, tuple[Any, ...], str, str, int]] = deque()  # what, where
        self.deferred: BaseException | None = None  # the first error among them

    def _connect(self) -> BlockingConn:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
            nonce = b""
            while len(nonce) < 32:
                chunk = sock.recv(32 - len(nonce))
                if not chunk:
                    raise ConnectionError("the Share server closed the connection")
                nonce += chunk
        except OSError as exc:
            sock.close()
            raise ShareError(self._unreachable(exc)) from None
        conn = BlockingConn(sock)
        try:
            conn.send(K_HELLO, hmac.new(self.key, nonce, hashlib.sha256).digest())
            f = conn.recv()
        except (EOFError, OSError):
            f = None  # the server drops a client whose answer is wrong
        if f is None or f.kind != K_OK:
            conn.close()
            raise ShareError("the Share server refused this client's key")
        return conn

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
            self.conn = self._connect()
            self.pid = os.getpid()
            self.unacked = 0
            self.sites.clear()
        return self.conn

    def _drain_locked(self) -> None:
        """Read the answers of pipelined requests; raise the first error among them."""
        conn = self.conn
        sites = self.sites
        try:
            while self.unacked and conn is not None:
                f = conn.recv()
                self.unacked -= 1
                site = sites.popleft() if sites else None
                if f is not None and f.kind != K_OK and self.deferred is None:
                    self.deferred = _server_error(pickle.loads(f.main))
                    if site is not None:
                        self.deferred.add_note(_site_note(*site))
        except (EOFError, OSError):
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            self.unacked = 0
            sites.clear()
            raise ShareError(
                "the Share server is gone (stopped, or it died) before it confirmed earlier "
                "writes; in the process that created it, share.start() starts it again"
            ) from None
        except BaseException:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            self.unacked = 0
            sites.clear()
            raise
        err, self.deferred = self.deferred, None
        if err is not None:
            raise err

    def drain(self) -> None:
        """Wait until every pipelined write of this process is applied."""
        if self.unacked and self.pid == os.getpid():
            with self.lock:
                self._drain_locked()

    def send_async(
        self, op: str, path: tuple[Any, ...], args: tuple[Any, ...] = (), depth: int = 2
    ) -> None:
        """An operation whose value nobody needs: sent now, its answer read later (in order),
        at the next request, barrier or ``sync()``, which raises the error it got, if any."""
        srv = _in_server
        if srv is not None and srv.path == self.path:
            srv.local(op, path, args)
            return
        data, bufs = _serial.dumps((op, path, args), what="the value sent to the Share")
        caller = sys._getframe(depth)  # the user's line (``depth`` frames up)
        inplace = args[-2] if op in ("aug", "augitem") else ""
        site = (op, path, inplace, caller.f_code.co_filename, caller.f_lineno)
        with self.lock:
            conn = self._live_conn()
            if self.unacked >= _MAX_UNACKED:
                self._drain_locked()
            try:
                conn.send(K_REQ, data, bufs)
            except OSError:
                conn.close()
                self.conn = None
                raise ShareError(
                    "the Share server is gone (stopped, or it died); in the process that "
                    "created it, share.start() starts it again"
                ) from None
            self.unacked += 1
            self.sites.append(site)
        _unsettled.add(self)

    def request(self, op: str, path: tuple[str, ...], args: tuple[Any, ...] = ()) -> Any:
        srv = _in_server
        if srv is not None and srv.path == self.path:
            return srv.local(op, path, args)
        data, bufs = _serial.dumps((op, path, args), what="the value sent to the Share")
        with self.lock:
            self._live_conn()
            if self.unacked:
                self._drain_locked()
            assert self.conn is not None
            try:
                self.conn.send(K_REQ, data, bufs)
                f = self.conn.recv()
            except (EOFError, OSError):
                self.conn.close()
                self.conn = None
                raise ShareError(
                    "the Share server is gone (stopped, or it died); in the process that "
                    "created it, share.start() starts it again"
                ) from None
            except BaseException:
                # interrupted between request and answer: the answer would be read by the
                # next request; drop the connection (the server finishes the operation)
                self.conn.close()
                self.conn = None
                raise
        assert f is not None
        if f.kind == K_OK:
            return _serial.loads(f.main, f.buffers, f.fds)
        raise _server_error(pickle.loads(f.main))

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None


_MAX_UNACKED = 512


def _site_note(op: str, path: tuple[Any, ...], inplace: str, filename: str, lineno: int) -> str:
    where = "share" + "".join(repr([p.key]) if type(p) is Item else f".{p}" for p in path)
    symbol = inplace_symbol(inplace)
    what = {"aug": f"{where} {symbol} ...", "augitem": f"{where}[...] {symbol} ..."}
    statement = what.get(op, f"{where} = ..." if op == "set" else f"{where}(...)")
    return (
        f"(raised by `{statement}` at {filename}:{lineno}, which was sent without waiting for "
        "its answer; put it inside try/except to get its error on its own line)"
    )


# links with writes in flight; held strongly until settled (they are few, and an empty set
# makes the barrier, run at every tell/start/pool call, one truth test)
_unsettled: set[_Link] = set()


def settle_all() -> None:
    """The barrier registered with the engine: every link of this process is settled."""
    if not _unsettled:
        return
    pid = os.getpid()
    for link in list(_unsettled):
        link.drain()
        if not link.unacked or link.pid != pid:
            _unsettled.discard(link)


_barriers.barriers.append(settle_all)


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
        self.nowait = nowait  # nobody waits for the answer (see _barriers.write_behind)


def _make_aug(op: str) -> Any:
    def method(self: _AugTarget, other: Any) -> _AugOp:
        return _AugOp(op, other, self.nowait)

    return method


class _AugTarget:
    """Stands for ``share.x`` inside ``share.x += y``; its in-place methods return the op."""

    __slots__ = ("nowait",)

    def __init__(self, nowait: bool) -> None:
        self.nowait = nowait


for _op in [
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
]:
    setattr(_AugTarget, f"__{_op}__", _make_aug(_op))

_AUG = _AugTarget(False)
_AUG_NOWAIT = _AugTarget(True)
# what ``share.d[k]`` is for -> how the path to the item is used
_ITEM_PATHS = {"chain": "", "item": "", "augitem": "augitem", "augitem-discard": "augitem-discard"}


def _aug_marker(how: str) -> _AugTarget:
    """The stand-in for ``share.x`` in ``share.x += y``: its answer is waited for unless the
    oracle says nobody can catch its error and this process reports deferred ones."""
    return _AUG_NOWAIT if how.endswith("-discard") and _barriers.write_behind else _AUG


def _send_aug(
    link: _Link, op: str, path: tuple[Any, ...], args: tuple[Any, ...], aug: _AugOp
) -> None:
    if aug.nowait:
        link.send_async(op, path, args, depth=3)  # the user's line is above our caller
    else:
        link.request(op, path, args)


def _access(link: _Link, path: tuple[str, ...], how: str) -> Any:
    if how == "value":
        return link.request("get", path)
    if how == "aug":
        return _AUG
    if how == "aug-discard":
        return _aug_marker(how)
    if how == "augitem" or how == "augitem-discard":
        return _Proxy(link, path, how)
    if how == "method-discard" and _barriers.write_behind:
        return _Proxy(link, path, how)
    return _Proxy(link, path)


class _Proxy:
    """A path inside the Share (``share.stats``, ``share.timer``); every use is one request.

    ``_how`` is what the oracle said this path is for, when that changes how it is used: a
    subscript in an in-place assignment (``augitem``/``augitem-discard``), or a method call
    whose value nobody uses (``method-discard``: sent without waiting for its answer)."""

    __slots__ = ("_how", "_link", "_path")

    def __init__(self, link: _Link, path: tuple[Any, ...], how: str = "") -> None:
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_how", how)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _access(self._link, (*self._path, name), usage(sys._getframe(1)))

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
            return _aug_marker(how)
        how = usage(sys._getframe(1))
        if how in _ITEM_PATHS:  # share.d[k].m(), share.d[k][j] = v, share.d[k][j] += v, ...
            return _Proxy(self._link, (*self._path, Item(key)), _ITEM_PATHS[how])
        return self._link.request("getitem", self._path, (key,))

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
        return iter(self._link.request("iter", self._path))

    def __contains__(self, item: Any) -> bool:
        return bool(self._link.request("contains", self._path, (item,)))

    def __repr__(self) -> str:
        return str(self._link.request("repr", self._path))

    def __str__(self) -> str:
        return str(self._link.request("str", self._path))

    def __eq__(self, other: Any) -> bool:
        return bool(self._link.request("get", self._path) == other)

    def __hash__(self) -> int:
        return hash(self._path)

    def __reduce__(self) -> Any:
        raise TypeError("a path inside a Share cannot be shipped on its own; ship the Share itself")


# -- Share -----------------------------------------------------------------------------------------

_OWN = ("_sk",)


class _Owner:
    """What only the creating process has: the server's lifecycle."""

    def __init__(self, share: Share) -> None:
        self.share_ref = weakref.ref(share)
        self.model = ShareModel()
        self.dir: str | None = None
        self.spare: Spare | None = None
        self.conn: AsyncConn | None = None
        self.launcher: Launcher | None = None
        self.ready = threading.Event()
        self.ended = threading.Event()
        self.snapshot: dict[str, Any] = {}
        self.got_state = threading.Event()
        self.pending: list[tuple[str, tuple[str, ...], tuple[Any, ...]]] = []
        self.error: str | None = None
        self.stopping = False

    def on_frames(self, frames: list[Frame]) -> None:
        for f in frames:
            if f.kind == K_READY:
                self.ready.set()
            elif f.kind == K_STATS:
                self._stats(pickle.loads(f.main))
            elif f.kind == K_STATE:
                try:
                    self.snapshot = _serial.loads(f.main, f.buffers, f.fds)
                except Exception as exc:
                    self.error = f"the Share's state could not be read back: {exc!r}"
                self.got_state.set()

    def _stats(self, stats: dict[str, Any]) -> None:
        m = self.model
        now = time.monotonic()
        t0, n0 = m._last
        if now > t0:
            m.rate = (stats["ops"] - n0) / (now - t0)
        m._last = (now, stats["ops"])
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
            share = self.share_ref()
            link = share._sk.link if share is not None else None
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
        for op, where, args in owner.pending:
            if op == "set":
                state[where[0]] = args[0]
            elif op == "del":
                state.pop(where[0], None)
        owner.pending.clear()
        owner.dir = _socket_dir()  # 0700
        path = os.path.join(owner.dir, "share.sock")
        key = os.urandom(32)
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
        if self._sk.link is not None:  # the link to a server that died
            self._sk.link.close()
        self._sk.link = _Link(path, key)
        owner.model.state = "running"
        track(self)
        _events.emit("share_started", _events.ShareStarted(owner.model))

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the server, keeping its state for a later ``start()``. True when it ended
        within ``timeout`` seconds (otherwise it is killed and its state is lost: a later
        ``start()`` begins empty)."""
        owner = self._owner("stop")
        if not self.is_running:
            self._release_dead(owner)
            return True
        link = self._sk.link
        try:
            link.drain()  # this process's pipelined writes belong to the state kept
        except ShareError:
            pass
        owner.stopping = True
        self._sk.link = None
        assert owner.conn is not None
        owner.snapshot = {}  # an older snapshot must not come back if this one never arrives
        try:
            owner.conn.send(K_SNAPSHOT, b"")
        except OSError:
            pass
        ok = owner.got_state.wait(timeout) and owner.ended.wait(max(0.1, timeout))
        if not ok and owner.spare is not None:
            Launcher.signal(owner.spare, 9)
            owner.ended.wait(5)
        link.close()
        self._cleanup(owner)
        owner.model.state = "stopped"
        untrack(self)
        return bool(ok)

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
            self._cleanup(owner)
        else:
            self._release_dead(owner)
        owner.snapshot = {}
        owner.pending.clear()
        owner.model.state = "exited"
        untrack(self)

    def _release_dead(self, owner: _Owner) -> None:
        """After the server died on its own: close what is left of it (idempotent)."""
        link: _Link | None = self._sk.link
        if link is not None:
            link.close()  # its ``broken`` message stays for later calls
        if owner.ended.is_set():
            self._cleanup(owner)

    def _cleanup(self, owner: _Owner) -> None:
        if owner.spare is not None and owner.spare.pidfd is not None:
            try:
                os.close(owner.spare.pidfd)
            except OSError:
                pass
            owner.spare = owner.spare._replace(pidfd=None)  # never closed twice
        if owner.dir is not None:
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
        error one of them got. (Top-level assignments, ``share.x = value``, are sent without
        waiting; so are, in an Skprocess child or a pool worker, ``share.x += v`` and method
        calls used as statements outside ``try``/``with``. Any operation that needs an
        answer, ``tell()``, ``Pipe.send()``, ``start()``, a Pool call, and the end of each
        lifecycle section and pool chunk do the same wait, so other processes always see
        them.)"""
        link = self._sk.link
        if link is not None:
            link.drain()

    def clear(self) -> None:
        """Remove every attribute."""
        link = self._live_link("clear")
        if link is None:
            owner = self._owner("clear")
            owner.snapshot = {}
            owner.pending.clear()
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
        if link is None:
            owner = self._sk.owner
            state = dict(owner.snapshot)
            for op, path, args in owner.pending:
                if op == "set":
                    state[path[0]] = args[0]
            try:
                return state[name]
            except KeyError:
                raise AttributeError(f"the Share has no attribute {name!r}") from None
        return _access(link, (name,), usage(sys._getframe(1)))

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
            owner.pending.append(("set", (name,), (value,)))
            return
        if type(value) is _AugOp:
            _send_aug(link, "aug", (name,), (value.op, value.operand), value)
        else:
            # a top-level assignment cannot fail on the server (the value was pickled here):
            # it is pipelined; reads and synchronization points wait for it
            link.send_async("set", (name,), (value,))

    def __delattr__(self, name: str) -> None:
        _check_name(name)
        link = self._live_link(f"deleting {name!r}")
        if link is None:
            self._sk.owner.pending.append(("del", (name,), ()))
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
        link.drain()  # the receiving process must see what this one wrote
        return (_client, (link.path, link.key, link.host))

    def __repr__(self) -> str:
        owner = self._sk.owner
        if owner is None:
            return "<Share client>"
        return f"<Share {owner.model.state} ops={owner.model.ops}>"


_SUN_PATH_MAX = 100  # AF_UNIX paths are limited to 107 bytes on Linux (103 on macOS)


def _socket_dir() -> str:
    """A new private (0700) directory whose ``share.sock`` path fits in an AF_UNIX address:
    the temporary directory, or a shorter standard one when ``TMPDIR`` is long."""
    bases: list[str | None] = [None, os.environ.get("XDG_RUNTIME_DIR"), "/tmp", "/var/tmp"]
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


def _client(path: str, key: bytes, host: str | None = None) -> Share:
    with _links_lock:
        link = _links.get((path, key))
        if link is None:
            if len(_links) >= _MAX_LINKS:  # the oldest (a restarted Share has a new key)
                _links.pop(next(iter(_links))).close()  # handles still using it reconnect
            link = _links[(path, key)] = _Link(path, key, host)
            _close_links_at_exit()
    share = Share.__new__(Share)
    object.__setattr__(share, "_sk", _State(None, link))
    return share


_API = frozenset(n for n in dir(Share) if not n.startswith("_"))
