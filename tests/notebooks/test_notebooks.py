"""Every notebook in ``notebooks/`` runs, cell by cell, in a fresh kernel of this interpreter.

How: one test per notebook runs ``python -m pytest --nbval-lax --nbval-current-env
notebooks/<name>.ipynb`` in a subprocess. ``--nbval-lax`` checks that every cell runs
(a cell tagged ``raises-exception`` may raise); the notebooks assert their deterministic
results in the cells themselves, so values are checked too. ``--nbval-current-env`` starts
the kernel with ``sys.executable`` (the venv's python), never a kernelspec found elsewhere.

Running nbval in a subprocess keeps the rest of the suite free of it: ``pytest`` alone (all of
``tests/``) runs these tests like any other, and ``pytest tests/notebooks -k pool`` runs one
notebook. To run a notebook under nbval by hand::

    .venv/bin/python -m pytest --nbval-lax --nbval-current-env notebooks/pool.ipynb

Each run carries an environment marker; a process that still carries it a few seconds after
the kernel has shut down is an orphan: it is killed and the test fails.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ._util import NOTEBOOKS_DIR, ROOT, leftovers, marked_env, notebooks

pytestmark = pytest.mark.kernel

BUDGET = 90.0  # seconds for one notebook, kernel start-up and shutdown included (3-15 s on a
# quiet 2-core machine; the ceiling leaves room for a CI box shared with other jobs)
CELL_TIMEOUT = 60

# Notebooks that fail because of a library bug (reported, not worked around in the notebook).
# strict xfail: once the library is fixed the test XPASSes, fails, and the entry must go.
KNOWN_LIBRARY_BUGS: dict[str, str] = {}  # notebook stem -> why it fails (strict xfail)


def _params() -> list[object]:
    params = []
    for path in notebooks():
        marks = [pytest.mark.timeout(BUDGET * 2.5)]
        if path.stem in KNOWN_LIBRARY_BUGS:
            marks.append(pytest.mark.xfail(reason=KNOWN_LIBRARY_BUGS[path.stem], strict=True))
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def test_there_are_notebooks() -> None:
    names = {p.stem for p in notebooks()}
    expected = {
        "quickstart", "skprocess", "pool", "share", "pipe", "tell_listen", "autoreconnect",
        "task_queue", "streaming_pipeline", "magics", "timing_dashboard",
    }  # fmt: skip
    assert expected <= names, sorted(expected - names)


def test_notebooks_agree_with_their_sources_and_have_no_outputs() -> None:
    """Each .ipynb is paired with a MyST Markdown source (jupytext, notebooks/jupytext.toml):
    the same cells, sources and tags in both, and the .ipynb is committed without outputs."""
    import jupytext
    import nbformat

    for path in notebooks():
        source = path.with_suffix(".md")
        assert source.exists(), f"{path.name} has no paired source {source.name}"
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,md:myst", path.name
        text = jupytext.read(source)
        assert len(text.cells) == len(nb.cells), path.name
        for k, (a, b) in enumerate(zip(text.cells, nb.cells, strict=True)):
            where = f"{path.stem} cell {k}"
            assert a.cell_type == b.cell_type, where
            assert a.source.strip() == b.source.strip(), where
            assert a.metadata.get("tags", []) == b.metadata.get("tags", []), where
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, (path.name, cell.id)


def test_no_notebook_generator_script() -> None:
    """The notebooks are their own sources: nothing generates them."""
    assert not (NOTEBOOKS_DIR / "_build.py").exists()


@pytest.mark.parametrize("path", _params())
def test_notebook_runs_under_nbval(path: Path) -> None:
    env, token = marked_env()
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        "--nbval-current-env",
        f"--nbval-cell-timeout={CELL_TIMEOUT}",
        "-p",
        "no:cacheprovider",
        "-q",
        str(path.relative_to(ROOT)),
    ]
    start = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=BUDGET * 2.5
    )
    seconds = time.monotonic() - start
    left = leftovers(token)
    report = f"{path.name}: {seconds:.1f}s\n{proc.stdout[-8000:]}\n{proc.stderr[-3000:]}"
    print(report.splitlines()[0])
    assert proc.returncode == 0, report
    assert not left, f"processes outlived the kernel of {path.name}: {left}"
    assert seconds < BUDGET, f"{path.name} took {seconds:.1f}s (budget {BUDGET:.0f}s)"
