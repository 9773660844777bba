"""Zero-concentrated DP (zCDP) accounting for the noisy sums scfed publishes.

Every node adds discrete Gaussian noise N_Z(0, sigma_l^2) to each cell before secure
aggregation, so a sum over m survivors carries m independent draws. Up to ``t_collude`` of
them may be known to a coalition, which leaves (m - t_collude) sigma_l^2 of variance that
protects one privacy unit, and the release is rho-zCDP with
rho = Delta^2 / (2 (m - t_collude) sigma_l^2).

The budget quantities are exact rationals (``fractions.Fraction``); only the conversion to
(epsilon, delta)-DP uses floating point, rounded so that it never understates epsilon.
Pure functions, no I/O.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

from scfed.errors import PrivacyParameterError

#: The smallest per-node variance sigma_l^2 (grid units squared) a release may use.
MIN_SIGMA_L2 = 4

#: Privacy units: one firm's whole contribution changing by at most R in L2 norm
#: ("magnitude"), or one firm's vector, clipped to L2 norm C, replaced by another ("firm").
MAGNITUDE = "magnitude"
FIRM = "firm"
UNITS = (MAGNITUDE, FIRM)

#: Significant digits of the decimal logarithms used to round epsilon outwards.
_LN_DIGITS = 60


def _check_int(value: int, name: str) -> None:
    """Exact accounting takes true ints only: a bool or a float would be a caller's slip."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")


def local_variance(sigma: Fraction, n_min: int, t_collude: int) -> int:
    """The per-node variance sigma_l^2 = ceil(sigma^2 / (n_min - t_collude)).

    Rounding up keeps the honest survivors' total variance at least sigma^2 whenever at
    least n_min nodes take part and at most t_collude of them pool their noise.
    """
    if isinstance(sigma, bool) or not isinstance(sigma, Fraction | int):
        raise TypeError(f"sigma must be a Fraction or an int, not {type(sigma).__name__}")
    _check_int(n_min, "n_min")
    _check_int(t_collude, "t_collude")
    if sigma <= 0:
        raise PrivacyParameterError(f"sigma must be positive, got {sigma}")
    if t_collude < 0 or n_min - t_collude < 1:
        raise PrivacyParameterError(
            f"need 0 <= t_collude < n_min, got t_collude={t_collude}, n_min={n_min}"
        )
    return math.ceil(Fraction(sigma) ** 2 / (n_min - t_collude))


def sensitivity2(unit: str, bound: int) -> int:
    """Delta^2, the squared L2 sensitivity of a release, for a privacy unit.

    "magnitude": a firm's contribution moves by at most R in L2 norm, so Delta^2 = R^2.
    "firm": a firm's whole vector, clipped to L2 norm C, is replaced by another; the figures
    are non-negative, so
    |x - y|^2 = |x|^2 + |y|^2 - 2 <x, y> <= 2 C^2.
    """
    _check_int(bound, "bound")
    if bound <= 0:
        raise PrivacyParameterError(f"the bound must be positive, got {bound}")
    if unit == MAGNITUDE:
        return bound * bound
    if unit == FIRM:
        return 2 * bound * bound
    raise PrivacyParameterError(
        f"unknown privacy unit {unit!r}; expected one of {', '.join(UNITS)}"
    )


def release_rho(*, delta2: int, survivors: int, t_collude: int, sigma_l2: int) -> Fraction:
    """The zCDP cost of one release: Delta^2 / (2 (survivors - t_collude) sigma_l^2), exactly."""
    for value, name in ((delta2, "delta2"), (survivors, "survivors")):
        _check_int(value, name)
    _check_int(t_collude, "t_collude")
    _check_int(sigma_l2, "sigma_l2")
    if delta2 <= 0:
        raise PrivacyParameterError(f"Delta^2 must be positive, got {delta2}")
    if t_collude < 0 or survivors - t_collude < 1:
        raise PrivacyParameterError(
            f"need 0 <= t_collude < survivors, got {t_collude} and {survivors}"
        )
    if sigma_l2 < MIN_SIGMA_L2:
        raise PrivacyParameterError(f"sigma_l^2 must be at least {MIN_SIGMA_L2}, got {sigma_l2}")
    return Fraction(delta2, 2 * (survivors - t_collude) * sigma_l2)


def epsilon(rho: Fraction | float, delta: float) -> float:
    """The epsilon such that rho-zCDP implies (epsilon, delta)-DP.

    Canonne, Kamath and Steinke (2020), Corollary 13: for every order alpha > 1,
    rho-zCDP gives (epsilon, delta)-DP with
    delta = exp((alpha - 1)(alpha rho - epsilon)) / (alpha - 1) * (1 - 1/alpha)^alpha.
    Solved for epsilon, in logs:
    epsilon(alpha) = alpha rho + ((alpha - 1) ln(1 - 1/alpha) - ln alpha + ln(1/delta))
    / (alpha - 1). Its derivative has the sign of rho (alpha - 1)^2 + ln(alpha delta), which
    changes once, from negative to positive, so the best order is found by bisection on that
    sign in floats. Every order gives a valid bound, so the search needs no care; the value
    at the chosen order is then evaluated in exact rationals with each step rounded upwards
    (logarithms to 60 digits), so the result is never below the exact bound. This is the
    method of the OpenDP library: rho = 1/32, delta = 1e-3 gives 0.6880024554878086.
    """
    exact = _check_rho(rho)
    _check_delta(delta)
    return _convert(exact, delta)


def rho_for_epsilon(epsilon: float, delta: float) -> float:
    """The largest rho whose (epsilon, delta)-DP guarantee is at most ``epsilon``.

    ``epsilon(rho, delta)`` increases with rho, so bisection on floats finds it; the answer
    errs low, never high.
    """
    if isinstance(epsilon, bool) or not math.isfinite(epsilon) or epsilon < 0:
        raise PrivacyParameterError(f"epsilon must be finite and non-negative, got {epsilon}")
    _check_delta(delta)
    low, high = 0.0, max(epsilon, 1.0)
    while _convert(Fraction(high), delta) <= epsilon:
        low, high = high, 2.0 * high
    while True:
        middle = low + (high - low) / 2.0
        if middle in (low, high):
            return low
        if _convert(Fraction(middle), delta) <= epsilon:
            low = middle
        else:
            high = middle


def _check_rho(rho: Fraction | float) -> Fraction | None:
    """rho as an exact rational, or None for an infinite rho (no privacy at all)."""
    if isinstance(rho, bool) or not isinstance(rho, Fraction | int | float):
        raise TypeError(f"rho must be a Fraction or a float, not {type(rho).__name__}")
    if isinstance(rho, float) and math.isinf(rho) and rho > 0:
        return None
    if isinstance(rho, float) and math.isnan(rho):
        raise PrivacyParameterError("rho must be a number, got nan")
    if rho < 0:
        raise PrivacyParameterError(f"rho must be non-negative, got {rho}")
    return Fraction(rho)


def _check_delta(delta: float) -> None:
    if isinstance(delta, bool) or not 0.0 < delta < 1.0:
        raise PrivacyParameterError(f"delta must be in (0, 1), got {delta}")


def _convert(rho: Fraction | None, delta: float) -> float:
    """The CKS20 epsilon for a validated rho and delta."""
    if rho is None:
        return math.inf
    if rho == 0:
        return 0.0
    alpha = _best_order(float(rho), delta)
    return max(0.0, _epsilon_at(alpha, rho, delta))


def _best_order(rho: float, delta: float) -> float:
    """The order alpha > 1 where epsilon(alpha) stops falling, to float resolution."""

    def rising(alpha: float) -> bool:
        return rho * (alpha - 1.0) ** 2 + math.log(alpha * delta) > 0.0

    low, high = 1.0, 2.0
    while not rising(high):
        low, high = high, 2.0 * high
    while True:
        middle = low + (high - low) / 2.0
        if middle in (low, high):
            return high
        if rising(middle):
            high = middle
        else:
            low = middle


def _epsilon_at(alpha: float, rho: Fraction, delta: float) -> float:
    """epsilon(alpha), each operation rounded upwards (or its subtrahend downwards)."""
    order = Fraction(alpha)
    gap = order - 1  # exact: alpha is a float in (1, 2^1024), alpha - 1 a rational
    # 1 - 1/alpha is rounded up to a float before its logarithm, as OpenDP does; that costs
    # about 1e-16 of epsilon at most and keeps the two libraries equal to the last digit.
    shrink = _up(_ln(Fraction(_up(gap / order))))
    numerator = _up(Fraction(_up(Fraction(shrink) * gap)) - Fraction(_down(_ln(order))))
    numerator = _up(Fraction(numerator) + Fraction(_up(-_ln(Fraction(delta)))))
    return _up(Fraction(_up(order * rho)) + Fraction(_up(Fraction(numerator) / gap)))


def _ln(x: Fraction) -> Fraction:
    """The natural logarithm of a positive rational, to ``_LN_DIGITS`` significant digits."""
    with localcontext() as context:
        context.prec = _LN_DIGITS + 10
        quotient = Decimal(x.numerator) / Decimal(x.denominator)
        context.prec = _LN_DIGITS
        return Fraction(quotient.ln())


def _up(x: Fraction) -> float:
    """The smallest float not below ``x``."""
    nearest = float(x)
    return math.nextafter(nearest, math.inf) if Fraction(nearest) < x else nearest


def _down(x: Fraction) -> float:
    """The largest float not above ``x``."""
    nearest = float(x)
    return math.nextafter(nearest, -math.inf) if Fraction(nearest) > x else nearest
