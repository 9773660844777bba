"""``scfed bench noise`` through the real command line: the sampler against its floor."""

from __future__ import annotations

import json

import pytest

from scfed.cli import main
from tools import bench_noise


def _rows(out: str) -> list[list[str]]:
    lines = out.strip().splitlines()
    assert lines[:2] == bench_noise.HEADER.splitlines()
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_bench_noise_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "noise", "--cells", "1000", "--repeat", "1"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [row[1] for row in rows] == list(bench_noise.DEFAULT_SIGMA2)
    for cells, _, sampler_ms, floor_ms, ratio, per_cell in rows:
        assert cells == "1,000"
        assert float(sampler_ms) > 0
        assert float(floor_ms) > 0
        # The times are rounded to 0.01 ms, about a tenth of the floor at 1000 cells.
        assert float(ratio) == pytest.approx(float(sampler_ms) / float(floor_ms), rel=0.15)
        assert 8 <= float(per_cell) <= 200


def test_bench_noise_json_counts_what_the_sampler_used(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "noise", "--cells", "2000", "--sigma2", "9/4", "--repeat", "1", "--json"]
    assert main(argv) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["sigma2"] == "9/4"
    assert run["cells"] == 2000
    # Every output is an accepted attempt, and D keeps only some of the attempts.
    assert run["attempts"] > run["kept_by_d"] > 2000
    assert run["stream_bytes"] == pytest.approx(run["bytes_per_cell"] * 2000, abs=10)


@pytest.mark.parametrize("sigma2", ["x", "0", "-1/4"])
def test_bench_noise_refuses_a_bad_sigma2(sigma2: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "noise", "--cells", "10", f"--sigma2={sigma2}"]) == 1
    assert "sigma" in capsys.readouterr().err
