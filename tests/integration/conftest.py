"""Real federations for integration tests: certificates made by ``scfed federation``, a
coordinator process and node processes on loopback, all stopped when a test ends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from coordinator.admin_client import AdminClient
from edge.config import load_node_config, load_operator_config
from edge.transport import secure_channel
from governance.local import enroll_member, enroll_operator, init_federation
from scfed.errors import RemoteProtocolError
from tools.processes import Processes, processes, start_coordinator, wait_for

pytestmark = pytest.mark.integration

COMMODITIES = ("logic-28nm", "analog-180nm", "dram-1x")
METRICS = ("demand", "capacity-actual", "capacity-max")


def demo_cells(monday: dt.date, weeks: int = 4) -> list[str]:
    """Ad-hoc cells: demand / actual / maximum capacity x commodity x weeks."""
    labels = [(monday + dt.timedelta(weeks=w)).isocalendar() for w in range(weeks)]
    return [f"{m}/{c}/{y}-W{w:02d}" for c in COMMODITIES for y, w, _ in labels for m in METRICS]


def synthetic_figures(cells: list[str], seed: int) -> dict[str, int]:
    """One firm's figures in wafers, some cells left empty; deterministic per seed."""
    figures = {}
    for i, cell in enumerate(cells):
        if (i * 7 + seed) % 4 == 0:
            continue  # not every firm is in every commodity
        figures[cell] = 800 + (i * 37 + seed * 101) % 900
    return figures


def setup(directory: Path, names: list[str], cells: list[str]) -> dict[str, dict[str, int]]:
    """A federation with an operator and members, each with an ad-hoc figures file."""
    now = dt.datetime.now(dt.UTC)
    init_federation(directory, "demo", None, "127.0.0.1:0", [], now)
    enroll_operator(directory, "operator", now)
    figures = {}
    for seed, name in enumerate(names):
        folder = enroll_member(directory, name, None, None, now)
        figures[name] = synthetic_figures(cells, seed)
        lines = ["cell,value"] + [f"{c},{v}" for c, v in figures[name].items()]
        (folder / "figures.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        allow_adhoc(folder / "node.toml")
    return figures


def allow_adhoc(node_toml: Path) -> None:
    """The firm takes part in ad-hoc rounds, as its own policy must say."""
    text = node_toml.read_text(encoding="utf-8")
    node_toml.write_text(text.replace("adhoc = false", "adhoc = true"), encoding="utf-8")


@dataclass
class Cluster:
    """A running federation: its folder, coordinator address, processes and figures."""

    directory: Path
    address: str
    procs: Processes
    figures: dict[str, dict[str, int]]
    cells: list[str]

    def admin(self) -> AdminClient:
        config = load_operator_config(self.directory / "operators/operator/operator.toml")
        return AdminClient(config, self.address)

    def start_node(self, name: str) -> None:
        config = self.directory / "members" / name / "node.toml"
        self.procs.start(
            name, "node", "serve", "--config", str(config), "--coordinator", self.address
        )

    def wait_connected(self, count: int) -> None:
        """Wait until exactly ``count`` nodes are connected (the server may still be starting)."""
        with self.admin() as admin:

            def connected() -> bool:
                try:
                    return len(admin.status(timeout=2).connected) == count
                except RemoteProtocolError:
                    return False

            wait_for(f"{count} nodes", connected, self.procs, "coordinator")


def member_channel(member_dir: Path, address: str) -> grpc.Channel:
    """A mutual-TLS channel with a member's certificate, as its node would open."""
    config = load_node_config(member_dir / "node.toml")
    return secure_channel(config.tls, address, config.server_name)


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """A factory: make_cluster(names, start=names) sets up and starts a federation."""
    with processes(tmp_path / "logs") as procs:

        def make(names: list[str], start: list[str] | None = None) -> Cluster:
            cells = demo_cells(dt.date(2026, 11, 23))
            figures = setup(tmp_path / "federation", names, cells)
            port = start_coordinator(tmp_path / "federation", procs)
            cluster = Cluster(tmp_path / "federation", f"127.0.0.1:{port}", procs, figures, cells)
            running = names if start is None else start
            for name in running:
                cluster.start_node(name)
            cluster.wait_connected(len(running))
            return cluster

        yield make
