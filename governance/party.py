"""A party's own folder: its keys made where they are kept. Edge code.

``scfed node init``, ``scfed operator init`` and ``scfed coordinator init`` each make a
folder on the party's own machine from governance's public files: the TLS key, for a member
its Ed25519 identity key and for the coordinator its log key, the configuration, and an
enrolment request of public parts only (``scfed.enrolment``). Governance answers with a
certificate (and, for the operator, registry and policy files), which ``install`` checks
before it puts them in place: issued by the federation's CA, for this party and for a key
this folder holds, and, for a registry or policy, signed by governance, for this federation,
and no older than the one installed. ``rotate`` makes new keys beside the old
(``*.next``) and a new request; installing the certificate for them puts them in place.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import enrolment, pki
from scfed import envelope as env
from scfed.cli._toml import TomlDocument, format_toml
from scfed.cli.federation import (
    CA_CERTIFICATE,
    COORDINATOR_NAME,
    GOVERNANCE_PUBLIC,
    check_empty,
    make_folder,
)
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
    check_server_name,
    load_coordinator_config,
    load_federation_config,
    load_node_config,
    load_operator_config,
    read_governance_key,
    read_policy_file,
    read_private_key_file,
    read_public_file,
    read_registry_file,
    write_private,
    write_public,
)
from scfed.enrolment import KIND_COORDINATOR, KIND_MEMBER, KIND_OPERATOR, Request
from scfed.envelope import Envelope
from scfed.errors import ConfigError, RefusedError, ScfedError
from scfed.messages import MAX_CELLS, MAX_NAME, decode_registry
from scfed.policy import decode_policy
from scfed.storage import fetch_read_only
from scfed.transport import check_tls_files
from scfed.versions import Held, check_forward

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


def _label(value: str | None, default: str, option: str) -> str:
    text = default if value is None else value
    if not text.strip() or len(text) > MAX_NAME or not text.isprintable():
        raise ConfigError(f"{option}: use 1-{MAX_NAME} printable characters, not {text[:70]!r}")
    return text


def member(name: str, display_name: str | None = None, group: str | None = None) -> Who:
    """A member, its display name and corporate group defaulting to its name."""
    check_name(name)
    display = _label(display_name, name, "--display-name")
    return Who(KIND_MEMBER, name, display, _label(group, name, "--group"))


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


# ---- install ----


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
    held = decode_policy if kind == env.POLICY else decode_registry
    signed = Envelope.from_bytes(read_public_file(installed))
    current = Held(kind, held(signed.body).version, signed.body, f"installed in {installed}")
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
    _forward(env.REGISTRY, new_file, envelope, registry.version, config.registry)
    promote = _log_key(config.signing_key, registry.coordinator_key)
    if promote:
        _check_finished(config.database)
        _promote(config.signing_key)
    write_public(config.registry, envelope.to_bytes())
    return registry.version, promote


def _check_finished(database: Path) -> None:
    """ConfigError if a round has no outcome yet: the coordinator finishes it from its log
    at its next start, re-signing with the key the round began with."""
    sql = "SELECT count(*) FROM rounds WHERE outcome IS NULL"
    rows = fetch_read_only(database, sql)
    if rows and rows[0][0]:
        raise ConfigError(
            "a round is unfinished: start the coordinator once with its current log key, "
            "which finishes it, then install this registry"
        )


def install_policy(config: CoordinatorConfig, new_file: Path) -> int:
    """Check and install a governance-signed policy no older than the one installed."""
    governance = read_governance_key(config.governance_key)
    policy, envelope = read_policy_file(new_file, config.origin, governance)
    _forward(env.POLICY, new_file, envelope, policy.version, config.policy)
    write_public(config.policy, envelope.to_bytes())
    return policy.version


# ---- The command line ----


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser], kind: str) -> None:
    """Register ``init``, ``install`` and ``rotate`` for a role's party."""
    config = CONFIG_FILES[kind]
    party = {KIND_MEMBER: "a firm's node", KIND_OPERATOR: "an operator"}.get(
        kind, "the coordinator"
    )
    init = commands.add_parser("init", help=f"make {party}'s keys here and its enrolment request")
    init.add_argument("directory", type=Path, metavar="DIR", help="a new or empty folder")
    init.add_argument("--federation", type=Path, required=True, help="governance's federation.toml")
    if kind == KIND_MEMBER:
        init.add_argument("--member", required=True, metavar="NAME", help="the member's name")
        init.add_argument("--display-name", help="the firm's name as people read it (default NAME)")
        init.add_argument("--group", help="its corporate group (default: NAME)")
    elif kind == KIND_OPERATOR:
        init.add_argument("--name", required=True, help="the operator's name")
    else:
        init.add_argument("--host", action="append", help="extra name for the server certificate")
    init.set_defaults(func=_run_init, kind=kind)
    install = commands.add_parser("install", help="check and install what governance issued")
    install.add_argument("--config", type=Path, required=True, help=f"the {config}")
    install.add_argument("--certificate", type=Path, help="the certificate governance issued")
    if kind == KIND_COORDINATOR:
        install.add_argument("--registry", type=Path, help="a registry.signed from governance")
        install.add_argument("--policy", type=Path, help="a policy.signed from governance")
    install.set_defaults(func=_run_install, kind=kind)
    new = commands.add_parser("rotate", help="make new keys and a request to replace the old")
    new.add_argument("--config", type=Path, required=True, help=f"the {config}")
    new.set_defaults(func=_run_rotate, kind=kind)
    check = commands.add_parser("check", help="check the configuration, keys and certificates")
    check.add_argument("--config", type=Path, required=True, help=f"the {config}")
    check.set_defaults(func=_run_check, kind=kind)


def _who(args: argparse.Namespace) -> Who:
    if args.kind == KIND_MEMBER:
        return member(args.member, args.display_name, args.group)
    if args.kind == KIND_OPERATOR:
        return Who(KIND_OPERATOR, check_name(args.name))
    return Who(KIND_COORDINATOR, COORDINATOR_NAME, hosts=tuple(_hosts(args.host or ())))


def _hosts(hosts: Sequence[str]) -> list[str]:
    for host in hosts:
        try:
            check_server_name(host)
        except ConfigError as exc:
            raise ConfigError(f"--host: {exc}") from exc
    return list(hosts)


def _run_init(args: argparse.Namespace) -> int:
    request = init_party(args.directory, args.federation, _who(args))
    print(f"made {args.directory}: its private keys never leave it")
    print(f"send {request} to governance (public parts only)")
    print(f"request fingerprint {enrolment.fingerprint(request.read_bytes())}")
    return 0


@dataclass(frozen=True)
class _Folder:
    """A party's folder, as its configuration file describes it."""

    who: Who
    tls: TlsFiles
    server_name: str
    signing_key: Path | None = None  # a member's identity key, the coordinator's log key
    coordinator: CoordinatorConfig | None = None


def _folder(kind: str, path: Path) -> _Folder:
    if kind == KIND_MEMBER:
        node = load_node_config(path)
        return _Folder(Who(kind, node.member_id), node.tls, node.server_name, node.identity_key)
    if kind == KIND_OPERATOR:
        operator = load_operator_config(path)
        return _Folder(Who(kind, operator.name), operator.tls, operator.server_name)
    config = load_coordinator_config(path)
    who = Who(kind, COORDINATOR_NAME)
    return _Folder(who, config.tls, config.server_name, config.signing_key, config)


def install_issued(kind: str, config: Path, certificate: Path, now: datetime) -> bool:
    """``install_certificate`` for the folder of the configuration file ``config``."""
    folder = _folder(kind, config)
    identity = folder.signing_key if kind == KIND_MEMBER else None
    return install_certificate(
        folder.tls, folder.who, folder.server_name, certificate, now, identity
    )


def _run_install(args: argparse.Namespace) -> int:
    folder = _folder(args.kind, args.config)
    files = [args.certificate, getattr(args, "registry", None), getattr(args, "policy", None)]
    if all(f is None for f in files):
        raise ConfigError(
            "name what to install: --certificate"
            + (", --registry or --policy" if folder.coordinator else "")
        )
    if args.certificate is not None:
        now = datetime.now(UTC)
        rotated = install_issued(args.kind, args.config, args.certificate, now)
        print(f"installed {folder.tls.certificate}" + (" with the new keys" if rotated else ""))
    if folder.coordinator is not None and args.registry is not None:
        version, promoted = install_registry(folder.coordinator, args.registry)
        print(f"installed registry version {version} (a running coordinator re-reads it)")
        if promoted:
            print("it names the new log key, now in place: restart the coordinator to use it")
    if folder.coordinator is not None and args.policy is not None:
        version = install_policy(folder.coordinator, args.policy)
        print(f"installed policy version {version} (a running coordinator re-reads it)")
    return 0


def _run_rotate(args: argparse.Namespace) -> int:
    folder = _folder(args.kind, args.config)
    request = rotate(args.config.parent, folder.who.name, folder.tls.key, folder.signing_key)
    print(f"made new keys beside the old ({NEXT}); send {request} to governance")
    print(f"request fingerprint {enrolment.fingerprint(request.read_bytes())}")
    print("the old keys stay in use until you install the certificate for the new ones")
    return 0


def check_folder(kind: str, path: Path, now: datetime) -> list[str]:
    """Load a party's configuration and check its keys and certificates as its daemon or
    commands will; the warnings (certificates expiring soon). ScfedError on any problem."""
    folder = _folder(kind, path)
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


def _run_check(args: argparse.Namespace) -> int:
    for warning in check_folder(args.kind, args.config, datetime.now(UTC)):
        print(f"warning: {warning}")
    print(f"{args.config}: configuration, keys and certificates check")
    return 0
