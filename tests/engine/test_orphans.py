"""No child outlives its parent: SIGKILL the parent, and the children are gone soon after."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.timeout(60)

SCRIPT = r"""
import json, os, sys, time
from suitkaise_nb.processing import Pool, Share, Skprocess

class Forever(Skprocess):
    def __run__(self):
        time.sleep(0.01)

procs = [Forever() for _ in range(2)]
for p in procs:
    p.start()
pool = Pool(2)
share = Share()
share.x = 1
pids = [p.pid for p in procs] + sorted(pool.model.workers) + [share._sk.owner.spare.pid]
print(json.dumps(pids), flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("method", ["auto", "forkserver"])
def test_sigkill_parent_leaves_no_children(tmp_path, method):
    script = tmp_path / "parent.py"
    script.write_text(
        f"import suitkaise_nb\nsuitkaise_nb.config.start_method = {method!r}\n" + SCRIPT
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        pids = json.loads(line)
        assert len(pids) == 5 and all(_alive(p) for p in pids)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 2.0
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [p for p in pids if _alive(p)]
        for p in left:
            os.kill(p, signal.SIGKILL)
        assert not left, f"children outlived their SIGKILLed parent: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_script_exit_with_running_children_leaves_none(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(SCRIPT.replace("time.sleep(60)", "sys.exit(0)"))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    pids = json.loads(out.stdout.splitlines()[0])
    deadline = time.monotonic() + 2.0
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if _alive(p)]
