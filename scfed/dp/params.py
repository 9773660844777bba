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
from scfed.errors import PrivacyParameterError

__all__ = ["FIRM", "MAGNITUDE", "SEGMENTS", "UNITS", "Noise", "Segment", "parse_decimal"]

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
#: Most survivors a round may plan its noise for: the most participants a round may have.
MAX_PLANNED = 1000

_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,11})(\.[0-9]{0,8}[1-9])?")


def parse_decimal(text: str, what: str) -> Fraction:
    """A positive canonical decimal ("120.5", "0.001") as an exact fraction.

    Raises PrivacyParameterError: no sign, exponent, leading zeros or trailing zeros after
    the point, so each value has exactly one spelling.
    """
    if not isinstance(text, str) or _DECIMAL.fullmatch(text) is None:
        raise PrivacyParameterError(
            f"{what} must be a positive decimal like 120.5, not {text!r:.40}"
        )
    value = Fraction(text)
    if value <= 0:
        raise PrivacyParameterError(f"{what} must be positive")
    return value


#: A concentration cell is F min(g |x|, Q)^2 // (g Q) with F = CONCENTRATION_FINE: for
#: integers a < b with g b <= Q it moves by at most F g (b^2 - a^2) / Q + 1 <=
#: (2 F + 1)(b - a), so its sensitivity is (2 F + 1) R; a finer F costs the floor less.
CONCENTRATION_FINE = 4
CONCENTRATION_LIPSCHITZ = 2 * CONCENTRATION_FINE + 1
#: The vector segments of a catalogue round, in order.
SEGMENTS = ("values", "presence", "concentration")


@dataclass(frozen=True)
class Segment:
    """One segment of a release: its cells and each node's noise variance."""

    name: str
    cells: int
    sigma_l2: int


@dataclass(frozen=True)
class Noise:
    """Distributed discrete Gaussian noise and the privacy unit of one release.

    ``planned`` is the number of survivors the noise is sized for (0: n_min); if fewer
    survive, each node refuses at the unmask request unless its floor and budget still hold
    for the actual survivors. A round with disclosure segments (presence, concentration)
    gives each segment its own noise (``presence_sigma``, ``concentration_sigma``), and the
    release costs the sum of the segments' rho.
    """

    sigma: str
    t_collude: int
    unit: str
    bound: int
    grid: str
    plausible: int
    disclosure: bool = False
    planned: int = 0
    presence_sigma: str = ""
    concentration_sigma: str = ""

    @property
    def sigma_value(self) -> Fraction:
        return parse_decimal(self.sigma, "sigma")

    @property
    def grid_value(self) -> Fraction:
        return parse_decimal(self.grid, "the grid unit")

    @property
    def delta2(self) -> int:
        """The squared L2 sensitivity of the values segment: R^2, or 2 C^2 (firm-level)."""
        return accounting.sensitivity2(self.unit, self.bound)

    def planned_for(self, n_min: int) -> int:
        return self.planned or n_min

    def local_variance(self, n_min: int, sigma: str = "") -> int:
        """sigma_l^2 = ceil(sigma^2 / (planned - t_collude)), each node's noise variance
        for the values (or the segment whose ``sigma`` is given)."""
        value = parse_decimal(sigma or self.sigma, "sigma")
        return accounting.local_variance(value, self.planned_for(n_min), self.t_collude)

    def segments(self, dim: int, n_min: int) -> tuple[Segment, ...]:
        """The segments of a ``dim``-cell release with each node's noise variance."""
        values = Segment("values", dim, self.local_variance(n_min))
        if not self.disclosure:
            return (values,)
        third = dim // 3
        return (
            Segment("values", third, values.sigma_l2),
            Segment("presence", third, self.local_variance(n_min, self.presence_sigma)),
            Segment("concentration", third, self.local_variance(n_min, self.concentration_sigma)),
        )

    def rho(
        self, n_min: int, survivors: int, *, colluders: int | None = None, group: int = 1,
        overlap: Fraction = Fraction(1),
    ) -> Fraction:  # fmt: skip
        """The zCDP cost of releasing the sum of ``survivors`` inputs, of which
        ``colluders`` (t_collude by default; the members of the t_collude largest corporate
        groups when groups are known) may pool their noise with the coordinator.

        ``group`` is the largest corporate group among the candidates and ``overlap`` how
        far the entry's presence and concentration segments move together (``_cost``).
        """
        honest = survivors - (self.t_collude if colluders is None else colluders)
        if honest < 1:
            raise PrivacyParameterError(f"{survivors} survivors leave no honest noise")
        inverse = [Fraction(1, honest * s.sigma_l2) for s in self.segments(3, n_min)]
        return self._cost(inverse, group, overlap)

    def planned_rho(self, group: int = 1, overlap: Fraction = Fraction(1)) -> Fraction:
        """The most a release costs when the planned survivors (or more) survive: as rho,
        with the segments' total variances sigma^2, which (planned - t_collude) sigma_l^2
        never falls below."""
        sigmas = [self.sigma, self.presence_sigma, self.concentration_sigma]
        count = 3 if self.disclosure else 1
        inverse = [1 / parse_decimal(s, "sigma") ** 2 for s in sigmas[:count]]
        return self._cost(inverse, group, overlap)

    def _cost(self, inverse: list[Fraction], group: int, overlap: Fraction) -> Fraction:
        """Delta^2 / 2 times the largest sum over segments of (slope^2 / variance) that one
        firm's change can reach, for the segments' inverse noise variances.

        The sensitivities follow from the layout and the node's own transformations, never
        from a claim: values move by |dx|; presence min(|x|, P) // g by at most |dx|, and
        only below P; concentration F min(g |x|, Q)^2 // (g Q) by at most
        (F g (2 |x| + 1) / Q + 1) |dx| <= (2 F + 1) |dx|, and only while g |x| < Q.
        Integrated along any change of one firm's figures (L2 norm at most R), the
        noise-weighted squared change is at most R^2 times the largest pointwise sum of
        slope^2 / variance: below P, presence with a concentration slope of at most
        2 F g ``overlap`` + 1 (``overlap`` = (2 P + 1) / 2 Q for the smallest Q); above it
        the full 2 F + 1 alone. Firm-level rounds clip each segment to C, 2 C^2 each.
        """
        values = inverse[0]
        if len(inverse) == 1:
            return self.delta2 * values / 2
        presence, concentration = inverse[1], inverse[2]
        if self.unit != MAGNITUDE:
            return self.delta2 * (values + presence + concentration) / 2
        slope = min(Fraction(CONCENTRATION_LIPSCHITZ), 2 * CONCENTRATION_FINE * group * overlap + 1)
        low = slope**2 * concentration
        high = CONCENTRATION_LIPSCHITZ**2 * concentration
        return self.delta2 * (values + max(presence + low, high)) / 2

    def check(self, n_min: int) -> None:
        """Raise PrivacyParameterError unless these parameters are usable with ``n_min``."""
        parse_decimal(self.grid, "the grid unit")
        parse_decimal(self.sigma, "sigma")
        if self.unit not in UNITS:
            raise PrivacyParameterError(
                f"the privacy unit must be magnitude or firm, not {self.unit!r:.40}"
            )
        if not 0 <= self.t_collude < n_min:
            raise PrivacyParameterError(f"t_collude {self.t_collude} must lie in 0 .. n_min - 1")
        if self.planned and not n_min <= self.planned <= MAX_PLANNED:
            raise PrivacyParameterError(
                f"planned survivors {self.planned} must lie in n_min .. {MAX_PLANNED}"
            )
        if not 1 <= self.bound <= MAX_BOUND:
            raise PrivacyParameterError(
                f"the privacy bound must lie in 1 .. 2^40, not {self.bound}"
            )
        if not 1 <= self.plausible <= MAX_PLAUSIBLE:
            raise PrivacyParameterError(
                f"the plausibility bound must lie in 1 .. 2^52, not {self.plausible}"
            )
        if self.disclosure != bool(self.presence_sigma) or bool(self.presence_sigma) != bool(
            self.concentration_sigma
        ):
            raise PrivacyParameterError(
                "disclosure segments need their own presence and concentration sigma"
            )
        for segment in self.segments(3, n_min):
            self._check_variance(segment)

    @staticmethod
    def _check_variance(segment: Segment) -> None:
        if not MIN_LOCAL_VARIANCE <= segment.sigma_l2 <= MAX_LOCAL_VARIANCE:
            raise PrivacyParameterError(
                f"each node's noise variance sigma_l^2 = {segment.sigma_l2} for the "
                f"{segment.name} must lie in {MIN_LOCAL_VARIANCE} .. {MAX_LOCAL_VARIANCE} "
                "grid units squared"
            )
