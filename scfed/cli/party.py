"""``scfed node | operator | coordinator init | install | rotate | check``: a party's folder.

The folder's keys, configuration and request are made by ``governance.party``; what
governance issued is checked and installed by ``governance.install``. This module parses
the arguments and prints what was done.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from governance.federation import COORDINATOR_NAME
from governance.install import check_folder, install_issued, install_policy, install_registry
from governance.party import CONFIG_FILES, NEXT, Who, init_party, member, open_folder, rotate
from scfed import enrolment
from scfed.config import check_name, check_server_name
from scfed.enrolment import KIND_COORDINATOR, KIND_MEMBER, KIND_OPERATOR
from scfed.errors import ConfigError


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


def _run_install(args: argparse.Namespace) -> int:
    folder = open_folder(args.kind, args.config)
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
    folder = open_folder(args.kind, args.config)
    request = rotate(args.config.parent, folder.who.name, folder.tls.key, folder.signing_key)
    print(f"made new keys beside the old ({NEXT}); send {request} to governance")
    print(f"request fingerprint {enrolment.fingerprint(request.read_bytes())}")
    print("the old keys stay in use until you install the certificate for the new ones")
    return 0


def _run_check(args: argparse.Namespace) -> int:
    for warning in check_folder(args.kind, args.config, datetime.now(UTC)):
        print(f"warning: {warning}")
    print(f"{args.config}: configuration, keys and certificates check")
    return 0
