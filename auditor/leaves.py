"""Reading the log: every leaf decoded and authenticated against the registry. Pure.

Walking the leaves in order, the registry in force is the last governance-signed registry
seen, and it alone says who may sign what: governance signs registries, the coordinator its
announces, unmask requests, outcomes and charges, and each registered member its own round
messages. Each leaf's signature is verified once, its body decoded once. A leaf that fails is
reported and left out of the round checks, so nothing unauthenticated is believed. Registry and
policy versions only go forward: one older than the version in force, another body signed as
that version, or that version logged again is reported and does not take effect. An
authenticated announce that does not decode (one that lists a cell twice, say) is kept by its
hash with the reason, so that the round whose messages refer to it can say which leaf it was
and why it failed.

Messages outside rounds (a member's figure commitments and pledges, the coordinator's crisis
listings, proposals, answers and reveals) are authenticated and decoded the same way and kept
apart, in ``ReadLog.others``, for ``auditor/market.py``: the round checks never see them. An
attestation or a crisis post is never logged (a post in clear would name its firm): a leaf of
either is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from auditor.model import Checks, Finding
from scfed import wire
from scfed.errors import RefusedError, RemoteProtocolError, ScfedError, VerificationError
from scfed.policy import open_policy
from scfed.registry import open_registry
from scfed.versions import Held, check_forward
from scfed.wire import envelope as env
from scfed.wire.attest import FigureCommitment, Pledge
from scfed.wire.crisis import Answer, Listing, Proposal, Reveal
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Registry, RoundMessage
from scfed.wire.policy import Policy

#: A 1e6-cell masked vector is 8 MB; a leaf far beyond that is no protocol message.
MAX_LEAF_BYTES = 64 << 20

COORDINATOR_TYPES = wire.sent_by(wire.COORDINATOR)
NODE_TYPES = wire.sent_by(wire.MEMBER)
_DECODERS = {name: wire.MESSAGE_TYPES[name].decode for name in wire.ROUND_TYPES}
#: Logged messages outside rounds, checked by ``auditor/market.py``.
OTHER_TYPES = (*wire.ATTEST_TYPES, *wire.CRISIS_TYPES)
_OTHER_DECODERS = {name: wire.MESSAGE_TYPES[name].decode for name in OTHER_TYPES}
#: Message types that travel but are never logged: a firm's attestation goes to its lender
#: only, and a crisis post to the coordinator only (the log holds its listing).
UNLOGGED = (wire.ATTESTATION, wire.POST)

DECODE = "log.decode"
SIGNATURES = "log.signatures"
FIRST_REGISTRY = "log.first_registry"
REGISTRY_VERSIONS = "log.registry_versions"
POLICY_VERSIONS = "log.policy_versions"
NEVER_LOGGED = "log.never_logged"
_VERSION_CHECKS = {wire.REGISTRY: REGISTRY_VERSIONS, wire.POLICY: POLICY_VERSIONS}


@dataclass(frozen=True)
class Leaf:
    """One authenticated round message of the log."""

    index: int
    type: str
    signer: str
    #: The message's identity (Envelope.digest): what announce and request hashes refer to.
    digest: bytes
    #: The leaf's exact bytes; the same bytes logged twice are one message.
    data: bytes
    message: RoundMessage
    #: The registry in force where this leaf stands.
    registry: Registry
    #: The governance-signed policy (catalogue) in force there, if any.
    policy: Policy | None = None


OtherMessage = FigureCommitment | Pledge | Listing | Proposal | Answer | Reveal


@dataclass(frozen=True)
class Other:
    """One authenticated message of the log outside rounds (an ``OTHER_TYPES`` type)."""

    index: int
    type: str
    signer: str
    message: OtherMessage


@dataclass(frozen=True)
class ReadLog:
    """The log's authenticated round messages, its registries and what reading it found."""

    leaves: tuple[Leaf, ...]
    registries: tuple[tuple[int, Registry], ...]
    findings: tuple[Finding, ...]
    #: The latest governance-signed policy in the log, if any.
    policy: Policy | None = None
    #: Authenticated announces that do not decode: their hash -> (leaf index, why).
    rejected: Mapping[bytes, tuple[int, str]] = field(default_factory=dict)
    #: Authenticated messages outside rounds (attestations' and crisis mode's), in log order.
    others: tuple[Other, ...] = ()

    def registry_at(self, size: int) -> Registry | None:
        """The registry in force after the first ``size`` leaves, None before the first."""
        in_force = [registry for index, registry in self.registries if index < size]
        return in_force[-1] if in_force else None


@dataclass
class _Reader:
    origin: str
    governance_key: bytes
    leaves: list[Leaf] = field(default_factory=list)
    others: list[Other] = field(default_factory=list)
    registries: list[tuple[int, Registry]] = field(default_factory=list)
    policy: Policy | None = None
    rejected: dict[bytes, tuple[int, str]] = field(default_factory=dict)
    #: Each registry and policy version that took effect, oldest first, by envelope type.
    taken: dict[str, list[Held]] = field(
        default_factory=lambda: {wire.REGISTRY: [], wire.POLICY: []}
    )
    problems: dict[str, list[str]] = field(
        default_factory=lambda: {
            k: [] for k in (DECODE, SIGNATURES, NEVER_LOGGED, *_VERSION_CHECKS.values())
        }
    )

    @property
    def registry(self) -> Registry | None:
        return self.registries[-1][1] if self.registries else None

    def read(self, index: int, data: bytes) -> None:
        envelope = self._envelope(index, data)
        if envelope is None:
            return
        kind = envelope.type
        if kind == wire.REGISTRY:
            self._registry(index, envelope)
        elif kind == wire.POLICY:
            self._policy(index, envelope)
        elif kind in UNLOGGED:
            why = _UNLOGGED_WHY[kind]
            self.problems[NEVER_LOGGED].append(f"leaf {index} ({_what(envelope)}): {why}")
        elif kind in _OTHER_DECODERS:
            self._other(index, envelope)
        elif kind in _DECODERS:
            self._round(index, data, envelope)
        else:  # a type this auditor does not know how to check
            self.problems[DECODE].append(f"leaf {index}: no log entry has type {kind}")

    def _round(self, index: int, data: bytes, envelope: Envelope) -> None:
        """A round message, authenticated, decoded and kept for the round checks."""
        try:
            registry = self._authenticate(envelope)
        except VerificationError as exc:
            self.problems[SIGNATURES].append(f"leaf {index} ({_what(envelope)}): {exc}")
            return
        try:
            # The table's round types decode to round messages.
            message = cast("RoundMessage", _DECODERS[envelope.type](envelope.body))
        except RemoteProtocolError as exc:
            self.problems[DECODE].append(f"leaf {index} ({_what(envelope)}): {exc}")
            if envelope.type == wire.ANNOUNCE:
                self.rejected[envelope.digest(self.origin)] = (index, str(exc))
            return
        digest = envelope.digest(self.origin)
        self.leaves.append(
            Leaf(
                index, envelope.type, envelope.signer, digest, data, message, registry, self.policy
            )
        )

    def _other(self, index: int, envelope: Envelope) -> None:
        """A message outside rounds, authenticated like a round's and kept apart."""
        try:
            self._authenticate(envelope)
        except VerificationError as exc:
            self.problems[SIGNATURES].append(f"leaf {index} ({_what(envelope)}): {exc}")
            return
        try:
            # The table's attestation and crisis types decode to these messages.
            message = cast("OtherMessage", _OTHER_DECODERS[envelope.type](envelope.body))
        except RemoteProtocolError as exc:
            self.problems[DECODE].append(f"leaf {index} ({_what(envelope)}): {exc}")
            return
        self.others.append(Other(index, envelope.type, envelope.signer, message))

    def _envelope(self, index: int, data: bytes) -> Envelope | None:
        if len(data) > MAX_LEAF_BYTES:
            self.problems[DECODE].append(f"leaf {index} is {len(data)} bytes, over the limit")
            return None
        try:
            return Envelope.from_bytes(data)
        except RemoteProtocolError as exc:
            self.problems[DECODE].append(f"leaf {index}: {exc}")
            return None

    def _registry(self, index: int, envelope: Envelope) -> None:
        try:
            registry = open_registry(envelope, self.origin, self.governance_key)
        except VerificationError as exc:
            self.problems[SIGNATURES].append(f"leaf {index} (registry): {exc}")
            return
        except RemoteProtocolError as exc:
            self.problems[DECODE].append(f"leaf {index} (registry): {exc}")
            return
        if self._newer(index, envelope, registry.version):
            self.registries.append((index, registry))

    def _policy(self, index: int, envelope: Envelope) -> None:
        """A governance-signed policy takes effect for the leaves after it (newer only)."""
        try:
            policy = open_policy(envelope, self.origin, self.governance_key)
        except VerificationError as exc:
            self.problems[SIGNATURES].append(f"leaf {index} (policy): {exc}")
            return
        if self._newer(index, envelope, policy.version):
            self.policy = policy

    def _newer(self, index: int, envelope: Envelope, version: int) -> bool:
        """Whether a signed version takes effect. Going back (an older version, or another
        body signed as the version in force) would silently re-admit a member, restore a key,
        bring back an entry or lower a quorum; each version is logged once. So anything but
        a newer version is reported instead."""
        kind, taken = envelope.type, self.taken[envelope.type]
        held = taken[-1] if taken else None
        problems = self.problems[_VERSION_CHECKS[kind]]
        try:
            newer = check_forward(held, version, envelope.body)
        except RefusedError as exc:
            problems.append(f"leaf {index}: {exc}; it does not take effect")
            return False
        if held is not None and not newer:
            problems.append(
                f"leaf {index}: {kind} version {version} follows version {held.version} "
                f"{held.where} with the same body, logged again; it does not take effect"
            )
            return False
        taken.append(Held(kind, version, envelope.body, f"at leaf {index}"))
        return True

    def _authenticate(self, envelope: Envelope) -> Registry:
        """The registry in force, once the envelope verifies with the key it gives the signer."""
        registry = self.registry
        if registry is None:
            raise VerificationError("no registry is in force yet")
        if envelope.type in COORDINATOR_TYPES:
            if envelope.signer != wire.COORDINATOR:
                raise VerificationError(f"must be signed by the coordinator, not {envelope.signer}")
            key, whose = registry.coordinator_key, "the coordinator key"
        else:
            member = registry.member(envelope.signer)
            if member is None:
                raise VerificationError(
                    f"{envelope.signer} is not a member of registry version {registry.version}"
                )
            key, whose = member.identity_key, f"{member.member_id}'s registered identity key"
        try:
            env.verify(envelope, self.origin, envelope.type, key)
        except ScfedError:
            raise VerificationError(f"the signature does not verify with {whose}") from None
        return registry


_UNLOGGED_WHY = {
    wire.ATTESTATION: "an attestation goes to its lender only and is never logged",
    wire.POST: "a crisis post goes to the coordinator only and is never logged: "
    "in clear it names its firm",
}


def _what(envelope: Envelope) -> str:
    return f"{envelope.type} signed as {envelope.signer[:64]}"


def read_log(leaves: Sequence[bytes], *, origin: str, governance_key: bytes) -> ReadLog:
    """Decode and authenticate every leaf; findings for decoding, signatures and registries."""
    reader = _Reader(origin, governance_key)
    for index, data in enumerate(leaves):
        reader.read(index, data)
    checks = Checks()
    checks.record(DECODE, reader.problems[DECODE], f"all {len(leaves)} leaves decode")
    checks.record(
        SIGNATURES,
        reader.problems[SIGNATURES],
        f"all {len(leaves)} leaves carry the signature of a key registered where they stand",
    )
    checks.record(
        NEVER_LOGGED,
        reader.problems[NEVER_LOGGED],
        "no leaf is an attestation or a crisis post, which are never logged",
    )
    checks.run(FIRST_REGISTRY, lambda: _first_registry(reader.registries))
    for kind, check in _VERSION_CHECKS.items():
        versions = ", ".join(str(held.version) for held in reader.taken[kind]) or "none"
        checks.record(check, reader.problems[check], f"{kind} versions {versions}, each newer")
    return ReadLog(
        tuple(reader.leaves),
        tuple(reader.registries),
        tuple(checks.findings),
        reader.policy,
        reader.rejected,
        tuple(reader.others),
    )


def _first_registry(registries: Sequence[tuple[int, Registry]]) -> str:
    if not registries or registries[0][0] != 0:
        raise VerificationError("the first leaf is not a governance-signed registry")
    return f"leaf 0 is registry version {registries[0][1].version}, signed by governance"
