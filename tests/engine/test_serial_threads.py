"""Shipping code by value from one thread never swallows what another thread prints.

dill finds a function's globals by pointing the process-wide ``sys.stdout`` at a ``StringIO``
while it disassembles; a cell printing while ``.background()`` shipped its class lost those
lines (issue 18, point 12). We give dill an answer that never touches ``sys.stdout``.
"""

from __future__ import annotations

import dis
import io
import sys
import threading

import pytest

from suitkaise_nb._engine import _serial

pytestmark = pytest.mark.timeout(120)

G = 1


def _dill_way(func):
    """How dill reads the names: from ``dis.dis`` text, lines with ``_GLOBAL``."""
    buf = io.StringIO()
    dis.dis(func, file=buf)
    names = set()
    for line in buf.getvalue().splitlines():
        if "_GLOBAL" in line:
            name = line.split("(")[-1].split(")")[0]
            names.add(name.replace("NULL + ", "").replace(" + NULL", ""))
    return names


def _sample_functions():
    def plain(x):
        return len(x) + G

    def nested(x):
        def inner(y):
            return max(y, G)

        return [abs(v) for v in map(inner, x)]

    def writes():
        global G
        G = sorted([3, 1])
        del G

    class Holder:
        def method(self):
            return isinstance(self, Holder) and print is not None

    return [plain, nested, writes, Holder.method, lambda: sum(range(G))]


@pytest.mark.parametrize("func", _sample_functions(), ids=lambda f: f.__qualname__)
def test_same_names_as_dill_finds(func):
    assert set(_serial._code_globals(func)) == _dill_way(func)


def test_no_code_no_names():
    assert _serial._code_globals(None) == []
    assert _serial._code_globals(42) == []


class _Counter(io.TextIOBase):
    def __init__(self):
        self.lines = 0

    def write(self, s):
        self.lines += s.count("\n")
        return len(s)


def test_prints_survive_shipping_on_another_thread():
    def make():
        def work(x):
            def helper(y):
                return sorted(y) + [len(y), G]

            return [helper(x) for _ in range(3)]

        return work

    func = make()  # a closure: the C pickler refuses it, dill ships it by value
    _serial.dumps(func)  # imports dill and installs the quiet globals finder
    stop = threading.Event()
    shipped = []

    def ship():
        while not stop.is_set():
            shipped.append(len(_serial.dumps(func)[0]))

    sink = _Counter()
    thread = threading.Thread(target=ship)
    real = sys.stdout
    sys.stdout = sink
    try:
        thread.start()
        for i in range(20_000):
            print(i)
    finally:
        stop.set()
        thread.join(30)
        sys.stdout = real
    assert shipped, "the shipping thread never ran"
    assert sink.lines == 20_000
