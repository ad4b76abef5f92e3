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


#: the Share examples whose comments promise an exact count: 50; 30; 20 then 30; 100
EXACT_SHARE_COUNTS = (
    "share-basic-shared-counter-using-share",
    "share-share-as-context-manager",
    "share-clearing-share-state",
    "share-share-start-and-share-stop-control",
)
REPEATS = 20


def _exact_params() -> Sequence[object]:
    by_id = {ex.id: ex for ex in load_examples()}
    return [
        pytest.param(by_id[i], id=i, marks=pytest.mark.timeout(REPEATS * 20 + 60))
        for i in EXACT_SHARE_COUNTS
    ]


@pytest.mark.parametrize("example", _exact_params())
def test_share_counts_hold_in_repeated_runs(example: Example, tmp_path: Path) -> None:
    """The exact counts are not luck: each example runs 20 times, as a fresh script each
    time, and every run prints the promised count and leaves nothing behind."""
    expect = EXPECTED[example.id]
    for n in range(REPEATS):
        run = run_script(example.code, tmp_path, f"{example.id.replace('-', '_')}_{n}", 20.0)
        problems = [] if run.returncode == 0 and not run.hung else [f"exit {run.returncode}"]
        problems += check_output(expect, run.stdout, run.stderr)
        if run.leftovers:
            problems.append(f"processes left behind: {run.leftovers}")
        title = f"seed example {example.id!r}, run {n + 1} of {REPEATS}"
        assert not problems, report(title, problems, run.stdout, run.stderr, "")
