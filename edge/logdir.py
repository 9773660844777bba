"""The exported protocol log: the self-contained directory an auditor takes away.

Edge code: it reads and writes files, syncing them and bounding reads with ``edge.files``.
A log directory holds two files:

``checkpoint``
    The signed checkpoint note exactly as the log service serves it, cosignatures included.
``entries``
    Every leaf in index order: a 4-byte big-endian length, then the leaf's bytes.

The checkpoint's tree size frames the entries file: it holds exactly that many entries, so a
short file and bytes after the last entry are both detected. Reading verifies no signature and
no hash, which is the auditor's work with its own trusted keys; it only bounds and frames what
it reads, and names the byte offset of anything malformed (``VerificationError``). A missing
directory or file, or one that cannot be read or written, is ``ConfigError``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from edge.files import read_bounded, sync_file, sync_folder
from scfed.checkpoint import parse_checkpoint
from scfed.errors import ConfigError, LocalProtocolError, VerificationError
from scfed.note_format import parse_note

__all__ = [
    "CHECKPOINT_FILE",
    "DEFAULT_MAX_ENTRY_BYTES",
    "ENTRIES_FILE",
    "MAX_CHECKPOINT_BYTES",
    "read_log_dir",
    "write_log_dir",
]

CHECKPOINT_FILE = "checkpoint"
ENTRIES_FILE = "entries"
DEFAULT_MAX_ENTRY_BYTES = 256 * 1024 * 1024
# A note with the most signature lines a reader accepts (100) is about 12 KB.
MAX_CHECKPOINT_BYTES = 64 * 1024
_PREFIX = 4
_MAX_LENGTH = (1 << (8 * _PREFIX)) - 1


def write_log_dir(path: Path, entries: Iterable[bytes], checkpoint: bytes) -> None:
    """Write a log directory at ``path`` all at once, or leave ``path`` untouched.

    The files are written and synced in a fresh sibling directory that is then renamed onto
    ``path``, which must not exist or be an empty directory; like any temporary directory it
    is readable by its owner only. The number of entries must be the checkpoint's tree size.
    """
    size = _framing_size(checkpoint, LocalProtocolError)
    _check_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as exc:
        raise ConfigError(f"cannot create the log directory {path}: {exc}") from exc
    try:
        written = _write_entries(staging / ENTRIES_FILE, entries)
        if written != size:
            raise LocalProtocolError(f"{written} entries for a checkpoint of size {size}")
        _write_file(staging / CHECKPOINT_FILE, checkpoint)
        os.replace(staging, path)  # replaces an empty directory, refuses a non-empty one
        sync_folder(path.parent)  # makes the rename itself durable
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConfigError(f"cannot write the log directory {path}: {exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_log_dir(
    path: Path, *, max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES
) -> tuple[list[bytes], bytes]:
    """The entries and the checkpoint note of the log directory at ``path``, framed by the
    checkpoint's tree size; no entry may be longer than ``max_entry_bytes``."""
    if isinstance(max_entry_bytes, bool) or not isinstance(max_entry_bytes, int):
        raise LocalProtocolError("max_entry_bytes must be an int")
    checkpoint = _read_checkpoint(path / CHECKPOINT_FILE)
    size = _framing_size(checkpoint, VerificationError)
    try:
        with (path / ENTRIES_FILE).open("rb") as file:
            entries = _read_entries(file, size, max_entry_bytes)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} has no {ENTRIES_FILE} file: not a log directory") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path / ENTRIES_FILE}: {exc}") from exc
    return entries, checkpoint


# --- writing ---------------------------------------------------------------------------------


def _check_target(path: Path) -> None:
    if path.is_dir():
        if any(path.iterdir()):
            raise ConfigError(
                f"{path} is not empty; a log directory is written only into a new one"
            )
    elif path.exists() or path.is_symlink():
        raise ConfigError(f"{path} exists and is not a directory")


def _write_entries(path: Path, entries: Iterable[bytes]) -> int:
    count = 0
    with path.open("xb") as file:
        for data in entries:
            if not isinstance(data, bytes):
                raise LocalProtocolError(f"entry {count} must be bytes, not {type(data).__name__}")
            if len(data) > _MAX_LENGTH:
                raise LocalProtocolError(f"entry {count} is longer than {_MAX_LENGTH} bytes")
            file.write(len(data).to_bytes(_PREFIX, "big"))
            file.write(data)
            count += 1
        sync_file(file)
    return count


def _write_file(path: Path, data: bytes) -> None:
    with path.open("xb") as file:
        file.write(data)
        sync_file(file)


# --- reading ---------------------------------------------------------------------------------


def _read_checkpoint(path: Path) -> bytes:
    try:
        data = read_bounded(path, MAX_CHECKPOINT_BYTES)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path.parent} has no {path.name} file: not a log directory") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if data is None:
        raise VerificationError(f"{path} is longer than {MAX_CHECKPOINT_BYTES} bytes")
    return data


def _framing_size(checkpoint: object, error: type[LocalProtocolError | VerificationError]) -> int:
    """The tree size the (unverified) checkpoint note claims."""
    if not isinstance(checkpoint, bytes):
        raise error(f"a checkpoint note must be bytes, not {type(checkpoint).__name__}")
    try:
        text, _ = parse_note(checkpoint)
        return parse_checkpoint(text).size
    except VerificationError as exc:
        raise error(f"checkpoint: {exc}") from exc


def _read_entries(file: BinaryIO, size: int, max_entry_bytes: int) -> list[bytes]:
    length_of_file = os.fstat(file.fileno()).st_size
    entries: list[bytes] = []
    offset = 0
    for index in range(size):
        length = _length_prefix(file, index, offset, size)
        if length > max_entry_bytes:
            raise VerificationError(
                f"entries: entry {index} at offset {offset} claims {length} bytes, above the "
                f"limit of {max_entry_bytes}"
            )
        present = length_of_file - offset - _PREFIX
        if length > present:
            raise VerificationError(
                f"entries: entry {index} at offset {offset} is truncated: {length} bytes "
                f"announced, {max(present, 0)} present"
            )
        data = file.read(length)
        if len(data) != length:  # the file shrank while being read
            raise VerificationError(f"entries: entry {index} at offset {offset} is truncated")
        entries.append(data)
        offset += _PREFIX + length
    if file.read(1):
        raise VerificationError(
            f"entries: trailing bytes at offset {offset} after the {size} entries the "
            "checkpoint covers"
        )
    return entries


def _length_prefix(file: BinaryIO, index: int, offset: int, size: int) -> int:
    prefix = file.read(_PREFIX)
    if not prefix:
        raise VerificationError(
            f"entries: the file ends at offset {offset} after {index} entries; the checkpoint "
            f"covers {size}"
        )
    if len(prefix) < _PREFIX:
        raise VerificationError(
            f"entries: truncated length prefix of entry {index} at offset {offset}: "
            f"{len(prefix)} of {_PREFIX} bytes"
        )
    return int.from_bytes(prefix, "big")
