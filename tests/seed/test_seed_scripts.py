"""The seed examples, run as plain scripts: ``python example.py`` in a fresh process.

Each example must exit 0, print what its comments promise (``expected.EXPECTED``), write
nothing to stderr but allowed warnings, finish within its hard timeout (a hang fails), and
leave no process behind 2 s after it exited.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from expected import EXPECTED, SECTIONS_ENABLED
from runner import run_script
from seedlib import Example, check_output, load_examples, report


def _params() -> Sequence[object]:
    params = []
    for ex in load_examples():
        if ex.section not in SECTIONS_ENABLED:
            continue
        expect = EXPECTED[ex.id]
        params.append(pytest.param(ex, id=ex.id, marks=pytest.mark.timeout(expect.timeout + 30)))
    return params


@pytest.mark.parametrize("example", _params())
def test_seed_script(example: Example, tmp_path: Path) -> None:
    expect = EXPECTED[example.id]
    code = example.code
    if expect.postscript:
        code += "\n# --- seed harness postscript ---\n" + expect.postscript
    run = run_script(code, tmp_path, example.id.replace("-", "_"), expect.timeout)

    problems: list[str] = []
    if run.hung:
        problems.append(f"did not finish within {expect.timeout:.0f}s (hang); killed")
    elif run.returncode != 0:
        problems.append(f"exit code {run.returncode}")
    problems += check_output(expect, run.stdout, run.stderr)
    if run.leftovers:
        problems.append(
            f"processes still alive 2 s after the script exited (killed): {run.leftovers}"
        )
    title = f"seed example {example.id!r} (markdown line {example.line}) as a script"
    assert not problems, report(title, problems, run.stdout, run.stderr, f"ran {run.seconds:.2f}s")
