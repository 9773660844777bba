"""``scfed federation ...``: governance, offline, in its own folder.

The folder, enrolment and removal are ``governance.federation``; the policy is
``scfed federation policy`` (``scfed.cli.federation_policy``). This module parses the
arguments and prints what was done.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from edge.files import read_public_file
from governance.federation import CA_KEY, GOVERNANCE_KEY, PUBLIC, enroll, init_federation, remove
from scfed import enrolment
from scfed.cli import federation_policy
from scfed.config import DEFAULT_LISTEN


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``scfed federation init | enroll | remove | policy``."""
    parser = roles.add_parser("federation", help="governance: the registry, the CA and the policy")
    commands = parser.add_subparsers(dest="federation_command", required=True, metavar="COMMAND")
    init = commands.add_parser("init", help="create governance's folder: its key, the CA")
    init.add_argument("directory", type=Path, metavar="GOV", help="a new or empty folder")
    init.add_argument("--name", required=True, help="short name: lowercase letters, digits, '-'")
    init.add_argument("--origin", help="log origin (default: scfed.example/NAME)")
    init.add_argument("--address", default=DEFAULT_LISTEN, help="coordinator HOST:PORT")
    init.set_defaults(func=run_init)
    add = commands.add_parser("enroll", help="turn an enrolment request into a certificate")
    add.add_argument("directory", type=Path, metavar="GOV", help="governance's folder")
    add.add_argument("--request", type=Path, required=True, help="the party's NAME.request")
    add.add_argument("--replace", action="store_true", help="new keys for an enrolled party")
    add.set_defaults(func=run_enroll)
    drop = commands.add_parser("remove", help="remove a member or an operator")
    drop.add_argument("directory", type=Path, metavar="GOV", help="governance's folder")
    who = drop.add_mutually_exclusive_group(required=True)
    who.add_argument("--member", metavar="NAME", help="a member to remove or suspend")
    who.add_argument("--operator", metavar="NAME", help="an operator to remove")
    drop.set_defaults(func=run_remove)
    federation_policy.add_command(commands)


def run_init(args: argparse.Namespace) -> int:
    """``scfed federation init``."""
    directory: Path = args.directory
    init_federation(directory, args.name, args.origin, args.address, datetime.now(UTC))
    print(f"created federation {args.name} in {directory}")
    print(f"hand {directory / PUBLIC} to every party: it holds public files only")
    print(f"keep {directory} offline: {GOVERNANCE_KEY} and {CA_KEY} sign everything")
    return 0


def run_enroll(args: argparse.Namespace) -> int:
    """``scfed federation enroll``."""
    data = read_public_file(args.request)
    print(f"request fingerprint {enrolment.fingerprint(data)}: confirm it with its sender")
    done = enroll(args.directory, args.request, datetime.now(UTC), replace=args.replace)
    print(f"issued {done.certificate}")
    print(f"signed registry version {done.version}: {done.registry}")
    print("hand the certificate to its owner and the registry to the operator")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """``scfed federation remove``."""
    name = args.member or args.operator
    done = remove(args.directory, name)
    print(f"removed {name}: signed registry version {done.version}: {done.registry}")
    print("hand the registry to the operator; nodes refuse rounds that name a removed member")
    return 0
