"""Shared helpers for the ``bench/*_bench.py`` scripts.

* :func:`ensure_bench_venv` re-executes the calling script under ``.venv-bench`` (created on
  first use: ``pip install -e .[dask]`` plus ``bench/requirements.txt``), so the competitors we
  compare against (suitkaise from PyPI, ...) never become project dependencies.
* :func:`median_of`, :func:`percentile`, :func:`summary` for timings.
* :func:`markdown_table` and the ``fmt_*`` helpers for the printed tables.
"""

from __future__ import annotations

import hashlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
REQUIREMENTS = BENCH_DIR / "requirements.txt"
# SUITKAISE_BENCH_VENV overrides the location (used to test the bootstrap without touching
# the real one).
BENCH_VENV = Path(os.environ.get("SUITKAISE_BENCH_VENV", ROOT / ".venv-bench")).absolute()
_STAMP = ".suitkaise-bench-stamp"
# the project is installed with the extras its own benches need (dask_bench: distributed)
PROJECT_EXTRAS = "[dask]"
_REEXEC_FLAG = "SUITKAISE_BENCH_REEXEC"


# -- the bench environment ---------------------------------------------------------------------
def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _stamp_text() -> str:
    """What the bench venv was built from; a change triggers a re-install."""
    h = hashlib.sha256(PROJECT_EXTRAS.encode())
    for f in (REQUIREMENTS, ROOT / "pyproject.toml"):
        h.update(f.read_bytes() if f.exists() else b"")
    return h.hexdigest()


def in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == BENCH_VENV.resolve()


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def prepare_bench_venv() -> Path:
    """Create ``.venv-bench`` if missing and (re)install when requirements changed."""
    py = _venv_python(BENCH_VENV)
    stamp = BENCH_VENV / _STAMP
    want = _stamp_text()
    if py.exists() and stamp.exists() and stamp.read_text() == want:
        return py
    if not py.exists():
        base = getattr(sys, "_base_executable", None) or sys.executable
        _log(f"creating {BENCH_VENV} with {base}")
        subprocess.run([base, "-m", "venv", str(BENCH_VENV)], check=True)
    project = f"{ROOT}{PROJECT_EXTRAS}"
    _log(f"installing {project} (editable) and {REQUIREMENTS.name} into {BENCH_VENV}")
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-e", project, "-r", str(REQUIREMENTS)], check=True, cwd=ROOT)
    stamp.write_text(want)
    return py


def ensure_bench_venv(script: str) -> None:
    """Re-exec ``script`` (with the same arguments) under the bench venv unless already in it.

    ``SUITKAISE_BENCH_NO_VENV=1`` runs in the current interpreter instead (competitors that
    are not installed are then reported as missing).
    """
    if in_bench_venv() or os.environ.get("SUITKAISE_BENCH_NO_VENV") == "1":
        return
    if os.environ.get(_REEXEC_FLAG) == "1":
        _log(f"re-exec into {BENCH_VENV} did not take; running in {sys.prefix}")
        return
    py = prepare_bench_venv()
    os.environ[_REEXEC_FLAG] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(str(py), [str(py), str(Path(script).resolve()), *sys.argv[1:]])


# -- statistics ---------------------------------------------------------------------------------
def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between ranks (numpy's default)."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": statistics.median(values) if values else float("nan"),
        "p90": percentile(values, 90),
        "min": min(values) if values else float("nan"),
        "max": max(values) if values else float("nan"),
    }


def median_of(fn: Callable[[], object], n: int = 5) -> float:
    """Median wall time (seconds, ``perf_counter``) of ``n`` calls of ``fn``."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# -- formatting -------------------------------------------------------------------------------
def fmt_s(seconds: float | None) -> str:
    """A duration with a unit that keeps 2-3 significant digits."""
    if seconds is None or seconds != seconds:
        return "n/a"
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e9:.0f} ns"


def fmt_rate(per_s: float | None) -> str:
    if per_s is None or per_s != per_s:
        return "n/a"
    return f"{per_s:,.0f}/s"


def fmt_ratio(x: float | None) -> str:
    if x is None or x != x:
        return "n/a"
    return f"{x:.2f}x"


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = ""
) -> str:
    """A GitHub markdown table; ``align`` is one char per column: l, r or c (default l)."""
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    seps = [marks.get(align[i] if i < len(align) else "l", "---") for i in range(len(headers))]
    lines = [
        "| " + " | ".join(str(h) for h in headers) + " |",
        "|" + "|".join(seps) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def machine_line() -> str:
    cpus = os.cpu_count()
    try:
        load = ", load avg {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = ""
    return (
        f"Python {platform.python_version()} on {platform.machine()} {platform.system()}, "
        f"{cpus} CPUs{load}"
    )
