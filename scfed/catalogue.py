"""Catalogue rounds: the cell layout, a node's vector, and the disclosure rules. Pure: no I/O.

A round of a catalogue entry has three segments, in this order, each with its own noise:
- values: for each commodity, each week of the horizon and each component of the metric, the
  node's figure on the grid (components are facts such as demand, or bounded indicators the
  node computes locally: utilisation in permille, one-hot histogram bins);
- presence: for each value cell, min(|x|, P) // g, with P the entry's presence threshold and
  g the members of the node's corporate group among the candidates: the sum over P counts
  the cell's contributors, a group at most once, a contributor below P in part;
- concentration: for each value cell, F min(g |x|, Q)^2 // (g Q), with Q the cell's
  concentration scale and F = 4 for resolution: by Cauchy-Schwarz, Q / F times the sum
  bounds the sum of the groups' squared figures from above while no member reaches Q / g,
  and hence the Herfindahl index; a member that does contributes at least F Q / g.
Every transformation is Lipschitz in x (presence 1, concentration 2 F + 1), so one firm's change
of R in its figures moves each segment by a bounded L2 norm: the node derives the release's
sensitivity from the layout and its own transformations (``Noise.segments``). The rules are
one-sided tests that hold whatever the magnitudes: a cell with fewer than k contributors, or
one firm holding the dominance limit, is published in at most 1% of releases.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from statistics import NormalDist

import numpy as np

from scfed.dp.contribution import Ints, to_grid
from scfed.dp.distribution import Estimate, ratio_of, traffic_light
from scfed.dp.params import CONCENTRATION_FINE
from scfed.errors import RefusedError
from scfed.wire.messages import Announce, layout_hash
from scfed.wire.policy import DOS_BINS, LEAD_BINS, METRIC_COMPONENTS, CatalogueEntry

#: Utilisation is computed by each node, in permille, clipped to this.
MAX_UTILISATION = 1500

COMPONENTS = METRIC_COMPONENTS
#: The facts a node reads for each metric.
FACTS: dict[str, tuple[str, ...]] = {
    "demand-capacity": ("demand", "capacity_actual", "capacity_max"),
    "stock": ("stock_finished", "stock_wip"),
    "book-to-bill": ("bookings", "billings"),
    "utilisation": ("wafer_starts_actual", "wafer_starts_capacity"),
    "days-of-supply": ("days_of_supply",),
    "lead-time": ("lead_time_weeks",),
    "need-spare": ("need", "spare"),  # from the node's crisis posts, not its imported data
}
BANDS = ((5, "5-9"), (10, "10-19"), (20, "20-49"), (50, "50+"))

#: Sums a node's facts per (commodity key, week) for one metric over some weeks.
Weekly = Callable[[str, Sequence[date]], Mapping[tuple[str, date], Decimal]]


def weeks_of(entry: CatalogueEntry, week: date) -> list[date]:
    return [week + timedelta(weeks=i) for i in range(entry.horizon_weeks)]


def _label(monday: date) -> str:
    year, number, _ = monday.isocalendar()
    return f"{year}-W{number:02d}"


@dataclass(frozen=True)
class Layout:
    """The cells of a round of ``entry`` starting at ``week``."""

    values: tuple[tuple[str, str, date], ...]  # (component, commodity, week)

    @property
    def cells(self) -> tuple[str, ...]:
        values = [f"{c}|{k}|{_label(w)}" for c, k, w in self.values]
        return (
            *values,
            *(f"presence|{v}" for v in values),
            *(f"concentration|{v}" for v in values),
        )

    @property
    def dim(self) -> int:
        return 3 * len(self.values)


def layout(entry: CatalogueEntry, week: date) -> Layout:
    weeks = weeks_of(entry, week)
    return Layout(
        tuple((c, k, w) for k in entry.commodities for w in weeks for c in COMPONENTS[entry.metric])
    )


def entry_layout_hash(entry: CatalogueEntry, week: date) -> bytes:
    return layout_hash(layout(entry, week).cells)


# ---- a node's vector ----


def check_announce(entry: CatalogueEntry, announce: Announce) -> date:
    """The round's first Monday, once its announce is exactly a round of ``entry``.

    Raises RefusedError: the coordinator may not change what the governance signed.
    """
    if not announce.week:
        raise RefusedError(f"a round of {entry.name} must name its week")
    week = date.fromisoformat(announce.week)
    cells = layout(entry, week)
    planned = entry.planned(len(announce.candidates))
    noise = announce.noise
    if replace(noise, planned=0) != entry.noise or announce.n_min != entry.min_contributors:
        raise RefusedError(f"the round's noise or n_min differ from catalogue entry {entry.name}")
    if noise.planned != planned:
        raise RefusedError(
            f"the round plans its noise for {noise.planned} survivors, catalogue entry "
            f"{entry.name} for {planned} of {len(announce.candidates)} candidates"
        )
    if announce.dim != cells.dim or announce.layout_hash != layout_hash(cells.cells):
        raise RefusedError(f"the round's cells are not those of catalogue entry {entry.name}")
    if entry.graph == "complete" and announce.sparse:
        raise RefusedError(f"catalogue entry {entry.name} runs on the complete graph, not sparse")
    return week


def check_current(week: date, today: date) -> None:
    """RefusedError unless ``week`` is the current week by this node's clock (a day either
    side for clock skew): releasing other weeks would let the coordinator release one entry
    many times, once for each week it names."""
    current = {_monday(today + timedelta(days=d)) for d in (-1, 0, 1)}
    if week not in current:
        raise RefusedError(
            f"the round releases the week of {week}, not the current week of {_monday(today)}"
        )


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def node_vector(entry: CatalogueEntry, week: date, weekly: Weekly, group: int = 1) -> Ints:
    """This node's contribution before noise: values, presence and concentration segments;
    ``group`` is the number of members of this node's corporate group among the candidates."""
    cells = layout(entry, week)
    figures = _figures(entry, cells, weekly)
    values = to_grid([figures.get(cell, Decimal(0)) for cell in cells.values], _grid(entry))
    magnitude = np.abs(values)
    presence = np.minimum(magnitude, entry.presence_threshold) // group
    scales = np.array([entry.scale(k, c) for c, k, _ in cells.values], dtype=np.int64)
    clipped = np.minimum(group * magnitude, scales)  # at most 2^26: the squares stay exact
    concentration = CONCENTRATION_FINE * clipped * clipped // (group * scales)
    return np.concatenate([values, presence, concentration]).astype(np.int64)


def _grid(entry: CatalogueEntry) -> Fraction:
    return entry.noise.grid_value


def _figures(
    entry: CatalogueEntry, cells: Layout, weekly: Weekly
) -> dict[tuple[str, str, date], Decimal]:
    weeks = sorted({w for _, _, w in cells.values})
    facts = {metric: weekly(metric, weeks) for metric in FACTS[entry.metric]}
    if entry.metric == "utilisation":
        return _utilisation(facts, cells)
    if entry.metric in ("days-of-supply", "lead-time"):
        return _histogram(entry.metric, facts, cells)
    return {(c, k, w): facts[c].get((k, w), Decimal(0)) for c, k, w in cells.values}


def _utilisation(
    facts: Mapping[str, Mapping[tuple[str, date], Decimal]], cells: Layout
) -> dict[tuple[str, str, date], Decimal]:
    """Actual over capacity wafer starts, in permille of the grid, bounded: computed here so
    that only the bounded indicator is aggregated."""
    out = {}
    for component, key, week in cells.values:
        capacity = facts["wafer_starts_capacity"].get((key, week), Decimal(0))
        if capacity > 0:
            actual = facts["wafer_starts_actual"].get((key, week), Decimal(0))
            out[(component, key, week)] = min(1000 * actual / capacity, Decimal(MAX_UTILISATION))
    return out


def _histogram(
    metric: str, facts: Mapping[str, Mapping[tuple[str, date], Decimal]], cells: Layout
) -> dict[tuple[str, str, date], Decimal]:
    """One in the bin of this node's figure for each commodity and week it has one."""
    source, bins, prefix = (
        ("days_of_supply", DOS_BINS, "dos:")
        if metric == "days-of-supply"
        else ("lead_time_weeks", LEAD_BINS, "lead:")
    )
    out = {}
    for (key, week), figure in facts[source].items():
        label = [name for name, low in bins if figure >= low][-1]
        out[(f"{prefix}{label}", key, week)] = Decimal(1)
    return out


# ---- the release ----


@dataclass(frozen=True)
class Cell:
    """One published cell: its estimate, or why it is suppressed.

    ``estimate`` combines every release of the week, unbiased, with its interval; ``trend``
    is the week on the smoothed and consistent series, which the traffic light reads.
    """

    component: str
    commodity: str
    week: date
    estimate: Estimate | None
    contributors: str  # a band such as "5-9", or "<k"
    suppressed: str  # the reason, "" when published
    trend: Estimate | None = None


def band(count: float, k: int) -> str:
    """A contributor count as published: only its band."""
    if count < k:
        return f"<{k}"
    return [label for low, label in BANDS if count >= low][-1] if count >= BANDS[0][0] else f"{k}-4"


#: One-sided normal quantiles: 1% for the contributor count; for the dominance test, 0.8%
#: for the squares from above and 0.1% for each bound on the value, 1% in all.
Z_COUNT = NormalDist().inv_cdf(0.99)
Z_SQUARES = NormalDist().inv_cdf(0.992)
Z_VALUE = NormalDist().inv_cdf(0.999)


@dataclass(frozen=True)
class Stat:
    """An unbiased estimate of one cell's sum over the survivors, and its noise variance."""

    value: float
    var: float

    def low(self, z: float) -> float:
        return self.value - z * math.sqrt(self.var)

    def high(self, z: float) -> float:
        return self.value + z * math.sqrt(self.var)


@dataclass(frozen=True)
class Evidence:
    """What the disclosure rules see of one value cell: its three noisy statistics."""

    presence: Stat
    value: Stat
    squares: Stat
    slack: int  # what the nodes' floors may have taken off the squares: one per survivor
    group: int = 1  # the largest corporate group among the candidates
    week: Evidence | None = None  # the week alone, when the statistics above are wider


def disclosure(entry: CatalogueEntry, component: str, commodity: str, evidence: Evidence) -> str:
    """Why a cell must be suppressed, "" when it may be published.

    The k rule: the count's 99% lower bound must reach k; the count is a conservative one
    (groups once, contributors below P in part), so a cell with fewer than k contributors is
    published in at most 1% of releases. The dominance rule: if one group of g members
    holds a share s of the value V, its members' cells sum to at least F (s V)^2 / Q
    whenever Q >= sqrt(g) s V (uncapped by Cauchy-Schwarz; a capped member alone gives
    F Q / g), so the cell is published only when, with the value's and the squares'
    bounds, Q >= sqrt(g) s V_high and Q (squares_high + slack) / F < (s V_low)^2; the
    bounds fail with probabilities 0.1%, 0.1% and 0.8%, so a dominated cell is published
    in at most 1% of releases.
    """
    return _count_reason(entry, evidence) or _dominance_reason(
        entry, entry.scale(commodity, component), evidence
    )


def _count_reason(entry: CatalogueEntry, evidence: Evidence) -> str:
    k, least = entry.min_contributors, entry.min_contributors * entry.presence_threshold
    if evidence.presence.low(Z_COUNT) < least:
        return f"estimated contributors below {k}"
    if evidence.week is not None and evidence.week.presence.high(Z_COUNT) < least:
        return f"estimated contributors below {k} in this week"
    return ""


def _dominance_reason(entry: CatalogueEntry, scale: int, evidence: Evidence) -> str:
    share = float(entry.dominance_limit)
    percent = f"{share * 100:.0f}%"
    v_low, v_high = evidence.value.low(Z_VALUE), evidence.value.high(Z_VALUE)
    if v_low <= 0:
        return f"estimated value too close to zero to rule out one firm holding {percent}"
    if scale < math.sqrt(evidence.group) * share * v_high:
        return f"above the entry's concentration scale: one firm holding {percent} not ruled out"
    squares = (evidence.squares.high(Z_SQUARES) + evidence.slack) / CONCENTRATION_FINE
    if scale * squares >= share**2 * v_low**2:
        estimate = evidence.squares.value / CONCENTRATION_FINE
        index = max(0.0, scale * estimate / evidence.value.value**2)
        return f"one firm may hold {percent} or more (estimated concentration index {index:.2f})"
    if evidence.week is not None and _dominated_this_week(entry, scale, evidence.week):
        return f"one firm may hold {percent} or more in this week"
    return ""


def _dominated_this_week(entry: CatalogueEntry, scale: int, week: Evidence) -> bool:
    """Whether the week's own statistics clearly show a dominant firm, or a value beyond the
    scale, where the window's did not: a change the window averages away."""
    share = float(entry.dominance_limit)
    v_high = week.value.high(Z_COUNT)
    if scale < math.sqrt(week.group) * share * week.value.low(Z_COUNT):
        return True
    squares = week.squares.low(Z_COUNT) / CONCENTRATION_FINE
    return v_high > 0 and scale * squares >= share**2 * v_high**2


def estimated_contributors(entry: CatalogueEntry, evidence: Evidence) -> float:
    return max(0.0, evidence.presence.value / entry.presence_threshold)


@dataclass(frozen=True)
class Derived:
    """A figure derived from noisy cells: the traffic light, or a ratio with its interval."""

    commodity: str
    week: date
    label: str
    value: str


def derived(cells: Sequence[Cell], metric: str) -> list[Derived]:
    """The DCM traffic light (demand-capacity) or book-to-bill (ratio) per commodity-week."""
    by_place: dict[tuple[str, date], dict[str, Cell]] = {}
    for cell in cells:
        by_place.setdefault((cell.commodity, cell.week), {})[cell.component] = cell
    out = []
    for (key, week), parts in sorted(by_place.items()):
        text = _derive(metric, parts)
        if text:
            out.append(Derived(key, week, text[0], text[1]))
    return out


def _derive(metric: str, parts: Mapping[str, Cell]) -> tuple[str, str] | None:
    estimates = {name: cell.trend or cell.estimate for name, cell in parts.items()}
    if metric == "demand-capacity":
        d, a, x = (estimates.get(c) for c in ("demand", "capacity_actual", "capacity_max"))
        if d is None or a is None or x is None:
            return ("light", "suppressed")
        light, certain = traffic_light(d, a, x)
        return ("light", light if certain else f"{light} (uncertain)")
    if metric == "book-to-bill":
        b, s = estimates.get("bookings"), estimates.get("billings")
        if b is None or s is None:
            return ("book-to-bill", "suppressed")
        r = ratio_of(b, s)
        return (
            "book-to-bill",
            "undefined" if r is None else f"{r.value:.2f} [{r.low:.2f}, {r.high:.2f}]",
        )
    return None
