"""The disclosure rules hold under noise: thousands of simulated releases of real node vectors.

Each scenario is a set of firms with figures for one commodity-week of a demand-capacity
entry. Every firm's vector comes from ``node_vector`` once; each release then draws fresh
discrete Gaussian noise for every firm and segment with the real sampler (each segment's
sigma_l^2 from ``Noise.segments``), sums, and publishes through ``picture.release``. A
release has three value cells (demand, actual and maximum capacity), all with the firms'
same figure and each with its own noise: each cell is one trial of the rules.

The rules promise one-sided error rates whatever the noise: a cell with fewer than k
contributors, or one a single corporate group dominates, is published in at most 1% of
releases. Each scenario's noise is chosen so that its cell is genuinely uncertain: a naive
rule (point estimates, no confidence bounds, no concentration scale, groups ignored) would
publish it in a good share of releases, which each test checks too. And a clearly safe cell
is published in most releases, so the tests can fail.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from numpy.typing import NDArray

from scfed.catalogue import Weekly, node_vector
from scfed.dp.contribution import Ints
from scfed.dp.params import CONCENTRATION_FINE, MAGNITUDE, Noise
from scfed.dp.sampler import Keystream, sample
from scfed.groups import group_of, groups
from scfed.picture import release, round_of
from scfed.wire.messages import Member, Registry
from scfed.wire.policy import CatalogueEntry

KYUSHU = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
WEEK = date(2026, 11, 23)
#: Releases simulated per scenario; each has three value cells.
RELEASES = 2000
#: The most a rule may let through.
ERROR_RATE = 0.01
#: A naive rule must publish a test's cell at least this often for the test to mean much.
NAIVE_AT_LEAST = 0.05
#: A safe cell must be published at least this often.
SAFE_AT_LEAST = 0.9
P = 100  # presence threshold
Q = 10_000  # concentration scale


def _entry(
    *,
    k: int,
    dominance: str = "0.6",
    sigma: str = "100",
    presence_sigma: str,
    concentration_sigma: str,
) -> CatalogueEntry:
    noise = Noise(
        sigma, 1, MAGNITUDE, 1, "1", 10**9, disclosure=True,
        presence_sigma=presence_sigma, concentration_sigma=concentration_sigma,
    )  # fmt: skip
    return CatalogueEntry(
        name="disclosure-test",
        purpose="the disclosure rules under noise",
        metric="demand-capacity",
        commodities=(KYUSHU,),
        horizon_weeks=1,
        noise=noise,
        min_contributors=k,
        dominance=dominance,
        presence_threshold=P,
        concentration_scale=Q,
        recipients=("members",),
    )


#: For the k rule: the count's noise is of the order of P, the squares' small.
COUNT_ENTRY = _entry(k=5, presence_sigma="100", concentration_sigma="300")


def _dominance_entry(limit: str, concentration_sigma: str = "1500") -> CatalogueEntry:
    """For the dominance rule: the count is clear, the squares are not."""
    return _entry(
        k=3, dominance=limit, presence_sigma="20", concentration_sigma=concentration_sigma
    )


@dataclass(frozen=True)
class Firm:
    figure: int
    group: str = ""  # its corporate group; "" for a group of its own


@dataclass(frozen=True)
class Rates:
    """Shares of the simulated value cells."""

    published: float
    counted: float  # that the k rule let through (whatever the other rules then said)
    naive: float  # that a naive rule would have published
    reasons: Counter[str]

    def __str__(self) -> str:
        reasons = ", ".join(f"{n} x {r!r}" for r, n in self.reasons.most_common(3))
        return (
            f"published {self.published:.2%}, passed the k rule {self.counted:.2%}, "
            f"naive rule {self.naive:.2%} (suppressed: {reasons})"
        )


def _weekly(figure: int) -> Weekly:
    def weekly(metric: str, weeks: Sequence[date]) -> Mapping[tuple[str, date], Decimal]:
        return {(KYUSHU, w): Decimal(figure) for w in weeks}

    return weekly


def _registry(firms: Sequence[Firm]) -> Registry:
    members = tuple(
        Member(f"node-{i:03d}", f"node {i}", bytes(32), bytes(32), f.group or f"own-{i}")
        for i, f in enumerate(firms)
    )
    return Registry("scfed.test/memory", 1, bytes(32), members, ())


def _naive(entry: CatalogueEntry, sums: Ints) -> NDArray[np.bool_]:
    """Which cells point estimates would publish: count and squares without bounds, no
    concentration scale; ``sums`` is [release, cell]."""
    third = sums.shape[1] // 3
    value = sums[:, :third].astype(np.float64)
    presence = sums[:, third : 2 * third].astype(np.float64)
    squares = sums[:, 2 * third :].astype(np.float64)
    share = float(entry.dominance_limit)
    count = presence >= entry.min_contributors * entry.presence_threshold
    dominance = Q * squares / CONCENTRATION_FINE < share**2 * value**2
    return count & (value > 0) & dominance


def simulate(name: str, entry: CatalogueEntry, firms: Sequence[Firm]) -> Rates:
    """``RELEASES`` releases of the firms' figures, each with fresh noise."""
    registry = _registry(firms)
    members = [m.member_id for m in registry.members]
    candidates = groups(registry, members)
    n = len(firms)
    planned = entry.planned(n)
    noise = dataclasses.replace(entry.noise, planned=planned)
    grouped = np.stack(
        [
            node_vector(entry, WEEK, _weekly(f.figure), candidates.size(group_of(registry, m)))
            for f, m in zip(firms, members, strict=True)
        ]
    ).sum(axis=0)
    ungrouped = np.stack([node_vector(entry, WEEK, _weekly(f.figure)) for f in firms]).sum(axis=0)
    segments = noise.segments(len(grouped), entry.min_contributors)
    draws = [
        sample(s.sigma_l2, RELEASES * n * s.cells, Keystream(os.urandom(32)))
        .reshape(RELEASES, n, s.cells)
        .sum(axis=1)
        for s in segments
    ]
    noisy = np.concatenate(draws, axis=1)  # [release, cell]: the survivors' summed noise
    sums = grouped + noisy
    published = counted = cells = 0
    reasons: Counter[str] = Counter()
    k_reason = f"estimated contributors below {entry.min_contributors}"  # window or week
    for r in range(RELEASES):
        round_ = round_of(entry, WEEK, sums[r], n, planned=planned, group=candidates.largest)
        picture = release(entry, [round_])
        for cell in picture:
            cells += 1
            published += not cell.suppressed
            counted += not cell.suppressed.startswith(k_reason)
            if cell.suppressed:
                reasons[cell.suppressed.split(" (")[0]] += 1
    naive = float(_naive(entry, ungrouped + noisy).mean())
    rates = Rates(published / cells, counted / cells, naive, reasons)
    print(f"{name}: {rates} over {cells} cells of {RELEASES} releases")
    return rates


def _dominated(big: int, share: float, others: int = 4) -> list[Firm]:
    """One firm of ``big`` holding ``share`` of the cell, the rest split among the others,
    rounded down so that its share is at least ``share``."""
    rest = int(big * (1 - share) / share) // others
    return [Firm(big), *[Firm(rest)] * others]


# ---- the k rule ----


def test_a_cell_with_fewer_than_k_contributors_is_rarely_published() -> None:
    """Four firms well above P (25 P each) in an entry with k = 5, dominance clear."""
    rates = simulate("k-1 firms", COUNT_ENTRY, [Firm(25 * P)] * 4)
    assert rates.published <= ERROR_RATE, rates
    assert rates.counted <= ERROR_RATE, rates
    assert rates.naive >= NAIVE_AT_LEAST, rates


def test_k_contributors_two_of_one_group_are_rarely_published() -> None:
    """Five members with k = 5, two of them of one corporate group: four firms."""
    firms = [Firm(20 * P, "alpha"), Firm(20 * P, "alpha"), *[Firm(20 * P)] * 3]
    rates = simulate("k members, k-1 firms", COUNT_ENTRY, firms)
    assert rates.published <= ERROR_RATE, rates
    assert rates.counted <= ERROR_RATE, rates
    assert rates.naive >= NAIVE_AT_LEAST, rates


# ---- the dominance rule ----

#: (the entry's limit, the firm's share, its figure in units of Q or "limit": share x Q,
#: the squares' sigma that leaves the cell uncertain for a naive rule).
DOMINATED = [
    ("0.6", 0.6, "limit", "1500"),
    ("0.6", 0.6, 2, "1500"),
    ("0.6", 0.6, 10, "1500"),
    ("0.8", 0.8, "limit", "1500"),
    ("0.8", 0.8, 2, "1500"),
    ("0.8", 0.8, 10, "1500"),
    ("0.6", 0.8, "limit", "9000"),
    ("0.6", 0.8, 2, "1500"),
    ("0.6", 0.8, 10, "1500"),
]


@pytest.mark.parametrize(("limit", "share", "where", "sigma"), DOMINATED)
def test_a_cell_one_firm_dominates_is_rarely_published(
    limit: str, share: float, where: str | int, sigma: str
) -> None:
    """One firm holds ``share`` of the cell, among k + 1 contributors well above P; its
    figure is share x Q (the others' squares barely add to its own) or far above Q."""
    big = int(share * Q) if where == "limit" else int(where) * Q
    firms = _dominated(big, share)
    name = f"limit {limit}, one firm {share:.0%} at {big / Q:g} Q"
    rates = simulate(name, _dominance_entry(limit, sigma), firms)
    assert rates.published <= ERROR_RATE, rates
    assert rates.naive >= NAIVE_AT_LEAST, rates
    assert rates.counted >= 0.99, f"the k rule, not dominance, suppressed it: {rates}"


#: Two members of one group, each below the limit alone: (their figures, in units of Q).
GROUPED = [(0.3, 0.3), (0.55, 0.1), (5, 5)]


@pytest.mark.parametrize("figures", GROUPED)
def test_a_cell_one_group_dominates_is_rarely_published(figures: tuple[float, float]) -> None:
    """Two members of one group together hold the limit 0.6, each alone below it."""
    members = [int(f * Q) for f in figures]
    held = sum(members)
    rest = int(held * 0.4 / 0.6) // 4
    firms = [Firm(m, "alpha") for m in members] + [Firm(rest)] * 4
    assert max(members) < 0.6 * (held + 4 * rest) <= held
    rates = simulate(f"one group 60% as {figures} Q", _dominance_entry("0.6"), firms)
    assert rates.published <= ERROR_RATE, rates
    assert rates.naive >= NAIVE_AT_LEAST, rates
    assert rates.counted >= 0.99, f"the k rule, not dominance, suppressed it: {rates}"


# ---- the rules can fail ----


SAFE = {
    "count-noise": COUNT_ENTRY,
    "dominance-0.6": _dominance_entry("0.6"),
    "dominance-0.8": _dominance_entry("0.8"),
}


@pytest.mark.parametrize("noise", list(SAFE))
def test_a_clearly_safe_cell_is_published(noise: str) -> None:
    """Ten equal contributors of Q / 10 each: twice k, a tenth of the cell each."""
    rates = simulate(f"safe cell, {noise} entry", SAFE[noise], [Firm(Q // 10)] * 10)
    assert rates.published >= SAFE_AT_LEAST, rates
