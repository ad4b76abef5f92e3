"""The connection a process uses to talk to a Share's server.

One :class:`Link` per process and server (shared by the process's threads under a lock, and by
every handle of that Share in the process). It authenticates both ways before any frame
(``_protocol.client_handshake``), checks the socket directory before every (re)connect, sends
requests, and pipelines the ones nobody waits for (``send_async``: their errors are kept for
the engine's barriers, see ``_engine._barriers``). While the owner's Share is stopped, its
link serves the state the owner keeps (``kept``); inside the server, handles run in place.
"""

from __future__ import annotations

import atexit
import os
import pickle
import socket
import stat
import threading
from collections import deque
from sys import _getframe
from typing import Any

from .. import _errors as _remote
from .._engine import _barriers, _serial
from .._engine._wire import BlockingConn
from .._errors import (
    HandshakeError,
    RemoteTraceback,
    ShareError,
    ShareValueError,
    ShippingError,
)
from ._oracle import inplace_symbol
from ._protocol import K_ERR, K_OK, K_REF, K_REQ, client_handshake
from ._state import REF as _REF
from ._state import State, where_text

#: In the server process, the running server: a Share handle held by a shared object and used
#: inside one of its methods runs its operations in place (a request to the server it is
#: already inside would wait for itself forever).
_in_server: Any = None


def server_for(path: str) -> Any:
    """The server of the Share at ``path`` when this process is that server, else None."""
    srv = _in_server
    return srv if srv is not None and srv.path == path else None


def serving_here(server: Any) -> None:
    """Called by the server process once: handles used inside it run in place."""
    global _in_server
    _in_server = server


GONE = (
    "the Share server is gone (stopped, or it died); in the process that created it, "
    "share.start() starts it again"
)
SHARE_HINT = (
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


class Link:
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
                err.add_note(site_note(*sites[0]))
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
                    err = server_error(pickle.loads(f.main))
                    if site is not None:
                        err.add_note(site_note(*site))
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
            data, bufs = _serial.dumps(
                (op, path, args), what="the value sent to the Share", strict=True
            )
        except ShippingError as exc:
            raise named(exc, op, path, args) from exc.__cause__
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
            if self.unacked >= MAX_UNACKED:
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
                    raise ShareError(GONE) from None
            except OSError:
                self._lost()
                raise ShareError(GONE) from None
        raise ShareError(GONE)  # pragma: no cover (the loop returns or raises)

    def request(self, op: str, path: tuple[Any, ...], args: tuple[Any, ...] = ()) -> Any:
        """One operation, waiting for its answer; ``_REF`` when the value is mutable."""
        if _in_server is not None or self.kept is not None:
            here = self._here()
            if here is not None:
                return here.local(op, path, args)
        try:
            data, bufs = _serial.dumps(
                (op, path, args), what="the value sent to the Share", strict=True
            )
        except ShippingError as exc:
            raise named(exc, op, path, args) from exc.__cause__
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
                raise ShareError(GONE) from None
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
        raise server_error(pickle.loads(f.main))

    def _here(self) -> Any:
        """Where an operation runs without a connection: the server itself (a shared object's
        method using a handle of its own Share), or the owner's kept state while the Share is
        stopped; None: on the server, through the connection."""
        srv = _in_server
        if srv is not None and srv.path == self.path:
            return srv
        return self.kept

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None


MAX_UNACKED = 512
_SENT = "the value sent to the Share"


def named(
    exc: ShippingError, op: str, path: tuple[Any, ...], args: tuple[Any, ...]
) -> ShareValueError:
    """A value the Share cannot keep, named by its place in the Share (not by its place in
    our request tuple)."""
    value: Any = args
    what = f"the arguments of {where_text(path)}(...)"
    if op == "set":
        value, what = args[0], where_text(path)
    elif op == "setitem":
        value, what = args[1], f"{where_text(path)}[{args[0]!r}]"
    elif op in ("aug", "augitem"):
        value = args[-1]
        what = f"the right side of {where_text(path)} {inplace_symbol(args[-2])}"
    elif op in ("call", "callx"):
        value = list(args[0]) + list(args[1].values())
    cause = exc.__cause__ or exc
    err = _serial.explain_unshippable(value, what, cause, hint=SHARE_HINT, strict=True)
    return ShareValueError(str(err), path=err.path, type_name=err.type_name)


def site_note(
    op: str, path: tuple[Any, ...], inplace: str, filename: str, lineno: int, unit: Any = None
) -> str:
    where = where_text(path)
    symbol = inplace_symbol(inplace)
    what = {"aug": f"{where} {symbol} ...", "augitem": f"{where}[...] {symbol} ..."}
    statement = what.get(op, f"{where} = ..." if op == "set" else f"{where}(...)")
    item = f" in pool item {unit}" if unit is not None else ""
    return (
        f"(raised by `{statement}` at {filename}:{lineno}{item}, which was sent without waiting "
        "for its answer; put it inside try/except to get its error on its own line)"
    )


def server_error(payload: tuple[Any, ...]) -> BaseException:
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


_links: dict[tuple[str, bytes], Link] = {}
_links_lock = threading.Lock()
_MAX_LINKS = 16


_exit_hook = False


def _close_links_at_exit() -> None:
    """This process's client connections are closed at exit, not left to the collector."""
    global _exit_hook
    if not _exit_hook:
        _exit_hook = True
        atexit.register(close_links)


def close_links() -> None:
    with _links_lock:
        links = list(_links.values())
        _links.clear()
    for link in links:
        try:
            link.close()
        except Exception:
            pass


def link_for(path: str, key: bytes, host: str | None = None) -> Link:
    """This process's connection to the server at ``path`` (made on first use)."""
    with _links_lock:
        link = _links.get((path, key))
        if link is None:
            if len(_links) >= _MAX_LINKS:  # the oldest (a restarted Share has a new key)
                _links.pop(next(iter(_links))).close()  # handles still using it reconnect
            link = _links[(path, key)] = Link(path, key, host)
            _close_links_at_exit()
    return link


def register_link(link: Link) -> None:
    """The owner's own link: handles sent back to the owner's process use it too."""
    with _links_lock:
        _links[(link.path, link.key)] = link
