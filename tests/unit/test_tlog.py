"""Properties of scfed.tlog: proofs from MemoryTree verify, mutations and bad inputs do not.

The reference below restates RFC 9162's recursive definitions (MTH, PATH, PROOF) over a plain
list, independently of the stored-subtree algorithms under test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scfed import tlog
from scfed.errors import LocalProtocolError, VerificationError
from scfed.tlog_verify import verify_consistency, verify_inclusion

N = 300
LEAVES = [tlog.leaf_hash(hashlib.sha256(b"leaf %d" % i).digest()) for i in range(N)]
TREE = tlog.MemoryTree(LEAVES)
OTHER = hashlib.sha256(b"not in the tree").digest()


# --- RFC 9162 section 2.1 definitions, straight from the text --------------------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return tlog.node_hash(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def root(size: int) -> bytes:
    return tlog.root_hash(LEAVES[:size])


# --- strategies ------------------------------------------------------------------------------

sizes = st.integers(min_value=1, max_value=N)


@st.composite
def leaf_in_tree(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return draw(st.integers(min_value=0, max_value=size - 1)), size


@st.composite
def size_pairs(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(sizes)
    return draw(st.integers(min_value=1, max_value=size2)), size2


# --- honest proofs verify --------------------------------------------------------------------


def test_reference_matches_root_hash_for_every_prefix() -> None:
    for size in range(N + 1):
        assert TREE.root(size) == root(size) == ref_mth(LEAVES[:size])


@given(leaf_in_tree())
def test_inclusion_proofs_verify(case: tuple[int, int]) -> None:
    index, size = case
    proof = TREE.inclusion_proof(index, size)
    assert proof == ref_path(index, LEAVES[:size])
    assert proof == tlog.inclusion_proof(index, size, LEAVES)
    verify_inclusion(LEAVES[index], index, size, proof, root(size))


@given(size_pairs())
def test_consistency_proofs_verify(case: tuple[int, int]) -> None:
    size1, size2 = case
    proof = TREE.consistency_proof(size1, size2)
    assert proof == (ref_subproof(size1, LEAVES[:size2], True) if size1 < size2 else [])
    assert proof == tlog.consistency_proof(size1, size2, LEAVES)
    verify_consistency(size1, size2, proof, root(size1), root(size2))


@given(st.integers(min_value=0, max_value=N))
def test_a_grown_tree_keeps_its_prefix_roots(size: int) -> None:
    grown = tlog.MemoryTree(LEAVES[:size])
    assert grown.root() == root(size)
    assert all(grown.root(s) == TREE.root(s) for s in range(0, size + 1, 7))


# --- mutations are refused -------------------------------------------------------------------


def _flip(proof: list[bytes], at: int) -> list[bytes]:
    hashes = list(proof)
    hashes[at] = bytes([hashes[at][0] ^ 1]) + hashes[at][1:]
    return hashes


def _mutations(proof: list[bytes]) -> list[list[bytes]]:
    flipped = [_flip(proof, i) for i in range(len(proof))]
    return [*flipped, proof[1:], proof[:-1], [*proof, OTHER], [OTHER, *proof], [*proof, *proof]]


@given(leaf_in_tree())
def test_mutated_inclusion_proofs_are_refused(case: tuple[int, int]) -> None:
    index, size = case
    proof = TREE.inclusion_proof(index, size)
    for bad in _mutations(proof):
        if bad != proof:
            with pytest.raises(VerificationError):
                verify_inclusion(LEAVES[index], index, size, bad, root(size))
    with pytest.raises(VerificationError):
        verify_inclusion(OTHER, index, size, proof, root(size))
    with pytest.raises(VerificationError):
        verify_inclusion(LEAVES[index], index, size, proof, OTHER)


@given(leaf_in_tree(), leaf_in_tree())
def test_inclusion_binds_index_and_size(case: tuple[int, int], claim: tuple[int, int]) -> None:
    """A proof verifies for a claimed (index, size) and that size's true root only if it is
    that claim's true proof."""
    index, size = case
    claimed_index, claimed_size = claim
    proof = TREE.inclusion_proof(index, size)
    honest = (claimed_index, claimed_size) == (index, size)
    if honest or TREE.inclusion_proof(claimed_index, claimed_size) == proof:
        return
    with pytest.raises(VerificationError):
        verify_inclusion(LEAVES[index], claimed_index, claimed_size, proof, root(claimed_size))


@given(size_pairs())
def test_mutated_consistency_proofs_are_refused(case: tuple[int, int]) -> None:
    size1, size2 = case
    proof = TREE.consistency_proof(size1, size2)
    for bad in _mutations(proof):
        if bad != proof:
            with pytest.raises(VerificationError):
                verify_consistency(size1, size2, bad, root(size1), root(size2))
    if size1 < size2:
        with pytest.raises(VerificationError, match="root"):
            verify_consistency(size1, size2, proof, root(size2), root(size1))
    with pytest.raises(VerificationError):
        verify_consistency(size1, size2, proof, OTHER, root(size2))
    with pytest.raises(VerificationError):
        verify_consistency(size1, size2, proof, root(size1), OTHER)


@given(size_pairs(), size_pairs())
def test_consistency_binds_sizes(case: tuple[int, int], claim: tuple[int, int]) -> None:
    proof = TREE.consistency_proof(*case)
    size1, size2 = claim
    if claim == case or TREE.consistency_proof(size1, size2) == proof:
        return
    with pytest.raises(VerificationError):
        verify_consistency(size1, size2, proof, root(size1), root(size2))


# --- the policy cases ------------------------------------------------------------------------


@pytest.mark.parametrize("size2", [0, 1, 2, 7, 8])
@pytest.mark.parametrize("proof", [[], [tlog.EMPTY_ROOT]])
def test_consistency_from_the_empty_tree_is_refused(size2: int, proof: list[bytes]) -> None:
    with pytest.raises(VerificationError, match="empty tree"):
        verify_consistency(0, size2, proof, tlog.EMPTY_ROOT, root(size2))


def test_equal_sizes() -> None:
    verify_consistency(5, 5, [], root(5), root(5))
    with pytest.raises(VerificationError, match="not empty"):
        verify_consistency(5, 5, [root(5)], root(5), root(5))
    with pytest.raises(VerificationError, match="roots differ"):
        verify_consistency(5, 5, [], root(5), root(6))
    with pytest.raises(VerificationError, match="smaller"):
        verify_consistency(6, 5, [], root(6), root(5))


# --- Python pitfalls -------------------------------------------------------------------------

BAD_NUMBERS = [True, False, -1, -(2**63), 2**63, 2**64 - 1, 1.0, "3", None]
BAD_HASHES: list[object] = [b"", b"\x00" * 31, b"\x00" * 33, bytearray(32), "00" * 32, None]


@pytest.mark.parametrize("bad", BAD_NUMBERS, ids=repr)
def test_verifiers_refuse_bad_numbers(bad: object) -> None:
    proof = TREE.inclusion_proof(2, 5)
    with pytest.raises(VerificationError):
        verify_inclusion(LEAVES[2], bad, 5, proof, root(5))  # type: ignore[arg-type]
    with pytest.raises(VerificationError):
        verify_inclusion(LEAVES[2], 2, bad, proof, root(5))  # type: ignore[arg-type]
    proof = TREE.consistency_proof(3, 5)
    with pytest.raises(VerificationError):
        verify_consistency(bad, 5, proof, root(3), root(5))  # type: ignore[arg-type]
    with pytest.raises(VerificationError):
        verify_consistency(3, bad, proof, root(3), root(5))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", BAD_HASHES, ids=repr)
def test_verifiers_refuse_bad_hashes(bad: object) -> None:
    proof = TREE.inclusion_proof(2, 5)
    calls: list[Callable[[], None]] = [
        lambda: verify_inclusion(bad, 2, 5, proof, root(5)),  # type: ignore[arg-type]
        lambda: verify_inclusion(LEAVES[2], 2, 5, proof, bad),  # type: ignore[arg-type]
        lambda: verify_inclusion(LEAVES[2], 2, 5, [bad, *proof[1:]], root(5)),  # type: ignore[list-item]
        lambda: verify_consistency(3, 5, TREE.consistency_proof(3, 5), bad, root(5)),  # type: ignore[arg-type]
        lambda: verify_consistency(3, 5, TREE.consistency_proof(3, 5), root(3), bad),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(VerificationError):
            call()


@pytest.mark.parametrize("bad", [LEAVES[0], b"".join(LEAVES[:3]), "abc", 7], ids=repr)
def test_a_proof_must_be_a_sequence_of_hashes(bad: object) -> None:
    with pytest.raises(VerificationError, match="sequence of hashes"):
        verify_inclusion(LEAVES[0], 0, 2, bad, root(2))  # type: ignore[arg-type]


def test_proofs_longer_than_64_hashes_are_refused() -> None:
    with pytest.raises(VerificationError, match="65 hashes"):
        verify_inclusion(LEAVES[0], 0, 2**62, [OTHER] * 65, OTHER)
    with pytest.raises(VerificationError, match="65 hashes"):
        verify_consistency(1, 2**62, [OTHER] * 65, OTHER, OTHER)


def test_large_sizes_are_handled_without_spinning() -> None:
    size = 2**63 - 1
    with pytest.raises(VerificationError, match="wrong inclusion proof length"):
        verify_inclusion(LEAVES[0], size - 1, size, [OTHER] * 3, OTHER)
    with pytest.raises(VerificationError, match="root mismatch"):
        verify_inclusion(LEAVES[0], 0, size, [OTHER] * 63, OTHER)
    with pytest.raises(VerificationError, match="root1 mismatch"):
        verify_consistency(size - 1, size, [OTHER] * 63, OTHER, OTHER)
    with pytest.raises(VerificationError, match="root2 mismatch"):
        verify_consistency(2**62, size, [OTHER], OTHER, OTHER)


def test_index_out_of_range() -> None:
    with pytest.raises(VerificationError, match="out of range"):
        verify_inclusion(LEAVES[5], 5, 5, TREE.inclusion_proof(4, 5), root(5))
    with pytest.raises(VerificationError, match="out of range"):
        verify_inclusion(LEAVES[0], 0, 0, [], tlog.EMPTY_ROOT)


# --- generators and the store ----------------------------------------------------------------


def test_generators_refuse_what_the_tree_does_not_hold() -> None:
    calls: list[Callable[[], object]] = [
        lambda: TREE.inclusion_proof(5, 5),
        lambda: TREE.inclusion_proof(0, N + 1),
        lambda: TREE.consistency_proof(0, 5),
        lambda: TREE.consistency_proof(6, 5),
        lambda: TREE.root(N + 1),
        lambda: TREE.root(True),
        lambda: TREE.get(0, N),
        lambda: TREE.get(-1, 0),
        lambda: tlog.inclusion_proof(0, 4, LEAVES[:3]),
        lambda: tlog.MemoryTree().append(b"\x00" * 31),
        lambda: tlog.root_hash([b"short"]),
    ]
    for call in calls:
        with pytest.raises(LocalProtocolError):
            call()


class CountingStore:
    """A store that counts reads, to check proofs cost O(log n) of them."""

    def __init__(self, tree: tlog.MemoryTree) -> None:
        self.tree = tree
        self.reads = 0

    def get(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.tree.get(level, index)


@given(leaf_in_tree(), size_pairs())
def test_proofs_read_logarithmically_many_hashes(
    inclusion: tuple[int, int], consistency: tuple[int, int]
) -> None:
    index, size = inclusion
    store = CountingStore(TREE)
    assert tlog.inclusion_proof_from_store(store.get, index, size) == TREE.inclusion_proof(
        index, size
    )
    assert store.reads <= 2 * size.bit_length()
    store.reads = 0
    size1, size2 = consistency
    if size1 < size2:
        tlog.consistency_proof_from_store(store.get, size1, size2)
        assert store.reads <= 2 * size2.bit_length() + 1
    store.reads = 0
    assert tlog.root_from_store(store.get, size) == root(size)
    assert store.reads == size.bit_count()


def test_append_hashes_amortised_one_node_per_leaf(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = tlog.node_hash

    def counting(left: bytes, right: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return real(left, right)

    monkeypatch.setattr(tlog, "node_hash", counting)
    tree = tlog.MemoryTree()
    for position, leaf in enumerate(LEAVES):
        assert tree.append(leaf) == position
    assert calls == N - bin(N).count("1")  # one per complete subtree above the leaves
    assert len(tree) == tree.size == N


def test_node_hash_is_the_rfc_primitive() -> None:
    left, right = LEAVES[0], LEAVES[1]
    assert tlog.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert tlog.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert tlog.root_hash([]) == tlog.EMPTY_ROOT == hashlib.sha256(b"").digest()
