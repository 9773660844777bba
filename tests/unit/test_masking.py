"""Unit tests for scfed.masking: agreement, mask expansion, share encryption, vectors."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from scfed import masking
from scfed.errors import LocalProtocolError, RemoteProtocolError
from tests.unit._support import Rng

ROUND = bytes(range(16))
OTHER_ROUND = bytes(range(1, 17))
keys16 = st.binary(min_size=16, max_size=16)


def _x25519(seed: bytes) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(Rng(seed)(32))


def _aes_ctr_reference(key: bytes, dim: int) -> masking.Vector:
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    stream = encryptor.update(bytes(8 * dim)) + encryptor.finalize()
    return np.frombuffer(stream, dtype="<u8").astype(np.uint64)


# ---- agreement and pairwise masks ----


@settings(max_examples=25, deadline=None)
@given(seed_u=st.binary(max_size=8), seed_v=st.binary(max_size=8))
def test_both_sides_of_an_agreement_get_the_same_key(seed_u: bytes, seed_v: bytes) -> None:
    u, v = _x25519(b"u" + seed_u), _x25519(b"v" + seed_v)
    secret_u = masking.agree(u, masking.public_bytes(v))
    secret_v = masking.agree(v, masking.public_bytes(u))
    assert secret_u == secret_v
    assert len(secret_u) == 32
    assert masking.pair_mask_key(secret_u, ROUND) == masking.pair_mask_key(secret_v, ROUND)


@settings(max_examples=25, deadline=None)
@given(dim=st.integers(1, 300), seed=st.binary(max_size=8))
def test_pairwise_masks_cancel(dim: int, seed: bytes) -> None:
    u, v = _x25519(b"u" + seed), _x25519(b"v" + seed)
    key_u = masking.pair_mask_key(masking.agree(u, masking.public_bytes(v)), ROUND)
    key_v = masking.pair_mask_key(masking.agree(v, masking.public_bytes(u)), ROUND)
    rng = Rng(b"x" + seed)
    x_u = np.frombuffer(rng(8 * dim), dtype="<u8").astype(np.uint64)
    x_v = np.frombuffer(rng(8 * dim), dtype="<u8").astype(np.uint64)
    y_u, y_v = x_u.copy(), x_v.copy()
    expander = masking.Expander(dim)
    expander.add(y_u, key_u)  # the smaller id adds ...
    expander.subtract(y_v, key_v)  # ... the larger subtracts
    assert not np.array_equal(y_u, x_u)
    np.testing.assert_array_equal(y_u + y_v, x_u + x_v)
    plus, minus = np.zeros(dim, np.uint64), np.zeros(dim, np.uint64)
    expander.add(plus, key_u)
    expander.subtract(minus, key_v)
    np.testing.assert_array_equal(plus + minus, np.zeros(dim, np.uint64))


def test_agree_rejects_degenerate_peer_key() -> None:
    with pytest.raises(RemoteProtocolError):
        masking.agree(_x25519(b"me"), bytes(32))


@pytest.mark.parametrize("length", [0, 31, 33])
def test_agree_rejects_wrong_length_peer_key(length: int) -> None:
    with pytest.raises(RemoteProtocolError):
        masking.agree(_x25519(b"me"), bytes([9]) * length)


def test_derived_keys_are_bound_to_purpose_and_round() -> None:
    secret = Rng(b"secret")(32)
    derived = {
        masking.pair_mask_key(secret, ROUND),
        masking.pair_mask_key(secret, OTHER_ROUND),
        masking.self_mask_key(secret, ROUND)[:16],
        masking.share_encryption_key(secret, ROUND)[:16],
    }
    assert len(derived) == 4
    assert len(masking.pair_mask_key(secret, ROUND)) == 16
    assert len(masking.self_mask_key(secret, ROUND)) == 16
    assert len(masking.share_encryption_key(secret, ROUND)) == 32


# ---- expansion ----


@settings(max_examples=30, deadline=None)
@given(key=keys16, dim=st.integers(1, 257))
def test_expander_matches_aes_128_ctr_with_zero_iv(key: bytes, dim: int) -> None:
    out = masking.Expander(dim).expand(key)
    assert out.shape == (dim,)
    assert out.dtype == np.uint64
    np.testing.assert_array_equal(out, _aes_ctr_reference(key, dim))


@settings(max_examples=30, deadline=None)
@given(key=keys16, other=keys16, dim=st.integers(2, 64))
def test_expander_is_deterministic_per_key_and_differs_across_keys(
    key: bytes, other: bytes, dim: int
) -> None:
    expander = masking.Expander(dim)
    first = expander.expand(key).copy()
    second = masking.Expander(dim).expand(key).copy()
    again = expander.expand(key).copy()
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, again)
    if other != key:
        assert not np.array_equal(first, expander.expand(other))


def test_expander_reuses_its_buffer() -> None:
    expander = masking.Expander(8)
    a_key, b_key = bytes(16), bytes([1]) * 16
    first = expander.expand(a_key)
    saved = first.copy()
    second = expander.expand(b_key)
    assert np.shares_memory(first, second)
    assert not np.array_equal(first, saved)  # overwritten, as documented


def test_expander_prefix_is_stable_across_lengths() -> None:
    key = Rng(b"prefix")(16)
    long = masking.Expander(100).expand(key).copy()
    np.testing.assert_array_equal(masking.Expander(7).expand(key), long[:7])


def test_expander_add_and_subtract_wrap_mod_2_64() -> None:
    key = Rng(b"wrap")(16)
    expander = masking.Expander(5)
    mask = expander.expand(key).copy()
    acc = np.full(5, np.iinfo(np.uint64).max, dtype=np.uint64)
    expander.add(acc, key)
    np.testing.assert_array_equal(acc, mask - np.uint64(1))
    expander.subtract(acc, key)
    np.testing.assert_array_equal(acc, np.full(5, np.iinfo(np.uint64).max, dtype=np.uint64))


def test_expander_rejects_empty_vectors() -> None:
    with pytest.raises(LocalProtocolError):
        masking.Expander(0)


# ---- share encryption ----


def _sealed(plaintext: bytes = bytes(66)) -> tuple[bytes, bytes, bytes]:
    key = masking.share_encryption_key(Rng(b"shared")(32), ROUND)
    context = masking.share_context(ROUND, "node-001", "node-002")
    return key, context, masking.encrypt_shares(key, Rng(b"nonce")(12), context, plaintext)


@settings(max_examples=25, deadline=None)
@given(plaintext=st.binary(max_size=200))
def test_share_encryption_round_trips(plaintext: bytes) -> None:
    key, context, ciphertext = _sealed(plaintext)
    assert len(ciphertext) == masking.NONCE_BYTES + len(plaintext) + 16
    assert masking.decrypt_shares(key, context, ciphertext, "node-001") == plaintext


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_altered_ciphertext_does_not_decrypt(data: st.DataObject) -> None:
    key, context, ciphertext = _sealed()
    position = data.draw(st.integers(0, len(ciphertext) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    altered = bytearray(ciphertext)
    altered[position] ^= 1 << bit
    with pytest.raises(RemoteProtocolError):
        masking.decrypt_shares(key, context, bytes(altered), "node-001")


def test_truncated_or_extended_ciphertext_does_not_decrypt() -> None:
    key, context, ciphertext = _sealed()
    for bad in (ciphertext[:-1], ciphertext + b"\x00", ciphertext[:12] + ciphertext[13:]):
        with pytest.raises(RemoteProtocolError):
            masking.decrypt_shares(key, context, bad, "node-001")


@pytest.mark.parametrize(
    "context",
    [
        pytest.param(masking.share_context(OTHER_ROUND, "node-001", "node-002"), id="wrong-round"),
        pytest.param(masking.share_context(ROUND, "node-002", "node-001"), id="swapped-parties"),
        pytest.param(masking.share_context(ROUND, "node-001", "node-003"), id="wrong-receiver"),
        pytest.param(masking.share_context(ROUND, "node-003", "node-002"), id="wrong-sender"),
        pytest.param(b"", id="no-context"),
    ],
)
def test_misaddressed_ciphertext_does_not_decrypt(context: bytes) -> None:
    key, _, ciphertext = _sealed()
    with pytest.raises(RemoteProtocolError):
        masking.decrypt_shares(key, context, ciphertext, "node-001")


def test_ciphertext_under_another_key_does_not_decrypt() -> None:
    _, context, ciphertext = _sealed()
    other = masking.share_encryption_key(Rng(b"other")(32), ROUND)
    with pytest.raises(RemoteProtocolError):
        masking.decrypt_shares(other, context, ciphertext, "node-001")


@pytest.mark.parametrize("length", [0, 11, 12, 27])
def test_short_ciphertext_is_the_peers_fault(length: int) -> None:
    key, context, _ = _sealed()
    with pytest.raises(RemoteProtocolError):
        masking.decrypt_shares(key, context, bytes(length), "node-001")


@pytest.mark.parametrize("length", [0, 11, 13, 16])
def test_encrypt_rejects_bad_nonce(length: int) -> None:
    key, context, _ = _sealed()
    with pytest.raises(LocalProtocolError):
        masking.encrypt_shares(key, bytes(length), context, b"x")


def test_share_context_is_unambiguous() -> None:
    # Length prefixes keep ("a", "bc") and ("ab", "c") apart.
    assert masking.share_context(ROUND, "a", "bc") != masking.share_context(ROUND, "ab", "c")


# ---- vectors ----


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=50))
def test_vector_encoding_round_trips(values: list[int]) -> None:
    vector = np.array(values, dtype=np.uint64)
    data = masking.encode_vector(vector)
    assert data == b"".join(v.to_bytes(8, "little") for v in values)
    decoded = masking.decode_vector(data, len(values))
    assert decoded.dtype == np.uint64
    np.testing.assert_array_equal(decoded, vector)


def test_decoded_vector_is_a_writable_copy() -> None:
    data = masking.encode_vector(np.arange(4, dtype=np.uint64))
    decoded = masking.decode_vector(data, 4)
    decoded += np.uint64(1)
    np.testing.assert_array_equal(decoded, np.arange(1, 5, dtype=np.uint64))


@pytest.mark.parametrize(("length", "dim"), [(0, 1), (7, 1), (9, 1), (16, 3), (32, 3), (8, 0)])
def test_decode_vector_rejects_wrong_lengths(length: int, dim: int) -> None:
    with pytest.raises(RemoteProtocolError):
        masking.decode_vector(bytes(length), dim)
