"""The coordinator's SQLite store: every round it ran and its signed outcome. Does I/O."""

from __future__ import annotations

from pathlib import Path

from scfed.envelope import Envelope
from scfed.storage import open_database, transaction

_SCHEMA = """
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

    def round_finished(self, round_id: bytes, at: float, outcome: Envelope) -> None:
        with transaction(self._db) as db:
            db.execute(
                "UPDATE rounds SET outcome_type = ?, outcome = ?, finished_at = ? "
                "WHERE round_id = ?",
                (outcome.type, outcome.to_bytes(), at, round_id),
            )
