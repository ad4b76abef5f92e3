"""The documentation site builds in strict mode (any mkdocs warning fails), as ``make docs``.

The notebooks are rendered without executing them (mkdocs-jupyter); the API reference is
generated from the docstrings by mkdocstrings. Needs the ``docs`` extra.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ._util import ROOT, notebooks

pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    for module in ("mkdocs", "mkdocs_jupyter", "mkdocstrings_handlers.python", "material"):
        pytest.importorskip(module, reason="pip install -e '.[docs]' (make docs installs it)")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", SKNB_DOCS_EXECUTE="false")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    warnings = [line for line in log.splitlines() if line.startswith("WARNING")]
    assert not warnings, "\n".join(warnings)

    for page in ("index.html", "design/index.html", "reliability/index.html"):
        assert (site / page).is_file(), page
    for nb in notebooks():
        assert (site / "notebooks" / nb.stem / "index.html").is_file(), nb.name
    api = (site / "api" / "processing" / "index.html").read_text(encoding="utf-8")
    for name in ("Skprocess", "Pool", "Share", "Pipe", "autoreconnect", "ProcessTimeoutError"):
        assert f'id="suitkaise_nb.processing.{name}"' in api, name
    quickstart = (site / "notebooks" / "quickstart" / "index.html").read_text(encoding="utf-8")
    assert 'href="../skprocess/"' in quickstart  # links between notebooks point at pages
    assert "performance.md" not in (site / "index.html").read_text(encoding="utf-8")
