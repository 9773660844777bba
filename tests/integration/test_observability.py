"""Seeing the daemons: a real coordinator and two nodes with ``[metrics]`` on, scraped as
Prometheus scrapes them, the node's ``/healthz``, and the coordinator's gRPC health service
called over mutual TLS with an operator's certificate."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from edge.config import load_operator_config
from edge.transport import secure_channel
from protos.scfed.v1 import service_pb2 as spb
from scfed.dp.params import MAGNITUDE, Noise
from scfed.wire.codec import noise_to_proto
from tests.integration.conftest import Cluster, demo_cells, setup
from tools.processes import Processes, processes, start_coordinator, wait_for

pytestmark = pytest.mark.integration

NAMES = ["fab-hsinchu", "fab-kumamoto"]
#: Two nodes, one colluder: each adds N_Z(0, 1600); a release costs at most 1/32.
NOISE = Noise("40", 1, MAGNITUDE, 10, "1", 10**6)
METRICS_TABLE = '\n[metrics]\nlisten = "127.0.0.1:0"\n'
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def with_metrics(config: Path, *replacements: tuple[str, str]) -> None:
    text = config.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    config.write_text(text + METRICS_TABLE, encoding="utf-8")


def metrics_url(procs: Processes, name: str) -> str:
    """The URL the daemon logged once its metrics server listened (port 0: any free one)."""
    found: list[str] = []

    def logged() -> bool:
        found[:] = re.findall(r"metrics on (http://\S+/metrics)", procs.log_text(name))
        return bool(found)

    wait_for(f"{name} to serve metrics", logged, procs, name)
    return found[0]


def scrape(url: str) -> Samples:
    """Every sample of a scrape, by name and labels, parsed by Prometheus's own parser."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode("utf-8")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def healthz(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url.replace("/metrics", "/healthz"), timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_metrics_and_health_of_a_running_federation(tmp_path: Path, procs: Processes) -> None:
    directory = tmp_path / "federation"
    cells = demo_cells(dt.date(2026, 11, 23))
    figures = setup(directory, NAMES, cells)
    with_metrics(directory / "coordinator" / "coordinator.toml")
    for name in NAMES:
        with_metrics(directory / "members" / name / "node.toml", ("min_n_min = 3", "min_n_min = 2"))
    port = start_coordinator(directory, procs)
    cluster = Cluster(directory, f"127.0.0.1:{port}", procs, figures, cells)
    coordinator = metrics_url(procs, "coordinator")
    before = scrape(coordinator)
    assert before[("scfed_nodes_connected", ())] == 0
    assert before[("scfed_rounds_total", (("outcome", "result"),))] == 0
    for name in NAMES:
        cluster.start_node(name)
    cluster.wait_connected(2)
    nodes = {name: metrics_url(procs, name) for name in NAMES}

    run_round(cluster)
    with cluster.admin() as admin:
        registry_version = admin.status().registry_version

    after = scrape(coordinator)
    assert after[("scfed_rounds_total", (("outcome", "result"),))] == 1
    assert after[("scfed_rounds_total", (("outcome", "abort"),))] == 0
    assert after[("scfed_nodes_connected", ())] == 2
    assert after[("scfed_log_size_leaves", ())] > before[("scfed_log_size_leaves", ())] > 0
    assert after[("scfed_log_append_seconds_count", ())] > 0
    assert after[("scfed_round_phase_seconds_count", (("phase", "masking"),))] == 1
    year = str(dt.datetime.now(dt.UTC).year)
    spent = after[("scfed_budget_spent_rho", (("period", year),))]
    assert 0 < spent <= 1 / 32
    assert after[("scfed_budget_left_rho", (("period", year),))] == pytest.approx(0.5 - spent)
    assert after[("scfed_certificate_expiry_seconds", (("certificate", "own"),))] > 86400
    for name in NAMES:
        member = after[("scfed_member_certificate_expiry_seconds", (("member", name),))]
        assert member > 86400

    for name, url in nodes.items():
        wait_for(f"{name} to see the result", results_seen(url, 1), procs, name)
        node = scrape(url)
        assert node[("scfed_node_connected", ())] == 1
        assert node[("scfed_node_rounds_joined_total", ())] == 1
        assert node[("scfed_budget_spent_rho", (("period", year),))] == spent
        assert node[("scfed_certificate_expiry_seconds", (("certificate", "own"),))] > 86400
        status, document = healthz(url)
        assert status == 200, document
        assert document["connected"] is True
        assert document["coordinator"] == cluster.address
        assert document["registry_version"] == registry_version
        assert document["policy_version"] == 0  # this federation has no signed policy yet
        assert isinstance(document["last_task_at"], str)
        assert dt.datetime.fromisoformat(document["last_task_at"]).tzinfo is not None, name

    check_health(cluster)

    procs.running["coordinator"].terminate()  # the nodes lose it, and say so
    assert procs.running["coordinator"].wait(10) == 0
    assert "Traceback" not in procs.log_text("coordinator")  # their streams ended cleanly
    url = nodes[NAMES[0]]
    wait_for("the node to see it lost the coordinator", lambda: healthz(url)[0] == 503,
             procs, NAMES[0])  # fmt: skip
    status, document = healthz(url)
    assert document["connected"] is False
    assert scrape(url)[("scfed_node_connected", ())] == 0


def results_seen(url: str, count: int) -> Callable[[], bool]:
    key = ("scfed_node_rounds_completed_total", (("outcome", "result"),))
    return lambda: scrape(url)[key] == count


def run_round(cluster: Cluster) -> None:
    request = spb.StartRoundRequest(
        query="test", cells=cluster.cells, candidates=NAMES, n_min=2, phase_timeout_ms=20_000,
        noise=noise_to_proto(NOISE),
    )  # fmt: skip
    with cluster.admin() as admin:
        _, outcome = admin.start_round(request, timeout=60)
    assert outcome.type == "round.result"


def check_health(cluster: Cluster) -> None:
    """The standard health service answers an operator's certificate over mutual TLS."""
    config = load_operator_config(cluster.directory / "operators/operator/operator.toml")
    with secure_channel(config.tls, cluster.address, config.server_name) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "scfed.v1.NodeService"):
            request = health_pb2.HealthCheckRequest(service=service)
            answer = stub.Check(request, timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.RpcError) as unknown:
            stub.Check(health_pb2.HealthCheckRequest(service="nothing.Here"), timeout=10)
        assert code(unknown.value) == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as watched:
            next(stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10))
        assert code(watched.value) == grpc.StatusCode.UNIMPLEMENTED
        listed = stub.List(health_pb2.HealthListRequest(), timeout=10)
        assert set(listed.statuses) == {"", "scfed.v1.NodeService"}


def code(error: grpc.RpcError) -> grpc.StatusCode:
    assert isinstance(error, grpc.Call)
    return error.code()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    with processes(tmp_path / "logs") as started:
        yield started
