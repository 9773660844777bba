"""The coordinator's SQLite store: every round it ran and its signed outcome. Does I/O."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from scfed.envelope import Envelope

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


@dataclass(frozen=True)
class StoredRound:
    round_id: bytes
    query: str
    started_at: float
    outcome: Envelope | None


class Store:
    """Rounds and outcomes, written in transactions so a crash loses nothing acknowledged."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def round_started(self, round_id: bytes, query: str, at: float, announce: Envelope) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO rounds (round_id, query, started_at, announce) VALUES (?, ?, ?, ?)",
                (round_id, query, at, announce.to_bytes()),
            )

    def round_finished(self, round_id: bytes, at: float, outcome: Envelope) -> None:
        with self._db:
            self._db.execute(
                "UPDATE rounds SET outcome_type = ?, outcome = ?, finished_at = ? "
                "WHERE round_id = ?",
                (outcome.type, outcome.to_bytes(), at, round_id),
            )

    def rounds(self) -> list[StoredRound]:
        """Every round, oldest first."""
        rows = self._db.execute(
            "SELECT round_id, query, started_at, outcome FROM rounds ORDER BY started_at"
        ).fetchall()
        return [
            StoredRound(r[0], r[1], r[2], Envelope.from_bytes(r[3]) if r[3] else None) for r in rows
        ]
