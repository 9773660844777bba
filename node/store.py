"""The node's SQLite store: answered unmask requests, its privacy ledger, round outcomes, and
the governance-signed registry and policy versions it accepted.

Does I/O. The unmask answers are the node's durable promise never to answer two different
unmask requests for one round, and each answer is a release the node's budget is charged
for: answer and charge are committed in one transaction before the response leaves the node,
so a crash or restart can neither make it forget the answer nor the budget it spent. Every
registry and policy version it accepts is kept with its envelope, so that a restart cannot
make it take an older one back. A database written before a table existed gains it in place
when opened (``CREATE TABLE IF NOT EXISTS``, in the opening transaction), keeping every row.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from edge import storage
from edge.storage import fetch, insert_charge, open_database, transaction
from scfed.dp.ledger import Charge
from scfed.errors import StorageError
from scfed.wire.envelope import Envelope

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS unmask_answers (
    round_id BLOB PRIMARY KEY,
    request_hash BLOB NOT NULL,
    response BLOB NOT NULL,
    answered_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outcomes (
    round_id BLOB PRIMARY KEY,
    type TEXT NOT NULL,
    envelope BLOB NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS log_view (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checkpoint BLOB,
    halted TEXT
);
CREATE TABLE IF NOT EXISTS releases (
    log_index INTEGER PRIMARY KEY,
    round_id BLOB NOT NULL,
    entry TEXT NOT NULL,
    week TEXT NOT NULL,
    envelope BLOB NOT NULL,
    checkpoint BLOB NOT NULL,
    inclusion BLOB NOT NULL,
    coordinator_key BLOB NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    log_index INTEGER NOT NULL,
    commodity TEXT NOT NULL,
    week TEXT NOT NULL,
    alert TEXT NOT NULL,
    PRIMARY KEY (log_index, commodity, week)
);
CREATE TABLE IF NOT EXISTS signed_versions (
    kind TEXT NOT NULL,
    version INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    accepted_at REAL NOT NULL,
    PRIMARY KEY (kind, version)
);
"""
    + storage.LEDGER_SCHEMA
)


@dataclass(frozen=True)
class Accepted:
    """A governance-signed registry or policy version this node accepted, and when."""

    version: int
    envelope: bytes
    accepted_at: float  # seconds since the epoch


class NodeStore:
    """The node's durable state; an UnmaskGuard for the round machine."""

    def __init__(self, path: Path) -> None:
        self.database = path
        self._db = open_database(path, _SCHEMA)

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's connection, for ``node.releases`` to write its tables in."""
        return self._db

    def releases_from(self) -> int:
        """One past the log index of the newest release kept (0 for none)."""
        rows = fetch(self._db, "SELECT MAX(log_index) FROM releases")
        newest = rows[0][0] if rows else None
        return 0 if newest is None else int(str(newest)) + 1

    @property
    def charges(self) -> list[Charge]:
        """Every release this node took part in, oldest first."""
        return storage.charges(self._db)

    def spent(self, period: str) -> Fraction:
        return storage.spent(self._db, period)

    def charges_in(self, period: str) -> list[Charge]:
        return storage.charges(self._db, period)

    def released(self, query: str, window: str) -> list[bytes]:
        rows = fetch(
            self._db, "SELECT round_id FROM charges WHERE query = ? AND release_window = ?",
            (query, window),
        )  # fmt: skip
        return [_blob(row[0]) for row in rows]

    def close(self) -> None:
        self._db.close()

    def answered(self, round_id: bytes) -> tuple[bytes, bytes] | None:
        rows = fetch(
            self._db, "SELECT request_hash, response FROM unmask_answers WHERE round_id = ?",
            (round_id,),
        )  # fmt: skip
        return None if not rows else (_blob(rows[0][0]), _blob(rows[0][1]))

    def record(self, round_id: bytes, request_hash: bytes, response: bytes, charge: Charge) -> None:
        now = time.time()
        with transaction(self._db) as db:
            db.execute(
                "INSERT INTO unmask_answers VALUES (?, ?, ?, ?)",
                (round_id, request_hash, response, now),
            )
            insert_charge(db, charge, now)

    def latest_checkpoint(self) -> bytes | None:
        """The latest checkpoint of the protocol log this node verified."""
        rows = fetch(self._db, "SELECT checkpoint FROM log_view WHERE id = 1")
        return _blob(rows[0][0]) if rows and rows[0][0] is not None else None

    def keep_checkpoint(self, note: bytes) -> None:
        with transaction(self._db) as db:
            db.execute(
                "INSERT INTO log_view (id, checkpoint) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET checkpoint = excluded.checkpoint",
                (note,),
            )

    def halted(self) -> str | None:
        """Why this node stopped taking part for good, or None."""
        rows = fetch(self._db, "SELECT halted FROM log_view WHERE id = 1")
        value = rows[0][0] if rows else None
        return value if isinstance(value, str) else None

    def halt(self, reason: str) -> None:
        with transaction(self._db) as db:
            db.execute(
                "INSERT INTO log_view (id, halted) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET halted = excluded.halted",
                (reason,),
            )

    def newest_accepted(self, kind: str) -> Accepted | None:
        """The newest version of ``kind`` ("registry" or "policy") this node accepted."""
        rows = fetch(
            self._db, "SELECT version, envelope, accepted_at FROM signed_versions WHERE kind = ? "
            "ORDER BY version DESC LIMIT 1", (kind,),
        )  # fmt: skip
        if not rows:
            return None
        version, envelope, accepted_at = rows[0]
        if not isinstance(version, int) or not isinstance(accepted_at, float):
            raise StorageError("the node database holds a value of the wrong type")
        return Accepted(version, _blob(envelope), accepted_at)

    def accept(self, kind: str, version: int, envelope: Envelope) -> None:
        """Keep a newly accepted version; a version kept before is never replaced."""
        with transaction(self._db) as db:
            db.execute(
                "INSERT INTO signed_versions VALUES (?, ?, ?, ?)",
                (kind, version, envelope.to_bytes(), time.time()),
            )

    def keep_outcome(self, round_id: bytes, outcome: Envelope) -> None:
        with transaction(self._db) as db:
            db.execute(
                "INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?, ?)",
                (round_id, outcome.type, outcome.to_bytes(), time.time()),
            )


def _blob(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise StorageError("the node database holds a value of the wrong type")
    return value


# ---- read beside a running daemon (scfed attest, scfed crisis) ----


def verified_checkpoint(database: Path) -> bytes | None:
    """The latest checkpoint of the protocol log the node verified, if any."""
    store = NodeStore(database)
    try:
        return store.latest_checkpoint()
    finally:
        store.close()
