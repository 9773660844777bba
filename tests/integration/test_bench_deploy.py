"""``scfed bench deploy`` on a small federation: every measurement there and positive, the
round a result, and no process or folder left behind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from scfed.cli import main

pytestmark = pytest.mark.integration

SECONDS = (
    "python_s", "node_import_s", "one_node_connected_s", "all_connected_s",
    "node_start_cpu_s", "coordinator_start_cpu_s", "round_s", "coordinator_round_cpu_s",
    "nodes_round_cpu_s", "setup_s",
)  # fmt: skip


def test_bench_deploy_measures_a_real_round_and_stops_everything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "deploy", "--nodes", "4", "--dim", "100", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert (run["nodes"], run["dim"], run["graph"]) == (4, 100, "complete")
    for name in SECONDS:
        assert isinstance(run[name], float), name
        assert run[name] > 0, name
    assert run["outcome"] == "round.result"
    assert run["survivors"] == 4
    assert not Path(run["directory"]).exists()
    leftovers = subprocess.run(
        ["pgrep", "-f", run["directory"]], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout == "", leftovers.stdout


def test_bench_deploy_on_a_sparse_graph_prints_one_table_row(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Below 20 nodes the coordinator's rule gives graphs the nodes refuse: a node counts
    # the t_collude largest corporate groups (one member here) among the corrupt, 1/n > 1/20.
    assert main(["bench", "deploy", "--nodes", "20", "--dim", "10", "--graph", "sparse"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| N | D | graph | node import s | one node to connected s |")
    assert lines[2].startswith("| 20 | 10 | sparse k=6 | ")
    assert len(lines) == 3
