"""The coordinator's rounds written into the protocol log, with receipts and witnesses.

Edge code (does I/O through the log's SQLite database). Every protocol message enters the
log as its exact signed bytes, once: node messages as the round accepts them, the
coordinator's own (registry, announce, unmask request, outcome, budget charge) before they
are sent. A receipt is the message's leaf index and an inclusion proof against a freshly
signed checkpoint. Before a privacy-critical step the checkpoint is first cosigned by the
round's nodes, who are the federation's witnesses: the journal verifies and keeps each
cosignature line, and the round machine counts who cosigned which checkpoint.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from coordinator.log import ProtocolLog
from scfed import note
from scfed.errors import PermissionDeniedError, RemoteProtocolError
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Registry
from scfed.wire.tasks import Receipt

#: Cosignature lines are short; anything longer is not one.
MAX_COSIGNATURE_LINE = 512


class Journal:
    """Appends messages once each, hands out receipts, and collects cosignatures."""

    def __init__(self, log: ProtocolLog) -> None:
        self.log = log
        self._indices: dict[bytes, int] = {}  # message digest -> leaf index, this process

    def record(self, envelope: Envelope) -> int:
        """The leaf index of ``envelope``, appending it unless it is already logged."""
        data = envelope.to_bytes()
        digest = hashlib.sha256(data).digest()
        index = self._indices.get(digest)
        if index is None:
            index = self.log.append(data)
            self._indices[digest] = index
        return index

    def record_once(self, signed: Envelope) -> None:
        """Log a registry or policy version before the first round that uses it, once ever."""
        if self.log.find_blob(hashlib.sha256(signed.to_bytes()).digest()) is None:
            self.record(signed)

    def receipt(self, index: int, witnessed: tuple[int, bytes] | None = None) -> Receipt:
        """The leaf's receipt against a fresh checkpoint, or a (size, note) already cosigned."""
        size, signed = witnessed or (self.log.size, self.log.checkpoint())
        return Receipt(index, signed, tuple(self.log.inclusion_proof(index, size)))

    def checkpoint(self) -> tuple[int, bytes]:
        """The current size and its signed checkpoint."""
        size = self.log.size
        return size, self.log.checkpoint()

    def witnessed(self, size: int) -> tuple[int, bytes]:
        """The checkpoint of ``size`` with the cosignatures gathered since it was signed."""
        signed = self.log.checkpoint_at(size)
        if signed is None:
            raise RemoteProtocolError(f"no checkpoint of size {size} was signed")
        return size, signed

    def forget_round(self) -> None:
        """Drop the digests of finished rounds' messages; a new round logs afresh."""
        self._indices.clear()

    def cosign(self, registry: Registry, member_id: str, size: int, line: str) -> None:
        """Store a member's cosignature of the checkpoint of ``size`` after checking it."""
        member = registry.member(member_id)
        if member is None:
            raise PermissionDeniedError(f"{member_id} is not a registered member")
        if len(line) > MAX_COSIGNATURE_LINE or not 0 < size <= self.log.size:
            raise RemoteProtocolError("a cosignature of no checkpoint this log signed")
        key = Ed25519PublicKey.from_public_bytes(member.identity_key)
        verifier = note.Verifier.cosigner(member_id, key)
        self.log.add_cosignature(size, member_id, line, verifier)
