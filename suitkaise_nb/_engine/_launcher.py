"""Parent side of process creation: the zygote, warm spares, exit reports, kill, atexit.

::

    Launcher.get() ─► start the zygote (fork if this process is single-threaded, else spawn)
                   ─► start the Hub thread (after the fork: no fork ever happens with threads)
    take()/take_async() ─► a warm spare (pid, channel socket, pidfd); a replacement is requested
    watch_exit(pid, cb) ─► cb(exitcode) when the zygote reports the child's exit
    kill(spare, sig)    ─► pidfd_send_signal (no PID-reuse race) or os.kill

Shutdown is layered: objects close themselves (context managers, ``close()``), a
``weakref.finalize`` covers forgotten ones, and one atexit hook (registered on first use, not at
import) terminates what is still alive, closes the control socket (the zygote then SIGKILLs any
child left) and reaps the zygote.
"""

from __future__ import annotations

import array
import atexit
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from .._config import config
from ._hub import Hub


class Spare(NamedTuple):
    pid: int
    sock: socket.socket
    pidfd: int | None


SpareCallback = Callable[[Spare | None], None]
ExitCallback = Callable[[int], None]


def _single_threaded() -> bool:
    if threading.active_count() != 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return True


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
        return fd
    except OSError:
        return None


def exitcode_of(status: int) -> int:
    try:
        return os.waitstatus_to_exitcode(status)
    except ValueError:
        return status


def describe_exit(code: int | None) -> str:
    if code is None:
        return "unknown exit status"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        extra = {
            "SIGKILL": " (killed: by kill(), another process, or the OOM killer)",
            "SIGSEGV": " (segmentation fault)",
            "SIGABRT": " (aborted)",
            "SIGBUS": " (bus error)",
        }.get(name, "")
        return f"killed by {name}{extra}"
    return f"exit code {code}"


class Launcher:
    _instance: Launcher | None = None
    _instance_lock = threading.Lock()

    @classmethod
    def get(cls) -> Launcher:
        inst = cls._instance
        if inst is not None and inst.alive:
            return inst
        _forget_parent_after_fork()
        with cls._instance_lock:
            inst = cls._instance
            if inst is None or not inst.alive:
                hub = inst.hub if inst is not None else None
                inst = cls(hub)
                cls._instance = inst
            return inst

    @classmethod
    def current(cls) -> Launcher | None:
        """The launcher of this process, if one was started."""
        return cls._instance

    @classmethod
    def forget(cls) -> None:
        """In a forked child: the parent's launcher (and its lock) are not ours."""
        cls._instance = None
        cls._instance_lock = threading.Lock()

    def __init__(self, hub: Hub | None = None) -> None:
        self.alive = True
        self.method = config.start_method
        self._lock = threading.Lock()
        self._ready: deque[Spare] = deque()
        self._waiters: deque[SpareCallback] = deque()
        self._requested = 0
        self._exit_watchers: dict[int, ExitCallback] = {}
        self._early_exits: dict[int, int] = {}
        self.forked = False
        self._zygote_pid: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._ctrl: socket.socket | None = None
        if self.method != "spawn":
            self._start_zygote(allow_fork=hub is None and self.method == "auto")
        if hub is None:
            hub = Hub()
            hub.start()
        self.hub = hub
        if self._ctrl is not None:
            self.hub.call_soon(self.hub.watch, self._ctrl, self._on_control)
        _register_atexit()
        if self.method != "spawn" and config.spares:
            self._request(config.spares)

    # -- zygote ------------------------------------------------------------------------------
    def _start_zygote(self, allow_fork: bool) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        preload = config.serializer
        if allow_fork and hasattr(os, "fork") and _single_threaded():
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            pid = os.fork()
            if pid == 0:
                try:
                    mine.close()
                    os.environ["SUITKAISE_NB_PRELOAD"] = preload
                    from ._zygote import forked_main

                    forked_main(theirs)
                finally:
                    os._exit(70)
            self.forked = True
            self._zygote_pid = pid
        else:
            env = dict(os.environ)
            env["SUITKAISE_NB_ZYGOTE_FD"] = str(theirs.fileno())
            env["SUITKAISE_NB_PRELOAD"] = preload
            env["SUITKAISE_NB_SYSPATH"] = json.dumps(sys.path)
            code = (
                "import sys, os, json; "
                "sys.path[:] = json.loads(os.environ.pop('SUITKAISE_NB_SYSPATH')); "
                "from suitkaise_nb._engine._zygote import spawned_main; spawned_main()"
            )
            self._popen = subprocess.Popen(
                [sys.executable, "-c", code],
                pass_fds=(theirs.fileno(),),
                env=env,
                stdin=subprocess.DEVNULL,
                cwd=os.getcwd(),
            )
            self._zygote_pid = self._popen.pid
        theirs.close()
        mine.settimeout(60)
        try:
            hello = pickle.loads(mine.recv(65536))
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            raise RuntimeError(
                "suitkaise_nb could not start its fork server (zygote): "
                f"{exc!r}. Try suitkaise_nb.config.start_method = 'spawn'."
            ) from exc
        if hello[0] != "hello":
            raise RuntimeError(f"unexpected greeting from the zygote: {hello!r}")
        mine.settimeout(None)
        mine.setblocking(False)
        self._ctrl = mine

    def _on_control(self, mask: int) -> None:
        ctrl = self._ctrl
        assert ctrl is not None
        while True:
            try:
                data, anc, _flags, _addr = ctrl.recvmsg(65536, socket.CMSG_SPACE(64))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
                anc = []
            if not data:
                self._zygote_died()
                return
            fds: list[int] = []
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(cdata[: len(cdata) - len(cdata) % a.itemsize])
                    fds.extend(a)
            msg = pickle.loads(data)
            if msg[0] == "forked":
                sock = socket.socket(fileno=fds[0])
                self._spare_arrived(Spare(msg[1], sock, _pidfd(msg[1])))
            elif msg[0] == "exit":
                self._exited(msg[1], exitcode_of(msg[2]))

    def _zygote_died(self) -> None:
        self.alive = False
        if self._ctrl is not None:
            self.hub.unwatch(self._ctrl)
            try:
                self._ctrl.close()
            except OSError:
                pass
        self._reap_zygote(0.5)
        with self._lock:
            watchers = dict(self._exit_watchers)
            self._exit_watchers.clear()
            waiters = list(self._waiters)
            self._waiters.clear()
            ready = list(self._ready)  # dead too: never hand them out
            self._ready.clear()
        for spare in ready:
            _close_spare(spare)
        # children die with the zygote (PDEATHSIG): report them as killed
        for cb in watchers.values():
            cb(-signal.SIGKILL)
        for w in waiters:
            w(None)

    def _reap_zygote(self, timeout: float) -> None:
        if self._popen is not None:
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
        elif self._zygote_pid is not None and self.forked:
            import time

            end = time.monotonic() + timeout
            while True:
                try:
                    pid, _ = os.waitpid(self._zygote_pid, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid:
                    return
                if time.monotonic() > end:
                    try:
                        os.kill(self._zygote_pid, signal.SIGKILL)
                    except OSError:
                        pass
                    try:
                        os.waitpid(self._zygote_pid, 0)
                    except ChildProcessError:
                        pass
                    return
                time.sleep(0.005)

    # -- spares ------------------------------------------------------------------------------
    def _request(self, n: int) -> None:
        if n <= 0 or self._ctrl is None:
            return
        with self._lock:
            self._requested += n
        try:
            self._ctrl.send(pickle.dumps(("fork", n)))
        except OSError:
            with self._lock:
                self._requested -= n

    def _spare_arrived(self, spare: Spare) -> None:
        with self._lock:
            self._requested = max(0, self._requested - 1)
            early = self._early_exits.pop(spare.pid, None)
            cb = self._waiters.popleft() if self._waiters else None
            if cb is None:
                self._ready.append(spare)
        if early is not None and cb is None:
            self._discard_ready(spare.pid)
            return
        if cb is not None:
            cb(spare)

    def _exited(self, pid: int, code: int) -> None:
        with self._lock:
            cb = self._exit_watchers.pop(pid, None)
            if cb is None:
                self._early_exits[pid] = code
        if cb is not None:
            cb(code)
        else:
            self._discard_ready(pid)

    def _discard_ready(self, pid: int) -> None:
        with self._lock:
            for s in list(self._ready):
                if s.pid == pid:
                    self._ready.remove(s)
                    _close_spare(s)

    def take_async(self, callback: SpareCallback) -> None:
        """Call ``callback(spare)`` (possibly on the hub thread) when a spare is ready."""
        if self.method == "spawn":
            callback(self._spawn_child())
            return
        if not self.alive:  # the fork server is gone (e.g. killed with the kernel's children)
            callback(None)
            return
        with self._lock:
            spare = self._ready.popleft() if self._ready else None
            if spare is None:
                self._waiters.append(callback)
                missing = len(self._waiters) + config.spares - self._requested
            else:
                missing = config.spares - len(self._ready) - self._requested
        self._request(max(0, missing))
        if spare is not None:
            callback(spare)

    def take(self, n: int = 1) -> list[Spare]:
        """Block until ``n`` spares are ready (never call on the hub thread)."""
        if self.hub.in_hub_thread:
            raise RuntimeError("Launcher.take() would deadlock on the hub thread")
        got: list[Spare] = []
        done = threading.Event()
        lock = threading.Lock()

        def cb(spare: Spare | None) -> None:
            with lock:
                got.append(spare)  # type: ignore[arg-type]
                if len(got) == n:
                    done.set()

        with self._lock:
            short = n - len(self._ready)
        if short > 0:
            self._request(short)
        for _ in range(n):
            self.take_async(cb)
        if not done.wait(60):
            raise RuntimeError("suitkaise_nb: no child process could be started within 60 s")
        if any(s is None for s in got):
            for s in got:
                if s is not None:
                    _close_spare(s)
            raise RuntimeError("suitkaise_nb: the fork server died; try again")
        return got

    def watch_exit(self, pid: int, callback: ExitCallback) -> None:
        """``callback(exitcode)`` when ``pid`` exits (negative = killed by that signal)."""
        with self._lock:
            early = self._early_exits.pop(pid, None)
            if early is None and not self.alive and self.method != "spawn":
                early = -signal.SIGKILL  # no report can come: the child died with the zygote
            if early is None:
                self._exit_watchers[pid] = callback
        if early is not None:
            self.hub.call_soon(callback, early)

    def live_pids(self) -> list[int]:
        """Children started from this launcher that have not been reaped yet."""
        with self._lock:
            return sorted(self._exit_watchers)

    # -- spawn method (no zygote) ------------------------------------------------------------
    def _spawn_child(self) -> Spare:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        env["SUITKAISE_NB_CHILD_FD"] = str(theirs.fileno())
        env["SUITKAISE_NB_SYSPATH"] = json.dumps(sys.path)
        code = (
            "import sys, os, json; "
            "sys.path[:] = json.loads(os.environ.pop('SUITKAISE_NB_SYSPATH')); "
            "from suitkaise_nb._engine._child import spawned_child_main; spawned_child_main()"
        )
        popen = subprocess.Popen(
            [sys.executable, "-c", code],
            pass_fds=(theirs.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
            process_group=0,  # its own group: kill() takes what it starts too
        )
        theirs.close()
        pidfd = _pidfd(popen.pid)
        spare = Spare(popen.pid, mine, pidfd)
        if pidfd is not None:
            watch_fd = os.dup(pidfd)

            def on_exit(mask: int) -> None:
                self.hub.unwatch(watch_fd)
                os.close(watch_fd)
                self._exited(popen.pid, popen.wait())

            self.hub.call_soon(self.hub.watch, watch_fd, on_exit)
        else:  # pragma: no cover - non-Linux

            def waiter() -> None:
                code = popen.wait()
                self.hub.call_soon(self._exited, popen.pid, code)

            threading.Thread(target=waiter, daemon=True).start()
        return spare

    # -- signals -----------------------------------------------------------------------------
    @staticmethod
    def signal(spare: Spare, sig: int) -> None:
        """Send ``sig`` to a child; SIGKILL takes its whole tree: every child leads a process
        group of its own, which the processes it starts (``subprocess``, ``multiprocessing``)
        join, and the group is killed while its leader is still ours (a pid that cannot have
        been reused: the zygote has not reaped it, or its pidfd says it is there)."""
        if sig == signal.SIGKILL and _leader_alive(spare):
            kill_group(spare.pid)
        if spare.pidfd is not None:
            try:
                signal.pidfd_send_signal(spare.pidfd, sig)
                return
            except ProcessLookupError:
                return
            except OSError:
                pass
        try:
            os.kill(spare.pid, sig)
        except ProcessLookupError:
            pass

    # -- shutdown ----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Close the control socket (the zygote kills its children) and reap the zygote."""
        with self._lock:
            ready = list(self._ready)
            self._ready.clear()
        for s in ready:
            _close_spare(s)
        if self._ctrl is not None:
            try:
                self._ctrl.send(pickle.dumps(("exit",)))
            except OSError:
                pass
            self._reap_zygote(2.0)
        self.alive = False


def _leader_alive(spare: Spare) -> bool:
    if spare.pidfd is None:
        return True  # not reported gone (the caller checks): the zygote has not reaped it
    try:
        signal.pidfd_send_signal(spare.pidfd, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def kill_group(pgid: int) -> None:
    """SIGKILL the process group ``pgid`` (a child and what it started)."""
    killpg = getattr(os, "killpg", None)
    if killpg is None:
        return
    try:
        killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _close_spare(spare: Spare) -> None:
    try:
        spare.sock.close()
    except OSError:
        pass
    if spare.pidfd is not None:
        try:
            os.close(spare.pidfd)
        except OSError:
            pass


# -- forks ----------------------------------------------------------------------------------

_fork_hook = False


def _forget_parent_after_fork() -> None:
    """A process forked from this one (the fork server of a script, its children, a worker
    that forks) starts without this process's launcher: its own processes get their own. (The
    launcher's lock may be held by the thread that forked, and would stay locked there.)"""
    global _fork_hook
    if not _fork_hook and hasattr(os, "register_at_fork"):
        _fork_hook = True
        os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    global _live
    Launcher.forget()
    _live = weakref.WeakKeyDictionary()


# -- one atexit hook for everything -----------------------------------------------------------

_live: weakref.WeakKeyDictionary[Any, weakref.WeakMethod[Callable[[], None]]] = (
    weakref.WeakKeyDictionary()
)
_atexit_registered = False


def track(obj: Any, shutdown: Callable[[], None]) -> None:
    """Remember ``obj`` for the atexit hook, which calls ``shutdown`` (a method of ``obj``:
    held weakly, like ``obj``) if ``obj`` is still alive then."""
    _live[obj] = weakref.WeakMethod(shutdown)


def untrack(obj: Any) -> None:
    _live.pop(obj, None)


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        _atexit_registered = True
        atexit.register(_at_exit)


def _at_exit() -> None:
    for method in list(_live.values()):
        shutdown = method()
        if shutdown is not None:
            try:
                shutdown()
            except Exception:
                pass
    inst = Launcher.current()
    if inst is not None and inst.alive:
        inst.shutdown()
