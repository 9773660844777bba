"""What governance issued, checked before a party puts it in place. Edge code.

``install`` checks what it is given before it replaces anything: a certificate must come
from the federation's CA and be for this party and a key this folder holds (the pending
``*.next`` keys of a rotation are put in place with it); a registry or policy must be signed
by governance, for this federation, and be no older than the one installed. ``check_folder``
loads a folder's configuration, keys and certificates as its daemon would. The ``scfed
node | operator | coordinator install | check`` commands call these.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from coordinator.store import read_rounds
from edge.config import read_governance_key, read_policy_file, read_registry_file
from edge.files import read_private_key_file, read_public_file, write_public
from edge.transport import check_tls_files
from governance.party import IDENTITY_KEY, NEXT, Who, open_folder
from scfed import pki, wire
from scfed.config import CoordinatorConfig, TlsFiles
from scfed.enrolment import KIND_COORDINATOR, KIND_MEMBER
from scfed.errors import ConfigError, RefusedError, ScfedError
from scfed.versions import Held, check_forward
from scfed.wire.codec import decode_registry
from scfed.wire.envelope import Envelope
from scfed.wire.policy import decode_policy


def _promote(path: Path) -> None:
    """Put the pending ``path.next`` in place of ``path``."""
    try:
        os.replace(path.with_name(path.name + NEXT), path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot replace: {exc.strerror or exc}") from exc


def _read_certificate(
    tls: TlsFiles, who: Who, server_name: str, path: Path, now: datetime
) -> bytes:
    """The PEM in ``path`` once it checks: issued by this folder's CA, valid, for ``who``."""
    pem = read_public_file(path)
    try:
        certificate = pki.load_certificate_pem(pem)
        ca = pki.load_certificate_pem(read_public_file(tls.ca))
        pki.verify_issued_by(certificate, ca, now)
        pki.check_subject(
            certificate, who.kind, server_name if who.kind == KIND_COORDINATOR else who.name
        )
    except ScfedError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return pem


def _holds(key_file: Path, certificate: bytes) -> bool:
    if not key_file.exists():
        return False
    key = pki.load_private_key_pem(read_private_key_file(key_file))
    return pki.same_key(pki.load_certificate_pem(certificate), key)


def install_certificate(  # noqa: PLR0917 (what is checked, against what)
    tls: TlsFiles,
    who: Who,
    server_name: str,
    certificate_file: Path,
    now: datetime,
    identity_key: Path | None = None,
) -> bool:
    """Check and install a certificate for this folder's key or its pending new one; True
    if the pending keys were put in place (a member's identity key with its TLS key; by
    default the one beside the TLS key)."""
    pem = _read_certificate(tls, who, server_name, certificate_file, now)
    pending = tls.key.with_name(tls.key.name + NEXT)
    if _holds(pending, pem):
        _promote(tls.key)
        if who.kind == KIND_MEMBER:
            _promote(identity_key or tls.key.with_name(IDENTITY_KEY))
        write_public(tls.certificate, pem)
        return True
    if not _holds(tls.key, pem):
        raise ConfigError(f"{certificate_file}: the certificate is for a key this folder lacks")
    write_public(tls.certificate, pem)
    return False


def _forward(kind: str, new_file: Path, new: Envelope, version: int, installed: Path) -> None:
    """ConfigError unless the signed ``version`` in ``new_file`` may replace the one
    ``installed`` (scfed.versions: never older, never another body as the same version)."""
    if not installed.exists():
        return
    decode = decode_policy if kind == wire.POLICY else decode_registry
    signed = Envelope.from_bytes(read_public_file(installed))
    current = Held(kind, decode(signed.body).version, signed.body, f"installed in {installed}")
    try:
        check_forward(current, version, new.body)
    except RefusedError as exc:
        raise ConfigError(f"{new_file}: {exc}") from None


def _log_key(signing_key: Path, wanted: bytes) -> bool:
    """Whether ``wanted`` is the pending log key (True) or the current one (False)."""
    for path, pending in (
        (signing_key.with_name(signing_key.name + NEXT), True),
        (signing_key, False),
    ):
        if path.exists():
            key = pki.load_ed25519_private_pem(read_private_key_file(path))
            if pki.ed25519_public_raw(key.public_key()) == wanted:
                return pending
    raise ConfigError("the registry names a coordinator log key that this folder does not hold")


def install_registry(config: CoordinatorConfig, new_file: Path) -> tuple[int, bool]:
    """Check and install a governance-signed registry; its version, and whether the pending
    log key it names was put in place (the coordinator signs with it from its next start)."""
    governance = read_governance_key(config.governance_key)
    registry, envelope = read_registry_file(new_file, config.origin, governance)
    _forward(wire.REGISTRY, new_file, envelope, registry.version, config.registry)
    promote = _log_key(config.signing_key, registry.coordinator_key)
    if promote:
        _check_finished(config.database)
        _promote(config.signing_key)
    write_public(config.registry, envelope.to_bytes())
    return registry.version, promote


def _check_finished(database: Path) -> None:
    """ConfigError if a round has no outcome yet: the coordinator finishes it from its log
    at its next start, re-signing with the key the round began with."""
    if any(stored.outcome is None for stored in read_rounds(database)):
        raise ConfigError(
            "a round is unfinished: start the coordinator once with its current log key, "
            "which finishes it, then install this registry"
        )


def install_policy(config: CoordinatorConfig, new_file: Path) -> int:
    """Check and install a governance-signed policy no older than the one installed."""
    governance = read_governance_key(config.governance_key)
    policy, envelope = read_policy_file(new_file, config.origin, governance)
    _forward(wire.POLICY, new_file, envelope, policy.version, config.policy)
    write_public(config.policy, envelope.to_bytes())
    return policy.version


def install_issued(kind: str, config: Path, certificate: Path, now: datetime) -> bool:
    """``install_certificate`` for the folder of the configuration file ``config``."""
    folder = open_folder(kind, config)
    identity = folder.signing_key if kind == KIND_MEMBER else None
    return install_certificate(
        folder.tls, folder.who, folder.server_name, certificate, now, identity
    )


def check_folder(kind: str, path: Path, now: datetime) -> list[str]:
    """Load a party's configuration and check its keys and certificates as its daemon or
    commands will; the warnings (certificates expiring soon). ScfedError on any problem."""
    folder = open_folder(kind, path)
    warnings = check_tls_files(folder.tls, now)
    _read_certificate(folder.tls, folder.who, folder.server_name, folder.tls.certificate, now)
    if folder.signing_key is not None:
        pki.load_ed25519_private_pem(read_private_key_file(folder.signing_key))
    if folder.coordinator is not None:
        _check_coordinator(folder.coordinator)
    return warnings


def _check_coordinator(config: CoordinatorConfig) -> None:
    governance = read_governance_key(config.governance_key)
    registry, _ = read_registry_file(config.registry, config.origin, governance)
    if _log_key(config.signing_key, registry.coordinator_key):
        raise ConfigError(f"{config.registry}: names the pending log key; install it first")
    if config.policy.exists():
        read_policy_file(config.policy, config.origin, governance)
