"""``scfed privacy``: convert zCDP to (epsilon, delta)-DP, and plan the noise of a federation.

``privacy epsilon`` converts one rho; ``privacy plan`` turns a privacy unit, the smallest
cohort and the release cadence into the noise every node adds, the privacy cost per release
and per year, and the error bar that noise puts on each published cell.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from fractions import Fraction

from scfed.dp import accounting
from scfed.dp.distribution import halfwidth, noise_sd
from scfed.dp.params import MAX_LOCAL_VARIANCE
from scfed.errors import ConfigError

#: Releases per year for each cadence.
CADENCES = {"weekly": 52, "monthly": 12, "quarterly": 4}

#: The largest yearly rho cap the planner accepts.
MAX_RHO_CAP = 10

#: sigma is chosen on a grid of this many steps per grid unit.
SIGMA_STEPS = 10


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = roles.add_parser("privacy", help="privacy accounting and noise planning")
    tasks = parser.add_subparsers(dest="privacy_command", required=True, metavar="TASK")
    convert = tasks.add_parser("epsilon", help="the (epsilon, delta)-DP guarantee of rho-zCDP")
    convert.add_argument("--rho", required=True, help="zCDP rho, e.g. 0.5 or 1/32")
    convert.add_argument("--delta", type=float, required=True, help="delta in (0, 1)")
    convert.set_defaults(func=_epsilon_command)
    plan = tasks.add_parser("plan", help="noise, privacy cost and error bars of a federation")
    unit = plan.add_mutually_exclusive_group(required=True)
    unit.add_argument("--radius", type=int, help="privacy unit: one figure, moved by <= R")
    unit.add_argument("--clip", type=int, help="privacy unit: one firm, L2-clipped to C")
    plan.add_argument("--sigma", help="total noise sd, e.g. 120.5 (default: smallest in the cap)")
    plan.add_argument("--n-min", type=int, default=5, help="fewest nodes in a release")
    plan.add_argument("--t-collude", type=int, default=1, help="nodes that may pool noise")
    plan.add_argument("--cadence", choices=list(CADENCES), default="monthly")
    plan.add_argument("--delta", type=float, default=1e-9, help="delta in (0, 1)")
    plan.add_argument("--rho-cap", default="0.5", help="rho per firm per year")
    plan.add_argument(
        "--releases-per-cadence", type=int, default=1, help="releases a firm joins per cadence"
    )
    plan.set_defaults(func=_plan_command)


@dataclass(frozen=True)
class Plan:
    """Everything ``privacy plan`` prints, worked out for the worst case m = n_min."""

    unit: str
    bound: int
    delta2: int
    n_min: int
    t_collude: int
    sigma: Fraction
    sigma_chosen: bool
    sigma_l2: int
    delta: float
    rho_cap: Fraction
    releases_per_year: int
    rho_release: Fraction
    rho_year: Fraction
    halfwidth: int
    sd: float

    @property
    def fits(self) -> bool:
        return self.rho_year <= self.rho_cap


def make_plan(
    *,
    unit: str,
    bound: int,
    sigma: Fraction | None,
    n_min: int,
    t_collude: int,
    releases_per_year: int,
    delta: float,
    rho_cap: Fraction,
) -> Plan:
    """The plan for these settings; sigma None picks the smallest that fits ``rho_cap``."""
    _check_settings(bound=bound, n_min=n_min, t_collude=t_collude, delta=delta, rho_cap=rho_cap)
    if releases_per_year < 1:
        raise ConfigError(f"releases per year must be at least 1, got {releases_per_year}")
    delta2 = accounting.sensitivity2(unit, bound)
    chosen = sigma is None
    if sigma is None:
        sigma = smallest_sigma(
            delta2=delta2, n_min=n_min, t_collude=t_collude, releases=releases_per_year, cap=rho_cap
        )
    sigma_l2 = _sigma_l2(sigma, n_min, t_collude)
    rho = accounting.release_rho(
        delta2=delta2, survivors=n_min, t_collude=t_collude, sigma_l2=sigma_l2
    )
    try:
        half = halfwidth(sigma_l2, n_min)
    except ValueError as exc:
        raise ConfigError(f"{exc}; use a smaller radius or clip") from None
    return Plan(
        unit=unit,
        bound=bound,
        delta2=delta2,
        n_min=n_min,
        t_collude=t_collude,
        sigma=sigma,
        sigma_chosen=chosen,
        sigma_l2=sigma_l2,
        delta=delta,
        rho_cap=rho_cap,
        releases_per_year=releases_per_year,
        rho_release=rho,
        rho_year=rho * releases_per_year,
        halfwidth=half,
        sd=noise_sd(sigma_l2, n_min),
    )


def smallest_sigma(
    *, delta2: int, n_min: int, t_collude: int, releases: int, cap: Fraction
) -> Fraction:
    """The smallest sigma on the 1/SIGMA_STEPS grid whose yearly rho at m = n_min fits ``cap``.

    The yearly rho is releases Delta^2 / (2 (n_min - t) sigma_l^2), so sigma_l^2 must reach
    need = max(4, ceil(releases Delta^2 / (2 (n_min - t) cap))); and
    ceil(sigma^2 / (n_min - t)) >= need exactly when sigma^2 > (need - 1)(n_min - t).
    """
    spread = n_min - t_collude
    need = max(accounting.MIN_SIGMA_L2, math.ceil(Fraction(releases * delta2, 2 * spread) / cap))
    steps = math.isqrt(SIGMA_STEPS**2 * (need - 1) * spread) + 1
    return Fraction(steps, SIGMA_STEPS)


def format_plan(plan: Plan) -> str:
    """The readable block ``privacy plan`` prints."""
    name = "radius R" if plan.unit == "magnitude" else "L2 clip C"
    chosen = ", the smallest in 0.1 steps within the cap" if plan.sigma_chosen else ""
    rows = [
        ("privacy unit", f"{plan.unit}, {name} = {plan.bound} (Delta^2 = {plan.delta2})"),
        ("nodes", f"n_min = {plan.n_min}, t_collude = {plan.t_collude}"),
        ("sigma", f"{_decimal(plan.sigma)} (sigma^2 = {_decimal(plan.sigma**2)}){chosen}"),
        ("sigma_l", f"{math.sqrt(plan.sigma_l2):.6g} per node (sigma_l^2 = {plan.sigma_l2})"),
        ("rho per release", f"{_rational(plan.rho_release)} (worst case m = n_min)"),
        ("epsilon per release", f"{_epsilon(plan.rho_release, plan.delta)} at delta {plan.delta}"),
        ("releases per year", str(plan.releases_per_year)),
        ("rho per year", _rational(plan.rho_year)),
        ("epsilon per year", f"{_epsilon(plan.rho_year, plan.delta)} at delta {plan.delta}"),
        (f"fits rho cap {_decimal(plan.rho_cap)}", "yes" if plan.fits else "NO"),
        ("95% half-width", f"+/- {plan.halfwidth} per cell at m = {plan.n_min}"),
        ("noise sd", f"{plan.sd:.6g} per cell at m = {plan.n_min}"),
    ]
    return "\n".join(f"{label:<22}{text}" for label, text in rows)


def _epsilon(rho: Fraction, delta: float) -> str:
    return f"{accounting.epsilon(rho, delta):.4f}"


def _rational(value: Fraction) -> str:
    """An exact rational, with its decimal value when it is not an integer."""
    return str(value) if value.denominator == 1 else f"{value} = {float(value):.6g}"


def _decimal(value: Fraction) -> str:
    """A rational in decimal: exact when its denominator divides 10^12, else to 12 digits."""
    for places in range(13):
        scaled = value * 10**places
        if scaled.denominator == 1:
            digits = str(abs(scaled.numerator)).rjust(places + 1, "0")
            sign = "-" if scaled < 0 else ""
            point = "." if places else ""
            return f"{sign}{digits[: len(digits) - places]}{point}{digits[len(digits) - places :]}"
    return f"{float(value):.12g}"


def _check_settings(
    *, bound: int, n_min: int, t_collude: int, delta: float, rho_cap: Fraction
) -> None:
    if bound <= 0:
        raise ConfigError(f"the radius or clip must be a positive integer, got {bound}")
    if t_collude < 0:
        raise ConfigError(f"--t-collude must be at least 0, got {t_collude}")
    if n_min <= t_collude:
        raise ConfigError(f"--n-min ({n_min}) must be above --t-collude ({t_collude})")
    if not 0.0 < delta < 1.0:
        raise ConfigError(f"--delta must be in (0, 1), got {delta}")
    if not 0 < rho_cap <= MAX_RHO_CAP:
        raise ConfigError(f"--rho-cap must be in (0, {MAX_RHO_CAP}], got {_decimal(rho_cap)}")


def _sigma_l2(sigma: Fraction, n_min: int, t_collude: int) -> int:
    if sigma <= 0:
        raise ConfigError(f"--sigma must be positive, got {_decimal(sigma)}")
    sigma_l2 = accounting.local_variance(sigma, n_min, t_collude)
    if sigma_l2 < accounting.MIN_SIGMA_L2:
        raise ConfigError(
            f"sigma {_decimal(sigma)} gives sigma_l^2 = {sigma_l2} per node, below "
            f"{accounting.MIN_SIGMA_L2} (sigma_l >= 2); raise --sigma"
        )
    if sigma_l2 > MAX_LOCAL_VARIANCE:
        raise ConfigError(
            f"sigma {_decimal(sigma)} gives sigma_l^2 = {sigma_l2} per node, above the "
            f"{MAX_LOCAL_VARIANCE} a round allows; measure in a coarser grid unit"
        )
    return sigma_l2


def _fraction(text: str, option: str) -> Fraction:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"{option} must be a number such as 0.5, got {text!r}") from None


def _epsilon_command(args: argparse.Namespace) -> int:
    rho = _fraction(args.rho, "--rho")
    try:
        value = accounting.epsilon(rho, args.delta)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(f"rho = {_rational(rho)} zCDP gives (epsilon, delta)-DP at delta = {args.delta}")
    print("epsilon (Canonne, Kamath and Steinke 2020, Corollary 13):")
    print(repr(value))
    return 0


def _plan_command(args: argparse.Namespace) -> int:
    if args.releases_per_cadence < 1:
        raise ConfigError(
            f"--releases-per-cadence must be at least 1, got {args.releases_per_cadence}"
        )
    unit, bound = ("magnitude", args.radius) if args.radius is not None else ("firm", args.clip)
    sigma = None if args.sigma is None else _fraction(args.sigma, "--sigma")
    plan = make_plan(
        unit=unit,
        bound=bound,
        sigma=sigma,
        n_min=args.n_min,
        t_collude=args.t_collude,
        releases_per_year=CADENCES[args.cadence] * args.releases_per_cadence,
        delta=args.delta,
        rho_cap=_fraction(args.rho_cap, "--rho-cap"),
    )
    print(format_plan(plan))
    return 0
