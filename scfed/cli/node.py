"""``scfed node ...``: the firm's daemon."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from edge.config import load_node_config
from edge.lock import state_lock
from scfed import enrolment
from scfed.cli import backup, node_data, party, results

if TYPE_CHECKING:
    from node.daemon import NodeDaemon


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
    results.add_command(commands, "node")
    backup.add_commands(commands, "node")
    party.add_commands(commands, enrolment.KIND_MEMBER)


def _serve(args: argparse.Namespace) -> int:
    from edge.transport import check_tls_files
    from node.daemon import NodeDaemon

    config = load_node_config(args.config)
    with state_lock(config.database, "scfed node"):
        for warning in check_tls_files(config.tls, datetime.now(UTC)):
            logging.getLogger("scfed.node").warning("%s", warning)
        _run(NodeDaemon(config, args.coordinator))
    return 0


def _run(daemon: NodeDaemon) -> None:
    """Run the daemon until it stops; raise here what made it stop, if anything did.

    The daemon runs in a worker thread so that the main thread, where Python runs signal
    handlers, is always free to hear SIGTERM and wake the worker from a backoff wait.
    """
    failed: list[BaseException] = []

    def work() -> None:
        try:
            daemon.run()
        except BaseException as exc:  # handed to the main thread, which reports it
            failed.append(exc)

    worker = threading.Thread(target=work, name="scfed-node")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: daemon.stop())
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
    if failed:
        raise failed[0]


def _ledger(args: argparse.Namespace) -> int:
    from scfed.cli._ledger import show_ledger

    config = load_node_config(args.config)
    return show_ledger(config.database, config.privacy)
