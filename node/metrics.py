"""What the node shows of itself: its Prometheus metrics and its health document. No I/O of
its own: ``edge.observe`` serves both, on a loopback address only (``scfed.config``).

The daemon's worker thread tells ``NodeMetrics`` what happens (connected, a task, a round
joined or finished, a refusal, a release kept); the serving threads read it, so the health
state sits behind a lock. A refusal is counted under a short reason code taken from the
kind of error, never from its text.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus

from prometheus_client import CollectorRegistry, Counter, Gauge

from edge.observe import daemon_registry
from scfed import wire
from scfed.config import NodeConfig
from scfed.errors import (
    ScfedError,
)
from scfed.secagg.refusals import refusal_code

#: A receipt for one of our own messages that does not prove it was logged as sent.
RECEIPT = "log"


def reason_of(error: ScfedError) -> str:
    """The code a refusal with ``error`` is counted under: the one the node tells the
    coordinator (scfed.wire.messages.REFUSAL_CODES)."""
    return refusal_code(error)


class NodeMetrics:
    """The node's metrics, in a registry of its own, and the state ``/healthz`` tells."""

    def __init__(self, registry: CollectorRegistry | None = None, coordinator: str = "") -> None:
        self.registry = registry or CollectorRegistry()
        self._coordinator = coordinator
        self._lock = threading.Lock()
        self._is_connected = False
        self._versions = {"registry": 0, "policy": 0}
        self._last_task: datetime | None = None
        self._connected = Gauge(
            "scfed_node_connected", "1 while the task stream to the coordinator is open",
            registry=self.registry,
        )  # fmt: skip
        self._joined = Counter(
            "scfed_node_rounds_joined", "Rounds this node joined", registry=self.registry
        )
        self._completed = Counter(
            "scfed_node_rounds_completed", "Rounds this node saw end, by outcome", ["outcome"],
            registry=self.registry,
        )  # fmt: skip
        self._refused = Counter(
            "scfed_node_refusals", "Rounds or tasks this node refused, by reason", ["reason"],
            registry=self.registry,
        )  # fmt: skip
        self._releases = Counter(
            "scfed_node_releases_kept", "Releases kept for this member", registry=self.registry
        )
        self._alerts = Counter(
            "scfed_node_alerts", "Alerts the kept releases raised", registry=self.registry
        )
        for outcome in ("result", "abort"):
            self._completed.labels(outcome)

    @classmethod
    def for_config(cls, config: NodeConfig, coordinator: str) -> NodeMetrics:
        """Metrics that also show the node's ledger and its certificates' expiry."""
        registry = daemon_registry(config.database, config.privacy.budget, config.tls)
        return cls(registry, coordinator)

    def connected(self, up: bool) -> None:
        with self._lock:
            self._is_connected = up
        self._connected.set(1 if up else 0)

    def task(self, at: datetime) -> None:
        with self._lock:
            self._last_task = at

    def registry_version(self, version: int) -> None:
        """The version of the signed registry the node holds now."""
        with self._lock:
            self._versions["registry"] = version

    def policy_version(self, version: int) -> None:
        """The version of the signed policy the node holds now."""
        with self._lock:
            self._versions["policy"] = version

    def joined(self) -> None:
        self._joined.inc()

    def completed(self, outcome_type: str) -> None:
        self._completed.labels("result" if outcome_type == wire.RESULT else "abort").inc()

    def refused(self, reason: str) -> None:
        """Count a refusal under its code (scfed.wire.messages.REFUSAL_CODES)."""
        self._refused.labels(reason).inc()

    def release_kept(self, alerts: int) -> None:
        self._releases.inc()
        self._alerts.inc(alerts)

    def health(self) -> tuple[int, Mapping[str, object]]:
        """The ``/healthz`` answer: 200 while connected, else 503, and the state as JSON."""
        with self._lock:
            last = self._last_task
            document: dict[str, object] = {
                "connected": self._is_connected,
                "coordinator": self._coordinator,
                "registry_version": self._versions["registry"],
                "policy_version": self._versions["policy"],
                "last_task_at": None if last is None else last.astimezone(UTC).isoformat(),
            }
            up = self._is_connected
        return (HTTPStatus.OK if up else HTTPStatus.SERVICE_UNAVAILABLE), document
