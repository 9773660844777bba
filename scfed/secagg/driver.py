"""Runs a whole round in memory: every node and the coordinator in one process. Pure.

Used by tests (against a plain numpy sum) and by ``scfed bench secagg``. Nodes vanish at
chosen points; a phase whose messages have all been delivered is closed as the deadline
would close it. Messages cross between the machines as the exact wire bytes, so their sizes
are measured as they would travel. The report keeps the round's protocol log: every signed
message in the order the coordinator's log takes them (the governance-signed registry, the
announce, each node message as it is accepted, the unmask request, the outcome and, for a
result, the budget charge), so that auditing can be tested on real rounds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import envelope as env
from scfed.dp.contribution import Ints
from scfed.envelope import Envelope
from scfed.messages import (
    Announce,
    KeySet,
    Member,
    Registry,
    Result,
    decode_result,
)
from scfed.policy import Policy
from scfed.registry import seal_registry
from scfed.secagg._table import Phase
from scfed.secagg.coordinator import CoordinatorRound, Outgoing, Task
from scfed.secagg.node import Identity, MemoryGuard, NodePolicy, NodeRound
from scfed.tasks import task_to_proto

Random = Callable[[int], bytes]


@dataclass(frozen=True)
class Federation:
    """Keys and registry of a federation that lives in memory."""

    registry: Registry
    member_keys: Mapping[str, Ed25519PrivateKey]
    coordinator_key: Ed25519PrivateKey
    governance_key: Ed25519PrivateKey

    @property
    def signed_registry(self) -> Envelope:
        return seal_registry(self.registry, self.governance_key)


def federation(n: int, rng: Random, origin: str = "scfed.test/memory") -> Federation:
    """A registry of ``n`` members named node-000, node-001, ... with keys from ``rng``."""
    keys = {f"node-{i:03d}": Ed25519PrivateKey.from_private_bytes(rng(32)) for i in range(n)}
    members = tuple(
        Member(m, m, k.public_key().public_bytes_raw(), hashlib.sha256(m.encode()).digest(), m)
        for m, k in keys.items()
    )
    coordinator = Ed25519PrivateKey.from_private_bytes(rng(32))
    registry = Registry(origin, 1, coordinator.public_key().public_bytes_raw(), members, ())
    return Federation(registry, keys, coordinator, Ed25519PrivateKey.from_private_bytes(rng(32)))


@dataclass
class Cost:
    """Wall and CPU seconds spent in one phase, by nodes and coordinator together."""

    wall: float = 0.0
    cpu: float = 0.0


@dataclass
class Report:
    """What a round produced and what it cost."""

    outcome: Envelope
    phases: dict[str, Cost] = field(default_factory=dict)
    bytes_per_node: dict[str, int] = field(default_factory=dict)
    #: Each node's x_u + e_u as it was masked (empty for a node that never joined).
    contributions: dict[str, Ints] = field(default_factory=dict)
    #: The round's protocol log: each leaf's data, a signed envelope's bytes, in log order.
    log: list[bytes] = field(default_factory=list)

    @property
    def result(self) -> Result | None:
        """The decoded result, None if the round aborted."""
        return decode_result(self.outcome.body) if self.outcome.type == env.RESULT else None


def _deliver(node: NodeRound, task: Task, inputs: Ints) -> Envelope | None:
    match task:
        case KeySet():
            return node.on_keys(task)
        case Envelope() if task.type == env.ANNOUNCE:
            return node.on_announce(task, lambda _: inputs)
        case Envelope() if task.type == env.UNMASK_REQUEST:
            return node.on_unmask(task)
        case Envelope():
            node.on_outcome(task)
            return None
    return node.on_masking(task)


def run_round(
    fed: Federation,
    announce: Announce,
    inputs: Mapping[str, Ints],
    rng: Random,
    *,
    vanish_after: Mapping[str, Phase] | None = None,
    policy: NodePolicy | None = None,
    catalogue: Policy | None = None,
    today: date | None = None,
) -> Report:
    """Run one round; a node in ``vanish_after`` goes silent once it reaches that phase.

    ``inputs`` are the nodes' figures on the round's grid; each node adds its noise.
    """
    coordinator = CoordinatorRound(announce, fed.registry, fed.coordinator_key)
    nodes = {
        m: NodeRound(
            Identity(m, fed.member_keys[m], fed.registry),
            policy or NodePolicy(adhoc=True),
            MemoryGuard(),
            rng,
            period="memory",
            catalogue=catalogue,
            opt_in=tuple(e.name for e in catalogue.entries) if catalogue else (),
            today=today,
        )
        for m in announce.candidates
    }
    network = _Network(nodes, inputs, vanish_after or {})
    report = Report(coordinator.announce_envelope)
    log = _Log(fed.signed_registry)
    pending = coordinator.start()
    while pending:
        cost = report.phases.setdefault(coordinator.phase.value, Cost())
        wall, cpu = time.perf_counter(), time.process_time()
        log.coordinator_messages(pending)
        replies, pending = network.deliver(pending), []
        for m, reply in replies:
            pending += coordinator.receive(m, reply)
            log.append(reply)
        if not pending and not coordinator.phase.terminal:
            pending = coordinator.close()  # what the phase deadline would do
        cost.wall += time.perf_counter() - wall
        cost.cpu += time.process_time() - cpu
    if coordinator.outcome is None:
        raise AssertionError("the round ended without an outcome")
    report.outcome = coordinator.outcome
    charge = coordinator.charge("memory", catalogue)
    if charge is not None:
        log.append(charge)
    report.log = log.leaves
    report.bytes_per_node = network.sizes
    report.contributions = {m: node.contribution for m, node in nodes.items()}
    return report


class _Log:
    """The leaves of an in-memory protocol log, each coordinator message taken once."""

    def __init__(self, registry: Envelope) -> None:
        self.leaves = [registry.to_bytes()]
        self._seen: set[bytes] = set()

    def append(self, envelope: Envelope) -> None:
        self.leaves.append(envelope.to_bytes())

    def coordinator_messages(self, tasks: list[Outgoing]) -> None:
        """Log the announce, unmask request or outcome these tasks carry, once each."""
        for out in tasks:
            if isinstance(out.task, Envelope) and out.task.signer == env.COORDINATOR:
                data = out.task.to_bytes()
                if data not in self._seen:
                    self._seen.add(data)
                    self.leaves.append(data)


class _Network:
    """The nodes of an in-memory round, and the bytes each sends and receives."""

    def __init__(
        self,
        nodes: dict[str, NodeRound],
        inputs: Mapping[str, Ints],
        vanish: Mapping[str, Phase],
    ) -> None:
        self.nodes = nodes
        self.sizes = dict.fromkeys(self.nodes, 0)
        self._inputs, self._vanish = inputs, vanish

    def deliver(self, tasks: list[Outgoing]) -> list[tuple[str, Envelope]]:
        """Hand each task to its node; the answers of the nodes still there."""
        replies = []
        for out in tasks:
            node = self.nodes[out.to]
            if self._vanish.get(out.to) is node.phase:
                continue
            self.sizes[out.to] += task_to_proto(out.task).ByteSize()
            reply = _deliver(node, out.task, self._inputs[out.to])
            if reply is not None:
                self.sizes[out.to] += len(reply.to_bytes())
                replies.append((out.to, reply))
        return replies
