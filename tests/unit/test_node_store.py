"""The node's SQLite store keeps its unmask answers and its ledger across a restart."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from node.store import NodeStore
from scfed.dp.ledger import Charge
from scfed.errors import RefusedError, StorageError
from scfed.secagg import previous_answer
from scfed.wire.envelope import Envelope

ROUND = bytes(range(16))
RESPONSE = Envelope("round.unmask_response", b"body", "fab-a", bytes(64))
CHARGE = Charge(ROUND, "demand", "2026", 5, Fraction(1, 96))


def test_an_answer_survives_a_restart_and_a_different_request_is_refused(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.sqlite")
    assert previous_answer(store, ROUND, b"\x01" * 32) is None
    store.record(ROUND, b"\x01" * 32, RESPONSE.to_bytes(), CHARGE)
    store.close()
    restarted = NodeStore(tmp_path / "node.sqlite")
    assert previous_answer(restarted, ROUND, b"\x01" * 32) == RESPONSE
    with pytest.raises(RefusedError, match="different unmask request"):
        previous_answer(restarted, ROUND, b"\x02" * 32)
    assert previous_answer(restarted, bytes(16), b"\x02" * 32) is None


def test_a_round_cannot_be_recorded_twice(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.sqlite")
    store.record(ROUND, b"\x01" * 32, RESPONSE.to_bytes(), CHARGE)
    with pytest.raises(StorageError, match="UNIQUE"):
        store.record(ROUND, b"\x02" * 32, b"other", CHARGE)
    assert store.answered(ROUND) == (b"\x01" * 32, RESPONSE.to_bytes())


def test_the_ledger_survives_a_restart_exactly(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.sqlite")
    store.record(ROUND, b"\x01" * 32, RESPONSE.to_bytes(), CHARGE)
    later = Charge(bytes(16), "stock", "2026", 7, Fraction(1, 3))
    store.record(bytes(16), b"\x03" * 32, RESPONSE.to_bytes(), later)
    store.close()
    restarted = NodeStore(tmp_path / "node.sqlite")
    assert restarted.spent("2026") == Fraction(1, 96) + Fraction(1, 3)
    assert restarted.spent("2027") == 0
    assert restarted.charges == [CHARGE, later]


def test_a_failed_answer_charges_nothing(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.sqlite")
    store.record(ROUND, b"\x01" * 32, RESPONSE.to_bytes(), CHARGE)
    other = Charge(ROUND, "demand", "2026", 5, Fraction(1, 2))
    with pytest.raises(StorageError):
        store.record(ROUND, b"\x02" * 32, b"other", other)  # one transaction: neither row
    assert store.spent("2026") == Fraction(1, 96)


def test_a_release_is_found_by_its_window_in_any_period(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.sqlite")
    charge = Charge(bytes(16), "quarterly-demand", "2026-10", 7, Fraction(1, 8), "2026-Q4")
    store.record(bytes(16), bytes(32), b"answer", charge)
    store.close()
    reopened = NodeStore(tmp_path / "node.sqlite")
    assert reopened.released("quarterly-demand", "2026-Q4") == [bytes(16)]
    assert reopened.released("quarterly-demand", "2027-Q1") == []
    assert reopened.charges == [charge]


def test_a_ledger_of_the_earlier_version_keeps_its_charges(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "node.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE charges (round_id BLOB PRIMARY KEY, query TEXT NOT NULL, period TEXT "
        "NOT NULL, survivors INTEGER NOT NULL, rho TEXT NOT NULL, charged_at REAL NOT NULL)"
    )
    db.execute("INSERT INTO charges VALUES (?, 'q', '2026', 5, '1/32', 0)", (bytes(16),))
    db.commit()
    db.close()
    store = NodeStore(path)
    assert store.charges == [Charge(bytes(16), "q", "2026", 5, Fraction(1, 32), "")]
    assert store.spent("2026") == Fraction(1, 32)
