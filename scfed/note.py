"""C2SP signed-note keys and signatures, and Ed25519 tlog cosignatures. Pure, no I/O.

Signed notes (c2sp.org/signed-note), sections "Signatures" and "Ed25519 signatures": Ed25519
keys (type 0x01) sign the note text; the key ID is ``SHA-256(name || 0x0A || type || public
key)[:4]`` and a verifier key is written ``<name>+<hex key ID>+<base64(type || public key)>``.
The text and its signature lines (section "Format") are split and written by
``scfed.note_format``.

A cosignature (c2sp.org/tlog-cosignature, Ed25519 v1, type 0x04) is a note signature over a
checkpoint (c2sp.org/tlog-checkpoint, ``scfed.checkpoint``): it signs
``cosignature/v1\\ntime <t>\\n`` followed by the checkpoint text, and carries the 8-byte
big-endian timestamp before the signature. One ``Verifier`` checks either type of line when a
note is opened, so both signature types live here.

Parsing is strict: anything the specifications do not allow raises ``VerificationError``
naming the fault; so does a signature that fails. Asking to produce something invalid (a bad
key name, a text without a final newline, a timestamp out of range) raises
``LocalProtocolError``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from scfed.checkpoint import parse_checkpoint
from scfed.errors import LocalProtocolError, ScfedError, VerificationError
from scfed.note_format import (
    MAX_SIGNATURES,
    Signature,
    _b64,
    _b64decode,
    _control_free,
    _name,
    _signature_line,
    parse_note,
)

__all__ = [
    "COSIGNATURE_V1",
    "ED25519",
    "Note",
    "Signer",
    "Verifier",
    "cosign",
    "cosignature_message",
    "cosignature_timestamp",
    "key_id",
    "open_note",
    "parse_signer_key",
    "parse_verifier_key",
    "sign_note",
    "verify_cosignature",
]

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
MAX_TIMESTAMP = (1 << 63) - 1

_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")
_PUBLIC_KEY_SIZE = 32
_ED25519_SIGNATURE_SIZE = 64
_TIMESTAMP_SIZE = 8


# --- keys ------------------------------------------------------------------------------------


def key_id(name: str, signature_type: int, public_key: bytes) -> int:
    """``SHA-256(name || 0x0A || type || public key)[:4]`` as a big-endian uint32."""
    material = name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key
    return int.from_bytes(hashlib.sha256(material).digest()[:4], "big")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    """A trusted key: an Ed25519 note key (type 0x01) or an Ed25519 cosigner (type 0x04)."""

    name: str
    key_id: int
    signature_type: int
    public_key: bytes

    def __post_init__(self) -> None:
        _name("verifier key name", self.name, VerificationError)
        for what, value in (("key ID", self.key_id), ("signature type", self.signature_type)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise VerificationError(f"verifier {what} must be an int")
        if self.signature_type not in (ED25519, COSIGNATURE_V1):
            raise VerificationError(f"unknown signature type 0x{self.signature_type:02x}")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != _PUBLIC_KEY_SIZE:
            raise VerificationError("an Ed25519 public key must be 32 bytes")
        if self.key_id != key_id(self.name, self.signature_type, self.public_key):
            raise VerificationError(f"key ID {self.key_id:08x} does not match key {self.name}")

    @classmethod
    def ed25519(cls, name: str, public_key: Ed25519PublicKey) -> Verifier:
        """The verifier of notes signed by this Ed25519 key."""
        raw = _raw_public(public_key)
        return cls(name, key_id(name, ED25519, raw), ED25519, raw)

    @classmethod
    def cosigner(cls, name: str, public_key: Ed25519PublicKey) -> Verifier:
        """The verifier of tlog-cosignature v1 cosignatures by this Ed25519 key."""
        raw = _raw_public(public_key)
        return cls(name, key_id(name, COSIGNATURE_V1, raw), COSIGNATURE_V1, raw)

    @property
    def key_text(self) -> str:
        """``<name>+<hex key ID>+<base64(type || public key)>``."""
        material = bytes([self.signature_type]) + self.public_key
        return f"{self.name}+{self.key_id:08x}+{_b64(material)}"

    def verify(self, text: str, signature: bytes) -> int | None:
        """Check ``signature`` (the bytes after the key ID) over the note ``text``.

        Returns the timestamp of a cosignature, None for a plain signature.
        """
        if self.signature_type == COSIGNATURE_V1:
            return self._verify_cosignature(text, signature)
        self._ed25519(text.encode("utf-8"), signature)
        return None

    def _verify_cosignature(self, text: str, signature: bytes) -> int:
        if len(signature) != _TIMESTAMP_SIZE + _ED25519_SIGNATURE_SIZE:
            raise VerificationError(
                f"cosignature by {self.name} has {len(signature)} bytes after the key ID; "
                f"want {_TIMESTAMP_SIZE + _ED25519_SIGNATURE_SIZE}"
            )
        timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
        if timestamp > MAX_TIMESTAMP:
            raise VerificationError(f"cosignature by {self.name} has a timestamp above 2^63-1")
        message = cosignature_message(text, timestamp, error=VerificationError)
        self._ed25519(message, signature[_TIMESTAMP_SIZE:])
        return timestamp

    def _ed25519(self, message: bytes, signature: bytes) -> None:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError) as exc:
            raise VerificationError(
                f"invalid signature for key {self.name}+{self.key_id:08x}"
            ) from exc


def parse_verifier_key(text: str) -> Verifier:
    """A verifier from its key text ``<name>+<hex key ID>+<base64(type || public key)>``."""
    if not isinstance(text, str):
        raise VerificationError(f"verifier key must be text, not {type(text).__name__}")
    parts = text.split("+", 2)  # base64 may hold "+" too
    if len(parts) != 3:
        raise VerificationError("verifier key must be <name>+<key ID>+<key>")
    name, hex_id, material = parts
    _name("verifier key name", name, VerificationError)
    if not _KEY_ID_HEX.fullmatch(hex_id):
        raise VerificationError("verifier key ID must be 8 lowercase hex digits")
    raw = _b64decode("verifier key material", material)
    if len(raw) != 1 + _PUBLIC_KEY_SIZE:
        raise VerificationError("verifier key material must be a type byte and 32 key bytes")
    return Verifier(name, int(hex_id, 16), raw[0], raw[1:])


class Signer:
    """A named Ed25519 note-signing key (signature type 0x01)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise LocalProtocolError("a note signer needs an Ed25519 private key")
        self._name = _name("signer name", name, LocalProtocolError)
        self._key = private_key
        self._public = _raw_public(private_key.public_key())
        self._key_id = key_id(name, ED25519, self._public)

    def __repr__(self) -> str:
        return f"Signer({self._name}+{self._key_id:08x})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def verifier_key_text(self) -> str:
        """The public verifier key text of this signer."""
        return self.verifier().key_text

    @property
    def signer_key_text(self) -> str:
        """``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``: the secret key."""
        seed = self._key.private_bytes_raw()
        return f"PRIVATE+KEY+{self._name}+{self._key_id:08x}+{_b64(bytes([ED25519]) + seed)}"

    def verifier(self) -> Verifier:
        return Verifier(self._name, self._key_id, ED25519, self._public)

    def sign(self, message: bytes) -> bytes:
        """The raw 64-byte Ed25519 signature."""
        return self._key.sign(message)


def parse_signer_key(text: str) -> Signer:
    """A signer from ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || 32-byte seed)>``.

    Error messages never repeat the key text, which is secret.
    """
    parts = text.split("+", 4) if isinstance(text, str) else []
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise VerificationError("signer key must be PRIVATE+KEY+<name>+<key ID>+<key>")
    name, hex_id, material = parts[2:]
    _name("signer key name", name, VerificationError)
    if not _KEY_ID_HEX.fullmatch(hex_id):
        raise VerificationError("signer key ID must be 8 lowercase hex digits")
    raw = _b64decode("signer key material", material)
    if len(raw) != 1 + _PUBLIC_KEY_SIZE or raw[0] != ED25519:
        raise VerificationError("signer key material must be 0x01 and a 32-byte Ed25519 seed")
    signer = Signer(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if signer.key_id != int(hex_id, 16):
        raise VerificationError(f"signer key ID {hex_id} does not match its key")
    return signer


# --- notes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """An opened note: its text and the signatures that verified, in note order.

    ``unverified`` holds the lines from keys that were not given, which are ignored.
    """

    text: str
    signatures: tuple[Signature, ...]
    unverified: tuple[Signature, ...] = ()

    @property
    def signers(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.signatures)


def open_note(note: bytes, verifiers: Sequence[Verifier]) -> Note:
    """Verify a signed note against trusted keys and return its text and good signatures.

    Lines from keys not given are ignored; a line from a given key must verify, and at least
    one must. Two given verifiers with the same name and key ID make their lines ambiguous.
    """
    text, lines = parse_note(note)
    known: dict[tuple[str, int], list[Verifier]] = {}
    for verifier in verifiers:
        known.setdefault((verifier.name, verifier.key_id), []).append(verifier)
    verified: dict[tuple[str, int], Signature] = {}
    unverified: dict[Signature, None] = {}  # in note order, each line once
    for line in lines:
        candidates = known.get((line.name, line.key_id))
        if candidates is None:
            unverified.setdefault(line)
            continue
        if len(candidates) > 1:
            raise VerificationError(f"ambiguous key {line.name}+{line.key_id:08x}")
        timestamp = candidates[0].verify(text, line.signature)
        verified.setdefault((line.name, line.key_id), replace(line, timestamp=timestamp))
    if not verified:
        raise VerificationError("note has no signature by a trusted key")
    return Note(text, tuple(verified.values()), tuple(unverified))


def sign_note(text: str, signers: Sequence[Signer]) -> bytes:
    """The signed note: ``text``, a blank line, one signature line per signer."""
    _note_text(text)
    if not signers or len(signers) > MAX_SIGNATURES:
        raise LocalProtocolError(f"a note needs 1 to {MAX_SIGNATURES} signers")
    if len({(s.name, s.key_id) for s in signers}) != len(signers):
        raise LocalProtocolError("a signer appears twice")
    body = text.encode("utf-8")
    lines = [Signature(s.name, s.key_id, s.sign(body)).line + "\n" for s in signers]
    return body + b"\n" + "".join(lines).encode("utf-8")


def _note_text(text: object) -> str:
    if not isinstance(text, str) or not text.endswith("\n"):
        raise LocalProtocolError("note text must be a string ending in a newline")
    return _control_free("note text", text, LocalProtocolError)


# --- cosignatures ----------------------------------------------------------------------------


def _timestamp(value: object, error: type[ScfedError]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"timestamp must be an int, not {type(value).__name__}")
    if not 0 <= value <= MAX_TIMESTAMP:
        raise error(f"timestamp {value} is outside 0..2^63-1")
    return value


def cosignature_message(
    checkpoint_text: str, timestamp: int, *, error: type[ScfedError] = LocalProtocolError
) -> bytes:
    """``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint text: what is signed.

    The text must be a checkpoint (extension lines included); ``error`` is raised otherwise.
    """
    timestamp = _timestamp(timestamp, error)
    try:
        _checkpoint_text(checkpoint_text)
    except VerificationError as exc:
        raise error(f"a cosignature covers a checkpoint: {exc}") from exc
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def _checkpoint_text(text: object) -> None:
    """Raise unless ``text`` is a checkpoint; a text is parsed once for all its cosignatures."""
    if isinstance(text, str):
        _parsed_checkpoint(text)
    else:
        parse_checkpoint(text)  # type: ignore[arg-type]  # refuses what is not text


@lru_cache(maxsize=16)
def _parsed_checkpoint(text: str) -> None:
    parse_checkpoint(text)


def cosign(checkpoint_text: str, name: str, key: Ed25519PrivateKey, timestamp: int) -> str:
    """The cosignature line (ending in a newline) of ``name`` over a checkpoint at ``timestamp``.

    It can be appended as is to the signed checkpoint.
    """
    _name("cosigner name", name, LocalProtocolError)
    if not isinstance(key, Ed25519PrivateKey):
        raise LocalProtocolError("a cosigner needs an Ed25519 private key")
    message = cosignature_message(checkpoint_text, timestamp)
    cosigner_id = key_id(name, COSIGNATURE_V1, _raw_public(key.public_key()))
    signature = timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + key.sign(message)
    return Signature(name, cosigner_id, signature).line + "\n"


def verify_cosignature(checkpoint_text: str, line: str, verifier: Verifier) -> int:
    """Check one cosignature line (final newline optional) by ``verifier``; its timestamp."""
    if verifier.signature_type != COSIGNATURE_V1:
        raise VerificationError(f"{verifier.name} is not a cosigner key (type 0x04)")
    if not isinstance(line, str):
        raise VerificationError("a cosignature line must be text")
    parsed = _signature_line(line.removesuffix("\n"))
    if (parsed.name, parsed.key_id) != (verifier.name, verifier.key_id):
        raise VerificationError(
            f"cosignature is by {parsed.name}+{parsed.key_id:08x}, "
            f"not {verifier.name}+{verifier.key_id:08x}"
        )
    return verifier._verify_cosignature(checkpoint_text, parsed.signature)


def cosignature_timestamp(signature: str) -> int:
    """The timestamp in a base64 cosignature value (key ID, timestamp, Ed25519 signature)."""
    raw = _b64decode("cosignature", signature)
    if len(raw) != 4 + _TIMESTAMP_SIZE + _ED25519_SIGNATURE_SIZE:
        raise VerificationError(
            f"a v1 cosignature has {4 + _TIMESTAMP_SIZE + _ED25519_SIGNATURE_SIZE} bytes, "
            f"got {len(raw)}"
        )
    timestamp = int.from_bytes(raw[4 : 4 + _TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        raise VerificationError("cosignature timestamp is above 2^63-1")
    return timestamp
