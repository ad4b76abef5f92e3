"""What runs in a child process: bootstrap, the lifecycle loop, tell/listen, output capture.

Bootstrap (``spare_main``): a warm spare blocks on its channel until the parent sends the
START frame (header + payload + descriptors), applies the parent's ``sys.path``, working
directory and environment, rebuilds the payload and calls the entry named in the header
(``run_process`` here, the Pool worker loop, the Share server).

The lifecycle loop keeps its hot path small: per section two ``perf_counter`` calls, one
``Sktimer.add_time`` and one list append under a lock. Everything the parent needs to know
(state, section, run counter, timing samples, captured output) is batched and flushed at a
section boundary once ``flush_interval`` has passed, or by a small flusher thread when a section
runs long. The same boundary check drains commands from the parent (stop, tell messages), so
there is no reader thread and no syscall per run.

Section timeouts use ``setitimer(ITIMER_REAL)``: SIGALRM interrupts pure-Python loops and
blocking calls alike; the handler raises a BaseException so that user ``except Exception``
blocks cannot swallow it.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from .._errors import (
    SECTION_ERRORS,
    ErrorHandlerError,
    ProcessError,
    ProcessTimeoutError,
    RemoteError,
    SectionAlarm,
)
from .._sections import DUNDERS
from . import _barriers, _serial
from ._section import Section, is_base
from ._wire import BlockingConn, Frame

# frame kinds
K_START = 1
K_TELL = 2
K_STOP = 3
K_BATCH = 4
K_FINAL = 5
K_BOOT_ERROR = 6
# pool / share kinds start at 16 (see their modules)

_perf = time.perf_counter
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- bootstrap ----------------------------------------------------------------------------------


def _apply_environment(header: dict[str, Any]) -> None:
    path = header.get("sys_path")
    if path is not None:
        sys.path[:] = path
    cwd = header.get("cwd")
    if cwd:
        try:
            os.chdir(cwd)
        except OSError:
            pass
    for key, value in (header.get("env") or {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _resolve(entry: str) -> Callable[..., int]:
    module, _, func = entry.partition(":")
    mod = __import__(module, fromlist=[func])
    fn: Callable[..., int] = getattr(mod, func)
    return fn


def spare_main(sock: Any, expected_ppid: int) -> None:
    """Run in a freshly forked spare: wait for the START frame, then become the child."""
    conn = BlockingConn(sock)
    try:
        frame = conn.recv()
    except (EOFError, OSError):
        os._exit(0)
    if frame is None or frame.kind != K_START:
        os._exit(0)
    code = boot(conn, frame, expected_ppid)
    _flush_std()
    os._exit(code)


def spawned_child_main() -> None:
    """Entry point of a child started with the "spawn" start method."""
    import socket

    fd = int(os.environ.pop("SUITKAISE_NB_CHILD_FD"))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spare_main(socket.socket(fileno=fd), os.getppid())


def boot(conn: BlockingConn, frame: Frame, expected_ppid: int) -> int:
    try:
        header = pickle.loads(frame.main)
        _apply_environment(header)
        header["expected_ppid"] = expected_ppid
        payload = _serial.loads(frame.buffers[0], frame.buffers[1:], frame.fds)
        entry = _resolve(header["entry"])
    except BaseException as exc:
        text = "".join(traceback.format_exception(exc))
        msg = f"the child could not rebuild what was sent to it: {type(exc).__name__}: {exc}"
        try:
            conn.send(K_BOOT_ERROR, pickle.dumps((msg, text)))
        except OSError:
            pass
        return 1
    return entry(conn, payload, header)


def route_std(sink: Any, capture: bool) -> None:
    """Kernel mode: stdout/stderr go to ``sink`` (events to the parent). Script mode: they
    stay the inherited terminal, line-buffered so that lines keep their order with the
    parent's."""
    if capture:
        sys.stdout = _CaptureStream(sink, "stdout")
        sys.stderr = _CaptureStream(sink, "stderr")
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        except Exception:
            pass


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


# -- the runtime a child Skprocess talks to ----------------------------------------------------


class _CaptureStream(io.TextIOBase):
    """Replaces sys.stdout/sys.stderr in capture mode: text goes to the parent as events."""

    def __init__(self, rt: ChildRuntime, name: str) -> None:
        self._rt = rt
        self._name = name

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if s:
            self._rt.output(self._name, s)
        return len(s)

    def flush(self) -> None:
        self._rt.flush_soon()


class ChildRuntime:
    """Child-side state shared by the lifecycle loop, tell/listen and the flusher thread."""

    def __init__(self, conn: BlockingConn | None, header: dict[str, Any]) -> None:
        self.conn = conn
        self.interval: float = header.get("flush_interval", 0.02)
        self.expected_ppid: int | None = header.get("expected_ppid")
        self.capture = bool(header.get("capture"))
        self.stop_requested = False
        self.next_io = 0.0
        self.inbox: deque[Frame] = deque()
        self.lock = threading.Lock()
        self.samples: dict[str, list[float]] = {}
        self.out: list[tuple[str, str]] = []
        self.out_size = 0
        self.section: str | None = None
        self.state: str | None = "running"
        self.lives_left = 1
        # failures that cost a life and were retried: (run, section, type, message, traceback)
        self.failures: list[tuple[int, str, str, str, str]] = []
        self.run_ref: Any = None  # the process object, for its _current_run
        self.last_flush = 0.0
        self.alarm_armed = False
        self.done = False
        self._flusher: threading.Thread | None = None

    # -- batching ----------------------------------------------------------------------------
    def add(self, name: str, dt: float) -> None:
        with self.lock:
            lst = self.samples.get(name)
            if lst is None:
                self.samples[name] = [dt]
            else:
                lst.append(dt)

    def output(self, stream: str, text: str) -> None:
        with self.lock:
            out = self.out
            if out and out[-1][0] == stream:  # print() writes in pieces: keep them together
                out[-1] = (stream, out[-1][1] + text)
            else:
                out.append((stream, text))
            self.out_size += len(text)
            big = self.out_size > 1 << 16
        if big:
            self.flush()

    def retried(self, section: str, err: ProcessError) -> None:
        """A failure that cost a life: the parent hears of it (its views show it)."""
        original = getattr(err, "original_error", None) or err
        with self.lock:
            self.failures.append(
                (
                    getattr(err, "current_run", 0) or 0,
                    section,
                    type(original).__name__,
                    str(original),
                    getattr(err, "remote_traceback", "") or "",
                )
            )
        self.flush_soon()

    def flush_soon(self) -> None:
        self.next_io = 0.0
        self.start_flusher()

    def set_state(self, state: str) -> None:
        with self.lock:
            self.state = state
        self.flush()

    def flush(self) -> None:
        """Send the pending batch (any thread)."""
        conn = self.conn
        with self.lock:
            self.last_flush = _perf()
            if conn is None:
                self.samples = {}
                self.out = []
                self.out_size = 0
                return
            run = getattr(self.run_ref, "_current_run", 0)
            batch = (
                self.state,
                self.section,
                run,
                self.lives_left,
                self.samples,
                self.out,
                self.failures,
            )
            self.samples = {}
            self.out = []
            self.failures = []
            self.out_size = 0
            self.state = None
            data = pickle.dumps(batch, protocol=5)
            try:
                conn.send(K_BATCH, data)
            except OSError:
                os._exit(1)  # the parent is gone

    def io(self, now: float) -> None:
        """Boundary work: flush the batch and read what the parent sent."""
        self.next_io = now + self.interval
        self.flush()
        if self.conn is None:
            return
        try:
            frames = self.conn.poll_frames()
        except EOFError:
            os._exit(1)  # the parent is gone
        for f in frames:
            self._dispatch(f)

    def _dispatch(self, f: Frame) -> None:
        if f.kind == K_STOP:
            self.stop_requested = True
            with self.lock:
                self.state = "stopping"
        elif f.kind == K_TELL:
            self.inbox.append(f)

    # -- flusher thread -----------------------------------------------------------------------
    def start_flusher(self) -> None:
        if self._flusher is None and self.conn is not None and not self.done:
            self._flusher = threading.Thread(
                target=self._flush_loop, name="suitkaise_nb-flusher", daemon=True
            )
            self._flusher.start()

    def _flush_loop(self) -> None:
        interval = max(self.interval, 0.02) * 2.5
        while not self.done:
            time.sleep(interval)
            if self.expected_ppid is not None and os.getppid() != self.expected_ppid:
                os._exit(1)
            if self.done:
                return
            if _perf() - self.last_flush >= interval and (self.samples or self.out or self.state):
                self.flush()

    # -- tell / listen ---------------------------------------------------------------------
    def tell(self, obj: Any) -> None:
        if self.conn is None:
            raise ProcessError("tell() is only available in a process started with start()")
        _barriers.settle()  # whoever reads the message must see the Share writes before it
        data, bufs, fds = _serial.dumps_with_fds(obj, "the message")
        if self.out or self.state:
            self.flush()  # keep printed output and state ahead of the message, in order
        try:
            self.conn.send(K_TELL, data, bufs, fds)
        except OSError:
            os._exit(1)

    def listen(self, timeout: float | None = None) -> Any:
        if self.inbox:
            return self._load(self.inbox.popleft())
        if self.conn is None:
            return None
        if self.stop_requested:
            return None
        if self.samples or self.out or self.state:
            if _perf() - self.last_flush >= self.interval or self.out or self.state:
                self.flush()
            else:
                self.start_flusher()  # the rest goes out within a few intervals if we block
        conn = self.conn
        if timeout is None:  # the hot path: one blocking receive per message
            while True:
                try:
                    f = conn.recv()
                except EOFError:
                    os._exit(1)
                if f is not None and f.kind == K_TELL:  # the inbox is empty: order holds
                    return _serial.loads(f.main, f.buffers, f.fds)
                if f is not None:
                    self._dispatch(f)
                    if f.kind == K_STOP:
                        return None
        deadline = _perf() + timeout
        while True:
            left = max(0.0, deadline - _perf())
            try:
                f = conn.recv(left)
            except EOFError:
                os._exit(1)
            if f is None:
                return None
            self._dispatch(f)
            if f.kind == K_STOP:
                return None
            if self.inbox:
                return self._load(self.inbox.popleft())

    @staticmethod
    def _load(f: Frame) -> Any:
        return _serial.loads(f.main, f.buffers, f.fds)


# -- the lifecycle loop -------------------------------------------------------------------------

_section_cache: dict[type, dict[str, Callable[[Any], Any] | None]] = {}


def _run_of(proc: Any) -> int:
    """The completed runs of the process object (its ``_current_run``, part of the seed API)."""
    run: int = proc.__dict__["_current_run"]
    return run


def section_functions(cls: type) -> dict[str, Callable[[Any], Any] | None]:
    """The user-defined lifecycle functions of ``cls`` (None where the base default applies)."""
    found = _section_cache.get(cls)
    if found is not None:
        return found
    found = {}
    for name, dunder in DUNDERS.items():
        fn = None
        for klass in cls.__mro__:
            if is_base(klass) or klass is object:
                break
            attr = klass.__dict__.get(dunder)
            if attr is not None:
                fn = attr.func if isinstance(attr, Section) else attr
                break
        found[name] = fn
    _section_cache[cls] = found
    return found


def _user_traceback(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(
        _PACKAGE_DIR + os.sep
    ):
        tb = tb.tb_next  # the user's frames, not the engine's
    return "".join(traceback.format_exception(type(exc), exc, tb))


def wrap_error(section: str, exc: BaseException, run: int) -> ProcessError:
    cls = SECTION_ERRORS[section]
    dunder = DUNDERS[section]
    msg = f"{type(exc).__name__} in {dunder} on run {run}: {exc}"
    return cls(msg, current_run=run, original_error=exc, remote_traceback=_user_traceback(exc))


def _timeout_error(section: str, timeout: float, run: int, exc: BaseException) -> ProcessError:
    dunder = DUNDERS[section]
    return ProcessTimeoutError(
        f"{dunder} exceeded its timeout of {timeout} s on run {run}",
        section=dunder,
        timeout=timeout,
        current_run=run,
        remote_traceback=_user_traceback(exc),
    )


def _on_alarm(rt: ChildRuntime) -> Callable[[int, Any], None]:
    def handler(signum: int, frame: Any) -> None:
        if rt.alarm_armed:
            rt.alarm_armed = False
            raise SectionAlarm()

    return handler


def _call(rt: ChildRuntime, proc: Any, fn: Callable[[Any], Any], timeout: float | None) -> Any:
    # a section's Share writes sent without waiting belong to it, and so do their errors
    if timeout is None:
        try:
            value = fn(proc)
        except Exception as exc:
            _barriers.settle_noting(exc)
            raise
        _barriers.check()
        return value
    if threading.current_thread() is not threading.main_thread():
        return _call_in_thread(proc, fn, timeout)
    rt.alarm_armed = True
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        try:
            value = fn(proc)
        except Exception as exc:
            _barriers.settle_noting(exc)
            raise
        _barriers.check()
        return value
    finally:
        rt.alarm_armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)


def _call_in_thread(proc: Any, fn: Callable[[Any], Any], timeout: float) -> Any:
    """A section timeout outside the main thread (a pool item on a Dask worker thread).

    SIGALRM cannot be used there: its handler can only be installed in the main thread, and
    without it the signal kills the whole process (the Dask worker). A timer thread raises
    ``SectionAlarm`` in the running thread instead (``PyThreadState_SetAsyncExc``): it interrupts
    Python code; a blocking call (``time.sleep``, a socket read) is interrupted only when it
    returns, and the section is then still reported as timed out.
    """
    import ctypes

    set_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    tid = ctypes.c_ulong(threading.get_ident())
    lock = threading.Lock()
    state = {"armed": True, "fired": False}

    def fire() -> None:
        with lock:
            if state["armed"]:
                state["fired"] = True
                set_exc(tid, ctypes.py_object(SectionAlarm))

    timer = threading.Timer(timeout, fire)
    timer.daemon = True
    timer.start()
    try:
        return fn(proc)
    finally:
        timer.cancel()
        with lock:
            state["armed"] = False
            if state["fired"]:
                set_exc(tid, None)  # not delivered yet (fn returned just in time): drop it


def _noop(proc: Any) -> None:
    return None


class Outcome:
    """How a lifecycle ended: ``kind`` is "ok", "error" or "handled" (``__error__`` returned)."""

    __slots__ = ("error", "kind", "value")

    def __init__(self, kind: str, value: Any = None, error: ProcessError | None = None) -> None:
        self.kind = kind
        self.value = value
        self.error = error


def run_lifecycle(proc: Any, rt: ChildRuntime) -> Outcome:
    """Run prerun → run → postrun until done, then onfinish and result (or __error__)."""
    cls = type(proc)
    fns = section_functions(cls)
    cfg = proc.process_config
    timeouts = cfg.timeouts.as_dict()
    runs = cfg.runs
    lives = cfg.lives
    timers = proc.timers
    rt.run_ref = proc
    rt.lives_left = lives
    uses_alarm = any(v is not None for v in timeouts.values())
    if uses_alarm and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGALRM, _on_alarm(rt))
    pre, run, post = fns["prerun"], fns["run"], fns["postrun"]
    to_pre, to_run, to_post = timeouts["prerun"], timeouts["run"], timeouts["postrun"]
    t_pre, t_run, t_post, t_full = timers.prerun, timers.run, timers.postrun, timers.full_run
    if run is None:  # a class may do all its work in __prerun__/__postrun__ (seed: Share)
        run = _noop
    perf = _perf
    add = rt.add
    start = perf()
    join_at = None if cfg.join_in is None else start + cfg.join_in
    error: ProcessError | None = None
    section = "prerun"
    while True:
        now = perf()
        if now >= rt.next_io:
            rt.io(now)
        if rt.stop_requested:
            break
        if runs is not None and _run_of(proc) >= runs:
            break
        if join_at is not None and now >= join_at:
            break
        try:
            t0 = now
            if pre is not None:
                section = rt.section = "prerun"
                _call(rt, proc, pre, to_pre)
                t1 = perf()
                dt = t1 - t0
                t_pre.add_time(dt)
                add("prerun", dt)
                if t1 >= rt.next_io:
                    rt.io(t1)
                if rt.stop_requested:
                    break
            else:
                t1 = t0
            section = rt.section = "run"
            _call(rt, proc, run, to_run)
            t2 = perf()
            dt = t2 - t1
            t_run.add_time(dt)
            add("run", dt)
            if post is not None:
                if t2 >= rt.next_io:
                    rt.io(t2)
                if rt.stop_requested:
                    break
                section = rt.section = "postrun"
                _call(rt, proc, post, to_post)
                t3 = perf()
                dt = t3 - t2
                t_post.add_time(dt)
                add("postrun", dt)
            else:
                t3 = t2
            dt = t3 - t0
            t_full.add_time(dt)
            add("full_run", dt)
            proc.__dict__["_current_run"] += 1
        except SectionAlarm as exc:
            err: ProcessError = _timeout_error(
                section, timeouts[section] or 0.0, _run_of(proc), exc
            )
            lives -= 1
            rt.lives_left = lives
            if lives > 0:
                rt.retried(section, err)
                continue
            error = err
            break
        except BaseException as exc:
            err = wrap_error(section, exc, _run_of(proc))
            lives -= 1
            rt.lives_left = lives
            if lives > 0:
                rt.retried(section, err)
                continue
            error = err
            break
    if error is None:
        error = _end_section(rt, proc, "onfinish", fns["onfinish"], timeouts, timers.onfinish)
    if error is None:
        try:
            value = _timed(rt, proc, "result", fns["result"], timeouts, timers.result)
        except SectionAlarm as exc:
            error = _timeout_error("result", timeouts["result"] or 0.0, _run_of(proc), exc)
        except BaseException as exc:
            error = wrap_error("result", exc, _run_of(proc))
        else:
            rt.section = None
            return Outcome("ok", value)
    proc.error = error
    handler = fns["error"]
    if handler is None:
        rt.section = None
        return Outcome("error", None, error)
    try:
        value = _timed(rt, proc, "error", handler, timeouts, timers.error)
    except SectionAlarm as exc:
        err2 = _timeout_error("error", timeouts["error"] or 0.0, _run_of(proc), exc)
        return Outcome("error", None, _chain_handler_error(err2, error))
    except BaseException as exc:
        return Outcome(
            "error", None, _chain_handler_error(wrap_error("error", exc, _run_of(proc)), error)
        )
    rt.section = None
    return Outcome("handled", value, error)


def _chain_handler_error(err: ProcessError, original: ProcessError) -> ProcessError:
    if not isinstance(err, ErrorHandlerError):
        return err
    err.message += f" (while handling {type(original).__name__}: {original})"
    return err


def _timed(
    rt: ChildRuntime,
    proc: Any,
    name: str,
    fn: Callable[[Any], Any] | None,
    timeouts: dict[str, float | None],
    timer: Any,
) -> Any:
    if fn is None:
        return None
    rt.section = name
    t0 = _perf()
    try:
        return _call(rt, proc, fn, timeouts[name])
    finally:
        dt = _perf() - t0
        timer.add_time(dt)
        rt.add(name, dt)


def _end_section(
    rt: ChildRuntime,
    proc: Any,
    name: str,
    fn: Callable[[Any], Any] | None,
    timeouts: dict[str, float | None],
    timer: Any,
) -> ProcessError | None:
    try:
        _timed(rt, proc, name, fn, timeouts, timer)
    except SectionAlarm as exc:
        return _timeout_error(name, timeouts[name] or 0.0, _run_of(proc), exc)
    except BaseException as exc:
        return wrap_error(name, exc, _run_of(proc))
    return None


# -- the process role -------------------------------------------------------------------------


def _stand_in(exc: BaseException) -> BaseException:
    """An exception that can always be pickled, for originals that cannot."""
    cls = type(f"{type(exc).__name__}", (RemoteError,), {"__module__": "suitkaise_nb.remote"})
    try:
        out: BaseException = cls(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
        pickle.dumps(out)
        return out
    except Exception:
        return RemoteError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")


def encode_outcome(outcome: Outcome) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """Serialize an outcome; falls back step by step so that an answer always ships."""
    err = outcome.error
    try:
        return _serial.dumps((outcome.kind, outcome.value, err), what="the result")
    except Exception as exc:
        ship_error = exc
    if err is not None and err.original_error is not None:
        try:
            _serial.dumps(err.original_error)
        except Exception:
            err.original_error = RemoteError(
                f"{type(err.original_error).__qualname__}: {err.original_error}"
            )
        try:
            return _serial.dumps((outcome.kind, outcome.value, err), what="the result")
        except Exception as exc:
            ship_error = exc
    if outcome.kind in ("ok", "handled"):
        from .._errors import ResultError

        rerr = ResultError(
            f"the value returned by __result__ could not be sent back: {ship_error}",
            original_error=RemoteError(str(ship_error)),
            remote_traceback="",
        )
        return _serial.dumps(("error", None, rerr))
    plain = ProcessError(str(err), current_run=getattr(err, "current_run", None))
    return _serial.dumps(("error", None, plain))


def _reconnect_or_none(proc: Any) -> Outcome | None:
    """@autoreconnect hook: None when there is nothing to do or all went well."""
    if getattr(type(proc), "_sk_autoreconnect", None) is None:
        return None
    from ._reconnect import reconnect_in_child

    error = reconnect_in_child(proc)
    if error is None:
        return None
    proc.error = error
    return Outcome("error", None, error)


def run_process(conn: BlockingConn, proc: Any, header: dict[str, Any]) -> int:
    """Entry of an Skprocess child."""
    rt = ChildRuntime(conn, header)
    proc.__dict__["_sk"] = rt
    _barriers.allow_deferred()  # each section's end reports what a deferred write raised
    proc.error = None
    route_std(rt, rt.capture)
    if rt.capture:
        rt.start_flusher()
    rt.set_state("running")
    # @autoreconnect: reopen shipped connections first; a failure fails the process
    outcome = _reconnect_or_none(proc) or run_lifecycle(proc, rt)
    rt.done = True
    try:
        _barriers.check()  # wait() returning means every Share write was applied
    except Exception as exc:
        if outcome.kind == "ok":
            outcome = Outcome("error", None, wrap_error("result", exc, _run_of(proc)))
    _flush_std()
    data, bufs = encode_outcome(outcome)
    rt.flush()
    try:
        conn.send(K_FINAL, data, bufs)
    except OSError:
        return 1
    return 0
