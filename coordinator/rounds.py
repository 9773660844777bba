"""Runs rounds for the coordinator daemon: connected nodes, deadlines, and the round machine.

Everything here runs on the server's one asyncio event loop, so the pure round machine is
never entered by two calls at once. Does I/O through the store and the task queues.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.store import Store
from protos.scfed.v1 import service_pb2 as spb
from scfed import envelope as env
from scfed.dp.ledger import Budget, Charge, period_label
from scfed.envelope import Envelope
from scfed.errors import OutOfOrderError, PermissionDeniedError, RemoteProtocolError
from scfed.messages import (
    DEFAULT_N_MIN,
    MAX_LISTED_CELLS,
    Announce,
    Registry,
    decode_announce,
    decode_noise,
    decode_result,
    encode,
    layout_hash,
    task_to_proto,
)
from scfed.secagg import CoordinatorRound, Outgoing, Phase

log = logging.getLogger("scfed.coordinator")


class Hub:
    """The nodes connected right now, each with the queue its task stream reads."""

    def __init__(self) -> None:
        self._queues: dict[str, asyncio.Queue[spb.Task | None]] = {}

    @property
    def connected(self) -> tuple[str, ...]:
        return tuple(sorted(self._queues))

    def connect(self, member_id: str) -> asyncio.Queue[spb.Task | None]:
        """A fresh queue for a node; an older stream of the same node is ended."""
        old = self._queues.get(member_id)
        if old is not None:
            old.put_nowait(None)
        queue: asyncio.Queue[spb.Task | None] = asyncio.Queue()
        self._queues[member_id] = queue
        log.info("node %s connected (%d connected)", member_id, len(self._queues))
        return queue

    def disconnect(self, member_id: str, queue: asyncio.Queue[spb.Task | None]) -> None:
        if self._queues.get(member_id) is queue:
            del self._queues[member_id]
            log.info("node %s disconnected", member_id)

    def send(self, outgoing: list[Outgoing]) -> None:
        """Queue tasks for connected nodes; a node that is gone misses them (deadlines apply)."""
        for out in outgoing:
            queue = self._queues.get(out.to)
            if queue is not None:
                queue.put_nowait(task_to_proto(out.task))


class Rounds:
    """Starts rounds, feeds them node messages, and closes phases at their deadlines."""

    def __init__(
        self,
        registry: Callable[[], tuple[Registry, Envelope]],
        key: Ed25519PrivateKey,
        store: Store,
        hub: Hub,
        *,
        phase_timeout_ms: int,
        max_cells: int,
        budget: Budget,
    ) -> None:
        self._registry = registry
        self._budget = budget
        self._key = key
        self._store = store
        self._hub = hub
        self._phase_timeout_ms = phase_timeout_ms
        self._max_cells = max_cells
        self._active: CoordinatorRound | None = None
        self._changed = asyncio.Event()

    def submit(self, member_id: str, envelope: Envelope) -> None:
        """Hand a node's signed message to the running round."""
        active = self._active
        if active is None or active.phase.terminal:
            raise OutOfOrderError("no round is running")
        before = active.phase
        self._hub.send(active.receive(member_id, envelope))
        if active.phase is not before:
            self._changed.set()

    def announce(self, request: spb.StartRoundRequest, registry: Registry) -> Announce:
        """The announce for an operator's request, every bound checked."""
        candidates = tuple(sorted(request.candidates or self._hub.connected))
        for member_id in candidates:
            if registry.member(member_id) is None:
                raise PermissionDeniedError(f"{member_id} is not a registered member")
        cells = tuple(request.cells)
        most = min(self._max_cells, MAX_LISTED_CELLS)
        if not 1 <= len(cells) <= most:
            raise RemoteProtocolError(f"a round needs 1 to {most} cells, not {len(cells)}")
        threshold = request.threshold or len(candidates) // 2 + 1
        if 2 * threshold <= len(candidates):
            raise RemoteProtocolError(
                f"threshold {threshold} must be above half of the {len(candidates)} candidates"
            )
        n_min = request.n_min or DEFAULT_N_MIN
        if len(candidates) < max(threshold, n_min):
            raise RemoteProtocolError(
                f"{len(candidates)} candidates are fewer than max(t={threshold}, n_min={n_min})"
            )
        timeout = request.phase_timeout_ms or self._phase_timeout_ms
        if not request.HasField("noise"):
            raise RemoteProtocolError("a round needs noise parameters (sigma, privacy bound)")
        noise = decode_noise(request.noise, n_min, RemoteProtocolError)
        announce = Announce(
            os.urandom(16), request.query, len(cells), candidates, threshold, n_min,
            registry.version, timeout, layout_hash(cells), noise, cells,
        )  # fmt: skip
        return decode_announce(encode(announce))

    def _period(self) -> str:
        return period_label(self._budget.period, datetime.now(UTC).date())

    def _check_budget(self, announce: Announce) -> None:
        """PrivacyBudgetError if the round, at its worst (n_min survivors), passes the cap."""
        period = self._period()
        worst = announce.noise.rho(announce.n_min, announce.n_min)
        self._budget.check(self._store.spent(period), worst, period)

    def _charge(self, announce: Announce, outcome: Envelope) -> Charge | None:
        """The federation ledger's charge for a published result; aborts cost nothing."""
        if outcome.type != env.RESULT:
            return None
        m = len(decode_result(outcome.body).survivors)
        rho = announce.noise.rho(announce.n_min, m)
        return Charge(announce.round_id, announce.query, self._period(), m, rho)

    async def run(self, request: spb.StartRoundRequest) -> tuple[bytes, Envelope]:
        """Run one round to its end; its id and the signed result or abort."""
        if self._active is not None and not self._active.phase.terminal:
            raise OutOfOrderError("a round is already running")
        registry, signed = self._registry()  # one version for the whole round
        announce = self.announce(request, registry)
        self._check_budget(announce)
        active = CoordinatorRound(announce, registry, self._key)
        self._active = active
        self._store.round_started(
            announce.round_id, announce.query, time.time(), active.announce_envelope
        )
        log.info("round %s: %d candidates", announce.round_id.hex(), len(announce.candidates))
        # Nodes connected before the latest enrolment hold an older registry: send it first.
        self._hub.send([Outgoing(c, signed) for c in announce.candidates])
        self._hub.send(active.start())
        while not active.phase.terminal:
            await self._next_phase(active, announce.phase_timeout_ms / 1000)
        outcome = active.outcome
        if outcome is None:
            raise AssertionError("a terminal round has an outcome")
        charge = self._charge(announce, outcome)
        self._store.round_finished(announce.round_id, time.time(), outcome, charge)
        log.info("round %s: %s", announce.round_id.hex(), outcome.type)
        return announce.round_id, outcome

    async def _next_phase(self, active: CoordinatorRound, timeout: float) -> None:
        phase = active.phase
        deadline = time.monotonic() + timeout
        while active.phase is phase:
            self._changed.clear()
            remaining = deadline - time.monotonic()
            try:
                await asyncio.wait_for(self._changed.wait(), max(remaining, 0))
            except TimeoutError:
                if active.phase is phase:
                    missing = set(active.participants) - set(active.received[phase])
                    log.info("%s deadline: no answer from %s", phase.value, sorted(missing))
                    self._hub.send(active.close())
                return

    @property
    def phase(self) -> Phase | None:
        return None if self._active is None else self._active.phase
