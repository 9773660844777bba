"""``scfed bench secagg`` and ``scfed bench audit`` through the real command line: the round
beside its floor, the coordinator's state weighed, and the audit of a sparse round."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scfed.cli import main
from tools import bench_secagg


def test_bench_secagg_counts_every_mask_expansion_of_the_complete_graph(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "secagg", "--nodes", "10", "--dim", "1000", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    # Each node adds 9 pairwise masks and its own; the coordinator removes the 10 own masks.
    assert run["expansions"] == 10 * 10 + 10
    assert run["masking_floor"] > 0
    assert run["noise_floor"] > 0
    assert run["floor"] == pytest.approx(run["masking_floor"] + run["noise_floor"])
    assert run["ratio"] == pytest.approx(run["wall"] / run["floor"])
    assert run["ratio"] > 1  # the round does more than its floor
    # The running sum (8 kB) and the result are held, never the ten masked vectors apart.
    assert 8_000 < run["coordinator_bytes"] < 2_000_000


def test_bench_secagg_times_the_coordinators_work_for_each_dropped_node(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "secagg", "--nodes", "10", "--dim", "1000", "--json"]
    assert main([*argv, "--dropout", "0.2"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["dropped"] == 2
    assert 0 < run["per_dropped"] < run["phases"]["unmasking"][0]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["per_dropped"] == 0


def test_bench_secagg_prints_floor_ratio_and_coordinator_state(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "secagg", "--nodes", "40", "--dim", "1e5", "--graph", "sparse"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[:2] == bench_secagg.HEADER.splitlines()
    cells = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert len(cells) == len(lines[0].strip("|").split("|"))
    wall, floor, ratio = float(cells[3]), float(cells[5]), float(cells[6])
    assert 0 < floor < wall
    assert ratio > 1  # rounded to 0.01 s, the printed floor gives the ratio only roughly


def test_the_coordinators_state_grows_with_the_vector_not_the_nodes() -> None:
    small = bench_secagg.bench(12, 20_000, 0.0, bench_secagg.PHASES["sharing"])
    more = bench_secagg.bench(24, 20_000, 0.0, bench_secagg.PHASES["sharing"])
    # 24 masked vectors of 160 kB would be 3.8 MB; the coordinator holds a few vectors.
    assert more.coordinator_bytes < 1_500_000
    assert more.coordinator_bytes < 1.5 * small.coordinator_bytes


def test_retained_bytes_counts_arrays_bytes_and_what_holds_them_once() -> None:
    array = np.zeros(10_000, dtype=np.uint64)
    held = {"a": array, "b": [array, b"x" * 5000], "c": (array,)}
    weight = bench_secagg.retained_bytes(held)
    assert 85_000 < weight < 90_000  # the array once, the bytes once, and the containers


def test_bench_audit_audits_a_round_on_the_sparse_graph(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "audit", "--rounds", "1", "--nodes", "40", "--dim", "100"]
    assert main([*argv, "--graph", "sparse"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    cells = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert cells[:4] == ["1", "40", "100", "sparse"]
    assert int(cells[4].replace(",", "")) > 40 * 4  # every node's four messages and more
