"""Signed envelopes: how every protocol message travels and is logged. Pure, no I/O.

The signature covers ``scfed/v1/<type>\\n<origin>\\n<body>``: the message type and the
federation's log origin are bound into it, so a message cannot be replayed as another type or
into another federation (the round id inside the body binds it to one round). The digest of
that same context identifies the message everywhere (announce hash, request hash).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf.message import DecodeError

from protos.scfed.v1 import messages_pb2 as pb
from scfed.errors import RemoteProtocolError, VerificationError
from scfed.wire import TYPES

SIGNATURE_BYTES = 64
#: The protobuf class of an envelope, for the one RPC that receives one.
EnvelopeMessage = pb.Envelope


def signed_message(type_: str, origin: str, body: bytes) -> bytes:
    """The exact bytes an envelope's signature covers."""
    return b"scfed/v1/" + type_.encode() + b"\n" + origin.encode() + b"\n" + body


@dataclass(frozen=True)
class Envelope:
    """A signed protocol message. Verify it before trusting its body."""

    type: str
    body: bytes
    signer: str
    signature: bytes

    def digest(self, origin: str) -> bytes:
        """SHA-256 of the signed message: the identity of this message in the federation."""
        return hashlib.sha256(signed_message(self.type, origin, self.body)).digest()

    def to_proto(self) -> pb.Envelope:
        """The wire form."""
        return pb.Envelope(
            type=self.type, body=self.body, signer=self.signer, signature=self.signature
        )

    def to_bytes(self) -> bytes:
        """The serialized wire form."""
        return self.to_proto().SerializeToString()

    @classmethod
    def from_proto(cls, message: pb.Envelope) -> Envelope:
        """Parse a peer's envelope; the type must be known and the signature well formed."""
        if message.type not in TYPES:
            raise RemoteProtocolError(f"unknown message type {message.type[:40]!r}")
        if len(message.signature) != SIGNATURE_BYTES:
            raise RemoteProtocolError("an envelope signature must be 64 bytes")
        if not message.signer or len(message.signer) > 64:
            raise RemoteProtocolError("an envelope must name its signer")
        return cls(message.type, message.body, message.signer, message.signature)

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        """Parse a serialized envelope."""
        message = pb.Envelope()
        try:
            message.ParseFromString(data)
        except DecodeError as exc:
            raise RemoteProtocolError(f"not an envelope: {exc}") from exc
        return cls.from_proto(message)


def seal(key: Ed25519PrivateKey, type_: str, signer: str, origin: str, body: bytes) -> Envelope:
    """Sign ``body`` as a message of ``type_`` in the federation ``origin``."""
    return Envelope(type_, body, signer, key.sign(signed_message(type_, origin, body)))


def verify(envelope: Envelope, origin: str, type_: str, signer_key: bytes) -> None:
    """Raise VerificationError unless ``envelope`` is a ``type_`` message signed by that key."""
    if envelope.type != type_:
        raise VerificationError(f"expected a {type_} message, got {envelope.type}")
    try:
        key = Ed25519PublicKey.from_public_bytes(signer_key)
        key.verify(envelope.signature, signed_message(type_, origin, envelope.body))
    except (InvalidSignature, ValueError) as exc:
        raise VerificationError(
            f"the {type_} message does not carry a valid signature of {envelope.signer}"
        ) from exc
