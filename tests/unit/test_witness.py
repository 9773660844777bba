"""A node's view of the log: it accepts only consistent checkpoints and keeps the evidence."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import note, tlog
from scfed.errors import VerificationError
from scfed.witness import (
    LogInconsistencyError,
    LogView,
    ProofSource,
    check_quorum,
    cosign,
    cosigners,
)
from tests.unit._support import Rng

ORIGIN = "scfed.test/witness"
KEY = Ed25519PrivateKey.from_private_bytes(Rng(b"coordinator")(32))
PUBLIC = KEY.public_key().public_bytes_raw()
LEAVES = [f"message {i}".encode() for i in range(20)]


def _tree(leaves: list[bytes]) -> tlog.MemoryTree:
    return tlog.MemoryTree([tlog.leaf_hash(d) for d in leaves])


def _signed(tree: tlog.MemoryTree, size: int, key: Ed25519PrivateKey = KEY) -> bytes:
    text = note.Checkpoint(ORIGIN, size, tree.root(size)).format()
    return note.sign_note(text, [note.Signer(ORIGIN, key)])


HONEST = _tree(LEAVES)


def _proofs(tree: tlog.MemoryTree = HONEST) -> ProofSource:
    return tree.consistency_proof


def test_consistent_checkpoints_advance_the_view() -> None:
    view = LogView(ORIGIN, PUBLIC)
    view.advance(_signed(HONEST, 5), _proofs())
    view.advance(_signed(HONEST, 12), _proofs())
    view.advance(_signed(HONEST, 7), _proofs())  # an older one is checked, not adopted
    view.advance(_signed(HONEST, 12), _proofs())
    assert view.latest is not None
    assert view.latest.checkpoint.size == 12
    restarted = LogView(ORIGIN, PUBLIC, view.latest.note)
    assert restarted.latest == view.latest


def test_a_rewritten_old_leaf_is_an_inconsistency_with_evidence() -> None:
    view = LogView(ORIGIN, PUBLIC)
    old = _signed(HONEST, 8)
    view.advance(old, _proofs())
    forged = _tree([b"rewritten", *LEAVES[1:]])
    with pytest.raises(LogInconsistencyError) as caught:
        view.advance(_signed(forged, 15), _proofs(forged))
    evidence = caught.value.evidence
    assert (evidence.older, evidence.newer) == (old, _signed(forged, 15))
    assert evidence.proof == tuple(forged.consistency_proof(8, 15))
    assert "older checkpoint" in evidence.to_text()
    assert view.latest is not None
    assert view.latest.note == old


def test_a_fork_at_the_same_size_is_an_inconsistency() -> None:
    view = LogView(ORIGIN, PUBLIC)
    view.advance(_signed(HONEST, 10), _proofs())
    fork = _tree([*LEAVES[:9], b"other tenth"])
    with pytest.raises(LogInconsistencyError, match="two different roots"):
        view.advance(_signed(fork, 10), _proofs(fork))


@pytest.mark.parametrize("case", ["other-key", "other-origin", "garbage"])
def test_a_checkpoint_not_signed_for_this_federation_is_refused(case: str) -> None:
    view = LogView(ORIGIN, PUBLIC)
    if case == "other-key":
        signed = _signed(HONEST, 3, Ed25519PrivateKey.from_private_bytes(Rng(b"x")(32)))
    elif case == "other-origin":
        text = note.Checkpoint("elsewhere", 3, HONEST.root(3)).format()
        signed = note.sign_note(text, [note.Signer(ORIGIN, KEY)])
    else:
        signed = b"not a note"
    with pytest.raises(VerificationError):
        view.advance(signed, _proofs())
    assert view.latest is None


def test_a_receipt_proves_the_exact_bytes() -> None:
    view = LogView(ORIGIN, PUBLIC)
    signed, proof = _signed(HONEST, 20), HONEST.inclusion_proof(4, 20)
    view.check_receipt(LEAVES[4], index=4, signed=signed, inclusion=proof, proofs=_proofs())
    with pytest.raises(VerificationError):
        view.check_receipt(b"message 4 ", index=4, signed=signed, inclusion=proof, proofs=_proofs())
    with pytest.raises(VerificationError):
        view.check_receipt(LEAVES[4], index=5, signed=signed, inclusion=proof, proofs=_proofs())


def test_cosignatures_count_toward_a_quorum_of_known_witnesses() -> None:
    view = LogView(ORIGIN, PUBLIC)
    verified = view.advance(_signed(HONEST, 9), _proofs())
    keys = {f"fab-{i}": Ed25519PrivateKey.from_private_bytes(Rng(b"w%d" % i)(32)) for i in range(4)}
    witnesses = {name: k.public_key().public_bytes_raw() for name, k in keys.items()}
    lines = [cosign(verified, name, keys[name], 1_700_000_000 + i) for i, name in enumerate(keys)]
    stranger = Ed25519PrivateKey.from_private_bytes(Rng(b"stranger")(32))
    cosigned = (
        verified.note
        + "".join(lines[:3]).encode()
        + cosign(verified, "fab-9", stranger, 5).encode()
    )
    assert cosigners(cosigned, view.verifier, witnesses) == ("fab-0", "fab-1", "fab-2")
    check_quorum(cosigned, view.verifier, witnesses, 3)
    with pytest.raises(VerificationError, match="3 witness cosignatures, 4 are needed"):
        check_quorum(cosigned, view.verifier, witnesses, 4)
    # A line under fab-3's name but another key has another key ID: ignored, not counted.
    forged = verified.note + cosign(verified, "fab-3", stranger, 5).encode()
    assert cosigners(forged, view.verifier, witnesses) == ()
    # A line with fab-3's key ID whose signature is over another checkpoint is an error.
    other = view.opened(_signed(HONEST, 4))
    replayed = verified.note + cosign(other, "fab-3", keys["fab-3"], 5).encode()
    with pytest.raises(VerificationError):
        cosigners(replayed, view.verifier, witnesses)
