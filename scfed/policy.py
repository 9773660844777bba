"""The governance-signed policy: sealing and opening it, and the rules that read it (what a
catalogue plans to spend, what a release costs, its cadence window, a round's witness
quorum). Pure, no I/O.

The policy itself, its catalogue entries and their wire form are messages
(``scfed.wire.policy``); governance signs each version like the registry. The
coordinator can only start rounds of an entry as signed; every node checks its announce
against the entry and takes part only in entries its own configuration opted into.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed.dp.ledger import Budget, window_label, windows_per_period
from scfed.errors import PrivacyBudgetError, ScfedError, VerificationError
from scfed.groups import groups
from scfed.note_format import MAX_SIGNATURES
from scfed.wire import GOVERNANCE, POLICY
from scfed.wire.envelope import Envelope, seal, verify
from scfed.wire.messages import Announce, Registry
from scfed.wire.policy import CatalogueEntry, Policy, decode_policy, encode_policy

#: Most witness cosignatures one checkpoint note carries (one signature is the log's own).
MAX_PROVABLE_QUORUM = MAX_SIGNATURES - 1


@dataclass(frozen=True)
class PlannedSpend:
    """What a catalogue costs a node per budget period, for the entries it opted into."""

    period: str
    lines: tuple[tuple[str, str, int, Fraction], ...]  # (entry, cadence, releases, rho each)

    @property
    def total(self) -> Fraction:
        return sum((n * rho for _, _, n, rho in self.lines), Fraction(0))


def planned_spend(
    policy: Policy, opted_in: Iterable[str], period: str, group: int = 1
) -> PlannedSpend:
    """Cadence x cost per release, summed over the entries named in ``opted_in``, for
    corporate groups of at most ``group`` members."""
    names = set(opted_in)
    lines = tuple(
        (e.name, e.cadence, windows_per_period(e.cadence, period), e.rho_planned(group))
        for e in policy.entries
        if e.name in names
    )
    return PlannedSpend(period, lines)


def check_plan(
    policy: Policy, opted_in: Iterable[str], budget: Budget, group: int = 1
) -> PlannedSpend:
    """The plan; PrivacyBudgetError when the opted-in entries would spend past the cap."""
    plan = planned_spend(policy, opted_in, budget.period, group)
    if plan.total > budget.cap:
        parts = ", ".join(f"{name} {n} x {float(rho):.4g}" for name, _, n, rho in plan.lines)
        raise PrivacyBudgetError(
            f"policy version {policy.version} plans rho {float(plan.total):.4g} a "
            f"{budget.period} for the entries this node opted into ({parts}), past its cap "
            f"{float(budget.cap):.4g}; this node takes part in none of them until that changes"
        )
    return plan


def _round_entry(policy: Policy | None, announce: Announce) -> CatalogueEntry | None:
    """The catalogue entry a round releases; None for an ad-hoc round."""
    return policy.entry(announce.query) if policy is not None and announce.week else None


def _overlap(policy: Policy | None, announce: Announce) -> Fraction:
    """How far the round's disclosure segments move together; 1 (the most) if unknown."""
    entry = _round_entry(policy, announce)
    return entry.overlap if entry is not None else Fraction(1)


def release_rho(
    policy: Policy | None, announce: Announce, registry: Registry, survivors: Sequence[str]
) -> Fraction:
    """What releasing the sum of ``survivors`` costs each of them: the one rule node,
    coordinator and auditor all apply. Corporate groups count as one firm: the members of
    the t_collude largest groups among the survivors may pool their noise, and the largest
    group among the candidates scales the concentration segment's sensitivity."""
    noise = announce.noise
    pooled = groups(registry, survivors).colluders(noise.t_collude)
    return noise.rho(
        announce.n_min, len(survivors), colluders=pooled,
        group=groups(registry, announce.candidates).largest, overlap=_overlap(policy, announce),
    )  # fmt: skip


def release_window(policy: Policy | None, announce: Announce) -> str:
    """The cadence window a catalogue round releases in; "" for an ad-hoc round."""
    entry = _round_entry(policy, announce)
    if entry is None:
        return ""
    return window_label(entry.cadence, date.fromisoformat(announce.week))


def planned_release_rho(policy: Policy | None, announce: Announce, registry: Registry) -> Fraction:
    """What the release costs if the planned survivors survive, counting every member of
    the t_collude largest groups among the candidates as a colluder: the announce-time
    estimate of ``release_rho``, which is checked again for the actual survivors."""
    noise, candidates = announce.noise, groups(registry, announce.candidates)
    return noise.rho(
        announce.n_min, noise.planned_for(announce.n_min),
        colluders=candidates.colluders(noise.t_collude), group=candidates.largest,
        overlap=_overlap(policy, announce),
    )  # fmt: skip


def witness_quorum(policy: Policy | None, announce: Announce) -> int:
    """Cosignatures of the round's candidates a privacy-critical step needs: the policy's
    quorum, else the Shamir threshold t (a majority, so two forks cannot both have one), or
    on a sparse graph a majority of the candidates, at most the MAX_PROVABLE_QUORUM that one
    checkpoint note can carry."""
    if policy is not None and policy.witness_quorum:
        return policy.witness_quorum
    if announce.sparse:  # t is a majority of a neighbourhood only
        return min(len(announce.candidates) // 2 + 1, MAX_PROVABLE_QUORUM)
    return announce.threshold


# ---- signatures ----


def seal_policy(policy: Policy, governance: Ed25519PrivateKey) -> Envelope:
    """Sign ``policy`` with the governance key, bound to its origin."""
    return seal(governance, POLICY, GOVERNANCE, policy.origin, encode_policy(policy))


def open_policy(envelope: Envelope, origin: str, governance_key: bytes) -> Policy:
    """The policy in ``envelope``; VerificationError unless governance signed it for origin."""
    verify(envelope, origin, POLICY, governance_key)
    if envelope.signer != GOVERNANCE:
        raise VerificationError(f"the policy must be signed by governance, not {envelope.signer}")
    try:
        policy = decode_policy(envelope.body)
    except ScfedError as exc:
        raise VerificationError(f"the signed policy is invalid: {exc}") from exc
    if policy.origin != origin:
        raise VerificationError(f"the policy belongs to {policy.origin!r}, not {origin!r}")
    return policy
