"""Skprocess classes and functions used by the hardening tests (importable: they ship by
reference). Simple ones are reused from ``tests/engine/procs.py`` and ``tests/pool/fns.py``;
these are the ones the hardening tests need in addition."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from suitkaise_nb.processing import Skprocess


def digest(obj: Any) -> tuple[str, str, tuple[int, ...], str]:
    """(type name, dtype, shape, sha256) of a bytes-like object or a numpy array."""
    import numpy as np

    if isinstance(obj, np.ndarray):
        return ("ndarray", str(obj.dtype), obj.shape, hashlib.sha256(obj.data).hexdigest())
    return (type(obj).__name__, "", (len(obj),), hashlib.sha256(obj).hexdigest())


class Reflector(Skprocess):
    """Answers every message with ``("digest", digest(msg))`` then the message itself; ends on
    the message ``"stop"``."""

    def __init__(self) -> None:
        self.process_config.runs = None
        self.seen = 0

    def __run__(self) -> None:
        msg = self.listen(timeout=0.2)
        if msg is None:
            return
        if isinstance(msg, str) and msg == "stop":
            self.stop()
            return
        self.seen += 1
        self.tell(("digest", digest(msg)))
        self.tell(msg)
        del msg

    def __result__(self) -> int:
        return self.seen


class Producer(Skprocess):
    """Builds ``n`` bytes (or a float64 array of ``n`` bytes) in the child and tells it, with
    its digest, to the parent."""

    def __init__(self, n: int, kind: str = "bytes") -> None:
        self.n = n
        self.kind = kind
        self.process_config.runs = 1

    def __run__(self) -> None:
        import numpy as np

        rng = np.random.default_rng(7)
        if self.kind == "bytes":
            obj: Any = rng.bytes(self.n)
        else:
            obj = rng.standard_normal(self.n // 8)
        self.tell(("digest", digest(obj)))
        self.tell(obj)

    def __result__(self) -> str:
        return "sent"


class Sleeper:
    """A shared object whose method sleeps on the Share server."""

    def __init__(self) -> None:
        self.calls = 0

    def nap(self, seconds: float) -> int:
        time.sleep(seconds)
        self.calls += 1
        return self.calls


def big_item_size(item: Any) -> tuple[int, int]:
    """A pool target over large items: (len, first byte) of a bytes or array item."""
    import numpy as np

    if isinstance(item, np.ndarray):
        return (item.nbytes, int(item.view(np.uint8)[0]))
    return (len(item), item[0])


def _refuse_to_load(why: str) -> Any:
    raise ValueError(f"this object refuses to be rebuilt: {why}")


class LoadFails:
    """Pickles fine, but raises when it is rebuilt on the other side."""

    def __reduce__(self) -> Any:
        return (_refuse_to_load, ("LoadFails",))


class DumpFails:
    """Raises from ``__reduce__`` (a bug in the user's pickling code)."""

    def __reduce__(self) -> Any:
        raise RuntimeError("DumpFails cannot be pickled")


class SendsUnloadable(Skprocess):
    """Tells the parent a message that cannot be rebuilt there, then ``"after"``."""

    def __init__(self) -> None:
        self.process_config.runs = 1

    def __run__(self) -> None:
        self.tell(LoadFails())
        self.tell("after")

    def __result__(self) -> str:
        return "done"


class ConfigProbe(Skprocess):
    """Applies ``settings`` ({"runs": 3, "timeouts.run": 2.0, ...}) to its process_config in
    ``__init__``; returns the config the child saw and the runs it completed."""

    def __init__(self, settings: dict[str, Any]) -> None:
        for name, value in settings.items():
            if name.startswith("timeouts."):
                setattr(self.process_config.timeouts, name.split(".", 1)[1], value)
            else:
                setattr(self.process_config, name, value)

    def __run__(self) -> None:
        time.sleep(0.001)

    def __result__(self) -> tuple[str, int]:
        return (repr(self.process_config), self._current_run)
