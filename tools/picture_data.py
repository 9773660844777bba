"""A realistic synthetic federation: firms, commodities and weekly figures for a benchmark.

The benchmark measures how often the published demand-capacity (DCM) traffic lights are
right, so the data must look like the industry: some sixty foundries, IDMs, OSATs, wafer and
materials suppliers and automotive, industrial and consumer buyers in Japan, Taiwan, Korea and
the US; firm sizes skewed (the largest about a tenth of its side, the median about a hundredth);
big commodities with many capacity holders, niche ones with fewer than five; figures in whole
wafers a week (300 mm equivalent).

Pure: it reads only the two FRED series in the folder it is given, and its randomness comes
from the ``numpy.random.Generator`` it is passed (this is synthetic data, not privacy noise).
No clock, no files written, no global state.

Shapes, interpolated linearly from the monthly observations to each Monday:

- capacity (``capacity_actual``) follows CAPG3344S, the Federal Reserve's capacity index for
  NAICS 3344 (semiconductors), scaled per commodity; ``capacity_max`` is each firm's actual
  capacity times a factor of its own between 1.05 and 1.2;
- demand follows IPG3344S, the industrial-production index for NAICS 3344: a commodity's
  demand is its capacity times its normal load times utilisation (IPG3344S / CAPG3344S)
  relative to its 2015-2019 mean. Most commodities stay below actual capacity (green); a few
  reach between actual and maximum capacity (orange) at the 2021-22 peak;
- the legacy-node squeeze: in four legacy commodities (analog 90-180 nm 200 mm in Kyushu among
  them) demand climbs, from late 2020, well above maximum capacity (red) for more than a year,
  then eases back to around actual capacity.

A firm's figure is its commodity's total times the firm's share times (1 + a few per cent of
weekly noise). The shares come from the firm sizes, fitted to the commodity totals by iterative
proportional fitting. Deterministic given the state of the generator.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

#: Sums a firm's figures per (commodity key, week) for one metric (as ``scfed.catalogue``).
Weekly = Callable[[str, Sequence[date]], Mapping[tuple[str, date], Decimal]]

METRICS = ("demand", "capacity_actual", "capacity_max")
ROLES = ("foundry", "idm", "osat", "wafer", "materials", "buyer")
COUNTRIES = ("JP", "TW", "KR", "US")
#: The roles that hold fab capacity.
CAPACITY_ROLES = ("foundry", "idm")
MIN_FIRMS = 60

_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
#: The largest and the median firm's share of its side (capacity holders; demand holders).
_TOP_SHARE = 0.10
_MEDIAN_SHARE = 0.01
#: No firm is smaller than this fraction of the largest of its side.
_FLOOR = 50.0
#: Utilisation and capacity are measured against their mean over these years.
_REFERENCE = (date(2015, 1, 1), date(2020, 1, 1))
_CAPACITY_NOISE = 0.02
_DEMAND_NOISE = 0.03
_NOISE_CLIP = 2.5
_MAX_FACTOR = (1.05, 1.2)
_FIT_ROUNDS = 30
#: No holder of a commodity has less than this fraction of an even share of it.
_LEAST = 0.3
#: No firm holds more than this share of a commodity with 10 or more holders: the big
#: commodities of the synthetic chain are markets, not monopolies.
_MOST = 0.3
#: The weight, relative to one commodity still to take up, of a firm that has taken up all its.
_OVERRUN = 1e-3
#: A commodity with at least this many holders is big: a firm left without one joins one.
_BIG = 10


@dataclass(frozen=True)
class Firm:
    """A member of the federation."""

    member_id: str
    group: str
    role: str
    country: str

    def __post_init__(self) -> None:
        if not _ID.fullmatch(self.member_id) or not _ID.fullmatch(self.group):
            raise ValueError(f"ids are lowercase [a-z0-9-]: {self.member_id!r}, {self.group!r}")
        if self.role not in ROLES or self.country not in COUNTRIES:
            raise ValueError(f"{self.member_id}: role {self.role!r}, country {self.country!r}")


@dataclass(frozen=True)
class Federation:
    """The firms, the commodities, the weeks and every firm's figures."""

    firms: tuple[Firm, ...]
    commodities: tuple[str, ...]
    squeeze: tuple[str, ...]
    weeks: tuple[date, ...]
    #: (member_id, metric, commodity, week) -> whole wafers a week.
    figures: Mapping[tuple[str, str, str, date], Decimal]
    _index: dict[str, dict[str, dict[date, dict[str, Decimal]]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def weekly(self, member_id: str) -> Weekly:
        """For one firm: (metric, weeks) -> {(commodity, week): figure}, its nonzero figures."""
        if not self._index:
            self._index.update(_by_member(self))
        own = self._index.get(member_id)
        if own is None:
            raise KeyError(f"no firm {member_id!r} in the federation")

        def read(metric: str, weeks: Sequence[date]) -> Mapping[tuple[str, date], Decimal]:
            by_week = own.get(metric, {})
            return {(k, w): v for w in weeks for k, v in by_week.get(w, {}).items()}

        return read


_Index = dict[str, dict[str, dict[date, dict[str, Decimal]]]]


def _by_member(fed: Federation) -> _Index:
    """Each firm's nonzero figures by metric and week, read once per federation."""
    index: _Index = {firm.member_id: {} for firm in fed.firms}
    for (member, metric, key, week), value in fed.figures.items():
        if value != 0:
            index[member].setdefault(metric, {}).setdefault(week, {})[key] = value
    return index


# ---- the commodities ----


@dataclass(frozen=True)
class _Squeeze:
    """Demand times a trapezoid: 1 before ``rise``, ``peak`` from ``top`` to ``fall``."""

    rise: date
    top: date
    fall: date
    end: date
    peak: float


@dataclass(frozen=True)
class _Spec:
    key: str
    holders: int  # capacity holders
    demanders: int
    capacity: float  # wafers a week, at the reference capacity index
    load: float  # demand / actual capacity at reference utilisation
    squeeze: _Squeeze | None = None

    @property
    def country(self) -> str:
        return self.key.rsplit("/", 1)[1].partition("-")[0]

    @property
    def legacy(self) -> bool:
        return self.key.split("/")[2] in ("40-65nm", "90-180nm", ">=250nm")


# The 2020-23 shortage of legacy chips: from the autumn of 2020, eased by 2023.
_KYUSHU = _Squeeze(date(2020, 10, 1), date(2021, 1, 15), date(2022, 6, 30), date(2022, 12, 31), 1.5)
_HSINCHU = _Squeeze(
    date(2020, 9, 15), date(2020, 12, 15), date(2022, 3, 31), date(2022, 9, 30), 1.5
)
_US = _Squeeze(date(2020, 11, 1), date(2021, 2, 15), date(2022, 9, 30), date(2023, 3, 31), 1.45)
_KR = _Squeeze(date(2020, 12, 1), date(2021, 3, 1), date(2022, 6, 30), date(2023, 1, 31), 1.5)

_F = "fabrication"
KYUSHU_ANALOG = f"{_F}/analog/90-180nm/200mm/JP-Kyushu"
#: Key, capacity holders, demanders, capacity, load, squeeze. Loads of 0.84 and more reach
#: orange at the 2021-22 peak of utilisation (about 1.2 times its 2015-19 mean).
_SPECS = tuple(
    sorted(
        (
            _Spec(f"{_F}/logic/<=5nm/300mm/US-Arizona", 3, 16, 4000, 0.70),
            _Spec(f"{_F}/logic/<=5nm/300mm/KR-Gyeonggi", 4, 16, 6000, 0.75),
            _Spec(f"{_F}/sensors/40-65nm/300mm/JP-Kyushu", 3, 14, 3500, 0.78),
            _Spec(KYUSHU_ANALOG, 14, 34, 9000, 0.85, _KYUSHU),
            _Spec(f"{_F}/analog/>=250nm/200mm/US", 12, 30, 9000, 0.85, _US),
            _Spec(f"{_F}/discrete/>=250nm/200mm/KR", 12, 28, 8000, 0.85, _KR),
            _Spec(f"{_F}/logic/7-10nm/300mm/TW-Hsinchu", 8, 18, 15000, 0.78),
            _Spec(f"{_F}/memory/14-28nm/300mm/US", 6, 16, 8000, 0.72),
            _Spec(f"{_F}/opto/>=250nm/150mm/JP", 5, 12, 2500, 0.75),
            _Spec(f"{_F}/micro/40-65nm/300mm/JP", 10, 18, 7000, 0.76),
            _Spec(f"{_F}/micro/90-180nm/200mm/TW-Hsinchu", 13, 24, 9000, 0.85, _HSINCHU),
            _Spec(f"{_F}/logic/14-28nm/300mm/TW-Hsinchu", 15, 24, 30000, 0.84),
            _Spec(f"{_F}/logic/40-65nm/300mm/TW", 14, 22, 20000, 0.76),
            _Spec(f"{_F}/memory/14-28nm/300mm/KR-Gyeonggi", 12, 20, 35000, 0.74),
            _Spec(f"{_F}/analog/40-65nm/300mm/TW", 12, 20, 12000, 0.84),
            _Spec(f"{_F}/logic/14-28nm/300mm/US-Arizona", 10, 16, 8000, 0.70),
            _Spec(f"{_F}/analog/90-180nm/200mm/JP", 13, 22, 10000, 0.84),
            _Spec(f"{_F}/memory/40-65nm/300mm/JP", 10, 18, 12000, 0.76),
        ),
        key=lambda spec: spec.key,
    )
)


# ---- the FRED series ----


def _series(fred: Path, name: str) -> tuple[Floats, Floats]:
    """(day ordinals, values) of a FRED monthly CSV with columns observation_date and ``name``."""
    days: list[float] = []
    values: list[float] = []
    with (fred / f"{name}.csv").open(newline="") as file:
        for row in csv.DictReader(file):
            days.append(float(date.fromisoformat(row["observation_date"]).toordinal()))
            values.append(float(row[name]))
    if not days:
        raise ValueError(f"{fred / name}.csv holds no observations")
    return np.array(days), np.array(values)


def _at(series: tuple[Floats, Floats], days: Floats) -> Floats:
    """The series, interpolated linearly at ``days``; ValueError outside its observations."""
    known, values = series
    if days.min() < known.min() or days.max() > known.max():
        raise ValueError("the weeks asked for lie outside the FRED observations")
    return np.interp(days, known, values)


def _reference(series: tuple[Floats, Floats]) -> float:
    known, values = series
    low, high = (float(day.toordinal()) for day in _REFERENCE)
    return float(values[(known >= low) & (known < high)].mean())


def _ordinals(weeks: Sequence[date]) -> Floats:
    return np.array([float(week.toordinal()) for week in weeks])


def _squeeze(spec: _Spec, days: Floats) -> Floats:
    if spec.squeeze is None:
        return np.ones_like(days)
    s = spec.squeeze
    corners = _ordinals((s.rise, s.top, s.fall, s.end))
    return np.asarray(np.interp(days, corners, np.array([1.0, s.peak, s.peak, 1.0])))


def _totals(fred: Path, weeks: Sequence[date]) -> tuple[Floats, Floats]:
    """Per commodity and week: (actual capacity, demand), in wafers a week."""
    production, capacity = _series(fred, "IPG3344S"), _series(fred, "CAPG3344S")
    days = _ordinals(weeks)
    cap = _at(capacity, days) / _reference(capacity)
    used = _at(production, days) / _at(capacity, days)
    utilisation = used / (_reference(production) / _reference(capacity))
    actual = np.array([spec.capacity * cap for spec in _SPECS])
    load = np.array([spec.load * _squeeze(spec, days) for spec in _SPECS])
    demand = actual * load * utilisation
    return actual, demand


# ---- the firms ----

#: Firms per role out of 64; buyers are the rest.
_ROLE_COUNTS = (("foundry", 19), ("idm", 15), ("osat", 6), ("wafer", 3), ("materials", 3))
#: Countries of the firms of each role, in turn.
_ROLE_COUNTRIES = {
    "foundry": ("TW", "JP", "TW", "KR", "US", "TW", "JP", "KR", "TW", "US"),
    "idm": ("JP", "US", "KR", "JP", "US", "TW", "JP", "KR", "US"),
    "osat": ("TW", "KR", "JP", "US", "TW"),
    "wafer": ("JP", "TW", "KR", "US"),
    "materials": ("JP", "US", "KR", "TW"),
    "buyer": ("JP", "US", "KR", "TW", "JP", "US"),
}
_BUYER_KINDS = ("auto", "industrial", "consumer", "auto", "consumer", "industrial", "auto")
_PREFIX = {"foundry": "fab", "idm": "idm", "osat": "osat", "wafer": "wafer"}
_CITIES = {
    "JP": ("kumamoto", "oita", "nagasaki", "kitakyushu", "yokkaichi", "hiroshima", "nagoya"),
    "TW": ("hsinchu", "tainan", "taichung", "kaohsiung", "taoyuan", "miaoli"),
    "KR": ("pyeongtaek", "icheon", "hwaseong", "giheung", "cheongju", "gumi", "ulsan"),
    "US": ("phoenix", "chandler", "austin", "dallas", "portland", "boise", "malta", "detroit"),
}


@dataclass(frozen=True)
class _Draft:
    """A firm before its group is known; ``kind`` is the name's prefix (buyers: their market)."""

    member_id: str
    role: str
    country: str
    kind: str


def _roles(firms: int) -> list[str]:
    counts = [(role, round(firms * count / 64)) for role, count in _ROLE_COUNTS]
    roles = [role for role, count in counts for _ in range(count)]
    return roles + ["buyer"] * (firms - len(roles))


def _drafts(rng: np.random.Generator, firms: int) -> list[_Draft]:
    drafts: list[_Draft] = []
    taken: dict[str, int] = {}
    seen: dict[str, int] = {}
    for role in _roles(firms):
        turn = seen.get(role, 0)
        seen[role] = turn + 1
        countries = _ROLE_COUNTRIES[role]
        country = countries[turn % len(countries)]
        kind = (
            _BUYER_KINDS[turn % len(_BUYER_KINDS)] if role == "buyer" else _PREFIX.get(role, role)
        )
        stem = f"{kind}-{rng.choice(_CITIES[country])}"
        taken[stem] = taken.get(stem, 0) + 1
        drafts.append(_Draft(f"{stem}-{taken[stem]}", role, country, kind))
    return drafts


def _groups(rng: np.random.Generator, drafts: Sequence[_Draft]) -> list[str]:
    """Each firm's group: its own id, but for a few pairs of firms of one country."""
    groups = [draft.member_id for draft in drafts]
    holders = [i for i, draft in enumerate(drafts) if draft.role in CAPACITY_ROLES]
    free = set(range(len(drafts)))
    for leader in rng.choice(holders, size=len(drafts) // 16, replace=False):
        if leader not in free:
            continue
        mates = [i for i in sorted(free - {leader}) if drafts[i].country == drafts[leader].country]
        take = rng.choice(mates, size=min(len(mates), 1), replace=False)
        for i in (leader, *take):
            groups[i] = drafts[leader].member_id
            free.discard(int(i))
    return groups


# ---- who holds what, and how much ----


def _shape(spread: Floats, steep: float, bend: float) -> Floats:
    """Shares falling from the top with ``spread`` (0 to 1, 1 the largest firm), summing to 1;
    ``bend`` > 1 flattens the top and steepens the tail. None below a 50th of the largest."""
    sizes = np.exp(-steep * (1.0 - spread) ** bend)
    sizes = np.maximum(sizes, sizes.max() / _FLOOR)
    return np.asarray(sizes / sizes.sum(), dtype=np.float64)


def _steep(spread: Floats, bend: float) -> float:
    """The steepness at which the largest share is _TOP_SHARE (bisection)."""
    low, high = 0.0, 100.0
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if _shape(spread, mid, bend).max() < _TOP_SHARE else (low, mid)
    return low


def _sizes(rng: np.random.Generator, n: int) -> Floats:
    """Shares of one side, summing to 1: the largest _TOP_SHARE, the median _MEDIAN_SHARE."""
    spread = (rng.permutation(n) + rng.uniform(size=n)) / n
    low, high = 0.25, 6.0
    for _ in range(40):
        bend = (low + high) / 2
        median = float(np.median(_shape(spread, _steep(spread, bend), bend)))
        low, high = (bend, high) if median > _MEDIAN_SHARE else (low, bend)
    return _shape(spread, _steep(spread, low), low)


def _affinity(drafts: Sequence[_Draft], side: str) -> Floats:
    """How likely each firm (row) is to hold each commodity (column) on one side."""
    home = 4.0 if side == "capacity" else 2.0
    rows = []
    for draft in drafts:
        row = []
        for spec in _SPECS:
            weight = home if draft.country == spec.country else 1.0
            if draft.kind in ("auto", "industrial") and spec.legacy:
                weight *= 3.0
            if draft.kind == "consumer" and not spec.legacy:
                weight *= 3.0
            row.append(weight)
        rows.append(row)
    return np.array(rows)


def _degrees(rng: np.random.Generator, drafts: Sequence[_Draft], sizes: Floats, side: str) -> Ints:
    """How many commodities each firm aims to hold on one side."""
    if side == "capacity":
        big = sizes >= np.median(sizes)
        return np.where(big, rng.integers(4, 8, len(drafts)), rng.integers(3, 7, len(drafts)))
    ranges = {"buyer": (8, 14), "osat": (5, 10), "idm": (3, 8)}
    return np.array([rng.integers(*ranges.get(draft.role, (4, 9))) for draft in drafts])


def _pick(rng: np.random.Generator, base: Floats, remaining: Floats, count: int) -> Ints:
    """``count`` distinct firms by ``base`` times the commodities they still aim to take up;
    past their aim firms are drawn only when too few others are left, least-overrun first."""
    over = _OVERRUN * 2.0 ** np.minimum(remaining, 0.0)
    weights = base * np.where(remaining > 0, remaining, over)
    count = min(count, len(weights))
    return np.asarray(
        rng.choice(len(weights), size=count, replace=False, p=weights / weights.sum())
    )


def _membership(
    rng: np.random.Generator, affinity: Floats, sizes: Floats, degrees: Ints, side: str
) -> Bools:
    """member[firm, commodity]: each commodity gets its number of holders or demanders."""
    counts = [spec.holders if side == "capacity" else spec.demanders for spec in _SPECS]
    member = np.zeros(affinity.shape, dtype=np.bool_)
    remaining = degrees.astype(np.float64)
    for c in np.argsort(counts, kind="stable"):
        # A niche commodity's few holders are big firms.
        base = affinity[:, c] * sizes ** (1.0 if counts[c] < 5 else 0.3)
        chosen = _pick(rng, base, remaining, counts[c])
        member[chosen, c] = True
        remaining[chosen] -= 1
    _cover(rng, member, affinity, np.array(counts))
    return member


def _cover(rng: np.random.Generator, member: Bools, affinity: Floats, counts: Ints) -> None:
    """A firm left without a commodity joins a big one."""
    eligible = counts >= _BIG if np.any(counts >= _BIG) else np.ones(len(counts), np.bool_)
    for f in np.flatnonzero(~member.any(axis=1)):
        weights = affinity[f] * eligible
        member[f, rng.choice(len(weights), p=weights / weights.sum())] = True


def _fit(member: Bools, rows: Floats, columns: Floats) -> Floats:
    """Each member's share of each commodity, fitted to the firms' sizes (rows, summing to 1)
    and the commodities' totals (columns) by iterative proportional fitting; no member falls
    below _LEAST of an even share of its commodity."""
    rows = rows * columns.sum()
    least = _LEAST * columns / member.sum(axis=0)
    x = member * rows[:, None]
    for _ in range(_FIT_ROUNDS):
        x = x * (rows / x.sum(axis=1))[:, None]
        x = x * (columns / x.sum(axis=0))[None, :]
        x = np.where(member, np.maximum(x, least[None, :]), 0.0)
        most = np.where(member.sum(axis=0) >= _BIG, _MOST * columns, np.inf)
        x = np.minimum(x, most[None, :])
    return np.asarray(x / x.sum(axis=0)[None, :], dtype=np.float64)


def _side(
    rng: np.random.Generator, drafts: Sequence[_Draft], side: str, columns: Floats
) -> tuple[Bools, Floats]:
    """(membership, shares) of one side's firms."""
    sizes = _sizes(rng, len(drafts))
    degrees = _degrees(rng, drafts, sizes, side)
    member = _membership(rng, _affinity(drafts, side), sizes, degrees, side)
    return member, _fit(member, sizes, columns)


# ---- the figures ----


def _noise(rng: np.random.Generator, scale: float, weeks: int) -> Floats:
    draw = rng.normal(0.0, 1.0, weeks).clip(-_NOISE_CLIP, _NOISE_CLIP)
    return np.asarray(1.0 + scale * draw, dtype=np.float64)


def _wafers(values: Floats) -> Iterator[Decimal]:
    for value in np.maximum(np.rint(values), 1.0):
        yield Decimal(int(value))


def _capacity(
    rng: np.random.Generator, drafts: Sequence[_Draft], actual: Floats, weeks: Sequence[date]
) -> Iterator[tuple[tuple[str, str, str, date], Decimal]]:
    member, share = _side(rng, drafts, "capacity", actual[:, 0])
    factors = rng.uniform(*_MAX_FACTOR, len(drafts))
    for f, c in zip(*np.nonzero(member), strict=True):
        firm, key = drafts[f].member_id, _SPECS[c].key
        figure = actual[c] * share[f, c] * _noise(rng, _CAPACITY_NOISE, len(weeks))
        for week, a, m in zip(weeks, _wafers(figure), _wafers(figure * factors[f]), strict=True):
            yield (firm, "capacity_actual", key, week), a
            yield (firm, "capacity_max", key, week), max(a, m)


def _demand(
    rng: np.random.Generator, drafts: Sequence[_Draft], demand: Floats, weeks: Sequence[date]
) -> Iterator[tuple[tuple[str, str, str, date], Decimal]]:
    member, share = _side(rng, drafts, "demand", demand.mean(axis=1))
    for f, c in zip(*np.nonzero(member), strict=True):
        firm, key = drafts[f].member_id, _SPECS[c].key
        figure = demand[c] * share[f, c] * _noise(rng, _DEMAND_NOISE, len(weeks))
        for week, value in zip(weeks, _wafers(figure), strict=True):
            yield (firm, "demand", key, week), value


def federation(
    fred: Path,
    rng: np.random.Generator,
    *,
    firms: int = 64,
    start: date = date(2020, 6, 1),
    weeks: int = 70,
) -> Federation:
    """A federation of ``firms`` firms with figures for ``weeks`` Mondays from ``start``.

    ``fred`` is the folder of IPG3344S.csv and CAPG3344S.csv; the weeks must lie within their
    observations. Deterministic given the state of ``rng``.
    """
    if firms < MIN_FIRMS or weeks < 1 or start.weekday() != 0:
        raise ValueError(f"need >= {MIN_FIRMS} firms, >= 1 week and a Monday to start")
    mondays = tuple(start + timedelta(weeks=i) for i in range(weeks))
    actual, demand = _totals(fred, mondays)
    drafts = _drafts(rng, firms)
    groups = _groups(rng, drafts)
    holders = [d for d in drafts if d.role in CAPACITY_ROLES]
    buyers = [d for d in drafts if d.role != "foundry"]
    figures = dict(_capacity(rng, holders, actual, mondays))
    figures.update(_demand(rng, buyers, demand, mondays))
    return Federation(
        firms=tuple(
            Firm(d.member_id, group, d.role, d.country)
            for d, group in zip(drafts, groups, strict=True)
        ),
        commodities=tuple(spec.key for spec in _SPECS),
        squeeze=tuple(spec.key for spec in _SPECS if spec.squeeze is not None),
        weeks=mondays,
        figures=MappingProxyType(figures),
    )
