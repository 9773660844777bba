"""Signed envelopes: how every protocol message travels and is logged. Pure, no I/O.

A version 2 signature covers ``scfed/v2/<type>\\n<origin>\\n<SHA-256(body)>``: the message
type and the federation's log origin are bound into it, so a message cannot be replayed as
another type or into another federation (the round id inside the body binds it to one round),
and an 800 KB masked vector is hashed once rather than signed, verified and copied whole.
Version 1, which logs written before version 2 hold, signed ``scfed/v1/...\\n<body>`` itself;
it still verifies. The digest of the signed context identifies the message everywhere
(announce hash, request hash).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf.message import DecodeError

from protos.scfed.v1 import messages_pb2 as pb
from scfed.errors import MessageError, RemoteProtocolError, VerificationError

SIGNATURE_BYTES = 64
#: Version 1 signs the body; version 2, what every seal makes, signs the body's SHA-256.
BODY_SIGNED, HASH_SIGNED = 1, 2
VERSIONS = (BODY_SIGNED, HASH_SIGNED)
#: The protobuf class of an envelope, for the one RPC that receives one.
EnvelopeMessage = pb.Envelope


def signed_message(type_: str, origin: str, body: bytes, version: int = HASH_SIGNED) -> bytes:
    """The exact bytes an envelope's signature covers."""
    if version == BODY_SIGNED:
        return b"scfed/v1/" + type_.encode() + b"\n" + origin.encode() + b"\n" + body
    return b"scfed/v2/" + type_.encode() + b"\n" + origin.encode() + b"\n" + _sha256(body)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class Envelope:
    """A signed protocol message. Verify it before trusting its body."""

    type: str
    body: bytes
    signer: str
    signature: bytes
    version: int = HASH_SIGNED

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise MessageError(f"unknown envelope version {self.version}")

    def digest(self, origin: str) -> bytes:
        """SHA-256 of the signed message: the identity of this message in the federation."""
        return _sha256(self._signed(origin))

    def _signed(self, origin: str) -> bytes:
        if self.version == BODY_SIGNED:
            return signed_message(self.type, origin, self.body, BODY_SIGNED)
        prefix = b"scfed/v2/" + self.type.encode() + b"\n" + origin.encode() + b"\n"
        return prefix + self._body_hash

    @cached_property
    def _body_hash(self) -> bytes:
        """The body's SHA-256, taken once however often the envelope is checked."""
        return _sha256(self.body)

    def to_proto(self) -> pb.Envelope:
        """The wire form."""
        return pb.Envelope(
            type=self.type,
            body=self.body,
            signer=self.signer,
            signature=self.signature,
            version=0 if self.version == BODY_SIGNED else self.version,
        )

    def to_bytes(self) -> bytes:
        """The serialized wire form, serialized once."""
        return self._wire

    @cached_property
    def _wire(self) -> bytes:
        return self.to_proto().SerializeToString()

    @classmethod
    def from_proto(cls, message: pb.Envelope) -> Envelope:
        """Parse a peer's envelope; the type must be known and the signature well formed."""
        from scfed.wire import TYPES  # the table's modules build envelopes themselves

        if message.type not in TYPES:
            raise RemoteProtocolError(f"unknown message type {message.type[:40]!r}")
        if len(message.signature) != SIGNATURE_BYTES:
            raise RemoteProtocolError("an envelope signature must be 64 bytes")
        if not message.signer or len(message.signer) > 64:
            raise RemoteProtocolError("an envelope must name its signer")
        version = message.version or BODY_SIGNED
        if version not in VERSIONS:
            raise RemoteProtocolError(f"unknown envelope version {message.version}")
        return cls(message.type, message.body, message.signer, message.signature, version)

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
    """Sign ``body`` as a message of ``type_`` in the federation ``origin`` (version 2)."""
    return Envelope(type_, body, signer, key.sign(signed_message(type_, origin, body)))


def verify(envelope: Envelope, origin: str, type_: str, signer_key: bytes) -> None:
    """Raise VerificationError unless ``envelope`` is a ``type_`` message signed by that key."""
    if envelope.type != type_:
        raise VerificationError(f"expected a {type_} message, got {envelope.type}")
    try:
        key = Ed25519PublicKey.from_public_bytes(signer_key)
        key.verify(envelope.signature, envelope._signed(origin))
    except (InvalidSignature, ValueError) as exc:
        raise VerificationError(
            f"the {type_} message does not carry a valid signature of {envelope.signer}"
        ) from exc
