"""Secure aggregation (Bonawitz et al., CCS 2017, double masking) as pure state machines.

``NodeRound`` and ``CoordinatorRound`` take signed messages in and give signed messages out;
they never touch a socket, a file or a clock, and their randomness is passed in. The in-memory
driver in ``scfed.secagg.driver`` joins them for tests and benchmarks; the daemons in ``node/``
and ``coordinator/`` join them over gRPC. ``scfed.secagg.recovery`` replays a round from the
protocol log to finish it after the coordinator was stopped mid-round.
"""

from scfed.secagg._table import Phase
from scfed.secagg.coordinator import CoordinatorRound, Outgoing
from scfed.secagg.node import Identity, NodeRound
from scfed.secagg.node_rules import MemoryGuard, NodePolicy, UnmaskGuard, previous_answer

__all__ = [
    "CoordinatorRound",
    "Identity",
    "MemoryGuard",
    "NodePolicy",
    "NodeRound",
    "Outgoing",
    "Phase",
    "UnmaskGuard",
    "previous_answer",
]
