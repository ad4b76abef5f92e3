"""Helpers shared by the notebook, docs and Binder tests."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = ROOT / "notebooks"
TOKEN_VAR = "SKNB_NOTEBOOK_TEST"


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def marked_env(base: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    """A copy of the environment with a unique marker every descendant process inherits."""
    token = uuid.uuid4().hex
    env = dict(os.environ if base is None else base)
    env[TOKEN_VAR] = token
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    return env, token


def _carries(p: psutil.Process, token: str) -> bool:
    try:
        return p.environ().get(TOKEN_VAR) == token and p.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, OSError):
        return False


def leftovers(token: str, grace: float = 5.0) -> list[str]:
    """Processes still alive (after ``grace`` seconds) that descend from the marked run.

    They are killed, by pid, and described for the failure message.
    """
    deadline = time.monotonic() + grace
    while True:
        alive = [p for p in psutil.process_iter() if p.pid != os.getpid() and _carries(p, token)]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    found = []
    for p in alive:
        try:
            found.append(f"pid {p.pid}: {' '.join(p.cmdline())[:160]}")
            p.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    return found
