"""Unit tests for scfed.shamir: reconstruction, secrecy of t-1 shares, and bad input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scfed import shamir
from scfed.errors import LocalProtocolError, RemoteProtocolError
from tests.unit._support import Rng

PRIME = shamir.PRIME
_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71)


def _probably_prime(n: int) -> bool:
    """Miller-Rabin with fixed bases (no false negatives; false positives ~4^-20)."""
    if n < 2:
        return False
    for p in _BASES:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in _BASES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _poly_mul_linear(poly: list[int], root: int) -> list[int]:
    """poly(x) * (x - root), coefficients in ascending degree, mod PRIME."""
    out = [0] * (len(poly) + 1)
    for i, c in enumerate(poly):
        out[i] = (out[i] - root * c) % PRIME
        out[i + 1] = (out[i + 1] + c) % PRIME
    return out


def _interpolate(points: list[int], values: list[int]) -> list[int]:
    """Coefficients (ascending degree) of the polynomial of degree < len(points) through them."""
    total = [0] * len(points)
    for j, (xj, yj) in enumerate(zip(points, values, strict=True)):
        basis, denominator = [1], 1
        for m, xm in enumerate(points):
            if m != j:
                basis = _poly_mul_linear(basis, xm)
                denominator = denominator * (xj - xm) % PRIME
        scale = yj * pow(denominator, -1, PRIME) % PRIME
        total = [(t + scale * b) % PRIME for t, b in zip(total, basis, strict=True)]
    return total


class _Scripted:
    """An rng that makes split() draw exactly the given polynomial coefficients, in order."""

    def __init__(self, coefficients: list[int]) -> None:
        self._pending = list(coefficients)

    def __call__(self, n: int) -> bytes:
        # Any draw of at least 33 bytes can carry a field element unchanged by the reduction.
        return self._pending.pop(0).to_bytes(n, "big")


secrets = st.binary(min_size=32, max_size=32)


def test_prime_is_prime_and_just_above_2_256() -> None:
    assert PRIME == 2**256 + 297
    assert _probably_prime(PRIME)
    assert not _probably_prime(PRIME - 2)
    # The module docstring's claim: no prime lies strictly between 2^256 and PRIME.
    assert not any(_probably_prime(c) for c in range(2**256 + 1, PRIME, 2))


def test_miller_rabin_helper_rejects_composites() -> None:
    assert _probably_prime(2**127 - 1)
    assert not _probably_prime((2**61 - 1) * (2**31 - 1))
    assert not _probably_prime(3215031751)  # strong pseudoprime to bases 2, 3, 5, 7


@settings(max_examples=40, deadline=None)
@given(data=st.data(), secret=secrets, seed=st.binary(max_size=8))
def test_any_t_of_n_shares_reconstruct(data: st.DataObject, secret: bytes, seed: bytes) -> None:
    n = data.draw(st.integers(1, 20), label="n")
    t = data.draw(st.integers(1, n), label="t")
    points = list(range(1, n + 1))
    shares = shamir.split(secret, points, t, Rng(seed))
    assert len(shares) == n
    assert all(0 <= s < PRIME for s in shares)
    subset = data.draw(st.lists(st.sampled_from(points), min_size=t, unique=True), label="subset")
    assert shamir.reconstruct({x: shares[x - 1] for x in subset}) == secret


@settings(max_examples=25, deadline=None)
@given(
    secret=secrets,
    points=st.lists(st.integers(1, PRIME - 1), min_size=1, max_size=8, unique=True),
    data=st.data(),
)
def test_arbitrary_distinct_points_reconstruct(
    secret: bytes, points: list[int], data: st.DataObject
) -> None:
    t = data.draw(st.integers(1, len(points)), label="t")
    shares = shamir.split(secret, points, t, Rng(b"points"))
    chosen = data.draw(st.permutations(points), label="order")[:t]
    coefficients = shamir.lagrange_at_zero(chosen)
    by_point = dict(zip(points, shares, strict=True))
    assert shamir.combine([by_point[x] for x in chosen], coefficients) == secret


@settings(max_examples=25, deadline=None)
@given(secret=secrets, data=st.data())
def test_fewer_than_t_shares_do_not_reconstruct(secret: bytes, data: st.DataObject) -> None:
    t = data.draw(st.integers(2, 8), label="t")
    points = list(range(1, t + 1))
    shares = shamir.split(secret, points, t, Rng(b"few"))
    # t-1 shares interpolate a lower-degree polynomial, whose value at zero is not the secret
    # (except with negligible probability for this deterministic rng).
    partial = {x: shares[x - 1] for x in points[: t - 1]}
    # A RemoteProtocolError means it interpolated to a value that is not even a 32-byte secret.
    with contextlib.suppress(RemoteProtocolError):
        assert shamir.reconstruct(partial) != secret


@settings(max_examples=30, deadline=None)
@given(first=secrets, second=secrets, data=st.data())
def test_t_minus_1_shares_are_consistent_with_every_secret(
    first: bytes, second: bytes, data: st.DataObject
) -> None:
    n = data.draw(st.integers(2, 10), label="n")
    t = data.draw(st.integers(2, n), label="t")
    points = list(range(1, n + 1))
    seen = data.draw(st.lists(st.sampled_from(points), min_size=t - 1, max_size=t - 1, unique=True))
    shares_a = shamir.split(first, points, t, Rng(b"honest"))
    # For ANY other secret, the t-1 seen points plus (0, second) define a polynomial of degree
    # t-1; drawing its coefficients makes split() produce the very same t-1 shares.
    known = [shares_a[x - 1] for x in seen]
    curve = _interpolate([0, *seen], [int.from_bytes(second, "big"), *known])
    assert curve[0] == int.from_bytes(second, "big")
    shares_b = shamir.split(second, points, t, _Scripted(curve[1:]))
    assert [shares_b[x - 1] for x in seen] == known
    # Both share sets are genuine: t shares of each rebuild their own secret.
    assert shamir.reconstruct(dict(zip(points[:t], shares_a[:t], strict=True))) == first
    assert shamir.reconstruct(dict(zip(points[:t], shares_b[:t], strict=True))) == second


def test_two_secrets_with_identical_t_minus_1_shares() -> None:
    first, second = bytes(32), bytes([0xFF] * 32)
    points, t = [1, 2, 3, 4, 5], 3
    shares_a = shamir.split(first, points, t, Rng(b"a"))
    curve = _interpolate([0, 2, 5], [int.from_bytes(second, "big"), shares_a[1], shares_a[4]])
    shares_b = shamir.split(second, points, t, _Scripted(curve[1:]))
    assert first != second
    assert (shares_b[1], shares_b[4]) == (shares_a[1], shares_a[4])
    assert shares_a != shares_b
    assert shamir.reconstruct({1: shares_b[0], 2: shares_b[1], 5: shares_b[4]}) == second


def test_split_is_deterministic_in_its_rng() -> None:
    secret = bytes(range(32))
    one = shamir.split(secret, [1, 2, 3], 2, Rng(b"same"))
    two = shamir.split(secret, [1, 2, 3], 2, Rng(b"same"))
    other = shamir.split(secret, [1, 2, 3], 2, Rng(b"other"))
    assert one == two
    assert one != other


def test_threshold_one_shares_are_the_secret() -> None:
    secret = bytes(range(32))
    assert shamir.split(secret, [1, 7], 1, Rng(b"t1")) == [int.from_bytes(secret, "big")] * 2


@pytest.mark.parametrize(
    ("points", "threshold"),
    [
        pytest.param([1, 2, 3], 0, id="threshold-zero"),
        pytest.param([1, 2, 3], -1, id="threshold-negative"),
        pytest.param([1, 2, 3], 4, id="threshold-above-n"),
        pytest.param([], 1, id="no-points"),
        pytest.param([1, 2, 2], 2, id="duplicate-point"),
        pytest.param([0, 1, 2], 2, id="zero-point"),
        pytest.param([-1, 1, 2], 2, id="negative-point"),
        pytest.param([1, 2, PRIME], 2, id="point-equal-to-prime"),
        pytest.param([1, 2, PRIME + 1], 2, id="point-above-prime"),
    ],
)
def test_split_rejects_bad_thresholds_and_points(points: list[int], threshold: int) -> None:
    with pytest.raises(LocalProtocolError):
        shamir.split(bytes(32), points, threshold, Rng(b"bad"))


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_split_rejects_wrong_secret_length(length: int) -> None:
    with pytest.raises(LocalProtocolError):
        shamir.split(bytes(length), [1, 2], 1, Rng(b"bad"))


@pytest.mark.parametrize("length", [0, 1, 32, 34, 66])
def test_decode_share_rejects_wrong_length(length: int) -> None:
    with pytest.raises(RemoteProtocolError):
        shamir.decode_share(bytes(length))


@pytest.mark.parametrize("value", [PRIME, PRIME + 1, 2**264 - 1])
def test_decode_share_rejects_non_field_elements(value: int) -> None:
    with pytest.raises(RemoteProtocolError):
        shamir.decode_share(value.to_bytes(shamir.SHARE_BYTES, "big"))


@settings(max_examples=40, deadline=None)
@given(value=st.integers(0, PRIME - 1))
def test_share_encoding_round_trips(value: int) -> None:
    data = shamir.encode_share(value)
    assert len(data) == shamir.SHARE_BYTES
    assert shamir.decode_share(data) == value


@pytest.mark.parametrize(
    "points",
    [
        pytest.param([1, 1], id="duplicate"),
        pytest.param([0, 1], id="zero"),
        pytest.param([1, PRIME], id="prime"),
    ],
)
def test_lagrange_rejects_bad_points(points: list[int]) -> None:
    with pytest.raises(RemoteProtocolError):
        shamir.lagrange_at_zero(points)


def test_combine_needs_one_share_per_coefficient() -> None:
    with pytest.raises(LocalProtocolError):
        shamir.combine([1, 2], shamir.lagrange_at_zero([1, 2, 3]))


def test_combine_rejects_value_that_is_not_a_32_byte_secret() -> None:
    with pytest.raises(RemoteProtocolError):
        shamir.reconstruct({1: 2**256 + 5})


def test_reconstruct_ignores_order_of_mapping() -> None:
    secret = bytes(range(1, 33))
    shares = shamir.split(secret, [3, 9, 4], 3, Rng(b"order"))
    forward = shamir.reconstruct({3: shares[0], 9: shares[1], 4: shares[2]})
    backward = shamir.reconstruct({4: shares[2], 9: shares[1], 3: shares[0]})
    assert forward == backward == secret


def _lagrange_by_definition(points: list[int]) -> list[int]:
    out = []
    for i, xi in enumerate(points):
        num = den = 1
        for j, xj in enumerate(points):
            if i != j:
                num, den = num * xj % PRIME, den * (xj - xi) % PRIME
        out.append(num * pow(den, -1, PRIME) % PRIME)
    return out


def _horner_by_definition(coefficients: list[int], x: int) -> int:
    return sum(c * pow(x, k, PRIME) for k, c in enumerate(coefficients)) % PRIME


@settings(max_examples=50, deadline=None)
@given(points=st.sets(st.integers(1, PRIME - 1), min_size=1, max_size=40))
def test_lagrange_coefficients_equal_the_definition(points: set[int]) -> None:
    ordered = sorted(points)
    assert shamir.lagrange_at_zero(ordered) == _lagrange_by_definition(ordered)


@settings(max_examples=30, deadline=None)
@given(
    threshold=st.integers(1, 40),
    points=st.sets(st.integers(1, PRIME - 1), min_size=40, max_size=45),
    seed=st.binary(min_size=1, max_size=8),
)
def test_shares_are_the_polynomial_at_the_points(
    threshold: int, points: set[int], seed: bytes
) -> None:
    secret, ordered = bytes(range(32)), sorted(points)
    draws = Rng(seed)  # the same stream split draws its coefficients from
    coefficients = [int.from_bytes(secret, "big")]
    coefficients += [int.from_bytes(draws(41), "big") % PRIME for _ in range(threshold - 1)]
    shares = shamir.split(secret, ordered, threshold, Rng(seed))
    assert shares == [_horner_by_definition(coefficients, x) for x in ordered]
