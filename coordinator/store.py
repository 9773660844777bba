"""The coordinator's SQLite store: every round it ran, its signed outcome, and the federation
ledger of the privacy budget each release spent. Does I/O."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime
from fractions import Fraction
from pathlib import Path

from edge import storage
from edge.storage import fetch_read_only, insert_charge, open_database, transaction
from scfed.dp.ledger import Charge
from scfed.errors import StorageError
from scfed.schedule import Attempt
from scfed.secagg.refusals import summary
from scfed.wire import RESULT
from scfed.wire.codec import decode_abort
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Refusal

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
CREATE TABLE IF NOT EXISTS schedule_attempts (
    entry TEXT NOT NULL,
    window TEXT NOT NULL,
    week TEXT NOT NULL,
    at REAL NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    round_id BLOB NOT NULL,
    member_id TEXT NOT NULL,
    code TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (round_id, member_id)
);
CREATE TABLE IF NOT EXISTS crisis_posts (
    pseudonym BLOB PRIMARY KEY,
    member_id TEXT NOT NULL,
    envelope BLOB NOT NULL,
    posted_at REAL NOT NULL
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

    def post_kept(self, pseudonym: bytes, member_id: str, post: Envelope, at: float) -> None:
        """Keep a crisis post, which only the coordinator and, once matched, the other side
        of its match may see: before its listing is logged."""
        with transaction(self._db) as db:
            db.execute(
                "INSERT INTO crisis_posts VALUES (?, ?, ?, ?)",
                (pseudonym, member_id, post.to_bytes(), at),
            )

    def posts(self) -> list[tuple[str, Envelope]]:
        """(member, signed post) of every crisis post, oldest first."""
        sql = "SELECT member_id, envelope FROM crisis_posts ORDER BY posted_at, rowid"
        return [(str(m), Envelope.from_bytes(_blob(e))) for m, e in storage.fetch(self._db, sql)]

    def refused(self, round_id: bytes, member_id: str, refusal: Refusal) -> None:
        """Remember a node's refusal of a round (the first it sent)."""
        with transaction(self._db) as db:
            db.execute(
                "INSERT OR IGNORE INTO refusals VALUES (?, ?, ?, ?)",
                (round_id, member_id, refusal.code, refusal.detail),
            )

    def recent(self, limit: int) -> list[PastRound]:
        """The latest rounds, newest first, with their outcomes and refusals."""
        return _past(self._db, limit)

    def attempted(self, attempt: Attempt) -> None:
        """Remember what a scheduled run of an entry came to."""
        with transaction(self._db) as db:
            db.execute(
                "INSERT INTO schedule_attempts VALUES (?, ?, ?, ?, ?, ?)",
                (attempt.entry, attempt.window, attempt.week.isoformat(), attempt.at.timestamp(),
                 attempt.outcome, attempt.reason),
            )  # fmt: skip

    def attempts(self) -> list[Attempt]:
        return _attempts(storage.fetch(self._db, _ATTEMPTS))

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


@dataclass(frozen=True)
class PastRound:
    """A round as the operator's status lists it."""

    round_id: bytes
    query: str
    started_at: float
    outcome: Envelope | None
    refusals: dict[str, str]  # member -> refusal code

    def line(self) -> str:
        """One line: when, which round, what it came to, and why."""
        when = datetime.fromtimestamp(self.started_at, UTC).strftime("%Y-%m-%d %H:%M")
        head = f"{when} UTC {self.round_id.hex()[:12]} {self.query}"
        if self.outcome is None:
            state = "running, or stopped before an outcome"
        elif self.outcome.type == RESULT:
            state = "result"
        else:
            state = f"aborted: {decode_abort(self.outcome.body).reason}"
        why = summary(self.refusals)
        return f"{head}: {state}" + (f" ({why})" if why and why not in state else "")


def _past(db: sqlite3.Connection, limit: int) -> list[PastRound]:
    rows = storage.fetch(
        db, "SELECT round_id, query, started_at, outcome FROM rounds ORDER BY started_at DESC "
        "LIMIT ?", (limit,),
    )  # fmt: skip
    out = []
    for round_id, query, started, outcome in rows:
        refused = storage.fetch(
            db, "SELECT member_id, code FROM refusals WHERE round_id = ?", (round_id,)
        )
        refusals = {str(member): str(code) for member, code in refused}
        envelope = None if outcome is None else Envelope.from_bytes(_blob(outcome))
        out.append(PastRound(_blob(round_id), str(query), float(str(started)), envelope, refusals))
    return out


_ATTEMPTS = "SELECT entry, window, week, at, outcome, reason FROM schedule_attempts ORDER BY at"


def read_attempts(path: Path) -> list[Attempt]:
    """Every scheduled attempt in a coordinator database, oldest first, read-only."""
    return _attempts(fetch_read_only(path, _ATTEMPTS))


def _attempts(rows: list[tuple[object, ...]]) -> list[Attempt]:
    out = []
    for entry, window, week, at, outcome, reason in rows:
        when = datetime.fromtimestamp(float(str(at)), UTC)
        out.append(Attempt(str(entry), str(window), date.fromisoformat(str(week)), when,
                           str(outcome), str(reason)))  # fmt: skip
    return out


def read_releases(path: Path) -> list[tuple[int, Envelope]]:
    """(log index, signed release) of every release in a coordinator database, read-only."""
    sql = "SELECT log_index, envelope FROM releases ORDER BY log_index"
    rows = fetch_read_only(path, sql)
    return [(int(str(i)), Envelope.from_bytes(_blob(e))) for i, e in rows]
