"""``scfed bench picture`` on a short year: the real node vector, noise and picture code run,
and what it tallies is what it claims to measure."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import bench_picture

FRED = Path(__file__).resolve().parents[3] / "shared" / "data" / "fred"


@pytest.mark.skipif(not FRED.is_dir(), reason="the shared FRED series are not beside the repo")
def test_a_short_run_publishes_lights_and_counts_why_cells_are_held() -> None:
    tally = bench_picture.measure(FRED, draws=1, releases=30, seed=2026)
    summary = tally.summary()
    lights = summary["lights 10+ contributors"]
    assert isinstance(lights, dict)
    assert lights["published"] > 100
    assert lights["right"] > 0.85  # at the default budget, from 30 weekly releases
    squeeze = summary["squeeze red (all)"]
    assert isinstance(squeeze, dict)
    assert squeeze["truly red"] > 0
    assert tally.cells == 30 * bench_picture.HORIZON * 3 * 18
    assert any(reason.startswith("estimated contributors below 5") for reason in tally.suppressed)
    table = tally.table(1.0)
    assert "| lights right, 10+ contributors |" in table
    assert "squeeze red in its red weeks" in table


def test_the_entry_fits_a_default_node() -> None:
    if not FRED.is_dir():
        pytest.skip("the shared FRED series are not beside the repo")
    from collections import Counter

    import numpy as np

    from scfed.dp.ledger import Budget
    from scfed.policy import check_plan
    from scfed.wire.policy import Policy
    from tools.picture_data import federation

    fed = federation(FRED, np.random.default_rng(2026))
    largest = max(Counter(f.group for f in fed.firms).values())
    entry = bench_picture.entry_for(fed, largest)
    policy = Policy("bench", 1, "2026.1", "0.5", "year", (entry,))
    plan = check_plan(policy, [entry.name], Budget(), largest)
    assert plan.total <= Budget().cap
