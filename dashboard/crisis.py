"""The crisis page: the crises governance declared, and the need-spare figures released.

Pure. The declared crises come from the signed policy the config sees (``dashboard.source``);
the figures from the need-spare releases, which aggregate what firms posted in a crisis
(their need and their spare capacity of a commodity, per week) with secure aggregation and
noise, as every catalogue entry's: no firm is named. Each commodity's weeks are read as the
commodity page reads them (``view.weekly``): a past week from the release of that week, the
coming weeks from the latest one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from dashboard import i18n
from dashboard.charts import Chart, lines
from dashboard.view import Picture, Week, weekly
from scfed.catalogue import Cell
from scfed.dp.distribution import Estimate, normal_estimate
from scfed.release import Release, unit
from scfed.wire.policy import Crisis

NEED_SPARE = "need-spare"
#: Where a crisis stands on the day the page is built.
ON, UPCOMING, ENDED = "on", "upcoming", "ended"


@dataclass(frozen=True)
class Declared:
    """A crisis in the signed policy, where it stands today, and which of its commodities
    have figures on the page."""

    crisis: Crisis
    status: str  # ON, UPCOMING or ENDED
    shown: frozenset[str]


@dataclass(frozen=True)
class Row:
    """One week of a commodity's need and spare capacity, and the gap between them."""

    week: date
    need: Cell | None
    spare: Cell | None
    gap: Estimate | None  # need - spare, where both are published

    @property
    def verdict(self) -> str:
        """ "short" where the need is above the spare capacity beyond the noise, "spare" where
        it is below, "even" where the 95% interval of the gap holds zero, "" for no gap."""
        if self.gap is None:
            return ""
        if self.gap.low > 0:
            return "short"
        return "spare" if self.gap.high < 0 else "even"


@dataclass(frozen=True)
class Figures:
    """One need-spare entry's figures of one commodity: its chart and its weeks."""

    entry: str
    latest: Release
    unit: str  # in the page's language
    chart: Chart
    rows: tuple[Row, ...]
    notes: tuple[str, ...]  # the reasons, as released: footnote n is notes[n - 1]

    def note(self, reason: str) -> int:
        """The footnote number of a suppressed cell's reason."""
        return self.notes.index(reason) + 1


@dataclass(frozen=True)
class Commodity:
    key: str
    crises: tuple[str, ...]  # the declared crises of this commodity
    figures: tuple[Figures, ...]


@dataclass(frozen=True)
class Page:
    declared: tuple[Declared, ...]
    commodities: tuple[Commodity, ...]

    @property
    def charts(self) -> list[Chart]:
        return [f.chart for c in self.commodities for f in c.figures]


def status(crisis: Crisis, today: date) -> str:
    if crisis.on(today):
        return ON
    return UPCOMING if today < date.fromisoformat(crisis.start) else ENDED


def page(picture: Picture, crises: Sequence[Crisis], today: date, lang: str) -> Page:
    """The crisis page: the declared crises, then each commodity with need-spare cells."""
    found: dict[str, list[tuple[str, tuple[Release, ...]]]] = {}
    for name, releases in picture.releases.items():
        if releases[-1].entry.metric != NEED_SPARE:
            continue
        for key in sorted({c.commodity for r in releases for c in r.cells}):
            found.setdefault(key, []).append((name, releases))
    commodities = []
    for key in sorted(found):
        figures = [_figures(name, releases, key, lang) for name, releases in found[key]]
        named = tuple(c.name for c in crises if key in c.commodities)
        commodities.append(Commodity(key, named, tuple(figures)))
    for number, chart in enumerate(c.chart for item in commodities for c in item.figures):
        chart["id"] = f"crisis-chart-{number}"
    keys = frozenset(found)
    declared = tuple(
        Declared(c, status(c, today), keys.intersection(c.commodities)) for c in crises
    )
    return Page(declared, tuple(commodities))


def _figures(name: str, releases: Sequence[Release], key: str, lang: str) -> Figures:
    weeks = weekly(releases, key)
    rows = tuple(_row(day, week) for day, week in weeks.items())
    notes = (c.suppressed for r in rows for c in (r.need, r.spare) if c and c.suppressed)
    shown = i18n.unit(lang, unit(NEED_SPARE, "need", key))
    chart = lines(weeks, NEED_SPARE, key, lang)
    return Figures(name, releases[-1], shown, chart, rows, tuple(dict.fromkeys(notes)))


def _row(day: date, week: Week) -> Row:
    need, spare = week.cells.get("need"), week.cells.get("spare")
    return Row(day, need, spare, gap(need, spare))


def gap(need: Cell | None, spare: Cell | None) -> Estimate | None:
    """Need minus spare capacity with its 95% interval: the two cells' noises are independent,
    so their variances add (as ``scfed.dp.distribution.ratio_of`` treats two estimates)."""
    if need is None or spare is None or need.estimate is None or spare.estimate is None:
        return None
    n, s = need.estimate, spare.estimate
    return normal_estimate(float(n.value) - float(s.value), n.sd**2 + s.sd**2)
