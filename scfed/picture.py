"""The published picture of a catalogue entry: its rounds combined, smoothed and disclosed.

Pure: no I/O. Post-processing of published releases costs no privacy, and it is how the
picture gets right at a small budget. Every round of an entry releases each week of its
horizon again, so a week has been estimated by up to ``horizon_weeks`` rounds when it comes
round: those estimates are combined by their inverse noise variances. The weekly series is
then smoothed by penalised least squares with a second-difference penalty (Whittaker 1923;
Eilers, "A perfect smoother", Analytical Chemistry 2003), weighting each week by its
combined precision, as Fan and Xiong smooth differentially private time series
("Real-time aggregate monitoring with differential privacy", CIKM 2012); then the figures
are made consistent (maximum capacity at least actual capacity, nothing negative), in the
spirit of Hay et al. ("Boosting the accuracy of differentially private histograms through
consistency", VLDB 2010). The smoother is linear, so each figure's variance is exact for
the noise; the intervals are normal ones around it.

The disclosure rules read the presence and concentration statistics combined the same way
and averaged over a window of weeks around each week: a cell's structure, who supplies it
and how concentrated it is, changes slowly, and the average of many weeks is what makes
the rules decidable at a small budget. The rules' one-sided tests use the variance of those
averages, so they keep their error rates while the structure is stable over the window;
a week whose own estimates clearly show fewer than k contributors or a dominant firm is held
whatever its window says, which catches a large change, not a firm or two leaving or a
share that grows a little (catalogue.disclosure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

from scfed.catalogue import (
    COMPONENTS,
    Cell,
    Evidence,
    Stat,
    band,
    disclosure,
    estimated_contributors,
    layout,
    weeks_of,
)
from scfed.dp.contribution import Ints
from scfed.dp.distribution import normal_estimate
from scfed.wire.policy import CatalogueEntry

Floats = NDArray[np.float64]

#: Rounds older than this before the latest one no longer shape the picture.
HISTORY_WEEKS = 26
#: The smoothing penalty of each component, relative to the typical precision of a week;
#: "" for components not named.
SMOOTHING = {"": 16.0, "capacity_actual": 4096.0, "capacity_max": 4096.0}
#: The disclosure statistics are averaged over this many weeks either side.
STRUCTURE_WEEKS = 26
_SEGMENTS = 3


@dataclass(frozen=True)
class Round:
    """One published round of an entry: its week, noisy sums and each segment's noise."""

    week: date
    sums: Ints
    survivors: int
    variances: tuple[float, float, float]  # per cell: survivors x sigma_l^2 of each segment
    group: int  # the largest corporate group among the candidates


def round_of(
    entry: CatalogueEntry, week: date, sums: Ints, survivors: int, *, planned: int,
    group: int = 1,
) -> Round:  # fmt: skip
    """A round as the picture reads it, from what its announce and result say."""
    noise = replace(entry.noise, planned=planned)
    segments = noise.segments(len(sums), entry.min_contributors)
    variances = tuple(float(survivors * s.sigma_l2) for s in segments)
    if len(variances) != _SEGMENTS:
        raise ValueError("a catalogue round has values, presence and concentration segments")
    return Round(week, sums, survivors, (variances[0], variances[1], variances[2]), group)


@dataclass(frozen=True)
class _Series:
    """Each segment's inverse-variance combination per (component, commodity) and week."""

    weeks: tuple[date, ...]
    mean: Floats  # [segment, place, week]
    var: Floats  # [segment, place, week]; inf where no round estimated the week
    slack: int  # the most survivors of any round: what the floors may take off
    group: int


def release(entry: CatalogueEntry, rounds: Sequence[Round], *, disclose: bool = True) -> list[Cell]:
    """The cells of the latest round's horizon, combined with every earlier round.

    ``rounds`` are rounds of ``entry``, in any order; the picture is as of the latest.
    ``disclose=False`` keeps the estimates of cells the rules suppress (their reasons still
    given): for measuring the picture, never for publishing it.
    """
    if not rounds:
        raise ValueError("a picture needs at least one round")
    latest = max(rounds, key=lambda r: r.week)
    recent = [r for r in rounds if latest.week - r.week <= timedelta(weeks=HISTORY_WEEKS)]
    series = _combine(entry, recent, latest.week)
    values, variance = _consistent(entry, *_smooth(entry, series.mean[0], series.var[0]))
    out = []
    for p, (component, key) in enumerate(_places(entry)):
        for week in weeks_of(entry, latest.week):
            w = series.weeks.index(week)
            evidence = _evidence(series, p, w)
            reason = disclosure(entry, component, key, evidence)
            count = band(round(estimated_contributors(entry, evidence)), entry.min_contributors)
            if reason and disclose:
                out.append(Cell(component, key, week, None, count, reason))
                continue
            combined = normal_estimate(series.mean[0, p, w], series.var[0, p, w])
            trend = normal_estimate(values[p, w], variance[p, w])
            out.append(Cell(component, key, week, combined, count, reason, trend))
    order = COMPONENTS[entry.metric]
    return sorted(out, key=lambda c: (c.commodity, c.week, order.index(c.component)))


def _places(entry: CatalogueEntry) -> list[tuple[str, str]]:
    return [(c, k) for k in entry.commodities for c in COMPONENTS[entry.metric]]


def _combine(entry: CatalogueEntry, rounds: Sequence[Round], latest: date) -> _Series:
    first = min(r.week for r in rounds)
    span = (latest - first).days // 7 + entry.horizon_weeks
    weeks = tuple(first + timedelta(weeks=i) for i in range(span))
    index = {(c, k): p for p, (c, k) in enumerate(_places(entry))}
    precision = np.zeros((_SEGMENTS, len(index), span))
    weighted = np.zeros((_SEGMENTS, len(index), span))
    for r in rounds:
        cells = layout(entry, r.week).values
        rows = np.array([index[(c, k)] for c, k, _ in cells])
        cols = np.array([(w - first).days // 7 for _, _, w in cells])
        n = len(cells)
        for s in range(_SEGMENTS):
            part = r.sums[s * n : (s + 1) * n].astype(np.float64)
            precision[s, rows, cols] += 1.0 / r.variances[s]
            weighted[s, rows, cols] += part / r.variances[s]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(precision > 0, weighted / precision, 0.0)
        var = np.where(precision > 0, 1.0 / precision, np.inf)
    return _Series(weeks, mean, var, max(r.survivors for r in rounds), max(r.group for r in rounds))


def _smooth(entry: CatalogueEntry, y: Floats, var: Floats) -> tuple[Floats, Floats]:
    """Penalised least squares along the weeks, (W + lambda D'D) mu = W y, and the variance
    of each smoothed figure, diag(M W M) with M the inverse; each component with its own
    lambda (capacity moves more slowly than demand)."""
    components = COMPONENTS[entry.metric]
    smoothed, variance = np.empty_like(y), np.empty_like(y)
    for c, component in enumerate(components):
        rows = slice(c, None, len(components))
        lam = SMOOTHING.get(component, SMOOTHING[""])
        smoothed[rows], variance[rows] = _whittaker(y[rows], var[rows], lam)
    return smoothed, variance


def _whittaker(y: Floats, var: Floats, lam: float) -> tuple[Floats, Floats]:
    observed = np.isfinite(var)
    weight = np.where(observed, 1.0 / np.where(observed, var, 1.0), 0.0)
    span = y.shape[1]
    if span < 3:
        return y, var
    second = np.diff(np.eye(span), n=2, axis=0)
    # Every place of one round has the same noise, so one system serves them all.
    w = weight.max(axis=0)
    system = np.diag(w) + lam * float(np.mean(w[w > 0])) * (second.T @ second)
    inverse = np.linalg.inv(system)
    smoothed = (inverse @ (w * np.where(observed, y, 0.0)).T).T
    variance = np.einsum("ij,j,ij->i", inverse, w, inverse)
    return smoothed, np.broadcast_to(variance, y.shape).copy()


def _consistent(entry: CatalogueEntry, values: Floats, var: Floats) -> tuple[Floats, Floats]:
    """Maximum capacity at least the actual capacity, and no negative figure."""
    values = np.maximum(values, 0.0)
    if entry.metric != "demand-capacity":
        return values, var
    components = COMPONENTS[entry.metric]
    actual, maximum = components.index("capacity_actual"), components.index("capacity_max")
    step = len(components)
    for start in range(0, values.shape[0], step):
        a, x = values[start + actual], values[start + maximum]
        crossed = x < a
        middle = (a + x) / 2.0
        a[crossed], x[crossed] = middle[crossed], middle[crossed]
    return values, var


def _evidence(series: _Series, place: int, week: int) -> Evidence:
    low, high = max(0, week - STRUCTURE_WEEKS), week + STRUCTURE_WEEKS + 1
    stats = []
    for s in range(_SEGMENTS):
        var = series.var[s, place, low:high]
        seen = np.isfinite(var)
        n = int(seen.sum())
        mean = float(series.mean[s, place, low:high][seen].mean())
        stats.append(Stat(mean, float(var[seen].sum()) / (n * n)))
    value, presence, squares = stats
    alone = [
        Stat(float(series.mean[s, place, week]), float(series.var[s, place, week]))
        for s in range(_SEGMENTS)
    ]
    own = Evidence(alone[1], alone[0], alone[2], series.slack, series.group)
    return Evidence(presence, value, squares, series.slack, series.group, own)
