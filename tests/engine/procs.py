"""Skprocess classes used by the engine tests (importable, so they ship by reference)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

from suitkaise_nb.processing import Skprocess


class Count(Skprocess):
    def __init__(self, runs=5):
        self.process_config.runs = runs
        self.n = 0

    def __run__(self):
        self.n += 1

    def __result__(self):
        return self.n


class Forever(Skprocess):
    def __init__(self, sleep=0.005):
        self.sleep = sleep
        self.finished = False

    def __run__(self):
        time.sleep(self.sleep)

    def __onfinish__(self):
        print("onfinish ran", flush=True)
        self.finished = True

    def __result__(self):
        return ("stopped", self.finished, self._current_run)


class FailIn(Skprocess):
    """Raises ValueError in the named section (on run ``at``)."""

    def __init__(self, section, at=1, lives=1, handler=False):
        self.section = section
        self.at = at
        self.process_config.runs = 3
        self.process_config.lives = lives
        self.attempts = 0

    def _maybe(self, name):
        if name == self.section and (
            name not in ("prerun", "run", "postrun") or self._current_run == self.at
        ):
            raise ValueError(f"boom in {name}")

    def __prerun__(self):
        self.attempts += 1
        self._maybe("prerun")

    def __run__(self):
        self._maybe("run")

    def __postrun__(self):
        self._maybe("postrun")

    def __onfinish__(self):
        self._maybe("onfinish")

    def __result__(self):
        self._maybe("result")
        return "ok"


class FailWithHandler(FailIn):
    def __error__(self):
        return {
            "handled": type(self.error).__name__,
            "attempts": self.attempts,
            "run": self._current_run,
        }


class FlakyOnce(Skprocess):
    """Fails the first attempt of run 1 only; lives=2 lets it finish with state kept."""

    def __init__(self):
        self.process_config.runs = 3
        self.process_config.lives = 2
        self.failed = False
        self.seen = []

    def __run__(self):
        if self._current_run == 1 and not self.failed:
            self.failed = True
            raise RuntimeError("transient")
        self.seen.append(self._current_run)

    def __result__(self):
        return self.seen


class Spin(Skprocess):
    """A pure-Python CPU loop that never yields, or a blocking sleep."""

    def __init__(self, mode="cpu", timeout=0.3):
        self.mode = mode
        self.process_config.runs = 2
        self.process_config.timeouts.run = timeout

    def __run__(self):
        if self._current_run == 1:
            if self.mode == "cpu":
                while True:
                    pass
            else:
                time.sleep(30)

    def __error__(self):
        e = self.error
        return (type(e).__name__, e.section, e.timeout, e.current_run)


class Crash(Skprocess):
    def __init__(self, how):
        self.how = how
        self.process_config.runs = 1

    def __run__(self):
        if self.how == "exit":
            os._exit(3)
        if self.how == "segfault":
            import ctypes

            ctypes.string_at(0)
        if self.how == "sigkill-self":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.how == "wait":
            time.sleep(30)


class HoldsLock(Skprocess):
    def __init__(self):
        self.lock = threading.Lock()

    def __run__(self):
        pass


class HoldsSocket(Skprocess):
    def __init__(self):
        self.conn = {"sock": socket.socket()}

    def __run__(self):
        pass


class Echo(Skprocess):
    def __init__(self):
        self.process_config.runs = None

    def __run__(self):
        msg = self.listen(timeout=0.5)
        if msg == "stop":
            self.stop()
        elif msg is not None:
            self.tell(("echo", msg))

    def __result__(self):
        return "echoed"


class Chatty(Skprocess):
    """Tells 5 messages then ends; the parent drains them after wait()."""

    def __init__(self):
        self.process_config.runs = 5

    def __run__(self):
        self.tell(self._current_run)

    def __result__(self):
        return "done"


class StopsItself(Skprocess):
    def __init__(self):
        self.process_config.runs = None

    def __prerun__(self):
        if self._current_run == 3:
            self.stop()

    def __run__(self):
        pass

    def __result__(self):
        return self._current_run


class Slow(Skprocess):
    def __init__(self, seconds):
        self.seconds = seconds
        self.process_config.runs = 1

    def __run__(self):
        time.sleep(self.seconds)

    def __result__(self):
        return "slept"


class JoinIn(Skprocess):
    def __init__(self):
        self.process_config.join_in = 0.3

    def __run__(self):
        time.sleep(0.01)

    def __result__(self):
        return self._current_run


class OnlyPostrun(Skprocess):
    def __init__(self):
        self.process_config.runs = 4
        self.n = 0

    def __postrun__(self):
        self.n += 1

    def __result__(self):
        return self.n
