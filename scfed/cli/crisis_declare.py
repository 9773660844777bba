"""``scfed crisis declare``: governance declares a crisis in its catalogue file.

The command appends a ``[[crisis]]`` table (its format is in ``governance.catalogue``) to the
catalogue file once the whole file, with it, reads as a policy nodes accept; a refused
declaration leaves the file as it was. Nothing is signed here: ``scfed federation policy``
signs the catalogue as the next policy version, and the operator installs it on the
coordinator. A crisis is ended early by setting its ``end`` in the file and signing again.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from edge.files import read_public_file, write_public
from governance.catalogue import parse_catalogue
from governance.federation import POLICY_FILE, PUBLIC
from governance.party import CONFIG_FILES
from scfed.enrolment import KIND_COORDINATOR
from scfed.errors import ConfigError

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
#: What ``parse_catalogue`` needs besides the file, for the check only: nothing is signed.
_CHECK_ORIGIN, _CHECK_VERSION = "check", 1


def add_declare(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``declare``: governance adds a crisis to its catalogue file."""
    declare = commands.add_parser(
        "declare", help="governance: declare a crisis in the catalogue file",
        description="Append a [[crisis]] table to governance's catalogue file, once the whole "
        "file reads as a policy nodes accept; refused, the file is left as it was. While the "
        "crisis is on, from --start to --end (both days included), firms may post needs and "
        "offers of its commodities. Sign the catalogue afterwards (scfed federation policy) "
        "and hand the policy to the operator. There is no option to end a crisis: to end it "
        "early, set its end in the catalogue file and sign again.",
    )  # fmt: skip
    declare.add_argument(
        "--catalogue", type=Path, required=True, help="governance's catalogue.toml"
    )
    declare.add_argument(
        "--name", required=True, help="the crisis's name: lowercase letters, digits, '-'"
    )
    declare.add_argument(
        "--commodity", action="append", required=True, metavar="KEY",
        help="a commodity key, stage/class/node/wafer/region (repeat for more)",
    )  # fmt: skip
    declare.add_argument("--start", required=True, metavar="YYYY-MM-DD", help="its first day")
    declare.add_argument(
        "--end", required=True, metavar="YYYY-MM-DD",
        help="its last day, within a year of the start; to end the crisis early, edit end "
        "in the catalogue file and sign again",
    )  # fmt: skip
    declare.add_argument("--purpose", default="", help="what the crisis is, as members read it")
    declare.set_defaults(func=run_declare)


def run_declare(args: argparse.Namespace) -> int:
    """``scfed crisis declare``."""
    path: Path = args.catalogue
    data = read_public_file(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read the catalogue: {exc}") from exc
    if parse_catalogue(path, text, _CHECK_ORIGIN, _CHECK_VERSION).crisis(args.name) is not None:
        raise ConfigError(
            f"{path}: crisis {args.name!r} is already declared: edit its [[crisis]] table "
            "and sign again"
        )
    block = crisis_block(
        args.name, args.purpose, args.commodity, _day("--start", args.start),
        _day("--end", args.end),
    )  # fmt: skip
    newline = "\r\n" if "\r\n" in text else "\n"
    addition = ("" if not text or text.endswith("\n") else newline) + (newline if text else "")
    addition += block.replace("\n", newline)
    parse_catalogue(path, text + addition, _CHECK_ORIGIN, _CHECK_VERSION)
    write_public(path, data + addition.encode("utf-8"))
    catalogue = shlex.quote(str(path))
    print(f"added to {path}:")
    print(block, end="")
    print(f"next, governance signs it: scfed federation policy GOV --catalogue {catalogue}")
    print(f"  (GOV: governance's folder; it writes GOV/{PUBLIC}/{POLICY_FILE})")
    print(
        "then the operator installs it: scfed coordinator install "
        f"--config {CONFIG_FILES[KIND_COORDINATOR]} --policy GOV/{PUBLIC}/{POLICY_FILE}"
    )
    print(f"to end the crisis early, set its end in {path} and sign again")
    return 0


def crisis_block(
    name: str, purpose: str, commodities: Sequence[str], start: date, end: date
) -> str:
    """A ``[[crisis]]`` table, its lines ending in newlines; commodities sorted, each once."""
    keys = sorted(set(commodities))
    listed = (
        f"[{_string(keys[0])}]"
        if len(keys) == 1
        else "[\n" + "".join(f"    {_string(key)},\n" for key in keys) + "]"
    )
    lines = [
        "[[crisis]]",
        f"name = {_string(name)}",
        *([f"purpose = {_string(purpose)}"] if purpose else []),
        f"commodities = {listed}",
        f"start = {start.isoformat()}",
        f"end = {end.isoformat()}",
    ]
    return "\n".join(lines) + "\n"


def _day(option: str, text: str) -> date:
    try:
        if _DAY.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ConfigError(f"{option} {text[:40]!r}: not a day of the calendar, YYYY-MM-DD")


def _string(text: str) -> str:
    """``text`` as a TOML basic string: quotes and backslashes escaped, control characters
    as \\uXXXX."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
