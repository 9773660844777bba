"""``scfed dashboard``: the read-only web dashboard of the releases a member's node holds.

Loads ``dashboard.source`` (which reads and verifies the releases the node's config points
at, and the crises its signed policy declares) and the app only when the command runs;
serves with waitress until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = roles.add_parser(
        "dashboard", help="serve the read-only web dashboard of the releases (EN/JA)",
        description="Serve the read-only web dashboard of the releases this member holds, in"
        " English and Japanese. The figures are for the federation's members only: the"
        " dashboard listens on loopback, and another address is refused unless --public is"
        " given.",
    )  # fmt: skip
    parser.add_argument(
        "--config", type=Path, required=True, help="a node's node.toml, or the coordinator's config"
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}); a non-loopback address needs"
        " --public",
    )  # fmt: skip
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT,
        help=f"port (default: {DEFAULT_PORT}; 0 picks a free one)",
    )  # fmt: skip
    parser.add_argument(
        "--public", action="store_true",
        help="allow a non-loopback --host: anyone who reaches it sees the members' figures",
    )  # fmt: skip
    parser.set_defaults(func=_dashboard)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError("use a port from 0 to 65535 (0 picks a free one)")
    return int(text)


def _dashboard(args: argparse.Namespace) -> int:
    from dashboard.server import bind, check_host, url

    check_host(args.host, args.public)  # before reading anything
    from dashboard.app import create_app
    from dashboard.source import crises, loader

    load, who = loader(args.config)
    releases, _ = load()  # verified once here: a page then verifies only what is new
    declared = crises(args.config)
    declared()  # the signed policy read and verified before serving, as the releases are
    print(f"dashboard: {len(releases)} releases verified", flush=True)
    app = create_app(load, who=who, crises=declared)
    server = bind(app, args.host, args.port, public=args.public)
    print(f"dashboard: {url(server)} (Ctrl-C to stop)", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    print("dashboard: stopped", file=sys.stderr)
    return 0
