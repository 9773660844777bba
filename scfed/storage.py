"""SQLite as the daemons use it: WAL journal, fully synchronous commits, explicit transactions.

Edge code (does I/O), shared by node and coordinator. Connections run in autocommit mode, so
every write goes through :func:`transaction`, which makes a group of statements one atomic,
durable unit; SQLite's errors become ``StorageError``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scfed.errors import StorageError


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """Open (or create) the database at ``path`` and make sure ``schema`` exists."""
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        with transaction(db):
            _create(db, schema)  # executescript would commit on its own, outside the transaction
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open database {path}: {exc}") from exc
    return db


def _create(db: sqlite3.Connection, schema: str) -> None:
    for statement in schema.split(";"):
        if statement.strip():
            db.execute(statement)


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block's statements as one transaction, committed durably or not at all."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise StorageError(f"cannot start a transaction: {exc}") from exc
    try:
        yield db
    except sqlite3.Error as exc:
        db.execute("ROLLBACK")
        raise StorageError(f"cannot write the database: {exc}") from exc
    except BaseException:
        db.execute("ROLLBACK")
        raise
    try:
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        db.execute("ROLLBACK")
        raise StorageError(f"cannot commit: {exc}") from exc


def fetch(
    db: sqlite3.Connection, sql: str, parameters: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    """The rows of a query; SQLite's errors become StorageError."""
    try:
        return db.execute(sql, parameters).fetchall()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read the database: {exc}") from exc
