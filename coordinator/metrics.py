"""What the coordinator shows of itself: its Prometheus metrics and the standard gRPC health
service. Does I/O only through what it wraps (the protocol log) and ``edge.observe``.

``CoordinatorMetrics`` is the one object the daemon's code tells what happened: a round's
outcome and the time each phase took, the nodes connected, a refusal and its reason, each
commit to the protocol log. It holds a registry of its own, which ``edge.observe`` serves.

The health service is gRPC's standard one, ``grpc.health.v1.Health`` with the messages and
registration of ``grpc_health.v1``, on the same server and so behind the same mutual TLS: any
client whose certificate the federation CA issued may call it, with no registry lookup, since
it tells nothing about rounds. The servicer is ours, not the package's asyncio one, which has
no type information and serves ``Watch``: here ``Watch`` is refused with UNIMPLEMENTED (which
the health protocol tells clients not to retry), since each open watch would hold one of the
concurrent calls the server bounds for its nodes.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from coordinator.log import Committed, ProtocolLog
from edge.observe import daemon_registry, seconds_left
from protos.scfed.v1 import service_pb2 as spb
from scfed import wire
from scfed.config import CoordinatorConfig
from scfed.errors import LocalProtocolError
from scfed.secagg import Phase

#: A refusal reason: a short code, so that the label's values stay few and stable.
REASON = re.compile(r"[a-z][a-z0-9_-]{0,31}")
#: Phases last from milliseconds to the phase timeout (at most minutes).
PHASE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
#: A commit is one fsync and a signature: milliseconds, unless the disk stalls.
APPEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
#: What the health service reports on: the server as a whole, and the nodes' service.
HEALTH_SERVICES = ("", spb.DESCRIPTOR.services_by_name["NodeService"].full_name)
SERVING: int = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: int = health_pb2.HealthCheckResponse.NOT_SERVING


class CoordinatorMetrics:
    """The coordinator's counters, gauges and histograms, in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._rounds = Counter(
            "scfed_rounds", "Rounds run to their end, by outcome", ["outcome"],
            registry=self.registry,
        )  # fmt: skip
        self._phases = Histogram(
            "scfed_round_phase_seconds", "Time a round spent in each phase", ["phase"],
            buckets=PHASE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self._connected = Gauge(
            "scfed_nodes_connected", "Nodes holding a task stream", registry=self.registry
        )
        self._refusals = Counter(
            "scfed_refusals", "Requests or rounds refused, by reason", ["reason"],
            registry=self.registry,
        )  # fmt: skip
        self._log_size = Gauge(
            "scfed_log_size_leaves", "Leaves in the protocol log", registry=self.registry
        )
        self._outside = Counter(
            "scfed_logged_outside_rounds",
            "Attestation and crisis-mode messages logged, by type", ["type"],
            registry=self.registry,
        )  # fmt: skip
        self._append = Histogram(
            "scfed_log_append_seconds", "Time to commit a batch to the protocol log",
            buckets=APPEND_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self._members = Gauge(
            "scfed_member_certificate_expiry_seconds",
            "Seconds until a connected member's TLS certificate expires", ["member"],
            registry=self.registry,
        )  # fmt: skip
        for outcome in ("result", "abort"):
            self._rounds.labels(outcome)  # both show from the start, at 0
        for kind in (*wire.ATTEST_TYPES, *wire.CRISIS_TYPES):
            self._outside.labels(kind)

    @classmethod
    def for_config(cls, config: CoordinatorConfig) -> CoordinatorMetrics:
        """Metrics that also show the federation ledger and the certificate expiries."""
        return cls(daemon_registry(config.database, config.privacy.budget, config.tls))

    def round_finished(self, outcome_type: str) -> None:
        """A round ended with a signed result or abort (``wire.RESULT``, ``wire.ABORT``)."""
        self._rounds.labels("result" if outcome_type == wire.RESULT else "abort").inc()

    def phases(self) -> PhaseTimer:
        """A timer for one round's phases."""
        return PhaseTimer(self._phases)

    def connected(self, count: int) -> None:
        self._connected.set(count)

    def refused(self, reason: str) -> None:
        """Count a refusal; ``reason`` is a short code such as ``budget`` or ``not_member``
        (lowercase letters, digits, ``_`` and ``-``, at most 32; the nodes' refusal codes
        are scfed.wire.messages.REFUSAL_CODES), never a peer's text."""
        if not REASON.fullmatch(reason):
            raise LocalProtocolError(f"refusal reason {reason[:40]!r} is not a short code")
        self._refusals.labels(reason).inc()

    def logged_outside_rounds(self, kind: str) -> None:
        """A figure, pledge, listing, proposal, answer or reveal was logged (its type)."""
        self._outside.labels(kind).inc()

    def appended(self, size: int, seconds: float) -> None:
        """A commit took ``seconds``; the log now holds ``size`` leaves."""
        self._append.observe(seconds)
        self._log_size.set(size)

    def log_size(self, size: int) -> None:
        self._log_size.set(size)

    def member_connected(self, member_id: str, expires: datetime, now: datetime) -> None:
        self._members.labels(member_id).set(seconds_left(expires, now))

    def member_disconnected(self, member_id: str) -> None:
        with contextlib.suppress(KeyError):  # its certificate could not be read at connect
            self._members.remove(member_id)


class PhaseTimer:
    """Observes how long a round stayed in each phase it left, told the phase as it goes."""

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._phase: Phase | None = None
        self._since = time.monotonic()

    def at(self, phase: Phase) -> None:
        """The round is in ``phase`` now; if it moved on, time the phase it left."""
        if phase is self._phase:
            return
        now = time.monotonic()
        if self._phase is not None:
            self._histogram.labels(self._phase.value).observe(now - self._since)
        self._phase, self._since = phase, now


class MeasuredLog(ProtocolLog):
    """The protocol log, timing each commit and keeping the size gauge current."""

    def __init__(
        self, path: Path, *, origin: str, key: Ed25519PrivateKey, check: bool,
        metrics: CoordinatorMetrics,
    ) -> None:  # fmt: skip
        super().__init__(path, origin=origin, key=key, check=check)
        self._metrics = metrics
        metrics.log_size(self.size)

    def commit(self, datas: Sequence[bytes]) -> Committed:
        began = time.monotonic()
        committed = super().commit(datas)
        self._metrics.appended(committed.size, time.monotonic() - began)
        return committed

    def append_many(self, datas: Iterable[bytes]) -> list[int]:
        began = time.monotonic()
        indices = super().append_many(datas)
        if indices:
            self._metrics.appended(indices[-1] + 1, time.monotonic() - began)
        return indices


class FederationHealth:
    """The standard health service (``grpc.health.v1.Health``) for the coordinator's
    services; see the module notes. Runs on the server's event loop."""

    def __init__(self) -> None:
        self._status: dict[str, int] = dict.fromkeys(HEALTH_SERVICES, SERVING)

    async def Check(  # noqa: N802 - gRPC method name
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no service {request.service:.80}")
        return health_pb2.HealthCheckResponse(status=status)

    async def List(  # noqa: N802 - gRPC method name
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        statuses = {
            name: health_pb2.HealthCheckResponse(status=status)
            for name, status in self._status.items()
        }
        return health_pb2.HealthListResponse(statuses=statuses)

    async def Watch(  # noqa: N802 - gRPC method name
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "Watch is not served: a stream would hold a call the nodes need; use Check",
        )

    def stopping(self) -> None:
        """Every service NOT_SERVING from now on: the server is shutting down."""
        self._status = dict.fromkeys(self._status, NOT_SERVING)


def add_health(server: grpc.aio.Server) -> FederationHealth:
    """The health service on ``server``, every service SERVING until ``stopping``."""
    servicer = FederationHealth()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer
