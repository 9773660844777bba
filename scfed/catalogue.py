"""Catalogue rounds: the cell layout, a node's vector, and the release. Pure: no I/O.

A round of a catalogue entry has three segments, in this order:
- values: for each commodity, each week of the horizon and each component of the metric, the
  node's figure on the grid (components are facts such as demand, or bounded indicators the
  node computes locally: utilisation in permille, one-hot histogram bins);
- presence: for each value cell, ``presence_weight`` if the node has a figure there (so the
  sum counts the cell's contributors);
- concentration: for each value cell, min(x, Q)^2 // Q with Q the entry's concentration
  scale, so the sum estimates the sum of squares and hence the Herfindahl index.
Every segment is noised alike; the sensitivity of a magnitude round covers the concentration
segment (``Noise.delta2``). Presence is what it says: under magnitude privacy the number of
contributors per cell is not hidden, so it is used only to suppress cells and is published
only as a band.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import numpy as np

from scfed.dp.contribution import Ints, to_grid
from scfed.dp.distribution import Estimate, cell_estimate, ratio, traffic_light
from scfed.errors import RefusedError
from scfed.messages import Announce, layout_hash
from scfed.policy import CatalogueEntry

#: Bins of the days-of-supply and quoted lead-time histograms: (label, lower bound).
DOS_BINS = (("0-7d", 0), ("7-14d", 7), ("14-30d", 14), ("30-60d", 30), ("60d+", 60))
LEAD_BINS = (("0-8w", 0), ("8-16w", 8), ("16-26w", 16), ("26-52w", 26), ("52w+", 52))
#: Utilisation is computed by each node, in permille, clipped to this.
MAX_UTILISATION = 1500

COMPONENTS: dict[str, tuple[str, ...]] = {
    "demand-capacity": ("demand", "capacity_actual", "capacity_max"),
    "stock": ("stock_finished", "stock_wip"),
    "book-to-bill": ("bookings", "billings"),
    "utilisation": ("utilisation",),
    "days-of-supply": tuple(f"dos:{label}" for label, _ in DOS_BINS),
    "lead-time": tuple(f"lead:{label}" for label, _ in LEAD_BINS),
}
#: The facts a node reads for each metric.
FACTS: dict[str, tuple[str, ...]] = {
    "demand-capacity": ("demand", "capacity_actual", "capacity_max"),
    "stock": ("stock_finished", "stock_wip"),
    "book-to-bill": ("bookings", "billings"),
    "utilisation": ("wafer_starts_actual", "wafer_starts_capacity"),
    "days-of-supply": ("days_of_supply",),
    "lead-time": ("lead_time_weeks",),
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
    if announce.noise != entry.noise or announce.n_min != entry.min_contributors:
        raise RefusedError(f"the round's noise or n_min differ from catalogue entry {entry.name}")
    if announce.dim != cells.dim or announce.layout_hash != layout_hash(cells.cells):
        raise RefusedError(f"the round's cells are not those of catalogue entry {entry.name}")
    return week


def node_vector(entry: CatalogueEntry, week: date, weekly: Weekly) -> Ints:
    """This node's contribution before noise: values, presence and concentration segments."""
    cells = layout(entry, week)
    figures = _figures(entry, cells, weekly)
    values = to_grid([figures.get(cell, Decimal(0)) for cell in cells.values], _grid(entry))
    presence = np.where(values != 0, entry.presence_weight, 0).astype(np.int64)
    scale = entry.concentration_scale
    clipped = np.minimum(np.abs(values), scale).astype(object)  # exact squares past 2^63
    concentration = np.array([int(c) * int(c) // scale for c in clipped], dtype=np.int64)
    return np.concatenate([values, presence, concentration])


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
    """One published cell: its estimate, or why it is suppressed."""

    component: str
    commodity: str
    week: date
    estimate: Estimate | None
    contributors: str  # a band such as "5-9", or "<k"
    suppressed: str  # the reason, "" when published


def band(count: int, k: int) -> str:
    if count < k:
        return f"<{k}"
    return [label for low, label in BANDS if count >= low][-1] if count >= BANDS[0][0] else f"{k}-4"


def release(entry: CatalogueEntry, week: date, sums: Ints, survivors: int) -> list[Cell]:
    """Every value cell with its interval, or suppressed with the reason, from the noisy sums."""
    cells = layout(entry, week)
    n = len(cells.values)
    values, presence, squares = sums[:n], sums[n : 2 * n], sums[2 * n :]
    sigma_l2 = entry.noise.local_variance(entry.min_contributors)
    out = []
    for (component, key, w), value, present, square in zip(
        cells.values, values, presence, squares, strict=True
    ):
        count = max(0, round(int(present) / entry.presence_weight))
        reason = _suppressed(entry, count, int(value), int(square))
        estimate = None if reason else cell_estimate(int(value), sigma_l2=sigma_l2, m=survivors)
        out.append(Cell(component, key, w, estimate, band(count, entry.min_contributors), reason))
    return out


def _suppressed(entry: CatalogueEntry, count: int, value: int, square: int) -> str:
    if count < entry.min_contributors:
        return f"fewer than {entry.min_contributors} contributors"
    if value > 0:
        hhi = Fraction(max(square, 0) * entry.concentration_scale, value * value)
        if hhi >= entry.concentration_limit:
            return f"dominated by one firm (concentration index {float(hhi):.2f})"
    return ""


@dataclass(frozen=True)
class Derived:
    """A figure derived from noisy cells: the traffic light, or a ratio with its interval."""

    commodity: str
    week: date
    label: str
    value: str


def derived(entry: CatalogueEntry, cells: Sequence[Cell], survivors: int) -> list[Derived]:
    """The DCM traffic light (demand-capacity) or book-to-bill (ratio) per commodity-week."""
    by_place: dict[tuple[str, date], dict[str, Cell]] = {}
    for cell in cells:
        by_place.setdefault((cell.commodity, cell.week), {})[cell.component] = cell
    sigma_l2 = entry.noise.local_variance(entry.min_contributors)
    out = []
    for (key, week), parts in sorted(by_place.items()):
        text = _derive(entry.metric, parts, sigma_l2, survivors)
        if text:
            out.append(Derived(key, week, text[0], text[1]))
    return out


def _derive(
    metric: str, parts: Mapping[str, Cell], sigma_l2: int, m: int
) -> tuple[str, str] | None:
    estimates = {name: cell.estimate for name, cell in parts.items()}
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
        r = ratio(int(b.value), int(s.value), sigma_l2=sigma_l2, m_num=m, m_den=m)
        return (
            "book-to-bill",
            "undefined" if r is None else f"{r.value:.2f} [{r.low:.2f}, {r.high:.2f}]",
        )
    return None
