"""The zygote: a single-threaded fork server that keeps warm spare children.

::

    parent ──control (SOCK_SEQPACKET)──► zygote ──fork──► spare child (blocked on its channel)
       ▲          ("fork", n)               │
       │   ◄── ("forked", pid) + channel fd ┘   the zygote keeps no copy of the channel
       │   ◄── ("exit", pid, status)            after reaping a child (SIGCHLD)

A spare is a forked copy of the zygote that has already imported the engine and the
serializers; starting a process is sending its payload down the spare's channel, so ``start()``
costs a few hundred microseconds instead of an interpreter start-up.

The zygote is single-threaded, so forking it is safe even when the parent (a Jupyter kernel)
runs many threads. It is created by ``os.fork()`` from a single-threaded parent (a plain
script: the zygote then shares the parent's imported modules), and otherwise by starting a new
interpreter (``python -c``). When the control socket reaches EOF (the parent exited, crashed or
was killed) the zygote SIGKILLs every child it still has and exits; children also ask the
kernel for SIGKILL when the zygote dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import array
import gc
import os
import pickle
import select
import signal
import socket
import sys
from typing import Any, NoReturn

PR_SET_PDEATHSIG = 1


def set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` to this process when its parent thread exits."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except Exception:
        pass


def _send(ctrl: socket.socket, msg: tuple[object, ...], fds: list[int] | None = None) -> None:
    anc = []
    if fds:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
    try:
        ctrl.sendmsg([pickle.dumps(msg)], anc)
    except OSError:
        pass


def serve(ctrl: socket.socket, idle_work: list[Any] | None = None) -> NoReturn:
    """The zygote's loop. Never returns. ``idle_work`` runs once nothing is pending (a forked
    zygote greets and forks its first spare before preloading the rest)."""
    code = 0
    try:
        _serve(ctrl, idle_work or [])
    except BaseException:
        code = 70
    os._exit(code)


_terminated = False


def _on_term(signum: int, frame: Any) -> None:
    global _terminated
    _terminated = True  # the loop wakes up (wakeup fd) and ends every child's tree


def _serve(ctrl: socket.socket, idle_work: list[Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM (also our parent-death signal, see forked_main): end the children's trees first
    signal.signal(signal.SIGTERM, _on_term)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    ctrl.setblocking(True)
    children: set[int] = set()
    me = os.getpid()
    _send(ctrl, ("hello", me))
    while True:
        if idle_work:
            readable, _, _ = select.select([ctrl.fileno(), wake_r], [], [], 0)
            if not readable:
                try:
                    idle_work.pop(0)()
                except Exception:
                    pass
                continue
        try:
            readable, _, _ = select.select([ctrl.fileno(), wake_r], [], [])
        except InterruptedError:
            readable = [wake_r]
        if wake_r in readable:
            try:
                while os.read(wake_r, 4096):
                    pass
            except (BlockingIOError, OSError):
                pass
            if _terminated:
                _shutdown(children)
                return
            _reap(ctrl, children)
        if ctrl.fileno() in readable:
            try:
                data = ctrl.recv(65536)
            except OSError:
                data = b""
            if not data:
                _shutdown(children)
                return
            cmd = pickle.loads(data)
            if cmd[0] == "fork":
                for _ in range(int(cmd[1])):
                    pid = _fork_spare(ctrl, wake_r, wake_w, me, cmd[2] if len(cmd) > 2 else None)
                    if pid:
                        children.add(pid)
            elif cmd[0] == "exit":
                _shutdown(children)
                return
        _reap(ctrl, children)


def _reap(ctrl: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)
        _send(ctrl, ("exit", pid, status))


def _shutdown(children: set[int]) -> None:
    """The parent is gone or asked us to exit: every child and what it started (its process
    group, see ``_fork_spare``) is killed."""
    for pid in list(children):
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for pid in list(children):
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass


def _fork_spare(
    ctrl: socket.socket, wake_r: int, wake_w: int, zygote_pid: int, preload: object
) -> int:
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    gc.freeze()  # children share the zygote's objects: keep the collector off their pages
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _own_group()
            ctrl.close()
            parent_end.close()
            os.close(wake_r)
            os.close(wake_w)
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            set_pdeathsig()
            if os.getppid() != zygote_pid:
                os._exit(0)
            from ._child import spare_main

            spare_main(child_end, zygote_pid)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            code = 70
        os._exit(code)
    _own_group(pid)  # both sides set it: no window in which the child is in ours
    child_end.close()
    _send(ctrl, ("forked", pid), [parent_end.fileno()])
    parent_end.close()
    return pid


def _own_group(pid: int = 0) -> None:
    """Make child ``pid`` (0: this process) the leader of a new process group."""
    try:
        os.setpgid(pid, 0)
    except OSError:  # already done by the other side, or it exec'd / exited
        pass


def _preload() -> None:
    """Import what every child needs, once, in the zygote."""
    import pickle  # noqa: F401

    from . import _child  # noqa: F401

    # what unpickling a process or a pool item needs; imported once here, not per child
    for module in (
        "suitkaise_nb.processing",
        "suitkaise_nb._pool._worker",
        "suitkaise_nb._share._server",
    ):
        try:
            __import__(module)
        except Exception:
            pass

    for name in os.environ.get("SUITKAISE_NB_PRELOAD", "dill").split(","):
        if name:
            try:
                __import__(name)
            except Exception:
                pass


def spawned_main() -> NoReturn:
    """Entry point when the zygote is a fresh interpreter (``python -c``)."""
    fd = int(os.environ.pop("SUITKAISE_NB_ZYGOTE_FD"))
    ctrl = socket.socket(fileno=fd)
    # no PR_SET_PDEATHSIG here: it follows the parent *thread* that started us, which may be a
    # short-lived one; EOF on the control socket is what tells us the parent is gone.
    _preload()
    serve(ctrl)


def forked_main(ctrl: socket.socket) -> NoReturn:
    """Entry point in a zygote forked from a single-threaded parent: it already has what the
    parent imported, so it greets at once and preloads the rest when idle. It keeps none of
    the parent's descriptors (see :func:`drop_inherited_fds`)."""
    drop_inherited_fds(keep={1, 2, ctrl.fileno()})
    # the parent's death: SIGTERM (not SIGKILL), so that the children's trees go first
    serve(ctrl, [lambda: set_pdeathsig(signal.SIGTERM), _preload])


def open_fds() -> list[int]:
    """The descriptors open in this process (``/proc/self/fd`` on Linux, ``/dev/fd`` on macOS;
    otherwise every number below the soft limit, up to 65,536, that ``fstat`` accepts)."""
    for d in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        fds = []
        for name in names:
            try:
                fd = int(name)
                os.fstat(fd)  # the listing's own descriptor is closed by now
            except (ValueError, OSError):
                continue
            fds.append(fd)
        return sorted(fds)
    import resource

    limit = min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 65536)
    found = []
    for fd in range(limit):
        try:
            os.fstat(fd)
        except OSError:
            continue
        found.append(fd)
    return found


def drop_inherited_fds(keep: set[int]) -> None:
    """Release every descriptor a forked fork server inherited from its parent (the script's
    pipes, files, sockets) except ``keep``: as with ``forkserver`` and ``spawn``, the user's
    pipes reach EOF when the user closes them. Each is replaced by ``/dev/null`` rather than
    closed, so that a Python object still holding the number (a file, a socket) cannot later
    close a descriptor of ours that reused it. Standard input becomes ``/dev/null`` too."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in open_fds():
            if fd in keep or fd == devnull:
                continue
            try:
                os.dup2(devnull, fd, inheritable=fd < 3)
            except OSError:
                pass
    finally:
        os.close(devnull)
