"""The coordinator's protocol log: an RFC 9162 Merkle log of signed messages in SQLite. Does I/O.

A leaf is the exact bytes of one signed protocol message, stored once in ``log_blobs`` under
its SHA-256; ``log_leaves`` holds leaf hashes and ``log_nodes`` every complete subtree hash, so
any prefix root and proof costs O(log n) key reads (``scfed.tlog.*_from_store``). An append
writes blob, leaf and completed subtrees in one transaction: no leaf is ever without them.

A checkpoint (C2SP tlog-checkpoint, signed note by the origin key) is signed once per size in
a write transaction that reads the size, so it covers only committed leaves, and is served
again byte for byte, followed by the verified witness cosignature lines stored for it (by
witness name, at most ``MAX_SERVED_COSIGNATURES``: note readers refuse more lines). A database
whose checkpoints another origin or key signed is refused on open (``ConfigError``).

Whose fault: callers are our own code, so an argument out of range (or a bool for an int) is
``LocalProtocolError``; the log service checks a peer's values against ``size`` first and
answers ``RemoteProtocolError`` itself. ``add_cosignature`` takes a witness's line: one that
does not verify is ``VerificationError``, a size never published ``RemoteProtocolError``. A
missing row or a failing SQLite is ``StorageError``.

Two connections: the first serves everything but ``commit``, from one thread (the
coordinator's event loop). ``commit`` appends a batch and signs the checkpoint of the new size
in the same transaction (one fsync for a whole batch of receipts), then proves each leaf
against it, on a second connection of its own: the coordinator's group commit calls it from a
worker thread, one call at a time, while the loop goes on reading (WAL: a reader sees only
committed leaves). The file may hold other tables and other connections.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.logdir import write_log_dir
from edge.storage import fetch, open_database, transaction
from scfed import note, tlog
from scfed.checkpoint import Checkpoint, parse_checkpoint
from scfed.errors import (
    ConfigError,
    LocalProtocolError,
    RemoteProtocolError,
    StorageError,
    VerificationError,
)
from scfed.note_format import MAX_SIGNATURES, parse_note

__all__ = ["SCHEMA", "Committed", "Listed", "ProtocolLog"]

_T = TypeVar("_T")

# log_blobs keeps its rowid: SQLite advises against WITHOUT ROWID for rows this large.
SCHEMA = """
CREATE TABLE IF NOT EXISTS log_leaves (
    idx INTEGER PRIMARY KEY,
    leaf_hash BLOB NOT NULL,
    content_hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS log_blobs (
    content_hash BLOB PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS log_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_checkpoints (
    size INTEGER PRIMARY KEY,
    note BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS log_cosignatures (
    size INTEGER NOT NULL,
    witness TEXT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (size, witness)
) WITHOUT ROWID
"""

# The origin's own signature is the note's first line, and readers refuse more than this many.
MAX_SERVED_COSIGNATURES = MAX_SIGNATURES - 1
MAX_WITNESS_NAME = 256

_UNLIMITED = 1 << 62
_LISTING = (
    "SELECT l.idx, l.content_hash, CASE WHEN length(b.data) <= ? THEN b.data END "
    "FROM log_leaves l JOIN log_blobs b ON b.content_hash = l.content_hash "
    "WHERE l.idx >= ? AND l.idx < ? ORDER BY l.idx"
)


@dataclass(frozen=True)
class Listed:
    """One leaf as a listing gives it: its data, or None when the data is larger than asked."""

    index: int
    content_hash: bytes
    data: bytes | None


@dataclass(frozen=True)
class Committed:
    """Leaves that one transaction appended, the checkpoint signed in it, and each leaf's
    inclusion proof against that checkpoint, in order."""

    start: int
    checkpoint: bytes  # signed note of size ``start + len(proofs)``, without cosignatures
    proofs: tuple[tuple[bytes, ...], ...]

    @property
    def size(self) -> int:
        """The tree size the checkpoint covers: up to and including the batch's last leaf."""
        return self.start + len(self.proofs)


class ProtocolLog:
    """The append-only protocol log and its signed checkpoints, kept in an SQLite database."""

    def __init__(
        self, path: Path, *, origin: str, key: Ed25519PrivateKey, check: bool = True
    ) -> None:
        """Open the log; ``check=False`` leaves ``check_signer`` to the caller, who may know
        the key the log was signed with before the coordinator's log key was rotated."""
        self._signer = note.Signer(origin, key)  # checks the origin is a valid key name
        self._origin = origin
        self._path = path
        self._db = open_database(path, SCHEMA)
        self._writer: sqlite3.Connection | None = None  # commit's own, opened when first used
        try:
            if check:
                self.check_signer()
        except BaseException:
            self._db.close()
            raise

    def check_signer(self, previous: bytes | None = None) -> None:
        """Refuse a database whose latest checkpoint was signed for another origin or by a
        key other than this log's or, after a rotation, ``previous`` (a raw Ed25519 key)."""
        rows = fetch(self._db, "SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1")
        if not rows:
            return
        verifiers = [self.verifier()]
        if previous is not None and previous != self.verifier().public_key:
            old = Ed25519PublicKey.from_public_bytes(previous)
            verifiers.append(note.Verifier.ed25519(self._origin, old))
        try:
            opened = note.open_note(_value(rows[0][0], bytes, "a checkpoint"), verifiers)
            origin = parse_checkpoint(opened.text).origin
        except VerificationError as exc:
            raise ConfigError(
                f"the protocol log was signed by another origin or key: {exc}"
            ) from exc
        if origin != self._origin:
            raise ConfigError(f"the protocol log's checkpoints are for origin {origin!r}")

    def verifier(self) -> note.Verifier:
        """The verifier of this log's checkpoints."""
        return self._signer.verifier()

    @property
    def size(self) -> int:
        """The number of committed leaves."""
        return _size(self._db)

    def close(self) -> None:
        self._db.close()
        if self._writer is not None:
            self._writer.close()

    # --- appending ---------------------------------------------------------------------------

    def append(self, data: bytes) -> int:
        """Log one message durably; its leaf index."""
        return self.append_many([data])[0]

    def append_many(self, datas: Iterable[bytes]) -> list[int]:
        """Log several messages in one transaction, in order; their leaf indices."""
        batch = [_data(i, data) for i, data in enumerate(datas)]  # all checked before writing
        if not batch:
            return []
        with transaction(self._db) as db:
            start = _insert(db, batch, _reader(db))
        return list(range(start, start + len(batch)))

    def commit(self, datas: Sequence[bytes]) -> Committed:
        """Log a batch durably, in order, in one transaction with the signed checkpoint of
        the new size; then each leaf's inclusion proof against it.

        So the receipts of a whole batch share one fsync. Runs on the second connection (see
        the module docstring): calls must not overlap, and may come from any one thread at a
        time.
        """
        batch = [_data(i, data) for i, data in enumerate(datas)]  # all checked before writing
        if not batch:
            raise LocalProtocolError("a commit needs at least one message")
        db = self._writer_connection()
        read = _cached(_reader(db))  # the frontier, the root and the proofs share many hashes
        with transaction(db):
            start = _insert(db, batch, read)
            size = start + len(batch)
            text = Checkpoint(self._origin, size, tlog.root_from_store(read, size)).format()
            signed = note.sign_note(text, [self._signer])
            db.execute("INSERT INTO log_checkpoints VALUES (?, ?)", (size, signed))
        proofs = [tlog.inclusion_proof_from_store(read, i, size) for i in range(start, size)]
        return Committed(start, signed, tuple(tuple(p) for p in proofs))

    def _writer_connection(self) -> sqlite3.Connection:
        if self._writer is None:
            self._writer = open_database(self._path, SCHEMA)
        return self._writer

    # --- reading -----------------------------------------------------------------------------

    def entry(self, index: int) -> bytes:
        """The data of leaf ``index``."""
        data = self.find_blob(self.content_hash(index))
        if data is None:
            raise StorageError(f"leaf {index} of the log has no blob")
        return data

    def content_hash(self, index: int) -> bytes:
        """SHA-256 of the data of leaf ``index``: the key of its blob."""
        index = _index(index, self.size)
        rows = fetch(self._db, "SELECT content_hash FROM log_leaves WHERE idx = ?", (index,))
        if not rows:
            raise StorageError(f"the log has no leaf {index}")
        return _value(rows[0][0], bytes, f"the content hash of leaf {index}")

    def blob(self, content_hash: bytes) -> bytes:
        """The data stored under ``content_hash``."""
        data = self.find_blob(content_hash)
        if data is None:
            raise StorageError(f"the log has no blob {content_hash.hex()}")
        return data

    def find_blob(self, content_hash: bytes) -> bytes | None:
        """The data stored under ``content_hash``, or None when there is none."""
        content_hash = _hash_arg("content hash", content_hash)
        rows = fetch(self._db, "SELECT data FROM log_blobs WHERE content_hash = ?", (content_hash,))
        return _value(rows[0][0], bytes, "a blob") if rows else None

    def listing(self, start: int, stop: int, *, inline_max: int, max_bytes: int) -> list[Listed]:
        """Leaves ``start`` to ``stop`` (exclusive), in order, with data up to ``inline_max``
        bytes inline, ending early before the inline data would pass ``max_bytes``.

        The first leaf is always listed when ``inline_max <= max_bytes``.
        """
        stop = _count("stop", stop, 0, self.size)
        start = _count("start", start, 0, stop)
        listed: list[Listed] = []
        spent = 0
        for item in self._leaves(start, stop, inline_max):
            spent += len(item.data or b"")
            if listed and spent > max_bytes:
                break
            listed.append(item)
        return listed

    def _leaves(self, start: int, stop: int, inline_max: int) -> Iterator[Listed]:
        """Leaves ``start`` to ``stop`` from one query, one row in memory at a time."""
        expected = start
        for row in _rows(self._db, _LISTING, (inline_max, start, stop)):
            item = _listed(*row)
            if item.index != expected:
                break
            yield item
            expected += 1
        if expected != stop:
            raise StorageError(f"leaf {expected} of the log has no blob")

    # --- proofs ------------------------------------------------------------------------------

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the first ``size`` leaves (default: all of them)."""
        current = self.size
        size = current if size is None else _count("tree size", size, 0, current)
        return tlog.root_from_store(self._read, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves."""
        size = _count("tree size", size, 1, self.size)
        return tlog.inclusion_proof_from_store(self._read, _index(index, size), size)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 proof that the first ``size2`` leaves extend the first ``size1``."""
        size2 = _count("size2", size2, 1, self.size)
        size1 = _count("size1", size1, 1, size2)
        return tlog.consistency_proof_from_store(self._read, size1, size2)

    def _read(self, level: int, index: int) -> bytes:
        """``tlog.HashReader`` over the stored tree: level 0 is the leaf hashes."""
        return _read_hash(self._db, level, index)

    # --- checkpoints -------------------------------------------------------------------------

    def checkpoint(self) -> bytes:
        """The signed checkpoint of the current size, with its stored cosignature lines."""
        return self.sized_checkpoint()[1]

    def sized_checkpoint(self) -> tuple[int, bytes]:
        """The current size and its checkpoint, as ``checkpoint`` gives it: read together,
        since a commit on the other connection may grow the log between two reads."""
        size, signed = self._latest()
        return size, signed + self._cosignature_lines(size)

    def checkpoint_at(self, size: int) -> bytes | None:
        """The checkpoint of an earlier size as served then, with its cosignatures; None if no
        checkpoint of that size was ever signed."""
        size = _count("tree size", size, 0, self.size)
        signed = self._stored(size)
        return None if signed is None else signed + self._cosignature_lines(size)

    def _latest(self) -> tuple[int, bytes]:
        """The current size and its signed note without cosignatures, signed if it is new."""
        size = self.size
        signed = self._stored(size)
        if signed is not None:
            return size, signed
        with transaction(self._db) as db:
            size = _size(db)  # read again under the write lock: sign exactly what is committed
            signed = self._stored(size)
            if signed is None:
                text = Checkpoint(self._origin, size, self.root(size)).format()
                signed = note.sign_note(text, [self._signer])
                db.execute("INSERT INTO log_checkpoints VALUES (?, ?)", (size, signed))
        return size, signed

    def _stored(self, size: int) -> bytes | None:
        rows = fetch(self._db, "SELECT note FROM log_checkpoints WHERE size = ?", (size,))
        return _value(rows[0][0], bytes, f"the checkpoint of size {size}") if rows else None

    # --- cosignatures ------------------------------------------------------------------------

    def add_cosignature(self, size: int, witness: str, line: str, verifier: note.Verifier) -> None:
        """Store a witness's cosignature line for the checkpoint of ``size`` once it verifies.

        Idempotent per witness: a witness that already cosigned this size keeps its first line.
        """
        size = _int("checkpoint size", size)
        witness = _witness(witness)
        signed = self._stored(size) if size <= self.size else None
        if signed is None:
            raise RemoteProtocolError(f"no checkpoint of size {size} was published")
        if not isinstance(line, str) or "\n" in line.removesuffix("\n"):
            raise VerificationError("a cosignature must be one line of text")
        text, _ = parse_note(signed)
        note.verify_cosignature(text, line, verifier)
        with transaction(self._db) as db:
            db.execute(
                "INSERT OR IGNORE INTO log_cosignatures VALUES (?, ?, ?)",
                (size, witness, line.removesuffix("\n") + "\n"),
            )

    def cosigners(self, size: int) -> list[str]:
        """The witnesses whose cosignature of the checkpoint of ``size`` is stored, sorted."""
        size = _count("tree size", size, 0, self.size)
        sql = "SELECT witness FROM log_cosignatures WHERE size = ? ORDER BY witness"
        return [_value(row[0], str, "a witness name") for row in fetch(self._db, sql, (size,))]

    def _cosignature_lines(self, size: int) -> bytes:
        """The stored lines, by witness name, as many as a note may carry."""
        sql = "SELECT line FROM log_cosignatures WHERE size = ? ORDER BY witness LIMIT ?"
        rows = fetch(self._db, sql, (size, MAX_SERVED_COSIGNATURES))
        return "".join(_value(row[0], str, "a cosignature") for row in rows).encode("utf-8")

    # --- export ------------------------------------------------------------------------------

    def export(self, path: Path) -> None:
        """Write the log directory an auditor takes away: entries and latest checkpoint."""
        size, signed = self._latest()
        write_log_dir(path, self._entries(size), signed + self._cosignature_lines(size))

    def _entries(self, size: int) -> Iterator[bytes]:
        for item in self._leaves(0, size, _UNLIMITED):
            yield _value(item.data, bytes, f"the data of leaf {item.index}")


class _Frontier:
    """The right edge of the tree during one append transaction.

    A new leaf's left siblings are the roots of the complete subtrees the tree so far splits
    into, one per set bit of its size. Each is read from the database at most once per
    transaction and then kept here, so a batch costs O(1) reads and hashes per leaf.
    """

    def __init__(self, read: tlog.HashReader, size: int) -> None:
        self._read, self.size = read, size
        self._roots: dict[int, bytes] = {}

    def push(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; the (level, index, hash) of every subtree it completes."""
        index, node, level = self.size, leaf, 0
        completed = []
        while index >> level & 1:  # a right child: its parent is complete now
            left = self._roots.pop(level, None)
            if left is None:
                left = self._read(level, (index >> level) - 1)
            node = tlog.node_hash(left, node)
            level += 1
            completed.append((level, index >> level, node))
        self._roots[level] = node
        self.size += 1
        return completed


# --- database helpers ------------------------------------------------------------------------


def _insert(db: sqlite3.Connection, batch: list[bytes], read: tlog.HashReader) -> int:
    """Append ``batch`` inside the caller's transaction on ``db`` (which ``read`` reads):
    blobs, leaves and every subtree they complete; the index of its first leaf."""
    start = _size(db)
    frontier = _Frontier(read, start)
    leaves, nodes = [], []
    blobs: dict[bytes, bytes] = {}
    for data in batch:
        content, leaf = hashlib.sha256(data).digest(), tlog.leaf_hash(data)
        leaves.append((frontier.size, leaf, content))
        blobs.setdefault(content, data)
        nodes += frontier.push(leaf)
    db.executemany("INSERT OR IGNORE INTO log_blobs VALUES (?, ?)", blobs.items())
    db.executemany("INSERT INTO log_leaves VALUES (?, ?, ?)", leaves)
    db.executemany("INSERT INTO log_nodes VALUES (?, ?, ?)", nodes)
    return start


def _read_hash(db: sqlite3.Connection, level: int, index: int) -> bytes:
    """A stored subtree hash: level 0 is the leaf hashes."""
    if level == 0:
        rows = fetch(db, "SELECT leaf_hash FROM log_leaves WHERE idx = ?", (index,))
    else:
        rows = fetch(db, "SELECT hash FROM log_nodes WHERE level = ? AND idx = ?", (level, index))
    if not rows:
        raise StorageError(f"the log has no subtree hash at level {level}, index {index}")
    return _hash_value(rows[0][0], f"the subtree hash at level {level}, index {index}")


def _reader(db: sqlite3.Connection) -> tlog.HashReader:
    """``tlog.HashReader`` over the tree as ``db`` sees it (inside its transaction, if any)."""
    return lambda level, index: _read_hash(db, level, index)


def _cached(read: tlog.HashReader) -> tlog.HashReader:
    """``read`` remembering what it read: stored hashes never change, and one batch's
    frontier, root and proofs read many of the same."""
    seen: dict[tuple[int, int], bytes] = {}

    def cached(level: int, index: int) -> bytes:
        key = (level, index)
        if key not in seen:
            seen[key] = read(level, index)
        return seen[key]

    return cached


def _size(db: sqlite3.Connection) -> int:
    rows = fetch(db, "SELECT coalesce(max(idx) + 1, 0) FROM log_leaves")
    return _value(rows[0][0], int, "the log's size")


def _rows(
    db: sqlite3.Connection, sql: str, parameters: tuple[object, ...]
) -> Iterator[tuple[object, ...]]:
    """A query's rows one at a time, so large blobs are never all in memory together."""
    try:
        with closing(db.execute(sql, parameters)) as cursor:
            for row in cursor:
                yield tuple(row)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read the log: {exc}") from exc


def _value(value: object, kind: type[_T], what: str) -> _T:
    """A stored value, which must have the type the schema gives it."""
    if not isinstance(value, kind):
        raise StorageError(f"{what} is stored as {type(value).__name__}, not {kind.__name__}")
    return value


def _listed(index: object, content: object, data: object) -> Listed:
    data = None if data is None else _value(data, bytes, f"the data of leaf {index}")
    return Listed(_value(index, int, "a leaf index"), _value(content, bytes, "a hash"), data)


def _hash_value(value: object, what: str) -> bytes:
    value = _value(value, bytes, what)
    if len(value) != tlog.HASH_SIZE:
        raise StorageError(f"{what} is {len(value)} bytes, not {tlog.HASH_SIZE}")
    return value


# --- argument checks (our own callers: LocalProtocolError) -----------------------------------


def _int(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LocalProtocolError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise LocalProtocolError(f"{what} must not be negative, got {value}")
    return value


def _count(what: str, value: object, low: int, high: int) -> int:
    """An int in ``low..high``; ``high`` is at most the log's size."""
    value = _int(what, value)
    if not low <= value <= high:
        raise LocalProtocolError(f"{what} {value} is out of range {low}..{high}")
    return value


def _index(value: object, size: int) -> int:
    value = _int("leaf index", value)
    if value >= size:
        raise LocalProtocolError(f"leaf index {value} is out of range for tree size {size}")
    return value


def _hash_arg(what: str, value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != tlog.HASH_SIZE:
        raise LocalProtocolError(f"{what} must be {tlog.HASH_SIZE} bytes")
    return value


def _data(position: int, value: object) -> bytes:
    if not isinstance(value, bytes):
        raise LocalProtocolError(f"log entry {position} must be bytes, not {type(value).__name__}")
    return value


def _witness(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_WITNESS_NAME:
        raise LocalProtocolError(f"a witness name must be 1 to {MAX_WITNESS_NAME} characters")
    if not value.isprintable():
        raise LocalProtocolError(f"witness name {value!r} holds an unprintable character")
    return value
