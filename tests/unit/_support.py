"""Shared helpers for the unit tests: a deterministic rng and a scripted in-memory round.

A ``Script`` is one complete round run in memory with every node's randomness derived from
its member id, so a fresh ``NodeRound`` or ``CoordinatorRound`` fed the recorded tasks or
messages reaches exactly the same state: that is how the tests put a real machine in any
phase. Its witnessing steps run on the driver's in-memory log: the script keeps who cosigned
which checkpoint size, to feed a coordinator, and a real ``Witnessed`` proof of each step,
to hand a node with its masking task or unmask request. Nothing here opens a socket or a
file.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from fractions import Fraction

import numpy as np

from scfed import wire
from scfed.catalogue import entry_layout_hash, layout, node_vector
from scfed.dp.contribution import Ints
from scfed.dp.params import MAGNITUDE, Noise
from scfed.groups import group_of, groups
from scfed.secagg import Identity, MemoryGuard, NodePolicy, NodeRound, UnmaskGuard
from scfed.secagg._table import Phase
from scfed.secagg.coordinator import CoordinatorRound, Outgoing
from scfed.secagg.driver import Federation, MemoryLog, Witness, federation, witness_step
from scfed.wire import envelope as env
from scfed.wire.codec import encode
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Abort, Announce, Domain, layout_hash
from scfed.wire.policy import CatalogueEntry
from scfed.wire.tasks import KeySet, MaskingTask
from scfed.witness import Witnessed

NodeTask = Envelope | KeySet | MaskingTask
Random = Callable[[int], bytes]

# The phases a round collects messages in, in order, and the node task that opens each.
RUNNING = (Phase.ADVERTISING, Phase.SHARING, Phase.MASKING, Phase.UNMASKING)


class Rng:
    """Deterministic bytes: SHAKE-256 of a seed and a call counter. For tests only."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._counter = 0

    def __call__(self, n: int) -> bytes:
        block = self._seed + b"/" + self._counter.to_bytes(8, "big")
        self._counter += 1
        return hashlib.shake_256(block).digest(n)


def int64_vector(seed: bytes, dim: int) -> Ints:
    """A pseudo-random int64 vector, negatives included, within the test plausibility bound."""
    raw = Rng(seed)(8 * dim)
    return np.frombuffer(raw, dtype="<i8").astype(np.int64) >> 12


def cells_of(dim: int) -> tuple[str, ...]:
    return tuple(f"cell-{i}" for i in range(dim))


#: sigma 4 with n_min 3 and t_collude 1: each node adds N_Z(0, 8); magnitude privacy, R = 1.
TEST_NOISE = Noise("4", 1, MAGNITUDE, 1, "1", 2**52)


def make_announce(
    fed: Federation,
    candidates: tuple[str, ...],
    threshold: int,
    n_min: int,
    *,
    dim: int = 3,
    round_seed: bytes = b"round",
    noise: Noise | None = None,
) -> Announce:
    cells = cells_of(dim)
    return Announce(
        round_id=Rng(round_seed)(16),
        query="test.inventory",
        dim=dim,
        candidates=candidates,
        threshold=threshold,
        n_min=n_min,
        registry_version=fed.registry.version,
        phase_timeout_ms=1000,
        layout_hash=layout_hash(cells),
        noise=noise or TEST_NOISE,
        cells=cells,
    )


def new_node(
    fed: Federation,
    member: str,
    guard: UnmaskGuard | None = None,
    policy: NodePolicy | None = None,
    seed: bytes = b"node:",
) -> NodeRound:
    """A node whose randomness depends only on ``seed`` and its member id."""
    identity = Identity(member, fed.member_keys[member], fed.registry)
    rng = Rng(seed + member.encode())
    policy = policy or NodePolicy(adhoc=True, adhoc_cap=Fraction(1, 2))
    return NodeRound(identity, policy, guard or MemoryGuard(), rng, period="test")


def witnessed_task(task: NodeTask) -> bool:
    """Whether a node needs a witness proof with the task: a masking task, an unmask request."""
    return isinstance(task, MaskingTask) or (
        isinstance(task, Envelope) and task.type == wire.UNMASK_REQUEST
    )


def deliver(
    node: NodeRound, task: NodeTask, inputs: Ints, witnessed: Witnessed | None = None
) -> Envelope:
    """Hand a node a non-outcome task, with the witness proof a masking task or unmask
    request needs, and return its reply."""
    if witnessed_task(task) and witnessed is None:
        raise AssertionError("a masking task or unmask request goes with a witness proof")
    match task:
        case KeySet():
            return node.on_keys(task)
        case MaskingTask() if witnessed is not None:
            return node.on_masking(task, witnessed)
        case Envelope() if task.type == wire.ANNOUNCE:
            return node.on_announce(task, lambda _: inputs)
        case Envelope() if task.type == wire.UNMASK_REQUEST and witnessed is not None:
            return node.on_unmask(task, witnessed)
    raise AssertionError(f"not a task with a reply: {task!r}")


def forge(fed: Federation, type_: str, body: Domain) -> Envelope:
    """A message signed with the coordinator's real key (what a malicious coordinator can do)."""
    return env.seal(fed.coordinator_key, type_, wire.COORDINATOR, fed.registry.origin, encode(body))


@dataclass
class Script:
    """One recorded round: the tasks each node received and the replies it gave."""

    fed: Federation
    announce: Announce
    announce_hash: bytes
    inputs: dict[str, Ints]
    tasks: dict[str, list[NodeTask]]
    # The coordinator's phase when a reply was produced -> sender -> reply.
    replies: dict[Phase, dict[str, Envelope]] = field(default_factory=dict)
    outcome: Envelope | None = None
    # Witnessing phase -> (the checkpoint size it asked for, who cosigned it, in order).
    witnessing: dict[Phase, tuple[int, tuple[str, ...]]] = field(default_factory=dict)
    # MASKING or UNMASKING -> a real proof of the step before it, for any candidate.
    proofs: dict[Phase, Witnessed] = field(default_factory=dict)

    @property
    def round_id(self) -> bytes:
        return self.announce.round_id

    @property
    def result(self) -> Envelope:
        if self.outcome is None:
            raise AssertionError("the script has no outcome")
        return self.outcome

    def abort(self, reason: str = "test abort") -> Envelope:
        return forge(self.fed, wire.ABORT, Abort(self.round_id, self.announce_hash, reason))

    def input_of(self, member: str) -> Ints:
        return self.inputs[member]

    def proof(self, phase: Phase) -> Witnessed:
        """The proof a node needs for its masking task (MASKING) or unmask request."""
        return self.proofs[phase]

    def witnessed_for(self, task: NodeTask) -> Witnessed | None:
        """The proof that goes with ``task``, if it needs one."""
        if not witnessed_task(task):
            return None
        return self.proof(Phase.MASKING if isinstance(task, MaskingTask) else Phase.UNMASKING)


def build_script(
    *,
    n: int = 4,
    threshold: int = 3,
    n_min: int = 3,
    dim: int = 3,
    extra_members: int = 0,
    vanish_after: Mapping[str, Phase] | None = None,
) -> Script:
    """Run one round in memory, recording everything; ``extra_members`` are non-candidates."""
    vanish = vanish_after or {}
    fed = federation(n + extra_members, Rng(b"federation"))
    candidates = tuple(sorted(fed.member_keys))[:n]
    announce = make_announce(fed, candidates, threshold, n_min, dim=dim)
    coordinator = CoordinatorRound(announce, fed.registry, fed.coordinator_key)
    script = Script(
        fed=fed,
        announce=announce,
        announce_hash=coordinator.announce_hash,
        inputs={m: int64_vector(b"input:" + m.encode(), dim) for m in candidates},
        tasks={m: [] for m in candidates},
    )
    nodes = {m: new_node(fed, m) for m in candidates}
    witnesses = {m: Witness(m, fed.member_keys[m], fed.registry) for m in candidates}
    log, cosigned = MemoryLog(fed), b""
    pending = coordinator.start()
    while pending or coordinator.witnessing:
        phase = coordinator.phase
        if coordinator.witnessing:
            present = {m: w for m, w in witnesses.items() if vanish.get(m) is not nodes[m].phase}
            asked = coordinator.witnesses
            pending, cosigned = witness_step(coordinator, log, present)
            size = coordinator.checkpoint_size
            assert size is not None
            script.witnessing[phase] = (size, tuple(m for m in asked if m in present))
            continue
        log.coordinator_messages(pending)
        replies = []
        for out in pending:
            node = nodes[out.to]
            if vanish.get(out.to) is node.phase:
                continue
            if isinstance(out.task, Envelope) and out.task.type in (wire.RESULT, wire.ABORT):
                node.on_outcome(out.task)
                continue
            proof = None
            if witnessed_task(out.task):
                proof = witnesses[out.to].proof(cosigned, log, node)
                script.proofs.setdefault(phase, proof)
            script.tasks[out.to].append(out.task)
            reply = deliver(node, out.task, script.inputs[out.to], proof)
            script.replies.setdefault(phase, {})[out.to] = reply
            replies.append((out.to, reply))
            log.append(reply)
        pending = [task for m, reply in replies for task in coordinator.receive(m, reply)]
        if not pending and not coordinator.phase.terminal and not coordinator.witnessing:
            pending = coordinator.close()
    script.outcome = coordinator.outcome
    return script


@functools.cache
def five_node_script() -> Script:
    """A round of 5 candidates and one non-candidate member, in which node-004 vanishes
    before sharing keys: 4 share keys, survive and unmask. Built once, shared by tests."""
    return build_script(n=5, extra_members=1, vanish_after={"node-004": Phase.ADVERTISING})


def advance_coordinator(coordinator: CoordinatorRound, script: Script, target: Phase) -> None:
    """Feed the recorded replies phase by phase (closing as the deadline would) to ``target``."""
    if coordinator.phase is Phase.NEW and target is not Phase.NEW:
        coordinator.start()
    while coordinator.phase is not target:
        phase = coordinator.phase
        if phase.terminal:
            raise AssertionError(f"the round ended in {phase} before reaching {target}")
        if coordinator.witnessing:
            witness_coordinator(coordinator, script)
        for member, reply in script.replies.get(phase, {}).items():
            coordinator.receive(member, reply)
        if coordinator.phase is phase:
            coordinator.close()


def witness_coordinator(coordinator: CoordinatorRound, script: Script) -> list[Outgoing]:
    """Feed a coordinator in a witnessing step the recorded checkpoint and cosignatures;
    what it let go."""
    size, cosigners = script.witnessing[coordinator.phase]
    coordinator.checkpoint(size)
    released: list[Outgoing] = []
    for member in cosigners:
        if coordinator.witnessing:
            released += coordinator.cosigned(member, size)
    return released


def coordinator_in(script: Script, phase: Phase) -> CoordinatorRound:
    """A real coordinator of the scripted round, put in ``phase``."""
    fed = script.fed
    coordinator = CoordinatorRound(script.announce, fed.registry, fed.coordinator_key)
    if phase is Phase.ABORTED:
        coordinator.start()
        coordinator.close()  # nobody advertised keys: too few
    else:
        advance_coordinator(coordinator, script, phase)
    assert coordinator.phase is phase
    return coordinator


def feed_node(node: NodeRound, script: Script, member: str, start: int, stop: int) -> None:
    """Give a node tasks[start:stop] of the script and check it replies as recorded."""
    for index in range(start, stop):
        task = script.tasks[member][index]
        reply = deliver(node, task, script.input_of(member), script.witnessed_for(task))
        assert reply.to_bytes() == script.replies[RUNNING[index]][member].to_bytes()


def node_in(
    script: Script, member: str, phase: Phase, guard: UnmaskGuard | None = None
) -> NodeRound:
    """A fresh node of the scripted round (same randomness as in the script) in ``phase``."""
    node = new_node(script.fed, member, guard)
    if phase in RUNNING or phase is Phase.NEW:
        steps = 0 if phase is Phase.NEW else RUNNING.index(phase) + 1
        feed_node(node, script, member, 0, steps)
    elif phase is Phase.FINISHED:
        feed_node(node, script, member, 0, len(RUNNING))
        node.on_outcome(script.result)
    else:
        feed_node(node, script, member, 0, 1)
        node.on_outcome(script.abort())
    assert node.phase is phase
    return node


def announce_task(script: Script, member: str) -> Envelope:
    task = script.tasks[member][0]
    assert isinstance(task, Envelope)
    return task


def keys_task(script: Script, member: str) -> KeySet:
    task = script.tasks[member][1]
    assert isinstance(task, KeySet)
    return task


def masking_task(script: Script, member: str) -> MaskingTask:
    task = script.tasks[member][2]
    assert isinstance(task, MaskingTask)
    return task


def unmask_task(script: Script, member: str) -> Envelope:
    task = script.tasks[member][3]
    assert isinstance(task, Envelope)
    return task


def catalogue_inputs(
    fed: Federation, entry: CatalogueEntry, announce: Announce, member: str
) -> Ints:
    """A node's catalogue vector for some plausible demand and capacity figures, with its
    corporate group's members among the candidates as the real node counts them."""
    number = int(member[-3:])
    facts = {
        "demand": Decimal(120 + 7 * number),
        "capacity_actual": Decimal(100 + number),
        "capacity_max": Decimal(150),
    }
    (commodity,) = entry.commodities[:1]

    def weekly(metric: str, weeks: Sequence[date]) -> Mapping[tuple[str, date], Decimal]:
        return {(commodity, w): facts[metric] for w in weeks}

    group = groups(fed.registry, announce.candidates).size(group_of(fed.registry, member))
    return node_vector(entry, date.fromisoformat(announce.week), weekly, group)


def entry_announce(fed: Federation, entry: CatalogueEntry, week: date, seed: bytes) -> Announce:
    """The announce an honest coordinator makes for a round of ``entry`` in ``week``."""
    candidates = tuple(sorted(fed.member_keys))
    noise = replace(entry.noise, planned=entry.planned(len(candidates)))
    return Announce(
        Rng(b"round:" + seed)(16), entry.name, layout(entry, week).dim, candidates,
        len(candidates) // 2 + 1, entry.min_contributors, fed.registry.version, 1000,
        entry_layout_hash(entry, week), noise, (), week.isoformat(),
    )  # fmt: skip


#: A node config whose files are named, not made: for commands that read only the store.
NODE_TOML = """\
member_id = "acme"
origin = "scfed.example/fab"
coordinator = "coordinator.fab.scfed:7443"
server_name = "coordinator.fab.scfed"

[keys]
tls_certificate = "tls.pem"
tls_key = "tls.key"
ca_certificate = "ca.pem"
identity_key = "identity.key"
governance_key = "governance.pub"
"""
