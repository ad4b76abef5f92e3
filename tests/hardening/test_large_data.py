"""Large data: 100 MB through tell()/listen() both ways (bytes and a numpy array), a Pool map
over 20 items of 50 MB with the peak RSS of the parent and of each worker sampled in a
thread, and a 100 MB object stored in a Share and read back.

Memory bounds for the pool (numpy items, 50 MB each; measured on the CI machine, see
``docs/reliability.md``):

* ``map`` over a generator: the parent holds only the items in flight. Measured: about 8 items
  above the idle RSS with 2 workers (a chunk is kept until its results arrive, so that a dead
  worker's chunks can go back to the job; each worker has two chunks in flight, and the input
  is pulled a little ahead). Bound: 12 items.
* ``map`` over a list: the list itself (20 items) plus at most 4 items more (arrays travel as
  out-of-band pickle buffers: sent from the array's own memory, no copy). Measured: ~1 item.
* each worker: its idle RSS plus at most 7 items. Measured: up to 5: the first chunks of a
  call carry 4 items (before the item size is known, see ``docs/design.md`` §7), and the next
  chunk is received while one runs; once sizes are known a chunk holds one 50 MB item.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import psutil
import pytest

from suitkaise_nb.processing import Pool, Share

from .measure import MB, PeakRSS
from .procs import Producer, Reflector, big_item_size, digest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

HUNDRED_MB = 100 * 1024 * 1024
ITEM = 50 * 1024 * 1024
ITEMS = 20


def _blob(kind: str) -> Any:
    rng = np.random.default_rng(11)
    if kind == "bytes":
        return rng.bytes(HUNDRED_MB)
    return rng.standard_normal(HUNDRED_MB // 8)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("kind", ["bytes", "ndarray"])
def test_tell_100mb_to_the_child_and_back(kind: str):
    blob = _blob(kind)
    want = digest(blob)
    p = Reflector()
    p.start()
    try:
        t0 = time.monotonic()
        p.tell(blob)
        assert p.listen(60) == ("digest", want)  # what the child received
        back = p.listen(60)  # the child's copy, sent back
        took = time.monotonic() - t0
        assert back is not None and _same(back, blob)
        assert digest(back) == want
        print(f"100 MB {kind}: parent -> child -> parent in {took:.2f} s")
        p.tell("stop")
        assert p.result() == 1
    finally:
        if p.is_alive:
            p.kill()


@pytest.mark.parametrize("kind", ["bytes", "ndarray"])
def test_tell_100mb_built_in_the_child(kind: str):
    p = Producer(HUNDRED_MB, kind)
    p.start()
    try:
        tag, reported = p.listen(60)
        obj = p.listen(60)
        assert tag == "digest" and obj is not None
        assert digest(obj) == reported
        assert (obj.nbytes if kind == "ndarray" else len(obj)) == HUNDRED_MB
        assert p.result() == "sent"
    finally:
        if p.is_alive:
            p.kill()


def _items() -> Iterator[np.ndarray]:
    for i in range(ITEMS):
        yield np.full(ITEM, i, dtype=np.uint8)


def _rss(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / MB


@pytest.mark.parametrize("source", ["generator", "list"])
def test_pool_map_over_20_items_of_50mb(source: str):
    item_mb = ITEM / MB
    with Pool(2) as pool:
        assert pool.map(big_item_size, [b"warm"]) == [(4, ord("w"))]
        workers = sorted(pool.model.workers)
        parent_idle = _rss(os.getpid())
        items: Any = _items() if source == "generator" else list(_items())
        held = ITEMS * item_mb if source == "list" else 0.0  # the input the caller holds
        worker_idle = {pid: _rss(pid) for pid in workers}
        roles: dict[str, Any] = {"parent": lambda: [os.getpid()]}
        for pid in workers:
            roles[pid] = lambda pid=pid: [pid]
        t0 = time.monotonic()
        with PeakRSS(roles, interval=0.002) as peak:
            out = pool.map(big_item_size, items)
        took = time.monotonic() - t0
        assert out == [(ITEM, i) for i in range(ITEMS)]
        assert sorted(pool.model.workers) == workers  # no worker died or was replaced
        del items

        parent_extra = (peak.peak["parent"] - parent_idle - held) / item_mb
        worker_extra = {pid: (peak.peak[pid] - worker_idle[pid]) / item_mb for pid in workers}
        print(
            f"\npool map over {ITEMS} x 50 MB ({source}) in {took:.2f} s: parent idle "
            f"{parent_idle:.0f} MiB, peak {peak.peak['parent']:.0f} MiB "
            f"(= idle + input held {held:.0f} + {parent_extra:.1f} items); workers "
            + ", ".join(
                f"idle {worker_idle[pid]:.0f} peak {peak.peak[pid]:.0f} MiB "
                f"(+{worker_extra[pid]:.1f} items)"
                for pid in workers
            )
        )
        assert parent_extra <= (12 if source == "generator" else 4)
        for pid in workers:
            assert worker_extra[pid] <= 7


@pytest.mark.parametrize("kind", ["bytes", "ndarray"])
def test_share_holds_a_100mb_object(kind: str):
    blob = _blob(kind)
    share = Share()
    try:
        t0 = time.monotonic()
        share.big = blob
        back = share.big
        took = time.monotonic() - t0
        assert _same(back, blob)
        share.big = None  # replaced: the server lets it go
        assert share.big is None
        print(f"Share: 100 MB {kind} stored and read back in {took:.2f} s")
    finally:
        share.exit()
