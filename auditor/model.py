"""What an audit finds: named findings, one entry per round and the log's verdict. Pure.

A check either passes, with a short statement of what it established, or fails with a
precise reason; every check of an audit is run and recorded, so one bad leaf never hides
another. ``Checks`` is the driver: it calls check functions, which return what they
established or raise ``VerificationError``, and records the outcome. Any other error the
untrusted log provokes (a decoder's ``ScfedError``, a value or lookup error) fails the check
too: an audit that could not finish a check must not pass it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scfed.errors import ScfedError, VerificationError

#: Problems named one by one in a finding; the rest are counted.
MAX_LISTED = 10


@dataclass(frozen=True)
class Finding:
    """One named check and its outcome; ``detail`` says what passed or why it failed."""

    check: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Parameters:
    """The round parameters an announce carries, as an auditor reports them."""

    dim: int
    threshold: int
    n_min: int
    registry_version: int
    sigma: str
    t_collude: int
    unit: str
    bound: int
    grid: str


@dataclass(frozen=True)
class ChargeAudit:
    """The budget charge a round logged, and the rho the rule gives for its survivors."""

    period: str
    logged: str
    rule: str | None


@dataclass(frozen=True)
class RoundAudit:
    """Everything checked about one round."""

    round_id: str
    query: str | None
    #: A catalogue round's entry cadence and the window it releases in ("2026-W49");
    #: both "" for an ad-hoc round (or one whose entry is not signed).
    cadence: str
    window: str
    parameters: Parameters | None
    candidates: tuple[str, ...]
    survivors: tuple[str, ...]
    dropped: tuple[str, ...]
    outcome: str  # "result", "abort" or "in progress"
    #: Whether the published sums were recomputed bit for bit; None when nothing was published.
    recomputed: bool | None
    charge: ChargeAudit | None
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return all(f.passed for f in self.findings)

    @property
    def failures(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.passed)


@dataclass(frozen=True)
class AuditReport:
    """The audit of a whole log: each round, then the checks of the log as a whole."""

    leaves: int
    rounds: tuple[RoundAudit, ...]
    findings: tuple[Finding, ...]
    #: Rho spent per budget period by the logged releases, exact "num/den".
    spent: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return all(f.passed for f in self.findings) and all(r.ok for r in self.rounds)

    @property
    def problems(self) -> list[str]:
        """Every failed finding as one line: where, which check, why."""
        lines = [f"log: {f.check}: {f.detail}" for f in self.findings if not f.passed]
        for entry in self.rounds:
            lines += [f"round {entry.round_id}: {f.check}: {f.detail}" for f in entry.failures]
        return lines

    def check(self) -> None:
        """Raise VerificationError listing the failures unless every check passed."""
        problems = self.problems
        if problems:
            raise VerificationError(f"audit failed, {len(problems)} problems: {summary(problems)}")


def summary(problems: Sequence[str]) -> str:
    """The first problems joined, and how many more there are."""
    shown = "; ".join(problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    return f"{shown}; and {more} more" if more > 0 else shown


def require(problems: Sequence[str], passed: str) -> str:
    """``passed`` when there are no problems, else VerificationError naming them."""
    if problems:
        raise VerificationError(summary(problems))
    return passed


class Checks:
    """Runs named checks and records each outcome; a failure never stops the others."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def run(self, name: str, check: Callable[[], str]) -> bool:
        """Record ``check()``'s statement as passed, or its error as the failure reason."""
        try:
            detail = check()
        except ScfedError as exc:
            self.findings.append(Finding(name, False, str(exc)))
            return False
        except (ValueError, ArithmeticError, LookupError) as exc:
            reason = f"the check could not be completed: {type(exc).__name__}: {exc}"
            self.findings.append(Finding(name, False, reason))
            return False
        self.findings.append(Finding(name, True, detail))
        return True

    def record(self, name: str, problems: Sequence[str], passed: str) -> bool:
        """Record a check whose problems were gathered in one pass over the log."""
        return self.run(name, lambda: require(problems, passed))
