"""JupyterLab + headless Chromium for the browser tests (facts: ../shared/DESIGN.md §4).

* ``lab_server`` (session): ``jupyter lab`` of this interpreter's environment on 127.0.0.1, a
  free port, a random token, ``--no-browser`` (``--allow-root`` when root), the root dir a
  temporary directory the tests write their notebooks into. Settings, workspaces, runtime,
  data, config and IPython dirs are all fresh temporary directories, so neither the venv nor
  the user's Jupyter setup is touched; the user settings hold ``windowingMode: none`` (else
  JupyterLab does not render cells scrolled off-screen). The kernel is the native ``python3``
  kernel of the server's environment: ``python`` in its argv is this very interpreter. The
  server (and so its kernels) gets a unique ``SKNB_TEST_TOKEN`` in its environment; at the
  end it is stopped by PID and any process still carrying that token (started by this
  session, nothing else) is killed by PID and reported.
* ``browser`` (session): ``/usr/bin/chromium`` driven by Playwright, fresh user-data dir, the
  flags of DESIGN.md §4. Never ``playwright install``.

If JupyterLab or Chromium cannot be started the tests fail with a message saying why.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.services import free_port

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1200, "height": 800}
START_TIMEOUT = 60.0
TOKEN_VAR = "SKNB_TEST_TOKEN"

# JupyterLab user settings written into the private settings dir.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    # render every cell, also those scrolled off-screen (the default virtualises them)
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # no "would you like news?" toast over the notebook, no network look-ups
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
}


@dataclass
class LabServer:
    url: str
    token: str
    root: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def lab_url(self, notebook: str) -> str:
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def _jupyter_lab_exe() -> Path:
    exe = Path(sys.executable).parent / "jupyter-lab"
    if not exe.exists():
        pytest.fail(
            f"JupyterLab is not installed in this environment ({exe} is missing): "
            f"`{sys.executable} -m pip install jupyterlab` (it is in the `test` extra)",
            pytrace=False,
        )
    return exe


def _write_settings(settings_dir: Path) -> None:
    for rel, values in LAB_SETTINGS.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _wait_ready(url: str, token: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"jupyter lab exited with code {proc.returncode} while starting; its log "
                f"({log}):\n{log.read_text(errors='replace')[-4000:]}",
                pytrace=False,
            )
        req = urllib.request.Request(
            f"{url}/api/status", headers={"Authorization": f"token {token}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError) as e:
            last = repr(e)
        time.sleep(0.2)
    pytest.fail(
        f"jupyter lab did not answer on {url} within {START_TIMEOUT:.0f} s (last error: "
        f"{last}); its log ({log}):\n{log.read_text(errors='replace')[-4000:]}",
        pytrace=False,
    )


def _marked_processes(marker: str) -> list[Any]:
    import psutil

    found = []
    for p in psutil.process_iter(["pid"]):
        if p.pid == os.getpid():
            continue
        try:
            if p.environ().get(TOKEN_VAR) == marker:
                found.append(p)
        except (psutil.Error, OSError):
            continue
    return found


def _stop_server(proc: subprocess.Popen[bytes], marker: str) -> list[str]:
    """Stop the server by PID (SIGTERM shuts its kernels down), then kill by PID whatever
    this session started that is still alive. Returns descriptions of those leftovers."""
    import psutil

    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    deadline = time.monotonic() + 5.0
    left = _marked_processes(marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _marked_processes(marker)
    described = []
    for p in left:
        try:
            described.append(f"pid {p.pid}: {' '.join(p.cmdline())[:160]}")
            p.kill()
        except psutil.Error:
            pass
    return described


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[LabServer]:
    exe = _jupyter_lab_exe()
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "notebooks"
    dirs = {
        name: base / name
        for name in ("settings", "workspaces", "runtime", "data", "config", "ipython")
    }
    for d in [root, *dirs.values()]:
        d.mkdir()
    _write_settings(dirs["settings"])
    port = free_port()
    token = secrets.token_hex(16)
    marker = uuid.uuid4().hex
    env = dict(os.environ)
    env.update(
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        IPYTHONDIR=str(dirs["ipython"]),
        PYTHONUNBUFFERED="1",
        **{TOKEN_VAR: marker},
    )
    env.pop("JUPYTER_PATH", None)
    cmd = [
        str(exe),
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={dirs['settings']}",
        f"--LabApp.workspaces_dir={dirs['workspaces']}",
        "--LabApp.expose_app_in_browser=True",
        "--JupyterNotebookApp.expose_app_in_browser=True",
        "--ServerApp.log_level=INFO",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = artifacts / "jupyterlab.log"
    t0 = time.monotonic()
    with open(log, "wb") as out:
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        except OSError as e:
            pytest.fail(f"could not start jupyter lab ({' '.join(cmd)}): {e}", pytrace=False)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, token, proc, log)
        print(f"jupyter lab ready on {url} in {time.monotonic() - t0:.1f} s (pid {proc.pid})")
        yield LabServer(url=url, token=token, root=root, log=log, proc=proc)
    finally:
        leftovers = _stop_server(proc, marker)
    if leftovers:
        pytest.fail(
            "processes started under the JupyterLab server were still alive after it stopped "
            "(killed by pid): " + "; ".join(leftovers),
            pytrace=False,
        )


# module scope: Playwright's sync API keeps an event loop running in this thread while it
# lives, and later tests of the session (asyncio.run, .asynced()) need the thread's loop free
@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Playwright persistent Chromium context (fresh user-data dir)."""
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} is missing: run `bash tests/install_services.sh` as root (it "
            "apt-get installs chromium); never `playwright install`",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            f"playwright is not installed: `{sys.executable} -m pip install playwright` (it is "
            "in the `test` extra; do not run `playwright install`, /usr/bin/chromium is used)",
            pytrace=False,
        )
    user_data = tmp_path_factory.mktemp("chromium-profile")
    pw = sync_playwright().start()
    try:
        try:
            context = pw.chromium.launch_persistent_context(
                str(user_data),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport=VIEWPORT,
                timeout=60_000,
            )
        except Exception as e:
            pytest.fail(f"could not launch {CHROMIUM} through Playwright: {e}", pytrace=False)
        try:
            yield context
        finally:
            context.close()
    finally:
        pw.stop()
        shutil.rmtree(user_data, ignore_errors=True)


@pytest.fixture
def page(browser: Any, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh tab; its console is kept in artifacts/browser/<test>.console.log."""
    pg = browser.new_page()
    lines: list[str] = []
    pg.on("console", lambda m: lines.append(f"[{m.type}] {m.text}"))
    pg.on("pageerror", lambda e: lines.append(f"[pageerror] {e}"))
    try:
        yield pg
    finally:
        (artifacts / f"{request.node.name}.console.log").write_text("\n".join(lines))
        with contextlib.suppress(Exception):
            pg.close()
