"""Unit tests for scfed.dp.distribution: sums of discrete Gaussians and derived error bars."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from scfed.dp.distribution import (
    Estimate,
    cell_estimate,
    difference,
    halfwidth,
    noise_sd,
    pmf,
    ratio,
    sum_pmf,
    support_radius,
    traffic_light,
)
from scfed.errors import PrivacyParameterError

Z95 = 1.959963984540054


def _coverage(sigma_l2: int, m: int, h: int) -> float:
    offset, probs = sum_pmf(sigma_l2, m)
    return float(np.sum(probs[offset - h : offset + h + 1]))


# ---- sum_pmf ----


@pytest.mark.parametrize(("sigma_l2", "m"), [(4, 1), (4, 3), (50, 3), (1000, 7), (10**6, 40)])
def test_sum_pmf_is_a_symmetric_distribution(sigma_l2: int, m: int) -> None:
    offset, probs = sum_pmf(sigma_l2, m)
    assert len(probs) == 2 * offset + 1
    assert np.all(probs >= 0)
    assert float(np.sum(probs)) == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_array_equal(probs, probs[::-1])
    assert int(np.argmax(probs)) == offset


@pytest.mark.parametrize("sigma_l2", [4, 50])
def test_sum_pmf_matches_direct_convolution(sigma_l2: int) -> None:
    radius = support_radius(sigma_l2)
    single = pmf(sigma_l2, np.arange(-radius, radius + 1, dtype=np.int64))
    direct = np.convolve(np.convolve(single, single), single)  # offset 3 * radius
    offset, probs = sum_pmf(sigma_l2, 3)
    assert offset <= 3 * radius
    window = direct[3 * radius - offset : 3 * radius + offset + 1]
    np.testing.assert_allclose(probs, window, rtol=0, atol=1e-15)
    assert float(np.sum(direct)) - float(np.sum(window)) < 1e-60


def test_sum_pmf_of_one_draw_is_the_pmf() -> None:
    offset, probs = sum_pmf(9, 1)
    np.testing.assert_array_equal(probs, pmf(9, np.arange(-offset, offset + 1, dtype=np.int64)))


def test_sum_pmf_is_fast() -> None:
    start = time.perf_counter()
    offset, probs = sum_pmf(10**6, 1000)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0  # about 0.15 s on a 2-core machine; slack for loaded CI
    assert float(np.sum(probs)) == pytest.approx(1.0)
    assert offset > 22 * math.sqrt(1000 * 10**6)


@pytest.mark.parametrize(("sigma_l2", "m"), [(0, 1), (4, 0), (True, 2), (4, -3)])
def test_sum_pmf_refuses_bad_input(sigma_l2: int, m: int) -> None:
    with pytest.raises(PrivacyParameterError, match="positive int"):
        sum_pmf(sigma_l2, m)


# ---- noise_sd and halfwidth ----


def test_noise_sd_is_just_below_the_nominal() -> None:
    # The discrete Gaussian's variance is below sigma^2, visibly so for small sigma.
    assert noise_sd(1, 1) ** 2 < 1.0
    assert noise_sd(1, 1) ** 2 == pytest.approx(1.0, abs=1e-6)
    for sigma_l2, m in ((10**4, 5), (10**6, 100)):
        variance = noise_sd(sigma_l2, m) ** 2
        assert variance <= m * sigma_l2 * (1 + 1e-12)
        assert variance == pytest.approx(m * sigma_l2, rel=1e-12)


@pytest.mark.parametrize(("sigma_l2", "m"), [(10**4, 5), (10**6, 10), (10**5, 200)])
def test_halfwidth_is_about_1_96_sd(sigma_l2: int, m: int) -> None:
    h = halfwidth(sigma_l2, m)
    assert h == pytest.approx(Z95 * noise_sd(sigma_l2, m), abs=1.5)


@pytest.mark.parametrize(("sigma_l2", "m"), [(4, 1), (4, 5), (50, 3), (3631, 5), (10**5, 30)])
@pytest.mark.parametrize("level", [0.5, 0.9, 0.95, 0.99])
def test_halfwidth_is_the_smallest_that_covers(sigma_l2: int, m: int, level: float) -> None:
    h = halfwidth(sigma_l2, m, level)
    assert _coverage(sigma_l2, m, h) >= level
    if h > 0:
        assert _coverage(sigma_l2, m, h - 1) < level


def test_halfwidth_refuses_bad_level() -> None:
    for level in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(PrivacyParameterError, match="level"):
            halfwidth(4, 2, level)


# ---- derived figures ----


def test_cell_estimate() -> None:
    estimate = cell_estimate(1000, sigma_l2=400, m=5)
    h = halfwidth(400, 5)
    assert estimate == Estimate(1000, 1000 - h, 1000 + h, noise_sd(400, 5))


def test_difference_uses_the_pooled_noise() -> None:
    estimate = difference(500, 800, sigma_l2=400, m_a=5, m_b=7)
    h = halfwidth(400, 12)
    assert estimate.value == -300
    assert (estimate.low, estimate.high) == (-300 - h, -300 + h)
    assert estimate.sd == pytest.approx(math.sqrt(12 * 400), rel=1e-9)
    # Narrower than adding the two intervals.
    assert h < halfwidth(400, 5) + halfwidth(400, 7)


def test_ratio_divides_the_union_bound_intervals() -> None:
    estimate = ratio(900, 3000, sigma_l2=100, m_num=5, m_den=5)
    assert estimate is not None
    h = halfwidth(100, 5, 0.975)
    assert estimate.value == pytest.approx(0.3)
    assert estimate.low == pytest.approx((900 - h) / (3000 + h))
    assert estimate.high == pytest.approx((900 + h) / (3000 - h))
    assert estimate.low < 0.3 < estimate.high


def test_ratio_with_a_negative_numerator() -> None:
    estimate = ratio(-5, 1000, sigma_l2=100, m_num=5, m_den=5)
    assert estimate is not None
    h = halfwidth(100, 5, 0.975)
    assert estimate.low == pytest.approx((-5 - h) / (1000 - h))
    assert estimate.high == pytest.approx((-5 + h) / (1000 - h))


def test_ratio_is_undefined_when_the_denominator_may_vanish() -> None:
    h = halfwidth(100, 5, 0.975)
    assert ratio(50, h, sigma_l2=100, m_num=5, m_den=5) is None
    assert ratio(50, -200, sigma_l2=100, m_num=5, m_den=5) is None
    assert ratio(50, h + 1, sigma_l2=100, m_num=5, m_den=5) is not None


def _est(value: int, half: int) -> Estimate:
    return Estimate(value, value - half, value + half, half / Z95)


@pytest.mark.parametrize(
    ("demand", "actual", "maximum", "expected"),
    [
        (_est(100, 10), _est(200, 10), _est(300, 10), ("green", True)),
        (_est(195, 10), _est(200, 10), _est(300, 10), ("green", False)),
        (_est(180, 10), _est(200, 10), _est(300, 10), ("green", True)),  # 190 <= 190
        (_est(250, 10), _est(200, 10), _est(300, 10), ("orange", True)),
        (_est(210, 10), _est(200, 10), _est(300, 10), ("orange", False)),
        (_est(295, 10), _est(200, 10), _est(300, 10), ("orange", False)),
        (_est(400, 10), _est(200, 10), _est(300, 10), ("red", True)),
        (_est(310, 10), _est(200, 10), _est(300, 10), ("red", False)),
        (_est(400, 10), _est(500, 10), _est(300, 10), ("green", True)),  # noisy max < actual
        (_est(400, 10), _est(390, 10), _est(300, 10), ("red", False)),
    ],
)
def test_traffic_light(
    demand: Estimate, actual: Estimate, maximum: Estimate, expected: tuple[str, bool]
) -> None:
    assert traffic_light(demand, actual, maximum) == expected


def test_derived_figures_refuse_bad_input() -> None:
    with pytest.raises(PrivacyParameterError, match="m_a"):
        difference(1, 2, sigma_l2=4, m_a=0, m_b=5)
    with pytest.raises(PrivacyParameterError, match="level"):
        ratio(1, 2, sigma_l2=4, m_num=5, m_den=5, level=0.0)
    with pytest.raises(PrivacyParameterError, match="level"):
        cell_estimate(1, sigma_l2=4, m=5, level=1.0)
