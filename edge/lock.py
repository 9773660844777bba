"""One daemon per state folder: an exclusive lock on a file beside its database. Edge code.

A daemon takes the lock before it opens its database and holds it for the life of its process;
the operating system lets go of it when the process ends, however it ends, so a crash never
leaves a stale lock behind. A second daemon started on the same configuration finds the lock
taken and refuses to start, instead of serving beside the first on the same database and log.
The file holds the process id of its holder, for the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from scfed.errors import StorageError

LOCK_SUFFIX = ".lock"


def lock_path(database: Path) -> Path:
    """The lock file of the state folder a database lives in: beside it, named after it."""
    return database.with_name(database.name + LOCK_SUFFIX)


@contextlib.contextmanager
def state_lock(database: Path, daemon: str) -> Iterator[Path]:
    """Hold the lock of ``database``'s state folder while the block runs; its path.

    ``daemon`` names what is starting (``scfed node``), for the message when another process
    holds the lock already.
    """
    path = lock_path(database)
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot open the lock file {path}: {exc.strerror or exc}") from exc
    try:
        _take(descriptor, path, daemon)
        yield path
    finally:
        os.close(descriptor)  # closing the only descriptor releases the lock


def _take(descriptor: int, path: Path, daemon: str) -> None:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(descriptor)
        raise StorageError(
            f"{daemon} is already running on this state folder "
            f"(lock {path} held by another process{holder})"
        ) from None
    except OSError as exc:
        raise StorageError(f"cannot lock {path}: {exc.strerror or exc}") from exc
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
    except OSError as exc:
        raise StorageError(f"cannot lock {path}: {exc.strerror or exc}") from exc


def _holder(descriptor: int) -> str:
    """``, pid N`` as the holder wrote it, or nothing when the file says no number."""
    try:
        text = os.pread(descriptor, 32, 0).decode("ascii", errors="replace").strip()
    except OSError:
        return ""
    return f", pid {text}" if text.isdigit() else ""
