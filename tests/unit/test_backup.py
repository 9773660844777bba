"""Backups of a daemon's state database, taken live, checked, and restored only when safe."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import stat
import threading
from fractions import Fraction
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.log import ProtocolLog
from coordinator.store import Store
from edge import backup
from edge.lock import state_lock
from governance.local import coordinator_config, enroll_member, init_federation
from node.records import RecordStore
from node.store import NodeStore
from scfed.cli import main
from scfed.dp.ledger import Charge
from scfed.errors import RefusedError, StorageError
from scfed.secagg import previous_answer
from scfed.wire.envelope import Envelope

NOW = dt.datetime(2026, 11, 23, 9, 0, 0, tzinfo=dt.UTC)
ROUND = bytes(range(16))
HASH = b"\x01" * 32
RESPONSE = Envelope("round.unmask_response", b"body", "fab-a", bytes(64))


def _charge(round_id: bytes) -> Charge:
    return Charge(round_id, "demand", "2026", 5, Fraction(1, 96))


def _node_database(path: Path) -> Path:
    """A node's database as its daemon leaves it: store and records, one answered round."""
    path.parent.mkdir(parents=True, exist_ok=True)
    store = NodeStore(path)
    RecordStore(path).close()
    store.record(ROUND, HASH, RESPONSE.to_bytes(), _charge(ROUND))
    store.close()
    return path


def _coordinator_database(path: Path) -> Path:
    Store(path).close()
    ProtocolLog(path, origin="test.example/fed", key=Ed25519PrivateKey.generate()).close()
    return path


def _tables(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return len(backup.tables(db))
    finally:
        db.close()


def _rows(path: Path, table: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


# ---- Backup ----


def test_a_backup_of_a_live_store_is_one_consistent_snapshot(tmp_path: Path) -> None:
    database = _node_database(tmp_path / "node.sqlite")
    store = NodeStore(database)
    stop = threading.Event()

    def write() -> None:  # answer and charge go in one transaction: a snapshot has both
        for i in range(1, 10_000):
            if stop.is_set():
                return
            round_id = i.to_bytes(16, "big")
            store.record(round_id, HASH, RESPONSE.to_bytes(), _charge(round_id))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        copies = [backup.backup(database, "node", tmp_path / f"b{i}.sqlite", NOW) for i in range(5)]
    finally:
        stop.set()
        writer.join()
        store.close()
    counts = [_rows(c.path, "unmask_answers") for c in copies]
    assert counts == [_rows(c.path, "charges") for c in copies]
    assert counts == sorted(counts)
    assert counts[-1] > 1, "the writer wrote nothing while the backups ran"
    for copied in copies:
        db = sqlite3.connect(copied.path)
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        db.close()


def test_a_backup_is_private_and_leaves_no_partial_file(tmp_path: Path) -> None:
    database = _node_database(tmp_path / "state" / "node.sqlite")
    (tmp_path / "out").mkdir()
    copied = backup.backup(database, "node", tmp_path / "out", NOW)  # a folder: named for us
    assert copied.path == tmp_path / "out" / "node-20261123T090000Z.sqlite"
    assert stat.S_IMODE(copied.path.stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [copied.path.name]
    assert copied.tables == _tables(database) >= 10
    assert copied.size == copied.path.stat().st_size


def test_a_backup_that_fails_leaves_nothing_under_the_final_name(tmp_path: Path) -> None:
    database = _coordinator_database(tmp_path / "coordinator.sqlite")
    target = tmp_path / "node-backup.sqlite"
    with pytest.raises(StorageError, match="is a coordinator's database, not a node's"):
        backup.backup(database, "node", target, NOW)
    # Reading a WAL database may leave its -wal and -shm; nothing else may be left.
    left = {p.name for p in tmp_path.iterdir()}
    assert left - {"coordinator.sqlite-wal", "coordinator.sqlite-shm"} == {"coordinator.sqlite"}


def test_a_backup_refuses_a_missing_database_and_its_own_file(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="there is no node database at"):
        backup.backup(tmp_path / "node.sqlite", "node", tmp_path / "b.sqlite", NOW)
    database = _node_database(tmp_path / "node.sqlite")
    with pytest.raises(StorageError, match="is the node's database itself"):
        backup.backup(database, "node", database, NOW)


def test_a_coordinator_backup_holds_its_log(tmp_path: Path) -> None:
    database = _coordinator_database(tmp_path / "coordinator.sqlite")
    copied = backup.backup(database, "coordinator", tmp_path / "c.sqlite", NOW)
    db = sqlite3.connect(copied.path)
    names = backup.tables(db)
    db.close()
    assert {"rounds", "charges", "log_leaves", "log_checkpoints", "releases"} <= names


# ---- Restore ----


@pytest.fixture
def made(tmp_path: Path) -> tuple[Path, Path]:
    """(the node's database, a backup of it with one answered round)."""
    database = _node_database(tmp_path / "state" / "node.sqlite")
    return database, backup.backup(database, "node", tmp_path / "node.backup", NOW).path


def test_a_restore_brings_back_the_answer_and_keeps_the_replaced_database(
    made: tuple[Path, Path],
) -> None:
    database, copy = made
    store = NodeStore(database)
    later = bytes(16)
    store.record(later, HASH, RESPONSE.to_bytes(), _charge(later))  # after the backup
    store.close()
    restored = backup.restore(database, "node", copy, NOW)
    kept = database.with_name("node.sqlite.20261123T090000Z.before-restore")
    assert restored.kept == kept
    assert _rows(kept, "unmask_answers") == 2  # the replaced state, whole
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    store = NodeStore(database)
    assert store.answered(later) is None
    assert previous_answer(store, ROUND, HASH) == RESPONSE
    with pytest.raises(RefusedError, match="different unmask request"):
        previous_answer(store, ROUND, b"\x02" * 32)
    assert store.spent("2026") == Fraction(1, 96)
    store.close()


def test_a_restore_replaces_a_corrupt_database(made: tuple[Path, Path]) -> None:
    database, copy = made
    database.write_bytes(b"not a database at all" * 100)
    restored = backup.restore(database, "node", copy, NOW)
    assert restored.kept is not None
    assert restored.kept.read_bytes().startswith(b"not a database")
    assert _rows(database, "unmask_answers") == 1


def test_a_restore_where_no_database_was(made: tuple[Path, Path]) -> None:
    database, copy = made
    database.unlink()
    restored = backup.restore(database, "node", copy, NOW)
    assert restored.kept is None
    assert _rows(database, "charges") == 1


def test_a_restore_refuses_while_the_daemon_holds_its_lock(made: tuple[Path, Path]) -> None:
    database, copy = made
    before = database.read_bytes()
    with state_lock(database, "scfed node"), pytest.raises(StorageError) as refused:
        backup.restore(database, "node", copy, NOW)
    assert str(refused.value).startswith(
        "cannot restore: scfed node is already running on this state folder (lock "
    )
    assert database.read_bytes() == before
    assert not list(database.parent.glob("*.before-restore"))


def test_a_restore_refuses_another_roles_backup(tmp_path: Path, made: tuple[Path, Path]) -> None:
    database, _ = made
    coordinator = _coordinator_database(tmp_path / "coordinator.sqlite")
    with pytest.raises(StorageError, match="is a coordinator's database, not a node's"):
        backup.restore(database, "node", coordinator, NOW)
    with pytest.raises(StorageError, match="is a node's database, not a coordinator's"):
        backup.restore(coordinator, "coordinator", database, NOW)
    assert _rows(database, "unmask_answers") == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"SQLite format 3\x00" + b"\xff" * 4000, "not a sound SQLite database"),
        (b"just some text\n", "not a sound SQLite database"),
    ],
    ids=["damaged-header", "not-sqlite"],
)
def test_a_restore_refuses_a_file_that_is_no_database(
    tmp_path: Path, made: tuple[Path, Path], content: bytes, message: str
) -> None:
    database, _ = made
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(content)
    with pytest.raises(StorageError, match=message):
        backup.restore(database, "node", bad, NOW)
    assert _rows(database, "unmask_answers") == 1


def test_a_restore_refuses_a_database_of_no_role(tmp_path: Path, made: tuple[Path, Path]) -> None:
    database, _ = made
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.commit()
    db.close()
    with pytest.raises(StorageError, match="has no table data_files or unmask_answers"):
        backup.restore(database, "node", other, NOW)


def test_a_damaged_page_fails_the_integrity_check(tmp_path: Path) -> None:
    database = tmp_path / "node.sqlite"
    store = NodeStore(database)
    for i in range(300):  # a few pages of index and table
        round_id = i.to_bytes(16, "big")
        store.record(round_id, os.urandom(32), os.urandom(200), _charge(round_id))
    store.close()
    data = bytearray(database.read_bytes())
    page = 4096
    data[3 * page : 4 * page] = b"\xff" * page  # a whole b-tree page
    database.write_bytes(bytes(data))
    with pytest.raises(StorageError, match=r"integrity check|not a sound SQLite database"):
        backup.backup(database, "node", tmp_path / "b.sqlite", NOW)
    assert not (tmp_path / "b.sqlite").exists()


# ---- The commands ----


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fed")
    now = dt.datetime.now(dt.UTC)
    init_federation(directory, "demo", None, "127.0.0.1:0", [], now)
    enroll_member(directory, "fab-a", None, None, now)
    return directory


def test_the_commands_back_up_and_restore_in_one_line(
    federation: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = federation / "members" / "fab-a" / "node.toml"
    database = _node_database(config.parent / "node.sqlite")
    copy = tmp_path / "node.backup"
    assert main(["node", "backup", "--config", str(config), "--to", str(copy)]) == 0
    line = capsys.readouterr().out
    count = _tables(database)
    assert line.startswith(f"backed up the node's node.sqlite to {copy} ({count} tables, ")
    assert line.count("\n") == 1
    assert main(["node", "restore", "--config", str(config), "--from", str(copy)]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"restored the node's {database} from {copy} ({count} tables, integrity")
    assert "the replaced one kept as " in line
    assert line.count("\n") == 1
    coordinator = coordinator_config(federation)
    assert main(["coordinator", "restore", "--config", str(coordinator), "--from", str(copy)]) == 1
    error = capsys.readouterr().err
    assert error == f"scfed: error: {copy} is a node's database, not a coordinator's\n"


def test_a_backup_to_a_folder_that_is_not_there_is_refused(
    federation: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = federation / "members" / "fab-a" / "node.toml"
    missing = f"{tmp_path}/no-such-folder/"
    assert main(["node", "backup", "--config", str(config), "--to", missing]) == 1
    assert capsys.readouterr().err == f"scfed: error: --to {missing}: there is no such folder\n"
    assert not (tmp_path / "no-such-folder").exists()
