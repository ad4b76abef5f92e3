"""A kernel with an open Pool exits by itself on a graceful shutdown or restart (what
JupyterLab's "Shut Down" / "Restart" do), as fast as one without: jupyter_client never has to
SIGTERM it.

ipykernel 7 SIGTERMs the children in its process group before the interpreter's atexit hooks
run, so the fork server and the workers are already dead when our hook closes the pool. The
launcher then reports every child it still watches as killed at once and hands out no more
spares, so the pool's terminate() does not wait for exit reports that cannot come.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .test_kernel_lifecycle import ROOT, Kernel

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]


@pytest.mark.parametrize("busy", [False, True], ids=["idle-pool", "busy-pool"])
def test_graceful_shutdown_with_an_open_pool_needs_no_sigterm(
    spec_dirs: Path, tmp_path: Path, busy: bool
):
    from jupyter_client.manager import _ShutdownStatus

    k = Kernel(spec_dirs, tmp_path)
    try:
        code = (
            f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
            "from suitkaise_nb.processing import Pool\n"
            "from tests.pool.fns import sleep_then\n"
            "pool = Pool(2)\n"
        )
        if busy:
            code += "busy = pool.map.background()(sleep_then, [30] * 4)\n"
        content, out = k.run(code)
        assert content["status"] == "ok", out
        t0 = time.monotonic()
        k.km.shutdown_kernel(now=False)
        took = time.monotonic() - t0
        print(f"graceful shutdown took {took:.2f} s, {k.km._shutdown_status}")
        assert k.km._shutdown_status is _ShutdownStatus.ShutdownRequest  # exited by itself
        assert took < 2.0
    finally:
        assert not k.close()
