"""The Dask backend in a real Jupyter kernel: a LocalCluster started in a cell, and a function
and an Skprocess class typed into cells (they exist only in the kernel's ``__main__``) mapped
on its workers."""

from __future__ import annotations

import pytest

from ..notebook.kernel import execute, outputs, stdout

pytest.importorskip("distributed")

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]

CELLS = [
    # 0: the cluster
    "import os\n"
    "from distributed import Client, LocalCluster\n"
    "from suitkaise_nb.processing import Pool, Skprocess\n"
    "cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,\n"
    "                       host='127.0.0.1', dashboard_address=None)\n"
    "client = Client(cluster)\n"
    "worker_pids = set(client.run(os.getpid).values())\n"
    "print('workers', len(worker_pids))",
    # 1: a function typed into a cell
    "OFFSET = 7\n"
    "def shifted_square(x):\n"
    "    return x * x + OFFSET\n"
    "def where(x):\n"
    "    return os.getpid()",
    # 2: an Skprocess class typed into a cell
    "class Tripler(Skprocess):\n"
    "    def __init__(self, n):\n"
    "        self.n = n\n"
    "        self.acc = 0\n"
    "        self.process_config.runs = 3\n"
    "    def __run__(self):\n"
    "        self.acc += self.n\n"
    "    def __result__(self):\n"
    "        return (self.n, self.acc)",
    # 3: mapped on the cluster, with the pool's view
    "pool = Pool(client=client)\n"
    "squares = pool.map(shifted_square, range(50))\n"
    "tripled = pool.map(Tripler, range(6))\n"
    "pids = set(pool.map(where, range(20)))\n"
    "print('squares', squares == [x * x + 7 for x in range(50)])\n"
    "print('tripled', tripled)\n"
    "print('on the workers', bool(pids) and pids <= worker_pids and os.getpid() not in pids)",
    # 4: star, unordered, and an error raised in a cell-defined function
    "print('star', sorted(pool.star().unordered_map(lambda a, b: a * b, [(2, 3), (4, 5)])))\n"
    "def boom(x):\n"
    "    if x == 4:\n"
    "        raise ValueError(f'bad {x}')\n"
    "    return x\n"
    "try:\n"
    "    pool.map(boom, range(8))\n"
    "except RuntimeError as e:\n"
    "    print('error', type(e).__name__, isinstance(e, ValueError), e.item_index)\n"
    "    print('remote tb has boom', 'in boom' in e.remote_traceback)",
    # 5: closed
    "pool.close()\nclient.close()\ncluster.close()\nprint('closed', cluster.status.name)",
]


def test_cell_defined_function_and_skprocess_class_on_a_local_cluster(tmp_path):
    nb = execute(CELLS, tmp_path, timeout=90)
    assert stdout(nb, 0).strip() == "workers 2"
    out = stdout(nb, 3).splitlines()
    assert out == [
        "squares True",
        "tripled [(0, 0), (1, 3), (2, 6), (3, 9), (4, 12), (5, 15)]",
        "on the workers True",
    ]
    views = [
        o for o in outputs(nb, 3, "display_data") if "sknb-pool" in o.data.get("text/html", "")
    ]
    assert views, "no Pool view in the cell"
    html = views[-1].data["text/html"]
    assert "dask" in html and "Pool" in html
    assert stdout(nb, 4).splitlines() == [
        "star [6, 20]",
        "error ValueError True 4",
        "remote tb has boom True",
    ]
    assert stdout(nb, 5).strip() == "closed closed"
