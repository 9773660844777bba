"""What a daemon shows of itself over HTTP: its Prometheus metrics at ``/metrics`` and, for
the node, a health document at ``/healthz``. Edge code: opens a listening socket, served by
waitress on threads of its own, and reads the daemon's ledger (read-only) and its
certificate files each time it is scraped.

Each daemon keeps its metrics in a ``CollectorRegistry`` of its own, never the client
library's global one, so nothing another library registers is served, and tests can hold
two daemons' metrics in one process. Values that live in files are read when scraped
(``LedgerCollector``, ``CertificateCollector``), so a renewed certificate or a new budget
period shows at once; a file that cannot be read leaves its metric out and is logged.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from fractions import Fraction
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, cast

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from waitress import trigger as waitress_trigger
from waitress.server import TcpWSGIServer, create_server

from edge.files import read_public_file
from edge.storage import read_charges
from scfed import pki
from scfed.config import TlsFiles
from scfed.dp.ledger import Budget, period_label
from scfed.errors import ConfigError, ScfedError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("scfed.metrics")

#: Scrapes served at once: each is a few small reads.
THREADS = 2
#: A JSON route: the HTTP status and the document to answer with.
Route = Callable[[], tuple[int, Mapping[str, object]]]


class MetricsServer:
    """``/metrics`` of ``registry`` and the JSON ``routes`` on ``listen``, until closed."""

    def __init__(
        self, listen: str, registry: CollectorRegistry, routes: Mapping[str, Route] | None = None
    ) -> None:
        host, _, port = listen.rpartition(":")
        host = host.strip("[]")
        app = _dispatcher(registry, dict(routes or {}))
        try:
            server = create_server(app, host=host, port=int(port), threads=THREADS, ident="scfed")
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise ConfigError(f"cannot serve metrics on {listen}: {why}") from None
        if not isinstance(server, TcpWSGIServer):  # a name of several addresses: several sockets
            server.close()
            raise ConfigError(f"cannot serve metrics on {listen}: give one address, not a name")
        self._server = server
        self._thread = threading.Thread(target=server.run, name="scfed-metrics", daemon=True)

    @property
    def url(self) -> str:
        """Where the metrics are, with the port bound (``listen`` may have asked for 0)."""
        host, port = self._server.getsockname()
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/metrics"

    def start(self) -> None:
        self._thread.start()
        log.info("metrics on %s", self.url)

    def close(self) -> None:
        """Stop listening and let the serving threads go."""
        stop_serving(self._server, self._thread)


def stop_serving(server: TcpWSGIServer, thread: threading.Thread) -> None:
    """Stop a waitress server that ``thread`` runs (``server.run``), and its answering threads.

    The server's own loop closes its socket, woken by its trigger: closed from another
    thread while the loop waits on it in ``select``, the loop fails on a closed descriptor.
    """
    if thread.is_alive():

        def close(_: None = None) -> None:  # run with no argument; the stubs give it one
            server.close()

        # The stubs give the trigger as an int (its descriptor); it is waitress's trigger.
        cast("waitress_trigger.trigger", server.trigger).pull_trigger(close)
        thread.join(timeout=5)
    else:
        server.close()
    server.task_dispatcher.shutdown()


def _dispatcher(registry: CollectorRegistry, routes: dict[str, Route]) -> WSGIApplication:
    metrics = cast("WSGIApplication", make_wsgi_app(registry))

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if method not in ("GET", "HEAD"):
            return _answer(start_response, HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use GET"})
        if path == "/metrics":
            return metrics(environ, start_response)
        route = routes.get(path)
        if route is None:
            known = ", ".join(["/metrics", *routes])
            return _answer(start_response, HTTPStatus.NOT_FOUND, {"error": f"try {known}"})
        status, document = route()
        return _answer(start_response, HTTPStatus(status), document)

    return app


def _answer(
    start_response: StartResponse, status: HTTPStatus, document: Mapping[str, object]
) -> list[bytes]:
    body = json.dumps(document, sort_keys=True).encode() + b"\n"
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response(f"{status.value} {status.phrase}", headers)
    return [body]


class LedgerCollector(Collector):
    """``scfed_budget_spent_rho`` and ``scfed_budget_left_rho`` per period, from the ledger
    in ``database``: every period charged and the current one, which is never missing."""

    def __init__(self, database: Path, budget: Budget, now: Callable[[], datetime]) -> None:
        self._database, self._budget, self._now = database, budget, now

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        spent, left = self._families()
        current = period_label(self._budget.period, self._now().date())
        try:
            charges = read_charges(self._database)
        except ScfedError as exc:
            log.warning("metrics: cannot read the ledger: %s", exc)
            return
        periods: dict[str, Fraction] = {current: Fraction(0)}
        for charge in charges:
            periods[charge.period] = periods.get(charge.period, Fraction(0)) + charge.rho
        for period, rho in sorted(periods.items()):
            spent.add_metric([period], float(rho))
            left.add_metric([period], float(max(self._budget.cap - rho, Fraction(0))))
        yield spent
        yield left

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "scfed_budget_spent_rho", "Privacy budget (zCDP rho) spent, per period",
                labels=["period"],
            ),
            GaugeMetricFamily(
                "scfed_budget_left_rho", "Privacy budget (zCDP rho) left under the cap, per period",
                labels=["period"],
            ),
        )  # fmt: skip


class CertificateCollector(Collector):
    """``scfed_certificate_expiry_seconds``: seconds until the daemon's own TLS certificate
    (``certificate="own"``) and the federation CA's (``"ca"``) expire, negative once expired."""

    def __init__(self, tls: TlsFiles, now: Callable[[], datetime]) -> None:
        self._files = {"own": tls.certificate, "ca": tls.ca}
        self._now = now

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for name, path in self._files.items():
            try:
                certificate = pki.load_certificate_pem(read_public_file(path))
            except ConfigError as exc:
                log.warning("metrics: cannot read certificate %s: %s", path, exc)
                continue
            family.add_metric([name], seconds_left(certificate.not_valid_after_utc, self._now()))
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "scfed_certificate_expiry_seconds",
            "Seconds until the TLS certificate expires (negative: expired)",
            labels=["certificate"],
        )


def seconds_left(expires: datetime, now: datetime) -> float:
    """Seconds from ``now`` until ``expires`` (both aware), negative once it is past."""
    return (expires - now.astimezone(UTC)).total_seconds()


def daemon_registry(database: Path, budget: Budget, tls: TlsFiles) -> CollectorRegistry:
    """A fresh registry holding what every daemon shows: its ledger and its certificates."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(LedgerCollector(database, budget, _now))
    registry.register(CertificateCollector(tls, _now))
    return registry


def _now() -> datetime:
    return datetime.now(UTC)
