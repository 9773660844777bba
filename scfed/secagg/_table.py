"""The round's phases and every allowed transition, in one table for each role.

A round moves ADVERTISING -> SHARING -> MASKING -> UNMASKING -> FINISHED, or to ABORTED from
any phase before it ends. For the coordinator, a witnessing step comes before MASKING and
before UNMASKING: the tasks of the privacy-critical phase wait until a quorum of the nodes
they go to has cosigned the log, and only a cosignature (COSIGNATURE) can release them. A
coordinator's event is a message a node submits, CHECKPOINT (the edge asked the step's
witnesses to cosign the log's checkpoint of some size), COSIGNATURE (one of them did, as the
edge verified), LOGGED (a replay of the log shows a node's message of the next phase: the
live round passed the step), CLOSE (every expected message arrived or the phase deadline
passed) or ABANDON (the edge cannot go on). For a node, an event is a task the coordinator
pushes. Any (phase, event) pair missing from a table is out of order: a peer's fault,
answered with FAILED_PRECONDITION at the edge, or a misuse of the machine by its edge.

The machines read the phase they move on to from these tables (``successor``) instead of
naming it beside them.
"""

from __future__ import annotations

from enum import Enum

from scfed import wire
from scfed.errors import LocalProtocolError


class Phase(Enum):
    """Where a round stands, from one participant's point of view."""

    NEW = "new"
    ADVERTISING = "advertising"
    SHARING = "sharing"
    WITNESSING_MASKING = "witnessing-masking"
    MASKING = "masking"
    WITNESSING_UNMASKING = "witnessing-unmasking"
    UNMASKING = "unmasking"
    FINISHED = "finished"
    ABORTED = "aborted"

    @property
    def terminal(self) -> bool:
        """True once nothing more can happen in the round."""
        return self in (Phase.FINISHED, Phase.ABORTED)


class CoordinatorEvent(Enum):
    ADVERTISE_KEYS = wire.ADVERTISE_KEYS
    SHARE_KEYS = wire.SHARE_KEYS
    MASKED_INPUT = wire.MASKED_INPUT
    UNMASK_RESPONSE = wire.UNMASK_RESPONSE
    CHECKPOINT = "checkpoint"
    COSIGNATURE = "cosignature"
    LOGGED = "logged"
    CLOSE = "close"
    ABANDON = "abandon"


class NodeEvent(Enum):
    ANNOUNCE = "announce"
    KEYS = "keys"
    MASKING = "masking"
    UNMASK = "unmask"
    RESULT = "result"
    ABORT = "abort"


_C = CoordinatorEvent
_N = NodeEvent
#: The phases a node takes part in, in order.
NODE_RUNNING = (Phase.ADVERTISING, Phase.SHARING, Phase.MASKING, Phase.UNMASKING)
#: The phases of a coordinator's running round, in order.
COORDINATOR_RUNNING = (
    Phase.ADVERTISING,
    Phase.SHARING,
    Phase.WITNESSING_MASKING,
    Phase.MASKING,
    Phase.WITNESSING_UNMASKING,
    Phase.UNMASKING,
)


def _witnessing(step: Phase, then: Phase) -> dict[tuple[Phase, CoordinatorEvent], frozenset[Phase]]:
    """A witnessing step: only a quorum of cosignatures, or a replay's evidence that the
    live round had one, leads on to ``then``; its deadline aborts the round."""
    return {
        (step, _C.CHECKPOINT): frozenset({step}),
        (step, _C.COSIGNATURE): frozenset({step, then}),
        (step, _C.LOGGED): frozenset({then}),
        (step, _C.CLOSE): frozenset({Phase.ABORTED}),
    }


# (phase, event) -> the phases the round may be in afterwards.
COORDINATOR: dict[tuple[Phase, CoordinatorEvent], frozenset[Phase]] = {
    (Phase.ADVERTISING, _C.ADVERTISE_KEYS): frozenset({Phase.ADVERTISING, Phase.SHARING}),
    (Phase.ADVERTISING, _C.CLOSE): frozenset({Phase.SHARING, Phase.ABORTED}),
    (Phase.SHARING, _C.SHARE_KEYS): frozenset({Phase.SHARING, Phase.WITNESSING_MASKING}),
    (Phase.SHARING, _C.CLOSE): frozenset({Phase.WITNESSING_MASKING, Phase.ABORTED}),
    **_witnessing(Phase.WITNESSING_MASKING, Phase.MASKING),
    (Phase.MASKING, _C.MASKED_INPUT): frozenset({Phase.MASKING, Phase.WITNESSING_UNMASKING}),
    (Phase.MASKING, _C.CLOSE): frozenset({Phase.WITNESSING_UNMASKING, Phase.ABORTED}),
    **_witnessing(Phase.WITNESSING_UNMASKING, Phase.UNMASKING),
    (Phase.UNMASKING, _C.UNMASK_RESPONSE): frozenset(
        {Phase.UNMASKING, Phase.FINISHED, Phase.ABORTED}
    ),
    (Phase.UNMASKING, _C.CLOSE): frozenset({Phase.FINISHED, Phase.ABORTED}),
    **{(p, _C.ABANDON): frozenset({Phase.ABORTED}) for p in COORDINATOR_RUNNING},
}

NODE: dict[tuple[Phase, NodeEvent], frozenset[Phase]] = {
    (Phase.NEW, _N.ANNOUNCE): frozenset({Phase.ADVERTISING}),
    (Phase.ADVERTISING, _N.KEYS): frozenset({Phase.SHARING}),
    (Phase.SHARING, _N.MASKING): frozenset({Phase.MASKING}),
    (Phase.MASKING, _N.UNMASK): frozenset({Phase.UNMASKING}),
    **{(p, _N.RESULT): frozenset({Phase.FINISHED}) for p in NODE_RUNNING},
    **{(p, _N.ABORT): frozenset({Phase.ABORTED}) for p in NODE_RUNNING},
}


def successor(phase: Phase, event: CoordinatorEvent) -> Phase:
    """The phase a coordinator's round moves on to from ``phase`` on ``event``: the one the
    table allows besides staying where it is and aborting."""
    onward = COORDINATOR.get((phase, event), frozenset()) - {phase, Phase.ABORTED}
    if len(onward) != 1:
        raise LocalProtocolError(f"{event.value} leads nowhere onward from {phase.value}")
    (after,) = onward
    return after


#: The phase of a coordinator's round that accepts each message a node submits.
MESSAGE_PHASES: dict[str, Phase] = {
    event.value: phase for phase, event in COORDINATOR if event.value in wire.sent_by(wire.MEMBER)
}
