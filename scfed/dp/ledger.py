"""Privacy-budget ledgers: periods, charges and the cap rule. Pure: no I/O, no clock.

A charge is the zCDP rho of one release, kept as an exact fraction ("num/den" when stored)
so that sums over a period are exact and an auditor recomputes them to the last digit.
Rounds that abort before unmasking charge nothing; a round that unmasks is charged for its
actual survivors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from scfed.errors import ConfigError, PrivacyBudgetError

PERIODS = ("year", "quarter", "month")
#: How often a catalogue entry may be released: one release per window.
CADENCES = ("weekly", "monthly", "quarterly")
#: The most windows of each cadence whose Monday falls in one budget period: a year has 52
#: or 53 Mondays, a quarter 13 or 14, a month 4 or 5.
_WINDOWS = {
    ("weekly", "year"): 53, ("weekly", "quarter"): 14, ("weekly", "month"): 5,
    ("monthly", "year"): 12, ("monthly", "quarter"): 3, ("monthly", "month"): 1,
    ("quarterly", "year"): 4, ("quarterly", "quarter"): 1, ("quarterly", "month"): 1,
}  # fmt: skip
#: Sane range for a cap on rho per period.
MAX_RHO_CAP = Fraction(10)


def period_label(kind: str, day: date) -> str:
    """The budget period that ``day`` falls in: "2026", "2026-Q4" or "2026-11"."""
    if kind == "year":
        return f"{day.year:04d}"
    if kind == "quarter":
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    if kind == "month":
        return f"{day.year:04d}-{day.month:02d}"
    raise ConfigError(f"the budget period must be one of {', '.join(PERIODS)}, not {kind!r:.40}")


def window_label(cadence: str, monday: date) -> str:
    """The cadence window a round of the week of ``monday`` falls in: its ISO week, or the
    month or quarter of that Monday."""
    if cadence == "weekly":
        year, week, _ = monday.isocalendar()
        return f"{year:04d}-W{week:02d}"
    if cadence == "monthly":
        return period_label("month", monday)
    if cadence == "quarterly":
        return period_label("quarter", monday)
    raise ConfigError(f"the cadence must be one of {', '.join(CADENCES)}, not {cadence!r:.40}")


def windows_per_period(cadence: str, period: str) -> int:
    """The most releases of an entry of ``cadence`` that one budget period can hold."""
    try:
        return _WINDOWS[(cadence, period)]
    except KeyError:
        raise ConfigError(f"unknown cadence {cadence!r:.40} or period {period!r:.40}") from None


def rho_text(rho: Fraction) -> str:
    """The exact stored form of a rho."""
    return f"{rho.numerator}/{rho.denominator}"


def parse_rho(text: str) -> Fraction:
    """A rho from its stored form or a decimal ("1/32", "0.5"); ConfigError if invalid."""
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"{text!r:.40} is not a rho value") from None
    if value < 0:
        raise ConfigError(f"rho {text} is negative")
    return value


@dataclass(frozen=True)
class Budget:
    """A cap on rho per period, from a node's or the federation's policy."""

    cap: Fraction = Fraction(1, 2)
    period: str = "year"

    def __post_init__(self) -> None:
        if not 0 < self.cap <= MAX_RHO_CAP:
            raise ConfigError(f"the rho cap must lie in (0, {MAX_RHO_CAP}], not {self.cap}")
        if self.period not in PERIODS:
            period_label(self.period, date(2000, 1, 1))  # raises the clear error

    def check(self, spent: Fraction, rho: Fraction, label: str) -> None:
        """Raise PrivacyBudgetError if ``rho`` more would take ``spent`` past the cap."""
        if spent + rho > self.cap:
            raise PrivacyBudgetError(
                f"a release costing rho {float(rho):.6g} would take period {label} to "
                f"{float(spent + rho):.6g}, past the cap {float(self.cap):.6g} "
                f"({float(self.cap - spent):.6g} remains)"
            )


@dataclass(frozen=True)
class Charge:
    """One release a party took part in, and what it cost."""

    round_id: bytes
    query: str
    period: str
    survivors: int
    rho: Fraction
    window: str = ""  # the entry's cadence window; "" for an ad-hoc round
