"""Run every ``bench/*_bench.py`` in turn and print their tables (``make bench``).

    python bench/run_all.py                 # every bench, full size
    python bench/run_all.py --quick         # every bench with --quick (tiny counts)
    python bench/run_all.py process         # only benches whose file name contains "process"
    python bench/run_all.py --list          # what would run
    python bench/run_all.py -- --starts 20  # everything after -- goes to each bench

This script first re-executes itself under ``.venv-bench`` (next to ``.venv``), creating it
when it is missing (``python -m venv``, then ``pip install -e .[dask]`` and ``-r
bench/requirements.txt``) and re-installing when ``bench/requirements.txt`` or
``pyproject.toml`` changed. The competitors (suitkaise from PyPI, ...) live only there.
Set ``SUITKAISE_BENCH_NO_VENV=1`` to run in the current interpreter instead.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def discover() -> list[Path]:
    return sorted(C.BENCH_DIR.glob("*_bench.py"))


def main() -> int:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("filters", nargs="*", help="run only benches whose name contains one")
    ap.add_argument("--quick", action="store_true", help="pass --quick to every bench")
    ap.add_argument("--list", action="store_true", help="list the benches and exit")
    args = ap.parse_args(argv)

    scripts = [s for s in discover() if not args.filters or any(f in s.name for f in args.filters)]
    if args.list:
        for s in scripts:
            print(s.relative_to(C.ROOT))
        return 0
    if not scripts:
        print(f"no bench matches {args.filters}", file=sys.stderr)
        return 2

    C.ensure_bench_venv(__file__)  # no return unless we are in .venv-bench already

    passthrough = (["--quick"] if args.quick else []) + extra
    print(f"# suitkaise_nb benchmarks\n\n{C.machine_line()}; interpreter {sys.executable}\n")
    failed: list[str] = []
    for script in scripts:
        rel = script.relative_to(C.ROOT)
        cmd = [sys.executable, str(rel), *passthrough]
        where = C.BENCH_VENV.name if C.in_bench_venv() else sys.prefix
        shown = " ".join(["python", str(rel), *passthrough])
        print(f"## {script.stem}\n\n`{shown}` (in {where})\n")
        sys.stdout.flush()
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=C.ROOT).returncode
        took = time.perf_counter() - t0
        if rc != 0:
            failed.append(f"{rel} (exit {rc})")
        print(f"\n_{rel}: {took:.1f} s, exit {rc}_\n")
        sys.stdout.flush()
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
