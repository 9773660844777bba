"""A scripted member for integration tests: the real node state machine over a real mutual-TLS
connection, stepped by the test instead of the daemon, so a test can hold a message back
while it kills another node, and see exactly what the coordinator asks. It checks the log as
the daemon does: it cosigns checkpoints it verified, and masks or reveals only with the
``Witnessed`` proof it builds from the cosigned checkpoint that came with the task."""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path

import grpc

from edge.config import load_node_config, read_governance_key
from edge.files import read_private_key_file
from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1 import service_pb2_grpc as rpc
from scfed.dp.contribution import Ints, to_grid
from scfed.pki import load_ed25519_private_pem
from scfed.registry import open_registry
from scfed.secagg import Identity, MemoryGuard, NodePolicy, NodeRound
from scfed.wire import REGISTRY
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Announce
from scfed.wire.tasks import (
    CheckpointTask,
    MaskingTask,
    Receipt,
    Task,
    task_from_proto,
    task_receipt,
)
from scfed.witness import LogView, Witnessed, cosign, witnessed
from tests.integration.conftest import member_channel


class ScriptedNode:
    """Receives tasks into a queue; the test decides when to answer them."""

    def __init__(
        self, member_dir: Path, address: str, figures: dict[str, int], *, witness: bool = True
    ) -> None:
        self.config = load_node_config(member_dir / "node.toml")
        self.figures = figures
        self.witness = witness  # False: a node that never cosigns the log
        self._channel = member_channel(member_dir, address)
        self._stub = rpc.NodeServiceStub(self._channel)
        self._tasks: queue.Queue[tuple[Task, Receipt | None]] = queue.Queue()
        self._receipt: Receipt | None = None  # of the task ``next_task`` returned last
        self._stream = self._stub.Subscribe(spb.SubscribeRequest())
        threading.Thread(target=self._read, daemon=True).start()
        registry_envelope, _ = self._tasks.get(timeout=20)
        assert isinstance(registry_envelope, Envelope)
        governance = read_governance_key(self.config.governance_key)
        registry = open_registry(registry_envelope, self.config.origin, governance)
        key = load_ed25519_private_pem(read_private_key_file(self.config.identity_key))
        identity = Identity(self.config.member_id, key, registry)
        policy = NodePolicy(adhoc=True)
        self.round = NodeRound(identity, policy, MemoryGuard(), os.urandom, period="test")
        self._key = key
        self._view = LogView(registry.origin, registry.coordinator_key)
        self._log = rpc.LogServiceStub(self._channel)

    def _read(self) -> None:
        try:
            for task in self._stream:
                self._tasks.put((task_from_proto(task), task_receipt(task)))
        except grpc.RpcError as exc:
            if not isinstance(exc, grpc.Call) or exc.code() is not grpc.StatusCode.CANCELLED:
                raise

    def next_task(self, timeout: float = 20.0) -> Task:
        """The next round task; registry refreshes (same version) are passed over, and
        checkpoints are verified and cosigned as the node daemon does."""
        while True:
            task, self._receipt = self._tasks.get(timeout=timeout)
            if isinstance(task, CheckpointTask):
                if self.witness:
                    self._cosign(task.note)
            elif not (isinstance(task, Envelope) and task.type == REGISTRY):
                return task

    def _proofs(self, size1: int, size2: int) -> list[bytes]:
        request = spb.ProofRequest(first=size1, second=size2)
        return list(self._log.GetConsistencyProof(request, timeout=20).hashes)

    def _cosign(self, signed: bytes) -> None:
        verified = self._view.advance(signed, self._proofs)
        line = cosign(verified, self.config.member_id, self._key, int(time.time()))
        size = verified.checkpoint.size
        self._stub.Cosign(spb.Cosignature(size=size, line=line), timeout=20)

    def _witnessed(self) -> Witnessed:
        """The proof the round machine needs, from the last task's cosigned checkpoint."""
        assert self._receipt is not None, "a privacy-critical task came without a receipt"
        verified = self._view.advance(self._receipt.checkpoint, self._proofs)
        node = self.round
        registry, quorum = node.identity.registry, node.witness_quorum
        return witnessed(verified, self._view.verifier, node.announce, registry, quorum)

    def mask(self, task: MaskingTask) -> Envelope:
        """The masked input for the masking task ``next_task`` returned last."""
        return self.round.on_masking(task, self._witnessed())

    def unmask(self, request: Envelope) -> Envelope:
        """The unmask response to the request ``next_task`` returned last."""
        return self.round.on_unmask(request, self._witnessed())

    def inputs(self, announce: Announce) -> Ints:
        values = [self.figures.get(cell, 0) for cell in announce.cells]
        return to_grid(values, announce.noise.grid_value)

    def submit(self, envelope: Envelope) -> None:
        self._stub.Submit(envelope.to_proto(), timeout=20)

    def close(self) -> None:
        self._stream.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs
        self._channel.close()
