"""What ``scfed coordinator round start`` prints: noisy sums with honest intervals."""

from __future__ import annotations

import numpy as np

from scfed.cli.coordinator import result_table
from scfed.dp.distribution import halfwidth
from scfed.dp.params import MAGNITUDE, Noise
from scfed.wire.messages import Result


def _result(sums: list[int], survivors: int) -> Result:
    members = tuple(f"node-{i}" for i in range(survivors))
    return Result(bytes(16), bytes(32), members, np.array(sums, dtype="<i8").tobytes())


def test_each_cell_carries_its_interval_in_the_figures_unit() -> None:
    noise = Noise("40", 1, MAGNITUDE, 10, "0.5", 10**6)  # sigma_l^2 = 800 at n_min 3
    half = halfwidth(800, 4)
    text = result_table(_result([1000, -7], 4), ["demand/a", "stock/b"], noise, 3)
    lines = text.splitlines()
    assert lines[0].startswith("noise: 4 shares of N_Z(0, 800) per cell, sd 28.")
    assert f"95% interval +/- {half / 2:,.6g} (grid unit 0.5)" in lines[0]
    demand = lines[3].split()
    assert demand[:2] == ["demand/a", "500"]  # 1000 grid units of 0.5
    assert " ".join(demand[2:]) == f"[{(1000 - half) / 2:,.6g}, {(1000 + half) / 2:,.6g}]"
    assert lines[4].split()[:2] == ["stock/b", "-3.5"]
    assert lines[-1] == "4 contributors: node-0, node-1, node-2, node-3"
