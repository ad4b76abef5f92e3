"""``binder/`` alone is enough to run the notebooks, as on mybinder.org.

repo2docker installs ``binder/requirements.txt`` with pip run from the repository root (after
copying the repository in, because the file names the local package ``.``). This test does the
same in a fresh virtual environment — nothing from the project's own venv — then runs
``notebooks/quickstart.ipynb`` with nbclient in a kernel of that environment and checks that
the widget front-end (``jupyterlab_widgets``' prebuilt JupyterLab extension) is installed.

pip reuses its local cache, so this takes about a minute once the wheels are cached.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ._util import NOTEBOOKS_DIR, ROOT, leftovers, marked_env

pytestmark = [pytest.mark.slow, pytest.mark.kernel]

BINDER = ROOT / "binder"


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_binder_files() -> None:
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-3."), runtime
    reqs = [
        line.split("#", 1)[0].strip()
        for line in (BINDER / "requirements.txt").read_text().splitlines()
    ]
    # the repository itself (with the dask extra), resolved from the repo root by repo2docker
    assert any(r == "." or r.startswith(".[") for r in reqs), reqs


@pytest.mark.timeout(600)
def test_fresh_venv_from_binder_runs_the_quickstart(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    t0 = time.monotonic()
    venv = tmp_path / "binder-venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    py = venv / "bin" / "python"
    # exactly what repo2docker runs, from the repository root
    _run(
        [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r",
         "binder/requirements.txt"],
        cwd=ROOT,
        timeout=480,
    )  # fmt: skip
    install_seconds = time.monotonic() - t0

    widgets = venv / "share/jupyter/labextensions/@jupyter-widgets/jupyterlab-manager"
    assert (widgets / "package.json").is_file(), "jupyterlab_widgets' extension is missing"
    wanted = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    version = _run([str(py), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).stdout
    if version.strip() != wanted:
        pytest.skip(f"this machine's Python is {version.strip()}, Binder's is {wanted}")

    kernels = tmp_path / "kernels"
    (kernels / "binder").mkdir(parents=True)
    (kernels / "binder" / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "binder venv",
                "language": "python",
            }
        )
    )
    env, token = marked_env()
    env.pop("PYTHONPATH", None)
    km = KernelManager(
        kernel_name="binder", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)])
    )
    nb = nbformat.read(NOTEBOOKS_DIR / "quickstart.ipynb", as_version=4)
    probe = "import sys, suitkaise_nb\nprint(sys.executable)\nprint(suitkaise_nb.__file__)"
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    t1 = time.monotonic()
    km.start_kernel(env=env, cwd=str(NOTEBOOKS_DIR))
    try:
        client = nbclient.NotebookClient(nb, km=km, timeout=120, allow_errors=False)
        client.execute()
    finally:
        km.shutdown_kernel(now=False)
    run_seconds = time.monotonic() - t1
    left = leftovers(token)

    where = nb.cells[-1].outputs[0]["text"].split()
    assert where[0] == str(py), where
    assert where[1].startswith(str(venv)), f"suitkaise_nb imported from {where[1]}, not the venv"
    assert not left, f"processes outlived the kernel: {left}"
    print(f"binder venv: install {install_seconds:.1f}s, quickstart {run_seconds:.1f}s")
