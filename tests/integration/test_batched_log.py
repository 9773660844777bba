"""A coordinator killed (SIGKILL) while it group-commits many nodes' messages, and restarted.

Dozens of scripted members (the real node state machine over real mutual TLS) take part in a
round and send their AdvertiseKeys all at once over the real Submit RPC, so the coordinator
commits them in batches. When the first acknowledgements arrive the test kills the
coordinator process with SIGKILL, mid-traffic, then starts it again. Every message whose
acknowledgement a client received must be in the log, byte for byte, at the index its
receipt named; each receipt's inclusion proof verifies against the checkpoint it came with;
and the restarted log is consistent with every checkpoint any client saw.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import signal
import threading
from dataclasses import dataclass

import grpc
import pytest

from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1 import service_pb2_grpc as rpc
from scfed import tlog
from scfed.errors import RemoteProtocolError
from scfed.tlog_verify import verify_consistency, verify_inclusion
from scfed.wire.envelope import Envelope
from scfed.wire.tasks import Receipt, receipt_from_proto
from scfed.witness import LogView, Verified
from tests.integration.conftest import Cluster, member_channel
from tests.integration.peer import ScriptedNode
from tests.integration.test_daemons import MakeCluster, run_round
from tests.integration.test_recovery import _audit
from tools.processes import start_coordinator

pytestmark = pytest.mark.integration

MEMBERS = [f"firm-{n:02d}" for n in range(48)]
#: Acknowledgements the test waits for before the kill: the rest are still being committed.
KILL_AFTER = len(MEMBERS) // 4


@dataclass(frozen=True)
class Acked:
    """A message a client sent, and the acknowledgement it received for it."""

    message: Envelope
    envelope_hash: bytes
    receipt: Receipt


class Submitters:
    """One Submit channel per member; all messages fired at once, acknowledgements kept.

    The callback that counts the ``KILL_AFTER``-th acknowledgement sends SIGKILL itself, so
    the kill lands within the same burst of commits.
    """

    def __init__(self, cluster: Cluster, coordinator_pid: int) -> None:
        self._channels = [
            member_channel(cluster.directory / "members" / m, cluster.address) for m in MEMBERS
        ]
        for channel in self._channels:  # handshakes done, so the messages arrive together
            grpc.channel_ready_future(channel).result(timeout=20)
        self._pid = coordinator_pid
        self._lock = threading.Lock()
        self.acked: list[Acked] = []
        self.failed: list[grpc.StatusCode | None] = []
        self.done = threading.Semaphore(0)

    def fire(self, messages: list[Envelope]) -> None:
        for channel, message in zip(self._channels, messages, strict=True):
            call = rpc.NodeServiceStub(channel).Submit.future(message.to_proto(), timeout=30)
            call.add_done_callback(functools.partial(self._answered, message))

    def _answered(self, sent: Envelope, answered: grpc.Future[spb.Ack]) -> None:
        try:
            ack: spb.Ack = answered.result()
        except grpc.RpcError as exc:
            with self._lock:
                self.failed.append(exc.code() if isinstance(exc, grpc.Call) else None)
        else:
            with self._lock:
                self.acked.append(Acked(sent, ack.envelope_hash, receipt_from_proto(ack.receipt)))
                if len(self.acked) == KILL_AFTER:
                    os.kill(self._pid, signal.SIGKILL)
        self.done.release()

    def wait_all(self) -> None:
        for _ in MEMBERS:
            assert self.done.acquire(timeout=60), "a Submit call never ended"

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


def _start_round(cluster: Cluster) -> None:
    """The operator's StartRound: its deadlines are far off, and the call dies with the kill."""
    with contextlib.suppress(RemoteProtocolError):
        run_round(cluster, MEMBERS, timeout_ms=120_000)


def _advertisements(peers: list[ScriptedNode]) -> list[Envelope]:
    """Each member's AdvertiseKeys for the announce the round sent it."""
    messages = []
    for peer in peers:
        announce = peer.next_task()
        assert isinstance(announce, Envelope)
        messages.append(peer.round.on_announce(announce, peer.inputs))
    return messages


def test_every_acknowledged_message_survives_a_kill_during_group_commits(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(MEMBERS, start=[])
    peers = [
        ScriptedNode(cluster.directory / "members" / m, cluster.address, cluster.figures[m])
        for m in MEMBERS
    ]
    cluster.wait_connected(len(MEMBERS))
    view = LogView(
        peers[0].round.identity.registry.origin, peers[0].round.identity.registry.coordinator_key
    )
    starter = threading.Thread(target=_start_round, args=(cluster,))
    starter.start()
    messages = _advertisements(peers)
    for peer in peers:  # their task streams would end with the kill; Submit needs none
        peer.close()
    coordinator = cluster.procs.running["coordinator"]
    submitters = Submitters(cluster, coordinator.pid)
    submitters.fire(messages)
    submitters.wait_all()
    assert coordinator.wait(10) == -signal.SIGKILL
    submitters.close()
    starter.join(30)
    acked = submitters.acked
    assert len(acked) >= KILL_AFTER
    assert submitters.failed, "every Submit was answered before the kill landed"
    seen = _check_receipts(view, acked)
    assert len(seen) < len(acked), "no two acknowledgements shared a commit"

    (cluster.directory / "coordinator" / "port").unlink()  # written again by the new start
    cluster.address = f"127.0.0.1:{start_coordinator(cluster.directory, cluster.procs)}"
    assert "was interrupted by a stop; closed with its round.abort" in cluster.procs.log_text(
        "coordinator"
    )
    with member_channel(cluster.directory / "members" / MEMBERS[0], cluster.address) as channel:
        log = rpc.LogServiceStub(channel)
        latest = view.opened(log.GetCheckpoint(spb.CheckpointRequest(), timeout=20).note)
        for checkpoint in seen.values():  # the new log extends every checkpoint a client saw
            _check_consistent(log, checkpoint, latest)
        for item in acked:  # and holds every acknowledged message at its leaf, byte for byte
            _check_logged(log, item, latest)
    report = _audit(cluster)  # and the auditor replays the whole log: the round, its abort
    assert all(f["passed"] for entry in report["rounds"] for f in entry["findings"]), report


def _check_receipts(view: LogView, acked: list[Acked]) -> dict[int, Verified]:
    """Verify each acknowledgement as its node would; the checkpoints seen, by size."""
    seen: dict[int, Verified] = {}
    for item in acked:
        assert item.envelope_hash == item.message.digest(view.origin)
        verified = view.opened(item.receipt.checkpoint)
        checkpoint = verified.checkpoint
        leaf = tlog.leaf_hash(item.message.to_bytes())
        verify_inclusion(
            leaf, item.receipt.index, checkpoint.size, item.receipt.inclusion, checkpoint.root
        )
        earlier = seen.setdefault(checkpoint.size, verified)
        assert earlier.checkpoint.root == checkpoint.root  # one tree per size
    return seen


def _check_consistent(log: rpc.LogServiceStub, old: Verified, new: Verified) -> None:
    size1, size2 = old.checkpoint.size, new.checkpoint.size
    assert size1 <= size2, "the restarted log is shorter than a checkpoint a client saw"
    proof = log.GetConsistencyProof(spb.ProofRequest(first=size1, second=size2), timeout=20)
    verify_consistency(size1, size2, list(proof.hashes), old.checkpoint.root, new.checkpoint.root)


def _check_logged(log: rpc.LogServiceStub, item: Acked, latest: Verified) -> None:
    data = item.message.to_bytes()
    (entry,) = log.GetEntries(
        spb.EntriesRequest(start=item.receipt.index, count=1), timeout=20
    ).entries
    assert entry.index == item.receipt.index
    assert entry.content_hash == hashlib.sha256(data).digest()
    assert entry.data == data
    size = latest.checkpoint.size
    proof = log.GetInclusionProof(spb.ProofRequest(first=entry.index, second=size), timeout=20)
    verify_inclusion(
        tlog.leaf_hash(data), entry.index, size, list(proof.hashes), latest.checkpoint.root
    )
