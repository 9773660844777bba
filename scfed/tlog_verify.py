"""RFC 9162 proof verification: inclusion (2.1.3.2) and consistency (2.1.4.2). Pure, no I/O.

The verifiers are the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2 over the SHA-256
tree of ``scfed.tlog``, with the proof length checked first so that an error names what is
wrong. Proofs list hashes from the bottom (the leaf, or the old tree) up to the root, exactly
as sections 2.1.3.1 and 2.1.4.1 define them.

Rules where the RFC leaves room, chosen to agree with the transparency-dev/merkle verifier and
its published probes:

* Consistency from the empty tree (``size1 == 0``) is always refused, whatever the proof and
  the roots. Every tree extends the empty tree, so such a proof proves nothing; a client with
  no earlier checkpoint has nothing to check consistency against and must say so itself.
* Equal sizes (``size1 == size2 > 0``) need an empty proof and ``root1 == root2`` byte for byte.
  Nothing is hashed in this case, so the two roots are compared exactly as given.

Verifiers never return a bool: they return ``None`` or raise ``VerificationError`` naming the
fault. Inputs are checked for the Python pitfalls: ``bool`` is refused where an ``int`` is
expected, numbers must be in ``0 <= n < 2**63``, hashes must be ``bytes`` of exactly 32, and a
proof holds at most 64 hashes.
"""

from __future__ import annotations

from collections.abc import Sequence

from scfed.errors import VerificationError
from scfed.tlog import _hash, _number, node_hash

__all__ = ["MAX_PROOF_HASHES", "verify_consistency", "verify_inclusion"]

MAX_PROOF_HASHES = 64


# --- input checks ----------------------------------------------------------------------------


def _proof(proof: object) -> list[bytes]:
    """A sequence of at most 64 hashes; a bytes or str object is not a sequence of hashes."""
    if isinstance(proof, bytes | bytearray | memoryview | str) or not isinstance(proof, Sequence):
        raise VerificationError(f"proof must be a sequence of hashes, not {type(proof).__name__}")
    if len(proof) > MAX_PROOF_HASHES:
        raise VerificationError(
            f"proof has {len(proof)} hashes; no tree below 2^63 leaves needs more than "
            f"{MAX_PROOF_HASHES}"
        )
    return [_hash(f"proof[{i}]", h, VerificationError) for i, h in enumerate(proof)]


def _bytes(what: str, value: object) -> bytes:
    if not isinstance(value, bytes):
        raise VerificationError(f"{what} must be bytes, not {type(value).__name__}")
    return value


# --- shapes ----------------------------------------------------------------------------------


def _inclusion_shape(index: int, size: int) -> tuple[int, int]:
    """(inner, border) lengths of an inclusion proof, as split where the paths to ``index``
    and to the last leaf part: inner siblings lie below, border ones (left only) above."""
    inner = (index ^ (size - 1)).bit_length()
    return inner, (index >> inner).bit_count()


def _consistency_length(size1: int, size2: int) -> int:
    """Hashes in a consistency proof for ``0 < size1 < size2``."""
    inner, border = _inclusion_shape(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # height of the old tree's last complete subtree
    # When the old tree is itself complete its root is known to the verifier, not sent.
    seed = 0 if size1 == 1 << shift else 1
    return seed + inner - shift + border


# --- verification ----------------------------------------------------------------------------


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``."""
    index = _number("leaf index", index, VerificationError)
    size = _number("tree size", size, VerificationError)
    if index >= size:
        raise VerificationError(f"leaf index {index} is out of range for tree size {size}")
    leaf = _hash("leaf hash", leaf_hash, VerificationError)
    root = _hash("root", root, VerificationError)
    path = _proof(proof)
    want = sum(_inclusion_shape(index, size))
    if len(path) != want:
        raise VerificationError(
            f"wrong inclusion proof length {len(path)} for leaf {index} of tree size {size}; "
            f"want {want}"
        )
    if _root_from_inclusion(leaf, index, size, path) != root:
        raise VerificationError(
            f"root mismatch: the inclusion proof for leaf {index} does not lead to the root "
            f"of tree size {size}"
        )


def _root_from_inclusion(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2, steps 2 to 6."""
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise VerificationError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # Skip the levels where this node is the lone last node and is promoted as is.
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("inclusion proof is too short")
    return r


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` leaves with ``root2`` extends the one of ``size1``.

    ``size1 == 0`` is refused and equal sizes need an empty proof and identical roots; see the
    module documentation.
    """
    size1 = _number("size1", size1, VerificationError)
    size2 = _number("size2", size2, VerificationError)
    path = _proof(proof)
    if size2 < size1:
        raise VerificationError(f"size2 {size2} is smaller than size1 {size1}")
    if size1 == 0:
        raise VerificationError("consistency from the empty tree (size1 = 0) proves nothing")
    if size1 == size2:
        _equal_sizes(size1, path, _bytes("root1", root1), _bytes("root2", root2))
        return
    root1 = _hash("root1", root1, VerificationError)
    root2 = _hash("root2", root2, VerificationError)
    want = _consistency_length(size1, size2)
    if len(path) != want:
        raise VerificationError(
            f"wrong consistency proof length {len(path)} from size {size1} to {size2}; want {want}"
        )
    first, second = _roots_from_consistency(size1, size2, path, root1)
    if first != root1:
        raise VerificationError(f"root1 mismatch: the proof does not lead to the size {size1} root")
    if second != root2:
        raise VerificationError(f"root2 mismatch: the proof does not lead to the size {size2} root")


def _equal_sizes(size: int, path: list[bytes], root1: bytes, root2: bytes) -> None:
    if path:
        raise VerificationError(f"sizes are equal ({size}) but the proof is not empty")
    if root1 != root2:
        raise VerificationError(f"root mismatch: sizes are equal ({size}) but the roots differ")


def _roots_from_consistency(
    size1: int, size2: int, path: list[bytes], root1: bytes
) -> tuple[bytes, bytes]:
    """RFC 9162 section 2.1.4.2, steps 2 to 7: the old and new roots the proof leads to."""
    if size1 & (size1 - 1) == 0:
        path = [root1, *path]
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("consistency proof is too short")
    return fr, sr
