"""A release: what one catalogue round publishes, as its recipients receive it. Pure.

The coordinator builds it from the round's logged result and the entry's earlier rounds
(``scfed.picture``), with the disclosure rules applied, signs it and logs it
(``round.release``); the recipients' nodes fetch it, verify it and keep it. Its figures are
in the commodity's own unit (the grid already multiplied out), and ``unit`` names that unit
for every component: wafers of the commodity's size or units per week, firms for a
histogram's bins, permille for utilisation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache

import numpy as np

from scfed.catalogue import Cell, Derived, derived
from scfed.dp.distribution import Estimate
from scfed.groups import groups
from scfed.picture import Round, release, round_of
from scfed.taxonomy import NOT_APPLICABLE, parse_commodity
from scfed.tlog import leaf_hash
from scfed.tlog_verify import verify_inclusion
from scfed.wire import RELEASE
from scfed.wire.codec import decode_release
from scfed.wire.envelope import Envelope, verify
from scfed.wire.messages import (
    Announce,
    Publication,
    Registry,
    ReleaseCell,
    ReleaseFigure,
    Result,
)
from scfed.wire.policy import CatalogueEntry
from scfed.witness import LogView

#: Traffic lights from best to worst; "suppressed" where a cell of the light is withheld.
LIGHTS = ("green", "orange", "red")


@dataclass(frozen=True)
class Release:
    """A published catalogue round: its entry, week, cells and derived figures.

    ``round_id`` is hex; ``log_index`` the release's leaf in the protocol log (-1 before
    it is logged).
    """

    round_id: str
    entry: CatalogueEntry
    week: date
    survivors: int
    cells: tuple[Cell, ...]
    derived: tuple[Derived, ...]
    log_index: int = -1

    def lights(self) -> dict[tuple[str, date], str]:
        """The traffic light of each (commodity, week) of a demand-capacity release: green,
        orange, red or "suppressed", with " (uncertain)" where the intervals allow another."""
        return {(d.commodity, d.week): d.value for d in self.derived if d.label == "light"}


def published(
    round_id: str, entry: CatalogueEntry, week: date, survivors: int, cells: Sequence[Cell]
) -> Release:
    """The release of ``cells`` (from ``scfed.picture.release``, in grid units), its figures
    in the commodity's unit and its derived figures read from them."""
    grid = float(entry.noise.grid_value)
    scaled = tuple(_scaled(cell, grid) for cell in cells)
    return Release(round_id, entry, week, survivors, scaled, tuple(derived(scaled, entry.metric)))


def _scaled(cell: Cell, grid: float) -> Cell:
    if grid == 1.0:
        return cell
    return replace(cell, estimate=_times(cell.estimate, grid), trend=_times(cell.trend, grid))


def _times(estimate: Estimate | None, grid: float) -> Estimate | None:
    if estimate is None:
        return None
    e = estimate
    return Estimate(e.value * grid, e.low * grid, e.high * grid, e.sd * grid)


@dataclass(frozen=True)
class Published:
    """A round with a logged result: what its announce and result say."""

    announce: Announce
    result: Result


def choose(
    stored: Sequence[Published],
    round_hex: str | None,
    entry_named: Callable[[str], CatalogueEntry | None],
    registry: Registry,
) -> Release | None:
    """The release of the chosen catalogue round (default: the latest), as the picture shows
    it: combined with the entry's earlier rounds up to it."""
    catalogue = [p for p in stored if p.announce.week and entry_named(p.announce.query)]
    if round_hex:
        ids = [p.announce.round_id.hex() for p in catalogue]
        catalogue = catalogue[: ids.index(round_hex) + 1] if round_hex in ids else []
    if not catalogue:
        return None
    last = catalogue[-1]
    entry = entry_named(last.announce.query)
    assert entry is not None  # filtered above
    rounds = [_round(entry, p, registry) for p in catalogue if p.announce.query == entry.name]
    week = date.fromisoformat(last.announce.week)
    m = len(last.result.survivors)
    return published(last.announce.round_id.hex(), entry, week, m, release(entry, rounds))


def _round(entry: CatalogueEntry, published: Published, registry: Registry) -> Round:
    announce, result = published.announce, published.result
    sums = np.frombuffer(result.sums, dtype="<i8").astype(np.int64)
    largest = groups(registry, announce.candidates).largest
    return round_of(
        entry, date.fromisoformat(announce.week), sums, len(result.survivors),
        planned=announce.noise.planned_for(announce.n_min), group=largest,
    )  # fmt: skip


def to_publication(release_: Release, result_hash: bytes, policy_version: int) -> Publication:
    """The release as the coordinator signs and logs it."""

    def numbers(e: Estimate | None) -> tuple[float, ...]:
        return () if e is None else (float(e.value), e.low, e.high, e.sd)

    cells = tuple(
        ReleaseCell(
            c.component,
            c.commodity,
            c.week.isoformat(),
            numbers(c.estimate),
            numbers(c.trend),
            c.contributors,
            c.suppressed,
        )
        for c in release_.cells
    )
    figures = tuple(
        ReleaseFigure(d.commodity, d.week.isoformat(), d.label, d.value) for d in release_.derived
    )
    entry = release_.entry
    return Publication(
        bytes.fromhex(release_.round_id), result_hash, entry.name, release_.week.isoformat(),
        policy_version, release_.survivors, entry.recipients, cells, figures,
    )  # fmt: skip


def from_publication(p: Publication, entry: CatalogueEntry, log_index: int) -> Release:
    """A logged release as its recipients read it, with the catalogue entry it names."""
    day = lru_cache(maxsize=None)(date.fromisoformat)  # a release has few weeks, many cells

    def estimate(numbers: tuple[float, ...]) -> Estimate | None:
        return Estimate(*numbers) if numbers else None

    def cell(c: ReleaseCell) -> Cell:
        e, trend = estimate(c.estimate), estimate(c.trend)
        return Cell(c.component, c.commodity, day(c.week), e, c.contributors, c.suppressed, trend)

    cells = tuple(cell(c) for c in p.cells)
    figures = tuple(Derived(d.commodity, day(d.week), d.label, d.value) for d in p.derived)
    return Release(p.round_id.hex(), entry, day(p.week), p.survivors, cells, figures, log_index)


def light_rank(light: str) -> int:
    """0 green, 1 orange, 2 red (uncertain or not); -1 for a suppressed or unknown light."""
    base = light.split(" ", 1)[0]
    return LIGHTS.index(base) if base in LIGHTS else -1


def unit(metric: str, component: str, commodity: str) -> str:
    """The unit of a component's figures for one commodity, in English."""
    if metric in ("days-of-supply", "lead-time"):
        return "firms"
    if metric == "utilisation":
        return "permille x firms"
    wafer = parse_commodity(commodity).wafer
    stage = parse_commodity(commodity).stage
    thing = f"wafers ({wafer})" if stage == "fabrication" and wafer != NOT_APPLICABLE else "units"
    return thing if metric == "stock" else f"{thing}/week"


@dataclass(frozen=True)
class Alert:
    """A release that turned a commodity orange or red, or worsened it, in the week it
    releases (the first of its horizon) or any later week of the horizon.

    ``before`` is the light the entry's previous release gave the same commodity and week
    ("" if none did).
    """

    entry: str
    round_id: str
    log_index: int
    commodity: str
    week: date
    before: str
    light: str

    def as_json(self) -> dict[str, object]:
        return {
            "entry": self.entry, "round": self.round_id, "log_index": self.log_index,
            "commodity": self.commodity, "week": self.week.isoformat(),
            "before": self.before or None, "light": self.light,
        }  # fmt: skip


def alerts(release: Release, previous: Release | None) -> list[Alert]:
    """What ``release`` raises against the entry's ``previous`` release: each commodity-week
    now orange or red whose light is new or worse than before (an uncertain light counts
    as its colour)."""
    before = previous.lights() if previous is not None else {}
    out = []
    for (commodity, week), light in sorted(release.lights().items()):
        was = before.get((commodity, week), "")
        if light_rank(light) >= 1 and light_rank(light) > light_rank(was):
            entry, round_id, index = release.entry.name, release.round_id, release.log_index
            out.append(Alert(entry, round_id, index, commodity, week, was, light))
    return out


def verify_release(
    signed: bytes, index: int, checkpoint: bytes, inclusion: Sequence[bytes], *, origin: str,
    coordinator_key: bytes,
) -> Publication:  # fmt: skip
    """The release in ``signed`` once its signature verifies with ``coordinator_key`` and
    its inclusion at ``index`` in the coordinator-signed ``checkpoint``; VerificationError
    (or RemoteProtocolError for a malformed body) otherwise."""
    envelope = Envelope.from_bytes(signed)
    verify(envelope, origin, RELEASE, coordinator_key)
    opened = LogView(origin, coordinator_key).opened(checkpoint).checkpoint
    verify_inclusion(leaf_hash(signed), index, opened.size, inclusion, opened.root)
    return decode_release(envelope.body)
