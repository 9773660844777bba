"""What one node contributes to a release: figures on the grid, bounded, clipped, noised.

Pure: the noise source is passed in. Every step is exact integer arithmetic, so the bounds a
node promises (plausibility, the L2 clipping norm) hold exactly, not up to rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from math import isqrt

import numpy as np
from numpy.typing import NDArray

from scfed.dp.params import FIRM, Noise
from scfed.dp.sampler import Source, sample
from scfed.errors import LocalProtocolError

Ints = NDArray[np.int64]


def to_grid(values: Sequence[Decimal | int], grid: Fraction) -> Ints:
    """Each value divided by the grid unit, truncated toward zero.

    Raises LocalProtocolError for a value that does not fit in 64 bits on the grid.
    """
    unit_num, unit_den = grid.numerator, grid.denominator
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        num, den = value.as_integer_ratio()
        steps = (abs(num) * unit_den) // (den * unit_num)
        if steps >= 2**63:
            raise LocalProtocolError(f"value {value} does not fit on a grid of {grid}")
        out[i] = steps if num >= 0 else -steps
    return out


def check_plausible(x: Ints, plausible: int, cells: Sequence[str]) -> None:
    """Raise LocalProtocolError naming the first cell whose |value| exceeds the bound."""
    bad = np.flatnonzero((x > plausible) | (x < -plausible))  # np.abs(-2^63) < 0
    if bad.size:
        i = int(bad[0])
        where = cells[i] if i < len(cells) else f"cell {i}"
        raise LocalProtocolError(
            f"{where}: value {int(x[i])} grid units is beyond the round's plausibility bound "
            f"{plausible} ({bad.size} cells in all); this node will not take part"
        )


def _check_non_negative(x: Ints, cells: Sequence[str]) -> None:
    bad = np.flatnonzero(x < 0)
    if bad.size:
        i = int(bad[0])
        where = cells[i] if i < len(cells) else f"cell {i}"
        raise LocalProtocolError(
            f"{where}: value {int(x[i])} is negative, which firm-level privacy does not allow; "
            "this node will not take part"
        )


def clip_l2(x: Ints, norm: int) -> Ints:
    """x scaled toward zero so that its L2 norm is at most ``norm``, exactly.

    Each |x_i| becomes floor(|x_i| * norm / ||x||) = isqrt(x_i^2 norm^2 // ||x||^2), so
    the clipped squares sum to at most norm^2 with no rounding slack.
    """
    squares = sum(int(v) * int(v) for v in x)
    if squares <= norm * norm:
        return x.copy()
    scaled = [isqrt(int(v) * int(v) * norm * norm // squares) for v in x]
    return np.array(scaled, dtype=np.int64) * np.sign(x)


def contribution(
    x: Ints, noise: Noise, *, n_min: int, cells: Sequence[str], source: Source
) -> Ints:
    """x bounded, clipped for firm-level privacy, plus N_Z(0, sigma_l^2) in every cell, each
    segment (values, presence, concentration) with its own sigma_l^2.

    Firm-level privacy takes the sensitivity of replacing one firm's segment as sqrt(2) C,
    which holds for vectors with no negative cells (|x - y|^2 <= |x|^2 + |y|^2); a node with
    negative figures refuses such a round rather than weaken the guarantee.
    """
    check_plausible(x, noise.plausible, cells)
    if noise.unit == FIRM:
        _check_non_negative(x, cells)
    parts, start = [], 0
    for segment in noise.segments(len(x), n_min):
        part = x[start : start + segment.cells]
        if noise.unit == FIRM:
            part = clip_l2(part, noise.bound)
        parts.append(part + sample(segment.sigma_l2, segment.cells, source))
        start += segment.cells
    return np.concatenate(parts)
