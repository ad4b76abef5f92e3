"""Shared fixtures: every test that starts processes must leave none behind."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.services import postgres_server, redis_server  # noqa: F401  (session fixtures)


def _live_children() -> list[int]:
    from suitkaise_nb._engine._launcher import Launcher

    inst = Launcher._instance
    if inst is None or not inst.alive:
        return []
    return inst.live_pids()


@pytest.fixture(autouse=True)
def no_leaked_processes(request: pytest.FixtureRequest):
    """Fail a test that leaves an Skprocess/pool/share child running (after a short grace)."""
    yield
    deadline = time.monotonic() + 5.0
    left = _live_children()
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = _live_children()
    if left:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pytest.fail(f"test left child processes running: {left}")
