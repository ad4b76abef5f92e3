"""Run code in a real IPython kernel of the current interpreter (jupyter_client directly).

The bench venv has ipykernel and jupyter_client but not nbclient, so the benches that need a
kernel (pool_bench's notebook-cell run, views_bench) talk to it through a blocking client:
``with Kernel() as k: out = k.run("print(1)")`` returns the cell's stdout.
"""

from __future__ import annotations

import os
import sys
from typing import Any


class CellError(RuntimeError):
    pass


class Kernel:
    def __init__(self, cwd: str | None = None, startup: float = 120.0) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=cwd or os.getcwd(), extra_arguments=[])
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=startup)

    def run(self, code: str, timeout: float = 300.0) -> str:
        out: list[str] = []
        err: list[str] = []

        counts: dict[str, int] = {}
        self.last_counts = counts  # iopub message types of the last cell (views: comm_*)

        def hook(msg: dict[str, Any]) -> None:
            t, c = msg["msg_type"], msg["content"]
            counts[t] = counts.get(t, 0) + 1
            if t == "stream" and c.get("name") == "stdout":
                out.append(c["text"])
            elif t == "error":
                err.append("\n".join(c.get("traceback", [])) or c.get("evalue", ""))

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        if reply["content"]["status"] != "ok" or err:
            raise CellError("".join(err) or str(reply["content"]))
        return "".join(out)

    def close(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=True)

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def python() -> str:
    return sys.executable
