"""Reading and writing files: the one copy of each helper the other modules share. Edge code.

Reading: a file anyone may read, a private key file (refused when group or others may access
it), and a bounded read that never takes more than one byte past its limit. Writing: a whole
file replaced atomically with the mode it must have, synced before and after the rename, and
the two sync steps on their own for writers that stage whole directories (``edge.logdir``).
Read and write failures of the first two become ``ConfigError`` naming the file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO

from scfed.errors import ConfigError

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


def absolute(path: Path) -> Path:
    """``path`` made absolute from the current folder, with ``..`` and ``.`` taken out."""
    return Path(os.path.abspath(path))


# ---- Reading ----


def read_public_file(path: Path) -> bytes:
    """The bytes of a file anyone may read (certificate, public key, registry)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def read_private_key_file(path: Path) -> bytes:
    """The bytes of a private key file; ConfigError if group or others may access it."""
    try:
        with path.open("rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            if mode & 0o077:
                raise ConfigError(
                    f"{path}: private key file is accessible by group or others "
                    f"(mode {mode:04o}); restrict it with: chmod 600 {path}"
                )
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read private key: {exc.strerror or exc}") from exc


def read_bounded(path: Path, limit: int) -> bytes | None:
    """The bytes of the file at ``path`` if it holds at most ``limit`` of them, else None.

    Never reads more than one byte past ``limit``, so a huge file costs nothing. OSError is
    left to the caller, which knows what the file is and words the error for it.
    """
    with path.open("rb") as file:
        data = file.read(limit + 1)
    return data if len(data) <= limit else None


# ---- Writing ----


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, readable by the owner only (0600)."""
    _write_atomic(path, data, PRIVATE_MODE)


def write_public(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, readable by everyone (0644)."""
    _write_atomic(path, data, PUBLIC_MODE)


def sync_file(file: BinaryIO) -> None:
    """Flush ``file`` and make what it holds durable."""
    file.flush()
    os.fsync(file.fileno())


def sync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable; OSError if the folder cannot be synced."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write a temporary file beside ``path``, sync it, then rename it over ``path``.

    The temporary file is created 0600, so a private key is never readable by others, even
    for a moment; the final mode is set before the rename.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(temporary, flags, PRIVATE_MODE)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    try:
        _fill(descriptor, data, mode)
        os.replace(temporary, path)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from exc
        raise
    # Some file systems cannot sync a folder; the file itself is synced, so that is harmless.
    with contextlib.suppress(OSError):
        sync_folder(path.parent)


def _fill(descriptor: int, data: bytes, mode: int) -> None:
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fchmod(handle.fileno(), mode)
        sync_file(handle)
