"""The seed examples typed into a real Jupyter kernel (nbclient), the way a notebook user
would: every top-level class/def in its own cell, the statements between them grouped,
``asyncio.run(X)`` -> ``await X``, ``if __name__ == "__main__":`` bodies dedented.

One fresh kernel per example (a clean namespace, and the leftover check can wait for the
kernel itself to be gone). The kernel runs ``sys.executable`` through a private kernelspec,
see ``runner``. The concatenated stream output of the cells must satisfy the same
``expected.EXPECTED`` checks as the script run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from expected import EXPECTED, SECTIONS_ENABLED
from runner import run_in_kernel, write_kernelspec
from seedlib import Example, check_output, load_examples, notebook_cells, report

pytestmark = pytest.mark.kernel

KERNEL_SLACK = 45.0  # kernel start-up and graceful shutdown, on top of the example's limit


@pytest.fixture(scope="module")
def kernelspec_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_kernelspec(tmp_path_factory.mktemp("jupyter"))


@pytest.mark.timeout(90)
def test_kernel_runs_this_interpreter(kernelspec_dirs: Path, tmp_path: Path) -> None:
    cells = ["import sys, suitkaise_nb\nprint(sys.executable)\nprint(suitkaise_nb.__file__)"]
    run = run_in_kernel(cells, kernelspec_dirs, tmp_path, timeout=30)
    assert run.failure is None, run.transcript()
    lines = run.stdout.splitlines()
    assert lines[0] == sys.executable, run.transcript()
    import suitkaise_nb

    assert lines[1] == suitkaise_nb.__file__, run.transcript()
    assert not run.leftovers, run.leftovers


def _params() -> Sequence[object]:
    params = []
    for ex in load_examples():
        if ex.section not in SECTIONS_ENABLED:
            continue
        expect = EXPECTED[ex.id]
        params.append(
            pytest.param(ex, id=ex.id, marks=pytest.mark.timeout(expect.timeout + KERNEL_SLACK))
        )
    return params


@pytest.mark.parametrize("example", _params())
def test_seed_kernel(example: Example, kernelspec_dirs: Path, tmp_path: Path) -> None:
    expect = EXPECTED[example.id]
    cells = notebook_cells(example.code)
    if expect.postscript:
        cells.append(expect.postscript.rstrip())
    run = run_in_kernel(cells, kernelspec_dirs, tmp_path, timeout=expect.timeout)

    problems: list[str] = []
    if run.failure:
        problems.append(run.failure)
    problems += check_output(expect, run.stdout, run.stderr)
    if run.leftovers:
        problems.append(
            f"processes still alive 2 s after the kernel shut down (killed): {run.leftovers}"
        )
    title = f"seed example {example.id!r} (markdown line {example.line}) in a kernel"
    extra = f"ran {run.seconds:.2f}s (kernel pid {run.kernel_pid})\n{run.transcript()}"
    assert not problems, report(title, problems, run.stdout, run.stderr, extra)
