"""A front-end in a test: run cells in a real kernel and rebuild every cell's visible output
from *all* the kernel's output messages, as JupyterLab does.

nbclient keeps only the messages of the cell that is running; a front-end also applies what
arrives later: text a child prints after its cell finished, a view's ``update_display_data``
(which replaces every output with that display id, in any cell), a final summary. This
harness listens to iopub for the whole session and rebuilds:

* ``stream`` text is appended to the cell of its parent message (to the last output when that
  is a stream of the same name, as front-ends merge them);
* ``display_data`` / ``execute_result`` / ``error`` outputs are added to that cell;
* ``update_display_data`` replaces the data of every output with its display id, everywhere;
* ``clear_output`` empties the cell.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.seed.runner import KERNEL_NAME, write_kernelspec


class Output(dict):
    @property
    def text(self) -> str:
        if self["output_type"] == "stream":
            return str(self["text"])
        data = self.get("data", {})
        return str(data.get("text/plain", ""))

    @property
    def html(self) -> str:
        return str(self.get("data", {}).get("text/html", ""))


class FrontEnd:
    def __init__(self, tmp: Path, cwd: Path | None = None) -> None:
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import KernelManager

        self._ipc = tempfile.mkdtemp(prefix="sknb-fe-")
        self.km = KernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(write_kernelspec(tmp))]),
            transport="ipc",
            ip=os.path.join(self._ipc, "k"),
        )
        self.km.start_kernel(cwd=str(cwd or tmp))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.messages: list[dict[str, Any]] = []
        self.cell_of: dict[str, int] = {}  # execute msg_id -> cell index
        self.sources: list[str] = []

    # jupyter_client's blocking client is not thread-safe: everything is read on this thread
    def _drain(self, until: float, idle_for: str | None = None) -> bool:
        """Read iopub until ``until`` (monotonic), or until ``idle_for``'s idle status."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return False
            try:
                msg = self.kc.get_iopub_msg(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            self.messages.append(msg)
            if (
                idle_for is not None
                and msg["msg_type"] == "status"
                and msg["content"].get("execution_state") == "idle"
                and msg.get("parent_header", {}).get("msg_id") == idle_for
            ):
                return True

    def run(self, code: str, timeout: float = 60) -> int:
        """Run one cell to its end (its idle status, then its reply); its index."""
        return self.finish(self.submit(code), timeout)

    def submit(self, code: str) -> str:
        """Send one cell to the kernel without waiting; its request's msg_id."""
        msg_id: str = self.kc.execute(code)
        self.cell_of[msg_id] = len(self.sources)
        self.sources.append(code)
        return msg_id

    def finish(self, msg_id: str, timeout: float = 60) -> int:
        """Wait for a submitted cell's end (its idle status, then its reply); its index."""
        index = self.cell_of[msg_id]
        if not self._drain(time.monotonic() + timeout, idle_for=msg_id):
            raise TimeoutError(f"cell {index} did not go idle within {timeout} s")
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        return index

    def settle(self, seconds: float = 1.0) -> None:
        """Let late messages (a display thread, a child printing after its cell) arrive."""
        self._drain(time.monotonic() + seconds)

    def outputs(self) -> list[list[Output]]:
        cells: list[list[Output]] = [[] for _ in self.sources]
        by_display: dict[str, list[Output]] = {}
        for msg in list(self.messages):
            kind = msg["msg_type"]
            index = self.cell_of.get(msg.get("parent_header", {}).get("msg_id"))
            content = msg["content"]
            transient = content.get("transient") or {}
            display_id = transient.get("display_id")
            if kind == "update_display_data":
                for out in by_display.get(display_id, []):
                    out["data"] = content.get("data", {})
                    out["metadata"] = content.get("metadata", {})
                continue
            if index is None:
                continue
            outs = cells[index]
            if kind == "stream":
                if (
                    outs
                    and outs[-1]["output_type"] == "stream"
                    and outs[-1]["name"] == content["name"]
                ):
                    outs[-1]["text"] += content["text"]
                else:
                    outs.append(
                        Output(output_type="stream", name=content["name"], text=content["text"])
                    )
            elif kind in ("display_data", "execute_result"):
                out = Output(output_type=kind, data=content.get("data", {}))
                outs.append(out)
                if display_id:
                    by_display.setdefault(display_id, []).append(out)
            elif kind == "error":
                outs.append(
                    Output(
                        output_type="error",
                        ename=content["ename"],
                        evalue=content["evalue"],
                        traceback=content["traceback"],
                    )
                )
            elif kind == "clear_output":
                outs.clear()
        return cells

    def stdout(self, index: int) -> str:
        return "".join(o.text for o in self.outputs()[index] if o["output_type"] == "stream")

    def html(self, index: int) -> str:
        return "\n".join(o.html for o in self.outputs()[index] if o.html)

    def error(self, index: int) -> Output | None:
        return next((o for o in self.outputs()[index] if o["output_type"] == "error"), None)

    def close(self) -> None:
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=False)
        finally:
            self.km.cleanup_resources()
            shutil.rmtree(self._ipc, ignore_errors=True)
