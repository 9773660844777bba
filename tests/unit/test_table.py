"""Exhaustive tests of the transition tables against real machines in every phase.

For every (Phase, CoordinatorEvent) and (Phase, NodeEvent) pair: a pair in the table is
accepted and leaves the machine in one of the listed phases; a pair missing from it is refused
and leaves the machine as it was, so the round can still go on to the scripted outcome.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import numpy as np
import pytest

from scfed import envelope as env
from scfed.envelope import Envelope
from scfed.errors import (
    LocalProtocolError,
    OutOfOrderError,
    PermissionDeniedError,
    RefusedError,
    RemoteProtocolError,
)
from scfed.messages import decode_abort
from scfed.secagg._table import COORDINATOR, NODE, CoordinatorEvent, NodeEvent, Phase
from scfed.secagg.coordinator import CoordinatorRound
from scfed.secagg.node import NodeRound
from tests.unit._support import (
    RUNNING,
    Script,
    advance_coordinator,
    announce_task,
    build_script,
    coordinator_in,
    deliver,
    feed_node,
    keys_task,
    masking_task,
    new_node,
    node_in,
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


def script() -> Script:
    """One recorded round (n=4, t=3, n_min=3), shared by every test in this module."""
    if not _SCRIPT:
        _SCRIPT.append(build_script())
    return _SCRIPT[0]


def test_script_is_a_complete_round() -> None:
    recorded = script()
    assert recorded.result.type == env.RESULT
    assert [list(recorded.replies[p]) for p in RUNNING] == [list(recorded.announce.candidates)] * 4


def test_tables_only_name_known_phases_and_events() -> None:
    assert all(not phase.terminal for phase, _ in COORDINATOR)
    assert all(not phase.terminal for phase, _ in NODE)
    assert {phase for phase, _ in COORDINATOR} == set(RUNNING)
    assert all(allowed <= set(Phase) - {Phase.NEW} for allowed in COORDINATOR.values())
    assert all(len(allowed) == 1 for allowed in NODE.values())


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
        if event is CoordinatorEvent.CLOSE:
            with pytest.raises(LocalProtocolError):
                coordinator.close()
        elif event is CoordinatorEvent.ABANDON:
            with pytest.raises(LocalProtocolError):
                coordinator.abandon("no witness quorum")
        else:
            message = recorded.replies[EVENT_PHASE[event]][SUBJECT]
            with pytest.raises(OutOfOrderError):
                coordinator.receive(SUBJECT, message)
        assert _coordinator_state(coordinator) == before
        _coordinator_finishes_as_scripted(coordinator)
    elif event is CoordinatorEvent.CLOSE:
        coordinator.close()
        assert coordinator.phase in allowed
        assert coordinator.phase is Phase.ABORTED  # nobody answered yet
    elif event is CoordinatorEvent.ABANDON:
        sent = coordinator.abandon("no witness quorum")
        assert coordinator.phase in allowed
        assert coordinator.outcome is not None
        assert decode_abort(coordinator.outcome.body).reason == "no witness quorum"
        assert {out.to for out in sent} == set(recorded.announce.candidates)
    else:
        for member, message in recorded.replies[phase].items():
            assert coordinator.phase is phase
            coordinator.receive(member, message)
            assert coordinator.phase in allowed
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
    coordinator.close()
    allowed = COORDINATOR[(phase, CoordinatorEvent.CLOSE)]
    assert coordinator.phase in allowed - {Phase.ABORTED}


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
    assert coordinator.outcome.type == env.ABORT


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
    """Give the subject node the real task for ``event``; return its reply, if any."""
    recorded = script()
    if event in TASK_INDEX:
        task = recorded.tasks[SUBJECT][TASK_INDEX[event]]
        return deliver(node, task, recorded.input_of(SUBJECT))
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


NODE_PAIRS = list(itertools.product(Phase, NodeEvent))


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
    masked = node.on_masking(masking_task(recorded, SUBJECT))
    assert masked.to_bytes() == recorded.replies[Phase.MASKING][SUBJECT].to_bytes()
    # Control: had the node really masked ``other``, the masked input would differ.
    control = node_in(recorded, SUBJECT, Phase.NEW)
    control.on_announce(announce_task(recorded, SUBJECT), lambda _: other)
    control.on_keys(keys_task(recorded, SUBJECT))
    changed = control.on_masking(masking_task(recorded, SUBJECT))
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
        recorded.fed.member_keys["node-004"], env.MASKED_INPUT, "node-004", origin, body
    )
    before = _coordinator_state(coordinator)
    with pytest.raises(PermissionDeniedError):
        coordinator.receive("node-004", intruder)
    assert _coordinator_state(coordinator) == before
