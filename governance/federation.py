"""Governance's folder, offline: the federation's keys, enrolment and removal. Edge code.

Governance holds the two keys that everyone trusts: the Ed25519 key that signs the registry
and the policy, and the federation CA's key. Neither ever leaves its folder, which nobody
else needs. Every other party makes its own keys on its own machine (``scfed node init``,
``scfed operator init``, ``scfed coordinator init``) and hands governance an enrolment
request of public parts; governance answers with a certificate and a new registry version,
which are files to hand back. A governance folder holds::

    governance.key      the registry and policy signing key (private)
    ca.key              the federation CA's key (private)
    public/             what every party receives: federation.toml, ca.pem, governance.pub,
                        and the latest registry.signed and policy.signed
    issued/NAME.pem     the certificate issued to each party

The first request governance enrols is the coordinator's, whose log key the first registry
names. Every change (a member enrolled, removed or given new keys) is the next registry
version, signed here; the operator installs it with ``scfed coordinator install``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.config import load_federation_config, read_registry_file
from edge.files import read_private_key_file, read_public_file, write_private, write_public
from governance._toml import format_toml
from scfed import enrolment, pki
from scfed.config import FederationConfig, check_address, check_name, check_origin
from scfed.enrolment import KIND_COORDINATOR, KIND_MEMBER, Request
from scfed.errors import ConfigError
from scfed.registry import (
    seal_registry,
    with_coordinator_key,
    with_member,
    with_member_keys,
    with_operator,
    with_operator_keys,
    without,
)
from scfed.wire.messages import Member, Operator, Registry

GOVERNANCE_KEY = "governance.key"
CA_KEY = "ca.key"
PUBLIC = "public"
FEDERATION_FILE = "federation.toml"
CA_CERTIFICATE = "ca.pem"
GOVERNANCE_PUBLIC = "governance.pub"
REGISTRY_FILE = "registry.signed"
POLICY_FILE = "policy.signed"
ISSUED = "issued"
COORDINATOR_NAME = "coordinator"


# ---- init ----


def _settings(directory: Path, name: str, origin: str | None, address: str) -> FederationConfig:
    """The validated settings of a new federation; ConfigError names the bad option."""
    try:
        check_name(name)
    except ConfigError as exc:
        raise ConfigError(f"--name: {exc}") from exc
    origin = f"scfed.example/{name}" if origin is None else origin
    for option, value, check in (
        ("--origin", origin, check_origin),
        ("--address", address, check_address),
    ):
        try:
            check(value)
        except ConfigError as exc:
            raise ConfigError(f"{option}: {exc}") from exc
    path = Path(os.path.abspath(directory / PUBLIC / FEDERATION_FILE))
    return FederationConfig(path, name, origin, address, f"coordinator.{name}.scfed")


def check_empty(directory: Path) -> None:
    """ConfigError unless ``directory`` is new or an empty folder."""
    try:
        if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
            raise ConfigError(f"{directory}: exists and is not a folder")
        if directory.exists() and any(directory.iterdir()):
            raise ConfigError(f"{directory}: folder is not empty; choose a new or empty folder")
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot inspect: {exc.strerror or exc}") from exc


def make_folder(folder: Path) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot create folder: {exc.strerror or exc}") from exc


def _federation_toml(settings: FederationConfig) -> bytes:
    document = {
        "name": settings.name,
        "origin": settings.origin,
        "address": settings.address,
        "server_name": settings.server_name,
    }
    return format_toml(
        f"scfed federation {settings.name}: made by 'scfed federation init'", document
    )


def governance_text(key: Ed25519PrivateKey) -> bytes:
    return (pki.ed25519_public_text(key.public_key()) + "\n").encode("ascii")


def init_federation(
    directory: Path, name: str, origin: str | None, address: str, now: datetime
) -> None:
    """Create governance's folder: its signing key, the CA and the public files."""
    settings = _settings(directory, name, origin, address)
    check_empty(directory)
    governance, ca_key = Ed25519PrivateKey.generate(), pki.new_tls_key()
    ca = pki.new_ca(name, ca_key, now)
    make_folder(directory)  # not just PUBLIC: mkdir's parents ignore the mode
    make_folder(directory / PUBLIC)
    write_private(directory / GOVERNANCE_KEY, pki.private_key_pem(governance))
    write_private(directory / CA_KEY, pki.private_key_pem(ca_key))
    write_public(directory / PUBLIC / CA_CERTIFICATE, pki.certificate_pem(ca))
    write_public(directory / PUBLIC / GOVERNANCE_PUBLIC, governance_text(governance))
    write_public(directory / PUBLIC / FEDERATION_FILE, _federation_toml(settings))


# ---- A governance folder, opened ----


@dataclass(frozen=True)
class Governance:
    """A governance folder with its private keys, and the registry if one was signed."""

    directory: Path
    settings: FederationConfig
    key: Ed25519PrivateKey
    ca: pki.Issued
    registry: Registry | None

    @property
    def registry_file(self) -> Path:
        return self.directory / PUBLIC / REGISTRY_FILE

    def publish(self, registry: Registry) -> Path:
        """Sign ``registry`` and write it as the latest version; its file."""
        write_public(self.registry_file, seal_registry(registry, self.key).to_bytes())
        return self.registry_file

    def current(self) -> Registry:
        if self.registry is None:
            raise ConfigError(
                f"{self.directory}: no registry yet; enrol the coordinator's request first "
                "(its log key is in every registry)"
            )
        return self.registry


def open_governance(directory: Path) -> Governance:
    """Load a governance folder: its settings, keys and the verified registry, if any."""
    public = directory / PUBLIC
    settings = load_federation_config(public / FEDERATION_FILE)
    key = pki.load_ed25519_private_pem(read_private_key_file(directory / GOVERNANCE_KEY))
    ca_key = pki.load_private_key_pem(read_private_key_file(directory / CA_KEY))
    ca = pki.load_certificate_pem(read_public_file(public / CA_CERTIFICATE))
    registry = None
    if (public / REGISTRY_FILE).exists():
        raw = pki.ed25519_public_raw(key.public_key())
        registry = read_registry_file(public / REGISTRY_FILE, settings.origin, raw)[0]
    return Governance(directory, settings, key, pki.Issued(ca_key, ca), registry)


# ---- enroll ----


@dataclass(frozen=True)
class Enrolled:
    """What governance hands back: a certificate file and the registry file."""

    certificate: Path
    registry: Path
    version: int


def read_request(path: Path) -> tuple[Request, bytes]:
    """The request in ``path`` and the file's bytes; ConfigError naming the file."""
    data = read_public_file(path)
    try:
        return enrolment.decode(data), data
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _certificate(governance: Governance, request: Request, now: datetime) -> bytes:
    name = governance.settings.name
    if request.kind == KIND_COORDINATOR:
        names = [governance.settings.server_name, *request.hosts]
        certificate = pki.issue_server(governance.ca, name, names, request.tls_key, now)
    else:
        certificate = pki.issue_client(
            governance.ca, name, request.name, request.kind, request.tls_key, now
        )
    return pki.certificate_pem(certificate)


def _entry(governance: Governance, request: Request, fingerprint: bytes, replace: bool) -> Registry:
    """The next registry with the request's party in it (or, with ``replace``, its new keys)."""
    if request.kind == KIND_COORDINATOR:
        if request.name != COORDINATOR_NAME:
            raise ConfigError(f"the coordinator's request is named {COORDINATOR_NAME!r}")
        if governance.registry is None:
            return Registry(governance.settings.origin, 1, request.key, (), ())
        if not replace:
            raise ConfigError("the coordinator is enrolled already; pass --replace for new keys")
        return with_coordinator_key(governance.registry, request.key)
    registry = governance.current()
    if request.name == COORDINATOR_NAME:
        raise ConfigError(f"{COORDINATOR_NAME!r} is the coordinator's name; choose another")
    if request.kind == KIND_MEMBER:
        member = Member(request.name, request.display_name, request.key, fingerprint, request.group)
        return (with_member_keys if replace else with_member)(registry, member)
    operator = Operator(request.name, fingerprint)
    return (with_operator_keys if replace else with_operator)(registry, operator)


def enroll(
    directory: Path, request_file: Path, now: datetime, *, replace: bool = False
) -> Enrolled:
    """Turn a party's request into its certificate and the next registry version."""
    governance = open_governance(directory)
    request, _ = read_request(request_file)
    if request.origin != governance.settings.origin:
        raise ConfigError(
            f"{request_file}: the request is for federation {request.origin!r}, "
            f"not {governance.settings.origin!r}"
        )
    pem = _certificate(governance, request, now)
    registry = _entry(governance, request, pki.fingerprint_pem(pem), replace)
    certificate = directory / ISSUED / f"{request.name}.pem"
    make_folder(certificate.parent)
    write_public(certificate, pem)
    return Enrolled(certificate, governance.publish(registry), registry.version)


def remove(directory: Path, name: str) -> Enrolled:
    """The next registry version without member or operator ``name``."""
    governance = open_governance(directory)
    registry = without(governance.current(), check_name(name))
    path = governance.publish(registry)
    return Enrolled(directory / ISSUED / f"{name}.pem", path, registry.version)
