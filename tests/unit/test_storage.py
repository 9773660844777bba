"""Explicit transactions: all of a block's writes, or none of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.storage import fetch, open_database, transaction
from scfed.errors import StorageError

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL);"


def test_a_failing_block_leaves_nothing_behind(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.sqlite", SCHEMA)

    def two_inserts() -> None:
        with transaction(db):
            db.execute("INSERT INTO t VALUES (1, 'kept?')")
            db.execute("INSERT INTO t VALUES (2, NULL)")

    with pytest.raises(StorageError, match="NOT NULL"):
        two_inserts()
    assert fetch(db, "SELECT * FROM t") == []


def test_a_block_that_raises_our_own_error_is_rolled_back_too(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.sqlite", SCHEMA)

    def insert_then_fail() -> None:
        with transaction(db):
            db.execute("INSERT INTO t VALUES (1, 'a')")
            raise ValueError("stop")

    with pytest.raises(ValueError, match="stop"):
        insert_then_fail()
    assert fetch(db, "SELECT * FROM t") == []


def test_committed_rows_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    db = open_database(path, SCHEMA)
    with transaction(db):
        db.execute("INSERT INTO t VALUES (1, 'a')")
        db.execute("INSERT INTO t VALUES (2, 'b')")
    db.close()
    assert fetch(open_database(path, SCHEMA), "SELECT v FROM t ORDER BY k") == [("a",), ("b",)]


def test_an_unopenable_database_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot open database"):
        open_database(tmp_path / "missing" / "x.sqlite", SCHEMA)
