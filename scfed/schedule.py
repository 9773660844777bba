"""When the coordinator runs each catalogue entry by itself: its signed cadence. Pure.

An entry of cadence weekly, monthly or quarterly releases once per window (its ISO week,
month or quarter, ``scfed.dp.ledger.window_label``). The coordinator runs it at the first
Monday of each window at the configured time of day (UTC), for the week of that Monday; if
it was down then, as soon as it is up again within the window, for the current week (nodes
take part only in the current week). A round that aborted (before unmasking: nothing was
released) is tried again ``retry`` later while the window lasts; a window whose entry
released, or whose round the privacy plan did not allow (the federation's cap), is not
tried again. The coordinator also refuses a second release in a window, whatever asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from scfed.dp.ledger import window_label
from scfed.wire.policy import CatalogueEntry

#: What a scheduled attempt came to: published, aborted (tried again), skipped (not again).
RESULT, ABORT, SKIPPED = "result", "abort", "skipped"
OUTCOMES = (RESULT, ABORT, SKIPPED)
#: The longest a window lasts: a quarter has at most 14 Mondays.
_MOST_WEEKS = 15


@dataclass(frozen=True)
class Settings:
    """The coordinator's [schedule]: whether it runs entries by itself, when, which."""

    enabled: bool = False
    at: time = time(6, 0)
    retry: timedelta = timedelta(hours=1)
    #: The entries it runs; () for every entry of the signed catalogue.
    entries: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attempt:
    """One scheduled round of an entry, or why none ran."""

    entry: str
    window: str
    week: date
    at: datetime
    outcome: str  # RESULT, ABORT or SKIPPED
    reason: str = ""


@dataclass(frozen=True)
class Planned:
    """The next run of an entry: when, for which week, in which window."""

    entry: str
    when: datetime
    week: date
    window: str
    why: str  # "first run of the window", "retry after an abort", ...


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def next_run(
    entry: CatalogueEntry, now: datetime, settings: Settings, history: Sequence[Attempt]
) -> Planned:
    """When ``entry`` runs next, by its cadence and the attempts so far (any entries')."""
    monday = monday_of(now.astimezone(UTC).date())
    window = window_label(entry.cadence, monday)
    tried = [a for a in history if a.entry == entry.name and a.window == window]
    if not any(a.outcome in (RESULT, SKIPPED) for a in tried):
        first = _start(entry.cadence, monday)
        planned = datetime.combine(first, settings.at, UTC)
        if not tried:
            why = "first run of the window" if planned >= now else "catching up in the window"
            when = max(planned, now) if first == monday else now
            return Planned(entry.name, when, monday, window, why)
        retry = max(a.at for a in tried) + settings.retry
        week = monday_of(retry.astimezone(UTC).date())
        if window_label(entry.cadence, week) == window:
            return Planned(entry.name, retry, week, window, "retry after an abort")
    following = _next_window(entry.cadence, monday)
    when = datetime.combine(following, settings.at, UTC)
    return Planned(
        entry.name, when, following, window_label(entry.cadence, following), "next window"
    )


def _start(cadence: str, monday: date) -> date:
    """The first Monday of the window ``monday`` falls in."""
    window = window_label(cadence, monday)
    first = monday
    while window_label(cadence, first - timedelta(weeks=1)) == window:
        first -= timedelta(weeks=1)
    return first


def _next_window(cadence: str, monday: date) -> date:
    """The first Monday of the window after the one ``monday`` falls in."""
    window = window_label(cadence, monday)
    for weeks in range(1, _MOST_WEEKS + 1):
        later = monday + timedelta(weeks=weeks)
        if window_label(cadence, later) != window:
            return later
    raise AssertionError("every cadence window ends within a quarter")


def due(planned: Planned, now: datetime) -> bool:
    return planned.when <= now and monday_of(now.astimezone(UTC).date()) == planned.week
