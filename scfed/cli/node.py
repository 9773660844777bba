"""``scfed node ...``: the firm's daemon."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from scfed.cli import node_data
from scfed.config import load_node_config


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = roles.add_parser("node", help="run a member's node")
    commands = parser.add_subparsers(dest="node_command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="connect to the coordinator and take part")
    serve.add_argument("--config", type=Path, required=True, help="the node's node.toml")
    serve.add_argument("--coordinator", help="HOST:PORT, overriding the configuration")
    serve.set_defaults(func=_serve)
    ledger = commands.add_parser("ledger", help="the privacy budget spent and left, per period")
    ledger.add_argument("--config", type=Path, required=True, help="the node's node.toml")
    ledger.set_defaults(func=_ledger)
    node_data.add_commands(commands)


def _serve(args: argparse.Namespace) -> int:
    from node.daemon import NodeDaemon

    daemon = NodeDaemon(load_node_config(args.config), args.coordinator)
    # The daemon runs in a worker thread so that the main thread, where Python runs signal
    # handlers, is always free to hear SIGTERM and wake the worker from a backoff wait.
    worker = threading.Thread(target=daemon.run, name="scfed-node")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: daemon.stop())
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
    return 0


def _ledger(args: argparse.Namespace) -> int:
    from scfed.cli._ledger import show_ledger

    config = load_node_config(args.config)
    return show_ledger(config.database, config.privacy)
