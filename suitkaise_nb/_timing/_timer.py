"""Sktimer: a thread-safe stopwatch that keeps its samples and cheap statistics.

One timer, seen from the inside::

    Sktimer
    ├── _local: threading.local      per-thread sessions, each a stack of _Frame
    │     └── stack[-1]: _Frame      start / paused_at / paused   (start, stop, lap,
    │                                pause, resume, discard act on the top frame)
    └── under _lock (one lock shared by every thread)
          ├── _times: deque[float]   the recorded samples (maxlen=max_times: rolling window)
          ├── _shift, _s1, _s2       running shifted sums  s1 = sum(x - K), s2 = sum((x - K)**2)
          ├── _min, _max (+ pos)     incremental extremes; "dirty" after evicting an extreme
          └── _sorted, _added,       sorted copy for median/percentile, updated lazily:
              _removed               few changes -> bisect insert/delete; many -> timsort
                                     merge of the sorted run + new values, one slice pass

Why it looks like this:

* Measuring is per thread and recording is shared. Each thread has its own stack of running
  measurements, so threads never disturb each other's start/stop, and a recursive or nested
  ``start()``/``stop()`` on the same timer measures each level. Samples from every thread
  land in one store under one lock.
* ``add_time`` is O(1) (about a microsecond): mean, variance and total come from running
  sums of the data shifted by K (a sample near the mean), which avoids the catastrophic
  cancellation of the naive sum of squares. When a rolling window evicts a sample its terms
  are subtracted; after each full turnover of the window (or when K ends up so far from the
  window's mean that digits would cancel) the sums are recomputed exactly (``math.fsum``)
  around the sample nearest the mean, so rounding drift never accumulates. Amortised cost
  stays O(1). Without a window K stays a recorded sample, which bounds the cancellation to
  ~n ulps.
* min/max are kept incrementally and only rescanned when the evicted sample was the
  extreme. The sorted copy for median/percentile is only touched when someone asks for a
  quantile, and only merged with what changed since the last ask. If more changed than the
  window holds, the cache is dropped and rebuilt on demand (memory stays bounded).
* Pickling keeps samples, ``max_times`` and ``total_time_paused``; the lock, the per-thread
  sessions and the caches are rebuilt, so a timer can be shipped to another process or kept
  inside a shared-state server.
"""

import itertools
import math
import numbers
import operator
import threading
import warnings
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

__all__ = ["Sktimer", "TimerStats"]

_INF = math.inf
_STATE_VERSION = 1
# Up to this many new (evicted) values are inserted into (deleted from) the sorted cache one
# by one with bisect, a memmove each; more are merged by list.sort (cut out in one pass over
# slices). Re-sorting an already sorted list is cheap while its floats fit in the CPU caches,
# but costs ~50 ms for 1M floats (pointer chasing) against ~0.1-0.4 ms per memmove.
_FEW_CHANGES_SMALL = 8
_FEW_CHANGES_LARGE = 64
_LARGE = 100_000
# In a rolling window the shift K can become far from the remaining samples (an outlier
# evicted). When sum((x - mean)**2) falls below this fraction of sum((x - K)**2), too many
# digits cancel, and the sums are recomputed (around the sample nearest the mean).
_CANCELLATION = 1e-8


# --------------------------------------------------------------------------- validation


def _check_max_times(max_times: object) -> int | None:
    if max_times is None:
        return None
    if isinstance(max_times, bool):
        raise ValueError(f"max_times must be a positive int or None, got {max_times!r}")
    try:
        n = operator.index(max_times)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(
            f"max_times must be a positive int or None, got {type(max_times).__name__} "
            f"{max_times!r}"
        )
    if n < 1:
        raise ValueError(f"max_times must be >= 1 (or None for no limit), got {n}")
    return n


def _check_seconds(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number of seconds, got {type(value).__name__}")
    seconds = float(value)
    if not 0.0 <= seconds < _INF:
        raise ValueError(f"{what} must be a finite number of seconds >= 0, got {value!r}")
    return seconds


def _check_percent(p: object) -> float:
    tp = type(p)
    if (
        tp is not float
        and tp is not int
        and (isinstance(p, bool) or not isinstance(p, numbers.Real))
    ):
        raise TypeError(f"percentile takes a number between 0 and 100, got {tp.__name__}")
    q = float(p)  # type: ignore[arg-type]
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be between 0 and 100 (inclusive), got {p!r}")
    return q


# --------------------------------------------------------------------------- pure helpers


def _percentile_of_sorted(s: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks, computed exactly as numpy's default.

    The virtual index is ``(n - 1) * p / 100``; the lerp is written from the nearer end
    (numpy's ``_lerp``) so results match ``numpy.percentile`` bit for bit.
    """
    n = len(s)
    vi = (n - 1) * (p / 100.0)
    lo = math.floor(vi)
    if lo >= n - 1:
        return s[n - 1]
    gamma = vi - lo
    a = s[lo]
    b = s[lo + 1]
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1.0 - gamma)
    return a + diff * gamma


def _median_of_sorted(s: Sequence[float]) -> float:
    n = len(s)
    mid = n // 2
    if n % 2:
        return s[mid]
    return (s[mid - 1] + s[mid]) / 2.0


def _fmt_duration(seconds: float) -> str:
    """Short human form of a duration, for reprs: ``1.234ms``, ``56.000us``, ``2.500s``."""
    a = abs(seconds)
    if a >= 1.0 or a == 0.0:
        return f"{seconds:.3f}s"
    if a >= 1e-3:
        return f"{seconds * 1e3:.3f}ms"
    if a >= 1e-6:
        return f"{seconds * 1e6:.3f}us"
    return f"{seconds * 1e9:.0f}ns"


# --------------------------------------------------------------------------- TimerStats


@dataclass(frozen=True, slots=True)
class TimerStats:
    """A frozen snapshot of an :class:`Sktimer`'s statistics.

    ``get_statistics()`` of an empty timer is None, so every snapshot has samples; ``stdev``
    and ``variance`` are sample statistics (n - 1) and are None for a single sample. Indices
    are relative to the timer's samples (its rolling window, if it has one).
    """

    num_times: int
    most_recent: float | None
    total_time: float
    total_time_paused: float
    mean: float | None
    median: float | None
    min: float | None
    max: float | None
    stdev: float | None
    variance: float | None
    fastest_index: int | None
    slowest_index: int | None
    sorted_times: tuple[float, ...] = field(default=(), repr=False)
    times: tuple[float, ...] = field(default=(), repr=False)  # in the order recorded

    @property
    def result(self) -> float | None:
        """Same as :attr:`most_recent`."""
        return self.most_recent

    @property
    def most_recent_index(self) -> int | None:
        """Index of the last recorded time, or None."""
        return len(self.times) - 1 if self.times else None

    def get_time(self, index: int) -> float | None:
        """The time at ``index`` (0 is the oldest); None when out of range or negative."""
        i = operator.index(index)
        return self.times[i] if 0 <= i < len(self.times) else None

    @property
    def fastest_time(self) -> float | None:
        """Same as :attr:`min`."""
        return self.min

    @property
    def slowest_time(self) -> float | None:
        """Same as :attr:`max`."""
        return self.max

    def percentile(self, p: float) -> float | None:
        """The p-th percentile (0..100) of the snapshot's samples, or None if empty."""
        q = _check_percent(p)
        if not self.sorted_times:
            return None
        return _percentile_of_sorted(self.sorted_times, q)


# --------------------------------------------------------------------------- Sktimer


class _Frame:
    """One running measurement of one thread."""

    __slots__ = ("paused", "paused_at", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.paused_at: float | None = None
        self.paused = 0.0  # paused seconds already excluded from this measurement


def _close_frame(frame: _Frame, now: float) -> tuple[float, float]:
    """(elapsed without pauses, length of a pause still open at ``now``)."""
    open_pause = 0.0 if frame.paused_at is None else now - frame.paused_at
    elapsed = (now - frame.start) - frame.paused - open_pause
    return (elapsed if elapsed > 0.0 else 0.0), open_pause


class Sktimer:
    """A thread-safe timer that records durations and gives their statistics.

    >>> t = Sktimer()
    >>> t.start(); ...; elapsed = t.stop()     # doctest: +SKIP
    >>> t.add_time(0.25)
    >>> t.mean, t.percentile(95), t.get_stats()  # doctest: +SKIP

    ``max_times=N`` keeps only the last N samples (a rolling window): every statistic and
    index refers to that window. Each thread times independently (``start``/``stop``/
    ``lap``/``pause``/``resume``/``discard`` act on the calling thread's measurement;
    nested ``start()`` calls in one thread are measured as a stack), and all threads record
    into the same samples.
    """

    def __init__(self, max_times: int | None = None) -> None:
        self._max_times = _check_max_times(max_times)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._total_paused = 0.0
        self._times: deque[float] = deque(maxlen=self._max_times)
        self._clear_samples()

    # ------------------------------------------------------------ internal (hold _lock)

    def _clear_samples(self) -> None:
        self._times.clear()
        self._shift = 0.0  # K in the shifted sums
        self._s1 = 0.0  # sum(x - K)
        self._s2 = 0.0  # sum((x - K) ** 2)
        self._evictions = 0  # since the sums were last recomputed exactly
        self._seq_start = 0  # absolute sequence number of _times[0]
        self._min = 0.0
        self._max = 0.0
        self._min_pos = 0  # absolute sequence numbers of the extremes
        self._max_pos = 0
        self._extremes_dirty = False
        self._sorted: list[float] | None = None
        self._added: list[float] = []  # recorded since _sorted was last brought up to date
        self._removed: list[float] = []  # evicted since then

    def _record(self, x: float) -> None:
        times = self._times
        n = len(times)
        if n == self._max_times:  # window full: account for the sample append() will evict
            old = times[0]
            d = old - self._shift
            self._s1 -= d
            self._s2 -= d * d
            seq = self._seq_start
            if seq == self._min_pos or seq == self._max_pos:
                self._extremes_dirty = True
            self._seq_start = seq + 1
            if self._sorted is not None:
                self._removed.append(old)
            self._evictions += 1
            n -= 1
        if n == 0:
            self._shift = x
            self._s1 = 0.0
            self._s2 = 0.0
            self._evictions = 0
            self._min = self._max = x
            self._min_pos = self._max_pos = self._seq_start
            self._extremes_dirty = False
        else:
            d = x - self._shift
            self._s1 += d
            self._s2 += d * d
            if not self._extremes_dirty:
                if x < self._min:
                    self._min = x
                    self._min_pos = self._seq_start + n
                elif x > self._max:
                    self._max = x
                    self._max_pos = self._seq_start + n
        times.append(x)
        if self._sorted is not None:
            self._added.append(x)
            if len(self._added) + len(self._removed) > n + 1:
                self._drop_sorted_cache()
        if self._evictions and (
            self._evictions > n  # a whole window has turned over: clear the drift
            or self._s2 - self._s1 * self._s1 / (n + 1) < self._s2 * _CANCELLATION
        ):
            self._recompute_sums()

    def _drop_sorted_cache(self) -> None:
        self._sorted = None
        self._added = []
        self._removed = []

    def _recompute_sums(self) -> None:
        """Exact sums, shifted by the sample nearest the mean (removes rounding drift).

        K is a recorded sample, not the mean itself: then n * (K - mean)**2 <= the sum of
        squared deviations, so right after this the cancellation test cannot fire again,
        and identical samples give exactly zero deviations.
        """
        times = self._times
        self._evictions = 0
        n = len(times)
        if n == 0:
            self._shift = self._s1 = self._s2 = 0.0
            return
        mean = math.fsum(times) / n
        dist = [abs(x - mean) for x in times]
        k = times[dist.index(min(dist))]
        devs = [x - k for x in times]
        self._shift = k
        self._s1 = math.fsum(devs)
        self._s2 = math.fsum([d * d for d in devs])

    def _refresh_extremes(self) -> None:
        if self._extremes_dirty and self._times:
            times = self._times
            lo = min(times)
            hi = max(times)
            self._min, self._max = lo, hi
            self._min_pos = self._seq_start + times.index(lo)
            self._max_pos = self._seq_start + times.index(hi)
        self._extremes_dirty = False

    def _sorted_samples(self) -> list[float]:
        """The samples, sorted; brings the cache up to date with what changed."""
        s = self._sorted
        if s is None:
            s = self._sorted = sorted(self._times)
            self._added = []
            self._removed = []
            return s
        few = _FEW_CHANGES_LARGE if len(s) > _LARGE else _FEW_CHANGES_SMALL
        added = self._added
        if added:
            if len(added) <= few:
                for v in added:
                    insort(s, v)  # a bisect and a memmove each
            else:
                s.extend(added)
                s.sort()  # a sorted run plus a tail: timsort merges in ~linear time
            self._added = []
        removed = self._removed
        if removed:
            if len(removed) <= few:
                for v in removed:
                    del s[bisect_left(s, v)]
            else:
                removed.sort()
                kept: list[float] = []
                prev = 0
                for v in removed:
                    i = bisect_left(s, v, prev)
                    kept += s[prev:i]
                    prev = i + 1
                kept += s[prev:]
                s = self._sorted = kept
            self._removed = []
        return s

    def _stack(self) -> list[_Frame]:
        try:
            stack: list[_Frame] = self._local.stack
        except AttributeError:
            stack = self._local.stack = []
        return stack

    def _top(self, action: str) -> _Frame:
        stack: list[_Frame] | None = getattr(self._local, "stack", None)
        if not stack:
            raise RuntimeError(
                f"Sktimer.{action}() called with no timing running in this thread; "
                "call start() first"
            )
        return stack[-1]

    def _pop(self, action: str) -> _Frame:
        frame = self._top(action)
        self._local.stack.pop()
        return frame

    def _session_depth(self) -> int:
        """How many measurements the calling thread has running (used by TimeThis)."""
        stack: list[_Frame] | None = getattr(self._local, "stack", None)
        return len(stack) if stack else 0

    def _mean_locked(self) -> float | None:
        n = len(self._times)
        return self._shift + self._s1 / n if n else None

    def _variance_locked(self) -> float | None:
        n = len(self._times)
        if n < 2:  # a sample statistic needs two samples (as suitkaise: None)
            return None
        var = (self._s2 - self._s1 * self._s1 / n) / (n - 1)
        return var if var > 0.0 else 0.0

    def _total_locked(self) -> float:
        n = len(self._times)
        return self._shift * n + self._s1 if n else 0.0

    # ------------------------------------------------------------ measuring

    def start(self) -> None:
        """Start a measurement in the calling thread.

        Calling it again before ``stop()`` starts a nested measurement: each ``stop()``
        ends (and records) the innermost one.
        """
        self._stack().append(_Frame(perf_counter()))

    def stop(self) -> float:
        """End the calling thread's measurement, record it and return it (seconds)."""
        now = perf_counter()
        elapsed, open_pause = _close_frame(self._pop("stop"), now)
        with self._lock:
            self._total_paused += open_pause
            self._record(elapsed)
        return elapsed

    def discard(self) -> float:
        """End the calling thread's measurement without recording it; return its length."""
        now = perf_counter()
        elapsed, open_pause = _close_frame(self._pop("discard"), now)
        if open_pause:
            with self._lock:
                self._total_paused += open_pause
        return elapsed

    def lap(self) -> float:
        """Record the time since start() or the previous lap and keep timing."""
        now = perf_counter()
        frame = self._top("lap")
        elapsed, open_pause = _close_frame(frame, now)
        frame.start = now
        frame.paused = 0.0
        if frame.paused_at is not None:  # still paused: the pause goes on in the next lap
            frame.paused_at = now
        with self._lock:
            self._total_paused += open_pause
            self._record(elapsed)
        return elapsed

    def pause(self) -> None:
        """Pause the calling thread's measurement; paused time is not measured."""
        now = perf_counter()
        frame = self._top("pause")
        if frame.paused_at is not None:
            warnings.warn("Sktimer.pause(): the timer is already paused", stacklevel=2)
            return
        frame.paused_at = now

    def resume(self) -> None:
        """Resume after pause(); the pause is added to :attr:`total_time_paused`."""
        now = perf_counter()
        frame = self._top("resume")
        if frame.paused_at is None:
            warnings.warn("Sktimer.resume(): the timer is not paused", stacklevel=2)
            return
        paused = now - frame.paused_at
        frame.paused += paused
        frame.paused_at = None
        with self._lock:
            self._total_paused += paused

    def add_time(self, seconds: float) -> None:
        """Record a duration measured elsewhere (seconds, finite, >= 0)."""
        if type(seconds) is not float or not 0.0 <= seconds < _INF:
            seconds = _check_seconds(seconds, "add_time(seconds)")
        with self._lock:
            self._record(seconds)

    def reset(self) -> None:
        """Forget every recorded time and the paused total (keeps ``max_times``).

        Measurements running in other threads are left alone and record when stopped.
        """
        with self._lock:
            self._clear_samples()
            self._total_paused = 0.0

    def set_max_times(self, max_times: int | None) -> None:
        """Change the rolling window; shrinking it keeps the most recent samples."""
        n = _check_max_times(max_times)
        with self._lock:
            self._max_times = n
            self._times = deque(self._times, maxlen=n)
            self._reindex()

    def _reindex(self, recompute_sums: bool = True) -> None:
        self._seq_start = 0
        self._extremes_dirty = True
        self._drop_sorted_cache()
        if recompute_sums:
            self._recompute_sums()
        self._refresh_extremes()

    # ------------------------------------------------------------ statistics

    @property
    def max_times(self) -> int | None:
        """Size of the rolling window, or None when every sample is kept."""
        return self._max_times

    @property
    def num_times(self) -> int:
        """How many times are recorded (in the window, if there is one)."""
        return len(self._times)

    @property
    def times(self) -> list[float]:
        """A copy of the recorded times, oldest first."""
        with self._lock:
            return list(self._times)

    def recent(self, n: int) -> list[float]:
        """The last ``n`` recorded times, oldest first (cheap on large timers)."""
        with self._lock:
            times = self._times
            if n >= len(times):
                return list(times)
            return list(itertools.islice(reversed(times), n))[::-1]

    @property
    def most_recent(self) -> float | None:
        """The last recorded time, or None."""
        with self._lock:
            return self._times[-1] if self._times else None

    @property
    def result(self) -> float | None:
        """Same as :attr:`most_recent`."""
        return self.most_recent

    @property
    def total_time(self) -> float:
        """Sum of the recorded times (0.0 when empty)."""
        with self._lock:
            return self._total_locked()

    @property
    def total_time_paused(self) -> float:
        """Seconds spent paused (excluded from measurements) since creation or reset()."""
        return self._total_paused

    @property
    def mean(self) -> float | None:
        with self._lock:
            return self._mean_locked()

    @property
    def variance(self) -> float | None:
        """Sample variance (n - 1); None with fewer than two samples."""
        with self._lock:
            return self._variance_locked()

    @property
    def stdev(self) -> float | None:
        """Sample standard deviation (n - 1); None with fewer than two samples."""
        with self._lock:
            var = self._variance_locked()
        return None if var is None else math.sqrt(var)

    @property
    def median(self) -> float | None:
        with self._lock:
            if not self._times:
                return None
            return _median_of_sorted(self._sorted_samples())

    @property
    def min(self) -> float | None:
        with self._lock:
            if not self._times:
                return None
            self._refresh_extremes()
            return self._min

    @property
    def max(self) -> float | None:
        with self._lock:
            if not self._times:
                return None
            self._refresh_extremes()
            return self._max

    @property
    def fastest_time(self) -> float | None:
        """Same as :attr:`min`."""
        return self.min

    @property
    def slowest_time(self) -> float | None:
        """Same as :attr:`max`."""
        return self.max

    @property
    def fastest_index(self) -> int | None:
        """Index (in :attr:`times`) of the first occurrence of the fastest time."""
        with self._lock:
            if not self._times:
                return None
            self._refresh_extremes()
            return self._min_pos - self._seq_start

    @property
    def slowest_index(self) -> int | None:
        """Index (in :attr:`times`) of the first occurrence of the slowest time."""
        with self._lock:
            if not self._times:
                return None
            self._refresh_extremes()
            return self._max_pos - self._seq_start

    def percentile(self, p: float) -> float | None:
        """The p-th percentile (0..100), interpolated like numpy's default; None if empty."""
        q = _check_percent(p)
        with self._lock:
            if not self._times:
                return None
            return _percentile_of_sorted(self._sorted_samples(), q)

    @property
    def most_recent_index(self) -> int | None:
        """Index (in :attr:`times`) of the last recorded time, or None."""
        with self._lock:
            return len(self._times) - 1 if self._times else None

    def get_time(self, index: int) -> float | None:
        """The recorded time at ``index`` (0 is the oldest kept); None when out of range or
        negative."""
        i = operator.index(index)
        with self._lock:
            if 0 <= i < len(self._times):
                return self._times[i]
            return None

    def get_statistics(self) -> TimerStats | None:
        """A frozen snapshot of every statistic (and the samples); None when no time was
        recorded."""
        with self._lock:
            n = len(self._times)
            if n == 0:
                return None
            self._refresh_extremes()
            s = self._sorted_samples()
            var = self._variance_locked()
            return TimerStats(
                num_times=n,
                most_recent=self._times[-1],
                total_time=self._total_locked(),
                total_time_paused=self._total_paused,
                mean=self._mean_locked(),
                median=_median_of_sorted(s),
                min=self._min,
                max=self._max,
                stdev=None if var is None else math.sqrt(var),
                variance=var,
                fastest_index=self._min_pos - self._seq_start,
                slowest_index=self._max_pos - self._seq_start,
                sorted_times=tuple(s),
                times=tuple(self._times),
            )

    def get_stats(self) -> TimerStats | None:
        """Alias of :meth:`get_statistics`."""
        return self.get_statistics()

    # ------------------------------------------------------------ pickling, repr

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {
                "version": _STATE_VERSION,
                "max_times": self._max_times,
                "times": list(self._times),
                "total_time_paused": self._total_paused,
                # the running sums travel too, so a copy reports bit-identical statistics
                "sums": (self._shift, self._s1, self._s2, self._evictions),
            }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._max_times = _check_max_times(state["max_times"])
        self._lock = threading.Lock()
        self._local = threading.local()
        self._total_paused = float(state["total_time_paused"])
        self._times = deque(maxlen=self._max_times)
        self._clear_samples()
        self._times.extend(float(x) for x in state["times"])
        sums = state.get("sums")
        if sums is not None and len(self._times) == len(state["times"]):
            self._reindex(recompute_sums=False)
            self._shift, self._s1, self._s2 = (float(v) for v in sums[:3])
            self._evictions = int(sums[3])
        else:
            self._reindex()

    def __repr__(self) -> str:
        with self._lock:
            n = len(self._times)
            parts = [f"num_times={n}"]
            if n:
                self._refresh_extremes()
                mean = self._mean_locked() or 0.0
                var = self._variance_locked() or 0.0
                parts += [
                    f"mean={_fmt_duration(mean)}",
                    f"stdev={_fmt_duration(math.sqrt(var))}",
                    f"min={_fmt_duration(self._min)}",
                    f"max={_fmt_duration(self._max)}",
                    f"total={_fmt_duration(self._total_locked())}",
                ]
            if self._total_paused:
                parts.append(f"paused={_fmt_duration(self._total_paused)}")
            if self._max_times is not None:
                parts.append(f"max_times={self._max_times}")
        return f"{type(self).__name__}({', '.join(parts)})"


def session_depth(timer: Sktimer) -> int:
    """How many measurements the calling thread has running on ``timer`` (for TimeThis, which
    must notice a block that stopped the timer itself)."""
    return timer._session_depth()  # noqa: SLF001  (TimeThis is the timer's friend)
