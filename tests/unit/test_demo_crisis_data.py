"""The crisis demo's aggregate is published, under the noise of the round, in nearly every
draw: the disclosure rules read the whole horizon, so the demo's posts and its entry's
concentration scale are chosen for it. 200 draws of the round's Gaussian noise (the
round's own variances per segment) on the true sums the demo's posts give."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np

from governance.catalogue import read_catalogue
from scfed.catalogue import node_vector
from scfed.picture import release, round_of
from tools import demo_data

START = date(2026, 12, 7)
DRAWS = 200


def test_the_crisis_entry_publishes_the_posted_need_and_spare_capacity(tmp_path: Path) -> None:
    catalogue = tmp_path / "catalogue.toml"
    text = demo_data.catalogue().replace('rho_cap = "0.5"', 'rho_cap = "1"')
    catalogue.write_text(text + demo_data.crisis_entry(), encoding="utf-8")
    entry = read_catalogue(catalogue, "scfed.test/crisis", 1).entry(demo_data.CRISIS_ENTRY)
    assert entry is not None
    weeks = {START + timedelta(weeks=w) for w in demo_data.CRISIS_WEEKS}
    total = np.zeros(0, dtype=np.int64)
    for _, side, quantity in demo_data.POSTS:
        component = "need" if side == "need" else "spare"

        def weekly(metric: str, asked: object, c: str = component, q: int = quantity) -> dict[
            tuple[str, date], Decimal
        ]:  # fmt: skip
            return {(demo_data.KYUSHU_ANALOG, w): Decimal(q) for w in weeks} if metric == c else {}

        vector = node_vector(entry, START, weekly)
        total = vector if total.size == 0 else total + vector
    firms = len(demo_data.FIRMS)
    planned = entry.planned(firms)
    exact = round_of(entry, START, total, firms, planned=planned)
    rng = np.random.default_rng(20261207)
    dim = total.size // 3
    published, cells, short = 0, 0, 0
    for _ in range(DRAWS):
        noise = np.concatenate([rng.normal(0.0, np.sqrt(v), dim) for v in exact.variances])
        noisy = round_of(entry, START, total + np.round(noise).astype(np.int64), firms,
                         planned=planned)  # fmt: skip
        shown = release(entry, [noisy])
        out = sum(cell.estimate is not None for cell in shown)
        published, cells = published + out, cells + len(shown)
        short += out < len(shown) // 2  # the demo's own check would fail
    assert published / cells >= 0.99, f"{published} of {cells} cells published"
    assert short == 0, f"{short} of {DRAWS} draws would fail the demo"
