"""The coordinator's SQLite store: every round it ran, its signed outcome, and the federation
ledger of the privacy budget each release spent. Does I/O."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from scfed import storage
from scfed.dp.ledger import Charge
from scfed.envelope import Envelope
from scfed.storage import insert_charge, open_database, transaction

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

    def spent(self, period: str) -> Fraction:
        return storage.spent(self._db, period)

    @property
    def charges(self) -> list[Charge]:
        return storage.charges(self._db)
