"""Framed messages over AF_UNIX stream sockets, with file-descriptor passing.

One frame::

    ┌──────────────── header (15 bytes, little endian) ───────────────┐
    │ kind u8 │ nfds u16 │ nbuf u32 │ main_len u64 │ nbuf * u64 lens  │ main │ buf0 │ buf1 …
    └─────────────────────────────────────────────────────────────────┘

``main`` is usually a pickle; ``buf*`` are its pickle-5 out-of-band buffers, written straight
from the sender's memory and received into one preallocated bytearray, so a 100 MB numpy array
is copied by the kernel and nowhere else. ``nfds`` descriptors travel as SCM_RIGHTS with the
first byte of the frame. Buffers of 1 MB or more are *spilled*: written once into a memfd that
travels as one of the frame's descriptors (its length carries the ``_IN_FD`` flag) and mapped
copy-on-write by the receiver, so they cross with one copy instead of two.

Two ends use this module:

* :class:`BlockingConn` in children (one thread reads, any thread writes under a lock);
* :class:`AsyncConn` in the parent's hub thread: reads never block, writes queue when the peer
  is slow so that the hub (and a parent ``tell()``) never stalls on a busy child.
"""

from __future__ import annotations

import array
import errno
import mmap
import os
import pickle
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

HEADER = struct.Struct("<BHIQ")
_ANC_FDS = 64
_ANC_SIZE = socket.CMSG_SPACE(_ANC_FDS * array.array("i").itemsize)
_RECV_CHUNK = 1 << 18
_BIG = 1 << 16  # bodies above this are received into their own buffer
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_SMALL = 4096  # frames up to this size are sent as one bytes object

Buffer = bytes | bytearray | memoryview | pickle.PickleBuffer


class Frame(NamedTuple):
    kind: int
    main: Buffer
    buffers: list[memoryview]
    fds: list[int]


def _nbytes(b: Buffer) -> int:
    return len(b) if isinstance(b, bytes | bytearray) else memoryview(b).nbytes


def encode(kind: int, main: Buffer, buffers: Sequence[Buffer] = (), nfds: int = 0) -> list[Buffer]:
    """Return the parts of one frame, ready for ``sendmsg`` (no copy of main or buffers)."""
    n = _nbytes(main)
    if not buffers:
        if n <= _SMALL:  # small: one contiguous bytes object is the cheapest to send
            return [_pack_head(kind, nfds, 0, n) + main]
        return [_pack_head(kind, nfds, 0, n), main]
    lens = [b.nbytes | _IN_FD if type(b) is _Spilled else memoryview(b).nbytes for b in buffers]
    head = _pack_head(kind, nfds, len(lens), n) + struct.pack(f"<{len(lens)}Q", *lens)
    parts: list[Buffer] = [head]
    if n:
        parts.append(main)
    parts.extend(b for b, ln in zip(buffers, lens, strict=True) if ln and not ln & _IN_FD)
    return parts


def spill(
    buffers: Sequence[Buffer], fds: Sequence[int], cache: MemfdCache | None = None
) -> tuple[list[Any], list[int]]:
    """Move large out-of-band buffers into memfds that travel as descriptors.

    The bytes are then copied once (into the memfd) instead of twice through the socket, and
    the receiver maps them (copy-on-write): a numpy array arrives without any further copy.
    With a ``cache``, memfds the receiver has let go of are written again instead of new ones.
    Returns the buffers (a spilled one becomes a ``_Spilled`` length marker) and the fds to
    send (``fds`` first, then the memfds)."""
    if not _HAS_MEMFD or not buffers:
        return list(buffers), list(fds)
    out: list[Any] = []
    extra: list[int] = []
    for b in buffers:
        n = memoryview(b).nbytes
        if n < SPILL_MIN or len(extra) >= _SPILL_MAX:
            out.append(b)
            continue
        try:
            with memoryview(b).cast("B") as view:
                fd = _new_memfd(view) if cache is None else cache.fill(view)
        except BaseException:
            _close_all(extra)
            raise
        extra.append(fd)
        out.append(_Spilled(n))
    return out, [*fds, *extra]


def _new_memfd(view: memoryview) -> int:
    fd = os.memfd_create("suitkaise-nb-buffer", os.MFD_CLOEXEC)
    try:
        _write_at(fd, view)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_at(fd: int, view: memoryview) -> None:
    done, n = 0, view.nbytes
    while done < n:
        done += os.pwrite(fd, view[done:], done)


class MemfdCache:
    """The memfds one sender spilled to one receiver, kept to be written again.

    A new memfd costs more than the copy into it: the kernel allocates and zeroes every page
    (on a small VM, 10 MB take ~10 ms to write into a fresh memfd and ~2 ms into a used one).
    So a sender keeps its memfds, and writes a new buffer into one the receiver reported it
    no longer maps (:meth:`FrameReader.released_spills`: its mapping was closed, so no view
    of the receiver can see the new bytes). Bounded: at most ``MAX_FREE`` bytes wait
    unused (and :meth:`trim` lets them all go: a pool does it when idle), and while
    ``MAX_LENT`` bytes are lent out (a receiver that keeps arrays mapped) new buffers get
    memfds that are not kept."""

    MAX_FREE = 64 << 20
    MAX_LENT = 1 << 30

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.free: list[tuple[int, int, int]] = []  # (size, fd, inode), oldest first
        self.lent: dict[int, tuple[int, int]] = {}  # inode -> (size, fd)
        self.lent_bytes = 0
        self.closed = False
        self.created = 0  # memfds made (the rest of the buffers reused one)

    def fill(self, view: memoryview) -> int:
        """A descriptor (to send, then close) of a memfd holding ``view``'s bytes."""
        n = view.nbytes
        found = None
        with self.lock:
            for k, (size, _fd, _ino) in enumerate(self.free):
                if n <= size <= 2 * n:
                    found = self.free.pop(k)
                    break
            keep = found is not None or (not self.closed and self.lent_bytes + n <= self.MAX_LENT)
        if not keep:
            return _new_memfd(view)
        if found is None:
            fd = _new_memfd(view)
            size, ino = n, os.fstat(fd).st_ino
            self.created += 1
        else:
            size, fd, ino = found
            try:
                _write_at(fd, view)
            except BaseException:
                os.close(fd)
                raise
        try:
            sent = os.dup(fd)
        except BaseException:
            os.close(fd)
            raise
        with self.lock:
            if self.closed:
                os.close(fd)
            else:
                self.lent[ino] = (size, fd)
                self.lent_bytes += size
        return sent

    def release(self, inodes: Iterable[int]) -> None:
        """The receiver closed its mappings of these memfds: they may be written again."""
        extra: list[int] = []
        with self.lock:
            for ino in inodes:
                got = self.lent.pop(ino, None)
                if got is None:
                    continue
                size, fd = got
                self.lent_bytes -= size
                self.free.append((size, fd, ino))
            total = sum(size for size, _, _ in self.free)
            while self.free and total > self.MAX_FREE:
                size, fd, _ = self.free.pop(0)
                total -= size
                extra.append(fd)
        _close_all(extra)

    def trim(self) -> None:
        """Close the memfds that wait unused (their memory goes back to the system)."""
        with self.lock:
            fds = [fd for _, fd, _ in self.free]
            self.free.clear()
        _close_all(fds)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            fds = [fd for _, fd, _ in self.free] + [fd for _, fd in self.lent.values()]
            self.free.clear()
            self.lent.clear()
            self.lent_bytes = 0
        _close_all(fds)


class _Spilled:
    """Stands for a buffer sent as a memfd: only its length goes in the frame header."""

    __slots__ = ("nbytes",)

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes


def _map_spilled(fd: int, n: int, kept: list[tuple[int, mmap.mmap]] | None) -> memoryview:
    try:
        m = mmap.mmap(fd, n, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        if kept is not None:
            kept.append((os.fstat(fd).st_ino, m))
    finally:
        os.close(fd)
    return memoryview(m)


_HAS_MEMFD = hasattr(os, "memfd_create")
SPILL_MIN = 1 << 20  # out-of-band buffers from this size travel as memfds
_SPILL_MAX = 16  # per frame (the receiver takes at most _ANC_FDS descriptors per read)
_IN_FD = 1 << 63  # flag on a buffer length in the header: this buffer is the next memfd

_pack_head = HEADER.pack
_unpack_head = HEADER.unpack_from
_HEAD = HEADER.size


def _fd_anc(fds: Sequence[int]) -> list[tuple[int, int, bytes]]:
    if not fds:
        return []
    return [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]


def _advance(parts: list[memoryview], n: int) -> list[memoryview]:
    while n:
        first = parts[0]
        if n >= first.nbytes:
            n -= first.nbytes
            parts.pop(0)
        else:
            parts[0] = first[n:]
            n = 0
    return parts


def send_parts(sock: socket.socket, parts: Sequence[Buffer], fds: Sequence[int] = ()) -> None:
    """Send every part on a blocking socket; the descriptors go with the first byte."""
    anc = _fd_anc(fds)
    if len(parts) == 1:
        sent = sock.sendmsg(parts, anc) if anc else sock.send(parts[0])
        if sent == _nbytes(parts[0]):
            return
        views = _advance([memoryview(parts[0]).cast("B")], sent)
        anc = []
    else:
        views = [memoryview(p).cast("B") for p in parts]
    while views:
        sent = sock.sendmsg(views[:512], anc)
        anc = []
        views = _advance(views, sent)


# -- bounded busy-waiting ---------------------------------------------------------------------
# A process woken by a message costs this 2-core VM 20-40 µs of scheduler and inter-processor
# work on each side, several times what the message itself costs. A receiver that expects an
# answer soon (listen(), a Share request, the Share server between requests) therefore first
# polls its socket without sleeping for at most SPIN_S; a sender then finds it awake and
# nothing has to be woken. The spin is adaptive per receiving end: after three waits in a
# row that outlast it, the end blocks at once for the next 64 waits (a slow peer costs
# nothing), then tries again. SUITKAISE_NB_SPIN_US=0 turns it off (children inherit it).
SPIN_S = max(0.0, float(os.environ.get("SUITKAISE_NB_SPIN_US", "50"))) * 1e-6


class Spin:
    """The adaptive busy-wait budget of one receiving end (see SPIN_S)."""

    __slots__ = ("misses", "skip")

    def __init__(self) -> None:
        self.misses = 0
        self.skip = 0

    def budget(self) -> float:
        if self.skip:
            self.skip -= 1
            return 0.0
        return SPIN_S

    def missed(self) -> None:
        self.misses += 1
        if self.misses >= 3:
            self.misses = 0
            self.skip = 64


class FrameReader:
    """Incremental frame parser fed by ``recvmsg``; handles fds and large bodies."""

    __slots__ = ("_big", "_big_meta", "_big_pos", "_buf", "_fds", "_pos", "_scratch", "mapped")

    def __init__(self) -> None:
        # the memfd mappings handed out, when the sender reuses memfds (released_spills)
        self.mapped: list[tuple[int, mmap.mmap]] | None = None
        self._scratch: memoryview | None = None
        self._buf = bytearray()
        self._pos = 0
        self._fds: deque[int] = deque()
        self._big: bytearray | None = None
        self._big_pos = 0
        self._big_meta: tuple[int, int, int, tuple[int, ...]] | None = None

    def recv_once(self, sock: socket.socket, flags: int = 0) -> bool:
        """Read once from ``sock``. Returns False at EOF. May raise BlockingIOError."""
        if self._big is not None:
            n = sock.recv_into(memoryview(self._big)[self._big_pos :], 0, flags)
            if n == 0:
                return False
            self._big_pos += n
            return True
        scratch = self._scratch
        if scratch is None:
            # one reusable receive buffer: recvmsg(n) would allocate n bytes on every call
            scratch = self._scratch = memoryview(bytearray(_RECV_CHUNK))
        nbytes, anc, _flags, _addr = sock.recvmsg_into([scratch], _ANC_SIZE, flags)
        data = scratch[:nbytes]
        if anc:
            self._take_anc(anc)
        if not nbytes:
            return False
        if self._pos == len(self._buf):
            self._buf = bytearray(data)
            self._pos = 0
        else:
            self._buf += data
        return True

    def read(self, sock: socket.socket, flags: int = 0) -> list[Frame] | None:
        """Read once and return the complete frames (None at EOF). May raise BlockingIOError.

        The usual message is one small frame arriving whole into an empty reader: it is cut
        straight out of the receive buffer."""
        if self._big is not None or self._pos != len(self._buf):
            return self.frames() if self.recv_once(sock, flags) else None
        scratch = self._scratch
        if scratch is None:
            scratch = self._scratch = memoryview(bytearray(_RECV_CHUNK))
        nbytes, anc, _flags, _addr = sock.recvmsg_into([scratch], _ANC_SIZE, flags)
        if anc:
            self._take_anc(anc)
        if not nbytes:
            return None
        if nbytes >= _HEAD and not anc:
            kind, nfds, nbuf, main_len = _unpack_head(scratch)
            if main_len + _HEAD == nbytes and not nbuf and not nfds:
                return [Frame(kind, bytes(scratch[_HEAD:nbytes]), [], [])]
        self._buf = bytearray(scratch[:nbytes])
        self._pos = 0
        return self.frames()

    def read_waiting(self, sock: socket.socket, spin: Spin, flags: int = 0) -> list[Frame] | None:
        """:meth:`read` that may busy-wait up to ``spin``'s budget before blocking."""
        budget = spin.budget()
        if budget:
            end = _perf() + budget
            while True:
                try:
                    got = self.read(sock, _DONTWAIT)
                except (BlockingIOError, InterruptedError):
                    if _perf() < end:
                        continue
                    spin.missed()
                    break
                spin.misses = 0
                return got
        return self.read(sock, flags)

    def _take_anc(self, anc: list[tuple[int, int, bytes]]) -> None:
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
                self._fds.extend(fds)

    def frames(self) -> list[Frame]:
        """Every complete frame parsed so far."""
        out: list[Frame] = []
        while True:
            if self._big is not None:
                if self._big_pos < len(self._big):
                    break
                out.append(self._finish_big())
                continue
            buf, pos = self._buf, self._pos
            avail = len(buf) - pos
            if avail < HEADER.size:
                break
            kind, nfds, nbuf, main_len = HEADER.unpack_from(buf, pos)
            need = HEADER.size + 8 * nbuf
            if avail < need:
                break
            lens = struct.unpack_from(f"<{nbuf}Q", buf, pos + HEADER.size) if nbuf else ()
            body = main_len + sum(ln for ln in lens if not ln & _IN_FD)
            start = pos + need
            if body <= _BIG and not nbuf:
                if avail < need + body:
                    break
                main = bytes(buf[start : start + body])
                self._pos = start + body
                out.append(Frame(kind, main, [], self._take_fds(nfds) if nfds else []))
                continue
            # a large body, or one with out-of-band buffers: give it its own bytearray
            target = bytearray(body)
            have = min(avail - need, body)
            with memoryview(buf) as view:  # one copy (a bytearray slice would make two)
                target[:have] = view[start : start + have]
            self._pos = start + have
            self._big, self._big_pos = target, have
            self._big_meta = (kind, nfds, main_len, lens)
        if self._pos > 1 << 20 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0
        return out

    def _finish_big(self) -> Frame:
        assert self._big is not None and self._big_meta is not None
        kind, nfds, main_len, lens = self._big_meta
        view = memoryview(self._big)
        self._big = None
        self._big_meta = None
        bufs = []
        off = main_len
        fds = self._take_fds(nfds)
        spilled = sum(1 for n in lens if n & _IN_FD)
        mapped = iter(fds[len(fds) - spilled :])  # the memfds are the frame's last descriptors
        if spilled:
            fds = fds[: len(fds) - spilled]
        for n in lens:
            if n & _IN_FD:
                bufs.append(_map_spilled(next(mapped), n & ~_IN_FD, self.mapped))
                continue
            bufs.append(view[off : off + n])
            off += n
        return Frame(kind, view[:main_len], bufs, fds)

    def released_spills(self) -> list[int]:
        """The inodes of memfd mappings nothing uses any more, now unmapped (for a sender
        with a :class:`MemfdCache`; needs ``mapped`` set to a list). A mapping still viewed
        (an array built on it) cannot be closed and stays listed."""
        mapped = self.mapped
        if not mapped:
            return []
        freed: list[int] = []
        still: list[tuple[int, mmap.mmap]] = []
        for ino, m in mapped:
            try:
                m.close()
            except BufferError:
                still.append((ino, m))
            else:
                freed.append(ino)
        mapped[:] = still
        return freed

    def _take_fds(self, n: int) -> list[int]:
        return [self._fds.popleft() for _ in range(min(n, len(self._fds)))]

    def close_fds(self) -> None:
        while self._fds:
            try:
                os.close(self._fds.popleft())
            except OSError:
                pass


class BlockingConn:
    """A child's end of its channel: blocking reads in one thread, locked writes from any."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        self.sock = sock
        self.reader = FrameReader()
        self.wlock = threading.Lock()
        self.ready: deque[Frame] = deque()
        self.spin = Spin()

    def send(
        self, kind: int, main: Buffer, buffers: Sequence[Buffer] = (), fds: Sequence[int] = ()
    ) -> None:
        if not buffers and not fds and type(main) is bytes and len(main) <= _SMALL:
            # the common message: one contiguous frame, one send
            frame = _pack_head(kind, 0, 0, len(main)) + main
            with self.wlock:
                sent = self.sock.send(frame)
                if sent != len(frame):
                    send_parts(self.sock, [memoryview(frame)[sent:]])
            return
        try:
            buffers, fds = spill(buffers, fds)
            parts = encode(kind, main, buffers, len(fds))
            with self.wlock:
                send_parts(self.sock, parts, fds)
        finally:
            _close_all(fds)

    def recv(self, timeout: float | None = None) -> Frame | None:
        """Next frame; None when ``timeout`` (seconds) passes first. EOFError at EOF."""
        if self.ready:
            return self.ready.popleft()
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            if deadline is not None:
                left = deadline - _monotonic()
                if left <= 0 or not _wait_readable(self.sock, left):
                    return None
            frames = self.reader.read_waiting(self.sock, self.spin)
            if frames is None:
                raise EOFError("the other end of the channel closed")
            if frames:
                first = frames[0]
                if len(frames) > 1:
                    self.ready.extend(frames[1:])
                return first

    def poll_frames(self) -> list[Frame]:
        """Every frame already available, without blocking."""
        out = list(self.ready)
        self.ready.clear()
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    if not self.reader.recv_once(self.sock):
                        out.extend(self.reader.frames())
                        raise EOFError("the other end of the channel closed")
                except (BlockingIOError, InterruptedError):
                    break
                out.extend(self.reader.frames())
        finally:
            self.sock.setblocking(True)
        return out

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _wait_readable(sock: socket.socket, timeout: float | None) -> bool:
    """Block until ``sock`` is readable (or closed), at most ``timeout`` seconds."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
    try:
        return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000 + 0.999))))
    except InterruptedError:
        return False


_monotonic = time.monotonic
_perf = time.perf_counter


class AsyncConn:
    """The parent's end of a channel, driven by the hub thread.

    ``send`` may be called from any thread: it writes what the socket accepts at once and
    queues the rest; the hub finishes the write when the socket becomes writable.
    """

    def __init__(
        self,
        sock: socket.socket,
        on_frames: Callable[[list[Frame]], None],
        on_eof: Callable[[], None],
        want_write: Callable[[AsyncConn], None],
    ) -> None:
        # The socket stays in blocking mode: the hub and writers never block because they pass
        # MSG_DONTWAIT, while a listener thread can wait in one plain receive (one syscall per
        # message instead of poll + receive). SO_RCVTIMEO bounds that wait so a listener still
        # notices, within a quarter second, a peer that vanished without an EOF.
        sock.setblocking(True)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 250_000))
        except OSError:
            pass
        self.sock = sock
        self.fileno = sock.fileno()
        self.reader = FrameReader()
        self.on_frames = on_frames
        self.on_eof = on_eof
        self._want_write = want_write
        self._lock = threading.Lock()
        self._out: deque[tuple[memoryview, Sequence[int]]] = deque()
        self.closed = False
        self.eof = False
        self.read_lock = threading.Lock()
        self.spin = Spin()
        self.read_deferred = False
        self.hub_reading = True
        self.after_release: list[Callable[[], None]] = []
        self.spill_cache: MemfdCache | None = None  # see MemfdCache
        # set by the hub that watches this connection
        self.resume_read: Callable[[AsyncConn, list[Callable[[], None]]], None] = (
            lambda conn, todo: None
        )
        self.hub_refresh: Callable[[], None] | None = None

    # -- writing ---------------------------------------------------------------------------
    def send(
        self,
        kind: int,
        main: Buffer,
        buffers: Sequence[Buffer] = (),
        fds: Sequence[int] = (),
        prefix: Sequence[Buffer] = (),
    ) -> None:
        """Queue one frame (after ``prefix``: already encoded frames that go in the same write,
        so the peer is woken once for all of them)."""
        if not buffers and not fds and not prefix and type(main) is bytes and len(main) <= _SMALL:
            self._send_small(_pack_head(kind, 0, 0, len(main)) + main)
            return
        buffers, fds = spill(buffers, fds, self.spill_cache)
        parts = encode(kind, main, buffers, len(fds))
        # descriptors then arrive with the prefix: still before the frame that claims them
        self.send_encoded([*prefix, *parts] if prefix else parts, fds)

    def send_encoded(self, parts: Sequence[Buffer], fds: Sequence[int] = ()) -> None:
        """Queue already encoded frames (see :func:`encode`) and write what the socket takes."""
        views = [memoryview(p).cast("B") for p in parts]
        with self._lock:
            if self.closed:
                raise BrokenPipeError("the channel is closed")
            queued = bool(self._out)
            first = True
            for v in views:
                self._out.append((v, fds if first else ()))
                first = False
            if not queued:
                self._flush_locked()
            pending = bool(self._out)
        if pending:
            self._want_write(self)

    def _send_small(self, frame: bytes) -> None:
        """One small frame: written at once when nothing is queued (the usual case)."""
        with self._lock:
            if self.closed:
                raise BrokenPipeError("the channel is closed")
            if not self._out:
                try:
                    sent = self.sock.send(frame, _DONTWAIT)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError as exc:
                    if exc.errno in _GONE:
                        return  # the peer is gone: its exit report tells the rest
                    raise
                if sent == len(frame):
                    return
                self._out.append((memoryview(frame)[sent:], ()))
            else:
                self._out.append((memoryview(frame), ()))
        self._want_write(self)

    def flush(self) -> bool:
        """Write what can be written; True when nothing is left queued."""
        with self._lock:
            self._flush_locked()
            return not self._out

    def _flush_locked(self) -> None:
        out = self._out
        while out:
            batch = []
            fds: Sequence[int] = ()
            for i, (view, vfds) in enumerate(out):
                if vfds:
                    if i:
                        break
                    fds = vfds
                batch.append(view)
                if len(batch) >= 256:
                    break
            try:
                sent = self.sock.sendmsg(batch, _fd_anc(fds), _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _GONE:
                    for _, vfds in out:
                        _close_all(vfds)
                    out.clear()
                    return
                raise
            _close_all(fds)
            while sent:
                view, _ = out[0]
                if sent >= view.nbytes:
                    sent -= view.nbytes
                    out.popleft()
                else:
                    out[0] = (view[sent:], ())
                    sent = 0

    @property
    def has_pending_writes(self) -> bool:
        return bool(self._out)

    # -- reading ----------------------------------------------------------------------------
    # The hub thread normally reads. A thread blocked in listen() may take ``read_lock`` and
    # read the socket itself, which saves a thread hand-off per message; while it holds the
    # lock the hub stops watching the socket and is told to resume when the lock is released.
    def on_readable(self) -> bool:
        """Hub thread: drain and dispatch; False when another thread is the reader now."""
        if not self.read_lock.acquire(False):
            self.read_deferred = True
            return False
        try:
            self.read_available()
        finally:
            self.read_lock.release()
        return True

    def read_available(self) -> None:
        """Drain everything available and dispatch it (caller holds ``read_lock``)."""
        frames: list[Frame] = []
        while not self.eof:
            try:
                alive = self.reader.recv_once(self.sock, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                alive = False
            frames.extend(self.reader.frames())
            if not alive:
                self.eof = True
        if frames:
            self.on_frames(frames)
        if self.eof:
            self.on_eof()

    def wait_readable(self, timeout: float | None) -> bool:
        if self.eof or self.closed:
            return False
        try:
            return _wait_readable(self.sock, timeout)
        except (ValueError, OSError):
            return False

    def read_once(self, block: bool = False) -> None:
        """One receive and dispatch (caller holds ``read_lock``): a listener that needs one
        message should not pay for a second, empty, receive. With ``block`` it waits in the
        receive itself (at most the socket's SO_RCVTIMEO)."""
        try:
            if block:
                frames = self.reader.read_waiting(self.sock, self.spin)
            else:
                frames = self.reader.read(self.sock, _DONTWAIT)
        except (BlockingIOError, InterruptedError, TimeoutError):
            return
        except OSError:
            frames = None
        if frames:
            self.on_frames(frames)
        elif frames is None:
            self.eof = True
            leftover = self.reader.frames()
            if leftover:
                self.on_frames(leftover)
            self.on_eof()

    def release_reader(self) -> None:
        """Give reading back to the hub (and run what waited for it)."""
        self.read_lock.release()
        if self.read_deferred or self.after_release:
            self.read_deferred = False
            todo, self.after_release = self.after_release, []
            self.resume_read(self, todo)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            for _, vfds in self._out:
                _close_all(vfds)
            self._out.clear()
        if self.spill_cache is not None:
            self.spill_cache.close()
        self.reader.close_fds()
        self.reader = FrameReader()  # let the receive buffers go now (the conn may linger)
        try:
            self.sock.close()
        except OSError:
            pass


_GONE = (errno.EPIPE, errno.ECONNRESET, errno.EBADF)


def _close_all(fds: Sequence[int]) -> None:
    """Descriptors handed to a send are owned by it: close them once they are on their way."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
