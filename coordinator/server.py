"""The coordinator's gRPC server: node and admin services over mutual TLS. Does I/O.

A caller's identity is the SHA-256 fingerprint of its client certificate, looked up in the
governance-signed registry: members may use NodeService, operators AdminService, and
nobody else gets past the first message. Message sizes are bounded by gRPC itself, which
answers RESOURCE_EXHAUSTED; every other error is mapped to a status in ``_status``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Generic, TypeVar

import grpc

from coordinator._status import fail
from coordinator.journal import Journal
from coordinator.log import ProtocolLog
from coordinator.log_service import LogService
from coordinator.rounds import Hub, Rounds
from coordinator.store import Store
from protos.scfed.v1 import messages_pb2 as pb
from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1 import service_pb2_grpc as rpc
from scfed import pki
from scfed.config import (
    CoordinatorConfig,
    read_governance_key,
    read_policy_file,
    read_private_key_file,
    read_registry_file,
)
from scfed.envelope import Envelope
from scfed.errors import PermissionDeniedError, ScfedError, VerificationError
from scfed.messages import MAX_PARTICIPANTS, Operator, Registry
from scfed.tasks import receipt_to_proto

log = logging.getLogger("scfed.coordinator")
_T = TypeVar("_T")

# Each node holds one task stream and at most one submission at a time; operators a few calls.
MAX_CONCURRENT_RPCS = 2 * MAX_PARTICIPANTS + 16


class SignedFile(Generic[_T]):
    """A governance-signed file on disk, verified on load and re-read when it changes."""

    def __init__(self, path: Path, read: Callable[[Path], tuple[_T, Envelope]]) -> None:
        self._path, self._read = path, read
        self._stamp: tuple[int, int] | None = None
        self._loaded: tuple[_T, Envelope] | None = None

    def load(self) -> tuple[_T, Envelope]:
        stat = self._path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if self._loaded is None or stamp != self._stamp:
            self._loaded = self._read(self._path)
            self._stamp = stamp
        return self._loaded

    def load_if_present(self) -> tuple[_T, Envelope] | None:
        """As ``load``, or None while the file does not exist (a federation without one)."""
        return self.load() if self._path.exists() else None


class RegistryFile(SignedFile[Registry]):
    """The signed member registry, which a coordinator cannot run without."""

    def __init__(self, path: Path, origin: str, governance_key: bytes) -> None:
        super().__init__(path, lambda p: read_registry_file(p, origin, governance_key))

    def registry(self) -> Registry:
        return self.load()[0]


def peer_fingerprint(context: grpc.aio.ServicerContext[object, object]) -> bytes:
    """The SHA-256 fingerprint of the caller's verified client certificate."""
    pem = next(iter(context.auth_context().get("x509_pem_cert", ())), None)
    if pem is None:
        raise PermissionDeniedError("no client certificate was presented")
    try:
        return pki.fingerprint_pem(pem)
    except VerificationError as exc:
        raise PermissionDeniedError(f"unreadable client certificate: {exc}") from exc


class NodeService(rpc.NodeServiceServicer):
    """Task streams to nodes and the messages they submit."""

    def __init__(self, registry: RegistryFile, hub: Hub, rounds: Rounds) -> None:
        self._registry, self._hub, self._rounds = registry, hub, rounds

    def _member(self, context: grpc.aio.ServicerContext[object, object]) -> str:
        member = self._registry.registry().member_by_certificate(peer_fingerprint(context))
        if member is None:
            raise PermissionDeniedError("this certificate belongs to no registered member")
        return member.member_id

    async def Subscribe(  # noqa: N802 - gRPC method name
        self, request: spb.SubscribeRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[spb.Task]:
        try:
            member_id = self._member(context)
        except ScfedError as exc:
            await fail(context, exc)
        queue = self._hub.connect(member_id)
        try:
            registry, signed = self._registry.load()
            if request.registry_version != registry.version:
                yield spb.Task(registry=signed.to_proto())
            while (task := await queue.get()) is not None:
                yield task
        finally:
            self._hub.disconnect(member_id, queue)

    async def Submit(  # noqa: N802 - gRPC method name
        self, request: pb.Envelope, context: grpc.aio.ServicerContext[object, object]
    ) -> spb.Ack:
        try:
            member_id = self._member(context)
            envelope = Envelope.from_proto(request)
            receipt = self._rounds.submit(member_id, envelope)
            return spb.Ack(
                envelope_hash=envelope.digest(self._registry.registry().origin),
                receipt=receipt_to_proto(receipt),
            )
        except ScfedError as exc:
            await fail(context, exc)

    async def Cosign(  # noqa: N802 - gRPC method name
        self, request: spb.Cosignature, context: grpc.aio.ServicerContext[object, object]
    ) -> spb.CosignAck:
        try:
            self._rounds.cosign(self._member(context), request)
            return spb.CosignAck()
        except ScfedError as exc:
            await fail(context, exc)

    def authorize_reader(self, context: grpc.aio.ServicerContext[object, object]) -> None:
        """Members and operators may read the protocol log; nobody else."""
        registry = self._registry.registry()
        fingerprint = peer_fingerprint(context)
        if registry.member_by_certificate(fingerprint) is None and (
            registry.operator_by_certificate(fingerprint) is None
        ):
            raise PermissionDeniedError("only members and operators may read the protocol log")


class AdminService(rpc.AdminServiceServicer):
    """Operator commands; callable only with an operator's certificate."""

    def __init__(self, registry: RegistryFile, hub: Hub, rounds: Rounds) -> None:
        self._registry, self._hub, self._rounds = registry, hub, rounds

    def _operator(self, context: grpc.aio.ServicerContext[object, object]) -> Operator:
        fingerprint = peer_fingerprint(context)
        operator = self._registry.registry().operator_by_certificate(fingerprint)
        if operator is None:
            raise PermissionDeniedError("only an operator certificate may use the admin service")
        return operator

    async def Status(  # noqa: N802 - gRPC method name
        self, request: spb.StatusRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> spb.CoordinatorStatus:
        try:
            self._operator(context)
            phase = self._rounds.phase
            return spb.CoordinatorStatus(
                connected=self._hub.connected,
                phase=phase.value if phase else "",
                registry_version=self._registry.registry().version,
            )
        except ScfedError as exc:
            await fail(context, exc)

    async def StartRound(  # noqa: N802 - gRPC method name
        self, request: spb.StartRoundRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> spb.RoundOutcome:
        try:
            operator = self._operator(context)
            log.info("operator %s starts a round of %s", operator.name, request.query)
            round_id, outcome = await self._rounds.run(request)
            return spb.RoundOutcome(round_id=round_id, outcome=outcome.to_proto())
        except ScfedError as exc:
            await fail(context, exc)


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Channel arguments shared by the server: size bounds and keepalive."""
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


def _credentials(config: CoordinatorConfig) -> grpc.ServerCredentials:
    key = read_private_key_file(config.tls.key)
    return grpc.ssl_server_credentials(
        [(key, config.tls.certificate.read_bytes())],
        root_certificates=config.tls.ca.read_bytes(),
        require_client_auth=True,
    )


async def serve(
    config: CoordinatorConfig, listen: str | None = None, ready: Callable[[int], None] | None = None
) -> None:
    """Serve until SIGTERM or SIGINT; ``ready`` is told the bound port once listening."""
    governance = read_governance_key(config.governance_key)
    registry = RegistryFile(config.registry, config.origin, governance)
    registry.load()
    signing_key = pki.load_ed25519_private_pem(read_private_key_file(config.signing_key))
    store = Store(config.database)
    protocol_log = ProtocolLog(config.database, origin=config.origin, key=signing_key)
    hub = Hub()
    rounds = Rounds(
        registry.load,
        signing_key,
        store,
        hub,
        Journal(protocol_log),
        phase_timeout_ms=config.phase_timeout_ms,
        max_cells=config.max_cells,
        budget=config.privacy.budget,
        policy=SignedFile(
            config.policy, lambda p: read_policy_file(p, config.origin, governance)
        ).load_if_present,
    )
    server = grpc.aio.server(
        options=server_options(config.max_message_bytes),
        maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
    )
    node_service = NodeService(registry, hub, rounds)
    rpc.add_NodeServiceServicer_to_server(node_service, server)
    rpc.add_LogServiceServicer_to_server(
        LogService(protocol_log, node_service.authorize_reader), server
    )
    rpc.add_AdminServiceServicer_to_server(AdminService(registry, hub, rounds), server)
    address = listen or config.listen
    port = server.add_secure_port(address, _credentials(config))
    await server.start()
    log.info("coordinator of %s listening on %s (port %d)", config.origin, address, port)
    if ready is not None:
        ready(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    await server.stop(grace=1.0)
    store.close()
    protocol_log.close()
