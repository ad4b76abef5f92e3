"""``make lab`` opens JupyterLab on ``notebooks/`` and prints the URL to open, also when the
user is root (issue 18, point 13: containers and CI-like machines, where JupyterLab refuses
to start without ``--allow-root``)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.services import free_port

from ._util import ROOT, leftovers, marked_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_make_lab_serves_the_notebooks_and_prints_the_url(tmp_path: Path) -> None:
    venv = Path(sys.prefix)
    port = free_port()
    env, token = marked_env()
    for name in ("JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR"):
        env[name] = tempfile.mkdtemp(prefix=name.lower() + "-", dir=tmp_path)
    env.pop("JUPYTER_PATH", None)
    args = f"--no-browser --ip=127.0.0.1 --port={port} --port-retries=0"
    proc = subprocess.Popen(
        ["make", "-C", str(ROOT), "-o", f"{venv}/.lab", "lab", f"VENV={venv}", f"LAB_ARGS={args}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group: stopped below by that group's id
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    url = None
    try:
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            found = re.search(rf"http://127\.0\.0\.1:{port}/lab\?token=\w+", "".join(lines))
            url = found.group(0) if found else None
            time.sleep(0.2)
        out = "".join(lines)
        assert url, f"make lab printed no URL to open (exit {proc.poll()}):\n{out[-3000:]}"
        assert "Running as root is not recommended" not in out, out[-3000:]
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200
        api = url.replace("/lab?token=", "/api/contents?token=")
        with urllib.request.urlopen(api, timeout=30) as r:
            listing = r.read().decode()
        assert '"quickstart.ipynb"' in listing, listing[:500]  # the root is notebooks/
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        reader.join(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert not leftovers(token), "make lab left processes behind"
