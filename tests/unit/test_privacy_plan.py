"""``scfed privacy plan``: every plan it prints is one a node with default settings takes
part in, for a whole round; a catalogue file's plan is checked the same way."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from coordinator.requests import Limits, announce_for
from governance.catalogue import read_catalogue
from protos.scfed.v1 import service_pb2 as spb
from scfed.catalogue import node_vector
from scfed.cli import build_parser
from scfed.dp.ledger import Budget
from scfed.errors import ConfigError
from scfed.policy import check_plan
from scfed.secagg import NodePolicy
from scfed.secagg.driver import Report, federation, run_round
from scfed.wire.policy import Policy
from tests.unit._support import Rng

TODAY = date(2026, 12, 3)
MONDAY = TODAY - timedelta(days=TODAY.weekday())
KYUSHU = "fabrication/analog/90-180nm/200mm/JP-Kyushu"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    args = build_parser().parse_args(argv)
    assert args.func(args) == 0
    return capsys.readouterr().out


def _sigmas(text: str) -> dict[str, str]:
    return dict(re.findall(r'(\w*sigma) = "(\d+(?:\.\d+)?)"', text))


def _catalogue(path: Path, sigmas: Mapping[str, str], cadence: str = "weekly") -> Path:
    lines = [
        "[[entry]]", 'name = "weekly-demand-capacity"', 'metric = "demand-capacity"',
        f'commodities = ["{KYUSHU}"]', "horizon_weeks = 13", f'cadence = "{cadence}"',
        "bound = 100", "concentration_scale = 10000", "planned_percent = 80",
        *(f'{key} = "{value}"' for key, value in sigmas.items()),
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _weekly(figure: int) -> object:
    def weekly(metric: str, weeks: Sequence[date]) -> Mapping[tuple[str, date], Decimal]:
        return {(KYUSHU, w): Decimal(figure) for w in weeks}

    return weekly


def _default_nodes_run(policy: Policy, n: int, figure: Callable[[int], int]) -> Report:
    """A round of the policy's first entry among ``n`` nodes of the default settings, whose
    plan the default cap holds, the i-th with ``figure(i)`` for every cell."""
    entry = policy.entries[0]
    check_plan(policy, [entry.name], Budget())  # the default node's cap
    fed = federation(n, Rng(b"plan"))
    request = spb.StartRoundRequest(query=entry.name, entry=entry.name, week=MONDAY.isoformat())
    announce = announce_for(
        request, registry=fed.registry, policy=policy, connected=tuple(sorted(fed.member_keys)),
        limits=Limits(10**6, 1000), today=TODAY,
    )  # fmt: skip
    inputs = {
        m: node_vector(entry, MONDAY, _weekly(figure(i)))  # type: ignore[arg-type]
        for i, m in enumerate(announce.candidates)
    }
    return run_round(
        fed, announce, inputs, Rng(b"round"), policy=NodePolicy(), catalogue=policy, today=TODAY
    )


def test_the_printed_plan_is_a_round_a_default_node_takes_part_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _run(["privacy", "plan", "--radius", "100", "--candidates", "5"], capsys)
    assert "default node          accepts it" in text
    for segment, delta in (("values", 100), ("presence", 100), ("concentration", 900)):
        assert re.search(rf"{segment} .*sensitivity {delta}", text), segment
    policy = read_catalogue(_catalogue(tmp_path / "c.toml", _sigmas(text)), "scfed.test/m", 1)
    report = _default_nodes_run(policy, 5, lambda i: 2000 + 100 * i)
    assert report.result is not None, report.outcome
    assert len(report.result.survivors) == 5
    sums = np.frombuffer(report.result.sums, dtype="<i8")
    sigma = float(_sigmas(text)["sigma"])
    assert abs(int(sums[0]) - 11_000) < 6 * sigma * (5 / 4) ** 0.5  # the values' noise


def test_a_catalogue_file_is_planned_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fits = _catalogue(tmp_path / "fits.toml", {"sigma": "1200", "concentration_sigma": "9000"})
    text = _run(["privacy", "plan", "--catalogue", str(fits)], capsys)
    assert "weekly: at most 53 releases a year" in text
    assert "fits rho cap 0.5      yes" in text
    assert "default node          accepts it" in text
    steep = _catalogue(tmp_path / "steep.toml", {"sigma": "300"})
    text = _run(["privacy", "plan", "--catalogue", str(steep)], capsys)
    assert "fits rho cap 0.5      NO" in text
    assert "default node          refuses it" in text


def test_a_monthly_cadence_buys_less_noise(capsys: pytest.CaptureFixture[str]) -> None:
    weekly = _sigmas(_run(["privacy", "plan", "--radius", "100"], capsys))
    monthly = _sigmas(_run(["privacy", "plan", "--radius", "100", "--cadence", "monthly"], capsys))
    assert int(monthly["sigma"]) < int(weekly["sigma"])


@pytest.mark.parametrize(
    "extra",
    [
        ["--radius", "0"],
        ["--radius", "100", "--sigma", "5"],  # the values alone would pass the budget
        ["--radius", "100", "--sigma", "abc"],
        ["--radius", "100", "--sigma", "-5"],
        ["--radius", "100", "--t-collude", "-1"],
        ["--radius", "100", "--n-min", "2", "--t-collude", "2"],
        ["--radius", "100", "--delta", "0"],
        ["--radius", "100", "--rho-cap", "0"],
        ["--radius", "100", "--rho-cap", "10.5"],
        ["--radius", "100", "--presence-threshold", "9000", "--scale", "9000"],
        ["--catalogue", "/nonexistent/catalogue.toml"],
    ],
)
def test_bad_settings_are_one_clear_error(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError):
        _run(["privacy", "plan", *extra], capsys)


def test_the_example_catalogue_signs_and_default_nodes_take_part_in_its_rounds(
    tmp_path: Path,
) -> None:
    from governance.catalogue import EXAMPLE

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"```toml\n{EXAMPLE}```" in readme  # the README shows it as written
    path = tmp_path / "catalogue.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    policy = read_catalogue(path, "scfed.test/m", 1)
    report = _default_nodes_run(policy, 6, lambda i: 30 + 5 * i)
    assert report.result is not None, report.outcome
