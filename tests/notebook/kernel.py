"""Run cells in a real kernel (the venv's python) and return the executed notebook."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import nbformat

from tests.seed.runner import KERNEL_NAME, write_kernelspec


def execute(cells: list[str], tmp: Path, timeout: float = 60, allow_errors: bool = False) -> Any:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    spec_dirs = write_kernelspec(tmp / "spec")
    ipc_dir = tempfile.mkdtemp(prefix="sknb-ipc-")
    km = KernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_dirs)]),
        transport="ipc",
        ip=os.path.join(ipc_dir, "k"),
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    try:
        NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            allow_errors=allow_errors,
            resources={"metadata": {"path": str(tmp)}},
        ).execute()
    finally:
        shutil.rmtree(ipc_dir, ignore_errors=True)
    return nb


def outputs(nb: Any, index: int, kind: str | None = None) -> list[Any]:
    return [o for o in nb.cells[index].outputs if kind is None or o.output_type == kind]


def stdout(nb: Any, index: int) -> str:
    return "".join(o.text for o in outputs(nb, index, "stream") if o.name == "stdout")


WIDGET = "application/vnd.jupyter.widget-view+json"
