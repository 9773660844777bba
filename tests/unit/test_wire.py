"""The one table of message types, and everything read from it, agree with the protocol."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import wire
from scfed.errors import RemoteProtocolError
from scfed.secagg._table import COORDINATOR, MESSAGE_PHASES, CoordinatorEvent, Phase
from scfed.wire import envelope as env
from scfed.wire import tasks
from scfed.wire.codec import encode
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Abort, ReleaseCharge, Result, UnmaskRequest
from tests.unit._support import Rng

R16, H32 = bytes(range(16)), bytes(range(32))


def test_every_signed_type_is_in_the_table_once() -> None:
    assert set(wire.MESSAGE_TYPES) == wire.TYPES
    assert len({t.domain for t in wire.MESSAGE_TYPES.values()}) == len(wire.MESSAGE_TYPES)
    assert wire.sent_by(wire.GOVERNANCE) == {wire.REGISTRY, wire.POLICY}
    assert (
        wire.sent_by(wire.GOVERNANCE) | wire.sent_by(wire.COORDINATOR) | wire.sent_by(wire.MEMBER)
        == wire.TYPES
    )


def test_messages_outside_rounds_are_attestations_and_crisis_mode() -> None:
    outside = {name for name, t in wire.MESSAGE_TYPES.items() if t.step < 0}
    governance = wire.sent_by(wire.GOVERNANCE)
    logged = {*wire.ATTEST_TYPES, *wire.CRISIS_TYPES}
    assert outside - governance == logged | {wire.ATTESTATION, wire.POST}
    assert wire.sent_by(wire.COORDINATOR) & outside == set(wire.CRISIS_TYPES)


def test_a_round_runs_in_the_table_s_step_order() -> None:
    assert wire.ROUND_TYPES == (
        wire.ANNOUNCE, wire.ADVERTISE_KEYS, wire.SHARE_KEYS, wire.MASKED_INPUT,
        wire.UNMASK_REQUEST, wire.UNMASK_RESPONSE, wire.RESULT, wire.ABORT, wire.CHARGE,
        wire.RELEASE, wire.REFUSAL,
    )  # fmt: skip
    assert wire.OUTCOMES == (wire.RESULT, wire.ABORT)


def test_the_coordinator_machine_has_an_event_for_each_message_a_node_signs() -> None:
    events = {e.value for e in CoordinatorEvent} & wire.TYPES
    # A refusal ends a node's part in the round: the edge logs it, the machine never sees it;
    # attestations and crisis posts stand outside rounds.
    assert events == (wire.sent_by(wire.MEMBER) & set(wire.ROUND_TYPES)) - {wire.REFUSAL}
    assert set(MESSAGE_PHASES) == events
    for message, phase in MESSAGE_PHASES.items():
        accepting = {p for p, e in COORDINATOR if e.value == message}
        assert accepting == {phase}, f"{message} is accepted in one phase"
    order = [MESSAGE_PHASES[m] for m in wire.ROUND_TYPES if m in MESSAGE_PHASES]
    assert order == [Phase.ADVERTISING, Phase.SHARING, Phase.MASKING, Phase.UNMASKING]


def test_a_node_is_pushed_exactly_the_coordinator_s_and_governance_s_messages_but_charges() -> None:
    slots = tasks._TASK_ENVELOPES
    pushed = set().union(*slots.values())
    outside = {*wire.CRISIS_TYPES}  # read from the coordinator by the member, never pushed
    assert pushed == (wire.TYPES - wire.sent_by(wire.MEMBER)) - {wire.CHARGE} - outside
    assert slots["outcome"] == set(wire.OUTCOMES)


@pytest.mark.parametrize(
    "message",
    [
        UnmaskRequest(R16, H32, ("a", "b"), ("c",)),
        Result(R16, H32, ("a",), bytes(8)),
        Abort(R16, H32, "too few"),
        ReleaseCharge(R16, H32, "2026", 3, "1/8"),
    ],
    ids=lambda m: type(m).__name__,
)
def test_the_table_decodes_what_encode_wrote(message: object) -> None:
    kind = wire.type_of(message)  # type: ignore[arg-type]
    assert wire.MESSAGE_TYPES[kind].decode(encode(message)) == message  # type: ignore[arg-type]


def test_an_envelope_of_a_type_outside_the_table_is_refused() -> None:
    key = Ed25519PrivateKey.from_private_bytes(Rng(b"wire")(32))
    proto = env.seal(key, wire.RESULT, wire.COORDINATOR, "scfed.test/wire", b"x").to_proto()
    assert Envelope.from_proto(proto).type == wire.RESULT
    proto.type = "round.gossip"
    with pytest.raises(RemoteProtocolError, match="unknown message type"):
        Envelope.from_proto(proto)
