"""The governance-signed member registry: sealing, opening and adding entries. Pure, no I/O.

The registry lists every member (identity key, TLS certificate fingerprint) and operator of a
federation. Governance signs each version; nodes and the coordinator accept only a registry
that verifies against the pinned governance key and names their own federation's origin.
Every change returns the next version: adding an entry, removing one (a member that leaves
or is suspended), replacing a party's keys (rotation), or naming the coordinator's new key.
"""

from __future__ import annotations

from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed.errors import ConfigError, MessageError, VerificationError
from scfed.wire import GOVERNANCE, REGISTRY
from scfed.wire.codec import decode_registry, encode
from scfed.wire.envelope import Envelope, seal, verify
from scfed.wire.messages import Member, Operator, Registry


def seal_registry(registry: Registry, governance: Ed25519PrivateKey) -> Envelope:
    """Sign ``registry`` with the governance key, bound to the registry's own origin."""
    return seal(governance, REGISTRY, GOVERNANCE, registry.origin, encode(registry))


def open_registry(envelope: Envelope, origin: str, governance_key: bytes) -> Registry:
    """The registry in ``envelope``; VerificationError unless governance signed it for origin.

    A body that verifies but does not decode raises RemoteProtocolError.
    """
    verify(envelope, origin, REGISTRY, governance_key)
    if envelope.signer != GOVERNANCE:
        raise VerificationError(f"the registry must be signed by governance, not {envelope.signer}")
    registry = decode_registry(envelope.body)
    if registry.origin != origin:
        raise VerificationError(
            f"the registry belongs to federation {registry.origin!r}, not {origin!r}"
        )
    return registry


def with_member(registry: Registry, member: Member) -> Registry:
    """The next version of ``registry`` with ``member`` added; ConfigError if already there."""
    _check_free(registry, member.member_id)
    _check_certificate(registry, member.tls_cert_sha256)
    members = sorted((*registry.members, member), key=lambda m: m.member_id)
    return replace(registry, version=registry.version + 1, members=tuple(members))


def with_operator(registry: Registry, operator: Operator) -> Registry:
    """The next version of ``registry`` with ``operator`` added; ConfigError if already there."""
    _check_free(registry, operator.name)
    _check_certificate(registry, operator.tls_cert_sha256)
    operators = sorted((*registry.operators, operator), key=lambda o: o.name)
    return replace(registry, version=registry.version + 1, operators=tuple(operators))


def without(registry: Registry, name: str) -> Registry:
    """The next version of ``registry`` without member or operator ``name``; ConfigError if
    it holds neither."""
    members = tuple(m for m in registry.members if m.member_id != name)
    operators = tuple(o for o in registry.operators if o.name != name)
    if len(members) + len(operators) == len(registry.members) + len(registry.operators):
        raise ConfigError(f"{name!r} is neither a member nor an operator of the registry")
    return replace(registry, version=registry.version + 1, members=members, operators=operators)


def with_member_keys(registry: Registry, member: Member) -> Registry:
    """The next version with the keys of a present member replaced by ``member``'s."""
    if registry.member(member.member_id) is None:
        raise ConfigError(f"member {member.member_id!r} is not in the registry")
    changed = with_member(without(registry, member.member_id), member)
    return replace(changed, version=registry.version + 1)


def with_operator_keys(registry: Registry, operator: Operator) -> Registry:
    """The next version with the certificate of a present operator replaced."""
    if not any(o.name == operator.name for o in registry.operators):
        raise ConfigError(f"operator {operator.name!r} is not in the registry")
    changed = with_operator(without(registry, operator.name), operator)
    return replace(changed, version=registry.version + 1)


def with_coordinator_key(registry: Registry, key: bytes) -> Registry:
    """The next version naming ``key`` as the coordinator's message and log key."""
    try:
        return replace(registry, version=registry.version + 1, coordinator_key=key)
    except MessageError as exc:
        raise ConfigError(str(exc)) from None


def _check_free(registry: Registry, name: str) -> None:
    """One name, one party: ``without`` and the issued certificate files go by name."""
    if registry.member(name) is not None:
        raise ConfigError(f"member {name!r} is already in the registry")
    if any(o.name == name for o in registry.operators):
        raise ConfigError(f"operator {name!r} is already in the registry")


def _check_certificate(registry: Registry, fingerprint: bytes) -> None:
    """A TLS certificate names one identity: refuse a fingerprint the registry already has."""
    taken = registry.member_by_certificate(fingerprint) or registry.operator_by_certificate(
        fingerprint
    )
    if taken is not None:
        raise ConfigError(f"certificate {fingerprint.hex()} is already in the registry")
