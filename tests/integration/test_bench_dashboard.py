"""``scfed bench dashboard`` at a small size: every page it times answers over loopback,
the crisis page among them, and its table says what it measured."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.bench_dashboard import ENTRIES, bench, table

pytestmark = pytest.mark.integration


def test_the_dashboard_benchmark_times_every_page(tmp_path: Path) -> None:
    count, floor, startup, pages = bench(tmp_path, commodities=3, weeks=4)
    assert [p.path for p in pages][-2:] == ["/crisis", "/?lang=ja"]
    assert all(p.kilobytes > 0.5 and p.warm_s > 0 for p in pages), pages
    assert startup > 0
    assert floor > 0
    shown = table(count, 3, floor, startup, pages)
    assert f"{count} releases of 3 commodities ({ENTRIES} entries, weekly)" in shown
    assert "| `/crisis` |" in shown
