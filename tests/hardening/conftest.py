"""Fixtures shared by the hardening tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.seed.runner import write_kernelspec


@pytest.fixture(scope="module")
def spec_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private kernelspec directory whose only kernel runs this interpreter."""
    return write_kernelspec(tmp_path_factory.mktemp("jupyter"))
