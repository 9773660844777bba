"""``scfed attest``: a firm's attestation of its holdings to its lender, and the lender's check.

``issue`` runs at the firm, with the node's config (beside a running node daemon): it commits
to the holdings once, logs a pledge to the lender and writes the attestation file. ``verify``
runs at the lender, offline, with the federation's public files (``federation.toml`` and
``governance.pub``) as its only trust anchor; it prints what the attestation shows or refuses
it with its reason. Edge code; the rules are ``scfed.attest``.
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from scfed.errors import ConfigError

#: A lender that states no age accepts attestations up to a week old.
DEFAULT_MAX_AGE_DAYS = 7


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = roles.add_parser(
        "attest", help="attest holdings to a lender, and check an attestation as the lender"
    )
    commands = parser.add_subparsers(dest="attest_command", required=True, metavar="COMMAND")
    issue = commands.add_parser(
        "issue", help="the firm: attest its holdings of a commodity in a week to a lender",
        description="Commit once to the firm's stock of finished goods and work in progress "
        "of the commodity in the week (from the node's data), log a pledge of AMOUNT of it to "
        "the lender, and write the signed attestation for the lender. The lender must be in "
        "[attest] lenders in the node's config: the firm's consent. Every lender of the same "
        "week is shown the same committed figure and every earlier pledge on it.",
    )  # fmt: skip
    issue.add_argument("--config", type=Path, required=True, help="the node's node.toml")
    issue.add_argument("--lender", required=True, help="the lender, as named in [attest] lenders")
    issue.add_argument("--commodity", required=True, metavar="KEY", help="a commodity key")
    issue.add_argument("--week", required=True, help="the week, its Monday or YYYY-Www")
    issue.add_argument(
        "--amount", required=True, type=_amount, help="what the pledge secures, in the unit held"
    )
    issue.add_argument("--out", type=Path, required=True, help="the attestation file to write")
    issue.add_argument(
        "--coordinator", metavar="HOST:PORT", help="the coordinator (default: the config's)"
    )
    issue.set_defaults(func=_issue)
    verify = commands.add_parser(
        "verify", help="the lender: check an attestation offline",
        description="Check an attestation with the federation's public files as the only trust "
        "anchor: the registry is governance's and names the firm; the attestation, its figure "
        "and pledges are the firm's; the checkpoint is the coordinator's and every message is "
        "in its tree; the holdings open the logged commitment; every pledge on the figure is "
        "shown, the last yours; the pledges stay within the holdings; and it is not older "
        "than --max-age-days. Exit 0 and print what it shows, or exit 1 with the reason: "
        "forged, unregistered, stale, not-logged, equivocating, over-pledged or not-yours.",
    )  # fmt: skip
    verify.add_argument("file", type=Path, metavar="FILE", help="the attestation file")
    verify.add_argument(
        "--federation", type=Path, required=True, metavar="DIR",
        help="the federation's public folder: federation.toml and governance.pub",
    )  # fmt: skip
    verify.add_argument("--lender", required=True, help="your name, as the firm attested to it")
    verify.add_argument(
        "--max-age-days", type=float, default=DEFAULT_MAX_AGE_DAYS,
        help=f"refuse an attestation issued longer ago (default {DEFAULT_MAX_AGE_DAYS})",
    )  # fmt: skip
    verify.set_defaults(func=_verify)


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a decimal number") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive amount")
    return value


def _issue(args: argparse.Namespace) -> int:
    from edge.config import load_node_config
    from edge.files import write_public
    from node.attest import Request, issue
    from scfed.taxonomy import parse_week

    config = load_node_config(args.config)
    try:
        week = parse_week(args.week)
    except ValueError as exc:
        raise ConfigError(f"--week: {exc}") from None
    request = Request(args.lender, args.commodity, week, args.amount)
    issued = issue(config, request, address=args.coordinator)
    write_public(args.out, issued.data)
    h = issued.holdings
    print(f"attested to {args.lender}: {h.commodity}, week of {h.week}")
    print(f"  holdings: {h.stock_finished} finished goods, {h.stock_wip} in progress ({h.unit})")
    print(
        f"  pledged before: {issued.pledged_before}; this pledge: {issued.amount}; "
        f"free after it: {issued.pledgeable - issued.pledged_before - issued.amount}"
    )
    print(f"  published figures shown beside it: {issued.market} release(s)")
    if issued.drift:
        print(f"  note: {issued.drift}")
    print(f"wrote {args.out}: hand it to {args.lender}, who checks it with scfed attest verify")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from edge.config import load_federation_config, read_governance_key
    from edge.files import read_public_file
    from governance.federation import FEDERATION_FILE, GOVERNANCE_PUBLIC
    from scfed.attest import AttestationError, verify_attestation
    from scfed.errors import RemoteProtocolError
    from scfed.wire.envelope import Envelope

    folder = args.federation if args.federation.is_dir() else args.federation.parent
    settings = load_federation_config(folder / FEDERATION_FILE)
    governance = read_governance_key(folder / GOVERNANCE_PUBLIC)
    if not args.max_age_days > 0:
        raise ConfigError("--max-age-days must be positive")
    try:
        signed = Envelope.from_bytes(read_public_file(args.file))
        shown = verify_attestation(
            signed, origin=settings.origin, governance_key=governance, lender=args.lender,
            now=int(time.time()), max_age=int(args.max_age_days * 86_400),
        )  # fmt: skip
    except RemoteProtocolError as exc:
        print(f"REFUSED: forged: {args.file} is not an attestation: {exc}")
        return 1
    except AttestationError as exc:
        print(f"REFUSED: {exc}")
        return 1
    h = shown.holdings
    issued = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(shown.issued_at))
    print(f"VERIFIED: {shown.member} attests to {shown.lender}, issued {issued}")
    print(f"  {h.commodity}, week of {h.week}")
    print(
        f"  holdings: {h.stock_finished} finished goods + {h.stock_wip} in progress = "
        f"{shown.pledgeable} ({h.unit})"
    )
    for number, (lender, amount) in enumerate(shown.earlier, 1):
        print(f"  pledge {number}: {amount} to {lender}")
    print(f"  pledge {len(shown.earlier) + 1} (yours): {shown.amount}")
    print(f"  pledged in all: {shown.pledged} of {shown.pledgeable}")
    if shown.days_of_supply:
        print(f"  the firm's days of supply that week: {shown.days_of_supply}")
    if shown.standing():
        print(f"  against the published distribution: {shown.standing()}")
    print("  the federation's published figures for the same commodity and week:")
    for context in shown.market:
        print(f"    {context.entry} {context.component}: {context.text}")
    if not shown.market:
        print("    none was published")
    print(f"  proven against the log checkpoint of size {shown.checkpoint_size}")
    print("  not proven: that the stock exists physically; that stays your own audit")
    return 0
