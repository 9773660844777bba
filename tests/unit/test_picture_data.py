"""The synthetic federation of the traffic-light benchmark: firms, commodities and figures."""

from __future__ import annotations

import importlib
import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from scfed.taxonomy import parse_commodity
from tools.picture_data import (
    COUNTRIES,
    KYUSHU_ANALOG,
    METRICS,
    ROLES,
    Federation,
    Firm,
    Weekly,
    federation,
)

FRED = Path(__file__).resolve().parents[3] / "shared" / "data" / "fred"
SEED = 2026

Totals = Mapping[tuple[str, str, date], int]  # (metric, commodity, week) -> sum over firms


def _fred() -> Path:
    if not (FRED / "IPG3344S.csv").is_file() or not (FRED / "CAPG3344S.csv").is_file():
        pytest.skip(f"no FRED data in {FRED}")
    return FRED


@pytest.fixture(scope="module")
def fed() -> Federation:
    return federation(_fred(), np.random.default_rng(SEED))


@pytest.fixture(scope="module")
def totals(fed: Federation) -> Totals:
    sums: defaultdict[tuple[str, str, date], int] = defaultdict(int)
    for (_, metric, key, week), value in fed.figures.items():
        sums[metric, key, week] += int(value)
    return sums


def _contributors(fed: Federation, metric: str) -> dict[str, set[str]]:
    members: defaultdict[str, set[str]] = defaultdict(set)
    for member, m, key, _ in fed.figures:
        if m == metric:
            members[key].add(member)
    return members


def test_firms_span_every_country_and_role(fed: Federation) -> None:
    assert len(fed.firms) == 64
    ids = [firm.member_id for firm in fed.firms]
    assert len(set(ids)) == len(ids)
    assert {firm.country for firm in fed.firms} == set(COUNTRIES)
    assert {firm.role for firm in fed.firms} == set(ROLES)
    groups = Counter(firm.group for firm in fed.firms)
    assert 1 <= sum(n > 1 for n in groups.values()) <= 6
    assert max(groups.values()) <= 3
    assert sum(n == 1 for n in groups.values()) >= 50


def test_firm_refuses_a_bad_id() -> None:
    with pytest.raises(ValueError, match="lowercase"):
        Firm("Fab_Kumamoto", "fab-kumamoto", "foundry", "JP")
    with pytest.raises(ValueError, match="role"):
        Firm("fab-kumamoto-1", "fab-kumamoto-1", "fab", "JP")


def test_every_commodity_is_a_taxonomy_key(fed: Federation) -> None:
    assert 16 <= len(fed.commodities) <= 24
    assert list(fed.commodities) == sorted(set(fed.commodities))
    for key in fed.commodities:
        commodity = parse_commodity(key)
        assert commodity.key == key
        assert commodity.stage == "fabrication"
    assert KYUSHU_ANALOG in fed.commodities
    assert KYUSHU_ANALOG in fed.squeeze
    assert 3 <= len(fed.squeeze) <= 4
    assert set(fed.squeeze) <= set(fed.commodities)


def test_figures_are_whole_wafers_on_consecutive_mondays(fed: Federation) -> None:
    assert len(fed.weeks) == 70
    assert fed.weeks[0] == date(2020, 6, 1)
    assert all(b - a == timedelta(weeks=1) for a, b in zip(fed.weeks, fed.weeks[1:], strict=False))
    assert all(week.weekday() == 0 for week in fed.weeks)
    for (_, metric, key, week), value in fed.figures.items():
        assert metric in METRICS
        assert key in fed.commodities
        assert week in fed.weeks
        assert value >= 0
        assert value == value.to_integral_value()


def test_who_has_which_figures(fed: Federation) -> None:
    roles = {firm.member_id: firm.role for firm in fed.firms}
    metrics: defaultdict[str, set[str]] = defaultdict(set)
    for member, metric, _, _ in fed.figures:
        metrics[member].add(metric)
    for member, role in roles.items():
        capacity = {"capacity_actual", "capacity_max"}
        assert (capacity <= metrics[member]) == (role in ("foundry", "idm")), member
        assert ("demand" in metrics[member]) == (role != "foundry"), member


def test_capacity_max_is_above_actual(fed: Federation) -> None:
    for (member, metric, key, week), value in fed.figures.items():
        if metric == "capacity_actual":
            maximum = fed.figures[member, "capacity_max", key, week]
            assert value * Decimal("1.04") <= maximum <= value * Decimal("1.21") + 1


def test_commodity_totals_are_thousands_of_wafers(fed: Federation, totals: Totals) -> None:
    for key in fed.commodities:
        capacity = totals["capacity_actual", key, fed.weeks[0]]
        assert 2_000 <= capacity <= 50_000, key


def _shares(fed: Federation, metric: str, week: date) -> list[float]:
    by_firm: Counter[str] = Counter()
    for (member, m, _, w), value in fed.figures.items():
        if m == metric and w == week:
            by_firm[member] += int(value)
    total = sum(by_firm.values())
    return sorted((value / total for value in by_firm.values()), reverse=True)


@pytest.mark.parametrize("metric", ["capacity_actual", "demand"])
def test_firm_sizes_are_skewed(fed: Federation, metric: str) -> None:
    shares = _shares(fed, metric, fed.weeks[0])
    assert 0.05 <= shares[0] <= 0.15
    assert statistics.median(shares) < 0.02


def test_commodities_have_few_or_many_holders(fed: Federation) -> None:
    holders = [len(_contributors(fed, "capacity_actual")[key]) for key in fed.commodities]
    demanders = _contributors(fed, "demand")
    assert 2 <= sum(n < 5 for n in holders) <= 4
    assert sum(5 <= n < 10 for n in holders) >= 3
    assert sum(n >= 10 for n in holders) >= 5
    assert all(n >= 3 for n in holders)
    assert all(len(demanders[key]) >= 5 for key in fed.commodities)
    assert sum(len(demanders[key]) >= 10 for key in fed.commodities) > len(fed.commodities) / 2
    for key, n in zip(fed.commodities, holders, strict=True):
        if n < 5:
            assert len(demanders[key]) >= 10, key


def test_firms_hold_several_commodities(fed: Federation) -> None:
    held: defaultdict[str, set[str]] = defaultdict(set)
    for member, _, key, _ in fed.figures:
        held[member].add(key)
    roles = {firm.member_id: firm.role for firm in fed.firms}
    assert all(len(keys) >= 1 for keys in held.values())
    assert len(held) == len(fed.firms)
    buyers = [len(held[m]) for m, role in roles.items() if role == "buyer"]
    assert statistics.median(buyers) >= 3


def _light(totals: Totals, key: str, week: date) -> str:
    demand = totals["demand", key, week]
    if demand <= totals["capacity_actual", key, week]:
        return "green"
    return "orange" if demand <= totals["capacity_max", key, week] else "red"


def test_the_squeeze_is_red_for_weeks(fed: Federation, totals: Totals) -> None:
    for commodity in fed.squeeze:
        lights = [_light(totals, commodity, week) for week in fed.weeks]
        clearly = [
            w
            for w in fed.weeks
            if totals["demand", commodity, w] > 1.1 * totals["capacity_max", commodity, w]
        ]
        assert lights.count("red") >= 12, commodity
        assert len(clearly) >= 12, commodity
        assert lights.count("green") >= 4, commodity


def test_most_other_commodities_are_green(fed: Federation, totals: Totals) -> None:
    others = [key for key in fed.commodities if key not in fed.squeeze]
    lights = Counter(_light(totals, key, week) for key in others for week in fed.weeks)
    assert lights["green"] > 0.7 * sum(lights.values())
    assert lights["orange"] > 0
    assert lights["red"] <= 0.01 * sum(lights.values())


def test_same_seed_same_federation() -> None:
    a = federation(_fred(), np.random.default_rng(7), weeks=8)
    b = federation(_fred(), np.random.default_rng(7), weeks=8)
    c = federation(_fred(), np.random.default_rng(8), weeks=8)
    assert a == b
    assert a.figures != c.figures


def test_weekly_returns_only_the_firms_own_figures(fed: Federation) -> None:
    firm = next(f for f in fed.firms if f.role == "idm")
    weekly: Weekly = fed.weekly(firm.member_id)
    weeks = list(fed.weeks[3:6])
    for metric in METRICS:
        got = weekly(metric, weeks)
        assert got
        expected = {
            (key, week): value
            for (member, m, key, week), value in fed.figures.items()
            if member == firm.member_id and m == metric and week in weeks
        }
        assert got == expected
    assert weekly("demand", []) == {}
    assert weekly("stock_finished", weeks) == {}
    with pytest.raises(KeyError):
        fed.weekly("nobody")


def test_weekly_is_what_the_node_reads() -> None:
    # Imported by name: the catalogue pulls in much of the project, which this file need not check.
    assert importlib.import_module("scfed.catalogue").Weekly == Weekly


def test_refuses_what_it_cannot_make() -> None:
    with pytest.raises(ValueError, match="firms"):
        federation(_fred(), np.random.default_rng(1), firms=10)
    with pytest.raises(ValueError, match="Monday"):
        federation(_fred(), np.random.default_rng(1), start=date(2020, 6, 2))
    with pytest.raises(ValueError, match="outside the FRED"):
        federation(_fred(), np.random.default_rng(1), start=date(1960, 1, 4))
