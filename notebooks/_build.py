"""Generate the notebooks in this folder from the sources below.

The .ipynb files are build products kept in git without outputs; edit this script, then::

    .venv/bin/python notebooks/_build.py            # rewrite every notebook
    .venv/bin/python notebooks/_build.py --check    # exit 1 if a notebook differs from this script

Each notebook is a list of cells: ``md(...)`` for prose, ``code(...)`` for code (``tags=``
for cell tags such as ``raises-exception``). Cell ids are derived from the notebook name and
the cell's position, so rebuilding gives byte-identical files. Deterministic results are
asserted in the cells themselves, so that ``pytest --nbval-lax`` (which only checks that every
cell runs) still checks values.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

import nbformat

HERE = Path(__file__).resolve().parent

Cell = tuple[str, str, tuple[str, ...]]


def md(text: str) -> Cell:
    return ("markdown", textwrap.dedent(text).strip("\n"), ())


def code(text: str, tags: tuple[str, ...] = ()) -> Cell:
    return ("code", textwrap.dedent(text).strip("\n"), tags)


NOTEBOOKS: dict[str, list[Cell]] = {}


def notebook(name: str, cells: list[Cell]) -> None:
    NOTEBOOKS[name] = cells


# ---------------------------------------------------------------------------------------------
# quickstart
# ---------------------------------------------------------------------------------------------

notebook(
    "quickstart",
    [
        md("""
        # suitkaise_nb quickstart

        Run Python work in other processes from a notebook, and watch it happen. In five
        minutes: timing statistics (`Sktimer`), a process with a lifecycle (`Skprocess`) and its
        live view, `Pool.map` over data with a progress bar, shared state (`Share`), messages
        both ways (`tell`/`listen`) and a live dashboard of everything this kernel runs.

        Classes and functions typed into cells travel to the child processes by value; what a
        child prints lands in the cell that started it. The same code runs unchanged in a plain
        Python script, where no view is shown and nothing extra is printed.
        """),
        md("""
        ## 1. Timing

        `Sktimer` collects measurements and gives statistics; `TimeThis` and `@timethis` feed it.
        """),
        code("""
        from suitkaise_nb import timing
        from suitkaise_nb.timing import Sktimer, TimeThis, timethis

        timer = Sktimer()
        for n in range(1, 30):
            with TimeThis(timer):
                sum(i * i for i in range(n * 2000))

        stats = timer.get_stats()
        print(f"{stats.num_times} runs, mean {stats.mean * 1e3:.2f} ms, p95 {timer.percentile(95) * 1e3:.2f} ms")
        assert stats.num_times == 29
        """),
        code("""
        @timethis()
        def slow_square(x):
            timing.sleep(0.002)
            return x * x

        results = [slow_square(i) for i in range(20)]
        print(slow_square.timer.num_times, 'calls, mean', round(slow_square.timer.mean * 1e3, 1), 'ms')
        assert slow_square.timer.num_times == 20
        """),
        md("""
        A timer shown as a cell's value is a live histogram with its statistics table:
        """),
        code("""
        timer
        """),
        md("""
        ## 2. A process with a lifecycle

        `__prerun__ → __run__ → __postrun__` repeat `process_config.runs` times in a child
        process; `__result__` is what `result()` returns. Every section is timed.
        """),
        code("""
        from suitkaise_nb.processing import Skprocess

        class Collatz(Skprocess):
            def __init__(self, start):
                self.n = start
                self.steps = []
                self.process_config.runs = 40

            def __run__(self):
                self.n = self.n // 2 if self.n % 2 == 0 else 3 * self.n + 1
                self.steps.append(self.n)

            def __onfinish__(self):
                print(f"child: finished after {len(self.steps)} steps")

            def __result__(self):
                return self.steps[:10]

        proc = Collatz(27)
        first_steps = proc.run()
        print(first_steps)
        print('runs timed:', proc.__run__.timer.num_times)
        assert first_steps == [82, 41, 124, 62, 31, 94, 47, 142, 71, 214]
        assert proc.__run__.timer.num_times == 40
        """),
        md("""
        The box in the output above is the process's **live view**: it appeared by itself
        when the process started. It shows the state (created, starting, running, stopping,
        finished, failed, killed), the run counter, the timing of each section, the child's
        output and, at the end, the result. While the process runs, Stop and Kill act on it.

        `start()` does not block, so you can watch a longer process while you keep working.
        This one runs for about two seconds (`join_in`), one short run after another:
        """),
        code("""
        class Heartbeat(Skprocess):
            def __init__(self):
                self.beats = 0
                self.process_config.join_in = 2.0   # stop after two seconds

            def __run__(self):
                timing.sleep(0.02)
                self.beats += 1

            def __result__(self):
                return self.beats

        beat = Heartbeat()
        beat.start()
        """),
        code("""
        beats = beat.result()        # blocks until the process ends
        print(f"{beats} beats in about two seconds")
        assert beats == beat.current_run and 10 < beats <= 101
        """),
        md("""
        ## 3. Pool.map over data

        A `Pool` keeps worker processes and maps a function over your data. The function can be
        typed right here; it travels to the workers by value. The view shows progress
        (done/total, items per second, time left), each worker and a histogram of item
        durations.
        """),
        code("""
        import hashlib
        from suitkaise_nb.processing import Pool

        def fingerprint(word):
            data = word.encode()
            for _ in range(20_000):
                data = hashlib.sha256(data).digest()
            return word, data.hex()[:8]

        words = [f"word-{i}" for i in range(60)]
        with Pool(workers=2) as pool:
            prints = pool.map(fingerprint, words)

        print(prints[:3])
        assert [w for w, _ in prints] == words            # map keeps the input order
        assert prints[0] == fingerprint("word-0")         # same answer as a local call
        """),
        md("""
        ## 4. Shared state

        A `Share` holds objects in a small server process. Every process that receives the
        Share sees the same state, and method calls and `+=` on it are atomic: five processes
        that each add ten times give exactly fifty.
        """),
        code("""
        from suitkaise_nb.processing import Share

        class Tally:
            def __init__(self):
                self.value = 0

            def add(self, n=1):
                self.value += n

            def __repr__(self):
                return f"Tally({self.value})"

        class Voter(Skprocess):
            def __init__(self, shared):
                self.shared = shared
                self.process_config.runs = 10

            def __run__(self):
                self.shared.tally.add()
                self.shared.votes += 1

            def __result__(self):
                return "voted"

        share = Share()
        share.tally = Tally()
        share.votes = 0

        with Pool(workers=2) as pool:
            pool.map(Voter, [share] * 5)

        print(share.tally.value, share.votes)
        assert share.tally.value == 50 and share.votes == 50
        """),
        md("""
        Shown as a cell's value, a Share lists its attributes and counts the operations:
        """),
        code("""
        share
        """),
        code("""
        share.stop()
        """),
        md("""
        ## 5. Talking to a running process

        `tell()` sends to the other side, `listen()` receives (`None` on timeout). The view's
        message log records both directions with timestamps.
        """),
        code("""
        class Doubler(Skprocess):
            def __init__(self):
                self.process_config.runs = None   # until stopped

            def __run__(self):
                msg = self.listen(timeout=0.5)
                if msg == 'stop':
                    self.stop()
                elif msg is not None:
                    self.tell(msg * 2)

        d = Doubler()
        d.start()
        answers = []
        for i in range(5):
            d.tell(i)
            answers.append(d.listen(timeout=5))
        d.tell('stop')
        d.wait()
        print(answers)
        assert answers == [0, 2, 4, 6, 8]
        """),
        md("""
        ## 6. The dashboard

        `suitkaise_nb.dashboard()` (or `%skdashboard` after `%load_ext suitkaise_nb`) shows every
        process, pool, share and `@timethis` timer of this kernel, live, with Stop and Kill
        buttons. Here it also picks up `slow_square` from the first section; call it again and
        watch its histogram grow.
        """),
        code("""
        import suitkaise_nb

        suitkaise_nb.dashboard()
        """),
        code("""
        for i in range(30):
            slow_square(i)
        assert slow_square.timer.num_times == 50
        """),
        md("""
        Next: one notebook per topic — [processes](skprocess.ipynb), [pools](pool.ipynb),
        [shared state](share.ipynb), [pipes](pipe.ipynb), [tell and listen](tell_listen.ipynb),
        [autoreconnect](autoreconnect.ipynb), [the magics](magics.ipynb), the
        [timing dashboard](timing_dashboard.ipynb) and [pools on a Dask cluster](dask.ipynb); and
        two complete programs, a
        [task queue](task_queue.ipynb) and a [streaming pipeline](streaming_pipeline.ipynb).
        """),
    ],
)


# ---------------------------------------------------------------------------------------------
# skprocess
# ---------------------------------------------------------------------------------------------

notebook(
    "skprocess",
    [
        md("""
        # Skprocess: a class whose lifecycle runs in another process

        Subclass `Skprocess`, write `__run__` (and any of `__prerun__`, `__postrun__`,
        `__onfinish__`, `__result__`, `__error__`), and configure it through
        `self.process_config` in your `__init__` — no `super().__init__()` needed. The loop in
        the child is

        ```
        while not stopped, runs not reached and join_in not passed:
            __prerun__ → __run__ → __postrun__ → run counter + 1
        __onfinish__ → __result__
        ```

        Each example below shows the process's live view when it starts.
        """),
        md("""
        ## A counter: start(), wait(), result()
        """),
        code("""
        from suitkaise_nb.processing import Skprocess

        class CounterProcess(Skprocess):
            def __init__(self, target: int = 10):
                # process_config already exists here
                self.target = target
                self.counter = 0
                self.process_config.runs = target

            def __run__(self):
                self.counter += 1

            def __result__(self):
                return self.counter

        process = CounterProcess(target=100)
        process.start()      # returns at once
        process.wait()       # blocks until the child is done
        result = process.result()
        print(f"Final count: {result}")
        assert result == 100
        """),
        md("""
        ## run() = start + wait + result

        `self._current_run` (also `self.current_run`) counts the finished runs, so it indexes
        the data of the current one.
        """),
        code("""
        class QuickProcess(Skprocess):
            def __init__(self, data: list):
                self.data = data
                self.results = []
                self.process_config.runs = len(data)

            def __run__(self):
                item = self.data[self._current_run]
                self.results.append(item * 2)

            def __result__(self):
                return self.results

        results = QuickProcess([1, 2, 3, 4, 5]).run()
        print(results)
        assert results == [2, 4, 6, 8, 10]
        """),
        md("""
        ## The full lifecycle

        The child's `print`s appear below, in order, as they happen.
        """),
        code("""
        class DataProcessor(Skprocess):
            def __init__(self, batch_size: int = 5):
                self.batch_size = batch_size
                self.process_config.runs = 3
                self.current_batch = None
                self.processed_batches = []
                self.total_items = 0

            def __prerun__(self):
                n = self._current_run
                self.current_batch = [f"item_{n}_{i}" for i in range(self.batch_size)]
                print(f"[prerun] Fetched batch {n}: {len(self.current_batch)} items")

            def __run__(self):
                self._processed = [item.upper() for item in self.current_batch]
                self.total_items += len(self._processed)
                print(f"[run] Processed {len(self._processed)} items")

            def __postrun__(self):
                self.processed_batches.append(self._processed)
                self.current_batch = self._processed = None
                print(f"[postrun] Saved batch, total batches: {len(self.processed_batches)}")

            def __onfinish__(self):
                print(f"[onfinish] Finished processing {self.total_items} total items")

            def __result__(self):
                return {
                    'batches': self.processed_batches,
                    'total_items': self.total_items,
                    'num_batches': len(self.processed_batches),
                }

        result = DataProcessor(batch_size=3).run()
        print(f"Result: {result['num_batches']} batches, {result['total_items']} items")
        assert result['num_batches'] == 3 and result['total_items'] == 9
        assert result['batches'][0] == ['ITEM_0_0', 'ITEM_0_1', 'ITEM_0_2']
        """),
        md("""
        ## Until stopped: runs = None and stop()

        `stop()` is graceful: the child finishes the section it is in, then runs `__onfinish__`
        and `__result__`. (`kill()` ends it at once, with no cleanup and no result.)
        """),
        code("""
        import os
        from suitkaise_nb import timing

        class MonitorProcess(Skprocess):
            def __init__(self):
                self.process_config.runs = None      # the default: run until stopped
                self.events = []

            def __run__(self):
                self.events.append({'run': self._current_run, 'time': timing.time(), 'pid': os.getpid()})
                timing.sleep(0.01)

            def __onfinish__(self):
                print(f"Monitor shutting down after {len(self.events)} events")

            def __result__(self):
                return self.events

        monitor = MonitorProcess()
        monitor.start()
        timing.sleep(0.3)      # the parent is free meanwhile
        monitor.stop()
        monitor.wait()
        events = monitor.result()
        print(f"Captured {len(events)} events from pid {events[0]['pid']}")
        assert len(events) >= 5 and events[0]['pid'] != os.getpid()
        assert [e['run'] for e in events] == list(range(len(events)))
        """),
        md("""
        ## A time limit: join_in
        """),
        code("""
        class TimeBoundProcess(Skprocess):
            def __init__(self, max_seconds: float = 10.0):
                self.process_config.join_in = max_seconds
                self.iterations = 0

            def __run__(self):
                timing.sleep(0.01)
                self.iterations += 1

            def __result__(self):
                return self.iterations

        start = timing.time()
        iterations = TimeBoundProcess(max_seconds=1.0).run()
        took = timing.elapsed(start)
        print(f"Completed {iterations} iterations in {took:.2f} s")
        assert 0.9 < took < 3 and iterations > 10
        """),
        md("""
        ## Retries: lives

        `lives` is the number of attempts. After a failure the process keeps its state and
        resumes from the run that failed. When no life is left, `__error__` runs with
        `self.error` set, and its return value becomes the result. This run fails on content,
        so it fails every time: three lives, then `__error__`.
        """),
        code("""
        import hashlib
        from suitkaise_nb.processing import ProcessError, RunError

        class UnreliableProcess(Skprocess):
            def __init__(self):
                self.process_config.runs = 10
                self.process_config.lives = 3
                self.successful_runs = 0
                self.attempt_count = 0

            def __prerun__(self):
                self.attempt_count += 1

            def __run__(self):
                digest = hashlib.sha256(f"run:{self._current_run}".encode()).digest()
                if digest[0] % 5 == 0:
                    raise RuntimeError(f"Content failure on run {self._current_run}")
                self.successful_runs += 1

            def __error__(self):
                print(f"Process failed after {self.attempt_count} attempts")
                print(f"Error: {self.error}")
                return {'status': 'failed', 'successful_runs': self.successful_runs,
                        'error_type': type(self.error).__name__}

            def __result__(self):
                return {'status': 'success', 'successful_runs': self.successful_runs}

        result = UnreliableProcess().run()
        print(f"Result: {result}")
        # run 0 succeeds; run 1 fails on all three lives (the state is kept between lives)
        assert result == {'status': 'failed', 'successful_runs': 1, 'error_type': 'RunError'}
        """),
        md("""
        Without `__error__`, `result()` raises the failure, wrapped by section (`PreRunError`,
        `RunError`, ... all `ProcessError`) with the run number, the original exception and the
        child's traceback:
        """),
        code("""
        class Fragile(Skprocess):
            def __init__(self):
                self.process_config.runs = 5

            def __run__(self):
                if self._current_run == 2:
                    {}['missing']

        try:
            Fragile().run()
        except RunError as e:
            failure = e
        print(type(failure).__name__, '| run', failure.current_run, '|', repr(failure.original_error))
        assert isinstance(failure, ProcessError) and failure.current_run == 2
        assert isinstance(failure.original_error, KeyError)
        """),
        md("""
        ## Section timeouts

        `process_config.timeouts.<section>` bounds one section. An overrun raises
        `ProcessTimeoutError` (with `.section`, `.timeout`, `.current_run`) and counts against
        the lives. It interrupts a pure-Python CPU loop as well as a blocking call.
        """),
        code("""
        from suitkaise_nb.processing import ProcessTimeoutError

        class SlowProcess(Skprocess):
            def __init__(self):
                self.process_config.runs = 5
                self.process_config.timeouts.prerun = 1.0
                self.process_config.timeouts.run = 1.0
                self.process_config.timeouts.postrun = 1.0
                self.completed_runs = 0

            def __run__(self):
                # run 3 computes fibonacci(40): many seconds of pure Python
                self._fibonacci(40 if self._current_run == 3 else 20)
                self.completed_runs += 1

            def _fibonacci(self, n):
                return n if n <= 1 else self._fibonacci(n - 1) + self._fibonacci(n - 2)

            def __error__(self):
                if isinstance(self.error, ProcessTimeoutError):
                    print(f"Timeout in {self.error.section} after {self.error.timeout}s")
                return {'status': 'timeout', 'completed_runs': self.completed_runs}

            def __result__(self):
                return {'status': 'success', 'completed_runs': self.completed_runs}

        result = SlowProcess().run()
        print(f"Result: {result}")
        assert result == {'status': 'timeout', 'completed_runs': 3}
        """),
        md("""
        ## Timing data

        Every lifecycle method is timed. `process.__run__.timer` (also `process.timers.run`) is
        an `Sktimer`; `process.process_timer` (`timers.full_run`) adds up prerun + run +
        postrun per iteration. After `wait()`, the parent holds the child's timers.
        """),
        code("""
        class TimedProcess(Skprocess):
            def __init__(self, runs: int = 20):
                self.process_config.runs = runs
                self.data = [f"data_block_{i}" for i in range(1000)]

            def __prerun__(self):
                self.data = self.data[-1:] + self.data[:-1]

            def __run__(self):
                for _ in range(20 + (self._current_run * 7 % 40)):
                    for item in self.data[:100]:
                        hashlib.sha256(item.encode()).hexdigest()

            def __postrun__(self):
                sorted(self.data[:50])

            def __result__(self):
                return "done"

        process = TimedProcess(runs=20)
        process.run()
        print(f"__run__   mean {process.__run__.timer.mean * 1e3:.2f} ms, "
              f"p95 {process.__run__.timer.percentile(95) * 1e3:.2f} ms")
        print(f"__prerun__ max {process.__prerun__.timer.max * 1e6:.0f} µs")
        print(f"full iterations: {process.process_timer.num_times}, "
              f"total {process.process_timer.total_time:.3f} s")
        assert process.timers.run is process.__run__.timer
        assert process.__run__.timer.num_times == process.process_timer.num_times == 20
        """),
        md("""
        The timers are displayed as live histograms too:
        """),
        code("""
        process.timers.run
        """),
        md("""
        ## Async: .asynced()

        `wait`, `result`, `run` and `listen` take modifiers: `.timeout(s)()`, `.background()()`
        (a `concurrent.futures.Future`) and `.asynced()()` (an awaitable). A notebook already
        runs an event loop, so you `await` directly where a script writes `asyncio.run(...)`.
        """),
        code("""
        import asyncio

        class AsyncFriendlyProcess(Skprocess):
            def __init__(self, process_id: int, data_chunks: list):
                self.process_id = process_id
                self.data_chunks = data_chunks
                self.process_config.runs = len(data_chunks)
                self.results = []

            def __run__(self):
                chunk = self.data_chunks[self._current_run]
                self.results.append({'process': self.process_id, 'run': self._current_run,
                                     'hash': hashlib.sha256(chunk.encode()).hexdigest()[:16]})

            def __result__(self):
                return self.results

        async def run_processes_concurrently():
            all_data = [[f"process_{p}_chunk_{i}" for i in range(5)] for p in range(3)]
            processes = [AsyncFriendlyProcess(i, data) for i, data in enumerate(all_data)]
            for p in processes:
                p.start()
            await asyncio.gather(*[p.wait.asynced()() for p in processes])
            return [p.result() for p in processes]

        results = await run_processes_concurrently()
        for i, r in enumerate(results):
            print(f"Process {i}: {len(r)} results")
        assert [len(r) for r in results] == [5, 5, 5]
        assert results[2][4]['hash'] == hashlib.sha256(b"process_2_chunk_4").hexdigest()[:16]
        """),
        md("""
        ## In the background: .background()
        """),
        code("""
        import math

        class BackgroundProcess(Skprocess):
            def __init__(self, numbers: list):
                self.numbers = numbers
                self.process_config.runs = len(numbers)
                self.results = []

            def __run__(self):
                n = self.numbers[self._current_run]
                self.results.append({'number': n, 'factors': self._prime_factors(n)})

            def _prime_factors(self, n):
                factors, d = [], 2
                while d * d <= n:
                    while n % d == 0:
                        factors.append(d)
                        n //= d
                    d += 1
                if n > 1:
                    factors.append(n)
                return factors

            def __result__(self):
                return self.results

        numbers = [123456789, 987654321, 1000000007, 999999937, 2147483647]
        future = BackgroundProcess(numbers).run.background()()
        print("Process running in background...")
        digits = [len(str(math.factorial(100 + i))) for i in range(5)]   # the parent keeps working
        result = future.result()
        for r in result[:3]:
            print(f"  {r['number']} = {r['factors']}")
        assert result[0]['factors'] == [3, 3, 3607, 3803]
        assert all(math.prod(r['factors']) == r['number'] for r in result)
        """),
        md("""
        ## .timeout() on waiting

        `wait(timeout)` returns `False` when the process is still running; the `.timeout(s)`
        modifier raises `ResultTimeoutError` instead.
        """),
        code("""
        from suitkaise_nb.processing import ResultTimeoutError

        sleeper = TimeBoundProcess(max_seconds=0.5)
        sleeper.start()
        assert sleeper.wait(0.05) is False
        try:
            sleeper.result.timeout(0.05)()
        except ResultTimeoutError as e:
            print("ResultTimeoutError:", e)
        assert sleeper.wait(10) is True
        assert sleeper.result() > 0
        """),
    ],
)


# ---------------------------------------------------------------------------------------------
# pool
# ---------------------------------------------------------------------------------------------

notebook(
    "pool",
    [
        md("""
        # Pool: map work over worker processes

        `Pool(workers=None)` starts persistent workers (`None` = one per CPU). The map family:

        | call | gives |
        | --- | --- |
        | `pool.map(fn, items)` | a list, in input order |
        | `pool.unordered_map(fn, items)` | a list, in completion order |
        | `pool.imap(fn, items)` | an iterator, in input order (input read lazily) |
        | `pool.unordered_imap(fn, items)` | an iterator, in completion order |
        | `pool.star().map(fn, tuples)` | the same, calling `fn(*item)` |

        and `.timeout(s)`, `.background()`, `.asynced()` compose with all of them. Every call
        shows a live view: progress, items per second, time left, each worker, a histogram of
        item durations, errors.
        """),
        md("""
        ## Basic map
        """),
        code("""
        from suitkaise_nb.processing import Pool

        def square(x):
            return x * x

        pool = Pool(workers=4)
        results = pool.map(square, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        print(results)
        pool.close()
        assert results == [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]
        """),
        md("""
        ## As a context manager

        `with Pool(...)` closes the pool at the end of the block (`close()` waits for the
        workers; `terminate()` kills them).
        """),
        code("""
        import hashlib

        def process_data(data):
            normalized = data.strip().lower()
            return {'original': data, 'normalized': normalized,
                    'hash': hashlib.md5(normalized.encode()).hexdigest()[:8]}

        with Pool(workers=4) as pool:
            items = ["  Apple  ", "BANANA", "Cherry", "  DATE", "elderberry"]
            results = pool.map(process_data, items)

        for r in results:
            print(f"{r['original']:>12} -> {r['normalized']:<12} ({r['hash']})")
        assert [r['normalized'] for r in results] == ['apple', 'banana', 'cherry', 'date', 'elderberry']
        """),
        md("""
        ## star(): unpack tuples into arguments
        """),
        code("""
        def add(a, b):
            return a + b

        def multiply(x, y, z):
            return x * y * z

        with Pool(workers=4) as pool:
            sums = pool.star().map(add, [(1, 2), (3, 4), (5, 6), (7, 8)])
            products = pool.star().map(multiply, [(1, 2, 3), (4, 5, 6), (7, 8, 9)])

        print(f"Sums: {sums}")
        print(f"Products: {products}")
        assert sums == [3, 7, 11, 15] and products == [6, 120, 504]
        """),
        md("""
        ## Completion order: unordered_map and unordered_imap

        Work of uneven size: items that finish first come first.
        """),
        code("""
        def variable_work(item):
            iterations = (item % 10 + 1) * 500
            data = str(item).encode()
            for _ in range(iterations):
                data = hashlib.sha256(data).digest()
            return {'item': item, 'iterations': iterations, 'hash': data.hex()[:12]}

        with Pool(workers=4) as pool:
            results = pool.unordered_map(variable_work, list(range(20)))
            print(f"Order received: {[r['item'] for r in results]}")
            assert sorted(r['item'] for r in results) == list(range(20))

            print("unordered_imap:")
            for result in pool.unordered_imap(variable_work, list(range(8))):
                print(f"  got item {result['item']} ({result['iterations']} iterations)")
        """),
        md("""
        ## imap: results one at a time, in order

        The input is pulled lazily (a bounded window ahead of you), so `imap` works on long or
        endless iterators without holding everything in memory.
        """),
        code("""
        def heavy_computation(item):
            data = str(item).encode()
            for _ in range(1000):
                data = hashlib.sha256(data).digest()
            return {'input': item, 'hash': hashlib.sha256(data).hexdigest()}

        with Pool(workers=4) as pool:
            processed = 0
            for result in pool.imap(heavy_computation, range(100)):
                assert result['input'] == processed      # in input order
                processed += 1
                if processed % 25 == 0:
                    print(f"Processed {processed} items, latest hash: {result['hash'][:16]}...")
        assert processed == 100
        """),
        md("""
        ## Timeouts

        `.timeout(s)` bounds the whole `map` (for `imap`: each item). On expiry a `TimeoutError`
        is raised, the overdue work is killed, its worker is replaced, and the pool stays usable.
        """),
        code("""
        def slow_function(x):
            def fib(n):
                return n if n <= 1 else fib(n - 1) + fib(n - 2)
            return fib(40) if x == 5 else fib(15 + x)

        with Pool(workers=4) as pool:
            try:
                pool.map.timeout(1.0)(slow_function, [1, 2, 3, 4, 5, 6, 7, 8])
                timed_out = False
            except TimeoutError as e:
                timed_out = True
                print(f"Operation timed out: {e}")

            got = [result for result in pool.imap.timeout(5.0)(slow_function, [1, 2, 3])]
            print(f"Got: {got}")
        assert timed_out and got == [987, 1597, 2584]
        """),
        md("""
        ## In the background and with await
        """),
        code("""
        import math

        def compute(x):
            def prime_factors(n):
                factors, d = [], 2
                while d * d <= n:
                    while n % d == 0:
                        factors.append(d)
                        n //= d
                    d += 1
                if n > 1:
                    factors.append(n)
                return factors
            n = 10**9 + x * 1000 + 7
            return {'input': x, 'number': n, 'factors': prime_factors(n)}

        with Pool(workers=4) as pool:
            future = pool.map.background()(compute, list(range(20)))
            print("Pool working in background...")
            digits = [len(str(math.factorial(500 + i * 100))) for i in range(3)]
            results = future.result()

        print(f"Got {len(results)} factorizations; first: {results[0]}")
        assert results[0] == {'input': 0, 'number': 1000000007, 'factors': [1000000007]}
        assert all(math.prod(r['factors']) == r['number'] for r in results)
        """),
        code("""
        import asyncio

        def cpu_work(x):
            data = str(x).encode()
            for _ in range(1000):
                data = hashlib.sha256(data).digest()
            return {'input': x, 'hash': hashlib.sha256(data).hexdigest()[:16]}

        async def process_batches():
            with Pool(workers=4) as pool:
                return await asyncio.gather(
                    pool.map.asynced()(cpu_work, list(range(10))),
                    pool.map.asynced()(cpu_work, list(range(10, 20))),
                    pool.map.asynced()(cpu_work, list(range(20, 30))),
                )

        results = await process_batches()
        for i, batch in enumerate(results, 1):
            print(f"Batch {i}: {len(batch)} items, first: {batch[0]}")
        assert [b[0]['input'] for b in results] == [0, 10, 20]
        """),
        md("""
        ## An Skprocess as the target

        Give a pool an `Skprocess` subclass and it builds one instance per item (`Cls(item)`, or
        `Cls(*item)` with `star()`), runs its whole lifecycle in a worker and collects its
        `__result__`.
        """),
        code("""
        import json
        from suitkaise_nb.processing import Skprocess

        class DataTransformer(Skprocess):
            def __init__(self, input_data: dict):
                self.input_data = input_data
                self.process_config.runs = 1
                self.transformed = None

            def __run__(self):
                data = self.input_data
                data_hash = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
                self.transformed = {'original_id': data['id'], 'original_value': data['value'],
                                    'doubled': data['value'] * 2, 'squared': data['value'] ** 2,
                                    'hash': data_hash[:12]}

            def __result__(self):
                return self.transformed

        items = [{'id': i, 'value': 10 * i} for i in range(1, 5)]
        with Pool(workers=2) as pool:
            results = pool.map(DataTransformer, items)

        for r in results:
            print(f"ID {r['original_id']}: {r['original_value']} -> doubled={r['doubled']}, squared={r['squared']}")
        assert [(r['doubled'], r['squared']) for r in results] == [(20, 100), (40, 400), (60, 900), (80, 1600)]
        """),
        md("""
        ## star() with every modifier
        """),
        code("""
        def process_pair(x, y):
            n, r = max(x, y), min(x, y)
            result = math.comb(n * 10, r * 2)
            return {'inputs': (x, y), 'comb': result, 'digits': len(str(result))}

        pairs = [(1, 2), (3, 4), (5, 6), (7, 8)]
        with Pool(workers=4) as pool:
            a = pool.star().map.timeout(5.0)(process_pair, pairs)
            b = pool.star().map.background()(process_pair, pairs).result()
            c = await pool.star().map.asynced()(process_pair, pairs)
            d = list(pool.star().imap(process_pair, pairs))
            e = list(pool.star().unordered_imap(process_pair, pairs))

        print("digits:", [r['digits'] for r in a])
        assert a == b == c == d
        assert sorted(r['inputs'] for r in e) == pairs
        """),
        md("""
        ## Errors

        An exception in a worker reaches the caller. It can be caught as `RuntimeError` and as
        its own type, its message names the item (index and value), and it carries the worker's
        traceback. The pool stays usable.
        """),
        code("""
        def risky_function(x):
            if x == 3:
                raise ValueError(f"Cannot process {x}")
            return x * 2

        with Pool(workers=4) as pool:
            try:
                pool.map(risky_function, [1, 2, 3, 4, 5])
            except RuntimeError as e:
                caught = e
                print(f"Caught error: {e}")

            safe = pool.map(risky_function, [1, 2, 4, 5])
            print(f"Safe results: {safe}")

        assert isinstance(caught, ValueError) and isinstance(caught, RuntimeError)
        assert safe == [2, 4, 8, 10]
        """),
        md("""
        Left uncaught, the error shows the worker's traceback, pointing at the line in the cell
        above:
        """),
        code(
            """
            with Pool(workers=2) as pool:
                pool.map(risky_function, [1, 2, 3])
            """,
            tags=("raises-exception",),
        ),
        code("""
        import sys
        assert isinstance(sys.last_value, ValueError)
        assert "item 2" in str(sys.last_value)
        """),
    ],
)


# ---------------------------------------------------------------------------------------------
# share
# ---------------------------------------------------------------------------------------------

notebook(
    "share",
    [
        md("""
        # Share: one state, many processes

        A `Share` starts a small server process that owns your objects. Assign any object to
        an attribute; pass the Share to `Skprocess`es and `Pool` workers; every process reads
        and calls the same objects. Each read, assignment, method call and `+=` is one atomic
        operation on the server, so concurrent updates are never lost. The server listens on a
        local (AF_UNIX) socket only and checks an HMAC key.
        """),
        md("""
        ## A shared counter
        """),
        code("""
        from suitkaise_nb.processing import Pool, Share, Skprocess

        share = Share()

        class Counter:
            def __init__(self):
                self.value = 0

            def increment(self, amount: int = 1):
                self.value += amount

        share.counter = Counter()

        class CounterProcess(Skprocess):
            def __init__(self, shared: Share, amount: int = 1):
                self.shared = shared
                self.amount = amount
                self.process_config.runs = 10

            def __postrun__(self):
                self.shared.counter.increment(self.amount)   # runs on the server, atomically

            def __result__(self):
                return "done"

        with Pool(workers=4) as pool:
            pool.map(CounterProcess, [share] * 5)

        print(f"Final counter: {share.counter.value}")
        assert share.counter.value == 50
        """),
        md("""
        The Share's view (a cell's value) lists the attributes and counts operations:
        """),
        code("""
        share
        """),
        code("""
        share.stop()
        """),
        md("""
        ## Sharing an Sktimer

        Workers add their measurements to one timer; the parent reads the statistics.
        """),
        code("""
        import hashlib
        from suitkaise_nb import timing
        from suitkaise_nb.timing import Sktimer

        share = Share()
        share.timer = Sktimer()

        class TimedWorker(Skprocess):
            def __init__(self, shared: Share, work_count: int = 5):
                self.shared = shared
                self.process_config.runs = work_count

            def __run__(self):
                with timing.TimeThis() as run_timer:
                    data = b"benchmark_data"
                    for _ in range(500 + (self._current_run * 97 % 1500)):
                        data = hashlib.sha256(data).digest()
                self.shared.timer.add_time(run_timer.most_recent)

            def __result__(self):
                return "done"

        with Pool(workers=4) as pool:
            pool.map(TimedWorker, [share] * 4)

        stats = share.timer.get_stats()
        print(f"{stats.num_times} samples, mean {stats.mean * 1e3:.3f} ms, stdev {stats.stdev * 1e3:.3f} ms")
        share.stop()
        assert stats.num_times == 20
        """),
        md("""
        ## As a context manager

        `with Share() as share:` stops the server at the end of the block.
        """),
        code("""
        class WorkerProcess(Skprocess):
            def __init__(self, shared: Share):
                self.shared = shared
                self.process_config.runs = 10

            def __postrun__(self):
                self.shared.counter.increment(1)

            def __result__(self):
                return "done"

        with Share() as share:
            share.counter = Counter()
            with Pool(workers=2) as pool:
                pool.map(WorkerProcess, [share] * 3)
            final = share.counter.value
            print(f"Final value: {final}")

        assert final == 30 and not share.is_running
        """),
        md("""
        ## Several shared objects
        """),
        code("""
        class Stats:
            def __init__(self):
                self.processed = 0
                self.errors = 0
                self.successes = 0

            def record_success(self):
                self.processed += 1
                self.successes += 1

            def record_error(self):
                self.processed += 1
                self.errors += 1

        class DataProcessor(Skprocess):
            def __init__(self, shared: Share, item: dict):
                self.shared = shared
                self.item = item
                self.process_config.runs = 1

            def __run__(self):
                with timing.TimeThis() as run_timer:
                    try:
                        data = self.item['data'].encode()
                        if hashlib.sha256(data).digest()[0] % 5 == 0:
                            raise RuntimeError(f"Failed processing {self.item['id']}")
                        for _ in range(1000):
                            data = hashlib.sha256(data).digest()
                        self.shared.stats.record_success()
                    except Exception:
                        self.shared.stats.record_error()
                self.shared.timer.add_time(run_timer.most_recent)

            def __result__(self):
                return self.item['id']

        items = [{'id': i, 'data': f'item_{i}'} for i in range(20)]
        with Share() as share:
            share.stats = Stats()
            share.timer = timing.Sktimer()
            with Pool(workers=4) as pool:
                ids = pool.star().map(DataProcessor, [(share, item) for item in items])
            print(f"Processed: {share.stats.processed}")
            print(f"Successes: {share.stats.successes}")
            print(f"Errors: {share.stats.errors}")
            print(f"Avg time: {share.timer.mean * 1e3:.3f} ms")
            expected_errors = sum(hashlib.sha256(i['data'].encode()).digest()[0] % 5 == 0 for i in items)
            assert ids == list(range(20))
            assert share.stats.processed == 20 and share.stats.errors == expected_errors == 6
            assert share.timer.num_times == 20
        """),
        md("""
        ## Watching one process from the parent

        `share.progress += 1` in the child is a single atomic operation on the server. The parent
        reads the progress while the process runs.
        """),
        code("""
        class IterativeWorker(Skprocess):
            def __init__(self, shared: Share):
                self.shared = shared
                self.process_config.runs = 100

            def __run__(self):
                with timing.TimeThis() as run_timer:
                    data = f"iteration_{self._current_run}".encode()
                    for _ in range(200 + (hashlib.sha256(data).digest()[0] % 600)):
                        data = hashlib.sha256(data).digest()
                    timing.sleep(0.005)
                self.shared.progress += 1
                self.shared.timer.add_time(run_timer.most_recent)

            def __result__(self):
                return "complete"

        with Share() as share:
            share.progress = 0
            share.timer = Sktimer()
            process = IterativeWorker(share)
            process.start()
            seen = []
            while process.is_alive:
                seen.append(share.progress)
                timing.sleep(0.1)
            process.wait()
            print(f"Progress seen from the parent: {seen}")
            print(f"Final progress: {share.progress}")
            print(f"Avg iteration: {share.timer.mean * 1e3:.2f} ms")
            assert share.progress == 100 and share.timer.num_times == 100
            assert seen == sorted(seen)
        """),
        md("""
        ## start() and stop()

        `Share(auto_start=False)` warns on use until you start it. The state survives
        `stop()` and `start()`.
        """),
        code("""
        import warnings

        share = Share(auto_start=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            share.counter = 0          # warns: the Share is stopped
        print("warning:", caught[0].message)

        share.start()
        print(f"Running: {share.is_running}")
        share.counter = 100
        share.stop()
        print(f"Running: {share.is_running}")
        share.start()
        print(f"Counter: {share.counter}")
        assert share.counter == 100
        share.stop()
        assert caught and not share.is_running
        """),
        md("""
        ## clear()

        `clear()` removes every attribute; reading one afterwards raises `AttributeError`.
        """),
        code("""
        class Incrementer(Skprocess):
            def __init__(self, shared: Share):
                self.shared = shared
                self.process_config.runs = 10

            def __postrun__(self):
                self.shared.count += 1

            def __result__(self):
                return "done"

        with Share() as share:
            share.count = 0
            with Pool(workers=2) as pool:
                pool.map(Incrementer, [share] * 2)
            print(f"After batch 1: {share.count}")
            assert share.count == 20

            share.clear()
            try:
                share.count
            except AttributeError as e:
                print("after clear():", repr(e))

            share.count = 0
            with Pool(workers=2) as pool:
                pool.map(Incrementer, [share] * 3)
            print(f"After batch 2: {share.count}")
            assert share.count == 30
        """),
    ],
)


# ---------------------------------------------------------------------------------------------
# pipe
# ---------------------------------------------------------------------------------------------

notebook(
    "pipe",
    [
        md("""
        # Pipe: a private channel to one process

        `Pipe.pair()` gives two ends. The **anchor** stays in the parent (it is always locked:
        trying to send it to another process raises `PipeEndpointError`); the **point** goes to
        the child with the process. After `start()`, close the parent's copy of the point.
        """),
        md("""
        ## Both ways
        """),
        code("""
        from suitkaise_nb.processing import Pipe, Skprocess

        class PipeWorker(Skprocess):
            def __init__(self, pipe_point: Pipe.Point):
                self.pipe = pipe_point
                self.process_config.runs = 1

            def __run__(self):
                command = self.pipe.recv()
                print(f"[Child] Received: {command}")
                result = command['value'] * 2
                self.pipe.send({'result': result, 'status': 'ok'})
                print(f"[Child] Sent result: {result}")

            def __result__(self):
                return "pipe_complete"

        anchor, point = Pipe.pair()
        process = PipeWorker(point)
        process.start()
        point.close()

        print("[Parent] Sending command...")
        anchor.send({'action': 'compute', 'value': 21})
        response = anchor.recv()
        print(f"[Parent] Received response: {response}")
        process.wait()
        anchor.close()
        assert response == {'result': 42, 'status': 'ok'}
        assert process.result() == "pipe_complete"
        """),
        md("""
        ## One way

        With `one_way=True` the anchor only sends and the point only receives.
        """),
        code("""
        class DataReceiver(Skprocess):
            def __init__(self, pipe_point: Pipe.Point):
                self.pipe = pipe_point
                self.process_config.runs = 1
                self.received_data = []

            def __run__(self):
                while (data := self.pipe.recv()) is not None:
                    self.received_data.append(data)
                    print(f"[Child] Received: {data}")

            def __result__(self):
                return self.received_data

        anchor, point = Pipe.pair(one_way=True)
        process = DataReceiver(point)
        process.start()
        point.close()

        for i in range(5):
            anchor.send({'id': i, 'value': i * 10})
        anchor.send(None)          # end of data
        process.wait()
        received = process.result()
        print(f"Received {len(received)} items")
        anchor.close()
        assert received == [{'id': i, 'value': i * 10} for i in range(5)]
        """),
        md("""
        ## Two pipes: commands and data
        """),
        code("""
        class DualPipeWorker(Skprocess):
            def __init__(self, cmd_pipe: Pipe.Point, data_pipe: Pipe.Point):
                self.cmd_pipe = cmd_pipe
                self.data_pipe = data_pipe
                self.process_config.runs = None      # until stopped

            def __run__(self):
                cmd = self.cmd_pipe.recv()
                if cmd['action'] == 'process':
                    data = self.data_pipe.recv()
                    self.cmd_pipe.send({'status': 'done', 'result': sum(data)})
                elif cmd['action'] == 'stop':
                    self.stop()

            def __result__(self):
                return "worker_stopped"

        cmd_anchor, cmd_point = Pipe.pair()
        data_anchor, data_point = Pipe.pair()
        process = DualPipeWorker(cmd_point, data_point)
        process.start()
        cmd_point.close()
        data_point.close()

        cmd_anchor.send({'action': 'process'})
        data_anchor.send([1, 2, 3, 4, 5])
        result = cmd_anchor.recv()
        print(f"Result: {result}")

        cmd_anchor.send({'action': 'stop'})
        process.wait()
        cmd_anchor.close()
        data_anchor.close()
        assert result == {'status': 'done', 'result': 15}
        assert process.result() == "worker_stopped"
        """),
        md("""
        ## The anchor stays home

        Sending an anchor to a process is a mistake the library catches before anything
        starts:
        """),
        code("""
        from suitkaise_nb.processing import PipeEndpointError

        anchor, point = Pipe.pair()
        try:
            PipeWorker(anchor).start()
        except PipeEndpointError as e:
            print("PipeEndpointError:", e)
            refused = True
        anchor.close()
        point.close()
        assert refused
        """),
    ],
)


# ---------------------------------------------------------------------------------------------
# tell / listen
# ---------------------------------------------------------------------------------------------

notebook(
    "tell_listen",
    [
        md("""
        # tell() and listen(): messages both ways

        Every `Skprocess` has two queues between the parent and the child. `tell(obj)` sends,
        `listen(timeout=None)` receives the next message (or `None` when the timeout passes).
        They work the same on both sides. Messages sent before `wait()` can still be read
        after the process has ended.

        The process view keeps a log of the messages, both directions, with timestamps.
        """),
        md("""
        ## Steering a running process
        """),
        code("""
        import hashlib
        from suitkaise_nb.processing import Skprocess
        from suitkaise_nb import timing

        class CommandableProcess(Skprocess):
            def __init__(self):
                self.process_config.runs = None      # until stopped
                self.multiplier = 1
                self.results = []

            def __prerun__(self):
                command = self.listen(timeout=0.05)
                if command is not None:
                    if command.get('action') == 'set_multiplier':
                        self.multiplier = command['value']
                        print(f"[Child] Multiplier set to {self.multiplier}")
                    elif command.get('action') == 'stop':
                        self.stop()

            def __run__(self):
                data = f"run_{self._current_run}_mult_{self.multiplier}".encode()
                for _ in range(100 * self.multiplier):
                    data = hashlib.sha256(data).digest()
                value = int.from_bytes(data[:4], 'big') % 1000
                self.results.append({'run': self._current_run, 'multiplier': self.multiplier, 'value': value})
                if self._current_run % 5 == 0:
                    self.tell({'progress': self._current_run, 'latest': value})

            def __result__(self):
                return self.results

        process = CommandableProcess()
        process.start()
        timing.sleep(0.3)
        process.tell({'action': 'set_multiplier', 'value': 10})

        for _ in range(10):
            msg = process.listen(timeout=0.1)
            if msg is not None:
                print(f"[Parent] Progress: {msg}")

        process.tell({'action': 'stop'})
        process.wait()
        late = []
        while (msg := process.listen(timeout=0.1)) is not None:
            late.append(msg)
        print(f"[Parent] {len(late)} messages read after the process ended")

        results = process.result()
        print(f"Got {len(results)} results")
        assert [r['run'] for r in results] == list(range(len(results)))
        assert results[0]['multiplier'] == 1 and results[-1]['multiplier'] == 10
        """),
        md("""
        ## A request/response worker

        The same two calls make a small service: the parent asks, the child answers.
        """),
        code("""
        class Squarer(Skprocess):
            def __init__(self):
                self.process_config.runs = None

            def __run__(self):
                msg = self.listen(timeout=0.5)
                if msg == 'bye':
                    self.stop()
                elif msg is not None:
                    self.tell((msg, msg * msg))

        worker = Squarer()
        worker.start()
        replies = []
        for n in [3, 4, 12]:
            worker.tell(n)
            replies.append(worker.listen(timeout=5))
        worker.tell('bye')
        assert worker.wait(10)
        print(replies)
        assert replies == [(3, 9), (4, 16), (12, 144)]
        """),
        md("""
        Its view, shown again as a cell's value, has the message log: three requests down, three
        replies up, and the final `'bye'`.
        """),
        code("""
        worker
        """),
        md("""
        ## In async code

        `listen.asynced()` and `wait.asynced()` return awaitables; in a notebook you `await`
        them directly.
        """),
        code("""
        class AsyncWorker(Skprocess):
            def __init__(self, data_items: list):
                self.data_items = data_items
                self.process_config.runs = len(data_items)
                self.results = []

            def __run__(self):
                item = self.data_items[self._current_run]
                hash_result = hashlib.sha256(item.encode()).hexdigest()
                self.results.append(hash_result[:16])
                if self._current_run % 5 == 0:
                    self.tell({'run': self._current_run, 'status': 'working', 'last_hash': hash_result[:8]})
                timing.sleep(0.01)

            def __result__(self):
                return self.results

        async def monitor_process():
            data = [f"async_data_item_{i}" for i in range(20)]
            process = AsyncWorker(data)
            process.start()
            statuses = []
            while process.is_alive:
                msg = await process.listen.asynced()(timeout=0.2)
                if msg:
                    statuses.append(msg)
                    print(f"Status: {msg}")
            await process.wait.asynced()()
            while (msg := process.listen(timeout=0.05)) is not None:
                statuses.append(msg)
            return process.result(), statuses

        result, statuses = await monitor_process()
        print(f"Final: {len(result)} hashes computed")
        assert len(result) == 20
        assert [s['run'] for s in statuses] == [0, 5, 10, 15]
        """),
    ],
)


# ---------------------------------------------------------------------------------------------
# autoreconnect
# ---------------------------------------------------------------------------------------------

notebook(
    "autoreconnect",
    [
        md("""
        # @autoreconnect: live connections that travel

        A database connection cannot be pickled: it is a socket or a file handle plus a
        session. Put `@autoreconnect` on an `Skprocess` class and, when the process is sent to
        a child (by `start()` or as a `Pool` item), each supported connection is replaced by a
        small placeholder holding how to reopen it — never the password. In the child the
        placeholders are reopened, with the password you give the decorator:

        ```python
        @autoreconnect(start_threads=False, **{
            "psycopg2.Connection": {"*": "default_pass", "analytics_db": "analytics_pass"},
            "redis.Redis": {"*": "redis_secret"},
        })
        ```

        `"*"` is the default, an attribute name overrides it. Supported: `sqlite3`, PostgreSQL
        (`psycopg2`, `psycopg`), Redis and MongoDB. This notebook uses sqlite3 on a temporary
        file, so it runs anywhere.
        """),
        md("""
        ## A database in a temporary file
        """),
        code("""
        import os
        import sqlite3
        import tempfile

        tmpdir = tempfile.TemporaryDirectory()
        path = os.path.join(tmpdir.name, "shop.db")

        db = sqlite3.connect(path)
        db.execute("CREATE TABLE items (name TEXT, qty INTEGER)")
        db.executemany("INSERT INTO items VALUES (?, ?)", [("apple", 3), ("pear", 5), ("plum", 8)])
        db.commit()
        print(db.execute("SELECT count(*) FROM items").fetchone())
        """),
        md("""
        ## A process that holds the connection

        sqlite3 takes no password, so its entry is an empty dict (a bare `@autoreconnect`
        works too).
        """),
        code("""
        from suitkaise_nb.processing import Pool, Skprocess, autoreconnect

        @autoreconnect(start_threads=False, **{"sqlite3.Connection": {}})
        class DatabaseWorker(Skprocess):
            def __init__(self, db_connection, query: str):
                self.db = db_connection
                self.query = query
                self.process_config.runs = 1
                self.results = None

            def __run__(self):
                # here self.db is a live connection again, opened in this child
                cursor = self.db.cursor()
                cursor.execute(self.query)
                self.results = cursor.fetchall()
                cursor.close()

            def __result__(self):
                return self.results

        rows = DatabaseWorker(db, "SELECT name, qty FROM items ORDER BY qty").run()
        print(rows)
        assert rows == [("apple", 3), ("pear", 5), ("plum", 8)]
        """),
        md("""
        ## Many queries through a Pool

        Each item is `(connection, query)`; the worker builds `DatabaseWorker(*item)` and
        reopens the connection there.
        """),
        code("""
        queries = [
            (db, "SELECT sum(qty) FROM items"),
            (db, "SELECT name FROM items WHERE qty > 4 ORDER BY name"),
            (db, "SELECT max(qty) FROM items"),
        ]
        with Pool(workers=2) as pool:
            results = pool.star().map(DatabaseWorker, queries)
        print(results)
        assert results == [[(16,)], [("pear",), ("plum",)], [(8,)]]
        """),
        md("""
        ## Writes from the child

        The child's connection is its own, to the same file: what it commits, the parent sees.
        """),
        code("""
        @autoreconnect
        class Restocker(Skprocess):
            def __init__(self, db, name, qty):
                self.db, self.name, self.qty = db, name, qty
                self.process_config.runs = 1

            def __run__(self):
                self.db.execute("INSERT INTO items VALUES (?, ?)", (self.name, self.qty))
                self.db.commit()

            def __result__(self):
                return os.getpid()

        child_pid = Restocker(db, "fig", 13).run()
        print(db.execute("SELECT * FROM items WHERE name = 'fig'").fetchall(), "written by pid", child_pid)
        assert child_pid != os.getpid()
        assert db.execute("SELECT qty FROM items WHERE name = 'fig'").fetchone() == (13,)
        """),
        md("""
        ## What cannot travel

        Without the decorator, a connection cannot be shipped: the error names the attribute
        and its type, and suggests `@autoreconnect` or opening it in `__prerun__`.
        """),
        code("""
        from suitkaise_nb.processing import ShippingError

        class PlainWorker(Skprocess):
            def __init__(self, db):
                self.db = db
                self.process_config.runs = 1

            def __run__(self):
                pass

        try:
            PlainWorker(db).start()
        except ShippingError as e:
            print(e)
            plain_error = e
        assert "PlainWorker.db" in str(plain_error) and "sqlite3.Connection" in str(plain_error)
        """),
        md("""
        An in-memory database exists only in this process, so it cannot be reopened elsewhere —
        also a clear error, before anything starts:
        """),
        code("""
        memory = sqlite3.connect(":memory:")
        try:
            DatabaseWorker(memory, "SELECT 1").start()
        except ShippingError as e:
            print(e)
            memory_error = e
        memory.close()
        assert ":memory:" in str(memory_error) and "DatabaseWorker.db" in str(memory_error)
        """),
        code("""
        db.close()
        tmpdir.cleanup()
        """),
    ],
)


# ---------------------------------------------------------------------------------------------
# task queue
# ---------------------------------------------------------------------------------------------

notebook(
    "task_queue",
    [
        md("""
        # A distributed task queue

        A complete program built from the pieces: fifty tasks spread over four workers, each
        task an `Skprocess` with retries (`lives`) and a timeout, statistics and timing shared
        by all workers through a `Share`, and a summary at the end.

        Each task computes a chain of SHA-256 hashes (real CPU work); some fail deterministically
        because of their content, are retried twice, and end in `__error__`.
        """),
        md("""
        ## Shared statistics

        A plain class: the `Share` keeps the one real instance in its server, and
        `share.stats.record_complete()` runs there, atomically.
        """),
        code("""
        import hashlib
        from suitkaise_nb.processing import Pool, Share, Skprocess
        from suitkaise_nb.timing import Sktimer
        from suitkaise_nb import timing

        class TaskStats:
            def __init__(self):
                self.total_tasks = 0
                self.completed = 0
                self.failed = 0
                self.retried = 0

            def record_complete(self):
                self.completed += 1
                self.total_tasks += 1

            def record_fail(self):
                self.failed += 1
                self.total_tasks += 1

            def record_retry(self):
                self.retried += 1
        """),
        md("""
        ## The worker: one task, three lives
        """),
        code("""
        class TaskWorker(Skprocess):
            def __init__(self, shared: Share, task: dict):
                self.shared = shared
                self.task = task
                self.process_config.runs = 1          # one run per task
                self.process_config.lives = 3         # retry up to 2 times
                self.process_config.timeouts.run = 5.0
                self.result_data = None
                self.attempts = 0

            def __prerun__(self):
                self.attempts += 1
                if self.attempts > 1:
                    self.shared.stats.record_retry()

            def __run__(self):
                start = timing.time()
                try:
                    iterations = 500 + (self.task['id'] * 37 % 1500)
                    data = self.task['data'].encode()
                    for _ in range(iterations):
                        data = hashlib.sha256(data).digest()

                    checksum = hashlib.sha256(self.task['data'].encode()).digest()
                    if checksum[0] % 10 == 0:
                        raise RuntimeError(f"Task {self.task['id']} failed (content check)")

                    self.result_data = {
                        'task_id': self.task['id'],
                        'input': self.task['data'],
                        'output': hashlib.sha256(data).hexdigest()[:32],
                        'iterations': iterations,
                        'attempts': self.attempts,
                        'status': 'success',
                    }
                    self.shared.stats.record_complete()
                finally:
                    self.shared.timer.add_time(timing.elapsed(start))

            def __error__(self):
                # all lives used
                self.shared.stats.record_fail()
                return {
                    'task_id': self.task['id'],
                    'input': self.task['data'],
                    'output': None,
                    'attempts': self.attempts,
                    'status': 'failed',
                    'error': str(self.error),
                }

            def __result__(self):
                return self.result_data
        """),
        md("""
        ## The queue

        `pool.star().map(TaskWorker, args)` builds `TaskWorker(share, task)` in a worker for
        each task. The pool's view shows the progress; the Share's counters fill up live.
        """),
        code("""
        def run_task_queue(tasks: list[dict], workers: int = 4):
            with Share() as share:
                share.stats = TaskStats()
                share.timer = Sktimer()

                args = [(share, task) for task in tasks]
                with Pool(workers=workers) as pool:
                    results = pool.star().map(TaskWorker, args)

                stats = {
                    'total_tasks': share.stats.total_tasks,
                    'completed': share.stats.completed,
                    'failed': share.stats.failed,
                    'retried': share.stats.retried,
                    'timing': {
                        'total': share.timer.total_time,
                        'mean': share.timer.mean,
                        'min': share.timer.min,
                        'max': share.timer.max,
                        'p95': share.timer.percentile(95),
                        'count': share.timer.num_times,
                    },
                }
            return {'results': results, 'stats': stats}
        """),
        code("""
        tasks = [{'id': i, 'data': f'task_data_{i}'} for i in range(50)]
        print(f"Processing {len(tasks)} tasks...")

        start = timing.time()
        output = run_task_queue(tasks, workers=4)
        elapsed = timing.elapsed(start)

        stats = output['stats']
        print(f"\\n{'=' * 50}\\nTASK QUEUE RESULTS\\n{'=' * 50}")
        print(f"Total time: {elapsed:.2f}s")
        print("\\nTask Statistics:")
        print(f"  Total processed: {stats['total_tasks']}")
        print(f"  Completed:       {stats['completed']}")
        print(f"  Failed:          {stats['failed']}")
        print(f"  Retried:         {stats['retried']}")
        print("\\nTiming Statistics:")
        print(f"  Total work time: {stats['timing']['total']:.2f}s")
        print(f"  Mean per task:   {stats['timing']['mean']:.4f}s")
        print(f"  Min:             {stats['timing']['min']:.4f}s")
        print(f"  Max:             {stats['timing']['max']:.4f}s")
        print(f"  P95:             {stats['timing']['p95']:.4f}s")
        print("\\nSample Results:")
        for r in output['results'][:5]:
            print(f"  Task {r['task_id']}: {r['status']} (attempts: {r['attempts']})")
        """),
        md("""
        ## Checking the numbers

        Which tasks fail depends only on their content, so the parent can work it out on its
        own and compare.
        """),
        code("""
        failing = [t['id'] for t in tasks if hashlib.sha256(t['data'].encode()).digest()[0] % 10 == 0]
        print("tasks that fail on content:", failing)

        results = output['results']
        assert [r['task_id'] for r in results] == list(range(50))
        assert [r['task_id'] for r in results if r['status'] == 'failed'] == failing == [15, 21, 32]
        assert all(r['attempts'] == 3 for r in results if r['status'] == 'failed')
        assert all(r['attempts'] == 1 for r in results if r['status'] == 'success')
        assert stats['total_tasks'] == 50
        assert stats['completed'] == 47 and stats['failed'] == 3
        assert stats['retried'] == 2 * 3
        assert stats['timing']['count'] == 47 + 3 * 3       # every attempt was timed
        ok = results[0]
        data = b'task_data_0'
        for _ in range(ok['iterations']):
            data = hashlib.sha256(data).digest()
        assert ok['output'] == hashlib.sha256(data).hexdigest()[:32]
        """),
    ],
)


# ---------------------------------------------------------------------------------------------
# streaming pipeline
# ---------------------------------------------------------------------------------------------

notebook(
    "streaming_pipeline",
    [
        md("""
        # A streaming data pipeline

        Data arrives continuously; several workers that run until told to stop process it in
        parallel; the parent hands out items, listens to status reports, and shuts everything
        down gracefully at the end, with no item lost in flight.

        Pieces used: processes with `runs = None`, `tell`/`listen` both ways, a `Share` where
        results accumulate, `TimeThis` for timing, and `__onfinish__` for the final report.
        """),
        code("""
        import hashlib
        from suitkaise_nb.processing import Share, Skprocess
        from suitkaise_nb.timing import Sktimer, TimeThis
        from suitkaise_nb import timing

        class Results:
            def __init__(self):
                self.items = []
                self.count = 0

            def add(self, item):
                self.items.append(item)
                self.count += 1
        """),
        md("""
        ## The worker

        Each `__prerun__` takes one message: data to process, or the stop signal. Because the
        stop signal is queued after the data, a worker finishes everything it was given before
        it stops.
        """),
        code("""
        class DataPipelineWorker(Skprocess):
            def __init__(self, shared: Share, worker_id: int):
                self.shared = shared
                self.worker_id = worker_id
                self.process_config.runs = None     # until stopped
                self.processed = 0

            def __prerun__(self):
                msg = self.listen(timeout=0.1)
                self._pending_data = None
                if msg is not None:
                    if msg.get('action') == 'stop':
                        self.stop()
                    elif msg.get('action') == 'data':
                        self._pending_data = msg['payload']

            def __run__(self):
                if self._pending_data is None:
                    return
                with TimeThis() as run_timer:
                    data = self._pending_data
                    data_bytes = data.encode()
                    for _ in range(500):
                        data_bytes = hashlib.sha256(data_bytes).digest()
                    result = {
                        'worker': self.worker_id,
                        'input': data,
                        'output': hashlib.sha256(data_bytes).hexdigest()[:16],
                        'timestamp': timing.time(),
                    }
                self.shared.results.add(result)
                self.shared.timer.add_time(run_timer.most_recent)
                self.processed += 1
                self._pending_data = None

            def __postrun__(self):
                if self.processed > 0 and self.processed % 10 == 0:
                    self.tell({'worker': self.worker_id, 'processed': self.processed, 'status': 'running'})

            def __onfinish__(self):
                self.tell({'worker': self.worker_id, 'processed': self.processed, 'status': 'finished'})

            def __result__(self):
                return {'worker_id': self.worker_id, 'total_processed': self.processed}
        """),
        md("""
        ## The parent: distribute, signal, drain, collect
        """),
        code("""
        def run_pipeline(data_stream, num_workers: int = 2, timeout: float = 5.0):
            with Share() as share:
                share.results = Results()
                share.timer = Sktimer()

                workers = []
                for i in range(num_workers):
                    worker = DataPipelineWorker(share, worker_id=i)
                    worker.start()
                    workers.append(worker)

                start_time = timing.time()
                worker_idx = 0
                for item in data_stream:
                    if timing.elapsed(start_time) > timeout:
                        break
                    checksum = hashlib.sha256(str(item).encode()).hexdigest()[:8]
                    workers[worker_idx].tell({'action': 'data', 'payload': item, 'checksum': checksum})
                    worker_idx = (worker_idx + 1) % num_workers

                for worker in workers:
                    worker.tell({'action': 'stop'})

                statuses = []
                for worker in workers:
                    while (msg := worker.listen(timeout=0.5)) is not None:
                        statuses.append(msg)

                for worker in workers:
                    worker.wait()
                for worker in workers:      # messages sent before the end can still be read
                    while (msg := worker.listen(timeout=0.05)) is not None:
                        statuses.append(msg)
                worker_results = [worker.result() for worker in workers]

                return {
                    'results': share.results.items,
                    'count': share.results.count,
                    'worker_stats': worker_results,
                    'timing': {
                        'total': share.timer.total_time,
                        'mean': share.timer.mean if share.timer.num_times > 0 else 0,
                    },
                    'statuses': statuses,
                }
        """),
        md("""
        ## Run it

        Three workers, a stream of a hundred items. Each worker's view shows its runs and its
        message log while the stream flows.
        """),
        code("""
        def generate_data(n):
            for i in range(n):
                yield f"item_{i}"

        print("Starting pipeline...")
        output = run_pipeline(generate_data(100), num_workers=3, timeout=10.0)

        print("\\nPipeline Results:")
        print(f"  Total processed: {output['count']}")
        print(f"  Total time: {output['timing']['total']:.2f}s")
        print(f"  Mean per item: {output['timing']['mean']:.4f}s")
        print("\\nWorker Stats:")
        for ws in output['worker_stats']:
            print(f"  Worker {ws['worker_id']}: {ws['total_processed']} items")
        print("\\nSample Results:")
        for r in output['results'][:5]:
            print(f"  {r['input']} -> {r['output']} (worker {r['worker']})")
        """),
        md("""
        ## Checking the numbers

        Round-robin over three workers: item *i* goes to worker *i mod 3*, so the workers get
        34, 33 and 33 items, and every one is processed.
        """),
        code("""
        assert output['count'] == 100 == len(output['results'])
        assert [ws['total_processed'] for ws in output['worker_stats']] == [34, 33, 33]
        assert sorted(r['input'] for r in output['results']) == sorted(f"item_{i}" for i in range(100))
        assert all(r['worker'] == int(r['input'].split('_')[1]) % 3 for r in output['results'])
        finished = sorted((s['worker'], s['processed']) for s in output['statuses'] if s['status'] == 'finished')
        assert finished == [(0, 34), (1, 33), (2, 33)]
        data = b"item_7"
        for _ in range(500):
            data = hashlib.sha256(data).digest()
        item7 = next(r for r in output['results'] if r['input'] == 'item_7')
        assert item7['output'] == hashlib.sha256(data).hexdigest()[:16]
        """),
    ],
)


# ---------------------------------------------------------------------------------------------
# magics
# ---------------------------------------------------------------------------------------------

notebook(
    "magics",
    [
        md("""
        # The magics: %%skprocess, %sklist, %skstop, %skkill, %skdashboard

        `%load_ext suitkaise_nb` registers them. `%%skprocess` runs the code of a cell as an
        `Skprocess` in a child process and shows its live view; the cell blocks until the
        process ends (unless `--bg`) and its value is the result.

        | option | meaning |
        | --- | --- |
        | `--runs N` | number of runs (default 1) |
        | `--join-in S` | stop after S seconds |
        | `--lives N` | total attempts (default 1) |
        | `--timeout S` | timeout of each run, in seconds |
        | `--name NAME` | bind the process handle to `NAME` in the notebook |
        | `--bg` | return the handle at once; the cell does not block |
        | `--ship a,b` | the notebook variables to send (default: the names the cell reads that exist in the notebook) |
        | `--result EXPR` | an expression evaluated in the child at the end: the result |

        `%%skprocess?` shows the same help.
        """),
        code("""
        %load_ext suitkaise_nb
        """),
        md("""
        ## One cell, one process

        Without section markers the whole cell is the `run` section, run once. Its `print`s
        appear under the view.
        """),
        code("""
        %%skprocess --result answer
        import os
        answer = 6 * 7
        print("computed in pid", os.getpid())
        """),
        code("""
        import os
        assert _ == 42
        """),
        md("""
        ## Sections

        Comment lines `# %% prerun`, `# %% run`, `# %% postrun`, `# %% onfinish`, `# %% result`
        and `# %% error` split a cell into lifecycle sections. Code before the first marker is
        setup, run once in the child. All sections share one namespace, so names assigned in
        one run are there in the next. `tell`, `listen`, `stop` and `current_run` are provided;
        the last expression of the `result` section is the result.
        """),
        code("""
        %%skprocess --runs 5 --name squares
        total = 0
        seen = []
        # %% prerun
        seen.append(f"pre{current_run}")
        # %% run
        total += current_run ** 2
        # %% postrun
        tell(total)
        # %% onfinish
        print("sum of squares:", total)
        # %% result
        {"total": total, "seen": seen}
        """),
        md("""
        `--name squares` bound the handle, so the notebook can ask it for more:
        """),
        code("""
        result = squares.result()
        messages = []
        while (m := squares.listen(timeout=0.1)) is not None:
            messages.append(m)
        print(result, messages)
        assert result == {"total": 30, "seen": ["pre0", "pre1", "pre2", "pre3", "pre4"]}
        assert messages == [0, 1, 5, 14, 30]
        assert squares.timers.run.num_times == 5
        """),
        md("""
        ## Shipping notebook variables

        By default the cell gets every notebook variable it reads (modules are imported again
        in the child instead of being sent). `--ship` names them explicitly.
        """),
        code("""
        import math
        radii = [1.0, 2.0, 3.0]
        scale = 10
        """),
        code("""
        %%skprocess --name area_job
        # %% run
        areas = [round(scale * math.pi * r * r, 2) for r in radii]
        # %% result
        areas
        """),
        code("""
        assert area_job.result() == [31.42, 125.66, 282.74]
        """),
        code("""
        %%skprocess --ship scale --result "scale * 2"
        pass
        """),
        code("""
        assert _ == 20
        """),
        md("""
        A variable that cannot be sent (a lock, an open socket, a generator...) is an error
        that names it, before any process starts:
        """),
        code("""
        import threading
        lock = threading.Lock()
        """),
        code(
            """
            %%skprocess
            with lock:
                print("never runs")
            """,
            tags=("raises-exception",),
        ),
        code("""
        import sys
        from suitkaise_nb.processing import ShippingError
        assert isinstance(sys.last_value, ShippingError) and "'lock'" in str(sys.last_value)
        """),
        md("""
        ## --join-in, --lives and --timeout
        """),
        code("""
        %%skprocess --runs 1000000 --join-in 0.5
        import time
        # %% run
        time.sleep(0.01)
        # %% result
        current_run
        """),
        code("""
        runs_in_half_a_second = _
        print(runs_in_half_a_second)
        assert 10 < runs_in_half_a_second < 60
        """),
        md("""
        With `--lives 3`, a run that fails is tried again; the namespace is kept between
        attempts. Here the first two attempts of run 1 fail, the third succeeds.
        """),
        code("""
        %%skprocess --runs 3 --lives 3
        failures = 0
        done = []
        # %% run
        if current_run == 1 and failures < 2:
            failures += 1
            raise ConnectionError("flaky")
        done.append(current_run)
        # %% result
        done, failures
        """),
        code("""
        assert _ == ([0, 1, 2], 2)
        """),
        md("""
        `--timeout` bounds each run. When the lives run out, the `error` section runs with
        `error` set (a `ProcessTimeoutError` here), and its last expression is the result.
        """),
        code("""
        %%skprocess --timeout 0.3 --lives 2
        import time
        # %% run
        time.sleep(5)
        # %% error
        type(error).__name__, error.section, error.timeout
        """),
        code("""
        print(_)
        assert _[0] == "ProcessTimeoutError" and _[2] == 0.3
        """),
        md("""
        ## Errors point at the cell's own lines

        Without an `error` section, a failure is raised in the notebook, and the child's
        traceback shows the failing line of the cell, `y = x / 0`. Lines are counted as IPython
        counts them for every cell magic: from the line after `%%skprocess`, so this is line 3.
        """),
        code(
            """
            %%skprocess
            x = 1
            # %% run
            y = x / 0
            """,
            tags=("raises-exception",),
        ),
        code("""
        from suitkaise_nb.processing import RunError
        err = sys.last_value
        assert isinstance(err, RunError) and isinstance(err.original_error, ZeroDivisionError)
        assert "line 3" in err.remote_traceback and "y = x / 0" in err.remote_traceback
        """),
        md("""
        ## In the background: --bg, then %skstop

        With `--bg` the cell returns at once and its value is the handle (shown as the live
        view). The notebook stays free.
        """),
        code("""
        %%skprocess --bg --name ticker --runs 100000
        import time
        ticks = 0
        # %% run
        time.sleep(0.01)
        ticks += 1
        # %% result
        ticks
        """),
        code("""
        import time
        deadline = time.monotonic() + 10
        while ticker.current_run < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        print("still running:", ticker.is_alive, "after", ticker.current_run, "runs")
        assert ticker.is_alive
        """),
        md("""
        `%sklist` lists this kernel's processes and pools, live and recent:
        """),
        code("""
        %sklist
        """),
        md("""
        `%skstop NAME` stops it gracefully: the run in progress finishes, then `onfinish` and
        `result` run.
        """),
        code("""
        %skstop ticker
        """),
        code("""
        assert ticker.wait(10)
        ticks = ticker.result()
        print(ticks, "ticks")
        assert str(ticker.process_state) == "finished" and 5 <= ticks < 100000
        """),
        md("""
        `%skkill NAME` ends a process at once: no cleanup, no result.
        """),
        code("""
        %%skprocess --bg --name runaway --runs 100000
        # %% run
        pass
        """),
        code("""
        %skkill runaway
        """),
        code("""
        runaway.wait(10)
        assert str(runaway.process_state) == "killed"
        """),
        md("""
        ## Define and launch

        `%%skprocess MyProc(args)` runs the cell in the notebook (it defines your classes), then
        starts `MyProc(args)` as a process with its view. The options apply on top of what the
        class configures.
        """),
        code("""
        %%skprocess Repeater("ab", times=3) --name rep --runs 2
        from suitkaise_nb.processing import Skprocess

        class Repeater(Skprocess):
            def __init__(self, word, times=2):
                self.word, self.times = word, times
                self.out = []
                self.process_config.runs = 1

            def __run__(self):
                self.out.append(self.word * self.times)

            def __result__(self):
                return self.out
        """),
        code("""
        assert rep.result() == ["ababab", "ababab"]
        assert type(rep).__name__ == "Repeater"
        single = Repeater("x").run()     # an ordinary notebook class now: one run by default
        assert single == ["xx"]
        """),
        md("""
        ## The dashboard

        `%skdashboard` shows every process, pool, share and timer of this kernel, live, with
        Stop and Kill buttons.
        """),
        code("""
        %skdashboard
        """),
    ],
)


# ---------------------------------------------------------------------------------------------
# timing dashboard
# ---------------------------------------------------------------------------------------------

notebook(
    "timing_dashboard",
    [
        md("""
        # A live timing dashboard while you explore

        Decorate the functions you want to watch with `@timethis()`; each gets a timer of its
        own (`fn.timer`, registered under its module and name). Show the dashboard once, then
        keep working: it redraws by itself, about ten times a second, from a background thread,
        while your loop runs — histograms once a second.
        """),
        code("""
        import random
        import suitkaise_nb
        from suitkaise_nb import timing
        from suitkaise_nb.timing import Sktimer, TimeThis, timethis

        timing.clear_global_timers()       # start from a clean slate when the cell is re-run

        @timethis()
        def load_chunk(i):
            timing.sleep(0.005 + 0.005 * (i % 3))
            return [random.random() for _ in range(2000)]

        @timethis()
        def summarize(chunk):
            s = sorted(chunk)
            return s[len(s) // 2], sum(s) / len(s)

        @timethis()
        def detect_outliers(chunk, k=2.5):
            mean = sum(chunk) / len(chunk)
            sd = (sum((x - mean) ** 2 for x in chunk) / (len(chunk) - 1)) ** 0.5
            return [x for x in chunk if abs(x - mean) > k * sd]
        """),
        md("""
        The dashboard: empty timers for now.
        """),
        code("""
        suitkaise_nb.dashboard()
        """),
        md("""
        ## The exploratory loop

        Run it and look up at the dashboard: three histograms fill up as the loop goes.
        """),
        code("""
        random.seed(7)
        medians = []
        for i in range(100):
            chunk = load_chunk(i)
            median, mean = summarize(chunk)
            detect_outliers(chunk)
            medians.append(median)

        print(f"{len(medians)} chunks, median of medians {sorted(medians)[50]:.3f}")
        assert load_chunk.timer.num_times == summarize.timer.num_times == 100
        assert detect_outliers.timer.num_times == 100
        """),
        md("""
        ## Reading the numbers

        Each timer has the statistics you would compute yourself: `mean`, `median`, `stdev`
        (sample), `percentile(p)` (interpolated like numpy's default), `min`, `max`...
        `get_stats()` freezes them into one object.
        """),
        code("""
        for fn in (load_chunk, summarize, detect_outliers):
            s = fn.timer.get_stats()
            print(f"{fn.__name__:16} n={s.num_times:3}  mean={s.mean * 1e3:6.2f} ms  "
                  f"p95={fn.timer.percentile(95) * 1e3:6.2f} ms  max={s.max * 1e3:6.2f} ms")

        # load_chunk sleeps 5, 10 or 15 ms: its fastest call takes at least 5 ms
        assert load_chunk.timer.min >= 0.005
        assert load_chunk.timer.percentile(0) == load_chunk.timer.min
        assert load_chunk.timer.percentile(100) == load_chunk.timer.max
        """),
        md("""
        One timer on its own, as a cell's value — live too, for as long as it is being fed:
        """),
        code("""
        load_chunk.timer
        """),
        md("""
        ## Timing only what matters: TimeThis and a threshold

        `TimeThis(timer, threshold=s)` records a block only when it took at least `s` seconds —
        handy to keep the fast path out of a "slow calls" timer.
        """),
        code("""
        slow_calls = Sktimer()
        for i in range(40):
            with TimeThis(slow_calls, threshold=0.005):
                if i % 4 == 0:
                    timing.sleep(0.01)      # one call in four is slow
        print(slow_calls.num_times, "slow calls recorded")
        assert slow_calls.num_times == 10
        slow_calls
        """),
        md("""
        ## Timing work in other processes

        Workers can feed a timer that lives in a `Share`; its view updates while the pool works.
        """),
        code("""
        import hashlib
        from suitkaise_nb.processing import Pool, Share

        share = Share()
        share.hash_timer = Sktimer()

        def timed_hash(args):
            shared, n = args
            with TimeThis() as t:
                data = str(n).encode()
                for _ in range(2000 + 300 * (n % 5)):
                    data = hashlib.sha256(data).digest()
            shared.hash_timer.add_time(t.most_recent)
            return data.hex()[:8]

        with Pool(workers=2) as pool:
            digests = pool.map(timed_hash, [(share, n) for n in range(40)])

        print(share.hash_timer.num_times, "samples from the workers")
        assert len(digests) == 40 and share.hash_timer.num_times == 40
        """),
        code("""
        share.stop()
        """),
        md("""
        `timing.clear_global_timers()` forgets every `@timethis` timer (the dashboard then shows
        none until the functions are called again).
        """),
    ],
)


# ---------------------------------------------------------------------------------------------
# dask (Pool on a Dask cluster) -- maintained by the Dask backend work; kept in its own function
# ---------------------------------------------------------------------------------------------


def _dask_notebook() -> None:
    notebook(
        "dask",
        [
            md("""
            # Pool on a Dask cluster

            When one machine is not enough, keep the code and change only where the pool runs:
            `Pool(client=...)` runs `map`, `unordered_map`, `imap`, `unordered_imap`, `star()` and
            the modifiers on the workers of a [Dask distributed](https://distributed.dask.org)
            cluster, with the same results, errors and live view as the local pool.

            `distributed` is an optional extra: `pip install 'suitkaise_nb[dask]'`. Without it,
            `Pool(client=...)` raises an `ImportError` that says so.

            This notebook starts a small `LocalCluster` on this machine (2 worker processes, one
            thread each). For a real cluster, pass a `distributed.Client` connected to its
            scheduler, or the scheduler's address: `Pool(client="tcp://scheduler:8786")`.
            """),
            code("""
            import os
            import time

            from distributed import Client, LocalCluster
            from suitkaise_nb.processing import Pool, Share, Skprocess

            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)
            client = Client(cluster)
            worker_pids = set(client.run(os.getpid).values())
            print(len(worker_pids), "Dask workers:", sorted(worker_pids))
            assert len(worker_pids) == 2
            """),
            md("""
            ## The same calls, on the cluster

            The pool has one slot per worker thread of the cluster (`Pool(4, client=client)` asks
            for another number). Functions typed into cells travel to the workers by value.
            """),
            code("""
            def collatz_steps(n):
                steps = 0
                while n != 1:
                    n = 3 * n + 1 if n % 2 else n // 2
                    steps += 1
                return steps

            pool = Pool(client=client)
            print(pool)
            steps = pool.map(collatz_steps, range(1, 2001))
            assert steps == [collatz_steps(n) for n in range(1, 2001)]
            print("longest chain below 2000 starts at", steps.index(max(steps)) + 1)
            """),
            code("""
            def where(x):
                time.sleep(0.01)
                return os.getpid()

            ran_on = set(pool.map(where, range(40)))
            print("ran on", sorted(ran_on))
            assert ran_on <= worker_pids and os.getpid() not in ran_on

            # star(), unordered results, and a lazy imap over an endless generator
            assert pool.star().map(pow, [(2, 10), (3, 3)]) == [1024, 27]
            assert sorted(pool.unordered_map(collatz_steps, [27, 97, 871])) == [111, 118, 178]

            def naturals():
                n = 1
                while True:
                    yield n
                    n += 1

            first = []
            for value in pool.imap(collatz_steps, naturals()):  # pulled lazily, a bounded window
                first.append(value)
                if len(first) == 10:
                    break
            assert first == [0, 1, 7, 2, 5, 8, 16, 3, 19, 6]
            """),
            md("""
            ## Skprocess classes

            An Skprocess class is a target too: each item builds an instance that runs its whole
            lifecycle on a worker and contributes its `__result__`.
            """),
            code("""
            class Accumulate(Skprocess):
                def __init__(self, step):
                    self.step = step
                    self.total = 0
                    self.process_config.runs = 4

                def __run__(self):
                    self.total += self.step

                def __result__(self):
                    return self.total

            totals = pool.map(Accumulate, range(5))
            print(totals)
            assert totals == [0, 4, 8, 12, 16]
            """),
            md("""
            ## Errors and timeouts

            An error in an item is raised with its original type, which is also a `RuntimeError`,
            with the item's index and the traceback from the worker. A `.timeout()` cancels the
            call's futures on the cluster; the pool stays usable. (Dask cannot interrupt a task
            that is already running: its worker thread finishes the current item, then skips the
            rest of its chunk.)
            """),
            code("""
            def parse(text):
                return int(text)

            try:
                pool.map(parse, ["1", "2", "three", "4"])
            except ValueError as err:
                print(type(err).__name__, "on item", err.item_index, "-", err)
                assert isinstance(err, RuntimeError) and err.item_index == 2
                assert "in parse" in err.remote_traceback
            """),
            code("""
            def slow(x):
                time.sleep(0.5)
                return x

            t0 = time.monotonic()
            try:
                pool.map.timeout(0.3)(slow, range(8))
            except TimeoutError as err:
                print("timed out after", round(time.monotonic() - t0, 2), "s:", err)
            assert pool.map(collatz_steps, [27]) == [111]
            """),
            code("""
            async def both():
                import asyncio
                return await asyncio.gather(
                    pool.map.asynced()(collatz_steps, range(1, 50)),
                    pool.star().map.asynced()(pow, [(2, 5)]),
                )

            a, b = await both()
            assert len(a) == 49 and b == [32]
            """),
            md("""
            ## Share

            A `Share` is served from this machine through a local (`AF_UNIX`) socket, so the
            workers of a `LocalCluster` (same machine) can use it. Workers on other machines
            cannot: there, a Share raises a `ShareError` that says the Share lives on another
            machine. Return values from the items instead and combine them here.
            """),
            code("""
            share = Share()
            share.done = 0

            def count(shared, x):
                shared.done += 1
                return x

            assert pool.star().map(count, [(share, i) for i in range(30)]) == list(range(30))
            print(share.done, "items counted in the Share")
            assert share.done == 30
            share.exit()
            """),
            md("""
            ## The address form, and cleaning up

            `Pool(client="tcp://host:port")` connects its own client and closes it when the pool
            closes. A pool given a `Client` leaves it open: it belongs to you.
            """),
            code("""
            with Pool(client=cluster.scheduler_address) as by_address:
                assert by_address.map(collatz_steps, [6, 7]) == [8, 16]

            pool.close()
            client.close()
            cluster.close()
            print("cluster", cluster.status.name)
            """),
        ],
    )


_dask_notebook()


# ---------------------------------------------------------------------------------------------
# writer
# ---------------------------------------------------------------------------------------------


def build(name: str, cells: list[Cell]) -> Any:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "name": "python3",
        },
        "language_info": {"name": "python", "pygments_lexer": "ipython3"},
    }
    for i, (kind, source, tags) in enumerate(cells):
        cell_id = f"{name.replace('_', '-')}-{i:02d}"
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source, id=cell_id)
        else:
            cell = nbformat.v4.new_code_cell(source, id=cell_id)
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(name, NOTEBOOKS[name])) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook is stale")
    parser.add_argument("names", nargs="*", help="only these notebooks (default: all)")
    args = parser.parse_args(argv)
    names = args.names or list(NOTEBOOKS)
    stale = []
    for name in names:
        path = HERE / f"{name}.ipynb"
        text = render(name)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print(f"stale (run notebooks/_build.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
