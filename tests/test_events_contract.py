"""The public observer API (``suitkaise_nb.events``) as a contract: subscribe / unsubscribe,
typed event fields, and an observer that raises is disabled and logged (issue 17)."""

from __future__ import annotations

import dataclasses
import logging
import threading

import pytest

from suitkaise_nb import events
from suitkaise_nb._engine._model import ProcessModel
from suitkaise_nb._pool._model import CallModel, PoolModel
from suitkaise_nb._share._share import ShareModel
from suitkaise_nb.processing import Pool, Share, Skprocess
from suitkaise_nb.timing import Sktimer

from .pool import fns

pytestmark = pytest.mark.timeout(60)

#: field name -> the runtime type every event carrying it must give
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "process": (ProcessModel,),
    "handle": (Skprocess, Pool),
    "pool": (PoolModel,),
    "call": (CallModel,),
    "share": (ShareModel,),
    "timer": (Sktimer,),
    "state": (str,),
    "previous": (str,),
    "run": (int,),
    "lives_left": (int,),
    "direction": (str,),
    "stream": (str,),
    "text": (str,),
    "time": (float,),
    "done": (int,),
    "pid": (int,),
    "attributes": (tuple,),
    "ops": (int,),
    "name": (str,),
    "samples": (dict,),
    "durations": (list,),
}


class Two(Skprocess):
    def __init__(self) -> None:
        self.process_config.runs = 2

    def __run__(self) -> None:
        print("hello from the child")
        self.tell("ping")

    def __result__(self) -> str:
        return "done"


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []
        self.lock = threading.Lock()

    def _record(self, hook: str, event: object) -> None:
        with self.lock:
            self.seen.append((hook, event))


def _make_recorder() -> Recorder:
    from suitkaise_nb._events import HOOKS

    rec = Recorder()
    for hook in HOOKS:
        setattr(rec, hook, lambda event, _h=hook: rec._record(_h, event))
    return rec


def test_every_event_is_a_frozen_dataclass_with_typed_fields():
    rec = _make_recorder()
    with events.subscribe(rec):
        p = Two()
        p.start()
        assert p.listen(timeout=30) == "ping"
        assert p.result() == "done"
        with Pool(2) as pool:
            assert pool.map(fns.square, range(10)) == [x * x for x in range(10)]
        share = Share()
        share.n = 1
        share.n += 1
        share.stop()
    assert rec not in events.observers()
    hooks = {h for h, _ in rec.seen}
    for wanted in (
        "process_started",
        "process_state",
        "process_ended",
        "pool_started",
        "pool_ended",
        "share_started",
        "share_stopped",
    ):
        assert wanted in hooks, (wanted, sorted(hooks))
    for hook, event in rec.seen:
        assert dataclasses.is_dataclass(event), hook
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.__setattr__(dataclasses.fields(event)[0].name, None)
        for f in dataclasses.fields(event):
            value = getattr(event, f.name)
            kinds = FIELD_TYPES.get(f.name)
            if kinds is None or value is None:
                continue
            assert isinstance(value, kinds), (hook, f.name, type(value))
        assert type(event).__module__ == "suitkaise_nb.events"  # the public path


def test_subscribe_and_unsubscribe():
    class Quiet:
        def process_state(self, event):
            pass

    obs = Quiet()
    sub = events.subscribe(obs)
    assert obs in events.observers()
    assert events.subscribe(obs).observer is obs and events.observers().count(obs) == 1
    sub.close()
    assert obs not in events.observers()
    events.unsubscribe(obs)  # no error when it is not subscribed
    with pytest.raises(TypeError, match="defines none of the observer hooks"):
        events.subscribe(object())


def test_an_observer_that_raises_is_disabled_and_logged(caplog):
    class Broken:
        calls = 0

        def process_state(self, event):
            Broken.calls += 1
            raise RuntimeError("a broken view")

    good = _make_recorder()
    bad = Broken()
    events.subscribe(bad)
    events.subscribe(good)
    try:
        with caplog.at_level(logging.ERROR, logger="suitkaise_nb"):
            p = Two()
            assert p.run() == "done"  # the work is not disturbed
        assert Broken.calls == 1  # disabled after its first failure
        assert bad not in events.observers()
        assert any("a broken view" in r.getMessage() or r.exc_info for r in caplog.records)
        assert any("disabled" in r.getMessage() for r in caplog.records)
        assert any(h == "process_ended" for h, _ in good.seen)  # the others still hear
    finally:
        events.unsubscribe(bad)
        events.unsubscribe(good)
