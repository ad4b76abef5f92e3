"""The kernel reads "busy" for as long as a cell runs.

JupyterLab 4 and Notebook 7 take the kernel's status from every ``status`` message on iopub,
whatever request it answers. ipykernel 7 answers control requests, and comm messages sent on a
subshell (JupyterLab's default for widget comms: ``commsOverSubshells: perCommTarget``), on
threads of their own while a cell runs; each answer ends with ``status: idle``. The first
widget a kernel shows makes the front-end create that subshell, so the first view of a session
turned the status bar to "Idle" under a cell still blocked in ``map``, ``listen`` or
``result()``, and so did every button click during such a block.

While a cell runs, every ``idle`` published by another thread is followed by ``busy`` under
that cell's request. The cell's own ``idle`` (published by the kernel after ``post_execute``)
ends it as before. Clicks on subshells still run at once, on their thread: that is what lets
Stop and Cancel act during a blocking call.
"""

from __future__ import annotations

import threading
from typing import Any, cast


class BusyWhileRunning:
    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.kernel: Any = cast(Any, getattr(shell, "kernel", None))
        self._lock = threading.Lock()
        self._running: list[Any] = []  # the executing cells' requests (run_cell may nest)
        self._original = getattr(self.kernel, "_publish_status", None)
        if self._original is None:
            return
        # ipykernel has no public hook for its status messages: wrap the one method
        self.kernel._publish_status = self._publish_status  # noqa: SLF001
        shell.events.register("pre_execute", self._pre_execute)
        shell.events.register("post_execute", self._post_execute)

    def close(self) -> None:
        if self._original is None:
            return
        if getattr(self.kernel, "_publish_status", None) == self._publish_status:
            del self.kernel._publish_status  # noqa: SLF001  (back to the class's method)
        for name, fn in (("pre_execute", self._pre_execute), ("post_execute", self._post_execute)):
            try:
                self.shell.events.unregister(name, fn)
            except ValueError:
                pass
        with self._lock:
            self._running.clear()

    # -- IPython events (main thread) ------------------------------------------------------------
    def _pre_execute(self) -> None:
        try:
            parent = self.kernel.get_parent("shell")
        except Exception:
            parent = None
        with self._lock:
            self._running.append(parent)

    def _post_execute(self) -> None:
        with self._lock:
            if self._running:
                self._running.pop()

    # -- the kernel's status messages (any thread) -----------------------------------------------
    def _publish_status(self, status: str, channel: str, parent: Any = None) -> None:
        assert self._original is not None
        self._original(status, channel, parent)
        if status != "idle" or threading.current_thread() is threading.main_thread():
            return
        with self._lock:  # held while sending: post_execute cannot pass a late "busy"
            cell = self._running[0] if self._running else None
            if cell:
                self._original("busy", "shell", cell)
