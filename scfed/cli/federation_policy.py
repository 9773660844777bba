"""``scfed federation policy``: governance signs the query catalogue and the budget.

The catalogue file's format, and the checks and signing, are in ``governance.catalogue``;
this module parses the arguments and prints what was signed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from governance.catalogue import sign_catalogue
from governance.federation import POLICY_FILE, PUBLIC


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from governance.catalogue import EXAMPLE

    policy = commands.add_parser(
        "policy", help="sign the query catalogue and budget",
        description="Sign the next policy version from a catalogue file (TOML), every entry "
        "checked as nodes will check it. A catalogue that nodes with the default settings "
        "take part in:",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    policy.add_argument("directory", type=Path, metavar="GOV", help="governance's folder")
    policy.add_argument("--catalogue", type=Path, required=True, help="catalogue.toml")
    policy.set_defaults(func=run_policy)


def run_policy(args: argparse.Namespace) -> int:
    policy = sign_catalogue(args.directory, args.catalogue)
    crises = "".join(
        f"; crisis {c.name}, {c.start} to {c.end}, {len(c.commodities)} commodities"
        for c in policy.crises
    )
    print(
        f"signed policy version {policy.version}: {len(policy.entries)} catalogue entries{crises}"
    )
    print(f"wrote {args.directory / PUBLIC / POLICY_FILE}: hand it to the operator")
    return 0
