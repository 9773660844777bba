"""Planning a catalogue entry's noise: each segment's sigma from a budget. Pure: no I/O.

A firm's budget per period, divided by the most releases the entry's cadence allows in it,
is what one release may cost. The values get ``values_share`` of that; the concentration
segment the rest; and the presence segment the largest noise that fits under the
concentration segment's cost (``Noise.rho`` charges the larger of the two disclosure
terms, since one firm's figure below P moves presence but barely the concentration, and
above P only the concentration), so it costs nothing more.
"""

from __future__ import annotations

import math
from fractions import Fraction

from scfed.dp.params import CONCENTRATION_FINE, CONCENTRATION_LIPSCHITZ, MAGNITUDE, Noise
from scfed.errors import PrivacyParameterError

#: The share of each release's rho the values get by default.
VALUES_SHARE = Fraction(3, 5)


def entry_noise(
    *, bound: int, rho_release: Fraction, overlap: Fraction, group: int = 1,
    values_share: Fraction = VALUES_SHARE, t_collude: int = 1, grid: str = "1",
    plausible: int = 10**12,
) -> Noise:  # fmt: skip
    """Magnitude-privacy noise for an entry whose releases may each cost ``rho_release``.

    ``overlap`` is the entry's (2 P + 1) / 2 Q (CatalogueEntry.overlap) and ``group`` the
    largest corporate group expected among the candidates. Raises PrivacyParameterError for
    a share outside (0, 1), or a presence threshold P too close to Q / g.
    """
    if not 0 < values_share < 1 or rho_release <= 0:
        raise PrivacyParameterError(
            "the values' share must lie in (0, 1) and the budget be positive"
        )
    delta2 = bound * bound
    full = CONCENTRATION_LIPSCHITZ**2
    values = _sigma(Fraction(delta2, 2) / (values_share * rho_release))
    concentration = _sigma(Fraction(delta2 * full, 2) / ((1 - values_share) * rho_release))
    slope = min(Fraction(CONCENTRATION_LIPSCHITZ), 2 * CONCENTRATION_FINE * group * overlap + 1)
    spare = (full - slope**2) / Fraction(concentration) ** 2
    if spare <= 0:
        raise PrivacyParameterError(
            "the presence threshold is too close to the smallest concentration scale for the "
            "presence segment to ride on the concentration segment's cost"
        )
    presence = _sigma(1 / spare)
    return Noise(
        str(values), t_collude, MAGNITUDE, bound, grid, plausible, True, 0, str(presence),
        str(concentration),
    )  # fmt: skip


def _sigma(variance: Fraction) -> int:
    """The smallest whole sigma with sigma^2 at least ``variance``."""
    sigma = math.isqrt(math.ceil(variance))
    return sigma if sigma * sigma >= variance else sigma + 1
