"""The schedule: each entry at the first Monday of its window, retried after an abort within
the window, never again after a release or a skip, caught up when the coordinator was down."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from scfed.dp.ledger import window_label
from scfed.schedule import ABORT, RESULT, SKIPPED, Attempt, Settings, due, next_run
from tools.dashboard_data import KYUSHU, entry

WEEKLY = entry("demand-capacity", (KYUSHU,), 4)
MONTHLY = dataclasses.replace(WEEKLY, name="monthly-stock", cadence="monthly")
RULES = Settings(enabled=True, at=time(6, 0), retry=timedelta(hours=1))
MONDAY = date(2026, 12, 7)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


def test_a_weekly_entry_runs_each_monday_at_six() -> None:
    planned = next_run(WEEKLY, _at(MONDAY, 5), RULES, [])
    assert (planned.when, planned.week, planned.window) == (_at(MONDAY, 6), MONDAY, "2026-W50")
    assert not due(planned, _at(MONDAY, 5, 59))
    assert due(planned, _at(MONDAY, 6))


def test_an_abort_is_retried_within_the_window_and_a_release_ends_it() -> None:
    aborted = Attempt(WEEKLY.name, "2026-W50", MONDAY, _at(MONDAY, 6), ABORT, "too few")
    retry = next_run(WEEKLY, _at(MONDAY, 6, 5), RULES, [aborted])
    assert (retry.when, retry.why) == (_at(MONDAY, 7), "retry after an abort")
    released = Attempt(WEEKLY.name, "2026-W50", MONDAY, _at(MONDAY, 7), RESULT)
    following = next_run(WEEKLY, _at(MONDAY, 8), RULES, [aborted, released])
    assert following.when == _at(MONDAY + timedelta(weeks=1), 6)
    skipped = Attempt(WEEKLY.name, "2026-W50", MONDAY, _at(MONDAY, 6), SKIPPED, "past the cap")
    assert next_run(WEEKLY, _at(MONDAY, 9), RULES, [skipped]).week == MONDAY + timedelta(weeks=1)


def test_a_coordinator_that_was_down_catches_up_in_the_window() -> None:
    wednesday = _at(MONDAY + timedelta(days=2), 14)
    planned = next_run(WEEKLY, wednesday, RULES, [])
    assert (planned.when, planned.week) == (wednesday, MONDAY)
    assert due(planned, wednesday)
    monthly = next_run(MONTHLY, _at(date(2026, 12, 16), 9), RULES, [])  # the month began
    assert monthly.week == date(2026, 12, 14)
    assert due(monthly, _at(date(2026, 12, 16), 9))


def test_a_monthly_entry_runs_on_the_first_monday_of_its_month() -> None:
    planned = next_run(MONTHLY, _at(date(2026, 12, 29), 9), RULES, [
        Attempt(MONTHLY.name, "2026-12", date(2026, 12, 7), _at(date(2026, 12, 7), 6), RESULT)
    ])  # fmt: skip
    assert (planned.week, planned.window) == (date(2027, 1, 4), "2027-01")


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31)),
    st.lists(st.sampled_from((RESULT, ABORT, SKIPPED)), max_size=6),
    st.booleans(),
)
def test_a_run_is_never_planned_in_a_window_that_released(
    start: datetime, outcomes: list[str], weekly: bool
) -> None:
    catalogue_entry = WEEKLY if weekly else MONTHLY
    now, history = start.replace(tzinfo=UTC), list[Attempt]()
    for outcome in outcomes:
        planned = next_run(catalogue_entry, now, RULES, history)
        assert planned.when >= now - timedelta(seconds=1) or due(planned, now)
        assert window_label(catalogue_entry.cadence, planned.week) == planned.window
        done = {a.window for a in history if a.outcome in (RESULT, SKIPPED)}
        assert planned.window not in done
        now = max(now, planned.when)
        history.append(Attempt(catalogue_entry.name, planned.window, planned.week, now, outcome))
        now += timedelta(minutes=1)
