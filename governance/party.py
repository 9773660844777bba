"""A party's own folder: its keys made where they are kept. Edge code.

``init_party`` makes a folder on the party's own machine from governance's public files: the
TLS key, for a member its Ed25519 identity key and for the coordinator its log key, the
configuration, and an enrolment request of public parts only (``scfed.enrolment``).
Governance answers with a certificate (and, for the operator, registry and policy files),
which ``governance.install`` checks before it puts them in place. ``rotate`` makes new keys
beside the old (``*.next``) and a new request; installing the certificate for them puts them
in place. ``open_folder`` reads a folder as its configuration file describes it. The
``scfed node | operator | coordinator init | rotate`` commands call these.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.config import (
    load_coordinator_config,
    load_federation_config,
    load_node_config,
    load_operator_config,
    read_governance_key,
)
from edge.files import read_public_file, write_private, write_public
from governance._toml import TomlDocument, format_toml
from governance.federation import (
    CA_CERTIFICATE,
    COORDINATOR_NAME,
    GOVERNANCE_PUBLIC,
    check_empty,
    make_folder,
)
from scfed import enrolment, pki
from scfed.config import (
    DEFAULT_ADHOC_CAP,
    DEFAULT_COORDINATOR_DATABASE,
    DEFAULT_DELTA,
    DEFAULT_FIGURES,
    DEFAULT_MAPPING,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MIN_N_MIN,
    DEFAULT_NODE_DATABASE,
    DEFAULT_NOISE_FLOOR,
    DEFAULT_PERIOD,
    DEFAULT_PHASE_TIMEOUT_MS,
    DEFAULT_RHO_CAP,
    DEFAULT_T_COLLUDE,
    CoordinatorConfig,
    FederationConfig,
    TlsFiles,
    check_name,
)
from scfed.enrolment import KIND_COORDINATOR, KIND_MEMBER, KIND_OPERATOR, Request, check_label
from scfed.errors import ConfigError
from scfed.wire.messages import MAX_CELLS

TLS_KEY, TLS_CERTIFICATE = "tls.key", "tls.pem"
IDENTITY_KEY, SIGNING_KEY = "identity.key", "signing.key"
NEXT = ".next"
CONFIG_FILES = {
    KIND_MEMBER: "node.toml",
    KIND_OPERATOR: "operator.toml",
    KIND_COORDINATOR: "coordinator.toml",
}
_TLS = {"tls_certificate": TLS_CERTIFICATE, "tls_key": TLS_KEY, "ca_certificate": CA_CERTIFICATE}


# ---- Configuration files ----


def _node_toml(settings: FederationConfig, name: str) -> bytes:
    document: TomlDocument = {
        "member_id": name,
        "origin": settings.origin,
        "coordinator": settings.address,
        "server_name": settings.server_name,
        "keys": {**_TLS, "identity_key": IDENTITY_KEY, "governance_key": GOVERNANCE_PUBLIC},
        "policy": {"min_n_min": DEFAULT_MIN_N_MIN, "max_cells": MAX_CELLS},
        "privacy": {
            "rho_cap": DEFAULT_RHO_CAP,
            "period": DEFAULT_PERIOD,
            "t_collude": DEFAULT_T_COLLUDE,
            "noise_floor": DEFAULT_NOISE_FLOOR,
            "delta": str(DEFAULT_DELTA),
            "adhoc": False,
            "adhoc_rho_cap": str(DEFAULT_ADHOC_CAP),
        },
        "data": {"figures": DEFAULT_FIGURES, "mapping": DEFAULT_MAPPING},
        "catalogue": {"opt_in": []},
        "state": {"database": DEFAULT_NODE_DATABASE},
    }
    return format_toml(f"scfed node configuration for member {name} of {settings.name}", document)


def _operator_toml(settings: FederationConfig, name: str) -> bytes:
    document: TomlDocument = {
        "name": name,
        "coordinator": settings.address,
        "server_name": settings.server_name,
        "keys": _TLS,
    }
    return format_toml(f"scfed operator configuration for {name} of {settings.name}", document)


def _coordinator_toml(settings: FederationConfig, _name: str) -> bytes:
    document: TomlDocument = {
        "origin": settings.origin,
        "listen": settings.address,
        "server_name": settings.server_name,
        "keys": {
            **_TLS,
            "signing_key": SIGNING_KEY,
            "governance_key": GOVERNANCE_PUBLIC,
            "registry": "registry.signed",
            "policy": "policy.signed",
        },
        "limits": {"max_message_bytes": DEFAULT_MAX_MESSAGE_BYTES, "max_cells": MAX_CELLS},
        "rounds": {"phase_timeout_ms": DEFAULT_PHASE_TIMEOUT_MS},
        "privacy": {
            "rho_cap": DEFAULT_RHO_CAP,
            "period": DEFAULT_PERIOD,
            "delta": str(DEFAULT_DELTA),
        },
        "state": {"database": DEFAULT_COORDINATOR_DATABASE},
    }
    return format_toml(f"scfed coordinator configuration for federation {settings.name}", document)


_CONFIGS = {
    KIND_MEMBER: _node_toml,
    KIND_OPERATOR: _operator_toml,
    KIND_COORDINATOR: _coordinator_toml,
}
#: The Ed25519 key each kind of party signs with, if any.
_SIGNING = {KIND_MEMBER: IDENTITY_KEY, KIND_COORDINATOR: SIGNING_KEY}


# ---- init ----


@dataclass(frozen=True)
class Who:
    """The party a folder is for, as its ``init`` command names it."""

    kind: str
    name: str
    display_name: str = ""
    group: str = ""
    hosts: tuple[str, ...] = ()


def member(name: str, display_name: str | None = None, group: str | None = None) -> Who:
    """A member, its display name and corporate group defaulting to its name."""
    check_name(name)
    display = check_label(name if display_name is None else display_name, "--display-name")
    return Who(KIND_MEMBER, name, display, check_label(name if group is None else group, "--group"))


def request_file(folder: Path, who: Who) -> Path:
    return folder / f"{who.name}.request"


def _new_request(
    origin: str,
    who: Who,
    tls_key: ec.EllipticCurvePrivateKey,
    signing: Ed25519PrivateKey | None,
) -> bytes:
    request = Request(
        kind=who.kind,
        name=who.name,
        origin=origin,
        csr=pki.certificate_request(tls_key, who.name),
        display_name=who.display_name,
        group=who.group,
        hosts=who.hosts,
    )
    comment = f"scfed enrolment request of {who.kind} {who.name}: public parts only"
    return enrolment.encode(enrolment.sign(request, signing), comment)


def init_party(folder: Path, federation_file: Path, who: Who) -> Path:
    """Make ``folder`` (new or empty) for ``who``: keys, configuration, request; the request."""
    check_name(who.name)
    settings = load_federation_config(federation_file)
    public = federation_file.parent
    ca = read_public_file(public / CA_CERTIFICATE)
    pki.load_certificate_pem(ca)
    read_governance_key(public / GOVERNANCE_PUBLIC)  # checked before anything is written
    check_empty(folder)
    tls_key = pki.new_tls_key()
    signing = Ed25519PrivateKey.generate() if who.kind in _SIGNING else None
    request = _new_request(settings.origin, who, tls_key, signing)
    make_folder(folder)
    write_private(folder / TLS_KEY, pki.private_key_pem(tls_key))
    if signing is not None:
        write_private(folder / _SIGNING[who.kind], pki.private_key_pem(signing))
    write_public(folder / CA_CERTIFICATE, ca)
    write_public(folder / GOVERNANCE_PUBLIC, read_public_file(public / GOVERNANCE_PUBLIC))
    write_public(folder / CONFIG_FILES[who.kind], _CONFIGS[who.kind](settings, who.name))
    write_public(request_file(folder, who), request)
    return request_file(folder, who)


# ---- rotate ----


def rotate(
    folder: Path, name: str, tls_key: Path | None = None, signing_key: Path | None = None
) -> Path:
    """New keys beside the old (``*.next``: the TLS key and the identity or log key, at the
    paths the configuration names, by default those ``init`` wrote) and a new request for
    them, saying what the folder's first request said; the request file."""
    path = folder / f"{name}.request"
    try:
        old = enrolment.decode(read_public_file(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    who = Who(old.kind, old.name, old.display_name, old.group, old.hosts)
    tls_key = tls_key or folder / TLS_KEY
    pending = [tls_key.with_name(tls_key.name + NEXT)]
    if who.kind in _SIGNING:
        signing_key = signing_key or folder / _SIGNING[who.kind]
        pending.append(signing_key.with_name(signing_key.name + NEXT))
    for path in pending:
        if path.exists():
            raise ConfigError(
                f"{path}: a rotation is pending already; install its certificate first, "
                "or delete the .next files to start again"
            )
    new_tls = pki.new_tls_key()
    signing = Ed25519PrivateKey.generate() if who.kind in _SIGNING else None
    request = _new_request(old.origin, who, new_tls, signing)
    write_private(pending[0], pki.private_key_pem(new_tls))
    if signing is not None:
        write_private(pending[1], pki.private_key_pem(signing))
    write_public(request_file(folder, who), request)
    return request_file(folder, who)


# ---- A folder, as its configuration describes it ----


@dataclass(frozen=True)
class Folder:
    """A party's folder, as its configuration file describes it."""

    who: Who
    tls: TlsFiles
    server_name: str
    signing_key: Path | None = None  # a member's identity key, the coordinator's log key
    coordinator: CoordinatorConfig | None = None


def open_folder(kind: str, path: Path) -> Folder:
    """The folder of the configuration file ``path`` of a party of ``kind``."""
    if kind == KIND_MEMBER:
        node = load_node_config(path)
        return Folder(Who(kind, node.member_id), node.tls, node.server_name, node.identity_key)
    if kind == KIND_OPERATOR:
        operator = load_operator_config(path)
        return Folder(Who(kind, operator.name), operator.tls, operator.server_name)
    config = load_coordinator_config(path)
    who = Who(kind, COORDINATOR_NAME)
    return Folder(who, config.tls, config.server_name, config.signing_key, config)
