"""``scfed federation ...``: create a federation folder and enrol members and operators.

Edge code: it makes keys and certificates (``scfed.pki``), signs the registry
(``scfed.registry``) and writes files through ``scfed.config``. A federation folder holds::

    federation.toml     name, origin, coordinator address and server name
    registry.signed     the governance-signed registry (a serialized Envelope)
    governance/         governance.key (private), governance.pub
    ca/                 ca.key (private), ca.pem
    coordinator/        the coordinator's keys and coordinator.toml
    members/NAME/       one folder per member, to hand to that firm
    operators/NAME/     one folder per operator

Every key and certificate is made in memory first; files are written only once nothing can
fail but the disk. An enrolment folder is written under a temporary name and renamed into
place before the registry is replaced, so a failed enrolment leaves neither behind.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import pki
from scfed.cli import federation_policy
from scfed.cli._toml import TomlDocument, format_toml
from scfed.config import (
    DEFAULT_ADHOC_CAP,
    DEFAULT_COORDINATOR_DATABASE,
    DEFAULT_DELTA,
    DEFAULT_FIGURES,
    DEFAULT_LISTEN,
    DEFAULT_MAPPING,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MIN_N_MIN,
    DEFAULT_NODE_DATABASE,
    DEFAULT_NOISE_FLOOR,
    DEFAULT_PERIOD,
    DEFAULT_PHASE_TIMEOUT_MS,
    DEFAULT_RHO_CAP,
    DEFAULT_T_COLLUDE,
    FederationConfig,
    check_address,
    check_name,
    check_origin,
    check_server_name,
    load_federation_config,
    read_private_key_file,
    read_public_file,
    read_registry_file,
    write_private,
    write_public,
)
from scfed.errors import ConfigError
from scfed.messages import MAX_CELLS, MAX_NAME, Member, Operator, Registry
from scfed.registry import seal_registry, with_member, with_operator

FEDERATION_FILE = "federation.toml"
REGISTRY_FILE = "registry.signed"
GOVERNANCE_KEY = "governance/governance.key"
CA_KEY = "ca/ca.key"
CA_CERTIFICATE = "ca/ca.pem"
_TLS_FILES = {"tls_certificate": "tls.pem", "tls_key": "tls.key", "ca_certificate": "ca.pem"}

# ---- Files to write ----


@dataclass(frozen=True)
class _File:
    data: bytes
    private: bool = False


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot create folder: {exc.strerror or exc}") from exc


def _write_files(root: Path, files: Mapping[str, _File]) -> None:
    """Write ``files`` (relative path -> content) under ``root``, in order."""
    for relative, file in files.items():
        target = root / relative
        _make_folder(target.parent)
        (write_private if file.private else write_public)(target, file.data)


def _key_files(stem: str, issued: pki.Issued) -> dict[str, _File]:
    return {
        f"{stem}.key": _File(pki.private_key_pem(issued.key), private=True),
        f"{stem}.pem": _File(pki.certificate_pem(issued.certificate)),
    }


def _governance_text(governance: Ed25519PrivateKey) -> bytes:
    return (pki.ed25519_public_text(governance.public_key()) + "\n").encode("ascii")


# ---- init ----


def _federation_settings(
    directory: Path, name: str, origin: str | None, address: str
) -> FederationConfig:
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
    path = Path(os.path.abspath(directory / FEDERATION_FILE))
    return FederationConfig(path, name, origin, address, f"coordinator.{name}.scfed")


def _check_empty(directory: Path) -> None:
    try:
        if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
            raise ConfigError(f"{directory}: exists and is not a folder")
        if directory.exists() and any(directory.iterdir()):
            raise ConfigError(f"{directory}: folder is not empty; choose a new or empty folder")
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot inspect: {exc.strerror or exc}") from exc


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


def _coordinator_toml(settings: FederationConfig) -> bytes:
    document: TomlDocument = {
        "origin": settings.origin,
        "listen": settings.address,
        "server_name": settings.server_name,
        "keys": {
            **_TLS_FILES,
            "signing_key": "signing.key",
            "governance_key": "governance.pub",
            "registry": f"../{REGISTRY_FILE}",
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


def _check_hosts(hosts: Sequence[str]) -> list[str]:
    if isinstance(hosts, str):
        raise ConfigError(f"--host: expected a list of host names, not the string {hosts!r}")
    for host in hosts:
        try:
            check_server_name(host)
        except ConfigError as exc:
            raise ConfigError(f"--host: {exc}") from exc
    return list(hosts)


def _coordinator_files(
    settings: FederationConfig, ca: pki.Issued, hosts: Sequence[str], now: datetime
) -> dict[str, _File]:
    key = pki.new_tls_key()
    names = [settings.server_name, *_check_hosts(hosts)]
    server = pki.Issued(key, pki.issue_server(ca, settings.name, names, key, now))
    return {
        **_key_files("tls", server),
        "ca.pem": _File(pki.certificate_pem(ca.certificate)),
        "coordinator.toml": _File(_coordinator_toml(settings)),
    }


def init_federation(  # noqa: PLR0917 (the documented signature)
    directory: Path,
    name: str,
    origin: str | None,
    address: str,
    hosts: Sequence[str],
    now: datetime,
) -> None:
    """Create a federation in ``directory`` (new or empty): keys, CA, coordinator, registry."""
    settings = _federation_settings(directory, name, origin, address)
    _check_empty(directory)
    governance, signing = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ca_key = pki.new_tls_key()
    ca = pki.Issued(ca_key, pki.new_ca(name, ca_key, now))
    coordinator = _coordinator_files(settings, ca, hosts, now)
    coordinator["signing.key"] = _File(pki.private_key_pem(signing), private=True)
    coordinator["governance.pub"] = _File(_governance_text(governance))
    key = pki.ed25519_public_raw(signing.public_key())
    registry = Registry(settings.origin, 1, key, (), ())
    files = {
        FEDERATION_FILE: _File(_federation_toml(settings)),
        GOVERNANCE_KEY: _File(pki.private_key_pem(governance), private=True),
        "governance/governance.pub": _File(_governance_text(governance)),
        **_key_files("ca/ca", ca),
        **{f"coordinator/{path}": file for path, file in coordinator.items()},
        REGISTRY_FILE: _File(seal_registry(registry, governance).to_bytes()),
    }
    _make_folder(directory)
    _write_files(directory, files)


# ---- enroll ----


@dataclass(frozen=True)
class _Federation:
    """An existing federation folder, opened with its private keys."""

    directory: Path
    settings: FederationConfig
    governance: Ed25519PrivateKey
    ca: pki.Issued
    registry: Registry


_T = TypeVar("_T")


def _load(path: Path, read: Callable[[Path], bytes], parse: Callable[[bytes], _T]) -> _T:
    """``parse(read(path))``, with ConfigError naming the file."""
    data = read(path)
    try:
        return parse(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _open_federation(directory: Path) -> _Federation:
    """Load federation.toml, the governance and CA keys and the verified registry."""
    settings = load_federation_config(directory / FEDERATION_FILE)
    governance_file = directory / GOVERNANCE_KEY
    governance = _load(governance_file, read_private_key_file, pki.load_ed25519_private_pem)
    ca = pki.Issued(
        _load(directory / CA_KEY, read_private_key_file, pki.load_private_key_pem),
        _load(directory / CA_CERTIFICATE, read_public_file, pki.load_certificate_pem),
    )
    public = pki.ed25519_public_raw(governance.public_key())
    registry, _ = read_registry_file(directory / REGISTRY_FILE, settings.origin, public)
    return _Federation(directory, settings, governance, ca, registry)


def _enrolment_folder(federation: _Federation, kind: str, name: str) -> Path:
    """The folder for a new member or operator; ConfigError if the name is taken."""
    registry = federation.registry
    if registry.member(name) is not None or any(o.name == name for o in registry.operators):
        registry_file = federation.directory / REGISTRY_FILE
        raise ConfigError(f"{name!r} is already enrolled in {registry_file}")
    folder = federation.directory / kind / name
    if folder.exists() or folder.is_symlink():
        raise ConfigError(f"{folder}: already exists; remove it or choose another name")
    return folder


def _label(value: str | None, default: str, option: str) -> str:
    text = default if value is None else value
    if not text.strip() or len(text) > MAX_NAME or not text.isprintable():
        raise ConfigError(f"{option}: use 1-{MAX_NAME} printable characters, not {text[:70]!r}")
    return text


def _client(federation: _Federation, name: str, role: str, now: datetime) -> pki.Issued:
    key = pki.new_tls_key()
    return pki.Issued(
        key, pki.issue_client(federation.ca, federation.settings.name, name, role, key, now)
    )


def _staging_folder(folder: Path) -> Path:
    _make_folder(folder.parent)
    staging = folder.with_name(f".{folder.name}.{secrets.token_hex(8)}.partial")
    try:
        staging.mkdir(mode=0o700)
    except OSError as exc:
        raise ConfigError(f"{staging}: cannot create folder: {exc.strerror or exc}") from exc
    return staging


def _publish(
    federation: _Federation, folder: Path, files: Mapping[str, _File], registry: Registry
) -> None:
    """Write ``folder`` complete or not at all, then replace the registry (or undo the folder)."""
    envelope = seal_registry(registry, federation.governance)
    staging = _staging_folder(folder)
    try:
        _write_files(staging, files)
        os.rename(staging, folder)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ConfigError(f"{folder}: cannot create: {exc.strerror or exc}") from exc
        raise
    try:
        write_public(federation.directory / REGISTRY_FILE, envelope.to_bytes())
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _node_toml(settings: FederationConfig, name: str) -> bytes:
    document: TomlDocument = {
        "member_id": name,
        "origin": settings.origin,
        "coordinator": settings.address,
        "server_name": settings.server_name,
        "keys": {
            **_TLS_FILES,
            "identity_key": "identity.key",
            "governance_key": "governance.pub",
        },
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
        "keys": _TLS_FILES,
    }
    return format_toml(f"scfed operator configuration for {name} of {settings.name}", document)


def enroll_member(
    directory: Path, name: str, display_name: str | None, group: str | None, now: datetime
) -> Path:
    """Enrol member ``name``: write its folder and the next registry version; the folder."""
    check_name(name)
    federation = _open_federation(directory)
    folder = _enrolment_folder(federation, "members", name)
    display = _label(display_name, name, "--display-name")
    corporate = _label(group, name, "--group")
    tls = _client(federation, name, pki.ROLE_MEMBER, now)
    identity = Ed25519PrivateKey.generate()
    identity_key = pki.ed25519_public_raw(identity.public_key())
    member = Member(name, display, identity_key, pki.fingerprint(tls.certificate), corporate)
    files = {
        **_key_files("tls", tls),
        "ca.pem": _File(pki.certificate_pem(federation.ca.certificate)),
        "identity.key": _File(pki.private_key_pem(identity), private=True),
        "governance.pub": _File(_governance_text(federation.governance)),
        "node.toml": _File(_node_toml(federation.settings, name)),
    }
    _publish(federation, folder, files, with_member(federation.registry, member))
    return folder


def enroll_operator(directory: Path, name: str, now: datetime) -> Path:
    """Enrol operator ``name``: write its folder and the next registry version; the folder."""
    check_name(name)
    federation = _open_federation(directory)
    folder = _enrolment_folder(federation, "operators", name)
    tls = _client(federation, name, pki.ROLE_OPERATOR, now)
    operator = Operator(name, pki.fingerprint(tls.certificate))
    files = {
        **_key_files("tls", tls),
        "ca.pem": _File(pki.certificate_pem(federation.ca.certificate)),
        "operator.toml": _File(_operator_toml(federation.settings, name)),
    }
    _publish(federation, folder, files, with_operator(federation.registry, operator))
    return folder


# ---- The command line ----


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``scfed federation init`` and ``scfed federation enroll``."""
    parser = roles.add_parser("federation", help="create a federation and enrol its members")
    commands = parser.add_subparsers(dest="federation_command", required=True, metavar="COMMAND")
    init = commands.add_parser("init", help="create a federation: governance key, CA, coordinator")
    init.add_argument("directory", type=Path, metavar="DIR", help="a new or empty folder")
    init.add_argument("--name", required=True, help="short name: lowercase letters, digits, '-'")
    init.add_argument("--origin", help="log origin (default: scfed.example/NAME)")
    init.add_argument("--address", default=DEFAULT_LISTEN, help="coordinator HOST:PORT")
    init.add_argument("--host", action="append", help="extra name for the server certificate")
    init.set_defaults(func=run_init)
    enroll = commands.add_parser("enroll", help="enrol a member or an operator")
    enroll.add_argument("directory", type=Path, metavar="DIR", help="the federation folder")
    who = enroll.add_mutually_exclusive_group(required=True)
    who.add_argument("--member", metavar="NAME", help="enrol a member (a firm's node)")
    who.add_argument("--operator", metavar="NAME", help="enrol an operator")
    enroll.add_argument("--display-name", help="member's display name (default: NAME)")
    enroll.add_argument("--group", help="member's corporate group (default: NAME)")
    enroll.set_defaults(func=run_enroll)
    federation_policy.add_command(commands)


def run_init(args: argparse.Namespace) -> int:
    """``scfed federation init``."""
    directory: Path = args.directory
    init_federation(
        directory, args.name, args.origin, args.address, args.host or (), datetime.now(UTC)
    )
    print(f"created federation {args.name} in {directory}")
    print(f"coordinator configuration: {directory / 'coordinator' / 'coordinator.toml'}")
    print("guard governance/ and ca/: they hold the keys that sign the registry and certificates")
    return 0


def run_enroll(args: argparse.Namespace) -> int:
    """``scfed federation enroll``."""
    directory: Path = args.directory
    now = datetime.now(UTC)
    if args.operator is not None:
        if args.display_name is not None or args.group is not None:
            raise ConfigError("--display-name and --group apply to --member only")
        folder = enroll_operator(directory, args.operator, now)
        print(f"enrolled operator {args.operator}: {folder}")
    else:
        folder = enroll_member(directory, args.member, args.display_name, args.group, now)
        print(f"enrolled member {args.member}: {folder}")
    print(f"updated {directory / REGISTRY_FILE} (a running coordinator re-reads it)")
    print(f"hand {folder} over a secure channel: it holds private keys")
    return 0
