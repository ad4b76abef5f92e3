"""The event hub: one daemon thread per parent that waits on everything at once.

::

    zygote control socket ──┐
    child channel 1 ────────┤           ┌─► ProcessHandle.on_frames → model → observers
    child channel 2 ────────┼─ epoll ───┼─► PoolCore.on_frames    → calls  → observers
    pool worker channels ───┤           └─► Launcher.on_control    → spares, exit reports
    wakeup pipe ────────────┘  (call_soon from other threads)

No polling: the thread sleeps in ``select`` until a socket is readable (or writable while a
write is queued). Work from other threads reaches it through :meth:`Hub.call_soon`, which
writes one byte to the wakeup pipe. A callback that raises is logged and does not stop the
hub.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ._wire import AsyncConn

log = logging.getLogger("suitkaise_nb")

Callback = Callable[[int], None]


class Hub:
    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._timers: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._ident: int | None = None
        self._stopping = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="suitkaise_nb-hub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the loop (a hub of its own, as the tests' inline pools have; the engine's hub
        lives as long as the process). Returns once the thread ended, unless called on it."""
        self._stopping = True
        self.call_soon(lambda: None)
        thread = self._thread
        if thread is not None and thread.ident != threading.get_ident():
            thread.join(5)
            self._sel.close()
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass

    @property
    def in_hub_thread(self) -> bool:
        return threading.get_ident() == self._ident

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the hub thread (at once when already on it)."""
        if self.in_hub_thread:
            self._safe(fn, args)
            return
        self._calls.append((fn, args))
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the hub thread after ``delay`` seconds."""
        self.call_soon(self._push_timer, time.monotonic() + delay, fn, args)

    def _push_timer(self, when: float, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), fn, args))

    # -- registration (hub thread) -------------------------------------------------------------
    def watch(
        self, fileobj: Any, callback: Callback, write: bool = False, read: bool = True
    ) -> None:
        events = (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0)
        if not events:
            self.unwatch(fileobj)
            return
        try:
            self._sel.modify(fileobj, events, callback)
        except KeyError:
            self._sel.register(fileobj, events, callback)

    def unwatch(self, fileobj: Any) -> None:
        try:
            self._sel.unregister(fileobj)
        except (KeyError, ValueError, OSError):
            pass

    def add_conn(self, conn: AsyncConn) -> None:
        """Watch ``conn`` for frames (and for writability while writes are queued).

        ``conn.hub_reading`` is False while a listener thread reads the socket itself; the hub
        then watches only for writability, and resumes reading a little after the listener
        gives the socket back."""

        def refresh() -> None:
            if conn.closed or (conn.eof and not conn.has_pending_writes):
                self.unwatch(conn.sock)
                return
            self.watch(
                conn.sock,
                on_event,
                write=conn.has_pending_writes,
                read=conn.hub_reading and not conn.eof,
            )

        def on_event(mask: int) -> None:
            if mask & selectors.EVENT_WRITE:
                conn.flush()
            if mask & selectors.EVENT_READ and not conn.on_readable():
                conn.hub_reading = False  # a listener is reading it directly: step aside
            refresh()

        def resume(c: AsyncConn, todo: list[Callable[[], None]]) -> None:
            def again() -> None:
                c.hub_reading = True
                refresh()
                for fn in todo:
                    fn()

            if todo:
                self.call_soon(again)
            else:
                # a listener may come back at once: leave it the socket for a little while
                self.call_later(0.02, again)

        conn.hub_refresh = refresh
        conn.resume_read = resume
        self.call_soon(refresh)

    def want_write(self, conn: AsyncConn) -> None:
        refresh = conn.hub_refresh
        if refresh is not None:
            self.call_soon(refresh)

    # -- loop --------------------------------------------------------------------------------
    def _safe(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("suitkaise_nb hub callback %r failed", fn)

    def _loop(self) -> None:
        self._ident = threading.get_ident()
        sel = self._sel
        calls = self._calls
        timers = self._timers
        while not self._stopping:
            timeout = None
            if timers:
                timeout = max(0.0, timers[0][0] - time.monotonic())
            try:
                ready = sel.select(timeout)
            except InterruptedError:
                continue
            except OSError:
                log.exception("suitkaise_nb hub select failed")
                continue
            for key, mask in ready:
                if key.data is None:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                    continue
                self._safe(key.data, (mask,))
            while calls:
                fn, args = calls.popleft()
                self._safe(fn, args)
            if timers:
                now = time.monotonic()
                while timers and timers[0][0] <= now:
                    _, _, fn, args = heapq.heappop(timers)
                    self._safe(fn, args)
