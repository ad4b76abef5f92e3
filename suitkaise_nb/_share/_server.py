"""The Share server: one single-threaded process that owns the shared objects.

Every request is executed to completion before the next one is read, so each operation —
a read, an assignment, a method call, an in-place ``+=`` — is atomic, and the operations of
one client are applied in the order it sent them. Clients connect to an AF_UNIX socket in a
private directory (0700, the socket itself 0600) and must answer an HMAC-SHA256 challenge
with the Share's key before any request is read. Nothing listens on TCP.
"""

from __future__ import annotations

import hmac
import os
import pickle
import select
import selectors
import signal
import socket
import time
import traceback
from typing import Any

from .._engine import _serial
from .._engine._wire import BlockingConn, FrameReader, Spin, encode, send_parts
from .._errors import short_repr
from ._protocol import (
    HELLO,
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
    NONCE,
    client_proof,
    server_proof,
)
from ._state import INDEXED, PLAIN_TYPES, State, is_value

_MUTATING = {
    "set",
    "del",
    "aug",
    "call",
    "callx",
    "setitem",
    "delitem",
    "augitem",
    "clear",
    "op",
}
_NONE = pickle.dumps(None, protocol=5)
_PREAUTH_LIMIT = 32  # connections that have not proved the key yet (the oldest is dropped)
_PREAUTH_SECONDS = 10.0


class Poller:
    """Readiness of many descriptors: ``select.epoll`` where the platform has it (the hot
    loop calls it directly: ``selectors`` costs microseconds a call), else the best selector
    the platform offers (kqueue on macOS). ``poll(timeout)`` gives ``(fd, events)`` pairs."""

    def __init__(self) -> None:
        epoll = getattr(select, "epoll", None)
        if epoll is not None:
            self._ep = epoll()
            self._sel: selectors.BaseSelector | None = None
            self.poll = self._ep.poll  # poll(None) blocks, poll(0) does not
        else:
            self._sel = selectors.DefaultSelector()
            self.poll = self._poll_selector

    def register(self, fd: int) -> None:
        if self._sel is None:
            self._ep.register(fd, select.EPOLLIN)
        else:
            self._sel.register(fd, selectors.EVENT_READ)

    def unregister(self, fd: int) -> None:
        try:
            if self._sel is None:
                self._ep.unregister(fd)
            else:
                self._sel.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass

    def _poll_selector(self, timeout: float | None) -> list[tuple[int, int]]:
        assert self._sel is not None
        return [(key.fd, events) for key, events in self._sel.select(timeout)]


class _Client:
    __slots__ = ("authed", "hello", "id", "nonce", "ops", "out", "reader", "since", "sock")

    def __init__(self, sock: socket.socket, cid: int) -> None:
        self.sock = sock
        self.out: list[Any] | None = None  # answers collected while a batch is handled
        self.id = cid
        self.reader = FrameReader()
        self.authed = False
        self.hello = b""  # what the peer sent before it was authenticated (<= HELLO bytes)
        self.nonce = os.urandom(NONCE)
        self.since = time.monotonic()
        self.ops = 0


class Server(State):
    def __init__(self, conn: BlockingConn, payload: dict[str, Any]) -> None:
        super().__init__(payload["state"])
        self.parent = conn
        self.key: bytes = payload["authkey"]
        self.path: str = payload["path"]
        self.poller = Poller()
        self.by_fd: dict[int, Any] = {}  # fd -> "listener", "parent" or a _Client
        self.clients: dict[int, _Client] = {}
        self.next_id = 1
        self.ops = 0
        self.changed: set[str] = set()
        self.last_stats = 0.0

    # -- operations ------------------------------------------------------------------------
    def note_change(self, op: str, path: tuple[Any, ...]) -> None:
        self.ops += 1
        if op in _MUTATING and path:
            self.changed.add(path[0])
        elif op == "clear":
            self.changed.add("*")

    def local(self, op: str, path: tuple[Any, ...], args: tuple[Any, ...]) -> Any:
        """An operation issued inside the server (by a shared object's method through a Share
        handle it holds): run in place. Reads give the objects themselves (what a handle would
        reach); arguments and call results are copied, as they are for a remote request."""
        data, bufs = _serial.dumps(args, what="the value sent to the Share", strict=True)
        value = self.execute(op, path, _serial.loads(data, [memoryview(b) for b in bufs]))
        self.note_change(op, path)
        if op in ("get", "getitem"):
            return value
        if op == "iter":
            obj = self.walk(path)
            return list(obj) if isinstance(obj, INDEXED) else value
        data, bufs = _serial.dumps(value, what="the value read from the Share", strict=True)
        return _serial.loads(data, [memoryview(b) for b in bufs])

    # -- network -------------------------------------------------------------------------------
    def reply(self, client: _Client, kind: int, data: bytes, bufs: Any = ()) -> bool:
        if client.out is not None:  # pipelined requests: answer them all in one send
            client.out.extend(encode(kind, data, bufs))
            return True
        try:
            send_parts(client.sock, encode(kind, data, bufs))
            return True
        except OSError:
            self.drop(client)
            return False

    def handle(self, client: _Client, f: Any) -> None:
        if f.kind != K_REQ:
            raise ValueError(f"unexpected frame kind {f.kind}")
        try:
            if f.buffers or f.fds:
                op, path, args = _serial.loads(f.main, f.buffers, f.fds)
            else:  # the usual request: plain data, one unpickling call
                op, path, args = pickle.loads(f.main)
            value = self.execute(op, path, args)
            bufs: list[pickle.PickleBuffer] = []
            kind = K_OK
            if value is None:  # most often (a write): the answer is prebuilt
                data = _NONE
            elif (op == "get" or op == "getitem") and not (
                type(value) in PLAIN_TYPES or is_value(value)
            ):
                kind, data = K_REF, b""  # mutable: the client makes a live handle
            else:
                data, bufs = _serial.dumps(value, what="the value read from the Share", strict=True)
        except BaseException as exc:  # the server keeps running whatever a method does
            self.reply_error(client, exc)
            return
        self.ops += 1
        if op in _MUTATING and path:
            self.changed.add(path[0])
        elif op == "clear":
            self.changed.add("*")
        client.ops += 1
        self.reply(client, kind, data, bufs)

    def reply_error(self, client: _Client, exc: BaseException) -> None:
        """Answer with the error and its server-side traceback (the server keeps running)."""
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        try:
            blob: bytes | None = _serial.dumps_bytes(exc)
        except Exception:
            blob = None
        payload = (type(exc).__module__, type(exc).__qualname__, str(exc), tb, blob)
        self.reply(client, K_ERR, pickle.dumps(payload))

    def drop(self, client: _Client) -> None:
        self.clients.pop(client.id, None)
        fd = client.sock.fileno()
        if self.by_fd.pop(fd, None) is not None:
            self.poller.unregister(fd)
        client.reader.close_fds()
        client.sock.close()

    def push_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and (now - self.last_stats < 0.1 or not self.changed):
            return
        self.last_stats = now
        reprs = {}
        for name in self.changed if "*" not in self.changed else list(self.root):
            if name in self.root:
                reprs[name] = (type(self.root[name]).__name__, short_repr(self.root[name]))
        stats = {
            "changed": sorted(self.changed),
            "ops": self.ops,
            "per_client": {c.id: c.ops for c in self.clients.values() if c.authed},
            "names": list(self.root),
            "reprs": reprs,
        }
        self.changed = set()
        try:
            self.parent.send(K_STATS, pickle.dumps(stats))
        except OSError:
            os._exit(1)

    def snapshot(self) -> tuple[bytes, list[pickle.PickleBuffer]]:
        """The state, one pickle per attribute (so that the parent can name one it cannot
        rebuild). Raises :class:`ShippingError` naming an attribute that cannot be pickled."""
        entries = []
        bufs: list[pickle.PickleBuffer] = []
        for name, value in self.root.items():
            data, b = _serial.dumps(
                value, what=f"share.{name}", hint=_STOP_HINT.format(name=name), strict=True
            )
            entries.append((name, data, len(bufs), len(b)))
            bufs += b
        return pickle.dumps(entries, protocol=5), bufs

    def control(self) -> bool:
        """Read from the parent; False when the server must end."""
        try:
            alive = self.parent.reader.recv_once(self.parent.sock)
        except (BlockingIOError, InterruptedError):
            return True
        if not alive:
            return False  # the parent is gone
        for f in self.parent.reader.frames():
            if f.kind == K_SNAPSHOT:
                return self.give_state()
            if f.kind == K_EXIT:
                self.serve_waiting()
                self.push_stats(force=True)  # the views show the last state, not an older one
                return False
        return True

    def give_state(self) -> bool:
        """Send the state to the parent (after the requests already waiting). The server
        ends when the parent took it, and serves on when it could not be taken."""
        self.serve_waiting()
        self.push_stats(force=True)
        try:
            data, bufs = self.snapshot()
        except Exception as exc:
            self.parent.send(K_STATE_ERR, pickle.dumps(str(exc)))
            return True
        self.parent.send(K_STATE, data, bufs)
        while True:
            try:
                f = self.parent.recv()
            except (EOFError, OSError):
                return False
            if f is not None and f.kind == K_RESUME:
                return True
            if f is not None and f.kind == K_EXIT:
                return False

    def serve_waiting(self) -> None:
        """Apply every request that has already arrived (before the state is taken)."""
        for fd, _ in self.poller.poll(0):
            tag = self.by_fd.get(fd)
            if isinstance(tag, _Client):
                self.read_client(tag)

    def serve(self) -> int:
        from ._link import serving_here

        serving_here(self)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        listener.listen(128)
        listener.setblocking(False)
        self.watch(listener.fileno(), "listener")
        self.watch(self.parent.sock.fileno(), "parent")
        self.parent.send(K_READY, pickle.dumps(os.getpid()))
        poll = self.poller.poll
        spin = Spin()
        try:
            while True:
                by_fd = self.by_fd
                events = poll(0)
                if not events:
                    # clients usually send again within microseconds: stay awake a little
                    budget = spin.budget()
                    if budget:
                        end = time.perf_counter() + budget
                        while not events and time.perf_counter() < end:
                            events = poll(0)
                        if events:
                            spin.misses = 0
                        else:
                            spin.missed()
                    if not events:
                        events = poll(0.1 if self.changed else None)
                for fd, _ in events:
                    tag = by_fd.get(fd)
                    if tag is None:
                        continue  # dropped earlier in this round
                    if tag == "listener":
                        self.accept(listener)
                    elif tag == "parent":
                        if not self.control():
                            return 0
                    else:
                        self.read_client(tag)
                self.push_stats()
        finally:
            listener.close()
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def watch(self, fd: int, tag: Any) -> None:
        self.by_fd[fd] = tag
        self.poller.register(fd)

    def accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of descriptors, say: the clients we have go on
                return
            self.expire_unauthenticated()
            sock.setblocking(False)
            client = _Client(sock, self.next_id)
            self.next_id += 1
            self.clients[client.id] = client
            self.watch(sock.fileno(), client)
            try:
                sock.send(client.nonce)  # 32 bytes into an empty socket buffer
            except OSError:
                self.drop(client)

    def expire_unauthenticated(self) -> None:
        """Peers that have not proved the key within a few seconds, or beyond a small number,
        are dropped: waiting connections cannot pile up."""
        waiting = [c for c in self.clients.values() if not c.authed]
        now = time.monotonic()
        for n, c in enumerate(waiting):
            if now - c.since > _PREAUTH_SECONDS or len(waiting) - n >= _PREAUTH_LIMIT:
                self.drop(c)

    def authenticate(self, client: _Client) -> None:
        """Read the peer's proof: raw bytes, at most ``HELLO`` of them; descriptors sent along
        are discarded by the kernel (plain ``recv``); nothing is unpickled."""
        try:
            data = client.sock.recv(HELLO - len(client.hello))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(client)
            return
        client.hello += data
        if len(client.hello) < HELLO:
            return
        proof, nonce_c = client.hello[:NONCE], client.hello[NONCE:]
        if not hmac.compare_digest(proof, client_proof(self.key, client.nonce)):
            self.drop(client)
            return
        try:
            client.sock.send(server_proof(self.key, nonce_c, client.nonce))
        except OSError:
            self.drop(client)
            return
        client.sock.setblocking(True)
        client.authed = True

    def read_client(self, client: _Client) -> None:
        if not client.authed:
            self.authenticate(client)
            return
        try:
            got = client.reader.read(client.sock)
        except OSError:
            got = None
        except Exception:  # a malformed frame header (a huge length, say)
            self.drop(client)
            return
        try:
            alive = got is not None
            frames = got if got is not None else client.reader.frames()
            if len(frames) > 1:
                client.out = []
            for f in frames:
                self.handle(client, f)
                if client.id not in self.clients:
                    return
            out, client.out = client.out, None
            if out:
                send_parts(client.sock, out)
            if not alive:
                self.drop(client)
        except Exception:  # a malformed frame costs its connection only (never the server)
            client.out = None
            if client.id in self.clients:
                self.drop(client)


_STOP_HINT = (
    "stop() keeps the state by sending it to the process that owns the Share: store a value "
    "that can be pickled there, or delete it (del share.{name}) before stop()"
)


def serve_main(conn: BlockingConn, payload: dict[str, Any], header: dict[str, Any]) -> int:
    """Entry of the Share server child."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return Server(conn, payload).serve()
