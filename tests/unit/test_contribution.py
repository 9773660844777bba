"""A node's contribution: figures on the grid, bounded, clipped exactly, plus noise."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scfed.dp.contribution import check_plausible, clip_l2, contribution, to_grid
from scfed.dp.params import FIRM, MAGNITUDE, Noise
from scfed.dp.sampler import Keystream
from scfed.errors import LocalProtocolError


@pytest.mark.parametrize(
    ("value", "grid", "steps"),
    [
        (Decimal("1250"), Fraction(1), 1250),
        (Decimal("1250.99"), Fraction(1), 1250),
        (Decimal("-1250.99"), Fraction(1), -1250),  # toward zero, not floor
        (Decimal("0.0049"), Fraction(1, 1000), 4),
        (Decimal("-7"), Fraction(5, 2), -2),
        (Decimal("999"), Fraction(1000), 0),
        (12, Fraction(3), 4),
    ],
)
def test_to_grid_truncates_toward_zero(value: Decimal | int, grid: Fraction, steps: int) -> None:
    assert to_grid([value], grid).tolist() == [steps]


def test_to_grid_refuses_a_value_beyond_64_bits() -> None:
    with pytest.raises(LocalProtocolError, match="does not fit"):
        to_grid([Decimal("1e19")], Fraction(1))


def test_the_plausibility_bound_names_the_first_bad_cell() -> None:
    check_plausible(np.array([-10, 10], dtype=np.int64), 10, ["a", "b"])
    with pytest.raises(LocalProtocolError, match=r"b: value 11 .* \(2 cells in all\)"):
        check_plausible(np.array([0, 11, -12], dtype=np.int64), 10, ["a", "b", "c"])
    extreme = np.array([np.iinfo(np.int64).min], dtype=np.int64)  # np.abs of it is negative
    with pytest.raises(LocalProtocolError):
        check_plausible(extreme, 10, ["a"])


@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=30), st.integers(1, 2**30))
def test_clipping_is_exact(values: list[int], norm: int) -> None:
    x = np.array(values, dtype=np.int64)
    clipped = clip_l2(x, norm)
    squares = sum(int(v) ** 2 for v in clipped)
    assert squares <= norm * norm
    assert np.all(np.abs(clipped) <= np.abs(x))
    assert np.all(np.sign(clipped) * np.sign(x) >= 0)
    if sum(v * v for v in values) <= norm * norm:
        assert clipped.tolist() == values


def test_clipping_scales_every_cell_by_the_same_factor() -> None:
    assert clip_l2(np.array([3000, -4000, 0], dtype=np.int64), 1000).tolist() == [600, -800, 0]


def _noise(unit: str, bound: int) -> Noise:
    return Noise("20", 1, unit, bound, "1", 10**6)  # n_min 3: sigma_l^2 = 200


def test_the_contribution_adds_noise_of_the_announced_variance() -> None:
    x = np.full(20_000, 500, dtype=np.int64)
    noisy = contribution(x, _noise(MAGNITUDE, 10), n_min=3, cells=[], source=Keystream(bytes(32)))
    noise = (noisy - x).astype(np.float64)
    assert abs(noise.mean()) < 0.5  # sd of the mean: 0.1
    assert 190 < noise.var() < 210  # sd of the variance estimate: 2


def test_firm_level_contributions_are_clipped_before_the_noise() -> None:
    x = np.array([30_000, 40_000] * 500, dtype=np.int64)
    noisy = contribution(x, _noise(FIRM, 10_000), n_min=3, cells=[], source=Keystream(bytes(32)))
    clipped = clip_l2(x, 10_000)
    assert np.all(np.abs(noisy - clipped) < 20 * 200**0.5)
    assert np.all(np.abs(noisy - x) > 1000)  # far from the unclipped figures


def test_firm_level_privacy_refuses_negative_figures() -> None:
    x = np.array([5, -1], dtype=np.int64)
    with pytest.raises(LocalProtocolError, match="b: value -1 is negative"):
        contribution(x, _noise(FIRM, 10), n_min=3, cells=["a", "b"], source=Keystream(bytes(32)))
