"""The rho a node charges covers the true sensitivity of its catalogue vector.

Magnitude privacy protects one firm's figures moving by at most R in L2 norm. A node's
vector has three segments (values, presence, concentration), each with its own honest noise
variance; the release of the neighbouring pair v, v' costs
sum over segments of ||v_seg - v'_seg||^2 / (2 x the segment's honest variance), and that
must never exceed the rho the node charges (``Noise.rho`` with the entry's overlap and the
largest corporate group). Checked by search over entries and neighbouring figures, at the
worst points by hand, and the announce checks that keep a round's cells a set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from math import isqrt

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from coordinator.requests import Limits, announce_for
from protos.scfed.v1 import service_pb2 as spb
from scfed.catalogue import Weekly, layout, node_vector
from scfed.dp.params import MAGNITUDE, Noise
from scfed.errors import RemoteProtocolError
from scfed.secagg.driver import federation
from scfed.wire.codec import decode_announce, encode, noise_to_proto
from scfed.wire.messages import Announce, layout_hash
from scfed.wire.policy import METRIC_COMPONENTS, CatalogueEntry
from tests.unchecked import unchecked
from tests.unit._support import Rng

WEEK = date(2026, 11, 23)
COMMODITIES = (
    "fabrication/analog/90-180nm/200mm/JP-Kyushu",
    "fabrication/logic/14-28nm/300mm/TW-Hsinchu",
    "fabrication/logic/14-28nm/300mm/US",
)
#: Metrics whose value cells are the firm's facts themselves.
METRICS = ("demand-capacity", "stock", "book-to-bill")
Cell = tuple[str, str, date]


@dataclass(frozen=True)
class Case:
    """An entry and the corporate groups and survivors of one of its rounds."""

    entry: CatalogueEntry
    group: int  # members of this node's group among the candidates
    largest: int  # the largest group among the candidates
    survivors: int
    colluders: int
    planned: int = 0  # the survivors the announce sizes its noise for; 0: n_min

    @property
    def noise(self) -> Noise:
        """The announce's noise: the entry's, sized for the planned survivors."""
        planned = self.planned or self.entry.min_contributors
        return dataclasses.replace(self.entry.noise, planned=planned)

    def charged(self) -> Fraction:
        return self.noise.rho(
            self.entry.min_contributors, self.survivors, colluders=self.colluders,
            group=self.largest, overlap=self.entry.overlap,
        )  # fmt: skip

    def cells(self) -> tuple[Cell, ...]:
        return layout(self.entry, WEEK).values


def _entry(
    *,
    presence: int,
    scales: Sequence[int],
    bound: int,
    metric: str = "demand-capacity",
    commodities: Sequence[str] = COMMODITIES[:1],
    horizon: int = 1,
    sigmas: tuple[int, int, int] = (10, 10, 10),
    n_min: int = 3,
    t_collude: int = 1,
) -> CatalogueEntry:
    sigma, presence_sigma, concentration_sigma = (str(s) for s in sigmas)
    noise = Noise(
        sigma, t_collude, MAGNITUDE, bound, "1", 2**52, disclosure=True,
        presence_sigma=presence_sigma,
        concentration_sigma=concentration_sigma,
    )  # fmt: skip
    return CatalogueEntry(
        name="sensitivity-test",
        purpose="the charged sensitivity",
        metric=metric,
        commodities=tuple(commodities),
        horizon_weeks=horizon,
        noise=noise,
        min_contributors=n_min,
        dominance="0.6",
        presence_threshold=presence,
        concentration_scale=scales[0],
        recipients=("members",),
        concentration_scales=tuple(scales),
    )


def _weekly(cells: Sequence[Cell], figures: Sequence[int]) -> Weekly:
    by_cell = dict(zip(cells, figures, strict=True))

    def weekly(metric: str, weeks: Sequence[date]) -> Mapping[tuple[str, date], Decimal]:
        return {
            (k, w): Decimal(x) for (c, k, w), x in by_cell.items() if c == metric and w in weeks
        }

    return weekly


def weighted_change(case: Case, x: Sequence[int], x2: Sequence[int]) -> Fraction:
    """sum over segments of ||v_seg - v'_seg||^2 / the segment's honest noise variance."""
    return sum((moved for _, moved in segment_changes(case, x, x2)), Fraction(0))


def segment_changes(case: Case, x: Sequence[int], x2: Sequence[int]) -> list[tuple[str, Fraction]]:
    """Each segment's ||v_seg - v'_seg||^2 / its honest noise variance."""
    cells = case.cells()
    v = node_vector(case.entry, WEEK, _weekly(cells, x), case.group)
    v2 = node_vector(case.entry, WEEK, _weekly(cells, x2), case.group)
    assert v[: len(cells)].tolist() == list(x)
    assert v2[: len(cells)].tolist() == list(x2)
    honest = case.survivors - case.colluders
    segments = case.noise.segments(len(v), case.entry.min_contributors)
    out, start = [], 0
    for segment in segments:
        end = start + segment.cells
        moved = sum(int(a - b) ** 2 for a, b in zip(v[start:end], v2[start:end], strict=True))
        out.append((segment.name, Fraction(moved, honest * segment.sigma_l2)))
        start = end
    assert start == len(v)
    return out


def check(case: Case, x: Sequence[int], x2: Sequence[int]) -> None:
    bound = case.noise.bound
    assert min(x) >= 0
    assert min(x2) >= 0
    assert sum((a - b) ** 2 for a, b in zip(x, x2, strict=True)) <= bound * bound
    parts = segment_changes(case, x, x2)
    change = sum((moved for _, moved in parts), Fraction(0))
    charged = case.charged()
    assert change / 2 <= charged, (
        f"x {list(x)} -> {list(x2)}: weighted change / 2 = {float(change / 2):.6g} exceeds "
        f"the charged rho {float(charged):.6g} (ratio {float(change / 2 / charged):.4f}; "
        + ", ".join(f"{name} {float(m / 2):.4g}" for name, m in parts)
        + ")"
    )


# ---- search ----


@st.composite
def cases(draw: st.DrawFn) -> Case:
    metric = draw(st.sampled_from(METRICS))
    commodities = sorted(draw(st.sets(st.sampled_from(COMMODITIES), min_size=1, max_size=3)))
    per_cell = draw(st.booleans())
    count = len(commodities) * (len(METRIC_COMPONENTS[metric]) if per_cell else 1)
    size = st.integers(1, 5000) | st.integers(1, 50)
    scales = draw(st.lists(size, min_size=count, max_size=count))
    n_min = draw(st.integers(2, 6))
    t_collude = draw(st.integers(0, n_min - 1))
    sigma = st.integers(10, 3000)  # each node's variance at least 4 grid units squared
    entry = _entry(
        presence=draw(size), scales=scales, bound=draw(st.integers(1, 100) | st.just(1)),
        metric=metric, commodities=commodities, horizon=draw(st.integers(1, 3)),
        sigmas=(draw(sigma), draw(sigma), draw(sigma)), n_min=n_min, t_collude=t_collude,
    )  # fmt: skip
    planned = draw(st.integers(n_min, 12))
    group = draw(st.integers(1, 3))
    survivors = draw(st.integers(1, 12))
    largest, colluders = draw(st.integers(group, 3)), draw(st.integers(0, survivors - 1))
    return Case(entry, group, largest, survivors, colluders, planned)


@st.composite
def neighbours(draw: st.DrawFn, case: Case) -> tuple[list[int], list[int]]:
    """One firm's figures x and x' = x + d, both >= 0, with ||d||_2 <= R: each figure
    near the cell's presence threshold, near Q / g, or anywhere."""
    entry, bound = case.entry, case.noise.bound
    x = []
    for component, commodity, _ in case.cells():
        scale, p = entry.scale(commodity, component), entry.presence_threshold
        edges = [p, scale // case.group, -(-scale // case.group), scale]
        near = st.sampled_from(edges).flatmap(
            lambda e: st.integers(max(0, e - 2 * bound), e + 2 * bound)
        )
        x.append(draw(near | st.integers(0, 3 * max(p, scale)) | st.integers(0, 2**20)))
    n = len(x)
    if draw(st.booleans()):  # the whole budget on one cell
        d = [0] * n
        d[draw(st.integers(0, n - 1))] = draw(st.sampled_from([bound, -bound]))
    else:
        d = draw(st.lists(st.integers(-bound, bound), min_size=n, max_size=n))
        norm2 = sum(a * a for a in d)
        if norm2 > bound * bound:  # scale down, rounding toward zero: the norm stays <= R
            d = [(1 if a > 0 else -1) * isqrt((abs(a) * bound) ** 2 // norm2) for a in d]
    return x, [max(0, a + b) for a, b in zip(x, d, strict=True)]


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_no_neighbouring_pair_moves_more_than_the_charged_rho(data: st.DataObject) -> None:
    case = data.draw(cases(), label="case")
    x, x2 = data.draw(neighbours(case), label="figures")
    note(f"P {case.entry.presence_threshold}, Q {case.entry.concentration_scales}, g {case.group}")
    check(case, x, x2)


# ---- the worst points ----


def _one_cell(
    presence: int,
    scale: int,
    bound: int,
    *,
    group: int = 1,
    largest: int = 0,
    sigmas: str = "equal",
) -> Case:
    """A one-commodity, one-week stock entry (two value cells); ``sigmas`` picks which
    segment's noise is the smallest, so which segment the charge must cover most."""
    weights = {
        "equal": (10, 10, 10),
        "presence": (1000, 3, 1000),
        "concentration": (1000, 1000, 3),
    }[sigmas]
    entry = _entry(presence=presence, scales=[scale], bound=bound, metric="stock", sigmas=weights)
    return Case(entry, group, largest or group, survivors=4, colluders=1)


WORST = [
    # (P, Q, g, largest group, R, x, x'): a step of R in the first cell
    (100, 10_000, 1, 1, 1, 99, 100),  # just below P
    (100, 10_000, 1, 1, 7, 93, 100),  # up to P
    (100, 10_000, 1, 1, 7, 95, 102),  # across P
    (100, 10_000, 1, 1, 1, 9_999, 10_000),  # just below Q
    (100, 10_000, 1, 1, 10, 9_995, 10_005),  # across Q
    (100, 10_000, 2, 2, 1, 4_999, 5_000),  # just below Q / g
    (100, 10_000, 3, 3, 1, 3_332, 3_333),  # just below Q / g, Q / g not an integer
    (100, 10_000, 3, 3, 5, 3_331, 3_336),  # across Q / g
    (100, 10_000, 1, 1, 50, 10**6, 10**6 + 50),  # far above Q
    (100, 10_000, 3, 3, 50, 10**6, 10**6 - 50),  # far above Q, down
    (100, 200, 1, 1, 1, 99, 100),  # P just below Q / 2: both disclosure segments at once
    (100, 200, 2, 2, 1, 99, 100),  # P = Q / g: the steepest squares below P
    (100, 200, 2, 3, 1, 99, 100),  # a smaller group than the largest
    (300, 200, 2, 2, 1, 99, 100),  # Q / g below P: squares saturate first
    (1, 1, 1, 1, 1, 0, 1),  # the smallest cells
    (1, 1, 3, 3, 1, 0, 1),
    (5, 3, 3, 3, 2, 0, 2),
    (50, 50, 1, 1, 40, 10, 50),  # a long step through both
    (2**26, 2**26, 1, 1, 1, 2**26 - 1, 2**26),  # the largest scales: squares stay exact
]


@pytest.mark.parametrize("sigmas", ["equal", "presence", "concentration"])
@pytest.mark.parametrize("point", WORST, ids=str)
def test_the_charge_covers_the_worst_points(
    point: tuple[int, int, int, int, int, int, int], sigmas: str
) -> None:
    p, q, g, largest, bound, x, x2 = point
    case = _one_cell(p, q, bound, group=g, largest=largest, sigmas=sigmas)
    check(case, [x, 0], [x2, 0])
    check(case, [x2, 0], [x, 0])


@pytest.mark.parametrize("g", [1, 2, 3])
@pytest.mark.parametrize("sigmas", ["equal", "presence", "concentration"])
def test_every_unit_step_of_small_cells_is_covered(g: int, sigmas: str) -> None:
    """Every x and x + 1 (R = 1) in 0 .. 2 Q for small P and Q: the pointwise worst case."""
    for p, q in [(1, 1), (2, 3), (3, 2), (5, 7), (7, 5), (6, 12), (10, 10), (13, 40)]:
        case = _one_cell(p, q, 1, group=g, sigmas=sigmas)
        for x in range(2 * q + 2):
            check(case, [x, 0], [x + 1, 0])


def test_a_split_change_is_covered_across_cells_and_segments() -> None:
    """R = 5 split as (3, 4) over two cells, one below P and one below Q / g."""
    case = _one_cell(100, 1000, 5)
    check(case, [97, 996], [100, 1000])
    check(case, [97, 996], [94, 992])
    case = dataclasses.replace(case, entry=dataclasses.replace(case.entry, horizon_weeks=2))
    check(case, [97, 996, 0, 0], [100, 1000, 0, 0])


@pytest.mark.parametrize(
    ("sigmas", "x", "x2", "least"),
    [("presence", 99, 100, Fraction(9, 10)), ("concentration", 9_999, 10_000, Fraction(3, 4))],
)
def test_the_charge_is_tight_at_the_worst_points(
    sigmas: str, x: int, x2: int, least: Fraction
) -> None:
    """Just below P with the presence noise the smallest, just below Q with the squares'
    noise the smallest: one step of R = 1 reaches most of the charge, so the checks above
    are not vacuous."""
    case = _one_cell(100, 10_000, 1, sigmas=sigmas)
    reached = weighted_change(case, [x, 0], [x2, 0]) / 2 / case.charged()
    assert least <= reached <= 1, float(reached)


# ---- a round's cells are a set ----

NOISE = Noise("4", 1, MAGNITUDE, 1, "1", 2**52)


def _announce(cells: tuple[str, ...]) -> Announce:
    """An announce of ``cells``, built unchecked so that a test can send a bad one."""
    return unchecked(
        Announce,
        round_id=Rng(b"round")(16),
        query="test.inventory",
        dim=len(cells),
        candidates=("node-000", "node-001", "node-002"),
        threshold=2,
        n_min=2,
        registry_version=1,
        phase_timeout_ms=1000,
        layout_hash=layout_hash(cells),
        noise=NOISE,
        cells=cells,
    )


def test_a_node_refuses_an_announce_listing_a_cell_twice() -> None:
    assert decode_announce(encode(_announce(("a", "b")))).cells == ("a", "b")
    with pytest.raises(RemoteProtocolError, match="twice"):
        decode_announce(encode(_announce(("a", "a"))))


def test_the_coordinator_refuses_a_request_listing_a_cell_twice() -> None:
    fed = federation(4, Rng(b"cells-twice"))
    candidates = sorted(m.member_id for m in fed.registry.members)

    def start(cells: list[str]) -> Announce:
        request = spb.StartRoundRequest(
            query="test.inventory", cells=cells, candidates=candidates, noise=noise_to_proto(NOISE)
        )
        return announce_for(
            request, registry=fed.registry, policy=None, connected=(),
            limits=Limits(max_cells=100, phase_timeout_ms=1000), today=WEEK,
        )  # fmt: skip

    assert start(["a", "b", "c"]).cells == ("a", "b", "c")
    with pytest.raises(RemoteProtocolError, match="more than once"):
        start(["a", "b", "a"])
