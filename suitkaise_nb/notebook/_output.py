"""Route each child's stdout/stderr to the cell that started it.

``start()`` runs in a cell: we remember that cell's parent message. Output events arrive
later on the engine's hub thread.

* While that cell is still executing, the text is written through the kernel's own
  ``sys.stdout``/``sys.stderr`` with the cell's parent set for the hub thread only
  (``set_thread_parent``), so it interleaves in order with what the cell prints itself.
* When the cell finishes while the process still runs, the router adds one display to the
  end of that cell's output (``post_run_cell``, still inside the cell's execution) and later
  text updates that display by its ``display_id``. Front-ends apply display updates to cells
  that finished long ago, which plain stream messages do not get.
"""

from __future__ import annotations

import itertools
import sys
import threading
from typing import Any

_MAX_LATE = 200_000  # characters of late output kept per process (the tail)
_ids = itertools.count(1)


def _msg_id(parent: Any) -> str | None:
    if not isinstance(parent, dict):
        return None
    header = parent.get("header", parent)
    mid = header.get("msg_id") if isinstance(header, dict) else None
    return mid if isinstance(mid, str) else None


class _Route:
    __slots__ = ("alive", "display_id", "late", "msg_id", "parent")

    def __init__(self, parent: Any) -> None:
        self.parent = parent
        self.msg_id = _msg_id(parent)
        self.display_id: str | None = None
        self.late: list[str] = []
        self.alive = True


class OutputRouter:
    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._routes: dict[int, _Route] = {}
        self._finished: set[str] = set()
        self._lock = threading.RLock()
        shell.events.register("post_run_cell", self._post_run_cell)

    def close(self) -> None:
        try:
            self.shell.events.unregister("post_run_cell", self._post_run_cell)
        except ValueError:
            pass

    def _current_parent(self) -> Any:
        try:
            return self.shell.get_parent()
        except Exception:
            return getattr(self.shell, "parent_header", None)

    # -- IPython event (main thread, inside the cell's execution) ------------------------------
    def _post_run_cell(self, result: Any = None) -> None:
        mid = _msg_id(self._current_parent())
        if mid is None:
            return
        with self._lock:
            for route in self._routes.values():
                if route.msg_id == mid and route.alive and route.display_id is None:
                    route.display_id = f"suitkaise-nb-output-{next(_ids)}"
                    self._publish(route, "", update=False)
            self._finished.add(mid)
            if len(self._finished) > 5000:
                self._finished.clear()

    # -- observer hooks ------------------------------------------------------------------------
    def process_started(self, event: Any) -> None:
        with self._lock:
            self._routes[event.process.id] = _Route(self._current_parent())
            if len(self._routes) > 2000:
                for k in [k for k, r in self._routes.items() if not r.alive][:1000]:
                    self._routes.pop(k, None)

    def process_ended(self, event: Any) -> None:
        with self._lock:
            route = self._routes.get(event.process.id)
            if route is not None:
                route.alive = False

    def process_output(self, event: Any) -> None:
        with self._lock:
            route = self._routes.get(event.process.id)
            if route is None:
                self._write_stream(None, event.stream, event.text)
                return
            if route.msg_id not in self._finished or route.display_id is None:
                self._write_stream(route.parent, event.stream, event.text)
                return
            route.late.append(event.text)
            text = "".join(route.late)
            if len(text) > _MAX_LATE:
                text = "…" + text[-_MAX_LATE:]
            route.late = [text]
            self._publish(route, text, update=True)

    # -- output ---------------------------------------------------------------------------------
    def _with_parent(self, parent: Any, fn: Any) -> None:
        setter = getattr(self.shell, "set_thread_parent", None)
        if parent and setter is not None:
            tokens = setter(parent)
            try:
                fn()
            finally:
                self.shell.reset_thread_parent(tokens)
        else:
            fn()

    def _write_stream(self, parent: Any, stream: str, text: str) -> None:
        target = sys.stdout if stream == "stdout" else sys.stderr

        def write() -> None:
            target.write(text)
            target.flush()

        if parent and getattr(self.shell, "set_thread_parent", None) is None:
            kernel = getattr(self.shell, "kernel", None)
            if kernel is not None:  # older ipykernel: send the stream message ourselves
                kernel.session.send(
                    kernel.iopub_socket,
                    "stream",
                    {"name": stream, "text": text},
                    parent=parent,
                    ident=f"stream.{stream}".encode(),
                )
                return
        self._with_parent(parent, write)

    def _publish(self, route: _Route, text: str, update: bool) -> None:
        pub = self.shell.display_pub

        def send() -> None:
            pub.publish(
                data={"text/plain": text},
                metadata={},
                transient={"display_id": route.display_id},
                update=update,
            )

        if update:
            # updates go by display_id; leave the thread's parent alone so that clients that
            # only follow the executing cell's messages (nbclient) apply them too
            send()
        else:
            self._with_parent(route.parent, send)
