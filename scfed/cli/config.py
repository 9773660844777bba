"""``scfed config check``: one line per finding about a role's config, non-zero on an error."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = roles.add_parser("config", help="check a node's, coordinator's or operator's config")
    commands = parser.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="parse a config and check its keys, certificates, catalogue, budget and coordinator",
        description="Check one config file, whichever role's: that it parses; its key files "
        "(readable by their owner only) and certificates (valid, the key's, issued by the "
        "CA, expiring when); for a node, that each opted-in entry is in the signed catalogue "
        "its node holds and that their plan fits its budget; for the coordinator, the "
        "signed registry and policy; and that the coordinator answers a mutual-TLS handshake. "
        "One line per finding; the exit status is 1 if any is an error.",
    )  # fmt: skip
    check.add_argument(
        "--config", type=Path, required=True, help="node.toml, coordinator.toml or operator.toml"
    )
    check.add_argument(
        "--coordinator", metavar="HOST:PORT", help="dial this address instead of the config's"
    )
    check.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    from scfed.cli._checkup import ERROR, check

    findings = check(args.config, args.coordinator)
    for finding in findings:
        print(finding.line())
    errors = sum(f.level == ERROR for f in findings)
    print(f"{errors} error{'' if errors == 1 else 's'}" if errors else "no errors")
    return 1 if errors else 0
