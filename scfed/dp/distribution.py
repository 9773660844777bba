"""The discrete Gaussian distribution N_Z(0, sigma^2), sums of independent draws, and the
error bars of published figures derived from them.

These functions use floating point: they serve tests and error bars, never sampling.
Pure functions, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from scfed.errors import PrivacyParameterError

Floats = NDArray[np.float64]

#: Half-width of the support, in standard deviations, beyond which mass is below 1e-100.
TAIL_SIGMAS = 22

#: The longest FFT ``sum_pmf`` runs (about 1.5 GB at its peak): sigma_l^2 up to about 5e10
#: for m = 5, 4e8 for m = 1000.
MAX_FFT_LENGTH = 2**25


def support_radius(sigma2: Fraction | int) -> int:
    """A radius K such that N_Z(0, sigma2) puts less than 1e-100 of its mass beyond +/-K."""
    sigma2 = Fraction(sigma2)
    if sigma2 <= 0:
        raise PrivacyParameterError("sigma^2 must be positive")
    return int(TAIL_SIGMAS * float(sigma2) ** 0.5) + TAIL_SIGMAS


def pmf(sigma2: Fraction | int, xs: NDArray[np.int64]) -> Floats:
    """P[X = x] for X ~ N_Z(0, sigma2), at each x of ``xs``.

    The normaliser sum_y exp(-y^2 / (2 sigma2)) is taken over |y| <= support_radius(sigma2),
    which leaves out less than 1e-100 of the mass.
    """
    sigma2 = Fraction(sigma2)
    radius = support_radius(sigma2)
    ys = np.arange(-radius, radius + 1, dtype=np.float64)
    s2 = float(sigma2)
    normaliser = float(np.sum(np.exp(-(ys * ys) / (2.0 * s2))))
    x = np.asarray(xs, dtype=np.float64)
    return np.exp(-(x * x) / (2.0 * s2)) / normaliser


@dataclass(frozen=True)
class Estimate:
    """A published figure with its interval and the standard deviation of its noise."""

    value: int | float
    low: float
    high: float
    sd: float


def _check_count(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PrivacyParameterError(f"{name} must be a positive int, got {value!r}")


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise PrivacyParameterError(f"the level must be in (0, 1), got {level}")


def _fast_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: FFT lengths with only small factors are fast."""
    best = 1 << (n - 1).bit_length()
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            length = power35 << ((n - 1) // power35).bit_length()
            best = min(best, length)
            power35 *= 3
        power5 *= 5
    return best


def sum_pmf(sigma_l2: int, m: int) -> tuple[int, Floats]:
    """The distribution of the sum S of m independent N_Z(0, sigma_l2) draws.

    Returns (offset, p) with p[i] = P[S = i - offset] for |i - offset| <= offset. The sum
    is a circular convolution by FFT, over a length that holds +/-TAIL_SIGMAS standard
    deviations of S plus one draw's support, so what wraps around is below 1e-100; each
    probability carries an absolute rounding error of about 1e-16.
    """
    _check_count(sigma_l2, "sigma_l^2")
    _check_count(m, "m")
    radius = support_radius(sigma_l2)
    single = pmf(sigma_l2, np.arange(-radius, radius + 1, dtype=np.int64))
    if m == 1:
        return radius, single
    reach = min(m * radius, int(TAIL_SIGMAS * math.sqrt(m * sigma_l2)) + radius)
    size = _fast_length(2 * reach + 1)
    if size > MAX_FFT_LENGTH:
        raise PrivacyParameterError(
            f"sigma_l^2 = {sigma_l2} with m = {m} is too wide for an exact sum"
        )
    wrapped = np.zeros(size)
    wrapped[: radius + 1] = single[radius:]
    wrapped[size - radius :] = single[:radius]
    # The draw is symmetric, so its transform is real; it is also positive (by Poisson
    # summation it is a sum of Gaussians), so anything below zero is rounding.
    spectrum = np.clip(np.fft.rfft(wrapped).real, 0.0, None)
    summed = np.fft.irfft(spectrum**m, n=size)
    probs = np.clip(np.concatenate((summed[size - reach :], summed[: reach + 1])), 0.0, None)
    probs = (probs + probs[::-1]) / 2.0
    return reach, probs / probs.sum()


def noise_sd(sigma_l2: int, m: int) -> float:
    """The standard deviation of the sum of m independent N_Z(0, sigma_l2) draws.

    Uses the exact variance of one draw, slightly below sigma_l2 for small sigma_l2.
    """
    _check_count(sigma_l2, "sigma_l^2")
    _check_count(m, "m")
    radius = support_radius(sigma_l2)
    xs = np.arange(-radius, radius + 1, dtype=np.int64)
    squares = xs.astype(np.float64) ** 2
    return math.sqrt(m * float(np.sum(squares * pmf(sigma_l2, xs))))


def halfwidth(sigma_l2: int, m: int, level: float = 0.95) -> int:
    """The smallest integer h with P[|S| <= h] >= level, S the sum of m N_Z(0, sigma_l2)."""
    _check_level(level)
    offset, probs = sum_pmf(sigma_l2, m)
    # coverage[h] = P[|S| <= h]: the centre, then both tails added outwards.
    coverage = probs[offset] + np.concatenate(([0.0], 2.0 * np.cumsum(probs[offset + 1 :])))
    return min(int(np.searchsorted(coverage, level)), offset)


def cell_estimate(noisy: int, *, sigma_l2: int, m: int, level: float = 0.95) -> Estimate:
    """A published cell, noisy +/- halfwidth: covers the true sum with probability >= level."""
    h = halfwidth(sigma_l2, m, level)
    return Estimate(noisy, noisy - h, noisy + h, noise_sd(sigma_l2, m))


def difference(
    a_noisy: int,
    b_noisy: int,
    *,
    sigma_l2: int,
    m_a: int,
    m_b: int,
    level: float = 0.95,
) -> Estimate:
    """a - b for two independent sums of m_a and m_b draws.

    The noise is symmetric, so the noise of a - b has the law of a sum of m_a + m_b draws.
    """
    _check_count(m_a, "m_a")
    _check_count(m_b, "m_b")
    m = m_a + m_b
    h = halfwidth(sigma_l2, m, level)
    value = a_noisy - b_noisy
    return Estimate(value, value - h, value + h, noise_sd(sigma_l2, m))


def ratio(
    num_noisy: int,
    den_noisy: int,
    *,
    sigma_l2: int,
    m_num: int,
    m_den: int,
    level: float = 0.95,
) -> Estimate | None:
    """num / den, or None when the denominator may be zero or negative.

    Each part gets an interval at level (1 + level) / 2, so both hold at once with
    probability >= level (union bound); the ratio's interval is the range of quotients over
    those two intervals, and None means the denominator's interval reaches 0. The sd is the
    first-order (delta-method) one, for information only.
    """
    _check_level(level)
    inner = (1.0 + level) / 2.0
    num = cell_estimate(num_noisy, sigma_l2=sigma_l2, m=m_num, level=inner)
    den = cell_estimate(den_noisy, sigma_l2=sigma_l2, m=m_den, level=inner)
    if den.low <= 0:
        return None
    quotients = [n / d for n in (num.low, num.high) for d in (den.low, den.high)]
    value = num_noisy / den_noisy
    sd = math.hypot(num.sd / den_noisy, value * den.sd / den_noisy)
    return Estimate(value, min(quotients), max(quotients), sd)


def normal_estimate(value: float, var: float, level: float = 0.95) -> Estimate:
    """A figure with a normal interval: for estimates that combine many noisy sums (averages
    and smooths of releases), whose noise is a weighted sum of discrete Gaussians."""
    _check_level(level)
    sd = math.sqrt(max(var, 0.0))
    half = NormalDist().inv_cdf((1.0 + level) / 2.0) * sd
    return Estimate(value, value - half, value + half, sd)


def ratio_of(num: Estimate, den: Estimate, level: float = 0.95) -> Estimate | None:
    """num / den from two normal estimates, or None when the denominator may be zero: each
    part's interval at level (1 + level) / 2, the range of quotients over both."""
    inner = (1.0 + level) / 2.0
    a = normal_estimate(float(num.value), num.sd**2, inner)
    b = normal_estimate(float(den.value), den.sd**2, inner)
    if b.low <= 0:
        return None
    quotients = [n / d for n in (a.low, a.high) for d in (b.low, b.high)]
    value = float(num.value) / float(den.value)
    sd = math.hypot(num.sd / float(den.value), value * den.sd / float(den.value))
    return Estimate(value, min(quotients), max(quotients), sd)


def traffic_light(demand: Estimate, actual: Estimate, maximum: Estimate) -> tuple[str, bool]:
    """The DCM light for the noisy figures, and whether the intervals make it certain.

    Green when demand <= actual capacity, else orange when demand <= maximum capacity, else
    red. The light is certain when every choice of true values inside the three intervals
    gives the same light: the interval of each difference that decides it (interval
    subtraction, e.g. [d.low - a.high, d.high - a.low]) lies wholly on the light's side of
    zero. If each interval covers its true value with probability L, a certain light is
    right with probability at least 1 - 3 (1 - L); pass intervals at a higher level for more.
    """
    over_actual = _minus(demand, actual)
    over_maximum = _minus(demand, maximum)
    if demand.value <= actual.value:
        return "green", over_actual[1] <= 0
    if demand.value <= maximum.value:
        return "orange", over_actual[0] > 0 and over_maximum[1] <= 0
    return "red", over_actual[0] > 0 and over_maximum[0] > 0


def _minus(a: Estimate, b: Estimate) -> tuple[float, float]:
    """The range of a - b over the two intervals."""
    return a.low - b.high, a.high - b.low
