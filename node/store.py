"""The node's SQLite store: answered unmask requests and round outcomes. Does I/O.

The unmask answers are the node's durable promise never to answer two different unmask
requests for one round: the row is committed before the response leaves the node, so a
crash or restart cannot make it forget.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from scfed.envelope import Envelope

_SCHEMA = """
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
"""


class NodeStore:
    """The node's durable state; an UnmaskGuard for the round machine."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def answered(self, round_id: bytes) -> tuple[bytes, bytes] | None:
        row = self._db.execute(
            "SELECT request_hash, response FROM unmask_answers WHERE round_id = ?", (round_id,)
        ).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def record(self, round_id: bytes, request_hash: bytes, response: bytes) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO unmask_answers VALUES (?, ?, ?, ?)",
                (round_id, request_hash, response, time.time()),
            )

    def keep_outcome(self, round_id: bytes, outcome: Envelope) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?, ?)",
                (round_id, outcome.type, outcome.to_bytes(), time.time()),
            )

    def outcomes(self) -> list[tuple[bytes, Envelope]]:
        """Every outcome received, oldest first."""
        rows = self._db.execute(
            "SELECT round_id, envelope FROM outcomes ORDER BY received_at"
        ).fetchall()
        return [(bytes(r[0]), Envelope.from_bytes(bytes(r[1]))) for r in rows]
