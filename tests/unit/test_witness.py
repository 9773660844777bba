"""A node's view of the log: it accepts only consistent checkpoints and keeps the evidence;
and the ``Witnessed`` proof of a quorum, which only the witness module can make."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import note, tlog
from scfed.checkpoint import Checkpoint
from scfed.errors import LocalProtocolError, VerificationError
from scfed.note_format import parse_note
from scfed.wire.messages import Announce, Member, Registry, layout_hash
from scfed.witness import (
    LogInconsistencyError,
    LogView,
    ProofSource,
    Verified,
    Witnessed,
    check_quorum,
    cosign,
    cosigners,
    witnessed,
)
from tests.unit._support import TEST_NOISE, Rng

ORIGIN = "scfed.test/witness"
KEY = Ed25519PrivateKey.from_private_bytes(Rng(b"coordinator")(32))
PUBLIC = KEY.public_key().public_bytes_raw()
LEAVES = [f"message {i}".encode() for i in range(20)]


def _tree(leaves: list[bytes]) -> tlog.MemoryTree:
    return tlog.MemoryTree([tlog.leaf_hash(d) for d in leaves])


def _signed(tree: tlog.MemoryTree, size: int, key: Ed25519PrivateKey = KEY) -> bytes:
    text = Checkpoint(ORIGIN, size, tree.root(size)).format()
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
        text = Checkpoint("elsewhere", 3, HONEST.root(3)).format()
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


# ---- the proof a node's round machine needs ----


def _round_of(n: int = 5) -> tuple[Registry, Announce, dict[str, Ed25519PrivateKey]]:
    """A registry of ``n`` members whose checkpoints KEY signs, and a round of the first
    four of them (t = 3); the fifth is a member but no candidate."""
    keys = {f"fab-{i}": Ed25519PrivateKey.from_private_bytes(Rng(b"m%d" % i)(32)) for i in range(n)}
    members = tuple(
        Member(m, m, k.public_key().public_bytes_raw(), bytes(32), m) for m, k in keys.items()
    )
    registry = Registry(ORIGIN, 1, PUBLIC, members, ())
    candidates = tuple(sorted(keys))[:4]
    announce = Announce(
        Rng(b"round")(16),
        "q",
        1,
        candidates,
        3,
        3,
        1,
        1000,
        layout_hash(("c",)),
        TEST_NOISE,
        ("c",),
    )
    return registry, announce, keys


def _cosigned_by(names: list[str], keys: dict[str, Ed25519PrivateKey], size: int = 9) -> Verified:
    view = LogView(ORIGIN, PUBLIC)
    verified = view.opened(_signed(HONEST, size))
    lines = "".join(cosign(verified, name, keys[name], 1) for name in names)
    return view.opened(verified.note + lines.encode())


def test_a_proof_binds_the_round_its_quorum_and_the_candidates_that_cosigned() -> None:
    registry, announce, keys = _round_of()
    verified = _cosigned_by(["fab-0", "fab-2", "fab-3", "fab-4"], keys)
    proof = witnessed(verified, LogView(ORIGIN, PUBLIC).verifier, announce, registry, 3)
    assert proof.round_id == announce.round_id
    assert proof.quorum == 3
    assert proof.size == 9
    assert proof.cosigners == ("fab-0", "fab-2", "fab-3")  # fab-4 is no candidate


def test_no_proof_without_a_quorum_of_candidates() -> None:
    registry, announce, keys = _round_of()
    verifier = LogView(ORIGIN, PUBLIC).verifier
    only_two = _cosigned_by(["fab-0", "fab-1", "fab-4"], keys)  # the member fab-4 does not count
    with pytest.raises(VerificationError, match="2 witness cosignatures, 3 are needed"):
        witnessed(only_two, verifier, announce, registry, 3)
    with pytest.raises(LocalProtocolError, match="at least one"):
        witnessed(only_two, verifier, announce, registry, 0)


def test_no_proof_for_a_checkpoint_the_coordinator_did_not_sign() -> None:
    registry, announce, keys = _round_of()
    verified = _cosigned_by(["fab-0", "fab-1", "fab-2"], keys)
    text, _ = parse_note(verified.note)
    lines = "".join(cosign(verified, name, keys[name], 1) for name in ("fab-0", "fab-1", "fab-2"))
    unsigned = Verified(verified.checkpoint, text.encode() + b"\n" + lines.encode())
    with pytest.raises(VerificationError, match="does not carry the coordinator's signature"):
        witnessed(unsigned, LogView(ORIGIN, PUBLIC).verifier, announce, registry, 3)


def test_a_proof_cannot_be_made_but_by_the_witness_module() -> None:
    registry, announce, keys = _round_of()
    with pytest.raises(LocalProtocolError, match=r"only scfed\.witness\.witnessed"):
        Witnessed(announce.round_id, 3, 9, ("fab-0", "fab-1", "fab-2"))
    verified = _cosigned_by(["fab-0", "fab-1"], keys)
    proof = witnessed(verified, LogView(ORIGIN, PUBLIC).verifier, announce, registry, 2)
    with pytest.raises(LocalProtocolError, match=r"only scfed\.witness\.witnessed"):
        dataclasses.replace(proof, quorum=3, cosigners=("fab-0", "fab-1", "fab-2"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        proof.quorum = 3  # type: ignore[misc]
    assert copy.deepcopy(proof) == proof  # a copy of a real proof is that proof
