"""Seeing the daemons, without a socket: the ``[metrics]`` table, ``--version``, the logging
options of every command and their JSON lines, the metrics both daemons keep, the node's
health document, and the WSGI app that serves them."""

from __future__ import annotations

import importlib.metadata
import io
import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from coordinator.metrics import CoordinatorMetrics
from edge.observe import LedgerCollector, _dispatcher, seconds_left
from edge.storage import LEDGER_SCHEMA, insert_charge, open_database, transaction
from node.metrics import NodeMetrics, reason_of
from scfed import config, wire
from scfed.cli import JsonFormatter, main
from scfed.dp.ledger import Budget, Charge
from scfed.errors import (
    ConfigError,
    ImportRowError,
    LocalProtocolError,
    MessageError,
    PrivacyBudgetError,
    RefusedError,
    ScfedError,
)
from scfed.secagg import Phase
from tests.unit._support import NODE_TOML as NODE

COORDINATOR = """\
origin = "scfed.example/fab"
server_name = "coordinator.fab.scfed"

[keys]
tls_certificate = "tls.pem"
tls_key = "tls.key"
ca_certificate = "ca.pem"
signing_key = "signing.key"
governance_key = "governance.pub"
registry = "registry.signed"
"""

PATH = Path("/etc/scfed/config.toml")


def _node(metrics: str) -> config.NodeConfig:
    return config.parse_node_config(PATH, (NODE + metrics).encode())


def _coordinator(metrics: str) -> config.CoordinatorConfig:
    return config.parse_coordinator_config(PATH, (COORDINATOR + metrics).encode())


# ---- [metrics] ----


def test_without_a_metrics_table_no_daemon_serves_metrics() -> None:
    assert _node("").metrics_listen == ""
    assert _coordinator("").metrics_listen == ""


@pytest.mark.parametrize("listen", ["127.0.0.1:9464", "127.0.0.2:0", "[::1]:9464", "localhost:1"])
def test_a_node_serves_metrics_on_a_loopback_address(listen: str) -> None:
    assert _node(f'[metrics]\nlisten = "{listen}"\n').metrics_listen == listen


@pytest.mark.parametrize("listen", ["0.0.0.0:9464", "10.1.2.3:9464", "[::]:9464", "node.fab:9464"])
def test_a_node_refuses_to_serve_metrics_beyond_its_machine(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"config\.toml: metrics\.listen: .*not a loopback"):
        _node(f'[metrics]\nlisten = "{listen}"\n')


@pytest.mark.parametrize("listen", ["0.0.0.0:9464", "[::]:9464", "metrics.fab:9464"])
def test_the_coordinator_serves_metrics_where_its_operator_says(listen: str) -> None:
    assert _coordinator(f'[metrics]\nlisten = "{listen}"\n').metrics_listen == listen


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('listen = "9464"', "invalid address"),
        ('listen = "127.0.0.1:65536"', "invalid port"),
        ('listen = "127.0.0.1:http"', "invalid port"),
        ('listen = ""', "invalid address"),
        ("listen = 9464", "must be a string"),
        ('port = "9464"', "unknown key"),
    ],
)
def test_a_bad_metrics_table_is_refused_with_its_key(table: str, problem: str) -> None:
    for parse in (_node, _coordinator):
        with pytest.raises(ConfigError, match=rf"config\.toml: metrics\.\w+: .*{problem}"):
            parse(f"[metrics]\n{table}\n")


# ---- the command line ----


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"scfed {importlib.metadata.version('scfed')}\n"


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("before", [True, False])
def test_log_options_work_before_and_after_the_subcommand(
    before: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ["--log-level", "debug", "--log-format", "json"]
    command = ["node", "ledger", "--config", str(tmp_path / "missing.toml")]
    assert main(options + command if before else command + options) == 1
    records = _json_lines(capsys.readouterr().err)
    assert [(r["level"], r["logger"]) for r in records] == [("DEBUG", "scfed"), ("ERROR", "scfed")]
    assert records[0]["message"].startswith("scfed ")
    assert records[1]["message"].startswith("scfed: error: ")
    assert "missing.toml: cannot read configuration" in records[1]["message"]
    for record in records:
        assert datetime.fromisoformat(record["time"]).utcoffset() == timedelta(0)


def test_the_last_log_option_given_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    command = ["node", "ledger", "--config", str(tmp_path / "missing.toml")]
    assert main(["--log-level", "debug", *command, "--log-level", "info"]) == 1
    error = capsys.readouterr().err
    missing = f"{tmp_path}/missing.toml: cannot read configuration: No such file or directory"
    assert error.splitlines() == [f"scfed: error: {missing}"]


def test_debug_after_the_subcommand_shows_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration"):
        main(["node", "ledger", "--config", str(tmp_path / "missing.toml"), "--debug"])


def test_an_unknown_log_level_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["node", "ledger", "--config", "x.toml", "--log-level", "loud"])
    assert done.value.code == 2
    assert "invalid choice: 'loud'" in capsys.readouterr().err


def _formatted(record: logging.LogRecord) -> dict[str, Any]:
    line = JsonFormatter().format(record)
    assert "\n" not in line
    document: dict[str, Any] = json.loads(line)
    return document


def test_a_json_record_carries_its_extra_fields_and_its_exception() -> None:
    logger = logging.getLogger("scfed.test")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logger.makeRecord(
            "scfed.test", logging.WARNING, __file__, 1, "round %s: %s", ("ab12", "late"),
            exc_info=sys.exc_info(),
            extra={"round_id": "ab12", "cells": 36, "at": date(2026, 1, 5)},
        )  # fmt: skip
    document = _formatted(record)
    assert document["level"] == "WARNING"
    assert document["logger"] == "scfed.test"
    assert document["message"] == "round ab12: late"
    assert (document["round_id"], document["cells"], document["at"]) == ("ab12", 36, "2026-01-05")
    assert "ValueError: boom" in document["exception"]
    assert set(document) == {"time", "level", "logger", "message", "round_id", "cells", "at",
                             "exception"}  # fmt: skip


# ---- the coordinator's metrics ----


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_the_coordinator_counts_rounds_refusals_and_the_log() -> None:
    metrics = CoordinatorMetrics()
    assert _value(metrics.registry, "scfed_rounds_total", outcome="abort") == 0
    metrics.round_finished(wire.RESULT)
    metrics.round_finished(wire.ABORT)
    metrics.round_finished(wire.RESULT)
    metrics.refused("budget")
    metrics.refused("not_member")
    metrics.refused("budget")
    metrics.connected(3)
    metrics.appended(17, 0.004)
    metrics.appended(19, 0.2)
    registry = metrics.registry
    assert _value(registry, "scfed_rounds_total", outcome="result") == 2
    assert _value(registry, "scfed_rounds_total", outcome="abort") == 1
    assert _value(registry, "scfed_refusals_total", reason="budget") == 2
    assert _value(registry, "scfed_refusals_total", reason="not_member") == 1
    assert _value(registry, "scfed_nodes_connected") == 3
    assert _value(registry, "scfed_log_size_leaves") == 19
    assert _value(registry, "scfed_log_append_seconds_count") == 2
    assert _value(registry, "scfed_log_append_seconds_bucket", le="0.005") == 1


@pytest.mark.parametrize("reason", ["", "Budget", "past the cap", "x" * 33, "1st", "a.b"])
def test_a_refusal_reason_must_be_a_short_code(reason: str) -> None:
    with pytest.raises(LocalProtocolError, match="not a short code"):
        CoordinatorMetrics().refused(reason)


def test_each_phase_a_round_left_is_timed_once() -> None:
    metrics = CoordinatorMetrics()
    timer = metrics.phases()
    for phase in (Phase.ADVERTISING, Phase.ADVERTISING, Phase.SHARING, Phase.SHARING):
        timer.at(phase)
    timer.at(Phase.FINISHED)
    registry = metrics.registry
    assert _value(registry, "scfed_round_phase_seconds_count", phase="advertising") == 1
    assert _value(registry, "scfed_round_phase_seconds_count", phase="sharing") == 1
    assert _value(registry, "scfed_round_phase_seconds_count", phase="finished") is None


def test_a_member_certificate_shows_while_it_is_connected() -> None:
    metrics = CoordinatorMetrics()
    now = datetime(2026, 6, 1, tzinfo=UTC)
    metrics.member_connected("fab-a", now + timedelta(days=2), now)
    name = "scfed_member_certificate_expiry_seconds"
    assert _value(metrics.registry, name, member="fab-a") == 2 * 86400
    metrics.member_disconnected("fab-a")
    metrics.member_disconnected("fab-a")  # twice, or never seen: nothing to remove
    assert _value(metrics.registry, name, member="fab-a") is None


def test_seconds_left_are_negative_once_expired() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert seconds_left(now - timedelta(minutes=1), now) == -60


# ---- the ledger, read when scraped ----


def _charge(round_id: int, period: str, rho: Fraction) -> Charge:
    return Charge(bytes([round_id]) * 16, "q", period, 3, rho, "")


def test_the_budget_shows_per_period_and_always_the_current_one(tmp_path: Path) -> None:
    database = tmp_path / "node.sqlite"
    db = open_database(database, LEDGER_SCHEMA)
    with transaction(db):
        insert_charge(db, _charge(1, "2025", Fraction(1, 8)), 1.0)
        insert_charge(db, _charge(2, "2025", Fraction(1, 32)), 2.0)
        insert_charge(db, _charge(3, "2024", Fraction(1, 2)), 0.5)
    db.close()
    registry = CollectorRegistry()
    now = datetime(2026, 3, 1, tzinfo=UTC)
    registry.register(LedgerCollector(database, Budget(Fraction(1, 2), "year"), lambda: now))
    spent, left = "scfed_budget_spent_rho", "scfed_budget_left_rho"
    assert _value(registry, spent, period="2025") == 5 / 32
    assert _value(registry, left, period="2025") == 11 / 32
    assert _value(registry, left, period="2024") == 0
    assert _value(registry, spent, period="2026") == 0
    assert _value(registry, left, period="2026") == 0.5


def test_a_ledger_not_made_yet_shows_the_whole_budget(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    now = datetime(2026, 3, 1, tzinfo=UTC)
    budget = Budget(Fraction(1, 4), "year")
    registry.register(LedgerCollector(tmp_path / "none.sqlite", budget, lambda: now))
    assert _value(registry, "scfed_budget_left_rho", period="2026") == 0.25
    assert not (tmp_path / "none.sqlite").exists()


# ---- the node's metrics and health ----


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PrivacyBudgetError("past the cap"), "budget"),
        (ImportRowError("row 3"), "data"),
        (RefusedError("n_min too low"), "parameters"),
        (MessageError("bad field"), "protocol"),
        (RefusedError("a checkpoint inconsistent with ours"), "log"),
    ],
)
def test_a_node_refusal_is_counted_by_the_kind_of_error(error: ScfedError, reason: str) -> None:
    assert reason_of(error) == reason
    metrics = NodeMetrics()
    metrics.refused(reason_of(error))
    assert _value(metrics.registry, "scfed_node_refusals_total", reason=reason) == 1


def test_the_node_health_follows_its_connection() -> None:
    metrics = NodeMetrics(coordinator="127.0.0.1:7443")
    status, document = metrics.health()
    assert status == 503
    assert document == {
        "connected": False, "coordinator": "127.0.0.1:7443", "registry_version": 0,
        "policy_version": 0, "last_task_at": None,
    }  # fmt: skip
    metrics.connected(True)
    metrics.registry_version(4)
    metrics.policy_version(2)
    metrics.task(datetime(2026, 6, 1, 9, 30, tzinfo=UTC))
    status, document = metrics.health()
    assert status == 200
    assert document["connected"] is True
    assert (document["registry_version"], document["policy_version"]) == (4, 2)
    assert document["last_task_at"] == "2026-06-01T09:30:00+00:00"
    assert _value(metrics.registry, "scfed_node_connected") == 1
    metrics.connected(False)
    assert metrics.health()[0] == 503
    assert _value(metrics.registry, "scfed_node_connected") == 0


def test_the_node_counts_rounds_and_releases() -> None:
    metrics = NodeMetrics()
    metrics.joined()
    metrics.completed(wire.RESULT)
    metrics.joined()
    metrics.completed(wire.ABORT)
    metrics.release_kept(alerts=2)
    metrics.release_kept(alerts=0)
    registry = metrics.registry
    assert _value(registry, "scfed_node_rounds_joined_total") == 2
    assert _value(registry, "scfed_node_rounds_completed_total", outcome="result") == 1
    assert _value(registry, "scfed_node_rounds_completed_total", outcome="abort") == 1
    assert _value(registry, "scfed_node_releases_kept_total") == 2
    assert _value(registry, "scfed_node_alerts_total") == 2


# ---- the HTTP app ----


class _Response:
    status = ""
    headers: list[tuple[str, str]]

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status, self.headers = status, headers
        return lambda data: None


def _get(app: Any, path: str, method: str = "GET") -> tuple[str, bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": method}
    setup_testing_defaults(environ)
    environ["wsgi.input"] = io.BytesIO()
    response = _Response()
    body: Iterable[bytes] = app(environ, response)
    return response.status, b"".join(body)


@pytest.fixture
def node_app() -> tuple[Any, NodeMetrics]:
    metrics = NodeMetrics(coordinator="127.0.0.1:7443")
    return _dispatcher(metrics.registry, {"/healthz": metrics.health}), metrics


def test_the_app_serves_metrics_as_prometheus_reads_them(node_app: tuple[Any, NodeMetrics]) -> None:
    app, metrics = node_app
    metrics.connected(True)
    status, body = _get(app, "/metrics")
    assert status.startswith("200")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert families["scfed_node_connected"].samples[0].value == 1
    assert body == generate_latest(metrics.registry)


def test_the_app_serves_the_health_document(node_app: tuple[Any, NodeMetrics]) -> None:
    app, metrics = node_app
    status, body = _get(app, "/healthz")
    assert status == "503 Service Unavailable"
    assert json.loads(body)["connected"] is False
    metrics.connected(True)
    status, body = _get(app, "/healthz")
    assert status == "200 OK"
    assert json.loads(body)["coordinator"] == "127.0.0.1:7443"


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [("/", "GET", "404 Not Found"), ("/healthz/x", "GET", "404 Not Found"),
     ("/metrics", "POST", "405 Method Not Allowed")],
)  # fmt: skip
def test_the_app_answers_nothing_else(
    node_app: tuple[Any, NodeMetrics], path: str, method: str, status: str
) -> None:
    answered, body = _get(node_app[0], path, method)
    assert answered == status
    assert "error" in json.loads(body)
