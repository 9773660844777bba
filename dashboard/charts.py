"""A commodity's page: per catalogue entry, its charts as JSON for ``static/charts.js``.

Pure. Each chart is a plain dict (it is written into the page as JSON): its labels, the
unit on its value axis, and per series the values with their 95% intervals and contributor
bands, ``None`` where a cell is suppressed. Words are already in the page's language.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from dashboard import i18n
from dashboard.view import DEMAND_CAPACITY, Picture, Week, weekly
from scfed.dp.distribution import Estimate
from scfed.release import Release, unit
from scfed.wire.policy import METRIC_COMPONENTS

Chart = dict[str, object]
COLOURS = ("#1d4ed8", "#b45309", "#0f766e", "#7c3aed", "#be185d")
HISTOGRAMS = ("days-of-supply", "lead-time")
_RATIO = re.compile(r"(-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\]")


@dataclass(frozen=True)
class Section:
    """One entry's part of a commodity's page."""

    entry: str
    metric: str
    latest: Release
    lights: tuple[tuple[date, str], ...]  # demand-capacity: the light of each week
    charts: tuple[Chart, ...]
    contributors: tuple[tuple[str, str], ...]  # (component, band) in the latest week
    suppressed: tuple[tuple[str, str, tuple[date, ...]], ...]  # (component, reason, weeks)


def sections(picture: Picture, commodity: str, lang: str) -> list[Section]:
    """The commodity's sections, demand and capacity first, in the order of the metrics."""
    order = list(METRIC_COMPONENTS)
    names = picture.entries_of(commodity)
    names.sort(key=lambda name: order.index(picture.latest(name).entry.metric))
    out: list[Section] = []
    for name in names:
        first = sum(len(s.charts) for s in out)
        out.append(_section(picture.releases[name], commodity, lang, first))
    return out


def _section(releases: Sequence[Release], key: str, lang: str, first: int) -> Section:
    latest = releases[-1]
    metric = latest.entry.metric
    weeks = weekly(releases, key)
    if metric in HISTOGRAMS:
        charts = [_histogram(latest, key, lang)]
    else:
        charts = [lines(weeks, metric, key, lang)]
    if metric == "book-to-bill":
        charts.append(_ratio(weeks, lang))
    for number, chart in enumerate(charts, first):
        chart["id"] = f"chart-{number}"
    lights = tuple((w, week.derived.get("light", "")) for w, week in weeks.items())
    return Section(
        latest.entry.name, metric, latest, lights if metric == DEMAND_CAPACITY else (),
        tuple(charts), _contributors(latest, key, lang), _suppressed(weeks, lang),
    )  # fmt: skip


def component_name(lang: str, component: str) -> str:
    if ":" in component:
        return i18n.bin_label(lang, component)
    return i18n.message(lang, f"component.{component}")


def lines(weeks: dict[date, Week], metric: str, key: str, lang: str) -> Chart:
    """The line chart of a metric's components over the weeks, with 95% bands."""
    components = METRIC_COMPONENTS[metric]
    series = [
        _series(lang, c, colour, [_estimate(w, c) for w in weeks.values()])
        for c, colour in zip(components, COLOURS, strict=False)
    ]
    for item, component in zip(series, components, strict=True):
        item["bands"] = [w.cells[component].contributors if component in w.cells else None
                         for w in weeks.values()]  # fmt: skip
    return _chart(
        lang, "line", title=i18n.message(lang, f"metric.{metric}"),
        unit=i18n.unit(lang, unit(metric, components[0], key)),
        labels=[i18n.iso_week(w) for w in weeks], series=series,
    )  # fmt: skip


def _estimate(week: Week, component: str) -> Estimate | None:
    cell = week.cells.get(component)
    return None if cell is None else cell.estimate


def _histogram(release: Release, key: str, lang: str) -> Chart:
    metric = release.entry.metric
    here = {c.component: c for c in release.cells if c.commodity == key and c.week == release.week}
    components = METRIC_COMPONENTS[metric]
    item = _series(lang, "firms", COLOURS[0], [here[c].estimate if c in here else None
                                               for c in components])  # fmt: skip
    item["bands"] = [here[c].contributors if c in here else None for c in components]
    title = i18n.message(lang, "commodity.histogram", week=i18n.iso_week(release.week))
    chart = _chart(
        lang, "bar", title=f"{i18n.message(lang, f'metric.{metric}')}: {title}",
        unit=i18n.unit(lang, unit(metric, components[0], key)),
        labels=[i18n.bin_label(lang, c) for c in components], series=[item],
    )  # fmt: skip
    chart["xlabel"] = i18n.message(lang, f"metric.{metric}")
    return chart


def _ratio(weeks: dict[date, Week], lang: str) -> Chart:
    estimates = [_parse_ratio(w.derived.get("book-to-bill", "")) for w in weeks.values()]
    item = _series(lang, "bookings", COLOURS[3], estimates)
    item["name"] = i18n.message(lang, "commodity.ratio")
    return _chart(
        lang, "line", title=i18n.message(lang, "commodity.ratio"),
        unit=i18n.message(lang, "axis.ratio"), labels=[i18n.iso_week(w) for w in weeks],
        series=[item],
    )  # fmt: skip


def _parse_ratio(text: str) -> Estimate | None:
    found = _RATIO.fullmatch(text)
    if not found:
        return None
    value, low, high = (float(g) for g in found.groups())
    return Estimate(value, low, high, 0.0)


def _series(lang: str, component: str, colour: str, estimates: Sequence[Estimate | None]) -> Chart:
    return {
        "name": component_name(lang, component), "colour": colour,
        "values": [None if e is None else round(float(e.value), 2) for e in estimates],
        "low": [None if e is None else round(e.low, 2) for e in estimates],
        "high": [None if e is None else round(e.high, 2) for e in estimates],
    }  # fmt: skip


def _chart(
    lang: str, kind: str, *, title: str, unit: str, labels: list[str], series: list[Chart]
) -> Chart:
    return {
        "type": kind, "title": title, "unit": unit, "labels": labels, "series": series,
        "xlabel": i18n.message(lang, "axis.week"), "lang": lang,
        "interval": i18n.message(lang, "interval"),
        "contributors": i18n.message(lang, "contributors"),
    }  # fmt: skip


def _contributors(release: Release, key: str, lang: str) -> tuple[tuple[str, str], ...]:
    """The contributor band of each component in the latest release's first week."""
    order = METRIC_COMPONENTS[release.entry.metric]
    here = {c.component: c for c in release.cells if c.commodity == key and c.week == release.week}
    return tuple((component_name(lang, c), here[c].contributors) for c in order if c in here)


def _suppressed(
    weeks: dict[date, Week], lang: str
) -> tuple[tuple[str, str, tuple[date, ...]], ...]:
    """The suppressed cells of the weeks shown, grouped by component and reason."""
    grouped: dict[tuple[str, str], list[date]] = {}
    for week, row in weeks.items():
        for component, cell in row.cells.items():
            if cell.suppressed:
                grouped.setdefault((component, cell.suppressed), []).append(week)
    return tuple(
        (component_name(lang, c), i18n.reason(lang, text), tuple(days))
        for (c, text), days in sorted(grouped.items())
    )
