"""Under load, a cell that prints, starts ``.background()`` work and prints its result keeps
every line (issue 18, point 12): the seed's "Background execution with future" example, run
200 times in one kernel, its output rebuilt as a front-end shows it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .frontend import FrontEnd

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = str(Path(__file__).resolve().parents[2])

DEFINE = """
from suitkaise_nb.processing import Skprocess
import math

class BackgroundProcess(Skprocess):
    def __init__(self, numbers):
        self.numbers = numbers
        self.process_config.runs = len(numbers)
        self.results = []

    def __run__(self):
        n = self.numbers[self._current_run]
        factors, d = [], 2
        while d * d <= n:
            while n % d == 0:
                factors.append(d)
                n //= d
            d += 1
        if n > 1:
            factors.append(n)
        self.results.append({'number': self.numbers[self._current_run], 'factors': factors})

    def __result__(self):
        return self.results
"""

RUN = """
numbers = [123456789, 987654321, 1000007, 999983, 2147483]
process = BackgroundProcess(numbers)
future = process.run.background()()
print("Process running in background...")
main_thread_work = []
for i in range(5):
    main_thread_work.append(math.factorial(100 + i))
    print(f"  Main thread computed factorial({100 + i})")
result = future.result()
print(f"\\nProcess computed {len(result)} factorizations")
for r in result[:3]:
    print(f"  {r['number']} = {r['factors']}")
"""

EXPECTED = [
    "Process running in background...",
    *[f"  Main thread computed factorial({100 + i})" for i in range(5)],
    "",
    "Process computed 5 factorizations",
    "  123456789 = [3, 3, 3607, 3803]",
    "  987654321 = [3, 3, 17, 17, 379721]",
    "  1000007 = [29, 34483]",
]


def test_every_line_arrives_in_200_runs_under_load(tmp_path):
    # load: two processes that burn a CPU each (this machine has two), for the whole run
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    fe = FrontEnd(tmp_path)
    try:
        fe.run(f"import sys; sys.path.insert(0, {ROOT!r})\nimport suitkaise_nb")
        fe.run(textwrap.dedent(DEFINE))
        cells = [fe.run(RUN, timeout=60) for _ in range(200)]
        fe.settle(2.0)
        outputs = fe.outputs()
        bad = []
        for i in cells:
            text = "".join(o.text for o in outputs[i] if o["output_type"] == "stream")
            if text.splitlines() != EXPECTED:
                bad.append((i, text))
        assert not bad, f"{len(bad)} of 200 cells lost or reordered lines: {bad[:3]}"
    finally:
        fe.close()
        for hog in hogs:
            hog.kill()
            hog.wait(10)
