"""State does not go back after a restart: real node daemons refuse a replayed older registry or
policy, and the honest coordinator refuses to serve one (``scfed.versions``).

The replays come from a hostile coordinator: the operator's own TLS certificate, signing key
and a copy of its protocol log, behind the real generated gRPC service classes and the real
log service, on the port the honest coordinator listened on. It sends every node that
subscribes the same scripted tasks and records what the nodes send back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator._status import Context, served
from coordinator._wire import add_services
from coordinator.journal import Journal
from coordinator.log import ProtocolLog
from coordinator.log_service import LogService
from coordinator.requests import Limits, announce_for
from coordinator.server import peer_fingerprint
from edge.config import load_coordinator_config
from edge.files import read_private_key_file, read_public_file, write_public
from protos.scfed.v1 import messages_pb2 as pb
from protos.scfed.v1 import service_pb2 as spb
from scfed import pki, wire
from scfed.config import CoordinatorConfig
from scfed.dp.params import MAGNITUDE, Noise
from scfed.policy import seal_policy
from scfed.registry import seal_registry
from scfed.secagg import CoordinatorRound
from scfed.wire.codec import decode_registry, noise_to_proto
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Registry
from scfed.wire.policy import Policy
from scfed.wire.tasks import task_to_proto
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration

MakeCluster = Callable[..., Cluster]
NAMES = ["auto-nagoya", "fab-hsinchu", "fab-kumamoto", "osat-penang"]
NOISE = Noise("40", 1, MAGNITUDE, 10, "1", 10**6)


# ---- the federation's files ------------------------------------------------------------------


def coordinator_config(cluster: Cluster) -> CoordinatorConfig:
    return load_coordinator_config(cluster.directory / "coordinator" / "coordinator.toml")


def governance_key(cluster: Cluster) -> Ed25519PrivateKey:
    pem = read_private_key_file(cluster.directory / "governance" / "governance.key")
    return pki.load_ed25519_private_pem(pem)


def request(cluster: Cluster, candidates: Sequence[str]) -> spb.StartRoundRequest:
    return spb.StartRoundRequest(
        query="test", cells=cluster.cells, candidates=candidates, phase_timeout_ms=20_000,
        noise=noise_to_proto(NOISE),
    )  # fmt: skip


def run_round(cluster: Cluster, candidates: Sequence[str]) -> Envelope:
    with cluster.admin() as admin:
        _, outcome = admin.start_round(request(cluster, candidates), timeout=60)
    return outcome


# ---- waiting on processes ----------------------------------------------------------------------


def wait_until(what: str, check: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_for_log(cluster: Cluster, name: str, text: str) -> None:
    wait_until(f"{name} to log {text!r}", lambda: text in cluster.procs.log_text(name))


def restart_node(cluster: Cluster, name: str) -> None:
    cluster.procs.kill(name)
    cluster.procs.running[name].wait(10)
    cluster.start_node(name)


def stop_coordinator(cluster: Cluster) -> None:
    process = cluster.procs.running["coordinator"]
    process.terminate()
    assert process.wait(10) == 0


def start_refused(cluster: Cluster, name: str) -> str:
    """Start the honest coordinator again; it must exit at once with one error line: that line."""
    config = str(cluster.directory / "coordinator" / "coordinator.toml")
    process = cluster.procs.start(
        name, "coordinator", "serve", "--config", config, "--listen", "127.0.0.1:0"
    )
    assert process.wait(60) == 1
    text = cluster.procs.log_text(name)
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, text
    assert errors[0].startswith("scfed: error: "), text
    return errors[0]


# ---- the hostile coordinator -------------------------------------------------------------------


@dataclass
class _ReplayingNodes:
    """Sends each subscriber the scripted tasks, then holds its stream open."""

    registry: Registry
    tasks: Sequence[spb.Task]
    #: (member, registry version it subscribed with), in order.
    subscribed: list[tuple[str, int]] = field(default_factory=list)
    #: (member, message type) of everything submitted.
    submitted: list[tuple[str, str]] = field(default_factory=list)
    closing: bool = False

    def _member(self, context: Context) -> str:
        member = self.registry.member_by_certificate(peer_fingerprint(context))
        assert member is not None
        return member.member_id

    @served(_member)
    async def Subscribe(  # noqa: N802 - gRPC method name
        self, request: spb.SubscribeRequest, context: Context, member_id: str
    ) -> AsyncGenerator[spb.Task, None]:
        self.subscribed.append((member_id, request.registry_version))
        for task in self.tasks:
            yield task
        while not self.closing:
            await asyncio.sleep(0.05)

    @served(_member)
    async def Submit(  # noqa: N802 - gRPC method name
        self, request: pb.Envelope, context: Context, member_id: str
    ) -> spb.Ack:
        self.submitted.append((member_id, Envelope.from_proto(request).type))
        return spb.Ack()

    @served(_member)
    async def Cosign(  # noqa: N802 - gRPC method name
        self, request: spb.Cosignature, context: Context, member_id: str
    ) -> spb.CosignAck:
        return spb.CosignAck()

    @served(_member)
    async def CrisisInbox(  # noqa: N802 - gRPC method name
        self, request: spb.CrisisInboxRequest, context: Context, member_id: str
    ) -> spb.CrisisInboxReply:
        return spb.CrisisInboxReply()

    @served(_member)
    async def CrisisAnswer(  # noqa: N802 - gRPC method name
        self, request: spb.CrisisAnswerRequest, context: Context, member_id: str
    ) -> spb.Ack:
        return spb.Ack()


class HostileCoordinator:
    """The coordinator's keys and a copy of its log, serving scripted tasks on ``address``."""

    def __init__(
        self, config: CoordinatorConfig, address: str, nodes: _ReplayingNodes, log: ProtocolLog
    ) -> None:
        self.nodes, self._address, self._log = nodes, address, log
        self._credentials = grpc.ssl_server_credentials(
            [(read_private_key_file(config.tls.key), read_public_file(config.tls.certificate))],
            root_certificates=read_public_file(config.tls.ca),
            require_client_auth=True,
        )
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None

    async def _serve(self) -> None:
        server = grpc.aio.server()
        readers = LogService(self._log, lambda context: None)
        add_services(server, {"NodeService": self.nodes, "LogService": readers})
        server.add_secure_port(self._address, self._credentials)
        await server.start()
        self._loop, self._done = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        await self._done.wait()
        await server.stop(grace=2.0)

    def __enter__(self) -> HostileCoordinator:
        self._thread.start()
        assert self._ready.wait(20), "the hostile coordinator did not start"
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.nodes.closing = True  # the task streams end, then the server stops
        if self._loop is not None and self._done is not None:
            self._loop.call_soon_threadsafe(self._done.set)
        self._thread.join(10)
        self._log.close()


def copy_log(config: CoordinatorConfig, path: Path, key: Ed25519PrivateKey) -> ProtocolLog:
    """A copy of the honest coordinator's protocol log (it must be stopped), to append to."""
    with sqlite3.connect(config.database) as source, sqlite3.connect(path) as copy:
        source.backup(copy)
    return ProtocolLog(path, origin=config.origin, key=key)


def signing_key(config: CoordinatorConfig) -> Ed25519PrivateKey:
    return pki.load_ed25519_private_pem(read_private_key_file(config.signing_key))


def replaying_round(cluster: Cluster, old: Envelope, path: Path) -> HostileCoordinator:
    """A hostile coordinator that replays registry ``old`` and then the announce of a round of
    every member built on it, both logged in a copy of the honest log; the announce with its
    receipt against that log, as the node checks it."""
    config = coordinator_config(cluster)
    registry, key = decode_registry(old.body), signing_key(config)
    log = copy_log(config, path, key)
    journal = Journal(log)
    journal.record_once(old)
    announce = announce_for(
        request(cluster, NAMES), registry=registry, policy=None, connected=tuple(NAMES),
        limits=Limits(config.max_cells, config.phase_timeout_ms),
        today=dt.datetime.now(dt.UTC).date(),
    )  # fmt: skip
    signed = CoordinatorRound(announce, registry, key).announce_envelope
    receipt = journal.receipt(journal.record(signed))
    tasks = [spb.Task(registry=old.to_proto()), task_to_proto(signed, receipt)]
    return HostileCoordinator(config, cluster.address, _ReplayingNodes(registry, tasks), log)


# ---- the tests ---------------------------------------------------------------------------------


def test_a_restarted_node_refuses_an_older_registry_that_readmits_a_removed_member(
    make_cluster: MakeCluster, tmp_path: Path
) -> None:
    node, removed = NAMES[0], NAMES[-1]
    cluster = make_cluster(NAMES)
    config = coordinator_config(cluster)
    old = Envelope.from_bytes(config.registry.read_bytes())
    registry = decode_registry(old.body)
    n = registry.version
    members = tuple(m for m in registry.members if m.member_id != removed)
    newer = seal_registry(
        replace(registry, version=n + 1, members=members), governance_key(cluster)
    )
    write_public(config.registry, newer.to_bytes())  # governance removes a member
    assert run_round(cluster, NAMES[:3]).type == wire.RESULT
    wait_for_log(cluster, node, f"registry version {n + 1}: {len(members)} members")

    # The running coordinator refuses the older file and keeps serving the newer one.
    write_public(config.registry, old.to_bytes())
    with cluster.admin() as admin:
        assert admin.status().registry_version == n + 1
    refused = f"REFUSED {config.registry}: registry version {n} is older than version {n + 1}"
    assert refused in cluster.procs.log_text("coordinator")
    # Restarted on it, the honest coordinator does not start.
    stop_coordinator(cluster)
    line = start_refused(cluster, "coordinator-restarted")
    assert f"{config.registry}: registry version {n} is older than version {n + 1} logged" in line

    with replaying_round(cluster, old, tmp_path / "hostile.sqlite") as hostile:
        restart_node(cluster, node)
        restart_node(cluster, removed)
        # The removed member still holds version n: the replayed round is one it joins.
        wait_until(
            "the removed member to join",
            lambda: (removed, wire.ADVERTISE_KEYS) in hostile.nodes.submitted,
        )
        wait_for_log(cluster, node, f"the round uses registry version {n}, this node holds {n + 1}")
        text = cluster.procs.log_text(node)
        assert f"REFUSED: registry version {n} is older than version {n + 1} accepted on " in text
        assert (node, n + 1) in hostile.nodes.subscribed  # it held its stored version at once
        # It takes no part: the only message it sends is its signed refusal, which says why.
        assert [t for m, t in hostile.nodes.submitted if m == node] == [wire.REFUSAL]


def test_a_replayed_policy_with_a_lower_witness_quorum_is_refused_live_and_after_a_restart(
    make_cluster: MakeCluster, tmp_path: Path
) -> None:
    names, node = NAMES[:3], NAMES[0]
    cluster = make_cluster(names)
    config = coordinator_config(cluster)
    governance = governance_key(cluster)
    lower, higher = (
        seal_policy(Policy(config.origin, version, "2026.1", "1", "year", (), quorum), governance)
        for version, quorum in ((1, 1), (2, 3))
    )
    write_public(config.policy, higher.to_bytes())
    assert run_round(cluster, names).type == wire.RESULT  # every node cosigned: quorum 3
    for name in names:
        wait_for_log(cluster, name, "policy version 2:")
    stop_coordinator(cluster)
    write_public(config.policy, lower.to_bytes())
    line = start_refused(cluster, "coordinator-restarted")
    assert f"{config.policy}: policy version 1 is older than version 2 logged" in line

    registry = Envelope.from_bytes(config.registry.read_bytes())
    tasks = [spb.Task(registry=registry.to_proto()), spb.Task(policy=lower.to_proto())]
    nodes = _ReplayingNodes(decode_registry(registry.body), tasks)
    log = copy_log(config, tmp_path / "hostile.sqlite", signing_key(config))
    refusal = "REFUSED: policy version 1 is older than version 2 accepted on "
    with HostileCoordinator(config, cluster.address, nodes, log):
        wait_for_log(cluster, node, refusal)  # the live node, reconnected to the hostile one
        restart_node(cluster, node)
        wait_until("the restarted node", lambda: [m for m, _ in nodes.subscribed].count(node) >= 2)
        wait_for_log(cluster, node, refusal)  # the restarted node's log begins afresh
        text = cluster.procs.log_text(node)
        assert text.index("policy version 2:") < text.index(refusal)  # held from its store
        assert "policy version 1:" not in text
