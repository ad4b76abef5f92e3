"""The soak of ``test_soak.py`` with the live views on (the default in a kernel): fds,
threads, children and RSS stay flat. Quick work is shown as HTML only, and views dropped from
the kernel's registry close their widgets (their displays keep the final HTML), so no widget
model or comm piles up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_soak import (
    FDS_HEADROOM,
    RSS_GROWTH_MB,
    THREADS_HEADROOM,
    _soak_in_kernel,
    _table,
)

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


@pytest.mark.timeout(600)
def test_soak_with_live_views_keeps_rss_flat(tmp_path: Path):
    fig = _soak_in_kernel(tmp_path, views=True, procs=500, pools=200)
    print(
        f"\nsoak with views: {fig['proc_cycles']} Skprocess cycles in "
        f"{fig['process_seconds']} s, {fig['pool_cycles']} Pool cycles in "
        f"{fig['pool_seconds']} s\n" + _table(fig)
    )
    warm, end = fig["warm"], fig["end"]
    assert end["fds"] <= warm["fds"] + FDS_HEADROOM
    assert end["threads"] <= warm["threads"] + THREADS_HEADROOM
    assert end["children"] <= warm["children"]
    assert end["rss_mb"] - warm["rss_mb"] <= RSS_GROWTH_MB, _table(fig)
