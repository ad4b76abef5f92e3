"""Tests for suitkaise_nb.timing: statistics, sessions, windows, threads, helpers, errors."""

import asyncio
import copy
import logging
import math
import pickle
import random
import statistics
import subprocess
import sys
import threading
import time as std_time

import numpy as np
import pytest

from suitkaise_nb import timing
from suitkaise_nb._timing import _api
from suitkaise_nb.timing import (
    Sktimer,
    TimerStats,
    TimeThis,
    clear_global_timers,
    elapsed,
    sleep,
    timethis,
)

PERCENTS = [0, 0.5, 1, 5, 10, 25, 33.3, 50, 66.7, 75, 90, 95, 99, 99.9, 100]


@pytest.fixture(autouse=True)
def _clean_registry():
    clear_global_timers()
    callbacks = list(_api._on_global_timer_created)
    yield
    clear_global_timers()
    _api._on_global_timer_created[:] = callbacks


def random_times(n, seed=1):
    rng = random.Random(seed)
    return [rng.lognormvariate(-6, 1.0) for _ in range(n)]


def filled(data, max_times=None):
    t = Sktimer(max_times=max_times)
    for x in data:
        t.add_time(x)
    return t


def assert_stats_match(t, data):
    """Every statistic of `t` equals the reference computed over `data`."""
    assert t.num_times == len(data)
    assert t.times == list(data)
    assert t.most_recent == data[-1] == t.result
    assert t.total_time == pytest.approx(math.fsum(data), rel=1e-12, abs=0)
    assert t.mean == pytest.approx(statistics.fmean(data), rel=1e-12, abs=0)
    assert t.median == statistics.median(data)
    assert t.min == min(data) == t.fastest_time
    assert t.max == max(data) == t.slowest_time
    assert t.fastest_index == data.index(min(data))
    assert t.slowest_index == data.index(max(data))
    if len(data) > 1:
        assert t.variance == pytest.approx(statistics.variance(data), rel=1e-9, abs=0)
        assert t.stdev == pytest.approx(statistics.stdev(data), rel=1e-9, abs=0)
        assert t.variance == pytest.approx(float(np.var(data, ddof=1)), rel=1e-9, abs=0)
    arr = np.asarray(data)
    for p in PERCENTS:
        assert t.percentile(p) == pytest.approx(float(np.percentile(arr, p)), rel=1e-15, abs=0)


# --------------------------------------------------------------------------- public surface


def test_facade_exports_and_module_paths():
    expected = [
        "Sktimer",
        "TimeThis",
        "TimerStats",
        "clear_global_timers",
        "elapsed",
        "sleep",
        "time",
        "timethis",
    ]
    assert timing.__all__ == expected == sorted(expected)
    for name in expected:
        obj = getattr(timing, name)
        assert obj.__module__ == "suitkaise_nb.timing", name
    assert repr(Sktimer()).startswith("Sktimer(")
    assert "suitkaise_nb.timing" in repr(sleep)


def test_core_import_is_light():
    code = (
        "import sys, suitkaise_nb.timing\n"
        "bad = [m for m in ('IPython', 'ipykernel', 'ipywidgets', 'matplotlib', 'numpy',"
        ") if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("n", [2, 3, 1000, 1001])
def test_statistics_match_statistics_and_numpy(n):
    data = random_times(n, seed=n)
    t = filled(data)
    assert_stats_match(t, data)


def test_percentile_is_numpy_linear_bit_for_bit():
    rng = random.Random(7)
    for n in (1, 2, 5, 17, 100, 1234):
        data = [rng.random() for _ in range(n)]
        t = filled(data)
        for p in [*PERCENTS, 12.345, 87.5, 2.5]:
            assert t.percentile(p) == float(np.percentile(data, p)), (n, p)


def test_get_stats_snapshot_matches_properties():
    data = random_times(501, seed=3)
    t = filled(data)
    s = t.get_stats()
    assert isinstance(s, TimerStats)
    assert s == t.get_statistics()
    assert s.num_times == 501
    assert s.most_recent == data[-1] == s.result
    assert s.total_time == t.total_time
    assert s.mean == t.mean and s.median == t.median
    assert s.min == t.min == s.fastest_time and s.max == t.max == s.slowest_time
    assert s.stdev == t.stdev and s.variance == t.variance
    assert s.fastest_index == t.fastest_index and s.slowest_index == t.slowest_index
    assert s.sorted_times == tuple(sorted(data))
    for p in PERCENTS:
        assert s.percentile(p) == t.percentile(p)
    with pytest.raises(AttributeError):
        s.mean = 1.0  # frozen
    # the snapshot does not move with the timer
    t.add_time(100.0)
    assert s.num_times == 501 and s.max != 100.0


def test_empty_timer():
    t = Sktimer()
    assert t.num_times == 0
    assert t.total_time == 0.0
    assert t.total_time_paused == 0.0
    for attr in (
        "most_recent",
        "result",
        "mean",
        "median",
        "min",
        "max",
        "fastest_time",
        "slowest_time",
        "fastest_index",
        "slowest_index",
        "stdev",
        "variance",
    ):
        assert getattr(t, attr) is None, attr
    assert t.percentile(50) is None
    assert t.times == []
    assert t.get_stats() is None  # as suitkaise: no snapshot of nothing
    assert t.most_recent_index is None
    assert repr(t) == "Sktimer(num_times=0)"


def test_one_sample_has_no_spread():
    t = Sktimer()
    t.add_time(0.125)
    assert t.stdev is None and t.variance is None  # a sample statistic needs two samples
    assert t.mean == t.median == t.min == t.max == t.total_time == 0.125
    assert t.percentile(0) == t.percentile(100) == 0.125
    assert t.fastest_index == t.slowest_index == 0


def test_ties_report_first_index():
    t = filled([0.2, 0.1, 0.3, 0.1, 0.3])
    assert t.fastest_index == 1
    assert t.slowest_index == 2


def test_numerically_stable_variance_with_large_offset():
    rng = random.Random(11)
    data = [1e6 + rng.random() * 1e-3 for _ in range(10_000)]
    t = filled(data)
    assert t.variance == pytest.approx(statistics.variance(data), rel=1e-6, abs=0)
    assert t.mean == pytest.approx(statistics.fmean(data), rel=1e-14, abs=0)


def test_outlier_first_sample_then_evicted_keeps_variance_accurate():
    rng = random.Random(3)
    t = Sktimer(max_times=100)
    t.add_time(1000.0)  # a warm-up outlier becomes the shift of the running sums
    for _ in range(100):  # the last of these evicts it
        t.add_time(1e-6 + rng.random() * 1e-9)
    data = t.times
    assert 1000.0 not in data
    assert t.variance == pytest.approx(statistics.variance(data), rel=1e-6, abs=0)
    assert t.mean == pytest.approx(statistics.fmean(data), rel=1e-12, abs=0)
    # unbounded, the outlier stays and dominates; still accurate
    u = filled([1000.0] + [1e-6 + rng.random() * 1e-9 for _ in range(10_000)])
    assert u.variance == pytest.approx(statistics.variance(u.times), rel=1e-9, abs=0)


def test_constant_samples_in_a_window_do_not_trigger_recomputation(monkeypatch):
    t = Sktimer(max_times=50)
    for x in [1000.0, *([0.1] * 60)]:
        t.add_time(x)
    calls = []
    original = Sktimer._recompute_sums
    monkeypatch.setattr(
        Sktimer, "_recompute_sums", lambda self: (calls.append(1), original(self))[1]
    )
    for _ in range(30):  # less than a turnover since the outlier left
        t.add_time(0.1)
    assert calls == []
    assert t.variance == 0.0 and t.mean == 0.1 and t.stdev == 0.0


def test_add_time_accepts_ints_and_numpy_numbers():
    t = Sktimer()
    t.add_time(1)
    t.add_time(np.float64(0.5))
    t.add_time(np.int64(2))
    assert t.times == [1.0, 0.5, 2.0]
    assert all(type(x) is float for x in t.times)


def test_get_time_and_times_copy():
    t = filled([0.1, 0.2, 0.3])
    assert t.get_time(0) == 0.1
    assert t.get_time(2) == 0.3
    assert t.get_time(-1) is None  # no negative indices (as suitkaise)
    copy_of_times = t.times
    copy_of_times.append(9.0)
    assert t.times == [0.1, 0.2, 0.3]


def test_reset():
    t = filled([0.1, 0.2])
    t.start()
    t.pause()
    std_time.sleep(0.01)
    t.resume()
    t.stop()
    assert t.total_time_paused > 0
    t.reset()
    assert t.num_times == 0 and t.total_time == 0.0 and t.total_time_paused == 0.0
    assert t.mean is None
    t.add_time(0.4)
    assert t.mean == 0.4 and t.percentile(50) == 0.4


def test_repr_is_helpful():
    t = filled([0.001, 0.002, 0.003], max_times=10)
    r = repr(t)
    assert r.startswith("Sktimer(num_times=3, mean=2.000ms")
    assert "min=1.000ms" in r and "max=3.000ms" in r and "max_times=10" in r


# --------------------------------------------------------------------------- rolling window


@pytest.mark.parametrize("window", [1, 2, 7, 100])
def test_rolling_window_equals_stats_over_last_n(window):
    data = random_times(1000, seed=window)
    t = filled(data, max_times=window)
    assert t.max_times == window
    last = data[-window:]
    if window == 1:
        assert t.times == last and t.stdev is None and t.median == last[0]
        assert t.fastest_index == 0 and t.percentile(95) == last[0]
    else:
        assert_stats_match(t, last)


def test_rolling_window_evicting_the_extremes():
    # increasing data: the min is evicted on every add; decreasing: the max is
    t = filled([float(i) for i in range(1, 51)], max_times=10)
    assert t.min == 41.0 and t.fastest_index == 0 and t.max == 50.0 and t.slowest_index == 9
    t = filled([float(i) for i in range(50, 0, -1)], max_times=10)
    assert t.max == 10.0 and t.slowest_index == 0 and t.min == 1.0 and t.fastest_index == 9


def test_rolling_window_mean_has_no_drift_after_many_turnovers():
    rng = random.Random(5)
    t = Sktimer(max_times=10)
    for i in range(20_000):
        t.add_time(1000.0 if i % 2 else rng.random() * 1e-6)
    data = t.times
    assert t.mean == pytest.approx(statistics.fmean(data), rel=1e-12, abs=0)
    assert t.variance == pytest.approx(statistics.variance(data), rel=1e-9, abs=0)


def test_sorted_cache_stays_right_when_interleaving_adds_and_queries():
    rng = random.Random(2024)
    # bursts of a few changes take the bisect path, bigger ones the sort/slice path,
    # more changes than the window holds drop the cache
    for window in (None, 1, 5, 50, 300):
        t = Sktimer(max_times=window)
        ref = []
        for step in range(400):
            burst = rng.choice([1, 1, 2, 3, 8, 9, 20, 70, 200])
            for _ in range(burst):
                x = round(rng.random(), 2)  # many duplicates on purpose
                t.add_time(x)
                ref.append(x)
            if window is not None:
                ref = ref[-window:]
            if step % 3 == 0:
                p = rng.choice(PERCENTS)
                assert t.percentile(p) == float(np.percentile(ref, p)), (window, step, p)
                assert t.median == statistics.median(ref)
                assert t.min == min(ref) and t.max == max(ref)
                assert t.fastest_index == ref.index(min(ref))
        assert t.times == ref
        assert t.get_stats().sorted_times == tuple(sorted(ref))


def test_set_max_times_shrinks_and_grows():
    data = random_times(50, seed=9)
    t = filled(data)
    t.set_max_times(10)
    assert t.max_times == 10
    assert_stats_match(t, data[-10:])
    t.add_time(0.5)
    assert_stats_match(t, [*data[-9:], 0.5])
    t.set_max_times(None)
    assert t.max_times is None
    for x in data:
        t.add_time(x)
    assert_stats_match(t, [*data[-9:], 0.5, *data])


def test_one_million_samples_percentile_after_adds():
    rng = np.random.default_rng(42)
    data = rng.random(1_000_000).tolist()
    t = Sktimer()
    add = t.add_time
    for x in data:
        add(x)
    arr = np.asarray(data)
    assert t.num_times == 1_000_000
    for p in (0, 50, 95, 99.9, 100):
        assert t.percentile(p) == float(np.percentile(arr, p))
    for k in (1000, 30):  # merged by sorting, then inserted one by one
        extra = rng.random(k).tolist()
        for x in extra:
            add(x)
        arr = np.concatenate([arr, extra])
        for p in (0, 1, 95, 100):
            assert t.percentile(p) == float(np.percentile(arr, p))
    assert t.median == float(np.median(arr))
    assert t.mean == pytest.approx(float(arr.mean()), rel=1e-12, abs=0)
    assert t.stdev == pytest.approx(float(arr.std(ddof=1)), rel=1e-9, abs=0)


# --------------------------------------------------------------------------- measuring


def test_start_stop_records_elapsed():
    t = Sktimer()
    t.start()
    std_time.sleep(0.02)
    got = t.stop()
    assert 0.018 <= got < 1.0
    assert t.times == [got] and t.most_recent == got


def test_pause_time_is_excluded_and_accumulated():
    t = Sktimer()
    w0 = std_time.perf_counter()
    t.start()
    std_time.sleep(0.03)
    t.pause()
    std_time.sleep(0.05)
    t.resume()
    std_time.sleep(0.03)
    got = t.stop()
    wall = std_time.perf_counter() - w0
    assert t.total_time_paused >= 0.048
    assert got >= 0.058
    assert got < wall - 0.048  # the pause was not counted
    assert got + t.total_time_paused == pytest.approx(wall, abs=0.03)


def test_stop_while_paused_excludes_the_open_pause():
    t = Sktimer()
    w0 = std_time.perf_counter()
    t.start()
    std_time.sleep(0.02)
    t.pause()
    std_time.sleep(0.04)
    got = t.stop()
    wall = std_time.perf_counter() - w0
    assert got >= 0.018
    assert t.total_time_paused >= 0.038
    assert got < wall - 0.038
    assert got + t.total_time_paused == pytest.approx(wall, abs=0.03)


def test_pause_twice_and_resume_unpaused_warn():
    t = Sktimer()
    t.start()
    t.pause()
    with pytest.warns(UserWarning, match="already paused"):
        t.pause()
    t.resume()
    with pytest.warns(UserWarning, match="not paused"):
        t.resume()
    t.stop()
    assert t.num_times == 1


def test_lap_records_each_segment_and_keeps_timing():
    t = Sktimer()
    w0 = std_time.perf_counter()
    t.start()
    std_time.sleep(0.02)
    a = t.lap()
    std_time.sleep(0.03)
    b = t.lap()
    std_time.sleep(0.01)
    c = t.stop()
    wall = std_time.perf_counter() - w0
    assert t.times == [a, b, c]
    assert a >= 0.018 and b >= 0.028 and c >= 0.008
    assert a + b + c == pytest.approx(wall, abs=0.03)


def test_lap_while_paused_keeps_the_pause_out():
    t = Sktimer()
    w0 = std_time.perf_counter()
    t.start()
    std_time.sleep(0.02)
    t.pause()
    std_time.sleep(0.03)
    a = t.lap()  # still paused after the lap
    std_time.sleep(0.03)
    t.resume()
    b = t.stop()
    wall = std_time.perf_counter() - w0
    assert a >= 0.018
    assert t.total_time_paused >= 0.058
    assert a + b < wall - 0.058  # neither pause segment was measured
    assert a + b + t.total_time_paused == pytest.approx(wall, abs=0.03)


def test_discard_returns_elapsed_without_recording():
    t = Sktimer()
    t.start()
    std_time.sleep(0.02)
    got = t.discard()
    assert got >= 0.018
    assert t.num_times == 0
    with pytest.raises(RuntimeError):
        t.stop()  # the measurement is over


def test_nested_start_stop_in_one_thread():
    t = Sktimer()
    t.start()
    std_time.sleep(0.01)
    t.start()
    std_time.sleep(0.02)
    inner = t.stop()
    outer = t.stop()
    assert t.times == [inner, outer]
    assert outer >= inner + 0.009


@pytest.mark.parametrize("method", ["stop", "lap", "pause", "resume", "discard"])
def test_session_calls_before_start_raise(method):
    t = Sktimer()
    with pytest.raises(RuntimeError, match=r"call start\(\) first"):
        getattr(t, method)()


def test_sessions_are_per_thread():
    t = Sktimer()
    t.start()
    errors = []

    def other():
        try:
            t.stop()
        except RuntimeError as e:
            errors.append(e)

    th = threading.Thread(target=other)
    th.start()
    th.join()
    assert len(errors) == 1
    t.stop()  # the main thread's measurement is intact
    assert t.num_times == 1


def test_four_threads_times_1000_start_stop():
    t = Sktimer()
    barrier = threading.Barrier(4)

    def work():
        barrier.wait()
        for _ in range(1000):
            t.start()
            t.stop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert t.num_times == 4000
    assert t.total_time == pytest.approx(math.fsum(t.times), rel=1e-9, abs=0)
    assert t.percentile(50) == float(np.percentile(t.times, 50))


def test_threads_adding_to_a_window():
    t = Sktimer(max_times=100)

    def work(k):
        for i in range(500):
            t.add_time(k + i * 1e-6)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    data = t.times
    assert len(data) == 100
    assert t.mean == pytest.approx(statistics.fmean(data), rel=1e-9, abs=0)
    assert t.min == min(data) and t.max == max(data)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", True, [3]])
def test_bad_max_times(bad):
    with pytest.raises(ValueError, match="max_times"):
        Sktimer(max_times=bad)
    with pytest.raises(ValueError, match="max_times"):
        Sktimer().set_max_times(bad)
    with pytest.raises(ValueError, match="max_times"):
        timethis(max_times=bad)


def test_max_times_accepts_integer_likes():
    assert Sktimer(max_times=np.int64(3)).max_times == 3


@pytest.mark.parametrize("p", [101, -1, 100.0001, float("nan"), float("inf")])
def test_bad_percentile_value(p):
    t = filled([0.1, 0.2])
    with pytest.raises(ValueError, match="percentile"):
        t.percentile(p)
    with pytest.raises(ValueError, match="percentile"):
        t.get_stats().percentile(p)
    with pytest.raises(ValueError):
        Sktimer().percentile(p)  # checked even when empty


def test_bad_percentile_type():
    with pytest.raises(TypeError):
        filled([0.1]).percentile("95")


@pytest.mark.parametrize("bad", [-1, -1e-9, float("nan"), float("inf")])
def test_bad_add_time_value(bad):
    t = Sktimer()
    with pytest.raises(ValueError, match="seconds"):
        t.add_time(bad)
    assert t.num_times == 0


@pytest.mark.parametrize("bad", ["0.1", None, True])
def test_bad_add_time_type(bad):
    with pytest.raises(TypeError):
        Sktimer().add_time(bad)


def test_get_time_out_of_range():
    t = filled([0.1, 0.2])
    for i in (2, -1, -3, 100):
        assert t.get_time(i) is None
    assert Sktimer().get_time(0) is None
    with pytest.raises(TypeError):
        t.get_time(1.0)


def test_bad_threshold_and_timer_arguments():
    with pytest.raises(ValueError, match="threshold"):
        TimeThis(threshold=-1)
    with pytest.raises(ValueError, match="threshold"):
        timethis(threshold=-0.5)
    with pytest.raises(TypeError):
        TimeThis(timer="nope")
    with pytest.raises(TypeError, match=r"@timethis\(\)"):

        @timethis
        def f():
            pass

    with pytest.raises(TypeError):
        timethis()(42)


# --------------------------------------------------------------------------- TimeThis


def test_timethis_context_manager_binds_a_new_timer():
    with TimeThis() as t:
        std_time.sleep(0.02)
    assert isinstance(t, Sktimer)
    assert t.num_times == 1 and t.most_recent >= 0.018
    # as in the seed: add the block's time to another timer
    other = Sktimer()
    other.add_time(t.most_recent)
    assert other.times == t.times


def test_timethis_context_manager_with_given_timer_and_reuse():
    timer = Sktimer()
    block = TimeThis(timer)
    for _ in range(3):
        with block as t:
            assert t is timer
    with TimeThis(timer):
        with TimeThis(timer):
            pass
    assert timer.num_times == 5


def test_timethis_context_manager_shared_between_threads():
    timer = Sktimer()
    block = TimeThis(timer)

    def work():
        for _ in range(200):
            with block:
                with block:  # nested in the same thread, too
                    pass

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert timer.num_times == 1600
    assert block._depths == {}


def test_timethis_context_manager_threshold():
    timer = Sktimer()
    with TimeThis(timer, threshold=0.5):
        pass
    assert timer.num_times == 0
    with TimeThis(timer, threshold=0.01):
        std_time.sleep(0.02)
    assert timer.num_times == 1 and timer.most_recent >= 0.018


def test_timethis_context_manager_propagates_errors_and_does_not_record_them():
    timer = Sktimer()
    with pytest.raises(KeyError):
        with TimeThis(timer):
            raise KeyError("x")
    assert timer.num_times == 0  # only a block that completed is recorded (as suitkaise)


def test_timethis_context_manager_pause_and_manual_stop_inside():
    w0 = std_time.perf_counter()
    with TimeThis() as t:
        std_time.sleep(0.02)
        t.pause()
        std_time.sleep(0.03)
        t.resume()
    wall = std_time.perf_counter() - w0
    assert t.most_recent >= 0.018
    assert t.total_time_paused >= 0.028
    assert t.most_recent < wall - 0.028
    with TimeThis(t):
        t.stop()  # stopped by hand: the block must not fail or record twice
    assert t.num_times == 2


# --------------------------------------------------------------------------- timethis


def test_timethis_decorator_registers_a_global_timer():
    @timethis()
    def add(a, b=1):
        """Adds."""
        return a + b

    assert add(1, b=2) == 3
    assert add(5) == 6
    name = f"{__name__}.test_timethis_decorator_registers_a_global_timer.<locals>.add"
    timers = _api.global_timers()
    assert list(timers) == [name]
    assert timers[name] is add.timer
    assert add.timer.num_times == 2
    assert add.__name__ == "add" and add.__doc__ == "Adds."
    # global_timers() returns a copy
    timers.clear()
    assert name in _api.global_timers()
    clear_global_timers()
    assert _api.global_timers() == {}
    add(0)
    assert add.timer.num_times == 3  # the function keeps its timer


def test_timethis_on_a_method():
    class Worker:
        @timethis()
        def run(self, x):
            return x * 2

    w = Worker()
    assert w.run(4) == 8
    assert Worker.run.timer.num_times == 1
    assert any(n.endswith("Worker.run") for n in _api.global_timers())


def test_timethis_stacked_outer_timer_is_innermost_auto_timer():
    @timethis()
    @timethis()
    def f():
        return 1

    for _ in range(3):
        assert f() == 1
    timers = _api.global_timers()
    base = f"{__name__}.test_timethis_stacked_outer_timer_is_innermost_auto_timer.<locals>.f"
    assert sorted(timers) == [base, base + "#2"]
    inner, outer = timers[base], timers[base + "#2"]
    assert inner is not outer
    assert f.timer is inner
    assert inner.num_times == 3 and outer.num_times == 3  # both layers record
    # the outer layer includes the inner layer's work
    assert outer.total_time >= inner.total_time


def test_timethis_stacked_with_explicit_timers():
    mine = Sktimer()

    @timethis()
    @timethis(mine)
    def g():
        pass

    g()
    auto = next(iter(_api.global_timers().values()))
    assert g.timer is auto  # the only auto-created timer
    assert mine.num_times == 1 and auto.num_times == 1

    @timethis(mine)
    @timethis()
    def h():
        pass

    h()
    assert h.timer is not mine and h.timer.num_times == 1 and mine.num_times == 2


def test_timethis_explicit_timer_threshold_and_max_times():
    mine = Sktimer()

    @timethis(mine, threshold=0.01)
    def maybe_slow(s):
        std_time.sleep(s)

    maybe_slow(0)
    maybe_slow(0.02)
    assert maybe_slow.timer is mine
    assert mine.num_times == 1 and mine.most_recent >= 0.018
    assert _api.global_timers() == {}  # explicit timers are not registered

    @timethis(max_times=3)
    def quick(i):
        return i

    for i in range(10):
        quick(i)
    assert quick.timer.max_times == 3 and quick.timer.num_times == 3

    @timethis(mine, max_times=2)
    def other():
        pass

    assert mine.max_times == 2


def test_timethis_does_not_record_calls_that_raise():
    @timethis()
    def boom():
        raise ValueError("no")

    with pytest.raises(ValueError):
        boom()
    assert boom.timer.num_times == 0


def test_timethis_recursive_function():
    @timethis()
    def fact(n):
        return 1 if n <= 1 else n * fact(n - 1)

    assert fact(5) == 120
    assert fact.timer.num_times == 5
    assert fact.timer.max == fact.timer.times[-1]  # the outermost call is the longest


def test_timethis_async_function_times_the_awaited_call():
    @timethis()
    async def fetch(x):
        await asyncio.sleep(0.03)
        return x

    async def main():
        return await asyncio.gather(fetch(1), fetch(2))

    import inspect

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(main()) == [1, 2]
    assert fetch.timer.num_times == 2
    assert all(0.028 <= x < 0.5 for x in fetch.timer.times)


def test_timer_created_callbacks(caplog):
    seen = []

    def good(name, timer):
        seen.append((name, timer))

    def bad(name, timer):
        raise RuntimeError("subscriber broke")

    _api._on_global_timer_created.extend([bad, good])

    with caplog.at_level(logging.ERROR, logger="suitkaise_nb"):

        @timethis()
        def f():
            pass

    assert seen == [(f"{__name__}.test_timer_created_callbacks.<locals>.f", f.timer)]
    assert bad not in _api._on_global_timer_created
    assert good in _api._on_global_timer_created
    assert any("subscriber broke" in r.getMessage() or r.exc_info for r in caplog.records)
    assert caplog.records[0].name == "suitkaise_nb"

    @timethis()
    def g():
        pass

    assert len(seen) == 2


def test_redecorating_replaces_the_registered_timer():
    def make():
        @timethis()
        def f():
            pass

        return f

    f1, f2 = make(), make()
    timers = _api.global_timers()
    assert len(timers) == 1
    assert next(iter(timers.values())) is f2.timer is not f1.timer


# --------------------------------------------------------------------------- helpers


def test_time_is_wall_clock():
    before = std_time.time()
    now = timing.time()
    after = std_time.time()
    assert before <= now <= after


def test_elapsed_is_order_insensitive():
    assert elapsed(1.0, 3.5) == 2.5
    assert elapsed(3.5, 1.0) == 2.5
    assert elapsed(2, 2) == 0.0
    t0 = timing.time() - 1.0
    assert 1.0 <= elapsed(t0) < 5.0
    assert 0.9 <= elapsed(timing.time() + 1.0) <= 1.0  # a future t1 works too
    with pytest.raises(TypeError):
        elapsed("1", 2.0)


def test_sleep_blocks_and_returns_the_time_after():
    t0 = std_time.perf_counter()
    now = sleep(0.02)
    assert isinstance(now, float) and abs(now - std_time.time()) < 1.0
    assert std_time.perf_counter() - t0 >= 0.019
    assert sleep(0) <= std_time.time()
    with pytest.raises(ValueError):
        sleep(-1)
    with pytest.raises(TypeError):
        sleep("1")


def test_sleep_asynced_inside_a_running_loop():
    async def main():
        t0 = std_time.perf_counter()
        await asyncio.gather(sleep.asynced()(0.1), sleep.asynced()(0.1))
        took = std_time.perf_counter() - t0
        with pytest.raises(ValueError):
            sleep.asynced()(-1)
        return took

    took = asyncio.run(main())
    assert 0.098 <= took < 0.19  # concurrent, so not 0.2


# --------------------------------------------------------------------------- pickling


def test_pickle_round_trip():
    data = random_times(300, seed=4)
    t = filled(data, max_times=200)
    t.start()
    t.pause()
    std_time.sleep(0.005)
    t.resume()
    t.stop()
    t.start()  # a running measurement is not shipped
    blob = pickle.dumps(t)
    assert b"suitkaise_nb.timing" in blob
    u = pickle.loads(blob)
    assert isinstance(u, Sktimer)
    assert u.times == t.times and u.max_times == 200
    assert u.total_time_paused == t.total_time_paused > 0
    assert u.get_stats() == t.get_stats()
    with pytest.raises(RuntimeError):
        u.stop()
    u.start()
    u.stop()
    assert u.num_times == 200 and t.num_times == 200
    t.discard()


def test_pickle_and_copy_variants():
    t = filled([0.3, 0.1, 0.2])
    t.percentile(50)  # warm the sorted cache; it is not pickled
    for clone in (
        pickle.loads(pickle.dumps(Sktimer())),
        pickle.loads(pickle.dumps(t, protocol=0)),
        copy.deepcopy(t),
        copy.copy(t),
    ):
        assert isinstance(clone, Sktimer)
    u = copy.deepcopy(t)
    u.add_time(0.0)
    assert t.num_times == 3 and u.num_times == 4 and u.min == 0.0 and u.fastest_index == 3
    s = pickle.loads(pickle.dumps(t.get_stats()))
    assert s == t.get_stats() and s.percentile(50) == 0.2
    assert pickle.loads(pickle.dumps(sleep)) is sleep
    assert pickle.loads(pickle.dumps(timethis)) is timethis


def _child_records(timer):
    """Runs in a spawned process: records into the shipped timer and sends it back."""
    timer.add_time(0.5)
    with TimeThis(timer):
        pass
    return timer, timer.num_times


def test_timer_travels_to_another_process_and_back():
    import concurrent.futures
    import multiprocessing

    t = filled([0.1, 0.2, 0.3], max_times=4)
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
        back, n_in_child = ex.submit(_child_records, t).result(timeout=60)
    assert n_in_child == 4
    assert back.times[:3] == [0.2, 0.3, 0.5] and back.max_times == 4
    assert t.times == [0.1, 0.2, 0.3]  # the parent's timer is a separate copy
