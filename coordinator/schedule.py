"""The coordinator runs catalogue entries by itself, on their signed cadence. Does I/O.

A loop beside the servers: every ``TICK_S`` it asks ``scfed.schedule.next_run`` when each
scheduled entry runs next, from the attempts in the store, and runs what is due for the
current week with the connected nodes, as an operator's ``round start --entry`` would. Each
attempt is stored with what it came to: a result, an abort (tried again within the window),
or skipped (the federation's privacy plan does not allow it; not tried again in the
window). A due run waits, without counting as an attempt, while fewer nodes are connected than the
entry's k (a coordinator that just started has none). A round that is already running (an
operator's) delays the schedule to the next tick; nothing here can run an entry twice in a
window, and the round code refuses it too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from coordinator.rounds import Rounds
from coordinator.store import Store
from protos.scfed.v1 import service_pb2 as spb
from scfed import wire
from scfed.errors import OutOfOrderError, PrivacyBudgetError, ScfedError
from scfed.schedule import ABORT, RESULT, SKIPPED, Attempt, Planned, Settings, due, next_run
from scfed.wire.codec import decode_abort
from scfed.wire.envelope import Envelope
from scfed.wire.policy import Policy

log = logging.getLogger("scfed.coordinator")

#: How often the schedule is looked at.
TICK_S = 10.0


class Scheduler:
    """Runs the scheduled entries of the signed catalogue when they are due."""

    def __init__(
        self,
        rounds: Rounds,
        store: Store,
        policy: Callable[[], tuple[Policy, Envelope] | None],
        *,
        settings: Settings,
        connected: Callable[[], int],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._rounds, self._store, self._policy = rounds, store, policy
        self._settings, self._connected, self._clock = settings, connected, clock

    def planned(self) -> list[Planned]:
        """The next run of every scheduled entry, soonest first."""
        loaded = self._policy()
        if loaded is None:
            return []
        catalogue, history, now = loaded[0], self._store.attempts(), self._clock()
        wanted = self._settings.entries or tuple(e.name for e in catalogue.entries)
        found = [e for name in wanted if (e := catalogue.entry(name)) is not None]
        return sorted((next_run(e, now, self._settings, history) for e in found), key=_when)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: run each entry when it is due."""
        while not stop.is_set():
            for planned in self.planned():
                if due(planned, self._clock()) and self._enough(planned):
                    await self.attempt(planned)
            try:
                await asyncio.wait_for(stop.wait(), TICK_S)
            except TimeoutError:
                continue

    async def attempt(self, planned: Planned) -> Attempt | None:
        """Run one due entry and store what it came to; None if a round was running."""
        request = spb.StartRoundRequest(
            query=planned.entry, entry=planned.entry, week=planned.week.isoformat()
        )
        started = self._clock()
        log.info("schedule: %s for the week of %s (%s)", planned.entry, planned.week, planned.why)
        try:
            _, outcome = await self._rounds.run(request)
        except OutOfOrderError:
            return None  # an operator's round is running: the next tick tries again
        except PrivacyBudgetError as exc:
            return self._stored(planned, started, SKIPPED, str(exc))
        except ScfedError as exc:
            return self._stored(planned, started, ABORT, f"not started: {exc}")
        if outcome.type == wire.RESULT:
            return self._stored(planned, started, RESULT, "")
        return self._stored(planned, started, ABORT, decode_abort(outcome.body).reason)

    def _enough(self, planned: Planned) -> bool:
        """Whether enough nodes are connected for the entry's k: until then a due run waits
        (a coordinator that just started has none yet), without counting as an attempt."""
        loaded = self._policy()
        entry = loaded[0].entry(planned.entry) if loaded is not None else None
        if entry is None:
            return False
        connected = self._connected()
        if connected < entry.min_contributors:
            log.info(
                "schedule: %s is due; waiting for nodes (%d connected, k is %d)",
                planned.entry, connected, entry.min_contributors,
            )  # fmt: skip
            return False
        return True

    def _stored(self, planned: Planned, at: datetime, outcome: str, reason: str) -> Attempt:
        attempt = Attempt(planned.entry, planned.window, planned.week, at, outcome, reason)
        self._store.attempted(attempt)
        log.info("schedule: %s %s%s", planned.entry, outcome, f": {reason}" if reason else "")
        return attempt


def _when(planned: Planned) -> datetime:
    return planned.when
