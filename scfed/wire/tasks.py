"""Tasks the coordinator pushes to a node, and receipts, in their wire form. Pure, no I/O.

A task is an unsigned container: a signed message (registry, announce, unmask request,
outcome), a key set, a masking task, or a checkpoint to witness. A task may carry the
receipt of its message in the protocol log: where the message sits and an inclusion proof
against a signed checkpoint. Every bound is checked on the way in.
"""

from __future__ import annotations

from dataclasses import dataclass

from protos.scfed.v1 import service_pb2 as spb
from scfed import wire
from scfed.errors import LocalProtocolError, MessageError, RemoteProtocolError
from scfed.wire.codec import from_peer
from scfed.wire.envelope import Envelope
from scfed.wire.messages import (
    HASH_BYTES,
    MAX_PARTICIPANTS,
    ROUND_ID_BYTES,
    fixed_bytes,
    member_list,
    pairs,
)

#: A signed checkpoint note is a few hundred bytes, plus one line per cosigner.
MAX_CHECKPOINT_BYTES = 64 * 1024
MAX_PROOF_HASHES = 64


@dataclass(frozen=True)
class KeySet:
    """Every node's signed AdvertiseKeys envelope, as received by the coordinator."""

    round_id: bytes
    advertisements: tuple[bytes, ...]  # serialized envelopes

    def __post_init__(self) -> None:
        fixed_bytes(self.round_id, ROUND_ID_BYTES, "a round id")
        if len(self.advertisements) > MAX_PARTICIPANTS:
            raise MessageError("a key set is larger than the participant limit")


@dataclass(frozen=True)
class MaskingTask:
    """Who completed share keys, and the encrypted shares other nodes sent this node."""

    round_id: bytes
    shared: tuple[str, ...]
    shares: tuple[tuple[str, bytes], ...]  # (sender, ciphertext)

    def __post_init__(self) -> None:
        fixed_bytes(self.round_id, ROUND_ID_BYTES, "a round id")
        member_list(self.shared, "nodes that shared keys")
        pairs(self.shares, "forwarded shares")


@dataclass(frozen=True)
class CheckpointTask:
    """A signed checkpoint the coordinator asks this node to verify and cosign."""

    note: bytes

    def __post_init__(self) -> None:
        _checkpoint(self.note)


@dataclass(frozen=True)
class Receipt:
    """Where a message sits in the protocol log, proven against a signed checkpoint."""

    index: int
    checkpoint: bytes
    inclusion: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _checkpoint(self.checkpoint)
        if len(self.inclusion) > MAX_PROOF_HASHES or any(
            len(h) != HASH_BYTES for h in self.inclusion
        ):
            raise MessageError(f"an inclusion proof has at most {MAX_PROOF_HASHES} hashes")


Task = Envelope | KeySet | MaskingTask | CheckpointTask

_TASK_ENVELOPES = wire.task_slots()
_ENVELOPE_SLOT = {t: slot for slot, types in _TASK_ENVELOPES.items() for t in types}


def task_to_proto(task: Task, receipt: Receipt | None = None) -> spb.Task:
    """The wire form of a task for a node, with the receipt of its message if given."""
    message = _task_to_proto(task)
    if receipt is not None:
        message.receipt.CopyFrom(receipt_to_proto(receipt))
    return message


def _task_to_proto(task: Task) -> spb.Task:
    match task:
        case Envelope():
            slot = _ENVELOPE_SLOT.get(task.type)
            if slot is None:
                raise LocalProtocolError(f"a {task.type} message is not a task for a node")
            message = spb.Task()
            getattr(message, slot).CopyFrom(task.to_proto())
            return message
        case KeySet():
            adverts = [Envelope.from_bytes(a).to_proto() for a in task.advertisements]
            return spb.Task(keys=spb.KeySet(round_id=task.round_id, advertisements=adverts))
        case MaskingTask():
            shares = [spb.ForwardedShare(sender=s, ciphertext=c) for s, c in task.shares]
            masking = spb.MaskingTask(round_id=task.round_id, shared=task.shared, shares=shares)
            return spb.Task(masking=masking)
        case CheckpointTask():
            return spb.Task(checkpoint=task.note)


def task_from_proto(message: spb.Task) -> Task:
    """Parse a task pushed by the coordinator; every bound is checked."""
    slot = message.WhichOneof("task")
    if slot is None:
        raise RemoteProtocolError("an empty task")
    if slot in _TASK_ENVELOPES:
        envelope = Envelope.from_proto(getattr(message, slot))
        if envelope.type not in _TASK_ENVELOPES[slot]:
            raise RemoteProtocolError(f"a {slot} task cannot carry a {envelope.type} message")
        return envelope
    if slot == "checkpoint":
        return from_peer(lambda: CheckpointTask(message.checkpoint))
    if slot == "keys":
        keys = message.keys
        if len(keys.advertisements) > MAX_PARTICIPANTS:
            raise RemoteProtocolError("a key set is larger than the participant limit")
        adverts = tuple(Envelope.from_proto(a).to_bytes() for a in keys.advertisements)
        return from_peer(lambda: KeySet(keys.round_id, adverts))
    task = message.masking
    shares = tuple((s.sender, s.ciphertext) for s in task.shares)
    return from_peer(lambda: MaskingTask(task.round_id, tuple(task.shared), shares))


def _checkpoint(note: bytes) -> None:
    if not 0 < len(note) <= MAX_CHECKPOINT_BYTES:
        raise MessageError(f"a checkpoint has 1 to {MAX_CHECKPOINT_BYTES} bytes")


def receipt_to_proto(receipt: Receipt) -> spb.Receipt:
    return spb.Receipt(
        index=receipt.index, checkpoint=receipt.checkpoint, inclusion=receipt.inclusion
    )


def receipt_from_proto(message: spb.Receipt) -> Receipt:
    """A receipt with its bounds checked (the proofs themselves are checked by the node)."""
    if len(message.inclusion) > MAX_PROOF_HASHES:
        raise RemoteProtocolError(f"an inclusion proof has at most {MAX_PROOF_HASHES} hashes")
    return from_peer(lambda: Receipt(message.index, message.checkpoint, tuple(message.inclusion)))


def task_receipt(message: spb.Task) -> Receipt | None:
    """The receipt a task carries, if any."""
    return receipt_from_proto(message.receipt) if message.HasField("receipt") else None
