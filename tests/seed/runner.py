"""Run a seed example as a script or in a Jupyter kernel, and find processes it left behind.

Leftover detection has two nets:

* every run gets a unique environment marker ``SKNB_TEST_TOKEN=<uuid>``; a process whose
  environment holds it descends from the run (children inherit the environment), even after
  it has been re-parented to init: found by scanning ``psutil.process_iter``;
* a watcher thread samples the descendants of the script/kernel while it runs (in case a
  child was started with a scrubbed environment); they are identified by (pid, create_time),
  so a recycled pid is never mistaken for one of them.

Leftovers are killed by pid (only processes these nets found, i.e. started by this run) and
reported.

Kernel launch: a kernelspec ``sknb-seed`` is written into a private directory with
``argv[0] = sys.executable`` (the venv's python, absolute), and an ``AsyncKernelManager`` is
given a ``KernelSpecManager`` that looks only in that directory. Neither the user's nor the
system's kernelspecs (nor a ``python`` found on PATH) can be picked up by mistake.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

TOKEN_VAR = "SKNB_TEST_TOKEN"
LEFTOVER_GRACE = 2.0  # seconds a descendant may outlive the script/kernel
KERNEL_NAME = "sknb-seed"


# ------------------------------------------------------------------------------------------
# leftovers
# ------------------------------------------------------------------------------------------

ProcKey = tuple[int, float]  # (pid, create_time)


def _key(p: psutil.Process) -> ProcKey:
    return (p.pid, p.create_time())


def _describe(p: psutil.Process) -> str:
    try:
        cmd = " ".join(p.cmdline())[:200] or p.name()
        return f"pid {p.pid} ({p.status()}): {cmd}"
    except psutil.Error:
        return f"pid {p.pid}"


class DescendantWatcher:
    """Samples the descendants of ``pid`` every ``interval`` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.seen: dict[ProcKey, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="seed-watcher", daemon=True)

    def start(self) -> DescendantWatcher:
        self._thread.start()
        return self

    def sample(self) -> None:
        try:
            kids = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return
        for k in kids:
            try:
                self.seen.setdefault(_key(k), k)
            except psutil.Error:
                pass

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _alive(p: psutil.Process, key: ProcKey | None = None) -> bool:
    try:
        if key is not None and _key(p) != key:
            return False  # the pid was recycled
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _with_token(token: str) -> list[psutil.Process]:
    found = []
    me = os.getpid()
    for p in psutil.process_iter():
        if p.pid == me:
            continue
        try:
            if p.environ().get(TOKEN_VAR) == token and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:  # AccessDenied (other users), NoSuchProcess, zombies
            continue
    return found


def find_leftovers(
    token: str, watched: dict[ProcKey, psutil.Process], grace: float = LEFTOVER_GRACE
) -> list[str]:
    """Processes of this run still alive ``grace`` seconds from now (checked early and often:
    returns as soon as none is left). Kills what it finds, by pid, and describes it."""
    deadline = time.monotonic() + grace
    while True:
        left: dict[int, psutil.Process] = {p.pid: p for p in _with_token(token)}
        for key, p in watched.items():
            if _alive(p, key):
                left.setdefault(p.pid, p)
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    described = [_describe(p) for p in left.values()]
    for p in left.values():
        try:
            p.kill()
        except psutil.Error:
            pass
    return described


# ------------------------------------------------------------------------------------------
# scripts
# ------------------------------------------------------------------------------------------


@dataclass
class ScriptRun:
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    hung: bool
    leftovers: list[str] = field(default_factory=list)


def run_script(code: str, workdir: Path, name: str, timeout: float) -> ScriptRun:
    """Run ``code`` as ``python <name>.py`` in ``workdir``, like a user in a terminal."""
    path = workdir / f"{name}.py"
    path.write_text(code, encoding="utf-8")
    token = uuid.uuid4().hex
    env = {**os.environ, "PYTHONUNBUFFERED": "1", TOKEN_VAR: token}
    env.pop("PYTHONSTARTUP", None)
    out_path = workdir / f"{name}.stdout"
    err_path = workdir / f"{name}.stderr"
    t0 = time.monotonic()
    # files, not pipes: a leftover child holding the pipe open must not look like a hang
    with out_path.open("wb") as out_f, err_path.open("wb") as err_f:
        proc = subprocess.Popen(
            [sys.executable, str(path)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out_f,
            stderr=err_f,
            start_new_session=True,  # its own process group: a hang is killed as a whole
        )
    watcher = DescendantWatcher(proc.pid).start()
    hung = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        hung = True
        watcher.sample()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test created
        except ProcessLookupError:
            pass
        proc.wait()
    finally:
        watcher.stop()
    seconds = time.monotonic() - t0
    leftovers = find_leftovers(token, watcher.seen)
    out = out_path.read_text(encoding="utf-8", errors="replace")
    err = err_path.read_text(encoding="utf-8", errors="replace")
    return ScriptRun(proc.returncode, out, err, seconds, hung, leftovers)


# ------------------------------------------------------------------------------------------
# kernels
# ------------------------------------------------------------------------------------------


def write_kernelspec(root: Path) -> Path:
    """A kernelspec dir whose only kernel runs ipykernel with this interpreter."""
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"suitkaise_nb seed ({sys.executable})",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return root / "kernels"


@dataclass
class CellRun:
    source: str
    stdout: str = ""
    stderr: str = ""
    other: list[str] = field(default_factory=list)  # non-stream output types
    error: str | None = None  # the cell raised (traceback text)


@dataclass
class KernelRun:
    cells: list[CellRun]
    seconds: float
    failure: str | None  # timeout, dead kernel, cell error: why execution stopped
    kernel_pid: int | None
    leftovers: list[str] = field(default_factory=list)
    kernel_log: str = ""  # the kernel process's own stdout/stderr (not cell output)

    @property
    def stdout(self) -> str:
        return "".join(c.stdout for c in self.cells)

    @property
    def stderr(self) -> str:
        return "".join(c.stderr for c in self.cells)

    def transcript(self) -> str:
        """Every cell with what it printed, for failure messages."""
        parts = []
        for i, c in enumerate(self.cells):
            parts.append(f"===== cell {i} =====")
            parts.append(c.source)
            if c.stdout:
                parts += ["--- stdout ---", c.stdout.rstrip()]
            if c.stderr:
                parts += ["--- stderr ---", c.stderr.rstrip()]
            if c.other:
                parts += ["--- other outputs ---", *c.other]
            if c.error:
                parts += ["--- error ---", c.error.rstrip()]
        if self.kernel_log.strip():
            parts += ["===== kernel process log (not cell output) =====", self.kernel_log.rstrip()]
        return "\n".join(parts)


def _ansi_free(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def _collect(cell: Any, source: str) -> CellRun:
    run = CellRun(source=source)
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") == "stdout":
                run.stdout += out.get("text", "")
            else:
                run.stderr += out.get("text", "")
        elif kind == "error":
            tb = "\n".join(out.get("traceback", [])) or f"{out.get('ename')}: {out.get('evalue')}"
            run.error = _ansi_free(tb)
        else:
            data = out.get("data", {})
            run.other.append(f"{kind}: {sorted(data)} {str(data.get('text/plain', ''))[:200]}")
    return run


@contextmanager
def _kernel_client(
    nb: Any, spec_dirs: Path, workdir: Path, env: dict[str, str], timeout: float, log: IO[bytes]
) -> Iterator[Any]:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    ksm = KernelSpecManager(kernel_dirs=[str(spec_dirs)])
    # ipc transport: unix sockets (no TCP ports, no "unencrypted TCP" warning from ipykernel),
    # in a short private dir: socket paths are limited to ~107 bytes
    ipc_dir = tempfile.mkdtemp(prefix="sknb-ipc-")
    km = AsyncKernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=ksm,
        transport="ipc",
        ip=os.path.join(ipc_dir, "k"),
    )
    client = NotebookClient(
        nb,
        km=km,
        kernel_name=KERNEL_NAME,
        timeout=timeout,  # per cell
        startup_timeout=60,
        allow_errors=False,
        interrupt_on_timeout=False,
        shutdown_kernel="graceful",
        resources={"metadata": {"path": str(workdir)}},
    )
    # cleanup_kc=True: shut the kernel down (gracefully) on the way out, although we made km
    # env/cwd/stdout/stderr go to KernelManager.start_kernel -> the kernel's Popen
    try:
        with client.setup_kernel(
            cleanup_kc=True, env=env, cwd=str(workdir), stdout=log, stderr=log
        ):
            yield client
    finally:
        shutil.rmtree(ipc_dir, ignore_errors=True)


def run_in_kernel(cells: list[str], spec_dirs: Path, workdir: Path, timeout: float) -> KernelRun:
    """Run ``cells`` in a fresh kernel, one cell at a time, then shut the kernel down and
    look for processes that outlived it."""
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    token = uuid.uuid4().hex
    env = {**os.environ, TOKEN_VAR: token}
    env.pop("PYTHONSTARTUP", None)
    failure: str | None = None
    kernel_pid: int | None = None
    watcher: DescendantWatcher | None = None
    log_path = workdir / "kernel.log"
    t0 = time.monotonic()
    try:
        with (
            log_path.open("wb") as log,
            _kernel_client(nb, spec_dirs, workdir, env, timeout, log) as client,
        ):
            kernel_pid = getattr(client.km.provisioner, "pid", None)
            if kernel_pid is not None:
                watcher = DescendantWatcher(kernel_pid).start()
            for i, cell in enumerate(nb.cells):
                try:
                    client.execute_cell(cell, i)
                except CellTimeoutError:
                    failure = f"cell {i} did not finish within {timeout:.0f}s (hang)"
                    break
                except CellExecutionError:
                    failure = f"cell {i} raised"
                    break
                except DeadKernelError as e:
                    failure = f"the kernel died during cell {i}: {e}"
                    break
            if watcher is not None:
                watcher.sample()
    except Exception as e:  # the kernel did not start or shut down cleanly
        failure = (failure + "; " if failure else "") + f"{type(e).__name__}: {e}"
    finally:
        if watcher is not None:
            watcher.stop()
    seconds = time.monotonic() - t0
    leftovers = find_leftovers(token, watcher.seen if watcher else {})
    runs = [_collect(c, c.source) for c in nb.cells]
    log_text = log_path.read_text(encoding="utf-8", errors="replace")
    return KernelRun(runs, seconds, failure, kernel_pid, leftovers, log_text)
