"""The privacy ledger as people read it: spent and remaining budget per period."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

from edge.storage import read_charges
from scfed.config import Privacy
from scfed.dp.accounting import epsilon
from scfed.dp.ledger import Budget, Charge, period_label


def show_ledger(database: Path, privacy: Privacy) -> int:
    """Print the ledger kept in a node's or the coordinator's database."""
    current = period_label(privacy.budget.period, datetime.now(UTC).date())
    print(ledger_report(read_charges(database), privacy.budget, privacy.delta, current))
    return 0


def _rho(value: Fraction) -> str:
    return f"{float(value):.6g}"


def ledger_report(charges: Sequence[Charge], budget: Budget, delta: float, current: str) -> str:
    """Per period: releases, rho spent and left, and the epsilon spent at ``delta``."""
    cap = budget.cap
    lines = [
        f"budget: rho {_rho(cap)} per {budget.period} "
        f"(epsilon {epsilon(cap, delta):.3g} at delta {delta:g}); current period {current}",
        "",
        f"{'period':<8}  {'releases':>8}  {'rho spent':>10}  {'rho left':>10}  {'epsilon':>8}",
    ]
    periods = sorted({c.period for c in charges} | {current})
    for period in periods:
        mine = [c for c in charges if c.period == period]
        spent = sum((c.rho for c in mine), Fraction(0))
        left = max(cap - spent, Fraction(0))
        lines.append(
            f"{period:<8}  {len(mine):>8}  {_rho(spent):>10}  {_rho(left):>10}  "
            f"{epsilon(spent, delta):>8.3g}"
        )
    recent = [c for c in charges if c.period == current]
    if recent:
        lines += ["", f"releases in {current}:"]
        lines += [
            f"  round {c.round_id.hex()}  {c.query}  {c.survivors} survivors  rho {_rho(c.rho)}"
            for c in recent
        ]
    return "\n".join(lines)
