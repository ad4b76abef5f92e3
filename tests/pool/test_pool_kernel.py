"""The Pool in a real Jupyter kernel (nbclient): functions, lambdas and Skprocess classes typed
into cells are mapped; a kernel interrupt (``km.interrupt_kernel()``, as Jupyter's stop button
sends it) during a long ``pool.map`` ends the cell within 5 s with KeyboardInterrupt, the pool
stays usable, and no worker is left once the pool is closed or the kernel is shut down.

The kernel is launched the same way as the seed kernel tests (``tests/seed/runner.py``: a
private kernelspec running this interpreter, ipc transport, a token in the environment to find
leftovers).
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.seed.runner import (
    TOKEN_VAR,
    DescendantWatcher,
    _collect,
    _kernel_client,
    find_leftovers,
    write_kernelspec,
)

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(150)]

CELL_TIMEOUT = 60


@pytest.fixture(scope="module")
def kernelspec_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_kernelspec(tmp_path_factory.mktemp("jupyter"))


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _pids(text: str, tag: str) -> list[int]:
    m = re.search(rf"^{tag} \[([\d, ]*)\]$", text, re.M)
    assert m, f"no {tag} line in {text!r}"
    return [int(x) for x in m.group(1).split(",") if x.strip()]


class Session:
    """A kernel driven cell by cell; ``run(i)`` executes cell ``i`` and returns its CellRun."""

    def __init__(self, client: Any, nb: Any) -> None:
        self.client = client
        self.nb = nb

    def run(self, i: int, interrupt_when: Path | None = None, delay: float = 0.5) -> Any:
        """Run cell ``i``; with ``interrupt_when``, interrupt the kernel ``delay`` s after that
        file appears. Returns (CellRun, seconds from the interrupt to the end of the cell)."""
        from nbclient.exceptions import CellExecutionError

        sent: list[float] = []
        stop = threading.Event()

        def interrupter() -> None:
            assert interrupt_when is not None
            while not interrupt_when.exists():
                if stop.wait(0.02):
                    return
            time.sleep(delay)
            sent.append(time.monotonic())
            asyncio.run(self.client.km.interrupt_kernel())

        thread = None
        if interrupt_when is not None:
            thread = threading.Thread(target=interrupter, daemon=True)
            thread.start()
        cell = self.nb.cells[i]
        try:
            self.client.execute_cell(cell, i)
        except CellExecutionError:
            pass  # the error is in the cell's outputs
        finally:
            ended = time.monotonic()
            stop.set()
            if thread is not None:
                thread.join(10)
        run = _collect(cell, cell.source)
        took = ended - sent[0] if sent else None
        if took is not None:
            print(f"cell {i}: ended {took:.2f}s after the kernel interrupt")
        return run, took


def _session(kernelspec_dirs: Path, workdir: Path, cells: list[str]) -> Any:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    token = uuid.uuid4().hex
    env = {**os.environ, TOKEN_VAR: token}
    env.pop("PYTHONSTARTUP", None)
    return nb, token, env


def _run_notebook(kernelspec_dirs: Path, workdir: Path, cells: list[str], body: Any) -> Any:
    """Start a kernel, call ``body(session)``, shut the kernel down; returns (body's value,
    processes of this run still alive after the shutdown)."""
    nb, token, env = _session(kernelspec_dirs, workdir, cells)
    watcher = None
    log_path = workdir / "kernel.log"
    with (
        log_path.open("wb") as log,
        _kernel_client(nb, kernelspec_dirs, workdir, env, CELL_TIMEOUT, log) as client,
    ):
        kernel_pid = getattr(client.km.provisioner, "pid", None)
        if kernel_pid is not None:
            watcher = DescendantWatcher(kernel_pid).start()
        try:
            value = body(Session(client, nb))
        finally:
            if watcher is not None:
                watcher.sample()
                watcher.stop()
    leftovers = find_leftovers(token, watcher.seen if watcher else {})
    return value, leftovers


CELLS_MAP = [
    # 0
    "import os, time\n"
    "from suitkaise_nb.processing import Pool, Skprocess\n"
    "pool = Pool(2)\n"
    "print('PIDS', sorted(pool.model.workers))",
    # 1: a function typed into a cell
    "def cube(x):\n    return x ** 3",
    # 2
    "print(pool.map(cube, range(6)))",
    # 3: lambdas, one of them a closure over a notebook variable
    "offset = 7\n"
    "print(pool.map(lambda x: x + 100, [1, 2, 3]))\n"
    "print(sorted(pool.unordered_map(lambda x: x + offset, [1, 2])))\n"
    "print(list(pool.imap(lambda x: -x, [4, 5])))",
    # 4: an Skprocess class typed into a cell
    "class Tripler(Skprocess):\n"
    "    def __init__(self, x):\n"
    "        self.x = x\n"
    "        self.process_config.runs = 1\n"
    "    def __run__(self):\n"
    "        self.out = cube(self.x) * 3\n"
    "    def __result__(self):\n"
    "        return self.out",
    # 5
    "print(pool.map(Tripler, [1, 2, 3]))\n"
    "print(pool.star().map(lambda a, b: a * b, [(2, 3), (4, 5)]))",
    # 6: an error raised by a cell-defined function
    "def picky(x):\n"
    "    if x == 2:\n"
    "        raise ValueError(f'no {x}')\n"
    "    return x\n"
    "try:\n"
    "    pool.map(picky, [1, 2, 3])\n"
    "except ValueError as e:\n"
    "    print('caught', type(e).__name__, isinstance(e, RuntimeError), e)",
    # 7
    "def slow(x):\n    time.sleep(30)\n    return x",
    # 8: interrupted
    "open(MARK, 'w').close()\npool.map(slow, range(4))",
    # 9: the pool is still usable
    "print(pool.map(cube, [2, 3]))\nprint('PIDS2', sorted(pool.model.workers))",
    # 10
    "pool.close()\nprint('closed')",
]


def test_cells_mapped_and_interrupt_then_close(kernelspec_dirs: Path, tmp_path: Path):
    mark = tmp_path / "map-started"
    cells = list(CELLS_MAP)
    cells[8] = f"MARK = {str(mark)!r}\n" + cells[8]

    def body(s: Session) -> dict[str, Any]:
        out: dict[str, Any] = {}
        runs = [s.run(i)[0] for i in range(8)]
        for i, r in enumerate(runs):
            assert r.error is None, f"cell {i} raised:\n{r.error}"
        out["pids"] = _pids(runs[0].stdout, "PIDS")
        assert runs[2].stdout == "[0, 1, 8, 27, 64, 125]\n"
        assert runs[3].stdout == "[101, 102, 103]\n[8, 9]\n[-4, -5]\n"
        assert runs[5].stdout == "[3, 24, 81]\n[6, 20]\n"
        assert runs[6].stdout.startswith("caught ValueError True no 2 (pool item 1: 2)")

        t0 = time.monotonic()
        interrupted, took = s.run(8, interrupt_when=mark)
        assert took is not None, "the interrupt was never sent"
        assert time.monotonic() - t0 < 30
        assert interrupted.error is not None and "KeyboardInterrupt" in interrupted.error, (
            interrupted
        )
        assert took < 5.0, f"the cell ended {took:.2f}s after the interrupt"
        # the in-flight work was killed: the first workers are gone
        assert _wait_gone(out["pids"]) == []

        after = s.run(9)[0]
        assert after.error is None, after.error
        assert after.stdout.startswith("[8, 27]\n")
        out["pids2"] = _pids(after.stdout, "PIDS2")
        assert len(out["pids2"]) == 2 and not set(out["pids2"]) & set(out["pids"])

        closed = s.run(10)[0]
        assert closed.error is None and closed.stdout == "closed\n"
        assert _wait_gone(out["pids2"]) == [], "workers alive after pool.close()"
        return out

    out, leftovers = _run_notebook(kernelspec_dirs, tmp_path, cells, body)
    assert not leftovers, leftovers
    assert _wait_gone(out["pids"] + out["pids2"]) == []


def test_interrupt_with_views_and_kernel_shutdown_leaves_no_worker(
    kernelspec_dirs: Path, tmp_path: Path
):
    """The extension loaded (live views), an interrupt during imap in a for loop, the pool
    never closed: the kernel's shutdown must take the workers with it."""
    mark = tmp_path / "imap-started"
    cells = [
        "%load_ext suitkaise_nb\n"
        "import time\n"
        "from suitkaise_nb.processing import Pool\n"
        f"MARK = {str(mark)!r}\n"
        "pool = Pool(2)\n"
        "print('PIDS', sorted(pool.model.workers))",
        "def napping(x):\n    time.sleep(x)\n    return x",
        "total = 0\n"
        "for v in pool.imap(napping, [0.01] * 4 + [30] * 4):\n"
        "    total += v\n"
        "    if total > 0.035:\n"
        "        open(MARK, 'w').close()",
        "print(round(sum(pool.map(napping, [0.01] * 10)), 2))\n"
        "print('PIDS2', sorted(pool.model.workers))",
    ]

    def body(s: Session) -> dict[str, Any]:
        first = s.run(0)[0]
        assert first.error is None, first.error
        pids = _pids(first.stdout, "PIDS")
        assert s.run(1)[0].error is None
        interrupted, took = s.run(2, interrupt_when=mark, delay=0.3)
        assert took is not None, "the interrupt was never sent"
        assert interrupted.error is not None and "KeyboardInterrupt" in interrupted.error
        assert took < 5.0, f"the cell ended {took:.2f}s after the interrupt"
        after = s.run(3)[0]
        assert after.error is None, after.error
        assert after.stdout.startswith("0.1")
        return {"pids": pids + _pids(after.stdout, "PIDS2")}

    out, leftovers = _run_notebook(kernelspec_dirs, tmp_path, cells, body)
    assert not leftovers, leftovers
    assert _wait_gone(out["pids"]) == [], "pool workers outlived the kernel"
