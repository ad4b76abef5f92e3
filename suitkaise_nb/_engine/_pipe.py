"""``Pipe``: a private two-way (or one-way) channel between a parent and one child.

::

    anchor, point = Pipe.pair()          # a socketpair, framed like every channel (_wire)
    proc = Worker(point); proc.start()   # the point travels with the process (SCM_RIGHTS)
    point.close()                        # the parent's copy of the point is no longer needed
    anchor.send(x); anchor.recv()

The anchor is always locked: it stays in the process that created the pair, and trying to ship
it raises :class:`PipeEndpointError`. A point can be locked too (``lock()``) to keep it from
being shipped by accident. With ``one_way=True`` the anchor only sends and the point only
receives.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from .._errors import PipeEndpointError
from . import _barriers, _serial
from ._wire import BlockingConn

_K_DATA = 32


class _End:
    _role = "end"

    def __init__(self, sock: socket.socket, one_way: bool, can_send: bool, can_recv: bool) -> None:
        self._conn: BlockingConn | None = BlockingConn(sock)
        self._one_way = one_way
        self._can_send = can_send
        self._can_recv = can_recv
        self._locked = False
        self._rlock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._conn is None

    @property
    def locked(self) -> bool:
        return self._locked

    def _live(self) -> BlockingConn:
        if self._conn is None:
            raise PipeEndpointError(f"this Pipe {self._role} is closed")
        return self._conn

    def send(self, obj: Any) -> None:
        """Send one object to the other end."""
        if not self._can_send:
            raise PipeEndpointError(f"this is a one-way pipe: the {self._role} can only receive")
        conn = self._live()
        _barriers.settle()  # whoever reads the message must see the Share writes before it
        data, bufs, fds = _serial.dumps_with_fds(obj, "the pipe message")
        try:
            conn.send(_K_DATA, data, bufs, fds)
        except OSError as exc:
            raise PipeEndpointError(f"the other end of the pipe is gone: {exc}") from exc

    def recv(self, timeout: float | None = None) -> Any:
        """Receive one object; blocks (or up to ``timeout`` s, then raises TimeoutError).

        Raises EOFError when the other end was closed."""
        if not self._can_recv:
            raise PipeEndpointError(f"this is a one-way pipe: the {self._role} can only send")
        conn = self._live()
        with self._rlock:
            frame = conn.recv(timeout)
        if frame is None:
            raise TimeoutError(f"nothing arrived on the pipe within {timeout} s")
        return _serial.loads(frame.main, frame.buffers, frame.fds)

    def poll(self, timeout: float = 0.0) -> bool:
        """True when something can be received within ``timeout`` seconds."""
        conn = self._live()
        import select

        if conn.ready:
            return True
        r, _, _ = select.select([conn.sock], [], [], timeout)
        return bool(r)

    def close(self) -> None:
        """Close this end (the other end then sees EOF)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def lock(self) -> None:
        """Forbid shipping this end to another process."""
        self._locked = True

    def unlock(self) -> None:
        """Allow shipping this end again."""
        self._locked = False

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("locked" if self._locked else "open")
        kind = "one-way " if self._one_way else ""
        return f"<Pipe.{type(self).__name__} {kind}{state}>"


class Anchor(_End):
    """The end that stays in the process that created the pair (always locked)."""

    _role = "anchor"

    def __init__(self, sock: socket.socket, one_way: bool) -> None:
        super().__init__(sock, one_way, can_send=True, can_recv=not one_way)
        self._locked = True

    def unlock(self) -> None:
        raise PipeEndpointError(
            "a Pipe anchor always stays in the process that created the pair; pass the point"
        )

    def __reduce__(self) -> Any:
        raise PipeEndpointError(
            "a Pipe anchor cannot be sent to another process; pass the point "
            "(anchor, point = Pipe.pair()) and keep the anchor here"
        )


class Point(_End):
    """The end that is passed to an Skprocess (or sent in a ``tell()`` message)."""

    _role = "point"

    def __init__(self, sock: socket.socket, one_way: bool) -> None:
        super().__init__(sock, one_way, can_send=not one_way, can_recv=True)

    def __reduce__(self) -> Any:
        if self._locked:
            raise PipeEndpointError("this Pipe point is locked; call point.unlock() to ship it")
        conn = self._live()
        if _serial.collecting():  # our frames: the descriptor travels with the frame
            index = _serial.register_fd(os.dup(conn.sock.fileno()))
            return (_rebuild_point, (index, self._one_way))
        spawning = _mp_spawning()
        if spawning:  # the argument of a multiprocessing.Process (spawn, forkserver)
            from multiprocessing.reduction import DupFd

            return (_rebuild_mp_point, (DupFd(conn.sock.fileno()), self._one_way))
        raise PipeEndpointError(
            "a Pipe point can only travel inside an Skprocess, a Pool item, a tell() message or "
            "to a multiprocessing.Process; it cannot be pickled on its own"
        )


def _mp_spawning() -> bool:
    """True while multiprocessing pickles a new process's arguments."""
    import sys

    context = sys.modules.get("multiprocessing.context")
    return context is not None and context.get_spawning_popen() is not None


def _rebuild_point(index: int, one_way: bool) -> Point:
    fd = _serial.received_fd(index)
    return Point(socket.socket(fileno=fd), one_way)


def _rebuild_mp_point(dup: Any, one_way: bool) -> Point:
    return Point(socket.socket(fileno=dup.detach()), one_way)


_Anchor = Anchor
_Point = Point


class Pipe:
    """Factory of connected endpoint pairs: ``anchor, point = Pipe.pair(one_way=False)``."""

    Anchor = Anchor
    Point = Point

    def __init__(self) -> None:
        raise TypeError("use Pipe.pair() to create a connected (anchor, point) pair")

    @staticmethod
    def pair(one_way: bool = False) -> tuple[_Anchor, _Point]:
        """A connected ``(anchor, point)``; with ``one_way=True`` only anchor → point."""
        if not isinstance(one_way, bool):
            raise TypeError(f"one_way must be True or False, got {one_way!r}")
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return Anchor(a, one_way), Point(b, one_way)
