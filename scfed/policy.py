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
from dataclasses import dataclass
from fractions import Fraction

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protos.scfed.v1 import messages_pb2 as pb
from scfed.dp.ledger import PERIODS, Budget, parse_rho
from scfed.dp.params import Noise, parse_decimal
from scfed.envelope import GOVERNANCE, POLICY, Envelope, seal, verify
from scfed.errors import ConfigError, RemoteProtocolError, ScfedError, VerificationError
from scfed.messages import MAX_NAME, MAX_PARTICIPANTS, Announce, decode_noise, noise_to_proto

METRICS = ("demand-capacity", "stock", "utilisation", "days-of-supply", "lead-time", "book-to-bill")
MAX_ENTRIES = 200
MAX_COMMODITIES = 5000
MAX_HORIZON_WEEKS = 104
DEFAULT_MIN_CONTRIBUTORS = 5
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
    max_concentration: str
    presence_weight: int
    concentration_scale: int
    recipients: tuple[str, ...]

    @property
    def concentration_limit(self) -> Fraction:
        return parse_decimal(self.max_concentration, "the largest concentration")


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
    if not m.HasField("noise") or not m.noise.disclosure:
        raise RemoteProtocolError(f"{name}: an entry's noise must cover its disclosure cells")
    noise = decode_noise(m.noise, m.min_contributors, RemoteProtocolError)
    try:
        limit = parse_decimal(m.max_concentration, "the largest concentration")
    except ValueError as exc:
        raise RemoteProtocolError(f"{name}: {exc}") from None
    if limit > 1 or not 1 <= m.presence_weight <= 2**32 or not 1 <= m.concentration_scale <= 2**40:
        raise RemoteProtocolError(f"{name}: concentration at most 1, weights and scale positive")
    if not m.recipients or any(not _RECIPIENT.fullmatch(r) for r in m.recipients):
        raise RemoteProtocolError(f"{name}: recipients must be names like 'members' or 'public'")
    purpose = m.purpose[:1000]
    return CatalogueEntry(
        name, purpose, m.metric, commodities, m.horizon_weeks, noise, m.min_contributors,
        m.max_concentration, m.presence_weight, m.concentration_scale, tuple(m.recipients),
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
