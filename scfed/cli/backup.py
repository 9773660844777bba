"""``scfed node backup|restore`` and ``scfed coordinator backup|restore``: a daemon's state.

Parsing and printing only; the copying and checking are ``edge.backup``. A backup is one
SQLite file holding the whole state database, safe to make while the daemon runs; a restore
refuses while it runs and keeps the database it replaces as ``*.before-restore``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from edge import backup
from edge.config import load_coordinator_config, load_node_config
from scfed.errors import ConfigError

_CONFIG = {backup.NODE: "the node's node.toml", backup.COORDINATOR: "coordinator.toml"}


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser], role: str) -> None:
    """``backup`` and ``restore`` for ``role`` ("node" or "coordinator")."""
    made = commands.add_parser(
        "backup", help="copy the state database to a file, safely while the daemon runs"
    )
    made.add_argument("--config", type=Path, required=True, help=_CONFIG[role])
    made.add_argument(
        "--to", required=True, metavar="PATH",
        help=f"the backup file (replaced atomically), or a folder to put {role}-TIME.sqlite in",
    )  # fmt: skip
    made.set_defaults(func=_backup, backup_role=role)
    restored = commands.add_parser(
        "restore", help="replace the state database with a backup (the daemon stopped)"
    )
    restored.add_argument("--config", type=Path, required=True, help=_CONFIG[role])
    restored.add_argument(
        "--from", dest="source", type=Path, required=True, metavar="FILE", help="the backup file"
    )
    restored.set_defaults(func=_restore, backup_role=role)


def _database(role: str, config: Path) -> Path:
    if role == backup.NODE:
        return load_node_config(config).database
    return load_coordinator_config(config).database


def _backup(args: argparse.Namespace) -> int:
    role: str = args.backup_role
    database = _database(role, args.config)
    target = Path(args.to)
    if args.to.endswith("/") and not target.is_dir():
        raise ConfigError(f"--to {args.to}: there is no such folder")
    copied = backup.backup(database, role, target, datetime.now(UTC))
    print(
        f"backed up the {role}'s {database.name} to {copied.path} "
        f"({copied.tables} tables, {copied.size:,} bytes, integrity ok, mode 0600)"
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    role: str = args.backup_role
    database = _database(role, args.config)
    copied = backup.restore(database, role, args.source, datetime.now(UTC))
    kept = f"the replaced one kept as {copied.kept}" if copied.kept else "none was there before"
    print(
        f"restored the {role}'s {database} from {args.source} "
        f"({copied.tables} tables, integrity ok); {kept}"
    )
    return 0
