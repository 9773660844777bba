"""Exhaustive tests of the transition tables against real machines in every phase.

For every (Phase, CoordinatorEvent) and (Phase, NodeEvent) pair: a pair in the table is
accepted and leaves the machine in one of the listed phases; a pair missing from it is refused
and leaves the machine as it was, so the round can still go on to the scripted outcome.

The witness rule is part of the tables. No coordinator transition gives out a masking task or
an unmask request but a cosignature that completes the witness quorum of a witnessing step
(the table has no other way into MASKING or UNMASKING than that step, or a replay's logged
evidence, which sends nothing); and a node masks or reveals only with a real ``Witnessed``
proof for its round at the quorum it froze.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scfed import wire
from scfed.errors import (
    LocalProtocolError,
    OutOfOrderError,
    PermissionDeniedError,
    RefusedError,
    RemoteProtocolError,
    VerificationError,
)
from scfed.secagg import Identity, MemoryGuard, NodePolicy, NodeRound
from scfed.secagg._table import (
    COORDINATOR,
    COORDINATOR_RUNNING,
    NODE,
    NODE_RUNNING,
    CoordinatorEvent,
    NodeEvent,
    Phase,
)
from scfed.secagg.coordinator import NO_WITNESS_QUORUM, CoordinatorRound, Outgoing
from scfed.secagg.driver import MemoryLog
from scfed.wire import envelope as env
from scfed.wire.codec import decode_abort
from scfed.wire.envelope import Envelope
from scfed.wire.policy import Policy
from scfed.wire.tasks import MaskingTask
from scfed.witness import LogView, Witnessed, cosign, witnessed
from tests.unit._support import (
    RUNNING,
    Rng,
    Script,
    advance_coordinator,
    announce_task,
    build_script,
    coordinator_in,
    deliver,
    feed_node,
    five_node_script,
    keys_task,
    masking_task,
    new_node,
    node_in,
    witness_coordinator,
)

SUBJECT = "node-000"
_SCRIPT: list[Script] = []

# The phase whose messages each coordinator event carries, and the task index of node events.
EVENT_PHASE = {
    CoordinatorEvent.ADVERTISE_KEYS: Phase.ADVERTISING,
    CoordinatorEvent.SHARE_KEYS: Phase.SHARING,
    CoordinatorEvent.MASKED_INPUT: Phase.MASKING,
    CoordinatorEvent.UNMASK_RESPONSE: Phase.UNMASKING,
}
TASK_INDEX = {NodeEvent.ANNOUNCE: 0, NodeEvent.KEYS: 1, NodeEvent.MASKING: 2, NodeEvent.UNMASK: 3}
# Each witnessing step, the phase it leads to, and the node message that shows it passed.
WITNESSING = {Phase.WITNESSING_MASKING: Phase.MASKING, Phase.WITNESSING_UNMASKING: Phase.UNMASKING}
EVIDENCE = {
    Phase.WITNESSING_MASKING: CoordinatorEvent.MASKED_INPUT,
    Phase.WITNESSING_UNMASKING: CoordinatorEvent.UNMASK_RESPONSE,
}


def script() -> Script:
    """One recorded round (n=4, t=3, n_min=3), shared by every test in this module."""
    if not _SCRIPT:
        _SCRIPT.append(build_script())
    return _SCRIPT[0]


def test_script_is_a_complete_round() -> None:
    recorded = script()
    assert recorded.result.type == wire.RESULT
    assert [list(recorded.replies[p]) for p in RUNNING] == [list(recorded.announce.candidates)] * 4


def test_tables_only_name_known_phases_and_events() -> None:
    assert all(not phase.terminal for phase, _ in COORDINATOR)
    assert all(not phase.terminal for phase, _ in NODE)
    assert {phase for phase, _ in COORDINATOR} == set(COORDINATOR_RUNNING)
    assert all(allowed <= set(Phase) - {Phase.NEW} for allowed in COORDINATOR.values())
    assert all(len(allowed) == 1 for allowed in NODE.values())
    assert {phase for phase, _ in NODE} == {Phase.NEW, *NODE_RUNNING} == {Phase.NEW, *RUNNING}


def test_only_a_witnessing_step_leads_into_masking_and_unmasking() -> None:
    """The coordinator's table has no way into a privacy-critical phase but its witnessing
    step: by a cosignature (that completes the quorum) or, in a replay, logged evidence."""
    into = {
        (phase, event)
        for (phase, event), allowed in COORDINATOR.items()
        for critical in WITNESSING.values()
        if critical in allowed and phase is not critical
    }
    assert into == {
        (step, event)
        for step in WITNESSING
        for event in (CoordinatorEvent.COSIGNATURE, CoordinatorEvent.LOGGED)
    }
    for step, critical in WITNESSING.items():
        assert COORDINATOR[(step, CoordinatorEvent.CLOSE)] == {Phase.ABORTED}  # the deadline
        assert COORDINATOR[(step, CoordinatorEvent.CHECKPOINT)] == {step}
        before = COORDINATOR_RUNNING[COORDINATOR_RUNNING.index(step) - 1]
        assert step in COORDINATOR[(before, CoordinatorEvent.CLOSE)]
        assert critical not in COORDINATOR[(before, CoordinatorEvent.CLOSE)]


# ---- coordinator ----


def _coordinator_state(coordinator: CoordinatorRound) -> dict[str, Any]:
    state = {k: copy.deepcopy(v) for k, v in vars(coordinator).items() if k != "_key"}
    state["_sum"] = coordinator._sum.tobytes()
    state["participants"] = coordinator.participants
    return state


def _coordinator_finishes_as_scripted(coordinator: CoordinatorRound) -> None:
    recorded = script()
    if coordinator.phase.terminal:
        return
    advance_coordinator(coordinator, recorded, Phase.FINISHED)
    assert coordinator.outcome is not None
    assert coordinator.outcome.to_bytes() == recorded.result.to_bytes()


def _critical(sent: list[Outgoing]) -> list[Outgoing]:
    """The masking tasks and unmask requests among what a transition gave out."""
    return [
        out
        for out in sent
        if isinstance(out.task, MaskingTask)
        or (isinstance(out.task, Envelope) and out.task.type == wire.UNMASK_REQUEST)
    ]


def _scripted_tasks(recorded: Script, phase: Phase) -> list[tuple[str, object]]:
    """The tasks that opened ``phase`` (MASKING or UNMASKING) in the scripted round."""
    index = RUNNING.index(phase)
    return [(m, tasks[index]) for m, tasks in recorded.tasks.items() if len(tasks) > index]


def _refuse(coordinator: CoordinatorRound, event: CoordinatorEvent) -> None:
    """Apply an event the table does not allow in the coordinator's phase: it is refused."""
    recorded = script()
    refusals: dict[CoordinatorEvent, tuple[type[Exception], Callable[[], object]]] = {
        CoordinatorEvent.CLOSE: (LocalProtocolError, coordinator.close),
        CoordinatorEvent.ABANDON: (LocalProtocolError, lambda: coordinator.abandon("no")),
        CoordinatorEvent.CHECKPOINT: (LocalProtocolError, lambda: coordinator.checkpoint(99)),
        CoordinatorEvent.COSIGNATURE: (OutOfOrderError, lambda: coordinator.cosigned(SUBJECT, 99)),
        CoordinatorEvent.LOGGED: (
            LocalProtocolError,
            lambda: coordinator.logged(recorded.replies[Phase.MASKING][SUBJECT]),
        ),
    }
    error, action = refusals.get(
        event,
        (OutOfOrderError, lambda: coordinator.receive(SUBJECT, _message(event))),
    )
    with pytest.raises(error):
        action()


def _message(event: CoordinatorEvent) -> Envelope:
    return script().replies[EVENT_PHASE[event]][SUBJECT]


def _cosign_to_quorum(coordinator: CoordinatorRound, allowed: frozenset[Phase]) -> None:
    """Feed the step its checkpoint and cosignatures one by one: nothing goes out before the
    quorum's last cosignature, and then exactly the scripted round's tasks."""
    recorded, step = script(), coordinator.phase
    size, cosigners = recorded.witnessing[step]
    coordinator.checkpoint(size)
    for count, member in enumerate(cosigners, 1):
        sent = coordinator.cosigned(member, size)
        assert coordinator.phase in allowed
        if count < coordinator.witness_quorum:
            assert sent == []
            assert coordinator.phase is step
            continue
        assert count == coordinator.witness_quorum
        assert coordinator.phase is WITNESSING[step]
        assert [(out.to, out.task) for out in sent] == _scripted_tasks(recorded, WITNESSING[step])
        assert _critical(sent) == sent
        return
    raise AssertionError("the script's cosignatures never reached the quorum")


COORDINATOR_PAIRS = list(itertools.product(Phase, CoordinatorEvent))


@pytest.mark.parametrize(
    ("phase", "event"), COORDINATOR_PAIRS, ids=[f"{p.value}-{e.name}" for p, e in COORDINATOR_PAIRS]
)
def test_coordinator_pair(phase: Phase, event: CoordinatorEvent) -> None:
    recorded = script()
    coordinator = coordinator_in(recorded, phase)
    allowed = COORDINATOR.get((phase, event))
    if allowed is None:
        before = _coordinator_state(coordinator)
        _refuse(coordinator, event)
        assert _coordinator_state(coordinator) == before
        _coordinator_finishes_as_scripted(coordinator)
    elif event is CoordinatorEvent.COSIGNATURE:
        _cosign_to_quorum(coordinator, allowed)
        _coordinator_finishes_as_scripted(coordinator)
    elif event is CoordinatorEvent.CHECKPOINT:
        coordinator.checkpoint(recorded.witnessing[phase][0])
        assert coordinator.phase in allowed
        _coordinator_finishes_as_scripted(coordinator)
    elif event is CoordinatorEvent.LOGGED:
        coordinator.logged(recorded.replies[WITNESSING[phase]][SUBJECT])
        assert coordinator.phase in allowed
        assert coordinator.witnesses == ()  # what the step held is dropped: it was sent live
        _coordinator_finishes_as_scripted(coordinator)
    elif event is CoordinatorEvent.CLOSE:
        sent = coordinator.close()
        assert coordinator.phase in allowed
        assert coordinator.phase is Phase.ABORTED  # nobody answered, nobody cosigned yet
        assert _critical(sent) == []
        if phase in WITNESSING:
            assert coordinator.outcome is not None
            assert decode_abort(coordinator.outcome.body).reason == NO_WITNESS_QUORUM
    elif event is CoordinatorEvent.ABANDON:
        sent = coordinator.abandon("no witness quorum")
        assert coordinator.phase in allowed
        assert coordinator.outcome is not None
        assert decode_abort(coordinator.outcome.body).reason == "no witness quorum"
        assert {out.to for out in sent} == set(recorded.announce.candidates)
    else:
        for member, message in recorded.replies[phase].items():
            assert coordinator.phase is phase
            sent = coordinator.receive(member, message)
            assert coordinator.phase in allowed
            assert _critical(sent) == []  # closing a phase only opens a witnessing step
        assert coordinator.phase is not phase  # the last expected message closes the phase


@pytest.mark.parametrize("phase", RUNNING, ids=[p.value for p in RUNNING])
def test_coordinator_close_with_enough_answers_moves_on(phase: Phase) -> None:
    recorded = script()
    coordinator = coordinator_in(recorded, phase)
    announce = recorded.announce
    needed = announce.threshold if phase is Phase.UNMASKING else announce.quorum
    for member, message in list(recorded.replies[phase].items())[:needed]:
        coordinator.receive(member, message)
    assert coordinator.phase is phase
    sent = coordinator.close()
    allowed = COORDINATOR[(phase, CoordinatorEvent.CLOSE)]
    assert coordinator.phase in allowed - {Phase.ABORTED}
    assert _critical(sent) == []


@pytest.mark.parametrize("phase", RUNNING, ids=[p.value for p in RUNNING])
def test_coordinator_close_with_too_few_answers_aborts(phase: Phase) -> None:
    recorded = script()
    coordinator = coordinator_in(recorded, phase)
    announce = recorded.announce
    needed = announce.threshold if phase is Phase.UNMASKING else announce.quorum
    for member, message in list(recorded.replies[phase].items())[: needed - 1]:
        coordinator.receive(member, message)
    coordinator.close()
    assert coordinator.phase is Phase.ABORTED
    assert coordinator.outcome is not None
    assert coordinator.outcome.type == wire.ABORT


# ---- coordinator: the witnessing steps ----

STEPS = list(WITNESSING)
# The members of the five-node script: five candidates, node-004 vanishing before it shared
# keys, and node-005, a member but no candidate.
MEMBERS = ["node-000", "node-001", "node-002", "node-003", "node-004", "node-005"]
# One event of a witnessing step: a checkpoint (None, size) or a cosignature (member, size).
step_events = st.lists(
    st.tuples(st.sampled_from([None, *MEMBERS]), st.integers(-1, 1)), max_size=14
)


@settings(max_examples=60, deadline=None)
@given(step=st.sampled_from(STEPS), events=step_events)
def test_tasks_go_out_exactly_when_a_quorum_cosigned_the_checkpoint_asked_for(
    step: Phase, events: list[tuple[str | None, int]]
) -> None:
    """Any order of checkpoints and cosignatures, of the right size or not, by witnesses,
    by the candidate that vanished (node-004) or by a non-candidate (node-005): the step
    gives out its tasks at the cosignature that makes a quorum of distinct witnesses of the
    checkpoint it was last asked for, and never before."""
    recorded = five_node_script()
    coordinator = coordinator_in(recorded, step)
    size = recorded.witnessing[step][0]
    witnesses = set(coordinator.witnesses)
    assert witnesses == {"node-000", "node-001", "node-002", "node-003"}
    asked: int | None = None
    counted: set[str] = set()
    for member, offset in events:
        if member is None:
            asked, counted = size + offset, set()
            coordinator.checkpoint(asked)
            continue
        sent = coordinator.cosigned(member, size + offset)
        if size + offset == asked and member in witnesses:
            counted.add(member)
        if len(counted) < coordinator.witness_quorum:
            assert sent == []
            assert coordinator.phase is step
            assert coordinator.cosigners == counted
            continue
        assert coordinator.phase is WITNESSING[step]
        assert {out.to for out in sent} == witnesses
        assert len(_critical(sent)) == len(sent) == len(witnesses)
        return
    assert coordinator.phase is step  # no quorum: its deadline aborts the round
    assert _critical(coordinator.close()) == []
    assert coordinator.phase is Phase.ABORTED


@pytest.mark.parametrize("step", STEPS, ids=[p.value for p in STEPS])
def test_a_witnessing_step_counts_only_the_checkpoint_it_last_asked_for(step: Phase) -> None:
    recorded = five_node_script()
    coordinator = coordinator_in(recorded, step)
    size, cosigners = recorded.witnessing[step]
    assert coordinator.witness_quorum == 3
    for member in cosigners[:2]:
        assert coordinator.cosigned(member, size) == []  # before any checkpoint was asked for
    coordinator.checkpoint(size)
    for member in cosigners[:2]:
        assert coordinator.cosigned(member, size) == []
        assert coordinator.cosigned(member, size) == []  # twice is once
    assert coordinator.cosigned("node-004", size) == []  # a candidate the tasks skip
    assert coordinator.cosigned("node-005", size) == []  # a member but no candidate
    assert coordinator.cosigned(cosigners[2], size + 1) == []  # another checkpoint
    coordinator.checkpoint(size + 1)  # asking anew starts the count anew
    assert coordinator.cosigners == frozenset()
    assert coordinator.cosigned(cosigners[2], size + 1) == []
    assert coordinator.phase is step
    assert len(_critical(witness_coordinator(coordinator, recorded))) == 4
    with pytest.raises(LocalProtocolError):
        coordinator.checkpoint(0)  # the step is over: the table refuses


def test_a_policy_quorum_above_t_holds_the_tasks_until_it_is_met() -> None:
    recorded = five_node_script()
    fed = recorded.fed
    strict = CoordinatorRound(
        recorded.announce, fed.registry, fed.coordinator_key, policy=_policy(witness_quorum=4)
    )
    advance_coordinator(strict, recorded, Phase.WITNESSING_MASKING)
    size, cosigners = recorded.witnessing[Phase.WITNESSING_MASKING]
    strict.checkpoint(size)
    assert [strict.cosigned(m, size) for m in cosigners[:3]] == [[], [], []]
    assert strict.phase is Phase.WITNESSING_MASKING
    assert len(_critical(strict.cosigned(cosigners[3], size))) == 4


def _policy(witness_quorum: int) -> Policy:
    """A signed policy's contents: an empty catalogue and the given witness quorum."""
    origin = five_node_script().fed.registry.origin
    return Policy(origin, 1, "2026.1", "1", "year", (), witness_quorum)


@pytest.mark.parametrize("step", STEPS, ids=[p.value for p in STEPS])
def test_a_replay_passes_a_witnessing_step_only_on_a_witness_signed_message_of_the_next_phase(
    step: Phase,
) -> None:
    recorded = five_node_script()
    fed, origin = recorded.fed, recorded.fed.registry.origin
    coordinator = coordinator_in(recorded, step)
    genuine = recorded.replies[WITNESSING[step]][SUBJECT]
    other_type = recorded.replies[Phase.SHARING][SUBJECT]
    not_a_witness = env.seal(
        fed.member_keys["node-004"], genuine.type, "node-004", origin, genuine.body
    )
    forged = dataclasses.replace(genuine, signature=bytes(64))
    before = _coordinator_state(coordinator)
    for evidence, error in (
        (other_type, OutOfOrderError),
        (not_a_witness, PermissionDeniedError),
        (forged, VerificationError),
    ):
        with pytest.raises(error):
            coordinator.logged(evidence)
        assert _coordinator_state(coordinator) == before
    coordinator.logged(genuine)
    assert coordinator.phase is WITNESSING[step]
    assert coordinator.received[WITNESSING[step]] == {}  # the evidence itself is fed next
    coordinator.receive(SUBJECT, genuine)
    assert SUBJECT in coordinator.received[WITNESSING[step]]


def test_coordinator_start_only_once() -> None:
    coordinator = coordinator_in(script(), Phase.ADVERTISING)
    with pytest.raises(LocalProtocolError):
        coordinator.start()
    assert coordinator.phase is Phase.ADVERTISING


# ---- node ----


def _node_state(node: NodeRound) -> dict[str, Any]:
    return {
        "phase": node.phase,
        "outcome": node.outcome,
        "announce": node._announce,
        "announce_hash": node._announce_hash,
        "seed": node._seed,
        "advertised": dict(node._advertised),
        "held": dict(node._held),
        "shared": node._shared,
    }


def _apply(node: NodeRound, event: NodeEvent) -> Envelope | None:
    """Give the subject node the real task for ``event`` (with its real witness proof);
    return its reply, if any."""
    recorded = script()
    if event in TASK_INDEX:
        task = recorded.tasks[SUBJECT][TASK_INDEX[event]]
        return deliver(node, task, recorded.input_of(SUBJECT), recorded.witnessed_for(task))
    node.on_outcome(recorded.result if event is NodeEvent.RESULT else recorded.abort())
    return None


def _node_finishes_as_scripted(node: NodeRound) -> None:
    if node.phase.terminal:
        return
    recorded = script()
    done = 0 if node.phase is Phase.NEW else RUNNING.index(node.phase) + 1
    feed_node(node, recorded, SUBJECT, done, len(RUNNING))
    node.on_outcome(recorded.result)
    assert node.phase is Phase.FINISHED
    assert node.outcome == recorded.result


NODE_PHASES = (Phase.NEW, *NODE_RUNNING, Phase.FINISHED, Phase.ABORTED)
NODE_PAIRS = list(itertools.product(NODE_PHASES, NodeEvent))


@pytest.mark.parametrize(
    ("phase", "event"), NODE_PAIRS, ids=[f"{p.value}-{e.name}" for p, e in NODE_PAIRS]
)
def test_node_pair(phase: Phase, event: NodeEvent) -> None:
    recorded = script()
    node = node_in(recorded, SUBJECT, phase)
    allowed = NODE.get((phase, event))
    if allowed is None:
        before = _node_state(node)
        with pytest.raises(RefusedError):
            _apply(node, event)
        assert _node_state(node) == before
        _node_finishes_as_scripted(node)
        return
    reply = _apply(node, event)
    assert node.phase in allowed
    if event in TASK_INDEX:
        assert reply is not None
        assert reply.to_bytes() == recorded.replies[RUNNING[TASK_INDEX[event]]][SUBJECT].to_bytes()
    else:
        assert reply is None
        assert node.outcome is not None


# ---- node: no masking or revealing without a witness proof ----

WITNESSED_EVENTS = {NodeEvent.MASKING: Phase.SHARING, NodeEvent.UNMASK: Phase.MASKING}


def _proof_of(
    recorded: Script, cosigners: tuple[str, ...], *, quorum: int, round_id: bytes | None = None
) -> Witnessed:
    """A real proof: a checkpoint signed by the coordinator, cosigned by ``cosigners``,
    checked for ``quorum`` (for another round when ``round_id`` is given)."""
    fed = recorded.fed
    announce = recorded.announce
    if round_id is not None:
        announce = dataclasses.replace(announce, round_id=round_id)
    view = LogView(fed.registry.origin, fed.registry.coordinator_key)
    verified = view.opened(MemoryLog(fed).checkpoint()[1])
    lines = [cosign(verified, m, fed.member_keys[m], 1) for m in cosigners]
    cosigned = view.opened(verified.note + "".join(lines).encode())
    return witnessed(cosigned, view.verifier, announce, fed.registry, quorum)


def _bad_proofs(recorded: Script) -> dict[str, tuple[object, str]]:
    three = tuple(recorded.announce.candidates[:3])
    return {
        "none": (None, "without a witness proof"),
        "imitation": (
            dataclasses.make_dataclass("Fake", ["round_id", "quorum", "size", "cosigners"])(
                recorded.round_id, 3, 9, three
            ),
            "without a witness proof",
        ),
        "another-round": (
            _proof_of(recorded, three, quorum=3, round_id=bytes(16)),
            "another round",
        ),
        "below-the-frozen-quorum": (
            _proof_of(recorded, three[:2], quorum=2),
            "2 witness cosignatures checked for a quorum of 2; the round froze a quorum of 3",
        ),
    }


def _masks_or_reveals(node: NodeRound, task: object, proof: Any) -> Envelope:
    """Hand the node its masking task or unmask request with ``proof``, whatever it is."""
    if isinstance(task, MaskingTask):
        return node.on_masking(task, proof)
    assert isinstance(task, Envelope)
    return node.on_unmask(task, proof)


BAD_PROOFS = ["none", "imitation", "another-round", "below-the-frozen-quorum"]
WITNESSED_CASES = list(itertools.product(WITNESSED_EVENTS, BAD_PROOFS))


@pytest.mark.parametrize(
    ("event", "case"), WITNESSED_CASES, ids=[f"{e.name}-{c}" for e, c in WITNESSED_CASES]
)
def test_a_node_masks_and_reveals_only_with_a_proof_for_its_round_and_quorum(
    event: NodeEvent, case: str
) -> None:
    recorded = script()
    node = node_in(recorded, SUBJECT, WITNESSED_EVENTS[event])
    assert node.witness_quorum == recorded.announce.threshold == 3  # frozen at the announce
    proof, match = _bad_proofs(recorded)[case]
    task = recorded.tasks[SUBJECT][TASK_INDEX[event]]
    with pytest.raises(RefusedError, match=match):
        _masks_or_reveals(node, task, proof)
    assert node.phase is Phase.ABORTED  # the round is over for this node: nothing revealed
    with pytest.raises(RefusedError, match="out of order"):
        _apply(node, event)


@pytest.mark.parametrize("event", list(WITNESSED_EVENTS), ids=[e.name for e in WITNESSED_EVENTS])
def test_a_proof_of_exactly_the_frozen_quorum_is_enough(event: NodeEvent) -> None:
    recorded = script()
    node = node_in(recorded, SUBJECT, WITNESSED_EVENTS[event])
    proof = _proof_of(recorded, tuple(recorded.announce.candidates[1:4]), quorum=3)
    task = recorded.tasks[SUBJECT][TASK_INDEX[event]]
    reply = deliver(node, task, recorded.input_of(SUBJECT), proof)
    assert reply.to_bytes() == recorded.replies[RUNNING[TASK_INDEX[event]]][SUBJECT].to_bytes()


def test_a_node_holds_to_the_quorum_of_the_policy_it_held_at_the_announce() -> None:
    recorded = script()
    fed = recorded.fed
    node = NodeRound(
        Identity(SUBJECT, fed.member_keys[SUBJECT], fed.registry),
        NodePolicy(adhoc=True, adhoc_cap=Fraction(1, 2)),
        MemoryGuard(),
        Rng(b"node:" + SUBJECT.encode()),
        period="test",
        catalogue=_policy(witness_quorum=4),
    )
    feed_node(node, recorded, SUBJECT, 0, 2)
    assert node.witness_quorum == 4
    scripted = recorded.proof(Phase.MASKING)  # served once t = 3 had cosigned
    assert (scripted.quorum, len(scripted.cosigners)) == (3, 3)
    with pytest.raises(RefusedError, match="the round froze a quorum of 4"):
        node.on_masking(masking_task(recorded, SUBJECT), recorded.proof(Phase.MASKING))
    strict = new_node(fed, SUBJECT)
    strict.catalogue = _policy(witness_quorum=4)
    feed_node(strict, recorded, SUBJECT, 0, 2)
    proof = _proof_of(recorded, tuple(recorded.announce.candidates), quorum=4)
    masked = strict.on_masking(masking_task(recorded, SUBJECT), proof)
    assert masked.to_bytes() == recorded.replies[Phase.MASKING][SUBJECT].to_bytes()


def test_no_proof_can_be_built_below_the_quorum() -> None:
    recorded = script()
    with pytest.raises(VerificationError, match="2 witness cosignatures, 3 are needed"):
        _proof_of(recorded, tuple(recorded.announce.candidates[:2]), quorum=3)


def test_refused_announce_does_not_replace_the_input_source() -> None:
    """A refused, out-of-order announce leaves the round alone, its input source included.

    ``on_announce`` takes an input source; a second announce in a later phase must not change
    what the node masks in step 4.
    """
    recorded = script()
    node = node_in(recorded, SUBJECT, Phase.SHARING)
    other = np.full(recorded.announce.dim, 7, dtype=np.int64)
    with pytest.raises(RefusedError):
        node.on_announce(announce_task(recorded, SUBJECT), lambda _: other)
    assert node.phase is Phase.SHARING
    masked = node.on_masking(masking_task(recorded, SUBJECT), recorded.proof(Phase.MASKING))
    assert masked.to_bytes() == recorded.replies[Phase.MASKING][SUBJECT].to_bytes()
    # Control: had the node really masked ``other``, the masked input would differ.
    control = node_in(recorded, SUBJECT, Phase.NEW)
    control.on_announce(announce_task(recorded, SUBJECT), lambda _: other)
    control.on_keys(keys_task(recorded, SUBJECT))
    changed = control.on_masking(masking_task(recorded, SUBJECT), recorded.proof(Phase.MASKING))
    assert changed.to_bytes() != masked.to_bytes()


# ---- coordinator: duplicates and senders within an accepted pair ----


def test_coordinator_ignores_an_identical_resubmission() -> None:
    recorded = script()
    coordinator = coordinator_in(recorded, Phase.ADVERTISING)
    message = recorded.replies[Phase.ADVERTISING][SUBJECT]
    assert coordinator.receive(SUBJECT, message) == []
    before = _coordinator_state(coordinator)
    assert coordinator.receive(SUBJECT, message) == []
    assert _coordinator_state(coordinator) == before
    _coordinator_finishes_as_scripted(coordinator)


def test_coordinator_rejects_a_second_different_message() -> None:
    recorded = script()
    coordinator = coordinator_in(recorded, Phase.ADVERTISING)
    coordinator.receive(SUBJECT, recorded.replies[Phase.ADVERTISING][SUBJECT])
    other = new_node(recorded.fed, SUBJECT, seed=b"another-instance:")
    second = other.on_announce(announce_task(recorded, SUBJECT), lambda _: np.zeros(3, np.int64))
    before = _coordinator_state(coordinator)
    with pytest.raises(RemoteProtocolError):
        coordinator.receive(SUBJECT, second)
    assert _coordinator_state(coordinator) == before


def test_coordinator_rejects_messages_from_the_wrong_sender() -> None:
    recorded = script()
    coordinator = coordinator_in(recorded, Phase.ADVERTISING)
    message = recorded.replies[Phase.ADVERTISING]["node-001"]
    before = _coordinator_state(coordinator)
    with pytest.raises(PermissionDeniedError):
        coordinator.receive(SUBJECT, message)  # signed by node-001, submitted by node-000
    assert _coordinator_state(coordinator) == before


def test_coordinator_rejects_a_node_that_is_not_a_participant_of_the_phase() -> None:
    recorded = build_script(n=5, vanish_after={"node-004": Phase.ADVERTISING})
    coordinator = coordinator_in(recorded, Phase.MASKING)
    assert "node-004" not in coordinator.participants  # it advertised keys, never shared
    origin = recorded.fed.registry.origin
    body = recorded.replies[Phase.MASKING]["node-000"].body
    intruder = env.seal(
        recorded.fed.member_keys["node-004"], wire.MASKED_INPUT, "node-004", origin, body
    )
    before = _coordinator_state(coordinator)
    with pytest.raises(PermissionDeniedError):
        coordinator.receive("node-004", intruder)
    assert _coordinator_state(coordinator) == before
