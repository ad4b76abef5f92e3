"""Skprocess lifecycle, control, errors, timeouts, tell/listen and timers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

import pytest

from suitkaise_nb.processing import (
    OnFinishError,
    PostRunError,
    PreRunError,
    ProcessCrashedError,
    ProcessError,
    ProcessState,
    ProcessTimeoutError,
    ResultError,
    ResultTimeoutError,
    RunError,
    ShippingError,
    Skprocess,
)
from suitkaise_nb.timing import Sktimer

from . import procs

pytestmark = pytest.mark.timeout(60)


def test_init_needs_no_super_and_config_defaults():
    class P(Skprocess):
        def __init__(self):
            self.seen = (
                self.process_config.runs,
                self.process_config.join_in,
                self.process_config.lives,
            )

        def __run__(self):
            pass

    p = P()
    assert p.seen == (None, None, 1)
    assert p.process_config.timeouts.as_dict() == dict.fromkeys(
        ("prerun", "run", "postrun", "onfinish", "result", "error")
    )
    assert p.process_state is ProcessState.CREATED


@pytest.mark.parametrize(
    ("field", "value", "exc"),
    [
        ("runs", -1, ValueError),
        ("runs", 1.5, ValueError),
        ("runs", True, ValueError),
        ("lives", 0, ValueError),
        ("lives", "3", ValueError),
        ("join_in", -2, ValueError),
        ("join_in", "soon", TypeError),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value, exc):
    p = procs.Count()
    with pytest.raises(exc, match=f"process_config.{field}"):
        setattr(p.process_config, field, value)


def test_timeouts_validated_and_unknown_fields_rejected():
    p = procs.Count()
    with pytest.raises(ValueError, match="timeouts.run"):
        p.process_config.timeouts.run = -1
    with pytest.raises(AttributeError, match="runz"):
        p.process_config.runz = 3
    with pytest.raises(AttributeError, match="sections?"):
        p.process_config.timeouts.middle = 1


def test_run_returns_result_and_timers():
    p = procs.Count(7)
    assert p.run() == 7
    assert p.process_state is ProcessState.FINISHED
    assert p.current_run == 7
    assert isinstance(p.__run__.timer, Sktimer)
    assert p.__run__.timer is p.timers.run
    assert p.timers.run.num_times == 7
    assert p.process_timer is p.timers.full_run
    assert p.process_timer.num_times == 7
    assert p.timers.result.num_times == 1
    assert p.timers.prerun.num_times == 0  # not defined: not timed
    assert not p.is_alive


def test_start_twice_and_calls_before_start_are_clear_errors():
    p = procs.Count(1)
    with pytest.raises(ProcessError, match="start"):
        p.result()
    assert p.wait() is True  # nothing runs (as suitkaise)
    with pytest.raises(ProcessError, match="never started"):
        p.stop()
    p.start()
    with pytest.raises(ProcessError, match="already started"):
        p.start()
    assert p.wait(10)


def test_run_section_is_optional_and_base_class_is_abstract():
    # the seed's Share examples do all their work in __postrun__
    assert procs.OnlyPostrun().run() == 4
    with pytest.raises(TypeError, match="subclass"):
        Skprocess()


@pytest.mark.parametrize(
    ("section", "exc_type"),
    [
        ("prerun", PreRunError),
        ("run", RunError),
        ("postrun", PostRunError),
        ("onfinish", OnFinishError),
        ("result", ResultError),
    ],
)
def test_section_errors_are_wrapped_with_original_and_traceback(section, exc_type):
    p = procs.FailIn(section)
    p.start()
    with pytest.raises(exc_type) as info:
        p.result()
    err = info.value
    assert isinstance(err, ProcessError)
    assert isinstance(err.original_error, ValueError)
    assert str(err.original_error) == f"boom in {section}"
    assert "procs.py" in err.remote_traceback and "_maybe" in err.remote_traceback
    assert err.current_run == (1 if section in ("prerun", "run", "postrun") else 3)
    assert p.process_state is ProcessState.FAILED
    assert p.error is err or type(p.error) is type(err)
    assert "ValueError" in "\n".join(err._render_traceback_())


def test_error_handler_value_is_the_result():
    p = procs.FailWithHandler("run", lives=3)
    out = p.run()
    # run 1 failed on every one of its 3 lives; state (attempts) was kept across lives
    assert out == {"handled": "RunError", "attempts": 4, "run": 1}


def test_lives_resume_at_the_current_run_with_state_kept():
    p = procs.FlakyOnce()
    assert p.run() == [0, 1, 2]


@pytest.mark.parametrize("mode", ["cpu", "blocking"])
def test_section_timeout_interrupts_cpu_loops_and_blocking_calls(mode):
    p = procs.Spin(mode, timeout=0.3)
    t0 = time.monotonic()
    assert p.run() == ("ProcessTimeoutError", "__run__", 0.3, 1)
    assert time.monotonic() - t0 < 5


def test_timeout_error_raised_without_handler():
    class T(Skprocess):
        def __init__(self):
            self.process_config.runs = 1
            self.process_config.timeouts.run = 0.2

        def __run__(self):
            time.sleep(10)

    with pytest.raises(ProcessTimeoutError) as info:
        T().run()
    assert info.value.section == "__run__" and info.value.timeout == 0.2
    assert isinstance(info.value, TimeoutError)


def test_stop_from_parent_runs_onfinish_and_result():
    p = procs.Forever()
    p.start()
    deadline = time.monotonic() + 10
    while p.current_run < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    p.stop()
    assert p.wait(10)
    status, finished, runs = p.result()
    assert status == "stopped" and finished and runs >= 3
    assert p.process_state is ProcessState.FINISHED


def test_stop_from_inside():
    assert procs.StopsItself().run() == 3


def test_join_in_limits_running_time():
    p = procs.JoinIn()
    t0 = time.monotonic()
    runs = p.run()
    assert 0.25 < time.monotonic() - t0 < 3
    assert 5 < runs < 40


def test_kill_is_immediate_and_has_no_result():
    p = procs.Forever(sleep=0.05)
    p.start()
    time.sleep(0.1)
    p.kill()
    assert p.process_state is ProcessState.KILLED
    assert not p.is_alive
    with pytest.raises(ProcessError, match="killed"):
        p.result()


def test_wait_timeout_returns_false_promptly_then_true():
    p = procs.Slow(0.6)
    p.start()
    t0 = time.monotonic()
    assert p.wait(0.2) is False
    assert 0.15 < time.monotonic() - t0 < 0.45
    assert p.wait() is True
    assert p.result() == "slept"


def test_modifiers_on_wait_result_run_listen():
    p = procs.Slow(0.5)
    p.start()
    with pytest.raises(ResultTimeoutError):
        p.wait.timeout(0.1)()
    with pytest.raises(ResultTimeoutError):
        p.result.timeout(0.1)()
    fut = p.result.background()()
    assert isinstance(fut, concurrent.futures.Future)
    assert fut.result(10) == "slept"
    assert asyncio.run(p.wait.asynced()()) is True
    q = procs.Slow(0.05)
    assert q.run.timeout(10).background()().result(10) == "slept"
    e = procs.Echo()
    e.start()
    with pytest.raises(ResultTimeoutError):
        e.listen.timeout(0.1)()
    e.tell("stop")
    assert e.wait(10)


def test_tell_listen_both_ways_and_timeout_returns_none():
    e = procs.Echo()
    e.start()
    for i in range(50):
        e.tell(i)
        assert e.listen(timeout=5) == ("echo", i)
    t0 = time.monotonic()
    assert e.listen(timeout=0.2) is None
    assert time.monotonic() - t0 < 0.5
    e.tell("stop")
    assert e.wait(10)
    assert e.result() == "echoed"


def test_messages_can_be_drained_after_the_end():
    p = procs.Chatty()
    p.start()
    assert p.wait(10)
    got = []
    while (m := p.listen(timeout=0.5)) is not None:
        got.append(m)
    assert got == [0, 1, 2, 3, 4]


def test_large_message_arrives_intact():
    e = procs.Echo()
    e.start()
    blob = bytes(range(256)) * (4 * 1024 * 16)  # 16 MiB
    e.tell(blob)
    kind, back = e.listen(timeout=30)
    assert kind == "echo" and back == blob
    e.tell("stop")
    assert e.wait(10)


@pytest.mark.parametrize(
    ("how", "text"),
    [
        ("exit", "exit code 3"),
        ("segfault", "SIGSEGV"),
        ("sigkill-self", "SIGKILL"),
    ],
)
def test_crashes_become_errors_not_hangs(how, text):
    p = procs.Crash(how)
    p.start()
    assert p.wait(20)
    with pytest.raises(ProcessCrashedError, match=text) as info:
        p.result()
    assert info.value.pid == p.pid


def test_sigkill_from_outside_is_reported():
    import os
    import signal

    p = procs.Crash("wait")
    p.start()
    time.sleep(0.1)
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait(10)
    with pytest.raises(ProcessCrashedError, match="SIGKILL"):
        p.result()


@pytest.mark.parametrize(
    ("cls", "path", "tname"),
    [
        (procs.HoldsSocket, "HoldsSocket.conn['sock']", "socket"),
    ],
)
def test_unshippable_attribute_is_named(cls, path, tname):
    p = cls()
    with pytest.raises(ShippingError) as info:
        p.start()
    assert info.value.path == path
    assert tname in info.value.type_name
    assert "__prerun__" in str(info.value)
    assert p.process_state is ProcessState.CREATED
    sock = getattr(p, "conn", {}).get("sock")
    if sock is not None:
        sock.close()
