"""Runs rounds for the coordinator daemon: connected nodes, deadlines, and the round machine.

Everything here runs on the server's one asyncio event loop, so the pure round machine is
never entered by two calls at once. Does I/O through the store and the task queues. At
start-up it first finishes, from the log, the rounds a stopped coordinator left open
(``coordinator.recovery``), and sends each of their candidates the outcome when it connects.
The round machine decides when masking tasks and unmask requests go out: in its witnessing
steps this module only logs, asks the step's witnesses to cosign a checkpoint, hands the
machine each cosignature the journal verified, and closes the step at its deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.journal import Journal
from coordinator.metrics import CoordinatorMetrics
from coordinator.recovery import Closed, ledger_row, recover
from coordinator.releases import Releases
from coordinator.requests import Limits, announce_for
from coordinator.store import Store
from protos.scfed.v1 import service_pb2 as spb
from scfed import wire
from scfed.dp.ledger import Budget, Charge, period_label
from scfed.errors import OutOfOrderError, PrivacyBudgetError
from scfed.policy import planned_release_rho, release_window
from scfed.secagg import CoordinatorRound, Outgoing, Phase
from scfed.secagg.refusals import check_refusal, hopeless_after, summary
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Announce, Refusal, Registry
from scfed.wire.policy import Policy
from scfed.wire.tasks import CheckpointTask, KeySet, MaskingTask, Receipt, task_to_proto

log = logging.getLogger("scfed.coordinator")
#: Rounds the operator's status lists.
RECENT = 10


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

    def close(self) -> None:
        """End every node's task stream (the coordinator is stopping): each ends cleanly,
        and its node reconnects when the coordinator is back."""
        for queue in self._queues.values():
            queue.put_nowait(None)

    def disconnect(self, member_id: str, queue: asyncio.Queue[spb.Task | None]) -> None:
        if self._queues.get(member_id) is queue:
            del self._queues[member_id]
            log.info("node %s disconnected", member_id)

    def send(self, outgoing: list[Outgoing], receipt: Receipt | None = None) -> None:
        """Queue tasks for connected nodes; a node that is gone misses them (deadlines apply)."""
        for out in outgoing:
            self.push(out.to, task_to_proto(out.task, receipt))

    def push(self, member_id: str, task: spb.Task) -> None:
        queue = self._queues.get(member_id)
        if queue is not None:
            queue.put_nowait(task)


class Rounds:
    """Starts rounds, feeds them node messages, and closes phases at their deadlines."""

    def __init__(
        self,
        registry: Callable[[], tuple[Registry, Envelope]],
        key: Ed25519PrivateKey,
        store: Store,
        hub: Hub,
        journal: Journal,
        *,
        phase_timeout_ms: int,
        max_cells: int,
        budget: Budget,
        policy: Callable[[], tuple[Policy, Envelope] | None] = lambda: None,
        metrics: CoordinatorMetrics | None = None,
    ) -> None:
        self._metrics = metrics or CoordinatorMetrics()
        self._registry = registry
        self._policy = policy
        self._budget = budget
        self._key = key
        self._store = store
        self._hub = hub
        self._journal = journal
        self._outbox: list[list[Outgoing]] = []
        self._phase_timeout_ms = phase_timeout_ms
        self._max_cells = max_cells
        self._active: CoordinatorRound | None = None
        self._round_policy: Policy | None = None  # the signed policy the active round follows
        self._changed = asyncio.Event()
        self._recovered: list[Closed] = []  # rounds this start finished for a stopped one
        self._releases = Releases(store, journal, key, hub)
        self._refusals: dict[str, Refusal] = {}  # the running round's, by node

    def recover(self, origin: str, governance_key: bytes) -> None:
        """Finish, from the log, every round a stopped coordinator left without an outcome,
        and log the release of a catalogue result among them; their candidates are sent the
        outcome whenever they connect to this process (and the release, if they may)."""
        self._recovered = recover(
            self._store, self._journal.log, origin=origin, governance_key=governance_key,
            key=self._key, period=self._period(),
        )  # fmt: skip
        loaded, registry = self._policy(), self._registry()[0]
        for closed in self._recovered:  # a catalogue result finished from the log is released
            if closed.index is not None:
                policy = None if loaded is None else loaded[0]
                self._releases.publish(closed.announce, closed.outcome, registry, policy)

    def connect(self, member_id: str, releases_from: int = 0) -> asyncio.Queue[spb.Task | None]:
        """A node's task queue, holding first the releases its member may receive from log
        index ``releases_from`` on, then the outcome, with a fresh receipt, of each round
        this start finished that the node was a candidate of."""
        queue = self._hub.connect(member_id)
        self._releases.catch_up(member_id, queue, releases_from)
        for closed in self._recovered:
            if closed.index is not None and member_id in closed.announce.candidates:
                receipt = self._journal.receipt(closed.index)
                queue.put_nowait(task_to_proto(closed.outcome, receipt))
        return queue

    def policy_task(self) -> spb.Task | None:
        """The signed policy in force, logged first, for a node that connects: it learns of
        a new catalogue or a declared crisis without waiting for a round."""
        loaded = self._policy()
        if loaded is None:
            return None
        self._journal.record_once(loaded[1])
        return spb.Task(policy=loaded[1].to_proto())

    async def submit(self, member_id: str, envelope: Envelope) -> Receipt:
        """Hand a node's signed message to the running round and log it; its receipt, once
        the message is durable.

        The round takes the message and it is queued for the log at once, so the log holds
        messages in the order the round accepted them; the commit groups it with the others
        that arrive meanwhile. When the message moves the round on, everything accepted is
        made durable first, so the round sends nothing that follows from a message the log
        could still lose.
        """
        active = self._running()
        if envelope.type == wire.REFUSAL:
            return await self._refused(active, member_id, envelope)
        outgoing = active.receive(member_id, envelope)
        logged = self._journal.acknowledge(envelope)
        if outgoing:
            self._journal.settle()
        self._queue(outgoing)
        return await asyncio.shield(logged)  # shared with a resubmission of the same message

    async def _refused(
        self, active: CoordinatorRound, member_id: str, envelope: Envelope
    ) -> Receipt:
        """Log a node's refusal of the running round, and end the round at once when the
        refusals leave fewer nodes than it needs (before any release: at most t - 1 unmask
        responses are in)."""
        found = check_refusal(
            envelope, member_id, active.announce, active.announce_hash, active.registry
        )
        logged = self._journal.acknowledge(envelope)
        self._refusals.setdefault(member_id, found)
        self._metrics.refused(found.code)
        log.warning(
            "round %s: %s refused (%s): %s",
            active.announce.round_id.hex(), member_id, found.code, found.detail,
        )  # fmt: skip
        hopeless = hopeless_after(active, self._refusals)
        if hopeless:
            self._journal.settle()
            told = summary({m: r.code for m, r in self._refusals.items()})
            self._queue(active.abandon(f"{told}; {hopeless}"))
        self._store.refused(active.announce.round_id, member_id, found)
        return await asyncio.shield(logged)

    def recent(self, limit: int = RECENT) -> list[str]:
        """The latest rounds, newest first, one line each, from the store (so they survive a
        restart), with the nodes' refusals."""
        return [past.line() for past in self._store.recent(limit)]

    def cosign(self, member_id: str, cosignature: spb.Cosignature) -> None:
        """Keep a node's cosignature of a checkpoint, once it verifies, and tell a round in
        a witnessing step who cosigned which checkpoint."""
        active = self._active
        registry = self._registry()[0] if active is None else active.registry
        self._journal.cosign(registry, member_id, cosignature.size, cosignature.line)
        if active is not None and active.witnessing:
            self._queue(active.cosigned(member_id, cosignature.size))
        self._changed.set()

    def _queue(self, outgoing: list[Outgoing]) -> None:
        """Send what the round gave out next; wake the phase loop, which reads its phase."""
        if outgoing:
            self._outbox.append(outgoing)
        self._changed.set()

    def _running(self) -> CoordinatorRound:
        active = self._active
        if active is None or active.phase.terminal:
            raise OutOfOrderError("no round is running")
        return active

    def announce(
        self, request: spb.StartRoundRequest, registry: Registry, policy: Policy | None
    ) -> Announce:
        """The announce for an operator's request, every bound checked."""
        return announce_for(
            request,
            registry=registry,
            policy=policy,
            connected=self._hub.connected,
            limits=Limits(self._max_cells, self._phase_timeout_ms),
            today=datetime.now(UTC).date(),
        )

    def _period(self) -> str:
        return period_label(self._budget.period, datetime.now(UTC).date())

    def _check_budget(self, announce: Announce, registry: Registry, policy: Policy | None) -> None:
        """PrivacyBudgetError if the round, at its planned survivors, passes the cap, or if
        its entry was released already in this cadence window (every node would refuse)."""
        period = self._period()
        planned = planned_release_rho(policy, announce, registry)
        self._budget.check(self._store.spent(period), planned, period)
        window = release_window(policy, announce)
        if window and any(
            (c.query, c.window) == (announce.query, window) for c in self._store.charges
        ):
            raise PrivacyBudgetError(
                f"{announce.query} was released already in its window {window}; "
                "nodes take part in one release of an entry per window"
            )

    def _charge(self, active: CoordinatorRound) -> Charge | None:
        """Log the signed charge of a published result; the federation ledger's row for it.

        Aborts cost nothing.
        """
        period = self._period()
        signed = active.charge(period, self._round_policy)
        if signed is None:
            return None
        self._journal.record(signed)
        return ledger_row(signed, active.announce, self._round_policy)

    async def run(self, request: spb.StartRoundRequest) -> tuple[bytes, Envelope]:
        """Run one round to its end; its id and the signed result or abort."""
        if self._active is not None and not self._active.phase.terminal:
            raise OutOfOrderError("a round is already running")
        registry, signed = self._registry()  # one version of each for the whole round
        loaded = self._policy()
        self._round_policy = None if loaded is None else loaded[0]
        announce = self.announce(request, registry, self._round_policy)
        try:
            self._check_budget(announce, registry, self._round_policy)
        except PrivacyBudgetError:
            self._metrics.refused("budget")
            raise
        active = CoordinatorRound(announce, registry, self._key, policy=self._round_policy)
        self._active, self._outbox, self._refusals = active, [], {}
        self._journal.forget_round()
        self._store.round_started(
            announce.round_id, announce.query, time.time(), active.announce_envelope
        )
        log.info("round %s: %d candidates", announce.round_id.hex(), len(announce.candidates))
        self._journal.record_once(signed)
        # Nodes connected before the latest enrolment hold an older registry: send it first.
        self._hub.send([Outgoing(c, signed) for c in announce.candidates])
        if loaded is not None:  # and the policy the round follows, logged before the round
            self._journal.record_once(loaded[1])
            for member_id in announce.candidates:
                self._hub.push(member_id, spb.Task(policy=loaded[1].to_proto()))
        self._outbox.append(active.start())
        timer = self._metrics.phases()
        while not active.phase.terminal:
            timer.at(active.phase)
            await self._next_phase(active, announce.phase_timeout_ms / 1000)
        timer.at(active.phase)
        await self._flush(active)
        outcome = active.outcome
        if outcome is None:
            raise AssertionError("a terminal round has an outcome")
        charge = self._charge(active)
        self._store.round_finished(announce.round_id, time.time(), outcome, charge)
        log.info("round %s: %s", announce.round_id.hex(), outcome.type)
        self._metrics.round_finished(outcome.type)
        self._releases.publish(announce, outcome, registry, self._round_policy)
        return announce.round_id, outcome

    async def _next_phase(self, active: CoordinatorRound, timeout: float) -> None:
        """Send what is due, then wait until the phase ends or its deadline closes it."""
        await self._flush(active)
        phase = active.phase
        if active.witnessing:
            self._ask_witnesses(active)
        deadline = time.monotonic() + timeout
        while not phase.terminal and active.phase is phase and not self._outbox:
            self._changed.clear()
            if not await self._wait(deadline) and active.phase is phase:
                self._missed(active)
                self._outbox.append(active.close())

    def _ask_witnesses(self, active: CoordinatorRound) -> None:
        """Log the unmask request the step holds, if any, and ask the step's witnesses to
        cosign the checkpoint of the log that holds it."""
        request = active.unmask_request
        if request is not None:
            self._journal.record(request)
        size, signed = self._journal.checkpoint()
        active.checkpoint(size)
        for member_id in active.witnesses:
            self._hub.push(member_id, task_to_proto(CheckpointTask(signed)))

    @staticmethod
    def _missed(active: CoordinatorRound) -> None:
        """Log who the phase waited for in vain."""
        phase = active.phase
        if active.witnessing:
            log.info(
                "only %d of %d witnesses cosigned checkpoint %s",
                len(active.cosigners), active.witness_quorum, active.checkpoint_size,
            )  # fmt: skip
            return
        missing = set(active.participants) - set(active.received[phase])
        log.info("%s deadline: no answer from %s", phase.value, sorted(missing))

    async def _wait(self, deadline: float) -> bool:
        """Wait for news until ``deadline``; False if the deadline passed."""
        try:
            await asyncio.wait_for(self._changed.wait(), max(deadline - time.monotonic(), 0))
        except TimeoutError:
            return False
        return True

    async def _flush(self, active: CoordinatorRound) -> None:
        while self._outbox:
            await self._send(active, self._outbox.pop(0))

    async def _send(self, active: CoordinatorRound, batch: list[Outgoing]) -> None:
        """Log what the batch carries and send it with its receipt; a masking task or an
        unmask request goes with the checkpoint its witnessing step counted a quorum on."""
        if not batch:
            return
        task = batch[0].task
        if isinstance(task, KeySet):
            self._hub.send(batch)
            return
        if isinstance(task, MaskingTask):
            _, signed = self._journal.witnessed(self._witnessed_size(active))
            self._hub.send(batch, Receipt(0, signed, ()))
            return
        index = self._journal.record(task)
        witnessed = None
        if task.type == wire.UNMASK_REQUEST:
            witnessed = self._journal.witnessed(self._witnessed_size(active))
        self._hub.send(batch, self._journal.receipt(index, witnessed))

    @staticmethod
    def _witnessed_size(active: CoordinatorRound) -> int:
        size = active.checkpoint_size
        if size is None:
            raise AssertionError("the round let a witnessed task go without a checkpoint")
        return size

    @property
    def phase(self) -> Phase | None:
        return None if self._active is None else self._active.phase
