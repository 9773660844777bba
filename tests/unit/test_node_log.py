"""The node refuses what the protocol log does not back, and keeps evidence of a fork.

The coordinator's log service is stood in for by an in-memory tree that answers consistency
proofs, as the real service does over gRPC; everything else is the node's real code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from node.logcheck import NodeLog
from node.store import NodeStore
from protos.scfed.v1 import service_pb2 as spb
from scfed import note, tlog
from scfed.checkpoint import Checkpoint
from scfed.errors import RefusedError, VerificationError
from scfed.wire.tasks import Receipt
from scfed.witness import LogView, cosign, cosigners
from tests.unit._support import build_script

SCRIPT = build_script()
FED = SCRIPT.fed
ORIGIN = FED.registry.origin
ME = "node-000"
LEAVES = [f"leaf {i}".encode() for i in range(12)]


@dataclass
class LogServiceDouble:
    """Answers GetConsistencyProof from a tree, like the coordinator's log service."""

    tree: tlog.MemoryTree

    def GetConsistencyProof(  # noqa: N802 - the gRPC stub's method name
        self, request: spb.ProofRequest, timeout: float
    ) -> spb.Proof:
        return spb.Proof(hashes=self.tree.consistency_proof(request.first, request.second))


def _tree(leaves: list[bytes]) -> tlog.MemoryTree:
    return tlog.MemoryTree([tlog.leaf_hash(d) for d in leaves])


def _signed(tree: tlog.MemoryTree, size: int) -> bytes:
    text = Checkpoint(ORIGIN, size, tree.root(size)).format()
    return note.sign_note(text, [note.Signer(ORIGIN, FED.coordinator_key)])


def _receipt(tree: tlog.MemoryTree, index: int, size: int) -> Receipt:
    return Receipt(index, _signed(tree, size), tuple(tree.inclusion_proof(index, size)))


def _node_log(tmp_path: Path, tree: tlog.MemoryTree) -> tuple[NodeLog, NodeStore]:
    store = NodeStore(tmp_path / "node.sqlite")
    node_log = NodeLog(store, tmp_path / "evidence", ME)
    node_log.bind(FED.registry, LogServiceDouble(tree))  # type: ignore[arg-type]
    return node_log, store


HONEST = _tree(LEAVES)


def test_receipts_advance_the_kept_checkpoint_across_restarts(tmp_path: Path) -> None:
    node_log, store = _node_log(tmp_path, HONEST)
    node_log.receipt(LEAVES[3], _receipt(HONEST, 3, 6), "announce")
    node_log.receipt(LEAVES[9], _receipt(HONEST, 9, 12), "unmask request")
    assert store.latest_checkpoint() == _signed(HONEST, 12)
    with pytest.raises(RefusedError, match="without a receipt"):
        node_log.receipt(LEAVES[9], None, "unmask request")
    with pytest.raises(VerificationError):
        node_log.receipt(b"another request", _receipt(HONEST, 9, 12), "unmask request")


def test_a_forked_log_stops_the_node_for_good_and_leaves_evidence(tmp_path: Path) -> None:
    node_log, store = _node_log(tmp_path, HONEST)
    node_log.receipt(LEAVES[5], _receipt(HONEST, 5, 8), "announce")
    forked = _tree([*LEAVES[:4], b"rewritten", *LEAVES[5:]])
    node_log.bind(FED.registry, LogServiceDouble(forked))  # type: ignore[arg-type]
    with pytest.raises(RefusedError, match="inconsistent"):
        node_log.receipt(LEAVES[10], _receipt(forked, 10, 11), "unmask request")
    (evidence,) = (tmp_path / "evidence").iterdir()
    text = evidence.read_text()
    assert _signed(HONEST, 8).decode() in text
    assert _signed(forked, 11).decode() in text
    restarted = NodeLog(NodeStore(tmp_path / "node.sqlite"), tmp_path / "evidence", ME)
    with pytest.raises(RefusedError, match="stopped taking part"):
        restarted.check_running()
    assert store.latest_checkpoint() == _signed(HONEST, 8)


def _cosigned(size: int, members: list[str]) -> bytes:
    view = LogView(ORIGIN, FED.registry.coordinator_key)
    verified = view.opened(_signed(HONEST, size))
    lines = [cosign(verified, m, FED.member_keys[m], 1_800_000_000) for m in members]
    return verified.note + "".join(lines).encode()


def test_a_privacy_critical_step_needs_a_quorum_of_the_rounds_witnesses(tmp_path: Path) -> None:
    node_log, store = _node_log(tmp_path, HONEST)
    announce, registry = SCRIPT.announce, FED.registry  # 4 candidates, t = 3
    candidates = list(announce.candidates)
    receipt = Receipt(0, _cosigned(7, candidates[:3]), ())
    proof = node_log.witnessed(receipt, announce, registry, 3)
    assert (proof.round_id, proof.quorum, proof.size) == (announce.round_id, 3, 7)
    assert proof.cosigners == tuple(candidates[:3])
    assert store.latest_checkpoint() == receipt.checkpoint  # checked against the node's view
    with pytest.raises(VerificationError, match="2 witness cosignatures, 3 are needed"):
        node_log.witnessed(Receipt(0, _cosigned(8, candidates[:2]), ()), announce, registry, 3)
    with pytest.raises(VerificationError, match="3 witness cosignatures, 4 are needed"):
        node_log.witnessed(Receipt(0, _cosigned(8, candidates[:3]), ()), announce, registry, 4)
    with pytest.raises(RefusedError, match="without a cosigned checkpoint"):
        node_log.witnessed(None, announce, registry, 3)


def test_a_cosignature_is_given_only_for_a_consistent_checkpoint(tmp_path: Path) -> None:
    node_log, _ = _node_log(tmp_path, HONEST)
    key = FED.member_keys[ME]
    given = node_log.cosignature(_signed(HONEST, 10), key)
    assert given.size == 10
    view = LogView(ORIGIN, FED.registry.coordinator_key)
    witnesses = {ME: key.public_key().public_bytes_raw()}
    cosigned = _signed(HONEST, 10) + given.line.encode()
    assert cosigners(cosigned, view.verifier, witnesses) == (ME,)
    forked = _tree([b"other", *LEAVES[1:]])
    node_log.bind(FED.registry, LogServiceDouble(forked))  # type: ignore[arg-type]
    with pytest.raises(RefusedError):
        node_log.cosignature(_signed(forked, 12), key)
