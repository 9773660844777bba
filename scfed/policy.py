"""The governance-signed policy: the query catalogue and the federation's budget. Pure.

Governance signs each policy version (type "policy", signer "governance"), like the
registry. A catalogue entry fixes everything a round of it may do: the metric and the
commodities its cells group by, the horizon, the noise and privacy unit, the disclosure
rules (k contributors, the largest Herfindahl index) and who may receive the results. The
coordinator can only start rounds of an entry as signed; every node checks its announce
against the entry and takes part only in entries its own configuration opted into.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protos.scfed.v1 import messages_pb2 as pb
from scfed.dp.ledger import (
    CADENCES,
    PERIODS,
    Budget,
    parse_rho,
    window_label,
    windows_per_period,
)
from scfed.dp.params import Noise, parse_decimal
from scfed.envelope import GOVERNANCE, POLICY, Envelope, seal, verify
from scfed.errors import (
    ConfigError,
    PrivacyBudgetError,
    PrivacyParameterError,
    RemoteProtocolError,
    ScfedError,
    VerificationError,
)
from scfed.groups import groups
from scfed.messages import (
    MAX_NAME,
    MAX_PARTICIPANTS,
    Announce,
    Registry,
    decode_noise,
    noise_to_proto,
)

#: Bins of the days-of-supply and quoted lead-time histograms: (label, lower bound).
DOS_BINS = (("0-7d", 0), ("7-14d", 7), ("14-30d", 14), ("30-60d", 30), ("60d+", 60))
LEAD_BINS = (("0-8w", 0), ("8-16w", 8), ("16-26w", 16), ("26-52w", 26), ("52w+", 52))
#: The components of each metric's cells, in layout order.
METRIC_COMPONENTS: dict[str, tuple[str, ...]] = {
    "demand-capacity": ("demand", "capacity_actual", "capacity_max"),
    "stock": ("stock_finished", "stock_wip"),
    "book-to-bill": ("bookings", "billings"),
    "utilisation": ("utilisation",),
    "days-of-supply": tuple(f"dos:{label}" for label, _ in DOS_BINS),
    "lead-time": tuple(f"lead:{label}" for label, _ in LEAD_BINS),
}
METRICS = tuple(METRIC_COMPONENTS)
MAX_ENTRIES = 200
MAX_COMMODITIES = 5000
MAX_HORIZON_WEEKS = 104
DEFAULT_MIN_CONTRIBUTORS = 5
DEFAULT_PLANNED_PERCENT = 80
#: A cell is published only when it is clear that no one firm holds this share of it.
DEFAULT_DOMINANCE = "0.6"
#: Largest presence threshold or concentration scale, in grid units: squares stay exact.
MAX_SCALE = 2**26
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_RECIPIENT = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    purpose: str
    metric: str
    commodities: tuple[str, ...]
    horizon_weeks: int
    noise: Noise
    min_contributors: int
    dominance: str
    presence_threshold: int
    concentration_scale: int
    recipients: tuple[str, ...]
    cadence: str = "weekly"
    planned_percent: int = DEFAULT_PLANNED_PERCENT
    #: Q per commodity, or per commodity and component (commodity-major); () for
    #: concentration_scale everywhere.
    concentration_scales: tuple[int, ...] = ()

    def scale(self, commodity: str, component: str) -> int:
        """The concentration scale Q of a cell."""
        scales = self.concentration_scales
        if not scales:
            return self.concentration_scale
        k = self.commodities.index(commodity)
        if len(scales) == len(self.commodities):
            return scales[k]
        components = METRIC_COMPONENTS[self.metric]
        return scales[k * len(components) + components.index(component)]

    @property
    def dominance_limit(self) -> Fraction:
        """The share of a cell no one firm may hold for the cell to be published."""
        return parse_decimal(self.dominance, "the dominance limit")

    def planned(self, candidates: int) -> int:
        """The survivors a round with ``candidates`` plans its noise for."""
        return max(self.min_contributors, self.planned_percent * candidates // 100)

    @property
    def overlap(self) -> Fraction:
        """(2 P + 1) / 2 Q for the smallest scale Q: how far the two disclosure segments
        move together (Noise.rho)."""
        return Fraction(2 * self.presence_threshold + 1, 2 * min(self._scales))

    @property
    def _scales(self) -> tuple[int, ...]:
        return self.concentration_scales or (self.concentration_scale,)

    def rho_planned(self, group: int = 1) -> Fraction:
        """The most one release costs when the planned survivors (or more) survive, with
        corporate groups of at most ``group`` members."""
        return self.noise.planned_rho(group, self.overlap)


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


@dataclass(frozen=True)
class Policy:
    origin: str
    version: int
    taxonomy_version: str
    rho_cap: str
    period: str
    entries: tuple[CatalogueEntry, ...]
    witness_quorum: int = 0

    @property
    def budget(self) -> Budget:
        return Budget(parse_rho(self.rho_cap), self.period)

    def entry(self, name: str) -> CatalogueEntry | None:
        return next((e for e in self.entries if e.name == name), None)


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
    quorum, else the Shamir threshold t (a majority, so two forks cannot both have one)."""
    if policy is not None and policy.witness_quorum:
        return policy.witness_quorum
    return announce.threshold


# ---- wire form ----


def encode_policy(policy: Policy) -> bytes:
    entries = [
        pb.CatalogueEntry(**(vars(e) | {"noise": noise_to_proto(e.noise)})) for e in policy.entries
    ]
    fields = vars(policy) | {"entries": entries}
    return pb.Policy(**fields).SerializeToString()


def decode_policy(body: bytes) -> Policy:
    """A validated policy; RemoteProtocolError names the first thing wrong."""
    m = pb.Policy()
    try:
        m.ParseFromString(body)
    except Exception as exc:  # protobuf raises its own DecodeError subclasses
        raise RemoteProtocolError(f"a malformed policy: {exc}") from None
    if len(m.entries) > MAX_ENTRIES:
        raise RemoteProtocolError(f"a catalogue holds at most {MAX_ENTRIES} entries")
    entries = tuple(_entry(e) for e in m.entries)
    if len({e.name for e in entries}) != len(entries):
        raise RemoteProtocolError("two catalogue entries share a name")
    policy = Policy(
        m.origin, m.version, m.taxonomy_version, m.rho_cap, m.period, entries, m.witness_quorum
    )
    _check_policy(policy)
    return policy


def _check_policy(policy: Policy) -> None:
    if not policy.origin or len(policy.origin) > MAX_NAME or policy.version < 1:
        raise RemoteProtocolError("a policy needs an origin and a version from 1")
    if policy.witness_quorum > MAX_PARTICIPANTS:
        raise RemoteProtocolError(f"a witness quorum above {MAX_PARTICIPANTS} cannot be met")
    if policy.period not in PERIODS or not policy.taxonomy_version:
        raise RemoteProtocolError(f"the policy's period must be one of {', '.join(PERIODS)}")
    try:
        policy.budget  # noqa: B018 - validates the cap
    except ConfigError as exc:
        raise RemoteProtocolError(f"the policy's budget: {exc}") from None


def _entry(m: pb.CatalogueEntry) -> CatalogueEntry:
    from scfed.taxonomy import parse_commodity

    name = m.name
    if not _NAME.fullmatch(name) or m.metric not in METRICS:
        raise RemoteProtocolError(f"catalogue entry {name[:64]!r}: bad name or metric {m.metric!r}")
    commodities = tuple(m.commodities)
    if not 0 < len(commodities) <= MAX_COMMODITIES or list(commodities) != sorted(set(commodities)):
        raise RemoteProtocolError(f"{name}: 1 to {MAX_COMMODITIES} sorted, distinct commodities")
    for key in commodities:
        try:
            parse_commodity(key)
        except ValueError as exc:
            raise RemoteProtocolError(f"{name}: commodity {key[:80]!r}: {exc}") from None
    return _entry_rest(m, name, commodities)


def _entry_rest(m: pb.CatalogueEntry, name: str, commodities: tuple[str, ...]) -> CatalogueEntry:
    if not 1 <= m.horizon_weeks <= MAX_HORIZON_WEEKS or not 2 <= m.min_contributors <= 1000:
        raise RemoteProtocolError(f"{name}: horizon 1..{MAX_HORIZON_WEEKS}, k 2..1000")
    if m.cadence not in CADENCES or not 1 <= m.planned_percent <= 100:
        raise RemoteProtocolError(
            f"{name}: cadence one of {', '.join(CADENCES)}, planned survivors 1..100 percent"
        )
    if not m.HasField("noise") or not m.noise.disclosure or m.noise.planned:
        raise RemoteProtocolError(f"{name}: an entry's noise must cover its disclosure cells")
    noise = decode_noise(m.noise, m.min_contributors, RemoteProtocolError)
    try:
        limit = parse_decimal(m.dominance, "the dominance limit")
    except PrivacyParameterError as exc:
        raise RemoteProtocolError(f"{name}: {exc}") from None
    scales = (m.concentration_scale, *m.concentration_scales)
    per_cell = len(commodities) * len(METRIC_COMPONENTS[m.metric])
    if len(m.concentration_scales) not in (0, len(commodities), per_cell):
        raise RemoteProtocolError(
            f"{name}: one concentration scale per commodity, or per commodity and component"
        )
    if (
        limit > 1
        or not 1 <= m.presence_threshold <= MAX_SCALE
        or not all(1 <= q <= MAX_SCALE for q in scales)
    ):
        raise RemoteProtocolError(
            f"{name}: dominance at most 1, presence threshold and concentration scales 1..2^26"
        )
    if not m.recipients or any(not _RECIPIENT.fullmatch(r) for r in m.recipients):
        raise RemoteProtocolError(f"{name}: recipients must be names like 'members' or 'public'")
    purpose = m.purpose[:1000]
    return CatalogueEntry(
        name, purpose, m.metric, commodities, m.horizon_weeks, noise, m.min_contributors,
        m.dominance, m.presence_threshold, m.concentration_scale, tuple(m.recipients),
        m.cadence, m.planned_percent, tuple(m.concentration_scales),
    )  # fmt: skip


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
