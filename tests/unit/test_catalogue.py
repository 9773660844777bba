"""Catalogue rounds: the signed entry fixes the cells; the release applies the disclosure rules.

A catalogue entry computed over an in-memory federation of real node and coordinator
machines is compared with the plaintext computation over the same firms' figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed.catalogue import (
    check_announce,
    check_current,
    derived,
    entry_layout_hash,
    layout,
    node_vector,
)
from scfed.dp.contribution import Ints
from scfed.dp.params import MAGNITUDE, Noise
from scfed.errors import RefusedError, RemoteProtocolError, VerificationError
from scfed.picture import release, round_of
from scfed.policy import open_policy, seal_policy, witness_quorum
from scfed.secagg.driver import federation, run_round
from scfed.wire.messages import Announce
from scfed.wire.policy import CatalogueEntry, Policy, decode_policy, encode_policy
from tests.unchecked import unchecked_replace
from tests.unit._support import Rng

WEEK = date(2026, 11, 23)
KYUSHU = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
HSINCHU = "fabrication/logic/14-28nm/300mm/TW-Hsinchu"
OHIO = "fabrication/logic/14-28nm/300mm/US"
ENTRY = CatalogueEntry(
    name="weekly-demand-capacity",
    purpose="where demand will exceed capacity",
    metric="demand-capacity",
    commodities=tuple(sorted((KYUSHU, HSINCHU, OHIO))),
    horizon_weeks=2,
    noise=Noise("10", 1, MAGNITUDE, 1, "1", 10**6, True, 0, "10", "90"),
    min_contributors=3,
    dominance="0.6",
    presence_threshold=50,
    concentration_scale=5000,
    recipients=("members",),
    planned_percent=100,
)
PLANNED = dataclasses.replace(ENTRY.noise, planned=5)
POLICY = Policy("scfed.test/memory", 1, "2026.1", "0.5", "year", (ENTRY,))
Facts = dict[str, dict[tuple[str, date], Decimal]]


def _weekly(facts: Facts) -> object:
    def weekly(metric: str, weeks: Sequence[date]) -> Mapping[tuple[str, date], Decimal]:
        return {k: v for k, v in facts.get(metric, {}).items() if k[1] in weeks}

    return weekly


def test_the_policy_round_trips_and_only_governance_signs_it() -> None:
    assert decode_policy(encode_policy(POLICY)) == POLICY
    governance = Ed25519PrivateKey.from_private_bytes(Rng(b"governance")(32))
    signed = seal_policy(POLICY, governance)
    public = governance.public_key().public_bytes_raw()
    assert open_policy(signed, POLICY.origin, public) == POLICY
    with pytest.raises(VerificationError):
        open_policy(signed, "scfed.test/other", public)
    other = Ed25519PrivateKey.from_private_bytes(Rng(b"other")(32)).public_key()
    with pytest.raises(VerificationError):
        open_policy(signed, POLICY.origin, other.public_bytes_raw())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"metric": "gossip"}, "metric"),
        ({"commodities": (OHIO, KYUSHU)}, "sorted"),
        ({"commodities": ("fabrication/analog/90-180nm/200mm/XX",)}, "country"),
        ({"noise": Noise("4", 1, MAGNITUDE, 1, "1", 10**6)}, "disclosure"),
        ({"noise": Noise("4", 1, MAGNITUDE, 1, "1", 10**6, True)}, "sigma"),
        ({"dominance": "1.5"}, "dominance"),
        ({"cadence": "daily"}, "cadence"),
        ({"planned_percent": 0}, "planned"),
        ({"concentration_scales": (1, 2)}, "per commodity"),
        ({"recipients": ()}, "recipients"),
        ({"horizon_weeks": 0}, "horizon"),
    ],
)
def test_a_bad_entry_is_refused(change: dict[str, object], reason: str) -> None:
    bad = unchecked_replace(POLICY, entries=(unchecked_replace(ENTRY, **change),))
    with pytest.raises(RemoteProtocolError, match=reason):
        decode_policy(encode_policy(bad))


def test_the_layout_has_values_presence_and_concentration_segments() -> None:
    cells = layout(ENTRY, WEEK)
    assert cells.dim == 3 * (3 * 2 * 3)  # values, presence and concentration per value
    assert cells.cells[0] == f"demand|{KYUSHU}|2026-W48"  # analog sorts before logic
    assert f"presence|capacity_max|{OHIO}|2026-W49" in cells.cells
    assert cells.cells[-1] == f"concentration|capacity_max|{OHIO}|2026-W49"
    assert entry_layout_hash(ENTRY, WEEK) != entry_layout_hash(ENTRY, WEEK + timedelta(weeks=1))


def test_a_node_vector_encodes_its_figures_presence_and_squares() -> None:
    facts: Facts = {
        "demand": {(KYUSHU, WEEK): Decimal("250.9")},
        "capacity_max": {(KYUSHU, WEEK): Decimal(20000)},
    }
    vector = node_vector(ENTRY, WEEK, _weekly(facts))  # type: ignore[arg-type]
    cells = layout(ENTRY, WEEK).cells
    value = dict(zip(cells, vector.tolist(), strict=True))
    assert value[f"demand|{KYUSHU}|2026-W48"] == 250  # truncated toward zero on the grid
    assert value[f"presence|demand|{KYUSHU}|2026-W48"] == 50  # min(|x|, P)
    assert value[f"presence|demand|{KYUSHU}|2026-W49"] == 0
    assert value[f"presence|capacity_actual|{KYUSHU}|2026-W48"] == 0
    assert value[f"concentration|demand|{KYUSHU}|2026-W48"] == 4 * 250 * 250 // 5000
    assert value[f"concentration|capacity_max|{KYUSHU}|2026-W48"] == 4 * 5000  # clipped at Q
    paired = dict(zip(cells, node_vector(ENTRY, WEEK, _weekly(facts), 2).tolist(), strict=True))  # type: ignore[arg-type]
    assert paired[f"presence|demand|{KYUSHU}|2026-W48"] == 25  # one of a group of two: half
    assert paired[f"concentration|demand|{KYUSHU}|2026-W48"] == 4 * 500 * 500 // 10_000


FIRMS = 5


def _firm_facts(i: int) -> Facts:
    """Five firms in Kyushu, three of them in Hsinchu, one (dominant) in the US."""
    demand = {
        (KYUSHU, WEEK): Decimal(1000 + 100 * i),
        (KYUSHU, WEEK + timedelta(weeks=1)): Decimal(1200),
    }
    if i < 3:
        demand[(HSINCHU, WEEK)] = Decimal(500)
    capacity = {(KYUSHU, WEEK): Decimal(90)}
    if i == 0:
        capacity[(OHIO, WEEK)] = Decimal(9000)
    elif i == 1:
        capacity[(OHIO, WEEK)] = Decimal(100)
    return {"demand": demand, "capacity_actual": capacity, "capacity_max": capacity}


def test_a_catalogue_round_equals_the_plaintext_computation_and_suppresses() -> None:
    fed = federation(FIRMS, Rng(b"catalogue"))
    members = tuple(sorted(fed.member_keys))
    cells = layout(ENTRY, WEEK)
    announce = Announce(
        Rng(b"round")(16), ENTRY.name, cells.dim, members, 3, ENTRY.min_contributors,
        fed.registry.version, 1000, entry_layout_hash(ENTRY, WEEK), PLANNED, (),
        WEEK.isoformat(),
    )  # fmt: skip
    assert check_announce(ENTRY, announce) == WEEK
    inputs = {m: node_vector(ENTRY, WEEK, _weekly(_firm_facts(i))) for i, m in enumerate(members)}  # type: ignore[arg-type]
    report = run_round(fed, announce, inputs, Rng(b"run"), catalogue=POLICY, today=WEEK)
    assert report.result is not None
    sums = np.frombuffer(report.result.sums, dtype="<i8").astype(np.int64)
    np.testing.assert_array_equal(sums, np.sum(list(report.contributions.values()), axis=0))
    # Each contribution is that firm's plaintext vector plus its noise shares (sigma_l^2 25
    # for the values and presence, 2025 for the concentration): the release is the plaintext
    # computation over the firms' figures, plus noise.
    for member in members:
        noise = report.contributions[member] - inputs[member]
        assert np.all(np.abs(noise) <= 20 * 2025**0.5), member
    rounds = [round_of(ENTRY, WEEK, sums, FIRMS, planned=5)]
    released = {(c.component, c.commodity, c.week): c for c in release(ENTRY, rounds)}
    kyushu = released[("demand", KYUSHU, WEEK)]
    assert kyushu.estimate is not None
    assert kyushu.contributors == "5-9"
    truth = sum(1000 + 100 * i for i in range(FIRMS))
    assert kyushu.estimate.low <= truth <= kyushu.estimate.high
    # Exactly k = 3 firms: the count's 99% lower bound falls below k, so the cell is held.
    hsinchu = released[("demand", HSINCHU, WEEK)]
    assert hsinchu.suppressed == "estimated contributors below 3"
    hsinchu_next = released[("demand", HSINCHU, WEEK + timedelta(weeks=1))]
    assert hsinchu_next.suppressed == "estimated contributors below 3"
    assert hsinchu_next.contributors == "<3"
    ohio = released[("capacity_max", OHIO, WEEK)]
    assert ohio.suppressed == "estimated contributors below 3"  # two firms: k first


def _firm_sums(entry: CatalogueEntry, *figures: int) -> Ints:
    """Noise-free sums of a cell of some firms' capacity in Ohio, through their vectors."""
    facts: list[Facts] = [{"capacity_max": {(OHIO, WEEK): Decimal(x)}} for x in figures]
    vectors = [node_vector(entry, WEEK, _weekly(f)) for f in facts]  # type: ignore[arg-type]
    total: Ints = sum(vectors[1:], vectors[0])
    return total


def _ohio(entry: CatalogueEntry, sums: Ints) -> str:
    (cell,) = [
        c
        for c in release(entry, [round_of(entry, WEEK, sums, 5, planned=5)])
        if (c.component, c.commodity, c.week) == ("capacity_max", OHIO, WEEK)
    ]
    assert cell.estimate is None
    return cell.suppressed


def test_a_cell_dominated_by_one_firm_is_suppressed() -> None:
    entry = dataclasses.replace(
        ENTRY, min_contributors=2, concentration_scale=20_000, horizon_weeks=1
    )
    reason = _ohio(entry, _firm_sums(entry, 9000, 100, 100, 100))
    assert reason.startswith("one firm may hold 60% or more (estimated concentration index 0.9")


def test_a_firm_beyond_the_concentration_scale_cannot_hide_its_share() -> None:
    """Capping the squares at Q once let a cell with a firm far above Q pass as unconcentrated;
    now a cell whose value may exceed Q / (the dominance share) is held."""
    entry = dataclasses.replace(
        ENTRY, min_contributors=2, horizon_weeks=1, concentration_scale=1000
    )
    reason = _ohio(entry, _firm_sums(entry, 9000, 100, 100, 100))
    assert reason == "above the entry's concentration scale: one firm holding 60% not ruled out"


@pytest.mark.parametrize(
    "change",
    [
        {"noise": Noise("6", 1, MAGNITUDE, 1, "1", 10**6, True, 3, "5", "5")},
        {"noise": dataclasses.replace(PLANNED, planned=0)},
        {"noise": dataclasses.replace(PLANNED, planned=4)},
        {"n_min": 4},
        {"layout_hash": bytes(32)},
        {"week": "2026-11-30"},
    ],
)
def test_a_node_refuses_a_round_that_is_not_the_signed_entry(change: dict[str, object]) -> None:
    cells = layout(ENTRY, WEEK)
    announce = Announce(
        bytes(16), ENTRY.name, cells.dim, ("a", "b", "c"), 2, ENTRY.min_contributors, 1, 1000,
        entry_layout_hash(ENTRY, WEEK), dataclasses.replace(PLANNED, planned=3), (),
        WEEK.isoformat(),
    )  # fmt: skip
    assert check_announce(ENTRY, announce) == WEEK
    with pytest.raises(RefusedError):
        check_announce(ENTRY, unchecked_replace(announce, **change))


@pytest.mark.parametrize("day", [WEEK - timedelta(days=1), WEEK, WEEK + timedelta(days=7)])
def test_a_node_takes_part_only_in_the_current_week(day: date) -> None:
    """A day's grace either side of the week for clocks that disagree; no other week."""
    check_current(WEEK, day)
    with pytest.raises(RefusedError, match="current week"):
        check_current(WEEK + timedelta(weeks=1), day - timedelta(days=7))


def _entry(metric: str) -> CatalogueEntry:
    return dataclasses.replace(ENTRY, metric=metric, commodities=(KYUSHU,), horizon_weeks=1)


def _values(entry: CatalogueEntry, facts: Facts) -> dict[str, int]:
    cells = layout(entry, WEEK)
    vector = node_vector(entry, WEEK, _weekly(facts))  # type: ignore[arg-type]
    return {
        c.split("|")[0]: int(v)
        for c, v in zip(cells.cells[: len(cells.values)], vector, strict=False)
    }


def test_utilisation_is_computed_and_bounded_at_the_node() -> None:
    facts: Facts = {
        "wafer_starts_actual": {(KYUSHU, WEEK): Decimal(1900)},
        "wafer_starts_capacity": {(KYUSHU, WEEK): Decimal(1000)},
    }
    assert _values(_entry("utilisation"), facts) == {"utilisation": 1500}  # 190%, bounded
    facts["wafer_starts_actual"][(KYUSHU, WEEK)] = Decimal(873)
    assert _values(_entry("utilisation"), facts) == {"utilisation": 873}  # permille


def test_histograms_put_one_in_the_nodes_bin() -> None:
    days: Facts = {"days_of_supply": {(KYUSHU, WEEK): Decimal("12.5")}}
    assert _values(_entry("days-of-supply"), days) == {
        "dos:0-7d": 0, "dos:7-14d": 1, "dos:14-30d": 0, "dos:30-60d": 0, "dos:60d+": 0,
    }  # fmt: skip
    lead: Facts = {"lead_time_weeks": {(KYUSHU, WEEK): Decimal(60)}}
    assert _values(_entry("lead-time"), lead)["lead:52w+"] == 1


def test_stock_and_book_to_bill_read_their_facts() -> None:
    stock: Facts = {"stock_finished": {(KYUSHU, WEEK): Decimal(40)}, "stock_wip": {}}
    assert _values(_entry("stock"), stock) == {"stock_finished": 40, "stock_wip": 0}
    entry = dataclasses.replace(
        _entry("book-to-bill"), min_contributors=2, concentration_scale=1000
    )
    cells = layout(entry, WEEK)
    sums = np.zeros(cells.dim, dtype=np.int64)
    n = len(cells.values)
    sums[:n] = [1200, 1000]  # bookings, billings
    sums[n : 2 * n] = 5 * entry.presence_threshold
    sums[2 * n :] = [5 * (4 * 240**2 // 1000), 5 * (4 * 200**2 // 1000)]  # five equal firms
    released = release(entry, [round_of(entry, WEEK, sums, 5, planned=5)])
    (figure,) = derived(released, entry.metric)
    assert figure.label == "book-to-bill"
    assert figure.value.startswith("1.20 [")


def test_the_witness_quorum_is_the_policys_or_else_the_threshold() -> None:
    cells = layout(ENTRY, WEEK)
    announce = Announce(
        bytes(16), ENTRY.name, cells.dim, ("a", "b", "c", "d"), 3, ENTRY.min_contributors, 1,
        1000, entry_layout_hash(ENTRY, WEEK), PLANNED, (), WEEK.isoformat(),
    )  # fmt: skip
    assert witness_quorum(None, announce) == 3
    assert witness_quorum(POLICY, announce) == 3  # the policy leaves it at t
    strict = dataclasses.replace(POLICY, witness_quorum=4)
    assert witness_quorum(decode_policy(encode_policy(strict)), announce) == 4
    with pytest.raises(RemoteProtocolError, match="cannot be met"):
        decode_policy(encode_policy(unchecked_replace(POLICY, witness_quorum=1001)))
