"""Backing up a daemon's state and restoring it. Edge code (does I/O).

A node and a coordinator each keep all of their state in one SQLite database, the
configuration's ``[state] database``: the node its unmask answers, ledger, outcomes, releases
and imported data; the coordinator its rounds, ledger, releases, the protocol log and the
signed versions it logged, all in the same file. A backup is therefore one SQLite database
file, self-contained (rollback journal, no ``-wal`` beside it), made with SQLite's online
backup API from a read-only connection: the copy is one consistent snapshot even while the
daemon writes (WAL: the reader never blocks it). The copy is checked (``PRAGMA
integrity_check``, and the tables of its role), written 0600 under a temporary name in the
target's folder, synced and only then renamed into place, so a partial backup never carries
the final name.

A restore takes the daemon's state lock (so it refuses while the daemon runs), checks the
backup the same way, copies it beside the database, keeps the database it replaces (with its
``-wal`` and ``-shm``) as ``NAME.<UTC time>.before-restore`` and renames the copy into
place. The old database stays under its own name until that last rename, so a crash during a
restore leaves either the old state or the restored one, never none.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edge.files import PRIVATE_MODE, sync_folder
from edge.lock import state_lock
from scfed.errors import StorageError

NODE = "node"
COORDINATOR = "coordinator"
ROLES = (NODE, COORDINATOR)

#: A role's database has at least one table of each set in ``_NEEDS`` and none of ``_NEVER``.
#: A node that only imported data and never served has its records tables alone.
_NEEDS: dict[str, tuple[frozenset[str], ...]] = {
    NODE: (frozenset({"unmask_answers", "data_files"}),),
    COORDINATOR: (frozenset({"rounds"}), frozenset({"log_leaves"})),
}
_NEVER: dict[str, frozenset[str]] = {
    NODE: frozenset({"rounds", "log_leaves"}),
    COORDINATOR: frozenset({"unmask_answers", "data_files"}),
}
#: The files SQLite may keep beside a database.
_SIDE_FILES = ("-wal", "-shm", "-journal")
BEFORE_RESTORE = ".before-restore"


@dataclass(frozen=True)
class Copied:
    """What a backup or restore did: the file written, its tables and size, and for a restore
    where the replaced database was put (None when there was none)."""

    path: Path
    tables: int
    size: int
    kept: Path | None = None


def backup(database: Path, role: str, target: Path, now: datetime) -> Copied:
    """Copy the live ``database`` of ``role`` to ``target`` (a file, or an existing folder to
    put ``ROLE-<UTC time>.sqlite`` in); StorageError if it is not that role's or not sound."""
    if not database.exists():
        raise StorageError(f"there is no {role} database at {database} to back up")
    if target.is_dir():
        target = target / f"{role}-{_stamp(now)}.sqlite"
    if _same_file(target, database):
        raise StorageError(f"{target} is the {role}'s database itself: back up to another file")
    with _read_only(database) as source, _staged(target) as staged:
        _copy(source, staged)
        count = _check(staged, role, str(database))
    return Copied(target, count, target.stat().st_size)


def restore(database: Path, role: str, source: Path, now: datetime) -> Copied:
    """Replace ``database`` with the backup at ``source``, keeping the old one aside.

    Refuses while the daemon holds the state lock, and a file that is not a sound database
    of ``role``.
    """
    if _same_file(source, database):
        raise StorageError(f"{source} is the {role}'s database itself, not a backup of it")
    if not source.is_file():
        raise StorageError(f"there is no backup file at {source}")
    kept = _aside(database, now)
    if kept.exists():
        raise StorageError(f"{kept} exists already: wait a second and restore again")
    database.parent.mkdir(parents=True, exist_ok=True)
    with _locked(database, role), _read_only(source) as backup_db:
        _check(backup_db, role, str(source))
        with _staged(database, keep=kept) as staged:
            _copy(backup_db, staged)
            count = _check(staged, role, str(source))
    return Copied(database, count, database.stat().st_size, kept if kept.exists() else None)


def tables(db: sqlite3.Connection) -> frozenset[str]:
    """The names of the tables in ``db``."""
    rows = db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'").fetchall()
    return frozenset(str(row[0]) for row in rows)


def check_role(names: frozenset[str], role: str, what: str) -> None:
    """StorageError unless tables ``names`` are those of a ``role``'s database."""
    other = COORDINATOR if role == NODE else NODE
    if names & _NEVER[role]:
        raise StorageError(f"{what} is a {other}'s database, not a {role}'s")
    for needed in _NEEDS[role]:
        if not names & needed:
            wanted = " or ".join(sorted(needed))
            raise StorageError(f"{what} is not a {role}'s database (it has no table {wanted})")


def _check(db: sqlite3.Connection, role: str, what: str) -> int:
    """The number of tables of ``db`` once it passed the integrity check and is ``role``'s."""
    try:
        problems = [str(row[0]) for row in db.execute("PRAGMA integrity_check").fetchall()]
        names = tables(db)
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{what} is not a sound SQLite database: {exc}") from exc
    if problems != ["ok"]:
        raise StorageError(f"{what} fails SQLite's integrity check: {problems[0]}")
    check_role(names, role, what)
    return len(names)


def _copy(source: sqlite3.Connection, staged: sqlite3.Connection) -> None:
    """Copy every page of ``source`` in one step (one consistent snapshot), then make the copy
    a self-contained file with a rollback journal."""
    try:
        source.backup(staged)
        staged.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"cannot copy the database: {exc}") from exc


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open {path}: {exc}") from exc
    try:
        yield db
    finally:
        db.close()


@contextlib.contextmanager
def _staged(final: Path, keep: Path | None = None) -> Iterator[sqlite3.Connection]:
    """A new database under a temporary name beside ``final``, made 0600, to fill in the
    block; once the block succeeds it is synced and renamed to ``final`` (after ``final``, if
    it exists, is kept under ``keep``). On any failure the temporary file goes away."""
    temporary = final.with_name(f".{final.name}.{secrets.token_hex(8)}.tmp")
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))
        db = sqlite3.connect(temporary, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"cannot write {final}: {_reason(exc)}") from exc
    try:
        try:
            yield db
        finally:
            db.close()
        _sync(temporary)
        if keep is not None:
            _keep_aside(final, keep)
        os.replace(temporary, final)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StorageError(f"cannot write {final}: {_reason(exc)}") from exc
        raise
    with contextlib.suppress(OSError):  # some file systems cannot sync a folder
        sync_folder(final.parent)


def _sync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fchmod(descriptor, PRIVATE_MODE)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _keep_aside(database: Path, keep: Path) -> None:
    """Give the database about to be replaced a second name, ``keep``, with its side files.

    A database that still opens is checkpointed first, so that its content is in the main
    file and SQLite removes its ``-wal``; a ``-wal`` left (a database that does not open)
    moves with it, so that neither file is ever read with the other's pages.
    """
    if not database.exists():
        return
    _checkpoint(database)
    os.link(database, keep)  # the old state keeps its own name until the replacing rename
    for suffix in _SIDE_FILES:
        side = database.with_name(database.name + suffix)
        if side.exists():
            os.replace(side, keep.with_name(keep.name + suffix))


def _checkpoint(database: Path) -> None:
    with contextlib.suppress(sqlite3.Error):  # a corrupt database is kept aside as it is
        db = sqlite3.connect(f"{database.resolve().as_uri()}?mode=rw", uri=True)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()


@contextlib.contextmanager
def _locked(database: Path, role: str) -> Iterator[None]:
    """Hold the daemon's state lock; refuse, saying so, while the daemon holds it."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(state_lock(database, f"scfed {role}"))
        except StorageError as exc:
            raise StorageError(f"cannot restore: {exc}") from None
        yield


def _aside(database: Path, now: datetime) -> Path:
    return database.with_name(f"{database.name}.{_stamp(now)}{BEFORE_RESTORE}")


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _reason(exc: BaseException) -> str:
    return str(exc.strerror or exc) if isinstance(exc, OSError) else str(exc)
