"""Kernel lifecycle, with jupyter_client's KernelManager and a blocking client, as a
front-end drives it: while an Skprocess with ``runs=None``, a ``Pool.map`` (in the
background) and a Share (its server busy in a method call) are running, the kernel is

* restarted (``restart_kernel(now=True)``: SIGKILL to the kernel's process group, and
  ``now=False``: a shutdown request; ipykernel then SIGTERMs the children in its process
  group itself before its atexit hooks -- ours among them -- run),
* killed alone (SIGKILL to the kernel's pid only, as the OOM killer or a crash would: then
  only our own mechanisms -- the zygote's EOF, PDEATHSIG -- can clean up),
* shut down (``shutdown_kernel(now=False)`` and ``now=True``).

After each, every process the kernel had started (the pids it printed, and its descendants
as seen from outside just before) must be gone within 3 s of the call returning. Whatever is
left is killed by pid (recorded here, never by name) and the test fails.

Also: ``km.interrupt_kernel()`` during ``proc.result()`` and during a Share method call ends
the cell within 2 s and leaves both usable (the interrupt during ``pool.map`` is
``tests/pool/test_pool_kernel.py``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.seed.runner import KERNEL_NAME, TOKEN_VAR, find_leftovers

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
GONE_WITHIN = 3.0

SETUP = f"""
import json, sys, threading, time
sys.path.insert(0, {str(ROOT)!r})
import psutil
from suitkaise_nb.processing import Pool, Share
from tests.engine.procs import Forever
from tests.hardening.procs import Sleeper
from tests.pool.fns import sleep_then

proc = Forever()  # runs=None: until stopped
proc.start()
share = Share()
share.sleeper = Sleeper()
share.x = 1
pool = Pool(2)
busy = pool.map.background()(sleep_then, [30] * 4)
napping = threading.Thread(target=lambda: share.sleeper.nap(30), daemon=True)
napping.start()
time.sleep(0.5)
assert proc.is_alive and not busy.done() and napping.is_alive()
print('PIDS ' + json.dumps({{
    'process': proc.pid,
    'share': share._sk.owner.spare.pid,
    'workers': sorted(pool.model.workers),
    'descendants': [c.pid for c in psutil.Process().children(recursive=True)],
}}))
"""

Key = tuple[int, float]  # (pid, create_time): a recycled pid is never mistaken for ours


class Kernel:
    """One KernelManager and its blocking client; every kernel it starts carries a token in
    its environment, so that anything it leaves behind can be found (and killed by pid)."""

    def __init__(self, spec_dirs: Path, workdir: Path) -> None:
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import KernelManager

        self.ipc_dir = tempfile.mkdtemp(prefix="sknb-ipc-")
        self.km = KernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_dirs)]),
            transport="ipc",
            ip=os.path.join(self.ipc_dir, "k"),
        )
        self.token = uuid.uuid4().hex
        env = {**os.environ, TOKEN_VAR: self.token}
        env.pop("PYTHONSTARTUP", None)
        self.log = (workdir / "kernel.log").open("wb")
        self.km.start_kernel(env=env, cwd=str(workdir), stdout=self.log, stderr=self.log)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.seen: dict[Key, psutil.Process] = {}

    @property
    def pid(self) -> int:
        return self.km.provisioner.pid  # type: ignore[union-attr]

    def run(self, code: str, timeout: float = 60) -> tuple[dict[str, Any], str]:
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        return reply["content"], "".join(out)

    def run_interrupted(self, code: str, delay: float) -> tuple[dict[str, Any], str, float]:
        """Run ``code``; ``delay`` s in, interrupt the kernel as Jupyter's stop button does.
        Returns the reply, the output and the seconds from the interrupt to the reply."""
        sent: list[float] = []

        def fire() -> None:
            time.sleep(delay)
            sent.append(time.monotonic())
            self.km.interrupt_kernel()

        t = threading.Thread(target=fire, daemon=True)
        t.start()
        content, out = self.run(code)
        back = time.monotonic()
        t.join()
        return content, out, back - sent[0]

    def start_work(self) -> dict[str, Any]:
        content, out = self.run(SETUP)
        assert content["status"] == "ok", out
        m = re.search(r"^PIDS (.*)$", out, re.M)
        assert m, out
        pids = json.loads(m.group(1))
        # the kernel's descendants as seen from here, right now
        outside = psutil.Process(self.pid).children(recursive=True)
        for p in outside:
            try:
                self.seen[(p.pid, p.create_time())] = p
            except psutil.Error:
                pass
        ours = {pids["process"], pids["share"], *pids["workers"]}
        assert ours <= {p.pid for p in outside}, (pids, outside)
        assert ours <= set(pids["descendants"])
        return pids

    def left(self) -> list[psutil.Process]:
        out = []
        for (pid, created), p in self.seen.items():
            try:
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.Error:
                pass
        return out

    def wait_all_gone(self, what: str, since: float) -> float:
        """Seconds (from ``since``) until every process seen so far is gone; fails (after
        killing them, by pid) when some outlive ``GONE_WITHIN`` s."""
        deadline = time.monotonic() + GONE_WITHIN
        while True:
            left = self.left()
            if not left:
                took = time.monotonic() - since
                print(f"{what}: all {len(self.seen)} processes gone {took:.2f} s after it")
                self.seen.clear()
                return took
            if time.monotonic() > deadline:
                described = [f"{p.pid} {' '.join(p.cmdline())[:120]}" for p in left]
                for p in left:
                    try:
                        p.kill()
                    except psutil.Error:
                        pass
                self.seen.clear()
                pytest.fail(f"{what}: still alive {GONE_WITHIN} s later: {described}")
            time.sleep(0.02)

    def close(self) -> list[str]:
        """Shut down whatever is still running; return (and kill) leftovers of any kernel."""
        try:
            self.kc.stop_channels()
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
        finally:
            self.log.close()
            shutil.rmtree(self.ipc_dir, ignore_errors=True)
        for p in self.left():
            try:
                p.kill()
            except psutil.Error:
                pass
        return find_leftovers(self.token, {})


@pytest.fixture
def kernel(spec_dirs: Path, tmp_path: Path) -> Iterator[Kernel]:
    k = Kernel(spec_dirs, tmp_path)
    try:
        yield k
    finally:
        leftovers = k.close()
    assert not leftovers, f"processes of this test outlived it: {leftovers}"


def test_restarts_and_a_killed_kernel_leave_no_process(kernel: Kernel):
    km = kernel.km

    kernel.start_work()
    t0 = time.monotonic()
    km.restart_kernel(now=True)
    print(f"restart_kernel(now=True) returned in {time.monotonic() - t0:.2f} s")
    kernel.wait_all_gone("restart (now=True)", time.monotonic())
    kernel.kc.wait_for_ready(timeout=60)

    kernel.start_work()
    t0 = time.monotonic()
    km.restart_kernel(now=False)
    took = time.monotonic() - t0
    print(f"restart_kernel(now=False) returned in {took:.2f} s ({km._shutdown_status})")
    kernel.wait_all_gone("restart (now=False)", time.monotonic())
    kernel.kc.wait_for_ready(timeout=60)

    # the kernel alone is SIGKILLed: no process-group kill, no atexit; the zygote sees EOF on
    # its control socket and kills the children, which also have PDEATHSIG against it
    kernel.start_work()
    kernel_pid = kernel.pid
    os.kill(kernel_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    kernel.wait_all_gone("kernel SIGKILLed alone", killed_at)

    # and the manager can still start a fresh kernel, with no child of ours
    km.restart_kernel(now=True)
    kernel.kc.wait_for_ready(timeout=60)
    content, out = kernel.run("import os, psutil\nprint(len(psutil.Process().children()))")
    assert content["status"] == "ok" and out.strip() == "0", out


@pytest.mark.parametrize("now", [False, True], ids=["graceful", "now"])
def test_shutdown_leaves_no_process(kernel: Kernel, now: bool):
    kernel.start_work()
    t0 = time.monotonic()
    kernel.km.shutdown_kernel(now=now)
    took = time.monotonic() - t0
    # (with a Pool open, a graceful shutdown ends in SIGTERM: see docs/reliability.md)
    print(f"shutdown_kernel(now={now}) returned in {took:.2f} s ({kernel.km._shutdown_status})")
    kernel.wait_all_gone(f"shutdown (now={now})", time.monotonic())


def test_kernel_interrupt_during_result_and_a_share_call(kernel: Kernel):
    pids = kernel.start_work()

    content, out, took = kernel.run_interrupted("proc.result()", delay=0.5)
    print(f"kernel interrupt during proc.result(): the cell ended {took:.2f} s later")
    assert content["status"] == "error" and content["ename"] == "KeyboardInterrupt", out
    assert took < 2.0
    content, out = kernel.run("print(proc.is_alive, proc.process_state.value)")
    assert out == "True running\n", out

    content, out, took = kernel.run_interrupted("share.sleeper.nap(0.1)", delay=0.5)
    # the server is still busy in the nap(30) of the setup's thread: this call waits for it
    print(f"kernel interrupt during a Share call: the cell ended {took:.2f} s later")
    assert content["status"] == "error" and content["ename"] == "KeyboardInterrupt", out
    assert took < 2.0

    # the objects are still consistent: the process stops gracefully, the pool is cancelled
    # and maps again, the Share answers once its server is free (the nap of 30 s is long, so
    # the Share is exited and a new one checked instead)
    content, out = kernel.run(
        "proc.stop()\n"
        "print(proc.result()[:2])\n"
        "pool.cancel()\n"
        "print(pool.map(sleep_then, [0.01, 0.02]))\n"
        "share.exit()\n"
        "s2 = Share()\n"
        "s2.sleeper = Sleeper()\n"
        "calls = s2.sleeper.nap(0)\n"
        "print(calls)\n"
        "s2.exit()\n"
        "pool.close()"
    )
    assert content["status"] == "ok", out
    assert out == "('stopped', True)\n[0.01, 0.02]\n1\n", out
    assert not psutil.pid_exists(pids["process"]) or (
        psutil.Process(pids["process"]).status() == psutil.STATUS_ZOMBIE
    )
