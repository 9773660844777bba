"""The noise parameters of a round, validated, and what they cost. Pure: no I/O.

A round's ``Noise`` travels in its signed announce. Decimal values (sigma, the grid unit)
travel as text and are read as exact fractions, so every node and auditor derives the same
sigma_l^2 and the same rho from them without floating point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from scfed.dp import accounting
from scfed.dp.accounting import FIRM, MAGNITUDE, UNITS

__all__ = ["FIRM", "MAGNITUDE", "UNITS", "Noise", "parse_decimal"]

#: Largest sigma_l^2 a round may ask for: well inside the sampler's exact integer range,
#: and its error bars take a second to compute at 1000 nodes.
MAX_LOCAL_VARIANCE = 10**8
#: sigma_l >= 2: below it a sum of discrete Gaussians departs from a discrete Gaussian.
MIN_LOCAL_VARIANCE = accounting.MIN_SIGMA_L2
#: Largest privacy bound R or C, in grid units.
MAX_BOUND = 2**40
#: Largest plausibility bound: 1000 nodes at 2^52 each, plus noise, stay inside int64.
MAX_PLAUSIBLE = 2**52
#: Default plausibility bound for operators who do not set one.
DEFAULT_PLAUSIBLE = 10**12

_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,11})(\.[0-9]{0,8}[1-9])?")


def parse_decimal(text: str, what: str) -> Fraction:
    """A positive canonical decimal ("120.5", "0.001") as an exact fraction.

    Raises ValueError: no sign, exponent, leading zeros or trailing zeros after the point,
    so each value has exactly one spelling.
    """
    if not isinstance(text, str) or _DECIMAL.fullmatch(text) is None:
        raise ValueError(f"{what} must be a positive decimal like 120.5, not {text!r:.40}")
    value = Fraction(text)
    if value <= 0:
        raise ValueError(f"{what} must be positive")
    return value


@dataclass(frozen=True)
class Noise:
    """Distributed discrete Gaussian noise and the privacy unit of one release."""

    sigma: str
    t_collude: int
    unit: str
    bound: int
    grid: str
    plausible: int
    disclosure: bool = False

    @property
    def sigma_value(self) -> Fraction:
        return parse_decimal(self.sigma, "sigma")

    @property
    def grid_value(self) -> Fraction:
        return parse_decimal(self.grid, "the grid unit")

    @property
    def delta2(self) -> int:
        """The squared L2 sensitivity: R^2, or 2 C^2 for firm-level privacy.

        With disclosure segments, a magnitude round also releases each node's concentration
        cells min(x, Q)^2 / Q, which move by at most 2 |dx|: the sensitivity grows to
        R^2 + (2R)^2. Firm-level rounds clip the whole vector, segments included.
        """
        base = accounting.sensitivity2(self.unit, self.bound)
        return 5 * base if self.disclosure and self.unit == MAGNITUDE else base

    def local_variance(self, n_min: int) -> int:
        """sigma_l^2 = ceil(sigma^2 / (n_min - t_collude)), each node's noise variance."""
        return accounting.local_variance(self.sigma_value, n_min, self.t_collude)

    def rho(self, n_min: int, survivors: int) -> Fraction:
        """The zCDP cost of releasing the sum of ``survivors`` inputs."""
        return accounting.release_rho(
            delta2=self.delta2,
            survivors=survivors,
            t_collude=self.t_collude,
            sigma_l2=self.local_variance(n_min),
        )

    def check(self, n_min: int) -> None:
        """Raise ValueError unless these parameters are usable with ``n_min``."""
        parse_decimal(self.grid, "the grid unit")
        parse_decimal(self.sigma, "sigma")
        if self.unit not in UNITS:
            raise ValueError(f"the privacy unit must be magnitude or firm, not {self.unit!r:.40}")
        if not 0 <= self.t_collude < n_min:
            raise ValueError(f"t_collude {self.t_collude} must lie in 0 .. n_min - 1")
        if not 1 <= self.bound <= MAX_BOUND:
            raise ValueError(f"the privacy bound must lie in 1 .. 2^40, not {self.bound}")
        if not 1 <= self.plausible <= MAX_PLAUSIBLE:
            raise ValueError(f"the plausibility bound must lie in 1 .. 2^52, not {self.plausible}")
        sigma_l2 = self.local_variance(n_min)
        if not MIN_LOCAL_VARIANCE <= sigma_l2 <= MAX_LOCAL_VARIANCE:
            raise ValueError(
                f"each node's noise variance sigma_l^2 = {sigma_l2} must lie in "
                f"{MIN_LOCAL_VARIANCE} .. {MAX_LOCAL_VARIANCE} grid units squared"
            )
