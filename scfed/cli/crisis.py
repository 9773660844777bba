"""``scfed crisis``: crisis mode for governance, firms and the operator.

Governance declares a crisis in its catalogue file (``declare``, then signs it as usual).
A firm posts a need or an offer through its node (``post``), reads the proposals on its posts
(``inbox``) and accepts or declines one (``accept``, ``decline``): the other firm is revealed
only when both accepted. The operator sees posts, proposals and matches per crisis, commodity
and week without a firm's name (``status``). Edge code; the rules are ``scfed.crisis``.
"""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from pathlib import Path

from scfed.cli.crisis_declare import add_declare
from scfed.errors import ConfigError


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = roles.add_parser(
        "crisis", help="crisis mode: declare, post needs and offers, match with double opt-in"
    )
    commands = parser.add_subparsers(dest="crisis_command", required=True, metavar="COMMAND")
    add_declare(commands)
    post = commands.add_parser(
        "post", help="a firm: post a need or an offer in a declared crisis",
        description="Post a need (a shortfall) or an offer (spare capacity) of a commodity for a "
        "week, through the node. The coordinator and a matched firm see its band only; the "
        "exact quantity stays on the node, where it counts in the federation's secure, noisy "
        "aggregate of need and spare capacity. The post's pseudonym key is kept in the "
        "node's folder, crisis-keys/.",
    )  # fmt: skip
    post.add_argument("--config", type=Path, required=True, help="the node's node.toml")
    _coordinator(post)
    post.add_argument("--crisis", required=True, help="the crisis's name in the signed policy")
    side = post.add_mutually_exclusive_group(required=True)
    side.add_argument("--need", dest="side", action="store_const", const="need")
    side.add_argument("--offer", dest="side", action="store_const", const="offer")
    post.add_argument("--commodity", required=True, metavar="KEY", help="a commodity key")
    post.add_argument(
        "--week", required=True, action="append",
        help="the week, its Monday or YYYY-Www (repeat for more weeks: a post for each)",
    )  # fmt: skip
    post.add_argument(
        "--quantity", required=True, type=_quantity, help="units a week (only its band is sent)"
    )
    post.set_defaults(func=_post)
    inbox = commands.add_parser(
        "inbox", help="a firm: its posts, the proposals on them and who was revealed"
    )
    inbox.add_argument("--config", type=Path, required=True, help="the node's node.toml")
    _coordinator(inbox)
    inbox.set_defaults(func=_inbox)
    for verb, accept in (("accept", True), ("decline", False)):
        answer = commands.add_parser(
            verb, help=f"a firm: {verb} a proposed match (its id from the inbox)"
        )
        answer.add_argument("match", metavar="MATCH", help="the match id, as the inbox shows it")
        answer.add_argument("--config", type=Path, required=True, help="the node's node.toml")
        _coordinator(answer)
        answer.set_defaults(func=_answer, accept=accept)
    status = commands.add_parser(
        "status", help="the operator: posts, proposals and matches, without identities"
    )
    status.add_argument("--config", type=Path, required=True, help="the operator's operator.toml")
    _coordinator(status)
    status.set_defaults(func=_status)


def _coordinator(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--coordinator", metavar="HOST:PORT", help="the coordinator (default: the config's)"
    )


def _quantity(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a decimal number") from None
    if not value.is_finite() or value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a need or an offer is at least 1 unit")
    return value


def _post(args: argparse.Namespace) -> int:
    from edge.config import load_node_config
    from node.crisis import post
    from scfed.taxonomy import parse_week

    config = load_node_config(args.config)
    try:
        weeks = [parse_week(text) for text in args.week]
    except ValueError as exc:
        raise ConfigError(f"--week: {exc}") from None
    for week in weeks:
        posted = post(
            config, name=args.crisis, side=args.side, commodity=args.commodity, week=week,
            quantity=args.quantity, address=args.coordinator,
        )  # fmt: skip
        p = posted.post
        print(
            f"posted {'an' if p.side == 'offer' else 'a'} {p.side} of {p.commodity}, week of "
            f"{p.week}, band {p.band} in crisis {p.crisis} (listed at leaf {posted.listing}; "
            f"the exact {args.quantity} stays here)"
        )
    print(f"see proposals with: scfed crisis inbox --config {args.config}")
    return 0


def _inbox(args: argparse.Namespace) -> int:
    from edge.config import load_node_config
    from node.crisis import inbox

    items = inbox(load_node_config(args.config), args.coordinator)
    if not items:
        print("no posts yet")
    for item in items:
        p = item.post
        print(f"{p.describe()} ({item.quantity}), crisis {p.crisis}: {item.state}")
        if item.match_id:
            print(f"  match {item.match}: the other side posted {item.counterpart}")
        if item.state in ("proposed", "they accepted"):
            print(f"  answer with: scfed crisis accept|decline {item.match} --config {args.config}")
        if item.revealed_post is not None:
            print(f"  revealed: {item.revealed_member} ({item.revealed_post.describe()})")
    return 0


def _answer(args: argparse.Namespace) -> int:
    from edge.config import load_node_config
    from node.crisis import answer

    item = answer(
        load_node_config(args.config), args.match, accept=args.accept, address=args.coordinator
    )
    print(f"match {item.match}: {item.state}")
    if item.revealed_post is not None:
        print(f"  revealed: {item.revealed_member} ({item.revealed_post.describe()})")
    return 0


def _status(args: argparse.Namespace) -> int:
    from coordinator.admin_client import AdminClient
    from edge.config import load_operator_config

    with AdminClient(load_operator_config(args.config), args.coordinator) as client:
        lines = client.crisis_status()
    for line in lines:
        print(line)
    if not lines:
        print("no crisis post yet")
    return 0
