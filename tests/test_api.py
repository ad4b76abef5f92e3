"""The public surface: facades re-export exactly __all__, and the core stays IPython-free."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import suitkaise_nb
from suitkaise_nb import events, processing, timing

SPEC_PROCESSING = {
    "Skprocess",
    "Pipe",
    "autoreconnect",
    "ProcessTimers",
    "ProcessError",
    "PreRunError",
    "RunError",
    "PostRunError",
    "OnFinishError",
    "ResultError",
    "ErrorHandlerError",
    "ProcessTimeoutError",
    "ResultTimeoutError",
    "PipeEndpointError",
}
SPEC_TIMING = {
    "Sktimer",
    "TimerStats",
    "TimeThis",
    "timethis",
    "time",
    "sleep",
    "elapsed",
    "clear_global_timers",
}


@pytest.mark.parametrize("module", [processing, timing, events])
def test_all_is_sorted_and_exactly_the_public_names(module):
    public = {n for n in vars(module) if not n.startswith("_")} - {"annotations"}
    public = {n for n in public if not isinstance(getattr(module, n), type(sys))}
    assert module.__all__ == sorted(module.__all__)
    assert set(module.__all__) == public


def test_spec_names_are_exported():
    assert SPEC_PROCESSING <= set(processing.__all__)
    assert SPEC_TIMING <= set(timing.__all__)


def test_public_classes_show_their_public_module():
    assert processing.Skprocess.__module__ == "suitkaise_nb.processing"
    assert processing.RunError.__module__ == "suitkaise_nb.processing"
    assert timing.Sktimer.__module__ == "suitkaise_nb.timing"
    assert "suitkaise_nb.processing.RunError" in repr(processing.RunError)


def test_from_package_import_timing_and_config():
    from suitkaise_nb import timing as t

    assert t is timing
    assert suitkaise_nb.config.start_method == "auto"
    with pytest.raises(ValueError, match="start_method"):
        suitkaise_nb.config.start_method = "vfork"
    with pytest.raises(AttributeError, match="options are"):
        suitkaise_nb.config.colour = "red"


def test_importing_the_core_loads_no_notebook_modules_and_starts_nothing():
    code = (
        "import sys, threading, json\n"
        "import suitkaise_nb.processing, suitkaise_nb.timing, suitkaise_nb.events\n"
        "mods = ('IPython', 'ipykernel', 'ipywidgets', 'matplotlib')\n"
        "bad = [m for m in mods if m in sys.modules]\n"
        "print(json.dumps({'bad': bad, 'threads': threading.active_count()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    assert info == {"bad": [], "threads": 1}
