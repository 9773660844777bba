"""The protocol log's Merkle tree: RFC 9162 section 2.1 with SHA-256, and its proofs. Pure, no I/O.

A leaf hash is ``SHA-256(0x00 || d)``, an interior node ``SHA-256(0x01 || left || right)``, and
the empty tree hashes to ``SHA-256("")`` (section 2.1.1). Leaf indices are 0-based. Proofs are
produced exactly as RFC 9162 sections 2.1.3.1 and 2.1.4.1 define them, hashes listed from the
bottom (the leaf, or the old tree) up to the root; ``scfed.tlog_verify`` checks them.

Where the RFC leaves room the rules agree with the transparency-dev/merkle verifier: no
consistency proof is produced from the empty tree (``size1 == 0``), since every tree extends
it and such a proof proves nothing; equal sizes give the empty proof.

Inputs are checked for the Python pitfalls: ``bool`` is refused where an ``int`` is expected,
numbers must be in ``0 <= n < 2**63`` and hashes must be ``bytes`` of exactly 32 (the same
checks serve ``scfed.tlog_verify``). Producing a proof the tree cannot hold (an index beyond
the size, a missing stored hash) raises ``LocalProtocolError``.

Storage: a tree is read through ``get(level, index)``, the hash of the complete subtree of
``2**level`` leaves starting at leaf ``index * 2**level``. Any prefix root and every proof is
built from O(log n) such reads, so the algorithms here work unchanged over ``MemoryTree`` or
a database that stores the same complete-subtree hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from scfed.errors import LocalProtocolError, ScfedError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_SIZE",
    "HashReader",
    "HashStore",
    "MemoryTree",
    "consistency_proof",
    "consistency_proof_from_store",
    "inclusion_proof",
    "inclusion_proof_from_store",
    "leaf_hash",
    "node_hash",
    "root_from_store",
    "root_hash",
]

HASH_SIZE = 32
MAX_SIZE = 1 << 63  # sizes and indices must be below this
EMPTY_ROOT = hashlib.sha256(b"").digest()

HashReader = Callable[[int, int], bytes]
"""``read(level, index)``: the hash of the complete subtree at that level and index."""


class HashStore(Protocol):
    """Where complete subtree hashes live (memory here; a database later)."""

    def get(self, level: int, index: int) -> bytes:
        """The hash of the ``2**level`` leaves from leaf ``index * 2**level`` on."""
        ...


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node.

    The bare RFC primitive, defined on any bytes; the tree and the verifiers only ever pass it
    32-byte hashes.
    """
    return hashlib.sha256(b"\x01" + left + right).digest()


# --- input checks ----------------------------------------------------------------------------


def _number(what: str, value: object, error: type[ScfedError]) -> int:
    """An int in 0..2**63-1; bool is refused because it is an int in Python."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise error(f"{what} must not be negative, got {value}")
    if value >= MAX_SIZE:
        raise error(f"{what} must be below 2^63, got {value}")
    return value


def _hash(what: str, value: object, error: type[ScfedError]) -> bytes:
    """Exactly 32 bytes."""
    if not isinstance(value, bytes):
        raise error(f"{what} must be bytes, not {type(value).__name__}")
    if len(value) != HASH_SIZE:
        raise error(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")
    return value


# --- proofs from stored complete subtrees ----------------------------------------------------


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_hash(read: HashReader, start: int, end: int) -> bytes:
    """The root of leaves [start, end) of a subtree the RFC recursion reaches.

    Such a range starts at a multiple of a power of two at least its length, so it splits into
    complete subtrees of decreasing size, one per set bit of ``end - start``: at most 63 reads.
    """
    parts = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        parts.append(read(level, start >> level))
        start += 1 << level
    result = parts.pop()
    while parts:
        result = node_hash(parts.pop(), result)
    return result


def root_from_store(read: HashReader, size: int) -> bytes:
    """The root of the first ``size`` leaves, from O(log size) stored hashes."""
    size = _number("tree size", size, LocalProtocolError)
    return EMPTY_ROOT if size == 0 else _range_hash(read, 0, size)


def inclusion_proof_from_store(read: HashReader, index: int, size: int) -> list[bytes]:
    """RFC 9162 PATH(index, D[0:size]) from O(log size) stored hashes, leaf level first."""
    index = _number("leaf index", index, LocalProtocolError)
    size = _number("tree size", size, LocalProtocolError)
    if index >= size:
        raise LocalProtocolError(f"leaf index {index} is out of range for tree size {size}")
    path = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            path.append(_range_hash(read, mid, hi))
            hi = mid
        else:
            path.append(_range_hash(read, lo, mid))
            lo = mid
    path.reverse()
    return path


def consistency_proof_from_store(read: HashReader, size1: int, size2: int) -> list[bytes]:
    """RFC 9162 PROOF(size1, D[0:size2]) from O(log size2) stored hashes, bottom first.

    Equal sizes give the empty proof; ``size1 == 0`` is refused (see the module documentation).
    """
    size1 = _number("size1", size1, LocalProtocolError)
    size2 = _number("size2", size2, LocalProtocolError)
    if size1 == 0 or size1 > size2:
        raise LocalProtocolError(f"no consistency proof from size {size1} to size {size2}")
    path = []
    # whole_old_tree is RFC SUBPROOF's b: the verifier already holds this subtree's root.
    lo, hi, whole_old_tree = 0, size2, True
    while hi != size1:
        mid = lo + _split(hi - lo)
        if size1 <= mid:
            path.append(_range_hash(read, mid, hi))
            hi = mid
        else:
            path.append(_range_hash(read, lo, mid))
            lo, whole_old_tree = mid, False
    if not whole_old_tree:
        path.append(_range_hash(read, lo, hi))
    path.reverse()
    return path


# --- the in-memory tree ----------------------------------------------------------------------


class MemoryTree:
    """An append-only tree keeping every complete subtree hash, in memory.

    ``append`` hashes amortised O(1) nodes (a new leaf completes one subtree per trailing one
    bit of its index); roots and proofs for any prefix size read O(log n) stored hashes.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        # Level L holds the complete subtrees of 2**L leaves, 32 bytes each, back to back.
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def size(self) -> int:
        """Leaves appended so far."""
        return self._size

    def __len__(self) -> int:
        return self._size

    def append(self, leaf_hash: bytes) -> int:
        """Add a leaf hash; return its index."""
        node = _hash("leaf hash", leaf_hash, LocalProtocolError)
        index = self._size
        levels = self._levels
        levels[0] += node
        i, level = index, 0
        while i & 1:  # this node completes its parent: a right child
            left = levels[level][(i - 1) * HASH_SIZE : i * HASH_SIZE]
            node = node_hash(bytes(left), node)
            i, level = i >> 1, level + 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += node
        self._size = index + 1
        return index

    def get(self, level: int, index: int) -> bytes:
        """The stored hash of a complete subtree (``HashStore``)."""
        stored = self._levels[level] if 0 <= level < len(self._levels) else b""
        if index < 0 or (index + 1) * HASH_SIZE > len(stored):
            raise LocalProtocolError(f"no complete subtree at level {level}, index {index}")
        return bytes(stored[index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def root(self, size: int | None = None) -> bytes:
        """The root of the first ``size`` leaves (default: all of them)."""
        return root_from_store(self.get, self._prefix(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The proof that leaf ``index`` is in the tree of the first ``size`` leaves."""
        return inclusion_proof_from_store(self.get, index, self._prefix(size))

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """The proof that the first ``size2`` leaves extend the first ``size1``."""
        return consistency_proof_from_store(self.get, size1, self._prefix(size2))

    def _prefix(self, size: int | None) -> int:
        if size is None:
            return self._size
        size = _number("tree size", size, LocalProtocolError)
        if size > self._size:
            raise LocalProtocolError(f"tree size {size} is beyond the {self._size} leaves held")
        return size


# --- over a plain list of leaf hashes --------------------------------------------------------


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """The root of the tree over these leaf hashes (``SHA-256("")`` when empty).

    Pairs neighbours level by level and lifts a lone last node unchanged, which builds the
    same tree as RFC 9162's split at the largest power of two below the size.
    """
    level = [_hash(f"leaf hash {i}", h, LocalProtocolError) for i, h in enumerate(leaf_hashes)]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(index: int, size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of the first ``size`` leaf hashes."""
    return _tree_of(size, leaf_hashes).inclusion_proof(index)


def consistency_proof(size1: int, size2: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The consistency proof from the first ``size1`` to the first ``size2`` leaf hashes."""
    return _tree_of(size2, leaf_hashes).consistency_proof(size1)


def _tree_of(size: int, leaf_hashes: Sequence[bytes]) -> MemoryTree:
    size = _number("tree size", size, LocalProtocolError)
    if size > len(leaf_hashes):
        raise LocalProtocolError(f"tree size {size} is beyond the {len(leaf_hashes)} leaves given")
    return MemoryTree(leaf_hashes[i] for i in range(size))
