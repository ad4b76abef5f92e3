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

import os
import pickle
import shutil
import stat
import tempfile
import threading
import time
import warnings
import weakref
from sys import _getframe
from typing import Any

from .. import _events
from .._engine import _barriers, _serial
from .._engine._launcher import Launcher, Spare, track, untrack
from .._engine._model import _ids
from .._engine._wire import AsyncConn, Frame
from .._errors import ShareError, ShareValueError
from .._modifiers import check_timeout
from ._handle import AugOp, access, send_aug
from ._link import Link, link_for, register_link
from ._oracle import protected, usage
from ._protocol import (
    K_EXIT,
    K_READY,
    K_RESUME,
    K_SNAPSHOT,
    K_STATE,
    K_STATE_ERR,
    K_STATS,
)
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
        self.link: Link | None = None
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
            {"state": state, "authkey": key, "path": path}, "the Share's state", strict=True
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
            link = owner.link = Link(path, key)
        else:  # the same connection object: handles made before a stop() work again
            link.close()
            link.path, link.broken, link.kept = path, None, None
        register_link(link)  # handles sent back to this process use it too
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

    def _resume(self, owner: _Owner, link: Link) -> None:
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
        link: Link | None = self._sk.link
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
    def _live_link(self, what: str) -> Link | None:
        link: Link | None = self._sk.link
        if link is not None:
            return link
        owner: _Owner | None = self._sk.owner
        if owner is not None and owner.error:
            raise ShareError(owner.error)
        if owner is None:
            raise ShareError("this Share is not running")
        warnings.warn(
            f"Share is stopped: {what} applied to the state it keeps; call share.start()",
            RuntimeWarning,
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
        return access(link, (name,), usage(_getframe(1)))

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
            return
        _check_name(name)
        link = self._live_link(f"assigning {name!r}")
        if link is None:
            owner = self._sk.owner
            if isinstance(value, AugOp):
                raise ShareError("in-place operations need a running Share; call share.start()")
            owner.snapshot[name] = value
            return
        if type(value) is AugOp:
            send_aug(link, "aug", (name,), (value.op, value.operand), value)
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
        link = self._sk.link
        status = owner.model.state if owner is not None else ("running" if link else "stopped")
        names: list[str] = []
        if link is not None and not (owner is not None and owner.ended.is_set()):
            try:
                names = list(link.request("names", ()))
            except Exception:  # repr never raises
                names = list(owner.model.names) if owner is not None else []
                status = "unreachable" if owner is None else status
        elif owner is not None:
            names = list(owner.snapshot)
        return f"Share(status={status}, objects={names!r})"


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

    def __init__(self, owner: _Owner | None, link: Link | None) -> None:
        self.owner = owner
        self.link = link


#: One connection per process and server: the handles rebuilt for every pool chunk (or
#: process, or item) share it, instead of paying a connection and handshake each time.


def _client(path: str, key: bytes, host: str | None = None) -> Share:
    """A Share rebuilt in another process: a client of the server at ``path``."""
    share = Share.__new__(Share)
    object.__setattr__(share, "_sk", _State(None, link_for(path, key, host)))
    return share


_API = frozenset(n for n in dir(Share) if not n.startswith("_"))
