"""The Share server: one single-threaded process that owns the shared objects.

Every request is executed to completion before the next one is read, so each operation —
a read, an assignment, a method call, an in-place ``+=`` — is atomic, and the operations of
one client are applied in the order it sent them. Clients connect to an AF_UNIX socket in a
private directory (0700, the socket itself 0600) and must answer an HMAC-SHA256 challenge
with the Share's key before any request is read. Nothing listens on TCP.
"""

from __future__ import annotations

import hashlib
import hmac
import operator
import os
import pickle
import select
import signal
import socket
import time
import traceback
from typing import Any

from .._engine import _serial
from .._engine._wire import BlockingConn, FrameReader, Spin, encode, send_parts
from .._pool._remote import short_repr
from ._protocol import (
    K_ERR,
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

_MUTATING = {"set", "del", "aug", "call", "callx", "setitem", "delitem", "augitem", "clear"}
_NONE = pickle.dumps(None, protocol=5)


class _Client:
    __slots__ = ("authed", "id", "nonce", "ops", "out", "reader", "sock")

    def __init__(self, sock: socket.socket, cid: int) -> None:
        self.sock = sock
        self.out: list[Any] | None = None  # answers collected while a batch is handled
        self.id = cid
        self.reader = FrameReader()
        self.authed = False
        self.nonce = os.urandom(32)
        self.ops = 0


class Server:
    def __init__(self, conn: BlockingConn, payload: dict[str, Any]) -> None:
        self.parent = conn
        self.root: dict[str, Any] = payload["state"]
        self.key: bytes = payload["authkey"]
        self.path: str = payload["path"]
        self.poller = select.epoll()
        self.by_fd: dict[int, Any] = {}  # fd -> "listener", "parent" or a _Client
        self.clients: dict[int, _Client] = {}
        self.next_id = 1
        self.ops = 0
        self.changed: set[str] = set()
        self.last_stats = 0.0
        self.running = True

    # -- operations ------------------------------------------------------------------------
    def walk(self, path: tuple[str, ...]) -> Any:
        try:
            obj = self.root[path[0]]
        except KeyError:
            raise AttributeError(f"the Share has no attribute {path[0]!r}") from None
        for step in path[1:]:
            obj = obj[step.key] if type(step) is Item else getattr(obj, step)
        return obj

    def assign(self, path: tuple[str, ...], value: Any) -> None:
        if len(path) == 1:
            self.root[path[0]] = value
            return
        target, last = self.walk(path[:-1]), path[-1]
        if type(last) is Item:
            target[last.key] = value
        else:
            setattr(target, last, value)

    def execute(self, op: str, path: tuple[str, ...], args: tuple[Any, ...]) -> Any:
        if op == "get":
            return self.walk(path)
        if op == "set":
            self.assign(path, args[0])
            return None
        if op == "aug":
            fn = getattr(operator, args[0])
            self.assign(path, fn(self.walk(path), args[1]))
            return None
        if op == "call":
            return self.walk(path)(*args[0], **args[1])
        if op == "callx":  # a call whose value nobody reads (not even pickled)
            self.walk(path)(*args[0], **args[1])
            return None
        if op == "del":
            if len(path) == 1:
                try:
                    del self.root[path[0]]
                except KeyError:
                    raise AttributeError(f"the Share has no attribute {path[0]!r}") from None
            else:
                target, last = self.walk(path[:-1]), path[-1]
                if type(last) is Item:
                    del target[last.key]
                else:
                    delattr(target, last)
            return None
        if op == "getitem":
            return self.walk(path)[args[0]]
        if op == "setitem":
            self.walk(path)[args[0]] = args[1]
            return None
        if op == "delitem":
            del self.walk(path)[args[0]]
            return None
        if op == "augitem":
            container = self.walk(path)
            fn = getattr(operator, args[1])
            container[args[0]] = fn(container[args[0]], args[2])
            return None
        if op == "len":
            return len(self.walk(path))
        if op == "iter":
            return list(self.walk(path))
        if op == "contains":
            return args[0] in self.walk(path)
        if op == "repr":
            return repr(self.walk(path))
        if op == "str":
            return str(self.walk(path))
        if op == "names":
            return sorted(self.root)
        if op == "has":
            return path[0] in self.root
        if op == "clear":
            self.root.clear()
            return None
        if op == "ping":
            return os.getpid()
        raise ValueError(f"unknown Share operation {op!r}")

    def local(self, op: str, path: tuple[str, ...], args: tuple[Any, ...]) -> Any:
        """An operation issued inside the server (by a shared object's method through a Share
        handle it holds): run in place, with the same copy semantics as a remote request."""
        data, bufs = _serial.dumps(args, what="the value sent to the Share")
        value = self.execute(op, path, _serial.loads(data, [memoryview(b) for b in bufs]))
        self.ops += 1
        if op in _MUTATING and path:
            self.changed.add(path[0])
        elif op == "clear":
            self.changed.add("*")
        data, bufs = _serial.dumps(value, what="the value read from the Share")
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
        if not client.authed:
            expected = hmac.new(self.key, client.nonce, hashlib.sha256).digest()
            if f.kind == K_HELLO and hmac.compare_digest(bytes(f.main), expected):
                client.authed = True
                self.reply(client, K_OK, b"")
            else:
                self.drop(client)
            return
        if f.kind != K_REQ:
            return
        try:
            if f.buffers or f.fds:
                op, path, args = _serial.loads(f.main, f.buffers, f.fds)
            else:  # the usual request: plain data, one unpickling call
                op, path, args = pickle.loads(f.main)
            value = self.execute(op, path, args)
            bufs: list[pickle.PickleBuffer] = []
            if value is None:  # most often (a write): the answer is prebuilt
                data = _NONE
            else:
                data, bufs = _serial.dumps(value, what="the value read from the Share")
        except BaseException as exc:  # the server keeps running whatever a method does
            self.reply_error(client, exc)
            return
        self.ops += 1
        client.ops += 1
        if op in _MUTATING and path:
            self.changed.add(path[0])
        elif op == "clear":
            self.changed.add("*")
        self.reply(client, K_OK, data, bufs)

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
            try:
                self.poller.unregister(fd)
            except OSError:
                pass
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
            "per_client": {c.id: c.ops for c in self.clients.values()},
            "names": sorted(self.root),
            "reprs": reprs,
        }
        self.changed = set()
        try:
            self.parent.send(K_STATS, pickle.dumps(stats))
        except OSError:
            os._exit(1)

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
                data, bufs = _serial.dumps(self.root, what="the Share's state")
                self.parent.send(K_STATE, data, bufs)
                return False
            if f.kind == K_EXIT:
                return False
        return True

    def serve(self) -> int:
        from . import _share

        _share._in_server = self
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
                        events = poll(0.1 if self.changed else -1)
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
        self.poller.register(fd, select.EPOLLIN)

    def accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(True)
            client = _Client(sock, self.next_id)
            self.next_id += 1
            self.clients[client.id] = client
            self.watch(sock.fileno(), client)
            try:
                sock.sendall(client.nonce)
            except OSError:
                self.drop(client)

    def read_client(self, client: _Client) -> None:
        try:
            got = client.reader.read(client.sock)
        except OSError:
            got = None
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
            try:
                send_parts(client.sock, out)
            except OSError:
                self.drop(client)
                return
        if not alive:
            self.drop(client)


def serve_main(conn: BlockingConn, payload: dict[str, Any], header: dict[str, Any]) -> int:
    """Entry of the Share server child."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return Server(conn, payload).serve()
