"""Soak: 500 Skprocess start/run cycles and 200 Pool create/map/close cycles in ONE Jupyter
kernel; the kernel's open fds, threads, child processes and RSS stay flat.

The cycles run in the kernel (``soak.soak()``, imported by the cell); the kernel prints its
figures as JSON and this test asserts the bounds and prints a table of them (``-s`` shows it).

Live views are switched off here (``config.auto_views = False``): this test measures the
engine. With views on, every process and pool shows a widget that is never closed, so the
kernel's RSS grows by about 70 KB per view (see ``docs/reliability.md``).

Bounds (measured on the 2-core CI machine: fds, threads and children identical after the
warm-up and at the end; RSS within ±3 MiB):

* open fds: at most 3 more than after the warm-up (a spare's channel may be in flight);
* OS threads: at most 2 more; the same Python thread names;
* live descendants: no more than after the warm-up (the zygote and its warm spare);
* RSS: at most 20 MiB above the warm-up figure. 700 cycles would add 20 MiB with a leak of
  ~30 KB per cycle: one kept result, model or channel buffer per cycle would show.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.notebook.kernel import execute, stdout

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

FDS_HEADROOM = 3
THREADS_HEADROOM = 2
RSS_GROWTH_MB = 20.0


def _soak_in_kernel(tmp_path: Path, views: bool, procs: int, pools: int) -> dict:
    cell = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import suitkaise_nb\n"
        f"suitkaise_nb.config.auto_views = {views}\n"
        "from tests.hardening.soak import soak\n"
        f"print('SOAK ' + json.dumps(soak({procs}, {pools})))"
    )
    nb = execute([cell], tmp_path, timeout=300)
    lines = [ln for ln in stdout(nb, 0).splitlines() if ln.startswith("SOAK ")]
    assert lines, stdout(nb, 0)
    return json.loads(lines[0][5:])


def _table(fig: dict) -> str:
    rows = [("after warm-up", fig["warm"])]
    rows += [(f"{kind} {n}", f) for kind, n, f in fig["samples"]]
    rows.append(("end", fig["end"]))
    lines = [f"{'':>14} {'fds':>5} {'threads':>8} {'children':>9} {'rss MiB':>8} {'widgets':>8}"]
    for name, f in rows:
        lines.append(
            f"{name:>14} {f['fds']:>5} {f['threads']:>8} {f['children']:>9} "
            f"{f['rss_mb']:>8} {f['widgets']:>8}"
        )
    return "\n".join(lines)


@pytest.mark.timeout(400)
def test_soak_500_processes_and_200_pools_in_one_kernel(tmp_path: Path):
    fig = _soak_in_kernel(tmp_path, views=False, procs=500, pools=200)
    print(
        f"\nsoak: {fig['proc_cycles']} Skprocess cycles in {fig['process_seconds']} s, "
        f"{fig['pool_cycles']} Pool cycles in {fig['pool_seconds']} s\n" + _table(fig)
    )
    warm, end = fig["warm"], fig["end"]
    for _kind, _n, f in [*fig["samples"], ("end", 0, end)]:
        assert f["fds"] <= warm["fds"] + FDS_HEADROOM, _table(fig)
        assert f["threads"] <= warm["threads"] + THREADS_HEADROOM, _table(fig)
        assert f["children"] <= warm["children"], _table(fig)
    assert end["py_threads"] == warm["py_threads"]
    assert end["rss_mb"] - warm["rss_mb"] <= RSS_GROWTH_MB, _table(fig)
