"""``scfed operator ...``: an operator's own folder, keys and certificate.

The operator's commands to the coordinator are ``scfed coordinator round | status``."""

from __future__ import annotations

import argparse

from scfed import enrolment
from scfed.cli import party


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = roles.add_parser("operator", help="an operator's keys and certificate")
    commands = parser.add_subparsers(dest="operator_command", required=True, metavar="COMMAND")
    party.add_commands(commands, enrolment.KIND_OPERATOR)
