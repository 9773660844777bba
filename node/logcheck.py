"""The node's side of the protocol log: receipts, checkpoints, cosignatures, evidence.

Edge code (does I/O): it keeps the latest verified checkpoint in the node's store, fetches
consistency proofs from the coordinator's log service, and writes an evidence file when the
log is inconsistent. The checks themselves are ``scfed.witness``; from a task's checkpoint
this module builds the ``Witnessed`` proof of a quorum that the round machine needs. Once the
log has been inconsistent the node refuses every further task, across restarts, until its
operators have looked at the evidence (and removed the halt from the store).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.files import write_public
from node.store import NodeStore
from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1 import service_pb2_grpc as rpc
from scfed.errors import RefusedError, RemoteProtocolError
from scfed.wire.messages import Announce, Registry
from scfed.wire.tasks import MAX_PROOF_HASHES, Receipt
from scfed.witness import LogInconsistencyError, LogView, Verified, Witnessed, cosign, witnessed

log = logging.getLogger("scfed.node")

PROOF_TIMEOUT_S = 20.0

_Check = Callable[[LogView], Verified]


class NodeLog:
    """Checks every receipt and checkpoint the coordinator shows this node."""

    def __init__(self, store: NodeStore, evidence: Path, member_id: str) -> None:
        self._store, self._evidence, self._member_id = store, evidence, member_id
        self._view: LogView | None = None
        self._stub: rpc.LogServiceStub | None = None

    def bind(self, registry: Registry, stub: rpc.LogServiceStub | None) -> None:
        """Use this registry's coordinator key and this connection's log service."""
        self._stub = stub
        view = self._view
        if view is None:
            self._view = LogView(
                registry.origin, registry.coordinator_key, self._store.latest_checkpoint()
            )
        elif view.verifier.public_key != registry.coordinator_key:
            self._view = view.rekeyed(registry.coordinator_key)  # the coordinator's new log key

    def check_running(self) -> None:
        """RefusedError if an inconsistent log made this node stop taking part."""
        reason = self._store.halted()
        if reason is not None:
            raise RefusedError(f"this node stopped taking part: {reason}; see {self._evidence}")

    def receipt(self, leaf: bytes, receipt: Receipt | None, what: str) -> Verified:
        """Check that ``leaf`` is in the log at a checkpoint consistent with ours."""
        if receipt is None:
            raise RefusedError(f"the {what} came without a receipt from the protocol log")
        return self._guarded(
            lambda view: view.check_receipt(
                leaf,
                index=receipt.index,
                signed=receipt.checkpoint,
                inclusion=receipt.inclusion,
                proofs=self._proofs,
            )
        )

    def witnessed(
        self, receipt: Receipt | None, announce: Announce, registry: Registry, quorum: int
    ) -> Witnessed:
        """The proof, for the round machine, that the receipt's checkpoint is consistent with
        ours and cosigned by ``quorum`` of the round's candidates."""
        if receipt is None:
            raise RefusedError("a privacy-critical step came without a cosigned checkpoint")
        verified = self._guarded(lambda view: view.advance(receipt.checkpoint, self._proofs))
        return witnessed(verified, self._checked_view().verifier, announce, registry, quorum)

    def cosignature(self, note: bytes, key: Ed25519PrivateKey) -> spb.Cosignature:
        """Our cosignature of a checkpoint, once it is verified consistent with our view."""
        verified = self._guarded(lambda view: view.advance(note, self._proofs))
        line = cosign(verified, self._member_id, key, int(time.time()))
        return spb.Cosignature(size=verified.checkpoint.size, line=line)

    # -- machinery -------------------------------------------------------------------------

    def _checked_view(self) -> LogView:
        if self._view is None:
            raise RefusedError("a log receipt arrived before the registry")
        return self._view

    def _guarded(self, check: _Check) -> Verified:
        self.check_running()
        view = self._checked_view()
        before = view.latest
        try:
            verified = check(view)
        except LogInconsistencyError as exc:
            self._stop(exc)
            raise RefusedError(str(exc)) from exc
        if view.latest is not None and view.latest != before:
            self._store.keep_checkpoint(view.latest.note)
        return verified

    def _stop(self, exc: LogInconsistencyError) -> None:
        self._evidence.mkdir(parents=True, exist_ok=True)
        path = self._evidence / f"log-inconsistency-{int(time.time())}.txt"
        write_public(path, exc.evidence.to_text().encode("utf-8"))
        self._store.halt(f"{exc} (evidence in {path.name})")
        log.critical(
            "THE COORDINATOR'S PROTOCOL LOG IS INCONSISTENT: %s. This node stops taking part; "
            "the evidence is in %s",
            exc.evidence.reason,
            path,
        )

    def _proofs(self, size1: int, size2: int) -> Sequence[bytes]:
        if self._stub is None:
            raise RemoteProtocolError("no connection to the log service")
        request = spb.ProofRequest(first=size1, second=size2)
        hashes = list(self._stub.GetConsistencyProof(request, timeout=PROOF_TIMEOUT_S).hashes)
        if len(hashes) > MAX_PROOF_HASHES:
            raise RemoteProtocolError("a consistency proof longer than any tree needs")
        return hashes
