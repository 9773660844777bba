"""Runs a whole round in memory: every node and the coordinator in one process. Pure:
randomness comes in as ``rng`` and, for the costs a benchmark reports, the time as ``clock``.

Used by tests (against a plain numpy sum) and by ``scfed bench secagg``. Nodes vanish at
chosen points; a phase whose messages have all been delivered is closed as the deadline
would close it. Messages cross between the machines as the exact wire bytes, so their sizes
are measured as they would travel. The report keeps the round's protocol log: every signed
message in the order the coordinator's log takes them (the governance-signed registry, the
announce, each node message as it is accepted, the unmask request, the outcome and, for a
result, the budget charge), so that auditing can be tested on real rounds.

The witnessing steps run as the daemons run them. The log is a Merkle tree whose checkpoints
the coordinator's key signs; each node keeps its own view of it (``Witness``), cosigns a
checkpoint only once it verified it as consistent, and builds the ``Witnessed`` proof its
round machine needs from the cosigned checkpoint, as the node daemon does. A node that has
vanished cosigns nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import note, tlog, wire
from scfed.checkpoint import Checkpoint
from scfed.dp.contribution import Ints
from scfed.note_format import MAX_SIGNATURES
from scfed.registry import seal_registry
from scfed.secagg._table import Phase
from scfed.secagg.coordinator import CoordinatorRound, Outgoing, Task
from scfed.secagg.node import Identity, NodeRound
from scfed.secagg.node_rules import MemoryGuard, NodePolicy
from scfed.wire.codec import decode_result
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Announce, Member, Registry, Result
from scfed.wire.policy import Policy
from scfed.wire.tasks import CheckpointTask, KeySet, MaskingTask, Receipt, task_to_proto
from scfed.witness import LogView, Witnessed, cosign, witnessed

Random = Callable[[int], bytes]
#: Wall and CPU seconds now (``time.perf_counter()``, ``time.process_time()``), for the costs.
Clock = Callable[[], tuple[float, float]]
#: Cosignature lines served with a checkpoint, as the coordinator's log serves them.
MAX_SERVED_COSIGNATURES = MAX_SIGNATURES - 1


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


def no_clock() -> tuple[float, float]:
    """The clock of a round whose costs nobody reads: always zero."""
    return 0.0, 0.0


@dataclass
class Cost:
    """Wall and CPU seconds spent in one phase, by nodes and coordinator together, as the
    round's clock measured them (zero without one)."""

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
        return decode_result(self.outcome.body) if self.outcome.type == wire.RESULT else None


class MemoryLog:
    """The protocol log of an in-memory round: its leaves in a Merkle tree whose checkpoints
    the coordinator's key signs, each coordinator message taken once."""

    def __init__(self, fed: Federation) -> None:
        self.leaves: list[bytes] = []
        self._tree = tlog.MemoryTree()
        self._signer = note.Signer(fed.registry.origin, fed.coordinator_key)
        self._seen: set[bytes] = set()
        self.append(fed.signed_registry)

    def append(self, envelope: Envelope) -> None:
        data = envelope.to_bytes()
        self.leaves.append(data)
        self._tree.append(tlog.leaf_hash(data))

    def append_once(self, envelope: Envelope) -> None:
        """Log a coordinator message (announce, unmask request, outcome) the first time."""
        data = envelope.to_bytes()
        if data not in self._seen:
            self._seen.add(data)
            self.append(envelope)

    def coordinator_messages(self, tasks: list[Outgoing]) -> None:
        """Log the announce, unmask request or outcome these tasks carry, once each."""
        for out in tasks:
            if isinstance(out.task, Envelope) and out.task.signer == wire.COORDINATOR:
                self.append_once(out.task)

    def checkpoint(self) -> tuple[int, bytes]:
        """The current size and its checkpoint, signed by the coordinator."""
        size = self._tree.size
        text = Checkpoint(self._signer.name, size, self._tree.root()).format()
        return size, note.sign_note(text, [self._signer])

    def consistency(self, size1: int, size2: int) -> Sequence[bytes]:
        return self._tree.consistency_proof(size1, size2)


class Witness:
    """One node's side of the in-memory log: its view, its cosignatures, its proofs."""

    def __init__(self, member_id: str, key: Ed25519PrivateKey, registry: Registry) -> None:
        self.member_id, self._key, self._registry = member_id, key, registry
        self.view = LogView(registry.origin, registry.coordinator_key)
        self.traffic = 0  # bytes of the checkpoint tasks it got and the cosignatures it gave

    def cosign(self, signed: bytes, log: MemoryLog) -> str:
        """This node's cosignature line of a checkpoint consistent with its view."""
        verified = self.view.advance(signed, log.consistency)
        line = cosign(verified, self.member_id, self._key, 0)  # no clock in memory
        self.traffic += task_to_proto(CheckpointTask(signed)).ByteSize() + len(line)
        return line

    def proof(self, cosigned: bytes, log: MemoryLog, node: NodeRound) -> Witnessed:
        """The proof ``node`` needs from a cosigned checkpoint, at the quorum it froze."""
        verified = self.view.advance(cosigned, log.consistency)
        registry, quorum = self._registry, node.witness_quorum
        return witnessed(verified, self.view.verifier, node.announce, registry, quorum)


def witness_step(
    coordinator: CoordinatorRound, log: MemoryLog, present: Mapping[str, Witness]
) -> tuple[list[Outgoing], bytes]:
    """Run a witnessing step as the coordinator daemon does: log the unmask request it
    holds, sign a checkpoint, and have the step's witnesses that are ``present`` cosign it.

    Returns the tasks the round lets go and the cosigned checkpoint they travel with: it
    carries the cosignatures that had arrived when the quorum was reached, as the coordinator
    serves it then; without a quorum the step is closed as its deadline would close it.
    """
    request = coordinator.unmask_request
    if request is not None:
        log.append_once(request)
    size, signed = log.checkpoint()
    coordinator.checkpoint(size)
    lines: list[str] = []
    pending: list[Outgoing] = []
    for member_id in coordinator.witnesses:
        witness = present.get(member_id)
        if witness is None:
            continue
        line = witness.cosign(signed, log)  # every witness asked cosigns, later ones too
        if coordinator.witnessing:
            lines.append(line)
            pending += coordinator.cosigned(member_id, size)
    if coordinator.witnessing:
        pending = coordinator.close()
    served = "".join(sorted(lines)[:MAX_SERVED_COSIGNATURES])
    return pending, signed + served.encode("utf-8")


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
    clock: Clock = no_clock,
    inspect: Callable[[CoordinatorRound], None] | None = None,
) -> Report:
    """Run one round; a node in ``vanish_after`` goes silent once it reaches that phase.

    ``inputs`` are the nodes' figures on the round's grid; each node adds its noise. The
    report's costs per phase are differences of ``clock`` readings; ``inspect`` sees the
    coordinator after each step, outside them.
    """
    coordinator = CoordinatorRound(announce, fed.registry, fed.coordinator_key, policy=catalogue)
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
    log = MemoryLog(fed)
    network = _Network(fed, nodes, inputs, vanish_after or {}, log)
    report = Report(coordinator.announce_envelope)
    pending, cosigned = coordinator.start(), b""
    while pending or coordinator.witnessing:
        cost = report.phases.setdefault(coordinator.phase.value, Cost())
        wall, cpu = clock()
        if coordinator.witnessing:
            pending, cosigned = witness_step(coordinator, log, network.present())
        else:
            pending = _exchange(coordinator, network, pending, cosigned)
        wall_after, cpu_after = clock()
        cost.wall += wall_after - wall
        cost.cpu += cpu_after - cpu
        if inspect is not None:
            inspect(coordinator)
    if coordinator.outcome is None:
        raise AssertionError("the round ended without an outcome")
    report.outcome = coordinator.outcome
    charge = coordinator.charge("memory", catalogue)
    if charge is not None:
        log.append(charge)
    report.log = log.leaves
    report.bytes_per_node = network.traffic()
    report.contributions = {m: node.contribution for m, node in nodes.items()}
    return report


def _exchange(
    coordinator: CoordinatorRound, network: _Network, tasks: list[Outgoing], cosigned: bytes
) -> list[Outgoing]:
    """Deliver tasks and feed the coordinator the answers; what it sends next."""
    network.log.coordinator_messages(tasks)
    pending: list[Outgoing] = []
    for m, reply in network.deliver(tasks, cosigned):
        pending += coordinator.receive(m, reply)
        network.log.append(reply)
    if not pending and not coordinator.phase.terminal and not coordinator.witnessing:
        pending = coordinator.close()  # what the phase deadline would do
    return pending


def _witnessed(task: Task) -> bool:
    """Whether a task goes out only with a checkpoint a quorum cosigned."""
    return isinstance(task, MaskingTask) or (
        isinstance(task, Envelope) and task.type == wire.UNMASK_REQUEST
    )


class _Network:
    """The nodes of an in-memory round, and the bytes each sends and receives."""

    def __init__(
        self,
        fed: Federation,
        nodes: dict[str, NodeRound],
        inputs: Mapping[str, Ints],
        vanish: Mapping[str, Phase],
        log: MemoryLog,
    ) -> None:
        self.nodes, self.log = nodes, log
        self.witnesses = {m: Witness(m, fed.member_keys[m], fed.registry) for m in nodes}
        self.sizes = dict.fromkeys(self.nodes, 0)
        self._inputs, self._vanish = inputs, vanish

    def _silent(self, member_id: str) -> bool:
        return self._vanish.get(member_id) is self.nodes[member_id].phase

    def present(self) -> dict[str, Witness]:
        """The witnesses of the nodes that have not vanished; each cosigns what it is sent."""
        return {m: w for m, w in self.witnesses.items() if not self._silent(m)}

    def traffic(self) -> dict[str, int]:
        """Bytes each node got and sent: tasks, answers, checkpoints and cosignatures."""
        return {m: size + self.witnesses[m].traffic for m, size in self.sizes.items()}

    def deliver(self, tasks: list[Outgoing], cosigned: bytes) -> list[tuple[str, Envelope]]:
        """Hand each task to its node (a masking task or unmask request with its proof
        from ``cosigned``); the answers of the nodes still there."""
        replies = []
        for out in tasks:
            if self._silent(out.to):
                continue
            reply = self._deliver(out.to, out.task, cosigned)
            if reply is not None:
                self.sizes[out.to] += len(reply.to_bytes())
                replies.append((out.to, reply))
        return replies

    def _deliver(self, member_id: str, task: Task, cosigned: bytes) -> Envelope | None:
        node, inputs = self.nodes[member_id], self._inputs[member_id]
        receipt = Receipt(0, cosigned, ()) if _witnessed(task) else None
        self.sizes[member_id] += task_to_proto(task, receipt).ByteSize()
        match task:
            case KeySet():
                return node.on_keys(task)
            case Envelope() if task.type == wire.ANNOUNCE:
                return node.on_announce(task, lambda _: inputs)
            case Envelope() if task.type == wire.UNMASK_REQUEST:
                return node.on_unmask(task, self._proof(member_id, cosigned))
            case MaskingTask():
                return node.on_masking(task, self._proof(member_id, cosigned))
            case Envelope():
                node.on_outcome(task)
        return None

    def _proof(self, member_id: str, cosigned: bytes) -> Witnessed:
        return self.witnesses[member_id].proof(cosigned, self.log, self.nodes[member_id])
