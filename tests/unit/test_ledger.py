"""Budget periods, caps and the stored ledger both daemons keep."""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest

from edge.storage import LEDGER_SCHEMA, insert_charge, open_database, read_charges, transaction
from scfed.cli._ledger import ledger_report
from scfed.dp.ledger import Budget, Charge, parse_rho, period_label, rho_text
from scfed.errors import ConfigError, PrivacyBudgetError, StorageError


@pytest.mark.parametrize(
    ("kind", "day", "label"),
    [
        ("year", date(2026, 11, 21), "2026"),
        ("quarter", date(2026, 11, 21), "2026-Q4"),
        ("quarter", date(2026, 1, 1), "2026-Q1"),
        ("month", date(2026, 3, 31), "2026-03"),
    ],
)
def test_period_labels(kind: str, day: date, label: str) -> None:
    assert period_label(kind, day) == label


def test_an_unknown_period_is_refused() -> None:
    with pytest.raises(ConfigError, match="year, quarter, month"):
        period_label("week", date(2026, 1, 1))
    with pytest.raises(ConfigError):
        Budget(Fraction(1, 2), "decade")


@pytest.mark.parametrize("cap", [Fraction(0), Fraction(-1), Fraction(11)])
def test_a_cap_out_of_range_is_refused(cap: Fraction) -> None:
    with pytest.raises(ConfigError, match="rho cap"):
        Budget(cap)


def test_the_cap_is_exact() -> None:
    budget = Budget(Fraction(1, 2))
    budget.check(Fraction(15, 32), Fraction(1, 32), "2026")
    with pytest.raises(PrivacyBudgetError, match=r"past the cap 0\.5 \(0\.03125 remains\)"):
        budget.check(Fraction(15, 32), Fraction(1, 32) + Fraction(1, 10**12), "2026")


@pytest.mark.parametrize("rho", [Fraction(0), Fraction(1, 32), Fraction(10**20 + 1, 3**40)])
def test_rho_text_round_trips(rho: Fraction) -> None:
    assert parse_rho(rho_text(rho)) == rho


@pytest.mark.parametrize("text", ["", "abc", "1/0", "-1/3"])
def test_bad_rho_text_is_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_rho(text)


CHARGES = [
    Charge(bytes(16), "demand", "2025", 5, Fraction(1, 8)),
    Charge(bytes([1]) * 16, "demand", "2026", 5, Fraction(1, 16)),
    Charge(bytes([2]) * 16, "stock", "2026", 9, Fraction(1, 48)),
]


def test_stored_charges_read_back_exactly_and_read_only(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    assert read_charges(path) == []
    assert not path.exists()  # reading does not create a database
    db = open_database(path, LEDGER_SCHEMA)
    with transaction(db):
        for at, charge in enumerate(CHARGES):
            insert_charge(db, charge, float(at))
    db.close()
    assert read_charges(path) == CHARGES


def test_a_corrupt_charge_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    db = open_database(path, LEDGER_SCHEMA)
    with transaction(db):
        db.execute("INSERT INTO charges VALUES (?, 'q', '2026', 3, 'lots', 0, '')", (bytes(16),))
    db.close()
    with pytest.raises(StorageError, match="corrupt charge"):
        read_charges(path)


def test_the_report_shows_spent_and_left_per_period() -> None:
    text = ledger_report(CHARGES, Budget(Fraction(1, 2)), 1e-9, "2026")
    lines = text.splitlines()
    assert lines[0].startswith("budget: rho 0.5 per year (epsilon 6.")
    assert lines[3].split() == ["2025", "1", "0.125", "0.375", lines[3].split()[-1]]
    assert lines[4].split()[:4] == ["2026", "2", "0.0833333", "0.416667"]
    assert f"round {(bytes([2]) * 16).hex()}  stock  9 survivors  rho 0.0208333" in text


def test_the_report_of_an_empty_ledger_shows_the_current_period() -> None:
    text = ledger_report([], Budget(Fraction(1, 4), "month"), 1e-6, "2026-11")
    assert text.splitlines()[-1].split()[:4] == ["2026-11", "0", "0", "0.25"]
