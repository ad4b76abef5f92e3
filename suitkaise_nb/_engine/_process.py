"""Skprocess: a class whose lifecycle runs in another process.

The same object plays two parts:

* in the parent it is a handle: ``start()`` ships it by value to a warm child, and ``wait``,
  ``result``, ``tell``, ``listen``, ``stop``, ``kill`` act on that child through a
  :class:`_ParentHandle` (kept in ``self._sk``, never shipped);
* in the child it is the real thing: the lifecycle loop calls its sections, and ``tell``,
  ``listen`` and ``stop`` talk to the parent through the child runtime (also ``self._sk``).

The user's ``__init__`` needs no ``super().__init__()``: ``Skprocess.__new__`` gives every
instance its ``process_config``, run counter and timers before ``__init__`` runs.

Lifecycle methods are wrapped in a descriptor so that ``process.__run__.timer`` is this
instance's timer for that section (``process.timers.run``).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
import weakref
from collections import deque
from typing import Any

from .. import _events
from .._config import config
from .._errors import (
    DeadlineExpired,
    NotStartedError,
    ProcessCrashedError,
    ProcessError,
    ResultTimeoutError,
)
from .._modifiers import check_timeout, modifiable, remaining
from .._sections import DUNDERS
from .._timing._timer import Sktimer
from . import _barriers, _serial
from ._child import K_BATCH, K_BOOT_ERROR, K_FINAL, K_START, K_STOP, K_TELL, ChildRuntime
from ._config import ProcessConfig
from ._launcher import Launcher, Spare, describe_exit, track, untrack
from ._model import ProcessModel, ProcessState, ProcessTimers
from ._reconnect import reconnect_shipping, spec_of
from ._section import Section
from ._wire import AsyncConn, Frame

_RUNTIME_ATTRS = ("_sk", "timers", "error")


def _init_runtime(obj: Skprocess) -> None:
    d = obj.__dict__
    d["process_config"] = ProcessConfig()
    d["_current_run"] = 0
    d["timers"] = ProcessTimers()
    d["error"] = None
    d["_sk"] = None


def _in_kernel() -> bool:
    app = sys.modules.get("ipykernel.kernelapp")
    if app is None:
        return False
    try:
        return bool(app.IPKernelApp.initialized())
    except Exception:
        return False


def capture_default() -> bool:
    if config.capture_output is not None:
        return config.capture_output
    return _in_kernel()


_env_at_start = dict(os.environ)
_raw_env: Any = getattr(os.environ, "_data", None)
_raw_at_start = dict(_raw_env) if isinstance(_raw_env, dict) else None


def _env_delta() -> dict[str, str | None]:
    """What the parent changed in its environment since import (usually nothing: cheap)."""
    if _raw_at_start is not None and _raw_env == _raw_at_start:
        return {}
    env: dict[str, str | None] = {k: v for k, v in os.environ.items() if _env_at_start.get(k) != v}
    env.update(dict.fromkeys((k for k in _env_at_start if k not in os.environ), None))
    return env


def child_header(entry: str, **extra: Any) -> dict[str, Any]:
    """What every child needs to look like its parent."""
    env: dict[str, str | None] = {k: v for k, v in os.environ.items() if _env_at_start.get(k) != v}
    env.update(dict.fromkeys((k for k in _env_at_start if k not in os.environ), None))
    header: dict[str, Any] = {
        "entry": entry,
        "sys_path": list(sys.path),
        "cwd": os.getcwd(),
        "env": env,
        "flush_interval": config.flush_interval,
        "capture": capture_default(),
    }
    header.update(extra)
    return header


def send_start(
    conn: AsyncConn, header: dict[str, Any], data: bytes, bufs: list[Any], fds: list[int]
) -> None:
    conn.send(K_START, pickle.dumps(header, protocol=5), [data, *bufs], fds)


class _ParentHandle:
    """Parent-side runtime of one started process (lives in ``proc._sk``)."""

    def __init__(self, proc: Skprocess, model: ProcessModel) -> None:
        self.proc_ref = weakref.ref(proc)
        self.model = model
        self.spare: Spare | None = None
        self.conn: AsyncConn | None = None
        self.launcher: Launcher | None = None
        self.ended = threading.Event()
        self.cond = threading.Condition(threading.Lock())
        self.inbox: deque[Any] = deque()
        self.waiting = 0  # listeners waiting on ``cond`` for the inbox
        self.outcome: tuple[str, Any, ProcessError | None] | None = None
        self.killed = False
        self.stop_sent = False

    # -- hub thread ------------------------------------------------------------------------------
    def on_frames(self, frames: list[Frame]) -> None:
        model = self.model
        for f in frames:
            kind = f.kind
            if kind == K_BATCH:
                self._apply_batch(pickle.loads(f.main))
            elif kind == K_TELL:
                try:
                    msg = _serial.loads(f.main, f.buffers, f.fds)
                except Exception as exc:
                    msg = _Unreadable(
                        ProcessError(f"a message from the child could not be read: {exc!r}")
                    )
                self.inbox.append(msg)
                if self.waiting:  # a listener sleeps on the condition (it counted itself first)
                    with self.cond:
                        self.cond.notify()
                if "process_message" in _events.by_hook:
                    _events.emit(
                        "process_message",
                        _events.ProcessMessage(
                            model,
                            "from_child",
                            msg.error if type(msg) is _Unreadable else msg,
                            time.time(),
                        ),
                    )
            elif kind == K_FINAL:
                try:
                    self.outcome = _serial.loads(f.main, f.buffers, f.fds)
                except Exception as exc:
                    err = ProcessError(f"the child's result could not be read: {exc!r}")
                    self.outcome = ("error", None, err)
            elif kind == K_BOOT_ERROR:
                msg, text = pickle.loads(f.main)
                self.outcome = ("error", None, ProcessError(msg, remote_traceback=text))

    def _apply_batch(self, batch: tuple[Any, ...]) -> None:
        state, section, run, lives_left, samples, out, failures = batch
        model = self.model
        model.section = section
        model.run = run
        model.lives_left = lives_left
        if failures:
            model.failures.extend(failures)
        if samples:
            timers = model.timers
            for name, values in samples.items():
                if self._feed_timers:
                    t = getattr(timers, name)
                    for v in values:
                        t.add_time(v)
        if state is not None and not model.state.ended:
            new = ProcessState(state)
            if new is not model.state and not (
                new is ProcessState.RUNNING and model.state is ProcessState.STOPPING
            ):
                self._set_state(new)
        if samples or section is not None:
            _events.emit(
                "process_progress",
                _events.ProcessProgress(model, run, section, lives_left, samples),
            )
        if out:
            if _events.has_observers("process_output"):
                for stream, text in out:
                    _events.emit("process_output", _events.ProcessOutput(model, stream, text))
            else:
                for stream, text in out:
                    target = sys.stdout if stream == "stdout" else sys.stderr
                    try:
                        target.write(text)
                        target.flush()
                    except Exception:
                        pass

    _feed_timers = True

    def mark_stopping(self) -> None:
        """(hub thread) A stop was sent: the state says so, unless the process already ended
        (a stop that races the natural end changes nothing)."""
        if self.model.state in (ProcessState.STARTING, ProcessState.RUNNING):
            self._set_state(ProcessState.STOPPING)

    def _set_state(self, new: ProcessState) -> None:
        old = self.model.state
        self.model.state = new
        _events.emit("process_state", _events.ProcessStateChanged(self.model, new.value, old.value))

    def on_eof(self) -> None:
        pass

    def on_exit(self, code: int) -> None:
        """The child is gone (hub thread): settle the final state."""
        conn = self.conn
        if conn is not None and not conn.eof:
            if not conn.read_lock.acquire(False):
                # a listener is reading right now: settle once it gives the socket back
                conn.after_release.append(lambda: self.on_exit(code))
                return
            try:
                conn.read_available()  # read what it wrote before exiting
            finally:
                conn.read_lock.release()
        model = self.model
        model.exitcode = code
        model.end_mono = time.monotonic()
        model.section = None
        if self.outcome is not None:
            kind, value, err = self.outcome
            if kind == "ok":
                model.result = value
                state = ProcessState.FINISHED
            else:
                model.result = value if kind == "handled" else None
                model.error = err
                state = ProcessState.FAILED
        elif self.killed:
            state = ProcessState.KILLED
            model.error = ProcessError(
                f"{model.name} (pid {model.pid}) was killed with kill(); it has no result"
            )
        else:
            model.error = ProcessCrashedError(
                f"{model.name} (pid {model.pid}) died without reporting a result: "
                f"{describe_exit(code)}, during run {model.run}",
                pid=model.pid,
                exitcode=code,
                current_run=model.run,
            )
            state = ProcessState.FAILED
        proc = self.proc_ref()
        if proc is not None:
            proc.__dict__["error"] = model.error
            proc.__dict__["_current_run"] = model.run
        self._set_state(state)
        self._close()
        with self.cond:
            self.cond.notify_all()
        self.ended.set()
        _events.emit(
            "process_ended", _events.ProcessEnded(model, state.value, model.result, model.error)
        )
        if proc is not None:
            untrack(proc)

    def _close(self) -> None:
        if self.conn is not None:
            if self.launcher is not None:
                self.launcher.hub.unwatch(self.conn.sock)
            self.conn.close()
        if self.spare is not None and self.spare.pidfd is not None:
            try:
                os.close(self.spare.pidfd)
            except OSError:
                pass

    # -- any thread --------------------------------------------------------------------------
    def send(self, kind: int, data: bytes, bufs: Any = (), fds: Any = ()) -> None:
        conn = self.conn
        if conn is None or conn.closed:  # closed once the end is settled
            raise ProcessError(f"{self.model.name} is {self.model.state.value}; cannot send to it")
        try:
            conn.send(kind, data, bufs, fds)
        except OSError as exc:
            if conn.closed:
                raise ProcessError(
                    f"{self.model.name} is {self.model.state.value}; cannot send to it"
                ) from None
            raise ProcessError(f"{self.model.name} cannot be reached: {exc}") from exc

    def signal(self, sig: int) -> None:
        if self.spare is not None and not self.ended.is_set():
            Launcher.signal(self.spare, sig)


class Skprocess:
    """Base class of a process with a lifecycle. Subclass it and define ``__run__``.

    Optional sections: ``__prerun__``, ``__postrun__`` (around every run), ``__onfinish__``
    (once, at the end), ``__result__`` (its value is what ``result()`` returns) and
    ``__error__`` (called when lives run out, with ``self.error`` set; its value is returned by
    ``result()`` instead of raising).

    Configure in ``__init__`` through ``self.process_config`` (no ``super().__init__()``
    needed): ``runs``, ``join_in``, ``lives``, ``timeouts.<section>``.
    """

    process_config: ProcessConfig
    timers: ProcessTimers
    error: BaseException | None
    _current_run: int
    _sk: Any

    _sk_lifecycle_base = True  # _section.BASE_MARK: what _child and _reconnect recognise

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is Skprocess:
            raise TypeError("Skprocess is a base class: subclass it and define __run__")
        obj = object.__new__(cls)
        _init_runtime(obj)
        return obj

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__ == "__main__":
            _serial.warm_up()  # it will travel by value: pay the serializer's import now
        for name, dunder in DUNDERS.items():
            attr = cls.__dict__.get(dunder)
            if attr is not None and not isinstance(attr, Section):
                if not callable(attr):
                    raise TypeError(f"{cls.__qualname__}.{dunder} must be a method")
                setattr(cls, dunder, Section(attr, name))

    # -- pickling: the runtime never travels ---------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for k in _RUNTIME_ATTRS:
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        _init_runtime(self)
        self.__dict__.update(state)

    # -- introspection ---------------------------------------------------------------------
    @property
    def _handle(self) -> _ParentHandle | None:
        sk = self.__dict__.get("_sk")
        return sk if isinstance(sk, _ParentHandle) else None

    @property
    def _child(self) -> ChildRuntime | None:
        sk = self.__dict__.get("_sk")
        return sk if isinstance(sk, ChildRuntime) else None

    @property
    def process_state(self) -> ProcessState:
        """created, starting, running, stopping, finished, failed or killed."""
        h = self._handle
        if h is not None:
            return h.model.state
        return ProcessState.RUNNING if self._child is not None else ProcessState.CREATED

    @property
    def pid(self) -> int | None:
        """The child's process id (None before ``start()``)."""
        h = self._handle
        if h is not None:
            return h.model.pid
        return os.getpid() if self._child is not None else None

    @property
    def current_run(self) -> int:
        """Completed runs; live in the parent while the child works."""
        h = self._handle
        if h is not None:
            return h.model.run
        return self._current_run

    @property
    def is_alive(self) -> bool:
        """True from ``start()`` until the child has exited."""
        h = self._handle
        if h is not None:
            return not h.ended.is_set()
        return self._child is not None

    @property
    def process_timer(self) -> Sktimer:
        """Aggregate timer of prerun + run + postrun per iteration (``timers.full_run``)."""
        return self.timers.full_run

    @property
    def model(self) -> ProcessModel | None:
        """The observable model the views read (None before ``start()``)."""
        h = self._handle
        return h.model if h is not None else None

    # -- control -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the lifecycle in a child process; returns at once."""
        if self._child is not None:
            raise ProcessError("start() cannot be called inside the child process")
        if self._handle is not None:
            raise ProcessError(
                f"{type(self).__name__} was already started (it is "
                f"{self._handle.model.state.value}); create a new instance to run it again"
            )
        cls = type(self)
        _barriers.settle()  # the child must see this process's pipelined Share writes
        spec = spec_of(cls)  # @autoreconnect: connections ship as placeholders (_reconnect)
        with _serial.collecting_fds() as fds, reconnect_shipping(spec, self, cls.__name__):
            data, bufs = _serial.dumps(self, what=cls.__name__)
        launcher = Launcher.get()
        model = ProcessModel(cls.__name__, self.process_config, self.timers)
        handle = _ParentHandle(self, model)
        handle.launcher = launcher
        model.handle_ref = weakref.ref(self)
        model.state = ProcessState.STARTING
        self.__dict__["_sk"] = handle
        spare = launcher.take(1)[0]
        handle.spare = spare
        model.pid = spare.pid
        model.started_at = time.time()
        model.start_mono = time.monotonic()
        conn = AsyncConn(spare.sock, handle.on_frames, handle.on_eof, launcher.hub.want_write)
        handle.conn = conn
        launcher.watch_exit(spare.pid, handle.on_exit)
        track(self, self._shutdown_at_exit)
        try:
            send_start(
                conn, child_header("suitkaise_nb._engine._child:run_process"), data, bufs, fds
            )
        except OSError:
            pass  # the exit report will say what happened
        launcher.hub.add_conn(conn)
        _events.emit("process_started", _events.ProcessStarted(model, self))

    def stop(self) -> None:
        """Graceful stop: finish the current section, then ``__onfinish__`` and ``__result__``.

        Works from the parent and from inside the process."""
        rt = self._child
        if rt is not None:
            rt.stop_requested = True
            return
        h = self._handle
        if h is None:
            raise ProcessError(f"{type(self).__name__} was never started; nothing to stop")
        if h.ended.is_set() or h.stop_sent:
            return
        h.stop_sent = True
        try:
            h.send(K_STOP, b"")
        except ProcessError:
            return
        launcher = h.launcher
        assert launcher is not None
        launcher.hub.call_soon(h.mark_stopping)

    def kill(self) -> None:
        """Kill the child at once: no cleanup, no result. Returns when it is gone."""
        if self._child is not None:  # this process and what it started (its group)
            if os.getpgid(0) == os.getpid():
                os.killpg(0, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
        h = self._handle
        if h is None:
            raise ProcessError(f"{type(self).__name__} was never started; nothing to kill")
        if h.ended.is_set():
            return
        h.killed = True
        h.signal(signal.SIGKILL)
        h.ended.wait(5.0)

    def _shutdown_at_exit(self) -> None:
        h = self._handle
        if h is not None and not h.ended.is_set():
            h.killed = True
            h.signal(signal.SIGKILL)

    @modifiable(timeout_error=ResultTimeoutError)
    def wait(self, timeout: float | None = None, *, _deadline: float | None = None) -> bool:
        """Block until the process has ended; False when ``timeout`` seconds pass first."""
        timeout = check_timeout(timeout)
        h = self._handle
        if h is None:
            return True  # nothing is running (as suitkaise: wait() before start() is True)
        if _deadline is not None:
            if not h.ended.wait(remaining(_deadline)):
                raise DeadlineExpired()
            return True
        return h.ended.wait(timeout)

    @modifiable(timeout_error=ResultTimeoutError)
    def result(self, *, _deadline: float | None = None) -> Any:
        """The value of ``__result__`` (waits for the end).

        Raises the section's error (``RunError``...) when the process failed and has no
        ``__error__``; returns ``__error__``'s value when it has one.
        """
        h = self._require_handle("result")
        if not h.ended.wait(remaining(_deadline)):
            raise DeadlineExpired()
        model = h.model
        if h.outcome is not None and h.outcome[0] in ("ok", "handled"):
            return model.result
        err = model.error
        if err is None:  # cannot happen once ended; say so rather than fail obscurely
            err = ProcessError(f"{model.name} ended ({model.state.value}) without a result")
        raise _fresh(err)

    @modifiable(timeout_error=ResultTimeoutError)
    def run(self, *, _deadline: float | None = None) -> Any:
        """``start()``, wait for the end, return ``result()``.

        An interrupt (Ctrl-C, a kernel interrupt) while waiting kills the process this call
        started, then propagates."""
        self.start()
        try:
            return self.result(_deadline=_deadline)
        except KeyboardInterrupt:
            self.kill()
            raise

    def tell(self, obj: Any) -> None:
        """Send ``obj`` to the other side (parent → child or child → parent); never blocks."""
        sk = self.__dict__.get("_sk")
        if type(sk) is ChildRuntime:
            sk.tell(obj)
            return
        h = sk if type(sk) is _ParentHandle else self._require_handle("tell")
        _barriers.settle()
        data, bufs, fds = _serial.dumps_with_fds(obj, "the message")
        h.send(K_TELL, data, bufs, fds)
        if "process_message" in _events.by_hook:
            _events.emit(
                "process_message", _events.ProcessMessage(h.model, "to_child", obj, time.time())
            )

    @modifiable(timeout_error=ResultTimeoutError)
    def listen(self, timeout: float | None = None, *, _deadline: float | None = None) -> Any:
        """The next message from the other side; None when ``timeout`` passes first.

        After the process ended, messages it sent are still returned, then None at once.
        """
        timeout = check_timeout(timeout)
        if _deadline is not None:
            left = remaining(_deadline)
            timeout = left if timeout is None else min(timeout, left or 0.0)
        sk = self.__dict__.get("_sk")
        if type(sk) is ChildRuntime:
            msg = sk.listen(timeout)
        else:
            h = sk if type(sk) is _ParentHandle else self._require_handle("listen")
            msg = _listen_parent(h, timeout)
        if msg is None and _deadline is not None and remaining(_deadline) == 0:
            raise DeadlineExpired()
        return msg

    def _require_handle(self, what: str) -> _ParentHandle:
        h = self._handle
        if h is None:
            raise NotStartedError(f"{type(self).__name__}.{what}() needs start() first")
        return h

    def __repr__(self) -> str:
        h = self._handle
        if h is None:
            return f"<{type(self).__name__} Skprocess {self.process_state.value}>"
        m = h.model
        runs = m.runs if m.runs is not None else "∞"
        return f"<{type(self).__name__} Skprocess pid={m.pid} {m.state.value} run {m.run}/{runs}>"


def _listen_parent(h: _ParentHandle, timeout: float | None) -> Any:
    """Wait for a message; the waiting thread reads the child's socket itself when it can."""
    inbox = h.inbox
    conn = h.conn
    if inbox:
        try:
            return _delivered(inbox.popleft())
        except IndexError:  # another listener took it
            pass
    elif timeout is None and conn is not None and conn.read_lock.acquire(False):
        # the hot path (a listen() loop): this thread reads the socket itself, one blocking
        # receive per message; anything unusual falls through to the general loop below
        try:
            while not inbox and not conn.eof and not conn.closed:
                conn.read_once(block=True)
                if not inbox and h.ended.is_set():
                    break
            if inbox:
                return _delivered(inbox.popleft())
        finally:
            conn.release_reader()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with h.cond:
            if h.inbox:
                return _delivered(h.inbox.popleft())
            if h.ended.is_set() or conn is None:
                return None
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return None
        if conn.eof or conn.closed or not conn.read_lock.acquire(False):
            # someone else reads: wait to be notified (short slices, in case they stop)
            with h.cond:
                h.waiting += 1
                try:
                    if not h.inbox and not h.ended.is_set():
                        h.cond.wait(0.05 if left is None else min(left, 0.05))
                finally:
                    h.waiting -= 1
            continue
        try:
            while True:
                with h.cond:
                    if h.inbox:
                        return _delivered(h.inbox.popleft())
                if conn.eof or conn.closed:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                if left is None:
                    conn.read_once(block=True)  # one syscall per message
                elif conn.wait_readable(left):
                    conn.read_once()
        finally:
            conn.release_reader()


class _Unreadable:
    """In the inbox instead of a message that could not be unpickled: listen() raises."""

    __slots__ = ("error",)

    def __init__(self, error: ProcessError) -> None:
        self.error = error


def _delivered(msg: Any) -> Any:
    if type(msg) is _Unreadable:
        raise msg.error
    return msg


def _fresh(err: BaseException) -> BaseException:
    """Raise a stored error again without growing its traceback every time."""
    err.__traceback__ = None
    return err
