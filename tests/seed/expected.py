"""What every seed example must print, derived by hand from the seed's comments.

Conventions (see ``seedlib`` for the check types):

* ``L("...")``: the comment promises this exact line (``print(x)  # [2, 4, 6, 8, 10]``,
  ``# Output:`` blocks, ``# Result: {...}``).
* ``R(r"...", where=...)``: a line whose values vary (hashes, timings, counts that depend on
  the scheduler) with the structural facts that must hold for them.
* ``InOrder``: the order is promised: one writer, or a child's output that was complete
  before the parent's ``wait()``/``result()`` returned and the parent printed.
* ``AnyOrder``/``Each``: parent and children print concurrently, lines may interleave.
* ``Holds``: cross-line facts (e.g. the event count printed by the child and by the parent
  agree). Timing-dependent counts are never asserted exactly.
* Every ``Expect`` is ``complete`` unless said otherwise: a line nobody expects fails.

Deterministic values (hashes, factorizations, which runs fail) were computed once from the
example code and written here as literals.

``SECTIONS_ENABLED`` decides which sections the process-running tests are generated for.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from seedlib import AnyOrder, Block, Each, Expect, Holds, InOrder, L, R

# ------------------------------------------------------------------------------------------
# scope: sections whose examples are collected by test_seed_scripts / test_seed_kernel
# ------------------------------------------------------------------------------------------

BASIC = "Basic `Skprocess`"
POOL = "`Pool`"
SHARE = "`Share`"
PIPE = "`Pipe`"
TELL_LISTEN = "`Skprocess.tell()` and `Skprocess.listen()`"
AUTORECONNECT = "`autoreconnect`"
FULL_TASK_QUEUE = "Full-on distributed task queue"
FULL_PIPELINE = "Full-on data streaming pipeline"

SECTIONS_ENABLED: set[str] = {
    BASIC,
    POOL,
    PIPE,
    TELL_LISTEN,
    AUTORECONNECT,
    SHARE,
    FULL_TASK_QUEUE,
    FULL_PIPELINE,
}

# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------

SECONDS = r"\d+\.\d{4}s"  # f"{x:.4f}s"
SECONDS2 = r"\d+\.\d{2}s"  # f"{x:.2f}s"


def _floats(lines: list[str], regex: str) -> list[float]:
    rx = re.compile(regex)
    return [float(m.group(1)) for ln in lines if (m := rx.fullmatch(ln))]


def _ints(lines: list[str], regex: str) -> list[int]:
    rx = re.compile(regex)
    return [int(m.group(1)) for ln in lines if (m := rx.fullmatch(ln))]


def _ordered(values: list[float], slack: float = 0.0) -> str | None:
    """None when ``values`` is non-decreasing (each step may go down by ``slack``)."""
    for a, b in zip(values, values[1:], strict=False):
        if b < a - slack:
            return f"{values} is not in non-decreasing order"
    return None


def _labelled_seconds(lines: list[str], labels: list[str]) -> dict[str, float]:
    """The first ``<label>: <float>s`` value printed for each label; raises if one is missing."""
    out: dict[str, float] = {}
    for label in labels:
        vals = _floats(lines, rf"\s*{re.escape(label)}:\s+(\d+\.\d+)s")
        if not vals:
            raise ValueError(f"no {label!r} value")
        out[label] = vals[0]
    return out


def _hash_chain_16(text: str, rounds: int) -> str:
    data = text.encode()
    for _ in range(rounds):
        data = hashlib.sha256(data).digest()
    return hashlib.sha256(data).hexdigest()[:16]


# ------------------------------------------------------------------------------------------
# Basic `Skprocess`
# ------------------------------------------------------------------------------------------


def _timing_report_facts(lines: list[str]) -> str | None:
    # the report prints (in this order) prerun mean/min/max, run mean/p50/p95,
    # postrun total, full-iteration mean/total; each rounded to 4 decimals
    vals = _floats(lines, r"\s+\w+:\s+(\d+\.\d+)s")
    if len(vals) != 9:
        return f"expected 9 timing values, got {vals}"
    pre_mean, pre_min, pre_max, run_mean, p50, p95, _post_total, full_mean, full_total = vals
    eps = 1e-4  # rounding to 4 decimals
    if not pre_min - eps <= pre_mean <= pre_max + eps:
        return f"prerun min {pre_min} <= mean {pre_mean} <= max {pre_max} does not hold"
    if p50 > p95 + eps:
        return f"run p50 {p50} > p95 {p95}"
    if full_mean + eps < run_mean:
        return f"full-iteration mean {full_mean} < __run__ mean {run_mean}"
    if abs(full_total - 20 * full_mean) > 20 * eps:
        return f"full-iteration total {full_total} != 20 x mean {full_mean}"
    if run_mean <= 0:
        return "__run__ mean is 0: the runs were not timed"
    return None


def _monitor_counts_agree(lines: list[str]) -> str | None:
    child = _ints(lines, r"Monitor shutting down after (\d+) events")
    parent = _ints(lines, r"Captured (\d+) events")
    if child != parent:
        return f"__onfinish__ saw {child} events but the result holds {parent}"
    return None


_ASYNC_TELL_HASHES = {0: "d352bef2", 5: "af03374b", 10: "d266f68c", 15: "3ac30b4b"}

_PROGRESS = r"\[Parent\] Progress: \{'progress': (\d+), 'latest': (\d+)\}"
_PROGRESS_LATE = r"\[Parent\] Progress \(late\): \{'progress': (\d+), 'latest': (\d+)\}"


def _progress_ok(m: re.Match[str]) -> bool:
    return int(m.group(1)) % 5 == 0 and 0 <= int(m.group(2)) < 1000


def _tell_listen_facts(lines: list[str]) -> str | None:
    rx = re.compile(f"{_PROGRESS}|{_PROGRESS_LATE}")
    runs = [int(m.group(1) or m.group(3)) for ln in lines if (m := rx.fullmatch(ln))]
    if not runs:
        # run 0 always tells; the message is received in the window or drained after wait()
        return "no progress message at all (run 0's tell() was lost)"
    if runs != sorted(set(runs)):
        return f"progress messages out of order or duplicated: {runs}"
    got = _ints(lines, r"Got (\d+) results")
    if got and runs[-1] >= got[0]:
        return f"progress for run {runs[-1]} but only {got[0]} results"
    if not lines[-1].startswith("Got "):
        return f"the last line should be 'Got N results', is {lines[-1]!r}"
    return None


def _async_status_order(lines: list[str]) -> str | None:
    runs = _ints(lines, r"Status: \{'run': (\d+), .*")
    return None if runs == sorted(set(runs)) else f"status runs out of order: {runs}"


BASIC_EXPECTED: dict[str, Expect] = {
    "basic-simple-counter-process": Expect(
        stdout=(InOrder(L("Final count: 100")),),
    ),
    "basic-using-run": Expect(
        stdout=(InOrder(L("[2, 4, 6, 8, 10]")),),
    ),
    "basic-full-lifecycle-process": Expect(
        stdout=(
            InOrder(
                L("[prerun] Fetched batch 0: 3 items"),
                L("[run] Processed 3 items"),
                L("[postrun] Saved batch, total batches: 1"),
                L("[prerun] Fetched batch 1: 3 items"),
                L("[run] Processed 3 items"),
                L("[postrun] Saved batch, total batches: 2"),
                L("[prerun] Fetched batch 2: 3 items"),
                L("[run] Processed 3 items"),
                L("[postrun] Saved batch, total batches: 3"),
                L("[onfinish] Finished processing 9 total items"),
                L("Result: 3 batches, 9 items"),
            ),
        ),
    ),
    "basic-indefinite-process-with-stop": Expect(
        stdout=(
            InOrder(
                R(r"Monitor shutting down after (\d+) events", lambda m: int(m[1]) >= 1, "N>=1"),
                R(r"Captured (\d+) events", lambda m: int(m[1]) >= 1, "N>=1"),
            ),
            Holds(_monitor_counts_agree, "child and parent event counts"),
        ),
    ),
    "basic-time-limited-process-with-process-config-join-in": Expect(
        # the comment's "~10 iterations" is a sum of digest bytes, not a count: only >= 1 holds
        # (run 0 alone adds sha256(b"iter_0")[0] == 246)
        stdout=(
            InOrder(
                R(
                    r"Completed (\d+) iterations in ~1 second",
                    lambda m: int(m[1]) >= 246,
                    "at least run 0 (246)",
                ),
            ),
        ),
    ),
    "basic-process-with-retries-lives": Expect(
        # run 1 fails deterministically (sha256(b"run:1")[0] % 5 == 0); lives resume from the
        # current run, so run 1 is attempted 3 times: 1 + 3 = 4 prerun calls, 1 success
        stdout=(
            InOrder(
                L("Process failed after 4 attempts"),
                R(r"Error: .*Content failure on run 1.*"),
                R(
                    r"Result: \{'status': 'failed', 'successful_runs': 1, "
                    r"'error': '.*Content failure on run 1.*'\}"
                ),
            ),
        ),
    ),
    "basic-timeouts-on-lifecycle-methods": Expect(
        stdout=(
            InOrder(
                L("Timeout in __run__ after 2.0s"),
                L("Result: {'status': 'timeout', 'completed_runs': 3}"),
            ),
        ),
    ),
    "basic-accessing-timing-data": Expect(
        stdout=(
            InOrder(
                L("__prerun__ timing:"),
                R(rf"  mean:   {SECONDS}"),
                R(rf"  min:    {SECONDS}"),
                R(rf"  max:    {SECONDS}"),
                L("__run__ timing:"),
                R(rf"  mean:   {SECONDS}"),
                R(rf"  p50:    {SECONDS}"),
                R(rf"  p95:    {SECONDS}"),
                L("__postrun__ timing:"),
                R(rf"  total:  {SECONDS}"),
                L("Full iteration timing (prerun + run + postrun):"),
                R(rf"  mean:   {SECONDS}"),
                R(rf"  total:  {SECONDS}"),
                L("  count:  20"),
            ),
            Holds(_timing_report_facts, "timing statistics are consistent"),
        ),
    ),
    "basic-async-process-execution": Expect(
        stdout=(
            InOrder(
                L("Process 0: 5 results"),
                L("Process 1: 5 results"),
                L("Process 2: 5 results"),
            ),
        ),
    ),
    "basic-background-execution-with-future": Expect(
        stdout=(
            InOrder(
                L("Process running in background..."),
                *[L(f"  Main thread computed factorial({100 + i})") for i in range(5)],
                L("Process computed 5 factorizations"),
                L("  123456789 = [3, 3, 3607, 3803]"),
                L("  987654321 = [3, 3, 17, 17, 379721]"),
                L("  1000000007 = [1000000007]"),
            ),
        ),
    ),
}

# ------------------------------------------------------------------------------------------
# `Skprocess.tell()` and `Skprocess.listen()`
# ------------------------------------------------------------------------------------------

TELL_LISTEN_EXPECTED: dict[str, Expect] = {
    "tell-listen-basic-usage": Expect(
        stdout=(
            # the child prints while the parent prints its progress lines
            AnyOrder(L("[Child] Multiplier set to 10")),
            Each(R(_PROGRESS, _progress_ok, "progress % 5 == 0, latest < 1000")),
            Each(R(_PROGRESS_LATE, _progress_ok, "progress % 5 == 0, latest < 1000")),
            InOrder(R(r"Got (\d+) results", lambda m: int(m[1]) >= 1, "N>=1")),
            Holds(_tell_listen_facts, "progress messages"),
        ),
    ),
    "tell-listen-async-usage": Expect(
        stdout=(
            # 0..4 status lines: the loop ends when the process is no longer alive
            Each(
                R(
                    r"Status: \{'run': (\d+), 'status': 'working', 'last_hash': '([0-9a-f]{8})'\}",
                    lambda m: _ASYNC_TELL_HASHES.get(int(m[1])) == m[2],
                    "run in {0,5,10,15} with its sha256 prefix",
                ),
                most=4,
            ),
            InOrder(L("Final: 20 hashes computed")),
            Holds(_async_status_order, "status lines in run order"),
            Holds(
                lambda lines: None if lines[-1] == "Final: 20 hashes computed" else "not last",
                "'Final: 20 hashes computed' is the last line",
            ),
        ),
    ),
}

# ------------------------------------------------------------------------------------------
# `Pool`
# ------------------------------------------------------------------------------------------

_IMAP_HASHES = {
    20: "c5dba7d209662794",
    40: "0aad4b7f6a36ce37",
    60: "5e1f6959fe604afa",
    80: "d6769ac649a286c2",
    100: "82893b2c025e3d5e",
}


def _is_permutation_of_range(n: int, regex: str) -> Callable[[list[str]], str | None]:
    def check(lines: list[str]) -> str | None:
        rx = re.compile(regex)
        found = [m for ln in lines if (m := rx.fullmatch(ln))]
        if len(found) != 1:
            return f"expected one line /{regex}/, found {len(found)}"
        got = [int(x) for x in found[0].group(1).split(",") if x.strip()]
        if sorted(got) != list(range(n)):
            return f"{got} is not a permutation of range({n})"
        return None

    return check


def _unordered_imap_facts(lines: list[str]) -> str | None:
    got = _ints(lines, r"  Got item\s+(\d+) \(\s*\d+ iters\)")
    if sorted(got) != list(range(20)):
        return f"items received {got} are not a permutation of range(20)"
    order = [ln for ln in lines if ln.startswith("Order received: ")]
    if len(order) != 1:
        return f"expected one 'Order received' line, found {order}"
    listed = [int(x) for x in order[0].removeprefix("Order received: ").strip("[]").split(",")]
    if listed != got:
        return f"'Order received' {listed} differs from the order printed {got}"
    return None


def _star_unordered(m: re.Match[str]) -> bool:
    found = re.findall(r"\((\d+), (\d+)\)", m[1])
    return sorted((int(a), int(b)) for a, b in found) == [(1, 2), (3, 4), (5, 6), (7, 8)]


POOL_EXPECTED: dict[str, Expect] = {
    "pool-basic-map": Expect(
        stdout=(InOrder(L("[1, 4, 9, 16, 25, 36, 49, 64, 81, 100]")),),
    ),
    "pool-pool-as-context-manager": Expect(
        stdout=(
            InOrder(
                L("     Apple   -> apple        (1f3870be)"),
                L("      BANANA -> banana       (72b302bf)"),
                L("      Cherry -> cherry       (c7a4476f)"),
                L("        DATE -> date         (5fc73231)"),
                L("  elderberry -> elderberry   (8625dc8c)"),
            ),
        ),
    ),
    "pool-using-star-for-tuple-unpacking": Expect(
        stdout=(InOrder(L("Sums: [3, 7, 11, 15]"), L("Products: [6, 120, 504]")),),
    ),
    "pool-unordered-map-for-fastest-list": Expect(
        # completion order is the scheduler's: only "a permutation of the items" holds
        stdout=(
            InOrder(L("Got 20 results"), R(r"Order received: \[[\d, ]+\]")),
            Holds(
                _is_permutation_of_range(20, r"Order received: \[([\d, ]+)\]"),
                "all items received once",
            ),
        ),
    ),
    "pool-imap-for-memory-efficiency": Expect(
        # imap is ordered: the latest result at count k is item k-1, whose hash is fixed
        stdout=(
            InOrder(
                *[
                    L(f"Processed {k} items, latest hash: {h}...")
                    for k, h in sorted(_IMAP_HASHES.items())
                ],
                L("Done! Processed 100 total items"),
            ),
        ),
    ),
    "pool-unordered-imap-for-fastest-results": Expect(
        stdout=(
            InOrder(L("Using unordered_imap - fastest results first:")),
            Each(
                R(
                    r"  Got item ([ \d]\d) \(([ \d]{3}\d) iters\)",
                    lambda m: int(m[2]) == (int(m[1]) % 10 + 1) * 500,
                    "iters == (item % 10 + 1) * 500",
                ),
                least=20,
                most=20,
            ),
            InOrder(R(r"Order received: \[[\d, ]+\]")),
            Holds(_unordered_imap_facts, "every item once, summary matches"),
            Holds(
                lambda lines: None if lines[-1].startswith("Order received") else "not last",
                "'Order received' is the last line",
            ),
        ),
    ),
    "pool-pool-with-timeout": Expect(
        # fib(40) takes far more than 2 s: map times out; the pool stays usable for imap
        stdout=(
            InOrder(
                R(r"Operation timed out:.*"),
                L("Got: 10946"),
                L("Got: 17711"),
                L("Got: 28657"),
            ),
        ),
    ),
    "pool-background-execution-with-pool": Expect(
        stdout=(
            InOrder(
                L("Pool working in background..."),
                L("  Main thread computed factorial, 1135 digits"),
                L("  Main thread computed factorial, 1409 digits"),
                L("  Main thread computed factorial, 1690 digits"),
                L("Got 20 factorizations"),
                L("First result: {'input': 0, 'number': 1000000007, 'factors': [1000000007]}"),
            ),
        ),
    ),
    "pool-async-pool-operations": Expect(
        stdout=(
            InOrder(
                L("Batch 1: 10 items, first: {'input': 0, 'hash': 'd85fe7b5a215d5e2'}"),
                L("Batch 2: 10 items, first: {'input': 10, 'hash': 'e7cda5cf711072ce'}"),
                L("Batch 3: 10 items, first: {'input': 20, 'hash': 'd2eb2dc310f4ff8a'}"),
            ),
        ),
    ),
    "pool-using-skprocess-with-pool": Expect(
        stdout=(
            InOrder(
                L("ID 1: 10 -> doubled=20, squared=100"),
                L("ID 2: 20 -> doubled=40, squared=400"),
                L("ID 3: 30 -> doubled=60, squared=900"),
                L("ID 4: 40 -> doubled=80, squared=1600"),
            ),
        ),
    ),
    "pool-combining-star-with-modifiers": Expect(
        stdout=(
            InOrder(
                L("star + timeout: [3, 7, 11, 16] digits"),
                L("star + background: [3, 7, 11, 16] digits"),
                L("star + async: [3, 7, 11, 16] digits"),
                L("star + imap: (1, 2) (3, 4) (5, 6) (7, 8)"),
                R(
                    r"star \+ unordered_imap: ((?:\(\d+, \d+\) ){3}\(\d+, \d+\))",
                    _star_unordered,
                    "the four input pairs in any order",
                ),
            ),
        ),
    ),
    "pool-error-handling-in-pool": Expect(
        # str(e) may span several lines (remote traceback): claim everything up to the next
        # print, and require the original message in it
        stdout=(
            Block(
                R(r"Caught error: .*"),
                L("Safe results: [2, 4, 8, 10]"),
                contains=(r"Cannot process 3",),
            ),
        ),
    ),
}

# ------------------------------------------------------------------------------------------
# `Share`
# ------------------------------------------------------------------------------------------


def _share_progress_facts(lines: list[str]) -> str | None:
    seen = _ints(lines, r"Progress: (\d+)/100")
    return _ordered([float(x) for x in seen])


SHARE_EXPECTED: dict[str, Expect] = {
    "share-basic-shared-counter-using-share": Expect(
        stdout=(InOrder(L("Final counter: 50")),),
    ),
    "share-sharing-complex-objects-like-sktimer": Expect(
        # prints nothing; "# will be 20 (4 workers x 5 runs each)" is checked by a postscript
        stdout=(
            InOrder(
                L("[seed-check] num_times: 20"),
                L("[seed-check] min <= mean <= max: True"),
            ),
        ),
        postscript=(
            'print(f"[seed-check] num_times: {num_times}")\n'
            'print(f"[seed-check] min <= mean <= max: {min <= mean <= max}")\n'
        ),
    ),
    "share-share-as-context-manager": Expect(
        stdout=(InOrder(L("Final value: 30")),),
    ),
    "share-multiple-shared-objects": Expect(
        # items 1, 6, 11, 13, 17, 19 fail the content check (sha256(b"item_i")[0] % 5 == 0)
        stdout=(
            InOrder(
                L("Processed: 20"),
                L("Successes: 14"),
                L("Errors: 6"),
                R(rf"Avg time: {SECONDS}"),
            ),
        ),
    ),
    "share-sharing-with-single-skprocess": Expect(
        stdout=(
            Each(R(r"Progress: (\d+)/100", lambda m: 0 <= int(m[1]) <= 100, "0..100")),
            InOrder(
                L("Final progress: 100"),
                R(rf"Total time: {SECONDS2}"),
                R(rf"Avg iteration: {SECONDS}"),
            ),
            Holds(_share_progress_facts, "progress never goes back"),
        ),
    ),
    "share-share-start-and-share-stop-control": Expect(
        # "share.counter = 0  # warning: Share is stopped": a Python warning on stderr
        stdout=(InOrder(L("Running: True"), L("Running: False"), L("Counter: 100")),),
        stderr=(InOrder(R(r"(?i).*:\d+: \w*Warning: .*share.*")),),
        stderr_allowed=(r"(?i)Warning: .*share",),
    ),
    "share-clearing-share-state": Expect(
        stdout=(InOrder(L("After batch 1: 20"), L("After batch 2: 30")),),
    ),
}

# ------------------------------------------------------------------------------------------
# `Pipe`
# ------------------------------------------------------------------------------------------

PIPE_EXPECTED: dict[str, Expect] = {
    "pipe-basic-pipe-communication": Expect(
        # parent and child print concurrently: each one's own lines are ordered
        stdout=(
            InOrder(
                L("[Parent] Sending command..."),
                L("[Parent] Received response: {'result': 42, 'status': 'ok'}"),
            ),
            InOrder(
                L("[Child] Received: {'action': 'compute', 'value': 21}"),
                L("[Child] Sent result: 42"),
            ),
        ),
    ),
    "pipe-one-way-pipe": Expect(
        # the child's lines are complete before wait() returns and the parent prints
        stdout=(
            InOrder(
                *[L(f"[Child] Received: {{'id': {i}, 'value': {i * 10}}}") for i in range(5)],
                L("Received 5 items"),
            ),
        ),
    ),
    "pipe-multiple-pipe-s": Expect(
        stdout=(InOrder(L("Result: {'status': 'done', 'result': 15}")),),
    ),
}

# ------------------------------------------------------------------------------------------
# `autoreconnect`: both examples only define classes (no connection is made) and print nothing
# ------------------------------------------------------------------------------------------

AUTORECONNECT_EXPECTED: dict[str, Expect] = {
    "autoreconnect-basic-autoreconnect": Expect(),
    "autoreconnect-autoreconnect-with-multiple-connection-types": Expect(),
}

# ------------------------------------------------------------------------------------------
# Full-on examples
# ------------------------------------------------------------------------------------------


def _task_queue_timing(lines: list[str]) -> str | None:
    v = _labelled_seconds(lines, ["Mean per task", "Min", "Max", "P95"])
    eps = 1e-4
    if not v["Min"] - eps <= v["Mean per task"] <= v["Max"] + eps:
        return f"min <= mean <= max does not hold: {v}"
    if not v["Min"] - eps <= v["P95"] <= v["Max"] + eps:
        return f"min <= p95 <= max does not hold: {v}"
    return None


def _pipeline_sample(m: re.Match[str]) -> bool:
    k = int(m[2])
    return 0 <= k < 100 and m[3] == _hash_chain_16(m[1], 500) and int(m[4]) == k % 3


FULL_EXPECTED: dict[str, Expect] = {
    "full-on-distributed-task-queue": Expect(
        # tasks 15, 21, 32 fail the content check on every attempt (lives=3: 2 retries each)
        stdout=(
            InOrder(
                L("Processing 50 tasks..."),
                L("=" * 50),
                L("TASK QUEUE RESULTS"),
                L("=" * 50),
                R(rf"Total time: {SECONDS2}"),
                L("Task Statistics:"),
                L("  Total processed: 50"),
                L("  Completed:       47"),
                L("  Failed:          3"),
                L("  Retried:         6"),
                L("Timing Statistics:"),
                R(rf"  Total work time: {SECONDS2}"),
                R(rf"  Mean per task:   {SECONDS}"),
                R(rf"  Min:             {SECONDS}"),
                R(rf"  Max:             {SECONDS}"),
                R(rf"  P95:             {SECONDS}"),
                L("Sample Results:"),
                *[L(f"  Task {i}: success (attempts: 1)") for i in range(5)],
            ),
            Holds(_task_queue_timing, "timing statistics are consistent"),
        ),
        timeout=120.0,
    ),
    "full-on-data-streaming-pipeline": Expect(
        # every item is told before the stop message, and each worker handles its messages in
        # order: all 100 are processed, round-robin 34/33/33
        stdout=(
            InOrder(
                L("Starting pipeline..."),
                L("Pipeline Results:"),
                L("  Total processed: 100"),
                R(rf"  Total time: {SECONDS2}"),
                R(rf"  Mean per item: {SECONDS}"),
                L("Worker Stats:"),
                L("  Worker 0: 34 items"),
                L("  Worker 1: 33 items"),
                L("  Worker 2: 33 items"),
                L("Sample Results:"),
                *[
                    R(
                        r"  (item_(\d+)) -> ([0-9a-f]{16}) \(worker (\d)\)",
                        _pipeline_sample,
                        "output is the item's 500-round hash chain, worker == k % 3",
                    )
                    for _ in range(5)
                ],
            ),
        ),
        timeout=120.0,
    ),
}

# ------------------------------------------------------------------------------------------

EXPECTED: dict[str, Expect] = {
    **BASIC_EXPECTED,
    **POOL_EXPECTED,
    **SHARE_EXPECTED,
    **PIPE_EXPECTED,
    **TELL_LISTEN_EXPECTED,
    **AUTORECONNECT_EXPECTED,
    **FULL_EXPECTED,
}

ALL_SECTIONS: tuple[str, ...] = (
    BASIC,
    POOL,
    SHARE,
    PIPE,
    TELL_LISTEN,
    AUTORECONNECT,
    FULL_TASK_QUEUE,
    FULL_PIPELINE,
)
