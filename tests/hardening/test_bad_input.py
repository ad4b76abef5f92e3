"""Bad input, property-based (hypothesis): random ``process_config`` values, random objects as
Pool items and as ``tell()`` messages (unshippable ones included), random tuple shapes for
``Pool.star()``. Each either works (values round-trip equal) or raises the documented,
clear exception; nothing hangs (every test has a timeout) and nothing leaks (open fds are
counted, and the autouse check of ``tests/conftest.py`` looks for leftover children).

The documented rules (``suitkaise_nb/_engine/_config.py``, ``docs/reliability.md``):

* ``runs``: an int >= 0 or None, else ``ValueError`` naming ``process_config.runs``;
* ``lives``: an int >= 1, else ``ValueError`` naming ``process_config.lives``;
* ``join_in`` and ``timeouts.<section>``: None or a number of seconds > 0; a non-number
  (bools included) is a ``TypeError``, zero, negative or NaN a ``ValueError``, naming the field;
* an object that cannot be sent raises ``ShippingError`` (a ``TypeError``) before anything is
  sent, naming the item (``pool item 3``) or ``the message`` and the type;
* ``star()`` with an item of the wrong arity: the ``TypeError`` Python raises for the call,
  rebuilt in the caller (also a ``RuntimeError``), naming the item.

One pool and one process serve all the examples of a test (function-scoped fixtures reused
across examples on purpose: starting a pool per example would dominate the run time).
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suitkaise_nb._engine._config import SECTIONS
from suitkaise_nb.processing import Pool, RemoteError, RunError, ShippingError
from tests.engine.procs import Echo
from tests.pool import fns

from .procs import ConfigProbe, DumpFails, LoadFails

pytestmark = pytest.mark.timeout(90)

REUSE = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _settled_fds(quiet: float = 0.2, timeout: float = 3.0) -> int:
    """The open fd count once it has not changed for ``quiet`` s (a warm spare the zygote
    sends after a pool or process started brings its channel and pidfd a moment later)."""
    deadline = time.monotonic() + timeout
    n, since = _fds(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = _fds()
        if now != n:
            n, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return n


# -- process_config ------------------------------------------------------------------------

ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.just([1]),
    st.just(object()),
    st.builds(complex, st.integers(-3, 3), st.integers(-3, 3)),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
)
FIELDS = ["runs", "lives", "join_in", *[f"timeouts.{s}" for s in SECTIONS]]


def _documented(field: str, value: Any) -> type[Exception] | None:
    """The error the documentation promises for ``field = value`` (None: accepted)."""
    if field == "runs":
        ok = value is None or (type(value) is int and value >= 0)
        return None if ok else ValueError
    if field == "lives":
        return None if type(value) is int and value >= 1 else ValueError
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return TypeError
    if math.isnan(value) or value <= 0:
        return ValueError
    return None


def _assign(cfg: Any, field: str, value: Any) -> None:
    if field.startswith("timeouts."):
        setattr(cfg.timeouts, field.split(".", 1)[1], value)
    else:
        setattr(cfg, field, value)


def _read(cfg: Any, field: str) -> Any:
    if field.startswith("timeouts."):
        return getattr(cfg.timeouts, field.split(".", 1)[1])
    return getattr(cfg, field)


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(FIELDS), value=ODD_VALUES)
def test_process_config_accepts_or_names_the_field(field: str, value: Any):
    p = ConfigProbe({})
    cfg = p.process_config
    before = _read(cfg, field)
    expected = _documented(field, value)
    if expected is None:
        _assign(cfg, field, value)
        got = _read(cfg, field)
        if isinstance(value, float) and math.isinf(value) and not field.endswith(("runs", "lives")):
            assert got is None  # seconds: inf means no limit
        else:
            assert got == value or (value is not None and got == float(value))
    else:
        with pytest.raises(expected) as info:
            _assign(cfg, field, value)
        assert type(info.value) is expected
        assert f"process_config.{field}" in str(info.value)
        assert _read(cfg, field) == before  # a refused value changes nothing


def test_unknown_config_fields_are_named():
    p = ConfigProbe({})
    with pytest.raises(AttributeError, match="'retries'"):
        p.process_config.retries = 3
    with pytest.raises(AttributeError, match="'loop'"):
        p.process_config.timeouts.loop = 3


ACCEPTED = st.fixed_dictionaries(
    {
        "runs": st.one_of(st.none(), st.integers(0, 6)),
        "lives": st.integers(1, 4),
        "join_in": st.one_of(st.none(), st.floats(0.02, 0.2)),
        "timeouts.run": st.one_of(st.none(), st.integers(5, 10**6), st.floats(5.0, 1e9)),
        "timeouts.result": st.one_of(st.none(), st.floats(5.0, 1e9)),
    }
)


@settings(REUSE, max_examples=40)
@given(settings_=ACCEPTED)
def test_accepted_configs_run_and_reach_the_child(settings_: dict[str, Any]):
    p = ConfigProbe(settings_)
    p.start()
    try:
        if settings_["runs"] is None and settings_["join_in"] is None:
            p.stop()  # runs=None: until stopped
        seen, runs = p.result.timeout(30)()
        assert seen == repr(p.process_config)  # the child ran with the parent's config
        if settings_["runs"] is not None:
            assert runs <= settings_["runs"]
            if settings_["join_in"] is None:
                assert runs == settings_["runs"]
    finally:
        if p.is_alive:
            p.kill()


# -- objects that travel -------------------------------------------------------------------

DATA = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.complex_numbers(allow_nan=False),
        st.text(max_size=20),
        st.binary(max_size=64),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=4),
        st.frozensets(st.integers() | st.text(max_size=5), max_size=4),
    ),
    max_leaves=12,
)

# (threading primitives ship as fresh objects, as in suitkaise: see tests/compat)
UNSHIPPABLE = ["open file", "socket", "generator", "DumpFails"]
TYPE_WORD = {
    "open file": "TextIOWrapper",
    "socket": "socket",
    "generator": "generator",
    "DumpFails": "DumpFails",
}


class Unshippables:
    """Builds the unshippable objects of one example and closes what needs closing."""

    def __init__(self) -> None:
        self.to_close: list[Any] = []

    def make(self, kind: str) -> Any:
        if kind == "open file":
            f = tempfile.TemporaryFile("w+")
            self.to_close.append(f)
            return f
        if kind == "socket":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.to_close.append(s)
            return s
        if kind == "generator":
            return (i for i in range(3))
        return DumpFails()

    def close(self) -> None:
        for obj in self.to_close:
            obj.close()


@pytest.fixture
def pool() -> Iterator[Pool]:
    p = Pool(2)
    yield p
    p.terminate()


@pytest.fixture
def fd_count() -> Iterator[None]:
    """The test must leave this process with no more open fds than it found (request it
    after the pool/process fixture, so that their fds are counted in both figures)."""
    before = _settled_fds()
    yield
    after = _settled_fds()
    assert after <= before, f"open fds grew from {before} to {after}"


BAD = st.sampled_from(UNSHIPPABLE).map(lambda k: ("bad", k))
ITEMS = st.lists(st.one_of(DATA.map(lambda d: ("data", d)), BAD), max_size=12)


@settings(REUSE, max_examples=100)
@given(spec=ITEMS)
def test_pool_items_round_trip_or_name_the_unshippable_one(pool: Pool, fd_count: None, spec):
    objects = Unshippables()
    try:
        items = [objects.make(v) if tag == "bad" else v for tag, v in spec]
        bad = [i for i, (tag, _) in enumerate(spec) if tag == "bad"]
        if not bad:
            assert pool.map(fns.identity, items) == items
        else:
            with pytest.raises(ShippingError) as info:
                pool.map(fns.identity, items)
            text = str(info.value)
            first = bad[0]
            assert f"pool item {first} " in text, text
            assert TYPE_WORD[spec[first][1]] in text, text
            assert "cannot be sent" in text
        assert pool.map(fns.square, [3, 4]) == [9, 16]  # usable after every example
    finally:
        objects.close()


@pytest.fixture
def echo() -> Iterator[Echo]:
    p = Echo()
    p.start()
    yield p
    if p.is_alive:
        p.tell("stop")
        if not p.wait(10):
            p.kill()


# None is left out at the top level: listen() returns None when nothing came (Echo ignores it)
MESSAGES = st.one_of(
    DATA.filter(lambda d: d is not None and d != "stop").map(lambda d: ("data", d)),
    BAD,
)


@settings(REUSE, max_examples=100)
@given(spec=MESSAGES)
def test_tell_round_trips_or_refuses_the_message(echo: Echo, fd_count: None, spec):
    objects = Unshippables()
    try:
        tag, value = spec
        if tag == "data":
            echo.tell(value)
            assert echo.listen(10) == ("echo", value)
        else:
            with pytest.raises(ShippingError) as info:
                echo.tell(objects.make(value))
            text = str(info.value)
            assert "cannot ship the message" in text and TYPE_WORD[value] in text, text
            echo.tell("still there?")  # the channel carries on
            assert echo.listen(10) == ("echo", "still there?")
    finally:
        objects.close()
    assert echo.is_alive


def test_a_message_the_child_cannot_rebuild_fails_the_child_clearly():
    """The object pickles, but raises when rebuilt: the child's listen() raises it (a RunError
    with the original error, like any error in __run__)."""
    p = Echo()
    p.start()
    try:
        p.tell(LoadFails())
        with pytest.raises(RunError, match="refuses to be rebuilt") as info:
            p.result.timeout(30)()
        assert isinstance(info.value.original_error, ValueError)
    finally:
        if p.is_alive:
            p.kill()


# -- star() shapes -------------------------------------------------------------------------

SHAPES = st.lists(st.lists(st.integers(-100, 100), max_size=4).map(tuple), min_size=1, max_size=15)


@settings(REUSE, max_examples=80)
@given(items=SHAPES, method=st.sampled_from(["map", "unordered_map", "imap"]))
def test_star_with_wrong_arity_is_a_clear_type_error(pool: Pool, items, method: str):
    call: Callable[..., Any] = getattr(pool.star(), method)
    wrong = [i for i, t in enumerate(items) if len(t) != 2]
    if not wrong:
        got = list(call(fns.add, items))
        want = [a + b for a, b in items]
        assert (got if method != "unordered_map" else sorted(got)) == (
            want if method != "unordered_map" else sorted(want)
        )
    else:
        with pytest.raises(TypeError) as info:
            list(call(fns.add, items))
        err = info.value
        assert isinstance(err, RemoteError) and isinstance(err, RuntimeError)
        text = str(err)
        assert "positional argument" in text, text
        named = [i for i in wrong if f"pool item {i}: {items[i]!r})" in text]
        assert named, f"{text!r} names none of the items of the wrong shape {wrong}"
    assert pool.map(fns.square, [5]) == [25]
