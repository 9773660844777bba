"""The coordinator's gRPC server: node and admin services over mutual TLS. Does I/O.

A caller's identity is the SHA-256 fingerprint of its client certificate, looked up in the
governance-signed registry: members may use NodeService, operators AdminService, and
nobody else gets past the first message. Each method declares who may call it with
``_status.served``, whose frame also maps every error to a status. Message sizes are bounded
by gRPC itself, which answers RESOURCE_EXHAUSTED. gRPC's standard health service is served
beside them to any holder of a federation certificate, and with ``[metrics]`` configured the
Prometheus metrics over HTTP (``coordinator.metrics``).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime

import grpc

from coordinator._status import Context, served
from coordinator._wire import add_services
from coordinator.journal import Journal
from coordinator.log_service import LogService
from coordinator.market import Market
from coordinator.metrics import CoordinatorMetrics, MeasuredLog, add_health
from coordinator.rounds import Hub, Rounds
from coordinator.schedule import Scheduler
from coordinator.signed import RegistryFile, logged_log_key, logged_versions, signed_files
from coordinator.store import Store
from edge.config import read_governance_key
from edge.files import read_private_key_file, read_public_file
from edge.observe import MetricsServer
from edge.transport import check_tls_files, expiry_warnings
from protos.scfed.v1 import service_pb2 as spb
from scfed import pki, wire
from scfed.config import CoordinatorConfig, TlsFiles
from scfed.errors import ConfigError, PermissionDeniedError, VerificationError
from scfed.wire.envelope import Envelope, EnvelopeMessage
from scfed.wire.messages import MAX_PARTICIPANTS, Operator
from scfed.wire.tasks import receipt_to_proto

log = logging.getLogger("scfed.coordinator")

#: What a member submits outside rounds: figures, pledges and crisis posts.
MARKET_TYPES = frozenset({wire.FIGURE, wire.PLEDGE, wire.POST})
# Each node holds one task stream and at most one submission at a time; operators a few calls.
MAX_CONCURRENT_RPCS = 2 * MAX_PARTICIPANTS + 16


def peer_fingerprint(context: grpc.aio.ServicerContext[object, object]) -> bytes:
    """The SHA-256 fingerprint of the caller's verified client certificate."""
    pem = next(iter(context.auth_context().get("x509_pem_cert", ())), None)
    if pem is None:
        raise PermissionDeniedError("no client certificate was presented")
    try:
        return pki.fingerprint_pem(pem)
    except VerificationError as exc:
        raise PermissionDeniedError(f"unreadable client certificate: {exc}") from exc


class Expiries:
    """Certificates that expire soon: the coordinator's own and the CA's (read when asked,
    so an installed renewal counts at once) and each member's, seen when it connects."""

    def __init__(self, tls: TlsFiles, metrics: CoordinatorMetrics) -> None:
        self._tls, self._metrics = tls, metrics
        self._members: dict[str, str] = {}

    def connected(self, member_id: str, context: grpc.aio.ServicerContext[object, object]) -> None:
        pem = next(iter(context.auth_context().get("x509_pem_cert", ())), b"")
        now = datetime.now(UTC)
        try:
            certificate = pki.load_certificate_pem(pem)
        except ConfigError:
            return  # the handshake verified it; gRPC gives it as PEM
        self._metrics.member_connected(member_id, certificate.not_valid_after_utc, now)
        warning = pki.expiry_warning(certificate, now, f"the certificate of member {member_id}")
        if warning is None:
            self._members.pop(member_id, None)
        else:
            self._members[member_id] = warning
            log.warning("%s", warning)

    def lines(self, connected: tuple[str, ...]) -> list[str]:
        members = [self._members[m] for m in connected if m in self._members]
        return [*expiry_warnings(self._tls, datetime.now(UTC)), *members]


class NodeService:
    """Task streams to nodes and the messages they submit."""

    def __init__(
        self, registry: RegistryFile, hub: Hub, rounds: Rounds, expiries: Expiries, *,
        metrics: CoordinatorMetrics, market: Market,
    ) -> None:  # fmt: skip
        self._registry, self._hub, self._rounds = registry, hub, rounds
        self._expiries, self._metrics, self._market = expiries, metrics, market

    def _member(self, context: Context) -> str:
        member = self._registry.registry().member_by_certificate(peer_fingerprint(context))
        if member is None:
            raise PermissionDeniedError("this certificate belongs to no registered member")
        return member.member_id

    @served(_member)
    async def Subscribe(  # noqa: N802 - gRPC method name
        self, request: spb.SubscribeRequest, context: Context, member_id: str
    ) -> AsyncGenerator[spb.Task, None]:
        self._expiries.connected(member_id, context)
        queue = self._rounds.connect(member_id, request.releases_from)
        self._metrics.connected(len(self._hub.connected))
        try:
            await context.send_initial_metadata(())  # the node knows it is in, task or not
            registry, signed = self._registry.load()
            if request.registry_version != registry.version:
                yield spb.Task(registry=signed.to_proto())
            policy = self._rounds.policy_task()
            if policy is not None:
                yield policy
            while (task := await queue.get()) is not None:
                yield task
        finally:
            self._hub.disconnect(member_id, queue)
            if member_id not in self._hub.connected:  # not replaced by a newer stream
                self._metrics.member_disconnected(member_id)
            self._metrics.connected(len(self._hub.connected))

    @served(_member)
    async def Submit(  # noqa: N802 - gRPC method name
        self, request: EnvelopeMessage, context: Context, member_id: str
    ) -> spb.Ack:
        envelope = Envelope.from_proto(request)
        if envelope.type in MARKET_TYPES:
            receipt = await self._market.submit(member_id, envelope)
        else:
            receipt = await self._rounds.submit(member_id, envelope)
        return spb.Ack(
            envelope_hash=envelope.digest(self._registry.registry().origin),
            receipt=receipt_to_proto(receipt),
        )

    @served(_member)
    async def Cosign(  # noqa: N802 - gRPC method name
        self, request: spb.Cosignature, context: Context, member_id: str
    ) -> spb.CosignAck:
        self._rounds.cosign(member_id, request)
        return spb.CosignAck()

    @served(_member)
    async def CrisisInbox(  # noqa: N802 - gRPC method name
        self, request: spb.CrisisInboxRequest, context: Context, member_id: str
    ) -> spb.CrisisInboxReply:
        return self._market.inbox(member_id)

    @served(_member)
    async def CrisisAnswer(  # noqa: N802 - gRPC method name
        self, request: spb.CrisisAnswerRequest, context: Context, member_id: str
    ) -> spb.Ack:
        receipt = self._market.answer(member_id, request)
        return spb.Ack(receipt=receipt_to_proto(receipt))

    def authorize_reader(self, context: Context) -> None:
        """Members and operators may read the protocol log; nobody else."""
        registry = self._registry.registry()
        fingerprint = peer_fingerprint(context)
        if registry.member_by_certificate(fingerprint) is None and (
            registry.operator_by_certificate(fingerprint) is None
        ):
            raise PermissionDeniedError("only members and operators may read the protocol log")


class AdminService:
    """Operator commands; callable only with an operator's certificate."""

    def __init__(
        self, registry: RegistryFile, hub: Hub, rounds: Rounds, expiries: Expiries,
        market: Market,
    ) -> None:  # fmt: skip
        self._registry, self._hub, self._rounds = registry, hub, rounds
        self._expiries, self._market = expiries, market

    def _operator(self, context: Context) -> Operator:
        fingerprint = peer_fingerprint(context)
        operator = self._registry.registry().operator_by_certificate(fingerprint)
        if operator is None:
            raise PermissionDeniedError("only an operator certificate may use the admin service")
        return operator

    @served(_operator)
    async def Status(  # noqa: N802 - gRPC method name
        self, request: spb.StatusRequest, context: Context, operator: Operator
    ) -> spb.CoordinatorStatus:
        phase = self._rounds.phase
        return spb.CoordinatorStatus(
            connected=self._hub.connected,
            phase=phase.value if phase else "",
            registry_version=self._registry.registry().version,
            expiring=self._expiries.lines(self._hub.connected),
            rounds=self._rounds.recent(),
        )

    @served(_operator)
    async def CrisisStatus(  # noqa: N802 - gRPC method name
        self, request: spb.StatusRequest, context: Context, operator: Operator
    ) -> spb.CrisisStatusReply:
        return spb.CrisisStatusReply(lines=self._market.status())

    @served(_operator)
    async def StartRound(  # noqa: N802 - gRPC method name
        self, request: spb.StartRoundRequest, context: Context, operator: Operator
    ) -> spb.RoundOutcome:
        log.info("operator %s starts a round of %s", operator.name, request.query)
        round_id, outcome = await self._rounds.run(request)
        return spb.RoundOutcome(round_id=round_id, outcome=outcome.to_proto())


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Channel arguments shared by the server: size bounds and keepalive."""
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.so_reuseport", 0),  # a second server on our port must fail, not share it
    ]


def _credentials(config: CoordinatorConfig) -> grpc.ServerCredentials:
    key = read_private_key_file(config.tls.key)
    return grpc.ssl_server_credentials(
        [(key, read_public_file(config.tls.certificate))],
        root_certificates=read_public_file(config.tls.ca),
        require_client_auth=True,
    )


def check_address_free(address: str) -> None:
    """Refuse an address this machine cannot listen on, in one line and before gRPC tries
    (which would only say that it failed)."""
    host, _, port = address.rpartition(":")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
        try:
            probe.bind((host.strip("[]"), int(port)))
        except OSError as exc:
            why = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise ConfigError(f"cannot listen on {address}: {why}") from exc


def _listen(server: grpc.aio.Server, address: str, config: CoordinatorConfig) -> int:
    check_address_free(address)
    try:
        return server.add_secure_port(address, _credentials(config))
    except RuntimeError as exc:
        raise ConfigError(f"cannot listen on {address}") from exc


async def serve(
    config: CoordinatorConfig, listen: str | None = None, ready: Callable[[int], None] | None = None
) -> None:
    """Serve until SIGTERM or SIGINT; ``ready`` is told the bound port once listening."""
    for warning in check_tls_files(config.tls, datetime.now(UTC)):
        log.warning("%s", warning)
    governance = read_governance_key(config.governance_key)
    signing_key = pki.load_ed25519_private_pem(read_private_key_file(config.signing_key))
    store = Store(config.database)
    metrics = CoordinatorMetrics.for_config(config)
    protocol_log = MeasuredLog(
        config.database, origin=config.origin, key=signing_key, check=False, metrics=metrics
    )
    floors = logged_versions(protocol_log, config.database)
    protocol_log.check_signer(previous=logged_log_key(floors))  # this key, or the one rotated
    own = pki.ed25519_public_raw(signing_key.public_key())
    registry, policy = signed_files(config, governance, floors, own)  # none older than logged
    journal = Journal(protocol_log)
    journal.record_once(registry.load()[1])  # a new log key is named before it signs anything
    hub = Hub()
    rounds = Rounds(
        registry.load,
        signing_key,
        store,
        hub,
        journal,
        phase_timeout_ms=config.phase_timeout_ms,
        max_cells=config.max_cells,
        budget=config.privacy.budget,
        policy=policy.load_if_present,
        metrics=metrics,
    )
    rounds.recover(config.origin, governance)  # before any node can connect
    market = Market.recovered(
        origin=config.origin, key=signing_key, store=store, journal=journal,
        registry=registry.load, policy=policy.load_if_present, metrics=metrics,
    )  # fmt: skip
    server = grpc.aio.server(
        options=server_options(config.max_message_bytes),
        maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
    )
    expiries = Expiries(config.tls, metrics)
    node_service = NodeService(registry, hub, rounds, expiries, metrics=metrics, market=market)
    add_services(server, {
        "NodeService": node_service,
        "LogService": LogService(protocol_log, node_service.authorize_reader),
        "AdminService": AdminService(registry, hub, rounds, expiries, market),
    })  # fmt: skip
    health = add_health(server)
    address = listen or config.listen
    port = _listen(server, address, config)
    exposed = (
        MetricsServer(config.metrics_listen, metrics.registry) if config.metrics_listen else None
    )
    await server.start()
    if exposed is not None:
        exposed.start()
    log.info("coordinator of %s listening on %s (port %d)", config.origin, address, port)
    if ready is not None:
        ready(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    scheduled = None
    if config.schedule.enabled:
        scheduler = Scheduler(
            rounds, store, policy.load_if_present, settings=config.schedule,
            connected=lambda: len(hub.connected),
        )  # fmt: skip
        scheduled = asyncio.create_task(scheduler.run(stop))
        log.info("the schedule is on: catalogue entries run by themselves")
    await stop.wait()
    log.info("stopping")
    if scheduled is not None:
        await asyncio.wait([scheduled], timeout=5)
    health.stopping()
    hub.close()  # the task streams end before the server does, instead of being cancelled
    await server.stop(grace=1.0)
    if exposed is not None:
        exposed.close()
    store.close()
    protocol_log.close()
