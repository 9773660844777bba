"""Key agreement, share encryption and mask expansion for secure aggregation. Pure, no I/O.

X25519 agreements are turned into keys with HKDF-SHA256, salted with the round id and
labelled by purpose, so a key made for one purpose or round is never valid for another.
Shares travel under AES-256-GCM with round, sender and receiver as associated data. Masks are
AES-128-CTR key streams read as little-endian uint64, expanded into one reused buffer because
allocating a fresh one per expansion costs several times the encryption itself.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from scfed.errors import LocalProtocolError, RemoteProtocolError

Vector = npt.NDArray[np.uint64]

NONCE_BYTES = 12
KEY_BYTES = 32
_ZERO_IV = bytes(16)
_BLOCK = 16


def derive(secret: bytes, round_id: bytes, purpose: str, length: int) -> bytes:
    """HKDF-SHA256 of ``secret``, salted with the round id, for one named purpose."""
    info = b"scfed/v1/" + purpose.encode()
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=round_id, info=info).derive(secret)


def public_key(raw: bytes) -> X25519PublicKey:
    """Parse a peer's raw X25519 public key."""
    if len(raw) != KEY_BYTES:
        raise RemoteProtocolError(f"an X25519 key must be {KEY_BYTES} bytes, not {len(raw)}")
    return X25519PublicKey.from_public_bytes(raw)


_PROBE = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def check_public_key(raw: bytes, owner: str) -> None:
    """Raise RemoteProtocolError, naming ``owner``, for a key no agreement can use.

    Low-order points make every X25519 agreement all zeros; probing with a fixed key finds them
    before any honest node would stumble on them mid-round.
    """
    try:
        agree(_PROBE, raw)
    except RemoteProtocolError as exc:
        raise RemoteProtocolError(f"{owner} advertised an unusable X25519 key") from exc


def public_bytes(key: X25519PrivateKey) -> bytes:
    """The raw 32-byte public key of ``key``."""
    return key.public_key().public_bytes_raw()


def agree(private: X25519PrivateKey, peer: bytes) -> bytes:
    """X25519 shared secret with a peer's raw public key; a degenerate key is the peer's fault."""
    try:
        return private.exchange(public_key(peer))
    except ValueError as exc:
        raise RemoteProtocolError(f"key agreement failed: {exc}") from exc


def share_context(round_id: bytes, sender: str, receiver: str) -> bytes:
    """The associated data that binds encrypted shares to their round, sender and receiver."""
    parts = [round_id, sender.encode(), receiver.encode()]
    return b"".join(len(p).to_bytes(2, "big") + p for p in parts)


def encrypt_shares(key: bytes, nonce: bytes, context: bytes, plaintext: bytes) -> bytes:
    """Nonce followed by the AES-GCM ciphertext, bound to ``context`` (see share_context)."""
    if len(nonce) != NONCE_BYTES:
        raise LocalProtocolError("an AES-GCM nonce must be 12 bytes")
    return nonce + AESGCM(key).encrypt(nonce, plaintext, context)


def decrypt_shares(key: bytes, context: bytes, ciphertext: bytes, sender: str) -> bytes:
    """Open shares sent by ``sender``; a forged, altered or misaddressed ciphertext raises."""
    if len(ciphertext) < NONCE_BYTES + 16:
        raise RemoteProtocolError(f"encrypted shares from {sender} are too short")
    try:
        return AESGCM(key).decrypt(ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:], context)
    except InvalidTag as exc:
        raise RemoteProtocolError(f"encrypted shares from {sender} do not authenticate") from exc


class Expander:
    """Expands 16-byte keys into uint64 mask vectors of one length, reusing one buffer.

    The array returned by :meth:`expand` is overwritten by the next call: add it into an
    accumulator before expanding again.
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise LocalProtocolError("a vector has at least one cell")
        self._zeros = bytes(8 * dim)
        self._buffer = bytearray(8 * dim + _BLOCK - 1)
        self._view: Vector = np.frombuffer(self._buffer, dtype="<u8", count=dim)

    def expand(self, key: bytes) -> Vector:
        """The AES-128-CTR key stream of ``key`` as ``dim`` little-endian uint64."""
        encryptor = Cipher(algorithms.AES(key), modes.CTR(_ZERO_IV)).encryptor()
        encryptor.update_into(self._zeros, self._buffer)
        return self._view

    def add(self, accumulator: Vector, key: bytes) -> None:
        """accumulator += PRG(key) (mod 2^64), in place."""
        np.add(accumulator, self.expand(key), out=accumulator)

    def subtract(self, accumulator: Vector, key: bytes) -> None:
        """accumulator -= PRG(key) (mod 2^64), in place."""
        np.subtract(accumulator, self.expand(key), out=accumulator)


def pair_mask_key(shared_secret: bytes, round_id: bytes) -> bytes:
    """The AES key of the pairwise mask two nodes agree on."""
    return derive(shared_secret, round_id, "pair-mask", 16)


def self_mask_key(seed: bytes, round_id: bytes) -> bytes:
    """The AES key of a node's self mask, from its seed b_u."""
    return derive(seed, round_id, "self-mask", 16)


def share_encryption_key(shared_secret: bytes, round_id: bytes) -> bytes:
    """The AES-GCM key that protects the shares two nodes send each other."""
    return derive(shared_secret, round_id, "share-encryption", 32)


def encode_vector(vector: Vector) -> bytes:
    """A vector as little-endian uint64 bytes, the wire form."""
    return vector.astype("<u8", copy=False).tobytes()


def decode_vector(data: bytes, dim: int) -> Vector:
    """Parse a peer's little-endian uint64 vector of exactly ``dim`` cells (a copy)."""
    if len(data) != 8 * dim:
        raise RemoteProtocolError(f"a vector of {dim} cells has {8 * dim} bytes, not {len(data)}")
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)
