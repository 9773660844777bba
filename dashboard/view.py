"""What the dashboard's pages show, read from the releases: pure, no Flask, no I/O.

``index`` sorts the releases once per request, by entry and then by week; the pages' views
(the chain, the grid, the alerts) read only each entry's latest release, and a commodity's
weekly series (``weekly``) takes each week from the latest release whose horizon covers it,
so a past week shows the release of that week and the coming weeks show the latest one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from scfed.catalogue import Cell
from scfed.release import Alert, Release, light_rank
from scfed.taxonomy import parse_commodity

#: The stages as the goods flow, then the one that supplies them all.
FLOW = ("materials", "design", "fabrication", "assembly-test-packaging")
SUPPORT = "equipment"
DEMAND_CAPACITY = "demand-capacity"


@dataclass(frozen=True)
class Picture:
    """The releases of each entry, oldest first, and the alerts."""

    releases: dict[str, tuple[Release, ...]]
    alerts: tuple[Alert, ...]

    def latest(self, entry: str) -> Release:
        return self.releases[entry][-1]

    def commodities(self) -> frozenset[str]:
        return frozenset(c for rs in self.releases.values() for c in rs[-1].entry.commodities)

    def entries_of(self, commodity: str) -> list[str]:
        return [name for name, rs in self.releases.items() if commodity in rs[-1].entry.commodities]


def index(releases: Sequence[Release], alerts: Sequence[Alert]) -> Picture:
    grouped: dict[str, list[Release]] = {}
    for release in releases:
        grouped.setdefault(release.entry.name, []).append(release)
    ordered = {
        name: tuple(sorted(rs, key=lambda r: (r.week, r.log_index)))
        for name, rs in sorted(grouped.items())
    }
    return Picture(ordered, tuple(alerts))


def new_rounds(picture: Picture) -> frozenset[str]:
    """The rounds of each entry's latest release: their alerts are the new ones."""
    return frozenset(rs[-1].round_id for rs in picture.releases.values())


# ---- the chain at a glance ----


class _Lit:
    """What a tile and a grid cell say of their light: its colour, and whether uncertain."""

    light: str

    @property
    def colour(self) -> str:
        return self.light.split(" ", 1)[0] if self.light else "none"

    @property
    def uncertain(self) -> bool:
        return self.light.endswith("(uncertain)")


@dataclass(frozen=True)
class Tile(_Lit):
    commodity: str
    stage: str
    region: str
    light: str  # as the release has it, "red (uncertain)"; "" where no light covers it
    week: date | None
    later: tuple[str, date] | None  # a worse light further out in the horizon
    new_alert: bool


@dataclass(frozen=True)
class Chain:
    stages: tuple[str, ...]  # the flow's stages present in the data
    regions: tuple[str, ...]
    tiles: dict[tuple[str, str], tuple[Tile, ...]]  # by (region, stage)
    support: dict[str, tuple[Tile, ...]]  # equipment, by region

    def flow_regions(self) -> list[str]:
        """The regions with a commodity in a stage of the flow."""
        return [r for r in self.regions if any((r, s) in self.tiles for s in self.stages)]


def chain(picture: Picture) -> Chain:
    lights = current_lights(picture)
    alerted = {a.commodity for a in picture.alerts if a.round_id in new_rounds(picture)}
    tiles: dict[tuple[str, str], list[Tile]] = {}
    for key in sorted(picture.commodities()):
        parts = parse_commodity(key)
        light, week, later = lights.get(key, ("", None, None))
        tile = Tile(key, parts.stage, parts.region, light, week, later, key in alerted)
        tiles.setdefault((parts.region, parts.stage), []).append(tile)
    regions = tuple(sorted({region for region, _ in tiles}, key=_region_order))
    stages = tuple(s for s in FLOW if any(stage == s for _, stage in tiles))
    support = {r: tuple(tiles[(r, SUPPORT)]) for r in regions if (r, SUPPORT) in tiles}
    flow = {place: tuple(t) for place, t in tiles.items() if place[1] != SUPPORT}
    return Chain(stages, regions, flow, support)


def _region_order(region: str) -> tuple[int, str]:
    """Japan first (the first members are in Kyushu), then by code."""
    return (0 if region.startswith("JP") else 1, region)


Current = tuple[str, date | None, tuple[str, date] | None]


def current_lights(picture: Picture) -> dict[str, Current]:
    """Each commodity's light in the first week of the latest demand-capacity release that
    contains it, and the worst later light of that release's horizon if it is worse."""
    latest = sorted(
        (rs[-1] for rs in picture.releases.values() if rs[-1].entry.metric == DEMAND_CAPACITY),
        key=lambda r: (r.week, r.log_index),
    )
    out: dict[str, Current] = {}
    for release in latest:  # a later release overwrites an earlier one
        by_commodity: dict[str, list[tuple[date, str]]] = {}
        for (key, week), light in release.lights().items():
            by_commodity.setdefault(key, []).append((week, light))
        for key, weeks in by_commodity.items():
            out[key] = _current(sorted(weeks))
    return out


def _current(weeks: list[tuple[date, str]]) -> Current:
    first_week, first = weeks[0]
    worst = max(weeks[1:], key=lambda w: (light_rank(w[1]), -w[0].toordinal()), default=None)
    if worst is not None and light_rank(worst[1]) > light_rank(first):
        return (first, first_week, (worst[1], worst[0]))
    return (first, first_week, None)


# ---- the traffic-light grid ----


@dataclass(frozen=True)
class GridCell(_Lit):
    light: str  # "" where the release has no light for the cell
    reasons: tuple[tuple[str, str], ...]  # (component, reason) of the suppressed components
    notes: tuple[int, ...]  # footnote numbers of the reasons


@dataclass(frozen=True)
class Grid:
    release: Release
    weeks: tuple[date, ...]
    rows: tuple[tuple[str, tuple[GridCell, ...]], ...]
    notes: tuple[str, ...]  # footnote n is notes[n - 1]


def grids(picture: Picture, entry: str | None = None) -> list[Grid]:
    """The grid of each demand-capacity entry's latest release (or of ``entry`` only)."""
    names = [entry] if entry is not None else list(picture.releases)
    latest = [picture.latest(name) for name in names]
    return [grid(r) for r in latest if r.entry.metric == DEMAND_CAPACITY]


def grid(release: Release) -> Grid:
    lights = release.lights()
    cells = _cells_by_place(release.cells)
    weeks = tuple(sorted({week for _, week in cells} | {week for _, week in lights}))
    notes: dict[str, int] = {}
    rows = []
    for key in release.entry.commodities:
        row = []
        for week in weeks:
            reasons = tuple(
                (c.component, c.suppressed) for c in cells.get((key, week), []) if c.suppressed
            )
            numbers = tuple(notes.setdefault(text, len(notes) + 1) for _, text in reasons)
            row.append(GridCell(lights.get((key, week), ""), reasons, tuple(sorted(set(numbers)))))
        rows.append((key, tuple(row)))
    return Grid(release, weeks, tuple(rows), tuple(notes))


def _cells_by_place(cells: Sequence[Cell]) -> dict[tuple[str, date], list[Cell]]:
    out: dict[tuple[str, date], list[Cell]] = {}
    for cell in cells:
        out.setdefault((cell.commodity, cell.week), []).append(cell)
    return out


# ---- alerts ----


@dataclass(frozen=True)
class AlertRow:
    alert: Alert
    new: bool


def alert_rows(picture: Picture) -> list[AlertRow]:
    """The alerts, newest (highest log index) first."""
    new = new_rounds(picture)
    ordered = sorted(
        picture.alerts, key=lambda a: (-a.log_index, a.entry, a.commodity, a.week.toordinal())
    )
    return [AlertRow(a, a.round_id in new) for a in ordered]


# ---- one commodity's weeks ----


@dataclass(frozen=True)
class Week:
    """One week of a commodity in one entry: the release it is read from and its cells."""

    release: Release
    cells: dict[str, Cell]  # by component
    derived: dict[str, str]  # by label: "light", "book-to-bill"


def weekly(releases: Sequence[Release], commodity: str) -> dict[date, Week]:
    """The commodity's weeks in an entry's ``releases`` (oldest first): each week from the
    latest release that covers it."""
    out: dict[date, Week] = {}
    for release in releases:
        weeks: dict[date, Week] = {}
        for cell in release.cells:
            if cell.commodity == commodity:
                weeks.setdefault(cell.week, Week(release, {}, {})).cells[cell.component] = cell
        for figure in release.derived:
            if figure.commodity == commodity and figure.week in weeks:
                weeks[figure.week].derived[figure.label] = figure.value
        out.update(weeks)
    return dict(sorted(out.items()))
