"""SQLite as the daemons use it: WAL journal, fully synchronous commits, explicit transactions.

Edge code (does I/O), shared by node and coordinator. Connections run in autocommit mode, so
every write goes through :func:`transaction`, which makes a group of statements one atomic,
durable unit; SQLite's errors become ``StorageError``.

The privacy ledger's table and queries live here too, since every one of them runs on a
connection; what a charge is and how rho is written are the core's (``scfed.dp.ledger``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

from scfed.dp.ledger import Charge, parse_rho, rho_text
from scfed.errors import ScfedError, StorageError


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """Open (or create) the database at ``path`` and make sure ``schema`` exists."""
    try:
        # A large import holds the write lock for seconds; others wait for it, not fail.
        db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        with transaction(db):
            _create(db, schema)  # executescript would commit on its own, outside the transaction
            _migrate(db)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open database {path}: {exc}") from exc
    return db


def _create(db: sqlite3.Connection, schema: str) -> None:
    for statement in schema.split(";"):
        if statement.strip():
            db.execute(statement)


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a ledger written by an earlier version up to this one, keeping every charge."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(charges)")}
    if columns and "release_window" not in columns:
        db.execute("ALTER TABLE charges ADD COLUMN release_window TEXT NOT NULL DEFAULT ''")


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


# ---- The privacy ledger: one table, kept by the node and by the coordinator -------------

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    round_id BLOB PRIMARY KEY,
    query TEXT NOT NULL,
    period TEXT NOT NULL,
    survivors INTEGER NOT NULL,
    rho TEXT NOT NULL,
    charged_at REAL NOT NULL,
    release_window TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS charges_by_period ON charges (period)
"""


def insert_charge(db: sqlite3.Connection, charge: Charge, at: float) -> None:
    """Record a charge inside the caller's transaction; a round is charged at most once."""
    db.execute(
        "INSERT INTO charges (round_id, query, period, survivors, rho, charged_at, release_window)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            charge.round_id, charge.query, charge.period, charge.survivors,
            rho_text(charge.rho), at, charge.window,
        ),
    )  # fmt: skip


_CHARGES = "SELECT round_id, query, period, survivors, rho, release_window FROM charges"


def charges(db: sqlite3.Connection, period: str | None = None) -> list[Charge]:
    """Every recorded charge, oldest first, or only those of one period."""
    where = " WHERE period = ?" if period else ""
    rows = fetch(db, f"{_CHARGES}{where} ORDER BY charged_at", (period,) if period else ())
    return [_charge(row) for row in rows]


def _charge(row: tuple[object, ...]) -> Charge:
    round_id, query, period, survivors, rho, window = row
    if not (
        isinstance(round_id, bytes)
        and isinstance(query, str)
        and isinstance(period, str)
        and isinstance(survivors, int)
        and isinstance(rho, str)
        and isinstance(window, str)
    ):
        raise StorageError("the ledger holds a value of the wrong type")
    try:
        value = parse_rho(rho)
    except ScfedError as exc:
        raise StorageError(f"the ledger holds a corrupt charge: {exc}") from exc
    return Charge(round_id, query, period, survivors, value, window)


def fetch_read_only(
    path: Path, sql: str, parameters: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    """The rows of a query on a database opened read-only (a daemon may be running on it);
    none when the database or the table does not exist yet (another command made the
    database, or the daemon has not run since the table came), because reading must not
    create them."""
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open database {path}: {exc}") from exc
    try:
        return db.execute(sql, parameters).fetchall()
    except sqlite3.OperationalError as exc:
        if str(exc).startswith("no such table"):
            return []
        raise StorageError(f"cannot read the database {path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read the database {path}: {exc}") from exc
    finally:
        db.close()


def read_charges(path: Path) -> list[Charge]:
    """The charges in a daemon's database, read-only; none if it does not exist yet."""
    return [_charge(row) for row in fetch_read_only(path, _CHARGES + " ORDER BY charged_at")]


def spent(db: sqlite3.Connection, period: str) -> Fraction:
    """The exact rho charged in one period."""
    return sum((c.rho for c in charges(db, period)), Fraction(0))
