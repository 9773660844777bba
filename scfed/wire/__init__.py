"""The wire: every protocol message, how it travels and the one table of message types. Pure.

``scfed.wire.messages`` and ``scfed.wire.policy`` hold the messages as dataclasses that check
themselves on construction; ``scfed.wire.codec`` and ``scfed.wire.policy`` turn them into
bytes and back (the only modules that touch the generated protobuf messages, with
``scfed.wire.tasks`` for the containers the coordinator pushes to nodes);
``scfed.wire.envelope`` signs and verifies them. This module holds ``MESSAGE_TYPES``: each
signed message type with its domain class, decoder, sender and step. Envelope types, the
coordinator machine's message events, task slots, the auditor's decoders and step order and
the node's dispatch are all read from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from scfed.wire import attest, codec, crisis
from scfed.wire.messages import (
    Abort,
    AdvertiseKeys,
    Announce,
    Domain,
    MaskedInput,
    Publication,
    Refusal,
    Registry,
    ReleaseCharge,
    Result,
    ShareKeys,
    UnmaskRequest,
    UnmaskResponse,
)
from scfed.wire.policy import Policy, decode_policy

#: Who signs a message type: governance, the coordinator, or the member named as signer.
GOVERNANCE = "governance"
COORDINATOR = "coordinator"
MEMBER = "member"

REGISTRY = "registry"
POLICY = "policy"
ANNOUNCE = "round.announce"
ADVERTISE_KEYS = "round.advertise_keys"
SHARE_KEYS = "round.share_keys"
MASKED_INPUT = "round.masked_input"
UNMASK_REQUEST = "round.unmask_request"
UNMASK_RESPONSE = "round.unmask_response"
RESULT = "round.result"
ABORT = "round.abort"
CHARGE = "round.charge"
RELEASE = "round.release"
REFUSAL = "round.refusal"
FIGURE = "attest.figure"
PLEDGE = "attest.pledge"
ATTESTATION = "attest.attestation"
POST = "crisis.post"
LISTING = "crisis.listing"
PROPOSAL = "crisis.proposal"
ANSWER = "crisis.answer"
REVEAL = "crisis.reveal"

AttestMessage = attest.FigureCommitment | attest.Pledge | attest.Attestation
Message = Domain | Policy | AttestMessage | crisis.CrisisMessage


@dataclass(frozen=True)
class MessageType:
    """One signed message type."""

    #: The envelope's type: bound into every signature over a message of this type.
    name: str
    domain: type
    decode: Callable[[bytes], Message]
    #: GOVERNANCE, COORDINATOR or MEMBER.
    sender: str
    #: Where it comes in a round: messages of a later step never precede it for one round
    #: or node (-1 for governance's messages, which stand outside rounds).
    step: int
    #: The slot of the task that pushes it to a node ("" if it is never pushed).
    task: str = ""


_TABLE = (
    MessageType(REGISTRY, Registry, codec.decode_registry, GOVERNANCE, -1, "registry"),
    MessageType(POLICY, Policy, decode_policy, GOVERNANCE, -1, "policy"),
    MessageType(ANNOUNCE, Announce, codec.decode_announce, COORDINATOR, 0, "announce"),
    MessageType(ADVERTISE_KEYS, AdvertiseKeys, codec.decode_advertise_keys, MEMBER, 1),
    MessageType(SHARE_KEYS, ShareKeys, codec.decode_share_keys, MEMBER, 2),
    MessageType(MASKED_INPUT, MaskedInput, codec.decode_masked_input, MEMBER, 3),
    MessageType(UNMASK_REQUEST, UnmaskRequest, codec.decode_unmask_request, COORDINATOR, 4,
                "unmask"),
    MessageType(UNMASK_RESPONSE, UnmaskResponse, codec.decode_unmask_response, MEMBER, 5),
    MessageType(RESULT, Result, codec.decode_result, COORDINATOR, 6, "outcome"),
    MessageType(ABORT, Abort, codec.decode_abort, COORDINATOR, 6, "outcome"),
    MessageType(CHARGE, ReleaseCharge, codec.decode_charge, COORDINATOR, 7),
    MessageType(RELEASE, Publication, codec.decode_release, COORDINATOR, 8, "release"),
    # A node may refuse at any step; the round machines never see it (the edges log it).
    MessageType(REFUSAL, Refusal, codec.decode_refusal, MEMBER, 9),
    # Outside rounds (step -1): attestations and crisis mode. An attestation and a post
    # are never logged (a post's listing is).
    MessageType(FIGURE, attest.FigureCommitment, attest.decode_figure, MEMBER, -1),
    MessageType(PLEDGE, attest.Pledge, attest.decode_pledge, MEMBER, -1),
    MessageType(ATTESTATION, attest.Attestation, attest.decode_attestation, MEMBER, -1),
    MessageType(POST, crisis.Post, crisis.decode_post, MEMBER, -1),
    MessageType(LISTING, crisis.Listing, crisis.decode_listing, COORDINATOR, -1),
    MessageType(PROPOSAL, crisis.Proposal, crisis.decode_proposal, COORDINATOR, -1),
    MessageType(ANSWER, crisis.Answer, crisis.decode_answer, COORDINATOR, -1),
    MessageType(REVEAL, crisis.Reveal, crisis.decode_reveal, COORDINATOR, -1),
)  # fmt: skip

MESSAGE_TYPES: Mapping[str, MessageType] = {t.name: t for t in _TABLE}
TYPES = frozenset(MESSAGE_TYPES)
#: The message types of a round, in step order.
ROUND_TYPES = tuple(t.name for t in sorted(_TABLE, key=lambda t: t.step) if t.step >= 0)
#: The message types that end a round.
OUTCOMES = tuple(name for name in ROUND_TYPES if MESSAGE_TYPES[name].task == "outcome")
_BY_DOMAIN = {t.domain: t.name for t in _TABLE}


#: Logged messages outside rounds: a figure's commitment and its pledges, crisis mode's steps.
ATTEST_TYPES = (FIGURE, PLEDGE)
CRISIS_TYPES = (LISTING, PROPOSAL, ANSWER, REVEAL)


def sent_by(sender: str) -> frozenset[str]:
    """The message types ``sender`` (GOVERNANCE, COORDINATOR or MEMBER) signs."""
    return frozenset(t.name for t in _TABLE if t.sender == sender)


def type_of(message: Message) -> str:
    """The envelope type of a message."""
    return _BY_DOMAIN[type(message)]


def task_slots() -> Mapping[str, frozenset[str]]:
    """Each task slot and the message types it may carry."""
    slots: dict[str, set[str]] = {}
    for t in _TABLE:
        if t.task:
            slots.setdefault(t.task, set()).add(t.name)
    return {slot: frozenset(names) for slot, names in slots.items()}
