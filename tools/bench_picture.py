"""Is the published picture right? ``scfed bench picture``. A benchmark, not a test.

A synthetic federation of 64 firms in Japan, Taiwan, Korea and the US (tools.picture_data,
shaped by the FRED semiconductor production and capacity series over the 2020-22 squeeze)
runs a year of weekly releases of the demand-capacity entry at the default budget, through
the real code: each firm's vector (scfed.catalogue.node_vector, once), each firm's noise
share of every segment from the exact sampler (scfed.dp.sampler.sample, drawn for all
survivors of a release in one call per segment, as each node's contribution would), and
the published picture (scfed.picture.release, which combines, smooths and discloses). For
each of many noise draws it compares every published traffic light with the noise-free
light of the same survivors, and counts how often the squeeze cells show red in their
truly red weeks and why cells were suppressed. Edge code: reads the FRED files, draws
noise from the OS.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from fractions import Fraction
from pathlib import Path

import numpy as np

from scfed.catalogue import COMPONENTS, Cell, layout, node_vector
from scfed.dp.contribution import Ints
from scfed.dp.distribution import Estimate, traffic_light
from scfed.dp.ledger import windows_per_period
from scfed.dp.plan import entry_noise
from scfed.dp.sampler import Keystream, sample
from scfed.errors import ConfigError
from scfed.picture import Round, release, round_of
from scfed.wire.policy import CatalogueEntry
from tools.picture_data import Federation, federation

#: The default budget and privacy unit the benchmark holds to.
RHO_YEAR = Fraction(1, 2)
RADIUS = 100
HORIZON = 13
PRESENCE_THRESHOLD = 100
DOMINANCE = "0.6"
#: Survivors the noise is planned for (with --dropouts, a node or two is down some weeks).
PLANNED_PERCENT = 95
METRIC = "demand-capacity"
#: How far above the dominance rule's least scale Q is set.
SCALE_MARGIN = 1.15


def default_fred() -> Path:
    """The FRED series' folder, ``shared/data/fred`` in a folder above the working one."""
    for parent in Path.cwd().resolve().parents:
        folder = parent / "shared" / "data" / "fred"
        if folder.is_dir():
            return folder
    raise ConfigError("the FRED series were not found: name their folder with --fred")


def entry_for(fed: Federation, group: int) -> CatalogueEntry:
    """The demand-capacity entry governance would sign for this federation, its noise
    planned for the default budget at the weekly cadence (scfed.dp.plan)."""
    scales = tuple(_scale(fed, k, c, group) for k in fed.commodities for c in COMPONENTS[METRIC])
    noise = entry_noise(
        bound=RADIUS, rho_release=RHO_YEAR / windows_per_period("weekly", "year"),
        overlap=Fraction(2 * PRESENCE_THRESHOLD + 1, 2 * min(scales)), group=group,
        plausible=10**6,
    )  # fmt: skip
    return CatalogueEntry(
        "weekly-demand-capacity", "where demand will exceed capacity", METRIC, fed.commodities,
        HORIZON, noise, 5, DOMINANCE, PRESENCE_THRESHOLD, max(scales), ("members",), "weekly",
        PLANNED_PERCENT, scales,
    )  # fmt: skip


def _scale(fed: Federation, commodity: str, component: str, group: int) -> int:
    """Q for one component of a commodity: the dominance rule needs Q >= sqrt(g) s V, so
    Q is that for the largest weekly total the component reaches, with a margin; a market
    size governance would take from public figures."""
    totals: Counter[date] = Counter()
    for (_, metric, key, week), figure in fed.figures.items():
        if key == commodity and metric == component:
            totals[week] += int(figure)
    share = float(DOMINANCE) * group**0.5 * SCALE_MARGIN
    return max(1, int(share * max(totals.values())))


@dataclass
class Tally:
    """What the draws showed."""

    lights: Counter[str] = field(default_factory=Counter)  # "10+:right", "5-9:wrong", ...
    squeeze: Counter[str] = field(default_factory=Counter)  # "lead0:red", "all:other", ...
    suppressed: Counter[str] = field(default_factory=Counter)
    cells: int = 0
    draws: int = 0
    releases: int = 0

    def share(self, counter: Counter[str], key: str, good: str) -> tuple[int, float]:
        total = sum(v for k, v in counter.items() if k.startswith(f"{key}:"))
        return total, (counter[f"{key}:{good}"] / total if total else float("nan"))

    def summary(self) -> dict[str, object]:
        rows: dict[str, object] = {}
        for key in ("10+", "10+@0", "5-9", "any"):
            n, right = self.share(self.lights, key, "right")
            rows[f"lights {key} contributors"] = {"published": n, "right": right}
        for key in ("lead0", "all"):
            n, red = self.share(self.squeeze, key, "red")
            rows[f"squeeze red ({key})"] = {"truly red": n, "shown red": red}
        rows["suppressed"] = {k: v / self.cells for k, v in self.suppressed.most_common()}
        rows["draws"], rows["releases"] = self.draws, self.releases
        return rows

    def table(self, seconds: float) -> str:
        lines = [
            f"{self.releases} weekly releases x {self.draws} noise draws, rho {RHO_YEAR} a "
            f"firm-year, R = {RADIUS} wafers, {seconds:.0f} s",
            "| measure | count | share |",
            "|---|--:|--:|",
        ]
        labels = {
            "10+": "10+ contributors",
            "10+@0": "10+ contributors, in the week itself",
            "5-9": "5-9 contributors",
        }
        for key, label in labels.items():
            n, right = self.share(self.lights, key, "right")
            shown = f"{right:.1%}" if n else "none published"
            lines.append(f"| lights right, {label} | {n:,} | {shown} |")
        n, right = self.share(self.lights, "any", "right")
        lines.append(f"| every light right, before the disclosure rules | {n:,} | {right:.1%} |")
        for key, label in (("lead0", "in the week itself"), ("all", "at every lead")):
            n, red = self.share(self.squeeze, key, "red")
            lines.append(f"| squeeze red in its red weeks, {label} | {n:,} | {red:.1%} |")
        for reason, count in sorted(self.suppressed.items()):
            lines.append(f"| cells suppressed: {reason} | {count:,} | {count / self.cells:.1%} |")
        return "\n".join(lines)


def measure(fred: Path, *, draws: int, releases: int, seed: int, dropouts: int = 0) -> Tally:
    """Run the federation's releases ``draws`` times with fresh noise, and tally."""
    fed = federation(fred, np.random.default_rng(seed))
    groups = Counter(f.group for f in fed.firms)
    group_of = {f.member_id: f.group for f in fed.firms}
    entry = entry_for(fed, max(groups.values()))
    weeks = list(fed.weeks[:releases])
    plan = np.random.default_rng(seed + 1)
    survivors = [_survivors(fed, plan, dropouts) for _ in weeks]
    inputs = [
        sum(
            (node_vector(entry, week, fed.weekly(m), groups[group_of[m]]) for m in alive),
            np.zeros(layout(entry, week).dim, dtype=np.int64),
        )
        for week, alive in zip(weeks, survivors, strict=True)
    ]
    truth = [_truth(fed, entry, w, alive) for w, alive in zip(weeks, survivors, strict=True)]
    year = _Year(fed, entry, weeks, survivors, inputs, truth, max(groups.values()))
    tally = Tally(draws=draws, releases=len(weeks))
    for _ in range(draws):
        _draw(year, tally)
    return tally


@dataclass(frozen=True)
class _Year:
    """A year of releases without their noise: who takes part, their summed vectors, and
    the noise-free lights."""

    fed: Federation
    entry: CatalogueEntry
    weeks: Sequence[date]
    survivors: Sequence[tuple[str, ...]]
    inputs: Sequence[Ints]
    truth: Sequence[_Truth]
    largest: int


def _survivors(fed: Federation, rng: np.random.Generator, most: int) -> tuple[str, ...]:
    """Each release loses 0 to ``most`` firms at random: nodes that are down that week."""
    ids = [f.member_id for f in fed.firms]
    lost = rng.choice(ids, size=int(rng.integers(0, most + 1)), replace=False).tolist()
    return tuple(sorted(set(ids) - set(lost)))


@dataclass(frozen=True)
class _Truth:
    """The noise-free light of every firm's figures, and each light's fewest contributors."""

    lights: Mapping[tuple[str, date], str]
    contributors: Mapping[tuple[str, date], int]  # the fewest groups of its three cells


def _truth(fed: Federation, entry: CatalogueEntry, week: date, alive: Sequence[str]) -> _Truth:
    """The noise-free lights of one release's horizon, from its survivors' own figures."""
    group = {f.member_id: f.group for f in fed.firms}
    components = COMPONENTS[entry.metric]
    weeks = layout_weeks(entry, week)
    sums: Counter[tuple[str, str, date]] = Counter()
    holders: dict[tuple[str, str, date], set[str]] = {}
    for member in alive:
        for metric in components:
            for (key, w), figure in fed.weekly(member)(metric, weeks).items():
                sums[(metric, key, w)] += int(figure)
                holders.setdefault((metric, key, w), set()).add(group[member])
    lights, counts = {}, {}
    for key in entry.commodities:
        for w in weeks:
            d, a, x = (sums[(c, key, w)] for c in components)
            lights[(key, w)] = "green" if d <= a else "orange" if d <= x else "red"
            counts[(key, w)] = min(len(holders.get((c, key, w), ())) for c in components)
    return _Truth(lights, counts)


def layout_weeks(entry: CatalogueEntry, week: date) -> list[date]:
    return sorted({w for _, _, w in layout(entry, week).values})


def _draw(year: _Year, tally: Tally) -> None:
    """One year of releases with fresh noise: each survivor's share of every segment's noise
    from the real sampler, drawn for all survivors at once."""
    entry, rounds = year.entry, list[Round]()
    planned = entry.planned(len(year.fed.firms))
    noise = replace(entry.noise, planned=planned)
    steps = zip(year.weeks, year.survivors, year.inputs, year.truth, strict=True)
    for week, alive, x, true in steps:
        parts = []
        for segment in noise.segments(len(x), entry.min_contributors):
            draws = sample(segment.sigma_l2, len(alive) * segment.cells, _source())
            parts.append(draws.reshape(len(alive), segment.cells).sum(axis=0))
        sums = x + np.concatenate(parts)
        rounds.append(round_of(entry, week, sums, len(alive), planned=planned, group=year.largest))
        _score(release(entry, rounds, disclose=False), week, true, year.fed, tally)


def _source() -> Keystream:
    return Keystream(os.urandom(32))


def _score(cells: Sequence[Cell], week: date, true: _Truth, fed: Federation, tally: Tally) -> None:
    by_place: dict[tuple[str, date], dict[str, Estimate | None]] = {}
    published: dict[tuple[str, date], bool] = {}
    for cell in cells:
        tally.cells += 1
        if cell.suppressed:
            tally.suppressed[_reason(cell.suppressed)] += 1
        place = (cell.commodity, cell.week)
        by_place.setdefault(place, {})[cell.component] = cell.trend
        published[place] = published.get(place, True) and not cell.suppressed
    for place, parts in by_place.items():
        before = _light(parts)
        actual = true.lights[place]
        tally.lights[f"any:{'right' if before == actual else 'wrong'}"] += 1
        light = before if published[place] else None
        if place[0] in fed.squeeze and actual == "red":
            shown = "red" if light == "red" else "other"
            tally.squeeze[f"all:{shown}"] += 1
            if place[1] == week:
                tally.squeeze[f"lead0:{shown}"] += 1
        if light is None:
            continue
        count = true.contributors[place]
        key = "10+" if count >= 10 else "5-9" if count >= 5 else "<5"
        verdict = "right" if light == actual else "wrong"
        tally.lights[f"{key}:{verdict}"] += 1
        if place[1] == week:
            tally.lights[f"{key}@0:{verdict}"] += 1


def _light(parts: Mapping[str, Estimate | None]) -> str | None:
    d, a, x = (parts.get(c) for c in ("demand", "capacity_actual", "capacity_max"))
    if d is None or a is None or x is None:
        return None
    return traffic_light(d, a, x)[0]


def _reason(text: str) -> str:
    """A suppression reason without its numbers, to count by."""
    return text.split(" (", maxsplit=1)[0]
