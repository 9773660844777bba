"""The round's phases and every allowed transition, in one table for each role.

A round moves ADVERTISING -> SHARING -> MASKING -> UNMASKING -> FINISHED, or to ABORTED from
any of the first four. For the coordinator, an event is a message a node submits, CLOSE
(every expected message arrived or the phase deadline passed), or ABANDON (the edge cannot
go on, e.g. no quorum of witnesses cosigned the log before a privacy-critical step). For a
node, an event is a task the coordinator pushes. Any (phase, event) pair missing from a table
is out of order: a peer's fault, answered with FAILED_PRECONDITION at the edge.
"""

from __future__ import annotations

from enum import Enum

from scfed import envelope as env


class Phase(Enum):
    """Where a round stands, from one participant's point of view."""

    NEW = "new"
    ADVERTISING = "advertising"
    SHARING = "sharing"
    MASKING = "masking"
    UNMASKING = "unmasking"
    FINISHED = "finished"
    ABORTED = "aborted"

    @property
    def terminal(self) -> bool:
        """True once nothing more can happen in the round."""
        return self in (Phase.FINISHED, Phase.ABORTED)


class CoordinatorEvent(Enum):
    ADVERTISE_KEYS = env.ADVERTISE_KEYS
    SHARE_KEYS = env.SHARE_KEYS
    MASKED_INPUT = env.MASKED_INPUT
    UNMASK_RESPONSE = env.UNMASK_RESPONSE
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
_RUNNING = (Phase.ADVERTISING, Phase.SHARING, Phase.MASKING, Phase.UNMASKING)

# (phase, event) -> the phases the round may be in afterwards.
COORDINATOR: dict[tuple[Phase, CoordinatorEvent], frozenset[Phase]] = {
    (Phase.ADVERTISING, _C.ADVERTISE_KEYS): frozenset({Phase.ADVERTISING, Phase.SHARING}),
    (Phase.ADVERTISING, _C.CLOSE): frozenset({Phase.SHARING, Phase.ABORTED}),
    (Phase.SHARING, _C.SHARE_KEYS): frozenset({Phase.SHARING, Phase.MASKING}),
    (Phase.SHARING, _C.CLOSE): frozenset({Phase.MASKING, Phase.ABORTED}),
    (Phase.MASKING, _C.MASKED_INPUT): frozenset({Phase.MASKING, Phase.UNMASKING}),
    (Phase.MASKING, _C.CLOSE): frozenset({Phase.UNMASKING, Phase.ABORTED}),
    (Phase.UNMASKING, _C.UNMASK_RESPONSE): frozenset(
        {Phase.UNMASKING, Phase.FINISHED, Phase.ABORTED}
    ),
    (Phase.UNMASKING, _C.CLOSE): frozenset({Phase.FINISHED, Phase.ABORTED}),
    **{(p, _C.ABANDON): frozenset({Phase.ABORTED}) for p in _RUNNING},
}

NODE: dict[tuple[Phase, NodeEvent], frozenset[Phase]] = {
    (Phase.NEW, _N.ANNOUNCE): frozenset({Phase.ADVERTISING}),
    (Phase.ADVERTISING, _N.KEYS): frozenset({Phase.SHARING}),
    (Phase.SHARING, _N.MASKING): frozenset({Phase.MASKING}),
    (Phase.MASKING, _N.UNMASK): frozenset({Phase.UNMASKING}),
    **{(p, _N.RESULT): frozenset({Phase.FINISHED}) for p in _RUNNING},
    **{(p, _N.ABORT): frozenset({Phase.ABORTED}) for p in _RUNNING},
}
