"""Synthetic releases for the dashboard's tests and ``scfed bench dashboard``: a year (or any
number of weeks) of weekly releases of each metric over up to a few hundred commodities,
built as real ``scfed.release.Release`` objects (``published`` derives their lights), with
every light, uncertain lights, suppressed cells and alerts among them; and, in the last few
weeks, a crisis: need-spare releases of Kyushu's analog fab (``CRISIS``), what firms posted,
aggregated, with one cell suppressed. ``declared`` is a crisis governance could declare for
it. Pure.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Sequence
from datetime import date, timedelta

from scfed.catalogue import Cell
from scfed.dp.distribution import Estimate
from scfed.dp.params import MAGNITUDE, Noise
from scfed.release import Alert, Release, alerts, published
from scfed.wire.policy import METRIC_COMPONENTS, CatalogueEntry, Crisis

START = date(2026, 1, 5)
KYUSHU = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
FEW = "estimated contributors below 3"
DOMINATED = "one firm may hold 60% or more (estimated concentration index 0.71)"
NOISE = Noise("10", 1, MAGNITUDE, 1, "1", 10**6, True, 0, "10", "90")
METRICS = ("demand-capacity", "stock", "book-to-bill", "utilisation", "days-of-supply")
#: The need-spare entry of the crisis, its weekly releases (the last ones) and horizon.
CRISIS = "crisis-kyushu"
CRISIS_WEEKS = 3
CRISIS_HORIZON = 4


def commodities(count: int) -> tuple[str, ...]:
    """``count`` distinct commodity keys over every stage, Kyushu's analog fab first."""
    regions = ("JP-Kyushu", "JP-Kanto", "TW-Hsinchu", "US-Arizona", "KR")
    kinds = [KYUSHU]
    for region in regions:
        for product in ("analog", "logic", "micro", "memory", "discrete", "sensors"):
            kinds += [
                f"fabrication/{product}/90-180nm/200mm/{region}",
                f"fabrication/{product}/14-28nm/300mm/{region}",
                f"assembly-test-packaging/{product}/na/na/{region}",
                f"materials/{product}/na/300mm/{region}",
            ]
        kinds += [f"design/micro/14-28nm/na/{region}", f"equipment/logic/na/na/{region}"]
    unique = list(dict.fromkeys(kinds))
    if len(unique) < count:
        raise ValueError(f"at most {len(unique)} synthetic commodities")
    return tuple(sorted(unique[:count]))


def entry(metric: str, keys: Sequence[str], horizon: int) -> CatalogueEntry:
    return CatalogueEntry(
        name=f"weekly-{metric}", purpose=f"the {metric} of the chain", metric=metric,
        commodities=tuple(keys), horizon_weeks=horizon, noise=NOISE, min_contributors=3,
        dominance="0.6", presence_threshold=50, concentration_scale=5000,
        recipients=("members",), planned_percent=100,
    )  # fmt: skip


def _estimate(value: float, sd: float) -> Estimate:
    return Estimate(value, value - 1.96 * sd, value + 1.96 * sd, sd)


def _value(metric: str, component: str, i: int, week: int, release: int) -> Estimate:
    """A figure that makes every light appear, some of them uncertain."""
    jitter = (release % 3) * 4.0
    if metric == "demand-capacity":
        drift = release if i % 3 == 1 else 0  # these commodities' outlook changes weekly
        level = (900, 1150, 1300, 1350, 1600)[(i + week + drift) % 5]
        sd = 90.0 if (i + 2 * week) % 7 == 0 else 8.0
        figure = {"demand": level, "capacity_actual": 1200, "capacity_max": 1400}[component]
        return _estimate(figure + jitter, sd)
    if ":" in component:
        return _estimate(float((i + week + len(component)) % 9 + 1), 1.5)
    if metric == "need-spare":  # spare capacity short of the need in some weeks, not others
        figure = 40 + 6 * (week % 3) if component == "need" else (22, 41, 58, 47)[week % 4]
        return _estimate(figure + jitter / 4, 2.5)
    base = {"stock_wip": 3000, "billings": 5200, "utilisation": 8200}.get(component, 4800)
    return _estimate(base + 150.0 * ((i + week) % 6) + jitter, 60.0)


def _cell(
    metric: str, component: str, key: str, i: int, *, week: date, release: int, opens: bool
) -> Cell:
    w = (week - START).days // 7
    if metric == "need-spare" and component == "spare" and release == 0 and opens:
        return Cell(component, key, week, None, "<3", FEW)
    if metric == "demand-capacity" and i == 2 and component == "capacity_max":
        return Cell(component, key, week, None, "<3", FEW)
    if metric == "demand-capacity" and i == 4 and component == "demand" and w % 4 == 2:
        return Cell(component, key, week, None, "5-9", DOMINATED)
    estimate = _value(metric, component, i, w, release)
    band = ("5-9", "10-19", "20-49")[(i + w) % 3]
    return Cell(component, key, week, estimate, band, "", estimate)


def releases_of(
    item: CatalogueEntry, weeks: int, first_index: int, *, start: date = START, stride: int = 0
) -> list[Release]:
    """``weeks`` weekly releases of ``item`` from ``start``, the n-th at log index
    ``first_index + n * stride`` (by default one of each metric a week)."""
    out = []
    for n in range(weeks):
        week = start + timedelta(weeks=n)
        days = [week + timedelta(weeks=j) for j in range(item.horizon_weeks)]
        cells = [
            _cell(item.metric, component, key, i, week=day, release=n, opens=day == week)
            for i, key in enumerate(item.commodities)
            for day in days
            for component in METRIC_COMPONENTS[item.metric]
        ]
        round_id = hashlib.sha256(f"{item.name}/{n}".encode()).hexdigest()[:32]
        release = published(round_id, item, week, 12 + n % 4, cells)
        index = first_index + n * (stride or len(METRICS))
        out.append(dataclasses.replace(release, log_index=index))
    return out


def crisis_releases(weeks: int, first_index: int) -> list[Release]:
    """The crisis's need-spare releases of Kyushu's analog fab, one a week in the last
    ``CRISIS_WEEKS`` of ``weeks`` (the first with its spare capacity suppressed in its week)."""
    count = min(weeks, CRISIS_WEEKS)
    item = dataclasses.replace(
        entry("need-spare", (KYUSHU,), CRISIS_HORIZON), name=CRISIS,
        purpose="what firms posted in a declared crisis: need and spare capacity",
    )  # fmt: skip
    start = START + timedelta(weeks=weeks - count)
    return releases_of(item, count, first_index, start=start, stride=1)


def declared(today: date, name: str = "kyushu-earthquake") -> Crisis:
    """A crisis of Kyushu's analog fab, declared from a week before ``today`` for two months."""
    return Crisis(
        name, "wafer supply after the earthquake in Kumamoto", (KYUSHU,),
        (today - timedelta(days=7)).isoformat(), (today + timedelta(days=60)).isoformat(),
    )  # fmt: skip


@functools.cache
def synthetic(count: int, weeks: int, horizon: int) -> tuple[list[Release], list[Alert]]:
    """A year (or ``weeks``) of weekly releases of each metric over ``count`` commodities,
    the crisis's need-spare releases in the last weeks, and the alerts each release raises
    against the one before."""
    keys = commodities(count)
    found: list[Release] = []
    raised: list[Alert] = []
    for m, metric in enumerate(METRICS):
        series = releases_of(entry(metric, keys, horizon), weeks, m)
        for previous, release in zip([None, *series], series, strict=False):
            raised += alerts(release, previous)
        found += series
    found += crisis_releases(weeks, len(METRICS) * weeks)  # after the others in the log
    return found, raised
