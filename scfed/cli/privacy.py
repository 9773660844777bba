"""``scfed privacy``: convert zCDP to (epsilon, delta)-DP, and plan a catalogue's noise.

``privacy epsilon`` converts one rho. ``privacy plan`` turns a firm's budget, an entry's
cadence and its privacy radius into the noise of each segment of a release (values,
presence, concentration), what a release and a period cost at the planned survivors, the
error bar of one release, and the lines to put in the catalogue; or, with ``--catalogue``,
what a whole catalogue file plans to spend. Every plan it prints says whether a node with
the default settings accepts it.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from statistics import NormalDist

from scfed.config import DEFAULT_NOISE_FLOOR
from scfed.dp import accounting
from scfed.dp.ledger import CADENCES, PERIODS, Budget, windows_per_period
from scfed.dp.params import CONCENTRATION_LIPSCHITZ
from scfed.dp.plan import VALUES_SHARE, entry_noise
from scfed.errors import ConfigError, PrivacyBudgetError, RemoteProtocolError
from scfed.policy import check_plan
from scfed.wire.policy import (
    DEFAULT_DOMINANCE,
    CatalogueEntry,
    Policy,
    decode_policy,
    encode_policy,
)

#: The largest rho cap per period the planner accepts.
MAX_RHO_CAP = 10
_PLANNED = "planned-entry"
_COMMODITY = "fabrication/analog/90-180nm/200mm/JP-Kyushu"


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = roles.add_parser("privacy", help="privacy accounting and noise planning")
    tasks = parser.add_subparsers(dest="privacy_command", required=True, metavar="TASK")
    convert = tasks.add_parser("epsilon", help="the (epsilon, delta)-DP guarantee of rho-zCDP")
    convert.add_argument("--rho", required=True, help="zCDP rho, e.g. 0.5 or 1/32")
    convert.add_argument("--delta", type=float, required=True, help="delta in (0, 1)")
    convert.set_defaults(func=_epsilon_command)
    plan = tasks.add_parser("plan", help="a catalogue entry's noise, cost and error bars")
    source = plan.add_mutually_exclusive_group(required=True)
    source.add_argument("--radius", type=int, help="privacy radius R, L2 over one release")
    source.add_argument("--catalogue", type=Path, help="plan every entry of a catalogue file")
    plan.add_argument("--sigma", help="the values' noise sd (default: 60%% of the budget)")
    plan.add_argument("--cadence", choices=CADENCES, default="weekly")
    plan.add_argument("--candidates", type=int, default=64, help="firms a round asks (64)")
    plan.add_argument("--planned-percent", type=int, default=80, help="survivors planned (80)")
    plan.add_argument("--n-min", type=int, default=5, help="k, the fewest contributors (5)")
    plan.add_argument("--t-collude", type=int, default=1, help="firms that may pool noise (1)")
    plan.add_argument("--presence-threshold", type=int, help="P (default: the radius)")
    plan.add_argument("--scale", type=int, default=10_000, help="smallest scale Q (10000)")
    plan.add_argument("--group", type=int, default=1, help="largest corporate group (1)")
    plan.add_argument("--rho-cap", default="0.5", help="a firm's rho per period (0.5)")
    plan.add_argument("--period", choices=PERIODS, default="year")
    plan.add_argument("--delta", type=float, default=1e-9, help="delta in (0, 1)")
    plan.set_defaults(func=_plan_command)


def _plan_command(args: argparse.Namespace) -> int:
    budget = _budget(args)
    if not 1 <= args.group <= 1000 or not args.n_min <= args.candidates <= 1000:
        raise ConfigError("--group must be 1..1000 and --candidates from --n-min to 1000")
    if args.catalogue is not None:
        policy = _catalogue(args.catalogue, budget)
        blocks = [
            format_entry(e, args.candidates, args.group, budget, args.delta) for e in policy.entries
        ]
        print("\n\n".join([*blocks, format_total(policy, args.group, budget, args.delta)]))
        return 0
    entry = planned_entry(args, budget)
    print(format_entry(entry, args.candidates, args.group, budget, args.delta))
    print(format_total(_policy((entry,), budget), args.group, budget, args.delta))
    return 0


def _budget(args: argparse.Namespace) -> Budget:
    cap = _fraction(args.rho_cap, "--rho-cap")
    if not 0 < cap <= MAX_RHO_CAP:
        raise ConfigError(f"--rho-cap must be in (0, {MAX_RHO_CAP}], got {args.rho_cap}")
    if not 0.0 < args.delta < 1.0:
        raise ConfigError(f"--delta must be in (0, 1), got {args.delta}")
    return Budget(cap, args.period)


def _catalogue(path: Path, budget: Budget) -> Policy:
    from governance.catalogue import read_catalogue

    read = read_catalogue(path, "plan", 1)
    return replace(read, rho_cap=str(budget.cap), period=budget.period)


def _policy(entries: tuple[CatalogueEntry, ...], budget: Budget) -> Policy:
    policy = Policy("plan", 1, "plan", str(budget.cap), budget.period, entries)
    try:
        return decode_policy(encode_policy(policy))
    except RemoteProtocolError as exc:
        raise ConfigError(f"no entry can use this noise: {exc}") from None


def planned_entry(args: argparse.Namespace, budget: Budget) -> CatalogueEntry:
    """The entry a firm's budget allows at the cadence, its noise chosen by scfed.dp.plan."""
    radius = args.radius
    if radius is None or not 1 <= radius <= 2**20 or not 1 <= args.scale <= 2**26:
        raise ConfigError("--radius must be 1..2^20 and --scale 1..2^26")
    if not 0 <= args.t_collude < args.n_min or not 1 <= args.planned_percent <= 100:
        raise ConfigError("--t-collude must be 0 to --n-min - 1, --planned-percent 1 to 100")
    presence = args.presence_threshold or radius
    per_release = budget.cap / windows_per_period(args.cadence, budget.period)
    share = VALUES_SHARE
    if args.sigma is not None:
        sigma = _fraction(args.sigma, "--sigma")
        share = Fraction(radius * radius, 2) / sigma**2 / per_release if sigma > 0 else Fraction(0)
    overlap = Fraction(2 * presence + 1, 2 * args.scale)
    try:
        noise = entry_noise(
            bound=radius, rho_release=per_release, overlap=overlap, group=args.group,
            values_share=share, t_collude=args.t_collude,
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(f"{exc} (a sigma of {args.sigma} leaves nothing for them?)") from None
    if args.sigma is not None:
        noise = replace(noise, sigma=args.sigma)
    entry = CatalogueEntry(
        _PLANNED, "", "demand-capacity", (_COMMODITY,), 13, noise, args.n_min,
        DEFAULT_DOMINANCE, presence, args.scale, ("members",), args.cadence,
        args.planned_percent,
    )  # fmt: skip
    return _policy((entry,), budget).entries[0]


def format_entry(
    entry: CatalogueEntry, candidates: int, group: int, budget: Budget, delta: float
) -> str:
    """The plan of one entry, as ``privacy plan`` prints it."""
    noise, period = entry.noise, budget.period
    planned = entry.planned(candidates)
    releases = windows_per_period(entry.cadence, period)
    rho = entry.rho_planned(group)
    local = replace(noise, planned=planned).local_variance(entry.min_contributors)
    half = NormalDist().inv_cdf(0.975) * math.sqrt(planned * local)
    name = "radius R" if noise.unit == "magnitude" else "L2 clip C"
    rows = [
        ("entry", f"{entry.name} ({entry.metric}, commodities: {len(entry.commodities)})"),
        ("privacy unit", f"{noise.unit}, {name} = {noise.bound} (L2 over one release)"),
        ("cadence", f"{entry.cadence}: at most {releases} releases a {period}"),
        ("survivors planned", f"{planned} of {candidates} candidates ({entry.planned_percent}%)"),
        ("values", f'sigma = "{noise.sigma}", sensitivity {noise.bound}'),
        ("presence", f'presence_sigma = "{noise.presence_sigma}", sensitivity {noise.bound}'),
        (
            "concentration",
            f'concentration_sigma = "{noise.concentration_sigma}", '
            f"sensitivity {CONCENTRATION_LIPSCHITZ * noise.bound}",
        ),
        ("rho per release", f"{float(rho):.6g} at {planned} or more survivors"),
        (f"rho per {period}", f"{float(rho * releases):.6g}"),
        (f"epsilon per {period}", f"{_epsilon(rho * releases, delta)} at delta {delta}"),
        ("95% half-width", f"+/- {half:,.0f} per value cell of one release at {planned} survivors"),
    ]
    return "\n".join(f"{label:<22}{text}" for label, text in rows)


def format_total(policy: Policy, group: int, budget: Budget, delta: float) -> str:
    """The plan of every entry together, and whether a default node accepts it."""
    names = [e.name for e in policy.entries]
    try:
        plan = check_plan(policy, names, budget, group)
        fits = "yes"
    except PrivacyBudgetError as exc:
        plan, fits = None, f"NO: {exc}"
    total = sum((n * r for _, _, n, r in (plan.lines if plan else ())), Fraction(0))
    spent = f"{float(total):.6g} of {float(budget.cap):.6g}" if plan else ""
    floor = 1 / (2 * Fraction(DEFAULT_NOISE_FLOOR) ** 2)
    steep = [e.name for e in policy.entries if e.rho_planned(group) > floor]
    default = "accepts it" if fits == "yes" and not steep else "refuses it"
    rows = [
        (f"planned per {budget.period}", spent or "past the cap"),
        (f"fits rho cap {float(budget.cap):.6g}", fits),
        ("default node", f"{default} (rho cap 0.5 a year, noise floor {DEFAULT_NOISE_FLOOR})"),
    ]
    if plan:
        rows.insert(
            1, (f"epsilon per {budget.period}", f"{_epsilon(total, delta)} at delta {delta}")
        )
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
