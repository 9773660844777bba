"""The coordinator's SQLite store: every round it ran, its signed outcome, and the federation
ledger of the privacy budget each release spent. Does I/O."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from edge import storage
from edge.storage import fetch_read_only, insert_charge, open_database, transaction
from scfed.dp.ledger import Charge
from scfed.errors import StorageError
from scfed.wire import RESULT
from scfed.wire.envelope import Envelope

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS rounds (
    round_id BLOB PRIMARY KEY,
    query TEXT NOT NULL,
    started_at REAL NOT NULL,
    announce BLOB NOT NULL,
    outcome_type TEXT,
    outcome BLOB,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS releases (
    log_index INTEGER PRIMARY KEY,
    round_id BLOB NOT NULL UNIQUE,
    entry TEXT NOT NULL,
    week TEXT NOT NULL,
    envelope BLOB NOT NULL
);
"""
    + storage.LEDGER_SCHEMA
)


class Store:
    """Rounds and outcomes, written in transactions so a crash loses nothing acknowledged."""

    def __init__(self, path: Path) -> None:
        self._db = open_database(path, _SCHEMA)

    def close(self) -> None:
        self._db.close()

    def round_started(self, round_id: bytes, query: str, at: float, announce: Envelope) -> None:
        with transaction(self._db) as db:
            db.execute(
                "INSERT INTO rounds (round_id, query, started_at, announce) VALUES (?, ?, ?, ?)",
                (round_id, query, at, announce.to_bytes()),
            )

    def round_finished(
        self, round_id: bytes, at: float, outcome: Envelope, charge: Charge | None
    ) -> None:
        """Store the outcome and, for a release, its charge, in one transaction."""
        with transaction(self._db) as db:
            db.execute(
                "UPDATE rounds SET outcome_type = ?, outcome = ?, finished_at = ? "
                "WHERE round_id = ?",
                (outcome.type, outcome.to_bytes(), at, round_id),
            )
            if charge is not None:
                insert_charge(db, charge, at)

    def results_of(self, query: str) -> list[tuple[Envelope, Envelope]]:
        """(announce, result) of every round of ``query`` that published a result, oldest
        first."""
        sql = (
            "SELECT announce, outcome FROM rounds WHERE query = ? AND outcome_type = ? "
            "ORDER BY started_at"
        )
        rows = storage.fetch(self._db, sql, (query, RESULT))
        return [(Envelope.from_bytes(_blob(a)), Envelope.from_bytes(_blob(o))) for a, o in rows]

    def release_logged(self, index: int, round_id: bytes, entry: str, week: str,
                       envelope: Envelope) -> None:  # fmt: skip
        """Remember a logged release, to send it to recipients who connect later."""
        with transaction(self._db) as db:
            db.execute(
                "INSERT OR IGNORE INTO releases (log_index, round_id, entry, week, envelope) "
                "VALUES (?, ?, ?, ?, ?)",
                (index, round_id, entry, week, envelope.to_bytes()),
            )

    def releases_from(self, start: int) -> list[tuple[int, Envelope]]:
        """(log index, signed release) of every release logged at ``start`` or later."""
        sql = "SELECT log_index, envelope FROM releases WHERE log_index >= ? ORDER BY log_index"
        return [
            (int(str(i)), Envelope.from_bytes(_blob(e)))
            for i, e in storage.fetch(self._db, sql, (start,))
        ]

    def unfinished(self) -> dict[bytes, Envelope]:
        """Round id -> signed announce of each round started and never finished, oldest
        first: the coordinator stopped during them."""
        sql = "SELECT round_id, announce FROM rounds WHERE outcome IS NULL ORDER BY started_at"
        rows = storage.fetch(self._db, sql)
        return {_blob(row[0]): Envelope.from_bytes(_blob(row[1])) for row in rows}

    def spent(self, period: str) -> Fraction:
        return storage.spent(self._db, period)

    @property
    def charges(self) -> list[Charge]:
        return storage.charges(self._db)


@dataclass(frozen=True)
class StoredRound:
    """A round as the coordinator stored it: its signed announce and outcome."""

    round_id: bytes
    started_at: float
    announce: Envelope
    outcome: Envelope | None


def read_rounds(path: Path) -> list[StoredRound]:
    """Every round in a coordinator database, oldest first, read-only."""
    sql = "SELECT round_id, started_at, announce, outcome FROM rounds ORDER BY started_at"
    return [_round(row) for row in fetch_read_only(path, sql)]


def _blob(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise StorageError("the coordinator database holds a value of the wrong type")
    return value


def _round(row: tuple[object, ...]) -> StoredRound:
    round_id, started, announce, outcome = row
    if not (
        isinstance(round_id, bytes)
        and isinstance(started, float)
        and isinstance(announce, bytes)
        and isinstance(outcome, bytes | None)
    ):
        raise StorageError("the coordinator database holds a round of the wrong shape")
    finished = None if outcome is None else Envelope.from_bytes(outcome)
    return StoredRound(round_id, started, Envelope.from_bytes(announce), finished)


def read_releases(path: Path) -> list[tuple[int, Envelope]]:
    """(log index, signed release) of every release in a coordinator database, read-only."""
    sql = "SELECT log_index, envelope FROM releases ORDER BY log_index"
    rows = fetch_read_only(path, sql)
    return [(int(str(i)), Envelope.from_bytes(_blob(e))) for i, e in rows]
