"""Module-level functions and Skprocess classes used by the pool tests (they ship by
reference: the workers import this module)."""

from __future__ import annotations

import ctypes
import os
import threading
import time

from suitkaise_nb.processing import Skprocess


def square(x):
    return x * x


def add(a, b):
    return a + b


def add3(a, b, c):
    return a + b + c


def sleep_square(x, delay=0.05):
    time.sleep(delay)
    return x * x


def sleep_then(seconds, value=None):
    """Sleep ``seconds`` then return ``value`` (or the seconds)."""
    time.sleep(seconds)
    return seconds if value is None else value


def variable(x):
    """Item ``x`` takes ``x`` * 20 ms: high items finish last."""
    time.sleep(x * 0.02)
    return x


def pid_after(seconds):
    time.sleep(seconds)
    return os.getpid()


def fail_on_3(x):
    if x == 3:
        raise ValueError(f"Cannot process {x}")
    return x * 2


def slow_fail_on_3(x):
    time.sleep(0.02)
    return fail_on_3(x)


class CustomError(Exception):
    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def custom_fail(x):
    if x == 2:
        raise CustomError(42, "custom detail")
    return x


def key_error_on_2(x):
    if x == 2:
        return {}["missing"]
    return x


def exit_on_3(x):
    time.sleep(0.01)
    if x == 3:
        os._exit(7)
    return x


def segfault_on_3(x):
    time.sleep(0.01)
    if x == 3:
        ctypes.string_at(0)
    return x


def hang_on_3(x):
    """Item 3 blocks (a long sleep: the test kills the worker from outside)."""
    if x == 3:
        time.sleep(60)
    time.sleep(0.01)
    return x


def spin(seconds):
    """A pure-Python CPU loop (no blocking call to interrupt)."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def identity(x):
    return x


def return_generator(x):
    if x == 2:
        return (i for i in range(3))  # generators cannot be pickled, even by dill
    return x


def return_lock(x):
    if x == 1:
        return threading.Lock()
    return x


def length(x):
    return len(x)


class Doubler(Skprocess):
    def __init__(self, value):
        self.value = value
        self.process_config.runs = 1
        self.out = None

    def __run__(self):
        self.out = self.value * 2

    def __result__(self):
        return self.out


class Summer(Skprocess):
    """Star target: ``Summer(a, b)``; runs three times, adds a+b each run."""

    def __init__(self, a, b):
        self.a = a
        self.b = b
        self.total = 0
        self.process_config.runs = 3

    def __run__(self):
        self.total += self.a + self.b

    def __result__(self):
        return self.total


class Flaky(Skprocess):
    """Fails its first two runs; three lives let it finish. State is kept between lives."""

    def __init__(self, value):
        self.value = value
        self.attempts = 0
        self.process_config.runs = 1
        self.process_config.lives = 3

    def __run__(self):
        self.attempts += 1
        if self.attempts < 3:
            raise ValueError(f"attempt {self.attempts}")

    def __result__(self):
        return (self.value, self.attempts)


class FlakyOneLife(Flaky):
    def __init__(self, value):
        super().__init__(value)
        self.process_config.lives = 1


class SlowRun(Skprocess):
    """``__run__`` overruns its timeout; ``__error__`` reports it."""

    def __init__(self, value):
        self.value = value
        self.process_config.runs = 1
        self.process_config.timeouts.run = 0.2

    def __run__(self):
        if self.value == 1:
            spin(5.0)  # pure-Python loop
        elif self.value == 2:
            time.sleep(5.0)  # blocking call

    def __result__(self):
        return self.value

    def __error__(self):
        err = self.error
        return ("timeout", type(err).__name__, getattr(err, "section", None), self.value)


class SlowRunNoHandler(Skprocess):
    def __init__(self, value):
        self.value = value
        self.process_config.runs = 1
        self.process_config.timeouts.run = 0.2

    def __run__(self):
        time.sleep(5.0)

    def __result__(self):
        return self.value


class Failing(Skprocess):
    def __init__(self, value):
        self.value = value
        self.process_config.runs = 1

    def __run__(self):
        if self.value == 2:
            raise KeyError("boom")

    def __result__(self):
        return self.value


class Handled(Failing):
    def __error__(self):
        return f"handled {type(self.error).__name__}"


def megabyte(x):
    return b"x" * 1_000_000


class KwOnlyError(Exception):
    """An exception whose __init__ does not accept its own args (pickle cannot rebuild it)."""

    def __init__(self, *, code):
        super().__init__(f"failed with code {code}")
        self.code = code


def kw_only_fail(x):
    if x == 1:
        raise KwOnlyError(code=x)
    return x


def fail_on_bad(x):
    if x == "bad-item" or (isinstance(x, list) and len(x) > 100):
        raise ValueError("this item is bad")
    return x


def hang_and_report(x, path):
    """Star target: the item ``x == 3`` writes its worker's pid to ``path`` and blocks."""
    if x == 3:
        with open(path, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
    return x


def exit_on_value(x, bad=50_000):
    if x == bad:
        os._exit(9)
    return x


def digest(b) -> str:
    import hashlib

    return hashlib.sha256(bytes(b)).hexdigest()


_KEPT: list = []


def keep_array(a) -> str:
    """Keep the (zero-copy, memfd-backed) array alive in the worker; return its digest."""
    _KEPT.append(a)
    return digest(a.tobytes())


def kept_digests(_=None) -> list[str]:
    return [digest(a.tobytes()) for a in _KEPT]
